"""Rasa's own copies of a conversation (tracker store, event broker), found the way Rasa finds
them: from the endpoints file, with its ``${VAR}`` references expanded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from sqlalchemy import (
    MetaData,
    Table,
    delete,
    inspect,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.config import PROJECT_ROOT
from salon.privacy.sources import (
    Subject,
    _check_engine,
    _plain,
    _redis_delete,
    _redis_dump,
    _redis_ping,
    _why,
)
from salon.storage.db import async_url, make_async_engine

__all__ = ["BrokerCopy", "DEFAULT_RASA_ENDPOINTS", "DEFAULT_RASA_TRACKERS_FILE", "RasaRedisTrackers", "RasaSqlTrackers", "RasaStores", "rasa_endpoints_path", "rasa_stores"]


DEFAULT_RASA_ENDPOINTS = PROJECT_ROOT / "endpoints.yml"


"""The endpoints file ``rasa run`` reads by default (``SALON_RASA_ENDPOINTS`` names another,
e.g. ``deploy/endpoints.production.yml``)."""


DEFAULT_RASA_TRACKERS_FILE = PROJECT_ROOT / "var" / "rasa-trackers.db"


"""Where ``endpoints.yml`` puts Rasa's SQL tracker store by default."""


@dataclass
class RasaRedisTrackers:
    """Rasa's Redis tracker store: one key per conversation, ``<prefix><sender_id>``."""

    url: str
    key_prefix: str = "tracker:"
    name: str = "rasa_trackers_redis"
    identifies: bool = False

    async def check(self) -> None:
        await _redis_ping(self.url)

    async def _keys(self, client: Any, subject: Subject) -> list[str]:
        keys = [f"{self.key_prefix}{sender}" for sender in subject.sender_ids]
        return [k for k in keys if await client.exists(k)]

    async def export(self, subject: Subject) -> dict[str, Any]:
        return await _redis_dump(self.url, lambda client: self._keys(client, subject))

    async def erase(self, subject: Subject) -> int:
        return await _redis_delete(self.url, lambda client: self._keys(client, subject))


@dataclass
class RasaSqlTrackers:
    """Rasa's SQL tracker store: the ``events`` table, one row per event, by sender_id.
    A SQLite file that does not exist holds nothing (it is not created).
    """

    url: str | URL
    name: str = "rasa_trackers_sql"
    schema: str | None = None
    """``POSTGRESQL_SCHEMA``, as Rasa reads it."""
    identifies: bool = False
    _engine: AsyncEngine | None = None

    @property
    def _sqlite_file(self) -> Path | None:
        parsed = make_url(str(self.url)) if not isinstance(self.url, URL) else self.url
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return Path(str(parsed.database))

    @property
    def absent(self) -> bool:
        """A SQLite file that was never created: no conversation was ever stored there."""
        path = self._sqlite_file
        return path is not None and not path.exists()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = make_async_engine(self.url)
        return self._engine

    async def check(self) -> None:
        if not self.absent:
            await _check_engine(self.engine)

    async def _table(self) -> Table | None:
        if self.absent:
            return None
        async with self.engine.connect() as conn:
            if not await conn.run_sync(lambda s: inspect(s).has_table("events", schema=self.schema)):
                return None
            meta = MetaData(schema=self.schema)
            await conn.run_sync(lambda s: meta.reflect(s, only=["events"]))
        return meta.tables[f"{self.schema}.events" if self.schema else "events"]

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

    async def purge(self, before: datetime) -> int:
        table = await self._table()
        if table is None:
            return 0
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(table).where(table.c.timestamp < before.timestamp()))
        return int(result.rowcount or 0)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


@dataclass(frozen=True)
class BrokerCopy:
    """Copies of the conversations Salon cannot erase: Rasa's event broker publishes every
    event (the client's words included) to its consumers.
    """

    name: str
    kind: str
    where: str

    def note(self) -> str:
        return (f"Rasa's event broker ({self.kind}: {self.where}) received a copy of every event of the "
                "conversation, the client's words included. Salon cannot erase those copies: the "
                "consumers of the broker must erase the client's events themselves (by her "
                "conversation ids).")


