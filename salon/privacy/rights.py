"""GDPR/CCPA: export and erase everything held about one client, and purge by retention.

A :class:`PrivacyRegistry` holds the *personal-data sources*; each one can export and
erase one client's data. A table added later joins with one call to
:meth:`PrivacyRegistry.register` (a :class:`SqlRowsSource` for a table with a client
column, or any object with ``name``, ``export`` and ``erase``, and optionally ``check``).

:func:`default_registry` covers every store Salon keeps:

- the maison's book: client, purchases, consents, orders and their lines, appointments,
  event RSVPs (``maison_*``);
- the session store (SQL tables ``salon_sessions``, aliases, parked messages; or Redis
  keys under ``salon:session``);
- WhatsApp records: ``wa_inbox``, ``wa_outbound``, ``wa_preferences``;
- ``llm_audit`` (by client id, and by the keyed hash of each of the client's ids for
  someone the book did not know) and the consent ledger;
- handoffs, repair requests, restock wishes, outbound requests;
- the advisors' audit trail (``salon_advisor_audit``: kept on erasure, with who each row
  was about removed, see :mod:`salon.advisors.audit`);
- Rasa's tracker store, read directly (no Rasa import) **as Rasa's endpoints file
  configures it** (:func:`rasa_stores`: ``SALON_RASA_ENDPOINTS``, else ``endpoints.yml``;
  the ``tracker_store`` section, SQL or Redis, with ``${VAR}`` replaced from the
  environment as Rasa does), plus the stores ``RASA_TRACKER_STORE_URL`` /
  ``RASA_TRACKER_REDIS_URL`` name.

**Who.** :meth:`PrivacyRegistry.resolve` starts from any id (a maison client id, a phone
number, a wa_id, a BSUID, a Rasa conversation id) and follows every link the stores keep
until no new id appears: the maison's book, the session store's aliases (a client's
session links every id she wrote from: old numbers and BSUIDs included) and its current
ids, the ids in the inbox's metadata (identity changes too), and the (wa_id, user_id)
pairs of handoffs, restock wishes and outbound requests. Ids that lead to two clients of
the book are refused (:class:`AmbiguousSubject`): nothing is exported or erased.

**Fail closed.** Before anything is read for an export or deleted for an erasure, every
store is checked (:meth:`PrivacyRegistry.preflight`): one that may hold personal data but
cannot be reached, or that Salon cannot erase (a tracker store type it does not know, an
endpoints file it cannot read, a ``${VAR}`` that is not set), stops the request with
:class:`StoreUnavailable`, naming each store and why.

**Erasure.** What the client had stopped (STOP, withdrawn consents, WhatsApp's marketing
stop) is first kept in the suppression list (:mod:`salon.consent.ledger`: keyed hashes only).
Then every store deletes the client's rows and keys (the advisors' audit trail keeps its
rows and drops her ids from them: :class:`UnlinkedRowsSource`), the stores that identify
her (the book, sessions, inbox) last and only when all the others succeeded, so that a failed
erasure, run again, finds every id and completes. The :class:`ErasureReport` says per
store what was erased, what failed, what was kept for the re-run, and which copies Salon
cannot erase (Rasa's event broker). One ``privacy_erasures`` row records it: a salted
hash of the client (``SALON_PRIVACY_SALT``, else a salt kept in ``var/privacy.salt``),
the time, the actor, the outcome and the counts per store; nothing else about the client.
A partial erasure raises :class:`ErasureIncomplete` (with its report) after writing it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import Clock, clock_from_env, to_us
from salon.config import Settings
from salon.privacy.rasa_stores import (
    BrokerCopy,
    RasaSqlTrackers,
    rasa_stores,
)
from salon.privacy.salt import privacy_salt
from salon.privacy.sources import (
    LinkedRowsSource,
    RedisSessions,
    SqlRowsSource,
    Subject,
    UnlinkedRowsSource,
    _why,
)
from salon.storage.db import SqlTables, make_async_engine

logger = logging.getLogger(__name__)

__all__ = ["AmbiguousSubject", "ClientNotFound", "ErasureError", "ErasureIncomplete", "ErasureReport", "PrivacyRegistry", "StoreUnavailable", "default_registry", "erasures_table"]

MAX_ROUNDS = 20
"""Rounds of :meth:`PrivacyRegistry.resolve` (each adds the ids the previous one found)."""


class ClientNotFound(LookupError):
    """Nothing identifies this client (no maison id, number or BSUID)."""


class ErasureError(RuntimeError):
    """An export or erasure that could not be done completely (see the subclasses)."""

    def __init__(self, message: str, *, stores: Mapping[str, str] | None = None,
                 report: ErasureReport | None = None) -> None:
        super().__init__(message)
        self.stores = dict(stores or {})
        self.report = report


class StoreUnavailable(ErasureError):
    """A store that may hold the client's data cannot be reached or erased: nothing was
    exported or deleted. ``stores``: store name → why.
    """


class AmbiguousSubject(ErasureError):
    """The ids lead to more than one client of the maison's book."""


