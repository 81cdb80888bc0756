"""Days, times, prices and names as each of the maison's languages says them (Babel's
CLDR data; the French time in the maison's house style)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from salon.conversation.appointments import ask_party_size
from salon.conversation.phrasing import (
    address,
    agreed,
    button_title,
    gender_of,
    pick,
    say_city,
    say_date_short,
    say_day,
    say_day_short,
    say_list,
    say_moment_short,
    say_price,
    say_time,
)
from salon.integrations.crm import ClientRecord

PARIS, MILAN = ZoneInfo("Europe/Paris"), ZoneInfo("Europe/Rome")
SATURDAY_3PM = datetime(2026, 12, 5, 15, 0, tzinfo=PARIS)
NNBSP, NBSP = "\u202f", "\u00a0"
"""Babel's narrow no-break space (French thousands) and no-break space (before a symbol)."""


def plain(text: str) -> str:
    """``text`` with Babel's no-break spaces as ordinary ones."""
    return text.replace(NNBSP, " ").replace(NBSP, " ")


def client(title: str, first: str = "Giulia", last: str = "Rossi") -> ClientRecord:
    return ClientRecord(id="C-900", title=title, first_name=first, last_name=last, language="it",
                        tier="Gold", home_boutique_id="milan", time_zone="Europe/Rome")


@pytest.mark.parametrize(("language", "day", "short", "hour"), [
    ("en", "Saturday 5 December", "Sat 5 Dec", "15:00"),
    ("fr", "samedi 5 décembre", "sam. 5 déc.", "15 h"),
    ("it", "sabato 5 dicembre", "sab 5 dic", "15:00"),
    ("de", "Saturday 5 December", "Sat 5 Dec", "15:00"),  # a language not written: English
])
def test_a_day_and_a_time_in_each_language(language: str, day: str, short: str, hour: str) -> None:
    assert say_day(SATURDAY_3PM, language) == day
    assert say_day(SATURDAY_3PM.date(), language) == day
    assert say_day_short(SATURDAY_3PM, language) == short
    assert say_time(SATURDAY_3PM, language) == hour


def test_the_sentences_read_as_the_maison_writes_them() -> None:
    fr = f"{say_day(SATURDAY_3PM, 'fr')} à {say_time(SATURDAY_3PM, 'fr')}"
    it = f"{say_day(SATURDAY_3PM, 'it')} alle {say_time(SATURDAY_3PM, 'it')}"
    en = f"{say_day(SATURDAY_3PM, 'en')} at {say_time(SATURDAY_3PM, 'en')}"
    assert (fr, it, en) == ("samedi 5 décembre à 15 h", "sabato 5 dicembre alle 15:00",
                            "Saturday 5 December at 15:00")


def test_french_minutes_and_the_moments_own_zone() -> None:
    half_past = SATURDAY_3PM + timedelta(minutes=30)
    assert say_time(half_past, "fr") == "15 h 30"
    assert say_time(SATURDAY_3PM.replace(minute=5), "fr") == "15 h 05"
    assert say_time(half_past, "it") == "15:30"
    # Said in the moment's own time zone: 15:30 in Paris is 14:30 in London.
    assert say_time(half_past.astimezone(ZoneInfo("Europe/London")), "en") == "14:30"
    assert say_day(datetime(2026, 12, 5, 23, 30, tzinfo=ZoneInfo("UTC")).astimezone(MILAN), "it") == \
        "domenica 6 dicembre"
    with pytest.raises(ValueError):
        say_time(datetime(2026, 12, 5, 15, 0), "en")  # noqa: DTZ001 - refused: naive


@pytest.mark.parametrize(("moment", "language", "title"), [
    (SATURDAY_3PM, "en", "Sat 5 Dec, 15:00"),
    (SATURDAY_3PM, "fr", "sam. 5 déc., 15 h"),
    (SATURDAY_3PM, "it", "sab 5 dic, 15:00"),
    (datetime(2026, 9, 30, 15, 30, tzinfo=PARIS), "en", "Wed 30 Sept, 15:30"),
    (datetime(2026, 9, 30, 15, 30, tzinfo=PARIS), "fr", "30 sept., 15 h 30"),  # no room for "mer."
    (datetime(2026, 9, 30, 15, 30, tzinfo=MILAN), "it", "mer 30 set, 15:30"),
])
def test_button_titles_fit_in_twenty_characters(moment: datetime, language: str, title: str) -> None:
    assert say_moment_short(moment, language) == title


