"""Assistant responses → Cloud API message objects, within WhatsApp's limits.

A response (the dict Rasa hands an output channel: ``text``, ``buttons``, ``image``,
``attachment``, ``custom``, plus ``utter_action`` and the response's ``metadata``)
becomes one or more :class:`OutgoingMessage`:

- text longer than 4,096 characters is split at paragraph, then sentence, then word
  boundaries;
- up to three buttons with titles of at most 20 characters become reply buttons; more
  buttons, or longer titles, become a list (at most 10 rows, titles ≤ 24, descriptions
  ≤ 72; the rest of a long title goes to the description);
- an image or attachment is sent by link (or by media id when it is not a URL);
- ``custom`` is passed through: a Cloud API message object (``{"type": "location", ...}``),
  or ``{"wa_template": name, "wa_params": {...}}`` for a template.

The response metadata may name the message's purpose (``purpose: order_update``), its
origin (``origin``: the outbound request it answers) and template parameters
(``wa_params``); the purpose decides which approved template may
stand in when the window has closed. Without one, a response is a conversational reply
(``service_reply``): parked and announced with a nudge when the window has closed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from salon.graphemes import cut
from salon.purposes import SERVICE_REPLY

__all__ = [
    "MAX_BUTTON_TITLE",
    "MAX_BUTTONS",
    "MAX_LIST_ROWS",
    "MAX_TEXT",
    "OutgoingMessage",
    "RenderError",
    "render_response",
    "split_text",
]

MAX_TEXT: Final = 4096
MAX_INTERACTIVE_BODY: Final = 1024
MAX_LIST_BODY: Final = 4096
MAX_BUTTONS: Final = 3
MAX_BUTTON_TITLE: Final = 20
MAX_BUTTON_ID: Final = 256
MAX_LIST_ROWS: Final = 10
MAX_ROW_TITLE: Final = 24
MAX_ROW_DESCRIPTION: Final = 72
MAX_ROW_ID: Final = 200
DEFAULT_LIST_BUTTON: Final = "Choose"

_URL = re.compile(r"^https?://", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


class RenderError(ValueError):
    """A response that cannot become a WhatsApp message (reported, never sent half)."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One Cloud API message object (without ``to``) and why it is sent."""

    message: dict[str, Any]
    purpose: str = SERVICE_REPLY
    utter_action: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    template: str | None = None
    """A template the sender asked for explicitly (``custom.wa_template``)."""
    language: str | None = None
    origin: str | None = None
    """Who asked for it (e.g. ``ob:<request>:<attempt>`` for an outbound request): kept in
    the outbound record and with parked content, and sent to Meta as
    ``biz_opaque_callback_data`` (``<origin>#free_form`` or ``<origin>#template``), so its
    fate can be traced back even from a status webhook alone."""
    parked_id: str | None = None
    """The parked item this message delivers (set by the guard when it delivers parked
    content): kept in the outbound record, so the delivered copy is tied to its item."""
    parked_ids: tuple[str, ...] = ()
    """Every parked item this message delivers, when several waiting items leave merged
    as one message (the first is ``parked_id``)."""
    reply_to: str | None = None
    """The wamid of the client's message this answers (kept in the outbound record): a
    turn replayed after its replica died is not run again once its answer has left."""


