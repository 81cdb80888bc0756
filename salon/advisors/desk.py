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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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
from salon.purposes import SERVICE_REPLY
from salon.whatsapp.addressing import is_bsuid
from salon.whatsapp.messages import MAX_TEXT, OutgoingMessage
from salon.window.state import SessionStore

logger = logging.getLogger(__name__)

__all__ = ["AdvisorDesk", "DeskAnswer", "DeskSender", "Transcripts"]


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

    async def resume(self, conversation_id: str) -> None:
        """Hand the conversation back to the assistant (``ConversationResumed``)."""


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
                 bookings: Bookings | None = None) -> None:
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

    # ------------------------------------------------------------------ helpers
    def _principal(self, authorization: str | None) -> Principal:
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

    async def _guarded(self, authorization: str | None, conversation_id: str,
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
    async def conversations(self, authorization: str | None, *, include_resolved: bool = False) -> DeskAnswer:
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

    async def conversation(self, authorization: str | None, conversation_id: str) -> DeskAnswer:
        """GET /advisor/conversations/<id>: the handoff, the window and the transcript."""
        found = await self._guarded(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        _, handoff = found
        return DeskAnswer(200, {**handoff.as_json(), "window": await self._window(handoff),
                                "transcript": await self.transcripts.transcript(conversation_id)})

    async def reply(self, authorization: str | None, conversation_id: str,
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
            utter_action="advisor_reply", language=handoff.language))
        if outcome.action in ("free_form", "template", "parked"):
            await self.transcripts.record_advisor_message(conversation_id, text.strip(), principal.name)
        status = {"free_form": 200, "template": 200, "parked": 202, "refused": 409}.get(outcome.action, 502)
        return DeskAnswer(status, {"sent": outcome.action, "wamid": outcome.wamid,
                                   "template": outcome.template, "nudge_wamid": outcome.nudge_wamid,
                                   "reason": outcome.reason,
                                   "window": await self._window(handoff)})

    async def resume(self, authorization: str | None, conversation_id: str) -> DeskAnswer:
        """POST /advisor/conversations/<id>/resume: the assistant takes over again."""
        found = await self._guarded(authorization, conversation_id)
        if isinstance(found, DeskAnswer):
            return found
        principal, handoff = found
        resolved = await self.handoffs.resolve(conversation_id, by=principal.name, now=self.clock.now())
        await self.transcripts.resume(conversation_id)
        return DeskAnswer(200, (resolved or handoff).as_json())

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

    async def _guarded_repair(self, authorization: str | None, request_id: str,
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

    async def repair_requests(self, authorization: str | None, *, include_closed: bool = False) -> DeskAnswer:
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

    async def repair_request(self, authorization: str | None, request_id: str) -> DeskAnswer:
        """GET /advisor/repairs/<id>: the request, the client's window and its history."""
        found = await self._guarded_repair(authorization, request_id)
        if isinstance(found, DeskAnswer):
            return found
        _, book, request = found
        history = await book.history(request.id)
        body = await self._repair_json(request, history[-1].at if history else None)
        return DeskAnswer(200, {**body, "history": [h.as_json() for h in history]})

    async def update_repair(self, authorization: str | None, request_id: str,
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
            language=language))
        if outcome.action in ("free_form", "template", "parked"):
            await self.transcripts.record_advisor_message(request.conversation_id, text, principal.name)
        return {"sent": outcome.action, "wamid": outcome.wamid, "template": outcome.template,
                "nudge_wamid": outcome.nudge_wamid, "reason": outcome.reason, "text": text,
                "window": await self._window_of(ref)}
