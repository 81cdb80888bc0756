"""The bookings port on SQLite and PostgreSQL: the slot grid in each boutique's zone,
free slots around the seeded book, booking, moving and cancelling, and no double booking
when many clients take the same slot at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from salon.clock import ManualClock
from salon.db import make_async_engine
from salon.integrations.bookings import BookingError, ClientBusy, SlotTaken, SqlBookings
from salon.integrations.schema import appointments
from tests.seeding import seed_maison

PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)  # Thursday morning


@pytest.fixture()
async def book(database_url: str) -> AsyncIterator[SqlBookings]:
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    yield SqlBookings(engine, ManualClock(NOW))
    await engine.dispose()


async def test_boutiques_hours_and_grid_in_local_time(book: SqlBookings) -> None:
    shops = await book.boutiques()
    assert set(shops) == {"paris", "london", "milan"}
    paris = shops["paris"]
    assert paris.hours[0] == (time(10, 30), time(19, 0)) and 6 not in paris.hours  # closed Sunday
    monday = paris.grid(date(2026, 11, 30))
    assert monday[0] == datetime(2026, 11, 30, 10, 30, tzinfo=PARIS)
    assert monday[-1] == datetime(2026, 11, 30, 17, 30, tzinfo=PARIS)  # the last that ends by 19:00
    assert paris.grid(date(2026, 11, 29)) == []
    assert paris.is_open_at(datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc))  # 10:00 in Paris
    assert not paris.is_open_at(datetime(2026, 11, 26, 8, 59, tzinfo=timezone.utc))
    assert paris.next_opening(datetime(2026, 11, 28, 19, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 11, 30, 10, 30, tzinfo=PARIS)  # Saturday night → Monday 10:30
    labels = await book.service_labels("fr")
    assert labels["private_viewing"] == "Présentation privée"


async def test_free_slots_leave_out_full_salons_and_the_past(book: SqlBookings) -> None:
    # London, Saturday 28: 10:00 has both salons booked in the seed.
    saturday = await book.free_slots("london", datetime(2026, 11, 28, 0, 0, tzinfo=LONDON),
                                     datetime(2026, 11, 29, 0, 0, tzinfo=LONDON), limit=3)
    assert [s.starts_at for s in saturday] == [
        datetime(2026, 11, 28, h, 0, tzinfo=LONDON) for h in (11, 12, 13)]
    assert all(s.free_salons == 2 for s in saturday)
    # Paris, Friday 27 at 11:00: two of three salons booked (a third booking was cancelled).
    [eleven] = await book.free_slots("paris", datetime(2026, 11, 27, 11, 0, tzinfo=PARIS),
                                     datetime(2026, 11, 27, 11, 1, tzinfo=PARIS))
    assert eleven.free_salons == 1
    # Nothing before now: this morning in Paris starts at the next slot after 09:00 (UTC).
    today = await book.free_slots("paris", NOW - timedelta(days=1), NOW + timedelta(hours=3))
    assert today and today[0].starts_at == datetime(2026, 11, 26, 10, 0, tzinfo=PARIS)


async def test_book_move_cancel(book: SqlBookings) -> None:
    start = datetime(2026, 12, 3, 15, 0, tzinfo=PARIS)
    made = await book.book(client_id="C-001", boutique_id="paris", service="private_viewing",
                           starts_at=start, advisor_id="sophie-marchand", notes="Party of 2.")
    assert made.id.startswith("APT-20261203-PAR-") and made.status == "booked"
    assert made.ends_at - made.starts_at == timedelta(hours=1) and made.advisor_id == "sophie-marchand"
    stored = await book.get(made.id)
    assert stored == made and stored.starts_at.tzinfo is not None
    assert made in await book.upcoming("C-001")
    with pytest.raises(ClientBusy):
        await book.book(client_id="C-001", boutique_id="london", service="fitting",
                        starts_at=datetime(2026, 12, 3, 14, 0, tzinfo=LONDON))  # the same instant
    # Sophie is busy then: another client's booking at that time goes ahead without her.
    other = await book.book(client_id="C-003", boutique_id="paris", service="fitting",
                            starts_at=start, advisor_id="sophie-marchand")
    assert other.advisor_id is None and other.salon_number != made.salon_number
    moved = await book.reschedule(made.id, "C-001", datetime(2026, 12, 4, 11, 0, tzinfo=PARIS))
    assert moved.id != made.id and moved.service == "private_viewing"
    assert moved.notes == f"Party of 2. Moved from {made.id}."
    assert (await book.get(made.id)).status == "cancelled"  # type: ignore[union-attr]
    assert await book.cancel(moved.id, "C-002") is None  # not theirs
    cancelled = await book.cancel(moved.id, "C-001")
    assert cancelled is not None and cancelled.status == "cancelled"
    assert await book.cancel(moved.id, "C-001") is None  # already
    with pytest.raises(BookingError, match="no live appointment"):
        await book.reschedule(moved.id, "C-001", datetime(2026, 12, 4, 12, 0, tzinfo=PARIS))


@pytest.mark.parametrize(("boutique", "service", "start", "reason"), [
    ("paris", "fitting", datetime(2026, 11, 29, 11, 0, tzinfo=PARIS), "not a slot"),  # closed Sunday
    ("paris", "fitting", datetime(2026, 12, 1, 11, 30, tzinfo=PARIS), "not a slot"),  # off the grid
    ("milan", "repair_dropoff", datetime(2026, 12, 1, 11, 0, tzinfo=ZoneInfo("Europe/Rome")),
     "does not offer"),
    ("paris", "fitting", datetime(2026, 11, 25, 11, 0, tzinfo=PARIS), "in the past"),
    ("rome", "fitting", datetime(2026, 12, 1, 11, 0, tzinfo=PARIS), "unknown boutique"),
])
async def test_impossible_bookings_are_refused(book: SqlBookings, boutique: str, service: str,
                                               start: datetime, reason: str) -> None:
    with pytest.raises(BookingError, match=reason):
        await book.book(client_id="C-001", boutique_id=boutique, service=service, starts_at=start)


async def test_a_full_slot_is_refused_and_a_move_into_it_keeps_the_old_appointment(book: SqlBookings) -> None:
    full = datetime(2026, 11, 28, 10, 0, tzinfo=LONDON)
    with pytest.raises(SlotTaken):
        await book.book(client_id="C-013", boutique_id="london", service="fitting", starts_at=full)
    mine = await book.book(client_id="C-013", boutique_id="london", service="fitting",
                           starts_at=datetime(2026, 11, 28, 12, 0, tzinfo=LONDON))
    with pytest.raises(SlotTaken):
        await book.reschedule(mine.id, "C-013", full)
    assert (await book.get(mine.id)).status == "booked"  # type: ignore[union-attr]


async def test_no_double_booking_under_concurrency(database_url: str) -> None:
    """Twelve clients take the same London slot (two salons) at once, through four
    separate engines (four pools, as four server processes would): exactly two win."""
    seed_maison(database_url)
    engines = [make_async_engine(database_url) for _ in range(4)]
    books = [SqlBookings(engine, ManualClock(NOW)) for engine in engines]
    start = datetime(2026, 12, 2, 11, 0, tzinfo=LONDON)
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
