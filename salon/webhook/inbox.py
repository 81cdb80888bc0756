"""The inbox: one ``wa_inbox`` row per client message, keyed by its wamid (SQLite or PostgreSQL).

Inserting the row is the atomic, durable deduplication of Meta's at-least-once webhooks (a
retried or concurrent duplicate finds the row and produces no second turn), and it keeps
the message until the assistant has answered it, so a restart replays what was
acknowledged but not yet handled. A row being worked on is held under a lease by one
owner; a failed turn is due again later; one that keeps failing is abandoned.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable

from salon.clock import from_us, to_us
from salon.storage.db import SqlTables, add_missing_columns, insert_on_conflict, schema_lock

metadata = MetaData()

__all__ = ["CLAIM_CHUNK", "INBOX_RETENTION", "Inbox", "InboxClaim", "InboxItem"]

inbox_table = Table(
    "wa_inbox",
    metadata,
    Column("wamid", String(200), primary_key=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("sender_id", String(200), nullable=False),
    Column("sent_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("text", Text, nullable=False),
    Column("metadata", JSON, nullable=False),
    # pending | done | failed (retried later) | abandoned (retries exhausted) | skipped
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_us", BigInteger, nullable=False),
    Column("error", Text),
    # Who works on a pending row, until when (a channel that dies lets go when its lease
    # runs out); for a failed row, when it is due for another try.
    Column("owner", String(200)),
    Column("lease_until_us", BigInteger),
    Index("ix_wa_inbox_state", "state", "sent_us"),
    # One client's messages, newest last: the console's thread and inbox read by sender.
    Index("ix_wa_inbox_sender", "phone_number_id", "sender_id", "sent_us"),
)

_I = inbox_table.c

@dataclass(frozen=True, slots=True)
class InboxItem:
    """One client message as the inbox keeps it (``state``: pending, done, failed,
    abandoned or skipped; ``attempts``: turns tried so far).
    """

    wamid: str
    phone_number_id: str
    sender_id: str
    sent_at: datetime
    text: str
    metadata: dict[str, Any]
    state: str
    attempts: int

@dataclass(frozen=True, slots=True)
class InboxClaim:
    """An inbox row that may be worked on, with who holds it now."""

    item: InboxItem
    owner: str | None
    lease_until: datetime | None

def _us(span: timedelta) -> int:
    return int(span / timedelta(microseconds=1))

def _inbox_item(r: Any) -> InboxItem:
    return InboxItem(
        wamid=r.wamid, phone_number_id=r.phone_number_id, sender_id=r.sender_id,
        sent_at=from_us(r.sent_us), text=r.text,  # type: ignore[arg-type]
        metadata=dict(r.metadata or {}), state=r.state, attempts=r.attempts,
    )

_FINISH_INBOUND = (
    update(inbox_table)
    .where(_I.wamid == bindparam("p_wamid"))
    .values(state=bindparam("p_state"), error=bindparam("p_error"), updated_us=bindparam("p_at"),
            attempts=_I.attempts + 1, owner=None, lease_until_us=bindparam("p_due"))
)

# The inserts that run for every message, as statements SQLAlchemy compiles once.
CLAIM_CHUNK: Final = 50
"""Inbox rows claimed per statement (a webhook may carry up to 1,000 messages)."""

@functools.lru_cache(maxsize=CLAIM_CHUNK)
def _claim_statement(rows: int) -> Executable:
    """Insert ``rows`` new messages, returning the wamids not seen before."""
    return insert_on_conflict(
        inbox_table,
        ["wamid", "phone_number_id", "sender_id", "sent_us", "received_us", "text", "metadata", "state",
         "attempts", "updated_us", "owner", "lease_until_us"],
        ["wamid"], returning=["wamid"], rows=rows,
    )

INBOX_RETENTION: Final = timedelta(days=8)
"""Handled inbox rows outlive Meta's 7 days of webhook retries (the dedup window)."""


