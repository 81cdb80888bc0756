"""The emulated account: clients, windows, outbox, media, templates, status lifecycles
and webhooks. The Sanic routes (:mod:`salon.emulator.app`) are thin wrappers around
:class:`Emulator`.

Synchronous rejections raise :class:`~salon.emulator.graph_errors.GraphError`; admin
request problems raise :class:`AdminError` (HTTP 400/404 with ``{"error": "..."}``).

Synchronous or asynchronous, as Meta does it:

- request problems (validation, unknown template, template status, parameter mismatch,
  pair rate, throughput) are synchronous Graph errors; the send is recorded in the
  outbox as ``rejected``;
- an authentication template to a BSUID (131062) is refused synchronously too;
- a free-form message outside the window (131047), a marketing template to a client
  who stopped marketing messages (131050) or who got a marketing template outside their
  window less than ``marketing_cap_hours`` ago (131049, per-user cap), and a send to an
  id a client left behind in an identity change (131026) are *accepted* (200 + wamid)
  and then fail with a ``failed`` status webhook, because Meta decides those at delivery
  time;
- a BSUID in ``to`` is accepted and then silently dropped (no status at all);
- everything else gets ``sent`` → ``delivered`` → ``read`` status webhooks after the
  configured delays (wall-clock seconds after acceptance; ``read`` can be disabled).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp

from salon.clock import Clock
from salon.emulator import rules
from salon.emulator.clock import EmulatorClock
from salon.emulator.config import EmulatorConfig
from salon.emulator.delivery import WebhookDispatcher
from salon.emulator.graph_errors import GraphError, status_error
from salon.emulator.ids import (
    bsuid_read_as_phone,
    country_of,
    is_bsuid,
    new_bsuid,
    new_call_id,
    new_numeric_id,
    new_parent_bsuid,
    new_wamid,
    normalise_recipient,
)
from salon.emulator.payloads import (
    Contact,
    Metadata,
    WebhookEvent,
    build_payload,
    call_object,
    contact_object,
    inbound_message,
    status_object,
    system_message,
    template_status_value,
    unix,
    user_preferences_value,
)
from salon.emulator.template_store import TEMPLATE_STATUSES, TemplateStore

__all__ = ["AdminError", "Client", "Emulator", "MediaItem", "OutboundMessage"]

ACCOUNT_ORDER_KEY: Final = "_account"
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
_STATUS_RANK: Final = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
#: The SDP offer of an emulated call (placeholder: no media is ever exchanged).
_SDP_OFFER: Final = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)
#: The fixed button WhatsApp shows under a contact-information request.
SHARE_CONTACT_TITLE: Final = "Share contact info"
SHARE_CONTACT_ID: Final = "share_contact_info"
#: A 1×1 transparent PNG: the default picture a client "sends".
_PIXEL_PNG: Final = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
_DEFAULT_MEDIA: Final[dict[str, tuple[str, bytes, str | None]]] = {
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


class AdminError(Exception):
    """A bad ``/_emulator/`` request."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Client:
    """A WhatsApp user as the emulator knows them."""

    key: str
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    name: str | None = None
    marketing_stopped: bool = False
    referral_at: datetime | None = None
    first_reply_at: datetime | None = None
    inbound_count: int = 0
    outbound_count: int = 0
    #: A username-only client: the business does not know the phone number (webhooks and
    #: statuses carry no ``from`` / ``wa_id`` / ``recipient_id``). Set by each inbound
    #: message's ``bsuid_only``; cleared when the business sends to the phone number or the
    #: client shares it (contact-information request).
    bsuid_only: bool = False
    #: Last marketing template that counts towards the per-user cap (131049).
    last_marketing_at: datetime | None = None

    def contact(self, *, include_wa_id: bool = True) -> Contact:
        return Contact(
            wa_id=self.wa_id if include_wa_id else None,
            user_id=self.user_id,
            parent_user_id=self.parent_user_id,
            name=self.name,
        )

    @property
    def known_phone(self) -> str | None:
        """The phone number as the business may see it (None for a username-only client)."""
        return None if self.bsuid_only else self.wa_id

    def visible_contact(self) -> Contact:
        """The client as the business's webhooks show them."""
        return self.contact(include_wa_id=not self.bsuid_only)

    def view(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "wa_id": self.wa_id,
            "user_id": self.user_id,
            "parent_user_id": self.parent_user_id,
            "name": self.name,
            "bsuid_only": self.bsuid_only,
            "marketing_stopped": self.marketing_stopped,
        }


@dataclass
class MediaItem:
    id: str
    data: bytes
    mime_type: str
    filename: str | None
    created_at: datetime

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode("ascii")


