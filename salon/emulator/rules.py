"""Meta's sending rules as pure functions and small value objects (no I/O; time is
always an argument).

This is a deliberately separate implementation of the platform's rules (platform
reference §1, §2, §3, §5): the emulator judges the bot's behaviour, so it does not reuse
the bot's own window or template logic.

- Window: per (business phone number, client), open while
  ``now < last_inbound_at + 24 h``; at exactly 24:00:00 it is closed. Never wrote → closed.
- Pricing (per-message pricing, since 2025-07-01) for status webhooks, with the
  2026-10-01 change: service messages and utility templates inside the window are billed.
- Token buckets for the pair rate limit (burst 45, then 1 per 6 s) and throughput
  (80 msg/s per number).
- Validation of ``POST /messages`` bodies (limits of §5) and of template sends against
  the approved definition (§2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from salon.templates.model import Template

__all__ = [
    "FEP_DURATION",
    "FREE_FORM_TYPES",
    "IN_WINDOW_BILLED_FROM",
    "MEDIA_TYPES",
    "WINDOW",
    "KeyedBuckets",
    "TokenBucket",
    "Violation",
    "WindowBook",
    "check_and_render",
    "check_template_send",
    "fep_active",
    "pricing",
    "render_template",
    "validate_message",
    "window_closes_at",
    "window_open",
]

WINDOW: Final = timedelta(hours=24)
FEP_DURATION: Final = timedelta(hours=72)
#: From this instant (emulator clock) service messages and utility templates sent inside
#: an open window are billed at the utility rate (Meta's pricing update of July 2026;
#: shared/reference/whatsapp-2026.md §2). Before it they were free_customer_service.
IN_WINDOW_BILLED_FROM: Final = datetime(2026, 10, 1, tzinfo=timezone.utc)

MEDIA_TYPES: Final = frozenset({"image", "video", "audio", "document", "sticker"})
SEND_TYPES: Final = frozenset(
    {"text", "interactive", "template", "location", "reaction", "contacts"} | MEDIA_TYPES
)
#: Every type except ``template`` is free-form (needs an open window).
FREE_FORM_TYPES: Final = SEND_TYPES - {"template"}

MAX_TEXT_BODY: Final = 4096
MAX_BUTTONS: Final = 3
MAX_BUTTON_TITLE: Final = 20
MAX_BUTTON_ID: Final = 256
MAX_BUTTON_BODY: Final = 1024
MAX_LIST_BODY: Final = 4096
MAX_LIST_ROWS: Final = 10
MAX_LIST_SECTIONS: Final = 10
MAX_ROW_TITLE: Final = 24
MAX_ROW_DESCRIPTION: Final = 72
MAX_ROW_ID: Final = 200
MAX_SECTION_TITLE: Final = 24
MAX_LIST_BUTTON: Final = 20
MAX_HEADER_TEXT: Final = 60
MAX_FOOTER_TEXT: Final = 60
MAX_CAPTION: Final = 1024
MAX_TEMPLATE_BODY: Final = 1024

_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_BAD_PARAM_TEXT: Final = re.compile(r"[\n\t]| {5,}")


@dataclass(frozen=True)
class Violation:
    """A rule the request breaks: the Meta error code and its ``details``."""

    code: int
    details: str


# --------------------------------------------------------------------------- window


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """True while ``now < last_inbound_at + 24 h`` (closed at exactly 24:00:00)."""
    return last_inbound_at is not None and now < last_inbound_at + WINDOW


def window_closes_at(last_inbound_at: datetime | None) -> datetime | None:
    """When the window opened by ``last_inbound_at`` closes (None: never opened)."""
    return None if last_inbound_at is None else last_inbound_at + WINDOW


@dataclass
class WindowBook:
    """Last inbound message time per (business phone number id, client key)."""

    last_inbound: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def record_inbound(self, phone_number_id: str, client: str, at: datetime) -> None:
        key = (phone_number_id, client)
        previous = self.last_inbound.get(key)
        if previous is None or at >= previous:
            self.last_inbound[key] = at

    def last(self, phone_number_id: str, client: str) -> datetime | None:
        return self.last_inbound.get((phone_number_id, client))

    def is_open(self, phone_number_id: str, client: str, now: datetime) -> bool:
        return window_open(self.last(phone_number_id, client), now)

    def closes_at(self, phone_number_id: str, client: str) -> datetime | None:
        return window_closes_at(self.last(phone_number_id, client))


def fep_active(
    referral_at: datetime | None, first_reply_at: datetime | None, now: datetime
) -> bool:
    """Free entry point: the business replied within 24 h of a Click-to-WhatsApp /
    Page-CTA message; everything is free for 72 h from that reply (§1.3).
    """
    if referral_at is None or first_reply_at is None:
        return False
    if not referral_at <= first_reply_at < referral_at + WINDOW:
        return False
    return now < first_reply_at + FEP_DURATION


def pricing(
    category: str, *, in_window: bool, fep: bool = False, at: datetime | None = None
) -> dict[str, Any]:
    """The PMP ``pricing`` object of a status webhook for a message sent ``at``.

    ``category``: ``service`` (any non-template), ``utility``, ``marketing``,
    ``authentication``. Inside a free entry point (72 h after the reply to a
    Click-to-WhatsApp ad) everything is free (``free_entry_point``). Otherwise marketing and
    authentication are always ``regular`` and billed; service and utility inside the window
    are ``free_customer_service`` before :data:`IN_WINDOW_BILLED_FROM` and ``regular``
    (billed) from it; utility outside the window is billed. ``at`` None means "before the
    change" (the rule of 2025-07-01).
    """
    if fep:
        return {
            "billable": False,
            "pricing_model": "PMP",
            "type": "free_entry_point",
            "category": "referral_conversion",
        }
    in_window_free = at is None or at < IN_WINDOW_BILLED_FROM
    free = in_window_free and (category == "service" or (category == "utility" and in_window))
    return {
        "billable": not free,
        "pricing_model": "PMP",
        "type": "free_customer_service" if free else "regular",
        "category": category,
    }


# --------------------------------------------------------------------------- buckets


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``refill_per_second``."""

    capacity: float
    refill_per_second: float
    tokens: float
    updated_at: datetime

    @classmethod
    def full(cls, capacity: float, refill_per_second: float, now: datetime) -> TokenBucket:
        return cls(capacity, refill_per_second, capacity, now)

    def _refill(self, now: datetime) -> None:
        elapsed = (now - self.updated_at).total_seconds()
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.refill_per_second)
        # a clock moved backwards refills nothing but restarts from ``now``
        self.updated_at = now

    def available(self, now: datetime) -> float:
        self._refill(now)
        return self.tokens

    def try_take(self, now: datetime, amount: float = 1.0) -> bool:
        self._refill(now)
        if self.tokens + 1e-9 >= amount:
            self.tokens = max(0.0, self.tokens - amount)
            return True
        return False

    def seconds_until(self, now: datetime, amount: float = 1.0) -> float:
        """Wait before ``amount`` tokens are available (0 when they are)."""
        self._refill(now)
        missing = amount - self.tokens
        return 0.0 if missing <= 0 else missing / self.refill_per_second


