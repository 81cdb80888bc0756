"""Days and times as clients write them, in English, French and Italian.

The everyday cases are read at the suite's "now" (``SALON_TEST_NOW``, see
tests/instants.py), their expectations reckoned from that day in the boutique's zone;
the awkward moments of :data:`~tests.instants.FROZEN_INSTANTS` (a Friday evening, New
Year's Eve, both nights the clocks change) are read at each of them, whatever the suite's
"now", with their answers written out in full.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from salon.conversation.when import TimeWindow, parse_when
from tests.instants import FROZEN_INSTANTS, parse_instant, suite_now

PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
NOW = suite_now()
TODAY = NOW.astimezone(PARIS).date()
TOMORROW = TODAY + timedelta(days=1)
MONDAY, SATURDAY, FRIDAY = 0, 5, 4

EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
IT_MONTHS = ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
             "settembre", "ottobre", "novembre", "dicembre")
FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre")


def on(day: date, hour: int = 0, minute: int = 0, zone: ZoneInfo = PARIS) -> datetime:
    """``hour:minute`` on ``day`` in ``zone`` (a time that exists that day)."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def coming(weekday: int, today: date = TODAY) -> date:
    """The day a weekday names: the next such day, today if today is one."""
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def next_at(hour: int) -> datetime:
    """A time said alone: today if it is still ahead of now, else tomorrow."""
    today = on(TODAY, hour)
    return today if today > NOW else on(TOMORROW, hour)


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def passed_this_year(today: date) -> date:
    """A day-month already past (or today's), to be read as next year's: yesterday, or the
    day before when yesterday was 29 February (next year has none)."""
    day = today - timedelta(days=1)
    return day - timedelta(days=1) if (day.month, day.day) == (2, 29) else day


SOON = TODAY + timedelta(days=5)  # a day named by its date, within the week ahead
SOONER = TODAY + timedelta(days=4)
PASSED = passed_this_year(TODAY)
# Read as the next such day: next year's, unless today is 1 January (yesterday was last year).
PASSED_NEXT = PASSED.replace(year=TODAY.year + 1 if PASSED.year == TODAY.year else TODAY.year)
NEXT_WEEK = TODAY + timedelta(days=7 - TODAY.weekday())
TODAY_NAME = EN_DAYS[TODAY.weekday()]


@pytest.mark.parametrize(("text", "start", "end", "exact"), [
    ("Friday afternoon", on(coming(FRIDAY), 12), on(coming(FRIDAY), 18), False),
    ("tomorrow at 3", on(TOMORROW, 15), None, True),
    ("tomorrow at 3pm", on(TOMORROW, 15), None, True),
    ("Tomorrow at 11am", on(TOMORROW, 11), None, True),
    ("demain à 15h", on(TOMORROW, 15), None, True),
    ("demain 15h30", on(TOMORROW, 15, 30), None, True),
    ("vendredi après-midi", on(coming(FRIDAY), 12), on(coming(FRIDAY), 18), False),
    ("samedi à midi", on(coming(SATURDAY), 12), None, True),
    (f"le {SOON.day} {FR_MONTHS[SOON.month - 1]}", on(SOON), on(SOON + timedelta(days=1)), False),
    (f"{EN_MONTHS[SOON.month - 1]} {SOON.day} at 10:30", on(SOON, 10, 30), None, True),
    (f"{SOON.day}/{SOON.month} at 11am", on(SOON, 11), None, True),  # day/month
    (f"on the {ordinal(SOON.day)}", on(SOON), on(SOON + timedelta(days=1)), False),
    ("next week", on(NEXT_WEEK), on(NEXT_WEEK + timedelta(days=7)), False),
    ("this evening", on(TODAY, 17), on(TODAY, 23, 59), False),
    ("Monday morning", on(coming(MONDAY)), on(coming(MONDAY), 12), False),
    ("lundi à 10h", on(coming(MONDAY), 10), None, True),
    ("sat 2pm", on(coming(SATURDAY), 14), None, True),
    (f"le {SOONER.day} {FR_MONTHS[SOONER.month - 1]} à 16 heures", on(SOONER, 16), None, True),
    ("at 11", next_at(11), None, True),  # today if 11:00 is still ahead, else tomorrow
    ("at 4", next_at(16), None, True),  # an hour without am/pm, 1 to 7: the afternoon
    (TODAY_NAME, on(TODAY), on(TOMORROW), False),  # today's weekday names today
    (f"next {TODAY_NAME}", on(TODAY + timedelta(days=7)), on(TODAY + timedelta(days=8)), False),
    (f"{PASSED.day} {EN_MONTHS[PASSED.month - 1]}", on(PASSED_NEXT),
     on(PASSED_NEXT + timedelta(days=1)), False),  # already past this year: next year's
    # Italian
    ("domani alle 15", on(TOMORROW, 15), None, True),
    ("domani alle ore 15:30", on(TOMORROW, 15, 30), None, True),
    ("sabato pomeriggio", on(coming(SATURDAY), 12), on(coming(SATURDAY), 18), False),
    ("venerdì mattina", on(coming(FRIDAY)), on(coming(FRIDAY), 12), False),
    ("lunedi verso le 4", on(coming(MONDAY), 16), None, True),
    ("sabato a mezzogiorno", on(coming(SATURDAY), 12), None, True),
    (f"il {SOON.day} {IT_MONTHS[SOON.month - 1]} alle 11:30", on(SOON, 11, 30), None, True),
    ("dopodomani", on(TODAY + timedelta(days=2)), on(TODAY + timedelta(days=3)), False),
    ("stasera", on(TODAY, 17), on(TODAY, 23, 59), False),
    ("la prossima settimana", on(NEXT_WEEK), on(NEXT_WEEK + timedelta(days=7)), False),
])
def test_moments_are_read_in_the_boutiques_zone(text: str, start: datetime, end: datetime | None,
                                                exact: bool) -> None:
    window = parse_when(text, NOW, PARIS)
    assert window is not None, text
    assert (window.start.isoformat(), window.exact) == (start.isoformat(), exact)
    if end is not None:
        assert window.end.isoformat() == end.isoformat()
    assert window.start.tzinfo is not None and window.end > window.start


