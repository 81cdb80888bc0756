"""Shared fixtures: real Redis and PostgreSQL for the tests that need them, and the
seeded demo maison on SQLite.

``REDIS_URL`` / ``TEST_POSTGRES_URL`` (or ``DATABASE_URL`` when it points at
PostgreSQL) choose the servers; the defaults are the local ones on their standard
ports. ``make test`` starts them when they are down. Where a server cannot be reached,
its tests are skipped with a loud notice at the end of the run; with ``CI=true`` the
absence fails those tests instead, so CI can never skip them silently.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from salon.config import PROJECT_ROOT, Settings
from salon.integrations.seed import seed_database

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

_unavailable: dict[str, str] = {}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _service_missing(name: str, reason: str) -> None:
    _unavailable[name] = reason
    message = f"{name} is not reachable ({reason})"
    if _in_ci():
        pytest.fail(f"{message}; CI=true forbids skipping tests that need it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def identity_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The key the WhatsApp channel seals who writes with, and the actions check."""
    from tests.action_support import TEST_IDENTITY_KEY

    monkeypatch.setenv("SALON_IDENTITY_KEY", TEST_IDENTITY_KEY)
    return TEST_IDENTITY_KEY


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis database reserved for tests (flushed per test by users)."""
    import redis

    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        _service_missing("Redis", f"{url}: {exc}")
    return url


def _postgres_admin_url() -> str:
    explicit = os.environ.get("TEST_POSTGRES_URL")
    if explicit:
        return explicit
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgresql", "postgres:")):
        return database_url
    return DEFAULT_POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of a reachable PostgreSQL server (an admin database on it)."""
    from sqlalchemy import text

    from salon.storage.db import make_sync_engine

    url = _postgres_admin_url()
    try:
        engine = make_sync_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        _service_missing("PostgreSQL", f"{url}: {exc}")
    return url


@pytest.fixture()
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from salon.storage.db import make_sync_engine

    name = f"salon_test_{uuid.uuid4().hex[:12]}"
    admin = make_sync_engine(postgres_server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(make_url(postgres_server_url).set(database=name))
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture()
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A SQLite database file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'salon.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each SQL backend in turn: SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if not _unavailable:
        return
    terminalreporter.section("SERVICES NOT REACHABLE", sep="!", red=True, bold=True)
    for name, reason in _unavailable.items():
        terminalreporter.write_line(
            f"!!! {name} tests were {'FAILED' if _in_ci() else 'SKIPPED'}: {reason}",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def seeded_maison_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo maison seeded once into a SQLite file, copied by :func:`settings`."""
    path = tmp_path_factory.mktemp("seeded-maison") / "salon.db"
    seed_database(f"sqlite:///{path}", PROJECT_ROOT / "data" / "maison")
    return path


@pytest.fixture()
def settings(seeded_maison_file: Path, tmp_path: Path) -> Settings:
    """Settings on a fresh copy of the seeded maison (SQLite, no Redis)."""
    db = tmp_path / "salon.db"
    shutil.copy(seeded_maison_file, db)
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=f"sqlite:///{db}", redis_url=None)
