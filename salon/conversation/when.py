"""Day and time as clients write them, in English, French and Italian, into aware datetimes.

``parse_when("Friday afternoon", now, zone)`` → the window Friday 12:00–18:00 in ``zone``
(the boutique's time zone); ``"tomorrow at 3"`` → exactly 15:00 tomorrow; ``"demain à
15h30"``, ``"vendredi après-midi"``, ``"le 4 décembre"``, ``"4/12 at 11am"``, ``"next
week"``, ``"this evening"``, ``"domani alle 15"``, ``"sabato pomeriggio"``, ``"il 4
dicembre"`` likewise. ``now`` comes from the injected clock; nothing here
reads the wall clock. What cannot be read returns ``None`` so the caller can ask again.

Conventions, chosen for appointments in a boutique: an hour without am/pm from 1 to 7
means the afternoon ("at 3" is 15:00); a weekday names the next such day (today if it is
today, unless "next" is said); a date already past this year means next year; dates
written with slashes are day/month. Every time returned is one the zone's clocks show: a
time they skip when they go forward (02:30 in Paris on the last Sunday of March) is read
as the instant it would have been, an hour later on the new clock (03:30); a time they
show twice when they go back is its first occurrence (still summer time).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from salon.clock import require_aware

__all__ = ["TimeWindow", "moment_text", "names_a_day", "parse_when", "says_moment", "with_its_day"]


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """When the client wishes to come: an exact moment (``exact``) or a span."""

    start: datetime
    end: datetime
    exact: bool


WEEKDAYS = {
    "monday": 0, "mon": 0, "lundi": 0, "lunedi": 0,
    "tuesday": 1, "tue": 1, "tues": 1, "mardi": 1, "martedi": 1,
    "wednesday": 2, "wed": 2, "mercredi": 2, "mercoledi": 2,
    "thursday": 3, "thu": 3, "thurs": 3, "jeudi": 3, "giovedi": 3,
    "friday": 4, "fri": 4, "vendredi": 4, "venerdi": 4,
    "saturday": 5, "sat": 5, "samedi": 5, "sabato": 5,
    "sunday": 6, "sun": 6, "dimanche": 6, "domenica": 6,
}
MONTHS = {
    "january": 1, "jan": 1, "janvier": 1, "february": 2, "feb": 2, "fevrier": 2,
    "march": 3, "mar": 3, "mars": 3, "april": 4, "apr": 4, "avril": 4, "may": 5, "mai": 5,
    "june": 6, "jun": 6, "juin": 6, "july": 7, "jul": 7, "juillet": 7,
    "august": 8, "aug": 8, "aout": 8, "september": 9, "sep": 9, "sept": 9, "septembre": 9,
    "october": 10, "oct": 10, "octobre": 10, "november": 11, "nov": 11, "novembre": 11,
    "december": 12, "dec": 12, "decembre": 12,
    "gennaio": 1, "febbraio": 2, "marzo": 3, "aprile": 4, "maggio": 5, "giugno": 6,
    "luglio": 7, "agosto": 8, "settembre": 9, "ottobre": 10, "dicembre": 12,
}
#: Part of the day → local [start, end) hours.
PARTS = {
    "morning": (time(0), time(12)), "matin": (time(0), time(12)), "matinee": (time(0), time(12)),
    "afternoon": (time(12), time(18)), "apres midi": (time(12), time(18)),
    "aprem": (time(12), time(18)),
    "evening": (time(17), time(23, 59)), "tonight": (time(17), time(23, 59)),
    "soir": (time(17), time(23, 59)), "soiree": (time(17), time(23, 59)),
    "lunchtime": (time(12), time(14)), "midday": (time(12), time(14)),
    "mattina": (time(0), time(12)), "mattinata": (time(0), time(12)),
    "pomeriggio": (time(12), time(18)), "sera": (time(17), time(23, 59)),
    "serata": (time(17), time(23, 59)), "stasera": (time(17), time(23, 59)),
    "ora di pranzo": (time(12), time(14)),
}

_MONTH_WORDS = "|".join(sorted(MONTHS, key=len, reverse=True))
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th|er)?(?: of)? ({_MONTH_WORDS})\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH_WORDS}) (\d{{1,2}})(?:st|nd|rd|th)?\b")
_SLASH = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
_ORDINAL = re.compile(r"\b(?:the|le|il) (\d{1,2})(?:st|nd|rd|th|er)?\b")
_CLOCK = re.compile(
    r"(?:\b(?:at|a|vers|around|for|pour|alle ore|alle|verso le|per le|ore)\s+)?\b(\d{1,2})(?:(?::|h|\.)(\d{2})?|\s*(am|pm|a m|p m)|(?=\s*(?:o clock|heures?)\b))"
    r"(?:\s*(am|pm))?"
)
_BARE_AT = re.compile(r"\b(?:at|a|vers|around|alle ore|alle|verso le|per le|ore)\s+(\d{1,2})\b(?!\s*(?:/|:|h|th|st|nd|rd|er\b))")


_GARMENT = re.compile(
    r"\b(?:(?:evening|night|cocktail|day)\s+(?:dress|dresses|gown|gowns|wear|bag|bags|jacket|"
    r"jackets|shoes|look|looks|outfit|outfits|attire|clutch|clutches|coat|coats)"
    r"|(?:robe|robes|tenue|tenues|sac|sacs|veste|vestes|chaussures|pochette|pochettes|manteau|"
    r"manteaux)\s+(?:de|du)\s+(?:soiree|soir|jour|cocktail)"
    r"|(?:abito|abiti|borsa|borse|giacca|giacche|scarpe|pochette|cappotto|cappotti)\s+da\s+"
    r"(?:sera|giorno|cocktail))\b")
"""Garments named after a moment of the day ("evening dresses", "robe de soirée", "abito
da sera"): no moment is meant."""


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = re.sub(r"[’'`-]", " ", plain)
    plain = re.sub(r"[^a-z0-9:/.]+", " ", plain)
    return re.sub(r"\s+", " ", plain).strip()


_POSSESSIVE_MON = re.compile(
    r"\bmon\b(?!\s*$|\s+(?:\d|at\b|morning\b|afternoon\b|evening\b|the\b|next\b|or\b|and\b|"
    r"matin\b|apres\b|soir\b))")
"""French "mon" before a noun ("avec mon mari", "mon rendez-vous"): "my", not Monday ("Mon
3pm", "mon at 11" stay Monday)."""


def moment_text(text: str) -> str:
    """``text`` normalised (lower case, no accents or punctuation), without the garments
    named after a moment of the day and without French "mon" before a noun: what is left
    of it that may name a moment.
    """
    plain = _POSSESSIVE_MON.sub(" ", _GARMENT.sub(" ", _normalise(text)))
    return re.sub(r"\s+", " ", plain).strip()


def says_moment(words: str, message: str) -> bool:
    """Whether ``words`` (a moment the NLU read in ``message``) still name one once the
    garments are left out of the message: "evening" in "evening dresses" does not.
    """
    wanted = _normalise(words)
    return bool(wanted) and re.search(rf"\b{re.escape(wanted)}\b", moment_text(message)) is not None


_SHORT_OR_AMBIGUOUS = frozenset({
    "mon", "tue", "tues", "wed", "thu", "thurs", "fri", "sat", "sun", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mai"})
"""Day and month words that are also other words in a sentence: "mon" (French "my"),
"sun", "mar", "mai" (Italian "never")."""


def names_a_day(text: str | None, now: datetime, zone: ZoneInfo | str, *, strict: bool = False) -> bool:
    """Whether ``text`` names a day ("tomorrow", "Friday", "12/12"), not only a time.
    ``strict``, for a whole sentence NLU read no moment in: abbreviated and ambiguous
    words ("je voudrais déplacer mon rendez-vous") name none.
    """
    require_aware(now, "now")
    if not text:
        return False
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    plain = moment_text(text)
    if strict:
        plain = " ".join(word for word in plain.split(" ") if word not in _SHORT_OR_AMBIGUOUS)
    return _day(plain, now.astimezone(tz).date())[0] is not None


def with_its_day(earlier: str | None, later: str, now: datetime, zone: ZoneInfo | str) -> str:
    """The moment she means when she gives a time after a day ("tomorrow", then "around
    11"): the two together; ``later`` alone when it names its own day or ``earlier``
    named none. When ``earlier`` had a time of its own ("tomorrow at 3pm", then "at 5"),
    only its day is kept with the new time.
    """
    if not earlier or names_a_day(later, now, zone) or not names_a_day(earlier, now, zone):
        return later
    before = parse_when(earlier, now, zone)
    if before is not None and before.exact:
        day = before.start.date()
        return f"{later} {day.day}/{day.month}/{day.year}"
    return f"{earlier} {later}"


def _words(text: str) -> set[str]:
    return set(text.split(" "))


def _future_date(candidate_month: int, candidate_day: int, year: int | None, today: date) -> date | None:
    try:
        if year is not None:
            return date(year, candidate_month, candidate_day)
        found = date(today.year, candidate_month, candidate_day)
        if found < today:
            found = date(today.year + 1, candidate_month, candidate_day)
        return found
    except ValueError:
        return None


def _relative_span(text: str, words: set[str], today: date) -> tuple[date, date | None] | None:
    """The day or span a relative phrase names (tomorrow, today, next week, this
    weekend…), or None if ``text`` holds none.
    """
    if "apres demain" in text or "day after tomorrow" in text or "dopodomani" in words:
        return today + timedelta(days=2), None
    if {"tomorrow", "demain", "tmrw", "domani"} & words:
        return today + timedelta(days=1), None
    if {"today", "tonight", "oggi", "stasera", "stamattina", "stamani"} & words \
            or "aujourd hui" in text or "ce soir" in text \
            or "this afternoon" in text or "this morning" in text or "this evening" in text \
            or "cet apres midi" in text or "ce matin" in text or "questo pomeriggio" in text \
            or "oggi pomeriggio" in text:
        return today, None
    if "next week" in text or "semaine prochaine" in text or "settimana prossima" in text \
            or "prossima settimana" in text:
        monday = today + timedelta(days=7 - today.weekday())
        return monday, monday + timedelta(days=6)
    if "this weekend" in text or "ce week end" in text or "weekend" in words \
            or "fine settimana" in text or "questo week end" in text:
        saturday = today + timedelta(days=(5 - today.weekday()) % 7)
        return saturday, saturday + timedelta(days=1)
    return None


def _written_date(text: str, today: date) -> tuple[date | None, None] | None:
    """The date written out ("4 December", "december 4th", "4/12") as (day, None), the
    day None when no such day exists; None if ``text`` writes no date.
    """
    match = _DAY_MONTH.search(text)
    if match:
        return _future_date(MONTHS[match.group(2)], int(match.group(1)), None, today), None
    match = _MONTH_DAY.search(text)
    if match:
        return _future_date(MONTHS[match.group(1)], int(match.group(2)), None, today), None
    match = _SLASH.search(text)
    if match:
        year = match.group(3)
        full_year = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
        return _future_date(int(match.group(2)), int(match.group(1)), full_year, today), None
    return None


def _next_weekday(words: set[str], today: date) -> date | None:
    """The next day of the weekday named (today if it is today, unless "next" is said)."""
    for word, weekday in WEEKDAYS.items():
        if word in words:
            ahead = (weekday - today.weekday()) % 7
            if ahead == 0 and ({"next", "prochain", "prossimo", "prossima"} & words):
                ahead = 7
            return today + timedelta(days=ahead)
    return None


def _ordinal_day(text: str, today: date) -> date | None:
    """The day of the month named ("the 4th", "le 4"): this month's if still ahead, else
    next month's; None if ``text`` names none or the day does not exist.
    """
    match = _ORDINAL.search(text)
    if not match:
        return None
    day_of_month = int(match.group(1))
    month, year = today.month, today.year
    for _ in range(2):
        try:
            found = date(year, month, day_of_month)
        except ValueError:
            found = None
        if found is not None and found >= today:
            return found
        month, year = (1, year + 1) if month == 12 else (month + 1, year)
    return None


def _day(text: str, today: date) -> tuple[date | None, date | None]:
    """(first day, last day) named by ``text``, or (None, None)."""
    words = _words(text)
    span = _relative_span(text, words, today)
    if span is not None:
        return span
    written = _written_date(text, today)
    if written is not None:
        return written
    weekday = _next_weekday(words, today)
    if weekday is not None:
        return weekday, None
    return _ordinal_day(text, today), None


def _clock(text: str) -> time | None:
    if re.search(r"\bnoon\b|(?<!apres )\bmidi\b|\bmezzogiorno\b", text):
        return time(12)
    for match in _CLOCK.finditer(text):
        hour = int(match.group(1))
        minute = int(match.group(2) or 0)
        suffix = (match.group(3) or match.group(4) or "").replace(" ", "")
        whole = match.group(0)
        if not suffix and ":" not in whole and "h" not in whole.split(match.group(1), 1)[1][:1] \
                and "clock" not in text and "heure" not in text:
            continue  # a bare number, not a time
        if suffix == "pm" and hour < 12:
            hour += 12
        elif suffix == "am" and hour == 12:
            hour = 0
        elif not suffix and 1 <= hour <= 7:
            hour += 12
        if hour > 23 or minute > 59:
            return None
        return time(hour, minute)
    bare = _BARE_AT.search(text)
    if bare:
        hour = int(bare.group(1))
        if 1 <= hour <= 7:
            hour += 12
        if hour <= 23:
            return time(hour)
    return None


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``tz`` as a real local time (see the module's conventions)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(timezone.utc).astimezone(tz)


def _part(text: str) -> tuple[time, time] | None:
    for word in sorted(PARTS, key=len, reverse=True):
        if re.search(rf"\b{word}\b", text):
            return PARTS[word]
    return None


def parse_when(text: str | None, now: datetime, zone: ZoneInfo | str) -> TimeWindow | None:
    """The moment or span ``text`` names, in ``zone``, relative to ``now``; None if the
    text names no day and no time.
    """
    require_aware(now, "now")
    if not text:
        return None
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    plain = moment_text(text)
    local_now = now.astimezone(tz)
    today = local_now.date()
    first, last = _day(plain, today)
    at = _clock(plain)
    part = _part(plain)
    if first is None:
        # A time alone means the next such time: today if still ahead, else tomorrow.
        probe = at if at is not None else part[1] if part is not None else None
        if probe is None:
            return None  # no day, no time
        first = today
        if datetime.combine(today, probe, tzinfo=tz) <= local_now:
            first = today + timedelta(days=1)
    last = last or first
    if at is not None:
        moment = _local(first, at, tz)
        return TimeWindow(moment, moment + timedelta(minutes=1), exact=True)
    if part is not None:
        return TimeWindow(_local(first, part[0], tz), _local(last, part[1], tz), exact=False)
    return TimeWindow(_local(first, time(0), tz), _local(last + timedelta(days=1), time(0), tz),
                      exact=False)
