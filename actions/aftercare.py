"""Aftercare: the piece, what happened, photos if the client has them (sent through the
channel as ``/share_media`` with the attachment in the metadata), then a repair request
opened in the client's name.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.asking import asking_again
from actions.greeting import conversation_language
from salon.conversation.language import supported
from salon.conversation.phrasing import bare_name, pick

logger = logging.getLogger(__name__)

REPAIR_SLOTS = ("repair_item", "repair_issue", "repair_photos")


#: What the aftercare actions say, by language.
_SAY: Final[dict[str, dict[str, str]]] = {
    "en": {
        "photo_or_none": "Could you send me a photo, or choose \"No photo\"?",
        "ask_photo": "Thank you. Could you send me a photo? It helps our atelier a great deal.",
        "send_when_ready": "Please send it here whenever you are ready, or choose \"No photo\".",
        "no_photo": "No photo",
        "not_recorded": ("Forgive me, I cannot record your request at this moment. Could you try "
                         "again in a little while?"),
        "opened": ("Thank you. Your repair request {reference} for your {item} is open; {who} "
                   "will come back to you here with our atelier's assessment."),
        "your_advisor": "one of our client advisors",
    },
    "fr": {
        "photo_or_none": "Pourriez-vous m'envoyer une photo, ou choisir « Sans photo » ?",
        "ask_photo": "Merci. Pourriez-vous m'envoyer une photo ? Elle sera précieuse pour notre atelier.",
        "send_when_ready": "Envoyez-la ici dès que vous le pourrez, ou choisissez « Sans photo ».",
        "no_photo": "Sans photo",
        "not_recorded": ("Pardonnez-moi, je ne parviens pas à enregistrer votre demande à "
                         "l'instant. Pourriez-vous réessayer dans un moment ?"),
        "opened": ("Merci. Votre demande de réparation {reference} ({item}) est ouverte ; {who} "
                   "vous transmettra ici l'avis de notre atelier."),
        "your_advisor": "l'un de nos conseillers",
    },
    "it": {
        "photo_or_none": "Potrebbe inviarmi una foto, oppure scegliere «Senza foto»?",
        "ask_photo": "Grazie. Potrebbe inviarmi una foto? È di grande aiuto per il nostro atelier.",
        "send_when_ready": "Me la invii pure qui quando può, oppure scelga «Senza foto».",
        "no_photo": "Senza foto",
        "not_recorded": ("Mi perdoni, in questo momento non riesco a registrare la Sua richiesta. "
                         "Potrebbe riprovare tra qualche istante?"),
        "opened": ("Grazie. La Sua richiesta di riparazione {reference} ({item}) è stata registrata; "
                   "{who} Le farà sapere qui il parere del nostro atelier."),
        "your_advisor": "uno dei nostri consulenti",
    },
}


def _say(language: str, key: str, **values: str) -> str:
    return pick(_SAY, language)[key].format(**values)


def _language(tracker: Tracker) -> str:
    return supported(conversation_language(tracker, None))


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
        return {"repair_item": facts.name if facts is not None else bare_name(text)}

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
        # Neither a photo nor "no photo": the question is asked again, once
        # (action_ask_repair_photos).
        return {"repair_photos": None}


class ActionAskRepairPhotos(Action):
    """Asks for a photo of the piece, with a "no photo" button. Asked again (she wrote
    instead of sending one): "send it whenever you are ready" after a yes, else the choice
    between a photo and none, in one message.
    """

    def name(self) -> str:
        return "action_ask_repair_photos"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        key = "ask_photo"
        if asking_again(tracker, "repair_photos"):
            intent = (tracker.latest_message.get("intent") or {}).get("name")
            key = "send_when_ready" if intent == "affirm" else "photo_or_none"
        dispatcher.utter_message(text=_say(language, key),
                                 buttons=[{"title": _say(language, "no_photo"), "payload": "/deny"}])
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
            dispatcher.utter_message(text=_say(language, "not_recorded"))
            return cleared
        who = advisor.first_name if advisor else _say(language, "your_advisor")
        dispatcher.utter_message(text=_say(language, "opened", reference=request.id, item=item,
                                           who=who))
        return cleared
