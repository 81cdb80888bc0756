"""The audit trail of what client advisors do: one row in ``salon_advisor_audit`` per act.

The advisor API and the advisor console call :meth:`AdvisorAudit.record` for each act of
:data:`ACTIONS`: signing in and out, reading a conversation, replying (free-form, as a
template or parked behind the nudge: ``detail["sent"]``), handing the conversation back to
the assistant, taking a handoff, reassigning it, scheduling a follow-up, updating a
repair request. A row keeps when (``at``, aware UTC, from the injected clock), who
(``actor``: the token's name; ``advisor_id`` when the token has one), what (``action``),
about whom (``conversation_id``: Rasa's sender id; ``client_id``: the maison's id; either
may be unknown) and a small ``detail``.

**The detail holds no words and no secrets.** Every key must be one of :data:`DETAIL_KEYS`,
each with a closed set of values or a narrow pattern (an outcome, a template name, a
status, an advisor id, a record's reference, an instant); anything else is refused with
:class:`AuditRefused` before anything is written: message text, notes, tokens and any key
not on the list, as well as a known key whose value does not have its form (a sentence
passed as a template name). The error names the key and the rule, never the value.

**Export and erasure** (:mod:`salon.privacy.rights`, store ``salon_advisor_audit``). A
client's export holds every row about her: by her client id, and by each of her
conversation ids (her numbers and BSUIDs). Her erasure does *not* delete them: the maison
must still be able to show which advisor did what and when (who read a conversation,
who answered, who moved a repair on), which is the point of the trail, while nothing
in it may still say who it was about. So the erasure keeps each row's ``at``, ``actor``,
``advisor_id``, ``action`` and the detail that describes the act (how a reply left, the
template, the repair status, the advisor it went to), and removes who it was about:
``conversation_id`` and ``client_id`` become NULL and the detail keys that point at one
of her records (:data:`LINK_KEYS`: handoff, repair request, outbound request) are dropped
(:func:`unlinked_detail`). The erasure report counts those rows under the store's name;
a second erasure finds none of them and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.access.tokens import SCOPES
from salon.advisors.repairs import STATUSES
from salon.clock import Clock, require_aware
from salon.integrations.schema import AwareDateTime
from salon.purposes import PURPOSES, SERVICE_REPLY
from salon.storage.db import SqlTables

__all__ = [
    "ACTIONS",
    "DETAIL_KEYS",
    "LINK_KEYS",
    "AdvisorAudit",
    "AuditRecord",
    "AuditRefused",
    "advisor_audit_table",
    "clean_detail",
    "unlinked_detail",
]

ACTIONS: Final = (
    "sign_in",             # the console or the API accepted the advisor's token
    "sign_out",
    "read_conversation",   # the transcript was shown
    "reply",               # detail: sent (free_form | template | parked | refused | failed), template
    "hand_back",           # the assistant has the conversation again
    "take_handoff",        # an advisor took a handoff waiting for someone
    "reassign",            # detail: from_advisor, to_advisor
    "schedule_follow_up",  # detail: due_at, purpose, request_id
    "update_repair",       # detail: repair_id, status, previous_status, sent
)
"""What an advisor's act may be."""

ABOUT_NOBODY: Final = frozenset({"sign_in", "sign_out"})
"""Acts that concern no client: they carry no conversation and no client id."""

SENT: Final = ("free_form", "template", "parked", "refused", "failed")
"""How a message left (``SendOutcome.action`` of the send-time guard)."""

ACTOR_LIMIT: Final = 100
CONVERSATION_LIMIT: Final = 200
CLIENT_LIMIT: Final = 16

_ADVISOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TEMPLATE = re.compile(r"[a-z0-9_]{1,64}")
_REPAIR_ID = re.compile(r"REP-\d{8}-[0-9A-F]{6}")
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_TEXT_WORDS: Final = ("text", "body", "message", "content", "note", "caption", "comment", "reply",
                      "transcript", "words")
_SECRET_WORDS: Final = ("token", "secret", "password", "authorization", "bearer", "credential",
                        "api_key", "apikey", "signature", "cookie", "session")


class AuditRefused(ValueError):
    """What was given to :meth:`AdvisorAudit.record` cannot go into the audit trail; the
    message says which field and why, never the value.
    """


@dataclass(frozen=True, slots=True)
class _Rule:
    form: str
    accept: Callable[[Any], Any]
    """The value as stored; raises ``ValueError`` when the value does not have the form."""


