"""The moments the suite runs at.

Every date a test uses is relative to a frozen "now", never to the wall clock, so the
suite gives the same result at any hour of any day. ``SALON_TEST_NOW`` (an ISO-8601
instant with its offset) moves that "now" for the tests that read :func:`suite_now`;
``make test`` runs the booking tests and the smoke conversation once more at each of
:data:`FROZEN_INSTANTS`, the moments where date arithmetic usually breaks.
"""

from __future__ import annotations

import os
from datetime import datetime

from salon.dev.demo import STORY_INSTANT

__all__ = ["FROZEN_INSTANTS", "REFERENCE_NOW", "parse_instant", "suite_now"]

#: The suite's everyday "now": Thursday 26 November 2026, 09:00 in Paris, the moment the
#: demo maison's records describe (``salon demo-check`` runs its story there too).
REFERENCE_NOW = STORY_INSTANT

#: Moments that break naive date arithmetic, by name (Paris time, the maison's home).
FROZEN_INSTANTS: dict[str, str] = {
    # Friday evening: "Friday afternoon" has passed, the boutiques have closed for the
    # night, and Paris will be closed on Sunday.
    "friday-evening": "2026-12-04T21:00:00+01:00",
    # New Year's Eve: "tomorrow" is another month and another year.
    "new-year-eve": "2026-12-31T23:30:00+01:00",
    # The night clocks go forward in Europe (02:00 → 03:00 on 28 March 2027).
    "dst-spring-forward": "2027-03-28T01:30:00+01:00",
    # The night clocks go back (03:00 → 02:00 on 31 October 2027): 02:30 happens twice.
    "dst-fall-back": "2027-10-31T01:30:00+02:00",
}


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with its UTC offset, as an aware datetime; a naive one is an error."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"an instant needs its UTC offset: {text!r}")
    return value


def suite_now() -> datetime:
    """``SALON_TEST_NOW`` when set, else :data:`REFERENCE_NOW`."""
    raw = os.environ.get("SALON_TEST_NOW", "").strip()
    return parse_instant(raw) if raw else REFERENCE_NOW

