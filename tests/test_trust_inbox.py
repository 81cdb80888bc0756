"""The inbox as the one durable record of what the clients wrote: a foreign number's
webhooks are ignored (M4), a claim whose release failed is taken over by Meta's retry
(M1), pending rows are replayed under a lease by one channel only, stale ones are swept,
and failed turns are retried with backoff and then handed to an advisor (M2)."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rasa.core.channels.channel import UserMessage
from sqlalchemy import create_engine, select, text

from salon.clock import ManualClock
from salon.config import Settings
from salon.dev.stack import free_port
from salon.guard.sent import outbound_table
from salon.identity import ClientRef
from salon.storage.db import sync_url
from salon.webhook.inbox import InboxItem, inbox_table
from salon.window.redis_store import RedisSessionStore
from tests.whatsapp_support import (
    PNID,
    contact,
    envelope,
    messages_change,
    running_channel,
    status,
    text_message,
    wamid,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
TS = int(NOW.timestamp())
FOREIGN_PNID = "999999999999999"


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=url, redis_url=None)


def rows(url: str, query: Any) -> list[Any]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    finally:
        engine.dispose()


@contextmanager
def deletes_refused(url: str) -> Iterator[None]:
    """The database refuses to delete inbox rows (the release of a claim fails), as when
    it goes away between the claim and the release."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("CREATE FUNCTION refuse_delete() RETURNS trigger AS $$ BEGIN "
                                  "RAISE EXCEPTION 'database unavailable'; END $$ LANGUAGE plpgsql"))
                conn.execute(text("CREATE TRIGGER refuse_release BEFORE DELETE ON wa_inbox "
                                  "FOR EACH ROW EXECUTE FUNCTION refuse_delete()"))
            else:
                conn.execute(text("CREATE TRIGGER refuse_release BEFORE DELETE ON wa_inbox "
                                  "BEGIN SELECT RAISE(ABORT, 'database unavailable'); END"))
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_release" + (" ON wa_inbox" if engine.dialect.name == "postgresql"
                                                               else "")))
            if engine.dialect.name == "postgresql":
                conn.execute(text("DROP FUNCTION refuse_delete()"))
        engine.dispose()


# --------------------------------------------------------------------------- M4


