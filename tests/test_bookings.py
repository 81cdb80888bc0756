"""The bookings port on SQLite and PostgreSQL: the slot grid in each boutique's zone,
free slots around the appointments in the book, booking, moving and cancelling, and no
double booking when many clients take the same slot at once.

Every date is reckoned from the suite's "now" (tests/instants.py) in the boutique's own
zone: the tests start from an empty book and make the appointments they need, so they
hold at any instant. One test reads the seeded book itself, at the moment it is dated for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from salon.clock import ManualClock
from salon.integrations.bookings import BookingError, ClientBusy, SlotTaken, SqlBookings
from salon.integrations.schema import appointments
from salon.storage.db import make_async_engine
from tests.instants import REFERENCE_NOW, suite_now
from tests.seeding import empty_book, opening_hours, seed_maison

PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
ROME = ZoneInfo("Europe/Rome")
NOW = suite_now()
MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = range(7)


def ahead(weekday: int, zone: ZoneInfo) -> date:
    """The first such weekday strictly after today in ``zone``."""
    today = NOW.astimezone(zone).date()
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def before(weekday: int, zone: ZoneInfo) -> date:
    """The last such weekday strictly before today in ``zone``."""
    today = NOW.astimezone(zone).date()
    return today - timedelta(days=(today.weekday() - weekday - 1) % 7 + 1)


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture()
async def book(database_url: str, clock: ManualClock) -> AsyncIterator[SqlBookings]:
    seed_maison(database_url)
    empty_book(database_url)
    engine = make_async_engine(database_url)
    yield SqlBookings(engine, clock)
    await engine.dispose()


async def test_boutiques_hours_and_grid_in_local_time(book: SqlBookings) -> None:
    shops = await book.boutiques()
    assert set(shops) == {"paris", "london", "milan"}
    assert {i: dict(s.hours) for i, s in shops.items()} == {i: opening_hours(i).days for i in shops}
    paris, london = shops["paris"], shops["london"]
    assert paris.hours[0] == (time(10, 30), time(19, 0)) and 6 not in paris.hours  # closed Sunday
    monday = paris.grid(ahead(MONDAY, PARIS))
    assert monday[0] == at(ahead(MONDAY, PARIS), 10, 30)
    assert monday[-1] == at(ahead(MONDAY, PARIS), 17, 30)  # the last that ends by 19:00
    assert paris.grid(ahead(SUNDAY, PARIS)) == []
    sunday = ahead(SUNDAY, LONDON)
    assert london.grid(sunday) == [at(sunday, h, zone=LONDON) for h in (12, 13, 14, 15, 16)]
    thursday = ahead(THURSDAY, PARIS)
    assert paris.is_open_at(at(thursday, 10, 0).astimezone(timezone.utc))
    assert not paris.is_open_at(at(thursday, 9, 59).astimezone(timezone.utc))
    assert paris.is_open_at(at(thursday, 19, 59)) and not paris.is_open_at(at(thursday, 20, 0))
    saturday = ahead(SATURDAY, PARIS)
    assert paris.next_opening(at(saturday, 20, 0)) == \
        at(saturday + timedelta(days=2), 10, 30)  # Saturday night → Monday 10:30
    assert london.next_opening(at(saturday, 20, 0, LONDON)) == \
        at(saturday + timedelta(days=1), 12, 0, LONDON)  # London opens on Sunday at noon
    labels = await book.service_labels("fr")
    assert labels["private_viewing"] == "Présentation privée"
    assert labels["styling_session"] == "Séance de stylisme"
    assert await book.service_labels("it") == {
        "styling_session": "Consulenza di stile", "private_viewing": "Presentazione privata",
        "repair_dropoff": "Consegna per riparazione", "fitting": "Prova sartoriale"}


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - SUNDAY) % 7)


async def test_the_grid_on_the_sundays_the_clocks_change(book: SqlBookings) -> None:
    """London is open on Sundays, the days the clocks change: the same wall-clock hours,
    each an hour of real time apart, with the offset of the day."""
    london = (await book.boutiques())["london"]
    year = NOW.astimezone(LONDON).year
    for sunday, offset in ((_last_sunday(year, 3), timedelta(hours=1)),
                           (_last_sunday(year, 10), timedelta(0))):
        grid = london.grid(sunday)
        assert [s.astimezone(LONDON).hour for s in grid] == [12, 13, 14, 15, 16]
        assert {s.utcoffset() for s in grid} == {offset}
        utc = [s.astimezone(timezone.utc) for s in grid]
        assert utc == [utc[0] + timedelta(hours=n) for n in range(5)]  # an hour of real time apart


async def test_free_slots_leave_out_full_salons_and_the_past(book: SqlBookings) -> None:
    # London has two salons: with both booked at 10:00, Saturday starts at 11:00.
    saturday = ahead(SATURDAY, LONDON)
    for client in ("C-014", "C-017"):
        await book.book(client_id=client, boutique_id="london", service="fitting",
                        starts_at=at(saturday, 10, zone=LONDON))
    found = await book.free_slots("london", at(saturday, 0, zone=LONDON),
                                  at(saturday + timedelta(days=1), 0, zone=LONDON), limit=3)
    assert [s.starts_at for s in found] == [at(saturday, h, zone=LONDON) for h in (11, 12, 13)]
    assert all(s.free_salons == 2 for s in found)
    # Paris has three: with three booked and one of them cancelled, one salon is free.
    friday = at(ahead(FRIDAY, PARIS), 11)
    made = [await book.book(client_id=client, boutique_id="paris", service="fitting", starts_at=friday)
            for client in ("C-001", "C-012", "C-006")]
    assert await book.free_slots("paris", friday, friday + timedelta(minutes=1)) == []
    await book.cancel(made[0].id, "C-001")
    [eleven] = await book.free_slots("paris", friday, friday + timedelta(minutes=1))
    assert eleven.starts_at == friday and eleven.free_salons == 1
    # Nothing before now: asked from yesterday on, the slots offered are the grid's next ones.
    paris = (await book.boutiques())["paris"]
    today = NOW.astimezone(PARIS).date()
    grid = [s for n in range(9) for s in paris.grid(today + timedelta(days=n))]
    found = await book.free_slots("paris", NOW - timedelta(days=1), NOW + timedelta(days=8))
    assert [s.starts_at for s in found] == [s for s in grid if s > NOW][:3]


async def test_a_slot_starting_this_very_moment_is_not_offered(book: SqlBookings,
                                                               clock: ManualClock) -> None:
    """Every slot offered can be booked: booking refuses a slot that starts now, so the
    free slots at that moment begin with the next one."""
    tuesday = ahead(TUESDAY, PARIS)
    clock.set(at(tuesday, 10))  # opening time, the first slot's start
    found = await book.free_slots("paris", at(tuesday, 0), at(tuesday + timedelta(days=1), 0))
    assert [s.starts_at for s in found] == [at(tuesday, h) for h in (11, 12, 13)]
    with pytest.raises(BookingError, match="in the past"):
        await book.book(client_id="C-001", boutique_id="paris", service="fitting",
                        starts_at=at(tuesday, 10))
    made = await book.book(client_id="C-001", boutique_id="paris", service="fitting",
                           starts_at=found[0].starts_at)
    assert made.starts_at == at(tuesday, 11)


async def test_book_move_cancel(book: SqlBookings) -> None:
    thursday = ahead(THURSDAY, PARIS)
    start = at(thursday, 15)
    made = await book.book(client_id="C-001", boutique_id="paris", service="private_viewing",
                           starts_at=start, advisor_id="sophie-marchand", notes="Party of 2.")
    assert made.id.startswith(f"APT-{thursday:%Y%m%d}-PAR-") and made.status == "booked"
    assert made.ends_at - made.starts_at == timedelta(hours=1) and made.advisor_id == "sophie-marchand"
    stored = await book.get(made.id)
    assert stored == made and stored.starts_at.tzinfo is not None
    assert made in await book.upcoming("C-001")
    with pytest.raises(ClientBusy):
        await book.book(client_id="C-001", boutique_id="london", service="fitting",
                        starts_at=at(thursday, 14, zone=LONDON))  # the same instant
    # Sophie is busy then: another client's booking at that time goes ahead without her.
    other = await book.book(client_id="C-003", boutique_id="paris", service="fitting",
                            starts_at=start, advisor_id="sophie-marchand")
    assert other.advisor_id is None and other.salon_number != made.salon_number
    friday = thursday + timedelta(days=1)
    moved = await book.reschedule(made.id, "C-001", at(friday, 11))
    assert moved.id != made.id and moved.service == "private_viewing"
    assert moved.id.startswith(f"APT-{friday:%Y%m%d}-PAR-") and moved.starts_at == at(friday, 11)
    assert moved.notes == f"Party of 2. Moved from {made.id}."
    assert (await book.get(made.id)).status == "cancelled"  # type: ignore[union-attr]
    assert await book.upcoming("C-001") == [moved]
    assert await book.cancel(moved.id, "C-002") is None  # not theirs
    cancelled = await book.cancel(moved.id, "C-001")
    assert cancelled is not None and cancelled.status == "cancelled"
    assert await book.cancel(moved.id, "C-001") is None  # already
    with pytest.raises(BookingError, match="no live appointment"):
        await book.reschedule(moved.id, "C-001", at(friday, 12))


@pytest.mark.parametrize(("boutique", "service", "start", "reason"), [
    ("paris", "fitting", at(ahead(SUNDAY, PARIS), 11), "not a slot"),  # closed on Sunday
    ("paris", "fitting", at(ahead(TUESDAY, PARIS), 11, 30), "not a slot"),  # off the grid
    ("paris", "fitting", at(ahead(MONDAY, PARIS), 10), "not a slot"),  # Monday opens at 10:30
    ("milan", "repair_dropoff", at(ahead(TUESDAY, ROME), 11, zone=ROME), "does not offer"),
    ("paris", "fitting", at(before(WEDNESDAY, PARIS), 11), "in the past"),
    ("rome", "fitting", at(ahead(TUESDAY, PARIS), 11), "unknown boutique"),
], ids=["sunday", "off-grid", "before-opening", "service", "past", "boutique"])
async def test_impossible_bookings_are_refused(book: SqlBookings, boutique: str, service: str,
                                               start: datetime, reason: str) -> None:
    with pytest.raises(BookingError, match=reason):
        await book.book(client_id="C-001", boutique_id=boutique, service=service, starts_at=start)


async def test_a_full_slot_is_refused_and_a_move_into_it_keeps_the_old_appointment(book: SqlBookings) -> None:
    saturday = ahead(SATURDAY, LONDON)
    full = at(saturday, 10, zone=LONDON)
    for client in ("C-014", "C-017"):  # both London salons
        await book.book(client_id=client, boutique_id="london", service="styling_session",
                        starts_at=full)
    with pytest.raises(SlotTaken):
        await book.book(client_id="C-013", boutique_id="london", service="fitting", starts_at=full)
    mine = await book.book(client_id="C-013", boutique_id="london", service="fitting",
                           starts_at=at(saturday, 12, zone=LONDON))
    with pytest.raises(SlotTaken):
        await book.reschedule(mine.id, "C-013", full)
    assert (await book.get(mine.id)).status == "booked"  # type: ignore[union-attr]
    assert await book.upcoming("C-013") == [mine]


@pytest.fixture()
async def seeded_book(database_url: str) -> AsyncIterator[SqlBookings]:
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    yield SqlBookings(engine, ManualClock(REFERENCE_NOW))  # Thursday 26 November 2026
    await engine.dispose()


async def test_the_seeded_book_is_read_as_dated(seeded_book: SqlBookings) -> None:
    """The seed's appointments (data/maison/bookings.yml), read at the moment they are
    dated for, whatever the suite's "now": booked salons are taken, a cancelled one is not."""
    # London, Saturday 28 November: 10:00 has both salons booked.
    saturday = await seeded_book.free_slots(
        "london", datetime(2026, 11, 28, 0, 0, tzinfo=LONDON),
        datetime(2026, 11, 29, 0, 0, tzinfo=LONDON), limit=3)
    assert [s.starts_at for s in saturday] == [
        datetime(2026, 11, 28, h, 0, tzinfo=LONDON) for h in (11, 12, 13)]
    assert all(s.free_salons == 2 for s in saturday)
    # Paris, Friday 27 at 11:00: two of three salons booked (a third booking was cancelled).
    [eleven] = await seeded_book.free_slots("paris", datetime(2026, 11, 27, 11, 0, tzinfo=PARIS),
                                            datetime(2026, 11, 27, 11, 1, tzinfo=PARIS))
    assert eleven.free_salons == 1
    assert [a.id for a in await seeded_book.upcoming("C-001")] == ["APT-20261127-PAR-01"]


