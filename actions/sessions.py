"""A new session is a new window: when a client writes after the last one closed, Rasa
starts a session (``session_config`` mirrors the 24 h window). This action carries over
the slots that matter and, when something was left open, recalls it in one line.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from salon.conversation.language import supported
from salon.conversation.recall import LastTime, recall

logger = logging.getLogger(__name__)

#: Carried into the new session as they were.
CARRIED = ("language", "vic", "boutique", "service", "date_time", "party_size", "reschedule_id",
           "appointment_id", "order_number")


def _spoke_last_session(tracker: Tracker) -> bool:
    """Whether the client said anything in the session now ending (a bare
    ``/session_start`` from the channel does not count).
    """
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            return False
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent != "session_start":
                return True
    return False


def _last_order(tracker: Tracker) -> str | None:
    """The order number the client asked about in the last session (the slot is cleared
    once answered).
    """
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            return None
        if event.get("event") == "slot" and event.get("name") == "order_number" and event.get("value"):
            return str(event["value"])
    return None


class ActionSessionStart(Action):
    """Starts a new session: carries the slots over and recalls what was left open."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        carried = {slot: tracker.get_slot(slot) for slot in CARRIED
                   if tracker.get_slot(slot) is not None}
        returning = _spoke_last_session(tracker)
        record = await backends.known_client(tracker)
        known = carried.get("language") or (record.language if record else None)
        language = supported(known)
        if known:
            carried["language"] = language
        # Else nobody knows her language yet: her first words give it
        # (salon/conversation/language.py), which a default set here would overrule.
        carried["vic"] = bool(record and record.is_vic)
        advisor = record.advisor if record else None
        carried["advisor_name"] = advisor.first_name if advisor else None
        carried["advisor_gender"] = advisor.gender if advisor else None
        events += [SlotSet(name, value) for name, value in carried.items()]
        last = await self._last_time(tracker, carried, language) if returning else LastTime()
        if last.advisor_request:
            # Still with the advisor: the new session stays paused, the bot says nothing.
            return events + [ActionExecuted("action_listen"), ConversationPaused()]
        reply = recall(record, last, language)
        if reply is not None:
            dispatcher.utter_message(text=reply.text, buttons=reply.buttons)
        events.append(ActionExecuted("action_listen"))
        return events

    async def _last_time(self, tracker: Tracker, carried: dict[str, Any], language: str) -> LastTime:
        service = carried.get("service")
        city = None
        advisor_request = False
        try:
            if service:
                labels = await backends.bookings().service_labels(language)
                shops = await backends.bookings().boutiques()
                shop = shops.get(str(carried.get("boutique") or ""))
                city = shop.city if shop else None
                service = labels.get(str(service), str(service))
            advisor_request = await (await backends.handoffs()).open_for(tracker.sender_id) is not None
        except SQLAlchemyError:
            logger.exception("context recall for %s incomplete", tracker.sender_id)
        return LastTime(booking_service=service, booking_city=city,
                        order_number=_last_order(tracker), advisor_request=advisor_request)
