"""Appointment reminders, 24 hours and 2 hours before, from the ``maison_appointments``
table (whoever writes it: the booking form, a boutique's system, the seed).

A periodic scan (the outbound worker runs it every ``SALON_OUTBOUND_SCAN_EVERY``
seconds; ``salon outbound scan`` runs it once) enqueues each reminder with the
idempotency key ``appt:<id>:<24h|2h>:<start>``: scanning again adds nothing, and a moved
appointment gets reminders for its new time. A queued reminder whose appointment was
cancelled or moved is cancelled. Each reminder is due at its moment (``not_before``)
and useless after the appointment has begun (``deadline``); at dispatch it goes
free-form if the client's window is open, else as the approved ``appointment_reminder``
template.

The 2 h reminder is not sent to a client who has already answered the 24 h one: when,
after the day-before reminder of the same appointment went out, she tapped its
"Confirm" quick reply (payload ``APPOINTMENT_CONFIRM``) or wrote a reply quoting it, the
2 h reminder is cancelled with the reason ``acknowledged`` (:class:`ReminderAcknowledgements`).
Tapping "Change the time" is no acknowledgement: she is moving it, and a moved
appointment gets reminders of its own. The outbound worker checks this when the 2 h
reminder is about to leave rather than when the scan enqueues it: the scan runs every
minute or so and enqueues up to an hour ahead, so a confirmation that came after it
would be missed; at dispatch nothing can come between the check and the send but the
send itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import to_us
from salon.conversation.phrasing import say_city, say_day, say_time, supported
from salon.identity import ClientRef
from salon.integrations.schema import appointments, boutiques, clients
from salon.outbound.queue import (
    QUEUED,
    SENT_AFTER_REPLY,
    SENT_FREE_FORM,
    SENT_TEMPLATE,
    InvalidRequest,
    OutboundQueue,
    OutboundRequest,
    RequestSpec,
    requests_table,
)
from salon.webhook.inbox import inbox_table

logger = logging.getLogger(__name__)

__all__ = ["ACK_PAYLOAD", "OFFSETS", "AppointmentReminders", "ReminderAcknowledgements", "ReminderKey",
           "awaits_acknowledgement", "format_day", "reminder_key", "reminder_params"]

#: (label, how long before the start, the latest moment it still makes sense).
OFFSETS: Final = (
    ("24h", timedelta(hours=24), timedelta(hours=12)),
    ("2h", timedelta(hours=2), timedelta(minutes=30)),
)
ACK_PAYLOAD: Final = "APPOINTMENT_CONFIRM"
"""The payload of the ``appointment_reminder`` template's "Confirm" quick reply."""
PURPOSE: Final = "appointment_reminder"
HORIZON: Final = timedelta(hours=1)
"""Reminders due within this much of a scan are enqueued by it (the worker scans far
more often, so each one is in the queue well before it is due)."""

_TEXT: Final = {
    "en": ("{first_name}, a gentle reminder of your appointment at our {boutique} boutique on "
           "{date} at {time}. We look forward to welcoming you."),
    "fr": ("Bonjour {first_name}, nous vous rappelons votre rendez-vous dans notre boutique de "
           "{boutique} le {date} à {time}. Au plaisir de vous accueillir."),
    "it": ("Buongiorno {first_name}, Le ricordiamo il Suo appuntamento di {date} alle {time} nella "
           "nostra boutique di {boutique}. Saremo lieti di accoglierLa."),
}
"""The reminder as it goes free-form, by language: the words of the approved
``appointment_reminder`` template, filled with the same parameters."""


def format_day(when: datetime, language: str) -> str:
    """The day as the reminder says it, in ``when``'s own time zone: "Wednesday 25
    November" / "mercredi 25 novembre" / "mercoledì 25 novembre" (English for a language
    the maison does not write).
    """
    return say_day(when, supported(language))


def reminder_params(first_name: str, city: str, local: datetime, language: str) -> dict[str, str]:
    """The reminder's parameters in ``language``: the city as the language names it, the
    day and the time as its locale says them (``local``: the start in the boutique's zone).
    """
    return {"first_name": first_name, "boutique": say_city(city, language),
            "date": format_day(local, language), "time": say_time(local, language)}


