"""The output side against the local Cloud API emulator: the send-time guard, templates
after the window, park and nudge, async 131047 re-routing, statuses, error mapping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from sqlalchemy import select

from connectors.whatsapp import WhatsAppOutput
from salon.clock import Clock, ManualClock, SystemClock
from salon.config import Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.guard.sent import outbound_table
from salon.identity import ClientRef
from salon.whatsapp.errors import (
    AuthError,
    TemplatePausedError,
    ThroughputLimitError,
    WindowClosedError,
)
from salon.whatsapp.graph import GraphClient, GraphConfig
from tests.whatsapp_support import APP_SECRET, Channel, running_channel

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"  # in the maison's book: French, utility opt-in
STRANGER = "33699999999"  # not in the book: no opt-in


Reply = Callable[[UserMessage], Awaitable[None]]


@asynccontextmanager
async def wired(
    settings: Settings,
    reply: Reply | None = None,
    *,
    salon_clock: Clock | None = None,
    emulator_clock: Clock | None = None,
    agent: Any = None,
    **emulator: Any,
) -> AsyncIterator[tuple[Channel, Any, aiohttp.ClientSession]]:
    """The channel and the emulator wired to each other, sharing one clock by default
    (``agent``: the conversation stores the advisor API works on)."""
    clock = emulator_clock or ManualClock(T0)
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03, **emulator)
    async with running_emulator(config, clock=clock) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, clock=salon_clock or clock,
                                   reply=reply, access_token=config.access_token, agent=agent) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200, await r.text()
                yield ch, emu, admin


async def say(admin: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
    """A client writes; returns once the emulator has delivered the webhook."""
    async with admin.post("/_emulator/inbound", json=body) as r:
        assert r.status == 200, await r.text()
        sent = dict(await r.json())
    async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
        assert (await r.json())["idle"]
    return sent


async def outbox(admin: aiohttp.ClientSession, to: str) -> list[dict[str, Any]]:
    async with admin.get("/_emulator/outbox", params={"to": to}) as r:
        return list(await r.json())


async def settle(ch: Channel, admin: aiohttp.ClientSession, to: str, count: int) -> list[dict[str, Any]]:
    """Wait until the client's outbox holds ``count`` messages in a final state."""
    box: list[dict[str, Any]] = []
    for _ in range(200):
        await ch.settle()
        box = await outbox(admin, to)
        if len(box) >= count and all(m["status"] in ("read", "failed", "rejected") for m in box):
            await asyncio.sleep(0.1)
            await ch.settle()
            return await outbox(admin, to)
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox for {to}: {box}")


