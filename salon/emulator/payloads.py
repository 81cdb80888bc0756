"""Webhook payload builders, field for field like Meta's (see the fixtures in
``shared/fixtures/whatsapp/``): the envelope, inbound messages of each type, statuses,
template lifecycle and ``user_preferences``.

Timestamps: ``messages[].timestamp`` and ``statuses[].timestamp`` are unix seconds as
*strings*; ``entry[].time`` and ``user_preferences[].timestamp`` are integers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

__all__ = [
    "Contact",
    "Metadata",
    "WebhookEvent",
    "build_payload",
    "call_object",
    "contact_object",
    "echo_message",
    "envelope",
    "inbound_message",
    "serialise",
    "sign",
    "status_object",
    "system_message",
    "template_status_value",
    "unix",
    "user_preferences_value",
]

OBJECT: Final = "whatsapp_business_account"


def unix(when: datetime) -> int:
    """Whole seconds since the epoch, as webhook timestamps give them."""
    return int(when.timestamp())


def serialise(payload: Mapping[str, Any]) -> bytes:
    r"""Compact JSON with non-ASCII escaped as ``\uXXXX``, as Meta sends it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` header value for ``body``."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Metadata:
    """The business number a webhook is about (its ``metadata`` object)."""

    display_phone_number: str
    phone_number_id: str

    def as_dict(self) -> dict[str, str]:
        return {
            "display_phone_number": self.display_phone_number,
            "phone_number_id": self.phone_number_id,
        }


@dataclass(frozen=True)
class Contact:
    """A client as webhooks show them (any of wa_id / user_id may be absent)."""

    wa_id: str | None
    user_id: str | None = None
    parent_user_id: str | None = None
    name: str | None = None


def contact_object(contact: Contact, *, with_profile: bool = True) -> dict[str, Any]:
    """One ``contacts[]`` element of a webhook (``profile.name`` unless ``with_profile``
    is false; only the ids the contact has).
    """
    out: dict[str, Any] = {}
    if with_profile:
        out["profile"] = {"name": contact.name or ""}
    if contact.wa_id:
        out["wa_id"] = contact.wa_id
    if contact.user_id:
        out["user_id"] = contact.user_id
    if contact.parent_user_id:
        out["parent_user_id"] = contact.parent_user_id
    return out


def inbound_message(
    contact: Contact,
    *,
    wamid: str,
    timestamp: datetime,
    kind: str,
    content: Any,
    context: Mapping[str, Any] | None = None,
    referral: Mapping[str, Any] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    include_from: bool = True,
) -> dict[str, Any]:
    """One ``messages[]`` element. ``content`` goes under the ``kind`` key."""
    message: dict[str, Any] = {}
    if context:
        message["context"] = dict(context)
    if referral:
        message["referral"] = dict(referral)
    if include_from and contact.wa_id:
        message["from"] = contact.wa_id
    if contact.user_id:
        message["from_user_id"] = contact.user_id
    message["id"] = wamid
    message["timestamp"] = str(unix(timestamp))
    if errors:
        message["errors"] = [dict(e) for e in errors]
    message["type"] = kind
    message[kind] = content
    return message


def system_message(
    *,
    wamid: str,
    timestamp: datetime,
    system: Mapping[str, Any],
    from_phone: str | None = None,
    from_user_id: str | None = None,
) -> dict[str, Any]:
    """One ``messages[]`` element of type ``system`` (identity changes). The webhook that
    carries it has no ``contacts`` array (Meta, system messages reference).
    """
    message: dict[str, Any] = {}
    if from_phone:
        message["from"] = from_phone
    if from_user_id:
        message["from_user_id"] = from_user_id
    message["id"] = wamid
    message["timestamp"] = str(unix(timestamp))
    message["type"] = "system"
    message["system"] = dict(system)
    return message


def echo_message(
    *,
    wamid: str,
    timestamp: datetime,
    business_number: str,
    to: str | None,
    to_user_id: str | None,
    kind: str,
    content: Any,
    to_parent_user_id: str | None = None,
) -> dict[str, Any]:
    """One ``message_echoes[]`` element (``smb_message_echoes``): a message the business
    sent from the WhatsApp Business app. ``to`` is the client's phone number (absent for a
    username-only client), ``to_user_id`` her BSUID when she has one.
    """
    message: dict[str, Any] = {"from": business_number}
    if to:
        message["to"] = to
    if to_user_id:
        message["to_user_id"] = to_user_id
    if to_parent_user_id:
        message["to_parent_user_id"] = to_parent_user_id
    message["id"] = wamid
    message["timestamp"] = str(unix(timestamp))
    message["type"] = kind
    message[kind] = content
    return message


def call_object(
    contact: Contact,
    *,
    call_id: str,
    event: str,
    timestamp: datetime,
    business_number: str,
    include_from: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``calls[]`` element of a user-initiated call (``calls`` webhook field): the
    caller (``from`` omitted for a username-only client), the business number called.
    """
    call: dict[str, Any] = {"id": call_id}
    if include_from and contact.wa_id:
        call["from"] = contact.wa_id
    if contact.user_id:
        call["from_user_id"] = contact.user_id
    if contact.parent_user_id:
        call["from_parent_user_id"] = contact.parent_user_id
    call["to"] = business_number
    call["event"] = event
    call["timestamp"] = str(unix(timestamp))
    call["direction"] = "USER_INITIATED"
    if extra:
        call.update(extra)
    return call


def status_object(
    *,
    wamid: str,
    status: str,
    timestamp: datetime,
    recipient_id: str | None,
    recipient_user_id: str | None = None,
    pricing: Mapping[str, Any] | None = None,
    conversation: Mapping[str, Any] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    biz_opaque_callback_data: str | None = None,
) -> dict[str, Any]:
    """One ``statuses[]`` element."""
    out: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(unix(timestamp))}
    if recipient_id:
        out["recipient_id"] = recipient_id
    if recipient_user_id:
        out["recipient_user_id"] = recipient_user_id
    if biz_opaque_callback_data is not None:
        out["biz_opaque_callback_data"] = biz_opaque_callback_data
    if conversation:
        out["conversation"] = dict(conversation)
    if pricing:
        out["pricing"] = dict(pricing)
    if errors:
        out["errors"] = [dict(e) for e in errors]
    return out


def template_status_value(
    *,
    event: str,
    template_id: str | int,
    name: str,
    language: str,
    category: str,
    reason: str | None = "NONE",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``message_template_status_update`` value (fixture 14 shape)."""
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": int(template_id),
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason,
        "message_template_category": category,
    }
    if extra:
        value.update(extra)
    return value


def user_preferences_value(
    metadata: Metadata, contact: Contact, *, value: str, at: datetime
) -> dict[str, Any]:
    """``user_preferences`` value (fixture 23 shape)."""
    verb = "stop" if value == "stop" else "resume"
    pref: dict[str, Any] = {}
    if contact.wa_id:
        pref["wa_id"] = contact.wa_id
    if contact.user_id:
        pref["user_id"] = contact.user_id
    pref.update(
        {
            "detail": f"User requested to {verb} marketing messages",
            "category": "marketing_messages",
            "value": value,
            "timestamp": unix(at),
        }
    )
    return {
        "messaging_product": "whatsapp",
        "metadata": metadata.as_dict(),
        "contacts": [contact_object(contact, with_profile=False)],
        "user_preferences": [pref],
    }


@dataclass
class WebhookEvent:
    """One update to deliver: a ``changes[]`` element (``field`` + ``value``).

    ``order_key`` groups the events that must reach the bot in order (one client, or
    the account's management events). ``entry_time`` is set for management webhooks
    (``entry[].time``). ``duplicates`` asks for that many extra deliveries of the same
    body.
    """

    field: str
    value: dict[str, Any]
    order_key: str
    entry_time: int | None = None
    duplicates: int = 0
    labels: list[str] = dataclasses.field(default_factory=list)


def envelope(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The top of a webhook body: ``{"object": "whatsapp_business_account", "entry"}``."""
    return {"object": OBJECT, "entry": [dict(e) for e in entries]}


def _entry(waba_id: str, changes: list[dict[str, Any]], time: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": waba_id}
    if time is not None:
        entry["time"] = time
    entry["changes"] = changes
    return entry


def _merge_key(event: WebhookEvent) -> tuple[Any, ...] | None:
    """Events with the same key may share one ``changes[]`` element (same metadata and
    the same list: messages or statuses).
    """
    if event.field != "messages":
        return None
    meta = event.value.get("metadata", {})
    kind = (
        "messages"
        if "messages" in event.value
        else "statuses"
        if "statuses" in event.value
        else None
    )
    if kind is None:
        return None
    return (meta.get("phone_number_id"), kind)


def build_payload(waba_id: str, events: Sequence[WebhookEvent]) -> dict[str, Any]:
    """One POST body for ``events``.

    A single event gives Meta's usual one-entry, one-change payload. Several events
    (batching) are merged the way Meta aggregates updates: message events of the same
    phone number share one change (``messages[]`` concatenated, ``contacts[]`` without
    duplicates), status events another; other fields get a change each; management
    events (with ``entry_time``) go in their own entries.
    """
    messaging_changes: list[dict[str, Any]] = []
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    management_entries: list[dict[str, Any]] = []
    for event in events:
        if event.entry_time is not None:
            management_entries.append(
                _entry(waba_id, [{"value": event.value, "field": event.field}], event.entry_time)
            )
            continue
        key = _merge_key(event)
        if key is None or key not in merged:
            value = json.loads(json.dumps(event.value))  # private copy before merging into it
            change = {"value": value, "field": event.field}
            messaging_changes.append(change)
            if key is not None:
                merged[key] = value
            continue
        target = merged[key]
        list_name = key[1]
        target[list_name].extend(event.value.get(list_name, []))
        if "contacts" in event.value:
            contacts = target.setdefault("contacts", [])
            for contact in event.value["contacts"]:
                if contact not in contacts:
                    contacts.append(contact)
    entries: list[dict[str, Any]] = []
    if messaging_changes:
        entries.append(_entry(waba_id, messaging_changes, None))
    entries.extend(management_entries)
    return envelope(entries)
