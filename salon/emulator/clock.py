"""The emulator's clock: a base clock plus an offset that the admin API moves.

With a clock file (``SALON_CLOCK_FILE``) the offset lives in that file, written with
:func:`salon.clock.write_offset_file`, so every process reading it through
:class:`salon.clock.OffsetFileClock` (the bot, the action server) travels in time with
the emulator. Without one the offset is kept in memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from salon.clock import Clock, OffsetFileClock, SystemClock, require_aware

__all__ = ["EmulatorClock"]


class EmulatorClock:
    """``base.now() + offset``; the offset is what ``advance``/``set``/``reset`` change."""

    def __init__(self, base: Clock | None = None, clock_file: str | Path | None = None) -> None:
        self.base: Clock = base or SystemClock()
        self.clock_file = Path(clock_file) if clock_file else None
        self._file_clock = (
            OffsetFileClock(self.clock_file, base=self.base) if self.clock_file else None
        )
        self._offset = timedelta(0)
        #: Where the clock stood when the emulator started (a stack started at a fixed
        #: instant writes its offset before the emulator starts); ``reset`` comes back here.
        self.start_offset = self.offset

    @property
    def offset(self) -> timedelta:
        if self._file_clock is not None:
            return self._file_clock.offset
        return self._offset

    def now(self) -> datetime:
        return (self.base.now() + self.offset).astimezone(timezone.utc)

    def set_offset(self, offset: timedelta) -> None:
        if self._file_clock is not None:
            self._file_clock.set_offset(offset)
        else:
            self._offset = offset

    def advance(self, delta: timedelta) -> datetime:
        """Move forward (or back, with a negative ``delta``); returns the new now."""
        self.set_offset(self.offset + delta)
        return self.now()

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (must be timezone-aware)."""
        require_aware(when, "when")
        self.set_offset(when - self.base.now())
        return self.now()

    def reset(self) -> None:
        """Back to the offset the clock had when the emulator started."""
        self.set_offset(self.start_offset)
