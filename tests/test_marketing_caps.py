"""Marketing caps: after a 131049 (Meta's per-user cap, synchronous or in a ``failed``
status) no marketing template to that client for 24 hours, and the maison's own gap
between two marketing templates to one client. Held requests are deferred, not failed;
marketing that goes free-form in a window she opened is never held and never counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from salon.clock import ManualClock, from_us
from salon.config import Settings
from salon.guard.sent import SentLog, outbound_table
from salon.outbound.caps import (
    META_HOLD,
    CapHistory,
    CapHold,
    CapsConfig,
    MarketingCaps,
    cap_hold,
    client_ids,
)
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import (
    FAILED,
    QUEUED,
    SENT_FREE_FORM,
    SENT_TEMPLATE,
    OutboundQueue,
    parse_request,
)
from salon.outbound.worker import OutboundWorker, WorkerConfig
from tests.outbound_support import PNID, GraphStandIn, Stack, drain, outbound_stack, worker_through

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE, ANTOINE = "33600000001", "33600000002"  # both opted in to marketing
PACING = PacingConfig(business_rate=1000, business_burst=1000, client_burst=10, quiet=None)


def marketing(now: datetime, key: str, who: str = ANTOINE, **body: Any) -> Any:
    body.setdefault("purpose", "event_invitation")
    body.setdefault("content", {"text": "You are invited to our winter salon."})
    body.setdefault("params", {"event_name": "Winter salon", "date": "12 December"})
    return parse_request({"client": {"wa_id": who}, "idempotency_key": key, **body},
                         requested_by="system:test", now=now, default_phone_number_id=PNID)


def utility(now: datetime, key: str, who: str = ANTOINE) -> Any:
    return parse_request({"client": {"wa_id": who}, "purpose": "order_update", "idempotency_key": key,
                          "content": {"text": "Your order has left the atelier."},
                          "params": {"order_ref": "SOL-104233"}},
                         requested_by="system:test", now=now, default_phone_number_id=PNID)


async def enqueue(stack: Stack, spec: Any, now: datetime) -> str:
    stored, _ = await stack.queue.enqueue(spec, now)
    return stored.id


# --------------------------------------------------------------------------- the rule


def test_the_later_of_the_two_holds_wins_and_a_zero_gap_is_no_gap() -> None:
    day = CapsConfig()
    refused, sent = T0 - timedelta(hours=20), T0 - timedelta(hours=2)
    assert cap_hold(CapHistory(), T0, day) is None
    assert cap_hold(CapHistory(last_refusal=refused), T0, day) == CapHold(refused + META_HOLD, "131049", refused)
    assert cap_hold(CapHistory(last_template=sent), T0, day) == CapHold(sent + timedelta(hours=24),
                                                                         "maison_gap", sent)
    both = cap_hold(CapHistory(last_refusal=refused, last_template=sent), T0, day)
    assert both is not None and both.rule == "maison_gap" and both.reason == "marketing_cap:maison_gap"
    assert cap_hold(CapHistory(last_refusal=T0 - META_HOLD), T0, day) is None  # exactly over
    short = CapsConfig(gap=timedelta(hours=1))
    assert cap_hold(CapHistory(last_refusal=refused, last_template=sent), T0, short) == CapHold(
        refused + META_HOLD, "131049", refused)
    assert cap_hold(CapHistory(last_template=sent), T0, CapsConfig(gap=timedelta(0))) is None
    with pytest.raises(ValueError):
        CapsConfig(gap=timedelta(hours=-1))


def test_the_maison_gap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALON_MARKETING_GAP_HOURS", raising=False)
    assert CapsConfig.from_env().gap == timedelta(hours=24)
    monkeypatch.setenv("SALON_MARKETING_GAP_HOURS", "72")
    assert CapsConfig.from_env().gap == timedelta(hours=72)
    monkeypatch.setenv("SALON_MARKETING_GAP_HOURS", "0")
    assert CapsConfig.from_env().gap == timedelta(0)
    for bad in ("a day", "-3"):
        monkeypatch.setenv("SALON_MARKETING_GAP_HOURS", bad)
        with pytest.raises(ValueError, match="SALON_MARKETING_GAP_HOURS"):
            CapsConfig.from_env()


async def test_what_counts_is_read_under_every_id_of_the_client(database_url: str) -> None:
    queue = OutboundQueue(database_url)  # creates wa_outbound with its tables
    await queue.initialize()
    try:
        records = SentLog(engine=queue.engine)
        caps = MarketingCaps(queue.engine, CapsConfig())
        margaux = client_ids(PNID, ("33600000004", "FR.9102837465019283746"))

        async def record(recipient: str, kind: str, purpose: str, status: str, at: datetime,
                         error: dict[str, Any] | None = None) -> None:
            await records.record_outbound(phone_number_id=PNID, recipient=recipient, kind=kind, status=status,
                                          at=at, wamid=f"wamid.{recipient}.{kind}.{status}.{at.timestamp()}",
                                          purpose=purpose, error=error)

        # None of these counts: free-form marketing, a marketing template that failed for
        # another reason, a utility template, another client's, one too old.
        await record("33600000004", "free_form", "new_collection", "read", T0 - timedelta(hours=1))
        await record("33600000004", "template", "event_invitation", "failed", T0 - timedelta(hours=2),
                     {"code": 131026})
        await record("33600000004", "template", "order_update", "delivered", T0 - timedelta(hours=1))
        await record("33600000002", "template", "event_invitation", "delivered", T0 - timedelta(hours=1))
        await record("FR.9102837465019283746", "nudge", "reengage_marketing", "read", T0 - timedelta(hours=30))
        assert await caps.hold(margaux, T0) is None
        # A nudge of marketing content is a marketing template; so is one a status
        # webhook brought back to "held_for_quality_assessment"…
        await record("FR.9102837465019283746", "nudge", "reengage_marketing", "delivered", T0 - timedelta(hours=5))
        hold = await caps.hold(margaux, T0)
        assert hold is not None and hold.rule == "maison_gap" and hold.until == T0 + timedelta(hours=19)
        # … and a 131049 under her phone number holds longer.
        await record("33600000004", "template", "new_collection", "failed", T0 - timedelta(hours=1),
                     {"code": 131049})
        hold = await caps.hold(margaux, T0)
        assert hold is not None and hold.rule == "131049" and hold.until == T0 + timedelta(hours=23)
        assert await caps.hold(client_ids(PNID, ("33600000004",)), T0 + timedelta(hours=23)) is None
        # Several clients in one query, in the order asked.
        antoine = client_ids(PNID, ("33600000002",))
        histories = await caps.histories([antoine, margaux, client_ids(PNID, ("33600000099",))], T0)
        assert histories[0].last_template == T0 - timedelta(hours=1) and histories[0].last_refusal is None
        assert histories[1].last_refusal == T0 - timedelta(hours=1) and histories[2] == CapHistory()
        # What this process sent and has not written yet counts too.
        stranger = client_ids(PNID, ("447700900123",))
        caps.note_refused(stranger, T0 - timedelta(hours=2))
        assert (await caps.hold(stranger, T0)) == CapHold(T0 + timedelta(hours=22), "131049",
                                                          T0 - timedelta(hours=2))
    finally:
        await queue.close()


# --------------------------------------------------------------------------- the worker


async def test_the_maison_gap_defers_a_second_template_and_free_form_in_her_window_is_never_held(
    settings: Settings,
) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock, pacing=PACING) as stack:
        first = await enqueue(stack, marketing(clock.now(), "m1"), clock.now())
        await drain(stack)
        assert (await stack.queue.get(first)).state == SENT_TEMPLATE  # type: ignore[union-attr]

        clock.advance(timedelta(hours=1))
        second = await enqueue(stack, marketing(clock.now(), "m2", purpose="new_collection",
                                                params={"collection_name": "Hiver"}), clock.now())
        update = await enqueue(stack, utility(clock.now(), "u1"), clock.now())
        await drain(stack)
        held = await stack.queue.get(second)
        assert held is not None and held.state == QUEUED and held.reason == "marketing_cap:maison_gap"
        assert held.due_at == T0 + timedelta(hours=24) and held.attempts == 0
        assert (await stack.queue.get(update)).state == SENT_TEMPLATE  # type: ignore[union-attr]
        assert [e["state"] for e in await stack.queue.events(second)] == ["queued", "deferred"]

        # Claire writes: marketing goes free-form in her window, twice, never held …
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        inside = [await enqueue(stack, marketing(clock.now(), "c1", CLAIRE), clock.now())]
        await drain(stack)
        clock.advance(timedelta(hours=2))
        inside.append(await enqueue(stack, marketing(clock.now(), "c2", CLAIRE), clock.now()))
        await drain(stack)
        assert [(await stack.queue.get(i)).state for i in inside] == [SENT_FREE_FORM] * 2  # type: ignore[union-attr]
        # … and counts for nothing: once her window has closed, a template goes at once.
        clock.set(T0 + timedelta(hours=27))
        after = await enqueue(stack, marketing(clock.now(), "c3", CLAIRE), clock.now())
        await drain(stack)  # Antoine's second is due too (T0 + 24 h)
        assert (await stack.queue.get(after)).state == SENT_TEMPLATE  # type: ignore[union-attr]
        assert (await stack.queue.get(second)).state == SENT_TEMPLATE  # type: ignore[union-attr]
        assert [m["type"] for m in await stack.delivered(CLAIRE)] == ["text", "text", "template"]
        box = await stack.outbox(ANTOINE)
        assert [m["template"] for m in box] == ["event_invitation", "order_shipped", "new_collection_preview"]
        assert all(m["error_code"] is None for m in await stack.outbox())  # Meta never had to refuse


async def test_after_an_asynchronous_131049_her_marketing_waits_24_hours(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock, pacing=PACING) as stack:
        # Without the maison's gap, the second template reaches Meta, whose own cap
        # fails it after accepting it.
        worker = OutboundWorker(stack.queue, stack.parts.sender, clock, pacing=PACING,
                                config=WorkerConfig(lease=timedelta(seconds=5)),
                                caps=MarketingCaps(stack.queue.engine, CapsConfig(gap=timedelta(0))))
        await enqueue(stack, marketing(clock.now(), "m1"), clock.now())
        await drain(stack, worker)
        clock.advance(timedelta(hours=1))
        await enqueue(stack, marketing(clock.now(), "m2"), clock.now())
        await drain(stack, worker)
        box = await stack.outbox(ANTOINE)
        assert [m["error_code"] for m in box] == [None, 131049]
        async with stack.queue.engine.connect() as conn:
            failed_us = (await conn.execute(select(outbound_table.c.status_us).where(
                outbound_table.c.wamid == box[1]["wamid"], outbound_table.c.error_code == 131049))).scalar_one()
        failed_at = from_us(failed_us)
        assert failed_at is not None

        clock.advance(timedelta(hours=1))
        third = await enqueue(stack, marketing(clock.now(), "m3"), clock.now())
        update = await enqueue(stack, utility(clock.now(), "u1"), clock.now())
        await drain(stack, worker)
        held = await stack.queue.get(third)
        assert held is not None and held.state == QUEUED and held.reason == "marketing_cap:131049"
        assert held.due_at == failed_at + timedelta(hours=24)
        assert (await stack.queue.get(update)).state == SENT_TEMPLATE  # type: ignore[union-attr]
        assert len(await stack.outbox(ANTOINE)) == 3  # nothing more went to Meta's cap

        clock.set(failed_at + timedelta(hours=24))
        await drain(stack, worker)
        done = await stack.queue.get(third)
        assert done is not None and done.state == SENT_TEMPLATE
        assert (await stack.outbox(ANTOINE))[-1]["error_code"] is None


async def test_a_synchronous_131049_retries_later_and_holds_her_other_marketing(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock, pacing=PACING) as stack, GraphStandIn(stack.emulator.base_url) as graph:
        async with worker_through(settings, stack, graph.url, clock) as through:
            refused = await enqueue(stack, marketing(clock.now(), "m1"), clock.now())
            graph.refuse_next(131049, "template", "Message not delivered to maintain healthy ecosystem engagement")
            assert await through.run_once() == 1
        first = await stack.queue.get(refused)
        assert first is not None and first.state == QUEUED and first.error_code == 131049
        assert first.due_at == T0 + timedelta(hours=24)  # its own retry, by the error's policy
        # Another worker (another pool) reads the 131049 from the record.
        clock.advance(timedelta(minutes=30))
        other = await enqueue(stack, marketing(clock.now(), "m2", purpose="new_collection",
                                               params={"collection_name": "Hiver"}), clock.now())
        await drain(stack)
        held = await stack.queue.get(other)
        assert held is not None and held.state == QUEUED and held.reason == "marketing_cap:131049"
        assert held.due_at == T0 + timedelta(hours=24) and held.state != FAILED
        assert await stack.outbox(ANTOINE) == []  # the refusal never reached Meta's outbox

        # A day later the first goes; the maison's gap then holds the second a day more.
        clock.set(T0 + timedelta(hours=24))
        await drain(stack)
        assert (await stack.queue.get(refused)).state == SENT_TEMPLATE  # type: ignore[union-attr]
        later = await stack.queue.get(other)
        assert later is not None and later.state == QUEUED and later.reason == "marketing_cap:maison_gap"
        assert later.due_at == T0 + timedelta(hours=48)
