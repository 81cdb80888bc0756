"""Helpers for the outbound engine's tests: the whole dispatch path wired to the
emulator (the WhatsApp channel receives the emulator's webhooks; the worker sends
through the guard)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from salon.access.tokens import TokenBook
from salon.clock import Clock
from salon.config import Settings
from salon.dev.stack import free_port
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import RunningEmulator, running_emulator
from salon.guard.sender import GuardedSender
from salon.outbound.api import create_app
from salon.outbound.caps import MarketingCaps
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import OutboundQueue
from salon.outbound.worker import OutboundWorker, WorkerConfig
from salon.webhook.runtime import SenderParts, open_sender
from salon.whatsapp.graph import GraphConfig
from tests.whatsapp_support import APP_SECRET, Channel, running_channel

PNID = "100000000000001"


def emulator_graph(emu: RunningEmulator) -> GraphConfig:
    return GraphConfig(access_token=emu.config.access_token, phone_number_id=emu.config.phone_number_id,
                       base_url=emu.base_url, max_attempts=1)


@dataclass
class Stack:
    channel: Channel
    emulator: RunningEmulator
    admin: aiohttp.ClientSession
    parts: SenderParts
    worker: OutboundWorker

    @property
    def queue(self) -> OutboundQueue:
        return self.parts.outbound

    async def say(self, **body: Any) -> dict[str, Any]:
        async with self.admin.post("/_emulator/inbound", json=body) as r:
            assert r.status == 200, await r.text()
            sent = dict(await r.json())
        await self.idle()
        await self.channel.settle()
        return sent

    async def idle(self) -> None:
        async with self.admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
            assert (await r.json())["idle"]

    async def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to} if to else {}
        async with self.admin.get("/_emulator/outbox", params=params) as r:
            return list(await r.json())

    async def delivered(self, to: str | None = None) -> list[dict[str, Any]]:
        """Messages Meta accepted (not the ones it rejected synchronously)."""
        return [m for m in await self.outbox(to) if m["status"] != "rejected"]


@asynccontextmanager
async def outbound_stack(
    settings: Settings,
    clock: Clock,
    *,
    salon_clock: Clock | None = None,
    pacing: PacingConfig | None = None,
    worker_config: WorkerConfig | None = None,
    **emulator: Any,
) -> AsyncIterator[Stack]:
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03, **emulator)
    ours = salon_clock or clock
    async with running_emulator(config, clock=clock) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, clock=ours,
                                   access_token=config.access_token) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200, await r.text()
                parts = await open_sender(settings, emulator_graph(emu), ours, many_clients=True)
                worker = OutboundWorker(
                    parts.outbound, parts.sender, ours,
                    pacing=pacing or PacingConfig(business_rate=1000, business_burst=1000, quiet=None),
                    config=worker_config or WorkerConfig(lease=timedelta(seconds=5)),
                )
                try:
                    yield Stack(ch, emu, admin, parts, worker)
                finally:
                    await parts.close()


async def drain(stack: Stack, *workers: OutboundWorker, rounds: int = 20) -> None:
    """Run the workers (the stack's by default) until nothing is due, and let the
    statuses come back."""
    for _ in range(rounds):
        handled = await asyncio.gather(*(w.run_once() for w in workers or (stack.worker,)))
        if not any(handled):
            break
    await stack.idle()
    await stack.channel.settle()


@asynccontextmanager
async def worker_through(settings: Settings, stack: Stack, graph_url: str, clock: Clock, *,
                         timeout_s: float = 5.0) -> AsyncIterator[OutboundWorker]:
    """A worker of its own (its own pool, as another process would have) whose Graph API
    calls go to ``graph_url`` (a :class:`GraphStandIn` in front of the emulator)."""
    parts = await open_sender(settings, GraphConfig(
        access_token=stack.emulator.config.access_token, phone_number_id=PNID, base_url=graph_url,
        max_attempts=1, timeout_s=timeout_s), clock, many_clients=True)
    try:
        yield OutboundWorker(parts.outbound, parts.sender, clock, pacing=stack.worker.pacing,
                             config=WorkerConfig(lease=timedelta(seconds=5)))
    finally:
        await parts.close()


API_TOKEN = "crm-token-0123456789"
API_AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@asynccontextmanager
async def running_api(queue: OutboundQueue, clock: Clock, *, planner: GuardedSender | None = None,
                      caps: MarketingCaps | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    """The outbound API on a free port, and a session to it (base URL set; send
    :data:`API_AUTH` for the ``outbound`` scope)."""
    tokens = TokenBook.from_config([{"name": "crm", "token": API_TOKEN, "scopes": ["outbound"]}])
    app = create_app(queue, tokens, clock, phone_number_id=PNID, planner=planner, caps=caps)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            yield http
    finally:
        await runner.cleanup()


class GraphStandIn:
    """Meta's Graph API seen through an unreliable network: every request is forwarded to
    the emulator (the stand-in for Meta), except that

    - ``withhold(n)``: the next ``n`` sends reach Meta and are accepted, but their answer
      never comes back (the caller's read times out after Meta accepted);
    - ``refuse_next(code, kind)``: the next send of that ``type`` is answered with Graph
      error ``code`` without reaching Meta (a synchronous error);
    - ``on_accepted``: called once Meta accepted a send, before its answer goes back (a
      test kills the sender there)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self._withhold = 0
        self._refusals: list[tuple[int, str, str]] = []
        self.on_accepted: Callable[[dict[str, Any]], None] | None = None
        self.sends: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stop = asyncio.Event()

    def withhold(self, count: int = 1) -> None:
        self._withhold += count

    def refuse_next(self, code: int, kind: str = "text", title: str = "Re-engagement message") -> None:
        self._refusals.append((code, kind, title))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: dict[str, Any] = json.loads(raw) if raw else {}
        is_send = request.method == "POST" and request.path.endswith("/messages") and "type" in body
        if is_send:
            self.sends.append(body)
            for n, (code, kind, title) in enumerate(self._refusals):
                if body.get("type") == kind:
                    del self._refusals[n]
                    return web.json_response({"error": {
                        "message": f"(#{code}) {title}", "type": "OAuthException", "code": code,
                        "error_data": {"messaging_product": "whatsapp", "details": title},
                        "fbtrace_id": "STANDIN"}}, status=400)
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._http.request(request.method, f"{self.upstream}{request.path_qs}", data=raw,
                                      headers=headers) as upstream:
            answer, status = await upstream.read(), upstream.status
        if is_send and status == 200:
            if self.on_accepted is not None:
                self.on_accepted(body)
            if self._withhold > 0:
                self._withhold -= 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 30)
        return web.Response(body=answer, status=status, content_type="application/json")

    async def __aenter__(self) -> GraphStandIn:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()
