"""The first words to a client: by name and in their language when the maison knows
them, the time of day where they are, and for a VIC their own advisor offered first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from salon.conversation.phrasing import address, button_title, pick
from salon.integrations.crm import ClientRecord

__all__ = ["Reply", "greeting", "main_choices"]

DEFAULT_ZONE = "Europe/Paris"


@dataclass(frozen=True)
class Reply:
    """A message with its quick-reply buttons (``title`` ≤ 20 characters, ``payload``),
    and its ``lead``: what is kept of it when another answer follows it in the same
    WhatsApp message (a greeting's salutation without its "How may I help you?").
    """

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    lead: str | None = None


#: The words of this module, by language.
_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "book": "Book a visit",
        "order": "Track an order",
        "person": "Speak to {advisor}",
        "anyone": "Speak to an advisor",
        "welcome": "",  # a stranger writing in English gets the domain's utter_greet
        "vic": "{salutation}, {name}. {advisor} is at your disposal, or I can help you myself.",
        "known": "{salutation}, {name}. How may I help you?",
    },
    "fr": {
        "book": "Prendre rendez-vous",
        "order": "Suivre une commande",
        "person": "Parler à {advisor}",
        "anyone": "Un conseiller",
        "welcome": "{salutation} et bienvenue chez Maison Solenne. Comment puis-je vous aider ?",
        "vic": ("{salutation} {name}. {advisor} se tient à votre disposition, ou je peux vous "
                "aider moi-même."),
        "known": "{salutation} {name}. Comment puis-je vous aider ?",
    },
    "it": {
        "book": "Prenotare una visita",
        "order": "Stato dell'ordine",
        "person": "Parlare con {advisor}",
        "anyone": "Un consulente",
        "welcome": "{salutation}, Maison Solenne Le dà il benvenuto. Come posso esserLe utile?",
        "vic": ("{salutation}, {name}. {advisor} è a Sua completa disposizione, oppure, se "
                "preferisce, posso aiutarLa io."),
        "known": "{salutation}, {name}. Come posso esserLe utile?",
    },
}
#: (from this hour on, salutation), latest first, by language.
_SALUTATIONS: Final[dict[str, tuple[tuple[int, str], ...]]] = {
    "en": ((18, "Good evening"), (12, "Good afternoon"), (0, "Good morning")),
    "fr": ((18, "Bonsoir"), (0, "Bonjour")),
    "it": ((17, "Buonasera"), (0, "Buongiorno")),
}


def main_choices(language: str, advisor_first_name: str | None = None, *,
                 advisor_first: bool = False) -> list[dict[str, str]]:
    """The three doors: book, order, a person (named when there is an assigned advisor;
    first when ``advisor_first``, as for a VIC).
    """
    words = pick(_WORDS, language)
    person = (button_title(words["person"].format(advisor=advisor_first_name), advisor_first_name,
                           words["anyone"])
              if advisor_first_name else words["anyone"])
    doors = [
        {"title": words["book"], "payload": "/book_appointment"},
        {"title": words["order"], "payload": "/check_order_status"},
        {"title": person, "payload": "/talk_to_advisor"},
    ]
    if advisor_first:
        doors.insert(0, doors.pop())
    return doors


#: A greeting's first sentence: what it keeps when an answer follows it in one message.
_LEADS: Final[dict[str, dict[str, str]]] = {
    "en": {"welcome": "", "known": "{salutation}, {name}."},
    "fr": {"welcome": "{salutation} et bienvenue chez Maison Solenne.", "known": "{salutation} {name}."},
    "it": {"welcome": "{salutation}, Maison Solenne Le dà il benvenuto.", "known": "{salutation}, {name}."},
}


def _part_of_day(now: datetime, language: str) -> str:
    return next(word for hour, word in pick(_SALUTATIONS, language) if now.hour >= hour)


def greeting(record: ClientRecord | None, now: datetime, language: str) -> Reply | None:
    """The greeting for whoever is writing, at ``now`` (aware; said in their time zone).
    None for someone the maison does not know writing in English: the domain's
    ``utter_greet`` says it.
    """
    zone = ZoneInfo(record.time_zone if record is not None else DEFAULT_ZONE)
    salutation = _part_of_day(now.astimezone(zone), language)
    words = pick(_WORDS, language)
    if record is None:
        if not words["welcome"]:
            return None
        return Reply(words["welcome"].format(salutation=salutation), main_choices(language),
                     pick(_LEADS, language)["welcome"].format(salutation=salutation))
    name = address(record, language)
    lead = pick(_LEADS, language)["known"].format(salutation=salutation, name=name)
    advisor = record.advisor
    if record.is_vic and advisor is not None:
        text = words["vic"].format(salutation=salutation, name=name, advisor=advisor.first_name)
        return Reply(text, main_choices(language, advisor.first_name, advisor_first=True), lead)
    text = words["known"].format(salutation=salutation, name=name)
    return Reply(text, main_choices(language, advisor.first_name if advisor else None), lead)