def test_every_day_and_time_of_a_year_fits_a_button() -> None:
    start = datetime(2027, 1, 1, 10, 30, tzinfo=PARIS)
    for days in range(365):
        moment = start + timedelta(days=days, minutes=15 * (days % 4))
        for language in ("en", "fr", "it"):
            assert len(say_moment_short(moment, language)) <= 20, moment
            assert len(f"Londres, {say_date_short(moment, language)}") <= 20


def test_button_title_takes_the_first_that_fits() -> None:
    assert button_title("Parlare con Alessandra", "Alessandra") == "Alessandra"
    assert button_title("Speak to Sophie", "Sophie") == "Speak to Sophie"
    assert len(button_title("Una frase davvero troppo lunga")) == 20


@pytest.mark.parametrize(("amount", "currency", "language", "said"), [
    (2450, "EUR", "fr", f"2{NNBSP}450{NBSP}€"),
    (2450, "EUR", "en", "€2,450"),
    (1950, "GBP", "en", "£1,950"),
    (2450, "EUR", "it", f"2.450{NBSP}€"),
    (1950, "GBP", "it", f"1.950{NBSP}£"),
    (1950, "GBP", "fr", f"1{NNBSP}950{NBSP}£"),  # the plain sign, not CLDR's French "£GB"
    (950, "EUR", "fr", f"950{NBSP}€"),
    (Decimal("2450.00"), "EUR", "en", "€2,450"),  # whole: no decimals
    (2450.0, "EUR", "it", f"2.450{NBSP}€"),
    (Decimal("2450.50"), "EUR", "en", "€2,450.50"),
    (Decimal("2450.50"), "EUR", "fr", f"2{NNBSP}450,50{NBSP}€"),
    (Decimal("2450.5"), "EUR", "it", f"2.450,50{NBSP}€"),
])
def test_prices_as_each_locale_writes_them(amount: int | Decimal | float, currency: str, language: str,
                                          said: str) -> None:
    assert say_price(amount, currency, language) == said


def test_french_and_italian_prices_never_break_across_lines() -> None:
    fr, it = say_price(2450, "EUR", "fr"), say_price(12500, "EUR", "it")
    assert plain(fr) == "2 450 €" and plain(it) == "12.500 €"
    assert " " not in fr and " " not in it  # only no-break spaces


def test_a_client_is_addressed_in_the_formal_register() -> None:
    rossi, conti = client("Ms"), client("Mr", "Lorenzo", "Conti")
    assert [address(rossi, lang) for lang in ("en", "fr", "it")] == [
        "Ms Rossi", "Madame Rossi", "Signora Rossi"]
    assert [address(conti, lang) for lang in ("en", "fr", "it")] == [
        "Mr Conti", "Monsieur Conti", "Signor Conti"]
    assert [address(client("Mme", "Claire", "Laurent"), lang) for lang in ("en", "fr", "it")] == [
        "Mrs Laurent", "Madame Laurent", "Signora Laurent"]
    assert address(client("M."), "it") == "Signor Rossi"


def test_a_doctor_is_named_as_the_title_allows() -> None:
    doctor = client("Dr", "Marco", "Bianchi")
    assert (address(doctor, "en"), address(doctor, "fr")) == ("Dr Bianchi", "Docteur Bianchi")
    # "Dr" tells no gender: Italian says the full name rather than guess.
    assert address(doctor, "it") == "Marco Bianchi"
    # A hosted CRM that knows says so.
    assert address(client("Dott.ssa", "Giulia", "Rossi"), "it") == "Dottoressa Rossi"
    assert address(client("Dott.", "Marco", "Bianchi"), "it") == "Dottor Bianchi"
    assert address(client("Dott.ssa", "Giulia", "Rossi"), "fr") == "Docteur Rossi"
    assert address(client("Mx", "Sam", "Taylor"), "it") == "Sam Taylor"


def test_cities_and_phrase_tables() -> None:
    assert [say_city("London", lang) for lang in ("en", "fr", "it")] == ["London", "Londres", "Londra"]
    assert [say_city("Paris", lang) for lang in ("en", "fr", "it")] == ["Paris", "Paris", "Parigi"]
    assert say_city("Milan", "it") == "Milano" and say_city("Geneva", "it") == "Geneva"
    table = {"en": "Hello", "it": "Buongiorno"}
    assert (pick(table, "it"), pick(table, "fr"), pick(table, None)) == ("Buongiorno", "Hello", "Hello")
    assert say_date_short(date(2027, 1, 21), "fr") == "21 janv."


