"""Handoff to a client advisor and the session start (context recall), with rasa_sdk
trackers and CollectingDispatcher against the seeded maison, a fixed clock, and a real
webhook receiver on loopback for the advisor notification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from aiohttp import web
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, ConversationPaused, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import backends
from actions.handoff import _UNREACHABLE, ActionHandoff
from actions.sessions import ActionSessionStart
from salon.advisors.handoff import opening, reply_promise, webhook_signature
from salon.conversation.recall import LastTime, recall
from tests.action_support import action_server_on, sealed

CLAIRE = "33600000001"  # C-001, VIC, Sophie (Paris)
STRANGER = "447700900999"
WEDNESDAY_EVENING = datetime(2026, 11, 25, 19, 0, tzinfo=timezone.utc)  # 20:00 in Paris



@pytest.fixture()
def maison(sqlite_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    action_server_on(sqlite_url, tmp_path, monkeypatch, WEDNESDAY_EVENING)
    yield sqlite_url
    backends.reset()


SECRET = "advisor-webhook-secret-0123456789"


@pytest.fixture()
async def advisor_webhook(monkeypatch) -> AsyncIterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A receiver for the advisors' webhook; ``answer`` sets the status it replies with."""
    state: dict[str, Any] = {"received": [], "answer": 200}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        # Signed as Meta signs its webhooks: the receiver can tell the handoff is ours.
        state["signed"] = request.headers.get("X-Salon-Signature-256") == webhook_signature(body, SECRET)
        state["received"].append(json.loads(body))
        return web.json_response({}, status=state["answer"])

    app = web.Application()
    app.router.add_post("/hooks/handoff", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setenv("SALON_ADVISOR_WEBHOOK_URL", f"http://127.0.0.1:{port}/hooks/handoff?key=url-credential")
    monkeypatch.setenv("SALON_ADVISOR_WEBHOOK_SECRET", SECRET)
    yield state
    await runner.cleanup()


def tracker(*, text: str, intent: str, sender: str = CLAIRE, slots: dict[str, Any] | None = None,
            events: list[dict[str, Any]] | None = None, loop: str | None = None) -> Tracker:
    return Tracker(sender_id=sender, slots=slots or {},
                   latest_message={"text": text, "intent": {"name": intent}, "entities": [],
                                   "metadata": sealed(sender, wa_id=sender, phone_number_id="100000000000001")},
                   events=events or [], paused=False, followup_action=None,
                   active_loop={"name": loop} if loop else {}, latest_action_name="action_listen")


@pytest.mark.parametrize(("now", "language", "expected"), [
    (datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc), "en", "Sophie will reply to you here shortly."),
    (WEDNESDAY_EVENING, "en", "Sophie will reply to you here tomorrow from 10:00."),
    (datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc), "en", "Sophie will reply to you here today from 10:00."),
    (datetime(2026, 11, 28, 19, 30, tzinfo=timezone.utc), "en",
     "Sophie will reply to you here on Monday 30 November from 10:30."),
    (WEDNESDAY_EVENING, "fr", "Sophie vous répondra ici demain à partir de 10 h."),
    (WEDNESDAY_EVENING, "it", "Sophie Le risponderà qui domani a partire dalle 10:00."),
    (datetime(2026, 11, 28, 19, 30, tzinfo=timezone.utc), "fr",
     "Sophie vous répondra ici le lundi 30 novembre à partir de 10 h 30."),
    (datetime(2026, 11, 28, 19, 30, tzinfo=timezone.utc), "it",
     "Sophie Le risponderà qui lunedì 30 novembre a partire dalle 10:30."),
    (datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc), "it", "Sophie Le risponderà qui a breve."),
])
async def test_who_answers_and_when_follows_the_boutique_hours(
        maison: str, now: datetime, language: str, expected: str) -> None:
    paris = (await backends.bookings().boutiques())["paris"]
    assert reply_promise("Sophie", paris, now, language) == expected
    assert reply_promise(None, paris, now, "en").startswith("A client advisor from our Paris boutique will")


