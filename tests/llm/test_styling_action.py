"""``action_styling_advice`` in the rasa-sdk style, on the seeded maison: offline by
default, the model's checked answer when one is configured, a person when the message
needs one, the default question for unplaced talk that is not about styling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import create_engine, select

from actions import backends
from actions.styling import ActionStylingAdvice
from salon.llm.audit import audit_table
from tests.action_support import sealed
from tests.llm.scripted_llm import Step, running_llm
from tests.seeding import seed_maison

CLAIRE_WA = "33600000001"
QUESTION = "which clutch should I take to a black-tie gala?"
BUTTONS = [{"title": "Yes, please", "payload": "/affirm"}, {"title": "No, thank you", "payload": "/deny"}]


@pytest.fixture()
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'salon.db'}"
    seed_maison(url)
    monkeypatch.setenv("DATABASE_URL", url)
    for name in ("SALON_LLM_BASE_URL", "SALON_LLM_MODEL", "SALON_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    backends.reset()
    yield url
    backends.reset()


def tracker(text: str, intent: str = "styling_advice", sender: str = CLAIRE_WA,
            before: tuple[tuple[str, str], ...] = (), language: str | None = "en",
            loop: str | None = None) -> Tracker:
    """``before``: earlier (text, intent) messages of the client in this conversation;
    ``language``: the conversation's (its slot, kept by ``action_detect_language``).
    """
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [],
              "metadata": sealed(sender, wa_id=sender)}
    said = [{"event": "user", "text": t, "parse_data": {"intent": {"name": i, "confidence": 0.3}}}
            for t, i in before]
    return Tracker(
        sender_id=sender, slots={"language": language}, latest_message=latest,
        events=[*said, {"event": "user", "text": text, "parse_data": latest}],
        paused=False, followup_action=None, active_loop={"name": loop} if loop else {},
        latest_action_name="action_listen",
    )


async def run(text: str, intent: str = "styling_advice", sender: str = CLAIRE_WA,
              before: tuple[tuple[str, str], ...] = (), language: str | None = "en", loop: str | None = None,
              ) -> tuple[list[Any], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionStylingAdvice().run(dispatcher, tracker(text, intent, sender, before, language, loop), {})
    return events, dispatcher.messages


def remembered(*pieces: str) -> list[dict[str, Any]]:
    """The slots a suggestion leaves for the client's next question ("the other one")."""
    return [{"event": "slot", "timestamp": None, "name": "product", "value": pieces[0]},
            {"event": "slot", "timestamp": None, "name": "suggested_pieces", "value": list(pieces)}]


def response(name: str) -> dict[str, Any]:
    return {"text": None, "buttons": [], "elements": [], "custom": {}, "template": name, "response": name,
            "image": None, "attachment": None}


def text_message(text: str, buttons: list[dict[str, str]] = BUTTONS) -> dict[str, Any]:
    return {"text": text, "buttons": buttons, "elements": [], "custom": {}, "template": None, "response": None,
            "image": None, "attachment": None, "metadata": {"purpose": "service_reply"}}


async def test_offline_by_default_a_grounded_answer_with_its_purpose(database: str) -> None:
    events, messages = await run(QUESTION)
    assert events == remembered("Mistral clutch")
    # She asks which clutch: only clutches are suggested (no gown she did not ask for).
    assert messages == [text_message(
        "With pleasure, Ms Laurent. I would suggest the Mistral clutch (lambskin, €1,850). The Mistral clutch "
        "is available in London, Milan and Paris. Shall I ask Sophie, your client advisor, to set it aside for "
        "you or arrange a fitting?"
    )]


async def test_the_answer_is_in_the_conversations_language(database: str) -> None:
    events, messages = await run("quelle pochette pour un gala en tenue de soirée ?", language="fr")
    assert events == remembered("Mistral clutch")
    assert messages == [text_message(
        "Avec plaisir, Madame Laurent. Je vous conseillerais le modèle Mistral clutch (agneau, 1\u202f850\u00a0€). "
        "Le modèle Mistral clutch est disponible à Londres, à Milan et à Paris. Souhaitez-vous que je demande à "
        "Sophie, qui vous suit personnellement, de vous le réserver ou d'organiser un essayage\u202f?",
        [{"title": "Oui, volontiers", "payload": "/affirm"}, {"title": "Non, merci", "payload": "/deny"}])]
    events, messages = await run("quale pochette per un gala in abito da sera?", language="it")
    assert messages == [text_message(
        "Con piacere, Signora Laurent. Le suggerirei il modello Mistral clutch (pelle d'agnello, 1.850\u00a0€). "
        "Il modello Mistral clutch è disponibile a Londra, a Milano e a Parigi. Desidera che chieda a Sophie, "
        "che La segue personalmente, di tenerlo da parte per Lei o di fissare una prova?",
        [{"title": "Sì, grazie", "payload": "/affirm"}, {"title": "No, grazie", "payload": "/deny"}])]
    # No language yet: the client's record decides (Claire's is French).
    events, messages = await run(QUESTION, language=None)
    assert messages[0]["text"].startswith("Avec plaisir, Madame Laurent.")