def _one_of(values: Iterable[str]) -> _Rule:
    allowed = tuple(sorted(values))

    def accept(value: Any) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise ValueError

    return _Rule("one of " + ", ".join(allowed), accept)


def _matching(pattern: re.Pattern[str], form: str) -> _Rule:
    def accept(value: Any) -> str:
        if isinstance(value, str) and pattern.fullmatch(value):
            return value
        raise ValueError

    return _Rule(form, accept)


def _positive_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValueError


def _instant(value: Any) -> str:
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        value = datetime.fromisoformat(text)  # ValueError when it is no instant
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


DETAIL_KEYS: Final[Mapping[str, _Rule]] = {
    "sent": _one_of(SENT),
    "template": _matching(_TEMPLATE, "a template name (lowercase letters, digits, _; at most 64)"),
    "purpose": _one_of(PURPOSES | {SERVICE_REPLY}),
    "status": _one_of(STATUSES),
    "previous_status": _one_of(STATUSES),
    "from_advisor": _matching(_ADVISOR_ID, "an advisor id"),
    "to_advisor": _matching(_ADVISOR_ID, "an advisor id"),
    "scope": _one_of(SCOPES),
    "via": _one_of(("api", "console")),
    "due_at": _Rule("an aware instant (datetime or ISO 8601 with its offset)", _instant),
    "handoff_id": _Rule("a handoff's id (a positive integer)", _positive_int),
    "repair_id": _matching(_REPAIR_ID, "a repair request's reference (REP-YYYYMMDD-XXXXXX)"),
    "request_id": _matching(_REQUEST_ID, "an outbound request's id (32 hexadecimal digits)"),
}
"""The keys a row's detail may hold, each with the form of its value."""

LINK_KEYS: Final = frozenset({"handoff_id", "repair_id", "request_id"})
"""Detail keys that point at one of the client's records: dropped when she is erased."""


def _key_name(key: Any) -> str:
    """A key as an error may quote it: a plain name, else only that it is none."""
    return repr(key) if isinstance(key, str) and _KEY_NAME.fullmatch(key) else "(a key that is no plain name)"


def clean_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """``detail`` as the audit keeps it, each value checked against :data:`DETAIL_KEYS`;
    :class:`AuditRefused` for message text, a secret, an unknown key or a value out of its
    form (the error never quotes a value).
    """
    if detail is None:
        return {}
    if not isinstance(detail, Mapping):
        raise AuditRefused("advisor audit: detail must be a mapping of the allowed keys")
    clean: dict[str, Any] = {}
    for key, value in detail.items():
        rule = DETAIL_KEYS.get(key) if isinstance(key, str) else None
        if rule is None:
            lowered = key.lower() if isinstance(key, str) else ""
            if any(word in lowered for word in _SECRET_WORDS):
                why = "secrets are never kept in the audit"
            elif any(word in lowered for word in _TEXT_WORDS):
                why = "message text and notes are never kept in the audit"
            else:
                why = "unknown key; allowed: " + ", ".join(sorted(DETAIL_KEYS))
            raise AuditRefused(f"advisor audit: detail key {_key_name(key)} refused: {why}")
        if value is None:
            continue
        try:
            clean[key] = rule.accept(value)
        except (ValueError, TypeError):
            raise AuditRefused(f"advisor audit: detail {key!r} must be {rule.form}") from None
    return clean


def unlinked_detail(detail: Any) -> dict[str, Any]:
    """A row's detail once its client is erased: without the keys of :data:`LINK_KEYS`."""
    if not isinstance(detail, Mapping):
        return {}
    return {key: value for key, value in detail.items() if key not in LINK_KEYS}


