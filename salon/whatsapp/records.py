"""What Salon keeps about WhatsApp traffic, in SQL (SQLite by default, PostgreSQL).

- ``wa_inbox``: one row per client message, keyed by its wamid. Inserting it is the
  atomic, durable deduplication of Meta's at-least-once webhooks (a retried or concurrent
  duplicate finds the row and produces no second turn), and it keeps the message until
  the assistant has answered it, so a restart replays what was acknowledged but not yet
  handled.
- ``wa_outbound``: one row per message we send (or park, or refuse), with its wamid,
  purpose, payload, status and error. Statuses only move forward (sent < delivered <
  read < played; failed is terminal), whatever order Meta's webhooks arrive in; a
  status for a wamid not recorded yet (the webhook overtook the send response) is kept
  and merged when the send is recorded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
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
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.base import Executable

from salon.db import SqlTables, insert_on_conflict, schema_lock
from salon.sessions import from_us, to_us

__all__ = [
    "STATUS_RANK",
    "InboxClaim",
    "InboxItem",
    "OutboundWriteBuffer",
    "OutboundRecord",
    "StatusChange",
    "WhatsAppRecords",
    "outbound_values",
]

metadata = MetaData()

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
)

outbound_table = Table(
    "wa_outbound",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("wamid", String(200), unique=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("recipient", String(200)),
    Column("kind", String(16), nullable=False),  # free_form | template | nudge | status_only
    Column("purpose", String(64)),
    Column("utter_action", String(200)),
    Column("template", String(512)),
    Column("payload", JSON),
    Column("status", String(16), nullable=False),
    Column("status_rank", Integer, nullable=False),
    Column("status_us", BigInteger),
    Column("error_code", Integer),
    Column("error", JSON),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # Set once when an async 131047 re-routes this message's content (a template, or a
    # parked copy): the durable marker that makes the re-route happen once, whatever
    # the number of deliveries of the failure and of processes handling them.
    Column("rerouted_us", BigInteger),
    Index("ix_wa_outbound_recipient", "phone_number_id", "recipient", "id"),
)

#: Order of statuses; an update only applies when it moves the rank up.
STATUS_RANK: Final[dict[str, int]] = {
    "pending": 0,
    "accepted": 1,
    "held_for_quality_assessment": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "played": 5,
    # terminal states
    "failed": 90,
    "parked": 90,
    "refused": 90,
    "error": 90,
}
TERMINAL: Final = 90

_I = inbox_table.c
_O = outbound_table.c


@dataclass(frozen=True, slots=True)
class InboxItem:
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


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    id: int
    wamid: str | None
    phone_number_id: str
    recipient: str | None
    kind: str
    purpose: str | None
    utter_action: str | None
    template: str | None
    payload: Any
    status: str
    error_code: int | None
    error: Any
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The result of applying one status webhook."""

    applied: bool
    """False: a duplicate, or older than what is recorded (nothing changed)."""
    known: bool
    """The message was recorded before this webhook (False: kept for a later merge)."""


def _us(span: timedelta) -> int:
    return int(span / timedelta(microseconds=1))


def _inbox_item(r: Any) -> InboxItem:
    return InboxItem(
        wamid=r.wamid, phone_number_id=r.phone_number_id, sender_id=r.sender_id,
        sent_at=from_us(r.sent_us), text=r.text,  # type: ignore[arg-type]
        metadata=dict(r.metadata or {}), state=r.state, attempts=r.attempts,
    )


def _record(row: Any) -> OutboundRecord:
    m = row._mapping
    return OutboundRecord(
        id=m["id"], wamid=m["wamid"], phone_number_id=m["phone_number_id"],
        recipient=m["recipient"], kind=m["kind"], purpose=m["purpose"],
        utter_action=m["utter_action"], template=m["template"], payload=m["payload"],
        status=m["status"], error_code=m["error_code"], error=m["error"],
        created_at=from_us(m["created_us"]),  # type: ignore[arg-type]
    )


