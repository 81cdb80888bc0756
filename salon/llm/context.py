"""The current client, as far as the styling fallback may know them.

Only the client writing is ever read (by their WhatsApp number or business-scoped id).
Their name, language and advisor are always used to address them; their sizes,
preferences and purchases only when their latest ``personalisation`` consent is granted
(then also :attr:`ClientContext.owned`: every piece bought or on order, which the
suggestions skip). Whether a model may draft their answers at all is their latest
``llm`` consent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salon.consent.ledger import latest_decisions
from salon.integrations.schema import (
    advisors,
    boutiques,
    clients,
    order_items,
    orders,
    products,
    purchases,
)

__all__ = ["NOT_OWNED_STATUSES", "ClientContext", "Purchase", "load_client_context"]

NOT_OWNED_STATUSES = frozenset({"cancelled", "returned"})
"""Orders in these states leave the client nothing: every other order is on its way or hers."""


@dataclass(frozen=True, slots=True)
class Purchase:
    """A piece the client bought, as the prompt's facts show it."""

    product_id: str
    name: str
    colour: str
    size: str
    purchased_on: date


@dataclass(frozen=True, slots=True)
class ClientContext:
    """What the fallback knows of the client writing; empty for someone not in the book."""

    client_id: str | None = None
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    language: str = "en"
    home_city: str | None = None
    advisor_first_name: str | None = None
    personalisation: bool = False
    llm_consent: bool = False
    sizes: dict[str, str] = field(default_factory=dict)
    colours: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    purchases: tuple[Purchase, ...] = ()
    owned: frozenset[str] = frozenset()
    """Product ids of every piece bought (the whole history) or on order, with consent."""

    @property
    def known(self) -> bool:
        return self.client_id is not None

    @property
    def salutation(self) -> str | None:
        """"Ms Laurent" / "Mme Laurent", or None for someone not in the book."""
        if not self.last_name:
            return None
        return f"{self.title} {self.last_name}" if self.title else self.last_name

    @property
    def currency(self) -> str:
        return "GBP" if self.home_city == "London" else "EUR"


async def load_client_context(engine: AsyncEngine, *, wa_id: str | None, user_id: str | None) -> ClientContext:
    """The client writing from this number and/or BSUID, with their latest consents; sizes,
    preferences and their last eight purchases only with the ``personalisation`` consent.
    """
    conditions = []
    if wa_id:
        digits = wa_id.lstrip("+")
        conditions += [clients.c.wa_id == digits, clients.c.phone == f"+{digits}"]
    if user_id:
        conditions.append(clients.c.user_id == user_id)
    if not conditions:
        return ClientContext()
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(clients, advisors.c.first_name.label("advisor_first_name"),
                       boutiques.c.city.label("home_city"))
                .outerjoin(advisors, advisors.c.id == clients.c.advisor_id)
                .outerjoin(boutiques, boutiques.c.id == clients.c.home_boutique_id)
                .where(or_(*conditions))
                .limit(1)
            )
        ).first()
        if row is None:
            return ClientContext()
        # The maison's consents and the consent ledger, latest decision per purpose.
        aliases = [f"u:{row.user_id}"] if row.user_id else []
        aliases += [f"w:{row.wa_id}"] if row.wa_id else []
        latest = {purpose: granted for purpose, (granted, _) in
                  (await latest_decisions(conn, row.id, aliases)).items()}
        personalisation = latest.get("personalisation", False)
        bought: tuple[Purchase, ...] = ()
        owned: frozenset[str] = frozenset()
        if personalisation:
            lines = await conn.execute(
                select(purchases.c.product_id, products.c.name, purchases.c.colour, purchases.c.size,
                       purchases.c.purchased_on)
                .join(products, products.c.id == purchases.c.product_id)
                .where(purchases.c.client_id == row.id)
                .order_by(purchases.c.purchased_on.desc())
                .limit(8)
            )
            bought = tuple(Purchase(r.product_id, r.name, r.colour, str(r.size), r.purchased_on)
                           for r in lines.all())
            owned = await _owned(conn, row.id)
    preferences = row.preferences if personalisation and isinstance(row.preferences, dict) else {}
    return ClientContext(
        client_id=row.id,
        title=row.title,
        first_name=row.first_name,
        last_name=row.last_name,
        language=row.language,
        home_city=row.home_city,
        advisor_first_name=row.advisor_first_name,
        personalisation=personalisation,
        llm_consent=latest.get("llm", False),
        sizes={str(k): str(v) for k, v in (row.sizes or {}).items()} if personalisation else {},
        colours=tuple(str(c) for c in preferences.get("colours", [])),
        categories=tuple(str(c) for c in preferences.get("categories", [])),
        purchases=bought,
        owned=owned,
    )


async def _owned(conn: AsyncConnection, client_id: str) -> frozenset[str]:
    """Every product the client bought, or ordered in an order neither cancelled nor returned."""
    bought = await conn.execute(select(purchases.c.product_id).where(purchases.c.client_id == client_id))
    ordered = await conn.execute(
        select(order_items.c.product_id)
        .join(orders, orders.c.id == order_items.c.order_id)
        .where(orders.c.client_id == client_id, orders.c.status.not_in(sorted(NOT_OWNED_STATUSES)))
    )
    return frozenset(str(r.product_id) for r in [*bought.all(), *ordered.all()])