@dataclass
class RasaStores:
    """What Rasa's endpoints file says about where conversations are kept."""

    path: Path
    sources: list[Any] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    copies: list[BrokerCopy] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


_ENV = re.compile(r"\$\{([^}]*)\}")


def _expand(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """``${VAR}`` replaced from the environment in every string, as Rasa does (an unset
    variable is an error, never an empty value).
    """
    if isinstance(value, Mapping):
        return {k: _expand(v, environ, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, environ, where) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    missing = [name for name in _ENV.findall(value) if name not in environ]
    if missing:
        raise ValueError(f"{where}: the environment variable(s) {', '.join(missing)} are not set")
    return _ENV.sub(lambda m: environ[m.group(1)], value)


def rasa_endpoints_path(environ: Mapping[str, str] | None = None, endpoints: str | Path | None = None) -> Path:
    """The endpoints file ``rasa run`` uses: ``endpoints``, else ``SALON_RASA_ENDPOINTS``,
    else ``endpoints.yml`` (relative paths from the project root).
    """
    env = os.environ if environ is None else environ
    chosen = Path(endpoints or env.get("SALON_RASA_ENDPOINTS") or DEFAULT_RASA_ENDPOINTS)
    return chosen if chosen.is_absolute() else PROJECT_ROOT / chosen


def _sql_tracker_url(store: Mapping[str, Any]) -> URL | str:
    """The URL Rasa's ``SQLTrackerStore`` connects to (``url`` is the host, or a full URL;
    ``db`` a SQLite file relative to where ``rasa run`` runs: the project root).
    """
    dialect = str(store.get("dialect") or "sqlite")
    host = store.get("url") or store.get("host")
    if host and "://" in str(host):
        return str(host)
    port = store.get("port")
    if host:
        from urllib.parse import urlsplit

        parsed = urlsplit(f"scheme://{host}")
        port = parsed.port or port
        host = parsed.hostname or host
    db = str(store.get("db") or "rasa.db")
    if dialect == "sqlite" and db != ":memory:" and not Path(db).is_absolute():
        db = str(PROJECT_ROOT / db)
    query = store.get("query")
    return URL.create(dialect, username=store.get("username") or None, password=store.get("password") or None,
                      host=str(host) if host else None, port=int(port) if port not in (None, "") else None,
                      database=db, query={str(k): str(v) for k, v in (query or {}).items()})


def _redis_tracker(store: Mapping[str, Any]) -> RasaRedisTrackers:
    """Rasa's ``RedisTrackerStore`` as configured: ``url`` is the host; keys are
    ``<key_prefix>:tracker:<sender_id>`` for an alphanumeric ``key_prefix``, else
    ``tracker:<sender_id>``.
    """
    host = str(store.get("url") or store.get("host") or "localhost")
    if "://" in host:
        url = host
    else:
        scheme = "rediss" if str(store.get("use_ssl", "")).lower() in ("true", "1", "yes") else "redis"
        user, password = store.get("username"), store.get("password")
        auth = ""
        if user or password:
            auth = f"{quote(str(user or ''), safe='')}:{quote(str(password or ''), safe='')}@"
        url = f"{scheme}://{auth}{host}:{int(store.get('port') or 6379)}/{int(store.get('db') or 0)}"
    prefix = store.get("key_prefix")
    key_prefix = f"{prefix}:tracker:" if isinstance(prefix, str) and prefix.isalnum() else "tracker:"
    return RasaRedisTrackers(url, key_prefix)


def rasa_stores(environ: Mapping[str, str] | None = None, endpoints: str | Path | None = None) -> RasaStores:
    """Rasa's tracker store and event broker as its endpoints file configures them (see
    :func:`rasa_endpoints_path`), plus ``RASA_TRACKER_STORE_URL`` / ``RASA_TRACKER_REDIS_URL``
    (``RASA_TRACKER_REDIS_PREFIX``) when set. ``problems``: what prevents erasing them.
    """
    env = dict(os.environ if environ is None else environ)
    path = rasa_endpoints_path(env, endpoints)
    found = RasaStores(path)
    config: Mapping[str, Any] = {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        config = loaded if isinstance(loaded, Mapping) else {}
    except FileNotFoundError:
        found.problems["rasa_tracker_store"] = (f"Rasa's endpoints file {path} does not exist: where Rasa keeps "
                                                "conversations is unknown (set SALON_RASA_ENDPOINTS)")
    except (OSError, yaml.YAMLError) as exc:
        found.problems["rasa_tracker_store"] = f"Rasa's endpoints file {path} cannot be read: {_why(exc)}"
    schema = env.get("POSTGRESQL_SCHEMA") or None
    tracker = config.get("tracker_store")
    if isinstance(tracker, Mapping):
        try:
            store = _expand(tracker, env, "tracker_store")
            kind = str(store.get("type") or "").lower()
            if kind == "sql":
                url = _sql_tracker_url(store)
                backend = make_url(str(url)).get_backend_name() if not isinstance(url, URL) else url.get_backend_name()
                if backend not in ("sqlite", "postgresql", "postgres"):
                    raise ValueError(f"tracker_store: the SQL dialect {backend!r} is not one Salon can erase")
                found.sources.append(RasaSqlTrackers(url, schema=schema))
            elif kind == "redis":
                found.sources.append(_redis_tracker(store))
            elif kind in ("", "in_memory", "inmemory"):
                found.notes["rasa_tracker_store"] = ("Rasa keeps conversations in memory only (no tracker_store "
                                                     "type): nothing to erase once Rasa restarts")
            else:
                raise ValueError(f"tracker_store: the type {store.get('type')!r} is not one Salon can erase "
                                 "(SQL and redis are); erase the client's conversations there by hand and "
                                 "configure a supported store")
        except ValueError as exc:
            found.problems["rasa_tracker_store"] = str(exc)
    elif tracker is None and config and "rasa_tracker_store" not in found.problems:
        found.notes["rasa_tracker_store"] = ("Rasa keeps conversations in memory only (no tracker_store in "
                                             f"{path.name}): nothing to erase once Rasa restarts")
    broker = config.get("event_broker")
    if isinstance(broker, Mapping):
        kind = str(broker.get("type") or "custom")
        queues = broker.get("queues") or broker.get("queue") or broker.get("topic") or broker.get("url") or "?"
        where = ", ".join(map(str, queues)) if isinstance(queues, list) else str(queues)
        found.copies.append(BrokerCopy("rasa_event_broker", kind, f"{where} (in {path.name})"))
    # Stores named in the environment (older configuration): erased too.
    legacy = env.get("RASA_TRACKER_STORE_URL")
    if legacy:
        same = any(isinstance(s, RasaSqlTrackers) and _same_url(s.url, legacy) for s in found.sources)
        if not same:
            name = "rasa_trackers_sql" if not any(isinstance(s, RasaSqlTrackers) for s in found.sources) \
                else "rasa_trackers_sql_env"
            found.sources.append(RasaSqlTrackers(legacy, name=name, schema=schema))
    legacy_redis = env.get("RASA_TRACKER_REDIS_URL")
    if legacy_redis:
        prefix = env.get("RASA_TRACKER_REDIS_PREFIX", "tracker:")
        same = any(isinstance(s, RasaRedisTrackers) and s.url == legacy_redis and s.key_prefix == prefix
                   for s in found.sources)
        if not same:
            name = "rasa_trackers_redis" if not any(isinstance(s, RasaRedisTrackers) for s in found.sources) \
                else "rasa_trackers_redis_env"
            found.sources.append(RasaRedisTrackers(legacy_redis, prefix, name=name))
    return found


def _same_url(a: str | URL, b: str | URL) -> bool:
    try:
        return bool(async_url(a).render_as_string(hide_password=False)
                    == async_url(b).render_as_string(hide_password=False))
    except ValueError:
        return str(a) == str(b)
