"""The demo maison in a test's database, without seeding it again for every test.

:func:`seed_maison` gives the database at a URL exactly what
``salon.integrations.seed.seed_database(url)`` would, from a copy seeded once per test
session: a SQLite file is copied into place, a PostgreSQL database is re-created from a
seeded template database (``CREATE DATABASE … TEMPLATE``). The seeding itself is tested
in tests/test_maison_seed.py.

The seeded appointments are dated (late November 2026); a test that books relative to
its own "now" (tests/instants.py) starts from :func:`empty_book` instead, and reckons
opening hours from :func:`opening_hours`, read straight from data/maison/boutiques.yml.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from salon.config import PROJECT_ROOT
from salon.integrations.schema import appointments
from salon.integrations.seed import seed_database
from salon.storage.db import make_sync_engine

__all__ = ["OpeningHours", "empty_book", "opening_hours", "seed_maison"]

MAISON = PROJECT_ROOT / "data" / "maison"
_sqlite_template: Path | None = None
_pg_templates: dict[str, str] = {}


def seed_maison(url: str) -> None:
    """The seeded demo maison at ``url``: a SQLite file that does not exist yet, or an
    empty PostgreSQL database nobody is connected to."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and not Path(parsed.database).exists():
        shutil.copy(_sqlite_seeded(), parsed.database)
        return
    if backend == "postgresql":
        _recreate_from_template(url)
        return
    seed_database(url, MAISON)


def empty_book(url: str) -> None:
    """Take every seeded appointment out of the book at ``url`` (the rest of the maison
    stays): the test then meets only the appointments it books itself."""
    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(appointments.delete())
    finally:
        engine.dispose()


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class OpeningHours:
    """A boutique's time zone and weekly hours as data/maison/boutiques.yml states them."""

    zone: ZoneInfo
    days: dict[int, tuple[time, time]]
    """Weekday (0 = Monday) → local opening and closing time; a closed day is absent."""

    def next_opening(self, after: datetime) -> datetime:
        """The first moment at or after ``after`` when the boutique is open."""
        local = after.astimezone(self.zone)
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            if day.weekday() in self.days:
                opens, closes = (datetime.combine(day, t, tzinfo=self.zone)
                                 for t in self.days[day.weekday()])
                if local < closes:
                    return max(opens, local)
        raise AssertionError("a boutique closed all week")


def opening_hours(boutique_id: str) -> OpeningHours:
    """The hours of ``boutique_id`` from data/maison/boutiques.yml (``"10:30-19:00"`` or
    ``closed`` per weekday)."""
    listed = yaml.safe_load((MAISON / "boutiques.yml").read_text(encoding="utf-8"))["boutiques"]
    [shop] = [b for b in listed if b["id"] == boutique_id]
    days: dict[int, tuple[time, time]] = {}
    for weekday, name in enumerate(_WEEKDAYS):
        span = shop["hours"].get(name, "closed")
        if span != "closed":
            opens, closes = (time.fromisoformat(t) for t in span.split("-"))
            days[weekday] = (opens, closes)
    return OpeningHours(ZoneInfo(shop["time_zone"]), days)


def _sqlite_seeded() -> Path:
    global _sqlite_template
    if _sqlite_template is None:
        folder = Path(tempfile.mkdtemp(prefix="salon-seeded-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "salon.db"
        seed_database(f"sqlite:///{path}", MAISON)
        _sqlite_template = path
    return _sqlite_template


def _recreate_from_template(url: str) -> None:
    parsed = make_url(url)
    server = str(parsed.set(database="postgres"))
    template = _pg_templates.get(server)
    admin = make_sync_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    try:
        if template is None:
            template = f"salon_seeded_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{template}"'))
            seeder = str(parsed.set(database=template))
            seed_database(seeder, MAISON)
            _pg_templates[server] = template
            atexit.register(_drop, server, template)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
            conn.execute(text(f'CREATE DATABASE "{parsed.database}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()


def _drop(server: str, name: str) -> None:
    admin = make_sync_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    except Exception:  # the server may be gone at exit; the database is only a template
        return
    finally:
        admin.dispose()
