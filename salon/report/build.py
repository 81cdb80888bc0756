"""Making a report: read the period from the database, compute the figures, draw the
pictures and write the page into a folder, with ``report.json`` beside them (the totals,
notes and pictures, for the console and for anyone who wants the figures without the
page).

Every file is written whole under a temporary name, then moved in place, and
``report.json`` comes last: a reader (the console serving the folder) sees the previous
report or the new one, never half of one. Generation is synchronous and CPU-bound
(matplotlib): a server runs it in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.engine import URL, make_url

from salon.clock import require_aware
from salon.pricing.card import RateCardError
from salon.pricing.charge import default_card
from salon.report.collect import read_traffic
from salon.report.figures import Figures, compute
from salon.report.page import ASSETS, render_page, summary
from salon.report.period import Period
from salon.report.plots import PLOTS, draw_all
from salon.storage.db import make_sync_engine

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST",
    "PAGE",
    "REPORT_FILES",
    "Manifest",
    "ReportError",
    "Written",
    "generate",
    "latest",
    "report_defaults",
    "write_report",
]

PAGE: Final = "report.html"
MANIFEST: Final = "report.json"
REPORT_FILES: Final = (PAGE, MANIFEST, *ASSETS, *(p.name for p in PLOTS))
"""Every file a report folder holds (and the only ones the console serves from it)."""


class ReportError(Exception):
    """The report cannot be made: the message says why (no database there, a folder not writable)."""


@dataclass(frozen=True, slots=True)
class Written:
    """A report written: its folder, its figures and the files."""

    directory: Path
    figures: Figures
    files: tuple[Path, ...]

    @property
    def page(self) -> Path:
        return self.directory / PAGE


def report_defaults() -> tuple[ZoneInfo, str | None]:
    """The report's time zone and currency: the rate card's (its business account's time
    zone, in which Meta counts its days, and its currency); UTC and no currency when
    no card can be read.
    """
    try:
        card = default_card()
    except RateCardError as exc:
        logger.warning("report: the rate card cannot be read (%s); days in UTC", exc)
        return ZoneInfo("UTC"), None
    return card.zone, card.currency


def _check_database(url: str | URL) -> None:
    parsed = make_url(str(url)) if not isinstance(url, URL) else url
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database)).expanduser()
        if not path.is_file():
            raise ReportError(f"no database at {path} (set DATABASE_URL or --database-url)")


def generate(url: str | URL, period: Period, directory: Path, *, now: datetime,
             currency: str | None = None) -> Written:
    """Read ``period`` from the database at ``url`` and write its report into
    ``directory``. ``now``: when it is made (handoffs of the period answered since count
    as answered). ``currency``: the rate card's, for a period with no price in it.
    """
    require_aware(now, "now")
    _check_database(url)
    engine = make_sync_engine(url)
    try:
        traffic = read_traffic(engine, period, answered_until=max(period.end, now))
    finally:
        engine.dispose()
    return write_report(compute(traffic, currency=currency), directory, generated_at=now)


def write_report(figures: Figures, directory: Path, *, generated_at: datetime) -> Written:
    """Write the pictures, the page, its assets and ``report.json`` into ``directory``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot make the folder {directory}: {exc.strerror or exc}") from None
    if not os.access(directory, os.W_OK):
        raise ReportError(f"the folder {directory} is not writable")
    files = draw_all(figures, directory)
    for name, source in ASSETS.items():
        _replace(directory / name, source.read_bytes())
        files.append(directory / name)
    _replace(directory / PAGE, render_page(figures, generated_at=generated_at).encode("utf-8"))
    files.append(directory / PAGE)
    _replace(directory / MANIFEST, json.dumps(_manifest(figures, generated_at), ensure_ascii=False,
                                              indent=2).encode("utf-8"))
    files.append(directory / MANIFEST)
    return Written(directory, figures, tuple(files))


def _replace(target: Path, data: bytes) -> None:
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _manifest(figures: Figures, generated_at: datetime) -> dict[str, Any]:
    t = figures.totals
    period = figures.period
    return {
        "generated_at": generated_at.astimezone(timezone.utc).isoformat(),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat(), "zone": period.zone_name,
                   "described": period.describe()},
        "currency": figures.currency,
        "empty": figures.empty,
        "summary": [[label, value] for label, value in summary(figures)],
        "notes": list(figures.notes),
        "plots": [{"file": p.name, "title": p.title, "alt": p.alt} for p in PLOTS],
        "totals": {
            "messages": t.messages, "cost_micros": t.cost, "meta_priced": t.meta_priced, "estimated": t.estimated,
            "unpriced": t.unpriced, "mismatches": t.mismatches, "decided": t.decided, "templates": t.templates,
            "parked": t.parked, "nudges": t.nudges, "refused": t.refused, "free_form": t.free_form,
            "window_closed_failures": t.window_closed_failures, "client_days": t.client_days,
            "contained": t.contained, "handoffs": t.handoffs, "answered": t.answered, "inbound": t.inbound,
            "clients": t.clients,
        },
    }


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``report.json`` says of the report in a folder."""

    generated_at: datetime
    period: str
    summary: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    plots: tuple[tuple[str, str, str], ...]
    """(file, title, alt) of each picture present."""
    empty: bool
    totals: Mapping[str, int]


def latest(directory: Path) -> Manifest | None:
    """The report in ``directory``, or None when there is none (or its ``report.json``
    is not one: logged, and treated as none).
    """
    try:
        raw = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("report: %s is unreadable (%s)", directory / MANIFEST, exc)
        return None
    try:
        generated = datetime.fromisoformat(str(raw["generated_at"]))
        require_aware(generated, "generated_at")
        names = {p.name for p in PLOTS}
        plots = tuple((str(p["file"]), str(p["title"]), str(p["alt"])) for p in raw["plots"]
                      if str(p["file"]) in names and (directory / str(p["file"])).is_file())
        return Manifest(
            generated_at=generated, period=str(raw["period"]["described"]),
            summary=tuple((str(a), str(b)) for a, b in _pairs(raw["summary"])),
            notes=tuple(str(n) for n in raw["notes"]), plots=plots, empty=bool(raw["empty"]),
            totals={str(k): int(v) for k, v in dict(raw["totals"]).items()})
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("report: %s is not a report's (%s)", directory / MANIFEST, exc)
        return None


def _pairs(items: Sequence[Any]) -> list[tuple[Any, Any]]:
    return [(a, b) for a, b in items]

