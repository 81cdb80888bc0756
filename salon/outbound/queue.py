"""Bot-initiated messages: the request, its validation and the durable queue.

Everything the maison starts (order updates, appointment reminders, restock alerts, an
advisor's follow-up, invitations) is an :class:`OutboundRequest`. It is stored in
``outbound_requests`` before the caller gets an answer, and only decided against the
client's window when a worker dispatches it (:mod:`salon.outbound.worker`).

The queue is that SQL table (SQLite by default, PostgreSQL in production):

- an idempotency key is unique: the same key enqueued twice is one request;
- a worker *claims* due rows with a lease (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
  several workers share the table without waiting on each other; SQLite: one write
  transaction). A worker that dies leaves its rows leased; once the lease has run out
  another worker claims them again;
- every send carries ``ob:<request id>:<attempt>`` to Meta as
  ``biz_opaque_callback_data`` and in Salon's outbound record, so a re-claimed request
  whose previous attempt may have reached Meta is first looked up there, and sent again
  only when nothing of it exists (see :meth:`OutboundQueue.attempt_trace`);
- ``outbound_events`` keeps the history of each request (queued, sent, parked …).

A request's *state* is one of :data:`STATES`; delivery (``delivered``, ``read``,
``failed`` asynchronously) is read from the outbound record of the message it became.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from salon.clock import Clock, from_us, to_us
from salon.guard.sender import FollowUp, SendOutcome
from salon.guard.sent import outbound_table
from salon.identity import ClientRef
from salon.outbound.budgets import PAUSED, campaigns_table
from salon.outbound.budgets import metadata as budgets_metadata
from salon.purposes import PURPOSES
from salon.storage.db import SqlTables, schema_lock
from salon.whatsapp.messages import OutgoingMessage, RenderError, render_response

__all__ = [
    "FINAL_STATES",
    "STATES",
    "Claimed",
    "InvalidRequest",
    "OutboundQueue",
    "OutboundRequest",
    "SHARDS",
    "RequestSpec",
    "Outcome",
    "follow_up_recorder",
    "origin_of",
    "outcome_of",
    "shard_of",
    "parse_origin",
    "parse_request",
]

QUEUED: Final = "queued"
_OUTCOME_FIELDS: Final = ("template", "wamid", "nudge_wamid", "parked_id", "error_code", "reason")
SENT_FREE_FORM: Final = "sent_free_form"
SENT_TEMPLATE: Final = "sent_template"
PARKED: Final = "parked"
NUDGED: Final = "nudged"
SENT_AFTER_REPLY: Final = "sent_after_reply"
TRIGGERED: Final = "triggered"
FAILED: Final = "failed"
REFUSED: Final = "refused"
EXPIRED: Final = "expired"
CANCELLED: Final = "cancelled"

STATES: Final = (QUEUED, SENT_FREE_FORM, SENT_TEMPLATE, PARKED, NUDGED, SENT_AFTER_REPLY,
                 TRIGGERED, FAILED, REFUSED, EXPIRED, CANCELLED)
#: States a worker never touches again (parked and nudged wait for the client).
FINAL_STATES: Final = frozenset(STATES) - {QUEUED}

MAX_KEY: Final = 200
MAX_PARAM: Final = 1024
_KEY = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,200}$")
_DIGITS = re.compile(r"^\+?[0-9]{6,20}$")
_BSUID = re.compile(r"^[A-Za-z0-9._-]{4,64}$")
_INTENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_LANG = re.compile(r"^[a-z]{2}(_[A-Z]{2})?$")
_ORIGIN = re.compile(r"^ob:([0-9a-f]{32}):([0-9]+)$")
REQUESTERS: Final = ("bot", "system", "advisor", "cli")
NO_ANSWER: Final = -2
"""The error code the guard records for a send that got no answer (it may have gone out)."""

metadata = MetaData()

requests_table = Table(
    "outbound_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("idempotency_key", String(MAX_KEY), nullable=False, unique=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("wa_id", String(32)),
    Column("user_id", String(200)),  # a BSUID: up to 135 characters
    Column("purpose", String(64), nullable=False),
    Column("content", JSON),
    Column("params", JSON, nullable=False),
    Column("language", String(8)),
    Column("trigger", JSON),
    Column("requested_by", String(120), nullable=False),
    Column("campaign_id", String(64)),
    Column("state", String(24), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("not_before_us", BigInteger, nullable=False),
    Column("deadline_us", BigInteger),
    Column("due_us", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until_us", BigInteger),
    Column("claimed_us", BigInteger),
    Column("template", String(200)),
    Column("wamid", String(200)),
    Column("nudge_wamid", String(200)),
    Column("parked_id", String(64)),
    Column("error_code", Integer),
    Column("reason", Text),
    Column("hit_131047", Integer, nullable=False, server_default=text("0")),
    Column("updated_us", BigInteger, nullable=False),
    # Which worker of several takes it (see shard_of): all of a client's requests go to
    # one worker, which paces that client alone.
    Column("shard", Integer, nullable=False, server_default=text("0")),
    Index("ix_outbound_requests_due", "state", "due_us"),
    Index("ix_outbound_requests_campaign", "campaign_id"),
    Index("ix_outbound_requests_wamid", "wamid"),
)

events_table = Table(
    "outbound_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("state", String(24), nullable=False),
    Column("detail", JSON),
    Index("ix_outbound_events_request", "request_id", "id"),
)

_R = requests_table.c
_E = events_table.c
_W = outbound_table.c
_PAUSED_CAMPAIGN = exists().where(campaigns_table.c.campaign_id == _R.campaign_id,
                                  campaigns_table.c.state == PAUSED)
"""The request belongs to a paused campaign (:mod:`salon.outbound.budgets`): not claimed."""


class InvalidRequest(ValueError):
    """A request that cannot be accepted; ``problems`` says why, field by field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