@dataclass
class KeyedBuckets:
    """One :class:`TokenBucket` per key, created full on first use."""

    capacity: float
    refill_per_second: float
    buckets: dict[Any, TokenBucket] = field(default_factory=dict)

    def bucket(self, key: Any, now: datetime) -> TokenBucket:
        found = self.buckets.get(key)
        if found is None:
            found = self.buckets[key] = TokenBucket.full(self.capacity, self.refill_per_second, now)
        return found

    def try_take(self, key: Any, now: datetime) -> bool:
        return self.bucket(key, now).try_take(now)

    def clear(self) -> None:
        self.buckets.clear()


# --------------------------------------------------------------------------- messages


def _missing(path: str) -> Violation:
    return Violation(131008, f"The parameter {path} is required.")


def _invalid(details: str) -> Violation:
    return Violation(131009, details)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def validate_message(body: Mapping[str, Any]) -> Violation | None:
    """Check a ``POST /{phone-number-id}/messages`` body (everything but the recipient
    and the template definition). None when valid.
    """
    if body.get("messaging_product") != "whatsapp":
        return Violation(100, "The parameter messaging_product is required and must be 'whatsapp'.")
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        return Violation(100, f"Param recipient_type must be 'individual', got {recipient_type!r}.")
    kind = body.get("type", "text")
    if not isinstance(kind, str) or kind not in SEND_TYPES:
        return Violation(100, f"Param type must be one of {sorted(SEND_TYPES)}, got {kind!r}.")
    content = body.get(kind)
    if not isinstance(content, Mapping) and not (kind == "contacts" and isinstance(content, list)):
        return _missing(kind)
    context = body.get("context")
    if context is not None and (
        not isinstance(context, Mapping) or not _text(context.get("message_id"))
    ):
        return _missing("context['message_id']")
    checker = _CHECKERS[kind]
    return checker(content)


