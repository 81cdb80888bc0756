"""The demo maison's seed data, its SQL schema and the idempotent seeder."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError

from salon.config import PROJECT_ROOT
from salon.integrations import schema
from salon.integrations.schema import AwareDateTime
from salon.integrations.seed import (
    MaisonData,
    SeedDataError,
    load_maison,
    main,
    make_sku,
    seed_database,
)
from salon.storage.db import make_sync_engine

DATA_DIR = PROJECT_ROOT / "data" / "maison"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")

PRODUCT_NAMES = {
    "leather_goods": [
        "Aurore tote", "Céleste saddle bag", "Mistral clutch", "Ondine bucket bag",
        "Vesper briefcase", "Lune card holder", "Soleil belt", "Alizé weekender",
        "Opaline mini bag", "Zéphyr wallet",
    ],
    "ready_to_wear": [
        "Riviera cashmere coat", "Capri linen shirt", "Tailleur wool blazer",
        "Sable trench coat", "Étoile silk scarf", "Amalfi silk dress",
        "Alpine cashmere sweater", "Portofino linen trousers", "Lumière evening gown",
        "Nocturne velvet jacket",
    ],
    "jewellery": [
        "Constellation necklace", "Halo ring", "Perle earrings", "Astre bracelet",
        "Comète pendant", "Orbite bangle", "Aube signet ring", "Rosée ear cuffs",
    ],
    "watches": [
        "Méridien 38", "Méridien Chronographe", "Équinoxe 34", "Solstice Automatique",
        "Horizon GMT", "Éclipse Tourbillon",
    ],
    "fragrance": [
        "Eau de Solenne", "Nuit Blanche", "Jardin d'Hiver", "Ambre Sauvage",
        "Fleur de Sel", "Bois Doré",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def maison() -> MaisonData:
    return load_maison(DATA_DIR)


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of the seed files."""
    target = tmp_path / "maison"
    shutil.copytree(DATA_DIR, target)
    return target


@pytest.fixture()
def engine_for() -> Iterator[Any]:
    """Make engines that are disposed after the test (so PostgreSQL can drop the db)."""
    engines: list[Engine] = []

    def make(url: str) -> Engine:
        engine = make_sync_engine(url)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} should occur exactly once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _latest(client: Any, purpose: str) -> bool | None:
    records = [c for c in client.consents if c.purpose == purpose]
    return max(records, key=lambda c: c.at).granted if records else None


# ── The seed files ─────────────────────────────────────────────────────────────


def test_counts_and_catalog(maison: MaisonData) -> None:
    assert len(maison.products) == 40
    assert len(maison.clients) >= 30
    assert len(maison.orders) >= 20
    assert set(maison.boutiques) == {"paris", "london", "milan"}
    assert len(maison.events) == 2
    assert {a.name for a in maison.advisors.values()} >= {
        "Sophie Marchand", "Camille Roux", "James Whitaker", "Olivia Hart", "Giulia Ferri",
    }  # fmt: skip
    by_category: dict[str, list[str]] = {}
    for product in maison.products.values():
        by_category.setdefault(product.category, []).append(product.name)
        assert product.id[:2] == {"leather_goods": "LG", "ready_to_wear": "RW", "jewellery": "JW", "watches": "WT", "fragrance": "FR"}[product.category]  # fmt: skip
        assert product.price_eur > 0 and product.price_gbp > 0
        assert product.description and product.materials and product.provenance["atelier"]
    assert {k: sorted(v) for k, v in by_category.items()} == {
        k: sorted(v) for k, v in PRODUCT_NAMES.items()
    }


def test_boutiques_and_hours(maison: MaisonData) -> None:
    zones = {b.id: b.time_zone for b in maison.boutiques.values()}
    assert zones == {"paris": "Europe/Paris", "london": "Europe/London", "milan": "Europe/Rome"}
    assert "Faubourg Saint-Honoré" in maison.boutiques["paris"].address
    assert "Mount Street" in maison.boutiques["london"].address
    assert "Via della Spiga" in maison.boutiques["milan"].address
    assert 6 not in maison.boutiques["paris"].hours  # closed on Sundays
    for boutique in maison.boutiques.values():
        assert boutique.slot_minutes == 60 and boutique.salons >= 2
        assert set(boutique.services) <= set(maison.services)
    for service in maison.services.values():
        assert set(service.label) == {"en", "fr", "it"}


