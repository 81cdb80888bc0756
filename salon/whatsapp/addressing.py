"""Whom a Graph API send goes to, written the way Meta reads it.

Since 2026 a client may be known by a business-scoped user id (BSUID, ``FR.5772…``) and
no phone number. Meta takes a phone number in ``to`` and a BSUID in ``recipient`` (with
``recipient_type: "individual"``). A BSUID put in ``to`` is answered 200 with a message id
and then dropped (Meta reads it as a phone number): the client gets nothing. So this
module is the one place that writes a recipient into a request body:

- phone known → ``to`` (Meta gives ``to`` precedence, and a phone reaches every client
  version), whether or not a BSUID is known too;
- BSUID only → ``recipient`` + ``recipient_type: "individual"``, and no ``to``.

:class:`Recipient` is built from what the client's session and the caller know; every send
path (assistant replies, templates, nudges and parked deliveries, the outbound worker,
advisor replies, re-routes after 131047) goes through
:class:`salon.guard.sender.GuardedSender`, which builds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from salon.identity import ClientRef
from salon.window.state import SessionState

__all__ = ["Recipient", "is_bsuid", "is_phone"]

#: A BSUID: the country code, a dot, up to 128 letters and digits; a parent BSUID (shared
#: across a business portfolio) has ``ENT.`` after the country code.
_BSUID: Final = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
#: A WhatsApp id (wa_id): the phone number in international form, digits only.
_PHONE: Final = re.compile(r"^\d{6,15}$")


def is_bsuid(value: str) -> bool:
    """``FR.5772156649015328606`` (or a parent ``FR.ENT.…``)."""
    return bool(_BSUID.match(value))


def is_phone(value: str) -> bool:
    """A wa_id: 6 to 15 digits, no ``+``."""
    return bool(_PHONE.match(value))


@dataclass(frozen=True, slots=True)
class Recipient:
    """The ids a send can be addressed by: the phone number (wa_id), the BSUID, or both."""

    wa_id: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if self.wa_id is not None and not is_phone(self.wa_id):
            raise ValueError("a wa_id is a phone number in digits (a BSUID goes in user_id)")
        if self.wa_id is None and self.user_id is None:
            raise ValueError("a recipient needs a phone number or a BSUID")

    @classmethod
    def of(cls, ref: ClientRef, state: SessionState | None = None) -> Recipient:
        """What the client's session and the caller know, the session first (it holds
        the ids the client last wrote from). A "wa_id" that is in fact a BSUID (an id
        passed along without its kind) is taken for what it is.
        """
        ids = [state.wa_id, state.user_id] if state is not None else []
        ids += [ref.wa_id, ref.user_id]
        phone = next((i for i in ids if i and is_phone(i)), None)
        bsuid = next((i for i in ids if i and not is_phone(i)), None)
        return cls(phone, bsuid)

    @property
    def id(self) -> str:
        """The id the request addresses (the phone number when known)."""
        return self.wa_id or self.user_id or ""

    def fields(self) -> dict[str, str]:
        """The recipient fields of a ``POST /{phone-number-id}/messages`` body."""
        if self.wa_id is not None:
            return {"recipient_type": "individual", "to": self.wa_id}
        assert self.user_id is not None
        return {"recipient_type": "individual", "recipient": self.user_id}