# --------------------------------------------------------------------------- text


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters at the most natural
    boundary available: paragraphs, then sentences, then words, then anywhere.
    """
    text = text.strip()
    if not text:
        return []
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        candidate = f"{current}{piece}" if current else piece.lstrip()
        if len(candidate.rstrip()) <= limit:
            current = candidate
            continue
        if current.strip():
            chunks.append(current.strip())
        current = piece.lstrip()
    if current.strip():
        chunks.append(current.strip())
    return chunks


def _pieces(text: str, limit: int) -> list[str]:
    """Pieces no longer than ``limit``, each keeping its leading separator."""
    out: list[str] = []
    for para in re.split(r"(\n\s*\n)", text):
        if len(para) <= limit:
            out.append(para)
            continue
        for sentence in _SENTENCE_END.split(para):
            sentence = sentence + " "
            if len(sentence) <= limit:
                out.append(sentence)
                continue
            for word in re.split(r"(\s+)", sentence):
                while len(word) > limit:
                    at = cut(word, limit)  # never inside an emoji or a letter's accents
                    out.append(word[:at])
                    word = word[at:]
                out.append(word)
    return [p for p in out if p]


# --------------------------------------------------------------------------- buttons


def _button_id(button: Mapping[str, Any], limit: int) -> str:
    payload = button.get("payload") or button.get("title") or ""
    payload = str(payload)
    if len(payload) > limit:
        raise RenderError(f"button payload longer than {limit} characters: {payload[:40]}…")
    return payload


def _reply_buttons(text: str, buttons: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": text},
            "action": {
                "buttons": [
                    {"type": "reply",
                     "reply": {"id": _button_id(b, MAX_BUTTON_ID), "title": str(b["title"])}}
                    for b in buttons
                ]
            },
        },
    }


def _list(text: str, buttons: Sequence[Mapping[str, Any]], label: str) -> dict[str, Any]:
    rows = []
    for b in buttons[:MAX_LIST_ROWS]:
        title = str(b["title"]).strip()
        description = str(b.get("description") or "").strip()
        if len(title) > MAX_ROW_TITLE:
            cut = title.rfind(" ", 0, MAX_ROW_TITLE - 1)
            cut = cut if cut > 0 else MAX_ROW_TITLE - 1
            rest = title[cut:].strip()
            title = title[:cut].rstrip() + "…"
            description = f"…{rest} {description}".strip()
        if len(description) > MAX_ROW_DESCRIPTION:
            description = description[: MAX_ROW_DESCRIPTION - 1].rstrip() + "…"
        row: dict[str, Any] = {"id": _button_id(b, MAX_ROW_ID), "title": title}
        if description:
            row["description"] = description
        rows.append(row)
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": text},
            "action": {"button": label[:MAX_BUTTON_TITLE], "sections": [{"rows": rows}]},
        },
    }


def _with_buttons(text: str, buttons: Sequence[Mapping[str, Any]], list_label: str) -> list[dict[str, Any]]:
    clean = [b for b in buttons if isinstance(b, Mapping) and str(b.get("title") or "").strip()]
    if not clean:
        return [_text(chunk) for chunk in split_text(text)]
    if len(clean) > MAX_LIST_ROWS:
        raise RenderError(f"{len(clean)} buttons: WhatsApp lists hold at most {MAX_LIST_ROWS}")
    fits_buttons = len(clean) <= MAX_BUTTONS and all(
        len(str(b["title"])) <= MAX_BUTTON_TITLE for b in clean
    )
    limit = MAX_INTERACTIVE_BODY if fits_buttons else MAX_LIST_BODY
    chunks = split_text(text, limit) or ["…"]
    head = [_text(chunk) for chunk in chunks[:-1]]
    last = chunks[-1]
    if fits_buttons:
        return [*head, _reply_buttons(last, clean)]
    return [*head, _list(last, clean, list_label)]


def _text(body: str) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "text", "text": {"body": body}}
    if _URL.search(body) or "http://" in body or "https://" in body:
        message["text"]["preview_url"] = True
    return message


def _media(kind: str, ref: str, caption: str | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"link": ref} if _URL.match(ref) else {"id": ref}
    if caption:
        media["caption"] = caption[:1024]
    if kind == "document" and _URL.match(ref):
        name = ref.rsplit("/", 1)[-1].split("?", 1)[0]
        if name:
            media["filename"] = name
    return {"type": kind, kind: media}


# --------------------------------------------------------------------------- responses


def _object(value: Any) -> Mapping[str, Any]:
    """``value`` when it is an object (a mapping), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def render_response(
    response: Mapping[str, Any], *, list_label: str = DEFAULT_LIST_BUTTON
) -> list[OutgoingMessage]:
    """Every Cloud API message a response turns into, in order."""
    meta = _object(response.get("metadata"))
    purpose = str(meta.get("purpose") or SERVICE_REPLY)
    origin = str(meta["origin"]) if meta.get("origin") else None
    reply_to = str(meta["reply_to"]) if meta.get("reply_to") else None
    params = _object(meta.get("wa_params"))
    utter = response.get("utter_action") or response.get("template")
    utter_action = str(utter) if utter else None

    def out(message: dict[str, Any], **extra: Any) -> OutgoingMessage:
        return OutgoingMessage(
            message, purpose=extra.get("purpose", purpose), utter_action=utter_action,
            params=extra.get("params", params), template=extra.get("template"),
            language=extra.get("language"), origin=origin, reply_to=reply_to,
        )

    result: list[OutgoingMessage] = []
    text = response.get("text")
    text = str(text) if text is not None else ""
    buttons = response.get("quick_replies") or response.get("buttons") or []
    if buttons and isinstance(buttons, list):
        result.extend(out(m) for m in _with_buttons(text, buttons, list_label))
    elif text.strip():
        result.extend(out(_text(chunk)) for chunk in split_text(text))

    image = response.get("image")
    if isinstance(image, str) and image:
        result.append(out(_media("image", image)))
    attachment = response.get("attachment")
    if isinstance(attachment, str) and attachment:
        result.append(out(_media("document", attachment)))
    elif isinstance(attachment, Mapping):
        kind = str(attachment.get("type") or "document")
        ref = attachment.get("link") or attachment.get("id") or attachment.get("url")
        if kind not in ("image", "video", "audio", "document", "sticker") or not ref:
            raise RenderError(f"attachment needs a media type and a link or id: {dict(attachment)}")
        result.append(out(_media(kind, str(ref), attachment.get("caption"))))

    custom = response.get("custom")
    if isinstance(custom, Mapping) and custom:
        result.append(_custom(custom, out))
    elif custom not in (None, {}, ""):
        raise RenderError(f"custom payload must be an object, got {type(custom).__name__}")
    return result


def _custom(custom: Mapping[str, Any], out: Any) -> OutgoingMessage:
    if "wa_template" in custom:
        name = str(custom["wa_template"])
        params = _object(custom.get("wa_params"))
        purpose = str(custom.get("purpose") or "")
        language = custom.get("language")
        message = {"type": "template", "template": {"name": name}}
        return out(message, template=name, params=params, purpose=purpose or SERVICE_REPLY,
                   language=str(language) if language else None)
    kind = custom.get("type")
    if not isinstance(kind, str) or kind not in custom:
        raise RenderError(
            "custom payload must be a Cloud API message object ({'type': t, t: {...}}) "
            "or {'wa_template': name}"
        )
    # The recipient is the guard's to write (salon.whatsapp.addressing), never the payload's.
    message = {k: v for k, v in custom.items()
               if k not in ("to", "recipient", "messaging_product", "recipient_type")}
    return out(message)