class ErasureIncomplete(ErasureError):
    """Some stores failed during the erasure: ``report`` says which; the stores that
    identify the client were kept, so running the erasure again completes it.
    """


# --------------------------------------------------------------------------- Rasa's endpoints


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
    Column("outcome", String(16)),  # complete | partial
    Column("report", JSON),  # {store: {"status": …, "removed": n}}, the broker copies; no ids, no words
)


class ErasureLog(SqlTables):
    metadata = _meta

    async def initialize(self) -> None:
        await super().initialize()
        # Tables made by earlier versions lack the outcome and the report.
        async with self.engine.begin() as conn:
            columns = await conn.run_sync(
                lambda s: {c["name"] for c in inspect(s).get_columns(erasures_table.name)})
            for column in ("outcome", "report"):
                if column not in columns:
                    kind = "VARCHAR(16)" if column == "outcome" else "JSON"
                    await conn.execute(text(f"ALTER TABLE {erasures_table.name} ADD COLUMN {column} {kind}"))

    async def add(self, subject_hash: str, at: datetime, actor: str, removed: dict[str, int],
                  outcome: str = "complete", report: dict[str, Any] | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(erasures_table.insert().values(subject_hash=subject_hash, at_us=to_us(at, "at"),
                                                              actor=actor, removed=removed, outcome=outcome,
                                                              report=report))

    async def rows(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(erasures_table))).mappings().all()]


# --------------------------------------------------------------------------- the report


class ErasureReport(dict[str, int]):
    """How many items each store removed (a mapping: callers that only count keep
    working; a store that keeps its rows, the advisors' audit trail, counts the rows it
    unlinked from the client), with the rest of the report: per store its status (``erased``, ``failed``,
    ``kept``: a store that identifies the client, kept because another failed, so that the
    erasure run again finds her; ``absent``: nothing was ever stored there), the error of a
    failed store, and the copies Salon cannot erase (``not_erasable``).
    """

    def __init__(self, subject_hash: str, actor: str, at: datetime) -> None:
        super().__init__()
        self.subject_hash = subject_hash
        self.actor = actor
        self.at = at
        self.stores: dict[str, dict[str, Any]] = {}
        self.not_erasable: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self.suppressions = 0

    @property
    def complete(self) -> bool:
        return all(store["status"] in ("erased", "absent") for store in self.stores.values())

    @property
    def outcome(self) -> str:
        return "complete" if self.complete else "partial"

    def note(self, name: str, status: str, removed: int = 0, *, error: str | None = None,
             detail: str | None = None) -> None:
        self.stores[name] = {"status": status, "removed": removed, **({"error": error} if error else {}),
                             **({"detail": detail} if detail else {})}
        if status == "erased":
            self[name] = removed

    def as_dict(self, *, errors: bool = True) -> dict[str, Any]:
        """The report as JSON (``errors=False``: without the errors' text, for the record)."""
        stores = {name: ({k: v for k, v in store.items() if k != "error"} if not errors else dict(store))
                  for name, store in self.stores.items()}
        return {"subject": self.subject_hash, "at": self.at.isoformat(), "actor": self.actor,
                "outcome": self.outcome, "stores": stores, "not_erasable": dict(self.not_erasable),
                "notes": dict(self.notes), "suppressions_kept": self.suppressions}


# --------------------------------------------------------------------------- registry


