"""The greeting and appointment actions with rasa_sdk trackers and CollectingDispatcher,
against the seeded maison in SQLite (real bookings port, real CRM adapter), at the suite's
"now" (tests/instants.py) given through the clock file every process follows.

The book starts empty: each test books what it needs through the same bookings port the
actions use, on days reckoned from "now" in the boutique's zone, so it holds at any instant.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
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
from salon.integrations.bookings import Appointment
from salon.integrations.schema import appointments
from salon.storage.db import make_sync_engine
from tests.action_support import action_server_on, sealed_for
from tests.instants import suite_now
from tests.seeding import opening_hours

NOW = suite_now()
PARIS, LONDON = ZoneInfo("Europe/Paris"), ZoneInfo("Europe/London")
MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = range(7)
CLAIRE = "33600000001"  # C-001, VIC, French, advisor Sophie (Paris)
HENRY = "447700900102"  # C-014, Platinum, advisor James (London)
STRANGER = "447700900999"
FORM_SLOTS = ["boutique", "service", "date_time", "appointment_start", "party_size",
              "appointment_confirmed"]
DOMAIN: dict[str, Any] = {"forms": {"appointment_form": {"required_slots": FORM_SLOTS}},
                          "slots": {name: {} for name in FORM_SLOTS}}

EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
FR_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre")
FR_MONTHS_SHORT = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.",
                   "oct.", "nov.", "déc.")
IT_DAYS = ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica")
IT_DAYS_SHORT = ("lun", "mar", "mer", "gio", "ven", "sab", "dom")
IT_MONTHS = ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
             "settembre", "ottobre", "novembre", "dicembre")
IT_MONTHS_SHORT = ("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic")
MILAN = ZoneInfo("Europe/Rome")
FRANCESCA = "393470001001"  # C-023, VIC, Italian, advisor Giulia (Milan)


def ahead(weekday: int, zone: ZoneInfo = PARIS) -> date:
    """The first such weekday strictly after today in ``zone``."""
    today = NOW.astimezone(zone).date()
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def day_en(day: date) -> str:
    """"Friday 4 December", as the client writes it and the assistant says it."""
    return f"{EN_DAYS[day.weekday()]} {day.day} {EN_MONTHS[day.month - 1]}"


def day_fr(day: date) -> str:
    """"vendredi 4 décembre"."""
    return f"{FR_DAYS[day.weekday()]} {day.day} {FR_MONTHS[day.month - 1]}"


def button_en(moment: datetime) -> str:
    """"Sat 28 Nov, 11:00" (CLDR's British English shortens September to "Sept")."""
    month = "Sept" if moment.month == 9 else EN_MONTHS[moment.month - 1][:3]
    return f"{EN_DAYS[moment.weekday()][:3]} {moment.day} {month}, {moment:%H:%M}"


def time_fr(moment: datetime) -> str:
    """The maison's French time: "12 h", "12 h 30"."""
    return f"{moment.hour} h" + (f" {moment.minute:02d}" if moment.minute else "")


def button_fr(moment: datetime) -> str:
    """"ven. 27 nov., 12 h"; the weekday left out where the title would pass 20 characters."""
    day = f"{moment.day} {FR_MONTHS_SHORT[moment.month - 1]}"
    title = f"{FR_DAYS[moment.weekday()][:3]}. {day}, {time_fr(moment)}"
    return title if len(title) <= 20 else f"{day}, {time_fr(moment)}"


def day_it(day: date) -> str:
    """"venerdì 4 dicembre"."""
    return f"{IT_DAYS[day.weekday()]} {day.day} {IT_MONTHS[day.month - 1]}"


def button_it(moment: datetime) -> str:
    """"ven 4 dic, 15:00"."""
    return (f"{IT_DAYS_SHORT[moment.weekday()]} {moment.day} {IT_MONTHS_SHORT[moment.month - 1]}, "
            f"{moment:%H:%M}")


def advisor_replies(boutique_id: str, now: datetime) -> str:
    """When a client advisor of the boutique will reply, said at ``now``: shortly when it is
    open, else from its next opening (boutiques.yml)."""
    hours = opening_hours(boutique_id)
    opening = hours.next_opening(now)
    if opening <= now:
        return "shortly"
    days = (opening.date() - now.astimezone(hours.zone).date()).days
    when = {0: "today", 1: "tomorrow"}.get(days, f"on {day_en(opening.date())}")
    return f"{when} from {opening:%H:%M}"


async def book_for(client_id: str, boutique_id: str, start: datetime, service: str = "fitting",
                   advisor_id: str | None = None) -> Appointment:
    """An appointment made through the bookings port the actions use."""
    return await backends.bookings().book(client_id=client_id, boutique_id=boutique_id,
                                          service=service, starts_at=start, advisor_id=advisor_id)


async def claires_styling_session(start: datetime) -> Appointment:
    return await book_for("C-001", "paris", start, "styling_session", "sophie-marchand")


@pytest.fixture()
async def maison(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The seeded maison with an empty appointment book, every port's clock at NOW."""
    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW, seeded_book=False)
    yield sqlite_url
    await backends.close()  # in the test's own event loop, before it closes




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
                        "metadata": sealed_for(sender)},
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
    # Claire lives in Paris: good evening from 18:00 there.
    salutation = "Bonsoir" if NOW.astimezone(PARIS).hour >= 18 else "Bonjour"
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, tracker(text="Bonjour", intent="greet", active=False), {})
    assert events == [SlotSet("language", "fr")]
    assert said(dispatcher.messages) == [(
        f"{salutation} Madame Laurent. Sophie se tient à votre disposition, ou je peux vous aider moi-même.",
        ["Parler à Sophie", "Prendre rendez-vous", "Suivre une commande"])]
    assert dispatcher.messages[0]["metadata"] == {"lead": f"{salutation} Madame Laurent."}
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, tracker(text="Hello", intent="greet", sender=STRANGER,
                                                         active=False), {})
    assert events == [SlotSet("language", "en")]
    assert [m["response"] for m in dispatcher.messages] == ["utter_greet"]


