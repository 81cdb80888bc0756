"""Configuration (defaults, environment, CLI), the emulator clock and payload helpers."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from salon.clock import ManualClock, OffsetFileClock, read_offset_file, write_offset_file
from salon.emulator.clock import EmulatorClock
from salon.emulator.config import ENV_VARS, EmulatorConfig, config_from_cli
from salon.emulator.payloads import (
    Contact,
    Metadata,
    WebhookEvent,
    build_payload,
    inbound_message,
    serialise,
    sign,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_defaults() -> None:
    config = EmulatorConfig()
    assert config.phone_number_id == "100000000000001"
    assert config.waba_id == "200000000000001"
    assert config.display_phone_number == "33100000000"
    assert config.api_version == "v27.0"
    assert config.api_versions == ("v21.0", "v25.0", "v26.0", "v27.0")
    assert config.marketing_cap_hours == 24
    assert config.access_token == "emulator-access-token"
    assert config.app_secret == "emulator-app-secret"
    assert config.verify_token == "emulator-verify-token"
    assert config.webhook_url == "http://127.0.0.1:5005/webhooks/whatsapp/webhook"
    assert config.throughput_per_second == 80 and config.pair_rate_burst == 45
    assert config.pair_rate_refill_seconds == 6 and config.batching is False


def test_every_field_has_an_environment_variable() -> None:
    env = {
        "WA_PHONE_NUMBER_ID": "111",
        "WA_WABA_ID": "222",
        "WA_API_VERSION": "v26.0",
        "WA_EMULATOR_API_VERSIONS": "v26.0, v27.0",
        "WA_MARKETING_CAP_HOURS": "off",
        "SALON_CLOCK_FILE": "/tmp/x.json",
        "WA_STATUS_READ_DELAY": "off",
        "WA_WEBHOOK_BATCHING": "true",
        "WA_PAIR_RATE_BURST": "3",
    }
    config = EmulatorConfig.from_env(env)
    assert (config.phone_number_id, config.waba_id, config.api_version) == ("111", "222", "v26.0")
    assert config.api_versions == ("v26.0", "v27.0") and config.marketing_cap_hours is None
    assert config.clock_file == "/tmp/x.json"
    assert config.status_read_delay is None and config.batching is True
    assert config.pair_rate_burst == 3
    assert set(ENV_VARS) == {f for f in EmulatorConfig.__dataclass_fields__}


def test_cli_flags_win_over_the_environment() -> None:
    config = config_from_cli(
        [
            "--port",
            "5901",
            "--webhook-url",
            "http://h/w",
            "--clock-file",
            "/tmp/c.json",
            "--batching",
            "--status-read-delay",
            "none",
            "--api-versions",
            "v21.0,v27.0",
            "--api-version",
            "v21.0",
            "--marketing-cap-hours",
            "12",
        ],
        environ={"WA_EMULATOR_PORT": "7000", "WA_WEBHOOK_URL": "http://env/w"},
    )
    assert config.port == 5901 and config.webhook_url == "http://h/w"
    assert config.clock_file == "/tmp/c.json" and config.batching is True
    assert config.status_read_delay is None
    assert config.api_versions == ("v21.0", "v27.0") and config.api_version == "v21.0"
    assert config.marketing_cap_hours == 12


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(api_version="21.0")
    with pytest.raises(ValueError, match="not among the served"):
        EmulatorConfig(api_version="v24.0")  # the emulator's own version must be served
    with pytest.raises(ValueError):
        EmulatorConfig(api_versions=())
    with pytest.raises(ValueError):
        EmulatorConfig(marketing_cap_hours=-1)
    with pytest.raises(ValueError):
        EmulatorConfig(webhook_attempts=0)


def test_clock_file_is_shared_with_offset_file_clocks(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    base = ManualClock(T0)
    clock = EmulatorClock(base, path)
    assert clock.now() == T0
    clock.advance(timedelta(hours=25))
    assert read_offset_file(path) == timedelta(hours=25)
    # the bot's clock follows the file
    assert OffsetFileClock(path, base=base).now() == T0 + timedelta(hours=25)
    clock.set(datetime(2026, 3, 5, 12, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2026, 3, 5, 11, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 3, 5, 12, 0))  # noqa: DTZ001 - the naive value is the point
    clock.reset()
    assert read_offset_file(path) == timedelta(0) and clock.now() == T0


def test_a_clock_started_at_a_fixed_instant_resets_to_it(tmp_path: Path) -> None:
    """A stack started at a frozen instant writes the clock file first; the emulator's
    reset goes back to that instant, not to the real time."""
    path = tmp_path / "clock.json"
    base = ManualClock(T0)
    start = datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc)
    write_offset_file(path, start - T0)
    clock = EmulatorClock(base, path)
    assert clock.now() == start
    clock.advance(timedelta(hours=25))
    base.advance(timedelta(minutes=3))
    clock.reset()
    assert clock.now() == start + timedelta(minutes=3)  # back at the start; time ran on
    assert OffsetFileClock(path, base=base).now() == clock.now()


def test_serialisation_is_compact_ascii_and_the_signature_is_hmac_sha256() -> None:
    body = serialise({"text": {"body": "Très élégant ✨"}, "n": 1})
    assert body == b'{"text":{"body":"Tr\\u00e8s \\u00e9l\\u00e9gant \\u2728"},"n":1}'
    expected = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert sign(body, "secret") == f"sha256={expected}"


def _message_event(client: str, text: str) -> WebhookEvent:
    meta = Metadata("33100000000", "100000000000001")
    contact = Contact(wa_id=client, name="C")
    message = inbound_message(
        contact, wamid=f"wamid.{client}", timestamp=T0, kind="text", content={"body": text}
    )
    value = {
        "messaging_product": "whatsapp",
        "metadata": meta.as_dict(),
        "contacts": [{"profile": {"name": "C"}, "wa_id": client}],
        "messages": [message],
    }
    return WebhookEvent("messages", value, client)


def test_batched_payload_merges_messages_and_keeps_management_entries_apart() -> None:
    status_value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "33100000000", "phone_number_id": "100000000000001"},
        "statuses": [{"id": "wamid.s", "status": "sent", "timestamp": "1", "recipient_id": "1"}],
    }
    events = [
        _message_event("331", "a"),
        _message_event("332", "b"),
        _message_event("331", "c"),
        WebhookEvent("messages", status_value, "331"),
        WebhookEvent("messages", json.loads(json.dumps(status_value)), "332"),
        WebhookEvent(
            "message_template_status_update", {"event": "PAUSED"}, "_account", entry_time=1700000000
        ),
    ]
    payload = build_payload("200000000000001", events)
    assert payload["object"] == "whatsapp_business_account"
    first, management = payload["entry"]
    assert "time" not in first and management["time"] == 1700000000
    messages_change, statuses_change = first["changes"]
    assert [m["text"]["body"] for m in messages_change["value"]["messages"]] == ["a", "b", "c"]
    assert [c["wa_id"] for c in messages_change["value"]["contacts"]] == ["331", "332"]
    assert len(statuses_change["value"]["statuses"]) == 2
    assert management["changes"][0]["field"] == "message_template_status_update"
    # the events themselves were not modified by the merge
    assert len(events[0].value["messages"]) == 1


def test_a_single_event_is_one_entry_with_one_change() -> None:
    payload = build_payload("200000000000001", [_message_event("331", "a")])
    assert len(payload["entry"]) == 1 and len(payload["entry"][0]["changes"]) == 1
    assert payload["entry"][0]["id"] == "200000000000001"