async def test_asking_for_an_advisor_pauses_records_and_notifies(maison: str, advisor_webhook: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, tracker(text="I want to speak to Sophie",
                                                           intent="talk_to_advisor",
                                                           slots={"language": "en"}), {})
    assert events == [SlotSet("language", "en"), ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "Of course. Sophie will reply to you here tomorrow from 10:00."]
    book = await backends.handoffs()
    handoff = await book.open_for(CLAIRE)
    assert handoff is not None
    assert (handoff.client_id, handoff.advisor_id, handoff.reason, handoff.status, handoff.notified) == (
        "C-001", "sophie-marchand", "human_request", "open", "sent")
    assert handoff.note == "Client wrote: I want to speak to Sophie" and handoff.wa_id == CLAIRE
    [posted] = advisor_webhook["received"]
    assert advisor_webhook["signed"] is True
    assert posted["event"] == "handoff" and posted["handoff"]["id"] == handoff.id
    assert posted["handoff"]["advisor_id"] == "sophie-marchand"
    # Asking again while it is open: the same handoff, no second notification.
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, tracker(text="hello? Sophie?", intent="talk_to_advisor"), {})
    assert len(advisor_webhook["received"]) == 1
    assert (await book.listing(advisor_id="sophie-marchand")) == [handoff]


async def test_a_complaint_in_a_form_closes_the_form_and_a_failed_webhook_is_recorded(
        maison: str, advisor_webhook: dict[str, Any]) -> None:
    advisor_webhook["answer"] = 500
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, tracker(
        text="c'est inadmissible, mon sac est abîmé", intent="complaint",
        slots={"boutique": "paris", "language": "fr"}, loop="appointment_form"), {})
    assert events == [SlotSet("language", "fr"), ActiveLoop(None), SlotSet("requested_slot", None),
                      ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "Sophie vous répondra ici demain à partir de 10 h."]
    handoff = await (await backends.handoffs()).open_for(CLAIRE)
    assert handoff is not None and handoff.reason == "complaint" and handoff.notified == "failed"
    assert handoff.notify_detail == "HTTP 500"  # no URL (and its key) in the record
    assert "boutique: paris" in handoff.note


async def test_repeated_failure_from_someone_unknown_goes_to_the_boutique(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, tracker(text="zxq blorp", intent="nlu_fallback",
                                                           sender=STRANGER), {})
    assert events == [SlotSet("language", "en"), ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "Forgive me, I am not helping as I should. A client advisor from our Paris boutique will "
        "reply to you here tomorrow from 10:00."]
    handoff = await (await backends.handoffs()).open_for(STRANGER)
    assert handoff is not None and handoff.advisor_id is None and handoff.client_id is None
    assert handoff.reason == "repeated_failure" and handoff.notified == "none"


async def test_a_vics_bespoke_request_is_sensitive(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, tracker(text="I would like my initials on a trunk",
                                                  intent="customisation_request", slots={"vic": True}), {})
    assert dispatcher.messages[0]["text"] == (
        "This deserves personal attention. Sophie will reply to you here tomorrow from 10:00.")
    assert (await (await backends.handoffs()).open_for(CLAIRE)).reason == "sensitive"  # type: ignore[union-attr]


async def test_the_advisor_gets_the_screens_reason_and_the_client_words_that_fit_it(
        maison: str, advisor_webhook: dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, tracker(
        text="mon père est décédé dimanche, je ne pourrai pas venir", intent="talk_to_advisor",
        slots={"language": "fr"}), {})
    assert [m["text"] for m in dispatcher.messages] == [
        "Nous sommes de tout cœur avec vous, et je vous remercie de nous l'avoir dit. "
        "Sophie vous répondra ici demain à partir de 10 h."]
    handoff = await (await backends.handoffs()).open_for(CLAIRE)
    assert handoff is not None and handoff.reason == "distress"
    [posted] = advisor_webhook["received"]
    assert posted["handoff"]["reason"] == "distress"


async def test_a_suspected_fraud_is_told_to_keep_its_codes(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, tracker(
        text="Someone placed an order on my account and it wasn't me", intent="talk_to_advisor"), {})
    assert dispatcher.messages[0]["text"] == (
        "Thank you for alerting us. Meanwhile, please share no card details or codes with anyone. "
        "Sophie will reply to you here tomorrow from 10:00.")
    assert (await (await backends.handoffs()).open_for(CLAIRE)).reason == "fraud"  # type: ignore[union-attr]


def _previous_session(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"event": "action", "name": "action_session_start"}, {"event": "session_started"},
            {"event": "action", "name": "action_listen"},
            {"event": "user", "text": "hello", "parse_data": {"intent": {"name": "greet"}}}, *extra]


