"""Where Salon's own data about a client lives, as sources that can export and erase one subject:
SQL rows keyed by her ids, rows linked through them, rows kept without her ids once she
is erased, and the window's Redis keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DataSource", "LinkedRowsSource", "RedisSessions", "SqlRowsSource", "Subject", "UnlinkedRowsSource"]


@dataclass(frozen=True)
class Subject:
    """One client, by every id the stores know them under."""

    client_id: str | None = None
    wa_ids: frozenset[str] = frozenset()
    user_ids: frozenset[str] = frozenset()

    @property
    def sender_ids(self) -> list[str]:
        """Conversation ids (Rasa's sender_id, the inbox's, the outbound recipient)."""
        return sorted(self.wa_ids | self.user_ids)

    @property
    def aliases(self) -> list[str]:
        return sorted({f"w:{w}" for w in self.wa_ids} | {f"u:{u}" for u in self.user_ids})

    @property
    def ledger_subjects(self) -> list[str]:
        return self.aliases + ([f"c:{self.client_id}"] if self.client_id else [])

    @property
    def label(self) -> str:
        """The canonical id the erasure's salted hash is made of."""
        return self.client_id or (self.sender_ids[0] if self.sender_ids else "")


class DataSource(Protocol):
    """What a personal-data source offers: its name, an export and an erasure of one client."""

    name: str

    async def export(self, subject: Subject) -> Any: ...

    async def erase(self, subject: Subject) -> int: ...


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _why(exc: BaseException) -> str:
    """A short reason for a report (the class and the first line, bounded)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


async def _check_engine(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@dataclass
class SqlRowsSource:
    """Rows of one table whose ``column`` names the client (by ``ids(subject)``); ``also``
    adds more (column, ids) pairs, any of which marks a row as the client's.
    ``identifies``: the rows tell who the client is (kept until the other stores are
    erased).
    """

    name: str
    engine: AsyncEngine
    table: Table
    column: str
    ids: Callable[[Subject], Sequence[str]]
    also: tuple[tuple[str, Callable[[Subject], Sequence[str]]], ...] = ()
    identifies: bool = False

    def where(self, subject: Subject) -> Any | None:
        conditions = [self.table.c[column].in_(keys)
                      for column, ids in ((self.column, self.ids), *self.also)
                      if (keys := list(ids(subject)))]
        return or_(*conditions) if conditions else None

    async def check(self) -> None:
        await _check_engine(self.engine)

    async def _exists(self) -> bool:
        async with self.engine.connect() as conn:
            return bool(await conn.run_sync(lambda sync: inspect(sync).has_table(self.table.name)))

    async def export(self, subject: Subject) -> list[dict[str, Any]]:
        where = self.where(subject)
        if where is None or not await self._exists():
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(self.table).where(where))).mappings().all()
        return [{k: _plain(v) for k, v in row.items()} for row in rows]

    async def erase(self, subject: Subject) -> int:
        where = self.where(subject)
        if where is None or not await self._exists():
            return 0
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(self.table).where(where))
        return int(result.rowcount or 0)


@dataclass
class UnlinkedRowsSource(SqlRowsSource):
    """Rows kept when the client is erased (a record of what staff did, which the maison
    must keep), found and exported as by :class:`SqlRowsSource`. Erasure deletes none of
    them: it removes who they are about. Every column that names the client (``column``
    and those of ``also``, nullable) becomes NULL, and each ``rewrite`` (column, function
    of its value) replaces what else in the row points at her. ``erase`` counts the rows
    unlinked; run again, it finds none.
    """

    rewrite: tuple[tuple[str, Callable[[Any], Any]], ...] = ()
    key: str = "id"
    """The column that tells one row from another."""
    erasure_detail: str = "rows kept, with who they were about removed"
    """The erasure report's note for this store."""

    def __post_init__(self) -> None:
        for name in (*self.unlinked, *(column for column, _ in self.rewrite), self.key):
            if name not in self.table.c:
                raise ValueError(f"{self.table.name} has no column {name!r}")
        if set(self.unlinked) & {column for column, _ in self.rewrite}:
            raise ValueError(f"{self.table.name}: a column is both unlinked and rewritten")
        fixed = [name for name in self.unlinked if not self.table.c[name].nullable]
        if fixed:
            raise ValueError(f"{self.table.name}: {', '.join(fixed)} cannot be unlinked (NOT NULL)")

    @property
    def unlinked(self) -> tuple[str, ...]:
        """The columns that name the client: NULL once she is erased."""
        return tuple(dict.fromkeys((self.column, *(column for column, _ in self.also))))

    async def erase(self, subject: Subject) -> int:
        where = self.where(subject)
        if where is None or not await self._exists():
            return 0
        key = self.table.c[self.key]
        rewritten = [column for column, _ in self.rewrite]
        async with self.engine.begin() as conn:
            rows = (await conn.execute(select(key, *(self.table.c[c] for c in rewritten)).where(where))).all()
            if not rows:
                return 0
            changes = [{"row_key": row[0], **{f"new_{column}": change(row._mapping[column])
                                              for column, change in self.rewrite}}
                       for row in rows]
            statement = update(self.table).where(key == bindparam("row_key")).values(
                **{column: None for column in self.unlinked},
                **{column: bindparam(f"new_{column}", type_=self.table.c[column].type) for column in rewritten})
            await conn.execute(statement, changes)
        return len(rows)