async def test_boutique_is_read_or_asked_again(maison: str) -> None:
    assert await validate({}, {"boutique": "Mount Street"}) == ([SlotSet("boutique", "london")], [])
    events, messages = await validate({}, {"boutique": "Rome"})
    assert events == [SlotSet("boutique", None)]
    assert said(messages) == [("Our boutiques are in Paris, London and Milan.", [])]
    events, messages = await validate({"language": "fr"}, {"boutique": "Rome"})
    assert said(messages) == [("Nos boutiques sont à Paris, à Londres et à Milan.", [])]


async def test_a_service_the_boutique_does_not_offer_is_asked_again(maison: str) -> None:
    events, messages = await validate({"boutique": "milan"}, {"service": "repair_dropoff"})
    assert events == [SlotSet("service", None)]
    assert said(messages) == [("Our Milan boutique does not offer a repair drop-off; you will find it in Paris and London.", [])]
    assert await validate({"boutique": "paris"}, {"service": "a fitting please"}) == (
        [SlotSet("service", "fitting")], [])


async def test_an_exact_free_time_is_taken_at_once(maison: str) -> None:
    # London opens every day, Sundays from 12:00 to 17:00: tomorrow at 15:00 is a slot.
    tomorrow = NOW.astimezone(LONDON).date() + timedelta(days=1)
    events, messages = await validate({"boutique": "london", "service": "fitting"},
                                      {"date_time": "tomorrow at 3"})
    assert events == [SlotSet("date_time", "tomorrow at 3"),
                      SlotSet("appointment_start", at(tomorrow, 15, zone=LONDON).isoformat()),
                      SlotSet("appointment_confirmed", None)]
    assert messages == []


async def test_a_closed_day_offers_the_next_free_times(maison: str) -> None:
    sunday = ahead(SUNDAY)  # Paris is closed on Sundays
    text = f"{day_en(sunday)} at 3"
    events, _ = await validate({"boutique": "paris", "service": "fitting"}, {"date_time": text})
    assert events == [SlotSet("date_time", text), SlotSet("appointment_start", None),
                      SlotSet("appointment_confirmed", None)]
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentStart().run(dispatcher, tracker({"boutique": "paris", "date_time": text}), {})
    monday = sunday + timedelta(days=1)  # opens at 10:30
    assert said(dispatcher.messages) == [(
        "I am sorry, that time is fully booked in Paris. These are the next free times:",
        [button_en(at(monday, h, 30)) for h in (10, 11, 12)])]
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentStart().run(dispatcher, tracker(
        {"boutique": "paris", "date_time": text, "language": "fr"}), {})
    assert said(dispatcher.messages)[0][0] == ("Je regrette, ce créneau est déjà réservé à Paris. Voici "
                                               "les prochains créneaux libres :")


async def test_a_full_or_vague_time_leaves_the_choice_to_buttons(maison: str) -> None:
    saturday = ahead(SATURDAY, LONDON)
    for client in ("C-014", "C-017"):  # both London salons at 10:00
        await book_for(client, "london", at(saturday, 10, zone=LONDON))
    text = f"{day_en(saturday)} at 10am"
    events, _ = await validate({"boutique": "london", "service": "fitting"}, {"date_time": text})
    assert events == [SlotSet("date_time", text), SlotSet("appointment_start", None),
                      SlotSet("appointment_confirmed", None)]
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentStart().run(dispatcher, tracker({"boutique": "london", "date_time": text}), {})
    nearest = [at(saturday, h, zone=LONDON) for h in (11, 12, 13)]
    assert said(dispatcher.messages) == [("Here are the nearest free times in London. Which would suit you?",
                                          [button_en(m) for m in nearest])]
    assert dispatcher.messages[0]["buttons"][0]["payload"] == \
        f'/inform{{"appointment_start": "{nearest[0].isoformat()}"}}'
    friday = ahead(FRIDAY)
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentStart().run(dispatcher, tracker(
        {"boutique": "paris", "date_time": f"{day_fr(friday)} après-midi", "language": "fr"}), {})
    assert said(dispatcher.messages) == [("Voici les créneaux libres les plus proches à Paris. Lequel vous convient ?",
                                          [button_fr(at(friday, h)) for h in (12, 13, 14)])]


async def test_unreadable_or_past_moments_are_asked_again(maison: str) -> None:
    events, messages = await validate({"boutique": "paris"}, {"date_time": "whenever suits"})
    assert events == [SlotSet("date_time", None), SlotSet("appointment_start", None)]
    assert messages[0]["text"].startswith("I could not quite place that moment.")
    yesterday = NOW.astimezone(PARIS).date() - timedelta(days=1)
    events, messages = await validate(
        {"boutique": "paris"}, {"date_time": f"{yesterday.day}/{yesterday.month}/{yesterday.year} at 11am"})
    assert events == [SlotSet("date_time", None), SlotSet("appointment_start", None)]
    assert said(messages) == [("That moment has already passed.", [])]
    events, messages = await validate({"boutique": "paris", "language": "fr"},
                                      {"date_time": "quand vous voulez"})
    assert said(messages) == [("Je n'ai pas bien saisi le jour ou l'heure.", [])]
    events, messages = await validate(
        {"boutique": "paris", "language": "fr"},
        {"date_time": f"{yesterday.day}/{yesterday.month}/{yesterday.year} at 11am"})
    assert said(messages) == [("Cette date est déjà passée.", [])]