def _check_text(text: Any) -> Violation | None:
    value = text.get("body")
    if not isinstance(value, str) or not value:
        return _missing("text['body']")
    if len(value) > MAX_TEXT_BODY:
        return Violation(
            100,
            f"Param text['body'] must be at most {MAX_TEXT_BODY} characters long "
            f"(got {len(value)}).",
        )
    return None


def _check_media(kind: str) -> Any:
    def check(media: Any) -> Violation | None:
        has_id, has_link = bool(_text(media.get("id"))), bool(_text(media.get("link")))
        if not has_id and not has_link:
            return _missing(f"{kind}['id'] or {kind}['link']")
        if has_id and has_link:
            return Violation(100, f"Param {kind} must have either 'id' or 'link', not both.")
        if has_link and not str(media["link"]).startswith(("http://", "https://")):
            return Violation(100, f"Param {kind}['link'] must be an http(s) URL.")
        caption = media.get("caption")
        if caption is not None:
            if kind not in ("image", "video", "document"):
                return Violation(100, f"Param {kind} does not support 'caption'.")
            if not isinstance(caption, str) or len(caption) > MAX_CAPTION:
                return _invalid(
                    f"{kind}['caption'] must be a string of at most {MAX_CAPTION} characters."
                )
        return None

    return check


def _check_location(location: Any) -> Violation | None:
    for key in ("latitude", "longitude"):
        value = location.get(key)
        if value is None:
            return _missing(f"location['{key}']")
        try:
            float(value)
        except (TypeError, ValueError):
            return _invalid(f"location['{key}'] must be a number.")
    return None


def _check_reaction(reaction: Any) -> Violation | None:
    if not _text(reaction.get("message_id")):
        return _missing("reaction['message_id']")
    emoji = reaction.get("emoji")
    if emoji is not None and not isinstance(emoji, str):
        return _invalid("reaction['emoji'] must be a string (empty to remove the reaction).")
    return None


def _check_contacts(contacts: Any) -> Violation | None:
    if not isinstance(contacts, list) or not contacts:
        return _missing("contacts")
    for index, contact in enumerate(contacts):
        name = contact.get("name") if isinstance(contact, Mapping) else None
        if not isinstance(name, Mapping) or not _text(name.get("formatted_name")):
            return _missing(f"contacts[{index}]['name']['formatted_name']")
    return None


def _check_template_shape(template: Any) -> Violation | None:
    if not _text(template.get("name")):
        return _missing("template['name']")
    language = template.get("language")
    if not isinstance(language, Mapping) or not _text(language.get("code")):
        return _missing("template['language']['code']")
    components = template.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, Mapping) for c in components):
        return Violation(100, "Param template['components'] must be a list of objects.")
    return None