@dataclass
class LinkedRowsSource:
    """Rows of ``table`` whose ``column`` points at the client's rows of ``parent`` (order
    lines of their orders, events of their outbound requests). Registered before the
    parent, so erasure removes them first.
    """

    name: str
    engine: AsyncEngine
    table: Table
    column: str
    parent: SqlRowsSource
    parent_key: str = "id"
    identifies: bool = False

    def _where(self, subject: Subject) -> Any | None:
        parent_where = self.parent.where(subject)
        if parent_where is None:
            return None
        owned = select(self.parent.table.c[self.parent_key]).where(parent_where)
        return self.table.c[self.column].in_(owned)

    async def check(self) -> None:
        await _check_engine(self.engine)

    async def _exists(self, conn: Any) -> bool:
        names = (self.table.name, self.parent.table.name)
        return bool(await conn.run_sync(lambda s: all(inspect(s).has_table(n) for n in names)))

    async def export(self, subject: Subject) -> list[dict[str, Any]]:
        where = self._where(subject)
        if where is None:
            return []
        async with self.engine.connect() as conn:
            if not await self._exists(conn):
                return []
            rows = (await conn.execute(select(self.table).where(where))).mappings().all()
        return [{k: _plain(v) for k, v in row.items()} for row in rows]

    async def erase(self, subject: Subject) -> int:
        where = self._where(subject)
        if where is None:
            return 0
        async with self.engine.begin() as conn:
            if not await self._exists(conn):
                return 0
            result = await conn.execute(delete(self.table).where(where))
        return int(result.rowcount or 0)


def _glob(value: str) -> str:
    """``value`` with Redis glob characters escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", value)


@dataclass
class RedisSessions:
    """The Redis session store's keys for the client (state, aliases, parked queue)."""

    url: str
    prefix: str = "salon:session"
    name: str = "sessions_redis"
    identifies: bool = True

    async def check(self) -> None:
        await _redis_ping(self.url)

    async def _keys(self, client: Any, subject: Subject) -> list[str]:
        found: set[str] = set()
        for alias in subject.aliases:
            async for key in client.scan_iter(match=f"{_glob(self.prefix)}:*:*:{_glob(alias)}", count=1000):
                found.add(key.decode() if isinstance(key, bytes) else key)
        return sorted(found)

    async def linked(self, aliases: Iterable[str]) -> set[str]:
        """Every alias (``w:…``/``u:…``) linked to the sessions of these aliases: the keys
        they point at, every other alias pointing at those keys, and the ids the sessions
        hold now.
        """
        import redis.asyncio as aioredis

        wanted = set(aliases)
        client = aioredis.Redis.from_url(self.url, decode_responses=True)
        try:
            keys: set[tuple[str, str]] = set()  # (phone_number_id, client key)
            for alias in wanted:
                async for name in client.scan_iter(match=f"{_glob(self.prefix)}:a:*:{_glob(alias)}", count=1000):
                    value = await client.get(name)
                    if value:
                        keys.add((self._pnid(name, "a"), value))
                async for name in client.scan_iter(match=f"{_glob(self.prefix)}:s:*:{_glob(alias)}", count=1000):
                    keys.add((self._pnid(name, "s"), alias))
            found = {key for _, key in keys}
            # Every alias pointing at one of those sessions (old numbers, earlier BSUIDs).
            if keys:
                batch: list[str] = []

                async def match(names: list[str]) -> None:
                    for name, value in zip(names, await client.mget(names), strict=True):
                        if value is not None and (self._pnid(name, "a"), value) in keys:
                            found.add(name.rsplit(":", 2)[-2] + ":" + name.rsplit(":", 2)[-1])

                async for name in client.scan_iter(match=f"{_glob(self.prefix)}:a:*", count=1000):
                    batch.append(name)
                    if len(batch) >= 500:
                        await match(batch)
                        batch = []
                if batch:
                    await match(batch)
            for pnid, key in keys:
                state = await client.hmget(f"{self.prefix}:s:{pnid}:{key}", "uid", "wa")
                if state[0]:
                    found.add(f"u:{state[0]}")
                if state[1]:
                    found.add(f"w:{state[1]}")
            return found
        finally:
            await client.close()

    def _pnid(self, name: str, kind: str) -> str:
        rest = name[len(self.prefix) + len(kind) + 2:]
        return rest.split(":", 1)[0]

    async def export(self, subject: Subject) -> dict[str, Any]:
        return await _redis_dump(self.url, lambda client: self._keys(client, subject))

    async def erase(self, subject: Subject) -> int:
        return await _redis_delete(self.url, lambda client: self._keys(client, subject))


async def _redis_ping(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10)
    try:
        await client.ping()
    finally:
        await client.close()


async def _redis_dump(url: str, keys_of: Callable[[Any], Any]) -> dict[str, Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        out: dict[str, Any] = {}
        for key in await keys_of(client):
            kind = await client.type(key)
            if kind == "hash":
                out[key] = await client.hgetall(key)
            elif kind == "list":
                out[key] = await client.lrange(key, 0, -1)
            elif kind == "set":
                out[key] = sorted(await client.smembers(key))
            elif kind == "zset":
                out[key] = await client.zrange(key, 0, -1)
            else:
                out[key] = await client.get(key)
        return out
    finally:
        await client.close()


async def _redis_delete(url: str, keys_of: Callable[[Any], Any]) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        keys = await keys_of(client)
        return int(await client.delete(*keys)) if keys else 0
    finally:
        await client.close()
