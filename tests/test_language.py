"""The conversation's language: asked for, kept, switched only by clear words."""

from __future__ import annotations

import pytest

from salon.conversation.language import (
    SUPPORTED,
    conversation_language,
    detected_language,
    requested_language,
    supported,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("in English, please", "en"),
    ("English please", "en"),
    ("can we speak English?", "en"),
    ("could you write in Italian", "it"),
    ("I prefer English", "en"),
    ("sorry, my French is not good, English please", "en"),
    ("I don't speak French, can you write in English", "en"),
    ("I don't speak French", "en"),
    ("en anglais svp", "en"),
    ("vous parlez italien ?", "it"),
    ("je préfère le français", "fr"),
    ("En français s'il vous plaît", "fr"),
    ("Pouvez-vous m'écrire en italien ?", "it"),
    ("preferisco l'italiano", "it"),
    ("parla francese?", "fr"),
    ("in inglese per favore", "en"),
    ("non parlo francese", "en"),
    ("possiamo continuare in italiano?", "it"),
])
def test_a_language_asked_for(text: str, expected: str) -> None:
    assert requested_language(text) == expected


@pytest.mark.parametrize("text", [
    "I bought an Italian leather bag last year",
    "Is the Riviera scarf made of French silk?",
    "Bonjour, je voudrais prendre rendez-vous",
    "ok",
    '/inform{"boutique": "paris"}',
    "",
])
def test_a_language_merely_mentioned_is_not_asked_for(text: str) -> None:
    assert requested_language(text) is None


@pytest.mark.parametrize(("text", "current", "expected"), [
    # A conversation without a language takes its first words'.
    ("Bonjour, je voudrais prendre rendez-vous", None, "fr"),
    ("Buongiorno, vorrei sapere dov'è il mio ordine", None, "it"),
    ("Hello, I would like to book a visit", None, "en"),
    ("bonjour", None, "fr"),
    ("ciao", None, "it"),
    ("Hello", None, "en"),
    ("Hi Sophie", None, "en"),
    ("Salut !", None, "fr"),
    ("Merci", None, "fr"),
    ("Buonasera", None, "it"),
    ("ok", None, "en"),
    ("👍", None, "en"),
    # Short words, names, emoji and buttons keep the conversation's language.
    ("ok", "fr", "fr"),
    ("ok", "it", "it"),
    ("merci", "it", "it"),
    ("Paris", "fr", "fr"),
    ("Milano", "en", "en"),
    ("🙏🏻", "it", "it"),
    ('/inform{"boutique": "paris"}', "it", "it"),
    ("SOL-482913", "fr", "fr"),
    # Clear words in another language switch it.
    ("Hello, I would like to book a visit on Friday", "fr", "en"),
    ("Buonasera, vorrei prenotare un appuntamento a Milano", "fr", "it"),
    ("Bonjour, où en est ma commande s'il vous plaît ?", "it", "fr"),
    # Asking switches whatever the length.
    ("in English, please", "fr", "en"),
    ("in italiano?", "en", "it"),
    # Unknown or unsupported current language: treated as none.
    ("Guten Tag, ich möchte einen Termin", None, "en"),
])
def test_the_conversation_language(text: str, current: str | None, expected: str) -> None:
    assert conversation_language(text, current) == expected


def test_detection_is_among_the_maisons_languages_only() -> None:
    found = detected_language("Buongiorno, avrei bisogno di un appuntamento per sabato")
    assert found is not None
    language, confidence = found
    assert language == "it" and 0.8 <= confidence <= 1.0
    assert detected_language("🙂 123 !!") is None


def test_supported_languages() -> None:
    assert SUPPORTED == ("en", "fr", "it")
    assert supported("it") == "it"
    assert supported("de") == "en"
    assert supported(None) == "en"
