"""The console's conversation thread: one client's WhatsApp messages, both ways, as data.

:func:`read_thread` reads Salon's own records of the conversation and returns them oldest
first as :class:`ThreadItem` values, for the page that shows them (the HTML is not here):

- what the client sent, from the inbox (``wa_inbox``, :mod:`salon.webhook.inbox`): texts,
  taps on buttons and list rows, media with their captions, locations, contact cards,
  orders, reactions, calls, and WhatsApp's notices about her ids. The inbox keeps a handled
  message 8 days (:data:`salon.webhook.inbox.INBOX_RETENTION`); older words of hers are in
  Rasa's transcript, which :func:`merge` adds;
- what the maison sent, parked or was refused, from the outbound record (``wa_outbound``,
  :mod:`salon.guard.sent`), with its latest status as ticks (one: sent, two: delivered,
  three: read) and, for a message that did not go out, why, in plain words.

Who wrote it: the client (in), an advisor (out, when the record's origin is
``advisor:<name>``, as the console's replies are sent, or a reply of the advisor API's
desk), the system (the re-engagement template the send-time guard sends by itself, and
WhatsApp's notices), else the assistant.

A template reads as WhatsApp shows it: header, body and footer, with its button titles.
The text is the rendering the send-time guard kept with the record (the registry's own,
made when it was sent, so a template edited since still reads as the client saw it);
without one it is rendered again from the parameters the message carried with the
template registry (:mod:`salon.templates.params`); a template the registry does not
know reads ``template <name>`` with its parameters, never a guess.

Parked content (held behind the re-engagement template while her window was closed) is
an item marked ``parked`` until it is delivered; once it has gone out, the item is the
message that went out, marked ``delivered_later``, at the time it went out. A delivered
message is known as parked content by the parked item's id in its record when the
sender writes it there, else by its content: the first message with the same content
(and origin) that Meta accepted after it was parked.

Nothing secret reaches an item: no error details from Meta (trace ids), no callback
data, no addressing, and a media link loses its query string and credentials (a signed
URL's signature is in them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import from_us, require_aware, to_us
from salon.guard.sent import outbound_table
from salon.templates.model import Template
from salon.templates.params import check_params
from salon.templates.registry import TemplateRegistry
from salon.webhook.inbox import inbox_table
from salon.whatsapp.errors import (
    AccessError,
    AccountError,
    AuthError,
    BsuidRecipientError,
    EcosystemLimitError,
    FlowError,
    GraphRateLimitError,
    GraphVersionError,
    MaintenanceError,
    MarketingMessagesApiError,
    MarketingOptOutError,
    MediaError,
    PairRateLimitError,
    RateLimitError,
    RecipientError,
    RequestError,
    TemplateError,
    TemplatePausedError,
    ThroughputLimitError,
    TransientError,
    WhatsAppError,
    WindowClosedError,
    error_class_for,
)

__all__ = [
    "DEFAULT_LIMIT",
    "ThreadItem",
    "default_registry",
    "failure_words",
    "merge",
    "public_link",
    "read_thread",
    "refusal_words",
    "template_text",
    "unread_since",
]

Direction = Literal["in", "out"]
Author = Literal["client", "assistant", "advisor", "system"]
Kind = Literal["text", "interactive", "template", "nudge", "media", "location", "reaction",
               "contacts", "order", "other"]

DIRECTIONS: Final = frozenset({"in", "out"})
AUTHORS: Final = frozenset({"client", "assistant", "advisor", "system"})
KINDS: Final = frozenset({"text", "interactive", "template", "nudge", "media", "location",
                          "reaction", "contacts", "order", "other"})

DEFAULT_LIMIT: Final = 300
"""Items a thread holds unless asked otherwise (the most recent ones)."""

ADVISOR_ORIGIN: Final = "advisor:"
"""The origin an advisor's message carries: ``advisor:<token name>``."""
ADVISOR_UTTERANCES: Final = frozenset({"advisor_reply", "repair_status"})
"""What the advisor API's desk sends for an advisor (its reply, a repair's news)."""

MEDIA_TYPES: Final = frozenset({"image", "video", "audio", "document", "sticker"})

