"""A client ready to buy ("I'll take it", "je le prends", "la prendo, come pago?") reaches
her advisor with the piece in the advisor's note: the action against the seeded maison with
rasa_sdk trackers, and the console's label for the reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import backends
from actions.products import ActionPurchase
from salon.advisors.handoff import REASONS, asks_whether, opening, purchase_note
from salon.console.pages import REASONS as CONSOLE_LABELS
from tests.action_support import action_server_on, sealed

CLAIRE = "33600000001"  # C-001, VIC, Sophie (Paris), French
STRANGER = "447700900998"
TUESDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)  # 11:00 in Paris: open


@pytest.fixture()
def maison(sqlite_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    action_server_on(sqlite_url, tmp_path, monkeypatch, TUESDAY_MORNING)
    yield sqlite_url
    backends.reset()


def tracker(text: str, *, sender: str = CLAIRE, slots: dict[str, Any] | None = None,
            entities: list[dict[str, Any]] | None = None) -> Tracker:
    return Tracker(sender_id=sender, slots=slots or {},
                   latest_message={"text": text, "intent": {"name": "purchase"}, "entities": entities or [],
                                   "metadata": sealed(sender, wa_id=sender, phone_number_id="100000000000001")},
                   events=[], paused=False, followup_action=None, active_loop={},
                   latest_action_name="action_listen")


async def test_i_ll_take_it_goes_to_her_advisor_with_the_piece_just_discussed(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionPurchase().run(dispatcher, tracker(
        "I'll take it. How do I pay?", slots={"language": "en", "product": "Riviera cashmere coat"}), {})
    assert events == [SlotSet("product", "Riviera cashmere coat"), SlotSet("language", "en"),
                      ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "With pleasure, we will arrange it for you. Sophie will reply to you here shortly."]
    handoff = await (await backends.handoffs()).open_for(CLAIRE)
    assert handoff is not None
    assert (handoff.reason, handoff.advisor_id, handoff.client_id) == ("purchase", "sophie-marchand", "C-001")
    assert handoff.note == "Ready to buy: Riviera cashmere coat. Client wrote: I'll take it. How do I pay?"


async def test_the_piece_she_names_is_the_one_she_buys(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionPurchase().run(dispatcher, tracker(
        "je voudrais acheter la bague Halo", slots={"language": "fr", "product": "Riviera cashmere coat"},
        entities=[{"entity": "product", "value": "Halo"}]), {})
    assert events[0] == SlotSet("product", "Halo ring")
    assert [m["text"] for m in dispatcher.messages] == [
        "Avec plaisir, nous allons l'organiser pour vous. Sophie vous répondra ici très bientôt."]
    handoff = await (await backends.handoffs()).open_for(CLAIRE)
    assert handoff is not None and handoff.note.startswith("Ready to buy: Halo ring. ")


async def test_no_piece_yet_is_said_to_the_advisor_not_guessed(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionPurchase().run(dispatcher, tracker(
        "la prendo, come pago?", sender=STRANGER, slots={"language": "it"}), {})
    assert events == [SlotSet("language", "it"), ConversationPaused()]
    [said] = [m["text"] for m in dispatcher.messages]
    assert said.startswith("Con piacere, lo organizzeremo per Lei. Un consulente della nostra boutique")
    handoff = await (await backends.handoffs()).open_for(STRANGER)
    assert handoff is not None and handoff.reason == "purchase" and handoff.client_id is None
    assert handoff.note == "Ready to buy (no piece named yet). Client wrote: la prendo, come pago?"


@pytest.mark.parametrize(("words", "language", "said"), [
    ("Can I pay by bank transfer?", "en", "Let me pass your question on. Sophie will reply to you here shortly."),
    ("je la prends, puis-je payer en trois fois ?", "fr",
     "Je transmets votre question. Sophie vous répondra ici très bientôt."),
    ("posso pagare con bonifico?", "it", "Inoltro la Sua domanda. Sophie Le risponderà qui a breve."),
])
async def test_asked_whether_she_may_pay_so_the_answer_is_not_a_yes(
        maison: str, words: str, language: str, said: str) -> None:
    """A payment question read as a wish to buy still goes to her advisor, without
    "With pleasure, we will arrange it", which would answer it yes."""
    dispatcher = CollectingDispatcher()
    await ActionPurchase().run(dispatcher, tracker(words, slots={"language": language}), {})
    assert [m["text"] for m in dispatcher.messages] == [said]
    handoff = await (await backends.handoffs()).open_for(CLAIRE)
    assert handoff is not None and handoff.reason == "purchase"
    assert handoff.note == f"Ready to buy (no piece named yet). Client wrote: {words}"


def test_a_question_whether_is_told_from_a_question_how() -> None:
    assert all(asks_whether(w) for w in ("Do you accept Amex", "est-ce que l'on peut payer en boutique",
                                         "è possibile pagare a rate?", "could we pay on delivery",
                                         "do you ship to Switzerland?", "livrez-vous en Suisse ?",
                                         "vous expédiez aux États-Unis ?", "spedite in Svizzera?",
                                         "potete spedirmela a Lugano?", "can you send it to Geneva?"))
    assert not any(asks_whether(w) for w in ("I'll take it. How do I pay?", "la prendo, come pago?",
                                             "perfect, I'll take it", "je voudrais acheter la bague Halo"))


def test_the_note_keeps_her_words_whole_and_the_piece_first() -> None:
    assert purchase_note("I'll take it", "Halo ring") == "Ready to buy: Halo ring. Client wrote: I'll take it"
    assert purchase_note("  ", None) == "Ready to buy (no piece named yet). Client wrote: (no text)"


def test_every_reason_has_an_opening_and_a_label_in_the_console() -> None:
    assert "purchase" in REASONS
    assert set(REASONS) <= set(CONSOLE_LABELS), set(REASONS) - set(CONSOLE_LABELS)
    assert CONSOLE_LABELS["purchase"] == "ready to buy"
    assert opening("purchase", "it") == "Con piacere, lo organizzeremo per Lei."
