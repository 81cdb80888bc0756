"""Open styling talk: the ``styling_advice`` intent, and messages the NLU could not place
(``nlu_fallback``) when they are about what to wear, pair or give.

A thin adapter over :class:`salon.llm.responder.StylingAdvisor`: a grounded answer (from
the model when configured and consented to, else the offline responder) in the
conversation's language (the ``language`` slot: English, French or Italian) with yes/no
buttons and the ``service_reply`` purpose, so the WhatsApp channel's send-time guard parks
it when the turn ends after the window closed; a person for complaints, distress, legal,
medical or VIC-sensitive messages; a question about the occasion when nothing matched.
A message it cannot place gets "what is it about?", or in the middle of a form a short
apology before the form's own question.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.backends import client_ids
from salon.advisors.screen import person_needed
from salon.llm.sensitivity import is_styling_talk

logger = logging.getLogger(__name__)

class ActionStylingAdvice(Action):
    """Answers styling talk, or hands it to a person when it needs one."""

    def name(self) -> str:
        return "action_styling_advice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = str(tracker.latest_message.get("text") or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "nlu_fallback" and not _placeable(text):
            if _previous_unplaced(tracker):
                # Not understood twice in a row: a person takes over.
                return [FollowupAction("action_handoff")]
            # In a form she is answering its question: a short apology, and the form asks
            # it again after it; elsewhere, what her message is about.
            if tracker.active_loop.get("name"):
                dispatcher.utter_message(response="utter_not_caught")
            else:
                dispatcher.utter_message(response="utter_default")
            return []
        if not text or text.startswith("/"):
            dispatcher.utter_message(response="utter_styling_advice")
            return []
        wa_id, user_id = client_ids(tracker)
        language = tracker.get_slot("language")
        try:
            reply = await backends.styling_advisor().answer(
                text, wa_id=wa_id, user_id=user_id, language=language if isinstance(language, str) else None)
        except SQLAlchemyError:
            logger.exception("catalog unavailable while answering a styling question")
            dispatcher.utter_message(response="utter_catalog_unavailable")
            return []
        if reply.mode == "handoff":
            # A complaint, or distress, legal, medical, VIC-sensitive: a person answers.
            if reply.handoff == "complaint":
                dispatcher.utter_message(response="utter_complaint")
            else:
                dispatcher.utter_message(response="utter_sensitive_handoff")
            return [FollowupAction("action_handoff")]
        if reply.mode == "vague":
            dispatcher.utter_message(response="utter_styling_advice")
        else:
            dispatcher.utter_message(**reply.response())
        if reply.product_names:
            # "and in camel?", "the other one": the thread the client may pull next.
            return [SlotSet("product", reply.product_names[0]),
                    SlotSet("suggested_pieces", list(reply.product_names))]
        return []


def _placeable(text: str) -> bool:
    """Unplaced by the NLU, but styling talk or something a person must hear."""
    return is_styling_talk(text) or person_needed(text) is not None


def _previous_unplaced(tracker: Tracker) -> bool:
    """The client's previous message was not understood either (and was answered with
    ``utter_default``).
    """
    said = [e for e in tracker.events if e.get("event") == "user"]
    if len(said) < 2:
        return False
    previous = said[-2]
    intent = ((previous.get("parse_data") or {}).get("intent") or {}).get("name")
    return intent == "nlu_fallback" and not _placeable(str(previous.get("text") or ""))
