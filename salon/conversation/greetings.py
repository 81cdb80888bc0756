"""The first words to a client: by name and in their language when the maison knows
them, the time of day where they are, and for a VIC their own advisor offered first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from salon.conversation.phrasing import address
from salon.integrations.crm import ClientRecord

__all__ = ["Reply", "greeting", "main_choices"]

DEFAULT_ZONE = "Europe/Paris"


@dataclass(frozen=True)
class Reply:
    """A message with its quick-reply buttons (``title`` ≤ 20 characters, ``payload``)."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)


def main_choices(language: str, advisor_first_name: str | None = None, *,
                 advisor_first: bool = False) -> list[dict[str, str]]:
    """The three doors: book, order, a person (named when there is an assigned advisor;
    first when ``advisor_first``, as for a VIC).
    """
    if language == "fr":
        person = f"Parler à {advisor_first_name}" if advisor_first_name else "Un conseiller"
        book, order = "Prendre rendez-vous", "Suivre une commande"
    else:
        person = f"Speak to {advisor_first_name}" if advisor_first_name else "Speak to an advisor"
        book, order = "Book a visit", "Track an order"
    doors = [
        {"title": book, "payload": "/book_appointment"},
        {"title": order, "payload": "/check_order_status"},
        {"title": person[:20], "payload": "/talk_to_advisor"},
    ]
    if advisor_first:
        doors.insert(0, doors.pop())
    return doors


def _part_of_day(now: datetime, language: str) -> str:
    hour = now.hour
    if language == "fr":
        return "Bonsoir" if hour >= 18 else "Bonjour"
    if hour < 12:
        return "Good morning"
    return "Good afternoon" if hour < 18 else "Good evening"


def greeting(record: ClientRecord | None, now: datetime, language: str) -> Reply | None:
    """The greeting for whoever is writing, at ``now`` (aware; said in their time zone).
    None for someone the maison does not know writing in English: the domain's
    ``utter_greet`` says it.
    """
    zone = ZoneInfo(record.time_zone if record is not None else DEFAULT_ZONE)
    salutation = _part_of_day(now.astimezone(zone), language)
    if record is None:
        if language == "fr":
            return Reply(f"{salutation}, et bienvenue chez Maison Solenne. Comment puis-je vous aider ?",
                         main_choices(language))
        return None
    name = address(record, language)
    advisor = record.advisor
    if record.is_vic and advisor is not None:
        if language == "fr":
            text = (f"{salutation} {name}. {advisor.first_name} se tient à votre disposition, "
                    "ou je peux vous aider moi-même.")
        else:
            text = (f"{salutation}, {name}. {advisor.first_name} is at your disposal, "
                    "or I can help you myself.")
        return Reply(text, main_choices(language, advisor.first_name, advisor_first=True))
    if language == "fr":
        text = f"{salutation} {name}. Comment puis-je vous aider ?"
    else:
        text = f"{salutation}, {name}. How may I help you?"
    return Reply(text, main_choices(language, advisor.first_name if advisor else None))
