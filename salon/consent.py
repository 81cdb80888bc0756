"""The consent ledger: every consent decision about a client, append-only, in SQL.

One row per decision: the client (their WhatsApp ids ``w:<wa_id>`` / ``u:<BSUID>`` and,
when the maison's book knows them, their client id), the category, granted or withdrawn,
where it came from, when, who recorded it and the text the client was shown. The current
state of a category is its latest row; nothing is ever updated or deleted except by a
GDPR erasure (:mod:`salon.privacy`).

It sits beside two older sources and agrees with them:

- ``maison_consents`` (:mod:`salon.integrations.schema`), the maison's own append-only
  history from boutique forms, the web site and CRM imports;
- ``wa_preferences`` (:mod:`salon.whatsapp.consent`), WhatsApp's ``user_preferences``
  webhooks and 131050 failures; each is also written here.

:meth:`salon.whatsapp.consent.ConsentBook.consent_for` reads all three, latest decision
first, so every sender enforces the ledger through the send-time guard.

STOP and START keywords (:func:`keyword_of`) are recognised in the channel before any
language model sees the message: STOP withdraws utility and marketing messages, START
grants them again, and the client gets one confirmation in their language.
"""

from __future__ import annotations

import re
import unicodedata
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
    delete,
    inspect,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from salon.db import SqlTables
from salon.sessions import from_us, to_us

__all__ = [
    "CATEGORIES",
    "CONFIRMATIONS",
    "CONSENT_UTTERANCES",
    "START_CATEGORIES",
    "STOP_CATEGORIES",
    "SOURCES",
    "ConsentEntry",
    "ConsentLedger",
    "confirmation",
    "keyword_categories",
    "keyword_of",
    "latest_decisions",
    "latest_decisions_many",
    "ledger_table",
    "subjects_for",
]

CATEGORIES: Final = ("service", "utility", "marketing", "personalisation", "llm")
"""Answers to the client's own messages, utility updates, marketing, personalisation,
processing by a language model (the maison's purpose names)."""
SOURCES: Final = ("boutique_form", "web", "whatsapp_keyword", "whatsapp_message", "crm_import",
                  "user_preferences", "error_131050", "advisor")
"""``whatsapp_message``: an opt-out or opt-in the assistant understood in a sentence
("please stop contacting me") and confirmed with ``utter_opt_out`` / ``utter_opt_in``."""
CONSENT_UTTERANCES: Final = {"utter_opt_out": False, "utter_opt_in": True}
STOP_CATEGORIES: Final = ("utility", "marketing")
"""What STOP withdraws: every message the maison starts."""
START_CATEGORIES: Final = ("utility",)
"""What START grants back: messages about her requests, orders and appointments. Marketing
is never granted by a keyword: it needs its own explicit, evidenced agreement."""


def keyword_categories(keyword: str) -> tuple[str, ...]:
    """The categories a ``stop`` or ``start`` keyword decides."""
    return STOP_CATEGORIES if keyword == "stop" else START_CATEGORIES

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


