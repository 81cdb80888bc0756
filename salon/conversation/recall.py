"""Context recall when a client comes back after their window closed: one graceful line
on what was open last time (a booking under way, an order they asked about), so the new
session starts where the last one stood. A conversation still with an advisor gets no
line at all: the advisor answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from salon.conversation.greetings import Reply
from salon.conversation.phrasing import address
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


def recall(record: ClientRecord | None, last: LastTime, language: str) -> Reply | None:
    """The welcome-back line, or None when nothing was left open."""
    fr = language == "fr"
    name = f" {address(record, language)}" if record is not None else ""
    hello = f"Bon retour{name}." if fr else f"Welcome back{',' if name else ''}{name}."
    if last.booking_service:
        where = f" à {last.booking_city}" if fr and last.booking_city else (
            f" in {last.booking_city}" if last.booking_city else "")
        if fr:
            return Reply(f"{hello} La dernière fois, nous préparions votre rendez-vous "
                         f"({last.booking_service.lower()}{where}). Souhaitez-vous le poursuivre ?",
                         [{"title": "Poursuivre", "payload": "/book_appointment"},
                          {"title": "Autre chose", "payload": "/deny"}])
        return Reply(f"{hello} Last time we were arranging your {last.booking_service.lower()}{where}. "
                     "Shall we continue?",
                     [{"title": "Continue booking", "payload": "/book_appointment"},
                      {"title": "Something else", "payload": "/deny"}])
    if last.order_number:
        payload = f'/check_order_status{{"order_number": "{last.order_number}"}}'
        if fr:
            return Reply(f"{hello} Souhaitez-vous des nouvelles de votre commande {last.order_number} ?",
                         [{"title": "Oui, volontiers", "payload": payload},
                          {"title": "Autre chose", "payload": "/deny"}])
        return Reply(f"{hello} Would you like the latest on your order {last.order_number}?",
                     [{"title": "Yes, please", "payload": payload},
                      {"title": "Something else", "payload": "/deny"}])
    return None
