"""One client's messages are answered in the order she wrote them, whichever replica
received each: a replica holds a client's message while an earlier one of hers is still
pending on another, and takes over an earlier one nobody works on any more (its replica
died) to answer it first.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rasa.core.channels.channel import UserMessage
from sqlalchemy import select

from salon.clock import ManualClock
from salon.config import Settings
from salon.webhook.inbox import InboxItem, inbox_table
from tests.test_trust_inbox import rows, settings_for
from tests.whatsapp_support import (
    PNID,
    contact,
    envelope,
    messages_change,
    running_channel,
    text_message,
    wamid,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
TS = int(NOW.timestamp())
CLAIRE = "33600000777"


def one_message(text: str, at: int) -> dict[str, object]:
    return envelope(messages_change([text_message(CLAIRE, text, at)], [contact(CLAIRE)]))


async def test_her_second_message_on_another_replica_waits_for_her_first(database_url: str,
                                                                         tmp_path: Path) -> None:
    settings = settings_for(database_url, tmp_path)
    started: list[str] = []
    release = threading.Event()  # the turns run in the assistant's own thread

    async def slow_first(message: UserMessage) -> None:
        started.append(message.text or "")
        if message.text == "First":
            await asyncio.to_thread(release.wait, 30)

    async def quick(message: UserMessage) -> None:
        started.append(message.text or "")

    async with running_channel(settings, reply=slow_first) as one, running_channel(settings, reply=quick) as two:
        assert (await one.post(one_message("First", TS)))[0] == 200
        for _ in range(100):  # until the first turn runs on replica one
            if started:
                break
            await asyncio.sleep(0.02)
        assert (await two.post(one_message("Second", TS + 2)))[0] == 200
        await asyncio.sleep(0.6)
        assert started == ["First"], "her second message waits while her first is answered elsewhere"
        release.set()
        await one.settle()
        await two.settle()
        for _ in range(200):
            if len(started) == 2:
                break
            await asyncio.sleep(0.05)
    assert started == ["First", "Second"]
    assert sorted(r.state for r in rows(database_url, select(inbox_table.c.state))) == ["done", "done"]


async def test_an_earlier_message_left_by_a_dead_replica_is_answered_first(sqlite_url: str, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    settings = settings_for(sqlite_url, tmp_path)
    async with running_channel(settings, clock=clock) as ch:
        service = ch.runtime.service
        assert service is not None
        # A replica on another host claimed her first message, then went silent.
        first = InboxItem(wamid=wamid(), phone_number_id=PNID, sender_id=CLAIRE, sent_at=NOW,
                          text="Is my order on its way?", metadata={"wa_id": CLAIRE}, state="pending", attempts=0)
        assert await service.inbox.claim_inbound([first], NOW, owner="elsewhere:4242:cafe:0",
                                                   lease=timedelta(minutes=2)) == [True]
        clock.advance(timedelta(minutes=3))  # its lease ran out; no sweep has run yet
        assert (await ch.post(one_message("Hello?", TS + 180)))[0] == 200
        await ch.settle()
        for _ in range(100):
            if len(ch.received) == 2:
                break
            await asyncio.sleep(0.05)
        assert [m.text for m in ch.received] == ["Is my order on its way?", "Hello?"]
    assert sorted(r.state for r in rows(sqlite_url, select(inbox_table.c.state))) == ["done", "done"]


async def test_a_failed_earlier_turn_does_not_hold_her_next_message(sqlite_url: str, tmp_path: Path) -> None:
    """A turn that failed is tried again later, out of order by design: her next message
    is answered now."""
    clock = ManualClock(NOW)
    settings = settings_for(sqlite_url, tmp_path)
    async with running_channel(settings, clock=clock) as ch:
        service = ch.runtime.service
        assert service is not None
        failed = InboxItem(wamid=wamid(), phone_number_id=PNID, sender_id=CLAIRE, sent_at=NOW,
                           text="Broken", metadata={"wa_id": CLAIRE}, state="pending", attempts=0)
        assert await service.inbox.claim_inbound([failed], NOW, owner="elsewhere:4242:cafe:0",
                                                   lease=timedelta(minutes=2)) == [True]
        await service.inbox.finish_inbound(failed.wamid, NOW, state="failed", error="boom",
                                           retry_at=NOW + timedelta(minutes=5))
        assert (await ch.post(one_message("Hello?", TS + 10)))[0] == 200
        await ch.settle()
        assert [m.text for m in ch.received] == ["Hello?"]


async def test_each_reply_keeps_the_wamid_of_the_message_it_answers(settings: Settings) -> None:
    from tests.test_whatsapp_sender import CLAIRE as BOOK_CLAIRE
    from tests.test_whatsapp_sender import answer, say, settle, wired

    async with wired(settings, answer("Good day, Claire.")) as (ch, _emu, admin):
        written = await say(admin, **{"from": BOOK_CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        [sent] = await settle(ch, admin, BOOK_CLAIRE, 1)
        service = ch.runtime.service
        assert service is not None
        assert await service.sent.answered(PNID, written["wamid"])
        assert not await service.sent.answered(PNID, wamid())
        assert sent["body"] == "Good day, Claire."


async def test_a_message_answered_before_its_replica_died_is_not_answered_again(
        sqlite_url: str, tmp_path: Path) -> None:
    """Its replica sent the answer, then died before marking the message done: the replica
    that takes it over sees the answer in the outbound record and does not run the turn."""
    clock = ManualClock(NOW)
    settings = settings_for(sqlite_url, tmp_path)
    async with running_channel(settings, clock=clock) as ch:
        service = ch.runtime.service
        assert service is not None
        answered = InboxItem(wamid=wamid(), phone_number_id=PNID, sender_id=CLAIRE, sent_at=NOW,
                             text="How much is the Halo ring?", metadata={"wa_id": CLAIRE}, state="pending",
                             attempts=0)
        unanswered = InboxItem(wamid=wamid(), phone_number_id=PNID, sender_id="33600000778", sent_at=NOW,
                               text="And the Soleil belt?", metadata={"wa_id": "33600000778"}, state="pending",
                               attempts=0)
        assert await service.inbox.claim_inbound([answered, unanswered], NOW, owner="elsewhere:4242:cafe:0",
                                                   lease=timedelta(minutes=2)) == [True, True]
        await service.sent.record_outbound(phone_number_id=PNID, recipient=CLAIRE, kind="free_form",
                                           status="sent", at=NOW, wamid=f"wamid.{wamid()}",
                                           payload={"message": {"type": "text"}}, reply_to=answered.wamid)
        clock.advance(timedelta(minutes=3))
        assert await service.sweep() == 2
        await ch.settle()
        assert [m.text for m in ch.received] == ["And the Soleil belt?"]
    assert sorted(r.state for r in rows(sqlite_url, select(inbox_table.c.state))) == ["done", "done"]
