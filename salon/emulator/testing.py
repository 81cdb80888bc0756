"""Helpers for tests that need the emulator: run it in-process or as a subprocess, and a
tiny webhook receiver that checks every POST's signature and collects the events.

In-process::

    async with running_emulator(EmulatorConfig(webhook_url=receiver.url)) as emu:
        emu.base_url            # "http://127.0.0.1:<port>"
        emu.graph_url           # base_url + "/v27.0" (config.api_version)
        emu.emulator            # the Emulator object (in-process only)

As a subprocess (``python -m salon.emulator``)::

    async with running_emulator_subprocess(EmulatorConfig(webhook_url=...)) as emu:
        ...

Receiver::

    async with WebhookReceiver("emulator-app-secret") as receiver:
        receiver.url            # give it to the emulator as webhook_url
        await receiver.wait_for(lambda r: r.statuses("wamid...", "read"))
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from sanic import Sanic

from salon.clock import Clock
from salon.emulator.app import create_app, emulator_of
from salon.emulator.config import EmulatorConfig
from salon.emulator.server import EmulatorServer
from salon.emulator.service import Emulator
from salon.emulator.template_store import TemplateStore

__all__ = [
    "ReceivedPost",
    "RunningEmulator",
    "WebhookReceiver",
    "free_port",
    "running_emulator",
    "running_emulator_subprocess",
]

T = TypeVar("T")
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningEmulator:
    """A started emulator. ``app``/``emulator`` are set in-process only."""

    base_url: str
    config: EmulatorConfig
    app: Sanic | None = None
    emulator: Emulator | None = None
    pid: int | None = None

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/{self.config.api_version}"

    @property
    def messages_url(self) -> str:
        return f"{self.graph_url}/{self.config.phone_number_id}/messages"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.access_token}"}

    def __str__(self) -> str:
        return self.base_url


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def running_emulator(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    templates: TemplateStore | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[RunningEmulator]:
    """Start the emulator on this event loop (``port=0``: a free port)."""
    config = config or EmulatorConfig()
    app = create_app(config, clock=clock, templates=templates)
    server = EmulatorServer(app, host, port)
    base_url = await server.start()
    try:
        yield RunningEmulator(
            base_url,
            config.with_changes(host=host, port=server.port),
            app=app,
            emulator=emulator_of(app),
        )
    finally:
        await server.stop()


def _cli_args(config: EmulatorConfig) -> list[str]:
    args: list[str] = []
    defaults = EmulatorConfig()
    for f in fields(EmulatorConfig):
        value = getattr(config, f.name)
        if value == getattr(defaults, f.name) and f.name not in ("host", "port"):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif value is None:
            args += [flag, "off" if f.name in ("status_read_delay", "marketing_cap_hours") else ""]
        elif isinstance(value, tuple):
            args += [flag, ",".join(value)]
        else:
            args += [flag, str(value)]
    return args


@asynccontextmanager
async def running_emulator_subprocess(
    config: EmulatorConfig | None = None,
    *,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 30.0,
    log_file: str | Path | None = None,
) -> AsyncIterator[RunningEmulator]:
    """Run ``python -m salon.emulator`` with ``config`` (flags), wait for
    ``GET /_emulator/health``, and terminate it on exit. ``config.port`` 0 or the
    default picks a free port.
    """
    config = config or EmulatorConfig()
    if config.port in (0, EmulatorConfig().port):
        config = config.with_changes(port=free_port(config.host))
    child_env = dict(os.environ if env is None else env)
    repo_root = str(_REPO_ROOT)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (repo_root, child_env.get("PYTHONPATH", "")) if p
    )
    out: Any = asyncio.subprocess.DEVNULL
    handle = None
    if log_file is not None:
        handle = open(log_file, "ab")  # noqa: ASYNC230 - opened once before the child starts
        out = handle
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "salon.emulator",
        *_cli_args(config),
        env=child_env,
        stdout=out,
        stderr=out,
    )
    base_url = f"http://{config.host}:{config.port}"
    try:
        await _wait_healthy(base_url, process, startup_timeout)
        yield RunningEmulator(base_url, config, pid=process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        if handle is not None:
            handle.close()


async def _wait_healthy(base_url: str, process: asyncio.subprocess.Process, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"emulator exited with {process.returncode} before serving")
            try:
                async with session.get(f"{base_url}/_emulator/health") as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass
            if loop.time() >= deadline:
                raise TimeoutError(f"emulator at {base_url} not healthy after {timeout} s")
            await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- receiver


@dataclass
class ReceivedPost:
    """One webhook POST as received."""

    body: bytes
    signature: str | None
    signature_valid: bool
    content_type: str | None
    payload: Any
    answered: int

    def changes(self) -> list[dict[str, Any]]:
        out = []
        for entry in self.payload.get("entry", []) if isinstance(self.payload, dict) else []:
            out.extend(entry.get("changes", []))
        return out

    def messages(self) -> list[dict[str, Any]]:
        return [m for c in self.changes() for m in c.get("value", {}).get("messages", [])]

    def statuses(self) -> list[dict[str, Any]]:
        return [s for c in self.changes() for s in c.get("value", {}).get("statuses", [])]


@dataclass
class WebhookReceiver:
    """A loopback aiohttp server standing in for the bot's webhook.

    It checks ``X-Hub-Signature-256`` on the raw bytes with ``app_secret`` (its own HMAC
    code, independent of the emulator's), and answers each POST with the next status of
    ``responses`` (then 200). It also answers Meta's GET verification handshake when
    ``verify_token`` matches.
    """

    app_secret: str = "emulator-app-secret"
    verify_token: str = "emulator-verify-token"
    responses: list[int] = field(default_factory=list)
    posts: list[ReceivedPost] = field(default_factory=list)
    #: seconds to wait before answering each POST (a slow bot)
    delay: float = 0.0
    path: str = "/webhooks/whatsapp/webhook"
    port: int = 0
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _changed: asyncio.Condition | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(self.path, self._on_post)
        app.router.add_get(self.path, self._on_get)
        self._changed = asyncio.Condition()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def expected_signature(self, body: bytes) -> str:
        mac = hmac.new(self.app_secret.encode("utf-8"), body, hashlib.sha256)
        return "sha256=" + mac.hexdigest()

    async def _on_get(self, request: web.Request) -> web.Response:
        if (
            request.query.get("hub.mode") == "subscribe"
            and request.query.get("hub.verify_token") == self.verify_token
        ):
            return web.Response(text=request.query.get("hub.challenge", ""))
        return web.Response(status=403, text="verify token mismatch")

    async def _on_post(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Hub-Signature-256")
        valid = signature is not None and hmac.compare_digest(
            signature, self.expected_signature(body)
        )
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        status = self.responses.pop(0) if self.responses else 200
        if self.delay:
            await asyncio.sleep(self.delay)
        self.posts.append(
            ReceivedPost(
                body, signature, valid, request.headers.get("Content-Type"), payload, status
            )
        )
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=status, text="ok" if status == 200 else "error")

    # -- views over what arrived (accepted POSTs only, i.e. answered 200)
    def accepted(self) -> list[ReceivedPost]:
        return [p for p in self.posts if p.answered == 200]

    def messages(self) -> list[dict[str, Any]]:
        return [m for p in self.accepted() for m in p.messages()]

    def statuses(self, wamid: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return [
            s
            for p in self.accepted()
            for s in p.statuses()
            if (wamid is None or s.get("id") == wamid)
            and (status is None or s.get("status") == status)
        ]

    def changes(self, field_name: str | None = None) -> list[dict[str, Any]]:
        return [
            c
            for p in self.accepted()
            for c in p.changes()
            if field_name is None or c.get("field") == field_name
        ]

    async def wait_for(self, predicate: Callable[[WebhookReceiver], T], timeout: float = 5.0) -> T:
        """Wait until ``predicate(self)`` is truthy; returns its value."""
        assert self._changed is not None
        async with self._changed:
            try:
                return await asyncio.wait_for(
                    self._changed.wait_for(lambda: predicate(self)), timeout
                )
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"webhook condition not met within {timeout} s; received "
                    f"{len(self.posts)} POSTs: {[p.payload for p in self.posts][-5:]}"
                ) from None