_sequence = itertools.count()


def _new_id(now_us: int) -> str:
    """32 hex digits that sort in creation order (time, then this process's sequence),
    so requests due at the same moment go out in the order they were asked for.
    """
    return f"{now_us:014x}{next(_sequence) % 4096:03x}{uuid.uuid4().hex[:15]}"


def origin_of(request_id: str, attempt: int) -> str:
    """The reference one attempt carries to Meta and into Salon's records."""
    return f"ob:{request_id}:{attempt}"


def parse_origin(origin: str | None) -> tuple[str, int] | None:
    """``ob:<request id>:<attempt>`` → ``(request id, attempt)``; None for any other origin."""
    match = _ORIGIN.match(origin or "")
    return (match.group(1), int(match.group(2))) if match else None


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A validated request, not stored yet."""

    client: ClientRef
    purpose: str
    idempotency_key: str
    requested_by: str
    content: dict[str, Any] | None = None
    """``{"text": …, "buttons": [...], "media": {...}}`` as given (validated)."""
    params: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    not_before: datetime | None = None
    deadline: datetime | None = None
    trigger: dict[str, Any] | None = None
    """``{"name": intent, "entities": {...}}``: the worker asks Rasa for the turn."""
    campaign_id: str | None = None

    def outgoing(self) -> OutgoingMessage:
        """The Cloud API message it would become now (as a plan weighs it; nothing sent)."""
        message = content_message(self.content) if self.content else None
        return OutgoingMessage(message or {}, purpose=self.purpose, params=dict(self.params),
                               language=self.language)


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """A stored request and its state, as the queue keeps it."""

    id: str
    idempotency_key: str
    client: ClientRef
    purpose: str
    content: dict[str, Any] | None
    params: dict[str, str]
    language: str | None
    trigger: dict[str, Any] | None
    requested_by: str
    campaign_id: str | None
    state: str
    attempts: int
    created_at: datetime
    not_before: datetime
    deadline: datetime | None
    due_at: datetime
    claimed_at: datetime | None
    template: str | None
    wamid: str | None
    nudge_wamid: str | None
    parked_id: str | None
    error_code: int | None
    reason: str | None
    hit_131047: bool
    updated_at: datetime
    delivery: str | None = None
    """The status of the message it became (sent, delivered, read, failed), if known."""

    def outgoing(self, attempt: int) -> OutgoingMessage:
        """The Cloud API message for one attempt (decided again by the guard)."""
        message = content_message(self.content) if self.content else None
        return OutgoingMessage(
            message or {}, purpose=self.purpose, params=dict(self.params),
            language=self.language, origin=origin_of(self.id, attempt),
        )

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id, "idempotency_key": self.idempotency_key,
            "client": {"phone_number_id": self.client.phone_number_id, "wa_id": self.client.wa_id,
                       "user_id": self.client.user_id},
            "purpose": self.purpose, "content": self.content, "params": self.params,
            "language": self.language, "trigger_intent": self.trigger,
            "requested_by": self.requested_by, "campaign_id": self.campaign_id,
            "state": self.state, "delivery": self.delivery, "attempts": self.attempts,
            "template": self.template, "wamid": self.wamid, "nudge_wamid": self.nudge_wamid,
            "error_code": self.error_code, "reason": self.reason,
            "created_at": iso(self.created_at), "not_before": iso(self.not_before),
            "deadline": iso(self.deadline), "due_at": iso(self.due_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Claimed:
    """A request a worker holds, with the attempt number this claim gives it."""

    request: OutboundRequest
    attempt: int
    previous_attempt_unfinished: bool
    """The last claim ran out without an outcome (its worker died): look for a trace of
    it before sending again."""


# --------------------------------------------------------------------------- validation


def content_message(content: Mapping[str, Any]) -> dict[str, Any]:
    """The single Cloud API message object for validated ``content``."""
    response: dict[str, Any] = {}
    if content.get("text"):
        response["text"] = content["text"]
    if content.get("buttons"):
        response["buttons"] = [{"title": b, "payload": b} for b in content["buttons"]]
    media = content.get("media")
    if media:
        response["attachment"] = {"type": media["type"], "link": media["link"],
                                  "caption": media.get("caption")}
    messages = render_response(response)
    if len(messages) != 1:
        raise RenderError("content must make exactly one WhatsApp message")
    return messages[0].message


def _parse_time(value: Any, name: str, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{name}: an ISO 8601 date-time with a time zone, e.g. 2026-11-25T09:00:00+01:00")
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{name}: {value!r} is not an ISO 8601 date-time")
        return None
    if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
        problems.append(f"{name}: {value!r} has no time zone")
        return None
    return parsed.astimezone(timezone.utc)


def _parse_text(raw: Any, problems: list[str]) -> str | None:
    """``content.text``: a non-empty string of at most 4096 characters."""
    if not isinstance(raw, str) or not raw.strip():
        problems.append("content.text: a non-empty string")
    elif len(raw) > 4096:
        problems.append("content.text: at most 4096 characters")
    else:
        return raw
    return None


def _parse_buttons(raw: Any, text: str | None, problems: list[str]) -> list[str] | None:
    """``content.buttons``: 1 to 3 distinct titles, under a ``text`` of at most 1024
    characters.
    """
    if (not isinstance(raw, list) or not 1 <= len(raw) <= 3
            or not all(isinstance(b, str) and 1 <= len(b.strip()) <= 20 for b in raw)):
        problems.append("content.buttons: 1 to 3 titles of 1-20 characters")
    elif len(set(raw)) != len(raw):
        problems.append("content.buttons: titles must differ")
    elif text is None:
        problems.append("content.buttons: buttons need a text")
    elif len(text) > 1024:
        problems.append("content.text: at most 1024 characters with buttons")
    else:
        return list(raw)
    return None


def _parse_media(raw: Any, problems: list[str]) -> dict[str, Any] | None:
    """``content.media``: its type, an https link and an optional caption."""
    if not isinstance(raw, Mapping) or raw.get("type") not in ("image", "video", "document", "audio"):
        problems.append("content.media: {type: image|video|document|audio, link: https URL}")
    elif not isinstance(raw.get("link"), str) or not raw["link"].startswith("https://"):
        problems.append("content.media.link: an https URL")
    elif raw.get("caption") is not None and not isinstance(raw.get("caption"), str):
        problems.append("content.media.caption: a string")
    else:
        return {k: raw[k] for k in ("type", "link", "caption") if raw.get(k) is not None}
    return None


def _parse_content(raw: Any, problems: list[str]) -> dict[str, Any] | None:
    """The request's free-form ``content`` (text, buttons and/or media), checked down to
    the one WhatsApp message it must make; None when absent or invalid.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append("content: an object with text, buttons and/or media")
        return None
    unknown = set(raw) - {"text", "buttons", "media"}
    if unknown:
        problems.append(f"content: unknown field(s) {sorted(unknown)}")
    out: dict[str, Any] = {}
    if raw.get("text") is not None:
        text_ = _parse_text(raw["text"], problems)
        if text_ is not None:
            out["text"] = text_
    if raw.get("buttons") is not None:
        buttons = _parse_buttons(raw["buttons"], out.get("text"), problems)
        if buttons is not None:
            out["buttons"] = buttons
    if raw.get("media") is not None:
        media = _parse_media(raw["media"], problems)
        if media is not None:
            out["media"] = media
        if "text" in out and "media" in out:
            problems.append("content: text or media, not both (put the words in media.caption)")
    if not out and not problems:
        problems.append("content: give text or media")
    if out and not problems:
        try:
            content_message(out)
        except RenderError as exc:
            problems.append(f"content: {exc}")
    return out or None


