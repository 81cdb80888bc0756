"""Care questions ("How should I care for my cashmere coat?", "Comment entretenir mon
manteau en cachemire ?", "Come devo curare il mio cappotto di cashmere?"), answered from
the catalog's own care notes, in the client's language.

:func:`asks_about_care` tells a care question from another question about a piece.
:func:`piece_meant` finds the piece she means among candidates (her purchases first, then
the catalog) from the words she used, in any of the three languages: the nouns and
materials of :mod:`salon.llm.lexicon` bring "manteau en cachemire" to the catalog's
"cashmere coat". :func:`care_answer` says the care notes and offers the atelier, through a
drop-off at a boutique. Nothing is said that the catalog's notes do not say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from salon.conversation.greetings import Reply
from salon.conversation.phrasing import pick, supported
from salon.integrations.catalog import ProductFacts, fold
from salon.llm.lexicon import VOCABULARIES

__all__ = ["DROP_OFF_PAYLOAD", "asks_about_care", "care_answer", "names_a_kind", "piece_meant"]

DROP_OFF_PAYLOAD: Final = '/book_appointment{"service": "repair_dropoff"}'
"""The button under a care answer: a drop-off at a boutique for the atelier."""

#: Words of a care question, folded, by language (all are read whatever the language).
_CARE_WORDS: Final = (
    # English
    "care", "caring", "look after", "clean", "cleaning", "wash", "washing", "dry clean",
    "store it", "store them", "store my", "storing", "storage", "maintain", "maintenance",
    "protect", "polish", "ironing", "stain",
    # French
    "entretien", "entretenir", "nettoyer", "nettoyage", "laver", "lavage", "ranger",
    "prendre soin", "soin", "soins", "conserver", "repasser", "cirer", "tache", "lave",
    "nettoie", "entretient",
    # Italian
    "cura", "curare", "pulire", "pulizia", "lavare", "lavaggio", "conservare",
    "manutenzione", "trattare", "stirare", "macchia", "lava", "pulisce", "pulisco",
)
_CARE: Final = re.compile(r"\b(" + "|".join(re.escape(word) for word in _CARE_WORDS) + r")\b")

_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "owned": "For your {name}: {care}",
        "other": "For the {name}: {care}",
        "english_only": "The care notes of the {name} are in English: {care}",
        "atelier": " Our atelier can also look after it: shall I book a drop-off at a boutique?",
        "atelier_plural": " Our atelier can also look after them: shall I book a drop-off at a boutique?",
        "button": "Book a drop-off",
    },
    "fr": {
        "owned": "Pour votre modèle {name} : {care}",
        "other": "Pour le modèle {name} : {care}",
        "english_only": "Les conseils d'entretien du modèle {name} n'existent qu'en anglais : {care}",
        "atelier": (" Notre atelier peut aussi s'en occuper : souhaitez-vous prendre rendez-vous "
                    "pour un dépôt en boutique ?"),
        "button": "Déposer en boutique",
    },
    "it": {
        "owned": "Per il Suo modello {name}: {care}",
        "other": "Per il modello {name}: {care}",
        "english_only": "I consigli di cura del modello {name} esistono solo in inglese: {care}",
        "atelier": (" Il nostro atelier può anche occuparsene: desidera fissare un appuntamento "
                    "per un deposito in boutique?"),
        "button": "Deposito in boutique",
    },
}


def asks_about_care(text: str | None) -> bool:
    """Whether the message asks how to care for, clean or store a piece."""
    return bool(text) and _CARE.search(f" {fold(text or '')} ") is not None


def _catalog_words(text: str) -> set[str]:
    """The message's words, with the catalog's (English) words its French and Italian
    nouns and materials stand for ("manteau" → coat, "cachemire" → cashmere).
    """
    folded = f" {fold(text)} "
    words = set(folded.split())
    for vocabulary in VOCABULARIES.values():
        for table in (vocabulary.product_nouns, vocabulary.materials):
            for phrase, meant in table.items():
                if f" {fold(phrase)} " in folded:
                    words.update(fold(word) for word in meant)
    return words


def names_a_kind(text: str) -> bool:
    """Whether the message says what kind of piece it means (a coat, "un sac", "in seta"),
    rather than pointing back to the piece just discussed ("how do I clean it?").
    """
    folded = f" {fold(text)} "
    return any(f" {fold(word)} " in folded
               for vocabulary in VOCABULARIES.values()
               for table in (vocabulary.product_nouns, vocabulary.materials) for word in table)


def piece_meant(text: str, candidates: Iterable[tuple[str, str]]) -> str | None:
    """The id of the one candidate (id, name) whose name the message's words designate
    best ("my cashmere coat" → the Riviera cashmere coat, not the Sable trench coat);
    None when none is named or two are named as well as each other.
    """
    words = _catalog_words(text)
    hits = sorted(((sum(1 for token in fold(name).split() if token in words), product_id)
                   for product_id, name in candidates), reverse=True)
    hits = [hit for hit in hits if hit[0] > 0]
    if not hits or (len(hits) > 1 and hits[0][0] == hits[1][0]):
        return None
    return hits[0][1]


def care_answer(facts: ProductFacts, language: str, *, owned: bool) -> Reply:
    """The piece's care notes in ``language`` (in English, said so, when the catalog has
    none in it), and the atelier offered through a drop-off at a boutique. ``owned``: she
    bought it ("For your Riviera cashmere coat").
    """
    language = supported(language)
    words = pick(_WORDS, language)
    care = facts.care_in(language)
    if care is None:
        text = words["english_only"].format(name=facts.name, care=facts.care)
    else:
        text = words["owned" if owned else "other"].format(name=facts.name, care=care)
    text = text.rstrip()
    if not text.endswith((".", "!", "?")):
        text += "."
    atelier = (words.get("atelier_plural") if facts.plural else None) or words["atelier"]
    return Reply(text + atelier, [{"title": words["button"], "payload": DROP_OFF_PAYLOAD}])
