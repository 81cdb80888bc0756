"""Load the demo maison from ``data/maison/*.yml`` and seed it into SQL.

``load_maison`` parses and validates the YAML (errors name the file and the item);
``seed_database`` creates the ``maison_*`` tables and upserts everything idempotently:
a second run changes nothing, and an edited YAML value is updated in place.

The seed never deletes rows that other code may have written (RSVPs, consents,
appointments, purchases…); it only prunes the rows it fully owns: opening hours of the
seeded boutiques and the lines of the seeded orders.

Run ``python -m salon.integrations.seed`` to seed ``DATABASE_URL`` (or the embedded
SQLite file) from ``SALON_DATA_DIR``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import Table, and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from salon.integrations import schema
from salon.integrations.house import ReturnsPolicy
from salon.storage.db import add_missing_columns_sync, make_sync_engine

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CARRIERS = ("DHL Express", "UPS", "Chronopost", "boutique courier")
CURRENCIES = ("EUR", "GBP")
SHIPPED_STATUSES = ("shipped", "out_for_delivery", "delivered")
CATEGORY_PREFIXES = {
    "LG": "leather_goods",
    "RW": "ready_to_wear",
    "JW": "jewellery",
    "WT": "watches",
    "FR": "fragrance",
}

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
BSUID = re.compile(r"^[A-Z]{2}\.\d{10,30}$")
PRODUCT_ID = re.compile(r"^(LG|RW|JW|WT|FR)-\d{3}$")
CLIENT_ID = re.compile(r"^C-\d{3}$")
ORDER_NUMBER = re.compile(r"^SOL-\d{6}$")
SLUG_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class SeedDataError(ValueError):
    """The seed files are malformed or inconsistent; the message names file and item."""

    def __init__(self, file: str, where: str, message: str) -> None:
        self.file = file
        self.where = where
        super().__init__(f"{file}: {where}: {message}" if where else f"{file}: {message}")


# ── The data model ─────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class House:
    """The maison itself, from ``maison.yml``: identity, currency, languages and tone of voice."""

    id: str
    name: str
    founded: int
    headquarters: str
    website: str | None
    currency: str
    default_language: str
    languages: list[str]
    tone: list[str]
    returns: ReturnsPolicy | None = None
    """The returns policy the assistant states (``maison.returns``); None: it states none."""
    dated_on: date | None = None
    """The day the records describe ("tomorrow" in them is the day after): seeding with
    ``today`` moves every date and time by the whole weeks that bring it closest to today
    without passing it."""


@dataclass(frozen=True)
class Service:
    """A service a boutique can offer (``maison.yml`` services), labelled per language."""

    id: str
    label: dict[str, str]
    description: dict[str, str]


@dataclass(frozen=True)
class Boutique:
    """A boutique from ``boutiques.yml``: contact, booking grid and weekly opening hours."""

    id: str
    name: str
    address: str
    city: str
    country: str
    time_zone: str
    currency: str
    phone: str
    email: str | None
    slot_minutes: int
    salons: int
    services: list[str]
    hours: dict[int, tuple[time, time]]  # weekday (0 = Monday) -> (opens, closes)


@dataclass(frozen=True)
class Advisor:
    """A client advisor from ``advisors.yml``, attached to one boutique."""

    id: str
    first_name: str
    last_name: str
    title: str
    boutique: str
    languages: list[str]
    email: str | None
    gender: str
    """"f" or "m", for the words that agree with the advisor in French and Italian."""

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class Variant:
    """One colour and size of a product, its SKU and its stock per boutique."""

    sku: str
    colour: str
    size: str
    stock: dict[str, int]


@dataclass(frozen=True)
class Product:
    """A catalogue product from ``products.yml``, with its variants."""

    id: str
    name: str
    category: str
    description: str
    materials: list[str]
    colours: list[str]
    sizes: list[str]
    price_eur: int
    price_gbp: int
    care: str
    provenance: dict[str, str]
    made_to_order: list[dict[str, Any]]
    variants: list[Variant]
    plural: bool = False
    """The English name is plural ("Perle earrings"): answers agree with it."""
    care_by_language: dict[str, str] = field(default_factory=dict)
    """The care notes by language ("en" is :attr:`care`)."""
    materials_by_language: dict[str, list[str]] = field(default_factory=dict)
    """The materials as named in each other language (``materials.yml``), in the order of
    ``materials``; English is ``materials`` itself."""

    def variant(self, colour: str, size: str) -> Variant | None:
        return next((v for v in self.variants if v.colour == colour and v.size == size), None)


@dataclass(frozen=True)
class Purchase:
    """A past purchase recorded in a client's profile."""

    product_id: str
    sku: str
    colour: str
    size: str
    date: date
    boutique: str
    price: int
    currency: str


@dataclass(frozen=True)
class Consent:
    """One consent record of a client: a purpose granted or withdrawn, when and how."""

    purpose: str
    granted: bool
    source: str
    at: datetime
    text_shown: str


@dataclass(frozen=True)
class Client:
    """A client from ``clients.yml``: contact, profile, purchases and consents."""

    id: str
    title: str
    first_name: str
    last_name: str
    whatsapp: str | None
    """E.164 number; None for a client known by her WhatsApp username (BSUID) alone."""
    user_id: str | None
    email: str | None
    language: str
    tier: str
    advisor: str | None
    home_boutique: str
    time_zone: str
    birthday: date | None
    sizes: dict[str, str]
    preferences: dict[str, Any]
    purchases: list[Purchase]
    consents: list[Consent]

    @property
    def wa_id(self) -> str | None:
        """The number as Meta writes it in webhooks: E.164 digits without ``+``."""
        return self.whatsapp.lstrip("+") if self.whatsapp else None


@dataclass(frozen=True)
class OrderItem:
    """One line of an order: a product variant, its quantity and unit price."""

    product_id: str
    sku: str
    colour: str
    size: str
    quantity: int
    unit_price: int


@dataclass(frozen=True)
class Order:
    """An order from ``orders.yml``, with its lines, shipping and delivery."""

    number: str
    client: str
    created_at: datetime
    updated_at: datetime
    status: str
    currency: str
    items: list[OrderItem]
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    shipped_from: str | None
    shipped_at: datetime | None
    eta: date | None
    delivered_at: datetime | None
    delivery_city: str
    delivery_country: str
    delay_reason: str | None
    notes: str | None

    @property
    def total(self) -> int:
        return sum(item.quantity * item.unit_price for item in self.items)


@dataclass(frozen=True)
class Rsvp:
    """A client's answer to an event invitation."""

    client: str
    status: str
    guests: int
    responded_at: datetime | None
    notes: str | None


@dataclass(frozen=True)
class Event:
    """A boutique event from ``events.yml``, with its invitations' answers."""

    id: str
    title: dict[str, str]
    description: dict[str, str]
    boutique: str
    starts_at: datetime
    ends_at: datetime
    rsvp_by: date | None
    capacity: int
    guests_per_invitation: int
    dress_code: dict[str, str]
    audience: list[str]
    rsvps: list[Rsvp]


