"""A small HTTP/1.1 client for the Graph API's hot path: JSON POSTs to one origin.

The outbound worker sends a thousand messages a second per number, and a general-purpose
client session spends most of a send's CPU on machinery this path never uses (cookie jars,
redirects, proxies, tracing, per-request objects). This client keeps only what the Graph
API needs:

- a pool of keep-alive connections to one origin (``http`` or ``https``), at most
  ``limit`` open, one request in flight per connection, waiters served in order;
- request bytes built from a header block prepared once per client;
- responses parsed by llhttp (through ``httptools``, the parser Sanic and uvloop use):
  ``Content-Length``, chunked bodies, ``Connection: close``, gzip/deflate bodies;
- one deadline per request covering the wait for a connection, the connect and the answer.

Failures are told apart by what the server may have seen: :class:`ConnectFailed` (nothing
was sent: safe to retry) and :class:`NoAnswer` (the request was written, or may have been:
never retried blindly, Meta has no idempotency key).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

import httptools

__all__ = ["ConnectFailed", "HttpReply", "Http1Pool", "NoAnswer", "TransportError"]

USER_AGENT: Final = b"salon-graph/1"
DEFAULT_IDLE_S: Final = 4.0
"""A connection idle longer than this is closed rather than reused: servers drop idle
keep-alive connections (Sanic after 5 s, load balancers after tens of seconds), and a
request written into a connection the server is closing gets no answer."""


class TransportError(Exception):
    """The exchange failed below HTTP."""


class ConnectFailed(TransportError):
    """No connection could be opened: the request never left."""


class NoAnswer(TransportError):
    """The request was (or may have been) written, and no complete answer came back."""


MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
"""The most a response body may hold, compressed or inflated (Meta's are a few KB)."""

@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; one exchange at a time."""

    __slots__ = ("transport", "parser", "waiter", "headers", "body", "closed", "reusable",
                 "last_used", "_headers_done", "_on_lost", "_size")

    def __init__(self, on_lost: Callable[[_Connection], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[HttpReply] | None = None
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self._size = 0
        self.closed = False
        self.reusable = False
        self.last_used = 0.0
        self._headers_done = False
        self._on_lost = on_lost

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Bytes nobody asked for (or after a timeout): the stream is out of step.
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(NoAnswer(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self._headers_done and "content-length" not in self.headers \
                    and "transfer-encoding" not in self.headers:
                # A body delimited by the end of the connection.
                self.on_message_complete()
            else:
                reason = f": {exc}" if exc else ""
                waiter.set_exception(NoAnswer(f"connection closed before the answer was complete{reason}"))
        self._on_lost(self)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_RESPONSE_BYTES:
            # Graph API answers are a few hundred bytes: this is not one.
            self._fail(NoAnswer(f"response body over {MAX_RESPONSE_BYTES} bytes"))
            self.close()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            status = self.parser.get_status_code()
            self.reusable = self.parser.should_keep_alive() and not self.closed
        except httptools.HttpParserError:
            status, self.reusable = 0, False
        body = b"".join(self.body)
        encoding = self.headers.get("content-encoding", "").strip().lower()
        try:
            if encoding in ("gzip", "deflate"):
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
                body = inflater.decompress(body, MAX_RESPONSE_BYTES)
                if inflater.unconsumed_tail:
                    waiter.set_exception(NoAnswer(f"{encoding} body inflates past {MAX_RESPONSE_BYTES} bytes"))
                    return
        except zlib.error as exc:
            waiter.set_exception(NoAnswer(f"undecodable {encoding} body: {exc}"))
            return
        waiter.set_result(HttpReply(status, self.headers, body))

    # ours
    def start(self, data: bytes, waiter: asyncio.Future[HttpReply]) -> None:
        self.waiter = waiter
        self.headers = {}
        self.body = []
        self._size = 0
        self.reusable = False
        self._headers_done = False
        assert self.transport is not None
        self.transport.write(data)

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


class Http1Pool:
    """Keep-alive connections to one origin. Use inside one event loop; ``await close()``
    when done.
    """

    def __init__(
        self,
        origin: str,
        *,
        limit: int = 64,
        timeout_s: float = 10.0,
        idle_s: float = DEFAULT_IDLE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = 443 if self.tls else 80
        self.host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):
            self.host_header = f"[{self.host}]" + ("" if self.port == default_port else f":{self.port}")
        self.limit = limit
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self._ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._closed = False

    def request_head(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        """The request line and headers, but ``Content-Length``: build once, send often."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}",
                 f"User-Agent: {USER_AGENT.decode()}", "Accept: application/json",
                 "Connection: keep-alive"]
        for name, value in headers.items():
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")

    async def send(self, head: bytes, body: bytes) -> HttpReply:
        """One exchange: ``head`` from :meth:`request_head`, then ``body``."""
        if self._closed:
            raise ConnectFailed("the client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        conn = await self._acquire(deadline)
        waiter: asyncio.Future[HttpReply] = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            conn.start(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body), waiter)
            reply = await waiter
        except BaseException:
            conn.close()
            self._release(conn)
            raise
        finally:
            timer.cancel()
        conn.last_used = loop.time()
        conn.waiter = None
        if not conn.reusable:
            conn.close()
        self._release(conn)
        return reply

    async def _acquire(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.last_used < self.idle_s:
                return conn
            conn.close()
        if self._open < self.limit:
            return await self._connect(deadline)
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            conn = await waiter
        except asyncio.TimeoutError as exc:
            raise ConnectFailed(f"no connection to {self.host_header} was free in time") from exc
        except BaseException:
            # Cancelled after a connection (or a slot) was handed over: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is None:
                    self._slot_freed()
                else:
                    self._release(handed)
            raise
        finally:
            timer.cancel()
        if conn is None:
            # A slot was freed rather than a connection handed over.
            return await self._connect(deadline)
        return conn

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        self._open += 1
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self._lost), self.host, self.port,
                                       ssl=self._ssl, server_hostname=self.host if self.tls else None),
                max(0.001, deadline - loop.time()),
            )
        except asyncio.TimeoutError as exc:
            self._slot_freed()
            raise ConnectFailed(f"connecting to {self.host_header} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            self._slot_freed()
            raise ConnectFailed(f"cannot connect to {self.host_header}: {exc}") from exc
        except BaseException:
            self._slot_freed()
            raise
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.closed:
            return  # _lost frees the slot
        if self._closed:
            conn.close()  # a send that finished after close(): its connection goes too
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _lost(self, conn: _Connection) -> None:
        try:
            self._idle.remove(conn)
        except ValueError:
            pass
        self._slot_freed()

    def _slot_freed(self) -> None:
        self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @property
    def open_connections(self) -> int:
        return self._open

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ConnectFailed("the client is closed"))
        self._waiters.clear()
        # Let transports deliver connection_lost.
        await asyncio.sleep(0)


def _expire(future: asyncio.Future[object]) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())