@dataclass
class OutboundMessage:
    """One message the business sent (accepted or rejected)."""

    seq: int
    wamid: str | None
    phone_number_id: str
    to: str | None
    client_key: str | None
    type: str
    payload: Any
    sent_at: datetime
    status: str = "accepted"
    error_code: int | None = None
    error_details: str | None = None
    template: str | None = None
    language: str | None = None
    category: str = "service"
    body: str | None = None
    header: str | None = None
    footer: str | None = None
    buttons: list[str] = field(default_factory=list)
    #: what a client can tap: ``{"kind", "id", "title", "description"?, "payload"?}``
    options: list[dict[str, Any]] = field(default_factory=list)
    in_window: bool = False
    fep: bool = False
    statuses: list[dict[str, str]] = field(default_factory=list)
    #: why an accepted message never reached the client (``status: "dropped"``)
    drop_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "wamid": self.wamid,
            "to": self.to,
            "type": self.type,
            "template": self.template,
            "language": self.language,
            "category": self.category,
            "body": self.body,
            "header": self.header,
            "footer": self.footer,
            "buttons": self.buttons,
            "payload": self.payload,
            "status": self.status,
            "error_code": self.error_code,
            "error_details": self.error_details,
            "sent_at": self.sent_at.isoformat(),
            "in_window": self.in_window,
            "statuses": self.statuses,
            "drop_reason": self.drop_reason,
        }


@dataclass(frozen=True)
class _InboundRecord:
    client_key: str
    phone_number_id: str
    at: datetime
    read_by_business: bool = False


@dataclass(frozen=True)
class _ThreadInbound:
    """A client's message as the phone page shows it (``GET /_emulator/thread``)."""

    client_key: str
    message: dict[str, Any]
    at: datetime
    #: how many outbox entries existed when it arrived: its place in the thread
    after_outbound: int


def _opt_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and name == "from":
        return str(value)
    if not isinstance(value, str):
        raise AdminError(f"{name} must be a string")
    return value