@dataclass(frozen=True)
class Appointment:
    """A salon booking from ``bookings.yml``."""

    id: str
    boutique: str
    salon: int
    starts_at: datetime
    ends_at: datetime
    service: str
    client: str
    advisor: str | None
    status: str
    created_at: datetime
    notes: str | None


@dataclass(frozen=True)
class MaisonData:
    """Everything in ``data/maison``, validated and cross-referenced."""

    house: House
    services: dict[str, Service]
    boutiques: dict[str, Boutique]
    advisors: dict[str, Advisor]
    products: dict[str, Product]
    clients: dict[str, Client]
    orders: dict[str, Order]
    events: dict[str, Event]
    appointments: dict[str, Appointment]

    def variant(self, product_id: str, colour: str, size: str) -> Variant | None:
        product = self.products.get(product_id)
        return product.variant(colour, size) if product else None


# ── Parsing helpers ────────────────────────────────────────────────────────────


class _Item:
    """One mapping in a seed file, with typed accessors that raise SeedDataError."""

    def __init__(self, file: str, where: str, raw: Any) -> None:
        self.file = file
        self.where = where
        if not isinstance(raw, Mapping):
            self.fail(f"expected a mapping, got {type(raw).__name__}")
        self.raw: Mapping[str, Any] = raw

    def fail(self, message: str) -> NoReturn:
        raise SeedDataError(self.file, self.where, message)

    def only(self, *allowed: str) -> None:
        unknown = sorted(set(self.raw) - set(allowed))
        if unknown:
            self.fail(f"unknown field(s) {', '.join(unknown)}")

    def child(self, where: str, raw: Any) -> _Item:
        return _Item(self.file, f"{self.where}: {where}" if self.where else where, raw)

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        value = self.raw.get(key)
        if value is None:
            if default is ...:
                self.fail(f"missing required field {key!r}")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(f"field {key!r} must not be a boolean, got {value!r}")
        if not isinstance(value, kind):
            expected = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.fail(f"field {key!r} must be {expected}, got {type(value).__name__} {value!r}")
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, (str, int, float), default)
        if value is None or value is default:
            return value
        value = str(value).strip()
        if not value:
            self.fail(f"field {key!r} is empty")
        return value

    def integer(self, key: str, default: Any = ..., minimum: int | None = None) -> Any:
        value = self.get(key, int, default)
        if value is not None and value is not default and minimum is not None and value < minimum:
            self.fail(f"field {key!r} must be at least {minimum}, got {value}")
        return value

    def boolean(self, key: str) -> bool:
        return bool(self.get(key, bool))

    def choice(self, key: str, choices: Iterable[str], default: Any = ...) -> Any:
        value = self.text(key, default)
        allowed = list(choices)
        if value is not None and value is not default and value not in allowed:
            self.fail(f"field {key!r} is {value!r}; expected one of {', '.join(allowed)}")
        return value

    def ref(self, key: str, known: Mapping[str, Any], what: str, default: Any = ...) -> Any:
        value = self.text(key, default)
        if value is not None and value is not default and value not in known:
            self.fail(f"unknown {what} {value!r} in {key!r}")
        return value

    def strings(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, list, default)
        if value is None or value is default:
            return value
        result: list[str] = []
        for position, entry in enumerate(value):
            if not isinstance(entry, (str, int, float)) or isinstance(entry, bool):
                self.fail(f"{key}[{position}] must be a string, got {entry!r}")
            result.append(str(entry))
        return result

    def localised(self, key: str, required: Sequence[str] = ("en", "fr")) -> dict[str, str]:
        value = self.get(key, dict)
        for language in required:
            if not isinstance(value.get(language), str) or not value[language].strip():
                self.fail(f"field {key!r} needs a {language!r} text")
        unknown = sorted(set(value) - set(schema.LANGUAGES))
        if unknown:
            self.fail(f"field {key!r} has unknown language(s) {', '.join(map(str, unknown))}")
        return {lang: " ".join(str(text).split()) for lang, text in value.items()}

    def instant(self, key: str, default: Any = ...) -> Any:
        value = self.raw.get(key)
        if value is None:
            if default is ...:
                self.fail(f"missing required field {key!r}")
            return default
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                self.fail(f"field {key!r} is not an ISO-8601 date-time: {value!r}")
        if not isinstance(value, datetime):
            self.fail(f"field {key!r} must be an ISO-8601 date-time with an offset, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            self.fail(
                f"naive datetime {value.isoformat()} in {key!r}: add an offset, "
                "e.g. 2026-11-27T11:00:00+01:00"
            )
        dating = _DATING.get()
        return value if dating is None else dating.instant(value)

    def day(self, key: str, default: Any = ...) -> Any:
        value = self.raw.get(key)
        if value is None:
            if default is ...:
                self.fail(f"missing required field {key!r}")
            return default
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                self.fail(f"field {key!r} is not an ISO-8601 date: {value!r}")
        if isinstance(value, datetime) or not isinstance(value, date):
            self.fail(f"field {key!r} must be a date (YYYY-MM-DD), got {value!r}")
        dating = _DATING.get()
        return value if dating is None else value + dating.shift

    def zone(self, key: str) -> str:
        value = self.text(key)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(f"unknown IANA time zone {value!r} in {key!r}")
        return str(value)


def _read_mapping(data_dir: Path, name: str, *, optional: bool = False) -> dict[str, Any] | None:
    """The top-level mapping of one seed file (None if optional and absent)."""
    path = data_dir / name
    if not path.exists():
        if optional:
            return None
        raise SeedDataError(name, "", f"file not found in {data_dir}")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SeedDataError(name, where, f"invalid YAML: {problem}") from exc
    if not isinstance(content, dict):
        raise SeedDataError(name, "", "expected a top-level mapping")
    return content


def _read(data_dir: Path, name: str, key: str, *, optional: bool = False) -> Any:
    """The value under ``key`` in one seed file (None if optional and absent)."""
    content = _read_mapping(data_dir, name, optional=optional)
    if content is None:
        return None
    if key not in content:
        raise SeedDataError(name, "", f"expected a top-level {key!r} key")
    return content[key]


def _items(file: str, key: str, raw: Any, label: str = "id") -> list[_Item]:
    if not isinstance(raw, list):
        raise SeedDataError(file, key, "expected a list")
    items = []
    for position, entry in enumerate(raw):
        name = entry.get(label) if isinstance(entry, Mapping) else None
        items.append(_Item(file, f"{key}[{position}]" + (f" ({name})" if name else ""), entry))
    return items


def _unique(item: _Item, key: str, seen: set[Any], value: Any, what: str = "id") -> None:
    if value in seen:
        item.fail(f"duplicate {what} {value!r}")
    seen.add(value)


