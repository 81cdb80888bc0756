"""Regression tests of the review's findings at the edge (docs/security.md, its findings table):
who can reach what, with which secret, and who the actions believe is writing.

C1 impersonation (REST channel, open action server, identity from caller metadata, public
Rasa token), M5 (body buffered before the size check; unsigned bodies copied to the
companion), M6 (published secrets accepted), L6 (secrets in reprs), H5 (a token in a URL,
logged), H4 at the channel (a bot-initiated turn's purpose; consent inferred from a
sentence or from a turn someone else started)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sanic import Sanic, response
from sanic.request import Request

from actions.backends import client_ids
from actions.server import ActionServerConfigError, check_exposure, guarded_app
from connectors.whatsapp import WhatsAppInput
from salon.access.signed_identity import SEAL_KEY, seal, sealed_ids, unseal
from salon.clock import ManualClock
from salon.config import PROJECT_ROOT, Settings
from salon.consent.ledger import ledger_table
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.logmask import mask_text, mask_value
from salon.webhook.companion import IoProcessRuntime
from salon.webhook.runtime import ChannelConfig, ChannelConfigError
from salon.whatsapp.graph import GraphConfig
from salon.whatsapp.signature import sign
from tests.action_support import TEST_IDENTITY_KEY, sealed
from tests.test_whatsapp_sender import CLAIRE, STRANGER, T0, outbox, say, settle
from tests.whatsapp_support import APP_SECRET, Channel, running_channel, serve

KEY = TEST_IDENTITY_KEY.encode()
BASE = {"verify_token": "v-9f3c", "app_secret": "s-71d2", "access_token": "a-44e1",
        "phone_number_id": "100000000000001", "waba_id": "200000000000001"}


# --------------------------------------------------------------------------- C1


def _tracker(sender: str, metadata: dict[str, Any] | None, events: list[dict[str, Any]] | None = None) -> Tracker:
    return Tracker(sender_id=sender, slots={"order_number": "SOL-104233"},
                   latest_message={"text": "where is my order", "intent": {"name": "check_order_status"},
                                   "entities": [], "metadata": metadata or {}},
                   events=events or [], paused=False, followup_action=None, active_loop={},
                   latest_action_name="action_listen")


def test_the_actions_believe_only_ids_the_whatsapp_channel_sealed() -> None:
    """An attacker posts to Rasa's REST channel (or straight to the action server) with
    Claire's number as the sender or in the metadata: nobody in particular."""
    assert client_ids(_tracker(CLAIRE, None)) == (None, None)  # the conversation id alone
    assert client_ids(_tracker("attacker", {"wa_id": CLAIRE})) == (None, None)  # unsealed
    forged = {"wa_id": CLAIRE, SEAL_KEY: seal(b"another key", "attacker", CLAIRE, None)}
    assert client_ids(_tracker("attacker", forged)) == (None, None)
    # a seal made for another conversation does not carry over
    assert client_ids(_tracker("attacker", sealed(CLAIRE, wa_id=CLAIRE))) == (None, None)
    assert client_ids(_tracker(CLAIRE, sealed(CLAIRE, wa_id=CLAIRE))) == (CLAIRE, None)
    # a turn the assistant starts carries no metadata: her earlier sealed turn names her
    earlier = [{"event": "user", "metadata": sealed(CLAIRE, wa_id=CLAIRE)}, {"event": "bot"}]
    assert client_ids(_tracker(CLAIRE, None, earlier)) == (CLAIRE, None)


def test_a_seal_is_bound_to_its_ids() -> None:
    good = sealed("FR.1", user_id="FR.1")
    assert unseal(KEY, "FR.1", good) == (None, "FR.1")
    assert unseal(KEY, "FR.1", {**good, "wa_id": "33600000001"}) is None  # an id added
    assert unseal(None, "FR.1", good) is None  # no key configured: nobody is trusted
    assert sealed_ids(KEY, "FR.1", [None, {}, good]) == (None, "FR.1")


