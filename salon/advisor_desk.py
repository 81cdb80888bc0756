"""The advisor API's logic: a client advisor lists the conversations handed to them
(with each client's window), reads a transcript, replies through the send-time guard,
and hands the conversation back to the assistant.

Every call carries ``Authorization: Bearer <token>`` checked by :mod:`salon.access`
with scope ``advisor``: an advisor sees only the conversations of clients assigned to
them, a ``manager`` sees all; no or an unknown token is 401, a token without the scope
or for another advisor's client is 403 (checked before anything about the conversation
is said, so a 404 tells nothing to a stranger).

The conversation store is Rasa's (the transcript, the pause and the resume); this module
sees it through the small :class:`Transcripts` protocol that the WhatsApp channel
implements over the agent's tracker store (``connectors/advisor.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from salon.access import AccessDenied, Principal, TokenBook
from salon.clock import Clock
from salon.decision import SERVICE_REPLY
from salon.handoff import Handoff, HandoffBook
from salon.sessions import ClientRef, SessionStore
from salon.whatsapp.rendering import MAX_TEXT, OutgoingMessage
from salon.whatsapp.sender import GuardedSender

logger = logging.getLogger(__name__)

__all__ = ["AdvisorDesk", "DeskAnswer", "Transcripts"]


class Transcripts(Protocol):
    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's messages, oldest first: ``{"at", "from", "text"}`` with
        ``from`` one of ``client``, ``assistant``, ``advisor``, ``system``."""

    async def record_advisor_message(self, conversation_id: str, text: str, advisor: str) -> None:
        """Keep the advisor's reply in the conversation (so the bot sees it later)."""

    async def resume(self, conversation_id: str) -> None:
        """Hand the conversation back to the assistant (``ConversationResumed``)."""


@dataclass(frozen=True)
class DeskAnswer:
    status: int
    body: dict[str, Any]


def _error(status: int, reason: str) -> DeskAnswer:
    return DeskAnswer(status, {"error": reason})


class AdvisorDesk:
    def __init__(self, *, tokens: TokenBook, handoffs: HandoffBook, sessions: SessionStore,
                 sender: GuardedSender, transcripts: Transcripts, clock: Clock,
                 phone_number_id: str) -> None:
        self.tokens = tokens
        self.handoffs = handoffs
        self.sessions = sessions
        self.sender = sender
        self.transcripts = transcripts
        self.clock = clock
        self.phone_number_id = phone_number_id

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
        ref = self._ref(handoff)
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
        """GET /advisor/conversations"""
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
        client's window is open, else parked behind the approved nudge template."""
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
