"""What we sent: one ``wa_outbound`` row per message we send (or park, or refuse), with its
wamid, purpose, payload, status and error.

Statuses only move forward (sent < delivered < read < played; failed is terminal),
whatever order Meta's webhooks arrive in; a status for a wamid not recorded yet (the
webhook overtook the send response) is kept and merged when the send is recorded.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    bindparam,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import from_us, to_us
from salon.pricing.charge import Charge
from salon.storage.db import SqlTables, add_missing_columns, insert_on_conflict, schema_lock

metadata = MetaData()

__all__ = ["STATUS_RANK", "OutboundRecord", "OutboundWriteBuffer", "SentLog", "StatusChange", "outbound_values"]

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
    # The charge estimated when the guard decided the send (salon.pricing.charge): Meta's
    # billing category and pricing type, the recipient's market and the cost in micros of
    # the rate card's currency. NULL on rows that sent nothing (parked, refused).
    Column("market", String(32)),
    Column("price_category", String(40)),
    Column("price_type", String(32)),
    Column("cost_micros", BigInteger),
    Column("currency", String(3)),
    # The wamid of the client's message this answers (a reply of her turn), else NULL.
    Column("reply_to", String(200)),
    Index("ix_wa_outbound_recipient", "phone_number_id", "recipient", "id"),
    Index("ix_wa_outbound_reply_to", "reply_to"),
    # A period's sends (the report, the metrics): by when they were recorded.
    Index("ix_wa_outbound_created", "created_us"),
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

_O = outbound_table.c

@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """One ``wa_outbound`` row as read back: what we sent (or parked, or refused), to
    whom, and its latest status.
    """

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
    price_category: str | None = None
    price_type: str | None = None
    market: str | None = None
    cost_micros: int | None = None
    currency: str | None = None

@dataclass(frozen=True, slots=True)
class StatusChange:
    """The result of applying one status webhook."""

    applied: bool
    """False: a duplicate, or older than what is recorded (nothing changed)."""
    known: bool
    """The message was recorded before this webhook (False: kept for a later merge)."""

def _record(row: Any) -> OutboundRecord:
    m = row._mapping
    return OutboundRecord(
        id=m["id"], wamid=m["wamid"], phone_number_id=m["phone_number_id"],
        recipient=m["recipient"], kind=m["kind"], purpose=m["purpose"],
        utter_action=m["utter_action"], template=m["template"], payload=m["payload"],
        status=m["status"], error_code=m["error_code"], error=m["error"],
        created_at=from_us(m["created_us"]),  # type: ignore[arg-type]
        price_category=m["price_category"], price_type=m["price_type"], market=m["market"],
        cost_micros=m["cost_micros"], currency=m["currency"],
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
    charge: Charge | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """One ``wa_outbound`` row (``charge``: the estimate of a message that left). Raises
    ``TypeError``/``ValueError`` at once for a payload that is not JSON or a naive time,
    before anything is written.
    """
    json.dumps(payload)
    now_us = to_us(at, "at")
    return {
        "wamid": wamid, "phone_number_id": phone_number_id, "recipient": recipient,
        "kind": kind, "purpose": purpose, "utter_action": utter_action, "template": template,
        "payload": payload, "status": status, "status_rank": STATUS_RANK[status],
        "status_us": now_us, "error_code": (error or {}).get("code"),
        "error": dict(error) if error else None, "created_us": now_us, "updated_us": now_us,
        "market": charge.market if charge else None,
        "price_category": charge.category if charge else None,
        "price_type": charge.pricing_type if charge else None,
        "cost_micros": charge.cost_micros if charge else None,
        "reply_to": reply_to,
        "currency": charge.currency if charge else None,
    }

_STATUS_MOVE = (
    update(outbound_table)
    .where(_O.wamid == bindparam("p_wamid"), _O.status_rank < bindparam("p_rank"))
    .values(status=bindparam("p_status"), status_rank=bindparam("p_rank"), status_us=bindparam("p_at"),
            updated_us=bindparam("p_at"))
)

_STATUS_MOVE_WITH_ERROR = _STATUS_MOVE.values(error_code=bindparam("p_code"), error=bindparam("p_error"))

_OUTBOUND_COLUMNS = [
    "wamid", "phone_number_id", "recipient", "kind", "purpose", "utter_action", "template", "payload",
    "status", "status_rank", "status_us", "error_code", "error", "created_us", "updated_us",
    "market", "price_category", "price_type", "cost_micros", "currency", "reply_to",
]

_AHEAD = f"excluded.status_rank > {outbound_table.name}.status_rank"

_OUTBOUND_MERGE = {
    # A status webhook may have created the row first: the send completes it, and the
    # status that is further along stays.
    **{column: f"excluded.{column}" for column in
       ("recipient", "kind", "purpose", "utter_action", "template", "payload", "created_us", "updated_us",
        "market", "price_category", "price_type", "cost_micros", "currency", "reply_to")},
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


class SentLog(SqlTables):
    """What we sent, on an asyncio engine."""

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None,
                 inline_sqlite: bool = False) -> None:
        super().__init__(url, engine=engine, inline_sqlite=inline_sqlite)

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await schema_lock(conn)
            await conn.run_sync(self.metadata.create_all)
            await add_missing_columns(conn, outbound_table)
            # An index added since the table was created (create_all makes only new tables').
            for index in outbound_table.indexes:
                await conn.run_sync(lambda sync, index=index: index.create(sync, checkfirst=True))

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
        charge: Charge | None = None,
        reply_to: str | None = None,
    ) -> int | None:
        """Record one outcome in a single statement; returns the row id (that of the row
        a status webhook created first for the same wamid, when the outcome merged into it).

        With a ``wamid``, a row that a status webhook created before the send response
        arrived is completed, keeping whichever status is further along.
        """
        values = outbound_values(
            phone_number_id=phone_number_id, recipient=recipient, kind=kind, status=status, at=at,
            wamid=wamid, payload=payload, purpose=purpose, utter_action=utter_action,
            template=template, error=error, charge=charge, reply_to=reply_to)
        async with self.single() as conn:
            if wamid is None:
                result = await conn.execute(outbound_table.insert(), values)
                return int(result.inserted_primary_key[0])
            return int((await conn.execute(_OUTBOUND_UPSERT_RETURNING_ID, values)).scalar_one())

    async def record_outbound_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record many outcomes (each built by :func:`outbound_values`) in one
        transaction: one statement for those without a wamid, one for those with one
        (merged with rows their status webhooks created first, as :meth:`record_outbound`
        does).
        """
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
        a crash between Meta's answer and our record of it.
        """
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
        the mark (every other one, in any process, gets False).
        """
        async with self.single() as conn:
            result = await conn.execute(
                update(outbound_table).where(_O.id == record_id, _O.rerouted_us.is_(None))
                .values(rerouted_us=to_us(at, "at")))
        return result.rowcount == 1

    async def outbound_by_wamid(self, wamid: str) -> OutboundRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(outbound_table).where(_O.wamid == wamid))).one_or_none()
        return _record(row) if row is not None else None

    async def answered(self, phone_number_id: str, wamid: str) -> bool:
        """Whether an answer to the client's message ``wamid`` left (or waits behind a
        nudge): a reply recorded for it that was neither refused nor failed.
        """
        query = (select(outbound_table.c.id)
                 .where(outbound_table.c.reply_to == wamid, outbound_table.c.phone_number_id == phone_number_id,
                        outbound_table.c.status.not_in(("failed", "refused")))
                 .limit(1))
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def recent_nudge(self, phone_number_id: str, context_id: str) -> OutboundRecord | None:
        """The nudge a client's tap answers (``context.id`` = the nudge's wamid)."""
        record = await self.outbound_by_wamid(context_id)
        if record is not None and record.phone_number_id == phone_number_id and record.kind == "nudge":
            return record
        return None


class OutboundWriteBuffer:
    """Outbound records held in memory until :meth:`flush` writes them in one
    transaction: for a sender of many messages a second (the outbound worker), whose
    every outcome is also kept in its queue. Each row is checked when it is added.
    """

    def __init__(self, records: SentLog) -> None:
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
