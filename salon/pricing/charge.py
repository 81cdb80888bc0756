"""The estimated charge of one message, decided before it leaves.

Meta's rules (../shared/reference/whatsapp-platform.md §1.3–1.4, whatsapp-2026.md §2), as
the rate card in force states them:

- inside a free entry point (72 h after our reply to a Click-to-WhatsApp ad or a Page
  button) every message is free (``free_entry_point``);
- a free-form message is category ``service``: free on a card whose policy makes service
  free (``free_customer_service``), else billed at the card's service rate (since
  2026-10-01, the market's utility rate);
- a utility template delivered inside an open window is free on a card that says so,
  billed otherwise; outside the window it is always billed;
- marketing and authentication templates are always billed.

The estimate is kept with the outbound record; what Meta actually bills arrives later in
the status webhooks' ``pricing`` object (:mod:`salon.pricing.ledger`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Final

from babel.numbers import format_currency

from salon.pricing.card import (
    AUTHENTICATION,
    DEFAULT_DIRECTORY,
    MARKETING,
    MICROS,
    SERVICE,
    UTILITY,
    RateCard,
)
from salon.window.rules import WindowState

__all__ = [
    "FREE_CUSTOMER_SERVICE",
    "FREE_ENTRY_POINT",
    "REGULAR",
    "Charge",
    "billing_category",
    "charge_for",
    "default_card",
    "format_money",
]

REGULAR: Final = "regular"
FREE_CUSTOMER_SERVICE: Final = "free_customer_service"
FREE_ENTRY_POINT: Final = "free_entry_point"
PRICING_TYPES: Final = (REGULAR, FREE_CUSTOMER_SERVICE, FREE_ENTRY_POINT)

_TEMPLATE_CATEGORY: Final = {"MARKETING": MARKETING, "UTILITY": UTILITY, "AUTHENTICATION": AUTHENTICATION}


@dataclass(frozen=True, slots=True)
class Charge:
    """What one message is expected to cost: Meta's ``category`` and pricing ``type``,
    whether it is billable, the market and the amount in micros of ``currency``.
    """

    category: str
    pricing_type: str
    billable: bool
    market: str
    cost_micros: int
    currency: str

    @property
    def free(self) -> bool:
        return not self.billable

    @property
    def cost(self) -> Decimal:
        return Decimal(self.cost_micros) / MICROS

    def columns(self) -> dict[str, object]:
        """The outbound record's estimate columns."""
        return {"market": self.market, "price_category": self.category, "price_type": self.pricing_type,
                "cost_micros": self.cost_micros, "currency": self.currency}


def billing_category(template_category: str | None) -> str:
    """Meta's billing category of a message: ``service`` for free-form, else the
    template's category in lower case (``MARKETING`` → ``marketing``).
    """
    if template_category is None:
        return SERVICE
    try:
        return _TEMPLATE_CATEGORY[template_category.upper()]
    except KeyError:
        raise ValueError(f"unknown template category {template_category!r}") from None


def charge_for(*, template_category: str | None, window: WindowState | None, market: str, at: datetime,
               card: RateCard) -> Charge:
    """The charge of one message sent at ``at`` (see the module docstring).

    ``template_category``: the template's category, None for a free-form message;
    ``window``: the client's window at ``at`` (None: she never wrote).
    """
    category = billing_category(template_category)
    currency = card.currency
    if window is not None and window.fep_active:
        return Charge(category, FREE_ENTRY_POINT, False, market, 0, currency)
    policy = card.policy_at(at)
    in_window = window is not None and window.is_open
    if category == SERVICE:
        billed = policy.service_billed
    elif category == UTILITY:
        billed = not in_window or policy.utility_in_window_billed
    else:
        billed = True
    if not billed:
        return Charge(category, FREE_CUSTOMER_SERVICE, False, market, 0, currency)
    return Charge(category, REGULAR, True, market, card.rate(market, category, at), currency)


@lru_cache(maxsize=4)
def _load(directory: str) -> RateCard:
    return RateCard.load(directory)


def default_card(directory: Path | str | None = None) -> RateCard:
    """The rate card of ``directory`` (``SALON_PRICING_DIR``, else ``data/pricing``),
    loaded once per process.
    """
    chosen = directory or os.environ.get("SALON_PRICING_DIR") or DEFAULT_DIRECTORY
    return _load(str(Path(chosen).resolve()))


def format_money(micros: int, currency: str, locale: str = "en") -> str:
    """``micros`` of ``currency`` as the locale writes money, to the cent or, below a
    cent, to four decimals ("$0.0300", "0,03 $US", "€12.50").
    """
    amount = Decimal(micros) / MICROS
    pattern = None if micros == 0 or micros % 10_000 == 0 else "¤#,##0.0000"
    if pattern is not None and locale.split("_")[0] in ("fr", "it", "de", "es"):
        pattern = "#,##0.0000 ¤"
    return format_currency(amount, currency, format=pattern, locale=locale, currency_digits=pattern is None)
