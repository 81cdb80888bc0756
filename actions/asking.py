"""Whether a form is asking its question a second time.

Rasa's form asks for the slot it still needs after every message of the client: after an
answer its validation could not use (the validation has then said why, in a sentence), or
after a digression it answered. The tracker an ask action reads still holds the slot the
form asked for before her message, so a question asked again is one whose slot was already
the requested one. It is then said alone, without the thanks or the examples of its first
asking, after what she said that the form kept for later, if anything ("Very well,
Saturday 12 December at 15:00." when she gave the moment while the service was asked).
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
    (the question alone) when it is asked again, with :meth:`noted` in its ``{noted}``.
    """

    slot: str
    again_response: str

    @abstractmethod
    def name(self) -> str:
        """``action_ask_<slot>``: Rasa's form calls it instead of ``utter_ask_<slot>``."""

    async def noted(self, tracker: Tracker) -> str:
        """What her last message gave that the form kept although it answered another of
        its questions, said back before this one ("" when nothing; ends with a space).
        """
        return ""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        if asking_again(tracker, self.slot):
            dispatcher.utter_message(response=self.again_response, noted=await self.noted(tracker))
        else:
            dispatcher.utter_message(response=f"utter_ask_{self.slot}")
        return []