async def test_webhooks_for_another_number_of_the_account_are_ignored(sqlite_url: str, tmp_path: Path) -> None:
    ours = text_message("33600000001", "Hello Paris", TS)
    theirs = text_message("447700900001", "Hello London", TS)
    foreign_change = messages_change([theirs], [contact("447700900001", "Jo Smith")],
                                     statuses=[status("wamid.LONDON-SENT", "failed", TS, "447700900002",
                                                      errors=[{"code": 131047, "title": "Re-engagement message"}])])
    foreign_change["value"]["metadata"]["phone_number_id"] = FOREIGN_PNID
    payload = envelope(messages_change([ours], [contact("33600000001")]), foreign_change)
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        # Only a number of our own: no turn, no inbox row, no outbound record, no window.
        assert [(m.text, m.metadata.get("phone_number_id", PNID)) for m in ch.received] == [("Hello Paris", PNID)]
        assert [r.wamid for r in rows(sqlite_url, select(inbox_table.c.wamid))] == [ours["id"]]
        assert rows(sqlite_url, select(outbound_table.c.wamid)) == []
        assert ch.runtime.sessions is not None
        assert await ch.runtime.sessions.get(ClientRef(FOREIGN_PNID, wa_id="447700900001")) is None
        assert await ch.runtime.sessions.get(ClientRef(FOREIGN_PNID, wa_id="447700900002")) is None
        # A webhook with nothing of ours is acknowledged all the same (Meta must not retry it).
        only_theirs = envelope(copy.deepcopy(foreign_change))
        only_theirs["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = wamid()
        assert (await ch.post(only_theirs))[0] == 200
        await ch.settle()
        assert len(ch.received) == 1


# --------------------------------------------------------------------------- M1


async def test_a_claim_whose_release_failed_is_taken_over_by_metas_retry(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    message = text_message("33600000001", "Bonsoir", TS)
    payload = envelope(messages_change([message], [contact("33600000001")]))
    healthy = RedisSessionStore(redis_url, prefix=f"test:{wamid()}")
    async with running_channel(settings_for(database_url, tmp_path), sessions=healthy) as ch:
        service = ch.runtime.service
        assert service is not None
        # The window store is down, and so is the inbox by the time the claim is released.
        service.sessions = RedisSessionStore(f"redis://127.0.0.1:{free_port()}/0", prefix="test:down")
        with deletes_refused(database_url):
            assert (await ch.post(payload))[0] == 503
        await ch.settle()
        assert ch.received == []
        [(state,)] = rows(database_url, select(inbox_table.c.state))
        assert state == "pending"  # the claim could not be released

        service.sessions = healthy  # everything is back; Meta retries
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        assert [m.text for m in ch.received] == ["Bonsoir"]
        window = await healthy.get(ClientRef(PNID, wa_id="33600000001"))
        assert window is not None and window.last_inbound_id == message["id"]
        # Meta's next retry is a plain duplicate.
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        assert len(ch.received) == 1
        assert [r.state for r in rows(database_url, select(inbox_table.c.state))] == ["done"]
        await healthy.clear()


# --------------------------------------------------------------------------- M2


async def test_two_channels_starting_together_replay_each_pending_message_once(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    senders = [f"336000005{n:02d}" for n in range(5)]
    payload = envelope(messages_change([text_message(s, f"Hello from {s}", TS + n) for n, s in enumerate(senders)],
                                       [contact(s) for s in senders]))
    async with running_channel(settings) as first:
        service = first.runtime.service
        assert service is not None
        # Acknowledged, then the channel stops before answering any of them.
        service._schedule = lambda turns, statuses: None  # type: ignore[method-assign]
        assert (await first.post(payload))[0] == 200

    release = threading.Event()  # the turns run in the assistant's own thread

    async def slow(_message: UserMessage) -> None:
        await asyncio.to_thread(release.wait, 60)

    # Two replicas start on the same database while the first one's turns are running.
    async with running_channel(settings, reply=slow) as one, running_channel(settings, reply=slow) as two:
        await asyncio.sleep(0.2)
        release.set()
        await one.settle()
        await two.settle()
        received = sorted(m.sender_id for m in [*one.received, *two.received])
    assert received == sorted(senders), "each pending message is replayed by one channel, once"
    assert sorted(r.state for r in rows(database_url, select(inbox_table.c.state))) == ["done"] * 5


async def test_a_stale_pending_message_is_swept_once_its_lease_ran_out(sqlite_url: str, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    settings = settings_for(sqlite_url, tmp_path)
    async with running_channel(settings, clock=clock) as ch:
        service = ch.runtime.service
        assert service is not None
        # A channel on another host claimed it, then went silent.
        item = InboxItem(wamid=wamid(), phone_number_id=PNID, sender_id="33600000001", sent_at=NOW,
                         text="Is anyone there?", metadata={"wa_id": "33600000001"}, state="pending", attempts=0)
        assert await service.inbox.claim_inbound([item], NOW, owner="elsewhere:4242:cafe:0",
                                                   lease=timedelta(minutes=2)) == [True]
        assert await service.sweep() == 0  # its lease still runs
        await ch.settle()
        assert ch.received == []
        clock.advance(timedelta(minutes=3))
        assert await service.sweep() == 1
        await ch.settle()
        assert await service.sweep() == 0
        await ch.settle()
        assert [m.text for m in ch.received] == ["Is anyone there?"]
        assert [r.state for r in rows(sqlite_url, select(inbox_table.c.state))] == ["done"]


async def test_failed_turns_are_retried_with_backoff_then_handed_to_an_advisor(
    sqlite_url: str, tmp_path: Path
) -> None:
    from salon.advisors.handoff import HandoffBook

    clock = ManualClock(NOW)
    attempts: list[str] = []

    async def broken(message: UserMessage) -> None:
        attempts.append(message.text or "")
        raise ConnectionError("the tracker store is down")

    message = text_message("33600000001", "Where is my order?", TS)
    async with running_channel(settings_for(sqlite_url, tmp_path), clock=clock, reply=broken) as ch:
        service = ch.runtime.service
        assert service is not None
        assert (await ch.post(envelope(messages_change([message], [contact("33600000001")]))))[0] == 200
        await ch.settle()
        assert len(attempts) == 1
        [row] = rows(sqlite_url, select(inbox_table.c.state, inbox_table.c.attempts))
        assert tuple(row) == ("failed", 1)
        assert await service.sweep() == 0  # not due yet
        clock.advance(timedelta(minutes=1, seconds=1))
        assert await service.sweep() == 1
        await ch.settle()
        assert len(attempts) == 2
        clock.advance(timedelta(minutes=4))
        assert await service.sweep() == 0  # the second retry waits longer
        clock.advance(timedelta(minutes=2))
        assert await service.sweep() == 1
        await ch.settle()
        assert len(attempts) == 3
        clock.advance(timedelta(hours=1))
        assert await service.sweep() == 0  # given up: never tried again
        await ch.settle()
        assert len(attempts) == 3
        [row] = rows(sqlite_url, select(inbox_table.c.state, inbox_table.c.attempts, inbox_table.c.error))
        assert row.state == "abandoned" and row.attempts == 3 and "given up after 3 attempts" in row.error
        book = HandoffBook(sqlite_url)
        try:
            handoff = await book.open_for("33600000001")
        finally:
            await book.close()
        assert handoff is not None and handoff.reason == "repeated_failure"


async def test_a_failed_turn_that_succeeds_on_retry_is_done(sqlite_url: str, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    calls: list[str] = []

    async def flaky(message: UserMessage) -> None:
        calls.append(message.text or "")
        if len(calls) == 1:
            raise ConnectionError("the lock store is down")

    message = text_message("33600000001", "Bonjour", TS)
    async with running_channel(settings_for(sqlite_url, tmp_path), clock=clock, reply=flaky) as ch:
        service = ch.runtime.service
        assert service is not None
        assert (await ch.post(envelope(messages_change([message], [contact("33600000001")]))))[0] == 200
        await ch.settle()
        clock.advance(timedelta(minutes=2))
        assert await service.sweep() == 1
        await ch.settle()
        assert calls == ["Bonjour", "Bonjour"]
        assert [tuple(r) for r in rows(sqlite_url, select(inbox_table.c.state, inbox_table.c.attempts))] == [
            ("done", 2)]