async def test_a_tapped_slot_is_checked_and_a_typed_moment_starts_over(maison: str) -> None:
    saturday = ahead(SATURDAY, LONDON)
    full = at(saturday, 10, zone=LONDON).isoformat()
    for client in ("C-014", "C-017"):
        await book_for(client, "london", datetime.fromisoformat(full))
    slots = {"boutique": "london", "service": "fitting", "date_time": f"{day_en(saturday)} morning"}
    free = at(saturday, 11, zone=LONDON).isoformat()
    assert await validate(slots, {"appointment_start": free}) == ([SlotSet("appointment_start", free)], [])
    events, messages = await validate(slots, {"appointment_start": full})
    assert events == [SlotSet("appointment_start", None)]
    assert said(messages) == [("I am sorry, that time has just been taken.", [])]
    monday = ahead(MONDAY, LONDON)
    typed = f"{day_en(monday)} at 4"
    events, _ = await validate(slots, {"appointment_start": typed})
    assert events == [SlotSet("appointment_start", at(monday, 16, zone=LONDON).isoformat()),
                      SlotSet("date_time", typed),
                      SlotSet("appointment_confirmed", None)]


async def test_party_size(maison: str) -> None:
    assert await validate({}, {"party_size": "two of us"}) == ([SlotSet("party_size", "2")], [])
    assert await validate({}, {"party_size": "just me"}) == ([SlotSet("party_size", "1")], [])
    events, messages = await validate({}, {"party_size": "6"})
    assert events == [SlotSet("party_size", None)] and "up to 4 people" in messages[0]["text"]
    assert "for a larger party, one of our client advisors will gladly arrange it with you." in messages[0]["text"]
    # The client's own advisor, the noun agreeing with her (slots set at the session start).
    events, messages = await validate({"language": "fr", "advisor_name": "Sophie",
                                       "advisor_gender": "f"}, {"party_size": "6"})
    assert said(messages) == [(
        "Un salon privé accueille jusqu'à 4 personnes ; pour un groupe plus nombreux, votre "
        "conseillère Sophie organisera volontiers votre venue avec vous.", [])]
    events, messages = await validate({"language": "fr"}, {"party_size": "hmm"})
    assert said(messages) == [("Pardonnez-moi, je n'ai pas bien saisi combien vous serez.", [])]
    events, messages = await validate({"language": "it", "advisor_name": "James",
                                       "advisor_gender": "m"}, {"party_size": "8"})
    assert "il Suo consulente James organizzerà volentieri tutto con Lei" in messages[0]["text"]
    events, messages = await validate({}, {"party_size": "hmm"})
    assert said(messages) == [("Forgive me, I did not quite catch how many of you there will be.", [])]
    dispatcher = CollectingDispatcher()
    await ActionAskPartySize().run(dispatcher, tracker({"language": "fr"}), {})
    # Madame Laurent: French agrees with her title.
    assert said(dispatcher.messages) == [("Serez-vous accompagnée ?",
                                          ["Je viendrai seule", "Nous serons deux", "Nous serons trois"])]


async def test_confirm_then_book_into_the_clients_record(maison: str) -> None:
    friday = ahead(FRIDAY)
    start = at(friday, 15)
    slots = {"boutique": "paris", "service": "private_viewing", "date_time": "Friday afternoon",
             "appointment_start": start.isoformat(), "party_size": "2"}
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentConfirmed().run(dispatcher, tracker(slots), {})
    assert said(dispatcher.messages) == [(
        f"So that is a private viewing on {day_en(friday)} at 15:00 in Paris, for 2. Shall I confirm?",
        ["Yes, please confirm", "Another time"])]
    events, messages = await validate(slots, {"appointment_confirmed": True}, text="yes", intent="affirm")
    assert messages == []
    assert events[0] == SlotSet("appointment_confirmed", True)
    reference = events[1]["value"]
    assert events == [SlotSet("appointment_confirmed", True), SlotSet("appointment_id", reference)]
    [row] = live_rows(maison, id=reference)
    assert (row.client_id, row.boutique_id, row.service, row.advisor_id, row.notes) == (
        "C-001", "paris", "private_viewing", "sophie-marchand", "Party of 2.")
    assert row.starts_at == start.astimezone(timezone.utc)
    assert row.ends_at - row.starts_at == timedelta(hours=1)

    dispatcher = CollectingDispatcher()
    events = await ActionAppointmentBooked().run(
        dispatcher, tracker({**slots, "appointment_confirmed": True, "appointment_id": reference},
                            active=False), {})
    assert said(dispatcher.messages) == [(
        f"It is booked: a private viewing on {day_en(friday)} at 15:00, Maison Solenne Paris "
        f"Faubourg. Sophie will be expecting you. Your reference is {reference}.", [])]
    assert events == [SlotSet(s, None) for s in (
        "boutique", "service", "date_time", "appointment_start", "party_size",
        "appointment_confirmed", "reschedule_id")]


async def test_another_time_at_the_summary_asks_the_day_again(maison: str) -> None:
    start = at(ahead(FRIDAY), 15)
    slots = {"boutique": "paris", "service": "fitting", "appointment_start": start.isoformat()}
    events, messages = await validate(slots, {"appointment_confirmed": False}, text="no", intent="deny")
    assert events == [SlotSet("appointment_confirmed", None), SlotSet("appointment_start", None),
                      SlotSet("date_time", None)]
    assert messages == []
    assert live_rows(maison, client_id="C-001") == []


