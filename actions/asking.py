"""Whether a form is asking its question a second time.

Rasa's form asks for the slot it still needs after every message of the client: after an
answer its validation could not use (the validation has then said why, in a sentence), or
after a digression it answered. The tracker an ask action reads still holds the slot the
form asked for before her message, so a question asked again is one whose slot was already
the requested one. It is then said alone, without the thanks or the examples of its first
asking.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

REQUESTED_SLOT = "requested_slot"


def asking_again(tracker: Tracker, slot: str) -> bool:
    """Whether the form asked for ``slot`` already, before the client's last message."""
    return bool(tracker.active_loop.get("name")) and tracker.get_slot(REQUESTED_SLOT) == slot


class AskedAloneAgain(Action, metaclass=ABCMeta):
    """A form's question as ``utter_ask_<slot>`` the first time, and as ``again_response``
    (the question alone) when it is asked again.
    """

    slot: str
    again_response: str

    @abstractmethod
    def name(self) -> str:
        """``action_ask_<slot>``: Rasa's form calls it instead of ``utter_ask_<slot>``."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        again = asking_again(tracker, self.slot)
        dispatcher.utter_message(response=self.again_response if again else f"utter_ask_{self.slot}")
        return []
