"""Context recall when a client comes back after their window closed: one graceful line
on what was open last time (a booking under way, an order they asked about), so the new
session starts where the last one stood. A conversation still with an advisor gets no
line at all: the advisor answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from salon.conversation.greetings import Reply
from salon.conversation.phrasing import address, pick, say_city
from salon.integrations.crm import ClientRecord

__all__ = ["LastTime", "recall"]


@dataclass(frozen=True)
class LastTime:
    """What the previous session left open (all optional)."""

    booking_service: str | None = None
    """A booking under way (the service's label), not completed."""
    booking_city: str | None = None
    order_number: str | None = None
    """The order they last asked about."""
    advisor_request: bool = False
    """A request handed to their advisor that is still open (the bot then stays silent)."""


#: The words of this module, by language.
_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "hello": "Welcome back.",
        "hello_name": "Welcome back, {name}.",
        "where": " in {city}",
        "booking": "{hello} Last time we were arranging your {service}{where}. Shall we continue?",
        "continue": "Continue booking",
        "order": "{hello} Would you like the latest on your order {number}?",
        "yes": "Yes, please",
        "else": "Something else",
    },
    "fr": {
        "hello": "Quel plaisir de vous retrouver.",
        "hello_name": "Quel plaisir de vous retrouver, {name}.",
        "where": " à {city}",
        "booking": ("{hello} La dernière fois, nous préparions votre rendez-vous "
                    "({service}{where}). Souhaitez-vous reprendre la réservation ?"),
        "continue": "Poursuivre",
        "order": "{hello} Souhaitez-vous des nouvelles de votre commande {number} ?",
        "yes": "Oui, volontiers",
        "else": "Autre chose",
    },
    "it": {
        "hello": "Che piacere risentirLa.",
        "hello_name": "Che piacere risentirLa, {name}.",
        "where": " a {city}",
        "booking": ("{hello} L'ultima volta stavamo organizzando il Suo appuntamento "
                    "({service}{where}). Desidera proseguire?"),
        "continue": "Proseguire",
        "order": "{hello} Desidera avere notizie del Suo ordine {number}?",
        "yes": "Sì, grazie",
        "else": "Un'altra richiesta",
    },
}


def recall(record: ClientRecord | None, last: LastTime, language: str) -> Reply | None:
    """The welcome-back line, or None when nothing was left open."""
    words = pick(_WORDS, language)
    hello = (words["hello_name"].format(name=address(record, language)) if record is not None
             else words["hello"])
    other = {"title": words["else"], "payload": "/deny"}
    if last.booking_service:
        where = (words["where"].format(city=say_city(last.booking_city, language))
                 if last.booking_city else "")
        text = words["booking"].format(hello=hello, service=last.booking_service.lower(),
                                       where=where)
        return Reply(text, [{"title": words["continue"], "payload": "/book_appointment"}, other])
    if last.order_number:
        payload = f'/check_order_status{{"order_number": "{last.order_number}"}}'
        return Reply(words["order"].format(hello=hello, number=last.order_number),
                     [{"title": words["yes"], "payload": payload}, other])
    return None