def _parse_client(raw: Any, default_pnid: str, problems: list[str]) -> ClientRef | None:
    if not isinstance(raw, Mapping):
        problems.append("client: an object with wa_id (digits) and/or user_id (BSUID)")
        return None
    unknown = set(raw) - {"wa_id", "user_id", "phone_number_id"}
    if unknown:
        problems.append(f"client: unknown field(s) {sorted(unknown)}")
    wa_id, user_id = raw.get("wa_id"), raw.get("user_id")
    pnid = raw.get("phone_number_id") or default_pnid
    if wa_id is not None and (not isinstance(wa_id, str) or not _DIGITS.match(wa_id)):
        problems.append("client.wa_id: the number's digits (6-20, country code first)")
        wa_id = None
    if user_id is not None and (not isinstance(user_id, str) or not _BSUID.match(user_id)):
        problems.append("client.user_id: a business-scoped user id")
        user_id = None
    if not isinstance(pnid, str) or not pnid.isdigit():
        problems.append("client.phone_number_id: the business number's id (digits); "
                        "set WA_PHONE_NUMBER_ID for the default")
        return None
    if not wa_id and not user_id:
        if not any(p.startswith("client.") for p in problems):
            problems.append("client: give wa_id or user_id")
        return None
    return ClientRef(pnid, user_id=user_id or None, wa_id=wa_id.lstrip("+") if wa_id else None)


def _parse_params(raw: Any, problems: list[str]) -> dict[str, str]:
    """The template ``params``: parameter names to non-empty texts of at most
    :data:`MAX_PARAM` characters (the valid ones; the others noted in ``problems``).
    """
    params: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        problems.append("params: an object of template parameters (name: text)")
        return params
    for key, value in raw.items():
        if not isinstance(key, str) or not re.match(r"^[a-z_][a-z0-9_]{0,63}$", key):
            problems.append(f"params: {key!r} is not a parameter name")
        elif not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
            problems.append(f"params.{key}: a non-empty text")
        elif len(str(value)) > MAX_PARAM:
            problems.append(f"params.{key}: at most {MAX_PARAM} characters")
        else:
            params[key] = str(value)
    return params


