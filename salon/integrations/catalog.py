"""The catalog port: product facts and stock per boutique, read from the maison's data.

``Catalog`` is the port the actions and the LLM grounding depend on. ``SqlCatalog`` reads
the seeded tables (SQLite or PostgreSQL) through an asyncio engine. A PIM or e-commerce
adapter (Shopify, Salesforce Commerce Cloud, …) is another class with the same two
methods that maps its products and inventory levels onto :class:`ProductFacts`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.integrations.schema import boutiques, product_variants, products, variant_stock


def fold(text: str) -> str:
    """Lower-case, accent-free, single-spaced form of ``text`` for matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return re.sub(r"[^a-z0-9/]+", " ", plain.casefold()).strip()


# How clients name colours (the NLU's normalised values, English and French) and the
# catalog colour names each may mean. A catalog colour also always matches itself.
COLOUR_FAMILIES: Mapping[str, frozenset[str]] = {
    "black": frozenset({"noir", "panda"}),
    "white": frozenset({"blanc"}),
    "ivory": frozenset({"ivoire", "creme", "ecru"}),
    "tan": frozenset({"tan", "camel", "cognac"}),
    "brown": frozenset({"cognac", "camel", "tan", "taupe"}),
    "beige": frozenset({"sable", "taupe", "creme"}),
    "navy": frozenset({"bleu nuit", "marine"}),
    "blue": frozenset({"bleu nuit", "marine", "bleu ciel", "bleu mediterranee"}),
    "burgundy": frozenset({"bordeaux"}),
    "red": frozenset({"rouge opera", "bordeaux"}),
    "pink": frozenset({"rose poudre", "corail"}),
    "green": frozenset({"vert foret", "vert sauge"}),
    "grey": frozenset({"gris chine"}),
    "gold": frozenset({"yellow gold", "or pale", "champagne"}),
    "yellow gold": frozenset({"yellow gold", "or pale"}),
    "rose gold": frozenset({"rose gold"}),
    "white gold": frozenset({"white gold"}),
    "silver": frozenset({"argent", "platinum"}),
}


def colour_matches(requested: str, catalog_colour: str) -> bool:
    """Whether a client's colour word designates ``catalog_colour`` (e.g. navy → Bleu Nuit)."""
    wanted = fold(requested)
    parts = {fold(catalog_colour), *(fold(part) for part in catalog_colour.split("/"))}
    if wanted in parts:
        return True
    return bool(COLOUR_FAMILIES.get(wanted, frozenset()) & parts)


@dataclass(frozen=True)
class StockLine:
    """Units of one colour/size on hand in one boutique."""

    colour: str
    size: str
    boutique_id: str
    quantity: int


@dataclass(frozen=True)
class ProductFacts:
    """What the maison knows of one product, as stored; nothing here is invented."""

    id: str
    name: str
    category: str
    description: str
    materials: tuple[str, ...]
    colours: tuple[str, ...]
    sizes: tuple[str, ...]
    price_eur: int
    price_gbp: int
    care: str
    atelier: str
    origin_country: str
    craft: str
    stock: tuple[StockLine, ...]
    plural: bool = False
    """The English name is plural ("Perle earrings"): answers agree with it."""
    care_by_language: Mapping[str, str] = field(default_factory=dict)
    """The care notes by language, where the catalog has them (``care`` is English)."""

    materials_by_language: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """The materials as named in the maison's other languages, in the order of
    ``materials`` (English)."""

    def materials_in(self, language: str) -> tuple[str, ...]:
        """The materials as an advisor names them in ``language``; none when the catalog
        does not name them in it (an English word inside a French sentence would not do).
        """
        if language == "en":
            return self.materials
        named = self.materials_by_language.get(language) or ()
        return tuple(named) if len(named) == len(self.materials) else ()

    def care_in(self, language: str) -> str | None:
        """The care notes in ``language``; None when the catalog has none in it."""
        if language == "en":
            return self.care or None
        return self.care_by_language.get(language) or None

    def colours_matching(self, requested: str) -> tuple[str, ...]:
        return tuple(colour for colour in self.colours if colour_matches(requested, colour))

    def units_by_boutique(self, colour: str | None = None, size: str | None = None) -> dict[str, int]:
        """Units on hand per boutique, optionally for a colour word and/or a size."""
        totals: dict[str, int] = {}
        for line in self.stock:
            if colour is not None and not colour_matches(colour, line.colour):
                continue
            if size is not None and fold(size) != fold(line.size):
                continue
            totals[line.boutique_id] = totals.get(line.boutique_id, 0) + line.quantity
        return totals


