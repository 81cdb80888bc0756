"""The period a report covers, as an operator writes it: ``--since 30d`` (a duration back
from the end) and ``--until`` (an instant with its offset, or a date), read in the
report's time zone.

A day of the report is a calendar day in that zone (the WhatsApp Business Account's, in
which Meta counts its invoices: ``billing_time_zone`` in ``data/pricing/markets.yml``), so
the report's days are the invoice's days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from salon.clock import require_aware

__all__ = ["MAX_SPAN", "Period", "PeriodError", "parse_since", "parse_until", "parse_zone"]

MAX_SPAN: Final = timedelta(days=400)
"""The longest period a report covers: a year and a little, past which a per-day
picture is no longer one anybody reads."""

_DURATION: Final = re.compile(r"\s*(\d{1,5})\s*([dhw])\s*", re.IGNORECASE)
_UNITS: Final = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class PeriodError(ValueError):
    """What the operator wrote is no period; the message says what is expected."""


def parse_since(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"2w"`` → the span; anything else raises :class:`PeriodError`."""
    found = _DURATION.fullmatch(text or "")
    if found is None:
        raise PeriodError(f"--since takes a duration such as 7d, 30d or 12h, not {text!r}")
    span = int(found.group(1)) * _UNITS[found.group(2).lower()]
    if span <= timedelta(0):
        raise PeriodError(f"--since must be longer than nothing, not {text!r}")
    if span > MAX_SPAN:
        raise PeriodError(f"--since covers at most {MAX_SPAN.days} days, not {text!r}")
    return span


def parse_zone(name: str) -> ZoneInfo:
    """An IANA time zone (``Europe/Paris``, ``UTC``); an unknown name raises :class:`PeriodError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"{name!r} is no time zone (an IANA name such as Europe/Paris or UTC)") from None


def parse_until(text: str, zone: ZoneInfo) -> datetime:
    """``--until``: an ISO 8601 instant with its offset (``2026-12-01T00:00+01:00``, ``…Z``),
    or a date, meaning the midnight that starts it in ``zone`` (the period ends before that
    day). A time without an offset is refused: it names no instant.
    """
    value = (text or "").strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise PeriodError(f"--until {text!r} is no calendar date") from None
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        raise PeriodError(f"--until takes an ISO date or instant (2026-12-01, 2026-12-01T09:00Z), "
                          f"not {text!r}") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise PeriodError(f"--until {text!r} has no offset: add Z or +01:00 so it names one instant")
    return at.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC, read in ``zone`` for its days and hours."""

    start: datetime
    end: datetime
    zone: ZoneInfo

    def __post_init__(self) -> None:
        require_aware(self.start, "start")
        require_aware(self.end, "end")
        if self.end <= self.start:
            raise PeriodError("the period ends before it starts")
        if self.end - self.start > MAX_SPAN + timedelta(hours=1):  # an hour of summer time
            raise PeriodError(f"a report covers at most {MAX_SPAN.days} days")

    @classmethod
    def ending(cls, end: datetime, span: timedelta, zone: ZoneInfo) -> Period:
        """The ``span`` up to ``end``: whole days counted on the zone's calendar (30 days
        before a midnight is a midnight, across a change of summer time), hours as hours.
        """
        end = require_aware(end, "end").astimezone(timezone.utc)
        if span % timedelta(days=1):
            return cls(end - span, end, zone)
        # Arithmetic on an aware datetime of a ZoneInfo is on its wall clock.
        return cls((end.astimezone(zone) - span).astimezone(timezone.utc), end, zone)

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def day_of(self, at: datetime) -> date:
        """The calendar day of ``at`` in the report's zone."""
        return at.astimezone(self.zone).date()

    def days(self) -> list[date]:
        """Every calendar day the period touches, in order (the first and last may be partial)."""
        first, last = self.day_of(self.start), self.day_of(self.end - timedelta(microseconds=1))
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def hours(self) -> Iterator[datetime]:
        """Each whole hour (UTC) from the period's start, rounded up, to its end."""
        at = self.start.replace(minute=0, second=0, microsecond=0)
        if at < self.start:
            at += timedelta(hours=1)
        while at < self.end:
            yield at
            at += timedelta(hours=1)

    @property
    def zone_name(self) -> str:
        return str(self.zone.key)

    def describe(self) -> str:
        """"1 Nov 2026 00:00 – 1 Dec 2026 00:00 (Europe/Paris)"."""
        start, end = self.start.astimezone(self.zone), self.end.astimezone(self.zone)
        return f"{start.day} {start:%b %Y %H:%M} – {end.day} {end:%b %Y %H:%M} ({self.zone_name})"
