"""The asynchronous Graph API client: keep-alive connections (:mod:`salon.whatsapp.http1`),
one deadline per call, every error mapped through :mod:`salon.whatsapp.errors` and retried by its
own policy.

Two ways to authenticate, same endpoints and bodies:

- ``bearer`` (Meta's Cloud API, and the local emulator):
  ``POST {base}/{version}/{phone_number_id}/messages`` with ``Authorization: Bearer``;
- ``d360`` (360dialog's hosted Cloud API): ``POST {base}/messages`` with the
  ``D360-API-KEY`` header (the number is implied by the key).

Through the proxy the environment names (``HTTPS_PROXY``, ``NO_PROXY``: see
:mod:`salon.whatsapp.http1`), read once per client, at its first call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import ujson

from salon.whatsapp.errors import NoResponseError, WhatsAppError, from_graph_error
from salon.whatsapp.http1 import ConnectFailed, Http1Pool, HttpReply, NoAnswer
from salon.whatsapp.versions import DEFAULT_API_VERSION

logger = logging.getLogger(__name__)

__all__ = ["GraphClient", "GraphConfig", "SendResult", "Transport"]

DEFAULT_BASE_URL: Final = "https://graph.facebook.com"
DEFAULT_VERSION: Final = DEFAULT_API_VERSION
AUTH_MODES: Final = ("bearer", "d360")


@dataclass(frozen=True, slots=True)
class GraphConfig:
    """Where and as whom the client calls the Graph API (or 360dialog's)."""

    access_token: str = field(repr=False)
    phone_number_id: str
    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_VERSION
    auth_mode: str = "bearer"
    timeout_s: float = 10.0
    max_attempts: int = 4
    max_retry_wait_s: float = 20.0
    """Waits longer than this are not slept inside a send: the error is returned."""

    def __post_init__(self) -> None:
        if self.auth_mode not in AUTH_MODES:
            raise ValueError(f"auth_mode must be one of {AUTH_MODES}, got {self.auth_mode!r}")
        if not self.access_token:
            raise ValueError("the Graph API access token is empty")
        if self.auth_mode == "bearer" and not self.phone_number_id:
            raise ValueError("phone_number_id is empty")

    @property
    def messages_url(self) -> str:
        base = self.base_url.rstrip("/")
        if self.auth_mode == "d360":
            return f"{base}/messages"
        return f"{base}/{self.api_version}/{self.phone_number_id}/messages"

    @property
    def headers(self) -> dict[str, str]:
        if self.auth_mode == "d360":
            return {"D360-API-KEY": self.access_token, "Content-Type": "application/json"}
        return {"Authorization": f"Bearer {self.access_token}", "Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class SendResult:
    """What Meta answered to one accepted send."""

    wamid: str
    message_status: str | None
    """``accepted`` or ``held_for_quality_assessment`` (template pacing), when given."""
    wa_id: str | None
    """``contacts[0].wa_id`` of the response: the phone number Meta sent to, when it did."""
    attempts: int
    user_id: str | None = None
    """``contacts[0].user_id``: the BSUID Meta sent to (or knows the phone's owner by)."""

    @property
    def recipient_id(self) -> str | None:
        """The id Meta addressed: the phone number when it answered one, else the BSUID."""
        return self.wa_id or self.user_id


Sleep = Callable[[float], Awaitable[None]]


class Transport(Protocol):
    """What the client needs from HTTP: :class:`~salon.whatsapp.http1.Http1Pool` in a server,
    a recording fake in the guard's unit tests.
    """

    def request_head(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        """The request line and headers, built once per client."""
        ...

    async def send(self, head: bytes, body: bytes) -> HttpReply:
        """Send one request; raise ConnectFailed, NoAnswer or asyncio.TimeoutError."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...


CONNECTIONS: Final = 64
"""Keep-alive connections per client (Meta answers a send in tens of milliseconds: 64 in
flight carry well over a thousand messages a second)."""


class GraphClient:
    """Send messages and read receipts. Use it inside one event loop (connections open
    lazily) and ``await close()`` when done.
    """

    def __init__(self, config: GraphConfig, *, sleep: Sleep = asyncio.sleep,
                 connections: int = CONNECTIONS, transport: Transport | None = None) -> None:
        self.config = config
        self._sleep = sleep
        self._connections = connections
        self._given = transport
        self._http: Transport | None = None
        self._head = b""

    def _pool(self) -> Transport:
        if self._http is None:
            parts = urlsplit(self.config.messages_url)
            self._http = self._given or Http1Pool(
                f"{parts.scheme}://{parts.netloc}", limit=self._connections,
                timeout_s=self.config.timeout_s)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            # Built once: a sender posts to this one address thousands of times a second.
            self._head = self._http.request_head("POST", target, self.config.headers)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def send(self, message: Mapping[str, Any]) -> SendResult:
        """POST one message object (``to`` or ``recipient``, ``type`` … ; ``messaging_product``
        is added; :class:`salon.whatsapp.addressing.Recipient` writes the recipient).

        Raises a :class:`~salon.whatsapp.errors.WhatsAppError` subclass once retries (for codes
        whose policy allows them) are exhausted.
        """
        body = {"messaging_product": "whatsapp", **message}
        data, attempts = await self._post(body)
        messages = data.get("messages") if isinstance(data, Mapping) else None
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], Mapping):
            raise from_graph_error({"error": {"code": 131000, "message": "no message id in response",
                                              "error_data": {"details": json.dumps(data)[:300]}}})
        first = messages[0]
        contacts = data.get("contacts") or [{}]
        contact = contacts[0] if isinstance(contacts[0], Mapping) else {}
        wa_id, user_id = contact.get("wa_id"), contact.get("user_id")
        return SendResult(str(first.get("id")), first.get("message_status"),
                          str(wa_id) if wa_id else None, attempts, str(user_id) if user_id else None)

    async def mark_read(self, wamid: str, *, typing: bool = False) -> bool:
        """Mark ``wamid`` (and earlier messages) read, optionally showing the typing
        indicator (it disappears on our reply or after 25 s).
        """
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        data, _ = await self._post(body, max_attempts=1)
        return bool(isinstance(data, Mapping) and data.get("success"))

    async def _post(
        self, body: Mapping[str, Any], *, max_attempts: int | None = None
    ) -> tuple[Any, int]:
        limit = max_attempts or self.config.max_attempts
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._post_once(body), attempt
            except WhatsAppError as error:
                delay = _retry_delay(error, attempt - 1)
                if (
                    delay is None
                    or attempt >= limit
                    or delay.total_seconds() > self.config.max_retry_wait_s
                ):
                    raise
                logger.warning(
                    "graph: %s, retry %d/%d in %.1fs", error, attempt, limit - 1, delay.total_seconds()
                )
                await self._sleep(delay.total_seconds())

    async def _post_once(self, body: Mapping[str, Any]) -> Any:
        raw = ujson.dumps(body, ensure_ascii=False, escape_forward_slashes=False).encode("utf-8")
        pool = self._pool()
        try:
            reply = await pool.send(self._head, raw)
        except ConnectFailed as exc:
            # Nothing reached the server: safe to retry.
            raise from_graph_error(
                {"error": {"code": 2, "message": "Service temporarily unavailable",
                           "error_data": {"details": f"connection failed: {exc}"}}}, 503
            ) from exc
        except asyncio.TimeoutError as exc:
            raise NoResponseError(-2, details=f"no answer within {self.config.timeout_s:g} s") from exc
        except NoAnswer as exc:
            raise NoResponseError(-2, details=f"{type(exc).__name__}: {exc}") from exc
        status = reply.status
        try:
            data = ujson.loads(reply.body) if reply.body else {}
        except ValueError:
            data = {"error": {"code": 131000 if status >= 500 else 100,
                              "message": f"HTTP {status}: response is not JSON",
                              "error_data": {"details": reply.body[:300].decode("utf-8", "replace")}}}
        if status >= 400 or (isinstance(data, Mapping) and "error" in data):
            raise from_graph_error(data, status)
        return data


def _retry_delay(error: WhatsAppError, attempt: int) -> timedelta | None:
    if not error.retryable:
        return None
    return error.retry_delay(attempt)
