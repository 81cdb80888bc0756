"""Fewer bubbles for the same words: the responses of one turn, merged where it reads
naturally and fits.

Rasa hands the output channel one response per bot utterance, and a turn often has
several ("Of course." then "Which boutique?" with its buttons). Each would leave as its
own WhatsApp message, and since 2026-10-01 Meta bills every message, replies inside the
window included. :func:`merge_responses` joins consecutive responses into one message
when the client would read them as one anyway:

- each is text, optionally with reply buttons, and nothing else: an image, an
  attachment, a custom object (a template ``{"wa_template": …}``, a location, any Cloud
  API object) or Rasa's ``elements`` never merges;
- they are for the same thing: the same purpose (none is a reply), origin and template
  parameters in their metadata, which decide what the send-time guard may send in their
  place once the window has closed;
- buttons close a message: only the last part of a merged message may carry them, and
  buttons WhatsApp would show as a list (more than three, or a title longer than 20
  characters) keep their response alone;
- a part followed by another in the same message says its ``lead`` (in its metadata)
  instead of its whole text, when it has one: a greeting keeps its salutation without
  "How may I help you?", a "With pleasure. Is there anything else I may do for you?"
  keeps "With pleasure." — the answer that follows makes the question moot;
- the merged text fits one message: 4,096 characters, 1,024 under reply buttons (the
  body of an interactive message), parts joined by a blank line;
- the merged message's ``utter_action`` names its parts (``utter_a+utter_b``), within the
  200 characters the outbound record keeps; its metadata is what the parts agree on;
- the confirmation of a consent decision understood in the client's sentence
  (``utter_opt_out``, ``utter_opt_in``) stays alone: the decision is recorded by that
  response's name before the client reads it.

A response alone in its group is returned as it came. ``SALON_MERGE_REPLIES=off`` turns
merging off (:class:`MergeConfig`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from salon.consent.keywords import CONSENT_UTTERANCES
from salon.purposes import SERVICE_REPLY
from salon.whatsapp.messages import (
    MAX_BUTTON_TITLE,
    MAX_BUTTONS,
    MAX_INTERACTIVE_BODY,
    MAX_TEXT,
)

__all__ = [
    "JOINER",
    "LEAD",
    "MAX_UTTER_ACTION",
    "MERGE_ENV",
    "MergeConfig",
    "MergeConfigError",
    "merge_responses",
]

MERGE_ENV: Final = "SALON_MERGE_REPLIES"
JOINER: Final = "\n\n"
"""Between the parts of a merged message: a blank line, as between paragraphs."""
LEAD: Final = "lead"
"""The metadata key of a response's shorter form, said when another part follows it."""
MAX_UTTER_ACTION: Final = 200
"""The outbound record's ``utter_action`` column (salon/guard/sent.py)."""
NAME_JOINER: Final = "+"

_ALONE: Final = frozenset(CONSENT_UTTERANCES)
"""Responses whose name the channel acts on before sending them (the consent book records
the decision they confirm): never merged, so the name reaches it whole."""
_PARTS: Final = frozenset({"text", "buttons", "quick_replies", "utter_action", "template", "metadata"})
"""Keys a merged message builds from its parts; every other key is kept where they agree."""
_NOT_TEXT: Final = ("image", "attachment", "custom", "elements")
_MISSING: Final = object()


class MergeConfigError(ValueError):
    """``SALON_MERGE_REPLIES`` is neither ``on`` nor ``off``."""


@dataclass(frozen=True, slots=True)
class MergeConfig:
    """Whether a client's turn sends its responses merged (on by default)."""

    enabled: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MergeConfig:
        raw = (os.environ if environ is None else environ).get(MERGE_ENV, "").strip().lower()
        if raw in ("", "on"):
            return cls(enabled=True)
        if raw == "off":
            return cls(enabled=False)
        raise MergeConfigError(f"{MERGE_ENV} must be on or off, not {raw[:20]!r}")


def merge_responses(responses: Sequence[Mapping[str, Any]],
                    config: MergeConfig | None = None) -> list[Mapping[str, Any]]:
    """The messages to send for one turn's ``responses`` (Rasa's dicts), in order:
    consecutive ones merged by the rules of the module's docstring. With merging off,
    the responses as they came.
    """
    if config is not None and not config.enabled:
        return list(responses)
    out: list[Mapping[str, Any]] = []
    group: list[Mapping[str, Any]] = []

    def close() -> None:
        if group:
            out.append(group[0] if len(group) == 1 else _merged(group))
            group.clear()

    for response in responses:
        if not _mergeable(response):
            close()
            out.append(response)
            continue
        if group and not _joins(group, response):
            close()
        group.append(response)
        if _buttons(response):
            close()  # buttons end a message: nothing may follow them in it
    close()
    return out


# --------------------------------------------------------------------------- the rules


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(response: Mapping[str, Any]) -> str:
    text = response.get("text")
    return text.strip() if isinstance(text, str) else ""


def _lead(response: Mapping[str, Any]) -> str:
    """What a part says when another follows it in the same message: its lead, else its text."""
    lead = _object(response.get("metadata")).get(LEAD)
    return lead.strip() if isinstance(lead, str) and lead.strip() else _text(response)


def _name(response: Mapping[str, Any]) -> str | None:
    """The response's name as the outbound record keeps it (see render_response)."""
    name = response.get("utter_action") or response.get("template")
    return str(name) if name else None


