"""SQLAlchemy engines for Salon's own tables.

One URL configures both flavours: synchronous engines (seeding, CLIs, benches) and
asynchronous engines (everything that runs inside the Rasa server, the action server or
the outbound worker, where blocking the event loop is not allowed). SQLite uses
``aiosqlite`` asynchronously; PostgreSQL uses ``psycopg2`` synchronously and ``asyncpg``
asynchronously.

Every engine is made with ``hide_parameters=True``: a statement's parameters (message
text, names, numbers) never appear in SQLAlchemy's errors, hence never in a logged
traceback; the statement itself still does.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from sqlalchemy import MetaData, Table, bindparam, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.sql.base import Executable

logger = logging.getLogger(__name__)

_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2"}
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def _normalise(url: str | URL, drivers: dict[str, str]) -> URL:
    parsed = make_url(str(url)) if not isinstance(url, URL) else url
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in drivers:
        raise ValueError(
            f"unsupported database {backend!r} in DATABASE_URL; use sqlite:/// or postgresql://"
        )
    return parsed.set(drivername=drivers[backend])


def sync_url(url: str | URL) -> URL:
    """The synchronous-driver form of ``url``."""
    return _normalise(url, _SYNC_DRIVERS)


def async_url(url: str | URL) -> URL:
    """The asyncio-driver form of ``url``."""
    return _normalise(url, _ASYNC_DRIVERS)


def _prepare_sqlite_file(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(engine: Engine, busy_timeout_ms: int = 5000) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is deferred: a transaction that reads, then
        # writes, fails at once with "database is locked" when another writer committed
        # meanwhile (the busy timeout does not apply to that upgrade). Transactions are
        # begun below instead, as IMMEDIATE, so writers queue on the busy timeout.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL syncs at checkpoints instead of every commit: a crash of the
        # process loses nothing, a power cut can lose the last commits, never corrupts.
        # The embedded default trades that for ~10x fewer fsyncs; production runs on
        # PostgreSQL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # one statement, its own transaction (SqlTables.single)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sync_engine(url: str | URL) -> Engine:
    """A synchronous engine (future-style API) for ``url``."""
    target = sync_url(url)
    _prepare_sqlite_file(target)
    engine = create_engine(target, future=True, pool_pre_ping=True, hide_parameters=True)
    if target.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine)
    return engine


def make_async_engine(url: str | URL, *, inline_sqlite: bool = False) -> AsyncEngine:
    """An asyncio engine for ``url``.

    SQLite files get a real connection pool: SQLAlchemy's default for aiosqlite opens the
    file (and runs its PRAGMAs) on every checkout, which halves throughput.

    The SQLite pool holds one connection: SQLite admits one writer at a time anyway, and
    a second connection waiting for the write lock sleeps in SQLite's busy handler (up to
    100 ms per retry), while a coroutine waiting for the pool's only connection is woken
    the moment it is free. Never hold a connection while asking for another.
    """
    target = async_url(url)
    _prepare_sqlite_file(target)
    options: dict[str, object] = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
    if target.get_backend_name() == "sqlite" and target.database not in (None, "", ":memory:"):
        # A file never drops a connection: no ping round trip before each use.
        options.update(poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0, pool_timeout=60,
                       pool_pre_ping=False)
        if inline_sqlite:
            from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

            from salon.storage import sqlite_inline
            options["module"] = AsyncAdapt_aiosqlite_dbapi(sqlite_inline, sqlite3)
    inline = "module" in options
    engine = create_async_engine(target, **options)
    if target.get_backend_name() == "sqlite":
        # Inline, waiting for the write lock is done by salon.storage.sqlite_inline, never by
        # SQLite's busy handler (which would sleep in the event loop's thread).
        _sqlite_pragmas(engine.sync_engine, busy_timeout_ms=0 if inline else 5000)
    return engine


SCHEMA_LOCK_KEY: Final = 0x5A1A_0001
"""PostgreSQL advisory lock taken while tables are created: processes starting together
(several outbound workers, the channel and the action server) would otherwise race on
``CREATE TABLE`` and one of them fail."""


def insert_on_conflict(
    table: Table,
    values: Sequence[str] | Mapping[str, str],
    conflict: Sequence[str],
    *,
    update: Mapping[str, str] | None = None,
    returning: Sequence[str] = (),
    rows: int = 1,
) -> Executable:
    """``INSERT … ON CONFLICT (…) DO NOTHING`` (or ``DO UPDATE SET …``) as one SQL text,
    the same on SQLite (3.35 and later) and PostgreSQL.

    SQLAlchemy 1.4 cannot cache the dialects' own ``insert().on_conflict_…`` constructs:
    each execution compiles the statement again, a quarter of a millisecond of CPU, which
    the channel would pay for every message before acknowledging it. A text statement is
    compiled once per engine.

    ``values``: the columns to insert, each bound to the parameter of the same name, or a
    mapping of column to parameter name (a parameter may fill several columns). Each
    parameter takes its column's type (JSON columns are serialised as by the table).
    ``update``: for ``DO UPDATE``, column to SQL expression, which may name
    ``excluded.<column>`` and ``<table>.<column>``. ``returning``: columns to return.
    ``rows``: more than one inserts that many rows in one statement, their parameters
    named ``<name>_0``, ``<name>_1``… (with ``DO NOTHING … RETURNING``, the rows returned
    are exactly those this statement inserted).
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    binds = dict(values) if isinstance(values, Mapping) else {column: column for column in values}
    for column in (*binds, *conflict, *(update or {}), *returning):
        if column not in table.c:
            raise ValueError(f"{table.name} has no column {column!r}")
    suffixes = [""] if rows == 1 else [f"_{i}" for i in range(rows)]
    tuples = ", ".join(f"({', '.join(f':{name}{suffix}' for name in binds.values())})" for suffix in suffixes)
    sql = (f"INSERT INTO {table.name} ({', '.join(binds)}) VALUES {tuples} "
           f"ON CONFLICT ({', '.join(conflict)}) ")
    if update:
        sql += "DO UPDATE SET " + ", ".join(f"{column} = {expr}" for column, expr in update.items())
    else:
        sql += "DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(returning)
    types: dict[str, Any] = {}
    for column, name in binds.items():
        types.setdefault(name, table.c[column].type)
    stmt = text(sql).bindparams(*(bindparam(f"{name}{suffix}", type_=kind)
                                  for suffix in suffixes for name, kind in types.items()))
    if returning:
        return stmt.columns(*(table.c[column] for column in returning))
    return stmt


