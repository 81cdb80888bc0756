"""The advisor API's logic: a client advisor lists the conversations handed to them
(with each client's window), reads a transcript, replies through the send-time guard,
and hands the conversation back to the assistant. They also follow their clients'
repair requests (``salon.advisors.repairs``): the list with each client's window, one request
with its history, and a status change with a note; a change the client should know of
(received, in progress, ready) is told to them through the same guard: free-form while
their window is open, else the approved ``aftercare_ready`` template for a piece ready for
collection, or parked behind the nudge template for the other steps.

Every call carries ``Authorization: Bearer <token>`` checked by :mod:`salon.access.tokens`
with scope ``advisor``: an advisor sees only the conversations of clients assigned to
them, a ``manager`` sees all; no or an unknown token is 401, a token without the scope
or for another advisor's client is 403 (checked before anything about the conversation
is said, so a 404 tells nothing to a stranger).

The conversation store is Rasa's (the transcript, the pause and the resume); this module
sees it through the small :class:`Transcripts` protocol that the WhatsApp channel
implements over the agent's tracker store (``connectors/advisor_api.py``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from salon.access.tokens import AccessDenied, Principal, TokenBook
from salon.advisors.handoff import Handoff, HandoffBook
from salon.advisors.repairs import (
    NOTIFIED_STATUSES,
    STATUSES,
    RepairBook,
    RepairClosed,
    RepairRequest,
    status_message,
)
from salon.clock import Clock
from salon.conversation.language import supported
from salon.conversation.phrasing import address, gender_of
from salon.guard.sender import SendOutcome
from salon.identity import ClientRef
from salon.integrations.bookings import Bookings
from salon.integrations.crm import ClientRecord, Crm, CrmUnavailable
from salon.outbound.queue import InvalidRequest, OutboundRequest, RequestSpec, parse_request
from salon.purposes import SERVICE_REPLY
from salon.whatsapp.addressing import is_bsuid
from salon.whatsapp.messages import MAX_TEXT, OutgoingMessage
from salon.window.state import SessionStore

logger = logging.getLogger(__name__)

DEFAULT_ZONE = "Europe/Paris"
"""The maison's time zone, for a client the book does not place."""
MAX_FOLLOW_UP = timedelta(days=90)

__all__ = ["AdvisorDesk", "Caller", "DeskAnswer", "DeskSender", "Transcripts"]

_ADVISOR_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""An advisor's id, as the maison's book and the audit trail keep it."""
_TEMPLATE_NAME: Final = re.compile(r"[a-z0-9_]{1,64}")
"""A template's name as Meta forms it (lowercase letters, digits, _), within the audit trail's length."""

Caller = str | Principal | None
"""Who calls the desk: an ``Authorization`` header (the advisor API), or the principal of a
console session that was checked when it signed in and again on this request."""


class DeskSender(Protocol):
    """What the desk sends through: the send-time guard, a ``GuardedSender`` or, when the
    guard runs in the companion process, its ``RemoteGuard``.
    """

    async def send(self, ref: ClientRef, out: OutgoingMessage) -> SendOutcome:
        """Send ``out`` to ``ref`` through the guard; the guard's outcome."""


class Transcripts(Protocol):
    """The conversation store as the desk sees it (Rasa's tracker store, through the channel)."""

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's messages, oldest first: ``{"at", "from", "text"}`` with
        ``from`` one of ``client``, ``assistant``, ``advisor``, ``system``.
        """

    async def record_advisor_message(self, conversation_id: str, text: str, advisor: str) -> None:
        """Keep the advisor's reply in the conversation (so the bot sees it later)."""

    async def pause(self, conversation_id: str) -> None:
        """An advisor takes the conversation over: the assistant stops answering
        (``ConversationPaused``).
        """

    async def resume(self, conversation_id: str) -> None:
        """Hand the conversation back to the assistant (``ConversationResumed``)."""


class FollowUpQueue(Protocol):
    """Where a follow-up waits for its moment: the outbound engine's queue."""

    async def enqueue(self, spec: RequestSpec, now: datetime) -> tuple[OutboundRequest, bool]:
        """Store the request (idempotent on its key): (the request, whether it is new)."""


