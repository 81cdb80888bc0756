"""A shared contact card: a username-only client's number, when she answers our request
for it (the channel has already linked it to her), takes up what she had asked for.
"""

from __future__ import annotations

from typing import Any, Final

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.backends import RESUME_SLOT, client_ids
from actions.greeting import conversation_language
from salon.conversation.contact_request import thanks_for_number

#: The requests that wait for her number (the slot is only ever set by these actions).
RESUMABLE: Final = frozenset({"action_order_status", "action_cancel_appointment",
                              "action_reschedule_appointment"})


class ActionContactShared(Action):
    """Thanks the client for her number and takes up the request that waited for it, or
    acknowledges the card.
    """

    def name(self) -> str:
        return "action_contact_shared"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        resume = tracker.get_slot(RESUME_SLOT)
        wa_id, _ = client_ids(tracker)
        if resume in RESUMABLE and wa_id:
            dispatcher.utter_message(text=thanks_for_number(conversation_language(tracker, None)))
            return [SlotSet(RESUME_SLOT, None), FollowupAction(str(resume))]
        dispatcher.utter_message(response="utter_contact_received")
        return [SlotSet(RESUME_SLOT, None)] if resume else []
