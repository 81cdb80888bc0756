"""The outbound engine against the Cloud API emulator, with time travel: decided at
dispatch (not at enqueue), park and nudge then delivery after the reply, idempotency,
backoff on rate limits, async 131047, quiet hours, Rasa's trigger_intent."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from salon.clock import ManualClock
from salon.config import Settings
from salon.outbound.pacing import PacingConfig, QuietHours
from salon.outbound.queue import (
    NUDGED,
    QUEUED,
    SENT_AFTER_REPLY,
    SENT_FREE_FORM,
    SENT_TEMPLATE,
    TRIGGERED,
    origin_of,
    parse_request,
)
from salon.outbound.worker import OutboundWorker, RasaTrigger
from tests.outbound_support import PNID, Stack, outbound_stack
from tests.whatsapp_support import free_port

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"  # in the maison's book: French, utility opt-in, Europe/Paris


def request(now: datetime, **body: Any) -> Any:
    body.setdefault("client", {"wa_id": CLAIRE})
    body.setdefault("purpose", "order_update")
    return parse_request(body, requested_by="system:test", now=now, default_phone_number_id=PNID)


async def drain(stack: Stack, rounds: int = 20) -> None:
    """Run the worker until nothing is due, and let statuses come back."""
    for _ in range(rounds):
        if await stack.worker.run_once() == 0:
            break
    await stack.idle()
    await stack.channel.settle()


async def test_accepted_inside_the_window_but_dispatched_after_it_is_a_template(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        clock.advance(timedelta(hours=23))
        # Accepted with the window open (one hour left) …
        spec = request(clock.now(), content={"text": "Your coat has left the atelier."},
                       params={"order_ref": "SOL-104233"}, idempotency_key="ship-1")
        stored, created = await stack.queue.enqueue(spec, clock.now())
        assert created and stored.state == QUEUED
        # … but the queue was slow: the window closed before the worker got to it.
        clock.advance(timedelta(hours=2))
        await drain(stack)
        [sent] = await stack.delivered(CLAIRE)
        assert sent["type"] == "template" and sent["template"] == "order_shipped"
        assert "SOL-104233" in sent["body"] and sent["status"] == "read"
        done = await stack.queue.get(stored.id)
        assert done is not None and done.state == SENT_TEMPLATE and done.template == "order_shipped"
        assert done.wamid == sent["wamid"] and done.delivery == "read"

        # Inside the window with margin the same request goes free-form.
        await stack.say(**{"from": CLAIRE, "text": "Merci", "name": "Claire Laurent"})
        spec = request(clock.now(), content={"text": "It will reach you on Friday."},
                       params={"order_ref": "SOL-104233"}, idempotency_key="ship-2")
        second, _ = await stack.queue.enqueue(spec, clock.now())
        await drain(stack)
        box = await stack.delivered(CLAIRE)
        assert [m["type"] for m in box] == ["template", "text"]
        assert box[1]["body"] == "It will reach you on Friday."
        assert (await stack.queue.get(second.id)).state == SENT_FREE_FORM  # type: ignore[union-attr]
        metrics = await stack.queue.metrics()
        assert metrics["states"][SENT_TEMPLATE] == 1 and metrics["states"][SENT_FREE_FORM] == 1
        assert metrics["rates"]["fallback_rate"] == 0.5 and metrics["rates"]["delivery_rate"] == 1.0


async def test_parked_update_goes_out_right_after_the_reply_to_the_nudge(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        spec = request(clock.now(), content={"text": "Your alteration is ready; shall we deliver it?"},
                       idempotency_key="alteration-1")  # no order_ref: no template can carry it
        stored, _ = await stack.queue.enqueue(spec, clock.now())
        other, _ = await stack.queue.enqueue(request(clock.now(), content={"text": "We kept the scarf you liked."},
                                                     idempotency_key="scarf-1"), clock.now())
        clock.advance(timedelta(hours=30))
        await drain(stack)
        [nudge] = await stack.delivered(CLAIRE)  # one nudge for both
        assert nudge["type"] == "template" and nudge["template"] == "advisor_update_nudge"
        first = await stack.queue.get(stored.id)
        assert first is not None and first.state == NUDGED and first.nudge_wamid == nudge["wamid"]
        assert (await stack.queue.get(other.id)).state == "parked"  # type: ignore[union-attr]

        await stack.say(**{"from": CLAIRE, "reply_to": nudge["wamid"], "button": "0"})
        await stack.idle()
        await stack.channel.settle()
        box = await stack.delivered(CLAIRE)
        # Both waited for her answer: they leave together, as one message (merging is on).
        assert [m["body"] for m in box[1:]] == [
            "Your alteration is ready; shall we deliver it?\n\nWe kept the scarf you liked."]
        assert all(m["type"] == "text" for m in box[1:])
        for item in (stored, other):
            now = await stack.queue.get(item.id)
            assert now is not None and now.state == SENT_AFTER_REPLY and now.wamid == box[1]["wamid"]
        history = [e["state"] for e in await stack.queue.events(stored.id)]
        assert history == ["queued", NUDGED, SENT_AFTER_REPLY]
        metrics = await stack.queue.metrics()
        assert metrics["rates"]["park_rate"] == 1.0


async def test_duplicate_idempotency_keys_send_once(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        spec = request(clock.now(), content={"text": "Your piece is ready."}, idempotency_key="ready-42")
        results = await asyncio.gather(*(stack.queue.enqueue(spec, clock.now()) for _ in range(5)))
        assert sum(1 for _, new in results if new) == 1
        assert len({r.id for r, _ in results}) == 1
        await drain(stack)
        again, new = await stack.queue.enqueue(spec, clock.now())
        assert not new and again.state == SENT_FREE_FORM
        await drain(stack)
        assert len(await stack.delivered(CLAIRE)) == 1


async def test_pair_rate_limit_backs_off_by_the_error_policy(settings: Settings) -> None:
    clock = ManualClock(T0)
    # Our own client bucket is generous here, so Meta's pair rate (one burst, then one
    # message per 6 s) is what stops the second message.
    pacing = PacingConfig(business_rate=1000, business_burst=1000, client_burst=10, quiet=None)
    async with outbound_stack(settings, clock, pacing=pacing, pair_rate_burst=1) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        ids = []
        for n in range(2):
            stored, _ = await stack.queue.enqueue(
                request(clock.now(), content={"text": f"Update {n}"}, idempotency_key=f"u{n}"), clock.now())
            ids.append(stored.id)
        await stack.worker.run_once()
        first, second = [await stack.queue.get(i) for i in ids]
        assert first is not None and first.state == SENT_FREE_FORM
        assert second is not None and second.state == QUEUED and second.error_code == 131056
        assert second.due_at - clock.now() >= timedelta(seconds=1)  # PAIR_RATE_POLICY, attempt 1
        assert await stack.worker.run_once() == 0  # not due yet
        clock.advance(timedelta(seconds=7))
        await drain(stack)
        second = await stack.queue.get(ids[1])
        assert second is not None and second.state == SENT_FREE_FORM and second.attempts == 2
        assert [m["body"] for m in await stack.delivered(CLAIRE)] == ["Update 0", "Update 1"]
        assert "retry" in [e["state"] for e in await stack.queue.events(ids[1])]


async def test_throughput_limit_backs_off_and_nothing_is_lost(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock, throughput_per_second=2.0) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        others = ["33600000002", "33600000003", "33600000004", "33600000005"]
        for n, who in enumerate(others):
            await stack.say(**{"from": who, "text": "Hello", "name": f"Client {n}"})
        ids = []
        for n, who in enumerate([CLAIRE, *others]):
            stored, _ = await stack.queue.enqueue(
                request(clock.now(), client={"wa_id": who}, content={"text": f"News {n}"},
                        idempotency_key=f"t{n}"), clock.now())
            ids.append(stored.id)
        await stack.worker.run_once()
        states = [await stack.queue.get(i) for i in ids]
        waiting = [s for s in states if s is not None and s.state == QUEUED]
        assert waiting and all(s.error_code == 130429 and s.due_at > clock.now() for s in waiting)
        for _ in range(10):
            clock.advance(timedelta(minutes=5))
            await drain(stack)
        final = [await stack.queue.get(i) for i in ids]
        refused = {s.client.wa_id for s in final if s is not None and s.state == "refused"}
        sent = [s for s in final if s is not None and s.state == SENT_FREE_FORM]
        assert len(sent) + len(refused) == len(ids)  # nobody lost: sent, or refused for consent
        delivered = await stack.delivered()
        assert len([m for m in delivered if m["type"] == "text"]) == len(sent)


async def test_async_131047_reroutes_the_request_and_counts_it(settings: Settings) -> None:
    # Meta's clock runs ahead of ours: we believe the window is open, Meta does not.
    salon_clock, meta_clock = ManualClock(T0), ManualClock(T0)
    async with outbound_stack(settings, meta_clock, salon_clock=salon_clock) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        meta_clock.advance(timedelta(hours=25))
        salon_clock.advance(timedelta(hours=1))
        stored, _ = await stack.queue.enqueue(
            request(salon_clock.now(), content={"text": "Your piece is ready."}, idempotency_key="r1"),
            salon_clock.now())
        await drain(stack)
        for _ in range(50):
            now = await stack.queue.get(stored.id)
            if now is not None and now.hit_131047:
                break
            await asyncio.sleep(0.05)
        box = await stack.outbox(CLAIRE)
        assert box[0]["type"] == "text" and box[0]["error_code"] == 131047
        assert box[1]["type"] == "template" and box[1]["template"] == "advisor_update_nudge"
        now = await stack.queue.get(stored.id)
        assert now is not None and now.hit_131047 and now.state == NUDGED
        assert (await stack.queue.metrics())["rates"]["rate_131047"] == 1.0


async def test_quiet_hours_wait_for_the_clients_morning(settings: Settings) -> None:
    late = datetime(2026, 11, 25, 22, 30, tzinfo=timezone.utc)  # 23:30 in Paris
    clock = ManualClock(late - timedelta(hours=2))
    pacing = PacingConfig(business_rate=1000, business_burst=1000, quiet=QuietHours.parse("21:00-09:00"))
    async with outbound_stack(settings, clock, pacing=pacing) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        clock.set(late)
        stored, _ = await stack.queue.enqueue(
            request(clock.now(), purpose="advisor_followup", content={"text": "The bag you liked is here."},
                    idempotency_key="quiet-1"), clock.now())
        urgent, _ = await stack.queue.enqueue(
            request(clock.now(), content={"text": "Your parcel arrives tomorrow."}, idempotency_key="loud-1"),
            clock.now())
        await drain(stack)
        waiting = await stack.queue.get(stored.id)
        assert waiting is not None and waiting.state == QUEUED and waiting.reason == "quiet_hours"
        assert waiting.due_at == datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)  # 09:00 Paris
        assert waiting.attempts == 0
        assert (await stack.queue.get(urgent.id)).state == SENT_FREE_FORM  # type: ignore[union-attr]
        clock.set(datetime(2026, 11, 26, 8, 1, tzinfo=timezone.utc))
        await drain(stack)
        done = await stack.queue.get(stored.id)
        assert done is not None and done.state == SENT_FREE_FORM  # window still open at 09:01


async def test_follow_up_from_a_conversation_asks_rasa_for_the_turn(settings: Settings) -> None:
    calls: list[dict[str, Any]] = []

    async def trigger(req: web.Request) -> web.Response:
        calls.append({"path": req.path, "query": dict(req.query), "body": await req.json()})
        return web.json_response({"tracker": {}, "messages": []})

    app = web.Application()
    app.router.add_post("/conversations/{cid}/trigger_intent", trigger)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    clock = ManualClock(T0)
    try:
        async with outbound_stack(settings, clock) as stack:
            worker = OutboundWorker(stack.queue, stack.parts.sender, clock, pacing=stack.worker.pacing,
                                    rasa=RasaTrigger(f"http://127.0.0.1:{port}", "rasa-secret"))
            stored, _ = await stack.queue.enqueue(
                request(clock.now(), purpose="advisor_followup",
                        trigger_intent={"name": "advisor_followup", "entities": {"product": "Aurore tote"}},
                        not_before=(T0 + timedelta(days=3)).isoformat(), idempotency_key="follow-1"),
                clock.now())
            assert await worker.run_once() == 0  # durable, and not before its time
            clock.advance(timedelta(days=3))
            assert await worker.run_once() == 1
            await worker.rasa.close()  # type: ignore[union-attr]
            done = await stack.queue.get(stored.id)
            assert done is not None and done.state == TRIGGERED
    finally:
        await runner.cleanup()
    # The purpose and origin go along; the secret never does (a signed token in a header).
    assert calls == [{"path": f"/conversations/{CLAIRE}/trigger_intent",
                      "query": {"output_channel": "whatsapp", "purpose": "advisor_followup",
                                "origin": origin_of(stored.id, 1)},
                      "body": {"name": "advisor_followup", "entities": {"product": "Aurore tote"}}}]
