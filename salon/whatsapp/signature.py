r"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw request body with the app secret.

Meta computes the signature over the bytes it sends (non-ASCII escaped as ``\uXXXX``),
so the check must run on the raw body as received, never on re-serialised JSON.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="


class SignatureCheck(str, Enum):
    """The result of checking a webhook's ``X-Hub-Signature-256`` header."""

    VALID = "valid"
    MISSING = "missing"
    INVALID = "invalid"


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta would send for ``body``."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def check_signature(body: bytes, header: str | None, app_secret: str) -> SignatureCheck:
    """Compare ``header`` with the expected signature in constant time."""
    if not header:
        return SignatureCheck.MISSING
    value = header.strip()
    if not value.lower().startswith(PREFIX):
        return SignatureCheck.INVALID
    given = value[len(PREFIX) :].strip().lower()
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii")):
        return SignatureCheck.VALID
    return SignatureCheck.INVALID


def refusal(check: SignatureCheck) -> tuple[int, str] | None:
    """The answer to a webhook whose signature is missing (401) or wrong (403); None when
    it is valid.
    """
    if check is SignatureCheck.MISSING:
        return 401, "signature missing"
    if check is SignatureCheck.INVALID:
        return 403, "signature invalid"
    return None
