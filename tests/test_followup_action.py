"""A follow-up that is due tells the news it promised, in the client's language."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from salon.conversation.followup import follow_up_lead
from tests.action_support import action_server_on, sealed

CLAIRE_WA = "33600000001"  # her latest order, SOL-104233, is on its way with DHL Express
STRANGER = "447700900123"  # no order
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)


def _tracker(sender: str, slots: dict[str, Any], entities: list[dict[str, Any]] | None = None) -> Tracker:
    return Tracker(
        sender_id=sender, slots=slots,
        latest_message={"text": "/advisor_followup", "intent": {"name": "advisor_followup"},
                        "entities": entities or [], "metadata": sealed(sender, wa_id=sender)},
        events=[], paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen",
    )


async def _run(tracker: Tracker) -> list[dict[str, Any]]:
    from actions.followup import ActionAdvisorFollowup

    dispatcher = CollectingDispatcher()
    await ActionAdvisorFollowup().run(dispatcher, tracker, {})
    return dispatcher.messages


@pytest.mark.parametrize(("language", "lead"), [
    ("en", "As promised, news of your order SOL-104233:"),
    ("fr", "Comme promis, des nouvelles de votre commande SOL-104233 :"),
    ("it", "Come promesso, ecco gli aggiornamenti sul Suo ordine SOL-104233:"),
])
async def test_the_news_of_her_order_on_its_way(sqlite_url: str, tmp_path, monkeypatch,  # type: ignore[no-untyped-def]
                                               language: str, lead: str) -> None:
    from actions import backends

    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    [message] = await _run(_tracker(CLAIRE_WA, {"language": language}))
    assert message["text"].startswith(lead) and "DHL Express" in message["text"], message["text"]
    backends.reset()


async def test_the_news_of_the_piece_it_is_about(sqlite_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends

    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    [message] = await _run(_tracker(CLAIRE_WA, {"language": "fr"},
                                    [{"entity": "product", "value": "Aurore tote"}]))
    assert message["text"].startswith("Comme promis, des nouvelles du modèle Aurore tote :"), message["text"]
    assert "€" in message["text"]
    backends.reset()


async def test_nothing_to_tell_is_the_courteous_follow_up(sqlite_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends

    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    [message] = await _run(_tracker(STRANGER, {}))
    assert message["response"] == "utter_advisor_followup"
    backends.reset()


def test_a_follow_up_is_about_something() -> None:
    with pytest.raises(ValueError):
        follow_up_lead("en")
    assert follow_up_lead("de", piece="Aurore tote") == "As promised, news of the Aurore tote:"
