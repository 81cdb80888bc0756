"""Meta's rate card as data: what one delivered message costs, by market, category and date.

``data/pricing/`` holds one YAML file per effective date (``2026-10-01.yml`` …) and
``markets.yml`` (which market each region is billed in, and the business account's time
zone). A quarterly update of Meta's card is a new file there, nothing else.

Each card names its currency, its source (and whether its figures are illustrative), a
``policy`` (whether free-form replies inside the window, and utility templates delivered
inside it, are billed on that card) and, per market, the rate of each category. Rates are
decimal strings in the file and integer *micros* (millionths of the currency) here, so sums
are exact.

A card applies from midnight of its ``effective_from`` date in the business account's time
zone until the next card's. Loading fails with the file and the reason for a card that
misses a category, names a market ``markets.yml`` does not know, mixes currencies, or
repeats a date: a wrong card must not price anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from salon.config import PROJECT_ROOT

logger = logging.getLogger(__name__)

__all__ = [
    "AUTHENTICATION",
    "AUTHENTICATION_INTERNATIONAL",
    "BILLING_CATEGORIES",
    "DEFAULT_DIRECTORY",
    "MARKETING",
    "SERVICE",
    "UTILITY",
    "Card",
    "Market",
    "Policy",
    "RateCard",
    "RateCardError",
    "to_micros",
]

MARKETING: Final = "marketing"
UTILITY: Final = "utility"
AUTHENTICATION: Final = "authentication"
AUTHENTICATION_INTERNATIONAL: Final = "authentication_international"
SERVICE: Final = "service"
"""Meta's name for a free-form message (not a template) inside the customer service window."""
BILLING_CATEGORIES: Final = (MARKETING, UTILITY, AUTHENTICATION, AUTHENTICATION_INTERNATIONAL, SERVICE)
_REQUIRED: Final = (MARKETING, UTILITY, AUTHENTICATION, SERVICE)
"""Every market of a card prices these; ``authentication_international`` only where Meta
has such a rate (elsewhere the authentication rate applies)."""

DEFAULT_DIRECTORY: Final = PROJECT_ROOT / "data" / "pricing"
MICROS: Final = Decimal(1_000_000)


class RateCardError(ValueError):
    """A rate card or the market map cannot be used: the file and the reason."""


def to_micros(value: Any, where: str) -> int:
    """A decimal amount (``"0.0859"``; never a float) in micros; anything else raises."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RateCardError(f"{where}: {value!r} is not a decimal string")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RateCardError(f"{where}: {value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise RateCardError(f"{where}: {value!r} must be a finite amount ≥ 0")
    micros = amount * MICROS
    if micros != micros.to_integral_value():
        raise RateCardError(f"{where}: {value!r} has more than 6 decimals")
    return int(micros)


@dataclass(frozen=True, slots=True)
class Policy:
    """What a card makes free: free-form replies in the window (``service_billed``
    False) and utility templates delivered inside an open window (``utility_in_window_billed``
    False).
    """

    service_billed: bool
    utility_in_window_billed: bool


@dataclass(frozen=True, slots=True)
class Market:
    """A market of the card: its code (``FR``, ``WE``) and Meta's name for it."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Card:
    """One card: effective from ``starts`` (an instant) until the next card's."""

    effective_from: date
    starts: datetime
    currency: str
    source: str
    illustrative: bool
    policy: Policy
    rates: Mapping[str, Mapping[str, int]]
    """market → category → micros."""
    path: Path

    def rate(self, market: str, category: str) -> int:
        row = self.rates.get(market)
        if row is None:
            raise KeyError(f"market {market!r} is not on the card of {self.effective_from}")
        if category == AUTHENTICATION_INTERNATIONAL and category not in row:
            category = AUTHENTICATION
        if category not in row:
            raise KeyError(f"category {category!r} is not on the card of {self.effective_from}")
        return row[category]


