"""Playing the client: messages to the business (with taps on its buttons and a shared
contact card), marketing preferences, identity changes and calls. Each one records what
the client did and sends the bot its signed webhook.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from salon.emulator.core import EmulatorCore
from salon.emulator.ids import (
    country_of,
    is_bsuid,
    new_bsuid,
    new_call_id,
    new_parent_bsuid,
    new_wamid,
    normalise_recipient,
)
from salon.emulator.inbound_content import (
    CONTENT_BUILDERS,
    DEFAULT_MEDIA,
    INBOUND_TYPES,
    media_content,
    reaction_content,
    referral_object,
    unsupported_errors,
)
from salon.emulator.model import (
    AdminError,
    Client,
    InboundRecord,
    MediaItem,
    ThreadInbound,
    opt_str,
)
from salon.emulator.payloads import (
    WebhookEvent,
    build_payload,
    call_object,
    contact_object,
    inbound_message,
    system_message,
    unix,
    user_preferences_value,
)

__all__ = ["InboundMixin"]

#: The SDP offer of an emulated call (placeholder: no media is ever exchanged).
_SDP_OFFER: Final = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)


@dataclass(frozen=True)
class _Writer:
    """Who writes, as an inbound request says it."""

    wa_id: str | None
    user_id: str | None
    parent_user_id: str | None
    #: a username-only client (the business does not see the phone number)
    bsuid_only: bool


class InboundMixin(EmulatorCore):
    """The client's side of :class:`~salon.emulator.Emulator` (the admin API's
    ``inbound``, ``share_contact``, ``preferences``, ``identity_change`` and ``call``).
    """

    # ------------------------------------------------------------------ messages
    def inbound(self, request: Mapping[str, Any], *, base_url: str) -> dict[str, Any]:
        """``POST /_emulator/inbound``: a client writes to the business."""
        writer = self._inbound_writer(request)
        kind, duplicates, phone_number_id = self._inbound_options(request)
        client = self._writing_client(request, writer)
        now = self.now()
        wamid = new_wamid(client.wa_id or client.user_id)
        reply_to = opt_str(request.get("reply_to"), "reply_to")
        context = self._inbound_context(request, kind, reply_to, client)
        button = request.get("button")
        if button is not None:
            if not reply_to:
                raise AdminError("button needs reply_to (the wamid of the message tapped)")
            kind, content = self._tap(reply_to, str(button))
        else:
            content = self._inbound_content(kind, request, reply_to, base_url, now)

        referral = referral_object(request.get("referral"))
        client.bsuid_only = writer.bsuid_only  # the request is valid: the client is as it says
        message = inbound_message(
            client.contact(),
            wamid=wamid,
            timestamp=now,
            kind=kind,
            content=content,
            context=context,
            referral=referral,
            errors=unsupported_errors(kind),
            include_from=not writer.bsuid_only,
        )
        value = {
            "messaging_product": "whatsapp",
            "metadata": self.metadata.as_dict(),
            "contacts": [contact_object(client.contact(include_wa_id=not writer.bsuid_only))],
            "messages": [message],
        }
        if kind != "reaction" or self.config.reaction_opens_window:
            self.windows.record_inbound(phone_number_id, client.key, now)
        if referral is not None:
            client.referral_at, client.first_reply_at = now, None
        client.inbound_count += 1
        self._file_inbound(client, phone_number_id, wamid, message, now)
        event = WebhookEvent(
            "messages", value, client.key, duplicates=duplicates,
            labels=[f"inbound:{kind}:{wamid}"],
        )
        deliver = request.get("deliver", True)
        if not isinstance(deliver, bool):
            raise AdminError("deliver must be true or false")
        if deliver:
            self.dispatcher.submit(event)
        closes = self.windows.closes_at(phone_number_id, client.key)
        result = {
            "wamid": wamid,
            "timestamp": str(unix(now)),
            "type": kind,
            "window_closes_at": closes.isoformat() if closes else None,
            "message": message,
        }
        if not deliver:
            # The caller delivers (and times) the webhook itself: hand it the exact body.
            result["webhook"] = build_payload(self.config.waba_id, [event])
        return result

    def _inbound_writer(self, request: Mapping[str, Any]) -> _Writer:
        """The writer's ids: ``from`` (a phone number) and / or ``user_id`` (a BSUID); a
        username-only client without a ``user_id`` gets the one the emulator knows, or a
        new one (country from the phone number).
        """
        wa_raw = opt_str(request.get("from"), "from")
        user_id = opt_str(request.get("user_id"), "user_id")
        parent_user_id = opt_str(request.get("parent_user_id"), "parent_user_id")
        wa_id = None
        if wa_raw:
            parsed = normalise_recipient(wa_raw)
            if parsed is None or parsed[0] != "phone":
                raise AdminError(
                    f"from must be a phone number (digits, optional +), got {wa_raw!r}"
                )
            wa_id = parsed[1]
        if user_id is not None and not is_bsuid(user_id):
            raise AdminError(f"user_id must look like US.13491208655302741918, got {user_id!r}")
        if wa_id is None and user_id is None:
            raise AdminError("from or user_id is required")
        bsuid_only = bool(request.get("bsuid_only"))
        if bsuid_only and user_id is None:
            known = self.find_client(wa_id, retired=False) if wa_id else None
            user_id = (known.user_id if known else None) or new_bsuid(country_of(wa_id))
        return _Writer(wa_id, user_id, parent_user_id, bsuid_only)

    def _inbound_options(self, request: Mapping[str, Any]) -> tuple[str, int, str]:
        """The message type, the number of duplicate deliveries and the business number."""
        kind = str(request.get("type") or "text")
        if kind not in INBOUND_TYPES:
            raise AdminError(f"type must be one of {sorted(INBOUND_TYPES)}, got {kind!r}")
        duplicates = request.get("duplicate", 0) or 0
        if not isinstance(duplicates, int) or isinstance(duplicates, bool) or duplicates < 0:
            raise AdminError("duplicate must be a non-negative integer")
        phone_number_id = str(request.get("phone_number_id") or self.config.phone_number_id)
        if phone_number_id != self.config.phone_number_id:
            raise AdminError(f"unknown business phone_number_id {phone_number_id!r}")
        return kind, duplicates, phone_number_id

    def _writing_client(self, request: Mapping[str, Any], writer: _Writer) -> Client:
        """The writer's client (created on first sight), with the request's parent BSUID
        and profile name.
        """
        client = self._client(writer.wa_id, writer.user_id)
        if writer.parent_user_id:
            client.parent_user_id = writer.parent_user_id
            self._index(client)
        name = opt_str(request.get("name"), "name")
        if name:
            client.name = name
        return client

    def _inbound_context(
        self, request: Mapping[str, Any], kind: str, reply_to: str | None, client: Client
    ) -> dict[str, Any] | None:
        """The message's ``context``: the message it replies to, or the catalog product
        the client asks about ("Message business" on a product, fixture 21).
        """
        context: dict[str, Any] | None = None
        if reply_to and kind != "reaction":
            context = {"from": self._context_from(reply_to, client), "id": reply_to}
        referred = request.get("referred_product")
        if referred is not None:
            if not isinstance(referred, Mapping) or not {
                "catalog_id",
                "product_retailer_id",
            } <= set(referred):
                raise AdminError("referred_product needs catalog_id and product_retailer_id")
            context = {
                "from": self.config.display_phone_number,
                "id": reply_to or new_wamid(self.config.display_phone_number),
                "referred_product": {
                    "catalog_id": str(referred["catalog_id"]),
                    "product_retailer_id": str(referred["product_retailer_id"]),
                },
            }
        return context

    def _context_from(self, reply_to: str, client: Client) -> str:
        record = self._inbound.get(reply_to)
        if record is not None:
            quoted = self.clients.get(record.client_key)
            if quoted is not None and quoted.wa_id:
                return quoted.wa_id
        return self.config.display_phone_number

    def _tap(self, reply_to: str, button: str) -> tuple[str, dict[str, Any]]:
        """The message type and content of a tap on ``button`` (id, title or index) of the
        business's message ``reply_to``.
        """
        message = self._by_wamid.get(reply_to)
        if message is None:
            raise AdminError(f"reply_to {reply_to!r} is not a message the business sent")
        if not message.options:
            raise AdminError(f"message {reply_to} has nothing to tap")
        chosen = None
        for key in ("id", "title"):
            chosen = next((o for o in message.options if str(o.get(key)) == button), None)
            if chosen is not None:
                break
        if chosen is None and button.isdigit():
            chosen = next((o for o in message.options if str(o.get("index")) == button), None) or (
                message.options[int(button)] if int(button) < len(message.options) else None
            )
        if chosen is None:
            choices = [o.get("id") for o in message.options]
            raise AdminError(f"no button {button!r} on {reply_to}; choices: {choices}")
        if chosen["kind"] == "share_contact":
            raise AdminError(
                "the contact-information button shares a contact card: "
                "POST /_emulator/share_contact {\"client\": ..., \"reply_to\": ...}"
            )
        if chosen["kind"] == "template":
            return "button", {"payload": chosen["payload"], "text": chosen["title"]}
        reply = {"id": chosen["id"], "title": chosen["title"]}
        if "description" in chosen:
            reply["description"] = chosen["description"]
        return "interactive", {"type": chosen["kind"], chosen["kind"]: reply}

    def _inbound_content(
        self,
        kind: str,
        request: Mapping[str, Any],
        reply_to: str | None,
        base_url: str,
        now: datetime,
    ) -> Any:
        """What goes under the message's type."""
        if kind in DEFAULT_MEDIA:
            item = self._inbound_media_item(kind, request, now)
            url = self.media_url(item.id, base_url) if self.config.inbound_media_url else None
            return media_content(kind, request, item, url)
        if kind == "reaction":
            return reaction_content(request, reply_to)
        build = CONTENT_BUILDERS.get(kind)
        if build is None:  # pragma: no cover
            raise AdminError(f"unsupported inbound type {kind!r}")
        return build(request)

    def _inbound_media_item(
        self, kind: str, request: Mapping[str, Any], now: datetime
    ) -> MediaItem:
        """The file a client sends: an uploaded ``media_id``, the request's
        ``data_base64``, or the default file of its type.
        """
        media_id = request.get("media_id")
        if media_id is not None:
            item = self.media.get(str(media_id))
            if item is None:
                raise AdminError(f"media_id {media_id!r} is not held by the emulator", 404)
            return item
        mime, data, filename = DEFAULT_MEDIA[kind]
        raw = request.get("data_base64")
        if raw is not None:
            try:
                data = base64.b64decode(str(raw), validate=True)
            except (binascii.Error, ValueError):
                raise AdminError("data_base64 is not valid base64") from None
            mime = str(request.get("mime_type") or mime)
        filename = (
            str(request.get("filename") or filename)
            if (request.get("filename") or filename)
            else None
        )
        return self.store_media(data, mime, filename, now)

    def _file_inbound(
        self,
        client: Client,
        phone_number_id: str,
        wamid: str,
        message: dict[str, Any],
        now: datetime,
    ) -> None:
        """Remember a message the business received (to mark it read, to quote it) and
        put it in the client's thread.
        """
        self._inbound[wamid] = InboundRecord(client.key, phone_number_id, now)
        self._thread_inbound.append(ThreadInbound(client.key, message, now, len(self.outbox)))

    # ------------------------------------------------------------------ contact info
    def share_contact(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/share_contact``: the client taps "Share contact info" under the
        business's contact-information request (the latest one, or ``reply_to``). The bot
        gets a ``contacts`` message with ``origin: "contact_request"`` and the phone number;
        ``context`` points at the request. From then on the business knows the number.
        """
        client = self._admin_client(request)
        reply_to = opt_str(request.get("reply_to"), "reply_to")
        asked_wamid = self._contact_request(client, reply_to)
        phone = self._shared_phone(request, client)
        now = self.now()
        wamid = new_wamid(client.wa_id or client.user_id)
        message = inbound_message(
            client.contact(),
            wamid=wamid,
            timestamp=now,
            kind="contacts",
            content=[_contact_card(client, phone)],
            context={"from": self.config.display_phone_number, "id": asked_wamid},
            include_from=not client.bsuid_only,
        )
        value = {
            "messaging_product": "whatsapp",
            "metadata": self.metadata.as_dict(),
            "contacts": [contact_object(client.visible_contact())],
            "messages": [message],
        }
        pnid = self.config.phone_number_id
        self.windows.record_inbound(pnid, client.key, now)
        client.inbound_count += 1
        self._file_inbound(client, pnid, wamid, message, now)
        self.dispatcher.submit(
            WebhookEvent("messages", value, client.key, labels=[f"inbound:contacts:{wamid}"])
        )
        client.bsuid_only = False  # the number is in the business's contact book now
        closes = self.windows.closes_at(pnid, client.key)
        return {
            "wamid": wamid,
            "timestamp": str(unix(now)),
            "type": "contacts",
            "reply_to": asked_wamid,
            "window_closes_at": closes.isoformat() if closes else None,
            "message": message,
        }

    def _contact_request(self, client: Client, reply_to: str | None) -> str | None:
        """The wamid of the contact-information request the client answers: the latest
        one delivered to them, or ``reply_to``.
        """
        requests = [
            m
            for m in self.outbox
            if m.client_key == client.key
            and m.wamid
            and m.status not in ("failed", "rejected", "dropped")
            and any(o.get("kind") == "share_contact" for o in m.options)
        ]
        if reply_to is not None:
            requests = [m for m in requests if m.wamid == reply_to]
        if not requests:
            raise AdminError(
                "no contact-information request was delivered to this client"
                + (f" as {reply_to}" if reply_to else ""),
                404 if reply_to else 400,
            )
        return requests[-1].wamid

    def _shared_phone(self, request: Mapping[str, Any], client: Client) -> str:
        """The number the client shares (``phone``, else the one the emulator knows); a
        client the emulator knew only by BSUID takes it on.
        """
        phone_raw = opt_str(request.get("phone"), "phone") or client.wa_id
        parsed = normalise_recipient(phone_raw) if phone_raw else None
        if parsed is None or parsed[0] != "phone":
            raise AdminError("the emulator does not know this client's number: give phone")
        phone = parsed[1]
        if client.wa_id is None:
            client.wa_id = phone
            self._index(client)
        return phone

    # ------------------------------------------------------------------ preferences
    def preferences(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/preferences``: the client stops / resumes marketing."""
        value = request.get("value")
        if value not in ("stop", "resume"):
            raise AdminError("value must be 'stop' or 'resume'")
        wa_raw = opt_str(request.get("from"), "from")
        user_id = opt_str(request.get("user_id"), "user_id")
        wa_id = None
        if wa_raw:
            parsed = normalise_recipient(wa_raw)
            if parsed is None or parsed[0] != "phone":
                raise AdminError(f"from must be a phone number, got {wa_raw!r}")
            wa_id = parsed[1]
        if wa_id is None and user_id is None:
            raise AdminError("from or user_id is required")
        client = self._client(wa_id, user_id)
        client.marketing_stopped = value == "stop"
        now = self.now()
        self.dispatcher.submit(
            WebhookEvent(
                "user_preferences",
                user_preferences_value(self.metadata, client.contact(), value=value, at=now),
                client.key,
                labels=[f"user_preferences:{value}"],
            )
        )
        return {"client": client.key, "marketing_stopped": client.marketing_stopped}

    # ------------------------------------------------------------------ identity changes
    def identity_change(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/identity_change``: the client's BSUID changes
        (``user_changed_user_id``) or their phone number does (``user_changed_number``, the
        BSUID is regenerated unless ``new_user_id`` is given). The emulator's client keeps
        its window, outbox history and pending statuses under the new ids; the old ids are
        retired (a send to one is accepted, then fails with 131026). The bot gets a signed
        ``messages`` webhook with a ``system`` message and no ``contacts`` array.
        """
        client = self._admin_client(request)
        new_wa_id, new_user_id, new_parent = self._new_ids(request, client)
        number_change = new_wa_id is not None
        if not number_change and client.user_id is None:
            raise AdminError(
                "this client has no BSUID to change; give new_wa_id for a number change "
                "(or let the client write with a user_id first)"
            )
        previous = {
            "wa_id": client.wa_id,
            "user_id": client.user_id,
            "parent_user_id": client.parent_user_id,
        }
        country = country_of(new_wa_id or client.user_id or client.wa_id)
        user_id = new_user_id or new_bsuid(country)
        parent = new_parent or (new_parent_bsuid(country) if client.parent_user_id else None)
        self._move_client(client, new_wa_id, user_id, parent)

        now = self.now()
        system = _identity_system(client, previous, new_wa_id, user_id, parent)
        from_phone = previous["wa_id"] if number_change and not client.bsuid_only else None
        wamid = new_wamid(from_phone or previous["user_id"])
        message = system_message(
            wamid=wamid,
            timestamp=now,
            system=system,
            from_phone=from_phone,
            from_user_id=None if from_phone else previous["user_id"],
        )
        value = {
            "messaging_product": "whatsapp",
            "metadata": self.metadata.as_dict(),
            "messages": [message],
        }
        event = WebhookEvent("messages", value, client.key, labels=[f"system:{system['type']}"])
        self._file_inbound(client, self.config.phone_number_id, wamid, message, now)
        self.dispatcher.submit(event)
        return {
            "type": system["type"],
            "client": client.view(),
            "previous": previous,
            "wamid": wamid,
            "webhook": build_payload(self.config.waba_id, [event]),
        }

    def _new_ids(
        self, request: Mapping[str, Any], client: Client
    ) -> tuple[str | None, str | None, str | None]:
        """The new phone number, BSUID and parent BSUID an identity change asks for, each
        checked: well formed, not the client's current one, not another client's.
        """
        new_user_id = opt_str(request.get("new_user_id"), "new_user_id")
        new_parent = opt_str(request.get("new_parent_user_id"), "new_parent_user_id")
        new_wa_raw = opt_str(request.get("new_wa_id"), "new_wa_id")
        new_wa_id = None
        if new_wa_raw:
            parsed = normalise_recipient(new_wa_raw)
            if parsed is None or parsed[0] != "phone":
                raise AdminError(f"new_wa_id must be a phone number, got {new_wa_raw!r}")
            new_wa_id = parsed[1]
            if new_wa_id == client.wa_id:
                raise AdminError(f"the client already has the number {new_wa_id}")
        for given, name in ((new_user_id, "new_user_id"), (new_parent, "new_parent_user_id")):
            if given is not None and not is_bsuid(given):
                raise AdminError(f"{name} must look like FR.5772156649015328606, got {given!r}")
        if new_user_id is not None and new_user_id == client.user_id:
            raise AdminError(f"the client already has the BSUID {new_user_id}")
        for ident in (new_wa_id, new_user_id, new_parent):
            other = self.find_client(ident, retired=False) if ident else None
            if other is not None and other is not client:
                raise AdminError(f"{ident} is another client's id ({other.key})", 409)
        return new_wa_id, new_user_id, new_parent

    def _move_client(
        self, client: Client, new_wa_id: str | None, user_id: str, parent: str | None
    ) -> None:
        """Retire the client's old ids and give it the new ones (same client: same key,
        window and history). The phone number changes only when ``new_wa_id`` is given.
        """
        number_change = new_wa_id is not None
        for old, index in (
            (client.wa_id if number_change else None, self._by_wa),
            (client.user_id, self._by_user),
            (client.parent_user_id, self._by_user),
        ):
            if old and index.get(old) == client.key:
                del index[old]
                self._retired[old] = client.key
        if number_change:
            client.wa_id = new_wa_id
        client.user_id, client.parent_user_id = user_id, parent
        self._index(client)

    # ------------------------------------------------------------------ calls
    def call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/call``: the client calls the business (user-initiated). Two
        signed ``calls`` webhooks: ``connect`` then ``terminate`` (``COMPLETED`` when
        answered, with ``start_time``/``end_time``/``duration``; ``FAILED`` when not, without
        them, as Meta does). The call opens or refreshes the window, answered or not.
        """
        client = self._caller(request)
        answered = request.get("answered", True)
        if not isinstance(answered, bool):
            raise AdminError("answered must be true or false")
        duration = request.get("duration", 62)
        if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
            raise AdminError("duration must be a non-negative integer (seconds)")
        if not answered:
            duration = 0
        now = self.now()
        pnid = self.config.phone_number_id
        call_id = new_call_id()
        events, status = self._call_events(client, call_id, answered, duration, now)
        self.windows.record_inbound(pnid, client.key, now)
        self._thread_inbound.append(
            ThreadInbound(
                client.key,
                {
                    "id": call_id,
                    "type": "call",
                    "call": {"answered": answered, "duration": duration, "status": status},
                },
                now,
                len(self.outbox),
            )
        )
        for event in events:
            self.dispatcher.submit(event)
        closes = self.windows.closes_at(pnid, client.key)
        return {
            "call_id": call_id,
            "client": client.view(),
            "answered": answered,
            "status": status,
            "duration": duration,
            "window_closes_at": closes.isoformat() if closes else None,
            "webhooks": [build_payload(self.config.waba_id, [e]) for e in events],
        }

    def _caller(self, request: Mapping[str, Any]) -> Client:
        """The calling client: one the emulator knows, or a first contact."""
        raw = request.get("client")
        parsed = normalise_recipient(raw) if isinstance(raw, str) else None
        if not isinstance(raw, str) or parsed is None:
            raise AdminError("client is required (a phone number or a business-scoped user id)")
        client = self.find_client(raw, retired=False)
        if client is None:  # a first contact by phone
            kind, ident = parsed
            client = self._client(
                ident if kind == "phone" else None, ident if kind == "bsuid" else None
            )
        return client

    def _call_events(
        self, client: Client, call_id: str, answered: bool, duration: int, now: datetime
    ) -> tuple[list[WebhookEvent], str]:
        """The ``connect`` and ``terminate`` webhooks of a call, and how it ended."""
        contact = client.visible_contact()
        business = self.config.display_phone_number
        include_from = not client.bsuid_only
        connect = call_object(
            contact,
            call_id=call_id,
            event="connect",
            timestamp=now,
            business_number=business,
            include_from=include_from,
            extra={"session": {"sdp_type": "offer", "sdp": _SDP_OFFER}},
        )
        end = now + timedelta(seconds=duration)
        ending: dict[str, Any] = {"status": "COMPLETED" if answered else "FAILED"}
        if answered:
            ending.update(
                {"start_time": str(unix(now)), "end_time": str(unix(end)), "duration": duration}
            )
        terminate = call_object(
            contact,
            call_id=call_id,
            event="terminate",
            timestamp=end,
            business_number=business,
            include_from=include_from,
            extra=ending,
        )
        events = []
        for item, label in ((connect, "connect"), (terminate, "terminate")):
            value = {
                "messaging_product": "whatsapp",
                "metadata": self.metadata.as_dict(),
                "contacts": [contact_object(contact)],
                "calls": [item],
            }
            events.append(
                WebhookEvent("calls", value, client.key, labels=[f"call:{label}:{call_id}"])
            )
        return events, ending["status"]


def _contact_card(client: Client, phone: str) -> dict[str, Any]:
    """The contact card a client shares in answer to a contact-information request."""
    name = client.name or f"+{phone}"
    first, _, last = name.partition(" ")
    card_name: dict[str, Any] = {"formatted_name": name, "first_name": first}
    if last:
        card_name["last_name"] = last
    return {
        "origin": "contact_request",
        "name": card_name,
        "phones": [{"phone": f"+{phone}", "wa_id": phone, "type": "CELL"}],
    }


def _identity_system(
    client: Client,
    previous: Mapping[str, str | None],
    new_wa_id: str | None,
    user_id: str,
    parent: str | None,
) -> dict[str, Any]:
    """The ``system`` object of an identity change: ``user_changed_number`` when the phone
    number changed (it carries the regenerated BSUID but not the new parent id), else
    ``user_changed_user_id``.
    """
    number_change = new_wa_id is not None
    who = client.name or "WhatsApp user"
    system: dict[str, Any]
    if number_change:
        old_phone = previous["wa_id"] or "unknown number"
        system = {
            "body": f"User {who} changed from {old_phone} to {new_wa_id}",
            "type": "user_changed_number",
        }
        if not client.bsuid_only:
            system["wa_id"] = new_wa_id
    else:
        system = {
            "body": f"User {who} changed from {previous['user_id']} to {user_id}",
            "type": "user_changed_user_id",
        }
    system["user_id"] = user_id
    if parent and not number_change:
        system["parent_user_id"] = parent
    if previous["user_id"]:
        system["previous_user_id"] = previous["user_id"]
    if previous["parent_user_id"]:
        system["previous_parent_user_id"] = previous["parent_user_id"]
    return system
