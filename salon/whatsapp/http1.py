"""A small HTTP/1.1 client for the Graph API's hot path: JSON POSTs to one origin.

The outbound worker sends a thousand messages a second per number, and a general-purpose
client session spends most of a send's CPU on machinery this path never uses (cookie jars,
redirects, per-request proxy lookups, tracing, per-request objects). This client keeps only
what the Graph API needs:

- a pool of keep-alive connections to one origin (``http`` or ``https``), at most
  ``limit`` open, one request in flight per connection, waiters served in order;
- request bytes built from a header block prepared once per client;
- responses parsed by llhttp (through ``httptools``, the parser Sanic and uvloop use):
  ``Content-Length``, chunked bodies, ``Connection: close``, gzip/deflate bodies;
- one deadline per request covering the wait for a connection, the connect and the answer;
- the standard proxy variables (``HTTPS_PROXY``/``https_proxy`` for an ``https`` origin,
  ``HTTP_PROXY``/``http_proxy`` for an ``http`` one, ``NO_PROXY``/``no_proxy``), read once
  per pool as :mod:`urllib.request` reads them: through a proxy, each connection is a
  ``CONNECT`` tunnel (``Proxy-Authorization: Basic`` when the proxy URL holds
  ``user:password``), TLS to the origin inside it. Only ``http://`` proxies are spoken to.
  Without a proxy, connections open directly, at no extra cost.

Failures are told apart by what the server may have seen: :class:`ConnectFailed` (nothing
was sent: safe to retry) and :class:`NoAnswer` (the request was written, or may have been:
never retried blindly, Meta has no idempotency key).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import ssl
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

import httptools

__all__ = ["ConnectFailed", "HttpReply", "Http1Pool", "NoAnswer", "TransportError"]

logger = logging.getLogger(__name__)

_proxy_bypass: Callable[[str, dict[str, str]], bool] = (
    urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed
)

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

MAX_PROXY_ANSWER_BYTES: Final = 16 * 1024
"""The most a proxy's answer to ``CONNECT`` (status line and headers) may hold."""


@dataclass(frozen=True, slots=True)
class _Proxy:
    """The proxy a pool's connections go through: where it is and the ``CONNECT`` to send."""

    host: str
    port: int
    name: str
    """``http://host:port``: what logs and errors show (never the credentials)."""
    connect: bytes = field(repr=False)
    """The whole ``CONNECT`` request, ``Proxy-Authorization`` included when configured."""


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _proxy_for(scheme: str, host: str, port: int) -> _Proxy | None:
    """The proxy the environment names for ``scheme://host:port``, or None.

    The proxy variables and ``NO_PROXY`` are read as :mod:`urllib.request` reads them.
    """
    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme)
    if not url:
        return None
    authority = _authority(host, port)
    if _proxy_bypass(authority, proxies) or (":" in host and _proxy_bypass(host, proxies)):
        return None
    variable = f"{scheme.upper()}_PROXY"
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        proxy_port = parts.port or 80
    except ValueError:
        proxy_port = -1
    if parts.scheme != "http" or not parts.hostname or proxy_port < 0:
        # Not echoed: the value may hold a password.
        raise ValueError(f"{variable} is not an http://host:port proxy URL "
                         f"(scheme {parts.scheme!r}; only http:// proxies are supported)")
    name = f"http://{_authority(parts.hostname, proxy_port)}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}",
             f"User-Agent: {USER_AGENT.decode()}"]
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(credentials.encode()).decode("ascii"))
    connect = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return _Proxy(parts.hostname, proxy_port, name, connect)


