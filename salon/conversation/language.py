"""The language a conversation is held in: English, French or Italian.

The rule, in order:

1. A client who asks for a language gets it ("in English, please", "vous parlez
   italien ?", "preferisco l'italiano"): :func:`requested_language`.
2. Otherwise the conversation keeps the language it has (the slot, else the client
   record's) unless the message is clearly written in another of the maison's languages:
   at least :data:`MIN_WORDS` words and a detector confidence of at least
   :data:`SWITCH_CONFIDENCE`. A lone "ok", "merci", a name, an emoji or a button keeps it.
3. A conversation that has no language yet takes the one its first words are written
   in: a short first message by its greeting or thanks ("bonjour", "ciao", "hello"), a
   longer one by the detector; else English.

Detection is offline (lingua, restricted to the maison's languages, so it never
answers German for a French typo). A fourth language is data: add its code to
:data:`SUPPORTED`, its lingua name to :data:`_LINGUA_NAMES` and its words to
:data:`_LANGUAGE_NAMES`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

__all__ = [
    "DEFAULT",
    "MIN_WORDS",
    "SUPPORTED",
    "SWITCH_CONFIDENCE",
    "conversation_language",
    "detected_language",
    "requested_language",
    "supported",
]

SUPPORTED: Final = ("en", "fr", "it")
"""The languages the assistant writes, as ISO 639-1 codes."""
DEFAULT: Final = "en"
"""The language of a conversation nothing else decides."""
MIN_WORDS: Final = 3
"""Fewer words than this never switch a conversation's language."""
SWITCH_CONFIDENCE: Final = 0.80
"""The detector's confidence needed to switch a conversation to another language."""
FIRST_WORDS_CONFIDENCE: Final = 0.60
"""The detector's confidence needed to give a conversation its first language."""

_LINGUA_NAMES: Final = {"en": "ENGLISH", "fr": "FRENCH", "it": "ITALIAN"}

# A first message of a word or two is too short for the detector ("Hello" reads as
# Italian as often as English): its greeting or thanks decides (accents removed).
_FIRST_WORDS: Final = {
    "en": frozenset("hello hi hey hiya morning evening afternoon thanks thank cheers please dear".split()),
    "fr": frozenset("bonjour bonsoir salut coucou merci svp stp madame monsieur".split()),
    "it": frozenset("ciao buongiorno buonasera salve grazie prego gentile signora signore".split()),
}

# What clients call each language, in each of the maison's languages (accents removed).
_LANGUAGE_NAMES: Final = {
    "en": ("english", "anglais", "inglese", "anglaise"),
    "fr": ("french", "francais", "francaise", "francese"),
    "it": ("italian", "italien", "italienne", "italiano"),
}
# A named language is asked for when it closes its clause or a polite word follows it
# ("in English, please", "parla francese?") and a request comes just before it ("in",
# "en", "speak", "parlez", "preferisco l'"), or it opens its clause ("…, English
# please"), or the message is that short request.
_ASKING: Final = re.compile(
    r"\b(?:in|en|into|speak|speaks|write|reply|answer|continue|switch\s+to|prefer|rather"
    r"|parlez|parler|parle|ecrire|ecrivez|repondre|repondez|continuer|passer\s+en|prefere"
    r"|preferer|parla|parlare|parli|scrivere|scrivermi|scrivete|rispondere|rispondete|continuare"
    r"|preferisco|preferirei)(?:\s+(?:vous|tu|lei|le|la|l|the|to\s+me|me|mi|in))*\s*$")
_CLOSING: Final = re.compile(
    r"^\s*(?:$|[?.!,;:)]|please|pls|plz|svp|stp|s\s+il\s+vous\s+plait|per\s+favore|x\s+favore"
    r"|grazie|merci|thanks|thank|instead|plutot|invece|from\s+now|desormais|d\s+ora|if\s+possible"
    r"|si\s+possible|se\s+possibile|ok|\W)")
_NEGATION: Final = re.compile(r"\b(?:don\s*t|dont|do\s+not|can\s*t|cannot|not|ne|pas|non|nn)\b")
_WORDS: Final = re.compile(r"[^\W\d_]+")
_SHORT_REQUEST: Final = 4


def supported(language: str | None) -> str:
    """``language`` if the assistant writes it, else :data:`DEFAULT`."""
    return language if language in SUPPORTED else DEFAULT


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("'", " ")


def requested_language(text: str | None) -> str | None:
    """The language the client asks the conversation to be held in, if they ask.

    A language named after a negation in its clause ("I don't speak French") is
    refused, not asked; when the only language named is refused, English is wanted.
    """
    if not text or text.startswith("/"):
        return None
    plain = _plain(text)
    short = len(_WORDS.findall(plain)) <= _SHORT_REQUEST
    wanted: list[tuple[int, str]] = []
    refused: set[str] = set()
    for code, names in _LANGUAGE_NAMES.items():
        for match in re.finditer(r"\b(?:" + "|".join(names) + r")\b", plain):
            clause = re.split(r"[.,;!?]", plain[:match.start()])[-1]
            if _NEGATION.search(" ".join(clause.split()[-4:])):
                refused.add(code)
            elif _CLOSING.match(plain[match.end():]) and (short or not clause.strip() or _ASKING.search(clause)):
                wanted.append((match.start(), code))
    chosen = [code for _, code in sorted(wanted) if code not in refused]
    if chosen:
        return chosen[-1]
    if refused and DEFAULT not in refused:
        return DEFAULT
    return None


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    languages = [getattr(Language, _LINGUA_NAMES[code]) for code in SUPPORTED]
    return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()


_CODES: Final = {_LINGUA_NAMES[code]: code for code in SUPPORTED}


def detected_language(text: str) -> tuple[str, float] | None:
    """The maison's language ``text`` is most likely written in, and the detector's
    confidence in it (0 to 1); None when the text has no letters.
    """
    if not _WORDS.search(text):
        return None
    values = _detector().compute_language_confidence_values(text)
    if not values:
        return None
    best = values[0]
    return _CODES[best.language.name], float(best.value)


def conversation_language(text: str | None, current: str | None) -> str:
    """The language to hold the conversation in after the client wrote ``text``.

    ``current`` is the conversation's language so far (its slot, else the client
    record's); see the module's rule.
    """
    asked = requested_language(text)
    if asked is not None:
        return asked
    if not text or text.startswith("/"):
        return supported(current)
    found = detected_language(text)
    if found is None:
        return supported(current)
    language, confidence = found
    words = _WORDS.findall(_plain(text))
    if current in SUPPORTED:
        if len(words) >= MIN_WORDS and confidence >= SWITCH_CONFIDENCE:
            return language
        return str(current)
    if len(words) < MIN_WORDS:
        greeted = {code for code, known in _FIRST_WORDS.items() if known & set(words)}
        return greeted.pop() if len(greeted) == 1 else DEFAULT
    return language if confidence >= FIRST_WORDS_CONFIDENCE else DEFAULT