async def test_order_status_is_not_given_to_an_unsealed_caller(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from actions import backends
    from actions.orders import ActionOrderStatus
    from tests.seeding import seed_maison

    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    backends.reset()
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(dispatcher, _tracker("attacker", {"wa_id": CLAIRE}), {})
    assert dispatcher.messages[0]["response"] == "utter_order_not_found"
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(dispatcher, _tracker(CLAIRE, sealed(CLAIRE, wa_id=CLAIRE)), {})
    assert "DHL Express" in dispatcher.messages[0]["text"]
    await backends.close()


async def test_the_action_server_refuses_calls_without_its_credential() -> None:
    app = guarded_app("actions-credential-0123456789")
    Sanic.test_mode = True
    call = {"next_action": "action_order_status", "sender_id": "x", "version": "3.6.2",
            "tracker": {"sender_id": "x", "slots": {}, "latest_message": {"text": "my address is here"},
                        "events": []}, "domain": {}}
    async with serve(app) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/health") as r:
            assert r.status == 200  # health stays open
        async with http.post(f"{url}/webhook", json=call) as r:
            assert r.status == 401
        async with http.post(f"{url}/webhook", json=call, headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
        async with http.post(f"{url}/webhook", json={**call, "tracker": "junk"},
                             headers={"Authorization": "Bearer actions-credential-0123456789"}) as r:
            assert r.status == 500
            answer = await r.text()
        assert "my address" not in answer and "junk" not in answer  # nothing echoed back


def test_the_action_server_never_listens_beyond_loopback_without_a_credential() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("0.0.0.0", "a-credential")
    with pytest.raises(ActionServerConfigError, match="SALON_ACTIONS_TOKEN"):
        check_exposure("0.0.0.0", None)


def test_shipped_credentials_and_launchers_expose_nothing() -> None:
    """No REST channel in the credentials any process ships with; make run binds loopback
    and protects Rasa's API with a JWT (never a token in a URL, never a published one)."""
    from rasa.shared.utils.io import read_config_file

    env = {"WA_VERIFY_TOKEN": "v", "WA_APP_SECRET": "s", "WA_ACCESS_TOKEN": "a",
           "WA_PHONE_NUMBER_ID": "1", "WA_WABA_ID": "2", "WA_API_BASE_URL": "https://graph.facebook.com",
           "WA_API_VERSION": "v27.0", "WA_AUTH_MODE": "bearer", "WA_WEBHOOK_PORT": "5006",
           "WA_WEBHOOK_HOST": "127.0.0.1"}
    import os
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for path in ("credentials.yml", "deploy/credentials.production.yml"):
            assert set(read_config_file(str(PROJECT_ROOT / path))) == {"connectors.whatsapp.WhatsAppInput"}, path
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    run_server = (PROJECT_ROOT / "scripts" / "run-server").read_text()
    assert 'interface=${RASA_INTERFACE:-127.0.0.1}' in run_server and "--jwt-secret" in run_server
    assert "--auth-token" not in run_server
    assert "python -m actions.server" in (PROJECT_ROOT / "scripts" / "with-action-server").read_text()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "salon-local-dev-token" not in makefile and "SALON_RASA_TOKEN" not in makefile


# --------------------------------------------------------------------------- M5, M6, L6


async def test_an_oversized_webhook_is_refused_before_it_is_buffered(settings: Settings) -> None:
    async with running_channel(settings) as ch:
        assert ch.http is not None
        big = b'{"object":"whatsapp_business_account","entry":[' + b" " * (4 * 1024 * 1024) + b"]}"
        async with ch.http.post(ch.server_webhook, data=big, headers={"X-Hub-Signature-256": sign(big, APP_SECRET)}) as r:
            assert r.status == 400 and "too large" in await r.text()

        async def chunks() -> Any:  # no Content-Length: streamed, and cut at 3 MB
            for _ in range(5):
                yield b" " * (1024 * 1024)

        async with ch.http.post(ch.server_webhook, data=chunks()) as r:
            assert r.status == 400
        assert ch.runtime.service is not None and ch.runtime.service.stats["posts"] == 0


async def test_the_companion_never_receives_an_unsigned_body() -> None:
    config = ChannelConfig.from_mapping({**BASE, "app_secret": APP_SECRET, "api_base_url": "http://127.0.0.1:9"})
    runtime = IoProcessRuntime(config)  # not started: no companion to forward to
    assert (await runtime.handle(b"{}", None)).status == 401
    assert (await runtime.handle(b"{}", "sha256=" + "0" * 64)).status == 403
    assert (await runtime.handle(b"{}", sign(b"{}", APP_SECRET))).status == 503  # valid: would be forwarded


def test_published_secrets_are_refused_outside_the_emulator() -> None:
    published = {**BASE, "app_secret": "emulator-app-secret", "verify_token": "emulator-verify-token"}
    with pytest.raises(ChannelConfigError, match="app_secret, verify_token"):
        ChannelConfig.from_mapping({**published, "api_base_url": "https://graph.facebook.com"})
    ChannelConfig.from_mapping({**published, "api_base_url": "http://127.0.0.1:5900"})  # the emulator


def test_no_secret_in_a_repr() -> None:
    config = ChannelConfig.from_mapping({**BASE, "api_base_url": "https://graph.facebook.com"})
    for text in (repr(config), repr(config.graph), repr(GraphConfig(access_token="a-44e1", phone_number_id="1"))):
        assert "s-71d2" not in text and "a-44e1" not in text and "v-9f3c" not in text


# --------------------------------------------------------------------------- H5 (logs)


def test_tokens_and_authorization_headers_are_masked_in_logs() -> None:
    error = ("rasa: 500, message='boom', url=URL('http://127.0.0.1:42055/conversations/x/"
             "trigger_intent?output_channel=whatsapp&token=SECRET-RASA-TOKEN-123')")
    assert "SECRET-RASA-TOKEN-123" not in mask_text(error)
    assert "eyJhbGci" not in mask_text("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")
    assert mask_value({"Authorization": "Bearer x", "token": "t", "order": "SOL-1"}) == {
        "Authorization": "[secret]", "token": "[secret]", "order": "SOL-1"}


# --------------------------------------------------------------------------- H4 (channel)


def _trigger_route(app: Sanic, channel: WhatsAppInput, _: Callable[[UserMessage], Awaitable[None]]) -> None:
    """Rasa's trigger_intent, as far as the channel sees it: the output channel made during
    the request, and the turn's answer sent through it."""

    @app.post("/conversations/<conversation_id>/trigger_intent")
    async def trigger(request: Request, conversation_id: str) -> Any:
        output = channel.get_output_channel()
        await output.send_text_message(conversation_id, str(request.json.get("say")))
        return response.json({"ok": True})


@asynccontextmanager
async def wired(settings: Settings) -> AsyncIterator[tuple[Channel, Any, aiohttp.ClientSession]]:
    """The channel (with Rasa's trigger route) and the emulator, on one clock."""
    clock = ManualClock(T0)
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03)
    async with running_emulator(config, clock=clock) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, clock=clock,
                                   access_token=config.access_token, extra_routes=_trigger_route) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200, await r.text()
                yield ch, emu, admin


