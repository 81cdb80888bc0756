"""Injected clocks. The customer service window is time arithmetic, so nothing in
Salon reads the wall clock directly: code receives a :class:`Clock` and asks it.

Every datetime handed out is timezone-aware (UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    """Anything that can tell the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, always aware and in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to (tests, the emulator, the demo)."""

    def __init__(self, start: datetime) -> None:
        require_aware(start, "start")
        self._now = start.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        require_aware(when, "when")
        self._now = when.astimezone(timezone.utc)

    def advance(self, delta: timedelta) -> datetime:
        self._now = self._now + delta
        return self._now


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` if it is timezone-aware, else raise ``ValueError``."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


def from_unix(seconds: int | float | str) -> datetime:
    """Convert a Unix timestamp (Meta sends them as decimal strings) to aware UTC."""
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)
