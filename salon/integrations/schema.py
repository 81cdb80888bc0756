"""SQL tables of the maison's default adapters (CRM, catalog, orders, events, bookings).

SQLAlchemy Core, portable across SQLite and PostgreSQL. Every table is prefixed
``maison_`` so that it cannot collide with Salon's own tables (sessions, outbound,
consent ledger, audit) in the same database.

Conventions:
- Money is stored as integer minor units (``*_minor``: cents, pence) next to an ISO 4217
  currency code; no floating point, no ``Numeric`` (SQLite has no decimal type).
- Instants are :class:`AwareDateTime`: written as UTC, read back as aware UTC datetimes
  on both backends; naive datetimes are refused. Calendar dates (birthdays, ETAs,
  purchase dates) are plain ``Date``; opening hours are local wall-clock ``Time`` in the
  boutique's IANA time zone.
- Appointments cannot be double-booked: a partial unique index on
  ``(boutique_id, starts_at, salon_number)`` over non-cancelled rows. A booking takes a
  free ``salon_number`` in ``1..boutique.salons``; a concurrent booking of the same salon
  fails with ``IntegrityError`` and the caller tries the next one (or reports the slot
  full). Advisors and clients likewise cannot hold two live appointments at one instant.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

CATEGORIES = ("leather_goods", "ready_to_wear", "jewellery", "watches", "fragrance")
TIERS = ("VIC", "Platinum", "Gold", "Prospect")
CLIENT_TITLES = ("Ms", "Mr", "Mx", "Mme", "M.", "Dr")
LANGUAGES = ("en", "fr", "it")
GENDERS = ("f", "m")
"""How French and Italian agree with an advisor (conseillère, la Sua consulente)."""
CONSENT_PURPOSES = ("service", "utility", "marketing", "personalisation", "llm")
CONSENT_SOURCES = ("boutique_form", "web", "whatsapp_keyword", "crm_import")
ORDER_STATUSES = (
    "placed",
    "confirmed",
    "in_preparation",
    "shipped",
    "out_for_delivery",
    "delivered",
    "delayed",
    "cancelled",
    "returned",
)
RSVP_STATUSES = ("invited", "accepted", "declined", "waitlisted")
APPOINTMENT_STATUSES = ("booked", "completed", "cancelled", "no_show")
#: Appointment statuses that still occupy their salon, advisor and client.
LIVE_APPOINTMENT_CONDITION = "status <> 'cancelled'"


class AwareDateTime(TypeDecorator):
    """A timezone-aware instant stored as UTC on every backend.

    SQLite has no time zone support and silently drops ``tzinfo``; PostgreSQL's
    ``timestamptz`` keeps the instant but returns it in the session time zone. This
    type normalises both: binds must be aware (naive input raises ``ValueError``,
    wrapped by SQLAlchemy in ``StatementError``) and results are aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"AwareDateTime expects a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a time zone")
        utc = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


maison_metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