def _pattern(item: _Item, key: str, pattern: re.Pattern[str], hint: str, default: Any = ...) -> Any:
    value = item.text(key, default)
    if value is not None and value is not default and not pattern.match(value):
        item.fail(f"{key} {value!r} is malformed; expected {hint}")
    return value


def _slug(value: str) -> str:
    ascii_only = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z0-9]+", "-", ascii_only.upper()).strip("-")


def make_sku(product_id: str, colour: str, size: str) -> str:
    """The stable SKU of a variant, e.g. ``LG-002-TAN-ONE-SIZE``."""
    return f"{product_id}-{_slug(colour)}-{_slug(size)}"


def _local(when: datetime, zone: str) -> datetime:
    return when.astimezone(ZoneInfo(zone))


# ── Loading each file ──────────────────────────────────────────────────────────


def _load_house(data_dir: Path) -> tuple[House, dict[str, Service]]:
    file = "maison.yml"
    top = _Item(file, "", _read_mapping(data_dir, file))
    top.only("maison", "services")
    item = top.child("maison", top.get("maison", dict))
    item.only(
        "id",
        "name",
        "founded",
        "headquarters",
        "website",
        "currency",
        "default_language",
        "languages",
        "tone",
        "returns",
        "dated_on",
    )
    languages = item.strings("languages")
    returns: ReturnsPolicy | None = None
    if item.raw.get("returns") is not None:
        policy = item.child("returns", item.get("returns", dict))
        policy.only("days", "refund_days", "condition", "excluded", "where")
        returns = ReturnsPolicy(
            days=policy.integer("days", minimum=1),
            refund_days=policy.integer("refund_days", minimum=1),
            condition=policy.localised("condition", ("en",)),
            excluded=policy.localised("excluded", ("en",)),
            where=policy.localised("where", ("en",)),
        )
    house = House(
        id=_pattern(item, "id", SLUG_ID, "lower-case letters, digits and dashes"),
        name=item.text("name"),
        founded=item.integer("founded", minimum=1000),
        headquarters=item.text("headquarters"),
        website=item.text("website", None),
        currency=item.choice("currency", CURRENCIES),
        default_language=item.choice("default_language", languages),
        languages=[lang for lang in languages if _is_language(item, lang)],
        tone=item.strings("tone"),
        returns=returns,
        dated_on=item.day("dated_on", None),
    )
    services: dict[str, Service] = {}
    for entry in _items(file, "services", top.get("services", list)):
        entry.only("id", "label", "description")
        service_id = _pattern(entry, "id", SLUG_ID, "a lower-case identifier")
        _unique(entry, "id", set(services), service_id)
        services[service_id] = Service(
            service_id, entry.localised("label"), entry.localised("description")
        )
    return house, services


def _is_language(item: _Item, language: str) -> bool:
    if language not in schema.LANGUAGES:
        item.fail(
            f"unsupported language {language!r}; expected one of {', '.join(schema.LANGUAGES)}"
        )
    return True


def _parse_hours(item: _Item) -> dict[int, tuple[time, time]]:
    raw = item.get("hours", dict)
    unknown = sorted(set(raw) - set(WEEKDAYS))
    if unknown:
        item.fail(f"hours: unknown weekday(s) {', '.join(map(str, unknown))}")
    hours: dict[int, tuple[time, time]] = {}
    for weekday, name in enumerate(WEEKDAYS):
        value = raw.get(name)
        if value in (None, "closed"):
            continue
        match = HOURS.match(str(value))
        if not match:
            item.fail(f"hours.{name} {value!r} must be 'HH:MM-HH:MM' or 'closed'")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        try:
            opens, closes = time(h1, m1), time(h2, m2)
        except ValueError:
            item.fail(f"hours.{name} {value!r} is not a valid time range")
        if opens >= closes:
            item.fail(f"hours.{name} {value!r}: opening must be before closing")
        hours[weekday] = (opens, closes)
    return hours


def _load_boutiques(data_dir: Path, services: dict[str, Service]) -> dict[str, Boutique]:
    file = "boutiques.yml"
    boutiques: dict[str, Boutique] = {}
    for item in _items(file, "boutiques", _read(data_dir, file, "boutiques")):
        item.only(
            "id", "name", "address", "city", "country", "time_zone", "currency", "phone",
            "email", "slot_minutes", "salons", "services", "hours",
        )  # fmt: skip
        boutique_id = _pattern(item, "id", SLUG_ID, "a lower-case identifier")
        _unique(item, "id", set(boutiques), boutique_id)
        offered = item.strings("services")
        for service in offered:
            if service not in services:
                item.fail(f"unknown service {service!r} (see maison.yml services)")
        boutiques[boutique_id] = Boutique(
            id=boutique_id,
            name=item.text("name"),
            address=item.text("address"),
            city=item.text("city"),
            country=_pattern(item, "country", re.compile(r"^[A-Z]{2}$"), "an ISO 3166 code"),
            time_zone=item.zone("time_zone"),
            currency=item.choice("currency", CURRENCIES),
            phone=_pattern(item, "phone", E164, "E.164 such as +33142650000"),
            email=item.text("email", None),
            slot_minutes=item.integer("slot_minutes", minimum=5),
            salons=item.integer("salons", minimum=1),
            services=offered,
            hours=_parse_hours(item),
        )
    return boutiques


def _load_advisors(data_dir: Path, boutiques: dict[str, Boutique]) -> dict[str, Advisor]:
    file = "advisors.yml"
    advisors: dict[str, Advisor] = {}
    for item in _items(file, "advisors", _read(data_dir, file, "advisors")):
        item.only("id", "first_name", "last_name", "title", "gender", "boutique", "languages",
                  "email")
        advisor_id = _pattern(item, "id", SLUG_ID, "a lower-case identifier")
        _unique(item, "id", set(advisors), advisor_id)
        languages = item.strings("languages")
        for language in languages:
            _is_language(item, language)
        advisors[advisor_id] = Advisor(
            id=advisor_id,
            first_name=item.text("first_name"),
            last_name=item.text("last_name"),
            title=item.text("title"),
            boutique=item.ref("boutique", boutiques, "boutique"),
            languages=languages,
            email=item.text("email", None),
            gender=item.choice("gender", schema.GENDERS),
        )
    return advisors


def _load_material_names(data_dir: Path, languages: Sequence[str]) -> dict[str, dict[str, str]] | None:
    """``materials.yml``: each material of the catalog as named in the maison's languages
    other than English (None when the file is absent).
    """
    file = "materials.yml"
    raw = _read(data_dir, file, "materials", optional=True)
    if raw is None:
        return None
    others = [language for language in languages if language != "en"]
    table = _Item(file, "materials", raw)
    return {str(material): table.localised(str(material), others) for material in raw}


