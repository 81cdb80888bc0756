"""What a follow-up tells the client: the news it promised, in her language.

A follow-up reaches a client whose window may have closed: the guard parks it behind the
"your client advisor has an update" template, and what her tap delivers must be that
update, not a greeting. :func:`follow_up_lead` opens the news; the news itself is the
order's status or the piece's availability the follow-up is about, said by
:mod:`salon.conversation.order_status` and :mod:`salon.conversation.product_answers`.
"""

from __future__ import annotations

from typing import Final

from salon.conversation.language import supported

__all__ = ["follow_up_lead"]

_LEADS: Final = {
    "en": {"order": "As promised, news of your order {number}:",
           "piece": "As promised, news of the {name}:"},
    "fr": {"order": "Comme promis, des nouvelles de votre commande {number} :",
           "piece": "Comme promis, des nouvelles du modèle {name} :"},
    "it": {"order": "Come promesso, ecco gli aggiornamenti sul Suo ordine {number}:",
           "piece": "Come promesso, ecco gli aggiornamenti sul modello {name}:"},
}


def follow_up_lead(language: str | None, *, order: str | None = None, piece: str | None = None) -> str:
    """The words that open a follow-up's news about ``order`` (a number) or ``piece``."""
    words = _LEADS[supported(language)]
    if order is not None:
        return words["order"].format(number=order)
    if piece is not None:
        return words["piece"].format(name=piece)
    raise ValueError("a follow-up's news is about an order or a piece")