def _check_header_footer(interactive: Mapping[str, Any], allow_media: bool) -> Violation | None:
    header = interactive.get("header")
    if header is not None:
        if not isinstance(header, Mapping):
            return _invalid("interactive['header'] must be an object.")
        htype = header.get("type")
        if htype == "text":
            text = _text(header.get("text"))
            if not text:
                return _missing("interactive['header']['text']")
            if len(text) > MAX_HEADER_TEXT:
                return _invalid(f"Header text is too long. Max length is {MAX_HEADER_TEXT}.")
        elif htype in ("image", "video", "document") and allow_media:
            media = header.get(htype)
            if not isinstance(media, Mapping):
                return _missing(f"interactive['header']['{htype}']")
            return _check_media(htype)(media)
        else:
            return _invalid(f"Header type {htype!r} is not valid for this interactive message.")
    footer = interactive.get("footer")
    if footer is not None:
        text = _text(footer.get("text")) if isinstance(footer, Mapping) else None
        if not text:
            return _missing("interactive['footer']['text']")
        if len(text) > MAX_FOOTER_TEXT:
            return _invalid(f"Footer text is too long. Max length is {MAX_FOOTER_TEXT}.")
    return None


def _body_text(interactive: Mapping[str, Any]) -> str | None:
    body = interactive.get("body")
    return _text(body.get("text")) if isinstance(body, Mapping) else None


def _check_buttons(interactive: Mapping[str, Any]) -> Violation | None:
    body = _body_text(interactive)
    if not body:
        return _missing("interactive['body']['text']")
    if len(body) > MAX_BUTTON_BODY:
        return _invalid(f"Body text is too long. Max length is {MAX_BUTTON_BODY}.")
    action = interactive.get("action")
    buttons = action.get("buttons") if isinstance(action, Mapping) else None
    if not isinstance(buttons, list):
        return _missing("interactive['action']['buttons']")
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        return _invalid(
            f"Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: {MAX_BUTTONS} "
            f"(got {len(buttons)})."
        )
    seen: set[str] = set()
    for index, button in enumerate(buttons):
        reply = button.get("reply") if isinstance(button, Mapping) else None
        if (
            not isinstance(button, Mapping)
            or button.get("type") != "reply"
            or not isinstance(reply, Mapping)
        ):
            return _invalid(f"Button {index} must be {{'type': 'reply', 'reply': {{id, title}}}}.")
        title, ident = _text(reply.get("title")), _text(reply.get("id"))
        if not title or len(title) > MAX_BUTTON_TITLE:
            return _invalid(
                f"Button title length invalid. Min length: 1, Max length: {MAX_BUTTON_TITLE} "
                f"(button {index}: {title!r})."
            )
        if not ident or len(ident) > MAX_BUTTON_ID:
            return _invalid(
                f"Button id length invalid. Min length: 1, Max length: {MAX_BUTTON_ID}."
            )
        if ident in seen:
            return _invalid(f"Button IDs must be unique (duplicate {ident!r}).")
        seen.add(ident)
    return _check_header_footer(interactive, allow_media=True)


def _check_list(interactive: Mapping[str, Any]) -> Violation | None:
    body = _body_text(interactive)
    if not body:
        return _missing("interactive['body']['text']")
    if len(body) > MAX_LIST_BODY:
        return _invalid(f"Body text is too long. Max length is {MAX_LIST_BODY}.")
    action = interactive.get("action")
    if not isinstance(action, Mapping):
        return _missing("interactive['action']")
    label = _text(action.get("button"))
    if not label:
        return _missing("interactive['action']['button']")
    if len(label) > MAX_LIST_BUTTON:
        return _invalid(f"Button text is too long. Max length is {MAX_LIST_BUTTON}.")
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        return _missing("interactive['action']['sections']")
    if len(sections) > MAX_LIST_SECTIONS:
        return _invalid(f"Too many sections. Max allowed sections: {MAX_LIST_SECTIONS}.")
    seen: set[str] = set()
    for s_index, section in enumerate(sections):
        violation = _check_section(s_index, section, len(sections), seen)
        if violation is not None:
            return violation
    total = sum(len(section["rows"]) for section in sections)
    if total > MAX_LIST_ROWS:
        return _invalid(f"Total row count exceed max allowed count: {MAX_LIST_ROWS} (got {total}).")
    return _check_header_footer(interactive, allow_media=False)


