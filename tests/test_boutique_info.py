"""Boutique information without Rasa: what the client asks, which boutique, the week at a
glance, open now or when next, and nothing in the reply that the book does not hold.

The boutiques are the demo maison's (data/maison/boutiques.yml), written out here as the
book reads them; a made-up one checks that every number said comes from its record.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from salon.conversation.boutique_info import (
    Question,
    boutique_answer,
    read_question,
    say_phone,
    say_week,
    unavailable,
)
from salon.conversation.greetings import Reply
from salon.integrations.bookings import Boutique

PARIS_TZ, LONDON_TZ = ZoneInfo("Europe/Paris"), ZoneInfo("Europe/London")
ALL_SERVICES = ("styling_session", "private_viewing", "repair_dropoff", "fitting")


def _week(**days: str) -> dict[int, tuple[time, time]]:
    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    hours = {}
    for day, span in days.items():
        opens, closes = span.split("-")
        hours[names.index(day)] = (time.fromisoformat(opens), time.fromisoformat(closes))
    return hours


PARIS = Boutique(
    "paris", "Maison Solenne Paris Faubourg", "Paris", "Europe/Paris", 60, 3, ALL_SERVICES,
    _week(monday="10:30-19:00", tuesday="10:00-19:00", wednesday="10:00-19:00",
          thursday="10:00-20:00", friday="10:00-19:00", saturday="10:00-19:00"),
    address="21 rue du Faubourg Saint-Honoré, 75008 Paris", phone="+33142650000")
LONDON = Boutique(
    "london", "Maison Solenne London Mount Street", "London", "Europe/London", 60, 2,
    ALL_SERVICES,
    _week(monday="10:00-18:00", tuesday="10:00-18:00", wednesday="10:00-18:00",
          thursday="10:00-19:00", friday="10:00-18:00", saturday="10:00-18:00",
          sunday="12:00-17:00"),
    address="14 Mount Street, Mayfair, London W1K 2RD", phone="+442074930000")
MILAN = Boutique(
    "milan", "Maison Solenne Milano Spiga", "Milan", "Europe/Rome", 60, 2,
    ("styling_session", "private_viewing", "fitting"),
    _week(monday="15:00-19:00", tuesday="10:00-19:00", wednesday="10:00-19:00",
          thursday="10:00-19:00", friday="10:00-19:00", saturday="10:00-19:30"),
    address="Via della Spiga 9, 20121 Milano", phone="+390276000000")
SHOPS = {"paris": PARIS, "london": LONDON, "milan": MILAN}
LABELS = {
    "en": {"styling_session": "Styling session", "private_viewing": "Private viewing",
           "repair_dropoff": "Repair drop-off", "fitting": "Fitting"},
    "fr": {"styling_session": "Séance de stylisme", "private_viewing": "Présentation privée",
           "repair_dropoff": "Dépôt en réparation", "fitting": "Essayage"},
    "it": {"styling_session": "Consulenza di stile", "private_viewing": "Presentazione privata",
           "repair_dropoff": "Consegna per riparazione", "fitting": "Prova sartoriale"},
}

#: Thursday 26 November 2026, 09:00 in Paris and Milan, 08:00 in London: all closed.
EARLY_THURSDAY = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
#: Thursday 26 November 2026, 15:00 in Paris and Milan, 14:00 in London: all open.
THURSDAY_AFTERNOON = datetime(2026, 11, 26, 14, 0, tzinfo=timezone.utc)
#: Saturday 28 November 2026, 20:00 in Paris: Paris closed until Monday.
SATURDAY_NIGHT = datetime(2026, 11, 28, 20, 0, tzinfo=PARIS_TZ)


def answer(text: str, language: str = "en", home: str | None = None,
           now: datetime = EARLY_THURSDAY) -> Reply:
    return boutique_answer(text, language, SHOPS, LABELS[language], home, now)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]


# ── What she asks ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("What are your opening hours in London?", "en",
     Question(frozenset({"hours"}), False, ("london",), False)),
    ("Quels sont vos horaires à Paris ?", "fr",
     Question(frozenset({"hours"}), False, ("paris",), False)),
    ("A che ora aprite a Milano sabato?", "it",
     Question(frozenset({"hours"}), False, ("milan",), False)),
    ("Avete una boutique a Parigi?", "it", Question(frozenset(), True, ("paris",), False)),
    ("Do you have boutiques in Milan?", "en",
     Question(frozenset(), True, ("milan",), False, every=True)),
    ("Avez-vous une boutique à Londres ?", "fr", Question(frozenset(), True, ("london",), False)),
    ("What services do you offer in the boutique?", "en",
     Question(frozenset({"services"}), False, (), False)),
    ("Quels services proposez-vous en boutique ?", "fr",
     Question(frozenset({"services"}), False, (), False)),
    ("Quali servizi offrite?", "it", Question(frozenset({"services"}), False, (), False)),
    ("Where is your Paris boutique?", "en", Question(frozenset({"address"}), False, ("paris",), False)),
    ("Où se trouve votre boutique de MILAN ?", "fr",
     Question(frozenset({"address"}), False, ("milan",), False)),
    ("Qual è l'indirizzo della boutique di Londra?", "it",
     Question(frozenset({"address"}), False, ("london",), False)),
    ("Do you have a boutique in New York?", "en", Question(frozenset(), True, (), True)),
    ("Avez-vous une boutique à Genève ?", "fr", Question(frozenset(), True, (), True)),
    ("avete una boutique a roma?", "it", Question(frozenset(), True, (), True)),
    ("What are your hours in Rome?", "en", Question(frozenset({"hours"}), False, (), True)),
    # Days, feasts, languages and the maison's own name are not places.
    ("Are you open on Saturday in December?", "en",
     Question(frozenset({"hours"}), False, (), False)),
    ("Are you open at Christmas?", "en",
     Question(frozenset({"hours"}), False, (), False, holiday=True)),
    ("Can you tell me in English where you are?", "en",
     Question(frozenset({"address"}), False, (), False)),
    ("Do you have a Maison Solenne boutique near me?", "en",
     Question(frozenset({"address"}), True, (), False)),
    # A street or quarter of one boutique names it.
    ("Do you have a boutique in Mayfair?", "en", Question(frozenset(), True, ("london",), False)),
    ("Is there a boutique close to me?", "en", Question(frozenset({"address"}), True, (), False)),
    ("Bonjour", "fr", Question(frozenset(), False, (), False)),
    # Streets, the telephone, a service named, the boutiques in general.
    ("Is the Mount Street store open on Sundays?", "en",
     Question(frozenset({"hours"}), False, ("london",), False)),
    ("Comment joindre la boutique Saint-Honoré ?", "fr",
     Question(frozenset({"address"}), False, ("paris",), False)),
    ("Qual è il numero di telefono della boutique?", "it",
     Question(frozenset({"address"}), False, (), False)),
    ("Do you do repairs in store?", "en",
     Question(frozenset({"services"}), False, (), False, service="repair_dropoff")),
    ("Peut-on faire un essayage en boutique ?", "fr",
     Question(frozenset({"services"}), False, (), False, service="fitting")),
    ("Fate riparazioni in boutique?", "it",
     Question(frozenset({"services"}), False, (), False, service="repair_dropoff")),
    ("In which cities are your boutiques?", "en",
     Question(frozenset(), False, (), False, every=True)),
    ("Où sont vos boutiques ?", "fr", Question(frozenset({"address"}), False, (), False, every=True)),
    ("Avete un punto vendita a New York?", "it",
     Question(frozenset(), True, (), True, every=False)),
])
def test_the_question_is_read_in_each_language(text: str, language: str,
                                               expected: Question) -> None:
    assert read_question(text, SHOPS, language) == expected


def test_several_cities_and_accents_are_read_whatever_the_case() -> None:
    assert read_question("horaires PARIS et londres", SHOPS, "fr").boutique_ids == (
        "paris", "london")
    assert read_question("Parigi o Londra?", SHOPS, "it").boutique_ids == ("paris", "london")
    assert read_question("où êtes-vous ?", SHOPS, "fr").topics == {"address"}


# ── The week at a glance ──────────────────────────────────────────────────────


def test_the_week_groups_the_usual_hours_and_says_the_exceptions() -> None:
    assert say_week(PARIS, "en") == ("Monday to Saturday, 10:00 to 19:00 (from 10:30 on Mondays, "
                                     "until 20:00 on Thursdays); closed on Sundays")
    assert say_week(PARIS, "fr") == ("du lundi au samedi de 10 h à 19 h (à partir de 10 h 30 le "
                                     "lundi, jusqu'à 20 h le jeudi) ; fermée le dimanche")
    assert say_week(PARIS, "it") == ("dal lunedì al sabato, dalle 10:00 alle 19:00 (il lunedì "
                                     "dalle 10:30, il giovedì fino alle 20:00); chiusa la domenica")
    # A day that differs at both ends stands apart.
    assert say_week(LONDON, "en") == ("Monday to Saturday, 10:00 to 18:00 (until 19:00 on "
                                      "Thursdays); on Sundays, 12:00 to 17:00")
    assert say_week(LONDON, "fr") == ("du lundi au samedi de 10 h à 18 h (jusqu'à 19 h le jeudi) ; "
                                      "le dimanche de 12 h à 17 h")
    assert say_week(LONDON, "it") == ("dal lunedì al sabato, dalle 10:00 alle 18:00 (il giovedì "
                                      "fino alle 19:00); la domenica dalle 12:00 alle 17:00")
    assert say_week(MILAN, "en") == ("Monday to Saturday, 10:00 to 19:00 (from 15:00 on Mondays, "
                                     "until 19:30 on Saturdays); closed on Sundays")


def shop_with(hours: dict[int, tuple[time, time]]) -> Boutique:
    return Boutique("test", "Test", "Paris", "Europe/Paris", 60, 1, ("fitting",), hours,
                    address="1 Test Street", phone="+33142650000")


def test_the_week_in_other_shapes() -> None:
    ten_to_seven = (time(10), time(19))
    assert say_week(shop_with(dict.fromkeys(range(7), ten_to_seven)), "en") == \
        "every day, 10:00 to 19:00"
    assert say_week(shop_with(dict.fromkeys(range(7), ten_to_seven)), "fr") == \
        "tous les jours de 10 h à 19 h"
    # Closed mid-week: two runs; closed on two days.
    split = shop_with({d: ten_to_seven for d in (0, 1, 3, 4, 5)})
    assert say_week(split, "en") == ("on Mondays and Tuesdays, 10:00 to 19:00; Thursday to "
                                     "Saturday, 10:00 to 19:00; closed on Wednesdays and Sundays")
    assert say_week(split, "it") == ("il lunedì e il martedì, dalle 10:00 alle 19:00; dal giovedì "
                                     "al sabato, dalle 10:00 alle 19:00; chiusa il mercoledì e la "
                                     "domenica")
    weekend = shop_with({**{d: ten_to_seven for d in range(5)},
                         5: (time(11), time(17)), 6: (time(11), time(17))})
    assert say_week(weekend, "fr") == ("du lundi au vendredi de 10 h à 19 h ; le samedi et le "
                                       "dimanche de 11 h à 17 h")
    assert say_week(shop_with({}), "en") is None


# ── The answers ───────────────────────────────────────────────────────────────


def test_hours_of_the_city_named_with_when_it_opens_in_each_language() -> None:
    reply = answer("What are your opening hours in London?")
    assert reply.text == (
        "Our London boutique is open Monday to Saturday, 10:00 to 18:00 (until 19:00 on "
        "Thursdays); on Sundays, 12:00 to 17:00. It is closed at the moment and opens today at "
        "10:00. Would you like to book a visit?")
    assert answer("Quels sont vos horaires à Paris ?", "fr").text == (
        "Notre boutique de Paris est ouverte du lundi au samedi de 10 h à 19 h (à partir de "
        "10 h 30 le lundi, jusqu'à 20 h le jeudi) ; fermée le dimanche. Elle est fermée en ce "
        "moment et ouvrira aujourd'hui à 10 h. Souhaitez-vous prendre rendez-vous ?")
    assert answer("Quali sono gli orari a Milano?", "it", now=THURSDAY_AFTERNOON).text == (
        "La nostra boutique di Milano è aperta dal lunedì al sabato, dalle 10:00 alle 19:00 (il "
        "lunedì dalle 15:00, il sabato fino alle 19:30); chiusa la domenica. In questo momento è "
        "aperta, fino alle 19:00. Desidera prenotare una visita?")


@pytest.mark.parametrize(("now", "language", "expected"), [
    (THURSDAY_AFTERNOON, "en", "It is open at the moment, until 20:00."),  # Thursday: 20:00
    (THURSDAY_AFTERNOON, "fr", "En ce moment, elle est ouverte jusqu'à 20 h."),
    (datetime(2026, 11, 26, 21, 0, tzinfo=PARIS_TZ), "en",
     "It is closed at the moment and opens tomorrow at 10:00."),
    (datetime(2026, 11, 26, 21, 0, tzinfo=PARIS_TZ), "it",
     "In questo momento è chiusa e riapre domani alle 10:00."),
    (SATURDAY_NIGHT, "en", "It is closed at the moment and opens on Monday 30 November at 10:30."),
    (SATURDAY_NIGHT, "fr", "Elle est fermée en ce moment et ouvrira le lundi 30 novembre à 10 h 30."),
    (SATURDAY_NIGHT, "it", "In questo momento è chiusa e riapre lunedì 30 novembre alle 10:30."),
    # The boutique's own zone decides: 09:59 in Paris is before opening.
    (datetime(2026, 11, 26, 8, 59, tzinfo=timezone.utc), "en",
     "It is closed at the moment and opens today at 10:00."),
    (datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc), "en", "It is open at the moment, until 20:00."),
])
def test_open_now_or_when_it_next_opens(now: datetime, language: str, expected: str) -> None:
    text = answer("Paris hours / horaires / orari", language, now=now).text
    assert sentences(text)[1] == expected


def test_the_clock_of_the_boutique_not_the_server() -> None:
    # 10:30 in London is 11:30 in Paris: London has been open half an hour.
    now = datetime(2026, 11, 26, 10, 30, tzinfo=LONDON_TZ)
    assert sentences(answer("London opening hours", now=now).text)[1] == \
        "It is open at the moment, until 19:00."
    # Sunday 11:00 in London: it opens at noon.
    sunday = datetime(2026, 11, 29, 11, 0, tzinfo=LONDON_TZ)
    assert sentences(answer("Is London open?", now=sunday).text)[1] == \
        "It is closed at the moment and opens today at 12:00."


def test_address_name_and_telephone_in_each_language() -> None:
    assert answer("Where is your Paris boutique?").text == (
        "Our Paris boutique, Maison Solenne Paris Faubourg, is at 21 rue du Faubourg "
        "Saint-Honoré, 75008 Paris; you can reach it on +33 1 42 65 00 00. Would you like to "
        "book a visit?")
    assert answer("Quelle est l'adresse de la boutique de Milan ?", "fr").text == (
        "Notre boutique de Milan, Maison Solenne Milano Spiga, vous accueille Via della Spiga 9, "
        "20121 Milano ; vous pouvez la joindre au +39 02 7600 0000. Souhaitez-vous prendre "
        "rendez-vous ?")
    assert answer("Dove si trova la boutique di Londra?", "it").text == (
        "La nostra boutique di Londra, Maison Solenne London Mount Street, si trova "
        "all'indirizzo 14 Mount Street, Mayfair, London W1K 2RD; il numero di telefono è "
        "+44 20 7493 0000. Desidera prenotare una visita?")
    assert say_phone("+442074930000") == "+44 20 7493 0000"
    assert say_phone("not a number") == "not a number"


def test_services_labelled_in_her_language() -> None:
    assert answer("What services do you offer in Milan?").text == (
        "Our Milan boutique offers these appointments: styling session, private viewing and "
        "fitting. Would you like to book a visit?")
    assert answer("Quelles prestations proposez-vous à Paris ?", "fr").text == (
        "Notre boutique de Paris vous propose ces rendez-vous : séance de stylisme, présentation "
        "privée, dépôt en réparation et essayage. Souhaitez-vous prendre rendez-vous ?")
    assert answer("Quali servizi offrite a Londra?", "it").text == (
        "La nostra boutique di Londra propone questi appuntamenti: consulenza di stile, "
        "presentazione privata, consegna per riparazione e prova sartoriale. Desidera prenotare "
        "una visita?")
    # Every boutique, grouped by what they offer.
    assert answer("Quels services proposez-vous en boutique ?", "fr").text == (
        "Nos boutiques vous proposent ces rendez-vous :\n"
        "Paris et Londres : séance de stylisme, présentation privée, dépôt en réparation et "
        "essayage.\n"
        "Milan : séance de stylisme, présentation privée et essayage.")
    assert answer("What services do you offer in Paris and London?").text == (
        "Our boutiques in Paris and London all offer these appointments: styling session, "
        "private viewing, repair drop-off and fitting. Would you like to book a visit to one of "
        "them?")


def test_a_service_her_boutique_does_not_offer_is_found_where_it_is() -> None:
    assert answer("Do you do repairs in store?", home="milan").text == (
        "Our Milan boutique does not offer repair drop-off; you will find it in Paris and "
        "London. It offers these appointments: styling session, private viewing and fitting. "
        "Would you like to book a visit?")
    assert answer("Faites-vous les réparations à Milan ?", "fr").text.startswith(
        "Notre boutique de Milan ne propose pas ce service (dépôt en réparation) ; vous le "
        "trouverez à Paris et à Londres. Elle vous propose ces rendez-vous : ")
    assert answer("Fate riparazioni in boutique?", "it", home="milan").text.startswith(
        "La nostra boutique di Milano non offre questo servizio (consegna per riparazione); lo "
        "trova a Parigi e a Londra. Propone questi appuntamenti: ")
    # Offered there: the list says so, nothing more.
    assert answer("Can I have a fitting in Milan?").text == (
        "Our Milan boutique offers these appointments: styling session, private viewing and "
        "fitting. Would you like to book a visit?")


def test_do_you_have_a_boutique_there_in_each_language() -> None:
    assert answer("Do you have boutiques in Milan?").text == (
        "Yes, we have a boutique in Milan: Maison Solenne Milano Spiga, Via della Spiga 9, 20121 "
        "Milano. It is closed at the moment and opens today at 10:00. Would you like to book a "
        "visit?")
    assert answer("Avez-vous une boutique à Londres ?", "fr").text == (
        "Oui, nous avons une boutique à Londres : Maison Solenne London Mount Street, 14 Mount "
        "Street, Mayfair, London W1K 2RD. Elle est fermée en ce moment et ouvrira aujourd'hui à "
        "10 h. Souhaitez-vous prendre rendez-vous ?")
    assert answer("Avete una boutique a Parigi?", "it").text == (
        "Sì, abbiamo una boutique a Parigi: Maison Solenne Paris Faubourg, 21 rue du Faubourg "
        "Saint-Honoré, 75008 Paris. In questo momento è chiusa e riapre oggi alle 10:00. Desidera "
        "prenotare una visita?")


@pytest.mark.parametrize(("text", "language", "expected", "place"), [
    ("Do you have a boutique in New York?", "en",
     "Our boutiques are in Paris, London and Milan; we have none elsewhere. Would you like to "
     "book a visit to one of them?", "York"),
    ("Avez-vous une boutique à Genève ?", "fr",
     "Nos boutiques se trouvent à Paris, à Londres et à Milan ; nous n'en avons pas ailleurs. "
     "Souhaitez-vous prendre rendez-vous dans l'une d'elles ?", "Genève"),
    ("Avete una boutique a Roma?", "it",
     "Le nostre boutique si trovano a Parigi, a Londra e a Milano; non ne abbiamo altre. "
     "Desidera prenotare una visita in una di esse?", "Roma"),
    ("What are your opening hours in Rome?", "en",
     "Our boutiques are in Paris, London and Milan; we have none elsewhere. Would you like to "
     "book a visit to one of them?", "Rome"),
])
def test_a_city_without_a_boutique_hears_where_the_boutiques_are(
        text: str, language: str, expected: str, place: str) -> None:
    reply = answer(text, language, home="paris")
    assert reply.text == expected
    assert place not in reply.text
    assert reply.buttons[0]["payload"] == "/book_appointment"


def test_no_city_named_her_home_boutique_else_every_boutique() -> None:
    assert answer("What are your opening hours?", home="milan").text.startswith(
        "Our Milan boutique is open Monday to Saturday")
    assert answer("What are your opening hours?", home="nowhere").text.startswith("Paris: ")
    assert answer("What are your opening hours?").text == (
        "Paris: Monday to Saturday, 10:00 to 19:00 (from 10:30 on Mondays, until 20:00 on "
        "Thursdays); closed on Sundays.\n"
        "London: Monday to Saturday, 10:00 to 18:00 (until 19:00 on Thursdays); on Sundays, "
        "12:00 to 17:00.\n"
        "Milan: Monday to Saturday, 10:00 to 19:00 (from 15:00 on Mondays, until 19:30 on "
        "Saturdays); closed on Sundays.")
    # Asking about the boutiques in general is not asking about hers.
    assert answer("Where are your boutiques?", home="milan").text.startswith(
        "Paris: Maison Solenne Paris Faubourg, 21 rue du Faubourg Saint-Honoré, 75008 Paris, "
        "+33 1 42 65 00 00.\n")
    assert answer("Where is your boutique?", home="milan").text.startswith("Our Milan boutique")
    # A city she names wins over her home boutique.
    assert answer("Horaires de Londres ?", "fr", home="paris").text.startswith(
        "Notre boutique de Londres")


def test_an_unclear_question_says_where_the_boutiques_are_with_their_hours() -> None:
    assert answer("Bonjour", "fr", home="london",
                  now=THURSDAY_AFTERNOON).text == (
        "Notre boutique de Londres, Maison Solenne London Mount Street, vous accueille 14 Mount "
        "Street, Mayfair, London W1K 2RD. Elle est ouverte du lundi au samedi de 10 h à 18 h "
        "(jusqu'à 19 h le jeudi) ; le dimanche de 12 h à 17 h. En ce moment, elle est ouverte "
        "jusqu'à 19 h.")
    assert answer("Your boutiques?", "it", now=SATURDAY_NIGHT).text == (
        "Parigi: Maison Solenne Paris Faubourg, 21 rue du Faubourg Saint-Honoré, 75008 Paris "
        "(chiusa ora, riapre lunedì 30 novembre alle 10:30).\n"
        "Londra: Maison Solenne London Mount Street, 14 Mount Street, Mayfair, London W1K 2RD "
        "(chiusa ora, riapre domani alle 12:00).\n"
        "Milano: Maison Solenne Milano Spiga, Via della Spiga 9, 20121 Milano (chiusa ora, "
        "riapre lunedì 30 novembre alle 15:00).")


def test_public_holidays_are_not_answered_from_the_weekly_hours() -> None:
    text = answer("Are you open at Christmas in Paris?").text
    assert sentences(text)[1] == ("I do not have its hours for public holidays to hand; you "
                                  "can reach it on +33 1 42 65 00 00.")
    assert "open at the moment" not in text and "closed at the moment" not in text
    assert answer("Siete aperti a Natale?", "it").text.endswith(
        "Non ho a portata di mano i loro orari nei giorni festivi.")


# ── The button and the shape of the reply ─────────────────────────────────────

QUESTIONS = [
    ("What are your opening hours in London?", "en"), ("Where is your Paris boutique?", "en"),
    ("What services do you offer?", "en"), ("Do you have a boutique in Milan?", "en"),
    ("Do you have a boutique in Tokyo?", "en"), ("Hello", "en"),
    ("Quels sont vos horaires à Paris ?", "fr"), ("Où êtes-vous à Londres ?", "fr"),
    ("Quels services proposez-vous ?", "fr"), ("Avez-vous une boutique à Milan ?", "fr"),
    ("Avez-vous une boutique à Genève ?", "fr"), ("Bonjour", "fr"),
    ("Orari di Milano?", "it"), ("Dove siete a Parigi?", "it"), ("Quali servizi offrite?", "it"),
    ("Avete una boutique a Londra?", "it"), ("Avete una boutique a Roma?", "it"), ("Ciao", "it"),
]


@pytest.mark.parametrize(("text", "language"), QUESTIONS)
@pytest.mark.parametrize("home", [None, "paris"])
def test_one_short_reply_and_one_button_the_booking_form_understands(
        text: str, language: str, home: str | None) -> None:
    reply = answer(text, language, home=home)
    assert len(sentences(reply.text)) <= 4  # three lines for three boutiques, and one question
    assert len(sentences(reply.text)) <= 3 or "\n" in reply.text
    assert "!" not in reply.text
    assert len(reply.buttons) == 1
    button = reply.buttons[0]
    assert button["title"] == {"en": "Book a visit", "fr": "Prendre rendez-vous",
                               "it": "Prenotare una visita"}[language]
    assert len(button["title"]) <= 20
    intent, _, entities = button["payload"].partition("{")
    assert intent == "/book_appointment"
    if entities:
        assert json.loads("{" + entities) in ({"boutique": b} for b in SHOPS)


def test_the_button_names_the_one_boutique_discussed() -> None:
    assert answer("Where is your Paris boutique?").buttons == [
        {"title": "Book a visit", "payload": '/book_appointment{"boutique": "paris"}'}]
    assert answer("Orari?", "it", home="milan").buttons == [
        {"title": "Prenotare una visita", "payload": '/book_appointment{"boutique": "milan"}'}]
    assert answer("What are your opening hours?").buttons == [
        {"title": "Book a visit", "payload": "/book_appointment"}]


# ── Nothing the book does not say ─────────────────────────────────────────────

GENEVA = Boutique(
    "geneve", "Maison Solenne Genève Rhône", "Geneva", "Europe/Zurich", 60, 1, ("fitting",),
    _week(tuesday="11:15-18:45", wednesday="11:15-18:45", thursday="11:15-18:45",
          friday="11:15-18:45", saturday="09:45-17:00"),
    address="42 rue du Rhône, 1204 Genève", phone="+41227000000")


@pytest.mark.parametrize("language", ["en", "fr", "it"])
@pytest.mark.parametrize("text", [
    "opening hours", "address", "services", "do you have a boutique in Geneva?", "hello",
    "do you have a boutique in Paris?", "hours in London?", "Christmas hours",
])
def test_every_number_said_comes_from_the_record(text: str, language: str) -> None:
    # Wednesday 2 December 2026, 10:00 in Geneva: closed, opens today at 11:15.
    now = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
    reply = boutique_answer(text, language, {"geneve": GENEVA}, {"fitting": "Fitting"}, None, now)
    known = set(re.findall(r"\d+", f"{GENEVA.address} {say_phone(str(GENEVA.phone))}"))
    known |= {f"{t.hour}" for span in GENEVA.hours.values() for t in span}
    known |= {f"{t.hour:02d}" for span in GENEVA.hours.values() for t in span}
    known |= {f"{t.minute:02d}" for span in GENEVA.hours.values() for t in span}
    said = set(re.findall(r"\d+", reply.text))
    assert said <= known, said - known
    for city in ("Paris", "London", "Londres", "Milan", "Milano", "Parigi"):
        assert city not in reply.text


def test_what_the_book_does_not_hold_is_not_made_up() -> None:
    bare = Boutique("lyon", "Maison Solenne Lyon", "Lyon", "Europe/Paris", 60, 1, (), {})
    shops = {"lyon": bare}

    def ask(text: str, language: str = "en") -> str:
        reply = boutique_answer(text, language, shops, {}, None, EARLY_THURSDAY)
        assert reply.buttons == []  # nothing to book there
        return reply.text

    assert ask("Lyon address") == "I do not have the address of our Lyon boutique to hand."
    assert ask("Lyon opening hours") == \
        "I do not have the opening hours of our Lyon boutique to hand."
    assert ask("Lyon services") == "I have no appointments listed for our Lyon boutique."
    assert ask("orari?", "it") == "Non ho a portata di mano gli orari della nostra boutique di Lyon."
    with_phone = {"lyon": Boutique("lyon", "Maison Solenne Lyon", "Lyon", "Europe/Paris", 60, 1,
                                   ("fitting",), {}, phone="+33478000000")}
    assert boutique_answer("horaires", "fr", with_phone, {}, None, EARLY_THURSDAY).text == (
        "Je n'ai pas les horaires de notre boutique de Lyon sous la main ; vous pouvez la "
        "joindre au +33 4 78 00 00 00. Souhaitez-vous prendre rendez-vous ?")
    # No boutique in the book at all: the apology, not an empty list.
    assert boutique_answer("hours", "en", {}, {}, None, EARLY_THURSDAY) == unavailable("en")


def test_the_apology_when_the_book_cannot_be_read() -> None:
    assert unavailable("en").text == ("I am sorry, I cannot reach our boutiques' details just "
                                      "now. Could you ask me again in a moment?")
    assert unavailable("fr").text.startswith("Veuillez m'excuser")
    assert unavailable("it").text.startswith("Mi scusi")
    assert unavailable("de").text == unavailable("en").text
    assert all(unavailable(lang).buttons == [] for lang in ("en", "fr", "it"))


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        answer("hours in Paris", now=datetime(2026, 11, 26, 9, 0))  # noqa: DTZ001 - naive on purpose