@dataclass
class PrivacyRegistry:
    """The personal-data sources of one installation, and the export and erasure over them
    (see the module docstring).
    """

    engine: AsyncEngine
    """The Salon database (maison tables, erasure log, suppression list)."""
    salt: bytes
    clock: Clock
    sources: list[Any] = field(default_factory=list)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    """Stores that may hold personal data but cannot be erased (configuration): each
    export and erasure fails with them, before anything is read or deleted."""
    not_erasable: list[BrokerCopy] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def register(self, source: Any) -> None:
        """Add a personal-data source; erasure runs in registration order (children
        before the rows they point at), the stores that identify the client last.
        """
        if any(s.name == source.name for s in self.sources):
            raise ValueError(f"a source named {source.name!r} is already registered")
        self.sources.append(source)

    # ------------------------------------------------------------------ checks
    async def preflight(self) -> None:
        """Every store reachable, none unerasable: else :class:`StoreUnavailable`."""
        failing = dict(self.problems)
        for source in self.sources:
            check = getattr(source, "check", None)
            if check is None:
                continue
            try:
                await check()
            except Exception as exc:
                failing[source.name] = f"cannot be reached: {_why(exc)}"
        if failing:
            detail = "; ".join(f"{name}: {why}" for name, why in sorted(failing.items()))
            raise StoreUnavailable(f"stores that may hold the client's data cannot be erased, nothing was "
                                   f"done: {detail}", stores=failing)

    # ------------------------------------------------------------------ who
    async def resolve(self, client: str) -> Subject:
        """Every id of the client named by ``client`` (a maison client id, a phone number
        in +E.164 or digits, a wa_id, a BSUID, a Rasa conversation id), followed through
        the book, the session store's aliases and current ids, the inbox's metadata and
        the records that pair a number with a BSUID, until no new id appears.
        """
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
            names = await conn.run_sync(lambda s: set(inspect(s).get_table_names()))
            rows = (await conn.execute(select(clients.c.id).where(or_(*conditions)))).all() \
                if clients.name in names else []
        ids = _Ids()
        if rows:
            ids.client_ids.update(row.id for row in rows)
        elif is_bsuid(client):
            ids.user_ids.add(client)
        elif digits.isdigit() and 5 <= len(digits) <= 20:
            ids.wa_ids.add(digits)
        else:
            raise ClientNotFound(f"no client is known as {client!r}")
        await self._follow(ids)
        if len(ids.client_ids) > 1:
            raise AmbiguousSubject(f"the ids of {client!r} lead to {len(ids.client_ids)} clients of the maison's "
                                   "book; nothing was done: erase each by its client id after checking")
        return Subject(next(iter(ids.client_ids), None), frozenset(ids.wa_ids), frozenset(ids.user_ids))

    async def _follow(self, ids: _Ids) -> None:
        redis_sessions = [s for s in self.sources if isinstance(s, RedisSessions)]
        for _ in range(MAX_ROUNDS):
            before = ids.snapshot()
            async with self.engine.connect() as conn:
                names = await conn.run_sync(lambda s: set(inspect(s).get_table_names()))
                await _from_book(conn, names, ids)
                await _from_sql_sessions(conn, names, ids)
                await _from_inbox(conn, names, ids)
                await _from_pairs(conn, names, ids)
            for store in redis_sessions:
                try:
                    linked = await store.linked(ids.aliases())
                except Exception as exc:
                    raise StoreUnavailable(f"{store.name} cannot be reached: {_why(exc)}",
                                           stores={store.name: f"cannot be reached: {_why(exc)}"}) from exc
                for alias in linked:
                    ids.add_alias(alias)
            if ids.snapshot() == before:
                return
        logger.warning("privacy: the ids of one client were still growing after %d rounds", MAX_ROUNDS)

    # ------------------------------------------------------------------ export
    async def export(self, subject: Subject) -> dict[str, Any]:
        await self.preflight()
        data: dict[str, Any] = {}
        for source in self.sources:
            data[source.name] = await source.export(subject)
        return {"client": {"client_id": subject.client_id, "wa_ids": sorted(subject.wa_ids),
                           "user_ids": sorted(subject.user_ids)},
                "exported_at": self.clock.now().isoformat(), "stores": data,
                "not_exported": {copy.name: copy.note() for copy in self.not_erasable}}

    # ------------------------------------------------------------------ erase
    async def erase(self, subject: Subject, *, actor: str) -> ErasureReport:
        """Erase the client everywhere (see the module docstring); returns the report, or
        raises :class:`StoreUnavailable` (nothing done) or :class:`ErasureIncomplete`
        (the report of a partial erasure, recorded).
        """
        await self.preflight()
        now = self.clock.now()
        subject_hash = hashlib.sha256(self.salt + subject.label.encode()).hexdigest()
        report = ErasureReport(subject_hash, actor, now)
        report.suppressions = await self._keep_suppressions(subject, now)
        ordered = ([s for s in self.sources if not getattr(s, "identifies", False)]
                   + [s for s in self.sources if getattr(s, "identifies", False)])
        failed = False
        for source in ordered:
            if failed and getattr(source, "identifies", False):
                report.note(source.name, "kept", detail="kept until the other stores are erased: run the "
                                                         "erasure again to complete it")
                continue
            if getattr(source, "absent", False):
                report.note(source.name, "absent", detail="nothing was ever stored there")
                continue
            try:
                removed = await source.erase(subject)
            except Exception as exc:
                failed = True
                logger.error("erasure %s: %s failed: %s", subject_hash[:12], source.name, _why(exc))
                report.note(source.name, "failed", error=_why(exc))
            else:
                report.note(source.name, "erased", removed, detail=getattr(source, "erasure_detail", None))
        for copy in self.not_erasable:
            report.not_erasable[copy.name] = copy.note()
        report.notes.update(self.notes)
        log = ErasureLog(engine=self.engine)
        await log.initialize()
        await log.add(subject_hash, now, actor, dict(report), report.outcome, report.as_dict(errors=False))
        logger.info("erasure %s by %s: %s, %d item(s) removed", subject_hash[:12], actor, report.outcome,
                    sum(report.values()))
        if not report.complete:
            failing = {n: str(s.get("error", s["status"])) for n, s in report.stores.items()
                       if s["status"] == "failed"}
            raise ErasureIncomplete(
                "the erasure is incomplete (" + ", ".join(sorted(failing)) + " failed); the stores that identify "
                "the client were kept: run it again to complete it", stores=failing, report=report)
        return report

    async def _keep_suppressions(self, subject: Subject, now: datetime) -> int:
        """What the client had stopped, kept (hashed) before the evidence is erased."""
        from salon.clock import from_us
        from salon.consent.book import preferences_table
        from salon.consent.keywords import STOP_CATEGORIES
        from salon.consent.ledger import (
            Suppression,
            consent_states_many,
            record_suppressions,
            suppressions_table,
        )

        async with self.engine.begin() as conn:
            await conn.run_sync(lambda s: suppressions_table.create(s, checkfirst=True))
            names = await conn.run_sync(lambda s: set(inspect(s).get_table_names()))
            [state] = await consent_states_many(conn, [(subject.client_id, subject.aliases)], salt=self.salt,
                                                table_names=names)
            entries: dict[str, Suppression] = {}
            if state.stopped_at is not None:
                for category in STOP_CATEGORIES:
                    entries[category] = Suppression(category, True, state.stopped_at)
            for category, (granted, at) in state.decisions.items():
                if not granted and category not in entries:
                    entries[category] = Suppression(category, False, at)
            if preferences_table.name in names and subject.aliases and "marketing" not in entries:
                p = preferences_table.c
                row = (await conn.execute(
                    select(p.value, p.at_us).where(p.client_id.in_(subject.aliases),
                                                   p.category == "marketing_messages")
                    .order_by(p.at_us.desc(), p.id.desc()).limit(1))).first()
                if row is not None and row.value == "stop":
                    entries["marketing"] = Suppression("marketing", False, from_us(row.at_us))  # type: ignore[arg-type]
            return await record_suppressions(conn, self.salt, subject.ledger_subjects, list(entries.values()), now)

    async def close(self) -> None:
        for closer in self.closers:
            await closer()
        await self.engine.dispose()