async def test_no_double_booking_under_concurrency(database_url: str) -> None:
    """Twelve clients take the same London slot (two salons) at once, through four
    separate engines (four pools, as four server processes would): exactly two win."""
    seed_maison(database_url)
    empty_book(database_url)
    engines = [make_async_engine(database_url) for _ in range(4)]
    books = [SqlBookings(engine, ManualClock(NOW)) for engine in engines]
    start = at(ahead(WEDNESDAY, LONDON), 11, zone=LONDON)
    clients = [f"C-{n:03d}" for n in range(1, 13)]

    async def attempt(index: int, client: str) -> str:
        try:
            made = await books[index % len(books)].book(
                client_id=client, boutique_id="london", service="styling_session", starts_at=start)
        except SlotTaken:
            return "taken"
        return made.id

    try:
        outcomes = await asyncio.gather(*(attempt(i, c) for i, c in enumerate(clients)))
        won = [o for o in outcomes if o != "taken"]
        assert len(won) == 2 and outcomes.count("taken") == 10
        async with engines[0].connect() as conn:
            rows = (await conn.execute(
                select(appointments.c.salon_number, appointments.c.client_id)
                .where(appointments.c.boutique_id == "london", appointments.c.starts_at == start,
                       appointments.c.status != "cancelled"))).all()
        assert sorted(r.salon_number for r in rows) == [1, 2]
        assert await books[0].free_slots("london", start, start + timedelta(minutes=1)) == []
    finally:
        for engine in engines:
            await engine.dispose()