def test_stock_has_gaps_for_restock_alerts(maison: MaisonData) -> None:
    variants = [v for p in maison.products.values() for v in p.variants]
    sold_out = [v for v in variants if not any(v.stock.values())]
    partly_out = [v for v in variants if 0 in v.stock.values() and any(v.stock.values())]
    last_piece = [v for v in variants if 1 in v.stock.values()]
    assert sold_out and partly_out and last_piece
    assert maison.products["LG-002"].variant("Tan", "one size").stock["paris"] == 0


def test_orders_reference_real_products_and_variants(maison: MaisonData) -> None:
    assert all(re.fullmatch(r"SOL-\d{6}", number) for number in maison.orders)
    statuses = set()
    for order in maison.orders.values():
        statuses.add(order.status)
        assert order.client in maison.clients
        assert order.created_at.tzinfo is not None
        for item in order.items:
            variant = maison.variant(item.product_id, item.colour, item.size)
            assert variant is not None, (order.number, item)
            assert item.sku == variant.sku == make_sku(item.product_id, item.colour, item.size)
        if order.status in ("shipped", "out_for_delivery", "delivered"):
            assert order.carrier
        if order.status == "delayed":
            assert order.delay_reason
    assert statuses >= {"shipped", "delivered", "delayed", "placed", "in_preparation"}


def test_clients_advisors_phones_and_purchases(maison: MaisonData) -> None:
    phones = [c.whatsapp for c in maison.clients.values() if c.whatsapp]
    assert len(set(phones)) == len(phones)
    user_ids = [c.user_id for c in maison.clients.values() if c.user_id]
    assert user_ids and len(set(user_ids)) == len(user_ids)
    username_only = [c.id for c in maison.clients.values() if c.whatsapp is None]
    assert username_only == ["C-031"]  # known by her BSUID alone
    for client in maison.clients.values():
        assert client.whatsapp or client.user_id
        if client.whatsapp:
            assert E164.match(client.whatsapp), client.whatsapp
            assert client.wa_id == client.whatsapp[1:]
        else:
            assert client.wa_id is None
        assert client.advisor in maison.advisors
        assert client.home_boutique in maison.boutiques
        for purchase in client.purchases:
            assert maison.variant(purchase.product_id, purchase.colour, purchase.size)
        for wish in client.preferences["wishlist"]:
            assert maison.variant(wish["product_id"], wish["colour"], wish["size"])
        assert all(c.at.tzinfo is not None for c in client.consents)


def test_ms_laurent_and_consent_cases(maison: MaisonData) -> None:
    laurent = next(c for c in maison.clients.values() if c.last_name == "Laurent")
    assert (laurent.title, laurent.first_name, laurent.tier) == ("Ms", "Claire", "VIC")
    assert (laurent.home_boutique, laurent.advisor) == ("paris", "sophie-marchand")
    assert (laurent.language, laurent.whatsapp) == ("fr", "+33600000001")
    clients = maison.clients.values()
    assert any(_latest(c, "marketing") is False for c in clients)
    assert any(not _latest(c, "personalisation") for c in clients)
    # a STOP keyword recorded after an earlier opt-in: the history is kept
    assert any(
        [r.granted for r in c.consents if r.purpose == "marketing"] == [True, False]
        for c in clients
    )


def test_events_and_bookings(maison: MaisonData) -> None:
    titles = {e.title["en"]: e for e in maison.events.values()}
    assert titles["Autumn collection preview"].boutique == "paris"
    assert titles["Haute Joaillerie trunk show"].boutique == "london"
    for event in maison.events.values():
        assert date(2026, 12, 1) <= event.starts_at.date() <= date(2027, 1, 31)
        assert event.rsvps and event.title["fr"]
        # Every language the maison writes in names the event and its dress code.
        assert set(event.title) == set(event.dress_code) == {"en", "fr", "it"}
    assert maison.appointments
    assert all(a.starts_at.tzinfo is not None for a in maison.appointments.values())