class Inbox(SqlTables):
    """The inbox on an asyncio engine."""

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None,
                 inline_sqlite: bool = False) -> None:
        super().__init__(url, engine=engine, inline_sqlite=inline_sqlite)

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await schema_lock(conn)
            await conn.run_sync(self.metadata.create_all)
            await add_missing_columns(conn, inbox_table)
            # An index added since the table was created (create_all makes only new tables').
            for index in inbox_table.indexes:
                await conn.run_sync(lambda sync, index=index: index.create(sync, checkfirst=True))

    async def claim_inbound(self, items: Sequence[InboxItem], at: datetime, *, owner: str | None = None,
                            lease: timedelta | None = None) -> list[bool]:
        """Insert every item not seen before, in one transaction, held by ``owner`` for
        ``lease`` (see :meth:`take_inbound`).

        Returns, per item, True when it is new (this call owns it) and False for a
        duplicate. Concurrent duplicates race on the primary key: exactly one wins.
        """
        if not items:
            return []
        now_us = to_us(at, "at")
        until_us = now_us + _us(lease) if lease is not None else None
        rows: list[dict[str, Any]] = [
            {
                "wamid": item.wamid, "phone_number_id": item.phone_number_id,
                "sender_id": item.sender_id, "sent_us": to_us(item.sent_at, "sent_at"),
                "received_us": now_us, "text": item.text, "metadata": item.metadata,
                "state": item.state, "attempts": 0, "updated_us": now_us,
                "owner": owner if item.state == "pending" else None,
                "lease_until_us": until_us if item.state == "pending" else None,
            }
            for item in items
        ]
        # A message twice in one batch is inserted once (and claimed by its first item).
        unique: dict[str, dict[str, Any]] = {}
        for row in rows:
            unique.setdefault(row["wamid"], row)
        rows = list(unique.values())
        claimed: set[str] = set()
        # One statement per CLAIM_CHUNK messages, all in one transaction.
        chunks = [rows[start:start + CLAIM_CHUNK] for start in range(0, len(rows), CLAIM_CHUNK)]
        async with (self.single() if len(chunks) == 1 else self.engine.begin()) as conn:
            for chunk in chunks:
                params = chunk[0] if len(chunk) == 1 else {
                    f"{name}_{i}": value for i, row in enumerate(chunk) for name, value in row.items()}
                result = await conn.execute(_claim_statement(len(chunk)), params)
                claimed.update(result.scalars())
        seen: set[str] = set()
        out: list[bool] = []
        for item in items:
            fresh = item.wamid in claimed and item.wamid not in seen
            seen.add(item.wamid)
            out.append(fresh)
        return out

    async def release_inbound(self, wamids: Sequence[str]) -> None:
        """Forget claims whose acknowledgement failed, so Meta's retry is processed."""
        if wamids:
            async with self.single() as conn:
                await conn.execute(delete(inbox_table).where(_I.wamid.in_(list(wamids))))

    async def finish_inbound(
        self, wamid: str, at: datetime, *, state: str = "done", error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Record a turn's end (one more attempt) and let go of the row; a ``failed`` one
        is due for another try at ``retry_at`` (see :meth:`claimable_inbound`).
        """
        async with self.single() as conn:
            await conn.execute(_FINISH_INBOUND, {
                "p_wamid": wamid, "p_state": state, "p_error": error, "p_at": to_us(at, "at"),
                "p_due": to_us(retry_at, "retry_at") if retry_at is not None else None})

    async def claimable_inbound(
        self, at: datetime, *, local_prefix: str | None = None, wamids: Sequence[str] | None = None,
        retry_below: int = 0, limit: int = 500,
    ) -> list[InboxClaim]:
        """Rows someone may have to work on, oldest first: ``pending`` rows held by nobody,
        whose lease ran out, or whose owner starts with ``local_prefix`` (the caller
        checks whether that owner is still alive); ``failed`` rows due for another try
        (fewer than ``retry_below`` attempts). With ``wamids``, only those rows, pending
        ones whoever holds them.
        """
        now_us = to_us(at, "at")
        pending = _I.state == "pending"
        if wamids is None:
            free = or_(_I.owner.is_(None), _I.lease_until_us.is_(None), _I.lease_until_us < now_us)
            if local_prefix:
                free = or_(free, func.substr(_I.owner, 1, len(local_prefix)) == local_prefix)
            pending = and_(pending, free)
        due = and_(_I.state == "failed", _I.attempts < retry_below, _I.lease_until_us <= now_us)
        query = select(inbox_table).where(or_(pending, due) if retry_below > 0 else pending)
        if wamids is not None:
            query = query.where(_I.wamid.in_(list(wamids)))
        query = query.order_by(_I.sent_us).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [InboxClaim(_inbox_item(r), r.owner, from_us(r.lease_until_us)) for r in rows]

    async def earlier_pending(self, item: InboxItem) -> list[InboxClaim]:
        """The same client's ``pending`` rows written before ``item`` (Meta's timestamp,
        then the order they reached us), oldest first, with who holds each: what must be
        answered before ``item`` is. A ``failed`` row waits for its retry, out of order.
        """
        # One read on a turn's path: her pending rows and this one, by her index.
        query = (select(inbox_table)
                 .where(_I.phone_number_id == item.phone_number_id, _I.sender_id == item.sender_id,
                        _I.sent_us <= to_us(item.sent_at, "sent_at"),
                        or_(_I.state == "pending", _I.wamid == item.wamid))
                 .order_by(_I.sent_us, _I.received_us, _I.wamid))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        own = next((r for r in rows if r.wamid == item.wamid), None)
        if own is None:
            return []
        mine = (own.sent_us, own.received_us, own.wamid)
        return [InboxClaim(_inbox_item(r), r.owner, from_us(r.lease_until_us)) for r in rows
                if r.state == "pending" and (r.sent_us, r.received_us, r.wamid) < mine]

    async def take_inbound(self, claim: InboxClaim, owner: str, at: datetime, lease: timedelta) -> bool:
        """Hold ``claim``'s row for ``owner`` until ``at + lease``, unless someone changed
        it since it was read (compare-and-set: of several takers, one wins).
        """
        item = claim.item
        held = _I.owner.is_(None) if claim.owner is None else _I.owner == claim.owner
        lease_us = to_us(claim.lease_until, "lease_until") if claim.lease_until is not None else None
        same_lease = _I.lease_until_us.is_(None) if lease_us is None else _I.lease_until_us == lease_us
        now_us = to_us(at, "at")
        async with self.single() as conn:
            result = await conn.execute(
                update(inbox_table)
                .where(_I.wamid == item.wamid, _I.state == item.state, _I.attempts == item.attempts,
                       held, same_lease)
                .values(state="pending", owner=owner, lease_until_us=now_us + _us(lease), updated_us=now_us))
        return result.rowcount == 1

    async def renew_inbound(self, wamids: Sequence[str], owner_prefix: str, until: datetime) -> int:
        """Extend the leases of the pending rows among ``wamids`` held by an owner named
        ``owner_prefix…``; returns how many.
        """
        renewed = 0
        ids = list(wamids)
        until_us = to_us(until, "until")
        async with self.single() as conn:
            for start in range(0, len(ids), 500):
                result = await conn.execute(
                    update(inbox_table)
                    .where(_I.wamid.in_(ids[start:start + 500]), _I.state == "pending",
                           func.substr(_I.owner, 1, len(owner_prefix)) == owner_prefix)
                    .values(lease_until_us=until_us))
                renewed += int(result.rowcount or 0)
        return renewed

    async def let_go_inbound(self, owner_prefix: str, keep: Sequence[str] = ()) -> int:
        """Give up the pending rows held by owners named ``owner_prefix…`` (but ``keep``):
        the next channel to look takes them at once.
        """
        async with self.engine.connect() as conn:
            mine = [r[0] for r in (await conn.execute(
                select(_I.wamid).where(_I.state == "pending",
                                       func.substr(_I.owner, 1, len(owner_prefix)) == owner_prefix))).all()]
        free = [w for w in mine if w not in set(keep)]
        async with self.single() as conn:
            for start in range(0, len(free), 500):
                await conn.execute(update(inbox_table).where(
                    _I.wamid.in_(free[start:start + 500]), _I.state == "pending",
                    func.substr(_I.owner, 1, len(owner_prefix)) == owner_prefix,
                ).values(owner=None, lease_until_us=None))
        return len(free)

    async def pending_inbound(self, older_than: datetime | None = None, limit: int = 1000) -> list[InboxItem]:
        """Messages acknowledged but not answered (oldest first), e.g. after a restart."""
        query = select(inbox_table).where(_I.state == "pending")
        if older_than is not None:
            query = query.where(_I.received_us < to_us(older_than, "older_than"))
        query = query.order_by(_I.sent_us).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_inbox_item(r) for r in rows]

    async def latest_profile_name(self, ref: Any) -> str | None:
        """The WhatsApp profile name the client last wrote with (for a greeting when the
        maison's book does not know them).
        """
        ids = [i for i in (ref.user_id, ref.wa_id) if i]
        query = (
            select(_I.metadata)
            .where(_I.phone_number_id == ref.phone_number_id, _I.sender_id.in_(ids))
            .order_by(_I.sent_us.desc())
            .limit(5)
        )
        async with self.engine.connect() as conn:
            for (meta,) in (await conn.execute(query)).all():
                name = (meta or {}).get("profile_name")
                if isinstance(name, str) and name.strip():
                    return name.strip()
        return None

    async def prune_inbound(self, before: datetime) -> int:
        """Delete handled rows older than ``before`` (keep ≥ 7 days: Meta retries that long)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(inbox_table).where(
                    _I.state != "pending", _I.received_us < to_us(before, "before")
                )
            )
        return int(result.rowcount or 0)
