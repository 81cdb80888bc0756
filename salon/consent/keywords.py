"""STOP and START in the client's own words, and the confirmation she gets.

The channel reads every text message with :func:`keyword_of` before any language model
sees it: a message that is STOP (or ARRÊT, BASTA, DISISCRIVIMI, "stop please"…) withdraws
every category the maison starts (:data:`STOP_CATEGORIES`), START (or COMMENCER,
RIPRENDI…) grants back utility messages only (:data:`START_CATEGORIES`), and
:func:`confirmation` answers once, in the language the keyword was written in.

A keyword is one short word that can mean nothing else, alone or with a few polite words
("basta grazie", "arrêt svp"); sentences ("non scrivetemi più", "please stop contacting
me") are the assistant's to understand and confirm. What is recorded, and how the latest
decision wins, is :mod:`salon.consent.ledger`'s.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "CONFIRMATIONS",
    "CONSENT_UTTERANCES",
    "START_CATEGORIES",
    "STOP_CATEGORIES",
    "confirmation",
    "keyword_categories",
    "keyword_of",
]

CONSENT_UTTERANCES: Final = {"utter_opt_out": False, "utter_opt_in": True}
"""The assistant's responses that confirm a decision it understood in the client's sentence."""
STOP_CATEGORIES: Final = ("utility", "marketing")
"""What STOP withdraws: every message the maison starts."""
START_CATEGORIES: Final = ("utility",)
"""What START grants back: messages about her requests, orders and appointments. Marketing
is never granted by a keyword: it needs its own explicit, evidenced agreement."""


def keyword_categories(keyword: str) -> tuple[str, ...]:
    """The categories a ``stop`` or ``start`` keyword decides."""
    return STOP_CATEGORIES if keyword == "stop" else START_CATEGORIES


# Each keyword (accents removed) and the language it is written in; "stop" and "start"
# are every language's.
_STOP_KEYWORDS: Final = {
    "stop": None, "optout": None, "unsubscribe": "en", "unsub": "en",
    "arret": "fr", "arrete": "fr", "arretez": "fr", "desabonner": "fr", "desabonnez": "fr",
    "desinscrire": "fr",
    "basta": "it", "disiscrivimi": "it", "disiscrivetemi": "it", "disiscrivermi": "it",
    "cancellami": "it", "cancellatemi": "it",
    "stopp": "de",
}
_START_KEYWORDS: Final = {
    "start": None, "optin": None, "resume": "en", "subscribe": "en", "unstop": "en",
    "commencer": "fr", "reprendre": "fr", "abonner": "fr", "reabonner": "fr",
    "riprendi": "it", "ricomincia": "it", "iscrivimi": "it",
}
_STOP_WORDS: Final = frozenset(_STOP_KEYWORDS)
_START_WORDS: Final = frozenset(_START_KEYWORDS)
_FILLER: Final = frozenset({"please", "pls", "svp", "stp", "merci", "thanks", "thank", "you", "bitte",
                            "danke", "grazie", "per", "favore", "piacere", "s'il", "vous", "plait", "me",
                            "moi", "mi", "all", "tout", "now", "maintenant", "ora", "adesso", "ok", "je",
                            "veux", "voglio", "i", "want", "to", "a", "se", "de", "opt", "out", "in", "again",
                            "jetzt", "mille"})
# Polite words that say the language of a message whose keyword does not ("STOP grazie").
_POLITE_LANGUAGE: Final = {"please": "en", "pls": "en", "thanks": "en", "thank": "en",
                           "svp": "fr", "stp": "fr", "merci": "fr", "plait": "fr",
                           "grazie": "it", "favore": "it", "piacere": "it",
                           "bitte": "de", "danke": "de"}
_MAX_WORDS: Final = 5


def _plain(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    # Accents and invisible format characters (zero-width spaces and joiners, direction
    # marks) go: "S\u200bTOP" is a STOP.
    stripped = "".join(ch for ch in decomposed
                       if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf")
    stripped = stripped.replace("opt out", "optout").replace("opt-out", "optout")
    stripped = stripped.replace("opt in", "optin").replace("opt-in", "optin")
    return re.findall(r"[a-z']+", stripped)


def keyword_of(text: str) -> str | None:
    """``"stop"`` or ``"start"`` when the message is that keyword, alone or with little
    else (politeness, punctuation, any case or accents); None otherwise. A sentence
    that merely contains the word (``"when does the sale stop?"``) is not a keyword.
    """
    if not isinstance(text, str) or len(text) > 80:
        return None
    words = _plain(text)
    if not words or len(words) > _MAX_WORDS:
        return None
    stops = [w for w in words if w in _STOP_WORDS]
    starts = [w for w in words if w in _START_WORDS]
    rest = [w for w in words if w not in _STOP_WORDS and w not in _START_WORDS and w not in _FILLER]
    if rest or bool(stops) == bool(starts):
        return None
    return "stop" if stops else "start"


_KEYWORD_LANGUAGE: Final = {word: language for word, language in {**_STOP_KEYWORDS, **_START_KEYWORDS}.items()
                            if language is not None}

CONFIRMATIONS: Final[dict[str, dict[str, str]]] = {
    "stop": {
        "en": "Understood. You will no longer receive messages from us on WhatsApp unless you write to "
              "us. Should you wish to hear from us again, simply write START.",
        "fr": "C'est entendu. Vous ne recevrez plus de messages de notre part sur WhatsApp, sauf si vous "
              "nous écrivez. Pour nous retrouver, il vous suffira d'écrire START.",
        "de": "Verstanden. Sie erhalten von uns keine Nachrichten mehr auf WhatsApp, es sei denn, Sie "
              "schreiben uns. Möchten Sie wieder von uns hören, schreiben Sie einfach START.",
        "it": "Certamente. Non riceverà più i nostri messaggi su WhatsApp, a meno che non sia Lei a "
              "scriverci. Se desidera riceverli di nuovo, Le basterà scrivere START.",
    },
    "start": {
        "en": "Thank you. You will again receive our messages about your requests, orders and "
              "appointments on WhatsApp; our news and invitations only once you have agreed to them "
              "explicitly. You may write STOP at any time.",
        "fr": "Merci. Vous recevrez de nouveau sur WhatsApp nos messages concernant vos demandes, "
              "commandes et rendez-vous ; nos nouveautés et invitations, uniquement avec votre accord "
              "explicite. Vous pouvez écrire STOP à tout moment.",
        "de": "Vielen Dank. Sie erhalten wieder unsere Nachrichten zu Ihren Anfragen, Bestellungen und "
              "Terminen auf WhatsApp; Neuigkeiten und Einladungen nur mit Ihrer ausdrücklichen "
              "Zustimmung. Sie können jederzeit STOP schreiben.",
        "it": "Grazie. Riceverà di nuovo su WhatsApp i nostri messaggi sulle Sue richieste, sui Suoi "
              "ordini e appuntamenti; le nostre novità e i nostri inviti, solo con il Suo consenso "
              "esplicito. Può scrivere STOP in qualsiasi momento.",
    },
}


def confirmation(keyword: str, text: str, language: str | None) -> tuple[str, str]:
    """(language, confirmation text) for a keyword: the language the keyword was written
    in when it says (ARRÊT is French, BASTA Italian), else the language of the polite
    words around it ("STOP grazie"), else the client's, else English.
    """
    words = _plain(text)
    spoken = (next((_KEYWORD_LANGUAGE[w] for w in words if w in _KEYWORD_LANGUAGE), None)
              or next((_POLITE_LANGUAGE[w] for w in words if w in _POLITE_LANGUAGE), None))
    lang = spoken or (language or "en").split("-")[0].split("_")[0].lower()
    if lang not in CONFIRMATIONS[keyword]:
        lang = "en"
    return lang, CONFIRMATIONS[keyword][lang]