# ── Validation errors name the file and the item ─────────────────────────────


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "orders.yml",
            "{product_id: JW-006, colour: Yellow gold",
            "{product_id: JW-099, colour: Yellow gold",
            r"orders\.yml: orders\[\d+\] \(SOL-104260\).*unknown product id 'JW-099'",
        ),
        (
            "orders.yml",
            '{product_id: RW-001, colour: Camel, size: "38"',
            '{product_id: RW-001, colour: Camel, size: "46"',
            r"orders\.yml: .*SOL-104233.*RW-001 has no variant in colour 'Camel' and size '46'",
        ),
        (
            "clients.yml",
            "advisor: giulia-ferri\n    home_boutique: milan\n    time_zone: Europe/Rome\n    birthday: 1981",
            "advisor: giulia-ferra\n    home_boutique: milan\n    time_zone: Europe/Rome\n    birthday: 1981",
            r"clients\.yml: clients\[\d+\] \(C-023\): unknown advisor 'giulia-ferra'",
        ),
        (
            "clients.yml",
            'whatsapp: "+447700900101"',
            'whatsapp: "+44 7700 900101"',
            r"clients\.yml: clients\[\d+\] \(C-013\): whatsapp '\+44 7700 900101' is malformed",
        ),
        (
            "clients.yml",
            'whatsapp: "+447700900102"',
            'whatsapp: "+447700900101"',
            r"clients\.yml: clients\[\d+\] \(C-014\): duplicate WhatsApp number",
        ),
        (
            "clients.yml",
            "    user_id: FR.5772156649015328606\n",
            "",
            r"clients\.yml: clients\[\d+\] \(C-031\): a client needs a WhatsApp number",
        ),
        (
            "products.yml",
            "- id: LG-002\n",
            "- id: LG-001\n",
            r"products\.yml: products\[1\] \(LG-001\): duplicate id 'LG-001'",
        ),
        (
            "products.yml",
            "    care:\n      en: >-\n        Keep in its dust bag",
            "    care:\n      de: >-\n        Keep in its dust bag",
            r"products\.yml: products\[0\] \(LG-001\): field 'care' needs a 'en' text",
        ),
        (
            "products.yml",
            "name: Perle earrings\n    plural: true\n",
            "name: Perle earrings\n    plural: \"yes\"\n",
            r"products\.yml: products\[\d+\] \(JW-003\): field 'plural' must be",
        ),
        (
            "materials.yml",
            "  linen: {fr: lin, it: lino}\n",
            "",
            r"products\.yml: products\[\d+\] \(RW-002\): materials\.yml names no material 'linen'",
        ),
        (
            "materials.yml",
            "  linen: {fr: lin, it: lino}\n",
            "  linen: {fr: lin}\n",
            r"materials\.yml: materials: field 'linen' needs a 'it' text",
        ),
        (
            "orders.yml",
            'created_at: "2026-11-19T20:14:00+01:00"',
            'created_at: "2026-11-19T20:14:00"',
            r"orders\.yml: orders\[0\] \(SOL-104233\): naive datetime",
        ),
        (
            "maison.yml",
            "    days: 30\n",
            "    days: 0\n",
            r"maison\.yml: maison: returns: field 'days' must be at least 1",
        ),
        (
            "maison.yml",
            "      en: unworn, with its labels and in its packaging\n",
            "",
            r"maison\.yml: maison: returns: field 'condition' needs a 'en' text",
        ),
        (
            "bookings.yml",
            'salon: 2\n    starts_at: "2026-11-27T11:00:00+01:00"',
            'salon: 1\n    starts_at: "2026-11-27T11:00:00+01:00"',
            r"bookings\.yml: .*APT-20261127-PAR-02.*double-booked",
        ),
        (
            "bookings.yml",
            'starts_at: "2026-11-30T15:00:00+01:00"',
            'starts_at: "2026-11-30T15:30:00+01:00"',
            r"bookings\.yml: .*APT-20261130-MIL-01.*slot grid",
        ),
    ],
)
def test_inconsistent_data_is_rejected_with_file_and_item(
    data_copy: Path, file: str, old: str, new: str, expected: str
) -> None:
    load_maison(data_copy)  # the copy is valid before the edit
    _edit(data_copy / file, old, new)
    with pytest.raises(SeedDataError, match=expected):
        load_maison(data_copy)


