"""The Graph API client through the proxy the environment names: a real CONNECT proxy on
loopback between the client and the real emulator (plain, and behind a TLS front)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import RunningEmulator, running_emulator
from salon.whatsapp.errors import WhatsAppError
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.whatsapp.http1 import ConnectFailed, Http1Pool

CLAIRE = "33600000001"
PASSWORD = "s3cret"


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no proxy variable, whatever the machine running it has."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)  # urllib drops HTTP_PROXY under CGI


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class ConnectProxy:
    """A loopback CONNECT proxy: records each target (and its Proxy-Authorization), answers
    ``answer`` (or 407 when ``credentials`` are required and not given), then relays bytes."""

    def __init__(self, *, credentials: str | None = None, answer: bytes | None = None,
                 silent: bool = False) -> None:
        self.credentials = credentials
        self.answer = answer
        self.silent = silent
        self.targets: list[str] = []
        self.authorizations: list[str | None] = []
        self.heads: list[bytes] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            assert method == "CONNECT"
            self.targets.append(target)
            auth = None
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "proxy-authorization":
                    auth = value.strip()
            self.authorizations.append(auth)
            if self.silent:
                await asyncio.sleep(3600)
            expected = (None if self.credentials is None
                        else "Basic " + base64.b64encode(self.credentials.encode()).decode())
            if self.answer is not None:
                writer.write(self.answer)
                return
            if expected is not None and auth != expected:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 6\r\n\r\ndenied')
                return
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


def graph_client(emu: RunningEmulator, base_url: str | None = None, **kwargs: Any) -> GraphClient:
    return GraphClient(GraphConfig(access_token=emu.config.access_token,
                                   phone_number_id=emu.config.phone_number_id,
                                   base_url=base_url or emu.base_url), **kwargs)


async def outbox(emu: RunningEmulator, to: str) -> list[dict[str, Any]]:
    """What the emulator accepted for ``to`` (asked directly, never through the proxy)."""
    async with aiohttp.ClientSession() as admin, \
            admin.get(f"{emu.base_url}/_emulator/outbox", params={"to": to}) as r:
        return list(await r.json())


def text(body: str) -> dict[str, Any]:
    return {"to": CLAIRE, "type": "text", "text": {"body": body}}


async def test_sends_through_the_proxy_and_keeps_the_tunnel_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(EmulatorConfig()) as emu, ConnectProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        graph = graph_client(emu)
        try:
            first = await graph.send(text("through the proxy"))
            second = await graph.send(text("same tunnel"))
        finally:
            await graph.close()
        port = emu.base_url.rsplit(":", 1)[1]
        assert proxy.targets == [f"127.0.0.1:{port}"]  # two sends, one CONNECT
        assert proxy.authorizations == [None]
        sent = {m["wamid"]: m["body"] for m in await outbox(emu, CLAIRE)}
        assert sent == {first.wamid: "through the proxy", second.wamid: "same tunnel"}


async def test_no_proxy_goes_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(EmulatorConfig()) as emu, ConnectProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url())
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        graph = graph_client(emu)
        try:
            result = await graph.send(text("direct"))
        finally:
            await graph.close()
        assert proxy.targets == []
        assert [m["wamid"] for m in await outbox(emu, CLAIRE)] == [result.wamid]


async def test_an_https_proxy_variable_is_not_used_for_an_http_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(EmulatorConfig()) as emu, ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        graph = graph_client(emu)
        try:
            await graph.send(text("direct"))
        finally:
            await graph.close()
        assert proxy.targets == []


@pytest.mark.parametrize(("origin", "no_proxy", "proxied"), [
    ("https://graph.facebook.com", None, True),
    ("https://graph.facebook.com", "*", False),
    ("https://graph.facebook.com", "example.com, .facebook.com", False),
    ("https://graph.facebook.com", "facebook.com", False),
    ("https://graph.facebook.com", "graph.facebook.com:443", False),
    ("https://graph.facebook.com", "graph.facebook.com:8443", True),
    ("https://graph.facebook.com", "notfacebook.com,example.com", True),
    ("https://waba-v2.360dialog.io", "FACEBOOK.COM", True),
    ("http://127.0.0.1:8999", "127.0.0.1", False),
    ("http://127.0.0.1:8999", "127.0.0.1:8999", False),
    ("http://[::1]:8999", "::1", False),
])
def test_no_proxy_is_read_as_the_standard_library_reads_it(
    monkeypatch: pytest.MonkeyPatch, origin: str, no_proxy: str | None, proxied: bool
) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.corp.example:3128")
    monkeypatch.setenv("http_proxy", "proxy.corp.example:3128")  # no scheme: http://
    if no_proxy is not None:
        monkeypatch.setenv("no_proxy", no_proxy)
    expected = "http://proxy.corp.example:3128" if proxied else None
    assert Http1Pool(origin).proxy == expected


def test_lower_case_variables_win_and_credentials_never_show(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:1")
    monkeypatch.setenv("https_proxy", f"http://user:{PASSWORD}@lower.example:8080")
    with caplog.at_level(logging.DEBUG):
        pool = Http1Pool("https://graph.facebook.com")
    assert pool.proxy == "http://lower.example:8080"
    assert "http://lower.example:8080" in caplog.text
    assert PASSWORD not in caplog.text and PASSWORD not in repr(pool._proxy)
    monkeypatch.setenv("https_proxy", f"socks5://user:{PASSWORD}@lower.example:1080")
    with pytest.raises(ValueError, match="HTTPS_PROXY") as bad:
        Http1Pool("https://graph.facebook.com")
    assert PASSWORD not in str(bad.value)


async def test_the_proxy_credentials_are_sent_as_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(EmulatorConfig()) as emu, \
            ConnectProxy(credentials="corp\\jo:p@ss word") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url("corp%5Cjo:p%40ss%20word"))
        graph = graph_client(emu)
        try:
            result = await graph.send(text("authenticated"))
        finally:
            await graph.close()
        assert len(proxy.targets) == 1
        assert [m["wamid"] for m in await outbox(emu, CLAIRE)] == [result.wamid]


async def test_a_407_is_a_clear_error_without_the_password(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    encoded = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    async with running_emulator(EmulatorConfig()) as emu, \
            ConnectProxy(credentials="user:another") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url(f"user:{PASSWORD}"))
        caplog.set_level(logging.DEBUG)
        pool = Http1Pool(emu.base_url, limit=1)
        for _ in range(2):  # the slot comes back after each refusal
            with pytest.raises(ConnectFailed) as refused:
                await pool.send(pool.request_head("POST", "/", {}), b"{}")
            message = str(refused.value)
            assert "407 Proxy Authentication Required" in message
            assert f"http://127.0.0.1:{proxy.port}" in message
            assert PASSWORD not in message and encoded not in message
            await asyncio.sleep(0.01)  # the closed tunnel's loss has been delivered
            assert pool.open_connections == 0
        await pool.close()

        async def no_wait(seconds: float) -> None:
            pass

        graph = graph_client(emu, sleep=no_wait)
        try:
            with pytest.raises(WhatsAppError) as failed:
                await graph.send(text("never sent"))
        finally:
            await graph.close()
        assert "407 Proxy Authentication Required" in str(failed.value)
        assert PASSWORD not in str(failed.value) and encoded not in str(failed.value)
        assert PASSWORD not in caplog.text and encoded not in caplog.text
        assert proxy.authorizations[0] == f"Basic {encoded}"
        assert await outbox(emu, CLAIRE) == []


async def test_other_refusals_and_a_silent_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ConnectProxy(answer=b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        pool = Http1Pool("https://graph.facebook.com", limit=1)
        with pytest.raises(ConnectFailed, match="403 Forbidden"):
            await pool.send(pool.request_head("POST", "/", {}), b"{}")
        await pool.close()
        assert proxy.targets == ["graph.facebook.com:443"]
        assert proxy.heads[0].startswith(b"CONNECT graph.facebook.com:443 HTTP/1.1\r\n"
                                         b"Host: graph.facebook.com:443\r\n")
    async with ConnectProxy(silent=True) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        pool = Http1Pool("https://graph.facebook.com", limit=1, timeout_s=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectFailed, match="timed out"):
            await pool.send(pool.request_head("POST", "/", {}), b"{}")
        assert loop.time() - started < 2  # the request's deadline covers the CONNECT
        await asyncio.sleep(0.01)
        assert pool.open_connections == 0
        await pool.close()


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` only: (key, certificate)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@asynccontextmanager
async def tls_front(emu: RunningEmulator, certificate: tuple[Path, Path]) -> AsyncIterator[int]:
    """A TLS terminator on loopback relaying to the emulator: yields its port."""
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = int(emu.base_url.rsplit(":", 1)[1])
    tasks: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            writer.close()
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


async def _tls_through_the_proxy(monkeypatch: pytest.MonkeyPatch,
                                 certificate: tuple[Path, Path]) -> None:
    # The client trusts the test certificate as corporate clients trust their CA bundle.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[1]))
    async with running_emulator(EmulatorConfig()) as emu, tls_front(emu, certificate) as port, \
            ConnectProxy(credentials=f"user:{PASSWORD}") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url(f"user:{PASSWORD}"))
        graph = graph_client(emu, base_url=f"https://localhost:{port}")
        try:
            first = await graph.send(text("over TLS"))
            second = await graph.send(text("same TLS tunnel"))
        finally:
            await graph.close()
        assert proxy.targets == [f"localhost:{port}"]
        sent = {m["wamid"]: m["body"] for m in await outbox(emu, CLAIRE)}
        assert sent == {first.wamid: "over TLS", second.wamid: "same TLS tunnel"}

        # The certificate is checked against the origin's name, inside the tunnel.
        wrong_name = Http1Pool(f"https://127.0.0.1:{port}", limit=1)
        with pytest.raises(ConnectFailed, match="through the proxy"):
            await wrong_name.send(wrong_name.request_head("POST", "/", {}), b"{}")
        await asyncio.sleep(0.01)
        assert wrong_name.open_connections == 0
        await wrong_name.close()
        assert proxy.targets[-1] == f"127.0.0.1:{port}"


async def test_tls_to_the_origin_inside_the_tunnel(monkeypatch: pytest.MonkeyPatch,
                                                   certificate: tuple[Path, Path]) -> None:
    await _tls_through_the_proxy(monkeypatch, certificate)


def test_tls_inside_the_tunnel_on_uvloop(monkeypatch: pytest.MonkeyPatch,
                                         certificate: tuple[Path, Path]) -> None:
    """The outbound worker runs on uvloop (:func:`salon.loops.run_fast`): its start_tls too."""
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(_tls_through_the_proxy(monkeypatch, certificate))
    finally:
        loop.close()