def answer(text: str, **extra: Any) -> Reply:
    async def reply(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": text, **extra})

    return reply


async def test_reply_inside_the_window_is_free_form_and_statuses_flow_back(settings: Settings) -> None:
    async with wired(settings, answer("Good day, Claire. How may I help?", utter_action="utter_greet")) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        [sent] = await settle(ch, admin, CLAIRE, 1)
        assert sent["type"] == "text" and sent["template"] is None
        assert sent["body"] == "Good day, Claire. How may I help?"
        assert sent["status"] == "read" and sent["error_code"] is None
        record = await ch.runtime.service.sent.outbound_by_wamid(sent["wamid"])  # type: ignore[union-attr]
        assert record is not None and record.status == "read" and record.utter_action == "utter_greet"
        assert [m.text for m in ch.received] == ["Hello"]


async def test_after_the_window_a_reply_is_parked_and_one_nudge_knocks(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with wired(settings, answer("Welcome back."), emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        await settle(ch, admin, CLAIRE, 1)
        clock.advance(timedelta(hours=25))
        output = WhatsAppOutput(ch.runtime)
        await output.send_response(CLAIRE, {"text": "Your alteration is ready for fitting.",
                                            "utter_action": "utter_alteration_ready"})
        await output.send_response(CLAIRE, {"text": "We also kept the scarf you liked."})
        box = await settle(ch, admin, CLAIRE, 2)
        assert [m["type"] for m in box] == ["text", "template"]  # one nudge for two messages
        nudge = box[1]
        assert nudge["template"] == "advisor_update_nudge" and "Claire" in nudge["body"]
        assert nudge["status"] == "read"
        state = await ch.runtime.service.sessions.get(ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE))  # type: ignore[union-attr]
        assert state is not None and state.parked_count == 2 and state.nudge_pending

        # The tap on the nudge brings both parked messages, in order, as one message (they
        # read as one), and no new turn.
        turns = len(ch.received)
        await say(admin, **{"from": CLAIRE, "reply_to": nudge["wamid"], "button": "0"})
        box = await settle(ch, admin, CLAIRE, 3)
        assert [m["body"] for m in box[2:]] == [
            "Your alteration is ready for fitting.\n\nWe also kept the scarf you liked."]
        assert all(m["template"] is None and m["error_code"] is None for m in box[2:])
        assert len(ch.received) == turns
        record = await ch.runtime.service.sent.outbound_by_wamid(box[2]["wamid"])  # type: ignore[union-attr]
        assert record is not None and len(record.payload["parked_ids"]) == 2


async def test_a_purpose_with_an_approved_template_becomes_that_template(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Where is my parcel?", "name": "Claire Laurent"})
        await ch.settle()
        clock.advance(timedelta(hours=30))
        await WhatsAppOutput(ch.runtime).send_response(CLAIRE, {
            "text": "Your order SOL-482913 has left the atelier.",
            "metadata": {"purpose": "order_shipped", "wa_params": {"order_ref": "SOL-482913"}},
        })
        [sent] = await settle(ch, admin, CLAIRE, 1)
        assert sent["type"] == "template" and sent["template"] == "order_shipped"
        assert "Bonjour Claire, votre commande SOL-482913 a quitté notre atelier" in sent["body"]  # her language
        assert sent["status"] == "read"


async def test_no_opt_in_no_nudge_the_content_waits(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": STRANGER, "text": "Hi", "name": "Jo"})
        await ch.settle()
        clock.advance(timedelta(hours=26))
        # The answer of her own turn, late: a reply, and no template may carry it.
        reply = WhatsAppOutput(ch.runtime, ClientRef(ch.runtime.config.phone_number_id, wa_id=STRANGER), STRANGER)
        await reply.send_response(STRANGER, {"text": "Following up."})
        await ch.settle()
        assert await outbox(admin, STRANGER) == []
        state = await ch.runtime.service.sessions.get(ClientRef(ch.runtime.config.phone_number_id, wa_id=STRANGER))  # type: ignore[union-attr]
        assert state is not None and state.parked_count == 1 and not state.nudge_pending
        # When the client writes again, the parked message goes out first.
        await say(admin, **{"from": STRANGER, "text": "Hello again", "name": "Jo"})
        [delivered] = await settle(ch, admin, STRANGER, 1)
        assert delivered["body"] == "Following up." and delivered["type"] == "text"


async def test_async_131047_marks_the_window_closed_and_reroutes(settings: Settings) -> None:
    # Meta's clock and ours disagree: we believe the window is open, Meta does not.
    salon_clock, meta_clock = ManualClock(T0), ManualClock(T0)
    async with wired(settings, salon_clock=salon_clock, emulator_clock=meta_clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        await ch.settle()
        meta_clock.advance(timedelta(hours=25))
        salon_clock.advance(timedelta(hours=1))
        await WhatsAppOutput(ch.runtime).send_response(CLAIRE, {"text": "Your piece is ready."})
        box = await settle(ch, admin, CLAIRE, 2)
        assert box[0]["type"] == "text" and box[0]["status"] == "failed" and box[0]["error_code"] == 131047
        assert box[1]["type"] == "template" and box[1]["template"] == "advisor_update_nudge"
        state = await ch.runtime.service.sessions.get(ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE))  # type: ignore[union-attr]
        assert state is not None and state.window_closed_code == 131047 and state.parked_count == 1
        # The failure is recorded once even if Meta repeats the webhook.
        record = await ch.runtime.service.sent.outbound_by_wamid(box[0]["wamid"])  # type: ignore[union-attr]
        assert record is not None and record.status == "failed" and record.error_code == 131047


async def test_marketing_stop_is_honoured(settings: Settings) -> None:
    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        await ch.settle()
        async with admin.post("/_emulator/preferences", json={"from": CLAIRE, "value": "stop"}) as r:
            assert r.status == 200, await r.text()
        for _ in range(100):
            if await ch.runtime.service.consents.marketing_stopped(ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE)):  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the user_preferences webhook was not recorded")
        await WhatsAppOutput(ch.runtime).send_response(CLAIRE, {
            "text": "Our winter collection is here.", "metadata": {"purpose": "new_collection"}})
        await ch.settle()
        assert await outbox(admin, CLAIRE) == []


async def test_graph_errors_are_mapped_and_retried_by_their_policy(settings: Settings) -> None:
    # The throughput bucket refills with the emulator's clock: let it run.
    async with wired(settings, emulator_clock=SystemClock(), throughput_per_second=1.0) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        await ch.settle()
        base = emu.base_url
        wrong = GraphClient(GraphConfig(access_token="wrong", phone_number_id=emu.config.phone_number_id,
                                        base_url=base))
        with pytest.raises(AuthError) as auth:
            await wrong.send({"to": CLAIRE, "type": "text", "text": {"body": "x"}})
        assert auth.value.code == 190 and auth.value.http_status == 401
        await wrong.close()

        waits: list[float] = []

        async def short_sleep(seconds: float) -> None:
            waits.append(seconds)
            await asyncio.sleep(min(seconds, 1.2))

        graph = GraphClient(GraphConfig(access_token=emu.config.access_token,
                                        phone_number_id=emu.config.phone_number_id, base_url=base),
                            sleep=short_sleep)
        results = [await graph.send({"to": CLAIRE, "type": "text", "text": {"body": f"n{i}"}}) for i in range(3)]
        assert all(r.wamid.startswith("wamid.") for r in results)
        assert waits, "130429 should have been retried after a wait"
        assert any(r.attempts > 1 for r in results)

        async with admin.post("/_emulator/templates/advisor_update_nudge/status", json={"status": "PAUSED"}) as r:
            assert r.status == 200
        with pytest.raises(TemplatePausedError) as paused:
            await graph.send({"to": CLAIRE, "type": "template", "template": {
                "name": "advisor_update_nudge", "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "parameter_name": "first_name", "text": "Claire"}]}]}})
        assert paused.value.code == 132015 and not paused.value.retryable
        await graph.close()
        assert ThroughputLimitError.retryable and not WindowClosedError.retryable


def test_360dialog_mode_uses_its_url_and_header() -> None:
    config = GraphConfig(access_token="d360-key", phone_number_id="", base_url="https://waba-v2.360dialog.io",
                         auth_mode="d360")
    assert config.messages_url == "https://waba-v2.360dialog.io/messages"
    assert config.headers["D360-API-KEY"] == "d360-key" and "Authorization" not in config.headers
    meta = GraphConfig(access_token="t", phone_number_id="123", api_version="v21.0")
    assert meta.messages_url == "https://graph.facebook.com/v21.0/123/messages"
    assert meta.headers["Authorization"] == "Bearer t"
    with pytest.raises(ValueError):
        GraphConfig(access_token="", phone_number_id="123")


async def test_a_raw_template_in_custom_content_is_refused(settings: Settings) -> None:
    """Review L4: a template written as raw custom content would skip the registry (its
    status, parameters and the client's consent for its category): it is refused, and
    the same template by name goes through the registry."""
    raw = {"type": "template", "template": {"name": "order_shipped", "language": {"code": "fr"},
                                            "components": []}}
    async def reply(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"custom": raw})

    async with wired(settings, reply) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        await ch.settle()
        assert await outbox(admin, CLAIRE) == []
        reply = WhatsAppOutput(ch.runtime, ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE), CLAIRE)
        await reply.send_response(CLAIRE, {"custom": raw})
        await ch.settle()
        assert await outbox(admin, CLAIRE) == []
        engine = ch.runtime.service.inbox.engine  # type: ignore[union-attr]
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbound_table.c.status, outbound_table.c.payload))).all()
        assert len(rows) == 2 and all(r.status == "refused" and r.payload["reason"] == "raw_template" for r in rows)