def test_malformed_yaml_names_the_file(data_copy: Path) -> None:
    with (data_copy / "events.yml").open("a", encoding="utf-8") as handle:
        handle.write("\n  - id: broken\n    title: {en: [unclosed\n")
    with pytest.raises(SeedDataError, match=r"^events\.yml: line \d+, column \d+: invalid YAML"):
        load_maison(data_copy)


def test_the_materials_are_named_in_each_language_of_the_maison(data_copy: Path) -> None:
    """Every material of the catalog has its French and Italian name (products.yml names
    them in English); without materials.yml the products keep their English ones alone."""
    coat = load_maison(data_copy).products["RW-004"]
    assert coat.materials == ["cotton gabardine", "calfskin trims", "wool collar"]
    assert coat.materials_by_language == {"fr": ["gabardine de coton", "finitions en veau", "col en laine"],
                                          "it": ["gabardine di cotone", "finiture in vitello", "collo in lana"]}
    (data_copy / "materials.yml").unlink()
    assert load_maison(data_copy).products["RW-004"].materials_by_language == {}


def test_missing_file_names_the_file(data_copy: Path) -> None:
    (data_copy / "advisors.yml").unlink()
    with pytest.raises(SeedDataError, match=r"^advisors\.yml: file not found"):
        load_maison(data_copy)


# ── Seeding, on SQLite and PostgreSQL ─────────────────────────────────────────


def test_seed_is_idempotent(database_url: str, engine_for: Any, maison: MaisonData) -> None:
    first = seed_database(database_url, DATA_DIR)
    assert first.counts["maison_products"] == 40
    assert first.counts["maison_clients"] == len(maison.clients)
    assert first.counts["maison_orders"] == len(maison.orders)
    assert first.counts["maison_boutiques"] == 3
    assert first.counts["maison_events"] == 2
    assert first.counts["maison_product_variants"] == sum(
        len(p.variants) for p in maison.products.values()
    )
    assert first.counts["maison_consents"] == sum(len(c.consents) for c in maison.clients.values())
    assert sum(first.inserted.values()) == sum(first.counts.values())

    second = seed_database(database_url, DATA_DIR)
    assert second.counts == first.counts
    assert second.changed == 0

    engine = engine_for(database_url)
    for table in schema.SEED_ORDER:
        assert _count(engine, table) == first.counts[table.name], table.name
    with engine.connect() as connection:
        laurent = connection.execute(
            select(schema.clients).where(schema.clients.c.wa_id == "33600000001")
        ).one()
        stock = connection.execute(
            select(schema.variant_stock.c.quantity).where(
                schema.variant_stock.c.sku == make_sku("LG-002", "Tan", "one size"),
                schema.variant_stock.c.boutique_id == "paris",
            )
        ).scalar_one()
    assert (laurent.last_name, laurent.advisor_id, laurent.phone) == (
        "Laurent", "sophie-marchand", "+33600000001",
    )  # fmt: skip
    assert laurent.preferences["wishlist"][0]["product_id"] == "LG-002"
    assert stock == 0


