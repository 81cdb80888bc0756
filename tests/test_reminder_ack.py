"""The 2 h appointment reminder is not sent to a client who already answered the 24 h
one ("Confirm", or a reply quoting it), against the emulator: the whole path from the
scan through the template's button to the worker's check at dispatch; and the question
itself on each SQL backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert

from salon.clock import ManualClock, to_us
from salon.config import Settings
from salon.identity import ClientRef
from salon.integrations.schema import appointments
from salon.outbound.queue import (
    CANCELLED,
    SENT_FREE_FORM,
    SENT_TEMPLATE,
    OutboundQueue,
    OutboundRequest,
    RequestSpec,
)
from salon.outbound.reminders import (
    AppointmentReminders,
    ReminderAcknowledgements,
    ReminderKey,
    awaits_acknowledgement,
    reminder_key,
)
from salon.webhook.inbox import Inbox, InboxItem
from tests.outbound_support import PNID, Stack, drain, outbound_stack

NOW = datetime(2026, 12, 10, 10, 0, tzinfo=timezone.utc)
STARTS = NOW + timedelta(hours=24)  # 11:00 in Paris the next day
CLAIRE = "33600000001"  # C-001: utility opt-in, French


async def book(stack: Stack, appointment_id: str = "APT-ACK-1") -> AppointmentReminders:
    async with stack.queue.engine.begin() as conn:
        await conn.execute(insert(appointments).values(
            id=appointment_id, boutique_id="paris", salon_number=3, starts_at=STARTS,
            ends_at=STARTS + timedelta(hours=1), service="fitting", client_id="C-001", status="booked",
            created_at=NOW - timedelta(days=3)))
    return AppointmentReminders(stack.queue, stack.queue.engine, PNID)


async def reminders_of(stack: Stack, appointment_id: str = "APT-ACK-1") -> dict[str, OutboundRequest]:
    return {key.label: r for r in await stack.queue.list()
            if (key := reminder_key(r)) is not None and key.appointment_id == appointment_id}


async def day_before(stack: Stack, clock: ManualClock) -> tuple[AppointmentReminders, dict[str, Any]]:
    """Book, scan and send the 24 h reminder: a template (Claire never wrote)."""
    scan = await book(stack)
    assert await scan.scan(clock.now()) == 1
    await drain(stack)
    [reminder] = await stack.delivered(CLAIRE)
    assert reminder["type"] == "template" and reminder["template"] == "appointment_reminder"
    assert (await reminders_of(stack))["24h"].state == SENT_TEMPLATE
    return scan, reminder


async def two_hours_before(stack: Stack, clock: ManualClock, scan: AppointmentReminders) -> OutboundRequest:
    clock.set(STARTS - timedelta(hours=2))
    assert await scan.scan(clock.now()) == 1
    await drain(stack)
    return (await reminders_of(stack))["2h"]


@pytest.mark.parametrize("answer", [
    {"button": "Confirmer"},  # the quick reply with payload APPOINTMENT_CONFIRM
    {"text": "Parfait, à demain !"},  # typed, quoting the reminder
])
async def test_an_answered_day_before_reminder_cancels_the_last_one(settings: Settings,
                                                                    answer: dict[str, Any]) -> None:
    clock = ManualClock(NOW)
    async with outbound_stack(settings, clock) as stack:
        scan, reminder = await day_before(stack, clock)
        clock.advance(timedelta(minutes=40))
        await stack.say(**{"from": CLAIRE, "reply_to": reminder["wamid"], **answer})
        last = await two_hours_before(stack, clock, scan)
        assert last.state == CANCELLED and last.reason == "acknowledged"
        assert len(await stack.delivered(CLAIRE)) == 1  # only the day-before reminder
        assert [e["state"] for e in await stack.queue.events(last.id)] == ["queued", CANCELLED]


@pytest.mark.parametrize("answer", [
    {"button": "Changer l'horaire", "quotes": True},  # APPOINTMENT_RESCHEDULE: she is moving it
    {"text": "Merci, à demain", "quotes": False},  # not a reply to the reminder
    None,  # no answer at all
])
async def test_anything_else_leaves_the_last_reminder_to_go(settings: Settings,
                                                            answer: dict[str, Any] | None) -> None:
    clock = ManualClock(NOW)
    async with outbound_stack(settings, clock) as stack:
        scan, reminder = await day_before(stack, clock)
        clock.advance(timedelta(minutes=40))
        if answer is not None:
            quotes = answer.pop("quotes")
            await stack.say(**{"from": CLAIRE, **({"reply_to": reminder["wamid"]} if quotes else {}), **answer})
        last = await two_hours_before(stack, clock, scan)
        box = await stack.delivered(CLAIRE)
        assert len(box) == 2 and box[1]["wamid"] == last.wamid
        # She wrote: her window is open and the reminder goes free-form; else a template.
        assert last.state == (SENT_FREE_FORM if answer is not None else SENT_TEMPLATE)


async def test_a_confirmation_of_another_appointment_does_not_count(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with outbound_stack(settings, clock) as stack:
        scan, reminder = await day_before(stack, clock)
        await stack.say(**{"from": CLAIRE, "reply_to": reminder["wamid"], "button": "Confirmer"})
        # The appointment moves by an hour: its reminders are new ones, and the old
        # confirmation answers the old time.
        async with stack.queue.engine.begin() as conn:
            await conn.execute(appointments.update().where(appointments.c.id == "APT-ACK-1").values(
                starts_at=STARTS + timedelta(hours=1), ends_at=STARTS + timedelta(hours=2)))
        clock.set(STARTS - timedelta(hours=1))
        await scan.scan(clock.now())
        await drain(stack)
        moved = [r for r in await stack.queue.list() if ":2h:" in r.idempotency_key and r.state != CANCELLED]
        assert len(moved) == 1 and moved[0].state == SENT_FREE_FORM


async def test_the_acknowledgement_is_read_from_the_queue_and_the_inbox(database_url: str) -> None:
    """The same question on each SQL backend (the inbox's JSON is read in SQL)."""
    queue = OutboundQueue(database_url)
    await queue.initialize()
    inbox = Inbox(engine=queue.engine)
    await inbox.initialize()
    try:
        starts_us = to_us(STARTS)

        def spec(label: str) -> RequestSpec:
            return RequestSpec(client=ClientRef(PNID, wa_id=CLAIRE), purpose="appointment_reminder",
                               idempotency_key=f"appt:APT-DB:{label}:{starts_us}", requested_by="system",
                               content={"text": "A reminder."}, not_before=STARTS - timedelta(hours=int(label[:-1])))

        [(first, _), (last, _)] = await queue.enqueue_many([spec("24h"), spec("2h")], NOW)
        acks = ReminderAcknowledgements(queue.engine)
        ids = [CLAIRE, "FR.4820193746581029374"]
        assert not await acks.acknowledged(last, ids)  # the 24 h one has not gone out
        await queue.claim("w", STARTS - timedelta(hours=24), limit=1)
        await queue.finish(first.id, SENT_TEMPLATE, STARTS - timedelta(hours=24), wamid="wamid.DAY-BEFORE")

        async def writes(wamid: str, metadata: dict[str, Any], sender: str = "FR.4820193746581029374") -> None:
            at = STARTS - timedelta(hours=20)
            await inbox.claim_inbound([InboxItem(wamid=wamid, phone_number_id=PNID, sender_id=sender, sent_at=at,
                                                 text="-", metadata=metadata, state="done", attempts=1)], at)

        await writes("wamid.IN1", {"context": {"id": "wamid.OTHER"}, "reply": {"id": "APPOINTMENT_CONFIRM"}})
        await writes("wamid.IN2", {"context": {"id": "wamid.DAY-BEFORE"},
                                   "reply": {"kind": "template_button", "id": "APPOINTMENT_RESCHEDULE"}})
        await writes("wamid.IN3", {"text": "no context"})
        await writes("wamid.IN4", {"context": {"id": "wamid.DAY-BEFORE"}}, sender="33699999999")
        assert not await acks.acknowledged(last, ids)
        assert not await acks.acknowledged(first, ids)  # only the 2 h reminder is cancelled
        await writes("wamid.IN5", {"context": {"id": "wamid.DAY-BEFORE", "from": "15550001111"},
                                   "reply": {"kind": "template_button", "id": "APPOINTMENT_CONFIRM"}})
        assert await acks.acknowledged(last, ids)  # under her BSUID, which her session links
        assert not await acks.acknowledged(last, [CLAIRE])
    finally:
        await queue.close()


def test_only_the_scans_two_hour_reminders_await_an_acknowledgement() -> None:
    def request(purpose: str, key: str) -> Any:
        return type("R", (), {"purpose": purpose, "idempotency_key": key})()

    assert reminder_key(request("appointment_reminder", "appt:APT-1:2h:1797000000000000")) == ReminderKey(
        "APT-1", "2h", 1797000000000000)
    assert awaits_acknowledgement(request("appointment_reminder", "appt:APT-1:2h:1797000000000000"))
    assert not awaits_acknowledgement(request("appointment_reminder", "appt:APT-1:24h:1797000000000000"))
    assert not awaits_acknowledgement(request("order_update", "appt:APT-1:2h:1797000000000000"))
    for key in ("api:abc:appt:APT-1:2h:1", "appt:APT-1:1h:1", "appt:APT-1:2h:soon", "appt:APT-1:2h"):
        assert reminder_key(request("appointment_reminder", key)) is None
    assert ReminderKey("APT-1", "2h", 5).key("24h") == "appt:APT-1:24h:5"
