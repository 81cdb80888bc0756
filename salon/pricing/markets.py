"""The market a recipient is billed in: the region of her country calling code.

Meta prices a message by the recipient's country calling code. A phone number's region
comes from ``phonenumbers`` (``+1 212…`` is the United States, ``+1 876…`` Jamaica); a
business-scoped user id carries its country first (``FR.5772156649015328606``). The rate
card's ``markets.yml`` says which market each region is billed in.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import phonenumbers

from salon.pricing.card import RateCard

__all__ = ["market_of", "region_of"]

_BSUID: Final = re.compile(r"^([A-Za-z]{2})\.")
_DIGITS: Final = re.compile(r"^\+?([0-9]{6,20})$")


@lru_cache(maxsize=65536)
def region_of(recipient: str | None) -> str | None:
    """The ISO region of a phone number (digits, ``+`` optional) or of a BSUID's country
    prefix; None when neither says one.
    """
    if not recipient:
        return None
    found = _BSUID.match(recipient)
    if found:
        return found.group(1).upper()
    digits = _DIGITS.match(recipient.strip())
    if not digits:
        return None
    try:
        number = phonenumbers.parse("+" + digits.group(1), None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region and region != "ZZ":
        return str(region)
    # A number the metadata cannot place (a test range): its calling code's main region.
    if number.country_code is None:
        return None
    main = phonenumbers.region_code_for_country_code(number.country_code)
    return str(main) if main and main != "ZZ" else None


def market_of(recipient: str | None, card: RateCard) -> str:
    """The card's market for ``recipient`` (its default market when nothing places her)."""
    return card.market_of_region(region_of(recipient))
