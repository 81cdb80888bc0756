"""GDPR/CCPA: export and erase everything held about one client, and purge by retention.

A :class:`PrivacyRegistry` holds the *personal-data sources*; each one can export and
erase one client's data. A table added later joins with one call to
:meth:`PrivacyRegistry.register` (a :class:`SqlRowsSource` for a table with a client
column, or any object with ``name``, ``export`` and ``erase``).

:func:`default_registry` covers every store Salon keeps:

- the maison's book: client, purchases, consents, orders and their lines, appointments,
  event RSVPs (``maison_*``);
- the session store (SQL tables ``salon_sessions``, aliases, parked messages; or Redis
  keys under ``salon:session``);
- WhatsApp records: ``wa_inbox``, ``wa_outbound``, ``wa_preferences``;
- ``llm_audit`` and the consent ledger;
- Rasa's tracker store, read directly (no Rasa import): the SQL ``events`` table
  (``RASA_TRACKER_STORE_URL``, default ``var/rasa-trackers.db``) and Redis tracker keys
  (``RASA_TRACKER_REDIS_URL``, prefix ``tracker:``).

An erasure deletes the client's rows and keys everywhere and then writes one
``privacy_erasures`` row: a salted hash of the client (``SALON_PRIVACY_SALT``, else a
salt kept in ``var/privacy.salt``), the time and how many items each store removed;
nothing else about the client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    inspect,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import Clock, clock_from_env
from salon.config import PROJECT_ROOT, Settings
from salon.db import SqlTables, make_async_engine
from salon.sessions import to_us

logger = logging.getLogger(__name__)

__all__ = [
    "ClientNotFound",
    "DataSource",
    "PrivacyRegistry",
    "RasaRedisTrackers",
    "RasaSqlTrackers",
    "RedisSessions",
    "SqlRowsSource",
    "Subject",
    "default_registry",
    "erasures_table",
    "purge_retention",
]

DEFAULT_RASA_TRACKERS_FILE = PROJECT_ROOT / "var" / "rasa-trackers.db"
"""Where ``endpoints.yml`` puts Rasa's SQL tracker store by default."""
DEFAULT_RASA_TRACKERS = f"sqlite:///{DEFAULT_RASA_TRACKERS_FILE}"
DEFAULT_CONVERSATION_RETENTION_DAYS = 365


class ClientNotFound(LookupError):
    """Nothing identifies this client (no maison id, number or BSUID)."""


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
    name: str

    async def export(self, subject: Subject) -> Any: ...

    async def erase(self, subject: Subject) -> int: ...


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


@dataclass
class SqlRowsSource:
    """Rows of one table whose ``column`` names the client (by ``ids(subject)``); ``also``
    adds more (column, ids) pairs, any of which marks a row as the client's."""

    name: str
    engine: AsyncEngine
    table: Table
    column: str
    ids: Callable[[Subject], Sequence[str]]
    also: tuple[tuple[str, Callable[[Subject], Sequence[str]]], ...] = ()

    def where(self, subject: Subject) -> Any | None:
        conditions = [self.table.c[column].in_(keys)
                      for column, ids in ((self.column, self.ids), *self.also)
                      if (keys := list(ids(subject)))]
        return or_(*conditions) if conditions else None

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
class LinkedRowsSource:
    """Rows of ``table`` whose ``column`` points at the client's rows of ``parent`` (order
    lines of their orders, events of their outbound requests). Registered before the
    parent, so erasure removes them first."""

    name: str
    engine: AsyncEngine
    table: Table
    column: str
    parent: SqlRowsSource
    parent_key: str = "id"

    def _where(self, subject: Subject) -> Any | None:
        parent_where = self.parent.where(subject)
        if parent_where is None:
            return None
        owned = select(self.parent.table.c[self.parent_key]).where(parent_where)
        return self.table.c[self.column].in_(owned)

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


