"""The endpoint files build real Rasa stores: the embedded SQLite tracker store, and the
production PostgreSQL tracker store plus Redis lock store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

PROJECT = Path(__file__).resolve().parent.parent


def _tracker_roundtrip_sender() -> str:
    return f"endpoint-test-{uuid.uuid4().hex[:8]}"


async def _save_and_reload(store, sender: str) -> list[str]:  # type: ignore[no-untyped-def]
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker.from_events(
        sender, [ActionExecuted("action_listen"), UserUttered("Bonjour", {"name": "greet"})], slots=[]
    )
    await store.save(tracker)
    loaded = await store.retrieve(sender)
    assert loaded is not None
    return [event.text for event in loaded.events if isinstance(event, UserUttered)]


async def test_embedded_endpoints_use_a_sqlite_tracker_store(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
    from rasa.core.utils import AvailableEndpoints

    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    endpoints = AvailableEndpoints.read_endpoints(str(PROJECT / "endpoints.yml"))
    assert endpoints.action.url == "http://127.0.0.1:5055/webhook"
    store = TrackerStore.create(endpoints.tracker_store)
    assert isinstance(store, SQLTrackerStore)
    assert await _save_and_reload(store, _tracker_roundtrip_sender()) == ["Bonjour"]
    assert (tmp_path / "var" / "rasa-trackers.db").is_file()


async def test_production_endpoints_build_postgres_and_redis_stores(
    postgres_url: str, redis_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from rasa.core.lock_store import LockStore, RedisLockStore
    from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
    from rasa.core.utils import AvailableEndpoints

    pg = make_url(postgres_url)
    redis = make_url(redis_url)
    env = {
        "SALON_ACTION_ENDPOINT": "http://127.0.0.1:5055/webhook",
        "SALON_ACTIONS_TOKEN": "actions-credential-0123456789",
        "SALON_PG_HOST": pg.host or "127.0.0.1",
        "SALON_PG_PORT": str(pg.port or 5432),
        "SALON_PG_DATABASE": pg.database or "",
        "SALON_PG_USER": pg.username or "postgres",
        "SALON_PG_PASSWORD": pg.password or "",
        "SALON_REDIS_HOST": redis.host or "127.0.0.1",
        "SALON_REDIS_PORT": str(redis.port or 6379),
        "SALON_RABBITMQ_HOST": "127.0.0.1",
        "SALON_RABBITMQ_USER": "guest",
        "SALON_RABBITMQ_PASSWORD": "guest",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    endpoints = AvailableEndpoints.read_endpoints(str(PROJECT / "deploy" / "endpoints.production.yml"))
    assert endpoints.event_broker.type == "pika"
    # Rasa calls the action server with its credential, in a header
    assert endpoints.action.headers == {"Authorization": "Bearer actions-credential-0123456789"}

    store = TrackerStore.create(endpoints.tracker_store)
    assert isinstance(store, SQLTrackerStore)
    assert store.engine.dialect.name == "postgresql"
    assert await _save_and_reload(store, _tracker_roundtrip_sender()) == ["Bonjour"]
    store.engine.dispose()

    lock_store = LockStore.create(endpoints.lock_store)
    assert isinstance(lock_store, RedisLockStore)
    conversation = _tracker_roundtrip_sender()
    async with lock_store.lock(conversation):
        assert lock_store.get_lock(conversation) is not None
    lock_store.red.close()


def test_missing_production_variable_is_a_clear_startup_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rasa.core.utils import AvailableEndpoints
    from rasa.shared.exceptions import RasaException

    monkeypatch.delenv("SALON_ACTION_ENDPOINT", raising=False)
    with pytest.raises(RasaException, match="SALON_ACTION_ENDPOINT"):
        AvailableEndpoints.read_endpoints(str(PROJECT / "deploy" / "endpoints.production.yml"))


def test_production_credentials_take_the_webhook_on_the_companion_port(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rasa.shared.utils.io import read_config_file

    from connectors.whatsapp import WhatsAppInput

    env = {"WA_VERIFY_TOKEN": "verify", "WA_APP_SECRET": "secret", "WA_ACCESS_TOKEN": "token",
           "WA_PHONE_NUMBER_ID": "100000000000001", "WA_WABA_ID": "200000000000001",
           "WA_API_BASE_URL": "https://graph.facebook.com", "WA_API_VERSION": "v27.0",
           "WA_AUTH_MODE": "bearer", "WA_WEBHOOK_PORT": "5006", "WA_WEBHOOK_HOST": "10.0.0.7"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    channels = read_config_file(str(PROJECT / "deploy" / "credentials.production.yml"))
    assert set(channels) == {"connectors.whatsapp.WhatsAppInput"}
    config = WhatsAppInput.from_credentials(channels["connectors.whatsapp.WhatsAppInput"]).config
    assert (config.webhook_port, config.io_process, config.assistant_thread) == (5006, True, False)
    assert config.webhook_host == "10.0.0.7"  # said explicitly: loopback otherwise
    assert config.app_secret == "secret"

    monkeypatch.delenv("WA_WEBHOOK_PORT")
    from rasa.shared.exceptions import RasaException

    with pytest.raises(RasaException, match="WA_WEBHOOK_PORT"):
        read_config_file(str(PROJECT / "deploy" / "credentials.production.yml"))
