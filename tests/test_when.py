"""Days and times as clients write them, English and French, against a fixed clock."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from salon.when import parse_when

PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
# Sunday 29 November 2026, 14:00 in Paris.
NOW = datetime(2026, 11, 29, 13, 0, tzinfo=timezone.utc)


def _local(day: int, hour: int, minute: int = 0, month: int = 11, year: int = 2026,
           zone: ZoneInfo = PARIS) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


@pytest.mark.parametrize(("text", "start", "end", "exact"), [
    ("Friday afternoon", _local(4, 12, month=12), _local(4, 18, month=12), False),
    ("tomorrow at 3", _local(30, 15), None, True),
    ("tomorrow at 3pm", _local(30, 15), None, True),
    ("Tomorrow at 11am", _local(30, 11), None, True),
    ("demain à 15h", _local(30, 15), None, True),
    ("demain 15h30", _local(30, 15, 30), None, True),
    ("vendredi après-midi", _local(4, 12, month=12), _local(4, 18, month=12), False),
    ("samedi à midi", _local(5, 12, month=12), None, True),
    ("le 4 décembre", _local(4, 0, month=12), _local(5, 0, month=12), False),
    ("December 4 at 10:30", _local(4, 10, 30, month=12), None, True),
    ("4/12 at 11am", _local(4, 11, month=12), None, True),
    ("on the 4th", _local(4, 0, month=12), _local(5, 0, month=12), False),
    ("next week", _local(30, 0), _local(7, 0, month=12), False),
    ("this evening", _local(29, 17), _local(29, 23, 59), False),
    ("Monday morning", _local(30, 0), _local(30, 12), False),
    ("lundi à 10h", _local(30, 10), None, True),
    ("sat 2pm", _local(5, 14, month=12), None, True),
    ("le 3 décembre à 16 heures", _local(3, 16, month=12), None, True),
    ("at 11", _local(30, 11), None, True),  # 11:00 today has passed: tomorrow
    ("at 4", _local(29, 16), None, True),  # an hour without am/pm, 1 to 7: the afternoon
    ("Sunday", _local(29, 0), _local(30, 0), False),  # today
    ("next Sunday", _local(6, 0, month=12), _local(7, 0, month=12), False),
    ("10 January", _local(10, 0, month=1, year=2027), _local(11, 0, month=1, year=2027), False),
])
def test_moments_are_read_in_the_boutiques_zone(text: str, start: datetime, end: datetime | None,
                                                exact: bool) -> None:
    window = parse_when(text, NOW, PARIS)
    assert window is not None, text
    assert (window.start, window.exact) == (start, exact)
    if end is not None:
        assert window.end == end
    assert window.start.tzinfo is not None and window.end > window.start


def test_the_same_words_in_another_zone() -> None:
    window = parse_when("tomorrow at 3", NOW, LONDON)
    assert window is not None and window.start == _local(30, 15, zone=LONDON)
    assert window.start.astimezone(timezone.utc).hour == 15


@pytest.mark.parametrize("text", ["", None, "Paris", "a private viewing", "2 people", "the Aurore tote"])
def test_words_without_a_moment_are_none(text: str | None) -> None:
    assert parse_when(text, NOW, PARIS) is None


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("tomorrow", datetime(2026, 11, 29, 13, 0), PARIS)  # noqa: DTZ001
