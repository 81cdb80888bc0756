"""The person screen as the last step of Rasa's NLU pipeline.

Every message the client types passes :func:`salon.advisors.screen.person_needed` after
the intent classifier. When a person must answer, the message's intent becomes
``complaint`` (for a complaint: the assistant apologises, then hands over) or
``talk_to_advisor`` (for every other reason), with confidence 1, and the rules hand the
conversation to a client advisor whatever the classifier thought. The classifier's own
ranking is kept, and ``person_screen`` in the parse data says why and what the intent was
before (``action_handoff`` gives the advisor that reason). An understood STOP or START
the classifier is sure of is kept (an opt-out is honoured first), unless the words ask
for a person by the screen's patterns ("stop, get me someone from the boutique"), not by
its learned model alone ("non voglio più essere contattata"); one it is unsure of
("arrêtez tout, quelqu'un a changé mon mot de passe") gives way to the person.
A START is her agreement to be written to, recorded from her words: one the classifier
is unsure of (below :data:`KEPT_FROM`) takes its next intent, or ``nlu_fallback`` ("I want
to return the belt" read as a START at 0.60 is not one).

The other way round, a message the classifier sent to ``complaint`` or
``talk_to_advisor`` that neither the patterns nor the learned model
(:mod:`salon.advisors.person_model`) think a person must answer ("È oro vero o
placcato?") takes the classifier's next intent, or ``nlu_fallback`` when that one is
unsure; ``person_screen`` then holds no reason and the intent it replaced.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from salon.advisors.person_model import default_model, warm
from salon.advisors.screen import pattern_reason, person_needed

SCREEN_KEY = "person_screen"
"""The parse data's key for the screen's verdict: ``{"reason": …, "replaced_intent": …}``."""

_KEPT_INTENTS = frozenset({"opt_out", "opt_in"})
KEPT_FROM = 0.8
"""The classifier's confidence from which an understood STOP or START is kept."""
HANDOFF_INTENTS = frozenset({"complaint", "talk_to_advisor"})
"""The intents the rules hand to a client advisor."""

DEMOTE_BELOW = 0.2
"""A handoff intent is undone when the learned model's chance of a person is below this."""

NEXT_INTENT_FLOOR = 0.3
"""The classifier's next intent is taken from this confidence; below it, ``nlu_fallback``."""


def screened_intent(reason: str) -> str:
    """The intent a message takes when a person must answer it for ``reason``."""
    return "complaint" if reason == "complaint" else "talk_to_advisor"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class PersonScreen(GraphComponent):
    """Sends every message a person must answer to the handoff intents."""

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> PersonScreen:
        """A screen needs no Rasa training; its learned model is trained now, not on a turn."""
        warm()
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        """Screen each message; change its intent when a person must answer it."""
        for message in messages:
            self._screen(message)
        return messages

    @staticmethod
    def _screen(message: Message) -> None:
        text = message.get(TEXT)
        if not isinstance(text, str) or not text or text.startswith("/"):
            return
        intent = message.get(INTENT) or {}
        before = intent.get("name") if isinstance(intent, dict) else None
        reason = person_needed(text)
        if reason is None:
            if before in HANDOFF_INTENTS and default_model().read(text).person < DEMOTE_BELOW:
                _demote(message, before, HANDOFF_INTENTS)
            elif before == "opt_in" and _confidence(intent) < KEPT_FROM:
                # Her agreement to be written to is recorded from her words only when they
                # are unambiguous: an unsure START takes the classifier's next intent.
                _demote(message, before, frozenset({"opt_in"}))
            return
        if before in _KEPT_INTENTS and _confidence(intent) >= KEPT_FROM and (
                reason != "human_request" or pattern_reason(text) != "human_request"):
            # A STOP or START the classifier is sure of is honoured first, unless her own
            # words ask for a person (the learned model alone hears "contattata" as such).
            return
        message.set(INTENT, {"name": screened_intent(reason), "confidence": 1.0}, add_to_output=True)
        message.set(SCREEN_KEY, {"reason": reason, "replaced_intent": before}, add_to_output=True)


def _confidence(intent: object) -> float:
    value = intent.get("confidence") if isinstance(intent, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def _demote(message: Message, before: str, excluded: frozenset[str]) -> None:
    """Take the classifier's best intent that is not one of ``excluded`` (or ``nlu_fallback``)."""
    ranking = message.get(INTENT_RANKING_KEY) or []
    following = next((entry for entry in ranking if isinstance(entry, dict)
                      and entry.get("name") not in excluded | {"nlu_fallback"}), None)
    if following is not None and float(following.get("confidence") or 0.0) >= NEXT_INTENT_FLOOR:
        intent = {"name": following["name"], "confidence": float(following["confidence"])}
    else:
        intent = {"name": "nlu_fallback", "confidence": 1.0}
    message.set(INTENT, intent, add_to_output=True)
    message.set(SCREEN_KEY, {"reason": None, "replaced_intent": before}, add_to_output=True)
