"""The greeting: by name, in the client's language, their advisor first for a VIC."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import backends
from salon.conversation import language
from salon.conversation.greetings import greeting
from salon.integrations.crm import ClientRecord
from salon.whatsapp.merging import LEAD


def conversation_language(tracker: Tracker, record: ClientRecord | None) -> str:
    """The conversation's language after the client's latest words: the one they ask
    for, else the conversation's so far (its slot, else their record's) unless they
    clearly write in another (salon/conversation/language.py).
    """
    current = tracker.get_slot("language") or (record.language if record else None)
    return language.conversation_language(tracker.latest_message.get("text"), current)


class ActionGreet(Action):
    """Greets the client by name in their language (their advisor first for a VIC) and
    keeps the language in its slot.
    """

    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        record = await backends.known_client(tracker)
        language = conversation_language(tracker, record)
        reply = greeting(record, backends.clock().now(), language)
        if reply is None:
            dispatcher.utter_message(response="utter_greet")
        else:
            # The lead is what stays of the greeting when an answer follows it in one
            # WhatsApp message (salon/whatsapp/merging.py).
            extra = {"metadata": {LEAD: reply.lead}} if reply.lead else {}
            dispatcher.utter_message(text=reply.text, buttons=reply.buttons, **extra)
        return [SlotSet("language", language)]


class ActionDetectLanguage(Action):
    """Keeps the ``language`` slot on the conversation's language (custom slot mapping:
    Rasa runs it on every message): the client's record first, then the language they
    ask for or clearly write in; a button, a bare name or a lone "ok" keeps it.
    """

    def name(self) -> str:
        return "action_detect_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        current = tracker.get_slot("language")
        record = None if current else await backends.known_client(tracker)
        language = conversation_language(tracker, record)
        return [] if language == current else [SlotSet("language", language)]