def outbound_values(
    *,
    phone_number_id: str,
    recipient: str | None,
    kind: str,
    status: str,
    at: datetime,
    wamid: str | None = None,
    payload: Any = None,
    purpose: str | None = None,
    utter_action: str | None = None,
    template: str | None = None,
    error: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``wa_outbound`` row. Raises ``TypeError``/``ValueError`` at once for a payload
    that is not JSON or a naive time, before anything is written."""
    json.dumps(payload)
    now_us = to_us(at, "at")
    return {
        "wamid": wamid, "phone_number_id": phone_number_id, "recipient": recipient,
        "kind": kind, "purpose": purpose, "utter_action": utter_action, "template": template,
        "payload": payload, "status": status, "status_rank": STATUS_RANK[status],
        "status_us": now_us, "error_code": (error or {}).get("code"),
        "error": dict(error) if error else None, "created_us": now_us, "updated_us": now_us,
    }


_FINISH_INBOUND = (
    update(inbox_table)
    .where(_I.wamid == bindparam("p_wamid"))
    .values(state=bindparam("p_state"), error=bindparam("p_error"), updated_us=bindparam("p_at"),
            attempts=_I.attempts + 1, owner=None, lease_until_us=bindparam("p_due"))
)
_STATUS_MOVE = (
    update(outbound_table)
    .where(_O.wamid == bindparam("p_wamid"), _O.status_rank < bindparam("p_rank"))
    .values(status=bindparam("p_status"), status_rank=bindparam("p_rank"), status_us=bindparam("p_at"),
            updated_us=bindparam("p_at"))
)
_STATUS_MOVE_WITH_ERROR = _STATUS_MOVE.values(error_code=bindparam("p_code"), error=bindparam("p_error"))

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


_OUTBOUND_COLUMNS = [
    "wamid", "phone_number_id", "recipient", "kind", "purpose", "utter_action", "template", "payload",
    "status", "status_rank", "status_us", "error_code", "error", "created_us", "updated_us",
]
_AHEAD = f"excluded.status_rank > {outbound_table.name}.status_rank"
_OUTBOUND_MERGE = {
    # A status webhook may have created the row first: the send completes it, and the
    # status that is further along stays.
    **{column: f"excluded.{column}" for column in
       ("recipient", "kind", "purpose", "utter_action", "template", "payload", "created_us", "updated_us")},
    **{column: f"CASE WHEN {_AHEAD} THEN excluded.{column} ELSE {outbound_table.name}.{column} END"
       for column in ("status", "status_rank", "status_us")},
}
_OUTBOUND_UPSERT = insert_on_conflict(outbound_table, _OUTBOUND_COLUMNS, ["wamid"], update=_OUTBOUND_MERGE)
_OUTBOUND_UPSERT_RETURNING_ID = insert_on_conflict(
    outbound_table, _OUTBOUND_COLUMNS, ["wamid"], update=_OUTBOUND_MERGE, returning=["id"]
)
_STATUS_ONLY = insert_on_conflict(
    outbound_table,
    {"wamid": "p_wamid", "phone_number_id": "p_pnid", "recipient": "p_recipient", "kind": "p_kind",
     "status": "p_status", "status_rank": "p_rank", "status_us": "p_at", "payload": "p_payload",
     "error_code": "p_code", "error": "p_error", "created_us": "p_at", "updated_us": "p_at"},
    ["wamid"],
)


async def add_missing_columns(conn: Any, table: Table) -> None:
    """Columns of ``table`` added since a database was created (nullable ones only),
    added in place. Call inside a transaction holding :func:`salon.db.schema_lock`."""
    present = await conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns(table.name)})
    for column in table.columns:
        if column.name not in present and column.nullable:
            kind = column.type.compile(dialect=conn.dialect)
            await conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


class WhatsAppRecords(SqlTables):
    """The inbox and the outbound record on one asyncio engine."""

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None,
                 inline_sqlite: bool = False) -> None:
        super().__init__(url, engine=engine, inline_sqlite=inline_sqlite)

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await schema_lock(conn)
            await conn.run_sync(self.metadata.create_all)
            for table in (inbox_table, outbound_table):
                await add_missing_columns(conn, table)

    # -------------------------------------------------------------------- inbox
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
        rows = [
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
        is due for another try at ``retry_at`` (see :meth:`claimable_inbound`)."""
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
        ones whoever holds them."""
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

    async def take_inbound(self, claim: InboxClaim, owner: str, at: datetime, lease: timedelta) -> bool:
        """Hold ``claim``'s row for ``owner`` until ``at + lease``, unless someone changed
        it since it was read (compare-and-set: of several takers, one wins)."""
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
        ``owner_prefix…``; returns how many."""
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
        the next channel to look takes them at once."""
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
        maison's book does not know them)."""
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

    # -------------------------------------------------------------------- outbound
    async def record_outbound(
        self,
        *,
        phone_number_id: str,
        recipient: str | None,
        kind: str,
        status: str,
        at: datetime,
        wamid: str | None = None,
        payload: Any = None,
        purpose: str | None = None,
        utter_action: str | None = None,
        template: str | None = None,
        error: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Record one outcome in a single statement; returns the row id (that of the row
        a status webhook created first for the same wamid, when the outcome merged into it).

        With a ``wamid``, a row that a status webhook created before the send response
        arrived is completed, keeping whichever status is further along.
        """
        values = outbound_values(
            phone_number_id=phone_number_id, recipient=recipient, kind=kind, status=status, at=at,
            wamid=wamid, payload=payload, purpose=purpose, utter_action=utter_action,
            template=template, error=error)
        async with self.single() as conn:
            if wamid is None:
                result = await conn.execute(outbound_table.insert(), values)
                return int(result.inserted_primary_key[0])
            return int((await conn.execute(_OUTBOUND_UPSERT_RETURNING_ID, values)).scalar_one())

    async def record_outbound_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record many outcomes (each built by :func:`outbound_values`) in one
        transaction: one statement for those without a wamid, one for those with one
        (merged with rows their status webhooks created first, as :meth:`record_outbound`
        does)."""
        plain = [dict(r) for r in rows if r["wamid"] is None]
        keyed = [dict(r) for r in rows if r["wamid"] is not None]
        if not plain and not keyed:
            return
        async with self.engine.begin() as conn:
            if plain:
                await conn.execute(outbound_table.insert(), plain)
            if keyed:
                await conn.execute(_OUTBOUND_UPSERT, keyed)

    async def apply_status(
        self,
        *,
        wamid: str,
        status: str,
        at: datetime,
        phone_number_id: str,
        recipient: str | None,
        error: Mapping[str, Any] | None = None,
        callback: str | None = None,
    ) -> StatusChange:
        """Apply a status webhook; only a forward move changes anything (so a duplicate
        ``(wamid, status)`` is a no-op and :attr:`StatusChange.applied` is True exactly
        once per transition, even under concurrent deliveries).

        ``callback`` is the ``biz_opaque_callback_data`` the send carried; it is kept with
        a status that arrives before the send is recorded, so the sender's trace survives
        a crash between Meta's answer and our record of it."""
        rank = STATUS_RANK.get(status)
        if rank is None:
            return StatusChange(False, await self.outbound_by_wamid(wamid) is not None)
        at_us = to_us(at, "at")
        move = _STATUS_MOVE_WITH_ERROR if error else _STATUS_MOVE
        params: dict[str, Any] = {"p_wamid": wamid, "p_status": status, "p_rank": rank, "p_at": at_us,
                                  "p_code": (error or {}).get("code"), "p_error": dict(error) if error else None}
        # Each statement below is atomic and conditional on its own; no lock is held
        # between them.
        async with self.single() as conn:
            moved = (await conn.execute(move, params)).rowcount == 1
            if moved:
                return StatusChange(True, True)
            # Not moved: a duplicate or late status, or a wamid not recorded yet (the
            # webhook overtook the send response, or the message is not ours). Keep the
            # status in the last case so the send can merge it.
            inserted = await conn.execute(_STATUS_ONLY, {
                **params, "p_pnid": phone_number_id, "p_recipient": recipient, "p_kind": "status_only",
                "p_payload": {"callback": callback} if callback else None})
            if inserted.rowcount == 1:
                return StatusChange(True, False)
            # The row exists: a duplicate, or a concurrent webhook created it just now.
            again = await conn.execute(move, params)
        return StatusChange(again.rowcount == 1, True)

    async def claim_reroute(self, record_id: int, at: datetime) -> bool:
        """Mark outbound record ``record_id`` re-routed; True for the one caller that set
        the mark (every other one, in any process, gets False)."""
        async with self.single() as conn:
            result = await conn.execute(
                update(outbound_table).where(_O.id == record_id, _O.rerouted_us.is_(None))
                .values(rerouted_us=to_us(at, "at")))
        return result.rowcount == 1

    async def outbound_by_wamid(self, wamid: str) -> OutboundRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(outbound_table).where(_O.wamid == wamid))).one_or_none()
        return _record(row) if row is not None else None

    async def recent_nudge(self, phone_number_id: str, context_id: str) -> OutboundRecord | None:
        """The nudge a client's tap answers (``context.id`` = the nudge's wamid)."""
        record = await self.outbound_by_wamid(context_id)
        if record is not None and record.phone_number_id == phone_number_id and record.kind == "nudge":
            return record
        return None


class OutboundWriteBuffer:
    """Outbound records held in memory until :meth:`flush` writes them in one
    transaction: for a sender of many messages a second (the outbound worker), whose
    every outcome is also kept in its queue. Each row is checked when it is added."""

    def __init__(self, records: WhatsAppRecords) -> None:
        self.records = records
        self._rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, **fields: Any) -> None:
        self._rows.append(outbound_values(**fields))

    async def flush(self) -> int:
        """Write what is held; on failure the rows are kept for the next flush."""
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            await self.records.record_outbound_many(rows)
        except BaseException:
            self._rows[:0] = rows
            raise
        return len(rows)


INBOX_RETENTION: Final = timedelta(days=8)
"""Handled inbox rows outlive Meta's 7 days of webhook retries (the dedup window)."""