def _buttons(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The buttons WhatsApp would show (as render_response cleans them)."""
    buttons = response.get("quick_replies") or response.get("buttons") or []
    if not isinstance(buttons, list):
        return []
    return [b for b in buttons if isinstance(b, Mapping) and str(b.get("title") or "").strip()]


def _mergeable(response: Mapping[str, Any]) -> bool:
    """Text, with reply buttons at most, and nothing else; not a consent confirmation."""
    if not _text(response) or _name(response) in _ALONE:
        return False
    if any(response.get(key) not in (None, "", {}, []) for key in _NOT_TEXT):
        return False
    raw = response.get("quick_replies") or response.get("buttons")
    if raw and not isinstance(raw, list):
        return False  # a shape render_response would not read as buttons: left as it is
    buttons = _buttons(response)
    # Buttons WhatsApp would show as a list (or could not show at all) keep their response alone.
    return len(buttons) <= MAX_BUTTONS and all(len(str(b["title"])) <= MAX_BUTTON_TITLE for b in buttons)


def _sending_key(response: Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """What the send-time guard decides a message by, besides its content: its purpose,
    its origin and its template parameters (normalised as render_response reads them).
    """
    meta = _object(response.get("metadata"))
    origin = str(meta["origin"]) if meta.get("origin") else None
    return str(meta.get("purpose") or SERVICE_REPLY), origin, dict(_object(meta.get("wa_params")))


def _joins(group: Sequence[Mapping[str, Any]], response: Mapping[str, Any]) -> bool:
    """Whether ``response`` may be added to ``group`` (mergeable parts, none with buttons)."""
    if _sending_key(response) != _sending_key(group[0]):
        return False
    text = JOINER.join([*(_text(part) for part in group), _text(response)])
    if len(text) > (MAX_INTERACTIVE_BODY if _buttons(response) else MAX_TEXT):
        return False
    names = [name for name in (_name(part) for part in (*group, response)) if name]
    return len(NAME_JOINER.join(names)) <= MAX_UTTER_ACTION


def _agreed(values: Sequence[Mapping[str, Any]], skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The entries every mapping of ``values`` has, with the same value."""
    first, rest = values[0], values[1:]
    return {key: value for key, value in first.items()
            if key not in skip and all(other.get(key, _MISSING) == value for other in rest)}


def _merged(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One response for ``parts``: their texts, the last part's buttons, their names and
    what they agree on.
    """
    merged = _agreed(parts, _PARTS)
    merged["text"] = JOINER.join([*(_lead(part) for part in parts[:-1]), _text(parts[-1])])
    last = parts[-1]
    for key in ("buttons", "quick_replies"):
        if last.get(key):
            merged[key] = last[key]
    names = [name for name in (_name(part) for part in parts) if name]
    if names:
        merged["utter_action"] = NAME_JOINER.join(names)
    metadata = _agreed([_object(part.get("metadata")) for part in parts])
    if metadata:
        merged["metadata"] = metadata
    return merged


# --------------------------------------------------------------------------- waiting content


def _cloud_text(message: Mapping[str, Any]) -> str | None:
    """The text of a Cloud API text message, or of the body of a reply-button message
    without header or footer; None for anything else (never merged).
    """
    kind = message.get("type")
    if kind == "text":
        body = _object(message.get("text")).get("body")
        return body.strip() if isinstance(body, str) and body.strip() else None
    if kind == "interactive":
        interactive = _object(message.get("interactive"))
        if interactive.get("type") != "button" or interactive.get("header") or interactive.get("footer"):
            return None
        body = _object(interactive.get("body")).get("text")
        return body.strip() if isinstance(body, str) and body.strip() else None
    return None


def merge_messages(messages: Sequence[Mapping[str, Any]],
                   config: MergeConfig | None = None) -> list[list[int]]:
    """How content that waited for the client (parked while her window was closed) leaves
    once she writes: groups of positions in ``messages`` (Cloud API message objects, in
    order), each group one WhatsApp message. Texts merge, and a reply-button message may
    end a group; media, templates, lists and anything else leave alone; a merged text
    fits 4,096 characters (1,024 under buttons). With merging off, one group per message.
    """
    if config is not None and not config.enabled:
        return [[index] for index in range(len(messages))]
    groups: list[list[int]] = []
    current: list[int] = []
    length = 0
    for index, message in enumerate(messages):
        text = _cloud_text(message)
        if text is None:
            if current:
                groups.append(current)
            groups.append([index])
            current, length = [], 0
            continue
        buttons = message.get("type") == "interactive"
        added = length + (len(JOINER) if current else 0) + len(text)
        if current and added > (MAX_INTERACTIVE_BODY if buttons else MAX_TEXT):
            groups.append(current)
            current, added = [], len(text)
        current.append(index)
        length = added
        if buttons:
            groups.append(current)
            current, length = [], 0
    if current:
        groups.append(current)
    return groups


def joined_message(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One Cloud API message for a group of :func:`merge_messages`: the texts joined by a
    blank line, in the last message's shape (its buttons, when it has them).
    """
    if len(messages) == 1:
        return dict(messages[0])
    texts = [_cloud_text(message) or "" for message in messages]
    joined = JOINER.join(texts)
    last = messages[-1]
    if last.get("type") == "interactive":
        interactive = dict(_object(last.get("interactive")))
        interactive["body"] = {"text": joined}
        return {**last, "interactive": interactive}
    preview = any(_object(message.get("text")).get("preview_url") for message in messages)
    return {"type": "text", "text": {"body": joined, **({"preview_url": True} if preview else {})}}


def superseded(response: Mapping[str, Any]) -> Mapping[str, Any]:
    """A turn's response when the client wrote again before it left: its reply buttons
    offer choices she has already answered by writing, so a text with reply buttons loses
    them and may merge with the answer to her next message. Anything else (a list, media,
    a template) is left as it is.
    """
    if not _mergeable(response) or not _buttons(response):
        return response
    return {key: value for key, value in response.items() if key not in ("buttons", "quick_replies")}