def _parse_times(
    body: Mapping[str, Any], now: datetime, problems: list[str]
) -> tuple[datetime | None, datetime | None]:
    """``(not_before, deadline)``, the deadline still ahead and after ``not_before``."""
    not_before = _parse_time(body.get("not_before"), "not_before", problems)
    deadline = _parse_time(body.get("deadline"), "deadline", problems)
    if deadline is not None and deadline <= now:
        problems.append("deadline: already passed")
    if deadline is not None and not_before is not None and deadline <= not_before:
        problems.append("deadline: must be after not_before")
    return not_before, deadline


def _parse_trigger(raw: Any, problems: list[str]) -> dict[str, Any] | None:
    """``trigger_intent``: ``{name, entities}`` for Rasa to turn into the message."""
    if raw is None:
        return None
    if (not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str)
            or not _INTENT.match(raw["name"])
            or not isinstance(raw.get("entities", {}), Mapping)
            or set(raw) - {"name", "entities"}):
        problems.append("trigger_intent: {name: an intent name, entities: {...}}")
        return None
    return {"name": raw["name"], "entities": dict(raw.get("entities") or {})}


def parse_request(
    body: Any,
    *,
    requested_by: str,
    now: datetime,
    default_phone_number_id: str | None = None,
    campaign_id: str | None = None,
) -> RequestSpec:
    """Validate one request body (the API's and the CLI's), or raise
    :class:`InvalidRequest` listing every problem.
    """
    problems: list[str] = []
    if not isinstance(body, Mapping):
        raise InvalidRequest(["the body must be a JSON object"])
    allowed = {"client", "purpose", "content", "params", "language", "not_before", "deadline",
               "idempotency_key", "trigger_intent"}
    unknown = set(body) - allowed
    if unknown:
        problems.append(f"unknown field(s) {sorted(unknown)}")
    pnid = default_phone_number_id or os.environ.get("WA_PHONE_NUMBER_ID", "")
    client = _parse_client(body.get("client"), pnid, problems)
    purpose = body.get("purpose")
    if purpose not in PURPOSES:
        problems.append(f"purpose: one of {sorted(PURPOSES)}")
    content = _parse_content(body.get("content"), problems)
    params = _parse_params(body.get("params") or {}, problems)
    language = body.get("language")
    if language is not None and (not isinstance(language, str) or not _LANG.match(language)):
        problems.append("language: a code such as fr or en_GB")
        language = None
    not_before, deadline = _parse_times(body, now, problems)
    key = body.get("idempotency_key")
    if key is None:
        key = f"auto:{uuid.uuid4().hex}"
    elif not isinstance(key, str) or not _KEY.match(key):
        problems.append("idempotency_key: 1-200 characters from letters, digits and ._:@/+=-")
    trigger = _parse_trigger(body.get("trigger_intent"), problems)
    if content is None and trigger is None and purpose in PURPOSES and not params:
        problems.append("give content, template params or trigger_intent: there is nothing to send")
    if problems:
        raise InvalidRequest(problems)
    assert client is not None and isinstance(key, str) and isinstance(purpose, str)
    return RequestSpec(client=client, purpose=purpose, idempotency_key=key, requested_by=requested_by,
                       content=content, params=params, language=language, not_before=not_before,
                       deadline=deadline, trigger=trigger, campaign_id=campaign_id)


# --------------------------------------------------------------------------- the queue


def _request(row: Any, delivery: str | None = None) -> OutboundRequest:
    m = row._mapping
    return OutboundRequest(
        id=m["id"], idempotency_key=m["idempotency_key"],
        client=ClientRef(m["phone_number_id"], user_id=m["user_id"], wa_id=m["wa_id"]),
        purpose=m["purpose"], content=m["content"], params=dict(m["params"] or {}),
        language=m["language"], trigger=m["trigger"], requested_by=m["requested_by"],
        campaign_id=m["campaign_id"], state=m["state"], attempts=m["attempts"],
        created_at=from_us(m["created_us"]),  # type: ignore[arg-type]
        not_before=from_us(m["not_before_us"]),  # type: ignore[arg-type]
        deadline=from_us(m["deadline_us"]), due_at=from_us(m["due_us"]),  # type: ignore[arg-type]
        claimed_at=from_us(m["claimed_us"]), template=m["template"], wamid=m["wamid"],
        nudge_wamid=m["nudge_wamid"], parked_id=m["parked_id"], error_code=m["error_code"],
        reason=m["reason"], hit_131047=bool(m["hit_131047"]),
        updated_at=from_us(m["updated_us"]),  # type: ignore[arg-type]
        delivery=delivery,
    )


SHARDS: Final = 4096
"""Requests carry ``shard_of(client)`` in ``0 … SHARDS-1``; worker ``i`` of ``n`` takes
the shards with ``shard % n == i``."""


def shard_of(client: ClientRef) -> int:
    """A stable number for the client (their phone number, else their BSUID), so that
    every request to one client lands with the same worker however many run.
    """
    ident = f"{client.phone_number_id}:{client.wa_id or client.user_id or ''}"
    return zlib.crc32(ident.encode("utf-8")) % SHARDS


