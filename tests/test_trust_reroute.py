"""H1: an asynchronous 131047 (a ``failed`` status webhook) re-routes its message once,
however often and however concurrently Meta delivers that status, and however many
senders (processes) try to re-route it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp

from salon.clock import ManualClock
from salon.config import Settings
from salon.identity import ClientRef
from salon.webhook.runtime import open_sender
from salon.whatsapp.messages import OutgoingMessage
from tests.outbound_support import emulator_graph
from tests.test_whatsapp_sender import CLAIRE, T0, outbox, say, settle, wired
from tests.whatsapp_support import PNID, Channel


async def failed_status_webhook(admin: aiohttp.ClientSession, wamid: str) -> dict[str, Any]:
    """The exact webhook the emulator delivered for ``wamid``'s ``failed`` status."""
    async with admin.get("/_emulator/webhooks") as r:
        deliveries = await r.json()
    for delivery in deliveries:
        for entry in delivery["payload"].get("entry", []):
            for change in entry.get("changes", []):
                for status in change.get("value", {}).get("statuses", []):
                    if status.get("id") == wamid and status.get("status") == "failed":
                        return dict(delivery["payload"])
    raise AssertionError(f"no failed status webhook for {wamid}")


async def redeliver_five_times(ch: Channel, payload: dict[str, Any]) -> None:
    """Meta's at-least-once delivery: twice one after the other, then three at once."""
    for _ in range(2):
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
    replies = await asyncio.gather(*(ch.post(payload) for _ in range(3)))
    assert [status for status, _ in replies] == [200, 200, 200]
    await ch.settle()


async def closed_window_send(ch: Channel, admin: aiohttp.ClientSession, salon_clock: ManualClock,
                             meta_clock: ManualClock, out: OutgoingMessage) -> None:
    """Claire wrote; Meta's clock runs ahead, so our free-form send fails with an async
    131047 and is re-routed."""
    await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
    await ch.settle()
    meta_clock.advance(timedelta(hours=25))
    salon_clock.advance(timedelta(hours=1))
    assert ch.runtime.sender is not None
    outcome = await ch.runtime.sender.send(ClientRef(PNID, wa_id=CLAIRE), out)
    assert outcome.action == "free_form"


async def test_redelivered_131047_failure_sends_one_template(settings: Settings) -> None:
    salon_clock, meta_clock = ManualClock(T0), ManualClock(T0)
    async with wired(settings, salon_clock=salon_clock, emulator_clock=meta_clock) as (ch, emu, admin):
        out = OutgoingMessage({"type": "text", "text": {"body": "Your order SOL-482913 has left the atelier."}},
                              purpose="order_shipped", params={"order_ref": "SOL-482913"})
        await closed_window_send(ch, admin, salon_clock, meta_clock, out)
        box = await settle(ch, admin, CLAIRE, 2)
        assert [(m["type"], m["template"], m["error_code"]) for m in box] == [
            ("text", None, 131047), ("template", "order_shipped", None)]
        payload = await failed_status_webhook(admin, box[0]["wamid"])

        await redeliver_five_times(ch, payload)
        await asyncio.sleep(0.3)  # any late re-route would have reached the emulator by now
        await ch.settle()
        box = await outbox(admin, CLAIRE)
        templates = [m for m in box if m["type"] == "template"]
        assert len(templates) == 1, f"one paid template for one message, got {len(templates)}"
        assert len(box) == 2


async def test_redelivered_131047_failure_parks_one_copy(settings: Settings) -> None:
    salon_clock, meta_clock = ManualClock(T0), ManualClock(T0)
    async with wired(settings, salon_clock=salon_clock, emulator_clock=meta_clock) as (ch, emu, admin):
        out = OutgoingMessage({"type": "text", "text": {"body": "Your piece is ready."}})  # a reply
        await closed_window_send(ch, admin, salon_clock, meta_clock, out)
        box = await settle(ch, admin, CLAIRE, 2)
        assert [(m["type"], m["template"]) for m in box] == [("text", None), ("template", "advisor_update_nudge")]
        payload = await failed_status_webhook(admin, box[0]["wamid"])

        await redeliver_five_times(ch, payload)
        await asyncio.sleep(0.3)
        await ch.settle()
        assert ch.runtime.sessions is not None
        state = await ch.runtime.sessions.get(ClientRef(PNID, wa_id=CLAIRE))
        assert state is not None and state.parked_count == 1, "the content is parked once"
        assert len(await outbox(admin, CLAIRE)) == 2  # the failed text and one nudge

        # When Claire writes again she receives it once.
        meta_clock.advance(timedelta(minutes=1))
        salon_clock.set(meta_clock.now())
        await say(admin, **{"from": CLAIRE, "text": "Oui ?", "name": "Claire Laurent"})
        box = await settle(ch, admin, CLAIRE, 3)
        assert [m["body"] for m in box[2:]] == ["Your piece is ready."]


async def test_two_senders_rerouting_the_same_failure_send_once(settings: Settings) -> None:
    """Two processes (two guards on one database) re-route the same failed message at
    the same moment, twice each: the durable marker on its outbound record lets one."""
    clock = ManualClock(T0)
    async with wired(settings, salon_clock=clock, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        await ch.settle()
        clock.advance(timedelta(hours=2))
        ref = ClientRef(PNID, wa_id=CLAIRE)
        assert ch.runtime.service is not None and ch.runtime.sessions is not None
        # What an async 131047 leaves behind: the failed free-form record, the window closed.
        await ch.runtime.service.sent.record_outbound(
            phone_number_id=PNID, recipient=CLAIRE, kind="free_form", status="failed", at=clock.now(),
            wamid="wamid.TRUST-H1-FAILED", purpose="order_shipped",
            payload={"message": {"type": "text", "text": {"body": "Your order has left the atelier."}},
                     "params": {"order_ref": "SOL-482913"}},
            error={"code": 131047, "title": "Re-engagement message"})
        await ch.runtime.sessions.record_window_closed(ref, clock.now())
        record = await ch.runtime.service.sent.outbound_by_wamid("wamid.TRUST-H1-FAILED")
        assert record is not None

        other = await open_sender(settings, emulator_graph(emu), clock)
        try:
            assert ch.runtime.sender is not None
            outcomes = await asyncio.gather(*(sender.reroute(record, ref) for sender in
                                              (ch.runtime.sender, other.sender, ch.runtime.sender,
                                               other.sender)))
        finally:
            await other.close()
        box = await settle(ch, admin, CLAIRE, 1)
        assert [o.action for o in outcomes if o is not None] == ["template"]
        assert [(m["type"], m["template"]) for m in box] == [("template", "order_shipped")]
