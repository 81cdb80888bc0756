"""What the admin API and the phone page read: the outbox, the clients with their
windows, and one client's thread in both directions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from salon.emulator import rules
from salon.emulator.core import EmulatorCore
from salon.emulator.ids import normalise_recipient
from salon.emulator.inbound_content import DEFAULT_MEDIA
from salon.emulator.model import AdminError, Client, OutboundMessage, ThreadInbound

__all__ = ["ViewsMixin"]


class ViewsMixin(EmulatorCore):
    """The read-only views of :class:`~salon.emulator.Emulator`."""

    def outbox_view(self, to: str | None = None) -> list[dict[str, Any]]:
        """``GET /_emulator/outbox?to=``: what the business sent, in send order (to one
        client when ``to`` names them).
        """
        items = self.outbox
        if to:
            parsed = normalise_recipient(to)
            client = self.find_client(to)
            wanted = {to, parsed[1] if parsed else to}
            items = [
                m
                for m in items
                if m.to in wanted or (client is not None and m.client_key == client.key)
            ]
        return [m.as_dict() for m in items]

    def conversations_view(self) -> list[dict[str, Any]]:
        """``GET /_emulator/conversations``: every client with their window, free entry
        point, preferences and message counts.
        """
        now = self.now()
        out = []
        for client in self.clients.values():
            pnid = self.config.phone_number_id
            last = self.windows.last(pnid, client.key)
            closes = rules.window_closes_at(last)
            out.append(
                {
                    "key": client.key,
                    "wa_id": client.wa_id,
                    "user_id": client.user_id,
                    "name": client.name,
                    "last_inbound_at": last.isoformat() if last else None,
                    "window": {
                        "open": rules.window_open(last, now),
                        "closes_at": closes.isoformat() if closes else None,
                    },
                    "free_entry_point": rules.fep_active(
                        client.referral_at, client.first_reply_at, now
                    ),
                    "marketing_stopped": client.marketing_stopped,
                    "bsuid_only": client.bsuid_only,
                    "parent_user_id": client.parent_user_id,
                    "inbound_count": client.inbound_count,
                    "outbound_count": client.outbound_count,
                }
            )
        return out

    def thread_view(self, identity: str | None, limit: int | None = None) -> dict[str, Any]:
        """``GET /_emulator/thread?client=``: one client's conversation in both
        directions, in the order things happened, with the window and the clock.
        """
        if not identity or not identity.strip():
            raise AdminError("client is required (a phone number or a business-scoped user id)")
        if normalise_recipient(identity) is None:
            raise AdminError(f"client must be a phone number or a BSUID, got {identity!r}")
        client = self.find_client(identity)
        now = self.now()
        pnid = self.config.phone_number_id
        last = self.windows.last(pnid, client.key) if client else None
        closes = rules.window_closes_at(last)
        messages = self._thread_messages(client) if client is not None else []
        if limit is not None and limit >= 0:
            messages = messages[-limit:] if limit else []
        return {
            "client": None if client is None else client.view(),
            "now": now.isoformat(),
            "offset_seconds": self.clock.offset.total_seconds(),
            "business": {
                "name": self.config.verified_name,
                "display_phone_number": self.config.display_phone_number,
            },
            "window": {
                "open": rules.window_open(last, now),
                "last_inbound_at": last.isoformat() if last else None,
                "closes_at": closes.isoformat() if closes else None,
            },
            "messages": messages,
        }

    def _thread_messages(self, client: Client) -> list[dict[str, Any]]:
        """The client's messages and the business's, merged in the order they happened."""
        messages: list[dict[str, Any]] = []
        pending = [e for e in self._thread_inbound if e.client_key == client.key]
        position = 0
        for index, out in enumerate(self.outbox):
            while position < len(pending) and pending[position].after_outbound <= index:
                messages.append(self._thread_entry(pending[position]))
                position += 1
            # a dropped message never reached the client's phone
            if out.client_key == client.key and out.status != "dropped":
                messages.append(_thread_out(out))
        messages.extend(self._thread_entry(e) for e in pending[position:])
        return messages

    def _thread_entry(self, entry: ThreadInbound) -> dict[str, Any]:
        return _thread_echo(entry) if entry.from_business else self._thread_in(entry)

    def _thread_in(self, entry: ThreadInbound) -> dict[str, Any]:
        message = entry.message
        kind = str(message.get("type"))
        content = message.get(kind)
        record = self._inbound.get(str(message.get("id")))
        context = message.get("context")
        item: dict[str, Any] = {
            "direction": "in",
            "wamid": message.get("id"),
            "type": kind,
            "text": None,
            "reply_to": context.get("id") if isinstance(context, Mapping) else None,
            "tapped": None,
            "media": None,
            "at": entry.at.isoformat(),
            # what the client's phone shows: read once the business marked it read
            "status": "read" if record is not None and record.read_by_business else "delivered",
        }
        if kind == "contacts" and isinstance(content, list):
            _show_contacts(item, content)
        elif isinstance(content, Mapping):
            show = _SHOW_INBOUND.get(kind)
            if show is None and kind in DEFAULT_MEDIA:
                show = _show_media
            if show is not None:
                show(item, content)
        return item


def _show_text(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    item["text"] = content.get("body")


def _show_interactive(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    sub = content.get("type")
    found = content.get(sub) if isinstance(sub, str) else None
    reply: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    item["text"] = reply.get("title")
    item["tapped"] = {"kind": sub, "id": reply.get("id"), "title": reply.get("title")}


def _show_button(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    item["text"] = content.get("text")
    item["tapped"] = {
        "kind": "template_button",
        "id": content.get("payload"),
        "title": content.get("text"),
    }


def _show_media(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    item["text"] = content.get("caption")
    item["media"] = {"mime_type": content.get("mime_type"), "filename": content.get("filename")}


def _show_location(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    item["text"] = content.get("name") or content.get("address") or (
        f"{content.get('latitude')}, {content.get('longitude')}"
    )


def _show_reaction(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    item["text"] = content.get("emoji")
    item["reply_to"] = content.get("message_id")


def _show_order(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    products = content.get("product_items") or []
    item["text"] = content.get("text") or f"{len(products)} item(s)"


def _show_contacts(item: dict[str, Any], content: list[Any]) -> None:
    item["text"] = ", ".join(str((c.get("name") or {}).get("formatted_name", "")) for c in content)
    if any(c.get("origin") == "contact_request" for c in content):
        phones = [p.get("phone") for c in content for p in c.get("phones") or []]
        item["text"] = f"Shared contact info: {item['text']} · {', '.join(phones)}"


def _show_system(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    item["text"] = content.get("body")
    item["system_type"] = content.get("type")
    item["status"] = None


def _show_call(item: dict[str, Any], content: Mapping[str, Any]) -> None:
    answered = bool(content.get("answered"))
    seconds = int(content.get("duration") or 0)
    item["text"] = (
        f"Voice call · {seconds // 60} min {seconds % 60:02d} s"
        if answered
        else "Missed voice call (not answered)"
    )
    item["call"] = dict(content)
    item["status"] = None


#: How the thread shows a client's message, by type (media types: :func:`_show_media`).
_SHOW_INBOUND: Final[dict[str, Callable[[dict[str, Any], Mapping[str, Any]], None]]] = {
    "text": _show_text,
    "interactive": _show_interactive,
    "button": _show_button,
    "location": _show_location,
    "reaction": _show_reaction,
    "order": _show_order,
    "system": _show_system,
    "call": _show_call,
}


def _thread_out(message: OutboundMessage) -> dict[str, Any]:
    """A business message as the thread shows it."""
    item = message.as_dict()
    item.pop("payload", None)
    item.pop("sent_at", None)
    content = message.payload.get(message.type) if isinstance(message.payload, Mapping) else None
    interactive_type = None
    list_button = None
    if message.type == "interactive" and isinstance(content, Mapping):
        interactive_type = content.get("type")
        action = content.get("action")
        if interactive_type == "list" and isinstance(action, Mapping):
            list_button = action.get("button")
    return {
        "direction": "out",
        "source": "cloud_api",
        **item,
        "interactive_type": interactive_type,
        "list_button": list_button,
        "options": [dict(o) for o in message.options],
        "at": message.sent_at.isoformat(),
    }


def _thread_echo(entry: ThreadInbound) -> dict[str, Any]:
    """A message an advisor sent from the WhatsApp Business app, shown like the business's
    other messages (``source: "business_app"``); it went through no Graph API call, so it
    has no template, options or statuses.
    """
    message = entry.message
    kind = str(message.get("type"))
    found = message.get(kind)
    content: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    body = content.get("body") if kind == "text" else content.get("caption")
    return {
        "direction": "out",
        "source": "business_app",
        "wamid": message.get("id"),
        "to": message.get("to") or message.get("to_user_id"),
        "type": kind,
        "template": None,
        "language": None,
        "category": None,
        "header": None,
        "body": body,
        "footer": None,
        "buttons": [],
        "status": "delivered",
        "error_code": None,
        "error_details": None,
        "in_window": None,
        "statuses": [],
        "drop_reason": None,
        "interactive_type": None,
        "list_button": None,
        "options": [],
        "at": entry.at.isoformat(),
    }
