"""The business's send path: ``POST /{version}/{phone_number_id}/messages`` with its
checks (addressing, validation, templates, rate limits), what Meta decides at delivery
time, the outbox entry and the status webhooks that follow (see
:mod:`salon.emulator.service` for the rules in full).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from salon.emulator import rules
from salon.emulator.core import EmulatorCore
from salon.emulator.graph_errors import GraphError, status_error
from salon.emulator.ids import bsuid_read_as_phone, is_bsuid, new_wamid, normalise_recipient
from salon.emulator.model import Client, OutboundMessage
from salon.emulator.payloads import (
    Metadata,
    WebhookEvent,
    contact_object,
    status_object,
    unix,
)
from salon.templates.model import Template

__all__ = ["SHARE_CONTACT_ID", "SHARE_CONTACT_TITLE", "SendingMixin"]

_STATUS_RANK: Final = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
#: The fixed button WhatsApp shows under a contact-information request.
SHARE_CONTACT_TITLE: Final = "Share contact info"
SHARE_CONTACT_ID: Final = "share_contact_info"

#: Delivery-time failures: the send is accepted, then a ``failed`` status says why.
_RETIRED_ID: Final = (
    131026,
    "Message undeliverable: the recipient id is no longer in use "
    "(the client changed identity).",
)
_WINDOW_CLOSED: Final = (
    131047,
    "Message failed to send because more than 24 hours have passed since "
    "the customer last replied to this number.",
)
_MARKETING_STOPPED: Final = (
    131050,
    "Unable to deliver the message. This recipient has chosen to stop "
    "receiving marketing messages on WhatsApp from your business.",
)
_MARKETING_CAP: Final = (
    131049,
    "In order to maintain a healthy ecosystem engagement, the message failed "
    "to be delivered.",
)


@dataclass(frozen=True)
class _Target:
    """The recipient of a send as the request names it, and the client it reaches."""

    raw_to: str
    id_kind: str
    identity: str
    client: Client | None
    #: a BSUID in ``to``: accepted, then silently dropped
    dropped: bool
    #: an id a client left behind in an identity change: accepted, then fails (131026)
    retired: bool

    @property
    def recorded_key(self) -> str | None:
        """The client key the outbox entry is filed under (none for a retired id)."""
        return None if self.client is None or self.retired else self.client.key


@dataclass(frozen=True)
class _Content:
    """A checked message: its template (for a template send), as rendered, and its
    pricing category.
    """

    template: Template | None
    rendered: dict[str, Any]
    category: str


class SendingMixin(EmulatorCore):
    """The Graph API send path of :class:`~salon.emulator.Emulator`."""

    def check_phone_number(self, phone_number_id: str, verb: str = "post") -> None:
        """Graph error 100 unless ``phone_number_id`` is the emulated business number."""
        if phone_number_id != self.config.phone_number_id:
            raise GraphError(
                100,
                f"Unsupported {verb} request. Object with ID '{phone_number_id}' does not "
                "exist, cannot be loaded due to missing permissions, or does not support this "
                "operation.",
            )

    async def send(self, phone_number_id: str, api_version: str, body: Any) -> dict[str, Any]:
        """``POST /{version}/{phone_number_id}/messages``.

        Addressing (shared/reference/whatsapp-2026.md §1): a phone number goes in ``to``, a
        BSUID in ``recipient``; when both are given ``to`` wins. A BSUID in ``to`` is
        accepted (200, wamid) and then dropped, as Meta does: it reads the rest of the id as
        a phone number. Nothing reaches the client; the admin outbox shows the message with
        ``status: "dropped"`` and ``drop_reason: "bsuid_in_to"``.
        """
        self.check_phone_number(phone_number_id)
        if not isinstance(body, Mapping):
            raise GraphError(100, "The request body must be a JSON object.")
        if body.get("status") == "read" and "message_id" in body:
            return self.mark_read(phone_number_id, body)
        kind = str(body.get("type", "text"))
        target = self._send_target(phone_number_id, body, kind)
        try:
            self._check_body(body, kind)
            now = self.now()
            content = self._check_content(body, kind, api_version, target)
            if not self.throughput.try_take(phone_number_id, now):
                raise GraphError(130429, "Cloud API message throughput has been reached.")
            if not target.dropped:
                self._check_pair_rate(phone_number_id, target, now)
        except GraphError as error:
            self._reject(
                error,
                phone_number_id=phone_number_id,
                to=target.identity,
                client=target.client if target.recorded_key else None,
                body=body,
                kind=kind,
            )
            raise
        if target.dropped:
            return self._drop(phone_number_id, target, kind, body, content, now)
        message = self._accept(phone_number_id, target, kind, body, content, now)
        return _send_response(target, kind, body, message)

    # ------------------------------------------------------------------ checks
    def _send_target(self, phone_number_id: str, body: Mapping[str, Any], kind: str) -> _Target:
        """Who the send is for (``to`` wins over ``recipient``); a rejected send when
        neither names a phone number or a BSUID.
        """
        field_name = "to" if body.get("to") is not None else "recipient"
        raw_to = body.get(field_name)
        if not isinstance(raw_to, str) or not raw_to.strip():
            raise self._reject(
                GraphError(100, "The parameter to (or recipient, for a BSUID) is required."),
                phone_number_id=phone_number_id,
                to=None,
                client=None,
                body=body,
                kind=kind,
            )
        parsed = normalise_recipient(raw_to)
        if parsed is None:
            raise self._reject(
                GraphError(
                    100,
                    f"Param {field_name} ({raw_to!r}) is not a valid phone number or "
                    "business-scoped user ID.",
                ),
                phone_number_id=phone_number_id,
                to=raw_to,
                client=None,
                body=body,
                kind=kind,
            )
        id_kind, identity = parsed
        dropped = field_name == "to" and id_kind == "bsuid"
        retired = (
            not dropped
            and self.find_client(identity, retired=False) is None
            and identity in self._retired
        )
        wa_id = identity if id_kind == "phone" else None
        user_id = identity if id_kind == "bsuid" else None
        client: Client | None
        if dropped:
            client = self.find_client(identity, retired=False)
        elif retired:
            # an id a client left behind (identity change): nobody reads it any more
            client = Client(key=f"retired:{identity}", wa_id=wa_id, user_id=user_id)
        else:
            client = self._client(wa_id, user_id)
        return _Target(raw_to, id_kind, identity, client, dropped, retired)

    def _check_body(self, body: Mapping[str, Any], kind: str) -> None:
        """The message's shape and limits, and the media ids it refers to."""
        violation = rules.validate_message(body)
        if violation is not None:
            raise GraphError(violation.code, violation.details)
        media_problem = self._check_media_refs(body, kind)
        if media_problem is not None:
            raise GraphError(100, media_problem)

    def _check_content(
        self, body: Mapping[str, Any], kind: str, api_version: str, target: _Target
    ) -> _Content:
        """A template send checked against its definition and rendered; any other
        message as it is (category ``service``).
        """
        if kind != "template":
            return _Content(None, {}, "service")
        template_obj = body["template"]
        language = str(template_obj["language"]["code"])
        template = self.templates.get(str(template_obj["name"]), language)
        checked = rules.check_and_render(
            template, template_obj, language=language, api_version=api_version
        )
        if isinstance(checked, rules.Violation):
            raise GraphError(checked.code, checked.details)
        assert template is not None
        category = template.category.lower()
        if category == "authentication" and target.id_kind == "bsuid" and not target.dropped:
            raise GraphError(
                131062,
                "Business-scoped User ID (BSUID) recipients are not supported for "
                "this message.",
            )
        return _Content(template, checked, category)

    def _check_pair_rate(self, phone_number_id: str, target: _Target, now: datetime) -> None:
        client = target.client
        assert client is not None
        if not self.pair_rate.try_take((phone_number_id, client.key), now):
            raise GraphError(
                131056,
                "Message failed to send because there were too many messages sent "
                "from this phone number to the same phone number in a short period of time.",
            )

    def _check_media_refs(self, body: Mapping[str, Any], kind: str) -> str | None:
        refs: list[tuple[str, str]] = []
        if kind in rules.MEDIA_TYPES and isinstance(body.get(kind), Mapping):
            media_id = body[kind].get("id")
            if media_id:
                refs.append((kind, str(media_id)))
        if kind == "interactive":
            header = body["interactive"].get("header")
            if isinstance(header, Mapping):
                htype = header.get("type")
                inner = header.get(htype) if isinstance(htype, str) else None
                if isinstance(inner, Mapping) and inner.get("id"):
                    refs.append((str(htype), str(inner["id"])))
        for media_kind, media_id in refs:
            if media_id not in self.media:
                return f"Param {media_kind}['id'] ({media_id}) is not a valid uploaded media id."
        return None

    # ------------------------------------------------------------------ outbox
    def _record(self, message: OutboundMessage) -> OutboundMessage:
        self.outbox.append(message)
        if message.wamid:
            self._by_wamid[message.wamid] = message
        return message

    def _reject(
        self,
        error: GraphError,
        *,
        phone_number_id: str,
        to: str | None,
        client: Client | None,
        body: Any,
        kind: str,
    ) -> GraphError:
        """File a refused send in the outbox (``rejected``) and hand back its error."""
        self._seq += 1
        name = _template_name(body) if kind == "template" else None
        language = _template_language(body) if kind == "template" else None
        known = self.templates.get(name, language) if name and language else None
        self._record(
            OutboundMessage(
                seq=self._seq,
                wamid=None,
                phone_number_id=phone_number_id,
                to=to,
                client_key=client.key if client else None,
                type=kind,
                payload=body,
                sent_at=self.now(),
                status="rejected",
                error_code=error.code,
                error_details=error.details,
                template=name,
                language=language,
                category=known.category.lower() if known else "service",
            )
        )
        return error

    def _drop(
        self,
        phone_number_id: str,
        target: _Target,
        kind: str,
        body: Mapping[str, Any],
        content: _Content,
        now: datetime,
    ) -> dict[str, Any]:
        """A BSUID in ``to``: Meta answers 200 with a message id for the "phone number" it
        read from the id, and nothing more happens (no status, no window effect).
        """
        misread = bsuid_read_as_phone(target.identity)
        self._seq += 1
        message = OutboundMessage(
            seq=self._seq,
            wamid=new_wamid(misread),
            phone_number_id=phone_number_id,
            to=target.identity,
            client_key=target.client.key if target.client else None,
            type=kind,
            payload=body,
            sent_at=now,
            status="dropped",
            category=content.category,
            drop_reason="bsuid_in_to",
            error_details=f"A BSUID in 'to' is read as the phone number {misread}; "
            "send a BSUID in 'recipient' (recipient_type 'individual').",
        )
        self._describe(message, body, content)
        self._record(message)
        sent: dict[str, Any] = {"id": message.wamid}
        if kind == "template":
            sent["message_status"] = "accepted"
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": target.raw_to, "wa_id": misread}],
            "messages": [sent],
        }

    def _accept(
        self,
        phone_number_id: str,
        target: _Target,
        kind: str,
        body: Mapping[str, Any],
        content: _Content,
        now: datetime,
    ) -> OutboundMessage:
        """An accepted send: decide its fate at delivery time, file it in the outbox and
        start its status webhooks.
        """
        client = target.client
        assert client is not None
        in_window = self.windows.is_open(phone_number_id, client.key, now)
        failure = self._delivery_failure(target, kind, content.category, in_window, now)
        if failure is None:
            _note_delivery(client, target, content.category, in_window, now)
        fep = failure is None and rules.fep_active(client.referral_at, client.first_reply_at, now)
        self._seq += 1
        message = OutboundMessage(
            seq=self._seq,
            wamid=new_wamid(client.wa_id or client.user_id),
            phone_number_id=phone_number_id,
            to=target.identity,
            client_key=target.recorded_key,
            type=kind,
            payload=body,
            sent_at=now,
            category=content.category,
            in_window=in_window,
            fep=fep,
        )
        self._describe(message, body, content)
        self._record(message)
        if not target.retired:
            client.outbound_count += 1
        self._spawn(self._lifecycle(message, client, failure, body.get("biz_opaque_callback_data")))
        return message

    def _delivery_failure(
        self, target: _Target, kind: str, category: str, in_window: bool, now: datetime
    ) -> tuple[int, str] | None:
        """What Meta refuses at delivery time (code, details), or None: a retired id, a
        free-form message outside the window, marketing to a client who stopped it or
        under the per-user cap.
        """
        client = target.client
        assert client is not None
        cap = self.config.marketing_cap_hours
        if target.retired:
            return _RETIRED_ID
        if kind != "template" and not in_window:
            return _WINDOW_CLOSED
        if category == "marketing" and client.marketing_stopped:
            return _MARKETING_STOPPED
        if (
            category == "marketing"
            and not in_window
            and cap is not None
            and client.last_marketing_at is not None
            and now < client.last_marketing_at + timedelta(hours=cap)
        ):
            return _MARKETING_CAP
        return None

    def _describe(
        self, message: OutboundMessage, body: Mapping[str, Any], content: _Content
    ) -> None:
        """Fill the human-readable fields of the outbox entry."""
        kind = message.type
        given = body[kind]
        if kind == "template":
            assert content.template is not None
            _describe_template(message, content.template, content.rendered)
        elif kind == "interactive":
            _describe_interactive(message, given)
        else:
            message.body = _plain_body(kind, given)

    # ------------------------------------------------------------------ statuses
    async def _lifecycle(
        self,
        message: OutboundMessage,
        client: Client,
        failure: tuple[int, str] | None,
        opaque: Any,
    ) -> None:
        cfg = self.config
        opaque_str = str(opaque) if opaque is not None else None
        await asyncio.sleep(cfg.status_sent_delay)
        if failure is not None:
            code, details = failure
            message.error_code, message.error_details = code, details
            self._emit_status(
                message, client, "failed", errors=[status_error(code, details)], opaque=opaque_str
            )
            return
        price = rules.pricing(
            message.category, in_window=message.in_window, fep=message.fep, at=message.sent_at
        )
        self._emit_status(message, client, "sent", pricing=price, opaque=opaque_str)
        await asyncio.sleep(max(0.0, cfg.status_delivered_delay - cfg.status_sent_delay))
        self._emit_status(message, client, "delivered", pricing=price, opaque=opaque_str)
        if cfg.status_read_delay is None:
            return
        await asyncio.sleep(max(0.0, cfg.status_read_delay - cfg.status_delivered_delay))
        self._emit_status(message, client, "read", opaque=opaque_str)

    def _emit_status(
        self,
        message: OutboundMessage,
        client: Client,
        status: str,
        *,
        pricing: Mapping[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        opaque: str | None = None,
    ) -> None:
        now = self.now()
        if _STATUS_RANK.get(status, 0) >= _STATUS_RANK.get(message.status, 0):
            message.status = status
        message.statuses.append({"status": status, "at": now.isoformat()})
        if not self.dispatcher.enabled:
            self.dispatcher.skipped += 1
            return
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": Metadata(
                self.config.display_phone_number, message.phone_number_id
            ).as_dict(),
        }
        if client.user_id:
            # with business-scoped ids, status webhooks carry the contact too
            value["contacts"] = [
                contact_object(client.visible_contact(), with_profile=bool(client.name))
            ]
        value["statuses"] = [
            status_object(
                wamid=message.wamid or "",
                status=status,
                timestamp=now,
                # the phone only when the business knows it (not a username-only client)
                recipient_id=client.known_phone,
                recipient_user_id=client.user_id,
                pricing=pricing,
                conversation=_fep_conversation(message, client, status),
                errors=errors,
                biz_opaque_callback_data=opaque,
            )
        ]
        self.dispatcher.submit(
            WebhookEvent("messages", value, client.key, labels=[f"status:{status}:{message.wamid}"])
        )

    def mark_read(self, phone_number_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Mark an inbound message as read (optionally with a typing indicator)."""
        if body.get("messaging_product") != "whatsapp":
            raise GraphError(
                100, "The parameter messaging_product is required and must be 'whatsapp'."
            )
        message_id = body.get("message_id")
        record = self._inbound.get(message_id) if isinstance(message_id, str) else None
        if (
            not isinstance(message_id, str)
            or record is None
            or record.phone_number_id != phone_number_id
        ):
            raise GraphError(
                100,
                f"Invalid parameter: message_id {message_id!r} is not a message "
                "this number received.",
            )
        typing = body.get("typing_indicator")
        if typing is not None and (not isinstance(typing, Mapping) or typing.get("type") != "text"):
            raise GraphError(100, "Param typing_indicator['type'] must be 'text'.")
        self._inbound[message_id] = replace(record, read_by_business=True)
        return {"success": True}


def _note_delivery(
    client: Client, target: _Target, category: str, in_window: bool, now: datetime
) -> None:
    """What a deliverable send changes for the client: the marketing cap's clock, a phone
    number the business now knows, the start of a free entry point.
    """
    if category == "marketing" and not in_window:
        # marketing sent inside a window the client opened does not count (§3)
        client.last_marketing_at = now
    if target.id_kind == "phone" and not target.retired:
        client.bsuid_only = False  # the business has just used the phone number
    if client.referral_at is not None and client.first_reply_at is None:
        if client.referral_at <= now < client.referral_at + rules.WINDOW:
            client.first_reply_at = now


def _send_response(
    target: _Target, kind: str, body: Mapping[str, Any], message: OutboundMessage
) -> dict[str, Any]:
    """The 200 body of an accepted send.

    Meta (business-scoped user IDs, send response): ``wa_id`` when sent to the phone
    number, ``user_id`` when sent to the BSUID, or when the request gave both.
    """
    contact: dict[str, Any] = {"input": target.raw_to}
    if target.id_kind == "phone":
        contact["wa_id"] = target.identity
        also = body.get("recipient")
        if isinstance(also, str) and is_bsuid(also.strip()):
            contact["user_id"] = also.strip()
    else:
        contact["user_id"] = target.identity
    sent: dict[str, Any] = {"id": message.wamid}
    if kind == "template":
        sent["message_status"] = "accepted"
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]}


def _fep_conversation(
    message: OutboundMessage, client: Client, status: str
) -> dict[str, Any] | None:
    """The ``conversation`` object of a ``sent`` / ``delivered`` status inside a free
    entry point (``sent`` also gives its expiry), else None.
    """
    if not (message.fep and status in ("sent", "delivered") and client.first_reply_at):
        return None
    conversation_id = hashlib.md5(
        f"{client.key}:{client.first_reply_at.isoformat()}".encode(),
        usedforsecurity=False,
    ).hexdigest()
    origin = {"type": "referral_conversion"}
    if status == "sent":
        expires = unix(client.first_reply_at + rules.FEP_DURATION)
        return {"id": conversation_id, "expiration_timestamp": str(expires), "origin": origin}
    return {"id": conversation_id, "origin": origin}


def _describe_template(
    message: OutboundMessage, template: Template, rendered: Mapping[str, Any]
) -> None:
    message.template = template.name
    message.language = template.language
    message.body = rendered.get("body")
    message.header = rendered.get("header")
    message.footer = rendered.get("footer")
    for button in rendered.get("buttons", []):
        message.buttons.append(button["text"])
        if button["type"] == "QUICK_REPLY":
            message.options.append(
                {
                    "kind": "template",
                    "index": button["index"],
                    "id": button["payload"],
                    "title": button["text"],
                    "payload": button["payload"],
                }
            )


def _describe_interactive(message: OutboundMessage, content: Mapping[str, Any]) -> None:
    message.body = (content.get("body") or {}).get("text")
    footer = content.get("footer")
    message.footer = footer.get("text") if isinstance(footer, Mapping) else None
    header = content.get("header")
    if isinstance(header, Mapping) and header.get("type") == "text":
        message.header = header.get("text")
    action = content.get("action") or {}
    interactive_type = content.get("type")
    if interactive_type == "button":
        for button in action.get("buttons", []):
            reply = button["reply"]
            message.buttons.append(reply["title"])
            message.options.append(
                {"kind": "button_reply", "id": reply["id"], "title": reply["title"]}
            )
    elif interactive_type == "list":
        for section in action.get("sections", []):
            for row in section.get("rows", []):
                message.buttons.append(row["title"])
                option = {"kind": "list_reply", "id": row["id"], "title": row["title"]}
                if row.get("description") is not None:
                    option["description"] = row["description"]
                message.options.append(option)
    elif interactive_type == "cta_url":
        message.buttons.append(action["parameters"]["display_text"])
    elif interactive_type == "request_contact_info":
        message.buttons.append(SHARE_CONTACT_TITLE)
        message.options.append(
            {"kind": "share_contact", "id": SHARE_CONTACT_ID, "title": SHARE_CONTACT_TITLE}
        )


def _plain_body(kind: str, content: Any) -> str | None:
    """The outbox ``body`` of a message that is neither a template nor interactive."""
    if kind == "text":
        return content.get("body")
    if kind in rules.MEDIA_TYPES:
        return content.get("caption")
    if kind == "location":
        return (
            content.get("name")
            or content.get("address")
            or (f"{content.get('latitude')},{content.get('longitude')}")
        )
    if kind == "reaction":
        return content.get("emoji")
    if kind == "contacts":
        return ", ".join(c["name"]["formatted_name"] for c in content)
    return None


def _template_name(body: Any) -> str | None:
    template = body.get("template") if isinstance(body, Mapping) else None
    name = template.get("name") if isinstance(template, Mapping) else None
    return name if isinstance(name, str) else None


def _template_language(body: Any) -> str | None:
    template = body.get("template") if isinstance(body, Mapping) else None
    language = template.get("language") if isinstance(template, Mapping) else None
    code = language.get("code") if isinstance(language, Mapping) else None
    return code if isinstance(code, str) else None
