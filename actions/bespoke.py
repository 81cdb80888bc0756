"""Bespoke and personalisation requests: a short brief (the piece and the wish, in the
client's words, with the catalog's name for the piece when it is one of ours), handed to
the client's advisor with the conversation.
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
from actions.handoff import hand_over

logger = logging.getLogger(__name__)

MIN_WORDS = 6
"""A brief without a piece the catalog knows needs at least this many words."""


async def _piece(text: str) -> str | None:
    try:
        facts = await backends.catalog().find(text)
    except SQLAlchemyError:
        logger.exception("catalog unavailable while reading a bespoke brief")
        return None
    return facts.name if facts is not None else None


class ValidateCustomisationForm(FormValidationAction):
    """Keeps a bespoke brief that names one of our pieces or says enough in words."""

    def name(self) -> str:
        return "validate_customisation_form"

    async def validate_bespoke_brief(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                     tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = str(slot_value or "").strip()
        if text.startswith("/"):
            return {"bespoke_brief": None}
        if await _piece(text) is None and len(text.split()) < MIN_WORDS:
            return {"bespoke_brief": None}  # the form asks for the piece and the wish
        return {"bespoke_brief": text}


class ActionBespokeBrief(Action):
    """The brief goes to the advisor as a handoff; the client hears who will answer."""

    def name(self) -> str:
        return "action_bespoke_brief"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        brief = str(tracker.get_slot("bespoke_brief") or "")
        piece = await _piece(brief) if brief else None
        events: list[EventType] = [SlotSet("bespoke_brief", None)]
        if piece:
            events.insert(0, SlotSet("product", piece))
        return events + await hand_over(dispatcher, tracker, "bespoke",
                                        note=f"Bespoke brief: {brief}" + (
                                            f" (catalog piece: {piece})" if piece else ""))