def _load_products(data_dir: Path, boutiques: dict[str, Boutique],
                   material_names: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Product]:
    file = "products.yml"
    products: dict[str, Product] = {}
    skus: set[str] = set()
    for item in _items(file, "products", _read(data_dir, file, "products")):
        item.only(
            "id", "name", "category", "description", "materials", "colours", "sizes", "price",
            "care", "provenance", "made_to_order", "variants", "plural",
        )  # fmt: skip
        product_id = _pattern(item, "id", PRODUCT_ID, "LG-001, RW-001, JW-001, WT-001 or FR-001")
        _unique(item, "id", set(products), product_id)
        category = item.choice("category", schema.CATEGORIES)
        if CATEGORY_PREFIXES[product_id[:2]] != category:
            item.fail(f"id prefix {product_id[:2]} does not match category {category!r}")
        colours, sizes = item.strings("colours"), item.strings("sizes")
        price = item.child("price", item.get("price", dict))
        price.only("eur", "gbp")
        provenance = item.child("provenance", item.get("provenance", dict))
        provenance.only("atelier", "country", "craft")
        made_to_order = []
        for option in _items(
            file, f"{item.where}: made_to_order", item.get("made_to_order", list, []), "option"
        ):
            option.only("option", "note", "lead_time_weeks")
            made_to_order.append(
                {
                    "option": _pattern(
                        option, "option", SLUG_ID, "an identifier such as engraving"
                    ),
                    "note": option.text("note"),
                    "lead_time_weeks": option.integer("lead_time_weeks", minimum=0),
                }
            )
        variants: list[Variant] = []
        seen: set[tuple[str, str]] = set()
        for variant in _items(
            file, f"{item.where}: variants", item.get("variants", list), "colour"
        ):
            variant.only("colour", "size", "stock")
            colour, size = variant.text("colour"), variant.text("size")
            if colour not in colours:
                variant.fail(f"colour {colour!r} is not in the product's colours {colours}")
            if size not in sizes:
                variant.fail(f"size {size!r} is not in the product's sizes {sizes}")
            _unique(variant, "colour", seen, (colour, size), "variant")
            stock = variant.get("stock", dict)
            if set(stock) != set(boutiques):
                variant.fail(f"stock must list exactly the boutiques {sorted(boutiques)}")
            for boutique_id, quantity in stock.items():
                if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                    variant.fail(
                        f"stock.{boutique_id} must be a whole number ≥ 0, got {quantity!r}"
                    )
            sku = make_sku(product_id, colour, size)
            _unique(variant, "sku", skus, sku, "SKU")
            variants.append(Variant(sku, colour, size, dict(stock)))
        if not variants:
            item.fail("a product needs at least one variant")
        # The care notes: English alone (a string), or by language (en required).
        care_by_language = (item.localised("care", ("en",)) if isinstance(item.raw.get("care"), dict)
                            else {"en": " ".join(item.text("care").split())})
        care = care_by_language["en"]
        materials = item.strings("materials")
        materials_by_language: dict[str, list[str]] = {}
        if material_names is not None:
            unnamed = [material for material in materials if material not in material_names]
            if unnamed:
                item.fail(f"materials.yml names no material {', '.join(map(repr, unnamed))}")
            languages = sorted({language for material in materials for language in material_names[material]})
            materials_by_language = {language: [material_names[m][language] for m in materials]
                                     for language in languages}
        products[product_id] = Product(
            id=product_id,
            name=item.text("name"),
            category=category,
            description=" ".join(item.text("description").split()),
            materials=materials,
            colours=colours,
            sizes=sizes,
            price_eur=price.integer("eur", minimum=1),
            price_gbp=price.integer("gbp", minimum=1),
            care=care,
            provenance={
                "atelier": provenance.text("atelier"),
                "country": provenance.text("country"),
                "craft": provenance.text("craft"),
            },
            made_to_order=made_to_order,
            variants=variants,
            plural=item.get("plural", bool, False),
            care_by_language=care_by_language,
            materials_by_language=materials_by_language,
        )
    return products


def _variant_of(
    item: _Item, products: dict[str, Product], product_id: str, colour: str, size: str
) -> Variant:
    variant = products[product_id].variant(colour, size)
    if variant is None:
        item.fail(f"{product_id} has no variant in colour {colour!r} and size {size!r}")
    return variant


_CLIENT_FIELDS = (
    "id", "title", "first_name", "last_name", "whatsapp", "user_id", "email", "language",
    "tier", "advisor", "home_boutique", "time_zone", "birthday", "sizes", "preferences",
    "purchases", "consents",
)  # fmt: skip
_SIZE_KINDS = {"ready_to_wear", "shoes", "ring"}


def _load_clients(
    data_dir: Path,
    boutiques: dict[str, Boutique],
    advisors: dict[str, Advisor],
    products: dict[str, Product],
) -> dict[str, Client]:
    file = "clients.yml"
    clients: dict[str, Client] = {}
    phones: set[str] = set()
    user_ids: set[str] = set()
    for item in _items(file, "clients", _read(data_dir, file, "clients")):
        item.only(*_CLIENT_FIELDS)
        client_id = _pattern(item, "id", CLIENT_ID, "C- and three digits")
        _unique(item, "id", set(clients), client_id)
        phone, user_id = _client_contact(item, phones, user_ids)
        home = item.ref("home_boutique", boutiques, "boutique")
        advisor = item.ref("advisor", advisors, "advisor", None)
        if advisor is not None and advisors[advisor].boutique != home:
            item.fail(f"advisor {advisor!r} works in {advisors[advisor].boutique}, not in {home}")
        sizes = item.get("sizes", dict, {})
        unknown_sizes = sorted(set(sizes) - _SIZE_KINDS)
        if unknown_sizes:
            item.fail(f"sizes: unknown kind(s) {', '.join(unknown_sizes)}")
        preferences = item.child("preferences", item.get("preferences", dict, {}))
        preferences.only("colours", "categories", "notes", "wishlist")
        for category in preferences.strings("categories", []):
            if category not in schema.CATEGORIES:
                preferences.fail(f"unknown category {category!r}")
        wishlist = _load_wishlist(file, item, preferences, products)
        purchases = _load_purchases(file, item, boutiques, products)
        consents = _load_consents(file, item)
        clients[client_id] = Client(
            id=client_id,
            title=item.choice("title", schema.CLIENT_TITLES),
            first_name=item.text("first_name"),
            last_name=item.text("last_name"),
            whatsapp=phone,
            user_id=user_id,
            email=item.text("email", None),
            language=item.choice("language", schema.LANGUAGES),
            tier=item.choice("tier", schema.TIERS),
            advisor=advisor,
            home_boutique=home,
            time_zone=item.zone("time_zone"),
            birthday=item.day("birthday", None),
            sizes={kind: str(value) for kind, value in sizes.items()},
            preferences={
                "colours": preferences.strings("colours", []),
                "categories": preferences.strings("categories", []),
                "notes": preferences.strings("notes", []),
                "wishlist": wishlist,
            },
            purchases=purchases,
            consents=sorted(consents, key=lambda consent: consent.at),
        )
    return clients