async def test_a_first_session_carries_the_clients_language_tier_and_advisor(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSessionStart().run(dispatcher, tracker(text="", intent="", events=[]), {})
    assert events == [SessionStarted(), SlotSet("language", "fr"), SlotSet("vic", True),
                      SlotSet("advisor_name", "Sophie"), SlotSet("advisor_gender", "f"),
                      ActionExecuted("action_listen")]
    assert dispatcher.messages == []


async def test_a_brand_new_conversation_knows_the_client_at_its_start(maison: str) -> None:
    # As Rasa runs it before the first message: no user turn yet, the channel's sealed
    # metadata only in the session_started_metadata slot.
    metadata = sealed(CLAIRE, wa_id=CLAIRE, phone_number_id="100000000000001")
    first = Tracker(sender_id=CLAIRE, slots={"session_started_metadata": metadata},
                    latest_message={}, events=[], paused=False, followup_action=None,
                    active_loop={}, latest_action_name=None)
    events = await ActionSessionStart().run(CollectingDispatcher(), first, {})
    assert events == [SessionStarted(), SlotSet("language", "fr"), SlotSet("vic", True),
                      SlotSet("advisor_name", "Sophie"), SlotSet("advisor_gender", "f"),
                      ActionExecuted("action_listen")]
    # Metadata nobody sealed for this conversation counts for nothing.
    forged = Tracker(sender_id=CLAIRE, slots={"session_started_metadata": {"wa_id": CLAIRE}},
                     latest_message={}, events=[], paused=False, followup_action=None,
                     active_loop={}, latest_action_name=None)
    events = await ActionSessionStart().run(CollectingDispatcher(), forged, {})
    assert SlotSet("vic", False) in events and SlotSet("advisor_name", None) in events


async def test_a_stranger_s_first_session_leaves_her_language_to_her_first_words(maison: str) -> None:
    """Nobody in the book: no language is set at the session's start, so her first
    "Bonjour" gives the conversation French (salon/conversation/language.py's rule 3)."""
    from actions.greeting import ActionDetectLanguage

    events = await ActionSessionStart().run(CollectingDispatcher(),
                                            tracker(text="", intent="", sender=STRANGER, events=[]), {})
    assert not any(isinstance(e, dict) and e.get("name") == "language" for e in events), events
    assert SlotSet("vic", False) in events
    first = tracker(text="Bonjour", intent="greet", sender=STRANGER, events=[])
    assert await ActionDetectLanguage().run(CollectingDispatcher(), first, {}) == [SlotSet("language", "fr")]


async def test_back_after_the_window_with_a_booking_under_way(maison: str) -> None:
    slots = {"language": "en", "boutique": "paris", "service": "private_viewing", "date_time": "friday"}
    dispatcher = CollectingDispatcher()
    events = await ActionSessionStart().run(dispatcher, tracker(text="", intent="", slots=slots,
                                                                events=_previous_session()), {})
    assert events == [SessionStarted(), SlotSet("language", "en"), SlotSet("boutique", "paris"),
                      SlotSet("service", "private_viewing"), SlotSet("date_time", "friday"),
                      SlotSet("vic", True), SlotSet("advisor_name", "Sophie"),
                      SlotSet("advisor_gender", "f"), ActionExecuted("action_listen")]
    assert [(m["text"], [b["title"] for b in m["buttons"]]) for m in dispatcher.messages] == [(
        "Welcome back, Ms Laurent. Last time we were arranging your private viewing in Paris. "
        "Shall we continue?", ["Continue booking", "Something else"])]


def test_the_first_words_of_a_handoff_in_french_and_italian() -> None:
    assert opening("repeated_failure", "fr") == (
        "Pardonnez-moi, je crains de ne pas vous être d'une grande aide.")
    assert opening("health", "fr") == ("Votre bien-être passe avant tout, et cela mérite l'attention "
                                       "de l'un de nos conseillers.")
    assert opening("fraud", "fr").startswith("Merci de nous avoir alertés. En attendant, ne communiquez")
    assert opening("payment", "fr") == "Veuillez nous excuser pour ce désagrément lié à votre paiement."
    assert opening("payment", "it") == "Ci scusiamo per il problema riscontrato con il pagamento."
    assert opening("data_protection", "fr") == (
        "Bien entendu : votre demande concernant vos données personnelles sera traitée "
        "personnellement par un membre de notre équipe.")
    assert opening("data_protection", "it") == (
        "Certamente: la Sua richiesta relativa ai dati personali sarà seguita personalmente da un "
        "membro del nostro team.")
    assert opening("distress", "it") == "Ci dispiace moltissimo, e La ringrazio di avercelo confidato."
    assert _UNREACHABLE["fr"].endswith("au +33 1 42 65 00 00.")


def test_a_booking_under_way_recalled_in_french() -> None:
    reply = recall(None, LastTime(booking_service="Séance de stylisme", booking_city="Paris"), "fr")
    assert reply is not None and reply.text == (
        "Quel plaisir de vous retrouver. La dernière fois, nous préparions votre rendez-vous "
        "(séance de stylisme à Paris). Souhaitez-vous reprendre la réservation ?")


async def test_back_after_the_window_after_asking_about_an_order(maison: str) -> None:
    asked = {"event": "slot", "name": "order_number", "value": "SOL-104233"}
    dispatcher = CollectingDispatcher()
    await ActionSessionStart().run(dispatcher, tracker(text="", intent="", slots={"language": "fr"},
                                                       events=_previous_session(asked)), {})
    [message] = dispatcher.messages
    assert message["text"] == ("Quel plaisir de vous retrouver, Madame Laurent. Souhaitez-vous des nouvelles "
                               "de votre commande SOL-104233 ?")
    assert message["buttons"][0]["payload"] == '/check_order_status{"order_number": "SOL-104233"}'
    # An order asked about two sessions ago is not recalled again.
    dispatcher = CollectingDispatcher()
    await ActionSessionStart().run(dispatcher, tracker(
        text="", intent="", events=[asked, *_previous_session()]), {})
    assert dispatcher.messages == []


async def test_back_while_an_advisor_has_the_conversation_stays_silent_and_paused(maison: str) -> None:
    await ActionHandoff().run(CollectingDispatcher(), tracker(text="Sophie please", intent="talk_to_advisor"), {})
    dispatcher = CollectingDispatcher()
    events = await ActionSessionStart().run(dispatcher, tracker(
        text="", intent="", slots={"language": "en", "service": "fitting"}, events=_previous_session()), {})
    assert events[-2:] == [ActionExecuted("action_listen"), ConversationPaused()]
    assert dispatcher.messages == []


async def test_nothing_left_open_nothing_said(maison: str) -> None:
    # A completed booking clears its slots; a greeting alone leaves nothing to recall.
    dispatcher = CollectingDispatcher()
    await ActionSessionStart().run(dispatcher, tracker(text="", intent="", slots={"language": "en"},
                                                       events=_previous_session()), {})
    assert dispatcher.messages == []


async def test_a_session_that_only_held_the_channels_session_start_recalls_nothing(maison: str) -> None:
    events = [{"event": "session_started"},
              {"event": "user", "text": "/session_start", "parse_data": {"intent": {"name": "session_start"}}}]
    dispatcher = CollectingDispatcher()
    await ActionSessionStart().run(dispatcher, tracker(
        text="", intent="", slots={"language": "en", "boutique": "paris", "service": "fitting"},
        events=events), {})
    assert dispatcher.messages == []


def test_every_reason_opens_in_each_language() -> None:
    from salon.advisors.handoff import OPENINGS, REASONS, opening

    assert set(OPENINGS) == set(REASONS)
    for reason, lines in OPENINGS.items():
        assert set(lines) == {"en", "fr", "it"}, reason
        assert bool(lines["en"]) == bool(lines["fr"]) == bool(lines["it"]), reason
    assert opening("fraud", "it").startswith("Grazie per averci avvisati.")
    assert opening("talk_to_advisor", "de") == "Of course."  # a language not written: English


async def test_a_handoff_in_italian_names_the_boutique_in_italian(maison: str) -> None:
    paris = (await backends.bookings().boutiques())["paris"]
    london = (await backends.bookings().boutiques())["london"]
    assert reply_promise(None, paris, WEDNESDAY_EVENING, "it").startswith(
        "Un consulente della nostra boutique di Parigi Le risponderà qui domani")
    assert reply_promise(None, london, WEDNESDAY_EVENING, "fr").startswith(
        "Un conseiller de notre boutique de Londres vous répondra")
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, tracker(
        text="Vorrei parlare con Sophie, per favore", intent="talk_to_advisor", slots={"language": "it"}), {})
    assert events == [SlotSet("language", "it"), ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "Certamente. Sophie Le risponderà qui domani a partire dalle 10:00."]


async def test_back_after_the_window_in_italian(maison: str) -> None:
    slots = {"language": "it", "boutique": "paris", "service": "private_viewing"}
    dispatcher = CollectingDispatcher()
    await ActionSessionStart().run(dispatcher, tracker(text="", intent="", slots=slots,
                                                       events=_previous_session()), {})
    assert [(m["text"], [b["title"] for b in m["buttons"]]) for m in dispatcher.messages] == [(
        "Che piacere risentirLa, Signora Laurent. L'ultima volta stavamo organizzando il Suo appuntamento "
        "(presentazione privata a Parigi). Desidera proseguire?", ["Proseguire", "Un'altra richiesta"])]
