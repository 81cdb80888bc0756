"""Care questions answered from the catalog's care notes, in the client's language, for
the piece she means: named, one of hers, or the one piece of the catalog her words name."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from salon.conversation.care_answers import (
    DROP_OFF_PAYLOAD,
    asks_about_care,
    care_answer,
    piece_meant,
)
from salon.integrations.catalog import ProductFacts
from tests.action_support import action_server_on, sealed

CATALOG = [("RW-001", "Riviera cashmere coat"), ("RW-004", "Sable trench coat"),
           ("RW-007", "Alpine cashmere sweater"), ("RW-005", "Étoile silk scarf"),
           ("LG-001", "Aurore tote"), ("LG-002", "Céleste saddle bag")]
COAT = ProductFacts(id="RW-001", name="Riviera cashmere coat", category="ready_to_wear", description="",
                    materials=("cashmere",), colours=("Camel",), sizes=("38",), price_eur=5800, price_gbp=4800,
                    care="Dry clean only; brush after wearing.", atelier="", origin_country="", craft="",
                    stock=(), care_by_language={"en": "Dry clean only; brush after wearing.",
                                                "fr": "Nettoyage à sec uniquement ; brosser après chaque port.",
                                                "it": "Solo lavaggio a secco; spazzolare dopo ogni utilizzo."})


@pytest.mark.parametrize("text", [
    "How should I care for my cashmere coat?", "can I wash the Étoile silk scarf?",
    "how do I look after my leather bag", "how should I store it over the summer? how to store it",
    "Comment entretenir mon manteau en cachemire ?", "comment nettoyer mon sac en cuir ?",
    "Come devo curare il mio cappotto di cashmere?", "come si lava un maglione di cashmere?",
])
def test_care_questions_are_told_apart(text: str) -> None:
    assert asks_about_care(text)


@pytest.mark.parametrize("text", [
    "is the Aurore tote in store in London?", "how much is the Méridien 38", "do you have it in black?",
    "le sac Aurore est-il disponible à Paris ?", "quanto costa la borsa Aurore?", "", None,
])
def test_other_questions_about_a_piece_are_not_care_questions(text: str | None) -> None:
    assert not asks_about_care(text)


@pytest.mark.parametrize("text", [
    "How should I care for my cashmere coat?", "Comment entretenir mon manteau en cachemire ?",
    "Come devo curare il mio cappotto di cashmere?",
])
def test_her_words_name_the_piece_in_any_of_the_three_languages(text: str) -> None:
    assert piece_meant(text, CATALOG) == "RW-001"


def test_a_piece_no_better_named_than_another_is_not_chosen() -> None:
    assert piece_meant("how do I clean my coat?", CATALOG) is None  # two coats
    assert piece_meant("how do I clean it?", CATALOG) is None
    # Among her own pieces, "my coat" is the one coat she owns.
    assert piece_meant("how do I clean my coat?", [("RW-004", "Sable trench coat"),
                                                   ("LG-001", "Aurore tote")]) == "RW-004"


def test_the_answer_is_the_catalogs_notes_in_her_language_with_the_atelier_offered() -> None:
    reply = care_answer(COAT, "en", owned=True)
    assert reply.text == ("For your Riviera cashmere coat: Dry clean only; brush after wearing. Our atelier "
                          "can also look after it: shall I book a drop-off at a boutique?")
    assert reply.buttons == [{"title": "Book a drop-off", "payload": DROP_OFF_PAYLOAD}]
    reply = care_answer(COAT, "fr", owned=False)
    assert reply.text.startswith("Pour le modèle Riviera cashmere coat : Nettoyage à sec uniquement ; brosser")
    assert reply.buttons[0]["title"] == "Déposer en boutique"
    reply = care_answer(COAT, "it", owned=True)
    assert reply.text.startswith("Per il Suo modello Riviera cashmere coat: Solo lavaggio a secco;")
    assert all(len(b["title"]) <= 20 for lang in ("en", "fr", "it")
               for b in care_answer(COAT, lang, owned=False).buttons)
    # No notes in her language: the English ones, said to be English; a plural name agrees.
    english = replace(COAT, care_by_language={})
    assert care_answer(english, "fr", owned=False).text.startswith(
        "Les conseils d'entretien du modèle Riviera cashmere coat n'existent qu'en anglais : Dry clean only")
    earrings = replace(COAT, name="Perle earrings", plural=True)
    assert "look after them:" in care_answer(earrings, "en", owned=False).text


def _tracker(sender: str, text: str, language: str | None = None,
             entities: list[dict[str, Any]] | None = None) -> Tracker:
    return Tracker(sender_id=sender, slots={"language": language} if language else {},
                   latest_message={"text": text, "intent": {"name": "product_inquiry"},
                                   "entities": entities or [], "metadata": sealed(sender, wa_id=sender)},
                   events=[], paused=False, followup_action=None, active_loop={},
                   latest_action_name="action_listen")


async def test_the_action_answers_her_own_piece_and_any_named_one(sqlite_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.products import ActionProductInquiry

    action_server_on(sqlite_url, tmp_path, monkeypatch, datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    # Béatrice bought the Riviera cashmere coat: "mon manteau en cachemire" is hers.
    dispatcher = CollectingDispatcher()
    events = await ActionProductInquiry().run(
        dispatcher, _tracker("33600000009", "Comment entretenir mon manteau en cachemire ?", "fr"), {})
    [message] = dispatcher.messages
    assert message["text"].startswith("Pour votre modèle Riviera cashmere coat : ")
    assert message["buttons"][0]["payload"] == DROP_OFF_PAYLOAD
    assert events == [{"event": "slot", "timestamp": None, "name": "product", "value": "Riviera cashmere coat"}]
    # A stranger naming a piece: its notes, not "your".
    dispatcher = CollectingDispatcher()
    await ActionProductInquiry().run(dispatcher, _tracker(
        "447700900999", "how should I care for the Étoile silk scarf?",
        entities=[{"entity": "product", "value": "Étoile silk scarf"}]), {})
    [message] = dispatcher.messages
    assert message["text"].startswith("For the Étoile silk scarf: ")
    # No piece clear: she is asked which, as for any question about a piece.
    dispatcher = CollectingDispatcher()
    await ActionProductInquiry().run(dispatcher, _tracker("447700900999", "how do I clean my coat?"), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_which_piece"]
    backends.reset()
