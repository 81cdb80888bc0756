"""What the emulated account keeps: its clients, the business's outbox entries, uploaded
media and the client's messages as the thread shows them, and the error of a bad admin
request.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from salon.emulator.payloads import Contact

__all__ = [
    "AdminError",
    "Client",
    "InboundRecord",
    "MediaItem",
    "OutboundMessage",
    "ThreadInbound",
    "opt_str",
]


class AdminError(Exception):
    """A bad ``/_emulator/`` request."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Client:
    """A WhatsApp user as the emulator knows them."""

    key: str
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    name: str | None = None
    marketing_stopped: bool = False
    referral_at: datetime | None = None
    first_reply_at: datetime | None = None
    inbound_count: int = 0
    outbound_count: int = 0
    #: A username-only client: the business does not know the phone number (webhooks and
    #: statuses carry no ``from`` / ``wa_id`` / ``recipient_id``). Set by each inbound
    #: message's ``bsuid_only``; cleared when the business sends to the phone number or the
    #: client shares it (contact-information request).
    bsuid_only: bool = False
    #: Last marketing template that counts towards the per-user cap (131049).
    last_marketing_at: datetime | None = None

    def contact(self, *, include_wa_id: bool = True) -> Contact:
        return Contact(
            wa_id=self.wa_id if include_wa_id else None,
            user_id=self.user_id,
            parent_user_id=self.parent_user_id,
            name=self.name,
        )

    @property
    def known_phone(self) -> str | None:
        """The phone number as the business may see it (None for a username-only client)."""
        return None if self.bsuid_only else self.wa_id

    def visible_contact(self) -> Contact:
        """The client as the business's webhooks show them."""
        return self.contact(include_wa_id=not self.bsuid_only)

    def view(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "wa_id": self.wa_id,
            "user_id": self.user_id,
            "parent_user_id": self.parent_user_id,
            "name": self.name,
            "bsuid_only": self.bsuid_only,
            "marketing_stopped": self.marketing_stopped,
        }


@dataclass
class MediaItem:
    """An uploaded (or client-sent) file, served back by its Graph media id."""

    id: str
    data: bytes
    mime_type: str
    filename: str | None
    created_at: datetime

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode("ascii")


@dataclass
class OutboundMessage:
    """One message the business sent (accepted or rejected)."""

    seq: int
    wamid: str | None
    phone_number_id: str
    to: str | None
    client_key: str | None
    type: str
    payload: Any
    sent_at: datetime
    status: str = "accepted"
    error_code: int | None = None
    error_details: str | None = None
    template: str | None = None
    language: str | None = None
    category: str = "service"
    body: str | None = None
    header: str | None = None
    footer: str | None = None
    buttons: list[str] = field(default_factory=list)
    #: what a client can tap: ``{"kind", "id", "title", "description"?, "payload"?}``
    options: list[dict[str, Any]] = field(default_factory=list)
    in_window: bool = False
    fep: bool = False
    statuses: list[dict[str, str]] = field(default_factory=list)
    #: why an accepted message never reached the client (``status: "dropped"``)
    drop_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "wamid": self.wamid,
            "to": self.to,
            "type": self.type,
            "template": self.template,
            "language": self.language,
            "category": self.category,
            "body": self.body,
            "header": self.header,
            "footer": self.footer,
            "buttons": self.buttons,
            "payload": self.payload,
            "status": self.status,
            "error_code": self.error_code,
            "error_details": self.error_details,
            "sent_at": self.sent_at.isoformat(),
            "in_window": self.in_window,
            "statuses": self.statuses,
            "drop_reason": self.drop_reason,
        }


@dataclass(frozen=True)
class InboundRecord:
    """A message the business received, by wamid: who sent it, to which number, when,
    and whether the business marked it read.
    """

    client_key: str
    phone_number_id: str
    at: datetime
    read_by_business: bool = False


@dataclass(frozen=True)
class ThreadInbound:
    """A message of the thread that went through no Graph API call, as the phone page
    shows it (``GET /_emulator/thread``): the client's, or one an advisor sent from the
    WhatsApp Business app (``from_business``).
    """

    client_key: str
    message: dict[str, Any]
    at: datetime
    #: how many outbox entries existed when it arrived: its place in the thread
    after_outbound: int
    #: sent by the business from the WhatsApp Business app (an echo), not by the client
    from_business: bool = False


def opt_str(value: Any, name: str) -> str | None:
    """The optional string field ``name`` of an admin request (a number is accepted for
    ``from``); :class:`AdminError` when it is something else.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and name == "from":
        return str(value)
    if not isinstance(value, str):
        raise AdminError(f"{name} must be a string")
    return value
