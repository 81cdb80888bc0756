"""The person screen as the last step of Rasa's NLU pipeline.

Every message the client types passes :func:`salon.advisors.screen.person_needed` after
the intent classifier. When a person must answer, the message's intent becomes
``complaint`` (for a complaint: the assistant apologises, then hands over) or
``talk_to_advisor`` (for every other reason), with confidence 1, and the rules hand the
conversation to a client advisor whatever the classifier thought. The classifier's own
ranking is kept, and ``person_screen`` in the parse data says why and what the intent was
before (``action_handoff`` gives the advisor that reason). An understood STOP or START
is kept (an opt-out is honoured first), unless the words ask for a person ("stop, get me
someone from the boutique").
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from salon.advisors.screen import person_needed

SCREEN_KEY = "person_screen"
"""The parse data's key for the screen's verdict: ``{"reason": …, "replaced_intent": …}``."""

_KEPT_INTENTS = frozenset({"opt_out", "opt_in"})


def screened_intent(reason: str) -> str:
    """The intent a message takes when a person must answer it for ``reason``."""
    return "complaint" if reason == "complaint" else "talk_to_advisor"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class PersonScreen(GraphComponent):
    """Sends every message a person must answer to the handoff intents."""

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> PersonScreen:
        """A screen needs no training and no state."""
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
        if reason is None or (before in _KEPT_INTENTS and reason != "human_request"):
            return
        message.set(INTENT, {"name": screened_intent(reason), "confidence": 1.0}, add_to_output=True)
        message.set(SCREEN_KEY, {"reason": reason, "replaced_intent": before}, add_to_output=True)
