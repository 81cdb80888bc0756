"""The Graph API's HTTP/1.1 client against real servers on loopback that answer as told:
keep-alive, limits, framing, compression, closes, timeouts and TLS."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from salon.whatsapp.http1 import ConnectFailed, Http1Pool, NoAnswer

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Gets one request's body, writes an answer; returns False to close the connection."""


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), extra, body))


class Server:
    """A loopback HTTP/1.1 server reading Content-Length bodies; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None
        self.origin = ""

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.origin = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                if not await self.handler(body, writer):
                    return
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()


async def echo(body: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok(body))
    return True


async def test_keeps_connections_alive_and_frames_the_request() -> None:
    async with Server(echo) as server:
        pool = Http1Pool(server.origin)
        head = pool.request_head("POST", "/v21.0/1/messages", {"Authorization": "Bearer t",
                                                                "Content-Type": "application/json"})
        for n in range(5):
            reply = await pool.send(head, b'{"n":%d}' % n)
            assert reply.status == 200
            assert reply.body == b'{"n":%d}' % n
            assert reply.headers["content-type"] == "application/json"
        await pool.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v21.0/1/messages HTTP/1.1\r\n")
    port = server.origin.rsplit(":", 1)[1]
    assert f"Host: 127.0.0.1:{port}\r\n".encode() in first
    assert b"Authorization: Bearer t\r\n" in first
    assert b"Content-Length: 7\r\n\r\n{\"n\":0}" in first


async def test_never_opens_more_than_the_limit_and_serves_waiters() -> None:
    async def slow(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        writer.write(ok(body))
        return True

    async with Server(slow) as server:
        pool = Http1Pool(server.origin, limit=3)
        head = pool.request_head("POST", "/", {})
        replies = await asyncio.gather(*(pool.send(head, b"%d" % n) for n in range(30)))
        assert sorted(int(r.body) for r in replies) == list(range(30))
        assert pool.open_connections == 3
        await pool.close()
    assert server.max_open == 3
    assert server.connections == 3


async def test_reads_chunked_and_gzip_bodies() -> None:
    async def chunked(body: bytes, writer: asyncio.StreamWriter) -> bool:
        packed = gzip.compress(b'{"messages":[{"id":"wamid.X"}]}')
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n")
        for part in (packed[:7], packed[7:]):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        writer.write(b"0\r\n\r\n")
        return True

    async with Server(chunked) as server:
        pool = Http1Pool(server.origin)
        head = pool.request_head("POST", "/", {})
        for _ in range(2):
            reply = await pool.send(head, b"{}")
            assert reply.body == b'{"messages":[{"id":"wamid.X"}]}'
        await pool.close()
    assert server.connections == 1


async def test_a_connection_close_answer_is_not_reused() -> None:
    async def closing(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(extra=b"Connection: close\r\n"))
        return False

    async with Server(closing) as server:
        pool = Http1Pool(server.origin, limit=1)
        head = pool.request_head("POST", "/", {})
        for _ in range(3):
            assert (await pool.send(head, b"{}")).status == 200
        await pool.close()
    assert server.connections == 3


async def test_a_body_ended_by_the_close_is_read_whole() -> None:
    async def eof_delimited(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nupstream down")
        return False

    async with Server(eof_delimited) as server:
        pool = Http1Pool(server.origin)
        reply = await pool.send(pool.request_head("POST", "/", {}), b"{}")
        await pool.close()
    assert (reply.status, reply.body) == (500, b"upstream down")


async def test_a_close_without_an_answer_is_no_answer_and_frees_the_slot() -> None:
    calls = 0

    async def hang_up_once(body: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"half")
            return False
        writer.write(ok())
        return True

    async with Server(hang_up_once) as server:
        pool = Http1Pool(server.origin, limit=1)
        head = pool.request_head("POST", "/", {})
        with pytest.raises(NoAnswer):
            await pool.send(head, b"{}")
        assert (await pool.send(head, b"{}")).status == 200
        await pool.close()


async def test_malformed_answers_are_no_answer() -> None:
    async def garbage(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP READY\r\n\r\n")
        return True

    async with Server(garbage) as server:
        pool = Http1Pool(server.origin)
        with pytest.raises(NoAnswer, match="malformed"):
            await pool.send(pool.request_head("POST", "/", {}), b"{}")
        await pool.close()


async def test_refused_connections_are_connect_failed() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    pool = Http1Pool(f"http://127.0.0.1:{port}", limit=1)
    for _ in range(2):  # the slot comes back after each failure
        with pytest.raises(ConnectFailed):
            await pool.send(pool.request_head("POST", "/", {}), b"{}")
    assert pool.open_connections == 0
    await pool.close()


async def test_an_unanswered_request_times_out_and_its_connection_is_dropped() -> None:
    release = asyncio.Event()

    async def stall(body: bytes, writer: asyncio.StreamWriter) -> bool:
        if body == b"stall":
            await release.wait()
            return False
        writer.write(ok(body))
        return True

    async with Server(stall) as server:
        pool = Http1Pool(server.origin, limit=1, timeout_s=0.2)
        head = pool.request_head("POST", "/", {})
        stalled = asyncio.create_task(pool.send(head, b"stall"))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(pool.send(head, b"queued"))
        with pytest.raises(asyncio.TimeoutError):
            await stalled
        # The stalled connection is closed, never reused: the waiter gets a new one.
        assert (await queued).body == b"queued"
        release.set()
        await pool.close()
    assert server.connections == 2


async def test_a_cancelled_waiter_passes_the_connection_on() -> None:
    gate = asyncio.Event()

    async def gated(body: bytes, writer: asyncio.StreamWriter) -> bool:
        if body == b"first":
            await gate.wait()
        writer.write(ok(body))
        return True

    async with Server(gated) as server:
        pool = Http1Pool(server.origin, limit=1)
        head = pool.request_head("POST", "/", {})
        first = asyncio.create_task(pool.send(head, b"first"))
        await asyncio.sleep(0.02)
        abandoned = asyncio.create_task(pool.send(head, b"abandoned"))
        third = asyncio.create_task(pool.send(head, b"third"))
        await asyncio.sleep(0.02)
        abandoned.cancel()
        gate.set()
        assert (await first).body == b"first"
        assert (await third).body == b"third"
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        await pool.close()
    assert server.connections == 1


async def test_a_send_in_flight_at_close_does_not_leave_its_connection_open() -> None:
    gate = asyncio.Event()

    async def gated(body: bytes, writer: asyncio.StreamWriter) -> bool:
        await gate.wait()
        writer.write(ok(body))
        return True

    async with Server(gated) as server:
        pool = Http1Pool(server.origin)
        sending = asyncio.create_task(pool.send(pool.request_head("POST", "/", {}), b"late"))
        await asyncio.sleep(0.05)
        await pool.close()
        gate.set()
        assert (await sending).body == b"late"
        await asyncio.sleep(0.05)  # the close reaches the server
        assert pool.open_connections == 0
        assert server.open == 0


async def test_idle_connections_are_replaced_not_reused() -> None:
    async with Server(echo) as server:
        pool = Http1Pool(server.origin, idle_s=0.05)
        head = pool.request_head("POST", "/", {})
        await pool.send(head, b"1")
        await asyncio.sleep(0.1)
        assert (await pool.send(head, b"2")).body == b"2"
        await pool.close()
    assert server.connections == 2


async def test_a_connection_the_server_dropped_while_idle_is_not_used() -> None:
    async def one_per_connection(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(body))  # no Connection: close, yet the server hangs up
        return False

    async with Server(one_per_connection) as server:
        pool = Http1Pool(server.origin)
        head = pool.request_head("POST", "/", {})
        await pool.send(head, b"1")
        await asyncio.sleep(0.05)  # the close reaches the client
        assert (await pool.send(head, b"2")).body == b"2"
        await pool.close()
    assert server.connections == 2


def test_bad_origins_and_header_injection_are_refused() -> None:
    with pytest.raises(ValueError):
        Http1Pool("ftp://example.com")
    pool = Http1Pool("https://graph.facebook.com")
    assert pool.port == 443 and pool.tls
    assert b"Host: graph.facebook.com\r\n" in pool.request_head("POST", "/", {})
    with pytest.raises(ValueError, match="line break"):
        pool.request_head("POST", "/", {"Authorization": "Bearer x\r\nX-Evil: 1"})


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost: (key, certificate)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


async def test_https_with_certificate_verification(certificate: tuple[Path, Path]) -> None:
    key, cert = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                writer.write(ok(await reader.readexactly(length)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        pool = Http1Pool(f"https://localhost:{port}", ssl_context=trusted)
        reply = await pool.send(pool.request_head("POST", "/", {}), b'{"tls":1}')
        assert reply.body == b'{"tls":1}'
        await pool.close()
        untrusted = Http1Pool(f"https://localhost:{port}")  # the system's roots only
        with pytest.raises(ConnectFailed):
            await untrusted.send(untrusted.request_head("POST", "/", {}), b"{}")
        await untrusted.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_an_oversized_or_inflating_answer_is_refused() -> None:
    """A peer answering megabytes (or a small gzip that inflates to them) is not read whole."""
    from salon.whatsapp.http1 import MAX_RESPONSE_BYTES

    big = b"x" * (MAX_RESPONSE_BYTES + 1)
    bomb = gzip.compress(b"\0" * (MAX_RESPONSE_BYTES * 4))
    assert len(bomb) < 100_000

    async def huge(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big))
        return True

    async def inflating(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(bomb), bomb))
        return True

    for handler, reason in ((huge, "over"), (inflating, "inflates past")):
        async with Server(handler) as server:
            pool = Http1Pool(server.origin, limit=1, timeout_s=10)
            try:
                with pytest.raises(NoAnswer, match=reason):
                    await pool.send(pool.request_head("POST", "/x", {}), b"{}")
            finally:
                await pool.close()