@dataclass
class RedisSessions:
    """The Redis session store's keys for the client (state, aliases, parked queue)."""

    url: str
    prefix: str = "salon:session"
    name: str = "sessions_redis"

    async def _keys(self, client: Any, subject: Subject) -> list[str]:
        found: set[str] = set()
        for alias in subject.aliases:
            async for key in client.scan_iter(match=f"{self.prefix}:*:*:{alias}", count=1000):
                found.add(key.decode() if isinstance(key, bytes) else key)
        return sorted(found)

    async def export(self, subject: Subject) -> dict[str, Any]:
        return await _redis_dump(self.url, lambda client: self._keys(client, subject))

    async def erase(self, subject: Subject) -> int:
        return await _redis_delete(self.url, lambda client: self._keys(client, subject))


@dataclass
class RasaRedisTrackers:
    """Rasa's Redis tracker store: one key per conversation, ``<prefix><sender_id>``."""

    url: str
    key_prefix: str = "tracker:"
    name: str = "rasa_trackers_redis"

    async def _keys(self, client: Any, subject: Subject) -> list[str]:
        keys = [f"{self.key_prefix}{sender}" for sender in subject.sender_ids]
        return [k for k in keys if await client.exists(k)]

    async def export(self, subject: Subject) -> dict[str, Any]:
        return await _redis_dump(self.url, lambda client: self._keys(client, subject))

    async def erase(self, subject: Subject) -> int:
        return await _redis_delete(self.url, lambda client: self._keys(client, subject))


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


@dataclass
class RasaSqlTrackers:
    """Rasa's SQL tracker store: the ``events`` table, one row per event, by sender_id."""

    url: str
    name: str = "rasa_trackers_sql"
    _engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = make_async_engine(self.url)
        return self._engine

    async def _table(self) -> Table | None:
        async with self.engine.connect() as conn:
            if not await conn.run_sync(lambda s: inspect(s).has_table("events")):
                return None
            meta = MetaData()
            await conn.run_sync(lambda s: meta.reflect(s, only=["events"]))
        return meta.tables["events"]

    async def export(self, subject: Subject) -> list[dict[str, Any]]:
        table = await self._table()
        if table is None or not subject.sender_ids:
            return []
        query = select(table).where(table.c.sender_id.in_(subject.sender_ids)).order_by(table.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        out = []
        for row in rows:
            item = {k: _plain(v) for k, v in row.items()}
            if isinstance(item.get("data"), str):
                try:
                    item["data"] = json.loads(item["data"])
                except ValueError:
                    pass
            out.append(item)
        return out

    async def erase(self, subject: Subject) -> int:
        table = await self._table()
        if table is None or not subject.sender_ids:
            return 0
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(table).where(table.c.sender_id.in_(subject.sender_ids)))
        return int(result.rowcount or 0)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


# --------------------------------------------------------------------------- erasure record

_meta = MetaData()
erasures_table = Table(
    "privacy_erasures",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_hash", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("removed", JSON, nullable=False),  # {source: count}
)


class ErasureLog(SqlTables):
    metadata = _meta

    async def add(self, subject_hash: str, at: datetime, actor: str, removed: dict[str, int]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(erasures_table.insert().values(subject_hash=subject_hash, at_us=to_us(at, "at"),
                                                              actor=actor, removed=removed))

    async def rows(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(erasures_table))).mappings().all()]


def privacy_salt(settings: Settings) -> bytes:
    """``SALON_PRIVACY_SALT``, else a random salt kept in ``var/privacy.salt``."""
    value = os.environ.get("SALON_PRIVACY_SALT")
    if value:
        return value.encode()
    path = Path(settings.var_dir) / "privacy.salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


# --------------------------------------------------------------------------- registry


