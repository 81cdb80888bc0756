"""Order status: the number is checked as the client gives it, then the order is read for
its owner only (the WhatsApp number or business-scoped id the message came from).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.backends import client_ids
from actions.greeting import conversation_language
from salon.conversation.greetings import DEFAULT_ZONE
from salon.conversation.language import supported
from salon.conversation.order_status import (
    is_late,
    late_order_button,
    on_their_way,
    order_answer,
    order_in_question,
    which_order,
)
from salon.integrations.crm import ClientRecord
from salon.integrations.orders import OrderFacts, normalise_order_number

logger = logging.getLogger(__name__)


def _language(tracker: Tracker) -> str:
    return supported(conversation_language(tracker, None))


def her_today(record: ClientRecord | None) -> date:
    """The client's date: her time zone's, the maison's when the book does not know her."""
    zone = ZoneInfo(record.time_zone if record is not None else DEFAULT_ZONE)
    return backends.clock().now().astimezone(zone).date()


async def her_orders(tracker: Tracker) -> list[OrderFacts]:
    """Her most recent orders, newest first; none when they cannot be read (logged)."""
    wa_id, user_id = client_ids(tracker)
    try:
        return await backends.orders().recent_for_client(wa_id=wa_id, user_id=user_id)
    except SQLAlchemyError:
        logger.exception("orders unavailable while looking for the client's orders")
        return []


class ActionFindOrder(Action):
    """"Where is my order?" without a number: the order she means, from her own orders
    (the only one on its way, or one delivered lately), so she is not asked for a number
    the maison already knows. Several on their way, or none: the form asks
    (:class:`ActionAskOrderNumber`).
    """

    def name(self) -> str:
        return "action_find_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot("order_number") or next(tracker.get_latest_entity_values("order_number"), None):
            return []
        orders = await her_orders(tracker)
        if not orders:
            return []
        chosen = order_in_question(orders, her_today(await backends.known_client(tracker)))
        return [SlotSet("order_number", chosen.number)] if chosen is not None else []


class ActionAskOrderNumber(Action):
    """The order form's question: which of her orders on their way, as buttons, when she
    has several; else her order's number (``utter_ask_order_number``).
    """

    def name(self) -> str:
        return "action_ask_order_number"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        going = on_their_way(await her_orders(tracker))
        if len(going) > 1:
            text, buttons = which_order(going, _language(tracker))
            dispatcher.utter_message(text=text, buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_ask_order_number")
        return []


class ValidateOrderStatusForm(FormValidationAction):
    """Checks and normalises the order number as the client gives it."""

    def name(self) -> str:
        return "validate_order_status_form"

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        number = normalise_order_number(str(slot_value) if slot_value is not None else None)
        if number is None:
            dispatcher.utter_message(response="utter_order_number_invalid")
            return {"order_number": None}
        return {"order_number": number}


class ActionOrderStatus(Action):
    """Where the client's order stands, from the order record only."""

    def name(self) -> str:
        return "action_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        number = normalise_order_number(tracker.get_slot("order_number"))
        wa_id, user_id = client_ids(tracker)
        if number is None:
            dispatcher.utter_message(response="utter_order_number_invalid")
            return [SlotSet("order_number", None)]
        try:
            facts = await backends.orders().for_client(number, wa_id=wa_id, user_id=user_id)
        except SQLAlchemyError:
            logger.exception("orders unavailable while answering about %s", number)
            dispatcher.utter_message(response="utter_order_request_noted", order_number=number)
            return [SlotSet("order_number", None)]
        if facts is None and backends.username_only(tracker) and await backends.known_client(tracker) is None:
            # Writing from a username, not in the book: who she is decides whose orders
            # she may see. Her number, once shared, lets the question be answered.
            return backends.ask_for_number(dispatcher, "orders", _language(tracker),
                                           resume=self.name())
        if facts is None:
            # Unknown, or someone else's: the same answer, nothing about the order.
            dispatcher.utter_message(response="utter_order_not_found", order_number=number)
        else:
            record = await backends.known_client(tracker)
            today = her_today(record)
            language = _language(tracker)
            advisor = record.advisor.first_name if record is not None and record.advisor else None
            buttons = [late_order_button(language, advisor)] if is_late(facts, today) else []
            dispatcher.utter_message(text=order_answer(facts, today=today, language=language, advisor=advisor),
                                     buttons=buttons)
        return [SlotSet("order_number", None)]