@dataclass
class _Ids:
    client_ids: set[str] = field(default_factory=set)
    wa_ids: set[str] = field(default_factory=set)
    user_ids: set[str] = field(default_factory=set)

    def snapshot(self) -> tuple[frozenset[str], ...]:
        return frozenset(self.client_ids), frozenset(self.wa_ids), frozenset(self.user_ids)

    def aliases(self) -> list[str]:
        return sorted({f"w:{w}" for w in self.wa_ids} | {f"u:{u}" for u in self.user_ids})

    def add_wa(self, value: Any) -> None:
        from salon.whatsapp.addressing import is_phone

        if isinstance(value, str) and is_phone(value.lstrip("+")):
            self.wa_ids.add(value.lstrip("+"))

    def add_user(self, value: Any) -> None:
        from salon.whatsapp.addressing import is_bsuid

        if isinstance(value, str) and is_bsuid(value):
            self.user_ids.add(value)

    def add_alias(self, alias: str) -> None:
        kind, _, value = alias.partition(":")
        if kind == "w":
            self.add_wa(value)
        elif kind == "u":
            self.add_user(value)


async def _from_book(conn: Any, names: set[str], ids: _Ids) -> None:
    from salon.integrations.schema import clients

    if clients.name not in names:
        return
    c = clients.c
    conditions = []
    if ids.client_ids:
        conditions.append(c.id.in_(sorted(ids.client_ids)))
    if ids.user_ids:
        conditions.append(c.user_id.in_(sorted(ids.user_ids)))
    if ids.wa_ids:
        conditions += [c.wa_id.in_(sorted(ids.wa_ids)), c.phone.in_(sorted(f"+{w}" for w in ids.wa_ids))]
    if not conditions:
        return
    for row in (await conn.execute(select(c.id, c.wa_id, c.user_id, c.phone).where(or_(*conditions)))).all():
        ids.client_ids.add(row.id)
        ids.add_wa(row.wa_id)
        ids.add_wa(row.phone)
        ids.add_user(row.user_id)


