"""The console's report page, for managers: the latest report made into ``SALON_REPORT_DIR``
(default ``var/report``, where ``salon report --out var/report`` writes too), and a way to
make it again now.

Making a report reads the database and draws with matplotlib: seconds of blocking work,
done in a worker thread (``asyncio.to_thread``) so the server keeps answering, and one at a
time per process. The folder's files are served by name from a fixed list
(:data:`salon.report.build.REPORT_FILES`), never from a path a request names.

:mod:`salon.report` (matplotlib) is imported when a report is first made or served, not
when the server starts.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy.engine import URL

from salon.config import load_settings
from salon.report.period import Period, parse_since

if TYPE_CHECKING:
    from salon.report.build import Manifest, Written

__all__ = ["ENV_DIR", "PERIODS", "ReportMaker", "latest_report", "report_dir", "report_file"]

ENV_DIR: Final = "SALON_REPORT_DIR"
PERIODS: Final = (("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"))
"""The periods the page offers: the last 7, 30 or 90 days."""
DEFAULT_PERIOD: Final = "30d"
CONTENT_TYPES: Final = {
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


def report_dir() -> Path:
    """``SALON_REPORT_DIR``, else ``report`` under the var folder (``var/report``)."""
    value = os.environ.get(ENV_DIR)
    return Path(value).expanduser().resolve() if value else load_settings().var_dir / "report"


def report_file(directory: Path, name: str) -> tuple[bytes, str] | None:
    """A report file's bytes and type, or None when ``name`` is not one of a report's
    files or the folder has none by that name.
    """
    from salon.report.build import REPORT_FILES

    if name not in REPORT_FILES:
        return None
    try:
        return (directory / name).read_bytes(), CONTENT_TYPES[Path(name).suffix]
    except OSError:
        return None


async def latest_report(directory: Path) -> Manifest | None:
    """What the folder's ``report.json`` says (None: no report there yet), read off the loop."""
    from salon.report.build import latest

    return await asyncio.to_thread(latest, directory)


class ReportMaker:
    """Makes the report of the last days into one folder, one at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = asyncio.Lock()

    async def make(self, url: str | URL, since: str, *, now: datetime) -> Written:
        """The report of the ``since`` (``"30d"``) up to ``now`` from the database at ``url``
        (:class:`salon.report.PeriodError`, :class:`salon.report.ReportError` when it cannot be).
        """
        from salon.report.build import generate, report_defaults

        span = parse_since(since)
        async with self._lock:
            zone, currency = await asyncio.to_thread(report_defaults)
            period = Period.ending(now, span, zone)
            return await asyncio.to_thread(generate, url, period, self.directory, now=now, currency=currency)