TICKS: Final[dict[str, int]] = {"sent": 1, "delivered": 2, "read": 3, "played": 3}
"""WhatsApp's ticks for an outbound status: one grey, two grey, two blue."""

_NO_ANSWER: Final = "NoResponseError"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadItem:
    """One message of the thread (or one line merged into it), as the console shows it.

    ``at`` is aware UTC: Meta's time for the client's messages, the time of the send (or
    of the parking, or of the refusal) for the maison's. ``text`` is what the client wrote
    or saw. ``status``, ``ticks``, ``failure``, ``parked`` and ``delivered_later`` concern
    the maison's messages only.
    """

    at: datetime
    direction: Direction
    author: Author
    advisor: str | None = None
    """Who, when an advisor sent it (the name in its origin; None when not recorded)."""
    kind: Kind
    text: str
    buttons: tuple[str, ...] = ()
    """The titles of its buttons or list rows, as shown."""
    status: str | None = None
    """sent, delivered, read, failed, parked, refused, accepted…"""
    ticks: int = 0
    """0 none, 1 sent, 2 delivered, 3 read."""
    failure: str | None = None
    """Why it did not reach her, in plain words for an advisor."""
    parked: bool = False
    """Content held behind the re-engagement template, not delivered yet."""
    delivered_later: bool = False
    """Parked content that went out once she wrote again (or tapped the template)."""
    template: str | None = None
    media: dict[str, str] | None = None
    """``type``, ``caption`` and ``id`` or ``link`` (and ``filename`` for a document)."""
    wamid: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.at, "at")
        object.__setattr__(self, "at", self.at.astimezone(timezone.utc))
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, not {self.direction!r}")
        if self.author not in AUTHORS:
            raise ValueError(f"author must be one of {sorted(AUTHORS)}, not {self.author!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {self.kind!r}")
        if not 0 <= self.ticks <= 3:
            raise ValueError(f"ticks go from 0 to 3, not {self.ticks}")


# --------------------------------------------------------------------------- pure helpers


def merge(items: Sequence[ThreadItem], extra: Iterable[ThreadItem]) -> list[ThreadItem]:
    """``items`` with ``extra`` (lines of Rasa's transcript, an advisor's message typed on
    the phone…) put in time order. Items at the same instant keep their order, those of
    ``items`` first; an extra item whose wamid is already in the thread is left out.
    """
    seen = {item.wamid for item in items if item.wamid}
    added: list[ThreadItem] = []
    for item in extra:
        if item.wamid and item.wamid in seen:
            continue
        if item.wamid:
            seen.add(item.wamid)
        added.append(item)
    return sorted([*items, *added], key=lambda item: item.at)


def unread_since(items: Iterable[ThreadItem], at: datetime | None) -> list[ThreadItem]:
    """The client's messages after ``at`` (every one of them when ``at`` is None): what an
    advisor who last looked at ``at`` has not read.
    """
    if at is not None:
        require_aware(at, "at")
    return [item for item in items
            if item.direction == "in" and item.author == "client" and (at is None or item.at > at)]


#: Why a message did not go out, in words for an advisor, by the family of its error
#: (the most specific family that has words is used; see :mod:`salon.whatsapp.errors`).
_FAILURE_WORDS: Final[dict[type[WhatsAppError], str]] = {
    WindowClosedError: "her 24-hour window had closed, only a template can reach her",
    RecipientError: "WhatsApp cannot reach her on this number",
    BsuidRecipientError: "this message needs her phone number, her WhatsApp username is not enough",
    MarketingOptOutError: "she has stopped marketing messages from the maison",
    EcosystemLimitError: "WhatsApp held it back, she has received many marketing messages lately",
    RateLimitError: "WhatsApp is limiting the maison's messages after blocks or reports",
    ThroughputLimitError: "too many messages were leaving at once",
    PairRateLimitError: "too many messages were sent to her in a short time",
    GraphRateLimitError: "the maison's WhatsApp account reached its limit of requests",
    TransientError: "WhatsApp had a temporary problem",
    MaintenanceError: "the maison's WhatsApp account was under maintenance",
    RequestError: "WhatsApp refused the message as it was written",
    GraphVersionError: "the maison's WhatsApp connection uses a version WhatsApp no longer serves",
    MediaError: "the attachment could not be transferred",
    TemplateError: "the template or its details do not match what WhatsApp approved",
    TemplatePausedError: "WhatsApp has paused or disabled this template",
    FlowError: "the form cannot be offered at the moment",
    AccountError: "the maison's WhatsApp account has a problem an operator must fix",
    AuthError: "the maison's access to WhatsApp has expired",
    AccessError: "the maison's WhatsApp account lacks a permission",
    MarketingMessagesApiError: "WhatsApp's marketing messages service refused it",
}