class OutboundQueue(SqlTables):
    """The durable queue and the state of every request (see the module docstring)."""

    metadata = metadata

    async def initialize(self) -> None:
        await super().initialize()
        # A request's delivery is read from the outbound record it became.
        async with self.engine.begin() as conn:
            await schema_lock(conn)
            await conn.run_sync(outbound_table.metadata.create_all)
            # The claim skips the requests of paused campaigns: their table must exist.
            await conn.run_sync(budgets_metadata.create_all)
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns(requests_table.name)})
            if "shard" not in columns:
                # A queue created before requests were sharded: its rows go to worker 0.
                await conn.execute(text(f"ALTER TABLE {requests_table.name} "
                                        "ADD COLUMN shard INTEGER NOT NULL DEFAULT 0"))

    # ------------------------------------------------------------------ enqueue
    async def enqueue(self, spec: RequestSpec, now: datetime) -> tuple[OutboundRequest, bool]:
        """Store ``spec``; returns the request and whether it is new (False: the
        idempotency key was known, and the first request is returned unchanged).
        """
        created = await self.enqueue_many([spec], now)
        return created[0]

    async def enqueue_many(
        self, specs: Sequence[RequestSpec], now: datetime,
        *, within: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> list[tuple[OutboundRequest, bool]]:
        """Store several requests in one transaction (a campaign): all or nothing.
        ``within`` writes what belongs with them (the campaign's row) in that transaction,
        before them.
        """
        now_us = to_us(now, "now")
        rows: list[dict[str, Any]] = []
        for spec in specs:
            not_before_us = to_us(spec.not_before, "not_before") if spec.not_before else now_us
            rows.append({
                "id": _new_id(now_us), "idempotency_key": spec.idempotency_key,
                "phone_number_id": spec.client.phone_number_id, "wa_id": spec.client.wa_id,
                "user_id": spec.client.user_id, "purpose": spec.purpose, "content": spec.content,
                "params": spec.params, "language": spec.language, "trigger": spec.trigger,
                "requested_by": spec.requested_by, "campaign_id": spec.campaign_id,
                "state": QUEUED, "attempts": 0, "created_us": now_us,
                "not_before_us": not_before_us,
                "deadline_us": to_us(spec.deadline, "deadline") if spec.deadline else None,
                "due_us": max(not_before_us, now_us), "hit_131047": 0, "updated_us": now_us,
                "shard": shard_of(spec.client),
            })
        stmt = self._insert(requests_table).on_conflict_do_nothing(index_elements=["idempotency_key"])
        fresh: set[str] = set()
        async with self.engine.begin() as conn:
            if within is not None:
                await within(conn)
            for row in rows:
                if (await conn.execute(stmt, row)).rowcount == 1:
                    fresh.add(row["id"])
            if fresh:
                await conn.execute(events_table.insert(), [
                    {"request_id": row["id"], "at_us": now_us, "state": QUEUED,
                     "detail": {"requested_by": row["requested_by"]}}
                    for row in rows if row["id"] in fresh
                ])
            keys = [row["idempotency_key"] for row in rows]
            found = {r.idempotency_key: r for r in (await conn.execute(
                select(requests_table).where(_R.idempotency_key.in_(keys)))).all()}
        return [(_request(found[row["idempotency_key"]]), row["id"] in fresh) for row in rows]

    # ------------------------------------------------------------------ claim
    async def claim(
        self, worker: str, now: datetime, *, limit: int = 50, lease: timedelta = timedelta(seconds=60),
        shard: tuple[int, int] = (0, 1),
    ) -> list[Claimed]:
        """Take up to ``limit`` due requests for ``lease``; each claim is one attempt.
        ``shard=(i, n)``: only the requests of worker ``i`` of ``n``.
        """
        index, count = shard
        if not 0 <= index < count:
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
        now_us = to_us(now, "now")
        until_us = now_us + int(lease.total_seconds() * 1_000_000)
        due = and_(_R.state == QUEUED, _R.due_us <= now_us,
                   or_(_R.lease_until_us.is_(None), _R.lease_until_us < now_us),
                   or_(_R.campaign_id.is_(None), ~_PAUSED_CAMPAIGN))
        if count > 1:
            due = and_(due, (_R.shard % count) == index)
        pick = select(_R.id).where(due).order_by(_R.due_us, _R.id).limit(limit)
        if self._dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        async with self.engine.begin() as conn:
            ids = [r[0] for r in (await conn.execute(pick)).all()]
            if not ids:
                return []
            rows = (await conn.execute(select(requests_table).where(_R.id.in_(ids)))).all()
            await conn.execute(
                update(requests_table).where(_R.id.in_(ids)).values(
                    lease_owner=worker, lease_until_us=until_us, claimed_us=now_us,
                    attempts=_R.attempts + 1, updated_us=now_us))
        out = []
        for row in sorted(rows, key=lambda r: (r.due_us, r.id)):
            request = _request(row)
            unfinished = row.lease_owner is not None or row.reason == "in_doubt"
            out.append(Claimed(replace(request, attempts=request.attempts + 1), request.attempts + 1,
                               unfinished))
        return out

    async def renew(self, request_ids: Sequence[str], worker: str, now: datetime, lease: timedelta) -> int:
        """Extend ``worker``'s leases on the requests it still holds (a heartbeat while
        a batch is being sent); returns how many it still holds.
        """
        if not request_ids:
            return 0
        until_us = to_us(now, "now") + int(lease.total_seconds() * 1_000_000)
        async with self.single() as conn:
            result = await conn.execute(
                update(requests_table)
                .where(_R.id.in_(list(request_ids)), _R.lease_owner == worker, _R.state == QUEUED)
                .values(lease_until_us=until_us))
        return int(result.rowcount or 0)

    async def attempt_trace(self, request_id: str, attempt: int) -> dict[str, Any] | None:
        """What Salon's outbound record knows of one attempt: the rows the guard wrote
        (payload ``origin``) and the status webhooks that came back for it (Meta returns
        ``biz_opaque_callback_data``), in whatever order they were written. None: nothing
        of it that we know of.

        Evidence that Meta accepted the attempt wins, whatever came after it: a row with
        a wamid (the send's answer, or a status webhook; ``accepted`` is True, even if
        the message failed later). Then its parking or refusal by the guard. Then a
        refusal by Meta (``status`` ``failed``: it was not sent). A send that got no
        answer (:class:`~salon.whatsapp.errors.NoResponseError`, code -2) proves nothing either
        way: alone, it gives ``status`` ``in_doubt``.
        """
        origin = origin_of(request_id, attempt)
        query = (
            select(outbound_table)
            .where(or_(_W.payload["origin"].as_string() == origin,
                       _W.payload["callback"].as_string().in_([f"{origin}#free_form", f"{origin}#template"])))
            .order_by(_W.id)
        )
        async with self.engine.connect() as conn:
            rows = [r._mapping for r in (await conn.execute(query)).all()]
        if not rows:
            return None
        accepted = [r for r in rows if r["wamid"] is not None]
        if accepted:
            # The guard's own record of it says what it was; a status-only row the send said.
            row = ([r for r in accepted if r["kind"] != "status_only"] or accepted)[-1]
            kind = row["kind"]
            if kind == "status_only":
                kind = str((row["payload"] or {}).get("callback", "")).rpartition("#")[2] or kind
            return {"wamid": row["wamid"], "kind": kind, "status": row["status"], "accepted": True,
                    "template": row["template"], "error_code": row["error_code"]}
        settled = [r for r in rows if r["status"] in ("parked", "refused")]
        refused = [r for r in rows if r["status"] == "failed" and r["error_code"] != NO_ANSWER]
        row = (settled or refused or rows)[-1]
        status = row["status"] if settled or refused else "in_doubt"
        return {"wamid": None, "kind": row["kind"], "status": status, "accepted": False,
                "template": row["template"], "error_code": row["error_code"]}

    # ------------------------------------------------------------------ outcomes
    async def finish(
        self, request_id: str, state: str, now: datetime, *, worker: str | None = None,
        template: str | None = None, wamid: str | None = None, nudge_wamid: str | None = None,
        parked_id: str | None = None, error_code: int | None = None, reason: str | None = None,
        hit_131047: bool = False, detail: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a final state (the lease is released). With ``worker``, only while
        that worker still holds the request; returns whether it applied.
        """
        if state not in FINAL_STATES:
            raise ValueError(f"{state!r} is not a final state")
        values: dict[str, Any] = {
            "state": state, "template": template, "wamid": wamid, "nudge_wamid": nudge_wamid,
            "parked_id": parked_id, "error_code": error_code, "reason": reason,
            "lease_owner": None, "lease_until_us": None, "updated_us": to_us(now, "now"),
        }
        if hit_131047:
            values["hit_131047"] = 1
        return await self._transition(request_id, values, state, now, worker, detail)

    async def finish_many(self, outcomes: Sequence[tuple[str, str, dict[str, Any]]], now: datetime,
                          *, worker: str) -> list[bool]:
        """Record several final states in one transaction: ``(request_id, state, fields)``
        with the fields of :meth:`finish`. Returns, per request, whether ``worker`` still
        held it (False: another worker took it over and adopts the attempt's trace).

        Three statements whatever the number: which of them the worker still holds
        (locked on PostgreSQL; SQLite's transaction holds the write lock from its
        start), one UPDATE executed for all of them, one INSERT of their events.
        """
        if not outcomes:
            return []
        for _, state, _ in outcomes:
            if state not in FINAL_STATES:
                raise ValueError(f"{state!r} is not a final state")
        now_us = to_us(now, "now")
        ids = list(dict.fromkeys(request_id for request_id, _, _ in outcomes))
        async with self.engine.begin() as conn:
            held: set[str] = set()
            for start in range(0, len(ids), 500):
                pick = select(_R.id).where(_R.id.in_(ids[start:start + 500]), _R.lease_owner == worker)
                if self._dialect == "postgresql":
                    pick = pick.with_for_update()
                held.update(r[0] for r in (await conn.execute(pick)).all())
            applied: list[bool] = []
            params: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for request_id, state, fields in outcomes:
                moved = request_id in held
                held.discard(request_id)  # a request listed twice is finished once
                applied.append(moved)
                if not moved:
                    continue
                values = {k: fields.get(k) for k in _OUTCOME_FIELDS}
                params.append({"b_id": request_id, "b_owner": worker, "b_state": state, "b_now": now_us,
                               **{f"b_{k}": v for k, v in values.items()}})
                detail = {k: values[k] for k in ("template", "wamid", "error_code", "reason")
                          if values[k] is not None}
                events.append({"request_id": request_id, "at_us": now_us, "state": state, "detail": detail})
            if params:
                await conn.execute(
                    update(requests_table)
                    .where(_R.id == bindparam("b_id"), _R.lease_owner == bindparam("b_owner"))
                    .values(state=bindparam("b_state"), lease_owner=None, lease_until_us=None,
                            updated_us=bindparam("b_now"),
                            **{k: bindparam(f"b_{k}") for k in _OUTCOME_FIELDS}),
                    params)
                await conn.execute(events_table.insert(), events)
        return applied

    async def retry(
        self, request_id: str, due: datetime, now: datetime, *, worker: str | None = None,
        error_code: int | None = None, reason: str, count_attempt: bool = True,
    ) -> bool:
        """Put a claimed request back in the queue, due at ``due`` (backoff, pacing,
        quiet hours). ``count_attempt=False`` gives back the attempt the claim took.
        """
        values: dict[str, Any] = {
            "state": QUEUED, "due_us": to_us(due, "due"), "lease_owner": None,
            "lease_until_us": None, "reason": reason, "updated_us": to_us(now, "now"),
        }
        if error_code is not None:
            values["error_code"] = error_code
        if not count_attempt:
            values["attempts"] = _R.attempts - 1
        return await self._transition(request_id, values, "retry" if count_attempt else "deferred",
                                      now, worker, {"due": due.isoformat(), "reason": reason,
                                                    "error_code": error_code})

    async def cancel(self, request_id: str, now: datetime, reason: str) -> bool:
        """Cancel a request that is still queued (not while a worker holds it)."""
        now_us = to_us(now, "now")
        async with self.engine.begin() as conn:
            moved = (await conn.execute(
                update(requests_table)
                .where(_R.id == request_id, _R.state == QUEUED,
                       or_(_R.lease_until_us.is_(None), _R.lease_until_us < now_us))
                .values(state=CANCELLED, reason=reason, lease_owner=None, lease_until_us=None,
                        updated_us=now_us))).rowcount == 1
            if moved:
                await conn.execute(events_table.insert().values(
                    request_id=request_id, at_us=now_us, state=CANCELLED, detail={"reason": reason}))
        return moved

    async def follow_up(
        self, origin: str, state: str, now: datetime, *, wamid: str | None = None,
        template: str | None = None, nudge_wamid: str | None = None, error_code: int | None = None,
        reason: str | None = None, cause: str,
    ) -> bool:
        """What happened to a request after its worker let go: its parked content went
        out when the client wrote again, or a 131047 re-routed it. Applies to the
        request named by ``origin``, once a worker has let go of it.
        """
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        request_id = parsed[0]
        values: dict[str, Any] = {"state": state, "updated_us": to_us(now, "now")}
        for name, value in (("wamid", wamid), ("template", template), ("nudge_wamid", nudge_wamid),
                            ("error_code", error_code), ("reason", reason)):
            if value is not None:
                values[name] = value
        if cause == "rerouted_131047":
            values["hit_131047"] = 1
        now_us = to_us(now, "now")
        async with self.engine.begin() as conn:
            moved = (await conn.execute(
                update(requests_table)
                .where(_R.id == request_id, _R.state != QUEUED)
                .values(**values))).rowcount == 1
            if moved:
                await conn.execute(events_table.insert().values(
                    request_id=request_id, at_us=now_us, state=state,
                    detail={"cause": cause, "wamid": wamid, "template": template,
                            "error_code": error_code}))
        return moved

    async def _transition(
        self, request_id: str, values: dict[str, Any], event: str, now: datetime,
        worker: str | None, detail: Mapping[str, Any] | None,
    ) -> bool:
        condition = _R.id == request_id
        if worker is not None:
            condition = and_(condition, _R.lease_owner == worker)
        async with self.engine.begin() as conn:
            moved = (await conn.execute(update(requests_table).where(condition).values(**values))).rowcount == 1
            if moved:
                clean = {k: v for k, v in (detail or {}).items() if v is not None}
                for name in ("template", "wamid", "error_code", "reason"):
                    if values.get(name) is not None and name not in clean:
                        clean[name] = values[name]
                await conn.execute(events_table.insert().values(
                    request_id=request_id, at_us=to_us(now, "now"), state=event,
                    detail=json.loads(json.dumps(clean, default=str))))
        return moved

    # ------------------------------------------------------------------ reading
    async def get(self, request_id: str) -> OutboundRequest | None:
        query = (
            select(requests_table, _W.status.label("delivery_status"))
            .select_from(requests_table.outerjoin(outbound_table, _W.wamid == _R.wamid))
            .where(_R.id == request_id)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _request(row, _delivery(row.delivery_status)) if row is not None else None

    async def by_key(self, idempotency_key: str) -> OutboundRequest | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(_R.id).where(_R.idempotency_key == idempotency_key))).first()
        return await self.get(row.id) if row is not None else None

    async def events(self, request_id: str) -> list[dict[str, Any]]:
        query = select(events_table).where(_E.request_id == request_id).order_by(_E.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [{"at": from_us(r.at_us).isoformat(), "state": r.state, "detail": r.detail}  # type: ignore[union-attr]
                for r in rows]

    async def list(
        self, *, state: str | None = None, campaign_id: str | None = None, limit: int = 100
    ) -> list[OutboundRequest]:
        query = (
            select(requests_table, _W.status.label("delivery_status"))
            .select_from(requests_table.outerjoin(outbound_table, _W.wamid == _R.wamid))
            .order_by(_R.created_us.desc()).limit(limit)
        )
        if state is not None:
            query = query.where(_R.state == state)
        if campaign_id is not None:
            query = query.where(_R.campaign_id == campaign_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_request(r, _delivery(r.delivery_status)) for r in rows]

    async def campaign_counts(self, campaign_id: str) -> dict[str, int]:
        """How many of a campaign's requests are in each state (those with none left out)."""
        query = select(_R.state, func.count()).where(_R.campaign_id == campaign_id).group_by(_R.state)
        async with self.engine.connect() as conn:
            return {str(state): int(count) for state, count in (await conn.execute(query)).all()}

    async def metrics(self) -> dict[str, Any]:
        """Counts per state and delivery, and the rates operators watch."""
        join = requests_table.outerjoin(outbound_table, _W.wamid == _R.wamid)
        async with self.engine.connect() as conn:
            by_state = dict((await conn.execute(
                select(_R.state, func.count()).group_by(_R.state))).all())
            by_delivery = dict((await conn.execute(
                select(_W.status, func.count()).select_from(join)
                .where(_R.wamid.is_not(None)).group_by(_W.status))).all())
            hit = (await conn.execute(select(func.count()).where(_R.hit_131047 == 1))).scalar_one()
            retried = (await conn.execute(select(func.count()).where(_R.attempts > 1))).scalar_one()
        counts = {state: int(by_state.get(state, 0)) for state in STATES}
        free, tmpl = counts[SENT_FREE_FORM], counts[SENT_TEMPLATE]
        parked = counts[PARKED] + counts[NUDGED] + counts[SENT_AFTER_REPLY]
        decided = free + tmpl + parked
        with_message = sum(int(v) for v in by_delivery.values())
        delivered = sum(int(by_delivery.get(s, 0)) for s in ("delivered", "read", "played"))

        def rate(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        return {
            "requests": sum(counts.values()),
            "states": counts,
            "delivery": {str(k): int(v) for k, v in by_delivery.items()},
            "retried": int(retried),
            "rates": {
                "fallback_rate": rate(tmpl, decided),
                "park_rate": rate(parked, decided),
                "rate_131047": rate(int(hit), decided),
                "delivery_rate": rate(delivered, with_message),
            },
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """A send-time guard's answer as a request state."""

    state: str
    template: str | None = None
    wamid: str | None = None
    nudge_wamid: str | None = None
    parked_id: str | None = None
    error_code: int | None = None
    reason: str | None = None


def outcome_of(outcome: SendOutcome, *, after_reply: bool = False) -> Outcome:
    """The request state one :class:`~salon.guard.sender.SendOutcome` means."""
    if outcome.action == "free_form":
        return Outcome(SENT_AFTER_REPLY if after_reply else SENT_FREE_FORM, wamid=outcome.wamid)
    if outcome.action == "template":
        return Outcome(SENT_AFTER_REPLY if after_reply else SENT_TEMPLATE, template=outcome.template,
                       wamid=outcome.wamid)
    if outcome.action == "parked":
        return Outcome(NUDGED if outcome.nudge_wamid else PARKED, template=outcome.template,
                       nudge_wamid=outcome.nudge_wamid, parked_id=outcome.extra.get("parked_id"),
                       reason=outcome.reason)
    if outcome.action == "refused":
        return Outcome(REFUSED, reason=outcome.reason)
    code = outcome.error.code if outcome.error is not None else None
    return Outcome(FAILED, error_code=code, reason=outcome.reason or None)


def follow_up_recorder(queue: OutboundQueue, clock: Clock) -> FollowUp:
    """The guard's follow-up hook: a parked or re-routed outbound request's state moves
    on where the channel sent it (see :class:`~salon.guard.sender.GuardedSender`).
    """

    async def record(origin: str, outcome: SendOutcome, cause: str) -> None:
        result = outcome_of(outcome, after_reply=cause == "parked_delivered")
        await queue.follow_up(
            origin, result.state, clock.now(), wamid=result.wamid, template=result.template,
            nudge_wamid=result.nudge_wamid, error_code=result.error_code, reason=result.reason,
            cause=cause,
        )

    return record


def _delivery(status: str | None) -> str | None:
    if status in (None, "pending", "parked", "refused", "error"):
        return None
    return "accepted" if status == "held_for_quality_assessment" else status