def test_reseed_after_edit_updates_in_place(
    database_url: str, data_copy: Path, engine_for: Any
) -> None:
    before = seed_database(database_url, data_copy)
    _edit(
        data_copy / "products.yml", "price: {eur: 3400, gbp: 2950}", "price: {eur: 3550, gbp: 3050}"
    )
    _edit(
        data_copy / "orders.yml",
        "status: in_preparation\n    currency: EUR",
        "status: confirmed\n    currency: EUR",
    )
    _edit(data_copy / "boutiques.yml", 'sunday: "12:00-17:00"', "sunday: closed")
    _edit(
        data_copy / "orders.yml",
        '      - {product_id: RW-002, colour: Blanc, size: "42", quantity: 2, unit_price: 590}\n',
        "",
    )

    after = seed_database(database_url, data_copy)
    assert sum(after.inserted.values()) == 0
    assert after.updated["maison_products"] == 1
    assert after.updated["maison_orders"] == 2  # the status, and SOL-104229's total
    assert after.deleted == {**after.deleted, "maison_opening_hours": 1, "maison_order_items": 1}
    assert after.counts["maison_products"] == before.counts["maison_products"]
    assert after.counts["maison_opening_hours"] == before.counts["maison_opening_hours"] - 1

    engine = engine_for(database_url)
    with engine.connect() as connection:
        price = connection.execute(
            select(schema.products.c.price_eur_minor, schema.products.c.price_gbp_minor).where(
                schema.products.c.id == "LG-001"
            )
        ).one()
        status = connection.execute(
            select(schema.orders.c.status).where(schema.orders.c.id == "SOL-104240")
        ).scalar_one()
        total = connection.execute(
            select(schema.orders.c.total_minor).where(schema.orders.c.id == "SOL-104229")
        ).scalar_one()
    assert tuple(price) == (355000, 305000)
    assert status == "confirmed"
    assert total == 79000
    assert seed_database(database_url, data_copy).changed == 0


def test_seeded_datetimes_round_trip_aware(database_url: str, engine_for: Any) -> None:
    seed_database(database_url, DATA_DIR)
    engine = engine_for(database_url)
    with engine.connect() as connection:
        order = connection.execute(
            select(schema.orders).where(schema.orders.c.id == "SOL-104233")
        ).one()
        appointment = connection.execute(
            select(schema.appointments).where(schema.appointments.c.id == "APT-20261127-PAR-01")
        ).one()
    assert order.created_at == datetime(2026, 11, 19, 19, 14, tzinfo=timezone.utc)
    assert order.created_at.utcoffset() == timedelta(0)
    assert order.eta == date(2026, 11, 25)
    assert appointment.starts_at == datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    assert appointment.ends_at - appointment.starts_at == timedelta(minutes=60)


def _probe_table() -> tuple[MetaData, Table]:
    metadata = MetaData()
    table = Table(
        "aware_probe",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at", AwareDateTime),
    )
    return metadata, table


def test_aware_datetime_type_round_trip(database_url: str, engine_for: Any) -> None:
    metadata, table = _probe_table()
    engine = engine_for(database_url)
    metadata.create_all(engine)
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2026, 3, 29, 1, 59, 59, 123456, tzinfo=india)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": 1, "at": moment}, {"id": 2, "at": None}])
        rows = dict(connection.execute(select(table.c.id, table.c.at)).all())
        later = connection.execute(
            select(table.c.id).where(table.c.at > datetime(2026, 3, 28, 20, 0, tzinfo=timezone.utc))
        ).all()
    assert rows[1] == moment
    assert rows[1].tzinfo is not None and rows[1].utcoffset() == timedelta(0)
    assert rows[1].hour == 20 and rows[1].microsecond == 123456
    assert rows[2] is None
    assert [row.id for row in later] == [1]