@dataclass
class PrivacyRegistry:
    engine: AsyncEngine
    """The Salon database (maison tables, erasure log)."""
    salt: bytes
    clock: Clock
    sources: list[DataSource] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def register(self, source: DataSource) -> None:
        """Add a personal-data source; erasure runs in registration order (children
        before the rows they point at)."""
        if any(s.name == source.name for s in self.sources):
            raise ValueError(f"a source named {source.name!r} is already registered")
        self.sources.append(source)

    async def resolve(self, client: str) -> Subject:
        """A maison client id, a phone number (+E.164 or digits) or a BSUID."""
        from salon.integrations.schema import clients
        from salon.whatsapp.addressing import is_bsuid

        client = client.strip()
        if not client:
            raise ClientNotFound("no client given")
        digits = client.lstrip("+")
        conditions = [clients.c.id == client, clients.c.user_id == client]
        if digits.isdigit():
            conditions += [clients.c.wa_id == digits, clients.c.phone == f"+{digits}"]
        async with self.engine.connect() as conn:
            has_book = await conn.run_sync(lambda s: inspect(s).has_table(clients.name))
            row = (await conn.execute(select(clients.c.id, clients.c.wa_id, clients.c.user_id)
                                      .where(or_(*conditions)).limit(1))).first() if has_book else None
        if row is not None:
            return Subject(row.id, frozenset({row.wa_id} - {None}), frozenset({row.user_id} - {None}))
        if is_bsuid(client):
            return Subject(None, frozenset(), frozenset({client}))
        if digits.isdigit() and 5 <= len(digits) <= 20:
            return Subject(None, frozenset({digits}), frozenset())
        raise ClientNotFound(f"no client is known as {client!r}")

    async def export(self, subject: Subject) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for source in self.sources:
            data[source.name] = await source.export(subject)
        return {"client": {"client_id": subject.client_id, "wa_ids": sorted(subject.wa_ids),
                           "user_ids": sorted(subject.user_ids)},
                "exported_at": self.clock.now().isoformat(), "stores": data}

    async def erase(self, subject: Subject, *, actor: str) -> dict[str, int]:
        removed: dict[str, int] = {}
        for source in self.sources:
            removed[source.name] = await source.erase(subject)
        subject_hash = hashlib.sha256(self.salt + subject.label.encode()).hexdigest()
        log = ErasureLog(engine=self.engine)
        await log.initialize()
        await log.add(subject_hash, self.clock.now(), actor, removed)
        logger.info("erasure %s by %s: %d item(s) removed", subject_hash[:12], actor, sum(removed.values()))
        return removed

    async def close(self) -> None:
        for closer in self.closers:
            await closer()
        await self.engine.dispose()


def default_registry(settings: Settings, *, clock: Clock | None = None) -> PrivacyRegistry:
    """Every personal-data store of this installation, from the environment."""
    from salon.aftercare import repairs_table, updates_table
    from salon.consent import ledger_table
    from salon.handoff import handoffs_table
    from salon.integrations import schema
    from salon.llm.audit import audit_table
    from salon.outbound import events_table, requests_table
    from salon.restock import restock_table
    from salon.sessions import aliases_table, parked_table, sessions_table
    from salon.whatsapp.consent import preferences_table
    from salon.whatsapp.records import inbox_table, outbound_table

    engine = make_async_engine(settings.effective_database_url)
    registry = PrivacyRegistry(engine, privacy_salt(settings), clock or clock_from_env())

    def by_client(s: Subject) -> list[str]:
        return [s.client_id] if s.client_id else []

    def senders(s: Subject) -> list[str]:
        return s.sender_ids

    def aliases(s: Subject) -> list[str]:
        return s.aliases

    def ledger(s: Subject) -> list[str]:
        return s.ledger_subjects

    def wa_ids(s: Subject) -> list[str]:
        return sorted(s.wa_ids)

    def user_ids(s: Subject) -> list[str]:
        return sorted(s.user_ids)

    for table, column, ids in (
        (schema.purchases, "client_id", by_client),
        (schema.consents, "client_id", by_client),
        (schema.event_rsvps, "client_id", by_client),
        (schema.appointments, "client_id", by_client),
    ):
        registry.register(SqlRowsSource(table.name, engine, table, column, ids))
    orders = SqlRowsSource(schema.orders.name, engine, schema.orders, "client_id", by_client)
    registry.register(LinkedRowsSource(schema.order_items.name, engine, schema.order_items, "order_id", orders))
    registry.register(orders)
    registry.register(SqlRowsSource(schema.clients.name, engine, schema.clients, "id", by_client))
    registry.register(SqlRowsSource("salon_sessions", engine, sessions_table, "client_key", aliases))
    registry.register(SqlRowsSource("salon_session_aliases", engine, aliases_table, "alias", aliases))
    registry.register(SqlRowsSource("salon_parked_messages", engine, parked_table, "client_key", aliases))
    if settings.redis_url:
        registry.register(RedisSessions(settings.redis_url))
    registry.register(SqlRowsSource("wa_inbox", engine, inbox_table, "sender_id", senders))
    registry.register(SqlRowsSource("wa_outbound", engine, outbound_table, "recipient", senders))
    registry.register(SqlRowsSource("wa_preferences", engine, preferences_table, "client_id", aliases))
    registry.register(SqlRowsSource("llm_audit", engine, audit_table, "client_id", by_client))
    registry.register(SqlRowsSource("consent_ledger", engine, ledger_table, "subject", ledger))
    # What the assistant and the outbound engine keep about a client.
    registry.register(SqlRowsSource("salon_handoffs", engine, handoffs_table, "conversation_id", senders,
                                    also=(("client_id", by_client),)))
    repairs = SqlRowsSource("salon_repair_requests", engine, repairs_table, "conversation_id", senders,
                            also=(("client_id", by_client),))
    registry.register(LinkedRowsSource("salon_repair_updates", engine, updates_table, "request_id", repairs))
    registry.register(repairs)
    registry.register(SqlRowsSource("restock_requests", engine, restock_table, "wa_id", wa_ids,
                                    also=(("user_id", user_ids),)))
    requests = SqlRowsSource("outbound_requests", engine, requests_table, "wa_id", wa_ids,
                             also=(("user_id", user_ids),))
    registry.register(LinkedRowsSource("outbound_events", engine, events_table, "request_id", requests))
    registry.register(requests)
    trackers_url = os.environ.get("RASA_TRACKER_STORE_URL")
    if trackers_url or DEFAULT_RASA_TRACKERS_FILE.exists():
        trackers = RasaSqlTrackers(trackers_url or DEFAULT_RASA_TRACKERS)
        registry.register(trackers)
        registry.closers.append(trackers.close)
    redis_trackers = os.environ.get("RASA_TRACKER_REDIS_URL")
    if redis_trackers:
        registry.register(RasaRedisTrackers(redis_trackers, os.environ.get("RASA_TRACKER_REDIS_PREFIX", "tracker:")))
    return registry