class Catalog(Protocol):
    """Read access to the maison's products."""

    async def find(self, text: str) -> ProductFacts | None:
        """The product that ``text`` names (a name, or a sentence containing one)."""

    async def boutique_names(self) -> dict[str, str]:
        """Boutique id → the city clients know it by (Paris, London, Milan)."""

    async def all_products(self) -> list[ProductFacts]:
        """Every product with its stock, in id order."""


def best_name_match(text: str, names: Iterable[tuple[str, str]]) -> str | None:
    """The id whose name ``text`` designates best, or None.

    A full name inside the text wins (longest first); otherwise the product whose
    distinctive first word (Céleste, Méridien, …) appears in the text, when that word
    belongs to a single product or the text narrows it to one.
    """
    wanted = f" {fold(text)} "
    if not wanted.strip():
        return None
    candidates = [(product_id, fold(name)) for product_id, name in names]
    full = [(len(name), product_id) for product_id, name in candidates if f" {name} " in wanted]
    if full:
        return max(full)[1]
    by_word: dict[str, list[tuple[str, str]]] = {}
    for product_id, name in candidates:
        by_word.setdefault(name.split(" ")[0], []).append((product_id, name))
    hits: list[tuple[int, str]] = []
    for word, group in by_word.items():
        if f" {word} " not in wanted:
            continue
        for product_id, name in group:
            overlap = sum(1 for token in name.split(" ") if f" {token} " in wanted)
            hits.append((overlap, product_id))
    if not hits:
        return None
    hits.sort(reverse=True)
    if len(hits) > 1 and hits[0][0] == hits[1][0]:
        return None
    return hits[0][1]


class SqlCatalog:
    """The catalog in Salon's SQL database (the seeded demo maison by default)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find(self, text: str) -> ProductFacts | None:
        async with self._engine.connect() as connection:
            names = (await connection.execute(select(products.c.id, products.c.name))).all()
            product_id = best_name_match(text, [(row.id, row.name) for row in names])
            if product_id is None:
                return None
            row = (
                await connection.execute(select(products).where(products.c.id == product_id))
            ).one()
            stock_rows = (
                await connection.execute(
                    select(
                        product_variants.c.colour,
                        product_variants.c.size,
                        variant_stock.c.boutique_id,
                        variant_stock.c.quantity,
                    )
                    .join(variant_stock, variant_stock.c.sku == product_variants.c.sku)
                    .where(product_variants.c.product_id == product_id)
                    .order_by(product_variants.c.sku, variant_stock.c.boutique_id)
                )
            ).all()
        return _facts(row._mapping, stock_rows)

    async def boutique_names(self) -> dict[str, str]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(boutiques.c.id, boutiques.c.city))).all()
        return {row.id: row.city for row in rows}

    async def all_products(self) -> list[ProductFacts]:
        """Every product with its stock, in id order (the styling fallback's index)."""
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(products).order_by(products.c.id))).all()
            stock_rows = (
                await connection.execute(
                    select(
                        product_variants.c.product_id,
                        product_variants.c.colour,
                        product_variants.c.size,
                        variant_stock.c.boutique_id,
                        variant_stock.c.quantity,
                    )
                    .join(variant_stock, variant_stock.c.sku == product_variants.c.sku)
                    .order_by(product_variants.c.sku, variant_stock.c.boutique_id)
                )
            ).all()
        by_product: dict[str, list[Any]] = {}
        for line in stock_rows:
            by_product.setdefault(line.product_id, []).append(line)
        return [_facts(row._mapping, by_product.get(row.id, [])) for row in rows]


def _facts(row: Mapping[str, Any], stock_rows: Iterable[Any]) -> ProductFacts:
    return ProductFacts(
        id=row["id"],
        name=row["name"],
        category=row["category"],
        description=row["description"],
        materials=tuple(row["materials"]),
        colours=tuple(row["colours"]),
        sizes=tuple(str(size) for size in row["sizes"]),
        price_eur=row["price_eur_minor"] // 100,
        price_gbp=row["price_gbp_minor"] // 100,
        care=row["care"],
        atelier=row["atelier"],
        origin_country=row["origin_country"],
        craft=row["craft"],
        stock=tuple(
            StockLine(line.colour, str(line.size), line.boutique_id, line.quantity)
            for line in stock_rows
        ),
        plural=bool(row.get("plural")),
        care_by_language=dict(row.get("care_by_language") or {}),
        materials_by_language={language: tuple(names) for language, names
                               in (row.get("materials_by_language") or {}).items()},
    )