class _ProxyAnswer(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT``, up to the blank line ending its head."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.head_size = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.head.done():
            return  # kept: a tunnel must not carry bytes before ours (checked when switching)
        end = self.received.find(b"\r\n\r\n")
        if end >= 0:
            self.head_size = end + 4
            self.head.set_result(bytes(self.received[:end]))
        elif len(self.received) > MAX_PROXY_ANSWER_BYTES:
            self.head.set_exception(ConnectFailed(f"proxy {self.name} answered CONNECT with over "
                                                  f"{MAX_PROXY_ANSWER_BYTES} bytes of headers"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            reason = f": {exc}" if exc else ""
            self.head.set_exception(ConnectFailed(f"proxy {self.name} closed the connection "
                                                  f"before answering CONNECT{reason}"))


def _ignore_lost(conn: _Connection) -> None:
    """A tunnel's connection until the pool takes it: its loss is the connect's failure."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    """One answer: its status, headers and (inflated) body."""

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
    """Keep-alive connections to one origin, directly or through the proxy the environment
    names for it (read here, once). Use inside one event loop; ``await close()`` when done.

    Raises ValueError for a bad origin, or a proxy variable that is no ``http://`` URL.
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
        self._proxy = _proxy_for(parts.scheme, self.host, self.port)
        if self._proxy is not None:
            logger.info("http1: connections to %s go through the proxy %s", self.host_header,
                        self._proxy.name)

    @property
    def proxy(self) -> str | None:
        """``http://host:port`` of the proxy the connections go through (None: direct)."""
        return self._proxy.name if self._proxy is not None else None

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
            given = await waiter
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
        if given is None:
            # A slot was freed rather than a connection handed over.
            return await self._connect(deadline)
        return given

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        self._open += 1
        try:
            if self._proxy is None:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(lambda: _Connection(self._lost), self.host, self.port,
                                           ssl=self._ssl, server_hostname=self.host if self.tls else None),
                    max(0.001, deadline - loop.time()),
                )
            else:
                conn = await asyncio.wait_for(self._tunnel(self._proxy),
                                              max(0.001, deadline - loop.time()))
        except asyncio.TimeoutError as exc:
            self._slot_freed()
            raise ConnectFailed(f"connecting to {self.host_header}{self._via()} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            self._slot_freed()
            raise ConnectFailed(f"cannot connect to {self.host_header}{self._via()}: {exc}") from exc
        except BaseException:
            self._slot_freed()
            raise
        return conn

    def _via(self) -> str:
        return "" if self._proxy is None else f" through the proxy {self._proxy.name}"

    async def _tunnel(self, proxy: _Proxy) -> _Connection:
        """A connection through a ``CONNECT`` tunnel at ``proxy``, with TLS to the origin
        inside it for ``https``.

        Raises ConnectFailed when the proxy refuses (naming its status line, nothing of our
        request). On any failure the proxy connection is closed; the caller frees the slot.
        """
        loop = asyncio.get_running_loop()
        transport, answer = await loop.create_connection(lambda: _ProxyAnswer(proxy.name),
                                                         proxy.host, proxy.port)
        try:
            transport.write(proxy.connect)
            head = await answer.head
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            fields = status_line.split(None, 2)
            if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
                raise ConnectFailed(f"proxy {proxy.name} answered CONNECT with no HTTP status line: "
                                    f"{status_line[:200]!r}")
            if not 200 <= int(fields[1]) < 300:
                raise ConnectFailed(f"proxy {proxy.name} refused CONNECT to {self.host_header}: "
                                    f"{status_line[:200]}")
            if len(answer.received) > answer.head_size:
                raise ConnectFailed(f"proxy {proxy.name} sent bytes into the tunnel to "
                                    f"{self.host_header} before the request")
            # The connection's loss is the pool's business only once the pool has it.
            conn = _Connection(_ignore_lost)
            if self._ssl is not None:
                tls = await loop.start_tls(transport, conn, self._ssl, server_hostname=self.host)
                if tls is None:  # pragma: no cover - only when the transport closed meanwhile
                    raise ConnectFailed(f"proxy {proxy.name} closed the tunnel to {self.host_header}")
                conn.connection_made(tls)
            else:
                transport.set_protocol(conn)
                conn.connection_made(transport)
            if conn.closed or transport.is_closing():
                raise ConnectFailed(f"proxy {proxy.name} closed the tunnel to {self.host_header}")
        except BaseException:
            transport.close()
            raise
        conn._on_lost = self._lost
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


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(asyncio.TimeoutError())