_UNKNOWN_FAILURE: Final = "WhatsApp reported an error"


def failure_words(code: int | None, *, accepted: bool, kind: str | None = None) -> str:
    """Why a message failed, in plain words: ``Not delivered`` when Meta had accepted it
    (``accepted``: it has a wamid), else ``Not sent``, then the meaning of Graph error
    ``code`` and the code. ``kind`` is the error's class name as recorded (a send nobody
    answered has no code of Meta's).
    """
    if kind == _NO_ANSWER:
        return "In doubt: WhatsApp did not answer, it may have reached her"
    prefix = "Not delivered" if accepted else "Not sent"
    if code is None:
        return f"{prefix}: WhatsApp gave no reason"
    words = next((_FAILURE_WORDS[cls] for cls in error_class_for(code).__mro__ if cls in _FAILURE_WORDS),
                 _UNKNOWN_FAILURE)
    return f"{prefix}: {words} ({code})" if code >= 0 else f"{prefix}: {words}"


#: Why the send-time guard sent nothing (:mod:`salon.guard.decision`, :mod:`salon.guard.sender`).
_REFUSAL_WORDS: Final[dict[str, str]] = {
    "opted_out": "she has asked the maison to stop writing to her",
    "marketing_stopped": "she has stopped marketing messages",
    "no_marketing_opt_in": "she has not agreed to marketing messages",
    "no_marketing_consent": "she has not agreed to marketing messages",
    "no_opt_in": "she has not agreed to messages outside a conversation she started",
    "no_template": "her 24-hour window had closed and no approved template fits this message",
    "invalid_content": "the message breaks WhatsApp's limits",
    "no_content": "the message was empty",
    "unknown_purpose": "the message's purpose is unknown",
    "raw_template": "a template can only be sent by its name",
    "authentication_to_bsuid": "this message needs her phone number, her WhatsApp username is not enough",
}


def refusal_words(reason: str | None) -> str:
    """Why the send-time guard refused to send, in plain words."""
    base = (reason or "").split(":", 1)[0]
    words = _REFUSAL_WORDS.get(base, "the send-time checks refused it")
    return f"Not sent: {words}"


# --------------------------------------------------------------------------- templates


def _texts(parameters: Any) -> list[str]:
    return [str(p["text"]) for p in _list(parameters)
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)]


def _sent_values(template: Template | None, components: list[Any]) -> tuple[dict[str, str], list[str],
                                                                               dict[str, str] | None]:
    """The parameter values a template message carried: by the template's parameter names
    (when the registry knows it), every text in order, and the media of its header.
    """
    values: dict[str, str] = {}
    texts: list[str] = []
    media: dict[str, str] | None = None
    named = template is not None and template.parameter_format == "named"
    for component in components:
        if not isinstance(component, Mapping):
            continue
        kind = str(component.get("type") or "").lower()
        parameters = _list(component.get("parameters"))
        if kind == "header":
            media = media or _header_media(parameters)
        if kind in ("header", "body"):
            texts.extend(_texts(parameters))
            names = _component_params(template, kind.upper())
            for index, parameter in enumerate(parameters):
                if not isinstance(parameter, Mapping):
                    continue
                if parameter.get("type") == "text" and isinstance(parameter.get("text"), str):
                    name = parameter.get("parameter_name") if named else (
                        names[index] if index < len(names) else None)
                    if isinstance(name, str):
                        values[name] = parameter["text"]
                elif kind == "header" and media is not None and names:
                    values[names[0]] = media.get("link") or media.get("id") or ""
        elif kind == "button" and component.get("sub_type") == "url" and template is not None:
            name = _url_param(template, component.get("index"))
            url_texts = _texts(parameters)
            if name and url_texts:
                values[name] = url_texts[0]
    return values, texts, media


