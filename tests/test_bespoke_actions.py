"""Bespoke briefs: read against the catalog, asked again when too thin, then handed to
the client's advisor as a handoff holding the brief."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import backends
from actions.bespoke import ActionBespokeBrief, ValidateCustomisationForm
from tests.action_support import action_server_on, sealed

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=timezone.utc)  # Wednesday, 20:00 in Paris
HENRY = "447700900102"  # C-014, Platinum, advisor James (London)
DOMAIN: dict[str, Any] = {"forms": {"customisation_form": {"required_slots": ["bespoke_brief"]}},
                          "slots": {"bespoke_brief": {}}}



@pytest.fixture()
def maison(sqlite_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    yield sqlite_url
    backends.reset()


def tracker(text: str, slots: dict[str, Any] | None = None, candidates: dict[str, Any] | None = None,
            *, active: bool = True) -> Tracker:
    events: list[dict[str, Any]] = [{"event": "user", "text": text,
                                     "parse_data": {"intent": {"name": "customisation_request"}}}]
    events += [{"event": "slot", "name": k, "value": v} for k, v in (candidates or {}).items()]
    return Tracker(sender_id=HENRY, slots={**(slots or {}), **(candidates or {})},
                   latest_message={"text": text, "intent": {"name": "customisation_request"},
                                   "entities": [], "metadata": sealed(HENRY, wa_id=HENRY)},
                   events=events, paused=False, followup_action=None,
                   active_loop={"name": "customisation_form"} if active else {},
                   latest_action_name="action_listen")


@pytest.mark.parametrize(("said", "kept"), [
    ("initials on my Aurore tote", True),  # a piece of ours
    ("a monogram in gold on the flap of my weekend bag", True),  # enough words
    ("something bespoke please", False),
    ("/customisation_request", False),
])
async def test_a_brief_is_kept_or_asked_for(maison: str, said: str, kept: bool) -> None:
    events = await ValidateCustomisationForm().run(CollectingDispatcher(),
                                                   tracker(said, candidates={"bespoke_brief": said}), DOMAIN)
    assert events == [SlotSet("bespoke_brief", said if kept else None)]


async def test_the_brief_goes_to_the_advisor(maison: str) -> None:
    brief = "my initials in gold on the Aurore tote, for my wife's birthday"
    dispatcher = CollectingDispatcher()
    events = await ActionBespokeBrief().run(dispatcher, tracker(brief, {"bespoke_brief": brief},
                                                                active=False), {})
    assert events == [SlotSet("product", "Aurore tote"), SlotSet("bespoke_brief", None),
                      SlotSet("language", "en"), ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "Thank you, I have prepared your request. James will reply to you here tomorrow from 10:00."]
    handoff = await (await backends.handoffs()).open_for(HENRY)
    assert handoff is not None and handoff.reason == "bespoke" and handoff.advisor_id == "james-whitaker"
    assert handoff.note == f"Bespoke brief: {brief} (catalog piece: Aurore tote)"


async def test_the_brief_is_acknowledged_in_italian_and_french(maison: str) -> None:
    brief = "le mie iniziali in oro sulla Aurore tote, per il compleanno di mia moglie"
    dispatcher = CollectingDispatcher()
    events = await ActionBespokeBrief().run(dispatcher, tracker(brief, {"bespoke_brief": brief, "language": "it"},
                                                                active=False), {})
    assert SlotSet("language", "it") in events
    assert [m["text"] for m in dispatcher.messages] == [
        "Grazie, ho preparato la Sua richiesta. James Le risponderà qui domani a partire dalle 10:00."]
    await (await backends.handoffs()).resolve(HENRY, by="james", now=NOW)
    brief = "mes initiales en or sur le sac Aurore tote, pour l'anniversaire de ma femme"
    dispatcher = CollectingDispatcher()
    await ActionBespokeBrief().run(dispatcher, tracker(brief, {"bespoke_brief": brief, "language": "fr"},
                                                       active=False), {})
    assert [m["text"] for m in dispatcher.messages] == [
        "Merci, j'ai préparé votre demande. James vous répondra ici demain à partir de 10 h."]