def _check_section(s_index: int, section: Any, count: int, seen: set[str]) -> Violation | None:
    """One section of a list message (of ``count``); row ids go into ``seen``."""
    if not isinstance(section, Mapping):
        return _invalid(f"Section {s_index} must be an object.")
    title = section.get("title")
    if title is None and count > 1:
        return _missing(f"interactive['action']['sections'][{s_index}]['title']")
    if title is not None and (not isinstance(title, str) or len(title) > MAX_SECTION_TITLE):
        return _invalid(f"Section title is too long. Max length is {MAX_SECTION_TITLE}.")
    rows = section.get("rows")
    if not isinstance(rows, list) or not rows:
        return _missing(f"interactive['action']['sections'][{s_index}]['rows']")
    for r_index, row in enumerate(rows):
        violation = _check_row(s_index, r_index, row, seen)
        if violation is not None:
            return violation
    return None


def _check_row(s_index: int, r_index: int, row: Any, seen: set[str]) -> Violation | None:
    """One row of a list section: title, unique id, description."""
    if not isinstance(row, Mapping):
        return _invalid(f"Row {r_index} of section {s_index} must be an object.")
    row_title, row_id = _text(row.get("title")), _text(row.get("id"))
    if not row_title:
        return _missing(f"sections[{s_index}]['rows'][{r_index}]['title']")
    if len(row_title) > MAX_ROW_TITLE:
        return _invalid(
            f"Row title is too long. Max length is {MAX_ROW_TITLE} "
            f"(row {row_id!r}: {len(row_title)} characters)."
        )
    if not row_id or len(row_id) > MAX_ROW_ID:
        return _invalid(f"Row id length invalid. Min length: 1, Max length: {MAX_ROW_ID}.")
    if row_id in seen:
        return _invalid(f"Row IDs must be unique (duplicate {row_id!r}).")
    seen.add(row_id)
    description = row.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_ROW_DESCRIPTION
    ):
        return _invalid(
            f"Row description is too long. Max length is {MAX_ROW_DESCRIPTION} "
            f"(row {row_id!r})."
        )
    return None


def _check_cta_url(interactive: Mapping[str, Any]) -> Violation | None:
    if not _body_text(interactive):
        return _missing("interactive['body']['text']")
    action = interactive.get("action")
    params = action.get("parameters") if isinstance(action, Mapping) else None
    if (
        not isinstance(params, Mapping)
        or not _text(params.get("display_text"))
        or not _text(params.get("url"))
    ):
        return _missing("interactive['action']['parameters'] (display_text, url)")
    if len(params["display_text"]) > MAX_BUTTON_TITLE:
        return _invalid(f"Button text is too long. Max length is {MAX_BUTTON_TITLE}.")
    return _check_header_footer(interactive, allow_media=True)


def _check_location_request(interactive: Mapping[str, Any]) -> Violation | None:
    if not _body_text(interactive):
        return _missing("interactive['body']['text']")
    action = interactive.get("action")
    if not isinstance(action, Mapping) or action.get("name") != "send_location":
        return _invalid("interactive['action']['name'] must be 'send_location'.")
    return None


def _check_contact_info_request(interactive: Mapping[str, Any]) -> Violation | None:
    """Contact-information request (2026): body text and ``action.name``
    ``request_contact_info``; the button is WhatsApp's own (no label, no header).
    """
    body = _body_text(interactive)
    if not body:
        return _missing("interactive['body']['text']")
    if len(body) > MAX_BUTTON_BODY:
        return _invalid(f"Body text is too long. Max length is {MAX_BUTTON_BODY}.")
    action = interactive.get("action")
    if not isinstance(action, Mapping) or action.get("name") != "request_contact_info":
        return _invalid("interactive['action']['name'] must be 'request_contact_info'.")
    if interactive.get("header") is not None:
        return _invalid("A request_contact_info message cannot have a header.")
    return _check_header_footer(interactive, allow_media=False)