async def test_a_slot_lost_to_another_client_meanwhile_is_offered_again(maison: str) -> None:
    start = at(ahead(FRIDAY), 11)
    slots = {"boutique": "paris", "service": "fitting", "appointment_start": start.isoformat()}
    for client in ("C-012", "C-006", "C-002"):  # the three Paris salons, the last meanwhile
        await book_for(client, "paris", start)
    events, messages = await validate(slots, {"appointment_confirmed": True}, text="yes", intent="affirm")
    assert events == [SlotSet("appointment_confirmed", None), SlotSet("appointment_start", None)]
    assert said(messages) == [("I am sorry, that time is no longer available. Here are other moments:", [])]
    events, messages = await validate({**slots, "language": "fr"}, {"appointment_confirmed": True},
                                      text="oui", intent="affirm")
    assert said(messages) == [("Ce créneau n'est plus disponible, je le regrette. Voici d'autres "
                               "créneaux :", [])]
    assert live_rows(maison, client_id="C-001") == []


async def test_someone_unknown_is_not_booked_and_an_advisor_gets_the_request(maison: str) -> None:
    start = at(ahead(FRIDAY, LONDON), 15, zone=LONDON).isoformat()
    slots = {"boutique": "london", "service": "fitting", "appointment_start": start, "party_size": "2"}
    events, _ = await validate(slots, {"appointment_confirmed": True}, sender=STRANGER, intent="affirm")
    assert events == [SlotSet("appointment_confirmed", True)]
    dispatcher = CollectingDispatcher()
    events = await ActionAppointmentBooked().run(
        dispatcher, tracker({**slots, "appointment_confirmed": True}, text="yes", sender=STRANGER,
                            active=False), {})
    assert events[-2:] == [SlotSet("language", "en"), ConversationPaused()]
    assert [m["text"] for m in dispatcher.messages] == [
        "Thank you, your request is noted. A client advisor from our London boutique will reply "
        f"to you here {advisor_replies('london', NOW)}."]  # within London's opening hours
    handoff = await (await backends.handoffs()).open_for(STRANGER)
    assert handoff is not None and handoff.reason == "booking_request" and handoff.boutique_id == "london"
    assert f"appointment_start: {start}" in handoff.note and "party_size: 2" in handoff.note
    assert live_rows(maison, boutique_id="london") == []


async def test_cancel_asks_once_then_cancels(maison: str) -> None:
    friday = ahead(FRIDAY)
    mine = await claires_styling_session(at(friday, 11))
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker(text="please cancel my appointment", intent="cancel_appointment",
                            active=False), {})
    assert events == [SlotSet("appointment_id", mine.id), SlotSet("cancelling", True)]
    assert said(dispatcher.messages) == [(
        f"Shall I cancel your styling session on {day_en(friday)} at 11:00 in Paris?",
        ["Yes, cancel it", "Keep it"])]
    dispatcher = CollectingDispatcher()
    events = await ActionSettleCancellation().run(
        dispatcher, tracker({"appointment_id": mine.id, "cancelling": True},
                            text="yes", intent="affirm", active=False), {})
    assert events == [SlotSet("cancelling", False), SlotSet("appointment_id", None)]
    assert said(dispatcher.messages) == [(
        f"It is cancelled: your styling session on {day_en(friday)} at 11:00 in Paris. "
        "I will gladly find you another moment whenever you wish.", [])]
    assert live_rows(maison, id=mine.id) == []


async def test_keeping_the_appointment_and_nothing_to_cancel(maison: str) -> None:
    mine = await claires_styling_session(at(ahead(FRIDAY), 11))
    dispatcher = CollectingDispatcher()
    events = await ActionSettleCancellation().run(
        dispatcher, tracker({"appointment_id": mine.id, "cancelling": True},
                            text="no", intent="deny", active=False), {})
    assert events == [SlotSet("cancelling", False), SlotSet("appointment_id", None)]
    assert said(dispatcher.messages) == [("Very well, your appointment stays as planned.", [])]
    assert len(live_rows(maison, id=mine.id)) == 1
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker(text="cancel my booking", intent="cancel_appointment", sender=STRANGER,
                            active=False), {})
    assert events == [SlotSet("cancelling", False)]
    assert said(dispatcher.messages) == [(
        "I find no upcoming appointment linked to this number. Would you like to book one?",
        ["Book a visit"])]


async def test_a_username_only_client_not_in_the_book_is_asked_for_her_number(maison: str) -> None:
    """Her BSUID alone, unknown to the book: whose appointments these are is not known; she is
    asked for her number (Meta's contact-information request), and the action resumes after."""
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker(text="annuler mon rendez-vous", intent="cancel_appointment",
                            sender="FR.99887766554433221100", active=False), {})
    assert events == [SlotSet("cancelling", False),
                      SlotSet("resume_after_contact", "action_cancel_appointment")]
    [asked] = dispatcher.messages
    assert asked["custom"]["interactive"]["type"] == "request_contact_info"
    assert "rendez-vous" in asked["custom"]["interactive"]["body"]["text"]


async def test_several_appointments_are_offered_as_buttons(maison: str) -> None:
    friday = at(ahead(FRIDAY), 11)
    wednesday = at(ahead(FRIDAY) + timedelta(days=5), 10)
    # Booked in the reverse order: the buttons follow the calendar.
    await book_for("C-001", "paris", wednesday)
    first = await claires_styling_session(friday)
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker({"language": "fr"}, text="annuler", intent="cancel_appointment",
                            active=False), {})
    assert events == [SlotSet("cancelling", False)]
    assert said(dispatcher.messages) == [("Quel rendez-vous souhaitez-vous annuler ?",
                                          [button_fr(friday), button_fr(wednesday)])]
    assert dispatcher.messages[0]["buttons"][0]["payload"] == \
        f'/cancel_appointment{{"appointment_id": "{first.id}"}}'


