"""The events port: the maison's private events, who may come, and the clients' replies
(RSVPs), kept within each event's capacity.

``Events`` is what the actions depend on. :class:`SqlEvents` keeps the events in
``maison_events`` and the replies in ``maison_event_rsvps`` (one row per event and
client, seeded from ``data/maison/events.yml`` and written here). The rules are the
schema's and the seed's:

- **Who may reply.** The event's ``audience`` lists the tiers invited: a client of one
  of those tiers is invited, and so is a client who holds a row for the event (an
  invitation sent to them by name). Anyone else is refused with :class:`NotInvited`.
  Marketing consent governs *sending* an invitation (purpose ``event_invitation``, through
  the outbound engine), not answering a client who asks.
- **Guests.** At most ``guests_per_invitation`` people come with the client
  (:class:`TooManyGuests`).
- **Deadline.** ``rsvp_by`` is the last day, in the boutique's own time zone, on which a
  client can accept or change a reply (:class:`RsvpClosed` afterwards); withdrawing
  stays possible until the event begins.
- **Capacity** counts people: each accepted client and their guests. Waitlisted replies
  do not count. A reply that does not fit raises :class:`EventFull`, or is kept on the
  waiting list when the client asked for that; an accepted client whose change does not
  fit keeps their place as it was.
- **Statuses**: ``invited`` (invitation sent, no answer yet), ``accepted``, ``declined``,
  ``waitlisted``.

Atomicity: a reply reads the places taken and writes the row in one transaction that
first locks the event's row (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every
write transaction begins ``IMMEDIATE``, which takes the database's write lock), so
concurrent replies to one event are serialised and the capacity is never exceeded, from
one process or many.

How another system plugs in: a class with the same coroutines. Salesforce (a
``Campaign`` per event, ``CampaignMember`` with its ``Status`` for the reply and a
custom field for guests), HubSpot marketing events with their attendance, or an event
platform (Eventbrite's orders and capacity) map their objects onto :class:`Event`,
:class:`Rsvp` and :class:`Standing`; they must check the capacity atomically on their side
and raise :class:`EventFull`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salon.clock import Clock
from salon.integrations.schema import boutiques, clients, event_rsvps, events

logger = logging.getLogger(__name__)

__all__ = [
    "STANDING_REPLIES",
    "Event",
    "EventFull",
    "Events",
    "NotInvited",
    "Rsvp",
    "RsvpClosed",
    "RsvpError",
    "SqlEvents",
    "Standing",
    "TooManyGuests",
    "UnknownEvent",
    "Venue",
]

STANDING_REPLIES = ("invited", "accepted", "waitlisted")
"""Replies a client can still withdraw (a decline is already final)."""


class RsvpError(Exception):
    """A reply that cannot be recorded, with the reason."""


class UnknownEvent(RsvpError):
    """No such event."""


class NotInvited(RsvpError):
    """The client is neither of a tier invited nor invited by name."""


class RsvpClosed(RsvpError):
    """The reply deadline has passed (or, for a withdrawal, the event has begun)."""


class TooManyGuests(RsvpError):
    """More guests than the invitation allows (or a negative number)."""


class EventFull(RsvpError):
    """Not enough places left for the client and their guests."""

    def __init__(self, message: str, remaining: int) -> None:
        super().__init__(message)
        self.remaining = remaining


@dataclass(frozen=True, slots=True)
class Venue:
    """The boutique an event takes place in, with its address and time zone."""

    boutique_id: str
    name: str
    city: str
    address: str
    time_zone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True, slots=True)
class Event:
    """A maison event: texts per language, venue, times, reply deadline, places and the
    tiers it is for.
    """

    id: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    venue: Venue
    starts_at: datetime
    ends_at: datetime
    rsvp_by: date | None
    capacity: int
    guests_per_invitation: int
    dress_code: Mapping[str, str]
    audience: tuple[str, ...]

    def title_in(self, language: str) -> str:
        return str(self.title.get(language) or self.title.get("en") or self.id)

    def dress_code_in(self, language: str) -> str | None:
        value = self.dress_code.get(language) or self.dress_code.get("en")
        return str(value) if value else None

    @property
    def replies_close_at(self) -> datetime | None:
        """The end of the ``rsvp_by`` day in the boutique's time zone (None: no deadline)."""
        if self.rsvp_by is None:
            return None
        return datetime.combine(self.rsvp_by + timedelta(days=1), time(0), tzinfo=self.venue.zone)

    def open_for_replies(self, now: datetime) -> bool:
        """Whether a client can still accept or change a reply at ``now``."""
        closes = self.replies_close_at
        return now < self.starts_at and (closes is None or now < closes)