def _component_params(template: Template | None, kind: str) -> tuple[str, ...]:
    component = template.component(kind) if template is not None else None
    return component.params if component is not None else ()


def _url_param(template: Template, index: Any) -> str | None:
    component = template.component("BUTTONS")
    if component is None or not isinstance(index, int) or not 0 <= index < len(component.buttons):
        return None
    return component.buttons[index].url_param


def _header_media(parameters: list[Any]) -> dict[str, str] | None:
    for parameter in parameters:
        if not isinstance(parameter, Mapping):
            continue
        kind = parameter.get("type")
        if kind in ("image", "video", "document"):
            return _media(str(kind), _map(parameter.get(kind)))
    return None


def _shown(rendered: Mapping[str, Any]) -> str:
    """Header, body and footer, one under the other, as WhatsApp lays them out."""
    parts = [rendered.get(part) for part in ("header", "body", "footer")]
    return "\n".join(part for part in parts if isinstance(part, str) and part)


def template_text(message: Mapping[str, Any], registry: TemplateRegistry,
                  rendered: Any = None) -> tuple[str, tuple[str, ...], dict[str, str] | None]:
    """What a template message showed: its text (header, body, footer), its button
    titles and the media of its header.

    ``rendered`` is the rendering kept with the record when it was sent; without it the
    text is rendered from the message's parameters by the template registry, and a
    template the registry cannot render reads ``template <name>`` with its parameters.
    """
    body = _map(message.get("template"))
    name = str(body.get("name") or "")
    language = str(_map(body.get("language")).get("code") or "")
    template = registry.get(name, language) if name and language else None
    values, texts, media = _sent_values(template, _list(body.get("components")))
    buttons: tuple[str, ...] = ()
    if template is not None:
        block = template.component("BUTTONS")
        buttons = tuple(button.text for button in block.buttons) if block is not None else ()
    kept = _map(rendered)
    if isinstance(kept.get("body"), str) and kept["body"]:
        return _shown(kept), buttons, media
    if template is not None:
        _, _, again = check_params(template, values)
        if again.get("body"):
            return _shown(again), buttons, media
    label = f"template {name}" if name else "template"
    return (f"{label} ({', '.join(texts)})" if texts else label), buttons, media


# --------------------------------------------------------------------------- message objects


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def public_link(url: str) -> str:
    """``url`` without what may be secret in it: credentials, query string, fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _media(kind: str, body: Mapping[str, Any]) -> dict[str, str]:
    media = {"type": kind, "caption": _str(body.get("caption"))}
    if isinstance(body.get("id"), str) and body["id"]:
        media["id"] = body["id"]
    else:
        link = _str(body.get("link")) or _str(body.get("url"))
        if link:
            media["link"] = public_link(link)
    if isinstance(body.get("filename"), str) and body["filename"]:
        media["filename"] = body["filename"]
    return media


def _location_text(location: Mapping[str, Any]) -> str:
    words = [w for w in (_str(location.get("name")), _str(location.get("address"))) if w]
    if words:
        return ", ".join(words)
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if isinstance(latitude, int | float) and isinstance(longitude, int | float):
        return f"{latitude}, {longitude}"
    return ""


def _contact_names(cards: Any) -> str:
    names = [_str(_map(_map(card).get("name")).get("formatted_name")) for card in _list(cards)]
    return ", ".join(name for name in names if name)


def _interactive(body: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """An interactive message's body and the titles of what can be tapped."""
    text = _str(_map(body.get("body")).get("text"))
    action = _map(body.get("action"))
    kind = body.get("type")
    titles: list[str] = []
    if kind == "button":
        titles = [_str(_map(_map(b).get("reply")).get("title")) for b in _list(action.get("buttons"))]
    elif kind == "list":
        titles = [_str(_map(row).get("title")) for section in _list(action.get("sections"))
                  for row in _list(_map(section).get("rows"))]
    elif kind == "cta_url":
        titles = [_str(_map(action.get("parameters")).get("display_text"))]
    return text, tuple(title for title in titles if title)