async def test_unplaced_talk_is_answered_only_when_it_is_about_styling(database: str) -> None:
    events, messages = await run("what should I wear with a velvet jacket to the opera", intent="nlu_fallback")
    assert events[:1] == remembered("Nocturne velvet jacket")[:1] and "Nocturne velvet jacket" in messages[0]["text"]
    assert messages[0]["metadata"] == {"purpose": "service_reply"}
    events, messages = await run("blue forty two maybe", intent="nlu_fallback")
    assert (events, messages) == ([], [response("utter_default")])


async def test_in_a_form_an_unplaced_message_gets_an_apology_and_the_form_asks_again(database: str) -> None:
    # Not "is this about an order, an appointment…?" in the middle of a booking: the form
    # asks its own question right after.
    assert await run("blue forty two maybe", intent="nlu_fallback", loop="appointment_form") == (
        [], [response("utter_not_caught")])
    unplaced = (("blue forty two maybe", "nlu_fallback"),)
    assert await run("the thing from before", intent="nlu_fallback", before=unplaced, loop="appointment_form") == (
        [{"event": "followup", "timestamp": None, "name": "action_handoff"}], [])


async def test_not_understood_twice_in_a_row_a_person_takes_over(database: str) -> None:
    handoff = [{"event": "followup", "timestamp": None, "name": "action_handoff"}]
    unplaced = (("blue forty two maybe", "nlu_fallback"),)
    assert await run("the thing from before, you know", intent="nlu_fallback", before=unplaced) == (handoff, [])
    # Once answered (styling talk, or a message the NLU placed), the count starts again.
    answered = (("what goes with a velvet jacket", "nlu_fallback"),)
    assert await run("the thing from before, you know", intent="nlu_fallback", before=answered) == (
        [], [response("utter_default")])
    placed = (("hello", "greet"),)
    assert await run("the thing from before, you know", intent="nlu_fallback", before=placed) == (
        [], [response("utter_default")])


async def test_sensitive_messages_get_a_person(database: str) -> None:
    handoff = [{"event": "followup", "timestamp": None, "name": "action_handoff"}]
    assert await run("the strap is broken already, unacceptable, what do I wear it with now?") == (
        handoff, [response("utter_complaint")])
    assert await run("my husband passed away, what should I wear to the funeral?") == (
        handoff, [response("utter_sensitive_handoff")])
    assert await run("I am allergic to nickel, which earrings suit me?") == (
        handoff, [response("utter_sensitive_handoff")])
    assert (await run("hmm"))[1] == [response("utter_styling_advice")]


async def test_a_configured_model_answers_and_is_audited(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    drafted = ("For a black-tie gala, the Mistral clutch in Noir, at €1,850, is slim enough for an evening. "
               "Shall I ask Sophie to set it aside for you, Ms Laurent?")
    async with running_llm([Step(drafted)]) as llm:
        monkeypatch.setenv("SALON_LLM_BASE_URL", llm.base_url)
        monkeypatch.setenv("SALON_LLM_MODEL", "stylist")
        backends.styling_advisor.cache_clear()
        events, messages = await run(QUESTION)
        assert (events, messages) == (remembered("Mistral clutch"), [text_message(drafted)])
        assert len(llm.requests) == 1
    engine = create_engine(database)
    with engine.connect() as conn:
        rows = conn.execute(select(audit_table.c.client_id, audit_table.c.mode, audit_table.c.verdict,
                                   audit_table.c.model)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("C-001", "llm", "pass", llm.model)]


async def test_when_the_catalog_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    backends.reset()
    try:
        assert (await run(QUESTION))[1] == [response("utter_catalog_unavailable")]
    finally:
        backends.reset()