class AuditTrail(Protocol):
    """Where every advisor action is kept (who, what, when): :mod:`salon.advisors.audit`."""

    async def record(self, action: str, *, actor: str, advisor_id: str | None = None,
                     conversation_id: str | None = None, client_id: str | None = None,
                     detail: Mapping[str, Any] | None = None) -> Any:
        """Keep one action, at the trail's clock's time."""


@dataclass(frozen=True)
class DeskAnswer:
    """An API answer: the HTTP status and the JSON body."""

    status: int
    body: dict[str, Any]


def _error(status: int, reason: str) -> DeskAnswer:
    return DeskAnswer(status, {"error": reason})


class AdvisorDesk:
    """The advisor API's routes, each checked against the caller's token (see the module
    docstring).
    """

    def __init__(self, *, tokens: TokenBook, handoffs: HandoffBook, sessions: SessionStore,
                 sender: DeskSender, transcripts: Transcripts, clock: Clock,
                 phone_number_id: str, repairs: RepairBook | None = None, crm: Crm | None = None,
                 bookings: Bookings | None = None, audit: AuditTrail | None = None,
                 advisor_ids: frozenset[str] | None = None, outbound: FollowUpQueue | None = None) -> None:
        self.tokens = tokens
        self.handoffs = handoffs
        self.sessions = sessions
        self.sender = sender
        self.transcripts = transcripts
        self.clock = clock
        self.phone_number_id = phone_number_id
        self.repairs = repairs
        self.crm = crm
        self.bookings = bookings
        self.audit = audit
        self.advisor_ids = advisor_ids
        self.outbound = outbound

    # ------------------------------------------------------------------ helpers
    async def _audit(self, principal: Principal, action: str, *, via: str, conversation_id: str | None = None,
                     client_id: str | None = None, **detail: Any) -> None:
        if self.audit is None:
            return
        try:
            await self.audit.record(action, actor=principal.name, advisor_id=principal.advisor_id,
                                    conversation_id=conversation_id, client_id=client_id,
                                    detail={"via": via, **{k: v for k, v in detail.items() if v is not None}})
        except ValueError as exc:  # the act is done; a trail that refuses it is a bug to see
            logger.error("advisor audit refused %s by %s: %s", action, principal.name, exc)

    @staticmethod
    def _via(authorization: Caller) -> str:
        """Where the call came from, for the audit trail."""
        return "console" if isinstance(authorization, Principal) else "api"

    def _principal(self, authorization: Caller) -> Principal:
        if isinstance(authorization, Principal):
            authorization.require("advisor")
            return authorization
        return self.tokens.check(authorization, "advisor")

    async def _visible(self, principal: Principal, conversation_id: str) -> Handoff | DeskAnswer:
        handoff = await self.handoffs.latest_for(conversation_id)
        if handoff is None:
            if principal.is_manager:
                return _error(404, "no conversation handed to an advisor under that id")
            return _error(403, "not one of your conversations")
        if not principal.may_see_advisor(handoff.advisor_id):
            logger.warning("advisor API: %s refused conversation %s (advisor %s)",
                           principal.name, conversation_id, handoff.advisor_id)
            return _error(403, "not one of your conversations")
        return handoff

    def _ref(self, handoff: Handoff) -> ClientRef | None:
        if not handoff.wa_id and not handoff.user_id:
            return None
        return ClientRef(handoff.phone_number_id or self.phone_number_id,
                         user_id=handoff.user_id, wa_id=handoff.wa_id)

    async def _window(self, handoff: Handoff) -> dict[str, Any]:
        return await self._window_of(self._ref(handoff))

    async def _window_of(self, ref: ClientRef | None) -> dict[str, Any]:
        state = await self.sessions.get(ref) if ref is not None else None
        if state is None:
            return {"open": False, "closes_at": None, "can_send_free_form": False}
        window = state.window(self.clock.now())
        return {"open": window.is_open,
                "closes_at": window.closes_at.isoformat() if window.closes_at else None,
                "can_send_free_form": window.can_send_free_form}

    async def _guarded(self, authorization: Caller, conversation_id: str,
                       ) -> tuple[Principal, Handoff] | DeskAnswer:
        try:
            principal = self._principal(authorization)
        except AccessDenied as exc:
            return _error(exc.status, exc.reason)
        found = await self._visible(principal, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        return principal, found

    # ------------------------------------------------------------------ routes
    async def conversations(self, authorization: Caller, *, include_resolved: bool = False) -> DeskAnswer:
        """GET /advisor/conversations: the handoffs of the advisor's clients (a manager's:
        all), newest first, each with the client's window.
        """
        try:
            principal = self._principal(authorization)
        except AccessDenied as exc:
            return _error(exc.status, exc.reason)
        items = await self.handoffs.listing(
            advisor_id=None if principal.is_manager else principal.advisor_id,
            include_resolved=include_resolved)
        out = [{**h.as_json(), "window": await self._window(h)} for h in items]
        return DeskAnswer(200, {"conversations": out})

    async def conversation(self, authorization: Caller, conversation_id: str) -> DeskAnswer:
        """GET /advisor/conversations/<id>: the handoff, the window and the transcript."""
        found = await self._guarded(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        _, handoff = found
        return DeskAnswer(200, {**handoff.as_json(), "window": await self._window(handoff),
                                "transcript": await self.transcripts.transcript(conversation_id)})

    async def reply(self, authorization: Caller, conversation_id: str,
                    body: Mapping[str, Any] | None) -> DeskAnswer:
        """POST /advisor/conversations/<id>/reply ``{"text": "..."}``: free-form while the
        client's window is open, else parked behind the approved nudge template.
        """
        found = await self._guarded(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, handoff = found
        text = body.get("text") if isinstance(body, Mapping) else None
        if not isinstance(text, str) or not text.strip():
            return _error(400, 'expected a JSON body {"text": "<your reply>"}')
        if len(text) > MAX_TEXT:
            return _error(400, f"a reply holds at most {MAX_TEXT} characters")
        if handoff.status != "open":
            return _error(409, "the conversation is back with the assistant; it was not sent")
        ref = self._ref(handoff)
        if ref is None:
            return _error(409, "this conversation has no WhatsApp recipient")
        outcome = await self.sender.send(ref, OutgoingMessage(
            {"type": "text", "text": {"body": text.strip()}}, purpose=SERVICE_REPLY,
            utter_action="advisor_reply", language=handoff.language, origin=f"advisor:{principal.name}"))
        if outcome.action in ("free_form", "template", "parked"):
            await self.transcripts.record_advisor_message(conversation_id, text.strip(), principal.name)
        await self._audit(principal, "reply", via=self._via(authorization), conversation_id=conversation_id,
                          client_id=handoff.client_id, sent=outcome.action, template=outcome.template,
                          handoff_id=handoff.id)
        status = {"free_form": 200, "template": 200, "parked": 202, "refused": 409}.get(outcome.action, 502)
        return DeskAnswer(status, {"sent": outcome.action, "wamid": outcome.wamid,
                                   "template": outcome.template, "nudge_wamid": outcome.nudge_wamid,
                                   "reason": outcome.reason,
                                   "window": await self._window(handoff)})

    async def resume(self, authorization: Caller, conversation_id: str) -> DeskAnswer:
        """POST /advisor/conversations/<id>/resume: the assistant takes over again."""
        found = await self._guarded(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, handoff = found
        resolved = await self.handoffs.resolve(conversation_id, by=principal.name, now=self.clock.now())
        await self.transcripts.resume(conversation_id)
        await self._audit(principal, "hand_back", via=self._via(authorization), conversation_id=conversation_id,
                          client_id=handoff.client_id, handoff_id=handoff.id)
        return DeskAnswer(200, (resolved or handoff).as_json())

    # ------------------------------------------------------------------ the console's acts
    def _conversation_ref(self, conversation_id: str) -> ClientRef | None:
        """A conversation's WhatsApp address (its id is the BSUID or the number it began with)."""
        if is_bsuid(conversation_id):
            return ClientRef(self.phone_number_id, user_id=conversation_id)
        digits = conversation_id.lstrip("+")
        return ClientRef(self.phone_number_id, wa_id=digits) if digits.isdigit() else None

    async def access(self, authorization: Caller, conversation_id: str,
                     ) -> tuple[Principal, Handoff | None, ClientRecord | None] | DeskAnswer:
        """Whether the caller may work on a conversation, handed over or not: while it is
        handed over, the advisor it is with (a reassignment moves it); otherwise the
        advisor of the client in the book or of its last handoff; a manager, always.
        (principal, latest handoff, client record) or the refusal (401, 403; 404 for a
        manager when Salon knows nothing of it).
        """
        try:
            principal = self._principal(authorization)
        except AccessDenied as exc:
            return _error(exc.status, exc.reason)
        handoff = await self.handoffs.latest_for(conversation_id)
        ref = self._conversation_ref(conversation_id)
        record = await self._client(ref)
        if handoff is not None and handoff.status == "open" and handoff.advisor_id:
            owners = {handoff.advisor_id}  # handed over (or reassigned): that advisor's now
        else:
            owners = {o for o in (handoff.advisor_id if handoff else None,
                                  record.advisor.id if record is not None and record.advisor else None) if o}
        if principal.is_manager:
            if handoff is None and record is None and ref is None:
                return _error(404, "no conversation under that id")
            return principal, handoff, record
        if not any(principal.may_see_advisor(owner) for owner in owners):
            logger.warning("advisor desk: %s refused conversation %s", principal.name, conversation_id)
            return _error(403, "not one of your conversations")
        return principal, handoff, record

    async def take(self, authorization: Caller, conversation_id: str) -> DeskAnswer:
        """The caller takes the conversation up: its open handoff is theirs, or, when the
        assistant still has it, a handoff is opened (``advisor_takeover``) and the
        assistant is paused.
        """
        found = await self.access(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, handoff, record = found
        now = self.clock.now()
        taken = await self.handoffs.take(conversation_id, by=principal.name, now=now)
        if taken is None:
            ref = self._conversation_ref(conversation_id)
            if ref is None:
                return _error(409, "this conversation has no WhatsApp recipient")
            advisor = record.advisor if record is not None else None
            await self.handoffs.open(
                conversation_id=conversation_id, reason="advisor_takeover",
                note=f"taken over by {principal.name}", language=supported(record.language if record else None),
                now=now, client_id=record.id if record else None,
                client_name=f"{record.first_name} {record.last_name}" if record else None,
                advisor_id=advisor.id if advisor else principal.advisor_id,
                boutique_id=(advisor.boutique_id if advisor else None) or (record.home_boutique_id if record else None),
                phone_number_id=self.phone_number_id, wa_id=ref.wa_id, user_id=ref.user_id)
            await self.transcripts.pause(conversation_id)
            taken = await self.handoffs.take(conversation_id, by=principal.name, now=now)
        if taken is None:  # handed back between the two steps
            return _error(409, "the conversation went back to the assistant meanwhile")
        await self._audit(principal, "take_handoff", via=self._via(authorization), conversation_id=conversation_id,
                          client_id=taken.client_id, handoff_id=taken.id)
        return DeskAnswer(200, taken.as_json())

    async def reassign(self, authorization: Caller, conversation_id: str,
                       body: Mapping[str, Any] | None) -> DeskAnswer:
        """A manager gives the open handoff to another advisor ``{"advisor_id": "..."}``."""
        found = await self.access(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, handoff, _ = found
        if not principal.is_manager:
            return _error(403, "only a manager reassigns a conversation")
        advisor_id = body.get("advisor_id") if isinstance(body, Mapping) else None
        # Without the maison's list (it could not be read), an id must still have an id's form.
        if not isinstance(advisor_id, str) or not _ADVISOR_ID.fullmatch(advisor_id) or (
                self.advisor_ids is not None and advisor_id not in self.advisor_ids):
            return _error(400, "advisor_id must be one of the maison's advisors")
        moved = await self.handoffs.reassign(conversation_id, advisor_id)
        if moved is None:
            return _error(409, "the conversation is not with an advisor; nothing to reassign")
        await self._audit(principal, "reassign", via=self._via(authorization), conversation_id=conversation_id,
                          client_id=moved.client_id, from_advisor=handoff.advisor_id if handoff else None,
                          to_advisor=advisor_id, handoff_id=moved.id)
        return DeskAnswer(200, moved.as_json())

    async def send_template(self, authorization: Caller, conversation_id: str,
                            body: Mapping[str, Any] | None) -> DeskAnswer:
        """``{"template": "<name>"}``: an approved template, by name, through the send-time
        guard (its status, language, parameters and the client's consent are checked there).
        """
        found = await self._guarded(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, handoff = found
        name = body.get("template") if isinstance(body, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            return _error(400, 'expected a JSON body {"template": "<name>"}')
        name = name.strip()
        if not _TEMPLATE_NAME.fullmatch(name):  # a sentence typed where the name goes: never sent, never logged
            return _error(400, "template must be a template's name (lowercase letters, digits and _)")
        if handoff.status != "open":
            return _error(409, "the conversation is back with the assistant; it was not sent")
        ref = self._ref(handoff)
        if ref is None:
            return _error(409, "this conversation has no WhatsApp recipient")
        params = body.get("params") if isinstance(body, Mapping) else None
        if params is not None and not (isinstance(params, Mapping) and all(
                isinstance(k, str) and isinstance(v, str) and len(v) <= 1024 for k, v in params.items())):
            return _error(400, "params must map parameter names to text")
        outcome = await self.sender.send(ref, OutgoingMessage(
            {"type": "template", "template": {"name": name}}, template=name, purpose=SERVICE_REPLY,
            utter_action="advisor_template", params=dict(params or {}), language=handoff.language,
            origin=f"advisor:{principal.name}"))
        if outcome.action == "template":
            await self.transcripts.record_advisor_message(conversation_id, f"[template {name}]", principal.name)
        await self._audit(principal, "reply", via=self._via(authorization), conversation_id=conversation_id,
                          client_id=handoff.client_id, sent=outcome.action, template=name, handoff_id=handoff.id)
        status = {"template": 200, "refused": 409}.get(outcome.action, 502)
        return DeskAnswer(status, {"sent": outcome.action, "wamid": outcome.wamid, "template": outcome.template,
                                   "reason": outcome.reason, "window": await self._window(handoff)})

    async def schedule_follow_up(self, authorization: Caller, conversation_id: str,
                                 body: Mapping[str, Any] | None) -> DeskAnswer:
        """``{"at": "2026-12-09T11:00", "text": "..."}``: the outbound engine writes to the
        client then (``advisor_followup``): ``at`` without an offset is her local time (her
        time zone in the book, else the maison's); the words are optional (without them, the
        approved follow-up template). At that moment the guard decides again (free-form in
        her window, else the template, or the words behind one nudge), and the worker's
        quiet hours hold it until morning in her time zone.
        """
        found = await self.access(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, _, record = found
        if self.outbound is None:
            return _error(503, "follow-ups are not available on this server")
        raw_at = body.get("at") if isinstance(body, Mapping) else None
        text = body.get("text") if isinstance(body, Mapping) else None
        zone = ZoneInfo(record.time_zone) if record is not None else ZoneInfo(DEFAULT_ZONE)
        try:
            at = datetime.fromisoformat(str(raw_at))
        except ValueError:
            return _error(400, 'expected {"at": "YYYY-MM-DDTHH:MM"} (her local time) and optional "text"')
        at = at.replace(tzinfo=zone) if at.tzinfo is None else at
        now = self.clock.now()
        if not now < at <= now + MAX_FOLLOW_UP:
            return _error(400, "a follow-up is due after now and within 90 days")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            return _error(400, f"text must be at most {MAX_TEXT} characters")
        ref = self._conversation_ref(conversation_id)
        if ref is None:
            return _error(409, "this conversation has no WhatsApp recipient")
        client = {k: v for k, v in (("wa_id", (record.wa_id if record else None) or ref.wa_id),
                                    ("user_id", (record.user_id if record else None) or ref.user_id)) if v}
        advisor = record.advisor.first_name if record is not None and record.advisor else None
        try:
            spec = parse_request(
                {"client": client, "purpose": "advisor_followup",
                 "content": {"text": text.strip()} if isinstance(text, str) and text.strip() else None,
                 "params": {"advisor_name": advisor} if advisor else {},
                 "language": supported(record.language if record else None),
                 "not_before": at.isoformat(), "idempotency_key": f"advisor-follow-up:{uuid.uuid4().hex}"},
                requested_by=f"advisor:{principal.name}", now=now, default_phone_number_id=self.phone_number_id)
        except InvalidRequest as exc:
            return _error(400, "; ".join(exc.problems))
        request, _ = await self.outbound.enqueue(spec, now)
        await self._audit(principal, "schedule_follow_up", via=self._via(authorization),
                          conversation_id=conversation_id, client_id=record.id if record else None,
                          due_at=at, purpose="advisor_followup", request_id=request.id)
        return DeskAnswer(202, {"request": request.as_dict(), "due_local": at.astimezone(zone).isoformat()})

    # ------------------------------------------------------------------ repair requests
    def _repair_ref(self, request: RepairRequest) -> ClientRef | None:
        """The client's WhatsApp address: the conversation the request was opened in."""
        sender = request.conversation_id
        if is_bsuid(sender):
            return ClientRef(self.phone_number_id, user_id=sender)
        digits = sender.lstrip("+")
        return ClientRef(self.phone_number_id, wa_id=digits) if digits.isdigit() else None

    async def _client(self, ref: ClientRef | None) -> ClientRecord | None:
        if ref is None or self.crm is None:
            return None
        try:
            return await self.crm.find(wa_id=ref.wa_id, user_id=ref.user_id)
        except CrmUnavailable as exc:
            logger.error("advisor API: client book unavailable: %s", exc)
            return None

    async def _boutique_city(self, boutique_id: str | None) -> str | None:
        if boutique_id is None or self.bookings is None:
            return None
        shop = (await self.bookings.boutiques()).get(boutique_id)
        return shop.city if shop is not None else None

    async def _repair_json(self, request: RepairRequest, changed_at: Any = None) -> dict[str, Any]:
        ref = self._repair_ref(request)
        record = await self._client(ref)
        return {
            "id": request.id, "status": request.status, "item": request.item, "issue": request.issue,
            "photos": list(request.photos), "opened_at": request.created_at.isoformat(),
            "updated_at": (changed_at or request.created_at).isoformat(), "client_id": request.client_id,
            "client_name": f"{record.first_name} {record.last_name}" if record else None,
            "conversation_id": request.conversation_id, "advisor_id": request.advisor_id,
            "boutique_id": request.boutique_id, "window": await self._window_of(ref),
        }

    async def _guarded_repair(self, authorization: Caller, request_id: str,
                              ) -> tuple[Principal, RepairBook, RepairRequest] | DeskAnswer:
        try:
            principal = self._principal(authorization)
        except AccessDenied as exc:
            return _error(exc.status, exc.reason)
        if self.repairs is None:
            return _error(503, "repair requests are not available")
        request = await self.repairs.get(request_id)
        if request is None:
            if principal.is_manager:
                return _error(404, "no repair request under that reference")
            return _error(403, "not one of your clients' repair requests")
        if not principal.may_see_advisor(request.advisor_id):
            logger.warning("advisor API: %s refused repair request %s (advisor %s)",
                           principal.name, request_id, request.advisor_id)
            return _error(403, "not one of your clients' repair requests")
        return principal, self.repairs, request

    async def repair_requests(self, authorization: Caller, *, include_closed: bool = False) -> DeskAnswer:
        """GET /advisor/repairs: the repair requests of the advisor's clients (a manager's:
        all), newest first, each with the client's window.
        """
        try:
            principal = self._principal(authorization)
        except AccessDenied as exc:
            return _error(exc.status, exc.reason)
        if self.repairs is None:
            return _error(503, "repair requests are not available")
        items = await self.repairs.listing(advisor_id=None if principal.is_manager else principal.advisor_id,
                                           include_closed=include_closed)
        changed = await self.repairs.last_changes([r.id for r in items])
        return DeskAnswer(200, {"repairs": [await self._repair_json(r, changed.get(r.id)) for r in items]})

    async def repair_request(self, authorization: Caller, request_id: str) -> DeskAnswer:
        """GET /advisor/repairs/<id>: the request, the client's window and its history."""
        found = await self._guarded_repair(authorization, request_id)
        if isinstance(found, DeskAnswer):
            return found
        _, book, request = found
        history = await book.history(request.id)
        body = await self._repair_json(request, history[-1].at if history else None)
        return DeskAnswer(200, {**body, "history": [h.as_json() for h in history]})

    async def update_repair(self, authorization: Caller, request_id: str,
                            body: Mapping[str, Any] | None) -> DeskAnswer:
        """POST /advisor/repairs/<id>/status ``{"status": "ready", "note": "...", "notify": true}``:
        the new status (or a note alone) is kept; a change the client should know of is
        told to them through the send-time guard (``"notify": false`` keeps it quiet).
        """
        found = await self._guarded_repair(authorization, request_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, book, before = found
        if not isinstance(body, Mapping):
            return _error(400, 'expected a JSON body {"status": "...", "note": "..."}')
        status, note, notify = body.get("status"), body.get("note"), body.get("notify", True)
        allowed = ", ".join(STATUSES[1:])
        if status is not None and (not isinstance(status, str) or status not in STATUSES[1:]):
            return _error(400, f"status must be one of {allowed}")
        if note is not None and (not isinstance(note, str) or len(note) > 2000):
            return _error(400, "note must be text of at most 2000 characters")
        if not isinstance(notify, bool):
            return _error(400, "notify must be true or false")
        if status is None and not (note or "").strip():
            return _error(400, f'expected a status ({allowed}) and/or a note')
        try:
            request, change = await book.change(before.id, status=status, note=note, by=principal.name,
                                                now=self.clock.now())
        except RepairClosed as exc:
            return _error(409, f"the repair request is closed; nothing was changed ({exc})")
        except KeyError:
            return _error(404, "no repair request under that reference")
        notice: dict[str, Any] | None = None
        if notify and status != before.status and status in NOTIFIED_STATUSES:
            notice = await self._tell_client(request, status, principal)
            await book.mark_notified(change.id, str(notice["sent"]), notice.get("reason") or notice.get("template"))
        await self._audit(principal, "update_repair", via=self._via(authorization),
                          conversation_id=request.conversation_id, client_id=request.client_id,
                          repair_id=request.id, status=status, previous_status=before.status,
                          sent=notice["sent"] if notice else None)
        update = {**change.as_json(), "notified": notice["sent"] if notice else None}
        return DeskAnswer(200, {"repair": await self._repair_json(request, change.at), "update": update,
                                "notice": notice})

    async def _tell_client(self, request: RepairRequest, status: str, principal: Principal) -> dict[str, Any]:
        ref = self._repair_ref(request)
        if ref is None:
            return {"sent": "refused", "reason": "no WhatsApp recipient for this request"}
        record = await self._client(ref)
        language = supported(record.language if record else None)
        city = await self._boutique_city(request.boutique_id)
        text = status_message(request, status, language=language,
                              name=address(record, language) if record else None, boutique_city=city,
                              gender=gender_of(record))
        assert text is not None
        # A piece ready for collection has its own approved template (aftercare_ready);
        # the other steps are a reply to the client's request: parked behind the nudge.
        ready = status == "ready"
        outcome = await self.sender.send(ref, OutgoingMessage(
            {"type": "text", "text": {"body": text}}, purpose="aftercare_update" if ready else SERVICE_REPLY,
            utter_action="repair_status", params={"item": request.item, "boutique": city} if ready and city else {},
            language=language, origin=f"advisor:{principal.name}"))
        if outcome.action in ("free_form", "template", "parked"):
            await self.transcripts.record_advisor_message(request.conversation_id, text, principal.name)
        return {"sent": outcome.action, "wamid": outcome.wamid, "template": outcome.template,
                "nudge_wamid": outcome.nudge_wamid, "reason": outcome.reason, "text": text,
                "window": await self._window_of(ref)}
