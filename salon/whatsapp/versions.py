"""Graph API versions: Meta's calendar (data) and the version Salon speaks by default.

Meta publishes each version with a release date; a version stays usable until two years
after the next version's release (Meta, "Platform Versioning"), unless Meta announces
another date. The calendar below is one line per version: add a line when Meta releases
one. ``WA_API_VERSION`` picks the version (default :data:`DEFAULT_API_VERSION`); at start
the channel and the outbound worker warn when it is unknown to the calendar, ended, or
within :data:`WARN_BEFORE_END` of its end (:func:`version_warning`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

__all__ = [
    "DEFAULT_API_VERSION",
    "GRAPH_API_VERSIONS",
    "VERSION_PATTERN",
    "WARN_BEFORE_END",
    "GraphVersion",
    "latest_version",
    "version_warning",
]

VERSION_PATTERN: Final = re.compile(r"^v\d+\.\d+$")
#: How long before a version's end the start-up warning appears.
WARN_BEFORE_END: Final = timedelta(days=60)


@dataclass(frozen=True)
class GraphVersion:
    """One Graph API version: released, and (when known) the first instant it is no
    longer served.
    """

    name: str
    released: datetime
    ends: datetime | None = None

    def served_at(self, now: datetime) -> bool:
        """Whether the version is served at ``now``: before its end.

        A clock moved before the release date does not make a version unknown: tests
        travel back in time for other reasons.
        """
        return self.ends is None or now < self.ends


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=timezone.utc)


#: The calendar. ``ends`` follows Meta's two-year rule except where Meta announced the
#: date itself (v21.0: served until 2027-01-21).
GRAPH_API_VERSIONS: Final[Mapping[str, GraphVersion]] = {
    v.name: v
    for v in (
        GraphVersion("v21.0", _day(2024, 10, 2), _day(2027, 1, 21)),
        GraphVersion("v25.0", _day(2026, 2, 18), _day(2028, 7, 29)),
        GraphVersion("v26.0", _day(2026, 7, 29), _day(2028, 11, 4)),
        GraphVersion("v27.0", _day(2026, 11, 4)),
    )
}

#: The version Salon speaks unless ``WA_API_VERSION`` says otherwise: the current one.
DEFAULT_API_VERSION: Final = "v27.0"


def _key(name: str) -> tuple[int, int]:
    major, minor = name[1:].split(".")
    return int(major), int(minor)


def latest_version(accepted: Iterable[str]) -> str:
    """The newest of ``accepted``."""
    return max(accepted, key=_key)


def version_warning(version: str, now: datetime) -> str | None:
    """What an operator should hear at start about ``version`` at ``now``, or None."""
    known = GRAPH_API_VERSIONS.get(version)
    current = latest_version(GRAPH_API_VERSIONS)
    if known is None:
        return (f"Graph API {version} is not in Salon's calendar of versions "
                f"(salon/whatsapp/versions.py): set WA_API_VERSION={current}, the current one")
    if known.ends is None:
        return None
    if now >= known.ends:
        return (f"Graph API {version} ended on {known.ends:%Y-%m-%d}: Meta no longer serves "
                f"it; set WA_API_VERSION={current}")
    if known.ends - now <= WARN_BEFORE_END:
        days = (known.ends - now).days
        return (f"Graph API {version} ends on {known.ends:%Y-%m-%d} (in {days} days); "
                f"set WA_API_VERSION={current}")
    return None