def test_the_same_words_in_another_zone() -> None:
    tomorrow_in_london = NOW.astimezone(LONDON).date() + timedelta(days=1)
    window = parse_when("tomorrow at 3", NOW, LONDON)
    assert window is not None
    assert window.start.isoformat() == on(tomorrow_in_london, 15, zone=LONDON).isoformat()
    assert window.start.astimezone(LONDON).hour == 15
    assert window.start.utcoffset() == LONDON.utcoffset(window.start.replace(tzinfo=None))
    in_paris = parse_when("tomorrow at 3", NOW, PARIS)
    assert in_paris is not None and in_paris.start.astimezone(PARIS).hour == 15
    if tomorrow_in_london == TOMORROW:  # the same day: London's 15:00 is an hour after Paris's
        assert window.start - in_paris.start == timedelta(hours=1)


@pytest.mark.parametrize("text", ["", None, "Paris", "a private viewing", "2 people", "the Aurore tote"])
def test_words_without_a_moment_are_none(text: str | None) -> None:
    assert parse_when(text, NOW, PARIS) is None


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("tomorrow", NOW.replace(tzinfo=None), PARIS)


# ── At the frozen instants ───────────────────────────────────────────────────
#
# (text, start, end) in Paris; an exact moment (end None) lasts one minute.