@dataclass(frozen=True, slots=True)
class _Shown:
    kind: Kind
    text: str
    buttons: tuple[str, ...] = ()
    media: dict[str, str] | None = None
    template: str | None = None


def _outbound_content(message: Mapping[str, Any], registry: TemplateRegistry, rendered: Any) -> _Shown:
    """What a message object of ours showed the client."""
    kind = message.get("type")
    body = _map(message.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        return _Shown("text", _str(body.get("body")))
    if kind == "template":
        text, buttons, media = template_text(message, registry, rendered)
        return _Shown("template", text, buttons, media, _str(body.get("name")) or None)
    if kind == "interactive":
        text, buttons = _interactive(body)
        return _Shown("interactive", text, buttons)
    if kind in MEDIA_TYPES:
        media = _media(str(kind), body)
        return _Shown("media", media["caption"], media=media)
    if kind == "location":
        return _Shown("location", _location_text(body))
    if kind == "reaction":
        return _Shown("reaction", _str(body.get("emoji")))
    if kind == "contacts":
        return _Shown("contacts", _contact_names(message.get("contacts")))
    return _Shown("other", "")


# --------------------------------------------------------------------------- inbound


_SYSTEM_WORDS: Final[dict[str, str]] = {
    "user_changed_number": "She changed her phone number",
    "customer_changed_number": "She changed her phone number",
    "user_changed_user_id": "Her WhatsApp account id changed",
}


def _inbound_content(kind: str, text: str, meta: Mapping[str, Any]) -> _Shown:
    """What the client sent, from the inbox row's text and metadata."""
    if kind == "text":
        return _Shown("text", text)
    if kind in ("interactive", "button"):
        reply = _map(meta.get("reply"))
        if reply:
            # The title she tapped; an id only when it is not one of our payloads.
            reply_id = _str(reply.get("id"))
            fallback = "" if reply_id.startswith("/") else reply_id
            return _Shown("interactive", _str(reply.get("title")) or fallback)
        sub = _str(meta.get("interactive_type"))
        return _Shown("interactive", "Form reply" if sub == "nfm_reply" else "Interactive reply")
    if kind in MEDIA_TYPES:
        media = _media(kind, _map(meta.get("attachment")))
        return _Shown("media", media["caption"], media=media)
    if kind == "location":
        return _Shown("location", _location_text(_map(meta.get("location"))))
    if kind == "contacts":
        return _Shown("contacts", _contact_names(meta.get("shared_contacts")))
    if kind == "order":
        return _Shown("order", _order_text(_map(meta.get("order"))))
    if kind == "reaction":
        return _Shown("reaction", _str(_map(meta.get("reaction")).get("emoji")))
    if kind == "call":
        event = _str(meta.get("event"))
        status = _str(meta.get("status")).lower()
        words = "Call ended" if event == "terminate" else "Called the maison"
        return _Shown("other", f"{words} ({status})" if status else words)
    return _Shown("other", "Unsupported message")


def _order_text(order: Mapping[str, Any]) -> str:
    lines = [_str(order.get("text"))]
    items = []
    for item in _list(order.get("product_items")):
        entry = _map(item)
        product = _str(entry.get("product_retailer_id"))
        quantity = entry.get("quantity")
        if product:
            items.append(f"{quantity} × {product}" if isinstance(quantity, int | str) and quantity else product)
    if items:
        lines.append("Order: " + ", ".join(items))
    return "\n".join(line for line in lines if line)


def _inbound_item(row: Any) -> ThreadItem:
    meta = _map(row.metadata)
    kind = _str(meta.get("type")) or "text"
    at = from_us(row.sent_us)
    assert at is not None
    if meta.get("echo") is True:  # an advisor's message typed in the WhatsApp Business app
        typed = _inbound_content(kind, row.text or "", meta)
        return ThreadItem(at=at, direction="out", author="advisor", advisor="phone", kind=typed.kind,
                          text=typed.text, media=typed.media, wamid=row.wamid)
    if kind == "system":
        system = _map(meta.get("system"))
        words = _SYSTEM_WORDS.get(_str(system.get("type")), "WhatsApp notice")
        return ThreadItem(at=at, direction="in", author="system", kind="other", text=words, wamid=row.wamid)
    shown = _inbound_content(kind, row.text or "", meta)
    return ThreadItem(at=at, direction="in", author="client", kind=shown.kind, text=shown.text,
                      media=shown.media, wamid=None if kind == "call" else row.wamid)


# --------------------------------------------------------------------------- outbound


@dataclass(frozen=True, slots=True)
class _Record:
    """A ``wa_outbound`` row, with its payload read."""

    id: int
    wamid: str | None
    kind: str
    status: str
    utter_action: str | None
    template: str | None
    error_code: int | None
    error: Mapping[str, Any]
    at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> Mapping[str, Any]:
        return _map(self.payload.get("message"))

    @property
    def origin(self) -> str | None:
        origin = self.payload.get("origin")
        return origin if isinstance(origin, str) and origin else None

    def content_key(self) -> str:
        """What the client was meant to read (the original behind a template), and who
        asked for it.
        """
        content = self.payload.get("original") if self.kind == "template" else self.payload.get("message")
        return json.dumps({"message": content, "origin": self.origin}, sort_keys=True, default=str)

    @property
    def parked_id(self) -> str | None:
        value = self.payload.get("parked_id")
        return value if isinstance(value, str) and value else None

    @property
    def parked_ids(self) -> list[str]:
        """Every parked item this message delivered (several when they left merged)."""
        many = self.payload.get("parked_ids")
        if isinstance(many, list) and many:
            return [value for value in many if isinstance(value, str) and value]
        return [self.parked_id] if self.parked_id else []


def _record(row: Any) -> _Record:
    at = from_us(row.created_us)
    assert at is not None
    code = row.error_code
    return _Record(id=int(row.id), wamid=row.wamid, kind=row.kind, status=row.status,
                   utter_action=row.utter_action, template=row.template,
                   error_code=int(code) if code is not None else None, error=_map(row.error),
                   at=at, payload=_map(row.payload))


def _author(record: _Record) -> tuple[Author, str | None]:
    if record.kind == "nudge":
        return "system", None
    origin = record.origin or ""
    if origin.startswith(ADVISOR_ORIGIN):
        return "advisor", origin[len(ADVISOR_ORIGIN):].strip() or None
    if record.utter_action in ADVISOR_UTTERANCES:
        return "advisor", None
    return "assistant", None


def _failure(record: _Record) -> str | None:
    if record.status == "refused":
        reason = record.error.get("reason") or record.payload.get("reason")
        return refusal_words(reason if isinstance(reason, str) else None)
    if record.status in ("failed", "error"):
        kind = record.error.get("kind")
        return failure_words(record.error_code, accepted=record.wamid is not None,
                             kind=kind if isinstance(kind, str) else None)
    return None


def _outbound_item(record: _Record, registry: TemplateRegistry, *, delivered_later: bool = False) -> ThreadItem:
    shown = _outbound_content(record.message, registry, record.payload.get("rendered"))
    kind: Kind = "nudge" if record.kind == "nudge" else shown.kind
    if record.kind == "template" and kind != "template":
        kind = "template"
    author, advisor = _author(record)
    template = (shown.template or record.template) if kind in ("template", "nudge") else None
    return ThreadItem(
        at=record.at, direction="out", author=author, advisor=advisor, kind=kind, text=shown.text,
        buttons=shown.buttons, status=record.status, ticks=TICKS.get(record.status, 0),
        failure=_failure(record), parked=record.status == "parked", delivered_later=delivered_later,
        template=template, media=shown.media, wamid=record.wamid,
    )


def _delivered(parked: Sequence[_Record], sent: Sequence[_Record]) -> tuple[set[int], set[int]]:
    """Which parked records went out later, and which sent records carried them: by the
    parked item's id in the sent record, else by content (each parked record to the first
    message with its content and origin that Meta accepted after it, one to one).
    """
    gone: set[int] = set()
    copies: set[int] = set()
    accepted = sorted((r for r in sent if r.wamid is not None and r.kind in ("free_form", "template")),
                      key=lambda r: (r.at, r.id))
    by_parked_id = {parked: r for r in accepted for parked in r.parked_ids}
    for record in sorted(parked, key=lambda r: (r.at, r.id)):
        copy = by_parked_id.get(record.parked_id) if record.parked_id else None
        if copy is None:
            key = record.content_key()
            copy = next((r for r in accepted if r.id not in copies and not r.parked_id
                         and (r.at, r.id) > (record.at, record.id) and r.content_key() == key), None)
        if copy is not None:
            gone.add(record.id)
            copies.add(copy.id)
    copies.update(r.id for r in accepted if r.parked_id)
    return gone, copies


# --------------------------------------------------------------------------- reading


def _id_variants(ids: Iterable[str]) -> list[str]:
    """Each id as given, and a phone number with and without its ``+``."""
    out: list[str] = []
    for raw in ids:
        value = str(raw).strip()
        if not value:
            continue
        forms = [value]
        digits = value[1:] if value.startswith("+") else value
        if digits.isdigit():
            forms += [digits, f"+{digits}"]
        out.extend(form for form in forms if form not in out)
    return out


_registry: TemplateRegistry | None = None


async def default_registry() -> TemplateRegistry:
    """The project's templates (``templates.yml``), read once, off the event loop."""
    global _registry
    if _registry is None:
        _registry = await asyncio.to_thread(TemplateRegistry.load_default)
    return _registry


_I = inbox_table.c
_O = outbound_table.c


async def read_thread(
    engine: AsyncEngine,
    *,
    phone_number_id: str,
    ids: Sequence[str],
    limit: int = DEFAULT_LIMIT,
    registry: TemplateRegistry | None = None,
) -> list[ThreadItem]:
    """The ``limit`` most recent items of the conversation between our number
    ``phone_number_id`` and the client known by ``ids`` (every id she writes from: her
    phone number, her BSUID), oldest first. ``registry``: the templates to render with
    (by default the project's).
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    wanted = _id_variants(ids)
    if not wanted or not phone_number_id:
        return []
    templates = registry if registry is not None else await default_registry()
    inbound = (
        select(_I.wamid, _I.sent_us, _I.text, _I.metadata)
        .where(_I.phone_number_id == phone_number_id, _I.sender_id.in_(wanted))
        .order_by(_I.sent_us.desc(), _I.wamid.desc()).limit(limit)
    )
    columns = (_O.id, _O.wamid, _O.kind, _O.status, _O.utter_action, _O.template, _O.payload,
               _O.error_code, _O.error, _O.created_us)
    mine = (_O.phone_number_id == phone_number_id, _O.recipient.in_(wanted), _O.kind != "status_only")
    outbound = (select(*columns).where(*mine, _O.status != "parked")
                .order_by(_O.created_us.desc(), _O.id.desc()).limit(limit))
    # Parked content is kept apart: what went out later is found among the sent messages.
    held = (select(*columns).where(*mine, _O.status == "parked")
            .order_by(_O.created_us.desc(), _O.id.desc()).limit(max(limit, 500)))
    async with engine.connect() as conn:
        inbound_rows = (await conn.execute(inbound)).all()
        sent = [_record(row) for row in (await conn.execute(outbound)).all()]
        parked = [_record(row) for row in (await conn.execute(held)).all()]
    gone, copies = _delivered(parked, sent)
    keyed: list[tuple[tuple[int, int, Any], ThreadItem]] = []
    for row in inbound_rows:
        item = _inbound_item(row)
        keyed.append(((to_us(item.at), 0, row.wamid), item))
    for record in [*sent, *(r for r in parked if r.id not in gone)]:
        item = _outbound_item(record, templates, delivered_later=record.id in copies)
        keyed.append(((to_us(item.at), 1, record.id), item))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed[-limit:]]