class RateCard:
    """Every card of a directory, with the market map; :meth:`at` picks the card in force."""

    def __init__(self, cards: list[Card], markets: Mapping[str, Market], regions: Mapping[str, str],
                 default_market: str, zone: ZoneInfo) -> None:
        if not cards:
            raise RateCardError("no rate card")
        self.cards = sorted(cards, key=lambda card: card.starts)
        self.markets = dict(markets)
        self.regions = dict(regions)
        """ISO region (``FR``) → market code."""
        self.default_market = default_market
        self.zone = zone
        currencies = {card.currency for card in self.cards}
        if len(currencies) != 1:
            raise RateCardError(f"the cards mix currencies: {sorted(currencies)}")
        self.currency = self.cards[0].currency

    @classmethod
    def load(cls, directory: Path | str | None = None) -> RateCard:
        """The cards of ``directory`` (default ``data/pricing``); raises
        :class:`RateCardError` naming the file and the problem.
        """
        root = Path(directory) if directory is not None else DEFAULT_DIRECTORY
        markets_file = root / "markets.yml"
        raw_markets = _read(markets_file)
        zone_name = raw_markets.get("billing_time_zone", "UTC")
        try:
            zone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            raise RateCardError(f"{markets_file}: unknown billing_time_zone {zone_name!r}") from None
        markets: dict[str, Market] = {}
        regions: dict[str, str] = {}
        entries = raw_markets.get("markets")
        if not isinstance(entries, Mapping) or not entries:
            raise RateCardError(f"{markets_file}: 'markets' must map market codes to their regions")
        for code, entry in entries.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise RateCardError(f"{markets_file}: market {code!r} needs a name")
            markets[str(code)] = Market(str(code), entry["name"])
            for region in entry.get("regions") or []:
                if region in regions:
                    raise RateCardError(f"{markets_file}: region {region} is in {regions[region]} and {code}")
                regions[str(region)] = str(code)
        default_market = str(raw_markets.get("default_market", ""))
        if default_market not in markets:
            raise RateCardError(f"{markets_file}: default_market {default_market!r} is not a market")
        cards = [_card(path, markets, zone) for path in sorted(root.glob("*.yml")) if path != markets_file]
        seen: dict[date, Path] = {}
        for card in cards:
            if card.effective_from in seen:
                raise RateCardError(f"{card.path}: {card.effective_from} is also {seen[card.effective_from]}")
            seen[card.effective_from] = card.path
        return cls(cards, markets, regions, default_market, zone)

    def at(self, when: datetime) -> Card:
        """The card in force at ``when`` (aware); before the first card, the first."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"when must be timezone-aware, got {when!r}")
        current = self.cards[0]
        for card in self.cards:
            if card.starts <= when:
                current = card
            else:
                break
        return current

    def rate(self, market: str, category: str, when: datetime) -> int:
        """Micros for one delivered message of ``category`` to ``market`` at ``when``."""
        market = market if market in self.markets else self.default_market
        return self.at(when).rate(market, category)

    def policy_at(self, when: datetime) -> Policy:
        return self.at(when).policy

    def market_of_region(self, region: str | None) -> str:
        """The market an ISO region (``FR``, ``GB``) is billed in."""
        if region is None:
            return self.default_market
        return self.regions.get(region.upper(), self.default_market)


def _read(path: Path) -> Mapping[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise RateCardError(f"{path}: missing") from None
    except yaml.YAMLError as exc:
        raise RateCardError(f"{path}: not YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise RateCardError(f"{path}: not a mapping")
    return data


def _card(path: Path, markets: Mapping[str, Market], zone: ZoneInfo) -> Card:
    raw = _read(path)
    effective = raw.get("effective_from")
    if not isinstance(effective, date) or isinstance(effective, datetime):
        raise RateCardError(f"{path}: effective_from must be a date (YYYY-MM-DD)")
    currency = raw.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise RateCardError(f"{path}: currency must be an ISO 4217 code such as USD")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise RateCardError(f"{path}: say where the figures come from (source)")
    policy_raw = raw.get("policy")
    if not isinstance(policy_raw, Mapping):
        raise RateCardError(f"{path}: policy is missing")
    policy = Policy(service_billed=_billed(policy_raw, "service", path),
                    utility_in_window_billed=_billed(policy_raw, "utility_in_window", path))
    rates_raw = raw.get("rates")
    if not isinstance(rates_raw, Mapping):
        raise RateCardError(f"{path}: rates are missing")
    rates: dict[str, dict[str, int]] = {}
    for market, row in rates_raw.items():
        if market not in markets:
            raise RateCardError(f"{path}: market {market!r} is not in markets.yml")
        if not isinstance(row, Mapping):
            raise RateCardError(f"{path}: {market} must map categories to rates")
        unknown = set(row) - set(BILLING_CATEGORIES)
        if unknown:
            raise RateCardError(f"{path}: {market}: unknown categories {sorted(unknown)}")
        missing = [category for category in _REQUIRED if category not in row]
        if missing:
            raise RateCardError(f"{path}: {market}: missing {', '.join(missing)}")
        rates[str(market)] = {str(k): to_micros(v, f"{path}: {market}.{k}") for k, v in row.items()}
    absent = set(markets) - set(rates)
    if absent:
        raise RateCardError(f"{path}: no rates for {', '.join(sorted(absent))}")
    starts = datetime.combine(effective, time(0), tzinfo=zone)
    return Card(effective_from=effective, starts=starts, currency=currency, source=source.strip(),
                illustrative=bool(raw.get("illustrative", False)), policy=policy, rates=rates, path=path)


def _billed(policy: Mapping[str, Any], key: str, path: Path) -> bool:
    value = policy.get(key)
    if value not in ("free", "billed"):
        raise RateCardError(f"{path}: policy.{key} must be 'free' or 'billed', not {value!r}")
    return value == "billed"
