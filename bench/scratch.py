"""A database of the benchmark's own, so every run starts from the same empty state.

``--database-url`` names a server to measure against; a SQLite URL is used as it is (the
benchmarks point it into a fresh temporary folder), while for PostgreSQL a database with
a fresh name is created on the same server, handed to the run and dropped afterwards
(the named database itself is never written to).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import make_url

from salon.storage.db import make_sync_engine

__all__ = ["scratch_database"]


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        yield url
        return
    name = f"salon_bench_{uuid.uuid4().hex[:10]}"
    admin = make_sync_engine(str(parsed.set(database="postgres"))).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