async def schema_lock(conn: Any) -> None:
    """Serialise schema changes across processes until the transaction ends (PostgreSQL;
    SQLite's ``BEGIN IMMEDIATE`` already holds the file's write lock).
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


async def widen_columns(conn: AsyncConnection, metadata: MetaData) -> list[str]:
    """PostgreSQL: a text column created narrower than ``metadata`` now declares it (a
    table made by an older version) is widened in place; returns ``table.column`` of each.
    SQLite does not enforce lengths.
    """
    widened: list[str] = []
    for table in metadata.tables.values():
        rows = (await conn.execute(text(
            "SELECT column_name, character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table "
            "AND data_type = 'character varying'"), {"table": table.name})).all()
        for name, length in rows:
            column = table.columns.get(name)
            wanted = getattr(column.type, "length", None) if column is not None else None
            if length is not None and wanted is not None and wanted > length:
                await conn.execute(text(f'ALTER TABLE "{table.name}" ALTER COLUMN "{name}" TYPE VARCHAR({int(wanted)})'))
                widened.append(f"{table.name}.{name}")
    if widened:
        logger.info("widened column(s) to their declared length: %s", ", ".join(widened))
    return widened


class SqlTables:
    """Base of the classes that keep their own tables on an asyncio engine: the engine
    is given (shared, left open) or made from a URL (owned, disposed by ``close``);
    ``initialize`` creates ``self.metadata``'s tables.
    """

    metadata: MetaData

    def __init__(self, url: str | URL | None = None, *, engine: AsyncEngine | None = None,
                 inline_sqlite: bool = False) -> None:
        if engine is None:
            if url is None:
                raise ValueError(f"{type(self).__name__} needs a URL or an engine")
            engine = make_async_engine(url, inline_sqlite=inline_sqlite)
            self._own_engine = True
        else:
            self._own_engine = False
        self.engine = engine
        self._dialect = engine.dialect.name
        # Made once: an engine with options is a new object with its own event
        # dispatch, too costly to build for every statement.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def initialize(self) -> None:
        async with self.engine.begin() as conn:
            await schema_lock(conn)
            await conn.run_sync(self.metadata.create_all)
            if self._dialect == "postgresql":
                await widen_columns(conn, self.metadata)

    async def close(self) -> None:
        if self._own_engine:
            await self.engine.dispose()

    def single(self) -> Any:
        """A connection whose every statement is its own transaction: one round trip to
        the database per write, no lock held between statements. For writes that are a
        single atomic statement (conditional updates, upserts).
        """
        return self._autocommit.connect()

    def _insert(self, table: Table) -> Any:
        """An INSERT with ``on_conflict_do_nothing``/``do_update`` for this dialect."""
        return (pg_dialect if self._dialect == "postgresql" else sqlite_dialect).insert(table)


async def add_missing_columns(conn: Any, table: Table) -> None:
    """Columns of ``table`` added since a database was created (nullable ones only),
    added in place. Call inside a transaction holding :func:`schema_lock`.
    """
    await conn.run_sync(add_missing_columns_sync, table)


def add_missing_columns_sync(conn: Any, table: Table) -> None:
    """:func:`add_missing_columns` on a synchronous connection (the seed's)."""
    present = {c["name"] for c in inspect(conn).get_columns(table.name)}
    for column in table.columns:
        if column.name not in present and column.nullable:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
