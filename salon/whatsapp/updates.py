"""Webhook payloads → typed events.

Meta batches up to 1,000 updates per POST, across several ``entry``/``changes`` and
``messages``/``statuses`` arrays, and every kind of update shares one envelope. This
module walks all of it and returns what each part means for Salon:

- :class:`InboundMessage`: a client message, with the text the assistant receives (the
  body, a button payload that triggers an intent, or an intent trigger for media,
  locations, contacts, orders and unsupported messages) and the metadata it carries.
  Only our own payloads (the ids of the reply buttons and list rows we sent, a template's
  quick-reply payload) and our own triggers reach the assistant as ``/intent{...}``:
  text the client typed (a message, a caption) never does (:func:`typed_text`);
- :class:`StatusUpdate`: sent/delivered/read/played/failed for one of our messages;
- :class:`TemplateEvent`: template status, quality, category and component changes;
- :class:`PreferenceUpdate`: a client stopped or resumed marketing messages;
- :class:`AccountError`: ``value.errors`` (system, app or account level);
- :class:`MessageEcho`: a message the business sent from the WhatsApp Business app on the
  same number (coexistence, ``smb_message_echoes``): what an advisor typed on the phone.
  It is the maison's message, not the client's: it neither opens nor extends her window.

Anything malformed is reported in :attr:`WebhookBatch.rejected` with a reason; the rest of
the batch is kept. Every field is read with its type checked (ids are bounded strings,
timestamps Unix seconds, arrays arrays): a wrong type rejects its own item, never the
batch and never the process. Bodies nested deeper than :data:`MAX_JSON_DEPTH` are refused
whole, and text that no store can hold (NUL characters, lone surrogates) is replaced by
U+FFFD before anything reads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from salon.clock import from_unix
from salon.identity import ClientRef
from salon.whatsapp.addressing import is_bsuid, is_phone
from salon.whatsapp.errors import WhatsAppError, from_status_error
from salon.window.rules import (
    ENTRY_CTWA_AD,
    ENTRY_ORGANIC,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "MEDIA_TYPES",
    "IDENTITY_CHANGES",
    "AccountError",
    "ECHO_FIELD",
    "ECHO_MARK",
    "IdentityChange",
    "InboundMessage",
    "MessageEcho",
    "PreferenceUpdate",
    "StatusUpdate",
    "TemplateEvent",
    "WebhookBatch",
    "WebhookFormatError",
    "parse_webhook",
    "typed_text",
]

MAX_JSON_DEPTH: Final = 32
"""Meta's payloads nest about eight levels; anything far deeper is not a webhook."""
MAX_ID_LENGTH: Final = 200
"""wamids, BSUIDs and the other ids (the columns that keep them hold 200 characters)."""
MAX_TIMESTAMP: Final = 2**33
"""Unix seconds up to the year 2242: anything later is not a real timestamp."""
MAX_ERROR_CODE: Final = 2**31 - 1

MEDIA_TYPES: Final = frozenset({"image", "video", "audio", "document", "sticker"})
TEMPLATE_FIELDS: Final = frozenset(
    {
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
        "message_template_components_update",
    }
)

ECHO_FIELD: Final = "smb_message_echoes"
"""The webhook field of the messages sent from the WhatsApp Business app (coexistence)."""
ECHO_MARK: Final = "echo"
"""The metadata key (value ``True``) that marks an echo; never set on a client's message."""
_ECHO_TYPE: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")

# Intent triggers for messages that carry no text for the language model.
TRIGGER_MEDIA: Final = "/share_media"
TRIGGER_LOCATION: Final = "/share_location"
TRIGGER_CONTACT: Final = "/share_contact"
TRIGGER_ORDER: Final = "/place_order"
TRIGGER_UNSUPPORTED: Final = "/unsupported_message"

STATUSES: Final = frozenset({"sent", "delivered", "read", "played", "failed", "deleted", "warning",
                             "accepted", "held_for_quality_assessment", "pending"})

# A BSUID is "<country>.<digits>" (e.g. US.13491208655302741918), optionally with a
# middle segment for parent ids; a wa_id is digits only.


class WebhookFormatError(ValueError):
    """The body is not a WhatsApp Business Account webhook at all."""


