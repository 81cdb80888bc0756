"""What a client's message holds, built from a ``POST /_emulator/inbound`` request: the
``content`` under the message's type, the ad referral and the default files a client
"sends" when the request gives none. Pure functions; bad requests raise
:class:`~salon.emulator.model.AdminError`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final

from salon.emulator.ids import new_numeric_id
from salon.emulator.model import AdminError, MediaItem

__all__ = [
    "CONTENT_BUILDERS",
    "DEFAULT_MEDIA",
    "INBOUND_TYPES",
    "contacts_content",
    "location_content",
    "media_content",
    "order_content",
    "reaction_content",
    "referral_object",
    "text_content",
    "unsupported_content",
    "unsupported_errors",
]

INBOUND_TYPES: Final = frozenset(
    {
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "reaction",
        "unsupported",
        "order",
        "contacts",
    }
)
#: A 1×1 transparent PNG: the default picture a client "sends".
_PIXEL_PNG: Final = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
#: The file (mime type, bytes, file name) a client sends by default, per media type.
DEFAULT_MEDIA: Final[dict[str, tuple[str, bytes, str | None]]] = {
    "image": ("image/png", _PIXEL_PNG, None),
    "sticker": (
        "image/webp",
        b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00",
        None,
    ),
    "audio": ("audio/ogg; codecs=opus", b"OggS\x00\x02" + b"\x00" * 20, None),
    "video": ("video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 12, None),
    "document": (
        "application/pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n",
        "document.pdf",
    ),
}


def text_content(request: Mapping[str, Any]) -> dict[str, Any]:
    """A text message's ``text`` object."""
    text = request.get("text")
    if not isinstance(text, str) or not text:
        raise AdminError("text is required for a text message")
    return {"body": text}


def location_content(request: Mapping[str, Any]) -> dict[str, Any]:
    """A shared location (default: a point in central Paris).

    ``name`` at the top level of the request is the client's profile name; the place's
    name goes in ``location.name`` (or ``place_name``).
    """
    given = request.get("location") or {}
    if not isinstance(given, Mapping):
        raise AdminError("location must be an object")
    merged = {
        "latitude": request.get("latitude"),
        "longitude": request.get("longitude"),
        "name": request.get("place_name"),
        "address": request.get("address"),
        "url": request.get("url"),
        **given,
    }
    try:
        location: dict[str, Any] = {
            "latitude": float(merged["latitude"] if merged["latitude"] is not None else 48.8674),
            "longitude": float(
                merged["longitude"] if merged["longitude"] is not None else 2.3294
            ),
        }
    except (TypeError, ValueError):
        raise AdminError("latitude and longitude must be numbers") from None
    for key in ("name", "address", "url"):
        if merged.get(key) is not None:
            location[key] = str(merged[key])
    return location


def reaction_content(request: Mapping[str, Any], reply_to: str | None) -> dict[str, Any]:
    """A reaction to ``message_id`` (or ``reply_to``); no emoji removes it."""
    target = request.get("message_id") or reply_to
    if not isinstance(target, str) or not target:
        raise AdminError("a reaction needs message_id (or reply_to): the wamid reacted to")
    emoji = request.get("emoji", request.get("text"))
    reaction = {"message_id": target}
    if emoji:
        reaction["emoji"] = str(emoji)
    return reaction


def unsupported_content(request: Mapping[str, Any]) -> dict[str, Any]:
    """A message type the Cloud API does not deliver (a poll by default)."""
    return {"type": str(request.get("unsupported_type") or "poll")}


def order_content(request: Mapping[str, Any]) -> dict[str, Any]:
    """A cart sent from the catalog: the request's ``order``, or a one-item default."""
    order = request.get("order")
    if order is not None:
        if not isinstance(order, Mapping):
            raise AdminError("order must be an object")
        return dict(order)
    text = request.get("text")
    return {
        "catalog_id": "354160437058781",
        "text": text if isinstance(text, str) else "",
        "product_items": [
            {
                "product_retailer_id": "SOL-CARRE-26",
                "quantity": 1,
                "item_price": 3200,
                "currency": "EUR",
            },
        ],
    }


def contacts_content(request: Mapping[str, Any]) -> list[Any]:
    """Shared contact cards: the request's ``contacts``, or one card."""
    contacts = request.get("contacts")
    if contacts is not None:
        if not isinstance(contacts, list):
            raise AdminError("contacts must be a list")
        return list(contacts)
    return [
        {
            "name": {
                "formatted_name": "Camille Laurent",
                "first_name": "Camille",
                "last_name": "Laurent",
            },
            "phones": [{"phone": "+33 6 12 34 56 78", "wa_id": "33612345678", "type": "CELL"}],
        }
    ]


#: The content builders that need nothing but the request, by inbound type.
CONTENT_BUILDERS: Final[dict[str, Callable[[Mapping[str, Any]], Any]]] = {
    "text": text_content,
    "location": location_content,
    "unsupported": unsupported_content,
    "order": order_content,
    "contacts": contacts_content,
}


def media_content(
    kind: str, request: Mapping[str, Any], item: MediaItem, url: str | None
) -> dict[str, Any]:
    """A media message's object for the stored file ``item`` (``url`` when the emulator
    puts download URLs in inbound media).
    """
    content: dict[str, Any] = {}
    caption = request.get("caption", request.get("text") if kind != "audio" else None)
    if caption and kind in ("image", "video", "document"):
        content["caption"] = str(caption)
    if kind == "document":
        content["filename"] = item.filename or "document.pdf"
    content["mime_type"] = item.mime_type
    content["sha256"] = item.sha256_b64
    content["id"] = item.id
    if url is not None:
        content["url"] = url
    if kind == "audio":
        content["voice"] = bool(request.get("voice", True))
    if kind == "sticker":
        content["animated"] = bool(request.get("animated", False))
    return content


def referral_object(raw: Any) -> dict[str, Any] | None:
    """The ``referral`` of a message that came from a Click-to-WhatsApp ad: Maison
    Solenne's default ad with the request's fields over it (``true``: the default as is;
    a video ad gets video URLs instead of the image).
    """
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        raise AdminError("referral must be an object (or true for a default ad referral)")
    referral: dict[str, Any] = {
        "source_url": "https://fb.me/maisonsolenne",
        "source_id": new_numeric_id(18),
        "source_type": "ad",
        "body": "Maison Solenne — the new collection",
        "headline": "Chat with us",
        "media_type": "image",
        "image_url": "https://scontent.xx.fbcdn.net/v/maison-solenne.jpg",
        "ctwa_clid": "Aff-" + secrets.token_urlsafe(96)[:120],
        "welcome_message": {"text": "Welcome to Maison Solenne. How may we help?"},
    }
    referral.update(raw)
    if (
        referral.get("media_type") == "video"
        and "image_url" in referral
        and "image_url" not in raw
    ):
        referral.pop("image_url")
        referral.setdefault("video_url", "https://scontent.xx.fbcdn.net/v/maison-solenne.mp4")
        referral.setdefault("thumbnail_url", "https://scontent.xx.fbcdn.net/v/thumb.jpg")
    return referral


def unsupported_errors(kind: str) -> list[dict[str, Any]] | None:
    """The ``errors`` of an inbound message: 131051 for an unsupported type, else None."""
    if kind != "unsupported":
        return None
    return [
        {
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."},
        }
    ]
