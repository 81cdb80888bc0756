"""The console's inbox: every conversation an advisor may work on, in the order that needs
them first.

Which conversations: the clients who wrote in the last 30 days (``wa_inbox``) and every
conversation handed to an advisor that is still open (``salon_handoffs``). An advisor
sees those of the clients assigned to them in the maison's book (or handed to them); a
manager sees them all.

In what order (:func:`arrange`):

1. handoffs waiting for a person, the longest wait first (the reason and how long);
2. then the conversations whose 24-hour window is open, the one closing soonest first
   (the page counts down: "closes in 1 h 12");
3. then the rest, the most recent first.

Filters: ``mine`` (assigned to me, for a manager who also has clients), ``waiting``,
``closing`` (an open window closing within 2 hours) and ``closed``; a search on the
client's name ignores case and accents.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.access.tokens import Principal
from salon.advisors.handoff import Handoff, HandoffBook
from salon.clock import require_aware
from salon.identity import ClientRef
from salon.integrations.schema import clients
from salon.webhook.inbox import inbox_table
from salon.whatsapp.addressing import is_bsuid
from salon.window.state import SessionStore

__all__ = ["FILTERS", "InboxRow", "arrange", "load_inbox", "masked", "matches"]

FILTERS: Final = ("all", "mine", "waiting", "closing", "closed")
CLOSING_WITHIN: Final = timedelta(hours=2)
RECENT: Final = timedelta(days=30)
LIMIT: Final = 500


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One conversation as the inbox lists it."""

    conversation_id: str
    client_id: str | None
    client_name: str
    tier: str | None
    language: str | None
    advisor_id: str | None
    wa_id: str | None
    user_id: str | None
    handoff: Handoff | None
    """The open handoff, if the conversation waits for (or is with) a person."""
    window_open: bool
    closes_at: datetime | None
    last_at: datetime | None
    """When the client last wrote."""

    @property
    def group(self) -> int:
        """0: a handoff waiting; 1: an open window; 2: the rest."""
        if self.handoff is not None:
            return 0
        return 1 if self.window_open else 2

    def closing_within(self, now: datetime, span: timedelta = CLOSING_WITHIN) -> bool:
        return self.window_open and self.closes_at is not None and self.closes_at - now <= span


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def matches(row: InboxRow, query: str | None) -> bool:
    """Whether the client's name contains ``query`` (case and accents ignored)."""
    if not query or not query.strip():
        return True
    return _folded(query.strip()) in _folded(row.client_name)


def arrange(rows: Sequence[InboxRow], now: datetime, *, principal: Principal,
            view: str = "all", query: str | None = None) -> list[InboxRow]:
    """``rows`` filtered (``view``, one of :data:`FILTERS`, and the name search) and in the
    inbox's order (see the module docstring).
    """
    require_aware(now)
    if view not in FILTERS:
        raise ValueError(f"unknown inbox filter {view!r}; one of {FILTERS}")
    kept = [r for r in rows if matches(r, query)]
    if view == "mine":
        kept = [r for r in kept if principal.advisor_id is not None and r.advisor_id == principal.advisor_id]
    elif view == "waiting":
        kept = [r for r in kept if r.handoff is not None]
    elif view == "closing":
        kept = [r for r in kept if r.closing_within(now)]
    elif view == "closed":
        kept = [r for r in kept if not r.window_open]
    far = datetime.max.replace(tzinfo=timezone.utc)
    old = datetime.min.replace(tzinfo=timezone.utc)

    def order(row: InboxRow) -> tuple[int, float]:
        if row.group == 0:
            assert row.handoff is not None
            return 0, row.handoff.created_at.timestamp()  # the longest wait first
        if row.group == 1:
            return 1, (row.closes_at or far).timestamp()  # the soonest to close first
        return 2, -(row.last_at or old).timestamp()  # the most recent first

    return sorted(kept, key=order)


def _name(row: object | None, fallback: str) -> str:
    if row is None:
        return fallback
    return f"{row.first_name} {row.last_name}"  # type: ignore[attr-defined]


def masked(conversation_id: str) -> str:
    """Someone the book does not know, named by the end of their number."""
    if is_bsuid(conversation_id):
        return f"WhatsApp user …{conversation_id[-4:]}"
    return f"+{conversation_id[:2]} … {conversation_id[-4:]}"


async def load_inbox(engine: AsyncEngine, *, handoffs: HandoffBook, sessions: SessionStore,
                     principal: Principal, phone_number_id: str, now: datetime) -> list[InboxRow]:
    """Every conversation ``principal`` may work on (not yet arranged: :func:`arrange`)."""
    require_aware(now)
    since_us = int((now - RECENT).timestamp() * 1_000_000)
    inbox = inbox_table.c
    async with engine.connect() as conn:
        recent = (await conn.execute(
            select(inbox.sender_id, func.max(inbox.sent_us))
            .where(inbox.phone_number_id == phone_number_id, inbox.sent_us >= since_us)
            .group_by(inbox.sender_id).order_by(func.max(inbox.sent_us).desc()).limit(LIMIT))).all()
    last_at = {sender: datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc) for sender, us in recent}
    open_handoffs = {h.conversation_id: h for h in await handoffs.listing(advisor_id=None)}
    ids = list(dict.fromkeys([*last_at, *open_handoffs]))
    if not ids:
        return []
    c = clients.c
    async with engine.connect() as conn:
        book = (await conn.execute(select(clients).where(or_(c.wa_id.in_(ids), c.user_id.in_(ids))))).all()
    by_id = {}
    for row in book:
        for key in (row.wa_id, row.user_id):
            if key:
                by_id[key] = row
    rows: list[tuple[str, object | None, Handoff | None, ClientRef]] = []
    for conversation in ids:
        client = by_id.get(conversation)
        handoff = open_handoffs.get(conversation)
        advisor = handoff.advisor_id if handoff is not None and handoff.advisor_id else (
            client.advisor_id if client is not None else None)
        if not principal.may_see_advisor(advisor):
            continue
        wa_id = (client.wa_id if client is not None else None) or (
            None if is_bsuid(conversation) else conversation)
        user_id = (client.user_id if client is not None else None) or (
            conversation if is_bsuid(conversation) else None)
        rows.append((conversation, client, handoff, ClientRef(phone_number_id, user_id=user_id, wa_id=wa_id)))
    states = await sessions.get_many([ref for *_, ref in rows])
    out: list[InboxRow] = []
    for (conversation, client, handoff, ref), state in zip(rows, states, strict=True):
        window = state.window(now) if state is not None else None
        advisor = handoff.advisor_id if handoff is not None and handoff.advisor_id else (
            client.advisor_id if client is not None else None)  # type: ignore[attr-defined]
        name = (handoff.client_name if handoff is not None and handoff.client_name else None) or _name(
            client, masked(conversation))
        out.append(InboxRow(
            conversation_id=conversation,
            client_id=client.id if client is not None else (handoff.client_id if handoff else None),  # type: ignore[attr-defined]
            client_name=name,
            tier=client.tier if client is not None else None,  # type: ignore[attr-defined]
            language=client.language if client is not None else (handoff.language if handoff else None),  # type: ignore[attr-defined]
            advisor_id=advisor, wa_id=ref.wa_id, user_id=ref.user_id, handoff=handoff,
            window_open=bool(window and window.is_open),
            closes_at=window.closes_at if window is not None and window.is_open else None,
            last_at=last_at.get(conversation),
        ))
    return out
