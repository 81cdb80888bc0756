"""The consent ledger: every consent decision about a client, append-only, in SQL.

One row per decision: the client (their WhatsApp ids ``w:<wa_id>`` / ``u:<BSUID>`` and,
when the maison's book knows them, their client id), the category, granted or withdrawn,
where it came from, when, who recorded it and the text the client was shown. The current
state of a category is its latest row; nothing is ever updated or deleted except by a
GDPR erasure (:mod:`salon.privacy.rights`).

It sits beside two older sources and agrees with them:

- ``maison_consents`` (:mod:`salon.integrations.schema`), the maison's own append-only
  history from boutique forms, the web site and CRM imports;
- ``wa_preferences`` (:mod:`salon.consent.book`), WhatsApp's ``user_preferences``
  webhooks and 131050 failures; each is also written here.

:meth:`salon.consent.book.ConsentBook.consent_for` reads all three, latest decision
first, so every sender enforces the ledger through the send-time guard.

STOP and START keywords (:func:`salon.consent.keywords.keyword_of`) are recognised in the channel before any
language model sees the message: STOP withdraws utility and marketing messages (the client
is *opted out*: nothing the maison starts reaches her until she writes START), START
grants utility messages again (never marketing), and the client gets one confirmation in
their language.

The suppression list (``privacy_suppressions``) keeps, after a GDPR erasure, what the
client had stopped: a keyed hash (:func:`suppression_hash`, with the privacy salt) of
each of her ids, the category and when. It holds nothing readable about her, survives
the erasure, and is read with every consent question (:func:`consent_states_many`), so a
client re-imported later from the CRM is still stopped until she decides otherwise
herself (a CRM import never lifts it).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    inspect,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from salon.clock import from_us, to_us
from salon.storage.db import SqlTables

__all__ = [
    "CATEGORIES",
    "SOURCES",
    "KEYWORD_SOURCES",
    "ConsentEntry",
    "ConsentLedger",
    "ConsentState",
    "Suppression",
    "consent_states_many",
    "latest_decisions",
    "latest_decisions_many",
    "ledger_table",
    "record_suppressions",
    "subjects_for",
    "suppression_hash",
    "suppressions_table",
]

CATEGORIES: Final = ("service", "utility", "marketing", "personalisation", "llm")
"""Answers to the client's own messages, utility updates, marketing, personalisation,
processing by a language model (the maison's purpose names)."""
SOURCES: Final = ("boutique_form", "web", "whatsapp_keyword", "whatsapp_message", "crm_import",
                  "user_preferences", "error_131050", "advisor")
"""``whatsapp_message``: an opt-out the assistant understood in the client's own sentence
("please stop contacting me") and confirmed with ``utter_opt_out`` (an agreement is never
inferred from a sentence)."""
KEYWORD_SOURCES: Final = ("whatsapp_keyword", "whatsapp_message")
"""Where a client's own STOP (a keyword, or an opt-out understood in her sentence) or
START comes from: the latest of them decides whether she is opted out."""


metadata = MetaData()

ledger_table = Table(
    "consent_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(200), nullable=False),  # w:<wa_id> | u:<BSUID> | c:<maison client id>
    Column("category", String(32), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", String(32), nullable=False),
    Column("recorded_us", BigInteger, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("text_shown", Text, nullable=False),
    Column("decision", String(64), nullable=False),  # one id per decision across its subjects
    Index("ix_consent_ledger_subject", "subject", "recorded_us"),
)
_L = ledger_table.c

suppressions_table = Table(
    "privacy_suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_hash", String(64), nullable=False),  # suppression_hash(salt, "w:…" | "u:…" | "c:…")
    Column("category", String(32), nullable=False),
    Column("opted_out", Boolean, nullable=False),  # withdrawn by a STOP (everything the maison starts)
    Column("at_us", BigInteger, nullable=False),  # when the client withdrew
    Column("recorded_us", BigInteger, nullable=False),  # when the erasure kept it
    UniqueConstraint("subject_hash", "category", "at_us", name="uq_privacy_suppression"),
    Index("ix_privacy_suppressions_hash", "subject_hash"),
)
_S = suppressions_table.c


def suppression_hash(salt: bytes, subject: str) -> str:
    """The suppression list's key for one id of a client (a ledger subject: ``w:<wa_id>``,
    ``u:<BSUID>``, ``c:<client id>``): HMAC-SHA256 keyed with the privacy salt.
    """
    return hmac.new(salt, b"suppression\n" + subject.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Suppression:
    """One category a client had withdrawn when she was erased."""

    category: str
    opted_out: bool
    at: datetime


async def record_suppressions(conn: AsyncConnection, salt: bytes, subjects: Sequence[str],
                              entries: Sequence[Suppression], now: datetime) -> int:
    """Keep ``entries`` for every id in ``subjects`` (idempotent: an entry already kept is
    not kept twice); returns how many rows were added.
    """
    hashes = sorted({suppression_hash(salt, subject) for subject in subjects})
    if not hashes or not entries:
        return 0
    existing = {(h, c, a) for h, c, a in (await conn.execute(
        select(_S.subject_hash, _S.category, _S.at_us).where(_S.subject_hash.in_(hashes)))).all()}
    rows = [{"subject_hash": h, "category": e.category, "opted_out": e.opted_out,
             "at_us": to_us(e.at, "at"), "recorded_us": to_us(now, "now")}
            for h in hashes for e in entries if (h, e.category, to_us(e.at, "at")) not in existing]
    if rows:
        await conn.execute(suppressions_table.insert(), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    """One decision in the ledger: the category, granted or withdrawn, where it came from,
    when, who recorded it and the text the client was shown.
    """

    category: str
    granted: bool
    source: str
    recorded_at: datetime
    actor: str
    text_shown: str


def subjects_for(aliases: Iterable[str], client_id: str | None = None) -> list[str]:
    """The ledger's subjects for a client: their WhatsApp aliases and maison id."""
    out = list(dict.fromkeys(aliases))
    if client_id:
        out.append(f"c:{client_id}")
    return out


class ConsentLedger(SqlTables):
    """The append-only ``consent_ledger`` table (see the module docstring)."""

    metadata = metadata

    async def record(
        self,
        subjects: Sequence[str],
        categories: Iterable[str],
        granted: bool,
        *,
        source: str,
        at: datetime,
        actor: str,
        text_shown: str,
    ) -> None:
        """Append one decision (for each category) under every subject of the client."""
        if not subjects:
            raise ValueError("a consent needs a client")
        if source not in SOURCES:
            raise ValueError(f"source {source!r} is not one of {', '.join(SOURCES)}")
        cats = list(categories)
        unknown = [c for c in cats if c not in CATEGORIES]
        if unknown or not cats:
            raise ValueError(f"categories must be among {', '.join(CATEGORIES)}, got {cats!r}")
        at_us = to_us(at, "at")
        decision = uuid.uuid4().hex
        rows = [
            {"subject": subject, "category": category, "granted": granted, "source": source,
             "recorded_us": at_us, "actor": actor, "text_shown": text_shown,
             "decision": f"{decision}:{category}"}
            for subject in subjects for category in cats
        ]
        async with self.engine.begin() as conn:
            await conn.execute(ledger_table.insert(), rows)

    async def history(self, subjects: Sequence[str]) -> list[ConsentEntry]:
        """Every decision about the client, oldest first (once per decision)."""
        query = (
            select(_L.category, _L.granted, _L.source, _L.recorded_us, _L.actor, _L.text_shown, _L.decision)
            .where(_L.subject.in_(list(subjects)))
            .order_by(_L.recorded_us, _L.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        seen: set[str] = set()
        out: list[ConsentEntry] = []
        for row in rows:
            if row.decision in seen:
                continue
            seen.add(row.decision)
            out.append(ConsentEntry(row.category, bool(row.granted), row.source, _stamp(row.recorded_us),
                                    row.actor, row.text_shown))
        return out

    async def latest(self, subjects: Sequence[str]) -> dict[str, tuple[bool, datetime]]:
        """Per category: (granted, when) of the latest decision."""
        out: dict[str, tuple[bool, datetime]] = {}
        for entry in await self.history(subjects):
            out[entry.category] = (entry.granted, entry.recorded_at)
        return out

    async def erase(self, subjects: Sequence[str]) -> int:
        """GDPR erasure only: the client's rows, gone."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(ledger_table).where(_L.subject.in_(list(subjects))))
        return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A client's consent as every question reads it: per purpose the latest decision
    (granted, when), and the STOP in force (``stopped_at``; None when she is not opted
    out: she never wrote STOP, or wrote START since).
    """

    decisions: dict[str, tuple[bool, datetime]]
    stopped_at: datetime | None = None

    @property
    def opted_out(self) -> bool:
        return self.stopped_at is not None


async def latest_decisions(
    conn: AsyncConnection,
    client_id: str | None,
    aliases: Sequence[str],
    *,
    exclude_sources: Sequence[str] = (),
    salt: bytes | None = None,
) -> dict[str, tuple[bool, datetime]]:
    """Per purpose, the latest decision of the maison's book (``maison_consents``) and the
    ledger, on an open connection: the one reading every consent question shares.
    """
    return (await latest_decisions_many(conn, [(client_id, aliases)], exclude_sources=exclude_sources,
                                        salt=salt))[0]


async def latest_decisions_many(
    conn: AsyncConnection,
    clients: Sequence[tuple[str | None, Sequence[str]]],
    *,
    exclude_sources: Sequence[str] = (),
    table_names: set[str] | None = None,
    chunk: int = 400,
    salt: bytes | None = None,
) -> list[dict[str, tuple[bool, datetime]]]:
    """:func:`latest_decisions` for many ``(client_id, aliases)`` at once: one query per
    source (per ``chunk`` ids), the answers in the same order. ``table_names``: the
    tables known to exist (read from the database when not given).
    """
    states = await consent_states_many(conn, clients, exclude_sources=exclude_sources, table_names=table_names,
                                       chunk=chunk, salt=salt)
    return [state.decisions for state in states]


_Row = tuple[datetime, int, int, str, bool, str]
"""One decision as :func:`consent_states_many` merges them: (at, order, row id, purpose,
granted, source); order 0 is the maison's book, 1 the ledger, 2 the suppression list.
"""


def _stamp(value: int) -> datetime:
    """A stored (NOT NULL) microsecond time as an aware UTC datetime."""
    at = from_us(value)
    if at is None:
        raise ValueError("a consent row has no time")
    return at


async def _book_rows(
    conn: AsyncConnection, client_ids: Sequence[str], chunk: int
) -> dict[str, list[_Row]]:
    """Each client id's decisions in the maison's book (``maison_consents``)."""
    from salon.integrations.schema import consents

    rows: dict[str, list[_Row]] = {}
    c = consents.c
    for start in range(0, len(client_ids), chunk):
        query = (select(c.client_id, c.purpose, c.granted, c.recorded_at, c.id, c.source)
                 .where(c.client_id.in_(client_ids[start:start + chunk])))
        for cid, purpose, granted, at, row_id, source in (await conn.execute(query)).all():
            at = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
            rows.setdefault(cid, []).append((at, 0, row_id, purpose, bool(granted), source))
    return rows


async def _ledger_rows(
    conn: AsyncConnection, subjects: Sequence[str], exclude_sources: Sequence[str], chunk: int
) -> dict[str, list[_Row]]:
    """Each subject's decisions in the ledger, but those from ``exclude_sources``."""
    rows: dict[str, list[_Row]] = {}
    for start in range(0, len(subjects), chunk):
        query = (select(_L.subject, _L.category, _L.granted, _L.recorded_us, _L.id, _L.source)
                 .where(_L.subject.in_(subjects[start:start + chunk])))
        for subject, category, granted, at_us, row_id, source in (await conn.execute(query)).all():
            if source not in exclude_sources:
                rows.setdefault(subject, []).append(
                    (_stamp(at_us), 1, row_id, category, bool(granted), source))
    return rows


async def _kept_rows(
    conn: AsyncConnection, hashes: Sequence[str], chunk: int
) -> dict[str, list[_Row]]:
    """Per subject hash, the withdrawals the suppression list kept at an erasure."""
    rows: dict[str, list[_Row]] = {}
    for start in range(0, len(hashes), chunk):
        query = (select(_S.subject_hash, _S.category, _S.opted_out, _S.at_us, _S.id)
                 .where(_S.subject_hash.in_(hashes[start:start + chunk])))
        for digest, category, opted_out, at_us, row_id in (await conn.execute(query)).all():
            rows.setdefault(digest, []).append(
                (_stamp(at_us), 2, row_id, category, False,
                 "suppression_stop" if opted_out else "suppression"))
    return rows


def _state_of(merged: list[_Row], suppressed: list[_Row]) -> ConsentState:
    """One client's state from their book and ledger rows and their kept suppressions."""
    suppressed_categories = {row[3] for row in suppressed}
    merged = [row for row in merged if not (row[5] == "crm_import" and row[3] in suppressed_categories)]
    merged.extend(suppressed)
    decided: dict[str, tuple[bool, datetime]] = {}
    keyword: tuple[datetime, bool] | None = None
    for at, order, _, purpose, granted, source in sorted(merged, key=lambda item: item[:3]):
        decided[purpose] = (granted, at)
        own = ((order == 1 and source in KEYWORD_SOURCES and purpose == "utility")
               or (order == 0 and source == "whatsapp_keyword" and purpose in ("utility", "service"))
               or source == "suppression_stop")
        if own:
            keyword = (at, granted)
    stopped_at = keyword[0] if keyword is not None and not keyword[1] else None
    return ConsentState(decided, stopped_at)


async def consent_states_many(
    conn: AsyncConnection,
    clients: Sequence[tuple[str | None, Sequence[str]]],
    *,
    exclude_sources: Sequence[str] = (),
    table_names: set[str] | None = None,
    chunk: int = 400,
    salt: bytes | None = None,
) -> list[ConsentState]:
    """Each client's :class:`ConsentState` from the maison's book, the ledger and (with
    ``salt``) the suppression list, answers in order.

    - Per purpose, the latest decision wins (by time; the book before the ledger at the
      same instant). A suppression kept at an erasure counts as the withdrawal it was, and
      a CRM import never outranks it (the CRM did not hear of the client's STOP).
    - Opted out: the client's latest own STOP/START (:data:`KEYWORD_SOURCES`, a
      ``whatsapp_keyword`` utility/service row of the book, a suppression kept from a
      STOP) is a STOP.
    """
    from salon.integrations.schema import consents

    names = table_names
    if names is None:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    book_rows: dict[str, list[_Row]] = {}
    client_ids = list(dict.fromkeys(cid for cid, _ in clients if cid))
    if client_ids and consents.name in names:
        book_rows = await _book_rows(conn, client_ids, chunk)
    ledger_rows: dict[str, list[_Row]] = {}
    subjects_per_client = [subjects_for(aliases, cid) for cid, aliases in clients]
    all_subjects = list(dict.fromkeys(s for subjects in subjects_per_client for s in subjects))
    if all_subjects and ledger_table.name in names:
        ledger_rows = await _ledger_rows(conn, all_subjects, exclude_sources, chunk)
    kept: dict[str, list[_Row]] = {}
    hashed: dict[str, str] = {}
    if salt is not None and all_subjects and suppressions_table.name in names:
        hashed = {subject: suppression_hash(salt, subject) for subject in all_subjects}
        kept = await _kept_rows(conn, sorted(set(hashed.values())), chunk)
    out: list[ConsentState] = []
    for (cid, _), subjects in zip(clients, subjects_per_client, strict=True):
        merged = list(book_rows.get(cid, ())) if cid else []
        suppressed: list[_Row] = []
        for subject in subjects:
            merged.extend(ledger_rows.get(subject, ()))
            if subject in hashed:
                suppressed.extend(kept.get(hashed[subject], ()))
        out.append(_state_of(merged, suppressed))
    return out