@dataclass(frozen=True, slots=True)
class IdentityChange:
    """The client's ids changed, or one was learnt. Meta's ``system`` messages:
    ``user_changed_number`` (a new phone number, and with it a new BSUID),
    ``user_changed_user_id`` (a new BSUID, her phone unchanged or unknown); and
    ``contact_shared``: a username-only client shared her number when we asked.
    """

    kind: str
    before: ClientRef
    after: ClientRef
    parent_user_id: str | None = None
    """Her new parent BSUID (shared across a business portfolio), when Meta sends one."""


IDENTITY_CHANGES: Final = frozenset({"user_changed_number", "user_changed_user_id"})


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A client's message (or a ``system`` message about her ids), with what the assistant
    receives for it.
    """

    wamid: str
    phone_number_id: str
    client: ClientRef
    timestamp: datetime
    type: str
    text: str
    """What the assistant receives: text, a button payload or an ``/intent`` trigger."""
    metadata: dict[str, Any]
    starts_turn: bool = True
    """False for updates that need no answer (reactions, number changes)."""
    extends_window: bool = True
    """Whether this opens or refreshes the customer service window (reactions: no)."""
    entry_point: str = ENTRY_ORGANIC
    profile_name: str | None = None
    identity_change: IdentityChange | None = None
    """Set on a ``system`` message that changes the client's ids."""

    @property
    def sender_id(self) -> str:
        """The conversation id: the BSUID when Meta sends one, else the wa_id."""
        return self.client.user_id or self.client.wa_id or ""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A status of one of our messages: sent, delivered, read, played or failed (with
    Meta's errors).
    """

    wamid: str
    status: str
    timestamp: datetime
    phone_number_id: str
    recipient_id: str | None
    """The phone number the message went to (``recipient_id``; Meta sends it only when the
    phone is known), or the BSUID when that is all the status carries."""
    errors: tuple[WhatsAppError, ...] = ()
    pricing: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    recipient_user_id: str | None = None
    """``recipient_user_id``: the client's BSUID, when Meta sends it."""

    @property
    def client(self) -> ClientRef | None:
        """The client with every id the status carries."""
        if not self.phone_number_id:
            return None
        wa_id = self.recipient_id if self.recipient_id and not is_bsuid(self.recipient_id) else None
        user_id = self.recipient_user_id or (
            self.recipient_id if self.recipient_id and is_bsuid(self.recipient_id) else None)
        if not wa_id and not user_id:
            return None
        return ClientRef(self.phone_number_id, user_id=user_id, wa_id=wa_id)


@dataclass(frozen=True, slots=True)
class TemplateEvent:
    """A change to one of our templates (status, quality, category or components): the
    webhook field and its value.
    """

    field: str
    value: Mapping[str, Any]
    entry_time: datetime | None

    def as_webhook(self) -> dict[str, Any]:
        """A one-change webhook the template registry's ``apply_webhook`` understands."""
        entry: dict[str, Any] = {"changes": [{"field": self.field, "value": dict(self.value)}]}
        if self.entry_time is not None:
            entry["time"] = int(self.entry_time.timestamp())
        return {"object": "whatsapp_business_account", "entry": [entry]}


@dataclass(frozen=True, slots=True)
class PreferenceUpdate:
    """A client stopped or resumed a category of messages (``user_preferences``)."""

    client: ClientRef
    value: str
    """``stop`` or ``resume``."""
    category: str
    timestamp: datetime
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class AccountError:
    """An error Meta reports in ``value.errors`` (system, app or account level)."""

    phone_number_id: str | None
    error: WhatsAppError


@dataclass(frozen=True, slots=True)
class MessageEcho:
    """A message the business sent from the WhatsApp Business app on this number
    (coexistence): an advisor writing to the client from the phone. Meta reports it so
    the conversation is complete; it is not the client's activity (no window opened or
    extended, no turn of the assistant).
    """

    wamid: str
    phone_number_id: str
    client: ClientRef
    """The recipient: ``to`` (her phone number) and / or ``to_user_id`` (her BSUID)."""
    timestamp: datetime
    type: str
    text: str
    """What the conversation shows: the text, or ``[image]`` (and its caption) for the
    other types."""
    metadata: dict[str, Any]

    @property
    def sender_id(self) -> str:
        """The client's id as an inbound message of hers would give it (BSUID first)."""
        return self.client.user_id or self.client.wa_id or ""


@dataclass(slots=True)
class WebhookBatch:
    """Everything one webhook body says, by kind, with what was rejected or ignored."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    template_events: list[TemplateEvent] = field(default_factory=list)
    preferences: list[PreferenceUpdate] = field(default_factory=list)
    account_errors: list[AccountError] = field(default_factory=list)
    echoes: list[MessageEcho] = field(default_factory=list)
    """Messages the business sent from the WhatsApp Business app (coexistence)."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(where, why) for every item that could not be understood."""
    ignored: list[tuple[str, str]] = field(default_factory=list)
    """(where, what) for well-formed updates Salon has no use for (other fields)."""


# --------------------------------------------------------------------------- parsing


def parse_body(body: bytes) -> Mapping[str, Any]:
    """Decode a webhook body; :class:`WebhookFormatError` when it is not one."""
    try:
        payload = json.loads(body)
    except RecursionError as exc:
        raise WebhookFormatError(f"body is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer too long
        raise WebhookFormatError(f"body is not JSON: {exc}") from exc
    payload = _clean(payload, 0)
    if not isinstance(payload, Mapping):
        raise WebhookFormatError("body is not a JSON object")
    if payload.get("object") != "whatsapp_business_account":
        raise WebhookFormatError(f"object is {payload.get('object')!r}, not whatsapp_business_account")
    if not isinstance(payload.get("entry"), list):
        raise WebhookFormatError("entry is missing or not a list")
    return payload


def _clean(value: Any, depth: int) -> Any:
    """The decoded body with its depth checked and every string storable."""
    if depth > MAX_JSON_DEPTH:
        raise WebhookFormatError(f"body is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, dict):
        return {_storable(k): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None  # NaN and infinities are not JSON any store accepts
    return value


def _storable(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes
        text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def _list(container: Mapping[str, Any], key: str, where: str, batch: WebhookBatch) -> list[Any]:
    """``container[key]`` as a list: missing is empty, anything else is one rejection."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        batch.rejected.append((f"{where}.{key}", f"{key} is a {type(value).__name__}, not an array"))
        return []
    return value


def _timestamp(value: Any, what: str = "timestamp") -> datetime:
    """Unix seconds as Meta sends them (a decimal string, or a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} is a {type(value).__name__}, not Unix seconds")
    if isinstance(value, str) and not re.fullmatch(r"\d{1,12}(\.\d{1,9})?", value.strip()):
        raise ValueError(f"{what} {value[:40]!r} is not Unix seconds")
    seconds = float(value)
    if not 0 <= seconds < MAX_TIMESTAMP:
        raise ValueError(f"{what} {value!r} is out of range")
    return from_unix(seconds)


def _opt_str(raw: Mapping[str, Any], key: str, max_length: int = MAX_ID_LENGTH) -> str | None:
    """An optional string field: absent or empty is None, a wrong type or an oversized
    value is an error.
    """
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is a {type(value).__name__}, not a string")
    if len(value) > max_length:
        raise ValueError(f"{key!r} is longer than {max_length} characters")
    return value


def _object(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """An object field: the object, or an empty one when it is absent or not an object."""
    value = raw.get(key)
    return value if isinstance(value, Mapping) else {}


def _phone_number_id(value: Mapping[str, Any]) -> str:
    metadata = _object(value, "metadata")
    pnid = metadata.get("phone_number_id")
    if isinstance(pnid, int) and not isinstance(pnid, bool):
        pnid = str(pnid)
    if not isinstance(pnid, str) or not re.fullmatch(r"\d{1,64}", pnid):
        return ""
    return pnid


def _error_of(raw: Any) -> WhatsAppError:
    """One ``errors[]`` element; a code that is no real Graph code reads as unknown."""
    if isinstance(raw, Mapping):
        code = raw.get("code")
        if isinstance(code, bool) or (isinstance(code, int) and not 0 <= code <= MAX_ERROR_CODE) or (
            isinstance(code, str) and (len(code) > 10 or (code.strip().isdigit() and int(code) > MAX_ERROR_CODE))
        ):
            raw = {k: v for k, v in raw.items() if k != "code"}
    return from_status_error(raw)


def parse_webhook(payload: Mapping[str, Any]) -> WebhookBatch:
    """Every update in a decoded webhook (see :func:`parse_body`)."""
    batch = WebhookBatch()
    for e_index, entry in enumerate(payload.get("entry") or []):
        where_entry = f"entry[{e_index}]"
        if not isinstance(entry, Mapping):
            batch.rejected.append((where_entry, "entry is not an object"))
            continue
        entry_time = _time_or_none(entry.get("time"))
        changes = entry.get("changes")
        if changes is None:
            continue  # an entry with nothing in it
        if not isinstance(changes, list):
            batch.rejected.append((where_entry, "changes is missing or not a list"))
            continue
        for c_index, change in enumerate(changes):
            where = f"{where_entry}.changes[{c_index}]"
            if not isinstance(change, Mapping) or not isinstance(change.get("value"), Mapping):
                batch.rejected.append((where, "change has no value object"))
                continue
            kind = change.get("field")
            value = change["value"]
            if not isinstance(kind, str):
                batch.rejected.append((where, "field is missing or not a string"))
                continue
            if kind == "messages":
                _parse_messages_value(value, where, batch)
            elif kind in TEMPLATE_FIELDS:
                try:
                    batch.template_events.append(_template_event(kind, value, entry_time))
                except (TypeError, ValueError) as exc:
                    batch.rejected.append((where, f"template update not understood: {exc}"))
            elif kind == "user_preferences":
                _parse_preferences(value, where, batch)
            elif kind == "calls":
                _parse_calls(value, where, batch)
            elif kind == ECHO_FIELD:
                _parse_echoes(value, where, batch)
            else:
                batch.ignored.append((where, f"field {kind!r}"))
    return batch


def _time_or_none(value: Any) -> datetime | None:
    try:
        return _timestamp(value) if value is not None else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _template_event(kind: str, value: Mapping[str, Any], entry_time: datetime | None) -> TemplateEvent:
    """A template lifecycle change with the fields the registry reads checked."""
    for key in ("message_template_name", "message_template_language", "event", "reason",
                "new_quality_score", "previous_quality_score", "new_category", "previous_category",
                "correct_category", "disable_info", "other_info"):
        item = value.get(key)
        if item is not None and not isinstance(item, (str, Mapping)):
            raise TypeError(f"{key} is a {type(item).__name__}")
    template_id = value.get("message_template_id")
    if template_id is not None and (isinstance(template_id, bool) or not isinstance(template_id, (int, str))):
        raise TypeError(f"message_template_id is a {type(template_id).__name__}")
    return TemplateEvent(kind, value, entry_time)


def _parse_messages_value(value: Mapping[str, Any], where: str, batch: WebhookBatch) -> None:
    pnid = _phone_number_id(value)
    for index, raw in enumerate(_list(value, "messages", where, batch)):
        item_where = f"{where}.messages[{index}]"
        try:
            batch.messages.append(_inbound(value, raw, pnid))
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            batch.rejected.append((item_where, f"message not understood: {exc}"))
    for index, raw in enumerate(_list(value, "statuses", where, batch)):
        item_where = f"{where}.statuses[{index}]"
        try:
            batch.statuses.append(_status(raw, pnid, _contacts(value)))
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            batch.rejected.append((item_where, f"status not understood: {exc}"))
    for raw in _list(value, "errors", where, batch):
        if isinstance(raw, Mapping):
            batch.account_errors.append(AccountError(pnid or None, _error_of(raw)))
        else:
            batch.rejected.append((f"{where}.errors", "error is not an object"))


def _parse_calls(value: Mapping[str, Any], where: str, batch: WebhookBatch) -> None:
    """A client's call opens or refreshes her window, answered or not, as a message does
    (Meta, 2026). Each event of a user-initiated call (``connect``, ``terminate``) is kept
    in the inbox under ``<call id>:<event>``, so a retried webhook counts once; it starts
    no turn. Calls the business placed change nothing.
    """
    pnid = _phone_number_id(value)
    for index, raw in enumerate(_list(value, "calls", where, batch)):
        item_where = f"{where}.calls[{index}]"
        try:
            if not isinstance(raw, Mapping):
                raise TypeError("call is not an object")
            if raw.get("direction") != "USER_INITIATED":
                batch.ignored.append((item_where, f"call direction {raw.get('direction')!r}"))
                continue
            if not pnid:
                raise ValueError("metadata.phone_number_id is missing")
            event = _require_str(raw, "event")
            call_id = _require_str(raw, "id")
            timestamp = _timestamp(raw.get("timestamp"))
            client = _client_of(value, raw, pnid)
            batch.messages.append(InboundMessage(
                wamid=f"{call_id}:{event}"[:MAX_ID_LENGTH], phone_number_id=pnid, client=client,
                timestamp=timestamp, type="call", text="",
                metadata={"type": "call", "call_id": call_id, "event": event,
                          "status": raw.get("status") if isinstance(raw.get("status"), str) else None,
                          "wa_id": client.wa_id, "user_id": client.user_id,
                          "timestamp": int(timestamp.timestamp()), "phone_number_id": pnid},
                starts_turn=False, extends_window=True,
            ))
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            batch.rejected.append((item_where, f"call not understood: {exc}"))


def _parse_echoes(value: Mapping[str, Any], where: str, batch: WebhookBatch) -> None:
    """``smb_message_echoes``: each ``message_echoes[]`` item is one message an advisor
    sent from the WhatsApp Business app; a malformed one is rejected on its own.
    """
    pnid = _phone_number_id(value)
    for index, raw in enumerate(_list(value, "message_echoes", where, batch)):
        item_where = f"{where}.message_echoes[{index}]"
        try:
            batch.echoes.append(_echo(raw, pnid))
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            batch.rejected.append((item_where, f"message echo not understood: {exc}"))


def _echo(raw: Any, pnid: str) -> MessageEcho:
    if not isinstance(raw, Mapping):
        raise TypeError("message echo is not an object")
    if not pnid:
        raise ValueError("metadata.phone_number_id is missing")
    wamid = _require_str(raw, "id")
    kind = _require_str(raw, "type")
    if not _ECHO_TYPE.fullmatch(kind):
        raise ValueError(f"type {kind[:40]!r} is not a message type")
    timestamp = _timestamp(raw.get("timestamp"))
    client = _recipient_of(raw, pnid)
    business = _opt_str(raw, "from", 64)  # our own number, as the app shows it
    text, details = _echo_content(kind, raw)
    metadata: dict[str, Any] = {
        ECHO_MARK: True,
        "wamid": wamid,
        "timestamp": int(timestamp.timestamp()),
        "phone_number_id": pnid,
        "type": kind,
        "wa_id": client.wa_id,
        "user_id": client.user_id,
        "parent_user_id": _opt_str(raw, "to_parent_user_id"),
        "business_number": business,
    }
    metadata.update(details)
    if isinstance(raw.get("context"), Mapping):
        metadata["context"] = dict(raw["context"])
    return MessageEcho(wamid=wamid, phone_number_id=pnid, client=client, timestamp=timestamp,
                       type=kind, text=text, metadata=metadata)


def _recipient_of(raw: Mapping[str, Any], pnid: str) -> ClientRef:
    """The client an echo went to: ``to`` (a phone number, or a BSUID for a username-only
    client) and / or ``to_user_id`` (her BSUID, Meta 2026).
    """
    wa_id = _opt_str(raw, "to")
    user_id = _opt_str(raw, "to_user_id")
    if wa_id is not None and is_bsuid(wa_id):
        if user_id is not None and user_id != wa_id:
            raise ValueError("to and to_user_id name two different BSUIDs")
        user_id, wa_id = wa_id, None
    if wa_id is None and user_id is None:
        raise ValueError("no recipient: neither to nor to_user_id")
    if wa_id is not None and not re.fullmatch(r"\+?\d{5,20}", wa_id):
        raise ValueError("to is not a phone number")
    if user_id is not None and not is_bsuid(user_id):
        raise ValueError("to_user_id is not a BSUID")
    return ClientRef(pnid, user_id, wa_id)


def _echo_content(kind: str, raw: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the conversation shows of an echo, and the details kept with it: the text of
    a text message; ``[<type>]`` for the others (with a caption when there is one).
    """
    body = raw.get(kind)
    if kind == "text":
        text = body.get("body") if isinstance(body, Mapping) else None
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text.body is missing or empty")
        return text, {}
    content: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    details: dict[str, Any] = {}
    label = f"[{kind}]"
    if kind in MEDIA_TYPES:
        attachment = {k: content.get(k) for k in ("id", "mime_type", "sha256", "filename", "voice",
                                                   "animated") if k in content}
        attachment["type"] = kind
        details["attachment"] = attachment
    caption = content.get("caption")
    if isinstance(caption, str) and caption.strip():
        label = f"{label} {caption.strip()}"
    return label, details


def _require_str(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} is missing or not a string")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{key!r} is longer than {MAX_ID_LENGTH} characters")
    return value


def _inbound(value: Mapping[str, Any], raw: Any, pnid: str) -> InboundMessage:
    if not isinstance(raw, Mapping):
        raise TypeError("message is not an object")
    if not pnid:
        raise ValueError("metadata.phone_number_id is missing")
    wamid = _require_str(raw, "id")
    kind = _require_str(raw, "type")
    timestamp = _timestamp(raw.get("timestamp"))
    change = _identity_change(raw, pnid) if kind == "system" else None
    client = change.before if change is not None else _client_of(value, raw, pnid)
    if kind == "contacts":
        change = _shared_number(raw, client)
    contact = _contact_for(value, client)
    profile = _object(contact, "profile")
    profile_name = profile.get("name") if isinstance(profile.get("name"), str) else None

    text, starts_turn, extends_window, details = _meaning(kind, raw)
    metadata: dict[str, Any] = {
        "wamid": wamid,
        "timestamp": int(timestamp.timestamp()),
        "phone_number_id": pnid,
        "type": kind,
        "wa_id": client.wa_id,
        "user_id": client.user_id,
        # shared across the business portfolios a client writes to (Meta, 2026)
        "parent_user_id": _opt_str(raw, "from_parent_user_id") or _opt_str(contact, "parent_user_id"),
        "profile_name": profile_name,
    }
    metadata.update(details)
    for key in ("context", "referral"):
        if isinstance(raw.get(key), Mapping):
            metadata[key] = dict(raw[key])
    if isinstance(raw.get("errors"), list):
        metadata["errors"] = [_error_of(e).to_dict() for e in raw["errors"] if isinstance(e, Mapping)]
    return InboundMessage(
        wamid=wamid,
        phone_number_id=pnid,
        client=client,
        timestamp=timestamp,
        type=kind,
        text=text,
        metadata=metadata,
        starts_turn=starts_turn,
        extends_window=extends_window,
        entry_point=entry_point_of(raw),
        profile_name=profile_name,
        identity_change=change,
    )


def _identity_change(raw: Mapping[str, Any], pnid: str) -> IdentityChange | None:
    """The change a ``system`` message reports (None for other system messages).

    ``from`` is the phone number before (absent for a username-only client); the
    ``system`` object carries ``previous_user_id`` (and ``previous_parent_user_id``) and the
    new ``user_id`` (and ``parent_user_id``), plus the new phone in ``wa_id`` for a number
    change (``new_wa_id`` in older payloads).
    """
    system = raw.get("system")
    if not isinstance(system, Mapping):
        raise TypeError("system is not an object")
    kind = system.get("type")
    if kind not in IDENTITY_CHANGES:
        return None
    old_phone = _opt_str(raw, "from")
    old_bsuid = _opt_str(system, "previous_user_id") or _opt_str(raw, "from_user_id")
    new_bsuid = _opt_str(system, "user_id")
    if kind == "user_changed_number":
        new_phone = _opt_str(system, "wa_id") or _opt_str(system, "new_wa_id")
        if new_phone is None or not is_phone(new_phone):
            raise ValueError("user_changed_number without the new number (system.wa_id)")
    else:
        new_phone = old_phone
        if new_bsuid is None:
            raise ValueError("user_changed_user_id without the new BSUID (system.user_id)")
    for name, value in (("previous_user_id", old_bsuid), ("user_id", new_bsuid)):
        if value is not None and not is_bsuid(value):
            raise ValueError(f"system.{name} is not a BSUID")
    if old_phone is not None and not is_phone(old_phone):
        raise ValueError("from is not a phone number")
    if old_phone is None and old_bsuid is None:
        raise ValueError(f"{kind} names no previous id")
    before = ClientRef(pnid, old_bsuid, old_phone)
    after = ClientRef(pnid, new_bsuid or old_bsuid, new_phone)
    return IdentityChange(str(kind), before, after, _opt_str(system, "parent_user_id"))


def _shared_number(raw: Mapping[str, Any], client: ClientRef) -> IdentityChange | None:
    """A username-only client answered our contact-information request: the card she
    shared (``origin: contact_request``) carries her own phone number, which is linked to
    her from then on (``contact_shared``). A card shared any other way is someone's
    contact, not an identity.
    """
    if client.wa_id is not None or client.user_id is None:
        return None
    cards = [c for c in raw.get("contacts") or [] if isinstance(c, Mapping)]
    card = next((c for c in cards if c.get("origin") == "contact_request"), None)
    if card is None and raw.get("origin") == "contact_request" and cards:
        card = cards[0]  # the origin given on the message itself
    if card is None:
        return None
    phones = [p for p in card.get("phones") or [] if isinstance(p, Mapping)]
    phone = next((str(p["wa_id"]) for p in phones if isinstance(p.get("wa_id"), str)
                  and is_phone(p["wa_id"])), None)
    if phone is None:
        return None
    return IdentityChange("contact_shared", client,
                          ClientRef(client.phone_number_id, client.user_id, phone))


def _client_of(value: Mapping[str, Any], raw: Mapping[str, Any], pnid: str) -> ClientRef:
    contacts = _contacts(value)
    wa_id = _opt_str(raw, "from")
    user_id = _opt_str(raw, "from_user_id") or _opt_str(raw, "user_id")
    contact: Mapping[str, Any] | None = None
    if wa_id is not None:
        contact = next((c for c in contacts if c.get("wa_id") == wa_id), None)
    if contact is None and user_id:
        contact = next((c for c in contacts if c.get("user_id") == user_id), None)
    if contact is None and len(contacts) == 1:
        contact = contacts[0]
    if contact is not None:
        wa_id = wa_id or _opt_str(contact, "wa_id")
        user_id = user_id or _opt_str(contact, "user_id")
    if wa_id is not None and is_bsuid(str(wa_id)):
        # Username adopters: ``from`` may carry the BSUID itself.
        user_id, wa_id = user_id or wa_id, None
    if not wa_id and not user_id:
        raise ValueError("no sender: neither from/wa_id nor user_id")
    if wa_id is not None and not re.fullmatch(r"\+?\d{5,20}", wa_id):
        raise ValueError("the sender's wa_id is not a phone number")
    if user_id is not None and not is_bsuid(user_id):
        raise ValueError("the sender's user_id is not a BSUID")
    return ClientRef(pnid, str(user_id) if user_id else None, str(wa_id) if wa_id else None)


def _contacts(value: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    contacts = value.get("contacts")
    return [c for c in contacts if isinstance(c, Mapping)] if isinstance(contacts, list) else []


def _contact_for(value: Mapping[str, Any], client: ClientRef) -> Mapping[str, Any]:
    contacts = _contacts(value)
    for contact in contacts:
        if (client.wa_id and contact.get("wa_id") == client.wa_id) or (
            client.user_id and contact.get("user_id") == client.user_id
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def typed_text(text: str) -> str:
    """What the client typed, as words for the assistant, never as an intent payload.

    Rasa reads any message that starts with ``/`` (after white space) as
    ``/intent{"entity": …}``: the intent and entities, even slot values, the writer
    chooses. Our payloads travel only in the replies to buttons and list rows we sent, so
    the leading slashes of typed text are dropped: ``/affirm{"appointment_id": …}`` reaches
    the language understanding as ``affirm{"appointment_id": …}``, words it classifies like
    any others.
    """
    rest = text.strip()
    if not rest.startswith("/"):
        return text
    while rest.startswith("/"):
        rest = rest[1:].strip()
    return rest


def _reply_text(reply_id: Any, title: Any) -> str:
    """A tap: our own ``/intent{...}`` payloads go to the assistant as they are;
    anything else (another system's ids) is read as the title the client saw.
    """
    if reply_id is not None and not isinstance(reply_id, str):
        raise ValueError(f"reply id is a {type(reply_id).__name__}, not a string")
    if isinstance(reply_id, str) and reply_id.startswith("/"):
        return reply_id
    if isinstance(title, str) and title.strip():
        return title
    return reply_id or ""


def _meaning(kind: str, raw: Mapping[str, Any]) -> tuple[str, bool, bool, dict[str, Any]]:
    """(text for the assistant, starts a turn, extends the window, extra metadata)."""
    body = _object(raw, kind)
    if kind == "text":
        text = body.get("body")
        if not isinstance(text, str):
            raise ValueError("text.body is missing")
        return typed_text(text), True, True, {}
    if kind == "interactive":
        sub = body.get("type")
        if sub in ("button_reply", "list_reply"):
            reply = _object(body, sub)
            details = {"reply": {"kind": sub, "id": reply.get("id"), "title": reply.get("title")}}
            return _reply_text(reply.get("id"), reply.get("title")), True, True, details
        return TRIGGER_UNSUPPORTED, True, True, {"interactive_type": sub}
    if kind == "button":
        payload, title = body.get("payload"), body.get("text")
        details = {"reply": {"kind": "template_button", "id": payload, "title": title}}
        return _reply_text(payload, title), True, True, details
    if kind in MEDIA_TYPES:
        attachment = {k: body.get(k) for k in ("id", "mime_type", "sha256", "caption", "url",
                                                "filename", "voice", "animated") if k in body}
        attachment["type"] = kind
        caption = body.get("caption")
        typed = typed_text(caption) if isinstance(caption, str) else ""
        text = typed if typed.strip() else TRIGGER_MEDIA
        return text, True, True, {"attachment": attachment}
    if kind == "location":
        location = {k: body.get(k) for k in ("latitude", "longitude", "name", "address", "url")
                    if k in body}
        return TRIGGER_LOCATION, True, True, {"location": location}
    if kind == "contacts":
        cards = raw.get("contacts") if isinstance(raw.get("contacts"), list) else []
        return TRIGGER_CONTACT, True, True, {"shared_contacts": cards}
    if kind == "order":
        return TRIGGER_ORDER, True, True, {"order": dict(body)}
    if kind == "reaction":
        reaction = {"message_id": body.get("message_id"), "emoji": body.get("emoji")}
        # Meta does not say a reaction refreshes the window: never count on it.
        return "", False, False, {"reaction": reaction}
    if kind == "system":
        return "", False, False, {"system": dict(body)}
    # unsupported (131051), and types this version does not know yet
    return TRIGGER_UNSUPPORTED, True, True, {"unsupported": dict(body) if body else {"type": kind}}


def _status(raw: Any, pnid: str, contacts: Sequence[Mapping[str, Any]] = ()) -> StatusUpdate:
    if not isinstance(raw, Mapping):
        raise TypeError("status is not an object")
    raw_errors = raw.get("errors")
    if raw_errors is not None and not isinstance(raw_errors, list):
        raise TypeError("errors is not an array")
    errors = tuple(_error_of(e) for e in raw_errors or [] if isinstance(e, Mapping))
    phone, bsuid = _opt_str(raw, "recipient_id"), _opt_str(raw, "recipient_user_id")
    if bsuid is None and phone is not None:
        # The status names her phone; the contact with that phone may carry her BSUID.
        contact = next((c for c in contacts if c.get("wa_id") == phone), None)
        bsuid = _opt_str(contact, "user_id") if contact is not None else None
    pricing = raw.get("pricing") if isinstance(raw.get("pricing"), Mapping) else None
    status = _require_str(raw, "status")
    if status not in STATUSES:
        raise ValueError(f"status {status[:40]!r} is not one Meta sends")
    return StatusUpdate(
        wamid=_require_str(raw, "id"),
        status=status,
        timestamp=_timestamp(raw.get("timestamp")),
        phone_number_id=pnid,
        recipient_id=phone or bsuid,
        errors=errors,
        pricing=pricing,
        raw=dict(raw),
        recipient_user_id=bsuid if bsuid and is_bsuid(bsuid) else None,
    )


def _parse_preferences(value: Mapping[str, Any], where: str, batch: WebhookBatch) -> None:
    pnid = _phone_number_id(value)
    for index, raw in enumerate(_list(value, "user_preferences", where, batch)):
        item_where = f"{where}.user_preferences[{index}]"
        try:
            if not isinstance(raw, Mapping):
                raise TypeError("preference is not an object")
            choice = raw.get("value")
            if choice not in ("stop", "resume"):
                raise ValueError(f"value {choice!r} is neither stop nor resume")
            wa_id = _opt_str(raw, "wa_id")
            user_id = _opt_str(raw, "user_id")
            if not pnid:
                raise ValueError("metadata.phone_number_id is missing")
            if not wa_id and not user_id:
                raise ValueError("no client: neither wa_id nor user_id")
            if wa_id is not None and not re.fullmatch(r"\+?\d{5,20}", wa_id):
                raise ValueError("wa_id is not a phone number")
            if user_id is not None and not is_bsuid(user_id):
                raise ValueError("user_id is not a BSUID")
            batch.preferences.append(
                PreferenceUpdate(
                    client=ClientRef(pnid, user_id, wa_id),
                    value=str(choice),
                    category=_opt_str(raw, "category", 64) or "marketing_messages",
                    timestamp=_timestamp(raw.get("timestamp")),
                    detail=_opt_str(raw, "detail", 2000),
                )
            )
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            batch.rejected.append((item_where, f"preference not understood: {exc}"))


def entry_point_of(message: Mapping[str, Any]) -> str:
    """``ctwa_ad`` for a message from a Click-to-WhatsApp ad (``referral.source_type``
    ``ad``), ``page_cta`` for other referrals (Facebook Page call-to-action, posts),
    else ``organic``.
    """
    referral = message.get("referral")
    if not isinstance(referral, Mapping):
        return ENTRY_ORGANIC
    return ENTRY_CTWA_AD if referral.get("source_type") == "ad" else "page_cta"
