"""A follow-up that is due: the news it promised.

The outbound worker (or the demo's follow-up button) triggers ``advisor_followup`` for a
client, sometimes with the piece it is about. The assistant says what is new: that
piece's availability, else her latest order still on its way, else (nothing to tell) the
domain's courteous ``utter_advisor_followup``.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.backends import client_ids
from salon.conversation.followup import follow_up_lead
from salon.conversation.greetings import DEFAULT_ZONE
from salon.conversation.language import supported
from salon.conversation.order_status import is_late, late_order_button, order_answer
from salon.conversation.product_answers import product_answer

logger = logging.getLogger(__name__)

#: Orders with nothing left to tell.
SETTLED_ORDERS = frozenset({"delivered", "cancelled", "returned"})


class ActionAdvisorFollowup(Action):
    """Tell the client the news a follow-up promised."""

    def name(self) -> str:
        return "action_advisor_followup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        record = await backends.known_client(tracker)
        language = supported(tracker.get_slot("language") or (record.language if record else None))
        piece = next(tracker.get_latest_entity_values("product"), None)
        try:
            if piece and await self._piece_news(dispatcher, str(piece), language):
                return [SlotSet("language", language)]
            wa_id, user_id = client_ids(tracker)
            facts = await backends.orders().latest_for_client(wa_id=wa_id, user_id=user_id)
        except SQLAlchemyError:
            logger.exception("follow-up news unavailable for %s", tracker.sender_id)
            facts = None
        if facts is None or facts.status in SETTLED_ORDERS:
            dispatcher.utter_message(response="utter_advisor_followup")
            return [SlotSet("language", language)]
        zone = ZoneInfo(record.time_zone if record is not None else DEFAULT_ZONE)
        today = backends.clock().now().astimezone(zone).date()
        advisor = record.advisor.first_name if record is not None and record.advisor else None
        news = order_answer(facts, today=today, language=language, advisor=advisor)
        buttons = [late_order_button(language, advisor)] if is_late(facts, today) else []
        dispatcher.utter_message(text=f"{follow_up_lead(language, order=facts.number)} {news}",
                                 buttons=buttons)
        return [SlotSet("language", language)]

    async def _piece_news(self, dispatcher: CollectingDispatcher, named: str, language: str) -> bool:
        catalog = backends.catalog()
        facts = await catalog.find(named)
        if facts is None:
            return False
        cities = await catalog.boutique_names()
        news = product_answer(facts, cities, None, language)
        dispatcher.utter_message(text=f"{follow_up_lead(language, piece=facts.name)} {news}")
        return True