@dataclass(frozen=True, slots=True)
class Rsvp:
    """A client's reply to an event, with the guests they bring."""

    event_id: str
    client_id: str
    status: str
    guests: int
    responded_at: datetime | None
    notes: str | None = None

    @property
    def people(self) -> int:
        return 1 + self.guests


@dataclass(frozen=True, slots=True)
class Standing:
    """One event as one client sees it: their reply and the places left."""

    event: Event
    reply: Rsvp | None
    taken: int
    """People already accepted, this client's party included."""
    open: bool
    """Whether the client can still accept or change a reply."""

    @property
    def attending(self) -> bool:
        return self.reply is not None and self.reply.status == "accepted"

    @property
    def remaining(self) -> int:
        return max(0, self.event.capacity - self.taken)

    def has_room_for(self, guests: int) -> bool:
        """Whether the client and ``guests`` fit, counting the places they already hold."""
        held = self.reply.people if self.attending and self.reply is not None else 0
        return self.remaining + held >= 1 + guests


class Events(Protocol):
    """The maison's events as the actions use them: what a client may attend, and their
    replies.
    """

    async def upcoming_for(self, client_id: str) -> list[Standing]:
        """Events not yet begun that the client may attend, soonest first."""

    async def standing(self, event_id: str, client_id: str) -> Standing | None:
        """One event as the client sees it; None when unknown or not for them."""

    async def reply(self, event_id: str, client_id: str, *, guests: int,
                    waitlist_if_full: bool = False) -> Rsvp:
        """Accept (or change an acceptance) for the client and ``guests``; on the
        waiting list instead when full and ``waitlist_if_full``. Raises
        :class:`EventFull`, :class:`RsvpClosed`, :class:`NotInvited`,
        :class:`TooManyGuests` or :class:`UnknownEvent`.
        """

    async def decline(self, event_id: str, client_id: str) -> Rsvp | None:
        """The client will not come: their reply becomes ``declined`` (a row is written
        for an invited tier without one). None when already declined; raises
        :class:`RsvpClosed` once the event has begun, :class:`NotInvited`.
        """


def _event(row: Any, venue: Venue) -> Event:
    m = row._mapping
    return Event(m["id"], dict(m["title"] or {}), dict(m["description"] or {}), venue,
                 m["starts_at"], m["ends_at"], m["rsvp_by"], m["capacity"],
                 m["guests_per_invitation"], dict(m["dress_code"] or {}), tuple(m["audience"] or ()))


def _rsvp(row: Any) -> Rsvp:
    m = row._mapping
    return Rsvp(m["event_id"], m["client_id"], m["status"], m["guests"], m["responded_at"], m["notes"])


