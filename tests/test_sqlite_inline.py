"""SQLite driven in the event loop's thread (salon/storage/sqlite_inline.py), as the WhatsApp
channel's pool uses it: the same results as aiosqlite, and a write lock held by another
process is waited for without stopping the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from salon.clock import ManualClock
from salon.identity import ClientRef
from salon.storage import sqlite_inline
from salon.storage.db import make_async_engine
from salon.webhook.inbox import Inbox, InboxItem
from salon.window.sql_store import SqlSessionStore

AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


def _item(wamid: str) -> InboxItem:
    return InboxItem(wamid=wamid, phone_number_id="100", sender_id="33600000001", sent_at=AT,
                     text="Hello", metadata={"wa_id": "33600000001"}, state="pending", attempts=0)


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a connection in BEGIN IMMEDIATE."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_inline_engine_runs_the_channel_stores(tmp_path: Path) -> None:
    engine = make_async_engine(f"sqlite:///{tmp_path / 'salon.db'}", inline_sqlite=True)
    try:
        records = Inbox(engine=engine)
        await records.initialize()
        sessions = SqlSessionStore(engine=engine, clock=ManualClock(AT))
        await sessions.initialize()
        assert await records.claim_inbound([_item("wamid.A"), _item("wamid.A")], AT) == [True, False]
        assert await records.claim_inbound([_item("wamid.A")], AT) == [False]
        ref = ClientRef("100", None, "33600000001")
        first = await sessions.record_inbound(ref, AT, message_id="wamid.A")
        assert first.new_session and first.state.session_count == 1
        again = await sessions.record_inbound(ref, AT, message_id="wamid.A")
        assert not again.advanced and again.state.last_inbound_at == AT
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
        # WAL as everywhere; SQLite's own busy handler off (it would sleep in the loop).
        assert (mode, timeout) == ("wal", 0)
    finally:
        await engine.dispose()


async def test_a_held_write_lock_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "salon.db"
    engine = make_async_engine(f"sqlite:///{path}", inline_sqlite=True)
    try:
        records = Inbox(engine=engine)
        await records.initialize()
        other = _hold_write_lock(path)
        claim = asyncio.ensure_future(records.claim_inbound([_item("wamid.B")], AT))
        # While the claim waits for the lock, the loop keeps running other work.
        turns = 0
        while turns < 20:
            await asyncio.sleep(0.001)
            turns += 1
        assert not claim.done()
        other.execute("COMMIT")
        other.close()
        assert await claim == [True]
    finally:
        await engine.dispose()


async def test_a_lock_held_past_the_busy_timeout_fails_as_locked(tmp_path: Path) -> None:
    path = tmp_path / "salon.db"
    sqlite3.connect(path).close()
    other = _hold_write_lock(path)
    conn = await sqlite_inline.connect(str(path), busy_timeout=0.05, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await conn.execute("BEGIN IMMEDIATE")
        other.execute("COMMIT")
        cursor = await conn.execute("BEGIN IMMEDIATE")
        await cursor.close()
        assert conn.in_transaction
        await conn.rollback()
    finally:
        await conn.close()
        other.close()
