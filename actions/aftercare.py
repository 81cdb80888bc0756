"""Aftercare: the piece, what happened, photos if the client has them (sent through the
channel as ``/share_media`` with the attachment in the metadata), then a repair request
opened in the client's name.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.greeting import conversation_language

logger = logging.getLogger(__name__)

REPAIR_SLOTS = ("repair_item", "repair_issue", "repair_photos")


def _language(tracker: Tracker) -> str:
    return conversation_language(tracker, None)


def _attachment(tracker: Tracker) -> dict[str, Any] | None:
    found = (tracker.latest_message.get("metadata") or {}).get("attachment")
    return dict(found) if isinstance(found, dict) and found.get("id") else None


class ValidateAftercareForm(FormValidationAction):
    """Checks the aftercare form's answers: the piece (the catalog's name when it knows it),
    the issue, and a photo or a plain "no photo".
    """

    def name(self) -> str:
        return "validate_aftercare_form"

    async def validate_repair_item(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = str(slot_value or "").strip()
        if len(text) < 2 or text.startswith("/"):
            return {"repair_item": None}
        try:
            facts = await backends.catalog().find(text)
        except SQLAlchemyError:
            logger.exception("catalog unavailable while reading a repair request")
            facts = None
        return {"repair_item": facts.name if facts is not None else text}

    async def validate_repair_issue(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = str(slot_value or "").strip()
        if len(text) < 3 or text.startswith("/"):
            return {"repair_issue": None}
        return {"repair_issue": text}

    async def validate_repair_photos(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                     tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        photo = _attachment(tracker)
        if photo is not None:
            return {"repair_photos": [photo]}
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "deny":
            return {"repair_photos": []}
        dispatcher.utter_message(text=(
            "Pourriez-vous m'envoyer une photo, ou choisir « Sans photo » ?" if _language(tracker) == "fr"
            else "Could you send me a photo, or choose \"No photo\"?"))
        return {"repair_photos": None}


class ActionAskRepairPhotos(Action):
    """Asks for a photo of the piece, with a "no photo" button."""

    def name(self) -> str:
        return "action_ask_repair_photos"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        if _language(tracker) == "fr":
            dispatcher.utter_message(text="Merci. Pourriez-vous m'envoyer une photo ? Elle aide beaucoup "
                                          "notre atelier.",
                                     buttons=[{"title": "Sans photo", "payload": "/deny"}])
        else:
            dispatcher.utter_message(text="Thank you. Could you send me a photo? It helps our atelier "
                                          "a great deal.",
                                     buttons=[{"title": "No photo", "payload": "/deny"}])
        return []


class ActionOpenRepairRequest(Action):
    """The repair request, in the client's name, with its reference."""

    def name(self) -> str:
        return "action_open_repair_request"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        record = await backends.known_client(tracker)
        advisor = record.advisor if record else None
        item = str(tracker.get_slot("repair_item") or "")
        photos = tracker.get_slot("repair_photos") or []
        cleared: list[EventType] = [SlotSet(slot, None) for slot in REPAIR_SLOTS]
        try:
            request = await (await backends.repairs()).open(
                conversation_id=tracker.sender_id, item=item,
                issue=str(tracker.get_slot("repair_issue") or ""), photos=list(photos),
                now=backends.clock().now(), client_id=record.id if record else None,
                advisor_id=advisor.id if advisor else None,
                boutique_id=(advisor.boutique_id if advisor else None) or (
                    record.home_boutique_id if record else None))
        except (SQLAlchemyError, ValueError):
            logger.exception("repair request for %s not opened", tracker.sender_id)
            dispatcher.utter_message(text=(
                "Pardonnez-moi, je ne parviens pas à enregistrer votre demande à l'instant. "
                "Pourriez-vous réessayer dans un moment ?" if language == "fr" else
                "Forgive me, I cannot record your request at this moment. Could you try again "
                "in a little while?"))
            return cleared
        who_en = advisor.first_name if advisor else "Your client advisor"
        who_fr = advisor.first_name if advisor else "Votre conseiller"
        if language == "fr":
            text = (f"Merci. Votre demande de réparation {request.id} ({item}) est ouverte ; "
                    f"{who_fr} vous transmettra ici l'avis de notre atelier.")
        else:
            text = (f"Thank you. Your repair request {request.id} for your {item} is open; "
                    f"{who_en} will come back to you here with our atelier's assessment.")
        dispatcher.utter_message(text=text)
        return cleared
