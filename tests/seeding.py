"""The demo maison in a test's database, without seeding it again for every test.

:func:`seed_maison` gives the database at a URL exactly what
``salon.integrations.seed.seed_database(url)`` would, from a copy seeded once per test
session: a SQLite file is copied into place, a PostgreSQL database is re-created from a
seeded template database (``CREATE DATABASE … TEMPLATE``). The seeding itself is tested
in tests/test_maison_seed.py.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from salon.config import PROJECT_ROOT
from salon.db import make_sync_engine
from salon.integrations.seed import seed_database

__all__ = ["seed_maison"]

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
