"""Injected clocks. The customer service window is time arithmetic, so nothing in
Salon reads the wall clock directly: code receives a :class:`Clock` and asks it.

Every datetime handed out is timezone-aware (UTC).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Final, Protocol

UTC: Final = timezone.utc
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


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


class OffsetFileClock:
    """A base clock shifted by an offset kept in a small JSON file.

    This is how time travel reaches every process of the demo and of the end-to-end
    tests: the WhatsApp emulator writes ``{"offset_seconds": N}`` when its clock moves,
    and the Rasa server, the action server and the workers read it, so "advance 25 h"
    closes the window for all of them at once. A missing or unreadable file means no
    offset. The file is re-read only when it is replaced.
    """

    def __init__(self, path: str | Path, base: Clock | None = None) -> None:
        self.path = Path(path)
        self.base: Clock = base or SystemClock()
        self._stamp: tuple[int, int, int] | None = None
        self._offset = timedelta(0)

    @property
    def offset(self) -> timedelta:
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp = None
            self._offset = timedelta(0)
            return self._offset
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # a rewrite is a new inode
        if stamp != self._stamp:
            self._offset = read_offset_file(self.path)
            self._stamp = stamp
        return self._offset

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def set_offset(self, offset: timedelta) -> None:
        write_offset_file(self.path, offset)
        self._stamp = None


def read_offset_file(path: str | Path) -> timedelta:
    """The offset stored in ``path`` (zero when absent or malformed)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return timedelta(seconds=float(data["offset_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return timedelta(0)


def write_offset_file(path: str | Path, offset: timedelta) -> None:
    """Atomically replace ``path`` with ``offset`` (readers never see half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".clock-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"offset_seconds": offset.total_seconds()}, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clock_from_env() -> Clock:
    """``SALON_CLOCK_FILE`` set: the system clock shifted by that file (demo and
    end-to-end tests, following the emulator); otherwise the system clock.
    """
    path = os.environ.get("SALON_CLOCK_FILE")
    return OffsetFileClock(path) if path else SystemClock()


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` if it is timezone-aware, else raise ``ValueError``."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


def from_unix(seconds: int | float | str) -> datetime:
    """Convert a Unix timestamp (Meta sends them as decimal strings) to aware UTC."""
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)


def to_us(value: datetime, name: str = "datetime") -> int:
    """Aware datetime → integer microseconds since the epoch (naive → ValueError); the
    stores keep times this way so Redis and SQL do the same integer arithmetic.
    """
    return (require_aware(value, name) - _EPOCH) // timedelta(microseconds=1)


def from_us(value: int | str | bytes | None) -> datetime | None:
    """Microseconds since the epoch (as stored, possibly as text) → aware UTC; empty → None."""
    if value is None or value == "" or value == b"":
        return None
    return _EPOCH + timedelta(microseconds=int(value))