async def _trigger(base: str, conversation: str, say_: str, **params: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/conversations/{conversation}/trigger_intent",
                             params={"output_channel": "whatsapp", **params}, json={"say": say_}) as r:
            assert r.status == 200, await r.text()


async def test_a_turn_the_assistant_starts_carries_its_purpose_to_the_guard(settings: Settings) -> None:
    """Karim (C-030) has a utility opt-in and withdrew marketing; the stranger wrote but
    never opted in. Both windows are open, so a reply would go: a bot-initiated marketing
    turn does not, nor any bot-initiated turn to the stranger; a follow-up to Karim does."""
    karim = "33600000030"
    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": karim, "text": "Bonjour", "name": "Karim Haddad"})
        await say(admin, **{"from": STRANGER, "text": "Hi", "name": "Jo"})
        await ch.settle()
        await _trigger(ch.url, karim, "Our new collection is here.", purpose="new_collection",
                       origin="campaign-1")
        await _trigger(ch.url, STRANGER, "Following up on your visit.")  # a follow-up by default
        await _trigger(ch.url, karim, "Camille has news about your watch.")
        await ch.settle()
        assert await outbox(admin, STRANGER) == []
        box = await settle(ch, admin, karim, 1)
        assert [m["body"] for m in box] == ["Camille has news about your watch."], box
        records = ch.runtime.service.inbox  # type: ignore[union-attr]
        async with records.engine.connect() as conn:
            from sqlalchemy import text

            rows = (await conn.execute(text("SELECT purpose, status FROM wa_outbound"))).all()
        assert ("new_collection", "refused") in [tuple(r) for r in rows]
        assert ("advisor_followup", "refused") in [tuple(r) for r in rows]


async def test_consent_is_never_inferred_from_the_assistants_words(settings: Settings) -> None:
    """utter_opt_in grants nothing; utter_opt_out withdraws only in the client's own turn
    (not in a turn someone started with trigger_intent)."""
    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": STRANGER, "text": "Hi", "name": "Jo"})
        await ch.settle()
        runtime = ch.runtime
        from salon.identity import ClientRef

        ref = ClientRef(runtime.config.phone_number_id, wa_id=STRANGER)
        await runtime.send(ref, {"text": "With pleasure.", "utter_action": "utter_opt_in"}, client_turn=True)
        await runtime.send(ref, {"text": "Understood.", "utter_action": "utter_opt_out"}, client_turn=False)
        async with runtime.service.inbox.engine.connect() as conn:  # type: ignore[union-attr]
            from sqlalchemy import select

            assert (await conn.execute(select(ledger_table))).all() == []
        await runtime.send(ref, {"text": "Understood.", "utter_action": "utter_opt_out"}, client_turn=True)
        async with runtime.service.inbox.engine.connect() as conn:  # type: ignore[union-attr]
            rows = (await conn.execute(select(ledger_table.c.category, ledger_table.c.granted))).all()
        assert sorted(tuple(r) for r in rows) == [("marketing", False), ("utility", False)]