@dataclass(frozen=True, slots=True)
class ConsentEntry:
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
            out.append(ConsentEntry(row.category, bool(row.granted), row.source, from_us(row.recorded_us),
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


async def latest_decisions(
    conn: AsyncConnection,
    client_id: str | None,
    aliases: Sequence[str],
    *,
    exclude_sources: Sequence[str] = (),
) -> dict[str, tuple[bool, datetime]]:
    """Per purpose, the latest decision of the maison's book (``maison_consents``) and the
    ledger, on an open connection: the one reading every consent question shares."""
    return (await latest_decisions_many(conn, [(client_id, aliases)], exclude_sources=exclude_sources))[0]


async def latest_decisions_many(
    conn: AsyncConnection,
    clients: Sequence[tuple[str | None, Sequence[str]]],
    *,
    exclude_sources: Sequence[str] = (),
    table_names: set[str] | None = None,
    chunk: int = 400,
) -> list[dict[str, tuple[bool, datetime]]]:
    """:func:`latest_decisions` for many ``(client_id, aliases)`` at once: one query per
    source (per ``chunk`` ids), the answers in the same order. ``table_names``: the
    tables known to exist (read from the database when not given)."""
    from salon.integrations.schema import consents

    names = table_names
    if names is None:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    book_rows: dict[str, list[tuple[datetime, int, int, str, bool]]] = {}
    client_ids = list(dict.fromkeys(cid for cid, _ in clients if cid))
    if client_ids and consents.name in names:
        c = consents.c
        for start in range(0, len(client_ids), chunk):
            query = (select(c.client_id, c.purpose, c.granted, c.recorded_at, c.id)
                     .where(c.client_id.in_(client_ids[start:start + chunk])))
            for cid, purpose, granted, at, row_id in (await conn.execute(query)).all():
                at = at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
                book_rows.setdefault(cid, []).append((at, 0, row_id, purpose, bool(granted)))
    ledger_rows: dict[str, list[tuple[datetime, int, int, str, bool]]] = {}
    subjects_per_client = [subjects_for(aliases, cid) for cid, aliases in clients]
    all_subjects = list(dict.fromkeys(s for subjects in subjects_per_client for s in subjects))
    if all_subjects and ledger_table.name in names:
        for start in range(0, len(all_subjects), chunk):
            query = (select(_L.subject, _L.category, _L.granted, _L.recorded_us, _L.id, _L.source)
                     .where(_L.subject.in_(all_subjects[start:start + chunk])))
            for subject, category, granted, at_us, row_id, source in (await conn.execute(query)).all():
                if source not in exclude_sources:
                    ledger_rows.setdefault(subject, []).append(
                        (from_us(at_us), 1, row_id, category, bool(granted)))  # type: ignore[arg-type]
    out: list[dict[str, tuple[bool, datetime]]] = []
    for (cid, _), subjects in zip(clients, subjects_per_client, strict=True):
        merged = list(book_rows.get(cid, ())) if cid else []
        for subject in subjects:
            merged.extend(ledger_rows.get(subject, ()))
        decided: dict[str, tuple[bool, datetime]] = {}
        for at, _, _, purpose, granted in sorted(merged, key=lambda item: item[:3]):
            decided[purpose] = (granted, at)
        out.append(decided)
    return out


# --------------------------------------------------------------------------- keywords

_STOP_WORDS: Final = frozenset({"stop", "arret", "arrete", "arretez", "stopp", "basta", "unsubscribe",
                                "desabonner", "desabonnez", "desinscrire", "optout", "unsub"})
_START_WORDS: Final = frozenset({"start", "commencer", "reprendre", "resume", "subscribe", "unstop",
                                 "abonner", "reabonner", "optin"})
_FILLER: Final = frozenset({"please", "pls", "svp", "stp", "merci", "thanks", "thank", "you", "bitte",
                            "danke", "grazie", "per", "favore", "s'il", "vous", "plait", "me", "moi",
                            "all", "tout", "now", "maintenant", "ok", "je", "veux", "i", "want", "to",
                            "a", "se", "de", "opt", "out", "in", "again", "jetzt"})
_MAX_WORDS: Final = 5


def _plain(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    stripped = stripped.replace("opt out", "optout").replace("opt-out", "optout")
    stripped = stripped.replace("opt in", "optin").replace("opt-in", "optin")
    return re.findall(r"[a-z']+", stripped)


def keyword_of(text: str) -> str | None:
    """``"stop"`` or ``"start"`` when the message is that keyword, alone or with little
    else (politeness, punctuation, any case or accents); None otherwise. A sentence
    that merely contains the word (``"when does the sale stop?"``) is not a keyword."""
    if not isinstance(text, str) or len(text) > 80:
        return None
    words = _plain(text)
    if not words or len(words) > _MAX_WORDS:
        return None
    stops = [w for w in words if w in _STOP_WORDS]
    starts = [w for w in words if w in _START_WORDS]
    rest = [w for w in words if w not in _STOP_WORDS and w not in _START_WORDS and w not in _FILLER]
    if rest or bool(stops) == bool(starts):
        return None
    return "stop" if stops else "start"


_KEYWORD_LANGUAGE: Final = {"arret": "fr", "arrete": "fr", "arretez": "fr", "desabonner": "fr",
                            "desabonnez": "fr", "desinscrire": "fr", "commencer": "fr", "reprendre": "fr",
                            "abonner": "fr", "reabonner": "fr", "stopp": "de", "basta": "it"}

CONFIRMATIONS: Final[dict[str, dict[str, str]]] = {
    "stop": {
        "en": "Understood. You will no longer receive messages from us on WhatsApp unless you write to "
              "us. Should you wish to hear from us again, simply write START.",
        "fr": "C'est entendu. Vous ne recevrez plus de messages de notre part sur WhatsApp, sauf si vous "
              "nous écrivez. Pour nous retrouver, il vous suffira d'écrire START.",
        "de": "Verstanden. Sie erhalten von uns keine Nachrichten mehr auf WhatsApp, es sei denn, Sie "
              "schreiben uns. Möchten Sie wieder von uns hören, schreiben Sie einfach START.",
        "it": "Certamente. Non riceverà più nostri messaggi su WhatsApp, a meno che non sia Lei a "
              "scriverci. Per riceverli di nuovo, le basterà scrivere START.",
    },
    "start": {
        "en": "Thank you. You will again receive our messages about your requests, orders and "
              "appointments on WhatsApp. You may write STOP at any time.",
        "fr": "Merci. Vous recevrez de nouveau nos messages sur vos demandes, commandes et rendez-vous "
              "sur WhatsApp. Vous pouvez écrire STOP à tout moment.",
        "de": "Vielen Dank. Sie erhalten wieder unsere Nachrichten zu Ihren Anfragen, Bestellungen und "
              "Terminen auf WhatsApp. Sie können jederzeit STOP schreiben.",
        "it": "Grazie. Riceverà di nuovo i nostri messaggi sulle sue richieste, ordini e appuntamenti su "
              "WhatsApp. Può scrivere STOP in qualsiasi momento.",
    },
}


def confirmation(keyword: str, text: str, language: str | None) -> tuple[str, str]:
    """(language, confirmation text) for a keyword: the language the keyword was written
    in when it says (ARRÊT is French), else the client's, else English."""
    spoken = next((_KEYWORD_LANGUAGE[w] for w in _plain(text) if w in _KEYWORD_LANGUAGE), None)
    lang = spoken or (language or "en").split("-")[0].split("_")[0].lower()
    if lang not in CONFIRMATIONS[keyword]:
        lang = "en"
    return lang, CONFIRMATIONS[keyword][lang]
