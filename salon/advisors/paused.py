"""While a client advisor has the conversation, the client is not left unanswered.

The assistant is quiet once it has handed a conversation over; a client who writes again
before the advisor replies hears once, in her language, that her advisor has her message
(:func:`waiting_note`). A thank-you, a yes or a goodbye needs no such line, and it is said
once per handover, not on every message (:func:`should_acknowledge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from salon.conversation.language import supported

__all__ = ["NO_NOTE_INTENTS", "WAITING_NOTE_KEY", "should_acknowledge", "waiting_note"]

NO_NOTE_INTENTS: Final = frozenset({"thank", "affirm", "deny", "goodbye", "greet"})
"""Messages that close or acknowledge rather than add something for the advisor."""
WAITING_NOTE_KEY: Final = "waiting_note"
"""The metadata key that marks the note in the conversation's record."""

_NOTES: Final = {
    "en": "Your client advisor has your message and will reply to you here personally.",
    "fr": "Votre conseiller a bien reçu votre message et vous répondra ici personnellement.",
    "it": "Il Suo consulente ha ricevuto il Suo messaggio e Le risponderà qui personalmente.",
}


def waiting_note(language: str | None) -> str:
    """The line a client hears when she writes while her advisor has the conversation."""
    return _NOTES[supported(language)]


def should_acknowledge(intents_since_handover: Sequence[str | None], acknowledged: bool) -> bool:
    """Whether the client's latest message (the last of ``intents_since_handover``) gets
    the note: not if it was already said since the handover, nor for a thank-you.
    """
    if acknowledged or not intents_since_handover:
        return False
    return intents_since_handover[-1] not in NO_NOTE_INTENTS