_INTERACTIVE: Final = {
    "button": _check_buttons,
    "list": _check_list,
    "cta_url": _check_cta_url,
    "location_request_message": _check_location_request,
    "request_contact_info": _check_contact_info_request,
}


def _check_interactive(interactive: Any) -> Violation | None:
    kind = interactive.get("type")
    if not isinstance(kind, str):
        return _missing("interactive['type']")
    checker = _INTERACTIVE.get(kind)
    if checker is None:
        return Violation(
            100,
            f"interactive type {kind!r} is not supported by the emulator "
            f"(supported: {sorted(_INTERACTIVE)}).",
        )
    return checker(interactive)


_CHECKERS: Final = {
    "text": _check_text,
    "interactive": _check_interactive,
    "template": _check_template_shape,
    "location": _check_location,
    "reaction": _check_reaction,
    "contacts": _check_contacts,
    **{kind: _check_media(kind) for kind in MEDIA_TYPES},
}


# --------------------------------------------------------------------------- templates


def _placeholders(text: str | None) -> list[str]:
    return list(dict.fromkeys(_PLACEHOLDER.findall(text or "")))


def _param_text(param: Mapping[str, Any]) -> str | None:
    """The text a parameter renders to (text, currency/date_time fallback)."""
    ptype = param.get("type")
    if ptype == "text":
        return _text(param.get("text"))
    if ptype in ("currency", "date_time"):
        inner = param.get(ptype)
        return _text(inner.get("fallback_value")) if isinstance(inner, Mapping) else None
    return None


def _sent_components(template_obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in template_obj.get("components") or [] if isinstance(c, Mapping)]