house = Table(
    "maison_house",
    maison_metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("founded", Integer, nullable=False),
    Column("headquarters", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("default_language", String(8), nullable=False),
    Column("languages", JSON, nullable=False),
    Column("website", String(200)),
    Column("tone", JSON, nullable=False),
    # The returns policy (salon.integrations.house.ReturnsPolicy as JSON); NULL: none stated.
    Column("returns", JSON),
)

services = Table(
    "maison_services",
    maison_metadata,
    Column("id", String(64), primary_key=True),
    Column("label", JSON, nullable=False),
    Column("description", JSON, nullable=False),
)

boutiques = Table(
    "maison_boutiques",
    maison_metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("address", String(300), nullable=False),
    Column("city", String(100), nullable=False),
    Column("country", String(2), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("email", String(200)),
    Column("slot_minutes", Integer, nullable=False),
    Column("salons", Integer, nullable=False),
    Column("services", JSON, nullable=False),
    CheckConstraint("slot_minutes > 0", name="slot_minutes_positive"),
    CheckConstraint("salons >= 1", name="salons_positive"),
)

opening_hours = Table(
    "maison_opening_hours",
    maison_metadata,
    Column("boutique_id", ForeignKey("maison_boutiques.id"), primary_key=True),
    Column("weekday", Integer, primary_key=True),  # 0 = Monday … 6 = Sunday
    Column("opens", Time, nullable=False),
    Column("closes", Time, nullable=False),
    CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
    CheckConstraint("opens < closes", name="opens_before_closes"),
)

advisors = Table(
    "maison_advisors",
    maison_metadata,
    Column("id", String(64), primary_key=True),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("boutique_id", ForeignKey("maison_boutiques.id"), nullable=False, index=True),
    Column("languages", JSON, nullable=False),
    Column("email", String(200)),
    # "f" or "m": how French and Italian agree with the advisor ("votre conseillère
    # Sophie", "la Sua consulente Giulia"); NULL keeps the copy from naming a gender.
    Column("gender", String(1)),
)

products = Table(
    "maison_products",
    maison_metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("materials", JSON, nullable=False),
    Column("colours", JSON, nullable=False),
    Column("sizes", JSON, nullable=False),
    Column("price_eur_minor", Integer, nullable=False),
    Column("price_gbp_minor", Integer, nullable=False),
    Column("care", Text, nullable=False),
    Column("atelier", String(200), nullable=False),
    Column("origin_country", String(100), nullable=False),
    Column("craft", Text, nullable=False),
    Column("made_to_order", JSON, nullable=False),
    # True when the English name is plural ("Perle earrings"): answers agree with it.
    # Nullable, so an older database gains the column in place (NULL reads as singular).
    Column("plural", Boolean),
    # The care notes by language ({"en": …, "fr": …, "it": …}); "care" is the English one.
    Column("care_by_language", JSON),
    # The materials in the maison's other languages ({"fr": […], "it": […]}, in the order
    # of "materials", which are English); NULL in an older database: none.
    Column("materials_by_language", JSON),
    CheckConstraint(_one_of("category", CATEGORIES), name="category"),
    CheckConstraint("price_eur_minor > 0 AND price_gbp_minor > 0", name="prices_positive"),
)

product_variants = Table(
    "maison_product_variants",
    maison_metadata,
    Column("sku", String(64), primary_key=True),
    Column("product_id", ForeignKey("maison_products.id"), nullable=False),
    Column("colour", String(100), nullable=False),
    Column("size", String(32), nullable=False),
    UniqueConstraint("product_id", "colour", "size"),
)

variant_stock = Table(
    "maison_variant_stock",
    maison_metadata,
    Column("sku", ForeignKey("maison_product_variants.sku"), primary_key=True),
    Column("boutique_id", ForeignKey("maison_boutiques.id"), primary_key=True),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity >= 0", name="quantity_not_negative"),
)

clients = Table(
    "maison_clients",
    maison_metadata,
    Column("id", String(16), primary_key=True),
    Column("title", String(8), nullable=False),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("phone", String(20), unique=True),  # E.164 with "+"
    Column("wa_id", String(20), unique=True),  # Meta's form: the same digits, no "+"
    Column("user_id", String(200), unique=True),  # business-scoped user id (BSUID)
    Column("email", String(200)),
    Column("language", String(8), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("advisor_id", ForeignKey("maison_advisors.id"), index=True),
    Column("home_boutique_id", ForeignKey("maison_boutiques.id"), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("birthday", Date),
    Column("sizes", JSON, nullable=False),
    Column("preferences", JSON, nullable=False),
    CheckConstraint(_one_of("tier", TIERS), name="tier"),
    CheckConstraint(_one_of("title", CLIENT_TITLES), name="title"),
    CheckConstraint("wa_id IS NOT NULL OR user_id IS NOT NULL", name="reachable"),
)

purchases = Table(
    "maison_purchases",
    maison_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", ForeignKey("maison_clients.id"), nullable=False),
    Column("product_id", ForeignKey("maison_products.id"), nullable=False),
    Column("sku", ForeignKey("maison_product_variants.sku")),
    Column("colour", String(100), nullable=False),
    Column("size", String(32), nullable=False),
    Column("purchased_on", Date, nullable=False),
    Column("boutique_id", ForeignKey("maison_boutiques.id"), nullable=False),
    Column("price_minor", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    UniqueConstraint("client_id", "product_id", "colour", "size", "purchased_on"),
)

consents = Table(
    "maison_consents",
    maison_metadata,
    # Append-only history: the current state of a purpose is its latest row by
    # recorded_at. Never update or delete; record a new decision instead.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", ForeignKey("maison_clients.id"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", String(32), nullable=False),
    Column("recorded_at", AwareDateTime, nullable=False),
    Column("text_shown", Text, nullable=False),
    UniqueConstraint("client_id", "purpose", "recorded_at"),
    CheckConstraint(_one_of("purpose", CONSENT_PURPOSES), name="purpose"),
    CheckConstraint(_one_of("source", CONSENT_SOURCES), name="source"),
)

orders = Table(
    "maison_orders",
    maison_metadata,
    Column("id", String(16), primary_key=True),  # SOL-123456
    Column("client_id", ForeignKey("maison_clients.id"), nullable=False, index=True),
    Column("created_at", AwareDateTime, nullable=False),
    Column("updated_at", AwareDateTime, nullable=False),
    Column("status", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", Integer, nullable=False),
    Column("carrier", String(64)),
    Column("tracking_number", String(64)),
    Column("tracking_url", String(500)),
    Column("shipped_from", String(200)),
    Column("shipped_at", AwareDateTime),
    Column("eta", Date),
    Column("delivered_at", AwareDateTime),
    Column("delivery_city", String(100), nullable=False),
    Column("delivery_country", String(2), nullable=False),
    Column("delay_reason", Text),
    Column("notes", Text),
    CheckConstraint(_one_of("status", ORDER_STATUSES), name="status"),
)

order_items = Table(
    "maison_order_items",
    maison_metadata,
    Column("order_id", ForeignKey("maison_orders.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_id", ForeignKey("maison_products.id"), nullable=False),
    Column("sku", ForeignKey("maison_product_variants.sku"), nullable=False),
    Column("colour", String(100), nullable=False),
    Column("size", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

events = Table(
    "maison_events",
    maison_metadata,
    Column("id", String(64), primary_key=True),
    Column("title", JSON, nullable=False),  # {"en": …, "fr": …}
    Column("description", JSON, nullable=False),
    Column("boutique_id", ForeignKey("maison_boutiques.id"), nullable=False),
    Column("starts_at", AwareDateTime, nullable=False),
    Column("ends_at", AwareDateTime, nullable=False),
    Column("rsvp_by", Date),
    Column("capacity", Integer, nullable=False),
    Column("guests_per_invitation", Integer, nullable=False),
    Column("dress_code", JSON, nullable=False),
    Column("audience", JSON, nullable=False),  # tiers invited
    CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    CheckConstraint("capacity > 0", name="capacity_positive"),
)

event_rsvps = Table(
    "maison_event_rsvps",
    maison_metadata,
    Column("event_id", ForeignKey("maison_events.id"), primary_key=True),
    Column("client_id", ForeignKey("maison_clients.id"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("guests", Integer, nullable=False, server_default=text("0")),
    Column("responded_at", AwareDateTime),
    Column("notes", Text),
    CheckConstraint(_one_of("status", RSVP_STATUSES), name="status"),
    CheckConstraint("guests >= 0", name="guests_not_negative"),
)

appointments = Table(
    "maison_appointments",
    maison_metadata,
    Column("id", String(32), primary_key=True),
    Column("boutique_id", ForeignKey("maison_boutiques.id"), nullable=False),
    Column("salon_number", Integer, nullable=False),
    Column("starts_at", AwareDateTime, nullable=False),
    Column("ends_at", AwareDateTime, nullable=False),
    Column("service", ForeignKey("maison_services.id"), nullable=False),
    Column("client_id", ForeignKey("maison_clients.id"), nullable=False),
    Column("advisor_id", ForeignKey("maison_advisors.id")),
    Column("status", String(16), nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    Column("notes", Text),
    CheckConstraint(_one_of("status", APPOINTMENT_STATUSES), name="status"),
    CheckConstraint("salon_number >= 1", name="salon_number_positive"),
    CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    Index(
        "uq_maison_appointments_live_salon",
        "boutique_id",
        "starts_at",
        "salon_number",
        unique=True,
        sqlite_where=text(LIVE_APPOINTMENT_CONDITION),
        postgresql_where=text(LIVE_APPOINTMENT_CONDITION),
    ),
    Index(
        "uq_maison_appointments_live_advisor",
        "advisor_id",
        "starts_at",
        unique=True,
        sqlite_where=text(f"{LIVE_APPOINTMENT_CONDITION} AND advisor_id IS NOT NULL"),
        postgresql_where=text(f"{LIVE_APPOINTMENT_CONDITION} AND advisor_id IS NOT NULL"),
    ),
    Index(
        "uq_maison_appointments_live_client",
        "client_id",
        "starts_at",
        unique=True,
        sqlite_where=text(LIVE_APPOINTMENT_CONDITION),
        postgresql_where=text(LIVE_APPOINTMENT_CONDITION),
    ),
    Index("ix_maison_appointments_boutique_day", "boutique_id", "starts_at"),
)

#: Tables in dependency order (parents first), as the seed writes them.
SEED_ORDER: tuple[Table, ...] = (
    house,
    services,
    boutiques,
    opening_hours,
    advisors,
    products,
    product_variants,
    variant_stock,
    clients,
    purchases,
    consents,
    orders,
    order_items,
    events,
    event_rsvps,
    appointments,
)
