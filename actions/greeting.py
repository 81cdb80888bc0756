"""The greeting: by name, in the client's language, their advisor first for a VIC."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import backends
from salon.conversation.greetings import greeting
from salon.conversation.phrasing import language_of
from salon.integrations.crm import ClientRecord


def conversation_language(tracker: Tracker, record: ClientRecord | None) -> str:
    """The language of the client's latest words, else of the conversation so far, else
    of their record, else English.
    """
    fallback = tracker.get_slot("language") or (record.language if record else None)
    return language_of(tracker.latest_message.get("text"), fallback)


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
            dispatcher.utter_message(text=reply.text, buttons=reply.buttons)
        return [SlotSet("language", language)]


class ActionDetectLanguage(Action):
    """Keeps the ``language`` slot on the language the client writes in (custom slot
    mapping: Rasa runs it on every message); a button or a bare name keeps the current
    one, and the client's record decides before anything is written.
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