def _client_contact(
    item: _Item, phones: set[str], user_ids: set[str]
) -> tuple[str | None, str | None]:
    """A client's WhatsApp number and BSUID, each unique across clients; one is required."""
    phone = _pattern(item, "whatsapp", E164, "E.164 with '+', no spaces, e.g. +33600000001", None)
    if phone is not None:
        _unique(item, "whatsapp", phones, phone, "WhatsApp number")
    user_id = _pattern(item, "user_id", BSUID, "a BSUID such as FR.1234567890123456789", None)
    if user_id is not None:
        _unique(item, "user_id", user_ids, user_id, "user_id")
    if phone is None and user_id is None:
        item.fail("a client needs a WhatsApp number (whatsapp) or a username's BSUID (user_id)")
    return phone, user_id


def _load_wishlist(
    file: str, item: _Item, preferences: _Item, products: dict[str, Product]
) -> list[dict[str, str]]:
    """A client's wishlist: each wish names an existing product variant."""
    wishlist = []
    for wish in _items(
        file, f"{item.where}: wishlist", preferences.get("wishlist", list, []), "product_id"
    ):
        wish.only("product_id", "colour", "size")
        product_id = wish.ref("product_id", products, "product id")
        variant = _variant_of(
            wish, products, product_id, wish.text("colour"), wish.text("size")
        )
        wishlist.append(
            {
                "product_id": product_id,
                "colour": variant.colour,
                "size": variant.size,
                "sku": variant.sku,
            }
        )
    return wishlist


def _load_purchases(
    file: str, item: _Item, boutiques: dict[str, Boutique], products: dict[str, Product]
) -> list[Purchase]:
    """A client's past purchases; the same SKU bought twice on one day is a duplicate."""
    purchases = []
    seen_purchases: set[tuple[str, date]] = set()
    for entry in _items(
        file, f"{item.where}: purchases", item.get("purchases", list, []), "product_id"
    ):
        entry.only("product_id", "colour", "size", "date", "boutique", "price", "currency")
        product_id = entry.ref("product_id", products, "product id")
        variant = _variant_of(
            entry, products, product_id, entry.text("colour"), entry.text("size")
        )
        boutique_id = entry.ref("boutique", boutiques, "boutique")
        bought_on = entry.day("date")
        _unique(entry, "date", seen_purchases, (variant.sku, bought_on), "purchase")
        purchases.append(
            Purchase(
                product_id=product_id,
                sku=variant.sku,
                colour=variant.colour,
                size=variant.size,
                date=bought_on,
                boutique=boutique_id,
                price=entry.integer("price", minimum=1),
                currency=entry.choice("currency", CURRENCIES, boutiques[boutique_id].currency),
            )
        )
    return purchases


def _load_consents(file: str, item: _Item) -> list[Consent]:
    """A client's consent records, in file order; one record per purpose and instant."""
    consents = []
    seen_consents: set[tuple[str, datetime]] = set()
    for entry in _items(
        file, f"{item.where}: consents", item.get("consents", list, []), "purpose"
    ):
        entry.only("purpose", "granted", "source", "at", "text_shown")
        purpose = entry.choice("purpose", schema.CONSENT_PURPOSES)
        at = entry.instant("at")
        _unique(entry, "at", seen_consents, (purpose, at), "consent record for this purpose at")
        consents.append(
            Consent(
                purpose=purpose,
                granted=entry.boolean("granted"),
                source=entry.choice("source", schema.CONSENT_SOURCES),
                at=at,
                text_shown=" ".join(entry.text("text_shown").split()),
            )
        )
    return consents


_ORDER_FIELDS = (
    "number", "client", "created_at", "updated_at", "status", "currency", "items",
    "carrier", "tracking_number", "tracking_url", "shipped_from", "shipped_at", "eta",
    "delivered_at", "delivery", "delay_reason", "notes",
)  # fmt: skip


def _load_orders(
    data_dir: Path, clients: dict[str, Client], products: dict[str, Product]
) -> dict[str, Order]:
    file = "orders.yml"
    orders: dict[str, Order] = {}
    for item in _items(file, "orders", _read(data_dir, file, "orders"), "number"):
        item.only(*_ORDER_FIELDS)
        number = _pattern(item, "number", ORDER_NUMBER, "SOL- and six digits")
        _unique(item, "number", set(orders), number, "order number")
        status = item.choice("status", schema.ORDER_STATUSES)
        created_at = item.instant("created_at")
        updated_at = item.instant("updated_at", created_at)
        if updated_at < created_at:
            item.fail("updated_at is before created_at")
        items = _load_order_items(file, item, products)
        if not items:
            item.fail("an order needs at least one item")
        carrier = item.choice("carrier", CARRIERS, None)
        tracking_number = item.text("tracking_number", None)
        tracking_url = item.text("tracking_url", None)
        shipped_at = item.instant("shipped_at", None)
        delivered_at = item.instant("delivered_at", None)
        if status in SHIPPED_STATUSES or shipped_at is not None:
            if carrier is None:
                item.fail(f"a {status} order needs a carrier")
            if shipped_at is None:
                item.fail(f"a {status} order needs shipped_at")
            if carrier != "boutique courier" and (tracking_number is None or tracking_url is None):
                item.fail(f"{carrier} shipments need tracking_number and tracking_url")
            if shipped_at < created_at:
                item.fail("shipped_at is before created_at")
        if tracking_url is not None and not tracking_url.startswith("https://"):
            item.fail("tracking_url must be an https:// URL")
        if status == "delivered" and delivered_at is None:
            item.fail("a delivered order needs delivered_at")
        if status == "delayed" and not item.has("delay_reason"):
            item.fail("a delayed order needs a delay_reason")
        eta = item.day("eta", None)
        if status in ("shipped", "out_for_delivery", "delayed") and eta is None:
            item.fail(f"a {status} order needs an eta")
        delivery = item.child("delivery", item.get("delivery", dict))
        delivery.only("city", "country")
        reason = item.text("delay_reason", None)
        orders[number] = Order(
            number=number,
            client=item.ref("client", clients, "client"),
            created_at=created_at,
            updated_at=updated_at,
            status=status,
            currency=item.choice("currency", CURRENCIES),
            items=items,
            carrier=carrier,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
            shipped_from=item.text("shipped_from", None),
            shipped_at=shipped_at,
            eta=eta,
            delivered_at=delivered_at,
            delivery_city=delivery.text("city"),
            delivery_country=_pattern(
                delivery, "country", re.compile(r"^[A-Z]{2}$"), "an ISO 3166 code"
            ),
            delay_reason=" ".join(reason.split()) if reason else None,
            notes=item.text("notes", None),
        )
    return orders



def _load_order_items(file: str, item: _Item, products: dict[str, Product]) -> list[OrderItem]:
    """An order's lines, each an existing product variant."""
    items: list[OrderItem] = []
    for line in _items(file, f"{item.where}: items", item.get("items", list), "product_id"):
        line.only("product_id", "colour", "size", "quantity", "unit_price")
        product_id = line.ref("product_id", products, "product id")
        variant = _variant_of(line, products, product_id, line.text("colour"), line.text("size"))
        items.append(
            OrderItem(
                product_id=product_id,
                sku=variant.sku,
                colour=variant.colour,
                size=variant.size,
                quantity=line.integer("quantity", minimum=1),
                unit_price=line.integer("unit_price", minimum=1),
            )
        )
    return items


