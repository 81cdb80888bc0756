"""The orders port: an order's status, carrier, tracking and promised date, for its owner.

``Orders`` is what the actions depend on. Every lookup names the client asking (their
WhatsApp number and/or business-scoped user id) and returns nothing for an order that is
not theirs, exactly as for an order that does not exist: an order number is not a secret,
so it must never be enough to read someone's delivery city or items. ``SqlOrders`` reads
the maison's seeded tables; a Shopify or Salesforce Commerce Cloud adapter maps its order
and fulfilment objects onto :class:`OrderFacts` behind the same two methods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Select

from salon.integrations.crm import owner_condition
from salon.integrations.schema import clients, order_items, orders, products

__all__ = ["OrderFacts", "Orders", "SqlOrders", "normalise_order_number"]

_NUMBER = re.compile(r"(?:\bSOL\s*[-–_ ]?\s*)?\b(\d{6})\b", re.IGNORECASE)


def normalise_order_number(text: str | None) -> str | None:
    """``SOL-104233`` from what a client types ("sol 104233", "104233", "#SOL-104233")."""
    if not text:
        return None
    match = _NUMBER.search(text)
    return f"SOL-{match.group(1)}" if match else None


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What a client may learn about one of their orders: status, pieces, shipping and the
    promised date.
    """

    number: str
    status: str
    items: tuple[str, ...]
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    shipped_from: str | None = None
    shipped_at: datetime | None = None
    eta: date | None = None
    delivered_at: datetime | None = None
    delivery_city: str = ""
    delay_reason: str | None = None


class Orders(Protocol):
    """Orders, looked up for the client who asks (see the module's docstring)."""

    async def for_client(
        self, number: str, *, wa_id: str | None, user_id: str | None
    ) -> OrderFacts | None:
        """The order if it exists and belongs to this client, else None."""

    async def latest_for_client(self, *, wa_id: str | None, user_id: str | None) -> OrderFacts | None:
        """The client's most recent order, if any."""

    async def recent_for_client(
        self, *, wa_id: str | None, user_id: str | None, limit: int = 10
    ) -> list[OrderFacts]:
        """The client's most recent orders, newest first (at most ``limit``)."""


class SqlOrders:
    """:class:`Orders` read from the maison's seeded SQL tables."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def for_client(
        self, number: str, *, wa_id: str | None, user_id: str | None
    ) -> OrderFacts | None:
        owner = owner_condition(wa_id, user_id)
        if owner is None:
            return None
        query = (
            select(orders)
            .join(clients, clients.c.id == orders.c.client_id)
            .where(orders.c.id == number, owner)
        )
        return await self._one(query)

    async def latest_for_client(self, *, wa_id: str | None, user_id: str | None) -> OrderFacts | None:
        owner = owner_condition(wa_id, user_id)
        if owner is None:
            return None
        query = (
            select(orders)
            .join(clients, clients.c.id == orders.c.client_id)
            .where(owner)
            .order_by(orders.c.created_at.desc())
            .limit(1)
        )
        return await self._one(query)

    async def recent_for_client(
        self, *, wa_id: str | None, user_id: str | None, limit: int = 10
    ) -> list[OrderFacts]:
        owner = owner_condition(wa_id, user_id)
        if owner is None:
            return []
        query = (
            select(orders)
            .join(clients, clients.c.id == orders.c.client_id)
            .where(owner)
            .order_by(orders.c.created_at.desc())
            .limit(limit)
        )
        return await self._many(query)

    async def _one(self, query: Select) -> OrderFacts | None:
        found = await self._many(query)
        return found[0] if found else None

    async def _many(self, query: Select) -> list[OrderFacts]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                return []
            items = (
                await conn.execute(
                    select(order_items.c.order_id, products.c.name, order_items.c.colour)
                    .join(products, products.c.id == order_items.c.product_id)
                    .where(order_items.c.order_id.in_([row.id for row in rows]))
                    .order_by(order_items.c.order_id, order_items.c.product_id)
                )
            ).all()
        names: dict[str, list[str]] = {}
        for order_id, name, colour in items:
            names.setdefault(order_id, []).append(f"{name} in {colour}" if colour else name)
        return [_facts(row, tuple(names.get(row.id, ()))) for row in rows]


def _facts(row: Any, items: tuple[str, ...]) -> OrderFacts:
    return OrderFacts(
        number=row.id,
        status=row.status,
        items=items,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        tracking_url=row.tracking_url,
        shipped_from=row.shipped_from,
        shipped_at=row.shipped_at,
        eta=row.eta,
        delivered_at=row.delivered_at,
        delivery_city=row.delivery_city,
        delay_reason=row.delay_reason,
    )