async def _session_keys(conn: Any, names: set[str], ids: _Ids, aliases: list[str]) -> set[tuple[str, str]]:
    """The sessions (phone number id, client key) any of the client's ids leads to."""
    from salon.window.sql_store import aliases_table, sessions_table

    keys: set[tuple[str, str]] = set()
    if aliases_table.name in names:
        a = aliases_table.c
        for row in (await conn.execute(select(a.phone_number_id, a.client_key).where(a.alias.in_(aliases)))).all():
            keys.add((row.phone_number_id, row.client_key))
    if sessions_table.name in names:
        s = sessions_table.c
        conditions = [s.client_key.in_(aliases)]
        if ids.wa_ids:
            conditions.append(s.wa_id.in_(sorted(ids.wa_ids)))
        if ids.user_ids:
            conditions.append(s.user_id.in_(sorted(ids.user_ids)))
        for row in (await conn.execute(select(s.phone_number_id, s.client_key).where(or_(*conditions)))).all():
            keys.add((row.phone_number_id, row.client_key))
    return keys


async def _from_session_keys(conn: Any, names: set[str], ids: _Ids, keys: set[tuple[str, str]]) -> None:
    """Every id those sessions hold: their keys, their aliases and their current ids."""
    from salon.window.sql_store import aliases_table, sessions_table

    client_keys = sorted({key for _, key in keys})
    for key in client_keys:
        ids.add_alias(key)
    if aliases_table.name in names:
        a = aliases_table.c
        for row in (await conn.execute(select(a.phone_number_id, a.alias, a.client_key)
                                       .where(a.client_key.in_(client_keys)))).all():
            if (row.phone_number_id, row.client_key) in keys:
                ids.add_alias(row.alias)
    if sessions_table.name in names:
        s = sessions_table.c
        for row in (await conn.execute(select(s.phone_number_id, s.client_key, s.wa_id, s.user_id)
                                       .where(s.client_key.in_(client_keys)))).all():
            if (row.phone_number_id, row.client_key) in keys:
                ids.add_wa(row.wa_id)
                ids.add_user(row.user_id)


async def _from_sql_sessions(conn: Any, names: set[str], ids: _Ids) -> None:
    """The ids the SQL session store links to the client's (aliases and current ids)."""
    aliases = ids.aliases()
    if not aliases:
        return
    keys = await _session_keys(conn, names, ids, aliases)
    if keys:
        await _from_session_keys(conn, names, ids, keys)