def _load_events(
    data_dir: Path, boutiques: dict[str, Boutique], clients: dict[str, Client]
) -> dict[str, Event]:
    file = "events.yml"
    events: dict[str, Event] = {}
    for item in _items(file, "events", _read(data_dir, file, "events")):
        item.only(
            "id", "title", "boutique", "starts_at", "ends_at", "rsvp_by", "capacity",
            "guests_per_invitation", "dress_code", "audience", "description", "rsvps",
        )  # fmt: skip
        event_id = _pattern(item, "id", SLUG_ID, "a lower-case identifier")
        _unique(item, "id", set(events), event_id)
        starts_at, ends_at = item.instant("starts_at"), item.instant("ends_at")
        if ends_at <= starts_at:
            item.fail("ends_at must be after starts_at")
        audience = item.strings("audience")
        for tier in audience:
            if tier not in schema.TIERS:
                item.fail(f"unknown tier {tier!r} in audience")
        capacity = item.integer("capacity", minimum=1)
        per_invitation = item.integer("guests_per_invitation", minimum=0)
        rsvps: list[Rsvp] = []
        seen: set[str] = set()
        for entry in _items(file, f"{item.where}: rsvps", item.get("rsvps", list, []), "client"):
            entry.only("client", "status", "guests", "responded_at", "notes")
            client_id = entry.ref("client", clients, "client")
            _unique(entry, "client", seen, client_id, "RSVP for client")
            marketing = [c for c in clients[client_id].consents if c.purpose == "marketing"]
            if not marketing or not marketing[-1].granted:
                entry.fail(f"client {client_id} has no marketing consent; invitations need it")
            if clients[client_id].tier not in audience:
                entry.fail(f"client {client_id} is {clients[client_id].tier}, not in the audience")
            guests = entry.integer("guests", 0, minimum=0)
            if guests > per_invitation:
                entry.fail(f"{guests} guests exceed guests_per_invitation ({per_invitation})")
            rsvps.append(
                Rsvp(
                    client=client_id,
                    status=entry.choice("status", schema.RSVP_STATUSES),
                    guests=guests,
                    responded_at=entry.instant("responded_at", None),
                    notes=entry.text("notes", None),
                )
            )
        attending = sum(1 + rsvp.guests for rsvp in rsvps if rsvp.status == "accepted")
        if attending > capacity:
            item.fail(f"{attending} accepted guests exceed the capacity of {capacity}")
        events[event_id] = Event(
            id=event_id,
            title=item.localised("title"),
            description=item.localised("description"),
            boutique=item.ref("boutique", boutiques, "boutique"),
            starts_at=starts_at,
            ends_at=ends_at,
            rsvp_by=item.day("rsvp_by", None),
            capacity=capacity,
            guests_per_invitation=per_invitation,
            dress_code=item.localised("dress_code"),
            audience=audience,
            rsvps=rsvps,
        )
    return events


def _load_appointments(
    data_dir: Path,
    boutiques: dict[str, Boutique],
    advisors: dict[str, Advisor],
    clients: dict[str, Client],
) -> dict[str, Appointment]:
    file = "bookings.yml"
    raw = _read(data_dir, file, "appointments", optional=True)
    appointments: dict[str, Appointment] = {}
    taken: set[tuple[Any, ...]] = set()
    for item in _items(file, "appointments", raw or []):
        item.only(
            "id", "boutique", "salon", "starts_at", "ends_at", "service", "client", "advisor",
            "status", "created_at", "notes",
        )  # fmt: skip
        appointment_id = _pattern(
            item, "id", re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$"), "e.g. APT-20261127-PAR-01"
        )
        _unique(item, "id", set(appointments), appointment_id)
        boutique = boutiques[item.ref("boutique", boutiques, "boutique")]
        salon = item.integer("salon", minimum=1)
        if salon > boutique.salons:
            item.fail(f"salon {salon} does not exist; {boutique.id} has {boutique.salons}")
        service = item.text("service")
        if service not in boutique.services:
            item.fail(f"{boutique.id} does not offer {service!r}")
        starts_at = item.instant("starts_at")
        ends_at = item.instant("ends_at", starts_at + timedelta(minutes=boutique.slot_minutes))
        local = _local(starts_at, boutique.time_zone)
        hours = boutique.hours.get(local.weekday())
        if hours is None:
            item.fail(f"{boutique.id} is closed on {WEEKDAYS[local.weekday()]}")
        opens = datetime.combine(local.date(), hours[0], local.tzinfo)
        closes = datetime.combine(local.date(), hours[1], local.tzinfo)
        offset = (local - opens).total_seconds() / 60
        if local < opens or _local(ends_at, boutique.time_zone) > closes:
            item.fail(
                f"{local:%H:%M} is outside {boutique.id}'s hours {hours[0]:%H:%M}-{hours[1]:%H:%M}"
            )
        if offset % boutique.slot_minutes:
            item.fail(f"{local:%H:%M} is not on the {boutique.slot_minutes}-minute slot grid")
        if ends_at <= starts_at:
            item.fail("ends_at must be after starts_at")
        advisor = item.ref("advisor", advisors, "advisor", None)
        if advisor is not None and advisors[advisor].boutique != boutique.id:
            item.fail(f"advisor {advisor!r} does not work in {boutique.id}")
        client = item.ref("client", clients, "client")
        status = item.choice("status", schema.APPOINTMENT_STATUSES)
        if status != "cancelled":
            for key in (("salon", boutique.id, starts_at, salon), ("client", client, starts_at)):
                _unique(item, "starts_at", taken, key, "booking (double-booked)")
            if advisor is not None:
                _unique(
                    item,
                    "starts_at",
                    taken,
                    ("advisor", advisor, starts_at),
                    "booking (advisor double-booked)",
                )
        appointments[appointment_id] = Appointment(
            id=appointment_id,
            boutique=boutique.id,
            salon=salon,
            starts_at=starts_at,
            ends_at=ends_at,
            service=service,
            client=client,
            advisor=advisor,
            status=status,
            created_at=item.instant("created_at"),
            notes=item.text("notes", None),
        )
    return appointments


@dataclass(frozen=True)
class _Dating:
    """Moves the records' dates and times by ``shift`` (whole weeks). A time keeps its wall
    clock in the first of ``zones`` whose offset it was written with (11:00 in Paris stays
    11:00 in Paris across a change of summer time); other offsets are kept as written.
    """

    shift: timedelta
    zones: tuple[ZoneInfo, ...]

    def instant(self, value: datetime) -> datetime:
        for zone in self.zones:
            if value.astimezone(zone).utcoffset() == value.utcoffset():
                wall = value.astimezone(zone).replace(tzinfo=None) + self.shift
                return datetime.combine(wall.date(), wall.time(), tzinfo=zone).astimezone(
                    timezone.utc).astimezone(zone)
        return value + self.shift


