"""Handing the conversation to a person: the client asked, complained, the assistant
failed twice, or a VIC asked for something that deserves their advisor. The bot pauses
for this conversation (``ConversationPaused``) until the advisor hands it back.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.greeting import conversation_language
from salon.advisors.handoff import notify, opening, reply_promise
from salon.advisors.screen import person_needed
from salon.conversation.language import supported
from salon.conversation.phrasing import pick

logger = logging.getLogger(__name__)

DEFAULT_BOUTIQUE = "paris"

#: Said when no advisor can be reached (the handoff could not be recorded), by language.
_UNREACHABLE: Final = {
    "en": ("Forgive me, I cannot reach an advisor at this moment. You can call our Paris "
           "boutique on +33142650000."),
    "fr": ("Pardonnez-moi, je ne parviens pas à joindre un conseiller à l'instant. Vous pouvez "
           "appeler notre boutique de Paris au +33 1 42 65 00 00."),
    "it": ("Mi perdoni, in questo momento non riesco a raggiungere un consulente. Può chiamare "
           "la nostra boutique di Parigi al numero +33142650000."),
}

_REASON_BY_INTENT = {
    "talk_to_advisor": "talk_to_advisor",
    "complaint": "complaint",
    "nlu_fallback": "repeated_failure",
    "customisation_request": "sensitive",
}


def _note(tracker: Tracker) -> str:
    """What the advisor needs first: the client's last words and any pending detail."""
    parts = [f"Client wrote: {tracker.latest_message.get('text') or '(no text)'}"]
    for slot in ("product", "order_number", "boutique", "service", "date_time",
                 "appointment_start", "party_size", "rsvp_event", "rsvp_guests"):
        value = tracker.get_slot(slot)
        if value:
            parts.append(f"{slot}: {value}")
    return "; ".join(parts)


async def hand_over(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, *,
                    lead: dict[str, str] | None = None, boutique_id: str | None = None,
                    note: str | None = None) -> list[EventType]:
    """Record the handoff, notify the advisors' webhook, tell the client who will answer
    and when, and pause the bot for this conversation.
    """
    record = await backends.known_client(tracker)
    language = supported(conversation_language(tracker, record))
    advisor = record.advisor if record else None
    boutique_id = boutique_id or (advisor.boutique_id if advisor else None) or (
        record.home_boutique_id if record else DEFAULT_BOUTIQUE)
    now = backends.clock().now()
    wa_id, user_id = backends.client_ids(tracker)
    metadata = tracker.latest_message.get("metadata") or {}
    try:
        shop = (await backends.bookings().boutiques())[boutique_id]
        book = await backends.handoffs()
        handoff, created = await book.open(
            conversation_id=tracker.sender_id, reason=reason, note=note or _note(tracker),
            language=language, now=now, client_id=record.id if record else None,
            client_name=f"{record.first_name} {record.last_name}" if record else
            (metadata.get("profile_name") or None),
            advisor_id=advisor.id if advisor else None, boutique_id=boutique_id,
            phone_number_id=metadata.get("phone_number_id") or None, wa_id=wa_id,
            user_id=user_id)
        if created:
            await notify(book, handoff, backends.advisor_webhook_url())
    except (SQLAlchemyError, KeyError):
        logger.exception("handoff for %s could not be recorded", tracker.sender_id)
        dispatcher.utter_message(text=pick(_UNREACHABLE, language))
        return []
    first = (pick(lead, language) if lead else "") or opening(reason, language)
    line = reply_promise(advisor.first_name if advisor else None, shop, now, language)
    dispatcher.utter_message(text=f"{first} {line}".strip())
    events: list[EventType] = [SlotSet("language", language)]
    if tracker.active_loop.get("name"):
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    return events + [ConversationPaused()]


def handoff_reason(tracker: Tracker) -> str:
    """Why the conversation goes to a person: what the screen found in the client's words
    (:func:`salon.advisors.screen.person_needed`), else what her intent says.
    """
    text = tracker.latest_message.get("text") or ""
    intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
    screened = person_needed(text) if text and not text.startswith("/") else None
    return screened or _REASON_BY_INTENT.get(intent, "talk_to_advisor")


class ActionHandoff(Action):
    """Hands the conversation to a person, for the reason the screen or the intent gives."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        return await hand_over(dispatcher, tracker, handoff_reason(tracker))
