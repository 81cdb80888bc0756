"""Asking a client who writes from a WhatsApp username for her phone number.

Meta omits the phone number of a client with a username who has not written to this
number for 30 days and is not in the business's contacts: the message carries her BSUID
alone, which the maison's book may not know. Where the assistant must know who she is
(her orders, her appointments), it says so plainly and asks with Meta's
contact-information request: one tap shares her number, which the channel then links to
her (:mod:`salon.webhook.identity_changes`), and the assistant takes her request up again.
"""

from __future__ import annotations

from typing import Any, Final

from salon.conversation.phrasing import pick

__all__ = ["contact_request", "thanks_for_number"]

#: What she is asked, by what she asked for and language. The button's label is Meta's.
_ASK: Final[dict[str, dict[str, str]]] = {
    "orders": {
        "en": "I do not yet know who is writing from this account, so I cannot see your orders. "
              "If you share your number with me, I will look at once.",
        "fr": "Je ne sais pas encore qui m'écrit depuis ce compte, je ne peux donc pas voir vos "
              "commandes. Si vous voulez bien me communiquer votre numéro, je vérifie aussitôt.",
        "it": "Non so ancora chi mi scrive da questo account, quindi non posso vedere i Suoi "
              "ordini. Se vuole condividere con me il Suo numero, verifico subito.",
    },
    "appointments": {
        "en": "I do not yet know who is writing from this account, so I cannot see your "
              "appointments. If you share your number with me, I will look at once.",
        "fr": "Je ne sais pas encore qui m'écrit depuis ce compte, je ne peux donc pas voir vos "
              "rendez-vous. Si vous voulez bien me communiquer votre numéro, je vérifie aussitôt.",
        "it": "Non so ancora chi mi scrive da questo account, quindi non posso vedere i Suoi "
              "appuntamenti. Se vuole condividere con me il Suo numero, verifico subito.",
    },
}
_THANKS: Final[dict[str, str]] = {
    "en": "Thank you, I have your number now.",
    "fr": "Merci, j'ai bien votre numéro.",
    "it": "Grazie, ora ho il Suo numero.",
}


def contact_request(about: str, language: str) -> dict[str, Any]:
    """The Cloud API ``request_contact_info`` message asking for her number, ``about``
    ``orders`` or ``appointments``, in her language (English when it has no words).
    """
    texts = _ASK[about]
    return {"type": "interactive", "interactive": {
        "type": "request_contact_info",
        "body": {"text": pick(texts, language)},
        "action": {"name": "request_contact_info"},
    }}


def thanks_for_number(language: str) -> str:
    """The thanks once the client has shared her number, in her language (English when it
    has no words).
    """
    return pick(_THANKS, language)
