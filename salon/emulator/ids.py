"""Identifiers that look like Meta's: message ids (``wamid.…``), media and template ids,
trace ids and business-scoped user ids."""

from __future__ import annotations

import base64
import re
import secrets
import string
from typing import Final

__all__ = [
    "fbtrace_id",
    "is_bsuid",
    "new_bsuid",
    "new_numeric_id",
    "new_wamid",
    "normalise_recipient",
]

_BSUID: Final = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
_PHONE_NOISE: Final = re.compile(r"[\s\-().]")
_DIGITS: Final = re.compile(r"^\d{6,15}$")


def new_wamid(phone: str | None = None) -> str:
    """``wamid.`` + base64 of a short binary record holding the counterpart's number and a
    random message key, the way Meta's ids are built (``wamid.HBgL…``)."""
    number = (phone or "0").encode("ascii", "replace")[:20]
    key = secrets.token_hex(10).upper().encode("ascii")
    raw = b"\x1c\x18" + bytes([len(number)]) + number + b"\x15\x02\x00\x12\x18\x14" + key + b"\x00"
    return "wamid." + base64.b64encode(raw).decode("ascii")


def new_numeric_id(digits: int = 16) -> str:
    """A Graph object id (media, template): decimal digits, no leading zero."""
    first = secrets.choice("123456789")
    return first + "".join(secrets.choice(string.digits) for _ in range(digits - 1))


def fbtrace_id() -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(secrets.choice(alphabet) for _ in range(23))


def new_bsuid(country: str = "FR") -> str:
    return f"{country}.{new_numeric_id(19)}"


def is_bsuid(value: str) -> bool:
    """``US.13491208655302741918`` / ``US.ENT.118…`` (a country code, a dot, an id)."""
    return bool(_BSUID.match(value))


def normalise_recipient(value: str) -> tuple[str, str] | None:
    """``("phone", digits)`` or ``("bsuid", id)`` for a ``to``/``recipient`` value, or
    None when it is neither. A leading ``+`` and blanks, dashes, dots, parentheses in a
    phone number are dropped, as Meta does."""
    text = value.strip()
    if is_bsuid(text):
        return ("bsuid", text)
    digits = _PHONE_NOISE.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
    if _DIGITS.match(digits):
        return ("phone", digits)
    return None
