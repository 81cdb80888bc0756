"""Coexistence: the business number also runs the WhatsApp Business app, and an advisor
writes to a client from the phone. Meta reports each such message to the bot as an
``smb_message_echoes`` webhook; the client sees it in her thread as the business's
message. It goes through no Graph API call (no outbox entry, no statuses), and it
neither opens nor extends the client's customer service window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from salon.emulator.core import EmulatorCore
from salon.emulator.ids import new_wamid, normalise_recipient
from salon.emulator.inbound_content import DEFAULT_MEDIA, media_content
from salon.emulator.model import AdminError, Client, ThreadInbound, opt_str
from salon.emulator.payloads import WebhookEvent, build_payload, echo_message, unix

__all__ = ["ECHO_FIELD", "ECHO_TYPES", "CoexistenceMixin"]

ECHO_FIELD: Final = "smb_message_echoes"
ECHO_TYPES: Final = frozenset({"text", *DEFAULT_MEDIA})
MAX_TEXT: Final = 4096


class CoexistenceMixin(EmulatorCore):
    """The WhatsApp Business app's side of :class:`~salon.emulator.Emulator` (the admin
    API's ``echo``).
    """

    def echo(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/echo``: an advisor writes to a client from the WhatsApp
        Business app. ``{"to": wa_id or BSUID, "text": "...", "type"?: text|image|video|
        audio|document|sticker, "duplicate"?: N}``; the bot gets the signed
        ``smb_message_echoes`` webhook (``to`` the phone number unless the client is
        username-only, ``to_user_id`` her BSUID when she has one).
        """
        client = self._echo_recipient(request)
        kind = str(request.get("type") or "text")
        if kind not in ECHO_TYPES:
            raise AdminError(f"type must be one of {sorted(ECHO_TYPES)}, got {kind!r}")
        duplicates = request.get("duplicate", 0) or 0
        if not isinstance(duplicates, int) or isinstance(duplicates, bool) or duplicates < 0:
            raise AdminError("duplicate must be a non-negative integer")
        now = self.now()
        content = self._echo_content(kind, request, now)
        wamid = new_wamid(client.known_phone or client.user_id)
        message = echo_message(
            wamid=wamid,
            timestamp=now,
            business_number=self.config.display_phone_number,
            to=client.known_phone,
            to_user_id=client.user_id,
            to_parent_user_id=client.parent_user_id,
            kind=kind,
            content=content,
        )
        value = {
            "messaging_product": "whatsapp",
            "metadata": self.metadata.as_dict(),
            "message_echoes": [message],
        }
        # In her thread as the business's message; her window is not touched.
        self._thread_inbound.append(
            ThreadInbound(client.key, message, now, len(self.outbox), from_business=True)
        )
        event = WebhookEvent(
            ECHO_FIELD, value, client.key, duplicates=duplicates, labels=[f"echo:{kind}:{wamid}"]
        )
        self.dispatcher.submit(event)
        return {
            "wamid": wamid,
            "timestamp": str(unix(now)),
            "type": kind,
            "client": client.view(),
            "message": message,
            "webhook": build_payload(self.config.waba_id, [event]),
        }

    def _echo_recipient(self, request: Mapping[str, Any]) -> Client:
        """The client the advisor writes to: one the emulator knows by that id, or a new
        one (an advisor may write first from the phone).
        """
        raw = opt_str(request.get("to"), "to")
        if not raw or not raw.strip():
            raise AdminError("to is required (a phone number or a business-scoped user id)")
        parsed = normalise_recipient(raw)
        if parsed is None:
            raise AdminError(f"to must be a phone number or a BSUID, got {raw!r}")
        client = self.find_client(raw, retired=False)
        if client is None:
            kind, ident = parsed
            client = self._client(
                ident if kind == "phone" else None, ident if kind == "bsuid" else None
            )
        return client

    def _echo_content(self, kind: str, request: Mapping[str, Any], now: Any) -> dict[str, Any]:
        """What goes under the echo's type: the text, or a stored file (default per type)
        with the text as its caption where the type has one.
        """
        text = request.get("text")
        if text is not None and not isinstance(text, str):
            raise AdminError("text must be a string")
        if text is not None and len(text) > MAX_TEXT:
            raise AdminError(f"text is longer than {MAX_TEXT} characters")
        if kind == "text":
            if not text or not text.strip():
                raise AdminError("text is required for a text message")
            return {"body": text}
        mime, data, filename = DEFAULT_MEDIA[kind]
        item = self.store_media(data, mime, filename, now)
        return media_content(kind, {"caption": text} if text else {}, item, None)