class AppointmentReminders:
    """The scan that enqueues appointment reminders and cancels stale ones (see the module
    docstring).
    """

    def __init__(self, queue: OutboundQueue, engine: AsyncEngine, phone_number_id: str) -> None:
        self.queue = queue
        self.engine = engine
        self.phone_number_id = phone_number_id
        self._has_book: bool | None = None

    async def _book_exists(self) -> bool:
        if self._has_book is None:
            async with self.engine.connect() as conn:
                names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            self._has_book = {appointments.name, clients.name, boutiques.name} <= names
            if not self._has_book:
                logger.warning("appointment reminders: the maison's tables are missing (run salon seed)")
        return self._has_book

    async def scan(self, now: datetime) -> int:
        """Enqueue the reminders due soon and cancel those that lost their appointment;
        returns how many were enqueued.
        """
        if not self.phone_number_id:
            logger.warning("appointment reminders: WA_PHONE_NUMBER_ID is not set; nothing enqueued")
            return 0
        if not await self._book_exists():
            return 0
        a, c, b = appointments.c, clients.c, boutiques.c
        latest = now + OFFSETS[0][1] + HORIZON
        query = (
            select(a.id, a.starts_at, c.first_name, c.wa_id, c.user_id, c.language, b.city, b.time_zone)
            .select_from(appointments.join(clients, a.client_id == c.id).join(boutiques, a.boutique_id == b.id))
            .where(a.status == "booked", a.starts_at > now, a.starts_at <= latest)
            .order_by(a.starts_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        specs: list[RequestSpec] = []
        for row in rows:
            for label, before, last_useful in OFFSETS:
                send_at = row.starts_at - before
                if send_at > now + HORIZON or now > row.starts_at - last_useful:
                    continue
                try:
                    specs.append(self._spec(row, label, send_at))
                except (InvalidRequest, ValueError) as exc:
                    logger.error("appointment %s: reminder not enqueued: %s", row.id, exc)
        created = sum(1 for _, new in await self.queue.enqueue_many(specs, now) if new) if specs else 0
        cancelled = await self._cancel_stale(now)
        if created or cancelled:
            logger.info("appointment reminders: %d enqueued, %d cancelled", created, cancelled)
        return created

    def _spec(self, row: Any, label: str, send_at: datetime) -> RequestSpec:
        language = supported(row.language)
        local = row.starts_at.astimezone(ZoneInfo(row.time_zone))
        params = reminder_params(row.first_name, row.city, local, language)
        client = ClientRef(self.phone_number_id, user_id=row.user_id, wa_id=row.wa_id)
        return RequestSpec(
            client=client, purpose="appointment_reminder",
            idempotency_key=f"appt:{row.id}:{label}:{to_us(row.starts_at)}",
            requested_by="system", content={"text": _TEXT[language].format(**params)},
            params=params, language=row.language, not_before=send_at,
            deadline=row.starts_at, campaign_id=None,
        )

    async def _cancel_stale(self, now: datetime) -> int:
        r, a = requests_table.c, appointments.c
        async with self.engine.connect() as conn:
            queued = (await conn.execute(
                select(r.id, r.idempotency_key).where(r.state == QUEUED, r.idempotency_key.like("appt:%"))
            )).all()
            if not queued:
                return 0
            ids = {key.split(":")[1] for _, key in queued}
            live = {row.id: to_us(row.starts_at) for row in (await conn.execute(
                select(a.id, a.starts_at).where(a.id.in_(ids), a.status == "booked"))).all()}
        cancelled = 0
        for request_id, key in queued:
            _, appointment_id, _, starts_us = key.split(":")
            if live.get(appointment_id) != int(starts_us):
                if await self.queue.cancel(request_id, now, "appointment cancelled or moved"):
                    cancelled += 1
        return cancelled


@dataclass(frozen=True, slots=True)
class ReminderKey:
    """What a reminder's idempotency key says: ``appt:<appointment>:<label>:<start>``."""

    appointment_id: str
    label: str
    starts_us: int

    def key(self, label: str | None = None) -> str:
        return f"appt:{self.appointment_id}:{label or self.label}:{self.starts_us}"


def reminder_key(request: OutboundRequest) -> ReminderKey | None:
    """The appointment a reminder request belongs to (None: not one the scan made)."""
    if request.purpose != PURPOSE:
        return None
    parts = request.idempotency_key.split(":")
    if len(parts) != 4 or parts[0] != "appt" or parts[2] not in {label for label, _, _ in OFFSETS}:
        return None
    try:
        return ReminderKey(parts[1], parts[2], int(parts[3]))
    except ValueError:
        return None


def awaits_acknowledgement(request: OutboundRequest) -> bool:
    """Whether ``request`` is a 2 h reminder, the one an answered 24 h reminder cancels."""
    found = reminder_key(request)
    return found is not None and found.label == OFFSETS[-1][0]


_SENT: Final = (SENT_FREE_FORM, SENT_TEMPLATE, SENT_AFTER_REPLY)


class ReminderAcknowledgements:
    """Whether a client already answered the 24 h reminder of the appointment a 2 h
    reminder is for (see the module docstring): read from the queue (the 24 h reminder's
    message) and the inbox (her reply quoting it, kept eight days).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def acknowledged(self, request: OutboundRequest, client_ids: Sequence[str]) -> bool:
        """True when ``request`` is a 2 h reminder whose 24 h reminder went out and was
        answered by ``client_ids`` (every id the client writes from) with its "Confirm"
        button or a reply quoting it.
        """
        found = reminder_key(request)
        if found is None or not awaits_acknowledgement(request) or not client_ids:
            return False
        r, i = requests_table.c, inbox_table.c
        async with self.engine.connect() as conn:
            first = (await conn.execute(
                select(r.wamid, r.not_before_us)
                .where(r.idempotency_key == found.key(OFFSETS[0][0]), r.state.in_(_SENT), r.wamid.is_not(None))
            )).first()
            if first is None:
                return False
            reply_id = i.metadata[("reply", "id")].as_string()
            answer = (await conn.execute(
                select(i.wamid)
                .where(i.phone_number_id == request.client.phone_number_id,
                       i.sender_id.in_(list(client_ids)), i.sent_us >= first.not_before_us,
                       i.metadata[("context", "id")].as_string() == first.wamid,
                       or_(reply_id.is_(None), reply_id == ACK_PAYLOAD))
                .limit(1)
            )).first()
        return answer is not None
