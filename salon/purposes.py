"""What a message is for, and the template category each purpose calls for.

Every outgoing message carries a purpose. :data:`SERVICE_REPLY` is the assistant's or an
advisor's reply to a client who wrote: it goes free-form inside the window and never as a
template. Every other purpose is something the maison starts; it maps to one of Meta's
template categories (:data:`PURPOSE_CATEGORY`), which decides both the consent it needs
(a marketing purpose needs a marketing opt-in) and the templates that may carry it once
the window is closed.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUTHENTICATION",
    "CATEGORIES",
    "MARKETING",
    "NUDGE_PURPOSE",
    "PURPOSES",
    "PURPOSE_CATEGORY",
    "SERVICE_REPLY",
    "UTILITY",
    "is_marketing",
]

MARKETING: Final = "MARKETING"
"""Meta's category for news, offers and invitations (billed highest, opt-in needed)."""

UTILITY: Final = "UTILITY"
"""Meta's category for a transaction the client started: orders, bookings, aftercare."""

AUTHENTICATION: Final = "AUTHENTICATION"
"""Meta's category for one-time codes (Salon sends none, but a synced template may be one)."""

CATEGORIES: Final = frozenset({MARKETING, UTILITY, AUTHENTICATION})

SERVICE_REPLY: Final = "service_reply"
"""A conversational reply to a client who wrote (free-form only)."""

PURPOSE_CATEGORY: Final[dict[str, str]] = {
    "reengage_update": UTILITY,
    "reengage_marketing": MARKETING,
    "order_update": UTILITY,
    "order_shipped": UTILITY,
    "order_ready": UTILITY,
    "appointment_reminder": UTILITY,
    "appointment_confirmation": UTILITY,
    "restock_alert": UTILITY,
    "aftercare_update": UTILITY,
    "advisor_followup": UTILITY,
    "event_invitation": MARKETING,
    "new_collection": MARKETING,
}
"""The purposes the maison starts and the template category each one calls for."""

PURPOSES: Final = frozenset(PURPOSE_CATEGORY)
"""The purposes an outbound request may carry."""

NUDGE_PURPOSE: Final = {False: "reengage_update", True: "reengage_marketing"}
"""The re-engagement template's purpose, by whether the parked content is marketing."""


def is_marketing(purpose: str) -> bool:
    """Whether ``purpose`` belongs to the marketing category (it then needs a marketing opt-in)."""
    return PURPOSE_CATEGORY.get(purpose) == MARKETING