class SqlEvents:
    """The maison's events and replies in its SQL tables."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # ------------------------------------------------------------------ reading
    async def _venues(self, conn: AsyncConnection) -> dict[str, Venue]:
        rows = (await conn.execute(select(boutiques.c.id, boutiques.c.name, boutiques.c.city,
                                          boutiques.c.address, boutiques.c.time_zone))).all()
        return {r.id: Venue(r.id, r.name, r.city, r.address, r.time_zone) for r in rows}

    async def _taken(self, conn: AsyncConnection, event_id: str) -> int:
        total = (await conn.execute(
            select(func.coalesce(func.sum(1 + event_rsvps.c.guests), 0))
            .where(event_rsvps.c.event_id == event_id, event_rsvps.c.status == "accepted")
        )).scalar_one()
        return int(total)

    async def _tier(self, conn: AsyncConnection, client_id: str) -> str | None:
        return (await conn.execute(select(clients.c.tier).where(clients.c.id == client_id))).scalar_one_or_none()

    async def _reply(self, conn: AsyncConnection, event_id: str, client_id: str) -> Rsvp | None:
        row = (await conn.execute(select(event_rsvps).where(
            event_rsvps.c.event_id == event_id, event_rsvps.c.client_id == client_id))).first()
        return _rsvp(row) if row is not None else None

    async def upcoming_for(self, client_id: str) -> list[Standing]:
        now = self.clock.now()
        async with self.engine.connect() as conn:
            tier = await self._tier(conn, client_id)
            if tier is None:
                return []
            venues = await self._venues(conn)
            named = select(event_rsvps.c.event_id).where(event_rsvps.c.client_id == client_id)
            rows = (await conn.execute(
                select(events).where(events.c.starts_at > now)
                .order_by(events.c.starts_at, events.c.id)
            )).all()
            invited_by_name = {r.event_id for r in (await conn.execute(named)).all()}
            out: list[Standing] = []
            for row in rows:
                if tier not in (row.audience or ()) and row.id not in invited_by_name:
                    continue
                event = _event(row, venues[row.boutique_id])
                out.append(Standing(event, await self._reply(conn, event.id, client_id),
                                    await self._taken(conn, event.id), event.open_for_replies(now)))
        return out

    async def standing(self, event_id: str, client_id: str) -> Standing | None:
        return next((s for s in await self.upcoming_for(client_id) if s.event.id == event_id), None)

    # ------------------------------------------------------------------ writing
    async def _locked_event(self, conn: AsyncConnection, event_id: str) -> Event:
        # Every writer locks the event's row first: replies to one event are serialised.
        row = (await conn.execute(select(events).where(events.c.id == event_id).with_for_update())).first()
        if row is None:
            raise UnknownEvent(f"no event {event_id!r}")
        return _event(row, (await self._venues(conn))[row.boutique_id])

    async def _check_invited(self, conn: AsyncConnection, event: Event, client_id: str,
                             current: Rsvp | None) -> None:
        if current is not None:
            return
        tier = await self._tier(conn, client_id)
        if tier is None or tier not in event.audience:
            raise NotInvited(f"client {client_id} ({tier or 'unknown'}) is not invited to {event.id}")

    async def _write(self, conn: AsyncConnection, current: Rsvp | None, values: dict[str, Any]) -> None:
        if current is None:
            await conn.execute(event_rsvps.insert().values(**values))
        else:
            await conn.execute(update(event_rsvps).where(
                event_rsvps.c.event_id == values["event_id"],
                event_rsvps.c.client_id == values["client_id"]).values(**values))

    async def reply(self, event_id: str, client_id: str, *, guests: int,
                    waitlist_if_full: bool = False) -> Rsvp:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            event = await self._locked_event(conn, event_id)
            current = await self._reply(conn, event_id, client_id)
            await self._check_invited(conn, event, client_id, current)
            if not event.open_for_replies(now):
                raise RsvpClosed(f"replies to {event_id} closed (rsvp_by {event.rsvp_by}, starts "
                                 f"{event.starts_at.isoformat()})")
            if guests < 0 or guests > event.guests_per_invitation:
                raise TooManyGuests(f"{guests} guests; {event_id} allows {event.guests_per_invitation}")
            held = current.people if current is not None and current.status == "accepted" else 0
            remaining = event.capacity - (await self._taken(conn, event_id) - held)
            status = "accepted"
            if 1 + guests > remaining:
                if not waitlist_if_full or held:
                    # An accepted client whose change does not fit keeps their place as it was.
                    raise EventFull(f"{event_id}: {max(0, remaining)} place(s) left, {1 + guests} asked",
                                    max(0, remaining))
                status = "waitlisted"
            values = {"event_id": event_id, "client_id": client_id, "status": status,
                      "guests": guests, "responded_at": now}
            await self._write(conn, current, values)
        logger.info("RSVP %s for %s: %s with %d guest(s)", event_id, client_id, status, guests)
        return Rsvp(event_id, client_id, status, guests, now, current.notes if current else None)

    async def decline(self, event_id: str, client_id: str) -> Rsvp | None:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            event = await self._locked_event(conn, event_id)
            current = await self._reply(conn, event_id, client_id)
            await self._check_invited(conn, event, client_id, current)
            if now >= event.starts_at:
                raise RsvpClosed(f"{event_id} began at {event.starts_at.isoformat()}")
            if current is not None and current.status == "declined":
                return None
            values = {"event_id": event_id, "client_id": client_id, "status": "declined",
                      "guests": 0, "responded_at": now}
            await self._write(conn, current, values)
        logger.info("RSVP %s for %s: declined (was %s)", event_id, client_id,
                    current.status if current else "no reply")
        return Rsvp(event_id, client_id, "declined", 0, now, current.notes if current else None)
