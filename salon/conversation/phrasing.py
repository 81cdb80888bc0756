"""How the maison addresses a client and says a day or a time, in English and French.

No locale database is involved (the servers' locales are not ours to rely on): the few
words needed are here. French is always the formal register.
"""

from __future__ import annotations

from datetime import datetime

from salon.integrations.crm import ClientRecord

__all__ = [
    "address",
    "say_day",
    "say_day_short",
    "say_time",
]

_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FR_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
_FR_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
              "septembre", "octobre", "novembre", "décembre")
_FR_MONTHS_SHORT = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.",
                    "oct.", "nov.", "déc.")

_EN_TITLES = {"Ms": "Ms", "Mme": "Mrs", "Mr": "Mr", "M.": "Mr", "Dr": "Dr"}
_FR_TITLES = {"Ms": "Madame", "Mme": "Madame", "Mr": "Monsieur", "M.": "Monsieur", "Dr": "Docteur"}


def address(record: ClientRecord, language: str) -> str:
    """"Ms Laurent" / "Madame Laurent"; without a gendered title, the full name."""
    titles = _FR_TITLES if language == "fr" else _EN_TITLES
    title = titles.get(record.title)
    if title is None:
        return f"{record.first_name} {record.last_name}"
    return f"{title} {record.last_name}"


def say_day(when: datetime, language: str) -> str:
    """"Friday 4 December" / "vendredi 4 décembre" (in ``when``'s own time zone)."""
    if language == "fr":
        return f"{_FR_DAYS[when.weekday()]} {when.day} {_FR_MONTHS[when.month - 1]}"
    return f"{_EN_DAYS[when.weekday()]} {when.day} {_EN_MONTHS[when.month - 1]}"


def say_day_short(when: datetime, language: str) -> str:
    """"Fri 4 Dec" / "ven. 4 déc." (for button titles)."""
    if language == "fr":
        return f"{_FR_DAYS[when.weekday()][:3]}. {when.day} {_FR_MONTHS_SHORT[when.month - 1]}"
    return f"{_EN_DAYS[when.weekday()][:3]} {when.day} {_EN_MONTHS[when.month - 1][:3]}"


def say_time(when: datetime, language: str) -> str:
    """"15:00" / "15h00"."""
    return f"{when.hour}h{when.minute:02d}" if language == "fr" else f"{when:%H:%M}"
