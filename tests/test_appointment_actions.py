"""The greeting and appointment actions with rasa_sdk trackers and CollectingDispatcher,
against the seeded maison in SQLite (real bookings port, real CRM adapter), at a fixed
moment given through the clock file every process follows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import backends
from actions.appointments import (
    ActionAppointmentBooked,
    ActionAskAppointmentConfirmed,
    ActionAskAppointmentStart,
    ActionAskPartySize,
    ActionCancelAppointment,
    ActionRescheduleAppointment,
    ActionSettleCancellation,
    ValidateAppointmentForm,
)
from actions.greeting import ActionGreet
from salon.db import make_sync_engine
from salon.integrations.schema import appointments
from tests.action_support import action_server_on

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)  # Thursday, 09:00 in Paris
PARIS, LONDON = ZoneInfo("Europe/Paris"), ZoneInfo("Europe/London")
CLAIRE = "33600000001"  # C-001, VIC, advisor Sophie (Paris); APT-20261127-PAR-01 booked
HENRY = "447700900102"  # C-014, Platinum, advisor James (London)
STRANGER = "447700900999"
FORM_SLOTS = ["boutique", "service", "date_time", "appointment_start", "party_size",
              "appointment_confirmed"]
DOMAIN: dict[str, Any] = {"forms": {"appointment_form": {"required_slots": FORM_SLOTS}},
                          "slots": {name: {} for name in FORM_SLOTS}}



@pytest.fixture()
def maison(sqlite_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    yield sqlite_url
    backends.reset()


def tracker(slots: dict[str, Any] | None = None, *, text: str = "", intent: str = "inform",
            entities: list[dict[str, Any]] | None = None, sender: str = CLAIRE,
            candidates: dict[str, Any] | None = None, active: bool = True) -> Tracker:
    """A tracker after one user message; ``candidates`` are the slots the form just
    extracted from it (what the validation action validates)."""
    events: list[dict[str, Any]] = [
        {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}]
    events += [{"event": "slot", "name": k, "value": v} for k, v in (candidates or {}).items()]
    return Tracker(
        sender_id=sender,
        slots={**(slots or {}), **(candidates or {})},
        latest_message={"text": text, "intent": {"name": intent}, "entities": entities or [],
                        "metadata": {}},
        events=events, paused=False, followup_action=None,
        active_loop={"name": "appointment_form"} if active else {},
        latest_action_name="action_listen",
    )


async def validate(slots: dict[str, Any], candidates: dict[str, Any], text: str = "",
                   sender: str = CLAIRE, intent: str = "inform") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateAppointmentForm().run(
        dispatcher, tracker(slots, text=text, candidates=candidates, sender=sender, intent=intent),
        DOMAIN)
    return events, dispatcher.messages


def said(messages: list[dict[str, Any]]) -> list[tuple[str | None, list[str]]]:
    return [(m["text"], [b["title"] for b in m["buttons"]]) for m in messages]


def live_rows(url: str, **where: Any) -> list[Any]:
    engine = make_sync_engine(url)
    query = select(appointments).where(appointments.c.status == "booked")
    for column, value in where.items():
        query = query.where(appointments.c[column] == value)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    return rows


async def test_greeting_a_vic_in_french_and_a_stranger(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, tracker(text="Bonjour", intent="greet", active=False), {})
    assert events == [SlotSet("language", "fr")]
    assert said(dispatcher.messages) == [(
        "Bonjour Madame Laurent. Sophie se tient à votre disposition, ou je peux vous aider moi-même.",
        ["Parler à Sophie", "Prendre rendez-vous", "Suivre une commande"])]
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, tracker(text="Hello", intent="greet", sender=STRANGER,
                                                         active=False), {})
    assert events == [SlotSet("language", "en")]
    assert [m["response"] for m in dispatcher.messages] == ["utter_greet"]


async def test_boutique_is_read_or_asked_again(maison: str) -> None:
    assert await validate({}, {"boutique": "Mount Street"}) == ([SlotSet("boutique", "london")], [])
    events, messages = await validate({}, {"boutique": "Rome"})
    assert events == [SlotSet("boutique", None)]
    assert said(messages) == [("Our boutiques are in Paris, London, Milan. Which would suit you?", [])]


async def test_a_service_the_boutique_does_not_offer_is_asked_again(maison: str) -> None:
    events, messages = await validate({"boutique": "milan"}, {"service": "repair_dropoff"})
    assert events == [SlotSet("service", None)]
    assert said(messages) == [("Our Milan boutique does not offer a repair drop-off; Paris and London do.", [])]
    assert await validate({"boutique": "paris"}, {"service": "a fitting please"}) == (
        [SlotSet("service", "fitting")], [])


async def test_an_exact_free_time_is_taken_at_once(maison: str) -> None:
    events, messages = await validate({"boutique": "london", "service": "fitting"},
                                      {"date_time": "tomorrow at 3"})
    assert events == [SlotSet("date_time", "tomorrow at 3"),
                      SlotSet("appointment_start", "2026-11-27T15:00:00+00:00"),
                      SlotSet("appointment_confirmed", None)]
    assert messages == []


async def test_a_full_or_vague_time_leaves_the_choice_to_buttons(maison: str) -> None:
    events, _ = await validate({"boutique": "london", "service": "fitting"},
                               {"date_time": "Saturday at 10am"})  # both salons taken
    assert SlotSet("appointment_start", None) in events
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentStart().run(
        dispatcher, tracker({"boutique": "london", "date_time": "Saturday at 10am"}), {})
    assert said(dispatcher.messages) == [("Here are the nearest free times in London. Which would suit you?",
                                          ["Sat 28 Nov, 11:00", "Sat 28 Nov, 12:00", "Sat 28 Nov, 13:00"])]
    assert dispatcher.messages[0]["buttons"][0]["payload"] == \
        '/inform{"appointment_start": "2026-11-28T11:00:00+00:00"}'
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentStart().run(
        dispatcher, tracker({"boutique": "paris", "date_time": "vendredi après-midi", "language": "fr"}), {})
    assert said(dispatcher.messages) == [("Voici les créneaux libres les plus proches à Paris. Lequel vous convient ?",
                                          ["ven. 27 nov., 12h00", "ven. 27 nov., 13h00", "ven. 27 nov., 14h00"])]


async def test_unreadable_or_past_moments_are_asked_again(maison: str) -> None:
    events, messages = await validate({"boutique": "paris"}, {"date_time": "whenever suits"})
    assert events == [SlotSet("date_time", None), SlotSet("appointment_start", None)]
    assert messages[0]["text"].startswith("I could not quite place that moment.")
    events, messages = await validate({"boutique": "paris"}, {"date_time": "today at 8am"})
    assert events == [SlotSet("date_time", None), SlotSet("appointment_start", None)]
    assert said(messages) == [("That moment has already passed. Which other day would suit you?", [])]


async def test_a_tapped_slot_is_checked_and_a_typed_moment_starts_over(maison: str) -> None:
    slots = {"boutique": "london", "service": "fitting", "date_time": "Saturday morning"}
    free = "2026-11-28T11:00:00+00:00"
    assert await validate(slots, {"appointment_start": free}) == ([SlotSet("appointment_start", free)], [])
    events, messages = await validate(slots, {"appointment_start": "2026-11-28T10:00:00+00:00"})
    assert events == [SlotSet("appointment_start", None)]
    assert said(messages) == [("I am sorry, that time has just been taken.", [])]
    events, _ = await validate(slots, {"appointment_start": "Monday at 4"})
    assert events == [SlotSet("appointment_start", "2026-11-30T16:00:00+00:00"),
                      SlotSet("date_time", "Monday at 4"),
                      SlotSet("appointment_confirmed", None)]


async def test_party_size(maison: str) -> None:
    assert await validate({}, {"party_size": "two of us"}) == ([SlotSet("party_size", "2")], [])
    assert await validate({}, {"party_size": "just me"}) == ([SlotSet("party_size", "1")], [])
    events, messages = await validate({}, {"party_size": "6"})
    assert events == [SlotSet("party_size", None)] and "up to 4 people" in messages[0]["text"]
    events, messages = await validate({}, {"party_size": "hmm"})
    assert said(messages) == [("How many of you will there be, yourself included?", [])]
    dispatcher = CollectingDispatcher()
    await ActionAskPartySize().run(dispatcher, tracker({"language": "fr"}), {})
    assert said(dispatcher.messages) == [("Serez-vous accompagné(e) ?",
                                          ["Je viendrai seul(e)", "Nous serons deux", "Nous serons trois"])]


async def test_confirm_then_book_into_the_clients_record(maison: str) -> None:
    slots = {"boutique": "paris", "service": "private_viewing", "date_time": "Friday afternoon",
             "appointment_start": "2026-12-04T15:00:00+01:00", "party_size": "2"}
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentConfirmed().run(dispatcher, tracker(slots), {})
    assert said(dispatcher.messages) == [(
        "So that is a private viewing on Friday 4 December at 15:00 in Paris, for 2. Shall I confirm?",
        ["Yes, please confirm", "Another time"])]
    events, messages = await validate(slots, {"appointment_confirmed": True}, text="yes", intent="affirm")
    assert messages == []
    assert events[0] == SlotSet("appointment_confirmed", True)
    reference = events[1]["value"]
    assert events == [SlotSet("appointment_confirmed", True), SlotSet("appointment_id", reference)]
    [row] = live_rows(maison, id=reference)
    assert (row.client_id, row.boutique_id, row.service, row.advisor_id, row.notes) == (
        "C-001", "paris", "private_viewing", "sophie-marchand", "Party of 2.")
    assert row.starts_at == datetime(2026, 12, 4, 14, 0, tzinfo=timezone.utc)
    assert row.ends_at - row.starts_at == timedelta(hours=1)

    dispatcher = CollectingDispatcher()
    events = await ActionAppointmentBooked().run(
        dispatcher, tracker({**slots, "appointment_confirmed": True, "appointment_id": reference},
                            active=False), {})
    assert said(dispatcher.messages) == [(
        "It is booked: a private viewing on Friday 4 December at 15:00, Maison Solenne Paris "
        f"Faubourg. Sophie will be expecting you. Your reference is {reference}.", [])]
    assert events == [SlotSet(s, None) for s in (
        "boutique", "service", "date_time", "appointment_start", "party_size",
        "appointment_confirmed", "reschedule_id")]


async def test_another_time_at_the_summary_asks_the_day_again(maison: str) -> None:
    slots = {"boutique": "paris", "service": "fitting", "appointment_start": "2026-12-04T15:00:00+01:00"}
    events, messages = await validate(slots, {"appointment_confirmed": False}, text="no", intent="deny")
    assert events == [SlotSet("appointment_confirmed", None), SlotSet("appointment_start", None),
                      SlotSet("date_time", None)]
    assert messages == []
    assert live_rows(maison, client_id="C-001", starts_at=datetime(2026, 12, 4, 14, 0, tzinfo=timezone.utc)) == []


async def test_a_slot_lost_to_another_client_meanwhile_is_offered_again(maison: str) -> None:
    full = "2026-11-27T11:00:00+01:00"  # one salon left in Paris
    await backends.bookings().book(client_id="C-002", boutique_id="paris", service="fitting",
                                   starts_at=datetime.fromisoformat(full))
    slots = {"boutique": "paris", "service": "fitting", "appointment_start": full}
    events, messages = await validate(slots, {"appointment_confirmed": True}, text="yes", intent="affirm")
    assert events == [SlotSet("appointment_confirmed", None), SlotSet("appointment_start", None)]
    assert said(messages) == [("I am sorry, that time is no longer available. Here are other moments:", [])]


async def test_someone_unknown_is_not_booked_and_an_advisor_gets_the_request(maison: str) -> None:
    slots = {"boutique": "london", "service": "fitting", "appointment_start": "2026-12-04T15:00:00+00:00",
             "party_size": "2"}
    events, _ = await validate(slots, {"appointment_confirmed": True}, sender=STRANGER, intent="affirm")
    assert events == [SlotSet("appointment_confirmed", True)]
    dispatcher = CollectingDispatcher()
    events = await ActionAppointmentBooked().run(
        dispatcher, tracker({**slots, "appointment_confirmed": True}, text="yes", sender=STRANGER,
                            active=False), {})
    assert events[-2:] == [SlotSet("language", "en"), ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "Thank you, your request is noted. A client advisor from our London boutique will reply "
        "to you here today from 10:00."]  # Thursday 08:00 in London: it opens at 10:00
    handoff = await (await backends.handoffs()).open_for(STRANGER)
    assert handoff is not None and handoff.reason == "booking_request" and handoff.boutique_id == "london"
    assert "appointment_start: 2026-12-04T15:00:00+00:00" in handoff.note and "party_size: 2" in handoff.note


async def test_cancel_asks_once_then_cancels(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker(text="please cancel my appointment", intent="cancel_appointment",
                            active=False), {})
    assert events == [SlotSet("appointment_id", "APT-20261127-PAR-01"), SlotSet("cancelling", True)]
    assert said(dispatcher.messages) == [(
        "Shall I cancel your styling session on Friday 27 November at 11:00 in Paris?",
        ["Yes, cancel it", "Keep it"])]
    dispatcher = CollectingDispatcher()
    events = await ActionSettleCancellation().run(
        dispatcher, tracker({"appointment_id": "APT-20261127-PAR-01", "cancelling": True},
                            text="yes", intent="affirm", active=False), {})
    assert events == [SlotSet("cancelling", False), SlotSet("appointment_id", None)]
    assert said(dispatcher.messages) == [(
        "It is cancelled: your styling session on Friday 27 November at 11:00 in Paris. "
        "I will gladly find you another moment whenever you wish.", [])]
    assert live_rows(maison, id="APT-20261127-PAR-01") == []


async def test_keeping_the_appointment_and_nothing_to_cancel(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionSettleCancellation().run(
        dispatcher, tracker({"appointment_id": "APT-20261127-PAR-01", "cancelling": True},
                            text="no", intent="deny", active=False), {})
    assert events == [SlotSet("cancelling", False), SlotSet("appointment_id", None)]
    assert said(dispatcher.messages) == [("Very well, your appointment stays as planned.", [])]
    assert len(live_rows(maison, id="APT-20261127-PAR-01")) == 1
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker(text="cancel my booking", intent="cancel_appointment", sender=STRANGER,
                            active=False), {})
    assert events == [SlotSet("cancelling", False)]
    assert said(dispatcher.messages) == [(
        "I find no upcoming appointment linked to this number. Would you like to book one?",
        ["Book a visit"])]


async def test_several_appointments_are_offered_as_buttons(maison: str) -> None:
    await backends.bookings().book(client_id="C-001", boutique_id="paris", service="fitting",
                                   starts_at=datetime(2026, 12, 2, 10, 0, tzinfo=PARIS))
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker({"language": "fr"}, text="annuler", intent="cancel_appointment",
                            active=False), {})
    assert events == [SlotSet("cancelling", False)]
    assert said(dispatcher.messages) == [("Quel rendez-vous souhaitez-vous annuler ?",
                                          ["ven. 27 nov., 11h00", "mer. 2 déc., 10h00"])]
    assert dispatcher.messages[0]["buttons"][0]["payload"] == \
        '/cancel_appointment{"appointment_id": "APT-20261127-PAR-01"}'


async def test_reschedule_moves_the_appointment_and_keeps_its_details(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionRescheduleAppointment().run(
        dispatcher, tracker(text="can I move my appointment?", intent="reschedule_appointment",
                            active=False), {})
    assert events == [
        SlotSet("reschedule_id", "APT-20261127-PAR-01"), SlotSet("boutique", "paris"),
        SlotSet("service", "styling_session"), SlotSet("date_time", None),
        SlotSet("appointment_start", None), SlotSet("appointment_confirmed", None),
        SlotSet("rescheduling", True)]
    assert said(dispatcher.messages) == [(
        "Of course, let us find another moment for your styling session on Friday 27 November "
        "at 11:00 in Paris.", [])]
    slots = {"reschedule_id": "APT-20261127-PAR-01", "boutique": "paris", "service": "styling_session",
             "rescheduling": True}
    # Moving skips the party size: the next slot asked after the day is the time, then the summary.
    events, _ = await validate(slots, {"date_time": "Tuesday at 11"})
    assert events[-1] == SlotSet("requested_slot", "appointment_confirmed")
    new_start = "2026-12-01T11:00:00+01:00"
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentConfirmed().run(dispatcher, tracker({**slots, "appointment_start": new_start}), {})
    assert dispatcher.messages[0]["text"] == (
        "I shall move your appointment to Tuesday 1 December at 11:00 in Paris. Shall I confirm?")
    events, _ = await validate({**slots, "appointment_start": new_start}, {"appointment_confirmed": True},
                               intent="affirm")
    reference = events[1]["value"]
    assert events[:2] == [SlotSet("appointment_confirmed", True), SlotSet("appointment_id", reference)]
    assert live_rows(maison, id="APT-20261127-PAR-01") == []
    [row] = live_rows(maison, id=reference)
    assert (row.service, row.advisor_id, row.client_id) == ("styling_session", "sophie-marchand", "C-001")
    dispatcher = CollectingDispatcher()
    events = await ActionAppointmentBooked().run(
        dispatcher, tracker({**slots, "appointment_id": reference}, active=False), {})
    assert dispatcher.messages[0]["text"] == (
        "Done, your appointment is now on Tuesday 1 December at 11:00, Maison Solenne Paris "
        f"Faubourg. Sophie will be expecting you. Your reference is {reference}.")
    assert events[-1] == SlotSet("rescheduling", False)


async def test_the_conversation_follows_the_language_the_client_writes_in(maison: str) -> None:
    from actions.greeting import ActionDetectLanguage

    detect = ActionDetectLanguage()
    # Before anything is known: the record (Claire is French) unless the words say otherwise.
    assert await detect.run(CollectingDispatcher(), tracker(text="/book_appointment", active=False), {}) == [
        SlotSet("language", "fr")]
    assert await detect.run(CollectingDispatcher(), tracker(text="I would like to book a visit", active=False),
                            {}) == [SlotSet("language", "en")]
    assert await detect.run(CollectingDispatcher(), tracker({"language": "en"}, text="Paris", active=False),
                            {}) == []
    assert await detect.run(CollectingDispatcher(), tracker({"language": "en"}, text="merci, je voudrais venir demain",
                                                            active=False), {}) == [SlotSet("language", "fr")]
