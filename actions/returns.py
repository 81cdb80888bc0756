"""Returns and exchanges: the maison's policy applied to the piece she means, from her own
orders (salon/conversation/returns.py says it).
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.backends import client_ids
from actions.greeting import conversation_language
from actions.orders import her_orders, her_today
from salon.conversation.language import supported
from salon.conversation.returns import asks_about_refund, order_to_return, returns_answer
from salon.integrations.house import ReturnsPolicy, ReturnsPolicyError
from salon.integrations.orders import OrderFacts, normalise_order_number

logger = logging.getLogger(__name__)


async def _policy() -> ReturnsPolicy | None:
    """The maison's returns policy; None when it states none or it cannot be read (logged:
    the advisor then explains, nothing is made up).
    """
    try:
        return await backends.house().returns_policy()
    except (SQLAlchemyError, ReturnsPolicyError):
        logger.exception("returns policy unavailable")
        return None


async def _named_order(tracker: Tracker) -> OrderFacts | None:
    """The order she named in this message, if it is hers."""
    number = normalise_order_number(next(tracker.get_latest_entity_values("order_number"), None))
    if number is None:
        return None
    wa_id, user_id = client_ids(tracker)
    try:
        return await backends.orders().for_client(number, wa_id=wa_id, user_id=user_id)
    except SQLAlchemyError:
        logger.exception("orders unavailable while looking for the order to return")
        return None


class ActionReturns(Action):
    """"Can I return my coat?": until when and how, for the piece she most likely means,
    with the advisor to arrange it or a visit to bring it in.
    """

    def name(self) -> str:
        return "action_returns"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        record = await backends.known_client(tracker)
        today = her_today(record)
        policy = await _policy()
        order = order_to_return(await her_orders(tracker), today, policy, await _named_order(tracker))
        advisor = record.advisor.first_name if record is not None and record.advisor else None
        language = supported(conversation_language(tracker, None))
        answer = returns_answer(policy, order, today=today, language=language, advisor=advisor,
                                about_refund=asks_about_refund(tracker.latest_message.get("text")))
        dispatcher.utter_message(text=answer.text, buttons=list(answer.buttons))
        return []
