"""The ledger of what Meta will bill: one ``wa_pricing`` row per message whose status
webhook carried a ``pricing`` object, reconciled with the estimate the guard kept.

Meta attaches ``pricing {billable, pricing_model, type, category}`` to the ``sent`` status
and to one of ``delivered``/``read`` (``billable`` is being deprecated in favour of
``type`` + ``category``). A message is billed once delivered, so the ledger keeps whether
delivery was seen; its cost is the rate card's for Meta's category, the recipient's market
and the time of the first priced status.

Reconciliation: the estimate (``wa_outbound``: ``price_category``, ``price_type``) is
compared with Meta's word. A disagreement is kept in ``mismatch`` and logged: a template
Meta recategorised as marketing, a reply billed that we thought free, a free entry point
we did not know of. When the status overtakes our own record of the send (the outbound
worker writes its records in batches), :meth:`Ledger.mismatches` still finds it: it
compares the two tables when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import from_us, to_us
from salon.guard.sent import outbound_table
from salon.pricing.card import BILLING_CATEGORIES, RateCard
from salon.pricing.charge import FREE_CUSTOMER_SERVICE, FREE_ENTRY_POINT, PRICING_TYPES, REGULAR
from salon.pricing.markets import market_of
from salon.storage.db import SqlTables, insert_on_conflict, schema_lock

logger = logging.getLogger(__name__)

__all__ = ["REFERRAL_CONVERSION", "Billed", "Ledger", "Mismatch", "Priced", "ledger_table", "read_pricing"]

REFERRAL_CONVERSION: Final = "referral_conversion"
"""Meta's category of a message inside a free entry point."""
DELIVERED_STATUSES: Final = frozenset({"delivered", "read", "played"})

metadata = MetaData()