class Emulator:
    """State and behaviour of the emulated WhatsApp Business Account."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Clock | None = None,
        templates: TemplateStore | None = None,
    ) -> None:
        self.config = config
        self.clock = EmulatorClock(clock, config.clock_file)
        self.templates = templates or TemplateStore.from_file(config.templates_path)
        self.dispatcher = WebhookDispatcher(
            url=lambda: self.config.webhook_url,
            app_secret=config.app_secret,
            waba_id=config.waba_id,
            clock=self.clock,
            attempts=config.webhook_attempts,
            base_delay=config.webhook_retry_base_delay,
            max_delay=config.webhook_retry_max_delay,
            timeout=config.webhook_timeout,
            batching=config.batching,
            batch_window=config.batch_window,
            batch_max=config.batch_max,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._clear_state()

    def _clear_state(self) -> None:
        self.clients: dict[str, Client] = {}
        self._by_wa: dict[str, str] = {}
        self._by_user: dict[str, str] = {}
        #: ids a client left behind in an identity change → that client's key
        self._retired: dict[str, str] = {}
        self.windows = rules.WindowBook()
        self.outbox: list[OutboundMessage] = []
        self._by_wamid: dict[str, OutboundMessage] = {}
        self._inbound: dict[str, _InboundRecord] = {}
        self._thread_inbound: list[_ThreadInbound] = []
        self.media: dict[str, MediaItem] = {}
        self.pair_rate = rules.KeyedBuckets(
            self.config.pair_rate_burst, 1.0 / self.config.pair_rate_refill_seconds
        )
        self.throughput = rules.KeyedBuckets(
            self.config.throughput_per_second, self.config.throughput_per_second
        )
        self._seq = 0

    @property
    def metadata(self) -> Metadata:
        return Metadata(self.config.display_phone_number, self.config.phone_number_id)

    def now(self) -> datetime:
        return self.clock.now()

    # ------------------------------------------------------------------ lifecycle
    async def reset(self) -> None:
        """Forget clients, outbox, media, webhook log; clock offset back to zero;
        templates back to the file's state.
        """
        await self._cancel_tasks()
        await self.dispatcher.reset()
        self._clear_state()
        self.templates.reset()
        self.clock.reset()

    async def close(self) -> None:
        await self._cancel_tasks()
        await self.dispatcher.close()

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no status lifecycle runs and every webhook was delivered or given
        up (True), or ``timeout`` seconds passed (False).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks or not self.dispatcher.idle:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def update_config(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        allowed = {
            "webhook_url",
            "status_sent_delay",
            "status_delivered_delay",
            "status_read_delay",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise AdminError(
                f"cannot change {sorted(unknown)} at run time (allowed: {sorted(allowed)})"
            )
        try:
            self.config = replace(self.config, **dict(changes))
        except (TypeError, ValueError) as exc:
            raise AdminError(str(exc)) from None
        return self.config

    # ------------------------------------------------------------------ clients
    def find_client(self, identity: str, *, retired: bool = True) -> Client | None:
        """The client an id (phone number or BSUID) names; with ``retired``, also through an
        id the client left behind in an identity change (admin lookups).
        """
        parsed = normalise_recipient(identity)
        if parsed is None:
            return None
        kind, value = parsed
        key = self._by_wa.get(value) if kind == "phone" else self._by_user.get(value)
        if key is None and retired:
            key = self._retired.get(value)
        return self.clients.get(key) if key else None

    def _admin_client(self, request: Mapping[str, Any]) -> Client:
        """The ``client`` of an admin request (a phone number or a BSUID it is known by)."""
        raw = request.get("client")
        if not isinstance(raw, str) or not raw.strip():
            raise AdminError("client is required (a phone number or a business-scoped user id)")
        if normalise_recipient(raw) is None:
            raise AdminError(f"client must be a phone number or a BSUID, got {raw!r}")
        client = self.find_client(raw, retired=False)
        if client is None:
            moved = self.find_client(raw)
            if moved is not None:
                now_known = " / ".join(i for i in (moved.wa_id, moved.user_id) if i)
                raise AdminError(
                    f"{raw!r} is an id the client left behind (identity change); "
                    f"they are {now_known} now",
                    404,
                )
            raise AdminError(f"no client {raw!r}: the client has to write first", 404)
        return client

    def _client(
        self, wa_id: str | None, user_id: str | None, *, create: bool = True
    ) -> Client | None:
        key = (self._by_wa.get(wa_id) if wa_id else None) or (
            self._by_user.get(user_id) if user_id else None
        )
        client = self.clients.get(key) if key else None
        if client is None:
            if not create:
                return None
            base = wa_id or user_id
            assert base is not None
            key, n = base, 1
            while key in self.clients:  # an id another client left behind
                n += 1
                key = f"{base}#{n}"
            client = Client(key=key)
            self.clients[key] = client
        if wa_id and client.wa_id is None:
            client.wa_id = wa_id
        if user_id and client.user_id is None:
            client.user_id = user_id
        self._index(client)
        return client

    def _index(self, client: Client) -> None:
        for ident in (client.wa_id, client.user_id, client.parent_user_id):
            if ident:
                self._retired.pop(ident, None)
        if client.wa_id:
            self._by_wa[client.wa_id] = client.key
        if client.user_id:
            self._by_user[client.user_id] = client.key
        if client.parent_user_id:
            self._by_user.setdefault(client.parent_user_id, client.key)

    # ------------------------------------------------------------------ sending
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

    def check_phone_number(self, phone_number_id: str, verb: str = "post") -> None:
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
        client: Client | None
        if dropped:
            client = self.find_client(identity, retired=False)
        elif retired:
            # an id a client left behind (identity change): nobody reads it any more
            client = Client(
                key=f"retired:{identity}",
                wa_id=identity if id_kind == "phone" else None,
                user_id=identity if id_kind == "bsuid" else None,
            )
        else:
            client = self._client(
                identity if id_kind == "phone" else None, identity if id_kind == "bsuid" else None
            )
        recorded_key = None if client is None or retired else client.key

        def reject(error: GraphError) -> GraphError:
            return self._reject(
                error,
                phone_number_id=phone_number_id,
                to=identity,
                client=client if recorded_key else None,
                body=body,
                kind=kind,
            )

        violation = rules.validate_message(body)
        if violation is not None:
            raise reject(GraphError(violation.code, violation.details))
        media_problem = self._check_media_refs(body, kind)
        if media_problem is not None:
            raise reject(GraphError(100, media_problem))
        now = self.now()
        template = None
        rendered: dict[str, Any] = {}
        category = "service"
        if kind == "template":
            template_obj = body["template"]
            language = str(template_obj["language"]["code"])
            template = self.templates.get(str(template_obj["name"]), language)
            checked = rules.check_and_render(
                template, template_obj, language=language, api_version=api_version
            )
            if isinstance(checked, rules.Violation):
                raise reject(GraphError(checked.code, checked.details))
            assert template is not None
            rendered = checked
            category = template.category.lower()
            if category == "authentication" and id_kind == "bsuid" and not dropped:
                raise reject(
                    GraphError(
                        131062,
                        "Business-scoped User ID (BSUID) recipients are not supported for "
                        "this message.",
                    )
                )
        if not self.throughput.try_take(phone_number_id, now):
            raise reject(GraphError(130429, "Cloud API message throughput has been reached."))
        if dropped:
            return self._drop(
                phone_number_id, raw_to, identity, client, kind, body, template, rendered, now
            )
        assert client is not None
        if not self.pair_rate.try_take((phone_number_id, client.key), now):
            raise reject(
                GraphError(
                    131056,
                    "Message failed to send because there were too many messages sent "
                    "from this phone number to the same phone number in a short period of time.",
                )
            )

        in_window = self.windows.is_open(phone_number_id, client.key, now)
        failure: tuple[int, str] | None = None
        cap = self.config.marketing_cap_hours
        if retired:
            failure = (
                131026,
                "Message undeliverable: the recipient id is no longer in use "
                "(the client changed identity).",
            )
        elif kind != "template" and not in_window:
            failure = (
                131047,
                "Message failed to send because more than 24 hours have passed since "
                "the customer last replied to this number.",
            )
        elif category == "marketing" and client.marketing_stopped:
            failure = (
                131050,
                "Unable to deliver the message. This recipient has chosen to stop "
                "receiving marketing messages on WhatsApp from your business.",
            )
        elif (
            category == "marketing"
            and not in_window
            and cap is not None
            and client.last_marketing_at is not None
            and now < client.last_marketing_at + timedelta(hours=cap)
        ):
            failure = (
                131049,
                "In order to maintain a healthy ecosystem engagement, the message failed "
                "to be delivered.",
            )
        if failure is None and category == "marketing" and not in_window:
            # marketing sent inside a window the client opened does not count (§3)
            client.last_marketing_at = now
        if failure is None and id_kind == "phone" and not retired:
            client.bsuid_only = False  # the business has just used the phone number
        if failure is None and client.referral_at is not None and client.first_reply_at is None:
            if client.referral_at <= now < client.referral_at + rules.WINDOW:
                client.first_reply_at = now
        fep = failure is None and rules.fep_active(client.referral_at, client.first_reply_at, now)

        self._seq += 1
        message = OutboundMessage(
            seq=self._seq,
            wamid=new_wamid(client.wa_id or client.user_id),
            phone_number_id=phone_number_id,
            to=identity,
            client_key=recorded_key,
            type=kind,
            payload=body,
            sent_at=now,
            category=category,
            in_window=in_window,
            fep=fep,
        )
        self._describe(message, body, template, rendered)
        self._record(message)
        if not retired:
            client.outbound_count += 1
        self._spawn(self._lifecycle(message, client, failure, body.get("biz_opaque_callback_data")))

        # Meta (business-scoped user IDs, send response): ``wa_id`` when sent to the phone
        # number, ``user_id`` when sent to the BSUID, or when the request gave both.
        contact: dict[str, Any] = {"input": raw_to}
        if id_kind == "phone":
            contact["wa_id"] = identity
            also = body.get("recipient")
            if isinstance(also, str) and is_bsuid(also.strip()):
                contact["user_id"] = also.strip()
        else:
            contact["user_id"] = identity
        sent: dict[str, Any] = {"id": message.wamid}
        if kind == "template":
            sent["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]}

    def _drop(
        self,
        phone_number_id: str,
        raw_to: str,
        bsuid: str,
        client: Client | None,
        kind: str,
        body: Mapping[str, Any],
        template: Any,
        rendered: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """A BSUID in ``to``: Meta answers 200 with a message id for the "phone number" it
        read from the id, and nothing more happens (no status, no window effect).
        """
        misread = bsuid_read_as_phone(bsuid)
        self._seq += 1
        message = OutboundMessage(
            seq=self._seq,
            wamid=new_wamid(misread),
            phone_number_id=phone_number_id,
            to=bsuid,
            client_key=client.key if client else None,
            type=kind,
            payload=body,
            sent_at=now,
            status="dropped",
            category=template.category.lower() if template is not None else "service",
            drop_reason="bsuid_in_to",
            error_details=f"A BSUID in 'to' is read as the phone number {misread}; "
            "send a BSUID in 'recipient' (recipient_type 'individual').",
        )
        self._describe(message, body, template, rendered)
        self._record(message)
        sent: dict[str, Any] = {"id": message.wamid}
        if kind == "template":
            sent["message_status"] = "accepted"
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": raw_to, "wa_id": misread}],
            "messages": [sent],
        }

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

    def _describe(
        self,
        message: OutboundMessage,
        body: Mapping[str, Any],
        template: Any,
        rendered: Mapping[str, Any],
    ) -> None:
        """Fill the human-readable fields of the outbox entry."""
        kind = message.type
        content = body.get(kind)
        if kind == "text":
            message.body = content.get("body")
        elif kind == "template":
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
        elif kind == "interactive":
            message.body = (content.get("body") or {}).get("text")
            footer = content.get("footer")
            message.footer = footer.get("text") if isinstance(footer, Mapping) else None
            header = content.get("header")
            if isinstance(header, Mapping) and header.get("type") == "text":
                message.header = header.get("text")
            action = content.get("action") or {}
            if content.get("type") == "button":
                for button in action.get("buttons", []):
                    reply = button["reply"]
                    message.buttons.append(reply["title"])
                    message.options.append(
                        {"kind": "button_reply", "id": reply["id"], "title": reply["title"]}
                    )
            elif content.get("type") == "list":
                for section in action.get("sections", []):
                    for row in section.get("rows", []):
                        message.buttons.append(row["title"])
                        option = {"kind": "list_reply", "id": row["id"], "title": row["title"]}
                        if row.get("description") is not None:
                            option["description"] = row["description"]
                        message.options.append(option)
            elif content.get("type") == "cta_url":
                message.buttons.append(action["parameters"]["display_text"])
            elif content.get("type") == "request_contact_info":
                message.buttons.append(SHARE_CONTACT_TITLE)
                message.options.append(
                    {"kind": "share_contact", "id": SHARE_CONTACT_ID, "title": SHARE_CONTACT_TITLE}
                )
        elif kind in rules.MEDIA_TYPES:
            message.body = content.get("caption")
        elif kind == "location":
            message.body = (
                content.get("name")
                or content.get("address")
                or (f"{content.get('latitude')},{content.get('longitude')}")
            )
        elif kind == "reaction":
            message.body = content.get("emoji")
        elif kind == "contacts":
            message.body = ", ".join(c["name"]["formatted_name"] for c in content)

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
        conversation = None
        if message.fep and status in ("sent", "delivered") and client.first_reply_at:
            conversation = {
                "id": hashlib.md5(
                    f"{client.key}:{client.first_reply_at.isoformat()}".encode(),
                    usedforsecurity=False,
                ).hexdigest(),
                "origin": {"type": "referral_conversion"},
            }
            if status == "sent":
                conversation = {
                    "id": conversation["id"],
                    "expiration_timestamp": str(unix(client.first_reply_at + rules.FEP_DURATION)),
                    "origin": conversation["origin"],
                }
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
                conversation=conversation,
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
        if record is None or record.phone_number_id != phone_number_id:
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

    # ------------------------------------------------------------------ inbound
    def inbound(self, request: Mapping[str, Any], *, base_url: str) -> dict[str, Any]:
        """``POST /_emulator/inbound``: a client writes to the business."""
        wa_raw = _opt_str(request.get("from"), "from")
        user_id = _opt_str(request.get("user_id"), "user_id")
        parent_user_id = _opt_str(request.get("parent_user_id"), "parent_user_id")
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
            # a username-only client always has a BSUID: the one the emulator knows, or a
            # new one (country from the phone number)
            known = self.find_client(wa_id, retired=False) if wa_id else None
            user_id = (known.user_id if known else None) or new_bsuid(country_of(wa_id))
        kind = str(request.get("type") or "text")
        if kind not in INBOUND_TYPES:
            raise AdminError(f"type must be one of {sorted(INBOUND_TYPES)}, got {kind!r}")
        duplicates = request.get("duplicate", 0) or 0
        if not isinstance(duplicates, int) or isinstance(duplicates, bool) or duplicates < 0:
            raise AdminError("duplicate must be a non-negative integer")
        phone_number_id = str(request.get("phone_number_id") or self.config.phone_number_id)
        if phone_number_id != self.config.phone_number_id:
            raise AdminError(f"unknown business phone_number_id {phone_number_id!r}")

        client = self._client(wa_id, user_id)
        assert client is not None
        if parent_user_id:
            client.parent_user_id = parent_user_id
            self._index(client)
        name = _opt_str(request.get("name"), "name")
        if name:
            client.name = name
        now = self.now()
        wamid = new_wamid(client.wa_id or client.user_id)

        reply_to = _opt_str(request.get("reply_to"), "reply_to")
        button = request.get("button")
        context: dict[str, Any] | None = None
        if reply_to and kind != "reaction":
            context = {"from": self._context_from(reply_to, client), "id": reply_to}
        referred = request.get("referred_product")
        if referred is not None:
            # "Message business" on a catalog product (fixture 21)
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
        if button is not None:
            if not reply_to:
                raise AdminError("button needs reply_to (the wamid of the message tapped)")
            kind, content = self._tap(reply_to, str(button))
        else:
            content = self._inbound_content(kind, request, reply_to, base_url, now)

        referral = self._referral(request.get("referral"))
        client.bsuid_only = bsuid_only  # the request is valid: the client is as it says
        errors = None
        if kind == "unsupported":
            errors = [
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                }
            ]
        message = inbound_message(
            client.contact(),
            wamid=wamid,
            timestamp=now,
            kind=kind,
            content=content,
            context=context,
            referral=referral,
            errors=errors,
            include_from=not bsuid_only,
        )
        value = {
            "messaging_product": "whatsapp",
            "metadata": self.metadata.as_dict(),
            "contacts": [contact_object(client.contact(include_wa_id=not bsuid_only))],
            "messages": [message],
        }
        opens = kind != "reaction" or self.config.reaction_opens_window
        if opens:
            self.windows.record_inbound(phone_number_id, client.key, now)
        if referral is not None:
            client.referral_at, client.first_reply_at = now, None
        client.inbound_count += 1
        self._inbound[wamid] = _InboundRecord(client.key, phone_number_id, now)
        self._thread_inbound.append(_ThreadInbound(client.key, message, now, len(self.outbox)))
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

    def _context_from(self, reply_to: str, client: Client) -> str:
        record = self._inbound.get(reply_to)
        if record is not None:
            quoted = self.clients.get(record.client_key)
            if quoted is not None and quoted.wa_id:
                return quoted.wa_id
        return self.config.display_phone_number

    def _tap(self, reply_to: str, button: str) -> tuple[str, dict[str, Any]]:
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

    def _referral(self, raw: Any) -> dict[str, Any] | None:
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

    def _inbound_content(
        self,
        kind: str,
        request: Mapping[str, Any],
        reply_to: str | None,
        base_url: str,
        now: datetime,
    ) -> Any:
        text = request.get("text")
        if kind == "text":
            if not isinstance(text, str) or not text:
                raise AdminError("text is required for a text message")
            return {"body": text}
        if kind in _DEFAULT_MEDIA:
            return self._inbound_media(kind, request, base_url, now)
        if kind == "location":
            # ``name`` at the top level is the client's profile name; the place's name
            # goes in ``location.name`` (or ``place_name``)
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
                    "latitude": float(
                        merged["latitude"] if merged["latitude"] is not None else 48.8674
                    ),
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
        if kind == "reaction":
            target = request.get("message_id") or reply_to
            if not isinstance(target, str) or not target:
                raise AdminError("a reaction needs message_id (or reply_to): the wamid reacted to")
            emoji = request.get("emoji", text)
            reaction = {"message_id": target}
            if emoji:
                reaction["emoji"] = str(emoji)
            return reaction
        if kind == "unsupported":
            return {"type": str(request.get("unsupported_type") or "poll")}
        if kind == "order":
            order = request.get("order")
            if order is not None:
                if not isinstance(order, Mapping):
                    raise AdminError("order must be an object")
                return dict(order)
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
        if kind == "contacts":
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
                    "phones": [
                        {"phone": "+33 6 12 34 56 78", "wa_id": "33612345678", "type": "CELL"}
                    ],
                }
            ]
        raise AdminError(f"unsupported inbound type {kind!r}")  # pragma: no cover

    def _inbound_media(
        self, kind: str, request: Mapping[str, Any], base_url: str, now: datetime
    ) -> dict[str, Any]:
        media_id = request.get("media_id")
        if media_id is not None:
            item = self.media.get(str(media_id))
            if item is None:
                raise AdminError(f"media_id {media_id!r} is not held by the emulator", 404)
        else:
            mime, data, filename = _DEFAULT_MEDIA[kind]
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
            item = self.store_media(data, mime, filename, now)
        content: dict[str, Any] = {}
        caption = request.get("caption", request.get("text") if kind != "audio" else None)
        if caption and kind in ("image", "video", "document"):
            content["caption"] = str(caption)
        if kind == "document":
            content["filename"] = item.filename or "document.pdf"
        content["mime_type"] = item.mime_type
        content["sha256"] = item.sha256_b64
        content["id"] = item.id
        if self.config.inbound_media_url:
            content["url"] = self.media_url(item.id, base_url)
        if kind == "audio":
            content["voice"] = bool(request.get("voice", True))
        if kind == "sticker":
            content["animated"] = bool(request.get("animated", False))
        return content

    # ------------------------------------------------------------------ preferences
    def preferences(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/preferences``: the client stops / resumes marketing."""
        value = request.get("value")
        if value not in ("stop", "resume"):
            raise AdminError("value must be 'stop' or 'resume'")
        wa_raw = _opt_str(request.get("from"), "from")
        user_id = _opt_str(request.get("user_id"), "user_id")
        wa_id = None
        if wa_raw:
            parsed = normalise_recipient(wa_raw)
            if parsed is None or parsed[0] != "phone":
                raise AdminError(f"from must be a phone number, got {wa_raw!r}")
            wa_id = parsed[1]
        if wa_id is None and user_id is None:
            raise AdminError("from or user_id is required")
        client = self._client(wa_id, user_id)
        assert client is not None
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
        new_user_id = _opt_str(request.get("new_user_id"), "new_user_id")
        new_parent = _opt_str(request.get("new_parent_user_id"), "new_parent_user_id")
        new_wa_raw = _opt_str(request.get("new_wa_id"), "new_wa_id")
        new_wa_id = None
        if new_wa_raw:
            parsed = normalise_recipient(new_wa_raw)
            if parsed is None or parsed[0] != "phone":
                raise AdminError(f"new_wa_id must be a phone number, got {new_wa_raw!r}")
            new_wa_id = parsed[1]
            if new_wa_id == client.wa_id:
                raise AdminError(f"the client already has the number {new_wa_id}")
        for value, name in ((new_user_id, "new_user_id"), (new_parent, "new_parent_user_id")):
            if value is not None and not is_bsuid(value):
                raise AdminError(f"{name} must look like FR.5772156649015328606, got {value!r}")
        if new_user_id is not None and new_user_id == client.user_id:
            raise AdminError(f"the client already has the BSUID {new_user_id}")
        for value in (new_wa_id, new_user_id, new_parent):
            other = self.find_client(value, retired=False) if value else None
            if other is not None and other is not client:
                raise AdminError(f"{value} is another client's id ({other.key})", 409)
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

        # retire the old ids, take the new ones (same client: same key, window, history)
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

        now = self.now()
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
            # user_changed_number carries the regenerated BSUID but not the new parent id
            system["parent_user_id"] = parent
        if previous["user_id"]:
            system["previous_user_id"] = previous["user_id"]
        if previous["parent_user_id"]:
            system["previous_parent_user_id"] = previous["parent_user_id"]
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
        self._inbound[wamid] = _InboundRecord(client.key, self.config.phone_number_id, now)
        self._thread_inbound.append(_ThreadInbound(client.key, message, now, len(self.outbox)))
        self.dispatcher.submit(event)
        return {
            "type": system["type"],
            "client": client.view(),
            "previous": previous,
            "wamid": wamid,
            "webhook": build_payload(self.config.waba_id, [event]),
        }

    # ------------------------------------------------------------------ calls
    def call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/call``: the client calls the business (user-initiated). Two
        signed ``calls`` webhooks: ``connect`` then ``terminate`` (``COMPLETED`` when
        answered, with ``start_time``/``end_time``/``duration``; ``FAILED`` when not, without
        them, as Meta does). The call opens or refreshes the window, answered or not.
        """
        raw = request.get("client")
        if not isinstance(raw, str) or normalise_recipient(raw) is None:
            raise AdminError("client is required (a phone number or a business-scoped user id)")
        client = self.find_client(raw, retired=False)
        if client is None:  # a first contact by phone
            kind, ident = normalise_recipient(raw)  # type: ignore[misc]
            client = self._client(
                ident if kind == "phone" else None, ident if kind == "bsuid" else None
            )
            assert client is not None
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
            events.append(WebhookEvent("calls", value, client.key, labels=[f"call:{label}:{call_id}"]))
        self.windows.record_inbound(pnid, client.key, now)
        self._thread_inbound.append(
            _ThreadInbound(
                client.key,
                {
                    "id": call_id,
                    "type": "call",
                    "call": {"answered": answered, "duration": duration, "status": ending["status"]},
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
            "status": ending["status"],
            "duration": duration,
            "window_closes_at": closes.isoformat() if closes else None,
            "webhooks": [build_payload(self.config.waba_id, [e]) for e in events],
        }

    # ------------------------------------------------------------------ contact info
    def share_contact(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/share_contact``: the client taps "Share contact info" under the
        business's contact-information request (the latest one, or ``reply_to``). The bot
        gets a ``contacts`` message with ``origin: "contact_request"`` and the phone number;
        ``context`` points at the request. From then on the business knows the number.
        """
        client = self._admin_client(request)
        reply_to = _opt_str(request.get("reply_to"), "reply_to")
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
        asked = requests[-1]
        phone_raw = _opt_str(request.get("phone"), "phone") or client.wa_id
        parsed = normalise_recipient(phone_raw) if phone_raw else None
        if parsed is None or parsed[0] != "phone":
            raise AdminError("the emulator does not know this client's number: give phone")
        phone = parsed[1]
        if client.wa_id is None:
            client.wa_id = phone
            self._index(client)
        name = client.name or f"+{phone}"
        first, _, last = name.partition(" ")
        card_name: dict[str, Any] = {"formatted_name": name, "first_name": first}
        if last:
            card_name["last_name"] = last
        card = {
            "origin": "contact_request",
            "name": card_name,
            "phones": [{"phone": f"+{phone}", "wa_id": phone, "type": "CELL"}],
        }
        now = self.now()
        wamid = new_wamid(client.wa_id or client.user_id)
        message = inbound_message(
            client.contact(),
            wamid=wamid,
            timestamp=now,
            kind="contacts",
            content=[card],
            context={"from": self.config.display_phone_number, "id": asked.wamid},
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
        self._inbound[wamid] = _InboundRecord(client.key, pnid, now)
        self._thread_inbound.append(_ThreadInbound(client.key, message, now, len(self.outbox)))
        self.dispatcher.submit(
            WebhookEvent("messages", value, client.key, labels=[f"inbound:contacts:{wamid}"])
        )
        client.bsuid_only = False  # the number is in the business's contact book now
        closes = self.windows.closes_at(pnid, client.key)
        return {
            "wamid": wamid,
            "timestamp": str(unix(now)),
            "type": "contacts",
            "reply_to": asked.wamid,
            "window_closes_at": closes.isoformat() if closes else None,
            "message": message,
        }

    # ------------------------------------------------------------------ clock
    def clock_view(self) -> dict[str, Any]:
        return {"now": self.now().isoformat(), "offset_seconds": self.clock.offset.total_seconds()}

    def move_clock(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if "advance_seconds" in request:
            seconds = request["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise AdminError("advance_seconds must be a number")
            self.clock.advance(timedelta(seconds=seconds))
        elif "set" in request:
            raw = request["set"]
            if not isinstance(raw, str):
                raise AdminError("set must be an ISO 8601 string with a UTC offset")
            try:
                when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise AdminError(f"set: not an ISO 8601 datetime: {raw!r}") from None
            if when.tzinfo is None or when.utcoffset() is None:
                raise AdminError("set: a naive datetime is ambiguous; give an offset (e.g. +00:00)")
            self.clock.set(when)
        else:
            raise AdminError("give advance_seconds or set")
        return self.clock_view()

    # ------------------------------------------------------------------ views
    def outbox_view(self, to: str | None = None) -> list[dict[str, Any]]:
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
        messages: list[dict[str, Any]] = []
        if client is not None:
            pending = [e for e in self._thread_inbound if e.client_key == client.key]
            position = 0
            for index, out in enumerate(self.outbox):
                while position < len(pending) and pending[position].after_outbound <= index:
                    messages.append(self._thread_in(pending[position]))
                    position += 1
                # a dropped message never reached the client's phone
                if out.client_key == client.key and out.status != "dropped":
                    messages.append(_thread_out(out))
            messages.extend(self._thread_in(e) for e in pending[position:])
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

    def _thread_in(self, entry: _ThreadInbound) -> dict[str, Any]:
        message = entry.message
        kind = str(message.get("type"))
        content = message.get(kind)
        record = self._inbound.get(str(message.get("id")))
        context = message.get("context") if isinstance(message.get("context"), Mapping) else {}
        item: dict[str, Any] = {
            "direction": "in",
            "wamid": message.get("id"),
            "type": kind,
            "text": None,
            "reply_to": context.get("id"),
            "tapped": None,
            "media": None,
            "at": entry.at.isoformat(),
            # what the client's phone shows: read once the business marked it read
            "status": "read" if record is not None and record.read_by_business else "delivered",
        }
        if not isinstance(content, Mapping | list):
            return item
        if kind == "text":
            item["text"] = content.get("body")
        elif kind == "interactive":
            sub = content.get("type")
            reply = content.get(sub) if isinstance(content.get(sub), Mapping) else {}
            item["text"] = reply.get("title")
            item["tapped"] = {"kind": sub, "id": reply.get("id"), "title": reply.get("title")}
        elif kind == "button":
            item["text"] = content.get("text")
            item["tapped"] = {
                "kind": "template_button",
                "id": content.get("payload"),
                "title": content.get("text"),
            }
        elif kind in _DEFAULT_MEDIA:
            item["text"] = content.get("caption")
            item["media"] = {"mime_type": content.get("mime_type"), "filename": content.get("filename")}
        elif kind == "location":
            item["text"] = content.get("name") or content.get("address") or (
                f"{content.get('latitude')}, {content.get('longitude')}"
            )
        elif kind == "reaction":
            item["text"] = content.get("emoji")
            item["reply_to"] = content.get("message_id")
        elif kind == "order":
            products = content.get("product_items") or []
            item["text"] = content.get("text") or f"{len(products)} item(s)"
        elif kind == "contacts" and isinstance(content, list):
            item["text"] = ", ".join(
                str((c.get("name") or {}).get("formatted_name", "")) for c in content
            )
            if any(c.get("origin") == "contact_request" for c in content):
                phones = [p.get("phone") for c in content for p in c.get("phones") or []]
                item["text"] = f"Shared contact info: {item['text']} · {', '.join(phones)}"
        elif kind == "system":
            item["text"] = content.get("body")
            item["system_type"] = content.get("type")
            item["status"] = None
        elif kind == "call":
            answered = bool(content.get("answered"))
            seconds = int(content.get("duration") or 0)
            item["text"] = (
                f"Voice call · {seconds // 60} min {seconds % 60:02d} s"
                if answered
                else "Missed voice call (not answered)"
            )
            item["call"] = dict(content)
            item["status"] = None
        return item

    # ------------------------------------------------------------------ templates
    def set_template_status(self, name: str, request: Mapping[str, Any]) -> dict[str, Any]:
        status = str(request.get("status") or "").upper()
        if status not in TEMPLATE_STATUSES:
            raise AdminError(f"status must be one of {sorted(TEMPLATE_STATUSES)}")
        language = _opt_str(request.get("language"), "language")
        targets = self.templates.by_name(name)
        if language is not None:
            targets = [t for t in targets if t.language == language]
        if not targets:
            raise AdminError(
                f"no template {name!r}" + (f" in {language!r}" if language else ""), 404
            )
        reason = request.get("reason")
        now = self.now()
        changed = []
        for template in targets:
            updated = self.templates.set_status(template.name, template.language, status)
            extra: dict[str, Any] = {}
            if status == "PAUSED":
                extra["other_info"] = {
                    "title": "FIRST_PAUSE",
                    "description": "Your WhatsApp message template has been paused for 3 hours "
                    "due to low quality.",
                }
            elif status == "DISABLED":
                extra["disable_info"] = {"disable_date": now.date().isoformat()}
            for key in ("other_info", "rejection_info", "disable_info"):
                if isinstance(request.get(key), Mapping):
                    extra[key] = dict(request[key])
            value = template_status_value(
                event=status,
                template_id=updated.template_id or "0",
                name=updated.name,
                language=updated.language,
                category=updated.category,
                reason=str(reason) if reason is not None else "NONE",
                extra=extra,
            )
            self.dispatcher.submit(
                WebhookEvent(
                    "message_template_status_update",
                    value,
                    ACCOUNT_ORDER_KEY,
                    entry_time=unix(now),
                    labels=[f"template:{name}:{status}"],
                )
            )
            changed.append(
                {
                    "name": updated.name,
                    "language": updated.language,
                    "status": updated.status,
                    "id": updated.template_id,
                }
            )
        return {"templates": changed}

    # ------------------------------------------------------------------ media
    def store_media(
        self, data: bytes, mime_type: str, filename: str | None, now: datetime | None = None
    ) -> MediaItem:
        item = MediaItem(new_numeric_id(), data, mime_type, filename, now or self.now())
        self.media[item.id] = item
        return item

    def media_url(self, media_id: str, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/whatsapp_business/attachments/?mid={media_id}"

    def media_info(self, media_id: str, base_url: str) -> dict[str, Any]:
        item = self.media.get(media_id)
        if item is None:
            raise GraphError(
                100,
                f"Unsupported get request. Object with ID '{media_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation.",
            )
        return {
            "messaging_product": "whatsapp",
            "url": self.media_url(item.id, base_url),
            "mime_type": item.mime_type,
            "sha256": item.sha256_hex,
            "file_size": len(item.data),
            "id": item.id,
        }

    # ------------------------------------------------------------------ webhooks
    async def verify_webhook(self, verify_token: str | None = None) -> dict[str, Any]:
        """Meta's subscription handshake against the bot's webhook URL (§4.1)."""
        challenge = str(secrets.randbelow(10**9))
        params = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": verify_token
            if verify_token is not None
            else self.config.verify_token,
        }
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout)
                ) as session,
                session.get(self.config.webhook_url, params=params) as resp,
            ):
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return {
                "ok": False,
                "status": None,
                "body": None,
                "error": str(exc),
                "challenge": challenge,
            }
        return {
            "ok": status == 200 and text.strip() == challenge,
            "status": status,
            "body": text[:500],
            "challenge": challenge,
        }


def _thread_out(message: OutboundMessage) -> dict[str, Any]:
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
        **item,
        "interactive_type": interactive_type,
        "list_button": list_button,
        "options": [dict(o) for o in message.options],
        "at": message.sent_at.isoformat(),
    }


def _template_name(body: Any) -> str | None:
    template = body.get("template") if isinstance(body, Mapping) else None
    name = template.get("name") if isinstance(template, Mapping) else None
    return name if isinstance(name, str) else None


def _template_language(body: Any) -> str | None:
    template = body.get("template") if isinstance(body, Mapping) else None
    language = template.get("language") if isinstance(template, Mapping) else None
    code = language.get("code") if isinstance(language, Mapping) else None
    return code if isinstance(code, str) else None
