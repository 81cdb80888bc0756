"""SQLite for an asyncio engine, run in the event loop's own thread.

SQLAlchemy's asyncio SQLite driver (aiosqlite) runs every call on a worker thread: a
statement costs three or four round trips between the loop and that thread (cursor,
execute, fetch, close), each a wake-up of the other thread and a hand-over of the
interpreter. On a busy machine one round trip takes a quarter of a millisecond or more,
so a transaction of five statements takes several milliseconds, most of it waiting, and
while the process is doing other Python work each hand-over waits for the interpreter's
switch interval. The WhatsApp channel's acknowledgement (the inbox claim and the window
record) is such a chain.

On a local file with WAL, SQLite's own work per statement is tens of microseconds, so
this module runs it directly in the loop's thread, behind the same asyncio interface
(a stand-in for the ``aiosqlite`` module, handed to SQLAlchemy's driver as its DBAPI:
see :func:`salon.storage.db.make_async_engine`). Statements never wait for another process's
write lock inside SQLite's busy handler, which would stall the loop: the connection's
busy timeout is 0, and a ``BEGIN`` or a statement outside a transaction that finds the
file locked is tried again after an asynchronous pause (0.5 ms, doubling up to 5 ms),
until ``busy_timeout`` has passed. Transactions begin with ``BEGIN IMMEDIATE``
(:func:`salon.storage.db._sqlite_pragmas`), so once begun they hold the write lock and their
statements do not meet a lock again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, Final, Literal

__all__ = ["DEFAULT_BUSY_TIMEOUT", "connect"]

DEFAULT_BUSY_TIMEOUT: Final = 5.0
"""Seconds a statement waits for another connection's write lock before failing, as
``PRAGMA busy_timeout=5000`` does on the threaded driver."""
FIRST_PAUSE: Final = 0.0005
LONGEST_PAUSE: Final = 0.005

#: What :attr:`sqlite3.Connection.isolation_level` accepts (None: no implicit BEGIN).
_IsolationLevel = Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None

# The names SQLAlchemy's adapter reads from its ``aiosqlite`` module.
DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc)
    return "database is locked" in message or "database is busy" in message


class Cursor:
    """An ``aiosqlite.Cursor`` look-alike over a :class:`sqlite3.Cursor`."""

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Cursor:
        if parameters is None:
            parameters = ()
        await self._connection._run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        rows = list(parameters)
        await self._connection._run(self._cursor.executemany, sql, rows)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize


class Connection:
    """An ``aiosqlite.Connection`` look-alike whose calls run in the caller's thread."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = connection
        self.busy_timeout = busy_timeout

    async def _run(self, call: Callable[..., Any], *args: Any) -> Any:
        pause = FIRST_PAUSE
        deadline: float | None = None
        while True:
            # A statement inside a transaction (begun IMMEDIATE) already holds the lock;
            # one that meets it there is a real conflict and fails as it would anyway.
            retry_allowed = not self._conn.in_transaction
            try:
                return call(*args)
            except sqlite3.OperationalError as exc:
                if not (retry_allowed and _is_busy(exc)):
                    raise
                loop = asyncio.get_running_loop()
                now = loop.time()
                if deadline is None:
                    deadline = now + self.busy_timeout
                if now >= deadline:
                    raise
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, LONGEST_PAUSE)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: _IsolationLevel) -> None:
        self._conn.isolation_level = value

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Cursor:
        cursor = await self.cursor()
        return await cursor.execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        await self._run(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()


class _Connecting:
    """What ``connect`` returns: awaitable, and it takes the attributes SQLAlchemy's
    adapter sets on aiosqlite's connection thread (``daemon``).
    """

    def __init__(self, database: str, busy_timeout: float, kwargs: dict[str, Any]) -> None:
        self.database = database
        self.busy_timeout = busy_timeout
        self.kwargs = kwargs
        self.daemon = True

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def _open(self) -> Connection:
        # SQLite's own busy handler never sleeps in the loop's thread: waiting for a lock
        # is done by Connection._run, asynchronously.
        self.kwargs.update(timeout=0, check_same_thread=False)
        connection = sqlite3.connect(self.database, **self.kwargs)
        return Connection(connection, self.busy_timeout)


def connect(database: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, **kwargs: Any) -> _Connecting:
    """Open ``database`` (an ``aiosqlite.connect`` look-alike)."""
    return _Connecting(database, busy_timeout, kwargs)