ledger_table = Table(
    "wa_pricing",
    metadata,
    Column("wamid", String(200), primary_key=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("recipient", String(200)),
    Column("market", String(32), nullable=False),
    Column("category", String(40), nullable=False),
    Column("pricing_type", String(32), nullable=False),
    Column("billable", Integer, nullable=False),
    Column("pricing_model", String(8)),
    Column("cost_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("first_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("mismatch", String(200)),
    Index("ix_wa_pricing_first", "first_us"),
)

_L = ledger_table.c
_O = outbound_table.c


@dataclass(frozen=True, slots=True)
class Priced:
    """Meta's ``pricing`` object, read: category, type, billable and model."""

    category: str
    pricing_type: str
    billable: bool
    pricing_model: str | None


def read_pricing(raw: Mapping[str, Any] | None) -> Priced | None:
    """The ``pricing`` object of a status, or None when it is absent or unusable (logged).

    ``type`` wins over the deprecated ``billable``: ``regular`` is billed, the two free
    types are not. Without ``type`` (older payloads) ``billable`` decides.
    """
    if not raw:
        return None
    category = raw.get("category")
    if not isinstance(category, str) or not category:
        logger.warning("status pricing without a category ignored: %r", dict(raw))
        return None
    kind = raw.get("type")
    billable_raw = raw.get("billable")
    if isinstance(kind, str) and kind in PRICING_TYPES:
        billable = kind == REGULAR
    elif isinstance(billable_raw, bool):
        billable = billable_raw
        kind = REGULAR if billable else (FREE_ENTRY_POINT if category == REFERRAL_CONVERSION
                                         else FREE_CUSTOMER_SERVICE)
    else:
        logger.warning("status pricing with neither a known type nor billable ignored: %r", dict(raw))
        return None
    model = raw.get("pricing_model")
    return Priced(category=category, pricing_type=str(kind), billable=billable,
                  pricing_model=model if isinstance(model, str) else None)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A message Meta priced otherwise than the guard estimated, and how."""

    wamid: str
    estimated_category: str | None
    estimated_type: str | None
    category: str
    pricing_type: str
    reason: str


@dataclass(frozen=True, slots=True)
class Billed:
    """Totals over a period: messages Meta priced, delivered and billable, and their cost."""

    priced: int
    billable_delivered: int
    cost_micros: int
    currency: str


def mismatch_reason(estimated_category: str | None, estimated_type: str | None,
                    category: str, pricing_type: str) -> str | None:
    """Why Meta's pricing differs from the estimate, or None when they agree.

    Inside a free entry point Meta names the category ``referral_conversion``: only the
    type is compared then.
    """
    if estimated_type is None and estimated_category is None:
        return None
    if pricing_type == FREE_ENTRY_POINT or estimated_type == FREE_ENTRY_POINT:
        if pricing_type != estimated_type:
            return f"type {estimated_type}→{pricing_type}"
        return None
    reasons = []
    if estimated_category is not None and category != estimated_category:
        reasons.append(f"category {estimated_category}→{category}")
    if estimated_type is not None and pricing_type != estimated_type:
        reasons.append(f"type {estimated_type}→{pricing_type}")
    return "; ".join(reasons) or None


class Ledger(SqlTables):
    """``wa_pricing`` on an asyncio engine (shared with the outbound record's)."""

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None,
                 card: RateCard, inline_sqlite: bool = False) -> None:
        super().__init__(url, engine=engine, inline_sqlite=inline_sqlite)
        self.card = card
        self._upsert = insert_on_conflict(
            ledger_table,
            ["wamid", "phone_number_id", "recipient", "market", "category", "pricing_type", "billable",
             "pricing_model", "cost_micros", "currency", "delivered", "first_us", "updated_us", "mismatch"],
            ["wamid"],
            update={
                # Meta's latest word on the price; delivery, once seen, stays.
                "category": "excluded.category", "pricing_type": "excluded.pricing_type",
                "billable": "excluded.billable", "pricing_model": "excluded.pricing_model",
                "cost_micros": "excluded.cost_micros",
                "delivered": f"CASE WHEN {ledger_table.name}.delivered = 1 THEN 1 ELSE excluded.delivered END",
                "updated_us": "excluded.updated_us",
                "mismatch": "excluded.mismatch",
            },
        )

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await schema_lock(conn)
            await conn.run_sync(self.metadata.create_all)

    async def record(self, *, wamid: str, status: str, at: datetime, phone_number_id: str,
                     recipient: str | None, pricing: Mapping[str, Any] | None) -> Mismatch | None:
        """Keep Meta's pricing of one message (and whether it was delivered). A delivered
        status without pricing only marks delivery. Returns the mismatch with the estimate
        when there is one (it is also logged).
        """
        priced = read_pricing(pricing)
        delivered = status in DELIVERED_STATUSES
        at_us = to_us(at, "at")
        if priced is None:
            if delivered:
                async with self.single() as conn:
                    await conn.execute(ledger_table.update().where(_L.wamid == wamid)
                                       .values(delivered=1, updated_us=at_us))
            return None
        async with self.engine.connect() as conn:
            estimate = (await conn.execute(
                select(_O.price_category, _O.price_type, _O.market).where(_O.wamid == wamid)
            )).one_or_none()
            prior = (await conn.execute(
                select(_L.first_us, _L.market).where(_L.wamid == wamid))).one_or_none()
        # Priced once, at the card in force then, in the market first seen (a later status
        # may come after a card change).
        first_us = prior.first_us if prior is not None else at_us
        if prior is not None:
            market = prior.market
        elif estimate is not None and estimate.market:
            market = estimate.market
        else:
            market = market_of(recipient, self.card)
        cost = 0
        if priced.billable:
            if priced.category in BILLING_CATEGORIES:
                priced_at = from_us(first_us)
                assert priced_at is not None
                cost = self.card.rate(market, priced.category, priced_at)
            else:
                logger.warning("message %s: Meta's category %r is not on the rate card; its cost is unknown",
                               wamid, priced.category)
        reason = (mismatch_reason(estimate.price_category, estimate.price_type, priced.category,
                                  priced.pricing_type) if estimate is not None else None)
        async with self.single() as conn:
            await conn.execute(self._upsert, {
                "wamid": wamid, "phone_number_id": phone_number_id, "recipient": recipient, "market": market,
                "category": priced.category, "pricing_type": priced.pricing_type,
                "billable": int(priced.billable), "pricing_model": priced.pricing_model,
                "cost_micros": cost, "currency": self.card.currency, "delivered": int(delivered),
                "first_us": first_us, "updated_us": at_us, "mismatch": reason,
            })
        if reason is None or estimate is None:
            return None
        logger.warning("message %s priced by Meta as %s/%s, estimated %s/%s: %s", wamid,
                       priced.category, priced.pricing_type, estimate.price_category, estimate.price_type, reason)
        return Mismatch(wamid, estimate.price_category, estimate.price_type, priced.category,
                        priced.pricing_type, reason)

    async def mismatches(self, since: datetime | None = None, limit: int = 1000) -> list[Mismatch]:
        """Messages whose pricing by Meta disagrees with the estimate, newest first
        (compared now, so a status that overtook its send record is compared too).
        """
        query = (
            select(_L.wamid, _L.category, _L.pricing_type, _O.price_category, _O.price_type)
            .select_from(ledger_table.join(outbound_table, _O.wamid == _L.wamid))
            .where(_O.price_type.isnot(None))
            .order_by(_L.first_us.desc())
            .limit(limit * 4)
        )
        if since is not None:
            query = query.where(_L.first_us >= to_us(since, "since"))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        out = []
        for row in rows:
            reason = mismatch_reason(row.price_category, row.price_type, row.category, row.pricing_type)
            if reason is not None:
                out.append(Mismatch(row.wamid, row.price_category, row.price_type, row.category,
                                    row.pricing_type, reason))
        return out[:limit]

    async def billed(self, since: datetime, until: datetime) -> Billed:
        """What Meta bills for messages first priced in ``[since, until)``: billable and
        delivered ones.
        """
        window = and_(_L.first_us >= to_us(since, "since"), _L.first_us < to_us(until, "until"))
        async with self.engine.connect() as conn:
            priced = (await conn.execute(select(func.count()).where(window))).scalar_one()
            row = (await conn.execute(
                select(func.count(), func.coalesce(func.sum(_L.cost_micros), 0))
                .where(window, _L.billable == 1, _L.delivered == 1))).one()
        return Billed(priced=int(priced), billable_delivered=int(row[0]), cost_micros=int(row[1]),
                      currency=self.card.currency)
