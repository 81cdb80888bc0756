"""Handing a conversation to a client advisor: the durable record, the advisor's
notification, and the line that tells the client who will answer and when.

``HandoffBook`` keeps ``salon_handoffs``: one open row per conversation (a second request
while one is open returns the same row), with the client, the assigned advisor, why
(``talk_to_advisor``; one of :data:`salon.advisors.screen.HANDOFF_REASONS` when the screen
found a person must answer; ``repeated_failure``, ``sensitive``, ``booking_request`` from
someone the book does not know, ``bespoke`` with the client's brief, ``purchase`` when she is
ready to buy: her advisor holds the piece and arranges the payment), a short note, and
how the advisor was told. :data:`OPENINGS` holds the first words the client reads for
each reason. The action server writes it when it pauses the bot; the
advisor API (in the Rasa server) lists and resolves it. Both only need ``DATABASE_URL``.

``notify`` POSTs the handoff as JSON to ``SALON_ADVISOR_WEBHOOK_URL`` when one is
configured (an advisor app, a CRM task, a Slack bridge…), asynchronously, and records
``sent`` or ``failed`` with the reason; the row itself is the record the advisor API
serves whether or not a webhook exists.

``reply_promise`` respects the boutique's opening hours in its own time zone: "Sophie
will reply to you here shortly" while the boutique is open, otherwise "Sophie will reply
to you here tomorrow from 10:00".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.exc import IntegrityError

from salon.advisors.screen import HANDOFF_REASONS
from salon.conversation.phrasing import pick, say_city, say_day, say_time
from salon.graphemes import shorten
from salon.integrations.bookings import Boutique
from salon.integrations.catalog import fold
from salon.integrations.schema import AwareDateTime
from salon.storage.db import SqlTables, add_missing_columns, schema_lock

logger = logging.getLogger(__name__)

__all__ = ["OPENINGS", "REASONS", "Handoff", "HandoffBook", "notify", "opening", "purchase_note",
           "reply_promise"]

REASONS: Final = tuple(dict.fromkeys((
    "talk_to_advisor", "complaint", "repeated_failure", "sensitive", "booking_request", "bespoke",
    "purchase", "advisor_takeover", *HANDOFF_REASONS)))
WEBHOOK_TIMEOUT_S: Final = 5.0
NAME_LIMIT: Final = 200
"""A WhatsApp profile name may be longer: it is kept shortened, between characters."""
NOTE_LIMIT: Final = 2000

metadata = MetaData()

handoffs_table = Table(
    "salon_handoffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(200), nullable=False),  # Rasa's sender id
    Column("phone_number_id", String(64)),
    Column("wa_id", String(32)),
    Column("user_id", String(200)),  # a BSUID: up to 135 characters
    Column("client_id", String(16)),
    Column("client_name", String(NAME_LIMIT)),
    Column("advisor_id", String(64)),
    Column("boutique_id", String(32)),
    Column("language", String(8), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("open_key", String(200), unique=True),  # conversation_id while open, else NULL
    Column("created_at", AwareDateTime, nullable=False),
    Column("resolved_at", AwareDateTime),
    Column("resolved_by", String(100)),
    Column("notified", String(16), nullable=False),  # none | sent | failed
    Column("notify_detail", Text),
    # Who took it up in the console, and when (an advisor, or a colleague standing in).
    Column("taken_by", String(100)),
    Column("taken_at", AwareDateTime),
    Index("ix_salon_handoffs_advisor_status", "advisor_id", "status"),
    Index("ix_salon_handoffs_conversation", "conversation_id", "created_at"),
)
_H = handoffs_table.c


@dataclass(frozen=True, slots=True)
class Handoff:
    """One handoff as ``salon_handoffs`` keeps it."""

    id: int
    conversation_id: str
    phone_number_id: str | None
    wa_id: str | None
    user_id: str | None
    client_id: str | None
    client_name: str | None
    advisor_id: str | None
    boutique_id: str | None
    language: str
    reason: str
    note: str
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    notified: str
    notify_detail: str | None
    taken_by: str | None = None
    taken_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "conversation_id": self.conversation_id, "client_id": self.client_id,
            "client_name": self.client_name, "wa_id": self.wa_id, "user_id": self.user_id,
            "advisor_id": self.advisor_id, "boutique_id": self.boutique_id,
            "language": self.language, "reason": self.reason, "note": self.note,
            "status": self.status, "created_at": self.created_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "resolved_by": self.resolved_by, "notified": self.notified,
            "taken_by": self.taken_by, "taken_at": self.taken_at.isoformat() if self.taken_at else None,
        }


def _handoff(row: Any) -> Handoff:
    m = row._mapping
    return Handoff(**{name: m[name] for name in Handoff.__slots__})


class HandoffBook(SqlTables):
    """``salon_handoffs``: at most one open handoff per conversation (see the module docstring)."""

    metadata = metadata

    async def initialize(self) -> None:
        await super().initialize()
        async with self.engine.begin() as conn:
            await schema_lock(conn)
            await add_missing_columns(conn, handoffs_table)

    async def open(self, *, conversation_id: str, reason: str, note: str, language: str,
                   now: datetime, client_id: str | None = None, client_name: str | None = None,
                   advisor_id: str | None = None, boutique_id: str | None = None,
                   phone_number_id: str | None = None, wa_id: str | None = None,
                   user_id: str | None = None) -> tuple[Handoff, bool]:
        """The conversation's open handoff, created if there is none: (handoff, created)."""
        if reason not in REASONS:
            raise ValueError(f"unknown handoff reason {reason!r}; one of {REASONS}")
        values: dict[str, Any] = {
            "conversation_id": conversation_id, "phone_number_id": phone_number_id,
            "wa_id": wa_id, "user_id": user_id, "client_id": client_id,
            "client_name": shorten(client_name, NAME_LIMIT) if client_name else client_name,
            "advisor_id": advisor_id, "boutique_id": boutique_id,
            "language": language, "reason": reason, "note": shorten(note, NOTE_LIMIT), "status": "open",
            "open_key": conversation_id, "created_at": now, "resolved_at": None,
            "resolved_by": None, "notified": "none", "notify_detail": None,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(handoffs_table.insert().values(**values))
            created = True
        except IntegrityError:
            created = False  # already open: the unique open_key keeps one per conversation
        found = await self.open_for(conversation_id)
        if found is None:  # resolved between the two statements: try once more
            return await self.open(**{k: v for k, v in values.items() if k in (
                "conversation_id", "phone_number_id", "wa_id", "user_id", "client_id",
                "client_name", "advisor_id", "boutique_id", "language", "reason", "note")},
                now=now)
        return found, created

    async def open_for(self, conversation_id: str) -> Handoff | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(handoffs_table).where(
                _H.open_key == conversation_id))).first()
        return _handoff(row) if row is not None else None

    async def latest_for(self, conversation_id: str) -> Handoff | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(handoffs_table).where(_H.conversation_id == conversation_id)
                .order_by(_H.created_at.desc(), _H.id.desc()).limit(1))).first()
        return _handoff(row) if row is not None else None

    async def listing(self, *, advisor_id: str | None, include_resolved: bool = False,
                      limit: int = 200) -> list[Handoff]:
        """Handoffs of one advisor (``advisor_id``) or of everyone (None), newest first."""
        query = select(handoffs_table).order_by(_H.created_at.desc(), _H.id.desc()).limit(limit)
        if advisor_id is not None:
            query = query.where(_H.advisor_id == advisor_id)
        if not include_resolved:
            query = query.where(_H.status == "open")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_handoff(r) for r in rows]

    async def resolve(self, conversation_id: str, *, by: str, now: datetime) -> Handoff | None:
        """Close the open handoff (the bot takes the conversation back); None if none."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(handoffs_table).where(_H.open_key == conversation_id)
                .values(status="resolved", open_key=None, resolved_at=now, resolved_by=by))
            if result.rowcount != 1:
                return None
        return await self.latest_for(conversation_id)

    async def take(self, conversation_id: str, *, by: str, now: datetime) -> Handoff | None:
        """``by`` takes up the open handoff (the console's "Take"); None if none is open."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(handoffs_table).where(_H.open_key == conversation_id)
                                        .values(taken_by=by, taken_at=now))
            if result.rowcount != 1:
                return None
        return await self.open_for(conversation_id)

    async def reassign(self, conversation_id: str, advisor_id: str) -> Handoff | None:
        """The open handoff goes to another advisor (a manager's decision); None if none."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(handoffs_table).where(_H.open_key == conversation_id)
                                        .values(advisor_id=advisor_id, taken_by=None, taken_at=None))
            if result.rowcount != 1:
                return None
        return await self.open_for(conversation_id)

    async def mark_notified(self, handoff_id: int, outcome: str, detail: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(handoffs_table).where(_H.id == handoff_id)
                               .values(notified=outcome, notify_detail=detail))


SIGNATURE_HEADER = "X-Salon-Signature-256"
"""``sha256=<HMAC-SHA256 of the body, keyed with SALON_ADVISOR_WEBHOOK_SECRET>``, as Meta
signs its webhooks: the receiver knows the handoff (and the client data in it) is ours."""


def webhook_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def notify(book: HandoffBook, handoff: Handoff, url: str | None, *,
                 client: httpx.AsyncClient | None = None, secret: str | None = None) -> str:
    """POST the handoff to the advisors' webhook when one is configured, signed with
    ``secret`` (default ``SALON_ADVISOR_WEBHOOK_SECRET``); the outcome (``none``, ``sent``,
    ``failed``) is recorded on the handoff and returned. Logs and the record name the
    webhook's host only: its URL may hold a credential.
    """
    if not url:
        return "none"
    secret = secret if secret is not None else os.environ.get("SALON_ADVISOR_WEBHOOK_SECRET", "")
    body = json.dumps({"event": "handoff", "handoff": handoff.as_json()}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SIGNATURE_HEADER] = webhook_signature(body, secret)
    else:
        logger.warning("advisor webhook: SALON_ADVISOR_WEBHOOK_SECRET is not set; the handoff goes unsigned")
    own = client is None
    http = client or httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S)
    try:
        response = await http.post(url, content=body, headers=headers)
        if 200 <= response.status_code < 300:
            outcome, detail = "sent", f"HTTP {response.status_code}"
        else:
            outcome, detail = "failed", f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        outcome, detail = "failed", type(exc).__name__  # its text would quote the URL
    finally:
        if own:
            await http.aclose()
    if outcome == "failed":
        logger.error("advisor webhook on %s for handoff %s failed: %s", urlsplit(url).hostname,
                     handoff.id, detail)
    await book.mark_notified(handoff.id, outcome, detail)
    return outcome


OPENINGS: Final[dict[str, dict[str, str]]] = {
    "talk_to_advisor": {"en": "Of course.", "fr": "Bien sûr.", "it": "Certamente."},
    "human_request": {"en": "Of course.", "fr": "Bien sûr.", "it": "Certamente."},
    # A complaint is first acknowledged by utter_complaint, its apology.
    "complaint": {"en": "", "fr": "", "it": ""},
    # An advisor took the conversation over from the console: they write next themselves.
    "advisor_takeover": {"en": "", "fr": "", "it": ""},
    "repeated_failure": {
        "en": "Forgive me, I am not helping as I should.",
        "fr": "Pardonnez-moi, je crains de ne pas vous être d'une grande aide.",
        "it": "Mi perdoni, non La sto aiutando come dovrei.",
    },
    "sensitive": {
        "en": "This deserves personal attention.",
        "fr": "Cela mérite une attention personnelle.",
        "it": "Questo merita un'attenzione personale.",
    },
    "booking_request": {
        "en": "Thank you, your request is noted.",
        "fr": "Merci, votre demande est notée.",
        "it": "Grazie, ho preso nota della Sua richiesta.",
    },
    "purchase": {
        "en": "With pleasure, we will arrange it for you.",
        "fr": "Avec plaisir, nous allons l'organiser pour vous.",
        "it": "Con piacere, lo organizzeremo per Lei.",
    },
    "bespoke": {
        "en": "Thank you, I have prepared your request.",
        "fr": "Merci, j'ai préparé votre demande.",
        "it": "Grazie, ho preparato la Sua richiesta.",
    },
    "distress": {
        "en": "I am so sorry. Thank you for telling us.",
        "fr": "Nous sommes de tout cœur avec vous, et je vous remercie de nous l'avoir dit.",
        "it": "Ci dispiace moltissimo, e La ringrazio di avercelo confidato.",
    },
    "health": {
        "en": "Your wellbeing comes first, and this deserves a person's care.",
        "fr": ("Votre bien-être passe avant tout, et cela mérite l'attention de l'un de nos "
               "conseillers."),
        "it": "Il Suo benessere viene prima di tutto, e questo merita l'attenzione di una persona.",
    },
    "legal": {
        "en": "I understand, and I am passing this on straight away.",
        "fr": "Je comprends, et je transmets votre message sans attendre.",
        "it": "Capisco, e inoltro subito il Suo messaggio.",
    },
    "fraud": {
        "en": "Thank you for alerting us. Meanwhile, please share no card details or codes "
              "with anyone.",
        "fr": "Merci de nous avoir alertés. En attendant, ne communiquez à personne vos "
              "coordonnées bancaires ni aucun code.",
        "it": "Grazie per averci avvisati. Nel frattempo, La prego di non comunicare a nessuno "
              "i dati della Sua carta né alcun codice.",
    },
    "payment": {
        "en": "I am sorry for the trouble with your payment.",
        "fr": "Veuillez nous excuser pour ce désagrément lié à votre paiement.",
        "it": "Ci scusiamo per il problema riscontrato con il pagamento.",
    },
    "data_protection": {
        "en": "Of course: your request about your personal data will be handled by a person.",
        "fr": "Bien entendu : votre demande concernant vos données personnelles sera traitée "
              "personnellement par un membre de notre équipe.",
        "it": ("Certamente: la Sua richiesta relativa ai dati personali sarà seguita "
               "personalmente da un membro del nostro team."),
    },
    "urgency": {
        "en": "I understand the urgency.",
        "fr": "Je comprends l'urgence.",
        "it": "Capisco l'urgenza.",
    },
    "discretion": {
        "en": "Of course, in complete discretion.",
        "fr": "Bien entendu, en toute discrétion.",
        "it": "Certamente, con la massima discrezione.",
    },
}
"""The first words to the client when the conversation goes to a person, by reason and
language; :func:`reply_promise` follows them. A reason not listed has none."""

#: Who answers and when (:func:`reply_promise`), by language.
_PROMISES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "anyone": "A client advisor from our {city} boutique",
        "shortly": "{who} will reply to you here shortly.",
        "reopens": "{who} will reply to you here as soon as the boutique reopens.",
        "today": "{who} will reply to you here today from {hour}.",
        "tomorrow": "{who} will reply to you here tomorrow from {hour}.",
        "later": "{who} will reply to you here on {day} from {hour}.",
    },
    "fr": {
        "anyone": "Un conseiller de notre boutique de {city}",
        "shortly": "{who} vous répondra ici très bientôt.",
        "reopens": "{who} vous répondra ici dès la réouverture de la boutique.",
        "today": "{who} vous répondra ici aujourd'hui à partir de {hour}.",
        "tomorrow": "{who} vous répondra ici demain à partir de {hour}.",
        "later": "{who} vous répondra ici le {day} à partir de {hour}.",
    },
    "it": {
        "anyone": "Un consulente della nostra boutique di {city}",
        "shortly": "{who} Le risponderà qui a breve.",
        "reopens": "{who} Le risponderà qui non appena la boutique riaprirà.",
        "today": "{who} Le risponderà qui oggi a partire dalle {hour}.",
        "tomorrow": "{who} Le risponderà qui domani a partire dalle {hour}.",
        "later": "{who} Le risponderà qui {day} a partire dalle {hour}.",
    },
}


def opening(reason: str, language: str) -> str:
    """The first words for ``reason`` in ``language`` (English when it has none)."""
    lines = OPENINGS.get(reason, {})
    return pick(lines, language) if lines else ""


def purchase_note(words: str, piece: str | None) -> str:
    """The advisor's note when a client is ready to buy: the piece first (or that none is
    named yet: the advisor asks, nothing is guessed), then her words as she wrote them.
    """
    said = words.strip() or "(no text)"
    head = f"Ready to buy: {piece}." if piece else "Ready to buy (no piece named yet)."
    return f"{head} Client wrote: {said}"


PURCHASE_QUESTION: Final[dict[str, str]] = {
    "en": "Let me pass your question on.",
    "fr": "Je transmets votre question.",
    "it": "Inoltro la Sua domanda.",
}
"""What opens the handoff of a purchase when she asks whether something can be done: her
advisor answers it, and "With pleasure, we will arrange it" would read as a yes."""

_WHETHER = re.compile(
    r"\b(?:(?:can|could|may) (?:i|we)|do you (?:accept|take|ship|deliver|send)|"
    r"(?:can|could) you (?:ship|deliver|send)|is it possible|"
    r"puis je|peut on|est ce que (?:je|l on|on) (?:peux|peut)|je peux|acceptez vous|"
    r"vous acceptez|(?:livrez|expediez|envoyez) vous|vous (?:livrez|expediez|envoyez)|"
    r"pouvez vous (?:livrer|expedier|envoyer|me l envoyer)|est il possible|"
    r"posso|possiamo|si puo|accettate|spedite|consegnate|"
    r"potete (?:spedire|consegnare|inviare|spedirmel\w*|inviarmel\w*)|e possibile)\b")


def asks_whether(words: str) -> bool:
    """Whether a message asks if something can be done ("Can I pay by bank transfer?",
    "je la prends, puis-je payer en trois fois ?", "posso pagare con bonifico?", "do you
    ship to Switzerland?"), rather than how ("How do I pay?", "come pago?"): a yes or no
    that only a person may give.
    """
    return bool(_WHETHER.search(fold(words)))


def reply_promise(advisor_first_name: str | None, shop: Boutique, now: datetime,
                  language: str) -> str:
    """Who will answer and when, within the boutique's opening hours."""
    words = pick(_PROMISES, language)
    who = advisor_first_name or words["anyone"].format(city=say_city(shop.city, language))
    if shop.is_open_at(now):
        return words["shortly"].format(who=who)
    next_open = shop.next_opening(now)
    if next_open is None:
        return words["reopens"].format(who=who)
    local_now = now.astimezone(shop.zone)
    local = next_open.astimezone(shop.zone)
    hour = say_time(local, language)
    if local.date() == local_now.date():
        return words["today"].format(who=who, hour=hour)
    if local.date() == local_now.date() + timedelta(days=1):
        return words["tomorrow"].format(who=who, hour=hour)
    return words["later"].format(who=who, hour=hour, day=say_day(local, language))