_DATING: ContextVar[_Dating | None] = ContextVar("_DATING", default=None)


def load_maison(data_dir: Path, *, today: date | None = None) -> MaisonData:
    """Parse and validate every seed file in ``data_dir``; raise :class:`SeedDataError`.

    With ``today``, the records are dated relative to it: every date and time moves by the
    whole weeks that bring ``maison.yml``'s ``dated_on`` closest to ``today`` without
    passing it (0 to 6 days before), so what the records say has happened has happened
    (a parcel shipped, a promised date missed), and every appointment keeps its weekday
    (the boutiques' opening days and slot grids still hold).
    """
    data_dir = Path(data_dir)
    house, services = _load_house(data_dir)
    boutiques = _load_boutiques(data_dir, services)
    dating = None
    if today is not None:
        if house.dated_on is None:
            raise SeedDataError("maison.yml", "maison", "dated_on is needed to date the records relative to today")
        zones = tuple(dict.fromkeys(ZoneInfo(b.time_zone) for b in boutiques.values()))
        weeks = (today - house.dated_on).days // 7
        dating = _Dating(timedelta(weeks=weeks), zones)
    token = _DATING.set(dating)
    try:
        advisors = _load_advisors(data_dir, boutiques)
        products = _load_products(data_dir, boutiques, _load_material_names(data_dir, house.languages))
        clients = _load_clients(data_dir, boutiques, advisors, products)
        orders = _load_orders(data_dir, clients, products)
        events = _load_events(data_dir, boutiques, clients)
        appointments = _load_appointments(data_dir, boutiques, advisors, clients)
    finally:
        _DATING.reset(token)
    return MaisonData(
        house, services, boutiques, advisors, products, clients, orders, events, appointments
    )


# ── Seeding ────────────────────────────────────────────────────────────────────


