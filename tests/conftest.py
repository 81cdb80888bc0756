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
import queue
import shutil
import threading
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


class _EmptyDatabases:
    """Fresh, empty PostgreSQL databases made one or two ahead on a thread, and the used
    ones dropped there, while the tests run: making one (``CREATE DATABASE`` copies and
    logs the whole template) took about 0.4 s, most of it waiting on the disk, and 190
    tests each waited for theirs."""

    AHEAD = 2

    def __init__(self, server_url: str) -> None:
        from sqlalchemy import text

        from salon.storage.db import make_sync_engine

        self._text = text
        self._admin = make_sync_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
        self._ready: queue.Queue[str] = queue.Queue(maxsize=self.AHEAD)
        self._used: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._maker = threading.Thread(target=self._make_ahead, name="pg-ahead", daemon=True)
        self._dropper = threading.Thread(target=self._drop_used, name="pg-drop", daemon=True)
        self._maker.start()
        self._dropper.start()

    def _create(self) -> str:
        name = f"salon_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(self._text(f'CREATE DATABASE "{name}"'))
        return name

    def _drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(
                self._text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": name},
            )
            connection.execute(self._text(f'DROP DATABASE IF EXISTS "{name}"'))

    def _make_ahead(self) -> None:
        while not self._stop.is_set():
            try:
                name = self._create()
            except Exception:  # the server went away: the tests make their own
                return
            while not self._stop.is_set():
                try:
                    self._ready.put(name, timeout=0.2)
                    break
                except queue.Full:
                    continue
            else:
                self._drop(name)

    def _drop_used(self) -> None:
        while (name := self._used.get()) is not None:
            try:
                self._drop(name)
            except Exception:  # left behind, as a crashed run would leave it
                continue

    def take(self) -> str:
        try:
            return self._ready.get_nowait()
        except queue.Empty:
            return self._create()

    def give_back(self, name: str) -> None:
        self._used.put(name)

    def close(self) -> None:
        self._stop.set()
        self._maker.join(timeout=30)
        while True:
            try:
                self._used.put(self._ready.get_nowait())
            except queue.Empty:
                break
        self._used.put(None)
        self._dropper.join(timeout=60)
        self._admin.dispose()


@pytest.fixture(scope="session")
def _empty_databases(postgres_server_url: str) -> Iterator[_EmptyDatabases]:
    pool = _EmptyDatabases(postgres_server_url)
    yield pool
    pool.close()


@pytest.fixture()
def postgres_url(postgres_server_url: str, _empty_databases: _EmptyDatabases) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy.engine import make_url

    name = _empty_databases.take()
    try:
        yield str(make_url(postgres_server_url).set(database=name))
    finally:
        _empty_databases.give_back(name)


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
