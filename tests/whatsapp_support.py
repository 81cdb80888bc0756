"""Helpers for the WhatsApp channel tests: a real Sanic server on loopback running the
channel's blueprint, signed webhook posts, and payload builders."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from connectors.advisor_api import SanicRateLimit
from connectors.whatsapp import ChannelRuntime, WhatsAppInput
from salon.clock import Clock
from salon.config import Settings
from salon.webhook.companion import IoProcessRuntime
from salon.webhook.runtime import ChannelConfig, WhatsAppRuntime
from salon.whatsapp.signature import sign
from salon.whatsapp.versions import DEFAULT_API_VERSION
from salon.window.state import SessionStore

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
PNID = "100000000000001"
WABA = "200000000000001"
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "whatsapp"

_wamids = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(app: Sanic) -> AsyncIterator[str]:
    """Run ``app`` on a loopback port inside this event loop, listeners included."""
    port = free_port()
    # Sanic's touch-up rewrites HttpProtocol methods from their source for each app; in
    # test mode it starts from the originals, so several apps can run in one process.
    Sanic.test_mode = True
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    try:
        await server.after_start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


@dataclass
class Channel:
    url: str
    runtime: ChannelRuntime
    received: list[UserMessage] = field(default_factory=list)
    http: aiohttp.ClientSession | None = None

    @property
    def webhook(self) -> str:
        """Where Meta posts: the companion process's own port with ``webhook_port``, else
        the Rasa server's route."""
        port = self.runtime.config.webhook_port
        return f"http://127.0.0.1:{port}/webhooks/whatsapp/webhook" if port else self.server_webhook

    @property
    def server_webhook(self) -> str:
        return f"{self.url}/webhooks/whatsapp/webhook"

    async def post(self, payload: Any, *, secret: str = APP_SECRET, raw: bytes | None = None,
                   signature: str | None | bool = True) -> tuple[int, str]:
        body = raw if raw is not None else json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if signature is True:
            headers["X-Hub-Signature-256"] = sign(body, secret)
        elif isinstance(signature, str):
            headers["X-Hub-Signature-256"] = signature
        assert self.http is not None
        async with self.http.post(self.webhook, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def settle(self) -> None:
        assert isinstance(self.runtime, WhatsAppRuntime), "in-process runtime only"
        assert self.runtime.service is not None
        assert await self.runtime.service.drain(timeout=20)


@contextmanager
def settings_in_environment(settings: Settings) -> Iterator[None]:
    """Expose ``settings`` as the environment a child process reads them from."""
    values = {"DATABASE_URL": settings.effective_database_url, "SALON_VAR_DIR": str(settings.var_dir),
              "SALON_DATA_DIR": str(settings.data_dir), "REDIS_URL": settings.redis_url or ""}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@asynccontextmanager
async def running_channel(
    settings: Settings,
    *,
    api_base_url: str = "http://127.0.0.1:9",
    clock: Clock | None = None,
    sessions: SessionStore | None = None,
    reply: Callable[[UserMessage], Awaitable[None]] | None = None,
    access_token: str = "test-access-token",
    io_process: bool = False,
    agent: Any = None,
    rate_limit: SanicRateLimit | None = None,
    options: Mapping[str, str] | None = None,
    extra_routes: Callable[[Sanic, WhatsAppInput, Callable[[UserMessage], Awaitable[None]]], None] | None = None,
) -> AsyncIterator[Channel]:
    """The WhatsApp channel on a real Sanic server. ``reply`` plays the assistant's part
    (by default it only records the message); ``agent`` holds the conversation stores the
    advisor API works on (a Rasa agent's ``tracker_store`` and ``lock_store``). With
    ``io_process`` the channel's I/O runs in its companion process, which reads
    ``settings`` (and the clock) from the environment, as under ``rasa run``.
    ``rate_limit`` is the per-IP limit of the blueprint's non-webhook routes (by default
    from the environment, as under ``rasa run``); ``options`` are more keys of the
    channel's credentials."""
    config = ChannelConfig.from_mapping(
        {"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET, "access_token": access_token,
         "phone_number_id": PNID, "waba_id": WABA, "api_base_url": api_base_url,
         "api_version": DEFAULT_API_VERSION, "io_process": io_process, **(options or {})}
    )
    runtime: ChannelRuntime
    if io_process:
        assert clock is None and sessions is None, "the I/O process takes its clock and stores from the environment"
        runtime = IoProcessRuntime(config, settings=settings, restart_delay=0.2)
    else:
        runtime = WhatsAppRuntime(config, settings=settings, clock=clock, sessions=sessions)
    channel_input = WhatsAppInput(config, runtime, rate_limit=rate_limit)
    received: list[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)
        if reply is not None:
            await reply(message)

    app = Sanic(f"whatsapp_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    app.blueprint(channel_input.blueprint(on_new_message), url_prefix="/webhooks/whatsapp")
    if extra_routes is not None:
        # Routes of Rasa's own server the channel works with (e.g. trigger_intent).
        extra_routes(app, channel_input, on_new_message)
    with settings_in_environment(settings) if io_process else nullcontext():
        async with serve(app) as url, aiohttp.ClientSession() as http:
            channel = Channel(url, runtime, received, http)
            yield channel


# --------------------------------------------------------------------------- payloads


def wamid() -> str:
    return f"wamid.TEST{next(_wamids):08d}{uuid.uuid4().hex[:6]}"


def text_message(wa_id: str | None, body: str, ts: int, *, user_id: str | None = None,
                 message_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"id": message_id or wamid(), "timestamp": str(ts), "type": "text",
                               "text": {"body": body}}
    if wa_id:
        message["from"] = wa_id
    return message


def contact(wa_id: str | None, name: str = "Claire Laurent", user_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": {"name": name}}
    if wa_id:
        out["wa_id"] = wa_id
    if user_id:
        out["user_id"] = user_id
    return out


def envelope(*changes: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    """A webhook whose changes are spread over ``entries`` entries."""
    buckets: list[list[dict[str, Any]]] = [[] for _ in range(entries)]
    for index, change in enumerate(changes):
        buckets[index % entries].append(change)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA, "changes": b} for b in buckets if b]}


def messages_change(messages: list[dict[str, Any]], contacts: list[dict[str, Any]] | None = None,
                    statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": "33100000000", "phone_number_id": PNID}}
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {"value": value, "field": "messages"}


def status(wamid_: str, state: str, ts: int, recipient: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": wamid_, "status": state, "timestamp": str(ts), "recipient_id": recipient}
    if errors:
        out["errors"] = errors
    return out


async def gather_posts(channel: Channel, payload: Any, times: int) -> list[tuple[int, str]]:
    return list(await asyncio.gather(*(channel.post(payload) for _ in range(times))))