def _params_by_kind(sent: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The parameters of each sent component kind (the first component of a kind counts)."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for comp in sent:
        kind = str(comp.get("type", "")).lower()
        if kind not in found:
            params = comp.get("parameters") or []
            found[kind] = [p for p in params if isinstance(p, Mapping)] if isinstance(params, list) else []
    return found


def check_template_send(
    template: Template | None,
    template_obj: Mapping[str, Any],
    *,
    language: str,
    api_version: str = "v21.0",
) -> Violation | None:
    """Check a template send against the emulator's definition (None: sendable); see
    :func:`check_and_render`.
    """
    checked = check_and_render(template, template_obj, language=language, api_version=api_version)
    return checked if isinstance(checked, Violation) else None


def check_and_render(
    template: Template | None,
    template_obj: Mapping[str, Any],
    *,
    language: str,
    api_version: str = "v21.0",
) -> Violation | dict[str, Any]:
    """Check a template send against the emulator's definition: the violation, or the
    message as :func:`render_template` renders it when it is sendable.

    ``template`` is the definition registered for (name, language), or None when there
    is none. Checks, in Meta's order: existence (132001), status (132015 paused, 132016
    disabled, 132001 not approved), parameter format named/positional (132012),
    parameter counts per component (132000), parameter text rules (132018 from v23,
    100 before), hydrated body length (132005).
    """
    name = _text(template_obj.get("name")) or ""
    if template is None:
        return Violation(132001, f"template name ({name}) does not exist in {language}")
    violation = _check_status(template, name, language)
    if violation is not None:
        return violation
    sent = _sent_components(template_obj)
    by_kind = _params_by_kind(sent)
    violation = (
        _check_parameter_format(template, by_kind)
        or _check_component_params(template, by_kind, api_version)
        or _check_unknown_components(template, by_kind)
        or _check_button_params(template, sent)
    )
    if violation is not None:
        return violation
    rendered = _render(template, sent, by_kind)
    body = rendered.get("body", "")
    if len(body) > MAX_TEMPLATE_BODY:
        return Violation(
            132005, f"body: hydrated text is {len(body)} characters (max {MAX_TEMPLATE_BODY})."
        )
    return rendered


def _check_status(template: Template, name: str, language: str) -> Violation | None:
    """Only an APPROVED template can be sent (132015 paused, 132016 disabled, else 132001)."""
    if template.status == "PAUSED":
        return Violation(
            132015,
            f"Template {name} ({language}) is paused due to low quality so it "
            "cannot be sent in a template message.",
        )
    if template.status == "DISABLED":
        return Violation(
            132016,
            f"Template {name} ({language}) has been paused too many times due to low "
            "quality and is now permanently disabled.",
        )
    if template.status != "APPROVED":
        return Violation(
            132001,
            f"template name ({name}) does not exist in {language} "
            f"(status {template.status}: only APPROVED templates can be sent)",
        )
    return None


def _check_parameter_format(
    template: Template, by_kind: Mapping[str, list[Mapping[str, Any]]]
) -> Violation | None:
    """Header and body text parameters carry ``parameter_name`` exactly when the
    template uses named parameters (132012).
    """
    named = template.parameter_format == "named"
    for kind in ("header", "body"):
        for param in by_kind.get(kind, ()):
            if param.get("type") != "text":
                continue
            has_name = param.get("parameter_name") is not None
            if named and not has_name:
                return Violation(
                    132012,
                    f"{kind}: the template uses named parameters; every text parameter "
                    "needs 'parameter_name'.",
                )
            if not named and has_name:
                return Violation(
                    132012,
                    f"{kind}: the template uses positional parameters; "
                    "'parameter_name' is not allowed.",
                )
    return None


def _check_component_params(
    template: Template, by_kind: Mapping[str, list[Mapping[str, Any]]], api_version: str
) -> Violation | None:
    """The parameters sent for each header and body of the definition: one media
    parameter for a media header, else one per placeholder (by name for named templates),
    each with a valid text.
    """
    named = template.parameter_format == "named"
    for comp in template.components:
        if comp.type not in ("HEADER", "BODY"):
            continue
        kind = comp.type.lower()
        given = by_kind.get(kind, [])
        if comp.type == "HEADER" and comp.format != "TEXT":
            media = comp.format.lower()
            if len(given) != 1 or given[0].get("type") != media:
                return Violation(
                    132000,
                    f"header: the template has a {comp.format} header; expected one "
                    f"parameter of type {media}, got {len(given)}.",
                )
            continue
        violation = _check_text_params(kind, comp.text, given, named, api_version)
        if violation is not None:
            return violation
    return None


def _check_text_params(
    kind: str,
    text: str | None,
    given: Sequence[Mapping[str, Any]],
    named: bool,
    api_version: str,
) -> Violation | None:
    """The parameters sent for one text component against its placeholders."""
    expected = _placeholders(text)
    if len(given) != len(expected):
        return Violation(
            132000,
            f"{kind}: number of localizable_params ({len(given)}) does not match "
            f"the expected number of params ({len(expected)})",
        )
    if named:
        names = [str(p.get("parameter_name")) for p in given]
        if sorted(names) != sorted(expected):
            return Violation(
                132000,
                f"{kind}: parameter names {sorted(names)} do not match the "
                f"template's {sorted(expected)}",
            )
    for param in given:
        value = _param_text(param)
        if value is None or not value.strip():
            return Violation(131008, f"{kind}: a parameter has no text value.")
        if _BAD_PARAM_TEXT.search(value):
            code = 132018 if _version(api_version) >= (23, 0) else 100
            return Violation(
                code,
                f"{kind}: Param text cannot have new-line/tab characters or more "
                "than 4 consecutive spaces.",
            )
    return None


def _check_unknown_components(
    template: Template, by_kind: Mapping[str, list[Mapping[str, Any]]]
) -> Violation | None:
    """Parameters sent for a header or body the template does not have (132000)."""
    for kind in ("header", "body"):
        if by_kind.get(kind) and template.component(kind.upper()) is None:
            return Violation(132000, f"{kind}: the template has no {kind} component.")
    return None


def _check_button_params(
    template: Template, sent: Sequence[Mapping[str, Any]]
) -> Violation | None:
    """Each sent button component names an existing button of the same sub-type, and
    every URL button with a variable suffix gets its parameter.
    """
    buttons = next((c.buttons for c in template.components if c.type == "BUTTONS"), ())
    provided: set[int] = set()
    for given in sent:
        if str(given.get("type", "")).lower() != "button":
            continue
        try:
            index = int(given.get("index", -1))
        except (TypeError, ValueError):
            return Violation(100, "button: 'index' must be an integer.")
        if not 0 <= index < len(buttons):
            return Violation(132000, f"button: the template has no button at index {index}.")
        sub_type = str(given.get("sub_type", "")).lower()
        definition = buttons[index]
        if sub_type.replace("_", "") != definition.type.lower().replace("_", ""):
            return Violation(
                131009,
                f"button {index}: sub_type {sub_type!r} does not match the template's "
                f"{definition.type} button.",
            )
        provided.add(index)
    for index, button in enumerate(buttons):
        if (
            button.type == "URL"
            and button.url
            and _PLACEHOLDER.search(button.url)
            and (index not in provided)
        ):
            return Violation(
                132000,
                f"button {index}: the URL button has a variable suffix; one text "
                "parameter is expected.",
            )
    return None


def render_template(template: Template, template_obj: Mapping[str, Any]) -> dict[str, Any]:
    """Header/body/footer texts with the sent parameters filled in, and the buttons as
    ``[{index, type, text, payload}]`` (quick-reply payload: the sent one, else the
    button's text, as Meta reports taps).
    """
    sent = _sent_components(template_obj)
    return _render(template, sent, _params_by_kind(sent))


def _render(
    template: Template,
    sent: Sequence[Mapping[str, Any]],
    by_kind: Mapping[str, list[Mapping[str, Any]]],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    named = template.parameter_format == "named"
    for comp in template.components:
        if comp.type in ("HEADER", "BODY", "FOOTER") and comp.text is not None:
            given = by_kind.get(comp.type.lower(), [])
            out[comp.type.lower()] = _fill(comp.text, _param_values(given, named))
    payloads = _quick_reply_payloads(sent)
    buttons = []
    for comp in template.components:
        for index, button in enumerate(comp.buttons):
            buttons.append(
                {
                    "index": index,
                    "type": button.type,
                    "text": button.text,
                    "payload": payloads.get(index, button.text)
                    if button.type == "QUICK_REPLY"
                    else None,
                }
            )
    out["buttons"] = buttons
    return out


def _param_values(given: Sequence[Mapping[str, Any]], named: bool) -> dict[str, str]:
    """Placeholder → text of the sent parameters (by name, or by position from 1)."""
    if named:
        return {str(p.get("parameter_name")): _param_text(p) or "" for p in given}
    return {str(i + 1): _param_text(p) or "" for i, p in enumerate(given)}


def _fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder that has a value replaced (the others kept)."""

    def value_of(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(value_of, text)


def _quick_reply_payloads(sent: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """The payloads sent for quick-reply buttons, by button index."""
    payloads: dict[int, str] = {}
    for given in sent:
        if (
            str(given.get("type", "")).lower() != "button"
            or str(given.get("sub_type", "")).lower() != "quick_reply"
        ):
            continue
        for param in given.get("parameters") or []:
            if isinstance(param, Mapping) and param.get("type") == "payload":
                try:
                    payloads[int(given.get("index", -1))] = str(param.get("payload"))
                except (TypeError, ValueError):
                    continue
    return payloads


def _version(api_version: str) -> tuple[int, int]:
    match = re.match(r"^v(\d+)\.(\d+)$", api_version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