def test_lists_end_with_and_and_french_repeats_its_preposition() -> None:
    cities = ["Paris", "Londres", "Milan"]
    assert say_list(["Paris", "London", "Milan"], "en") == "Paris, London and Milan"
    assert say_list(cities, "fr", "à") == "à Paris, à Londres et à Milan"
    assert say_list(cities[:2], "fr", "de") == "de Paris et de Londres"
    assert say_list(["Parigi", "Londra", "Milano"], "it") == "Parigi, Londra e Milano"
    assert say_list(["Parigi", "Londra"], "it", "a") == "a Parigi e a Londra"
    assert say_list(["Paris", "London", "Milan"], "en", "in") == "in Paris, London and Milan"
    assert (say_list(["Milan"], "fr", "à"), say_list([], "fr", "à")) == ("à Milan", "")


@pytest.mark.parametrize(("title", "gender"), [
    ("Mme", "f"), ("Madame", "f"), ("Ms", "f"), ("Signora", "f"), ("Dott.ssa", "f"),
    ("M.", "m"), ("Mr", "m"), ("Signor", "m"), ("Dott.", "m"),
    ("Dr", None), ("Mx", None), ("", None),
])
def test_the_title_tells_the_gender_french_agrees_with(title: str, gender: str | None) -> None:
    assert gender_of(client(title)) == gender
    assert gender_of(None) is None


@pytest.mark.parametrize(("gender", "question", "alone"), [
    ("f", "Serez-vous accompagnée ?", "Je viendrai seule"),
    ("m", "Serez-vous accompagné ?", "Je viendrai seul"),
    (None, "Viendrez-vous avec quelqu'un ?", "Rien que moi"),
])
def test_french_agrees_with_the_client_or_says_it_without_agreeing(
        gender: str | None, question: str, alone: str) -> None:
    reply = ask_party_size("fr", gender)
    assert reply.text == question and reply.buttons[0]["title"] == alone
    assert "(e)" not in reply.text and all("(e)" not in b["title"] for b in reply.buttons)
    # English and Italian need no agreement here: the same words for everyone.
    assert ask_party_size("en", gender).text == "Will anyone be joining you?"
    assert ask_party_size("it", gender).text == "Ci sarà qualcuno con Lei?"


def test_agreed_falls_back_to_the_neutral_words() -> None:
    words = {"ask": "neutral", "ask_f": "feminine"}
    assert (agreed(words, "ask", "f"), agreed(words, "ask", "m"), agreed(words, "ask", None)) == (
        "feminine", "neutral", "neutral")


@pytest.mark.parametrize(("said", "kept"), [
    ("The Alma bag", "Alma bag"), ("my grandmother's watch", "grandmother's watch"),
    ("mon sac Alma", "sac Alma"), ("l'orologio di mio padre", "orologio di mio padre"),
    ("L’écharpe", "écharpe"), ("la mia borsa", "borsa"), ("un'agenda", "agenda"),
    ("  Alma   bag ", "Alma bag"), ("the", "the"), ("Lune card holder", "Lune card holder"),
    ("Ilaria's bracelet", "Ilaria's bracelet"),
])
def test_a_piece_she_names_is_said_back_without_her_article(said: str, kept: str) -> None:
    from salon.conversation.phrasing import bare_name

    assert bare_name(said) == kept


@pytest.mark.parametrize(("text", "language", "said"), [
    ("saturday at 3pm", "en", "Very well, Saturday 12 December at 15:00. "),
    ("samedi à 15h30", "fr", "Très bien, le samedi 12 décembre à 15 h 30. "),
    ("sabato alle 15", "it", "Molto bene, sabato 12 dicembre alle 15:00. "),
    ("saturday afternoon", "en", "Very well, Saturday 12 December. "),
    ("samedi", "fr", "Très bien, le samedi 12 décembre. "),
    ("next week", "en", "Very well. "),
    ("ce week-end", "fr", "Très bien. "),
])
def test_a_moment_said_back_names_its_day_and_hour_as_she_meant_them(text: str, language: str,
                                                                      said: str) -> None:
    """The moment she gave before it was asked, said back in her language: the exact
    time with its day, a day (or part of one) as its day, a span of days as a plain
    acknowledgement; the wall-clock she wrote, in the boutique's zone."""
    from salon.conversation.appointments import noted_moment
    from salon.conversation.when import parse_when

    wednesday = datetime(2026, 12, 9, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    window = parse_when(text, wednesday, "Europe/London")
    assert window is not None
    assert noted_moment(window, language) == said