async def _from_inbox(conn: Any, names: set[str], ids: _Ids) -> None:
    from salon.webhook.inbox import inbox_table
    from salon.whatsapp.updates import IDENTITY_CHANGES

    senders = sorted(ids.wa_ids | ids.user_ids)
    if inbox_table.name not in names or not senders:
        return
    i = inbox_table.c
    for (metadata,) in (await conn.execute(select(i.metadata).where(i.sender_id.in_(senders)))).all():
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                continue
        if not isinstance(metadata, Mapping):
            continue
        ids.add_wa(metadata.get("wa_id"))
        ids.add_user(metadata.get("user_id"))
        system = metadata.get("system")
        if isinstance(system, Mapping) and system.get("type") in IDENTITY_CHANGES:
            for key in ("wa_id", "new_wa_id"):
                ids.add_wa(system.get(key))
            for key in ("user_id", "previous_user_id"):
                ids.add_user(system.get(key))


async def _from_pairs(conn: Any, names: set[str], ids: _Ids) -> None:
    """Records written with both ids of one client (a number and a BSUID)."""
    from salon.advisors.handoff import handoffs_table
    from salon.outbound.queue import requests_table
    from salon.outbound.restock import restock_table

    for table in (handoffs_table, requests_table, restock_table):
        if table.name not in names:
            continue
        conditions = []
        if ids.wa_ids:
            conditions.append(table.c.wa_id.in_(sorted(ids.wa_ids)))
        if ids.user_ids:
            conditions.append(table.c.user_id.in_(sorted(ids.user_ids)))
        if not conditions:
            continue
        for row in (await conn.execute(select(table.c.wa_id, table.c.user_id).where(or_(*conditions)))).all():
            ids.add_wa(row.wa_id)
            ids.add_user(row.user_id)


# The ids each store is searched by.
def _by_client(s: Subject) -> list[str]:
    return [s.client_id] if s.client_id else []


def _senders(s: Subject) -> list[str]:
    return s.sender_ids


def _aliases(s: Subject) -> list[str]:
    return s.aliases


def _ledger(s: Subject) -> list[str]:
    return s.ledger_subjects


def _wa_ids(s: Subject) -> list[str]:
    return sorted(s.wa_ids)


def _user_ids(s: Subject) -> list[str]:
    return sorted(s.user_ids)


def _register_book(registry: PrivacyRegistry, engine: AsyncEngine) -> None:
    """The maison's book (``maison_*``): the client last, as it identifies her."""
    from salon.integrations import schema

    for table, column, ids in (
        (schema.purchases, "client_id", _by_client),
        (schema.consents, "client_id", _by_client),
        (schema.event_rsvps, "client_id", _by_client),
        (schema.appointments, "client_id", _by_client),
    ):
        registry.register(SqlRowsSource(table.name, engine, table, column, ids))
    orders = SqlRowsSource(schema.orders.name, engine, schema.orders, "client_id", _by_client)
    registry.register(LinkedRowsSource(schema.order_items.name, engine, schema.order_items, "order_id", orders))
    registry.register(orders)
    registry.register(SqlRowsSource(schema.clients.name, engine, schema.clients, "id", _by_client, identifies=True))


def _register_channel(registry: PrivacyRegistry, engine: AsyncEngine, salt: bytes,
                      redis_url: str | None) -> None:
    """The session store (SQL, and Redis when configured), the WhatsApp records, the
    language model's audit and the consent ledger.
    """
    from salon.consent.book import preferences_table
    from salon.consent.ledger import ledger_table
    from salon.guard.sent import outbound_table
    from salon.llm.audit import audit_table, legacy_sender_keys, sender_keys
    from salon.pricing.ledger import ledger_table as pricing_table
    from salon.webhook.inbox import inbox_table
    from salon.window.sql_store import aliases_table, parked_table, sessions_table

    def audit_ids(s: Subject) -> list[str]:
        return (_by_client(s) + sender_keys(salt, _wa_ids(s), _user_ids(s))
                + legacy_sender_keys(_wa_ids(s), _user_ids(s)))

    registry.register(SqlRowsSource("salon_parked_messages", engine, parked_table, "client_key", _aliases))
    registry.register(SqlRowsSource("salon_sessions", engine, sessions_table, "client_key", _aliases,
                                    also=(("wa_id", _wa_ids), ("user_id", _user_ids)), identifies=True))
    registry.register(SqlRowsSource("salon_session_aliases", engine, aliases_table, "alias", _aliases,
                                    also=(("client_key", _aliases),), identifies=True))
    if redis_url:
        registry.register(RedisSessions(redis_url))
    registry.register(SqlRowsSource("wa_inbox", engine, inbox_table, "sender_id", _senders, identifies=True))
    registry.register(SqlRowsSource("wa_outbound", engine, outbound_table, "recipient", _senders))
    # What Meta bills is the maison's accounting: the rows stay (market, category, cost),
    # with her number and the message's id gone.
    registry.register(UnlinkedRowsSource(
        "wa_pricing", engine, pricing_table, "recipient", _senders, key="wamid",
        rewrite=(("wamid", lambda _: f"erased.{uuid.uuid4().hex}"),),
        erasure_detail="kept for billing (market, category, cost); removed: who and which message"))
    registry.register(SqlRowsSource("wa_preferences", engine, preferences_table, "client_id", _aliases))
    registry.register(SqlRowsSource("llm_audit", engine, audit_table, "client_id", audit_ids))
    registry.register(SqlRowsSource("consent_ledger", engine, ledger_table, "subject", _ledger))


