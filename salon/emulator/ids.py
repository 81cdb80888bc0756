"""Identifiers that look like Meta's: message ids (``wamid.…``), media and template ids,
trace ids and business-scoped user ids.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
from typing import Final

__all__ = [
    "bsuid_read_as_phone",
    "country_of",
    "fbtrace_id",
    "is_bsuid",
    "new_bsuid",
    "new_call_id",
    "new_numeric_id",
    "new_parent_bsuid",
    "new_wamid",
    "normalise_recipient",
]

_BSUID: Final = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
_PHONE_NOISE: Final = re.compile(r"[\s\-().]")
_DIGITS: Final = re.compile(r"^\d{6,15}$")
#: Calling code → ISO 3166 alpha-2 (longest prefix wins), for the country prefix of the
#: BSUIDs the emulator makes up; unknown codes give ``XX``.
_CALLING_CODES: Final[dict[str, str]] = {
    "1": "US",
    "7": "RU",
    "31": "NL",
    "32": "BE",
    "33": "FR",
    "34": "ES",
    "39": "IT",
    "41": "CH",
    "43": "AT",
    "44": "GB",
    "45": "DK",
    "46": "SE",
    "47": "NO",
    "49": "DE",
    "52": "MX",
    "55": "BR",
    "61": "AU",
    "65": "SG",
    "81": "JP",
    "82": "KR",
    "86": "CN",
    "91": "IN",
    "351": "PT",
    "352": "LU",
    "353": "IE",
    "377": "MC",
    "852": "HK",
    "966": "SA",
    "971": "AE",
    "972": "IL",
    "974": "QA",
}


def new_wamid(phone: str | None = None) -> str:
    """``wamid.`` + base64 of a short binary record holding the counterpart's number and a
    random message key, the way Meta's ids are built (``wamid.HBgL…``).
    """
    number = (phone or "0").encode("ascii", "replace")[:20]
    key = secrets.token_hex(10).upper().encode("ascii")
    raw = b"\x1c\x18" + bytes([len(number)]) + number + b"\x15\x02\x00\x12\x18\x14" + key + b"\x00"
    return "wamid." + base64.b64encode(raw).decode("ascii")


def new_numeric_id(digits: int = 16) -> str:
    """A Graph object id (media, template): decimal digits, no leading zero."""
    first = secrets.choice("123456789")
    return first + "".join(secrets.choice(string.digits) for _ in range(digits - 1))


def fbtrace_id() -> str:
    """A random ``fbtrace_id`` for a Graph error body (23 URL-safe characters)."""
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(secrets.choice(alphabet) for _ in range(23))


def new_bsuid(country: str = "FR") -> str:
    """A new business-scoped user id (``CC.<19 digits>``)."""
    return f"{country}.{new_numeric_id(19)}"


def new_parent_bsuid(country: str = "FR") -> str:
    """A parent BSUID (``CC.ENT.<digits>``, shared across linked business portfolios)."""
    return f"{country}.ENT.{new_numeric_id(20)}"


def country_of(identity: str | None) -> str:
    """The ISO country of a phone number (by calling code) or of a BSUID (its prefix)."""
    if not identity:
        return "XX"
    if is_bsuid(identity):
        return identity[:2]
    digits = identity.lstrip("+")
    for length in (3, 2, 1):
        found = _CALLING_CODES.get(digits[:length])
        if found:
            return found
    return "XX"


def bsuid_read_as_phone(bsuid: str) -> str:
    """What Meta makes of a BSUID put in ``to``: it drops the country prefix (and a parent
    id's ``ENT.``) and reads the rest as a phone number.
    """
    rest = bsuid.split(".", 1)[1] if "." in bsuid else bsuid
    rest = rest.removeprefix("ENT.")
    return re.sub(r"\D", "", rest) or rest


def new_call_id() -> str:
    """``wacid.`` + an opaque base64url key, like Meta's call ids."""
    return "wacid." + base64.urlsafe_b64encode(secrets.token_bytes(18)).decode("ascii").rstrip("=")


def is_bsuid(value: str) -> bool:
    """``US.13491208655302741918`` / ``US.ENT.118…`` (a country code, a dot, an id)."""
    return bool(_BSUID.match(value))


def normalise_recipient(value: str) -> tuple[str, str] | None:
    """``("phone", digits)`` or ``("bsuid", id)`` for a ``to``/``recipient`` value, or
    None when it is neither. A leading ``+`` and blanks, dashes, dots, parentheses in a
    phone number are dropped, as Meta does.
    """
    text = value.strip()
    if is_bsuid(text):
        return ("bsuid", text)
    digits = _PHONE_NOISE.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
    if _DIGITS.match(digits):
        return ("phone", digits)
    return None
