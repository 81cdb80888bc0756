"""After "Which piece?", her next words name the piece and the question she asked is the one
answered: a care question gets the care notes, an availability question the availability;
a boutique or a date alone after an answer asks what it is about, as anywhere else."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.products import PIECE_ASKED_FOR, ActionProductInquiry, asked_which_piece
from tests.action_support import action_server_on, sealed

STRANGER = "447700900999"
BEATRICE = "33600000009"
"""Béatrice bought the Riviera cashmere coat (data/maison)."""


def _events(previous_action: str | None) -> list[dict[str, Any]]:
    """Her first message, the action that answered it, then her latest message."""
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_listen"},
                                    {"event": "user", "text": "first"}]
    if previous_action:
        events.append({"event": "action", "name": previous_action})
    events += [{"event": "action", "name": "action_listen"}, {"event": "user", "text": "latest"}]
    return events


def _tracker(sender: str, text: str, *, intent: str = "inform", slots: dict[str, Any] | None = None,
             previous_action: str | None = "action_product_inquiry",
             entities: list[dict[str, Any]] | None = None) -> Tracker:
    return Tracker(sender_id=sender, slots=slots or {},
                   latest_message={"text": text, "intent": {"name": intent}, "entities": entities or [],
                                   "metadata": sealed(sender, wa_id=sender)},
                   events=_events(previous_action), paused=False, followup_action=None, active_loop={},
                   latest_action_name="action_listen")


async def _run(tracker: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionProductInquiry().run(dispatcher, tracker, {})
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.fixture
def action_server(sqlite_url: str, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from actions import backends

    action_server_on(sqlite_url, tmp_path, monkeypatch, datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    yield
    backends.reset()


def test_the_question_counts_only_when_it_was_the_assistants_last_word() -> None:
    asked = {PIECE_ASKED_FOR: "care"}
    assert asked_which_piece(_tracker(STRANGER, "x", slots=asked)) == "care"
    # Something else was said since (she went on to book a visit): a new question.
    assert asked_which_piece(_tracker(STRANGER, "x", slots=asked, previous_action="appointment_form")) is None
    assert asked_which_piece(_tracker(STRANGER, "x", slots=asked, previous_action=None)) is None
    assert asked_which_piece(_tracker(STRANGER, "x")) is None


async def test_a_care_question_is_answered_once_she_names_the_piece(action_server: None) -> None:
    messages, slots = await _run(_tracker(STRANGER, "how do I clean my coat?", intent="product_inquiry",
                                          previous_action=None))
    assert [m["response"] for m in messages] == ["utter_ask_which_piece"]
    assert slots == {PIECE_ASKED_FOR: "care"}
    # She names it: its care notes, not its availability.
    messages, slots = await _run(_tracker(STRANGER, "the Riviera coat", slots={PIECE_ASKED_FOR: "care"},
                                          entities=[{"entity": "product", "value": "Riviera coat"}]))
    [message] = messages
    assert message["text"].startswith("For the Riviera cashmere coat: ")
    assert "available" not in message["text"]
    assert slots == {"product": "Riviera cashmere coat", PIECE_ASKED_FOR: None}


async def test_a_piece_she_describes_as_hers_gets_its_care_notes(action_server: None) -> None:
    messages, _ = await _run(_tracker(BEATRICE, "mon manteau en cachemire",
                                      slots={PIECE_ASKED_FOR: "care", "language": "fr"}))
    [message] = messages
    assert message["text"].startswith("Pour votre modèle Riviera cashmere coat : ")


async def test_an_availability_question_is_answered_once_she_names_the_piece(action_server: None) -> None:
    messages, slots = await _run(_tracker(STRANGER, "is it available?", intent="product_inquiry",
                                          previous_action=None))
    assert [m["response"] for m in messages] == ["utter_ask_which_piece"]
    assert slots == {PIECE_ASKED_FOR: "piece"}
    messages, slots = await _run(_tracker(STRANGER, "the Aurore tote", slots={PIECE_ASKED_FOR: "piece"},
                                          entities=[{"entity": "product", "value": "Aurore tote"}]))
    [message] = messages
    assert message["text"].startswith("The Aurore tote")
    assert slots == {"product": "Aurore tote", PIECE_ASKED_FOR: None}


async def test_a_date_alone_after_an_answer_asks_what_it_is_about(action_server: None) -> None:
    messages, slots = await _run(_tracker(STRANGER, "tomorrow at 3", slots={"product": "Aurore tote"},
                                          entities=[{"entity": "date_time", "value": "tomorrow at 3"}]))
    assert [m["response"] for m in messages] == ["utter_inform_without_context"]
    assert slots == {}


async def test_a_boutique_after_an_answer_keeps_to_the_piece(action_server: None) -> None:
    messages, _ = await _run(_tracker(STRANGER, "in Milan?", slots={"product": "Aurore tote"},
                                      entities=[{"entity": "boutique", "value": "milan"}]))
    [message] = messages
    assert message["text"].startswith("The Aurore tote")


@pytest.mark.parametrize(("text", "kind"), [
    ("how do I clean it?", False), ("comment en prendre soin ?", False), ("come me ne prendo cura?", False),
    ("how do I clean my coat?", True), ("comment nettoyer mon sac ?", True), ("come pulire la seta?", True),
])
def test_a_kind_of_piece_is_told_from_a_pointer_to_the_last_one(text: str, kind: bool) -> None:
    from salon.conversation.care_answers import names_a_kind

    assert names_a_kind(text) is kind


async def test_how_to_care_for_it_is_about_the_piece_just_discussed(action_server: None) -> None:
    messages, slots = await _run(_tracker(STRANGER, "how do I clean it?", intent="product_inquiry",
                                          slots={"product": "Étoile silk scarf"}))
    [message] = messages
    assert message["text"].startswith("For the Étoile silk scarf: ")
    # Another kind of piece than the one just discussed, and none clear: she is asked which.
    messages, slots = await _run(_tracker(STRANGER, "how do I clean my boots?", intent="product_inquiry",
                                          slots={"product": "Étoile silk scarf"}))
    assert [m["response"] for m in messages] == ["utter_ask_which_piece"]
    assert slots == {PIECE_ASKED_FOR: "care"}
