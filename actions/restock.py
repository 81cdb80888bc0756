"""Restock alerts: the form finds the piece in the catalog, the action notes who waits for
which colour, size and boutique (salon/outbound/restock.py), and the alert goes out through the
outbound engine when that variant's stock comes back.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.greeting import conversation_language
from actions.orders import client_ids
from salon.clock import clock_from_env
from salon.conversation.language import supported
from salon.conversation.product_answers import piece_words, where_in_stock
from salon.identity import ClientRef
from salon.integrations.catalog import fold

logger = logging.getLogger(__name__)

RESET: list[EventType] = [SlotSet("product", None), SlotSet("colour", None), SlotSet("size", None)]


class ValidateRestockAlertForm(FormValidationAction):
    """Keeps the catalog's name for the piece the client names; asks again when the catalog
    does not know it.
    """

    def name(self) -> str:
        return "validate_restock_alert_form"

    async def validate_product(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(slot_value or "").strip()
        try:
            facts = await backends.catalog().find(text) if text else None
        except SQLAlchemyError:
            logger.exception("catalog unavailable while noting a restock request")
            return {"product": text or None}  # the action apologises if it is still down
        if facts is None:
            dispatcher.utter_message(response="utter_restock_unknown_piece")
            return {"product": None}
        return {"product": facts.name}


class ActionRestockRequest(Action):
    """Note the client's wish, or say where the piece already is."""

    def name(self) -> str:
        return "action_restock_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        wa_id, user_id = client_ids(tracker)
        language = supported(conversation_language(tracker, None))
        named = str(tracker.get_slot("product") or "")
        colour_asked = tracker.get_slot("colour")
        size_asked = tracker.get_slot("size")
        try:
            facts = await backends.catalog().find(named) if named else None
            if facts is None:
                dispatcher.utter_message(response="utter_restock_unknown_piece")
                return RESET
            colours = facts.colours_matching(str(colour_asked)) if colour_asked else ()
            colour = colours[0] if len(colours) == 1 else None
            size = next((s for s in facts.sizes if size_asked and fold(s) == fold(str(size_asked))), None)
            piece = piece_words(facts.name, language, colour, size)
            units = facts.units_by_boutique(colour, size)
            cities = await backends.catalog().boutique_names()
            available = [cities.get(b, b) for b, n in sorted(units.items()) if n > 0]
            if available:
                where = where_in_stock(available, language)
                dispatcher.utter_message(response="utter_restock_in_stock", piece=piece, boutiques=where)
                return RESET
            if not wa_id and not user_id:
                dispatcher.utter_message(response="utter_restock_whatsapp_only")
                return RESET
            metadata = tracker.latest_message.get("metadata") or {}
            pnid = str(metadata.get("phone_number_id") or os.environ.get("WA_PHONE_NUMBER_ID", ""))
            if not pnid:
                logger.error("restock request for %s not noted: no business number (WA_PHONE_NUMBER_ID)", named)
                dispatcher.utter_message(response="utter_restock_unavailable")
                return RESET
            await backends.restock().add(
                ClientRef(pnid, user_id=user_id, wa_id=wa_id), facts.id, _now(),
                colour=colour, size=size if len(facts.sizes) > 1 else None, language=language,
            )
        except SQLAlchemyError:
            logger.exception("restock request for %s could not be stored", named)
            dispatcher.utter_message(response="utter_restock_unavailable")
            return RESET
        dispatcher.utter_message(response="utter_restock_noted", piece=piece)
        return RESET


def _now() -> datetime:
    return clock_from_env().now().astimezone(timezone.utc)
