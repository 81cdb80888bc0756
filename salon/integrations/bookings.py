"""The bookings port: boutiques, opening hours, free slots, and appointments that are
booked, moved and cancelled without ever double-booking a salon privé.

``Bookings`` is what the actions depend on. :class:`SqlBookings` keeps the book in the
maison's ``maison_appointments`` table. A slot is one ``slot_minutes`` step from the
boutique's opening time in its own time zone; it is free while one of its
``salons`` has no live appointment. Double booking is impossible by construction: the
table's partial unique index on ``(boutique_id, starts_at, salon_number)`` over live rows
means that of two concurrent bookings of the last salon one insert fails with
``IntegrityError``; the loser re-reads the slot and takes another salon or hears
:class:`SlotTaken`. The same holds for the client (one live appointment per instant) and
the advisor (the client's advisor is attached when free, else the booking goes ahead
without one). Every instant is aware; the table stores UTC.

How a booking system plugs in: a class with the same coroutines. Salesforce (Scheduler:
``ServiceResource``/``ServiceAppointment``, ``OperatingHours`` for the hours and
``getAppointmentSlots`` for free slots), HubSpot Meetings, or Shopify with an
appointments app map their objects onto :class:`Boutique`, :class:`Slot` and
:class:`Appointment`; they must refuse a taken slot atomically on their side (as the
unique index does here) and raise :class:`SlotTaken`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salon.clock import Clock, require_aware
from salon.integrations.schema import appointments, boutiques, opening_hours, services

logger = logging.getLogger(__name__)

__all__ = [
    "Appointment",
    "BookingError",
    "Bookings",
    "Boutique",
    "ClientBusy",
    "Slot",
    "SlotTaken",
    "SqlBookings",
]

LIVE = ("booked",)
"""Statuses a client can still move or cancel (completed and no-show are history)."""


class BookingError(Exception):
    """A booking request that cannot be honoured, with the reason."""


class SlotTaken(BookingError):
    """Every salon of the slot is taken (possibly by a booking made a moment ago)."""


class ClientBusy(BookingError):
    """The client already holds a live appointment at that instant."""


@dataclass(frozen=True, slots=True)
class Boutique:
    """A boutique as the book sees it: its salons, services, slot length and weekly hours
    in its own time zone, and where to find and call it (``address`` and ``phone``, None
    when the book does not give them).
    """

    id: str
    name: str
    city: str
    time_zone: str
    slot_minutes: int
    salons: int
    services: tuple[str, ...]
    hours: Mapping[int, tuple[time, time]]
    """Weekday (0 = Monday) → local opening and closing time; a missing day is closed."""
    address: str | None = None
    phone: str | None = None
    """In international form ("+33142650000")."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def grid(self, day: date) -> list[datetime]:
        """The aware start of every slot of ``day`` (local date) that ends by closing."""
        hours = self.hours.get(day.weekday())
        if hours is None:
            return []
        opens, closes = hours
        start = datetime.combine(day, opens, tzinfo=self.zone)
        end = datetime.combine(day, closes, tzinfo=self.zone)
        step = timedelta(minutes=self.slot_minutes)
        out = []
        while start + step <= end:
            out.append(start)
            start = start + step
        return out

    def is_open_at(self, when: datetime) -> bool:
        local = require_aware(when).astimezone(self.zone)
        hours = self.hours.get(local.weekday())
        return hours is not None and hours[0] <= local.time() < hours[1]

    def next_opening(self, after: datetime) -> datetime | None:
        """The first moment at or after ``after`` when the boutique is open."""
        local = require_aware(after).astimezone(self.zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            hours = self.hours.get(day.weekday())
            if hours is None:
                continue
            opens = datetime.combine(day, hours[0], tzinfo=self.zone)
            closes = datetime.combine(day, hours[1], tzinfo=self.zone)
            if local < closes:
                return max(opens, local)
        return None


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable slot and how many of its salons are still free."""

    boutique_id: str
    starts_at: datetime
    ends_at: datetime
    free_salons: int


@dataclass(frozen=True, slots=True)
class Appointment:
    """A booked appointment: who, where (boutique and salon), when and its status."""

    id: str
    boutique_id: str
    client_id: str
    service: str
    starts_at: datetime
    ends_at: datetime
    status: str
    advisor_id: str | None
    salon_number: int
    notes: str | None = None


class Bookings(Protocol):
    """The appointment book the actions use (see the module's docstring)."""

    async def boutiques(self) -> dict[str, Boutique]: ...

    async def service_labels(self, language: str) -> dict[str, str]: ...

    async def free_slots(self, boutique_id: str, start: datetime, end: datetime, *,
                         limit: int = 3) -> list[Slot]:
        """Free slots starting in ``[start, end)``, earliest first, strictly after now
        (a slot starting this very moment can no longer be booked).
        """

    async def book(self, *, client_id: str, boutique_id: str, service: str, starts_at: datetime,
                   advisor_id: str | None = None, notes: str | None = None) -> Appointment: ...

    async def reschedule(self, appointment_id: str, client_id: str,
                         starts_at: datetime) -> Appointment: ...

    async def cancel(self, appointment_id: str, client_id: str) -> Appointment | None: ...

    async def upcoming(self, client_id: str, *, limit: int = 5) -> list[Appointment]: ...

    async def get(self, appointment_id: str) -> Appointment | None: ...


def _appointment(row: Row) -> Appointment:
    r = row._mapping
    return Appointment(r["id"], r["boutique_id"], r["client_id"], r["service"], r["starts_at"],
                       r["ends_at"], r["status"], r["advisor_id"], r["salon_number"], r["notes"])


class SqlBookings:
    """The appointment book in the maison's SQL tables."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._boutiques: dict[str, Boutique] | None = None

    async def boutiques(self) -> dict[str, Boutique]:
        if self._boutiques is None:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(select(boutiques))).all()
                hours = (await conn.execute(select(opening_hours))).all()
            by_boutique: dict[str, dict[int, tuple[time, time]]] = {}
            for h in hours:
                by_boutique.setdefault(h.boutique_id, {})[h.weekday] = (h.opens, h.closes)
            self._boutiques = {
                r.id: Boutique(r.id, r.name, r.city, r.time_zone, r.slot_minutes, r.salons,
                               tuple(r.services), by_boutique.get(r.id, {}),
                               address=r.address, phone=r.phone)
                for r in rows
            }
        return self._boutiques

    async def boutique(self, boutique_id: str) -> Boutique:
        found = (await self.boutiques()).get(boutique_id)
        if found is None:
            raise BookingError(f"unknown boutique {boutique_id!r}")
        return found

    async def service_labels(self, language: str) -> dict[str, str]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(services.c.id, services.c.label))).all()
        return {r.id: str((r.label or {}).get(language) or (r.label or {}).get("en") or r.id)
                for r in rows}

    async def _taken(self, conn: AsyncConnection, boutique_id: str, start: datetime,
                     end: datetime) -> dict[datetime, set[int]]:
        rows = (await conn.execute(
            select(appointments.c.starts_at, appointments.c.salon_number).where(
                appointments.c.boutique_id == boutique_id,
                appointments.c.status != "cancelled",
                appointments.c.starts_at >= start,
                appointments.c.starts_at < end,
            )
        )).all()
        taken: dict[datetime, set[int]] = {}
        for starts_at, salon in rows:
            taken.setdefault(starts_at, set()).add(salon)
        return taken

    async def free_slots(self, boutique_id: str, start: datetime, end: datetime, *,
                         limit: int = 3) -> list[Slot]:
        require_aware(start, "start")
        require_aware(end, "end")
        shop = await self.boutique(boutique_id)
        now = self.clock.now()
        start = max(start, now)
        if end <= start:
            return []
        async with self.engine.connect() as conn:
            taken = await self._taken(conn, boutique_id, start, end)
        step = timedelta(minutes=shop.slot_minutes)
        found: list[Slot] = []
        day = start.astimezone(shop.zone).date()
        last = end.astimezone(shop.zone).date()
        while day <= last and len(found) < limit:
            for slot_start in shop.grid(day):
                if not (start <= slot_start < end) or slot_start <= now:
                    continue  # outside the span, or starting now: too late to book (see book)
                used = taken.get(slot_start.astimezone(timezone.utc), set())
                if len(used) < shop.salons:
                    found.append(Slot(boutique_id, slot_start, slot_start + step,
                                      shop.salons - len(used)))
                    if len(found) >= limit:
                        break
            day += timedelta(days=1)
        return found

    async def _check_slot(self, shop: Boutique, service: str, starts_at: datetime) -> None:
        require_aware(starts_at, "starts_at")
        if service not in shop.services:
            raise BookingError(f"{shop.id} does not offer {service!r}")
        local = starts_at.astimezone(shop.zone)
        if local not in shop.grid(local.date()):
            raise BookingError(f"{local.isoformat()} is not a slot of {shop.id}")
        if starts_at <= self.clock.now():
            raise BookingError(f"{starts_at.isoformat()} is in the past")

    async def book(self, *, client_id: str, boutique_id: str, service: str, starts_at: datetime,
                   advisor_id: str | None = None, notes: str | None = None) -> Appointment:
        shop = await self.boutique(boutique_id)
        await self._check_slot(shop, service, starts_at)
        ends_at = starts_at + timedelta(minutes=shop.slot_minutes)
        day = starts_at.astimezone(shop.zone).strftime("%Y%m%d")
        prefix = shop.id[:3].upper()
        # Each attempt re-reads the slot: a lost race shows up as a salon now taken.
        for _ in range(shop.salons + 2):
            async with self.engine.connect() as conn:
                taken = (await self._taken(conn, boutique_id, starts_at, ends_at)).get(
                    starts_at.astimezone(timezone.utc), set())
                mine = await self._client_busy(conn, client_id, starts_at)
                advisor_free = advisor_id is not None and not await self._advisor_busy(
                    conn, advisor_id, starts_at)
            if mine:
                raise ClientBusy(f"client {client_id} already has an appointment at {starts_at}")
            free = [n for n in range(1, shop.salons + 1) if n not in taken]
            if not free:
                raise SlotTaken(f"{boutique_id} {starts_at.isoformat()} is fully booked")
            appointment_id = f"APT-{day}-{prefix}-{secrets.token_hex(3).upper()}"
            attached = advisor_id if advisor_free else None
            values = {
                "id": appointment_id,
                "boutique_id": boutique_id, "salon_number": free[0], "starts_at": starts_at,
                "ends_at": ends_at, "service": service, "client_id": client_id,
                "advisor_id": attached, "status": "booked",
                "created_at": self.clock.now(), "notes": notes,
            }
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(appointments.insert().values(**values))
            except IntegrityError:
                logger.info("salon %s of %s at %s taken meanwhile; trying again",
                            free[0], boutique_id, starts_at.isoformat())
                continue
            return Appointment(appointment_id, boutique_id, client_id, service, starts_at,
                               ends_at, "booked", attached, free[0], notes)
        raise SlotTaken(f"{boutique_id} {starts_at.isoformat()} could not be booked")

    async def _client_busy(self, conn: AsyncConnection, client_id: str, starts_at: datetime) -> bool:
        row = (await conn.execute(select(func.count()).where(
            appointments.c.client_id == client_id, appointments.c.starts_at == starts_at,
            appointments.c.status != "cancelled"))).scalar_one()
        return bool(row)

    async def _advisor_busy(self, conn: AsyncConnection, advisor_id: str, starts_at: datetime) -> bool:
        row = (await conn.execute(select(func.count()).where(
            appointments.c.advisor_id == advisor_id, appointments.c.starts_at == starts_at,
            appointments.c.status != "cancelled"))).scalar_one()
        return bool(row)

    async def get(self, appointment_id: str) -> Appointment | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(appointments).where(appointments.c.id == appointment_id))).first()
        return _appointment(row) if row is not None else None

    async def cancel(self, appointment_id: str, client_id: str) -> Appointment | None:
        """Cancel the client's own live appointment; None when there is no such thing."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(appointments)
                .where(appointments.c.id == appointment_id,
                       appointments.c.client_id == client_id,
                       appointments.c.status.in_(LIVE))
                .values(status="cancelled")
            )
            if result.rowcount != 1:
                return None
            row = (await conn.execute(
                select(appointments).where(appointments.c.id == appointment_id))).one()
        return _appointment(row)

    async def reschedule(self, appointment_id: str, client_id: str,
                         starts_at: datetime) -> Appointment:
        """Book the new time first, then cancel the old one: the client never ends up
        with neither. Raises :class:`SlotTaken` (the old appointment stays) or
        :class:`BookingError` when the appointment is not theirs or not live.
        """
        old = await self.get(appointment_id)
        if old is None or old.client_id != client_id or old.status not in LIVE:
            raise BookingError(f"no live appointment {appointment_id} for {client_id}")
        new = await self.book(client_id=client_id, boutique_id=old.boutique_id,
                              service=old.service, starts_at=starts_at,
                              advisor_id=old.advisor_id,
                              notes=_join_notes(old.notes, f"Moved from {old.id}."))
        await self.cancel(old.id, client_id)
        return new

    async def upcoming(self, client_id: str, *, limit: int = 5) -> list[Appointment]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(appointments)
                .where(and_(appointments.c.client_id == client_id,
                            appointments.c.status.in_(LIVE),
                            appointments.c.starts_at > self.clock.now()))
                .order_by(appointments.c.starts_at)
                .limit(limit)
            )).all()
        return [_appointment(r) for r in rows]


def _join_notes(*parts: str | None) -> str | None:
    kept: Sequence[str] = [p for p in parts if p]
    return " ".join(kept) if kept else None
