"""Boutique information: opening hours, address and telephone, services, and whether the
maison has a boutique in a city, answered from the book (the words and the choices live in
``salon.conversation.boutique_info``).
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.greeting import conversation_language
from salon.conversation.boutique_info import boutique_answer, unavailable
from salon.conversation.language import supported

logger = logging.getLogger(__name__)


class ActionBoutiqueInfo(Action):
    """The answer to her question about the boutiques, with a button to book a visit."""

    def name(self) -> str:
        return "action_boutique_info"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        record = await backends.known_client(tracker)
        language = supported(conversation_language(tracker, record))
        # Her words, and the boutique the NLU read in them ("Parigi" → paris).
        words = " ".join([str(tracker.latest_message.get("text") or ""),
                          *(str(v) for v in tracker.get_latest_entity_values("boutique"))])
        bookings = backends.bookings()
        try:
            shops = await bookings.boutiques()
            labels = await bookings.service_labels(language)
        except SQLAlchemyError:
            logger.exception("boutique book unavailable for %s", tracker.sender_id)
            dispatcher.utter_message(text=unavailable(language).text)
            return []
        reply = boutique_answer(words, language, shops, labels,
                                record.home_boutique_id if record is not None else None,
                                backends.clock().now())
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons)
        return []