def test_aware_datetime_type_rejects_naive(database_url: str, engine_for: Any) -> None:
    metadata, table = _probe_table()
    engine = engine_for(database_url)
    metadata.create_all(engine)
    with engine.begin() as connection, pytest.raises(StatementError) as caught:
        connection.execute(insert(table), {"id": 1, "at": datetime(2026, 11, 27, 11, 0)})  # noqa: DTZ001
    assert isinstance(caught.value.orig, ValueError)
    assert "naive" in str(caught.value.orig)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_appointments_cannot_be_double_booked(database_url: str, engine_for: Any) -> None:
    seed_database(database_url, DATA_DIR)
    engine = engine_for(database_url)
    at = datetime(2026, 11, 27, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    booking = {
        "boutique_id": "paris", "starts_at": at, "ends_at": at + timedelta(hours=1),
        "service": "styling_session", "client_id": "C-008", "advisor_id": None,
        "status": "booked", "created_at": at - timedelta(days=2), "notes": None,
    }  # fmt: skip
    appointments = schema.appointments
    with pytest.raises(IntegrityError), engine.begin() as connection:  # salon 1 is taken
        connection.execute(insert(appointments), {**booking, "id": "T-1", "salon_number": 1})
    with pytest.raises(IntegrityError), engine.begin() as connection:  # Sophie is busy
        connection.execute(
            insert(appointments),
            {**booking, "id": "T-2", "salon_number": 3, "advisor_id": "sophie-marchand"},
        )
    with engine.begin() as connection:  # the third salon is free
        connection.execute(insert(appointments), {**booking, "id": "T-3", "salon_number": 3})
    with pytest.raises(IntegrityError), engine.begin() as connection:  # the client is busy
        connection.execute(
            insert(appointments), {**booking, "id": "T-4", "salon_number": 2, "client_id": "C-008"}
        )
    with engine.begin() as connection:  # cancelling frees the salon
        connection.execute(
            update(appointments)
            .where(appointments.c.id == "APT-20261127-PAR-01")
            .values(status="cancelled")
        )
        connection.execute(
            insert(appointments), {**booking, "id": "T-5", "salon_number": 1, "client_id": "C-010"}
        )


def test_clients_are_unique_by_wa_id_and_user_id(database_url: str, engine_for: Any) -> None:
    seed_database(database_url, DATA_DIR)
    engine = engine_for(database_url)
    base = {
        "title": "Ms", "first_name": "Test", "last_name": "Client", "language": "en",
        "tier": "Prospect", "home_boutique_id": "paris", "time_zone": "Europe/Paris",
        "sizes": {}, "preferences": {},
    }  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(schema.clients), {**base, "id": "C-900", "wa_id": "33600000001"})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            insert(schema.clients), {**base, "id": "C-901", "user_id": "FR.4820193746581029374"}
        )
    with pytest.raises(IntegrityError), engine.begin() as connection:  # unreachable
        connection.execute(insert(schema.clients), {**base, "id": "C-902"})


def test_main_seeds_the_configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'main.db'}")
    monkeypatch.setenv("SALON_DATA_DIR", str(DATA_DIR))
    main()
    output = capsys.readouterr().out.strip().splitlines()
    assert len(output) == 1
    assert "products 40" in output[0] and "clients 31" in output[0]
    assert (tmp_path / "main.db").exists()


# ── Dated relative to today ────────────────────────────────────────────────────


@pytest.mark.parametrize("today", [date(2026, 11, 26), date(2026, 11, 29), date(2026, 12, 1), date(2026, 12, 6),
                                   date(2027, 4, 15), date(2027, 10, 31), date(2028, 2, 29)])
def test_the_records_dated_relative_to_today(maison: MaisonData, today: date) -> None:
    dated = load_maison(DATA_DIR, today=today)
    assert maison.house.dated_on is not None
    shift = timedelta(weeks=(today - maison.house.dated_on).days // 7)
    # The records' day lands in the week up to today, by whole weeks: never after it.
    assert 0 <= (today - (maison.house.dated_on + shift)).days <= 6
    for key, written in maison.appointments.items():
        moved = dated.appointments[key]
        boutique = ZoneInfo(maison.boutiques[written.boutique].time_zone)
        before, after = written.starts_at.astimezone(boutique), moved.starts_at.astimezone(boutique)
        # Same weekday and the same wall clock in the boutique, summer time or not.
        assert after.date() == before.date() + shift
        assert after.time() == before.time()
    for key, order in maison.orders.items():
        if order.eta is not None:
            assert dated.orders[key].eta == order.eta + shift
        assert dated.orders[key].created_at - order.created_at in {
            shift, shift - timedelta(hours=1), shift + timedelta(hours=1)}


def test_the_records_as_written_without_today(maison: MaisonData) -> None:
    first = next(iter(maison.appointments.values()))
    assert first.starts_at == datetime.fromisoformat("2026-11-27T11:00:00+01:00")


def test_dating_relative_to_today_needs_the_records_day(data_copy: Path) -> None:
    maison_file = data_copy / "maison.yml"
    maison_file.write_text(re.sub(r"\n\s*dated_on: [\d-]+", "", maison_file.read_text()))
    load_maison(data_copy)  # as written: fine
    with pytest.raises(SeedDataError, match="dated_on"):
        load_maison(data_copy, today=date(2026, 12, 6))