async def test_reschedule_moves_the_appointment_and_keeps_its_details(maison: str) -> None:
    friday = ahead(FRIDAY)
    mine = await claires_styling_session(at(friday, 11))
    dispatcher = CollectingDispatcher()
    events = await ActionRescheduleAppointment().run(
        dispatcher, tracker(text="can I move my appointment?", intent="reschedule_appointment",
                            active=False), {})
    assert events == [
        SlotSet("reschedule_id", mine.id), SlotSet("boutique", "paris"),
        SlotSet("service", "styling_session"), SlotSet("date_time", None),
        SlotSet("appointment_start", None), SlotSet("appointment_confirmed", None),
        SlotSet("rescheduling", True)]
    assert said(dispatcher.messages) == [(
        f"Of course, let us find another moment for your styling session on {day_en(friday)} "
        "at 11:00 in Paris.", [])]
    slots = {"reschedule_id": mine.id, "boutique": "paris", "service": "styling_session",
             "rescheduling": True}
    # Moving skips the party size: the next slot asked after the day is the time, then the summary.
    tuesday = ahead(TUESDAY)
    new_start = at(tuesday, 11).isoformat()
    events, _ = await validate(slots, {"date_time": f"{day_en(tuesday)} at 11"})
    assert SlotSet("appointment_start", new_start) in events
    assert events[-1] == SlotSet("requested_slot", "appointment_confirmed")
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentConfirmed().run(dispatcher, tracker({**slots, "appointment_start": new_start}), {})
    assert dispatcher.messages[0]["text"] == (
        f"I shall move your appointment to {day_en(tuesday)} at 11:00 in Paris. Shall I confirm?")
    events, _ = await validate({**slots, "appointment_start": new_start}, {"appointment_confirmed": True},
                               intent="affirm")
    reference = events[1]["value"]
    assert events[:2] == [SlotSet("appointment_confirmed", True), SlotSet("appointment_id", reference)]
    assert live_rows(maison, id=mine.id) == []
    [row] = live_rows(maison, id=reference)
    assert (row.service, row.advisor_id, row.client_id) == ("styling_session", "sophie-marchand", "C-001")
    assert row.starts_at == at(tuesday, 11).astimezone(timezone.utc)
    dispatcher = CollectingDispatcher()
    events = await ActionAppointmentBooked().run(
        dispatcher, tracker({**slots, "appointment_id": reference}, active=False), {})
    assert dispatcher.messages[0]["text"] == (
        f"Done, your appointment is now on {day_en(tuesday)} at 11:00, Maison Solenne Paris "
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


async def test_an_appointment_is_confirmed_only_to_the_client_who_holds_it(maison: str) -> None:
    """Review M7: the slot may hold any id (``/affirm{"appointment_id": …}``, a guess of the
    sequential references): another client, or a stranger, is told nothing of Claire's."""
    friday = ahead(FRIDAY)
    claires = await claires_styling_session(at(friday, 11))
    slots = {"boutique": "paris", "service": "private_viewing", "appointment_confirmed": True,
             "appointment_id": claires.id}
    for sender in (HENRY, STRANGER):
        dispatcher = CollectingDispatcher()
        events = await ActionAppointmentBooked().run(dispatcher, tracker(slots, sender=sender, active=False), {})
        told = json.dumps(dispatcher.messages, ensure_ascii=False)
        assert claires.id not in told and "styling" not in told.lower() and "Sophie" not in told, told
        assert "Thank you, your request is noted." in told  # an advisor takes the request up
        assert events[:7] == [SlotSet(s, None) for s in (  # the slate is cleaned all the same
            "boutique", "service", "date_time", "appointment_start", "party_size", "appointment_confirmed",
            "reschedule_id")]
    # Claire herself is told.
    dispatcher = CollectingDispatcher()
    await ActionAppointmentBooked().run(dispatcher, tracker(slots, active=False), {})
    assert [m["text"] for m in dispatcher.messages] == [
        f"It is booked: a styling session on {day_en(friday)} at 11:00, Maison Solenne Paris Faubourg. "
        f"Sophie will be expecting you. Your reference is {claires.id}."]


async def test_a_booking_in_italian_from_the_offer_to_the_confirmation(maison: str) -> None:
    friday = ahead(FRIDAY, MILAN)
    text = f"{day_it(friday)} pomeriggio"
    slots = {"boutique": "milan", "service": "fitting", "date_time": text, "language": "it"}
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentStart().run(dispatcher, tracker(slots, text=text, sender=FRANCESCA), {})
    offered = [at(friday, h, zone=MILAN) for h in (12, 13, 14)]
    assert said(dispatcher.messages) == [(
        "Ecco gli orari disponibili a Milano più vicini alla Sua richiesta. Quale preferisce?",
        [button_it(m) for m in offered])]
    start = at(friday, 15, zone=MILAN)
    chosen = {**slots, "appointment_start": start.isoformat(), "party_size": "2"}
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentConfirmed().run(dispatcher, tracker(chosen, sender=FRANCESCA), {})
    assert said(dispatcher.messages) == [(
        f"Prenoto quindi il Suo appuntamento (prova sartoriale) per {day_it(friday)} alle 15:00 nella "
        "boutique di Milano, per 2 persone. Va bene così?", ["Sì, confermo", "Un altro orario"])]
    events, _ = await validate(chosen, {"appointment_confirmed": True}, text="sì", sender=FRANCESCA,
                               intent="affirm")
    reference = events[1]["value"]
    dispatcher = CollectingDispatcher()
    await ActionAppointmentBooked().run(dispatcher, tracker(
        {**chosen, "appointment_confirmed": True, "appointment_id": reference}, sender=FRANCESCA,
        active=False), {})
    assert said(dispatcher.messages) == [(
        f"Prenotazione confermata: il Suo appuntamento (prova sartoriale) di {day_it(friday)} alle 15:00 "
        f"presso Maison Solenne Milano Spiga. Giulia La accoglierà. Il Suo codice di riferimento è "
        f"{reference}.", [])]


async def test_italian_answers_along_the_form(maison: str) -> None:
    italian = {"language": "it"}
    events, messages = await validate(italian, {"boutique": "Roma"}, sender=FRANCESCA)
    assert said(messages) == [("Le nostre boutique si trovano a Parigi, a Londra e a Milano.", [])]
    assert await validate(italian, {"boutique": "Parigi"}, sender=FRANCESCA) == (
        [SlotSet("boutique", "paris")], [])
    events, messages = await validate({**italian, "boutique": "milan"}, {"service": "riparazione"},
                                      sender=FRANCESCA)
    assert said(messages) == [("La nostra boutique di Milano non offre questo servizio (consegna per "
                               "riparazione); lo trova a Parigi e a Londra.", [])]
    events, messages = await validate({"language": "fr", "boutique": "milan"}, {"service": "réparation"})
    assert said(messages) == [("Notre boutique de Milan ne propose pas ce service (dépôt en réparation) ; "
                               "vous le trouverez à Paris et à Londres.", [])]
    assert await validate(italian, {"party_size": "saremo in due"}, sender=FRANCESCA) == (
        [SlotSet("party_size", "2")], [])
    events, messages = await validate(italian, {"party_size": "saremo in 6"}, sender=FRANCESCA)
    assert said(messages) == [(
        "Un salotto privato accoglie fino a 4 persone; per un gruppo più numeroso uno dei nostri "
        "consulenti organizzerà volentieri tutto con Lei.", [])]
    events, messages = await validate({**italian, "boutique": "milan"}, {"date_time": "boh"},
                                      sender=FRANCESCA)
    assert said(messages) == [("Non ho capito bene di quale momento si tratti.", [])]
    dispatcher = CollectingDispatcher()
    await ActionAskPartySize().run(dispatcher, tracker(italian, sender=FRANCESCA), {})
    assert said(dispatcher.messages) == [("Ci sarà qualcuno con Lei?",
                                          ["Solo io", "Saremo in due", "Saremo in tre"])]


async def test_cancelling_in_italian_and_french(maison: str) -> None:
    friday = ahead(FRIDAY, MILAN)
    mine = await book_for("C-023", "milan", at(friday, 11, zone=MILAN), "styling_session", "giulia-ferri")
    dispatcher = CollectingDispatcher()
    events = await ActionCancelAppointment().run(
        dispatcher, tracker({"language": "it"}, text="vorrei annullare il mio appuntamento",
                            intent="cancel_appointment", sender=FRANCESCA, active=False), {})
    assert events == [SlotSet("appointment_id", mine.id), SlotSet("cancelling", True)]
    assert said(dispatcher.messages) == [(
        f"Desidera che annulli il Suo appuntamento (consulenza di stile) di {day_it(friday)} alle 11:00 a "
        "Milano?", ["Sì, annulli pure", "No, lo mantengo"])]
    dispatcher = CollectingDispatcher()
    await ActionSettleCancellation().run(dispatcher, tracker(
        {"appointment_id": mine.id, "cancelling": True, "language": "it"}, text="sì", intent="affirm",
        sender=FRANCESCA, active=False), {})
    assert said(dispatcher.messages) == [(
        f"Fatto, ho annullato il Suo appuntamento (consulenza di stile) di {day_it(friday)} alle 11:00 a "
        "Milano. Le troverò volentieri un altro momento quando lo desidera.", [])]
    await claires_styling_session(at(ahead(FRIDAY), 15))
    dispatcher = CollectingDispatcher()
    await ActionCancelAppointment().run(dispatcher, tracker(
        {"language": "fr"}, text="annuler mon rendez-vous", intent="cancel_appointment", active=False), {})
    assert said(dispatcher.messages) == [(
        f"Souhaitez-vous que j'annule votre rendez-vous (séance de stylisme) du {day_fr(ahead(FRIDAY))} à "
        "15 h à Paris ?", ["Oui, annuler", "Le maintenir"])]


async def test_a_french_booking_says_the_maisons_time(maison: str) -> None:
    friday = ahead(FRIDAY)
    slots = {"boutique": "paris", "service": "fitting", "appointment_start": at(friday, 15).isoformat(),
             "language": "fr"}
    dispatcher = CollectingDispatcher()
    await ActionAskAppointmentConfirmed().run(dispatcher, tracker(slots, text="oui"), {})
    assert said(dispatcher.messages) == [(
        f"Je réserve donc votre rendez-vous (essayage) le {day_fr(friday)} à 15 h, boutique de Paris. "
        "Est-ce bien cela ?", ["Oui, c'est parfait", "Un autre moment"])]


def test_a_moment_cut_in_pieces_by_nlu_is_read_whole() -> None:
    from actions.appointments import moment_words

    pieces = [{"entity": "date_time", "value": "nel pomeriggio", "start": 17},
              {"entity": "date_time", "value": "martedì prossimo", "start": 0}]
    assert moment_words("nel pomeriggio", tracker(text="martedì prossimo nel pomeriggio",
                                                  entities=pieces)) == "martedì prossimo nel pomeriggio"
    one = [{"entity": "date_time", "value": "Friday afternoon", "start": 0}]
    assert moment_words("Friday afternoon", tracker(text="Friday afternoon", entities=one)) == "Friday afternoon"
    assert moment_words("tomorrow", tracker(text="tomorrow")) == "tomorrow"


def test_what_the_validation_says_is_a_statement_the_form_then_asks_once() -> None:
    """A refused answer is told in a sentence and the form asks its question after it: a
    question in the refusal would be asked twice in one message."""
    from actions.appointments import _SAY

    refusals = ("unreadable", "past", "boutiques", "services", "not_here", "choose_slot", "just_taken",
                "how_many", "too_many")
    for language, words in _SAY.items():
        for key in refusals:
            assert not words[key].rstrip().endswith("?"), (language, key)


@pytest.mark.parametrize(("requested", "first", "again"), [
    (None, "utter_ask_boutique", "utter_ask_boutique_again"),
    ("boutique", "utter_ask_service", "utter_ask_service_again"),
])
async def test_asked_again_the_question_comes_without_its_thanks(
        maison: str, requested: str | None, first: str, again: str) -> None:
    from actions.appointments import ActionAskBoutique, ActionAskService

    action = ActionAskBoutique() if first == "utter_ask_boutique" else ActionAskService()
    slot = "boutique" if action.name() == "action_ask_boutique" else "service"
    dispatcher = CollectingDispatcher()
    await action.run(dispatcher, tracker({"requested_slot": requested}), {})
    assert [m["response"] for m in dispatcher.messages] == [first]
    dispatcher = CollectingDispatcher()
    await action.run(dispatcher, tracker({"requested_slot": slot}), {})
    assert [m["response"] for m in dispatcher.messages] == [again]


async def test_an_answer_to_another_question_is_kept_and_the_question_asked_again(maison: str) -> None:
    """"Next Friday at 3pm" when the service was asked: the moment is kept, the service is
    not refused with the list of services, the form asks for it again (once)."""
    friday = ahead(FRIDAY, PARIS)
    words = f"{friday.day}/{friday.month}/{friday.year} at 3pm"
    dispatcher = CollectingDispatcher()
    events = await ValidateAppointmentForm().run(dispatcher, tracker(
        {"boutique": "paris", "requested_slot": "service"}, text=words,
        entities=[{"entity": "date_time", "value": words}],
        candidates={"service": words, "date_time": words}), DOMAIN)
    assert SlotSet("service", None) in events and SlotSet("date_time", words) in events
    assert dispatcher.messages == []
    # A service we do not offer, said alone: what can be arranged is said.
    events, messages = await validate({"boutique": "paris"}, {"service": "a massage"}, text="a massage")
    assert events == [SlotSet("service", None)]
    assert said(messages) == [("I can arrange a styling session, a private viewing, a fitting, or receive a "
                               "piece for repair.", [])]


@pytest.mark.parametrize(("slots", "action", "language", "noted"), [
    ({"boutique": "paris", "requested_slot": "service"}, "service", "en", "Very well, {day} at 15:00. "),
    ({"boutique": "paris", "requested_slot": "service", "language": "fr"}, "service", "fr",
     "Très bien, le {day} à 15 h. "),
    ({"requested_slot": "boutique", "language": "it"}, "boutique", "it", "Molto bene, {day} alle 15:00. "),
])
async def test_a_moment_given_before_it_was_asked_is_said_back_before_the_question(
        maison: str, slots: dict[str, Any], action: str, language: str, noted: str) -> None:
    """"Saturday at 3pm" when the service (or the boutique) was asked: the form keeps the
    moment and asks its question again, after saying the moment back, so she knows it was
    heard; a message that gave no moment gets the question alone."""
    from actions.appointments import ActionAskBoutique, ActionAskService
    from salon.conversation.phrasing import say_day

    friday = ahead(FRIDAY, PARIS)
    words = f"{friday.day}/{friday.month}/{friday.year} at 3pm"
    ask = ActionAskService() if action == "service" else ActionAskBoutique()
    dispatcher = CollectingDispatcher()
    await ask.run(dispatcher, tracker(slots, text=words, entities=[{"entity": "date_time", "value": words}],
                                      candidates={"date_time": words}), {})
    [message] = dispatcher.messages
    assert message["response"] == f"utter_ask_{action}_again"
    assert message["noted"] == noted.format(day=say_day(friday, language))
    dispatcher = CollectingDispatcher()
    await ask.run(dispatcher, tracker({**slots, "date_time": words}, text="what do you mean?"), {})
    assert [(m["response"], m["noted"]) for m in dispatcher.messages] == [(f"utter_ask_{action}_again", "")]


async def test_whom_she_comes_with_is_the_party_before_it_is_asked(maison: str) -> None:
    """"Tomorrow with my daughter": the form takes the party from her sentence (not asking
    "Will anyone be joining you?" later) and says it back with the question asked again;
    "with my husband and my two sons" is not counted here: she will be asked."""
    from actions.appointments import ActionAskService
    from salon.conversation.appointments import companions_named

    assert [companions_named(t) for t in ("with my daughter", "avec mon mari et ma fille", "con mia sorella",
                                          "with a question", "with my husband and my two sons")] == [2, 3, 2, None, None]
    text = "I'd like to come with my daughter"
    dispatcher = CollectingDispatcher()
    events = await ValidateAppointmentForm().run(dispatcher, tracker({"requested_slot": "boutique"}, text=text),
                                                 DOMAIN)
    assert SlotSet("party_size", "2") in events, events
    # Asked, her answer is read as one (once): the same party.
    events = await ValidateAppointmentForm().run(CollectingDispatcher(), tracker(
        {"requested_slot": "party_size"}, text="with my mother", candidates={"party_size": "with my mother"}), DOMAIN)
    assert [e for e in events if e.get("name") == "party_size"] == [SlotSet("party_size", "2")]
    dispatcher = CollectingDispatcher()
    await ActionAskService().run(dispatcher, tracker(
        {"boutique": "paris", "requested_slot": "service", "language": "fr"}, text="avec ma fille",
        candidates={"party_size": "2"}), {})
    assert dispatcher.messages[0]["noted"] == "Très bien, pour 2 personnes. "


async def test_a_time_typed_over_the_offered_slots_means_the_day_they_were_offered_for(maison: str) -> None:
    """Slots offered for Friday afternoon, she types "at 5pm" instead of tapping: Friday at
    17:00, not the next 5 pm (which may be today)."""
    friday = ahead(FRIDAY, PARIS)
    day = f"{friday.day}/{friday.month}/{friday.year}"
    events, _ = await validate({"boutique": "paris", "date_time": f"{day} afternoon",
                                "requested_slot": "appointment_start"},
                               {"appointment_start": "at 5pm"}, text="at 5pm")
    assert SlotSet("appointment_start", at(friday, 17).isoformat()) in events, events


async def test_a_day_her_sentence_names_is_read_when_nlu_did_not(maison: str) -> None:
    """"I'd like to come in saturday with my daughter to look at evening dresses", with no
    moment read by NLU: the form keeps her sentence as the moment (Saturday, the evening
    of the dresses left out) and the party; a sentence with no day gives no moment."""
    text = "I'd like to come in saturday with my daughter to look at evening dresses"
    events = await ValidateAppointmentForm().run(CollectingDispatcher(), tracker({}, text=text, intent="book_appointment"),
                                                 DOMAIN)
    assert SlotSet("date_time", text) in events and SlotSet("party_size", "2") in events, events
    for nothing in ("I'd like to book a fitting for 2", "je voudrais déplacer mon rendez-vous",
                    "non sono mai stata da voi, vorrei un appuntamento"):
        events = await ValidateAppointmentForm().run(CollectingDispatcher(), tracker(
            {}, text=nothing, intent="book_appointment"), DOMAIN)
        assert not [e for e in events if e.get("name") == "date_time"], (nothing, events)
    from salon.conversation.when import parse_when
    window = parse_when(text, NOW, PARIS)
    assert window is not None and not window.exact and window.start.weekday() == SATURDAY
    assert window.start.hour == 0 and (window.end - window.start).days == 1


def test_a_garment_named_after_a_moment_of_the_day_is_no_moment() -> None:
    """"Tomorrow with my daughter to look at evening dresses": NLU reads "evening" as a
    moment; the form keeps "tomorrow" alone (and nothing from "robe de soirée" alone)."""
    from actions.appointments import moment_words

    text = "I'd like to come in tomorrow with my daughter to look at evening dresses"
    pieces = [{"entity": "date_time", "value": "tomorrow", "start": 24},
              {"entity": "date_time", "value": "evening", "start": 61}]
    assert moment_words("tomorrow", tracker(text=text, entities=pieces)) == "tomorrow"
    assert moment_words("evening", tracker(text=text, entities=pieces)) == "tomorrow"
    robe = "je cherche une robe de soirée"
    assert moment_words("soirée", tracker(text=robe, entities=[{"entity": "date_time", "value": "soirée"}])) is None
    both = "tomorrow evening, to see your evening gowns"
    two = [{"entity": "date_time", "value": "tomorrow evening", "start": 0}]
    assert moment_words("tomorrow evening", tracker(text=both, entities=two)) == "tomorrow evening"


async def test_a_time_given_when_the_service_is_asked_is_kept_with_the_day_she_gave_before(maison: str) -> None:
    """"Tomorrow" in her first message, then "around 11" when the service is asked (NLU
    read no moment in it): the form keeps tomorrow at 11, says so, and asks the service
    again, instead of listing the services as if "around 11" were a wrong one."""
    from actions.appointments import ActionAskService

    before = tracker({"boutique": "london", "requested_slot": "service", "date_time": "tomorrow"},
                     text="around 11", candidates={"service": "around 11"})
    before.events.insert(0, {"event": "slot", "name": "date_time", "value": "tomorrow"})
    dispatcher = CollectingDispatcher()
    events = await ValidateAppointmentForm().run(dispatcher, before, DOMAIN)
    assert SlotSet("service", None) in events
    assert SlotSet("date_time", "tomorrow around 11") in events, events
    assert dispatcher.messages == []
    start = next(e["value"] for e in events if e.get("name") == "appointment_start")
    assert start is not None and datetime.fromisoformat(start).astimezone(LONDON).hour == 11
    assert datetime.fromisoformat(start).astimezone(LONDON).date() == NOW.astimezone(LONDON).date() + timedelta(days=1)
    # Then the question again, after the moment said back.
    after = tracker({"boutique": "london", "requested_slot": "service"}, text="around 11",
                    candidates={"date_time": "tomorrow around 11"})
    dispatcher = CollectingDispatcher()
    await ActionAskService().run(dispatcher, after, {})
    assert dispatcher.messages[0]["noted"].startswith("Very well, ")
    assert dispatcher.messages[0]["noted"].endswith(" at 11:00. ")


@pytest.mark.parametrize(("words", "intent"), [
    ("Rome", "boutique_info"), ("Rome", "affirm"), ("à Lyon", "boutique_info"), ("New York please", "affirm")])
async def test_a_place_read_as_a_boutique_question_is_her_answer_when_the_boutique_is_asked(
        maison: str, words: str, intent: str) -> None:
    """"Rome" when the boutique was asked, read by NLU as a question about the boutiques or a yes:
    the form takes it as her answer and says where the boutiques are (then asks once more),
    instead of every address and a "Book a visit" button in the middle of the booking."""
    events, messages = await validate({"requested_slot": "boutique"}, {}, text=words, intent=intent)
    assert events == [SlotSet("boutique", None)]
    assert said(messages) == [("Our boutiques are in Paris, London and Milan.", [])]


@pytest.mark.parametrize(("slots", "words"), [
    ({"requested_slot": "boutique"}, "What are your opening hours?"),
    ({"requested_slot": "boutique"}, "where is the boutique"),
    ({"requested_slot": "service"}, "Rome"),
])
async def test_a_question_about_the_boutiques_is_left_to_its_answer(
        maison: str, slots: dict[str, Any], words: str) -> None:
    events, messages = await validate(slots, {}, text=words, intent="boutique_info")
    assert events == [] and messages == []