# --------------------------------------------------------------------------- retention


async def purge_retention(
    settings: Settings, *, conversation_days: int | None = None, clock: Clock | None = None,
) -> dict[str, int]:
    """Delete conversations older than the retention (``SALON_CONVERSATION_RETENTION_DAYS``,
    365 by default): handled inbox rows, outbound records, parked messages, Rasa's
    tracker events. The LLM audit has its own retention (``salon llm-audit-purge``)."""
    from salon.whatsapp.records import inbox_table, outbound_table

    days = conversation_days if conversation_days is not None else int(
        os.environ.get("SALON_CONVERSATION_RETENTION_DAYS", DEFAULT_CONVERSATION_RETENTION_DAYS))
    if days < 1:
        raise ValueError("the retention must be at least one day")
    now = (clock or clock_from_env()).now()
    cutoff = now - timedelta(days=days)
    cutoff_us = to_us(cutoff, "cutoff")
    engine = make_async_engine(settings.effective_database_url)
    removed: dict[str, int] = {}
    try:
        async with engine.begin() as conn:
            names = await conn.run_sync(lambda s: set(inspect(s).get_table_names()))
            if inbox_table.name in names:
                result = await conn.execute(delete(inbox_table).where(
                    inbox_table.c.received_us < cutoff_us, inbox_table.c.state != "pending"))
                removed["wa_inbox"] = int(result.rowcount or 0)
            if outbound_table.name in names:
                result = await conn.execute(delete(outbound_table).where(outbound_table.c.created_us < cutoff_us))
                removed["wa_outbound"] = int(result.rowcount or 0)
    finally:
        await engine.dispose()
    trackers_url = os.environ.get("RASA_TRACKER_STORE_URL")
    if not trackers_url and not DEFAULT_RASA_TRACKERS_FILE.exists():
        return removed
    trackers = RasaSqlTrackers(trackers_url or DEFAULT_RASA_TRACKERS)
    try:
        table = await trackers._table()
        if table is not None:
            async with trackers.engine.begin() as conn:
                result = await conn.execute(delete(table).where(table.c.timestamp < cutoff.timestamp()))
            removed["rasa_trackers_sql"] = int(result.rowcount or 0)
    finally:
        await trackers.close()
    return removed