AT_FROZEN: dict[str, list[tuple[str, str, str | None]]] = {
    # Friday 4 December 2026, 21:00.
    "friday-evening": [
        ("tomorrow at 3", "2026-12-05T15:00:00+01:00", None),
        # A weekday names today when it is today, even with its afternoon over: the
        # booking form answers that the moment has passed.
        ("friday afternoon", "2026-12-04T12:00:00+01:00", "2026-12-04T18:00:00+01:00"),
        ("next friday afternoon", "2026-12-11T12:00:00+01:00", "2026-12-11T18:00:00+01:00"),
        ("next week", "2026-12-07T00:00:00+01:00", "2026-12-14T00:00:00+01:00"),
        ("this evening", "2026-12-04T17:00:00+01:00", "2026-12-04T23:59:00+01:00"),
        ("le 5 décembre", "2026-12-05T00:00:00+01:00", "2026-12-06T00:00:00+01:00"),
        ("3 December", "2027-12-03T00:00:00+01:00", "2027-12-04T00:00:00+01:00"),
        ("at 11", "2026-12-05T11:00:00+01:00", None),
    ],
    # Thursday 31 December 2026, 23:30: tomorrow is another month and another year.
    "new-year-eve": [
        ("tomorrow at 3", "2027-01-01T15:00:00+01:00", None),
        ("friday afternoon", "2027-01-01T12:00:00+01:00", "2027-01-01T18:00:00+01:00"),
        ("next week", "2027-01-04T00:00:00+01:00", "2027-01-11T00:00:00+01:00"),
        ("this evening", "2026-12-31T17:00:00+01:00", "2026-12-31T23:59:00+01:00"),
        ("le 2 janvier", "2027-01-02T00:00:00+01:00", "2027-01-03T00:00:00+01:00"),
        ("31 December", "2026-12-31T00:00:00+01:00", "2027-01-01T00:00:00+01:00"),
        ("30 December", "2027-12-30T00:00:00+01:00", "2027-12-31T00:00:00+01:00"),
        ("4/1 at 11am", "2027-01-04T11:00:00+01:00", None),
        ("on the 1st", "2027-01-01T00:00:00+01:00", "2027-01-02T00:00:00+01:00"),
        ("at 11", "2027-01-01T11:00:00+01:00", None),
    ],
    # Sunday 28 March 2027, 01:30 winter time; at 02:00 the clocks jump to 03:00.
    "dst-spring-forward": [
        ("tomorrow at 3", "2027-03-29T15:00:00+02:00", None),
        ("friday afternoon", "2027-04-02T12:00:00+02:00", "2027-04-02T18:00:00+02:00"),
        ("next week", "2027-03-29T00:00:00+02:00", "2027-04-05T00:00:00+02:00"),
        ("this evening", "2027-03-28T17:00:00+02:00", "2027-03-28T23:59:00+02:00"),
        ("1er avril", "2027-04-01T00:00:00+02:00", "2027-04-02T00:00:00+02:00"),
        ("today", "2027-03-28T00:00:00+01:00", "2027-03-29T00:00:00+02:00"),  # 23 hours
        # 02:30 does not exist that night: it is read as 03:30 summer time, the instant
        # 02:30 winter time would have been (an hour after now).
        ("today at 2:30am", "2027-03-28T03:30:00+02:00", None),
        ("at 2:30am", "2027-03-28T03:30:00+02:00", None),
        ("tomorrow at 2:30", "2027-03-29T14:30:00+02:00", None),
        ("at 11", "2027-03-28T11:00:00+02:00", None),
    ],
    # Sunday 31 October 2027, 01:30 summer time; at 03:00 the clocks go back to 02:00.
    "dst-fall-back": [
        ("tomorrow at 3", "2027-11-01T15:00:00+01:00", None),
        ("friday afternoon", "2027-11-05T12:00:00+01:00", "2027-11-05T18:00:00+01:00"),
        ("next week", "2027-11-01T00:00:00+01:00", "2027-11-08T00:00:00+01:00"),
        ("this evening", "2027-10-31T17:00:00+01:00", "2027-10-31T23:59:00+01:00"),
        ("2 novembre", "2027-11-02T00:00:00+01:00", "2027-11-03T00:00:00+01:00"),
        ("on the 1st", "2027-11-01T00:00:00+01:00", "2027-11-02T00:00:00+01:00"),
        ("today", "2027-10-31T00:00:00+02:00", "2027-11-01T00:00:00+01:00"),  # 25 hours
        # 02:30 happens twice that night: it is read as the first, summer time.
        ("today at 2:30am", "2027-10-31T02:30:00+02:00", None),
        ("tomorrow at 2:30", "2027-11-01T14:30:00+01:00", None),
    ],
}
EVERY_INSTANT = ("tomorrow at 3", "friday afternoon", "next week", "this evening")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _is_real_local_time(moment: datetime) -> bool:
    """Whether the wall-clock time and offset of ``moment`` are what its zone's clocks
    showed at that instant (not a time the clocks skipped)."""
    return moment.isoformat() == _utc(moment).astimezone(moment.tzinfo).isoformat()


def test_every_frozen_instant_has_its_expectations() -> None:
    assert set(AT_FROZEN) == set(FROZEN_INSTANTS)
    for name, rows in AT_FROZEN.items():
        assert set(EVERY_INSTANT) <= {text for text, _, _ in rows}, name


@pytest.mark.parametrize(("instant", "text", "start", "end"), [
    pytest.param(name, text, start, end, id=f"{name}:{text}")
    for name, rows in AT_FROZEN.items() for text, start, end in rows
])
def test_moments_at_the_frozen_instants(instant: str, text: str, start: str, end: str | None) -> None:
    now = parse_instant(FROZEN_INSTANTS[instant])
    window = parse_when(text, now, PARIS)
    assert window is not None, text
    assert window.start.isoformat() == start
    assert window.exact is (end is None)
    expected_end = _utc(datetime.fromisoformat(start)) + timedelta(minutes=1) if end is None \
        else _utc(datetime.fromisoformat(end))
    assert _utc(window.end) == expected_end
    if end is not None:
        assert window.end.isoformat() == end


