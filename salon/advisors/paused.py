"""While a client advisor has the conversation, the client is not left unanswered.

The assistant is quiet once it has handed a conversation over; a client who writes again
before the advisor replies hears once, in her language, that her advisor has her message
(:func:`waiting_note`). A thank-you, a yes or a goodbye needs no such line, and it is said
once per handover, not on every message (:func:`should_acknowledge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from salon.conversation.phrasing import pick, your_advisor

__all__ = ["NO_NOTE_INTENTS", "WAITING_NOTE_KEY", "should_acknowledge", "waiting_note"]

NO_NOTE_INTENTS: Final = frozenset({"thank", "affirm", "deny", "goodbye", "greet"})
"""Messages that close or acknowledge rather than add something for the advisor."""
WAITING_NOTE_KEY: Final = "waiting_note"
"""The metadata key that marks the note in the conversation's record."""

_NOTES: Final = {
    "en": "{advisor} has your message and will reply to you here personally.",
    "fr": "{advisor} a bien reçu votre message et vous répondra ici personnellement.",
    "it": "{advisor} ha ricevuto il Suo messaggio e Le risponderà qui personalmente.",
}
_NOTES_WITHOUT_ADVISOR: Final = {
    "en": "Your message has reached our client advisors; one of them will reply to you here "
          "personally.",
    "fr": "Votre message est bien parvenu à nos conseillers ; l'un d'eux vous répondra ici "
          "personnellement.",
    "it": "Il Suo messaggio è arrivato ai nostri consulenti: uno di loro Le risponderà qui "
          "personalmente.",
}


def waiting_note(language: str | None, advisor_name: str | None = None,
                 advisor_gender: str | None = None) -> str:
    """The line a client hears when she writes while her advisor has the conversation:
    her own advisor by name, the noun agreeing with them ("Votre conseillère Sophie a bien
    reçu…"), or the maison's advisors when she has none.
    """
    if not advisor_name:
        return pick(_NOTES_WITHOUT_ADVISOR, language)
    advisor = your_advisor(language, advisor_name, advisor_gender, start=True)
    return pick(_NOTES, language).format(advisor=advisor)


def should_acknowledge(intents_since_handover: Sequence[str | None], acknowledged: bool) -> bool:
    """Whether the client's latest message (the last of ``intents_since_handover``) gets
    the note: not if it was already said since the handover, nor for a thank-you.
    """
    if acknowledged or not intents_since_handover:
        return False
    return intents_since_handover[-1] not in NO_NOTE_INTENTS