def _bounded(value: str | None, name: str, limit: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise AuditRefused(f"advisor audit: {name} is required")
        return None
    if not isinstance(value, str):
        raise AuditRefused(f"advisor audit: {name} must be a string")
    value = value.strip()
    if not value or len(value) > limit or _CONTROL.search(value):
        raise AuditRefused(f"advisor audit: {name} must be 1 to {limit} printable characters")
    return value


metadata = MetaData()

advisor_audit_table = Table(
    "salon_advisor_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", AwareDateTime, nullable=False),
    Column("actor", String(ACTOR_LIMIT), nullable=False),  # the token's name
    Column("advisor_id", String(64)),
    Column("action", String(32), nullable=False),  # one of ACTIONS
    Column("conversation_id", String(CONVERSATION_LIMIT)),  # Rasa's sender id; NULL once erased
    Column("client_id", String(CLIENT_LIMIT)),  # the maison's id; NULL once erased
    Column("detail", JSON, nullable=False),  # DETAIL_KEYS only
    Index("ix_salon_advisor_audit_conversation", "conversation_id", "at"),
    Index("ix_salon_advisor_audit_client", "client_id", "at"),
    Index("ix_salon_advisor_audit_actor", "actor", "at"),
    Index("ix_salon_advisor_audit_at", "at"),
)
_A = advisor_audit_table.c


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of ``salon_advisor_audit``."""

    id: int
    at: datetime
    actor: str
    advisor_id: str | None
    action: str
    conversation_id: str | None
    client_id: str | None
    detail: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "advisor_id": self.advisor_id, "action": self.action,
                "conversation_id": self.conversation_id, "client_id": self.client_id,
                "detail": dict(self.detail)}


def _record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(m["id"], m["at"], m["actor"], m["advisor_id"], m["action"], m["conversation_id"],
                       m["client_id"], dict(m["detail"] or {}))


class AdvisorAudit(SqlTables):
    """``salon_advisor_audit``: the advisors' acts (see the module docstring)."""

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None, clock: Clock) -> None:
        super().__init__(url, engine=engine)
        self.clock = clock

    async def record(self, action: str, *, actor: str, advisor_id: str | None = None,
                     conversation_id: str | None = None, client_id: str | None = None,
                     detail: Mapping[str, Any] | None = None) -> AuditRecord:
        """Keep one act, at the clock's time. Everything is checked before the write:
        :class:`AuditRefused` for an unknown action, a detail out of :data:`DETAIL_KEYS`,
        an act about a client that names none, or a sign-in or sign-out that names one.
        """
        if action not in ACTIONS:
            raise AuditRefused(f"advisor audit: unknown action {_key_name(action)}; one of {', '.join(ACTIONS)}")
        who = _bounded(actor, "actor", ACTOR_LIMIT, required=True)
        assert who is not None
        if advisor_id is not None and not (isinstance(advisor_id, str) and _ADVISOR_ID.fullmatch(advisor_id)):
            raise AuditRefused("advisor audit: advisor_id must be an advisor id")
        conversation = _bounded(conversation_id, "conversation_id", CONVERSATION_LIMIT)
        client = _bounded(client_id, "client_id", CLIENT_LIMIT)
        if action in ABOUT_NOBODY and (conversation or client):
            raise AuditRefused(f"advisor audit: {action} is about no client: give no conversation or client id")
        if action not in ABOUT_NOBODY and not (conversation or client):
            raise AuditRefused(f"advisor audit: {action} needs the conversation id or the client id it is about")
        kept = clean_detail(detail)
        at = require_aware(self.clock.now(), "the audit clock's time").astimezone(timezone.utc)
        values = {"at": at, "actor": who, "advisor_id": advisor_id, "action": action,
                  "conversation_id": conversation, "client_id": client, "detail": kept}
        async with self.engine.begin() as conn:
            result = await conn.execute(advisor_audit_table.insert().values(**values))
        return AuditRecord(int(result.inserted_primary_key[0]), at, who, advisor_id, action, conversation,
                           client, kept)

    async def for_conversations(self, conversation_ids: Iterable[str]) -> list[AuditRecord]:
        """The acts about these conversations, oldest first."""
        ids = sorted(set(conversation_ids))
        if not ids:
            return []
        return await self._select(select(advisor_audit_table).where(_A.conversation_id.in_(ids))
                                  .order_by(_A.at, _A.id))

    async def for_client(self, client_id: str) -> list[AuditRecord]:
        """The acts about this client of the maison's book, oldest first."""
        return await self._select(select(advisor_audit_table).where(_A.client_id == client_id)
                                  .order_by(_A.at, _A.id))

    async def recent(self, limit: int = 100, actor: str | None = None) -> list[AuditRecord]:
        """The latest ``limit`` acts (of ``actor`` only, when given), newest first."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        query = select(advisor_audit_table).order_by(_A.at.desc(), _A.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(_A.actor == actor)
        return await self._select(query)

    async def _select(self, query: Any) -> list[AuditRecord]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]