@pytest.mark.parametrize("instant", FROZEN_INSTANTS)
@pytest.mark.parametrize("zone", [PARIS, LONDON], ids=str)
@pytest.mark.parametrize("text", [
    "tomorrow at 3", "friday afternoon", "next week", "this evening", "today", "tomorrow",
    "today at 2:30am", "tomorrow at 2:30am", "at 2:30am", "today at 1:30am", "at 1:30am",
    "this morning", "tonight", "demain à 15h30", "le 1er janvier", "next Sunday",
])
def test_every_moment_read_is_a_real_local_time(instant: str, zone: ZoneInfo, text: str) -> None:
    now = parse_instant(FROZEN_INSTANTS[instant])
    window = parse_when(text, now, zone)
    assert window is not None, text
    assert window.start.tzinfo is not None and str(window.start.tzinfo) == str(zone)
    assert _is_real_local_time(window.start) and _is_real_local_time(window.end), window
    assert _utc(window.end) > _utc(window.start)
    if window.exact:
        assert _utc(window.end) - _utc(window.start) == timedelta(minutes=1)


def test_londons_own_gap_on_the_spring_forward_night() -> None:
    """London's clocks jump from 01:00 to 02:00 (an hour before Paris's, the same instant)."""
    now = parse_instant(FROZEN_INSTANTS["dst-spring-forward"])  # 00:30 in London
    window = parse_when("today at 1:30am", now, LONDON)
    assert isinstance(window, TimeWindow) and window.exact
    assert window.start.isoformat() == "2027-03-28T02:30:00+01:00"
    assert _utc(window.start) - _utc(now) == timedelta(hours=1)


@pytest.mark.parametrize(("earlier", "later", "meant"), [
    ("tomorrow", "around 11", "tomorrow around 11"),
    ("demain", "vers 15h", "demain vers 15h"),
    ("tomorrow", "Friday at 3pm", "Friday at 3pm"),  # a day of its own
    (None, "around 11", "around 11"),
    ("in the afternoon", "at 4", "at 4"),  # no day before: nothing to add
])
def test_a_time_given_after_a_day_means_that_day(earlier: str | None, later: str, meant: str) -> None:
    from salon.conversation.when import with_its_day

    assert with_its_day(earlier, later, NOW, PARIS) == meant


def test_a_new_time_replaces_the_time_given_with_the_day() -> None:
    """"Tomorrow at 3pm", then "at 5": tomorrow at 17:00, not 15:00."""
    from salon.conversation.when import with_its_day

    meant = with_its_day("tomorrow at 3pm", "at 5", NOW, PARIS)
    window = parse_when(meant, NOW, PARIS)
    tomorrow = NOW.astimezone(PARIS).date() + timedelta(days=1)
    assert window is not None and window.exact
    assert (window.start.date(), window.start.hour) == (tomorrow, 17)


def test_garments_named_after_a_moment_name_no_moment() -> None:
    from salon.conversation.when import names_a_day, says_moment

    assert parse_when("evening dresses", NOW, PARIS) is None
    assert parse_when("une robe de soirée", NOW, PARIS) is None
    assert parse_when("un abito da sera", NOW, PARIS) is None
    assert parse_when("this evening, for an evening gown", NOW, PARIS) is not None
    assert not says_moment("evening", "to look at evening dresses")
    assert says_moment("evening", "tomorrow evening to look at evening dresses")
    assert names_a_day("tomorrow around 11", NOW, PARIS) and not names_a_day("around 11", NOW, PARIS)


def test_french_mon_before_a_noun_is_my_not_monday() -> None:
    """"vers 11h avec mon mari": 11:00 the next such time, not Monday; "Mon 3pm" and "mon
    at 11" stay Monday."""
    plain = parse_when("vers 11h avec mon mari", NOW, PARIS)
    assert plain is not None and plain.start == parse_when("vers 11h", NOW, PARIS).start  # type: ignore[union-attr]
    for monday in ("Mon 3pm", "mon at 11", "lundi avec mon mari"):
        window = parse_when(monday, NOW, PARIS)
        assert window is not None and window.start.weekday() == 0, monday
    assert parse_when("mon rendez-vous de mardi", NOW, PARIS).start.weekday() == 1  # type: ignore[union-attr]
