"""Restock alerts: a client asks to hear when a sold-out piece (a colour, a size, a
boutique) is back; when that variant's stock goes from 0 to more than 0, an outbound
``restock_alert`` request is enqueued for each waiting client.

- ``restock_requests``: who waits for what (product, colour, size, boutique; any of the
  last three may be open). One waiting request per client and piece: asking twice keeps
  the first.
- ``restock_stock_seen``: the stock the last scan saw per (sku, boutique). A scan
  compares ``maison_variant_stock`` with it, so every path that changes stock fires the
  alert: ``salon stock set``, ``salon seed``, or any system writing the table directly
  (the worker scans periodically). A variant seen at 0 and now above 0 is a restock.

The alert's idempotency key is ``restock:<request id>``: a scan repeated after a crash
enqueues nothing twice; the request is then marked ``notified``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import from_us, to_us
from salon.conversation.phrasing import pick, say_city, supported
from salon.identity import ClientRef
from salon.integrations.catalog import fold
from salon.integrations.schema import boutiques, clients, product_variants, products, variant_stock
from salon.outbound.queue import OutboundQueue, RequestSpec
from salon.storage.db import SqlTables

logger = logging.getLogger(__name__)

__all__ = ["RestockBook", "RestockRequest", "StockError", "alert_text", "open_key"]

WAITING: Final = "waiting"
NOTIFIED: Final = "notified"

metadata = MetaData()

restock_table = Table(
    "restock_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("wa_id", String(32)),
    Column("user_id", String(200)),  # a BSUID: up to 135 characters
    Column("product_id", String(16), nullable=False),
    Column("colour", String(100)),
    Column("size", String(32)),
    Column("boutique_id", String(32)),
    Column("language", String(8)),
    Column("state", String(16), nullable=False),
    # Set while waiting, cleared once notified: one waiting request per client and piece.
    Column("open_key", String(400), unique=True),
    Column("created_us", BigInteger, nullable=False),
    Column("notified_us", BigInteger),
    Column("outbound_id", String(32)),
    Index("ix_restock_requests_product", "product_id", "state"),
)

seen_table = Table(
    "restock_stock_seen",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("boutique_id", String(32), primary_key=True),
    Column("quantity", Integer, nullable=False),
)

_Q = restock_table.c
_S = seen_table.c

_TEXT: Final = {
    "en": "{first_name}, the {product_name} you asked about is available again at our {boutique} boutique. "
          "Shall we set it aside for you?",
    "fr": "Bonjour {first_name}, la pièce {product_name} qui vous intéressait est de nouveau disponible "
          "dans notre boutique de {boutique}. Souhaitez-vous que nous la mettions de côté ?",
    "it": "Buongiorno {first_name}, il modello {product_name} che Le interessava è di nuovo disponibile "
          "nella nostra boutique di {boutique}. Desidera che lo teniamo da parte per Lei?",
}
"""The alert as it goes free-form, by language: the words of the approved
``restock_alert`` template, filled with the same parameters."""
_NO_NAME: Final = {"en": "Good day", "fr": "Bonjour", "it": "Buongiorno"}
"""Opens the alert in place of a first name the book does not have ("Bonjour, la pièce …",
not "Bonjour Bonjour" where the words already greet her)."""


def alert_text(params: dict[str, str], language: str) -> str:
    """The alert in ``language`` (English when the maison does not write it)."""
    text, name = pick(_TEXT, language), params.get("first_name")
    if not name:
        name = pick(_NO_NAME, language)
        text = text.replace(f"{name} {{first_name}}", "{first_name}", 1)
    return text.format(first_name=name, product_name=params["product_name"], boutique=params["boutique"])


def open_key(client: ClientRef, product_id: str, colour: str | None, size: str | None,
             boutique_id: str | None) -> str:
    """One open wish per client and piece (its colour, size and boutique)."""
    return "|".join([client.phone_number_id, client.user_id or "", client.wa_id or "", product_id,
                     fold(colour or ""), fold(size or ""), boutique_id or ""])


class StockError(ValueError):
    """An unknown variant or boutique, or a negative quantity."""


@dataclass(frozen=True, slots=True)
class RestockRequest:
    """One wish as ``restock_requests`` keeps it."""

    id: int
    client: ClientRef
    product_id: str
    colour: str | None
    size: str | None
    boutique_id: str | None
    language: str | None
    state: str
    created_at: datetime
    notified_at: datetime | None
    outbound_id: str | None


def _row(row: Any) -> RestockRequest:
    m = row._mapping
    return RestockRequest(
        id=m["id"], client=ClientRef(m["phone_number_id"], user_id=m["user_id"], wa_id=m["wa_id"]),
        product_id=m["product_id"], colour=m["colour"], size=m["size"], boutique_id=m["boutique_id"],
        language=m["language"], state=m["state"], created_at=from_us(m["created_us"]),  # type: ignore[arg-type]
        notified_at=from_us(m["notified_us"]), outbound_id=m["outbound_id"],
    )


class RestockBook(SqlTables):
    """The waiting requests, the stock snapshot and the trigger."""

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None,
                 queue: OutboundQueue | None = None, phone_number_id: str = "") -> None:
        super().__init__(url, engine=engine)
        self.queue = queue or OutboundQueue(engine=self.engine)
        self.phone_number_id = phone_number_id
        self._initialized = False

    async def initialize(self) -> None:
        await super().initialize()
        await self.queue.initialize()
        self._initialized = True

    # ------------------------------------------------------------------ requests
    async def add(
        self, client: ClientRef, product_id: str, now: datetime, *, colour: str | None = None,
        size: str | None = None, boutique_id: str | None = None, language: str | None = None,
    ) -> tuple[RestockRequest, bool]:
        """Record that ``client`` waits for this piece; returns it and whether it is new.
        The variants' current stock is remembered now, so a later restock is seen.
        """
        if not self._initialized:
            await self.initialize()
        key = open_key(client, product_id, colour, size, boutique_id)
        stmt = self._insert(restock_table).values(
            phone_number_id=client.phone_number_id, wa_id=client.wa_id, user_id=client.user_id,
            product_id=product_id, colour=colour, size=size, boutique_id=boutique_id, language=language,
            state=WAITING, open_key=key, created_us=to_us(now, "now"),
        ).on_conflict_do_nothing(index_elements=["open_key"])
        async with self.engine.begin() as conn:
            created = (await conn.execute(stmt)).rowcount == 1
            row = (await conn.execute(select(restock_table).where(_Q.open_key == key))).one()
            await self._remember(conn, product_id)
        return _row(row), created

    async def waiting(self, product_id: str | None = None) -> list[RestockRequest]:
        query = select(restock_table).where(_Q.state == WAITING).order_by(_Q.id)
        if product_id is not None:
            query = query.where(_Q.product_id == product_id)
        async with self.engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(query)).all()]

    async def get(self, request_id: int) -> RestockRequest | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(restock_table).where(_Q.id == request_id))).first()
        return _row(row) if row is not None else None

    async def _remember(self, conn: Any, product_id: str | None) -> None:
        """Put the current stock of ``product_id``'s variants (all when None) in the
        snapshot where it has no entry yet.
        """
        v, s = product_variants.c, variant_stock.c
        query = select(s.sku, s.boutique_id, s.quantity).join(product_variants, v.sku == s.sku)
        if product_id is not None:
            query = query.where(v.product_id == product_id)
        current = (await conn.execute(query)).all()
        known = {(r.sku, r.boutique_id) for r in (await conn.execute(select(_S.sku, _S.boutique_id))).all()}
        fresh = [{"sku": r.sku, "boutique_id": r.boutique_id, "quantity": r.quantity}
                 for r in current if (r.sku, r.boutique_id) not in known]
        if fresh:
            await conn.execute(self._insert(seen_table).on_conflict_do_nothing(
                index_elements=["sku", "boutique_id"]), fresh)

    # ------------------------------------------------------------------ stock
    async def set_stock(self, sku: str, boutique_id: str, quantity: int, now: datetime) -> int:
        """Set one variant's stock in one boutique, then scan; returns the alerts enqueued."""
        if quantity < 0:
            raise StockError("quantity must be 0 or more")
        async with self.engine.begin() as conn:
            await self._remember(conn, None)
            known_sku = (await conn.execute(select(product_variants.c.sku).where(
                product_variants.c.sku == sku))).first()
            known_boutique = (await conn.execute(select(boutiques.c.id).where(boutiques.c.id == boutique_id))).first()
            if known_sku is None:
                raise StockError(f"unknown sku {sku!r}")
            if known_boutique is None:
                raise StockError(f"unknown boutique {boutique_id!r}")
            stmt = self._insert(variant_stock).values(sku=sku, boutique_id=boutique_id, quantity=quantity)
            await conn.execute(stmt.on_conflict_do_update(index_elements=["sku", "boutique_id"],
                                                          set_={"quantity": quantity}))
        return await self.scan_stock(now)

    async def _has_catalog(self) -> bool:
        async with self.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        return {variant_stock.name, product_variants.name, products.name} <= names

    async def scan_stock(self, now: datetime) -> int:
        """Compare the stock with the snapshot; enqueue an alert for every waiting
        request whose variant went from 0 to more than 0. Returns the alerts enqueued.
        """
        if not await self._has_catalog():
            return 0
        v, s = product_variants.c, variant_stock.c
        async with self.engine.connect() as conn:
            current = (await conn.execute(
                select(s.sku, s.boutique_id, s.quantity, v.product_id, v.colour, v.size)
                .join(product_variants, v.sku == s.sku))).all()
            seen = {(r.sku, r.boutique_id): r.quantity for r in (await conn.execute(select(seen_table))).all()}
            has_waiting = (await conn.execute(select(func.count()).where(_Q.state == WAITING))).scalar_one()
        if not seen:
            # First look at this database: a baseline, nothing to compare with yet.
            async with self.engine.begin() as conn:
                await self._remember(conn, None)
            return 0
        restocked = [r for r in current if seen.get((r.sku, r.boutique_id)) == 0 and r.quantity > 0]
        enqueued = 0
        if restocked and has_waiting:
            enqueued = await self._alert(restocked, now)
        changed = [{"sku": r.sku, "boutique_id": r.boutique_id, "quantity": r.quantity}
                   for r in current if seen.get((r.sku, r.boutique_id)) != r.quantity]
        if changed:
            stmt = self._insert(seen_table)
            async with self.engine.begin() as conn:
                for row in changed:
                    await conn.execute(stmt.values(**row).on_conflict_do_update(
                        index_elements=["sku", "boutique_id"], set_={"quantity": row["quantity"]}))
        return enqueued

    async def _alert(self, restocked: Sequence[Any], now: datetime) -> int:
        product_ids = {r.product_id for r in restocked}
        async with self.engine.connect() as conn:
            waiting = (await conn.execute(select(restock_table).where(
                _Q.state == WAITING, _Q.product_id.in_(product_ids)).order_by(_Q.id))).all()
            names = dict((await conn.execute(select(products.c.id, products.c.name).where(
                products.c.id.in_(product_ids)))).all())
            cities = dict((await conn.execute(select(boutiques.c.id, boutiques.c.city))).all())
            people = (await conn.execute(select(clients.c.wa_id, clients.c.user_id, clients.c.first_name,
                                                clients.c.language))).all()
        first_names = {key: p for p in people for key in (p.wa_id, p.user_id) if key}
        specs: list[tuple[int, RequestSpec]] = []
        for wait in (_row(w) for w in waiting):
            line = next((r for r in restocked if r.product_id == wait.product_id
                         and (wait.colour is None or fold(wait.colour) == fold(r.colour))
                         and (wait.size is None or fold(wait.size) == fold(str(r.size)))
                         and (wait.boutique_id is None or wait.boutique_id == r.boutique_id)), None)
            if line is None:
                continue
            person = first_names.get(wait.client.wa_id or "") or first_names.get(wait.client.user_id or "")
            language = wait.language or (person.language if person is not None else None) or "en"
            piece = names.get(wait.product_id, wait.product_id)
            if wait.colour:
                piece = f"{piece} ({line.colour})"
            city = cities.get(line.boutique_id, line.boutique_id)
            params = {"product_name": piece, "boutique": say_city(city, supported(language[:2]))}
            if person is not None:
                params["first_name"] = person.first_name
            text = alert_text(params, language[:2])
            specs.append((wait.id, RequestSpec(
                client=wait.client, purpose="restock_alert", idempotency_key=f"restock:{wait.id}",
                requested_by="system", content={"text": text}, params=params, language=language,
            )))
        if not specs:
            return 0
        results = await self.queue.enqueue_many([spec for _, spec in specs], now)
        async with self.engine.begin() as conn:
            for (wait_id, _), (request, _new) in zip(specs, results, strict=True):
                await conn.execute(update(restock_table).where(_Q.id == wait_id, _Q.state == WAITING).values(
                    state=NOTIFIED, open_key=None, notified_us=to_us(now, "now"), outbound_id=request.id))
        created = sum(1 for _, new in results if new)
        logger.info("restock: %d alert(s) enqueued for %d restocked variant(s)", created, len(restocked))
        return created