def _register_assistant(registry: PrivacyRegistry, engine: AsyncEngine) -> None:
    """What the assistant, the advisors and the outbound engine keep about a client: the
    advisors' audit trail (kept, unlinked from her), handoffs, repair requests, restock
    wishes and outbound requests (children before their rows).
    """
    from salon.advisors.audit import advisor_audit_table, unlinked_detail
    from salon.advisors.handoff import handoffs_table
    from salon.advisors.repairs import repairs_table, updates_table
    from salon.outbound.queue import events_table, requests_table
    from salon.outbound.restock import restock_table

    registry.register(UnlinkedRowsSource(
        "salon_advisor_audit", engine, advisor_audit_table, "conversation_id", _senders,
        also=(("client_id", _by_client),), rewrite=(("detail", unlinked_detail),),
        erasure_detail="kept for accountability (who did what, when); removed: rows unlinked from the client"))
    registry.register(SqlRowsSource("salon_handoffs", engine, handoffs_table, "conversation_id", _senders,
                                    also=(("client_id", _by_client), ("wa_id", _wa_ids), ("user_id", _user_ids))))
    repairs = SqlRowsSource("salon_repair_requests", engine, repairs_table, "conversation_id", _senders,
                            also=(("client_id", _by_client),))
    registry.register(LinkedRowsSource("salon_repair_updates", engine, updates_table, "request_id", repairs))
    registry.register(repairs)
    registry.register(SqlRowsSource("restock_requests", engine, restock_table, "wa_id", _wa_ids,
                                    also=(("user_id", _user_ids),)))
    requests = SqlRowsSource("outbound_requests", engine, requests_table, "wa_id", _wa_ids,
                             also=(("user_id", _user_ids),))
    registry.register(LinkedRowsSource("outbound_events", engine, events_table, "request_id", requests))
    registry.register(requests)


def _register_rasa(registry: PrivacyRegistry, environ: Mapping[str, str] | None,
                   endpoints: str | Path | None) -> None:
    """Rasa's tracker stores as its endpoints file configures them, with what cannot be
    erased (problems, the event broker's copies) and the notes for the report.
    """
    rasa = rasa_stores(environ, endpoints)
    for source in rasa.sources:
        registry.register(source)
        if isinstance(source, RasaSqlTrackers):
            registry.closers.append(source.close)
    registry.problems.update(rasa.problems)
    registry.not_erasable.extend(rasa.copies)
    registry.notes.update(rasa.notes)


def default_registry(settings: Settings, *, clock: Clock | None = None, endpoints: str | Path | None = None,
                     environ: Mapping[str, str] | None = None) -> PrivacyRegistry:
    """Every personal-data store of this installation, from the environment and Rasa's
    endpoints file (``endpoints``, else ``SALON_RASA_ENDPOINTS``, else ``endpoints.yml``).
    """
    engine = make_async_engine(settings.effective_database_url)
    salt = privacy_salt(settings)
    registry = PrivacyRegistry(engine, salt, clock or clock_from_env())
    _register_book(registry, engine)
    _register_channel(registry, engine, salt, settings.redis_url)
    _register_assistant(registry, engine)
    _register_rasa(registry, environ, endpoints)
    return registry


# --------------------------------------------------------------------------- retention