@dataclass
class SeedReport:
    """What a seeding run did: rows per table afterwards, and what changed."""

    counts: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(self.inserted.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def summary(self) -> str:
        def short(name: str) -> str:
            return name.removeprefix("maison_")

        tables = ", ".join(f"{short(name)} {count}" for name, count in self.counts.items())
        return (
            f"maison seeded: {tables} "
            f"(+{sum(self.inserted.values())} inserted, ~{sum(self.updated.values())} updated, "
            f"-{sum(self.deleted.values())} pruned)"
        )


def _minor(amount: int) -> int:
    return amount * 100


_Rows = dict[Table, list[dict[str, Any]]]


def _rows(data: MaisonData) -> _Rows:
    """Every seed row, per table, in the columns of :mod:`salon.integrations.schema`."""
    rows: _Rows = {table: [] for table in schema.SEED_ORDER}
    _add_house_rows(data, rows)
    _add_boutique_rows(data, rows)
    _add_product_rows(data, rows)
    _add_client_rows(data, rows)
    _add_order_rows(data, rows)
    _add_event_rows(data, rows)
    _add_appointment_rows(data, rows)
    return rows


def _add_house_rows(data: MaisonData, rows: _Rows) -> None:
    """The house and its services."""
    h = data.house
    rows[schema.house].append(
        {
            "id": h.id, "name": h.name, "founded": h.founded, "headquarters": h.headquarters,
            "currency": h.currency, "default_language": h.default_language,
            "languages": h.languages, "website": h.website, "tone": h.tone,
            "returns": h.returns.as_json() if h.returns is not None else None,
        }
    )  # fmt: skip
    for s in data.services.values():
        rows[schema.services].append({"id": s.id, "label": s.label, "description": s.description})


def _add_boutique_rows(data: MaisonData, rows: _Rows) -> None:
    """Boutiques with their opening hours, and their advisors."""
    for b in data.boutiques.values():
        rows[schema.boutiques].append(
            {
                "id": b.id, "name": b.name, "address": b.address, "city": b.city,
                "country": b.country, "time_zone": b.time_zone, "currency": b.currency,
                "phone": b.phone, "email": b.email, "slot_minutes": b.slot_minutes,
                "salons": b.salons, "services": b.services,
            }
        )  # fmt: skip
        for weekday, (opens, closes) in sorted(b.hours.items()):
            rows[schema.opening_hours].append(
                {"boutique_id": b.id, "weekday": weekday, "opens": opens, "closes": closes}
            )
    for a in data.advisors.values():
        rows[schema.advisors].append(
            {
                "id": a.id, "first_name": a.first_name, "last_name": a.last_name,
                "title": a.title, "boutique_id": a.boutique, "languages": a.languages,
                "email": a.email, "gender": a.gender,
            }
        )  # fmt: skip


def _add_product_rows(data: MaisonData, rows: _Rows) -> None:
    """Products, their variants and each variant's stock per boutique."""
    for p in data.products.values():
        rows[schema.products].append(
            {
                "id": p.id, "name": p.name, "category": p.category,
                "description": p.description, "materials": p.materials, "colours": p.colours,
                "sizes": p.sizes, "price_eur_minor": _minor(p.price_eur),
                "price_gbp_minor": _minor(p.price_gbp), "care": p.care,
                "atelier": p.provenance["atelier"], "origin_country": p.provenance["country"],
                "craft": p.provenance["craft"], "made_to_order": p.made_to_order,
                "plural": p.plural, "care_by_language": p.care_by_language,
                "materials_by_language": p.materials_by_language or None,
            }
        )  # fmt: skip
        for v in p.variants:
            rows[schema.product_variants].append(
                {"sku": v.sku, "product_id": p.id, "colour": v.colour, "size": v.size}
            )
            for boutique_id, quantity in v.stock.items():
                rows[schema.variant_stock].append(
                    {"sku": v.sku, "boutique_id": boutique_id, "quantity": quantity}
                )


def _add_client_rows(data: MaisonData, rows: _Rows) -> None:
    """Clients, their purchases and their consent records."""
    for c in data.clients.values():
        rows[schema.clients].append(
            {
                "id": c.id, "title": c.title, "first_name": c.first_name,
                "last_name": c.last_name, "phone": c.whatsapp, "wa_id": c.wa_id,
                "user_id": c.user_id, "email": c.email, "language": c.language,
                "tier": c.tier, "advisor_id": c.advisor, "home_boutique_id": c.home_boutique,
                "time_zone": c.time_zone, "birthday": c.birthday, "sizes": c.sizes,
                "preferences": c.preferences,
            }
        )  # fmt: skip
        for pu in c.purchases:
            rows[schema.purchases].append(
                {
                    "client_id": c.id, "product_id": pu.product_id, "sku": pu.sku,
                    "colour": pu.colour, "size": pu.size, "purchased_on": pu.date,
                    "boutique_id": pu.boutique, "price_minor": _minor(pu.price),
                    "currency": pu.currency,
                }
            )  # fmt: skip
        for co in c.consents:
            rows[schema.consents].append(
                {
                    "client_id": c.id, "purpose": co.purpose, "granted": co.granted,
                    "source": co.source, "recorded_at": co.at, "text_shown": co.text_shown,
                }
            )  # fmt: skip


def _add_order_rows(data: MaisonData, rows: _Rows) -> None:
    """Orders and their numbered lines."""
    for o in data.orders.values():
        rows[schema.orders].append(
            {
                "id": o.number, "client_id": o.client, "created_at": o.created_at,
                "updated_at": o.updated_at, "status": o.status, "currency": o.currency,
                "total_minor": _minor(o.total), "carrier": o.carrier,
                "tracking_number": o.tracking_number, "tracking_url": o.tracking_url,
                "shipped_from": o.shipped_from, "shipped_at": o.shipped_at, "eta": o.eta,
                "delivered_at": o.delivered_at, "delivery_city": o.delivery_city,
                "delivery_country": o.delivery_country, "delay_reason": o.delay_reason,
                "notes": o.notes,
            }
        )  # fmt: skip
        for line_no, it in enumerate(o.items, start=1):
            rows[schema.order_items].append(
                {
                    "order_id": o.number, "line_no": line_no, "product_id": it.product_id,
                    "sku": it.sku, "colour": it.colour, "size": it.size,
                    "quantity": it.quantity, "unit_price_minor": _minor(it.unit_price),
                }
            )  # fmt: skip


def _add_event_rows(data: MaisonData, rows: _Rows) -> None:
    """Events and their RSVPs."""
    for e in data.events.values():
        rows[schema.events].append(
            {
                "id": e.id, "title": e.title, "description": e.description,
                "boutique_id": e.boutique, "starts_at": e.starts_at, "ends_at": e.ends_at,
                "rsvp_by": e.rsvp_by, "capacity": e.capacity,
                "guests_per_invitation": e.guests_per_invitation, "dress_code": e.dress_code,
                "audience": e.audience,
            }
        )  # fmt: skip
        for r in e.rsvps:
            rows[schema.event_rsvps].append(
                {
                    "event_id": e.id, "client_id": r.client, "status": r.status,
                    "guests": r.guests, "responded_at": r.responded_at, "notes": r.notes,
                }
            )  # fmt: skip


def _add_appointment_rows(data: MaisonData, rows: _Rows) -> None:
    """Salon appointments."""
    for ap in data.appointments.values():
        rows[schema.appointments].append(
            {
                "id": ap.id, "boutique_id": ap.boutique, "salon_number": ap.salon,
                "starts_at": ap.starts_at, "ends_at": ap.ends_at, "service": ap.service,
                "client_id": ap.client, "advisor_id": ap.advisor, "status": ap.status,
                "created_at": ap.created_at, "notes": ap.notes,
            }
        )  # fmt: skip


#: How each table's rows are matched on re-seeding (natural keys for surrogate-id tables).
_KEYS: dict[str, tuple[str, ...]] = {
    "maison_opening_hours": ("boutique_id", "weekday"),
    "maison_variant_stock": ("sku", "boutique_id"),
    "maison_purchases": ("client_id", "product_id", "colour", "size", "purchased_on"),
    "maison_consents": ("client_id", "purpose", "recorded_at"),
    "maison_order_items": ("order_id", "line_no"),
    "maison_event_rsvps": ("event_id", "client_id"),
}
#: Child tables the seed owns entirely for its parents: stale rows are pruned.
_OWNED_BY: dict[str, tuple[str, Table]] = {
    "maison_opening_hours": ("boutique_id", schema.boutiques),
    "maison_order_items": ("order_id", schema.orders),
}


def _key_columns(table: Table) -> tuple[str, ...]:
    return _KEYS.get(table.name) or tuple(column.name for column in table.primary_key.columns)


def _sync(
    connection: Connection, table: Table, rows: list[dict[str, Any]], parents: set[str]
) -> tuple[int, int, int]:
    """Upsert ``rows`` into ``table``; return (inserted, updated, deleted)."""
    key_columns = _key_columns(table)

    def key_of(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in key_columns)

    desired = {key_of(row): row for row in rows}
    owner = _OWNED_BY.get(table.name)
    if len(key_columns) == 1:
        query = select(table).where(table.c[key_columns[0]].in_([k[0] for k in desired]))
    elif owner is not None:
        query = select(table).where(table.c[owner[0]].in_(parents))
    else:  # composite natural key: narrow by its first column, match the rest here
        first = key_columns[0]
        query = select(table).where(table.c[first].in_({k[0] for k in desired}))
    existing = (
        {key_of(row): row for row in connection.execute(query).mappings()}
        if desired or owner
        else {}
    )

    fresh = [row for key, row in desired.items() if key not in existing]
    if fresh:
        connection.execute(insert(table), fresh)
    updated = 0
    for key, row in desired.items():
        current = existing.get(key)
        if current is None or all(current[name] == value for name, value in row.items()):
            continue
        match = and_(
            *(table.c[name] == value for name, value in zip(key_columns, key, strict=True))
        )
        connection.execute(update(table).where(match).values(**row))
        updated += 1
    deleted = 0
    if owner is not None:
        for key in set(existing) - set(desired):
            match = and_(
                *(table.c[name] == value for name, value in zip(key_columns, key, strict=True))
            )
            deleted += connection.execute(delete(table).where(match)).rowcount
    return len(fresh), updated, deleted


def seed_database(url: str, data_dir: Path | None = None, *, today: date | None = None) -> SeedReport:
    """Create the ``maison_*`` tables at ``url`` and upsert the seed data idempotently;
    with ``today``, dated relative to it (:func:`load_maison`).
    """
    if data_dir is None:
        from salon.config import load_settings

        data_dir = load_settings().data_dir
    data = load_maison(Path(data_dir), today=today)
    rows = _rows(data)
    parents = {
        "maison_opening_hours": set(data.boutiques),
        "maison_order_items": set(data.orders),
    }
    report = SeedReport()
    engine = make_sync_engine(url)
    try:
        schema.maison_metadata.create_all(engine)
        with engine.begin() as connection:
            for table in schema.SEED_ORDER:
                add_missing_columns_sync(connection, table)
            for table in schema.SEED_ORDER:
                inserted, updated, deleted = _sync(
                    connection, table, rows[table], parents.get(table.name, set())
                )
                report.inserted[table.name] = inserted
                report.updated[table.name] = updated
                report.deleted[table.name] = deleted
            for table in schema.SEED_ORDER:
                count = connection.execute(select(func.count()).select_from(table)).scalar_one()
                report.counts[table.name] = int(count)
    finally:
        engine.dispose()
    return report


def main() -> None:
    """Seed the configured database from the configured data directory."""
    from salon.config import load_settings

    settings = load_settings()
    report = seed_database(settings.effective_database_url, settings.data_dir)
    print(report.summary())  # noqa: T201


if __name__ == "__main__":
    main()
