"""action_boutique_info with rasa_sdk trackers and CollectingDispatcher, against the
seeded maison in SQLite (the real bookings port and CRM adapter), at a fixed moment given
through the clock file every process follows; and the boutiques' address and telephone as
the bookings port reads them from the maison's tables.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import text

from actions import backends
from actions.boutiques import ActionBoutiqueInfo
from salon.clock import ManualClock
from salon.integrations.bookings import SqlBookings
from salon.storage.db import make_async_engine, make_sync_engine
from tests.action_support import action_server_on, sealed_for
from tests.seeding import seed_maison

#: Thursday 26 November 2026, 09:00 in Paris and Milan, 08:00 in London: all about to open.
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"  # C-001, French, home boutique Paris
FRANCESCA = "393470001001"  # C-023, Italian, home boutique Milan
STRANGER = "447700900999"


@pytest.fixture()
def maison(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    yield sqlite_url
    backends.reset()


def tracker(words: str, *, sender: str = STRANGER, language: str | None = None,
            entities: list[dict[str, Any]] | None = None) -> Tracker:
    return Tracker(
        sender_id=sender, slots={"language": language} if language else {},
        latest_message={"text": words, "intent": {"name": "boutique_info"},
                        "entities": entities or [], "metadata": sealed_for(sender)},
        events=[{"event": "user", "text": words,
                 "parse_data": {"intent": {"name": "boutique_info"}}}],
        paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen")


async def ask(words: str, **kwargs: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionBoutiqueInfo().run(dispatcher, tracker(words, **kwargs), {})
    return events, dispatcher.messages


def test_the_action_is_named_as_the_rule_calls_it() -> None:
    assert ActionBoutiqueInfo().name() == "action_boutique_info"


async def test_a_stranger_asks_the_hours_of_a_city(maison: str) -> None:
    events, messages = await ask("What are your opening hours in London?")
    assert events == []
    assert [(m["text"], m["buttons"]) for m in messages] == [(
        "Our London boutique is open Monday to Saturday, 10:00 to 18:00 (until 19:00 on "
        "Thursdays); on Sundays, 12:00 to 17:00. It is closed at the moment and opens today at "
        "10:00. Would you like to book a visit?",
        [{"title": "Book a visit", "payload": '/book_appointment{"boutique": "london"}'}])]


async def test_her_home_boutique_in_her_language_when_she_names_no_city(maison: str) -> None:
    # Claire's record says French and Paris; her words name no city.
    _, messages = await ask("Quels sont vos horaires ?", sender=CLAIRE)
    assert messages[0]["text"] == (
        "Notre boutique de Paris est ouverte du lundi au samedi de 10 h à 19 h (à partir de "
        "10 h 30 le lundi, jusqu'à 20 h le jeudi) ; fermée le dimanche. Elle est fermée en ce "
        "moment et ouvrira aujourd'hui à 10 h. Souhaitez-vous prendre rendez-vous ?")
    assert messages[0]["buttons"] == [
        {"title": "Prendre rendez-vous", "payload": '/book_appointment{"boutique": "paris"}'}]
    # Francesca's services, labelled from the maison's table in Italian.
    _, messages = await ask("Quali servizi offrite?", sender=FRANCESCA)
    assert messages[0]["text"] == (
        "La nostra boutique di Milano propone questi appuntamenti: consulenza di stile, "
        "presentazione privata e prova sartoriale. Desidera prenotare una visita?")


async def test_a_stranger_without_a_city_hears_every_boutique(maison: str) -> None:
    _, messages = await ask("Quels services proposez-vous en boutique ?", language="fr")
    assert messages[0]["text"] == (
        "Nos boutiques vous proposent ces rendez-vous :\n"
        "Paris et Londres : séance de stylisme, présentation privée, dépôt en réparation et "
        "essayage.\n"
        "Milan : séance de stylisme, présentation privée et essayage.")
    assert messages[0]["buttons"] == [{"title": "Prendre rendez-vous",
                                       "payload": "/book_appointment"}]


async def test_address_and_telephone_come_from_the_book(maison: str) -> None:
    _, messages = await ask("Where is your Paris boutique?")
    assert messages[0]["text"] == (
        "Our Paris boutique, Maison Solenne Paris Faubourg, is at 21 rue du Faubourg "
        "Saint-Honoré, 75008 Paris; you can reach it on +33 1 42 65 00 00. Would you like to "
        "book a visit?")


async def test_the_boutique_the_nlu_read_counts_too(maison: str) -> None:
    _, messages = await ask("Avete una boutique lì?", language="it",
                            entities=[{"entity": "boutique", "value": "milan"}])
    assert messages[0]["text"].startswith(
        "Sì, abbiamo una boutique a Milano: Maison Solenne Milano Spiga, Via della Spiga 9, "
        "20121 Milano.")


async def test_a_city_without_a_boutique(maison: str) -> None:
    _, messages = await ask("Avete una boutique a Roma?", language="it")
    assert messages[0]["text"] == (
        "Le nostre boutique si trovano a Parigi, a Londra e a Milano; non ne abbiamo altre. "
        "Desidera prenotare una visita in una di esse?")


async def test_a_book_that_cannot_be_read_gets_an_apology(
        maison: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_sync_engine(maison)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE maison_opening_hours"))
    engine.dispose()
    with caplog.at_level(logging.ERROR, logger="actions.boutiques"):
        events, messages = await ask("What are your opening hours in London?")
    assert events == []
    assert [(m["text"], m["buttons"]) for m in messages] == [(
        "I am sorry, I cannot reach our boutiques' details just now. Could you ask me again in "
        "a moment?", [])]
    assert any("boutique book unavailable" in r.getMessage() for r in caplog.records)


@pytest.fixture()
async def bookings(database_url: str) -> AsyncIterator[SqlBookings]:
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    yield SqlBookings(engine, ManualClock(NOW))
    await engine.dispose()


async def test_the_book_reads_each_boutiques_address_and_telephone(bookings: SqlBookings) -> None:
    shops = await bookings.boutiques()
    assert {(s.id, s.address, s.phone) for s in shops.values()} == {
        ("paris", "21 rue du Faubourg Saint-Honoré, 75008 Paris", "+33142650000"),
        ("london", "14 Mount Street, Mayfair, London W1K 2RD", "+442074930000"),
        ("milan", "Via della Spiga 9, 20121 Milano", "+390276000000"),
    }
