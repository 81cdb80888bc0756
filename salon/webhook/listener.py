"""Meta's webhook served by the channel's companion process itself, on a port of its own.

By default Meta calls the Rasa server's route (``/webhooks/whatsapp/webhook``) and the
server forwards each body to the companion process (:mod:`salon.webhook.companion`).
That costs the Rasa server little CPU, but the server's event loop must still read every
webhook — the client's message and three status updates per reply — while the assistant's
turns hold its interpreter, so acknowledgements wait for it and the turns share it.

With the channel's ``webhook_port`` option the companion process also answers the same
path on that port, from its own interpreter: the signature, the dedup claim, the window
record and the acknowledgement never touch the Rasa server, which only runs the turns
the companion asks for. A reverse proxy (or the load balancer) sends Meta's webhook path
there and everything else to Rasa; the Rasa server's route keeps working for setups that
keep one address.

The Rasa server binds the listening socket once (a taken port stops the server at start,
with the reason) and hands it to every companion process it starts, so a companion that
is restarted picks up the connections that queued meanwhile.

Routes (the same as the Rasa server's for this channel):

- ``GET /webhooks/whatsapp/webhook``: Meta's verification handshake;
- ``POST /webhooks/whatsapp/webhook``: a signed update (bodies over 3 MB: 400);
- ``GET /webhooks/whatsapp/``: health (200 once the pipeline is ready).
"""

from __future__ import annotations

import logging
import socket
from typing import Final, Protocol

from aiohttp import web

from salon.webhook.pipeline import MAX_BODY_BYTES, Reply
from salon.whatsapp.signature import HEADER

logger = logging.getLogger(__name__)

__all__ = ["WEBHOOK_PATH", "WebhookListener", "bind_listener"]

WEBHOOK_PATH: Final = "/webhooks/whatsapp/webhook"
HEALTH_PATH: Final = "/webhooks/whatsapp/"


class WebhookHandler(Protocol):
    """What the listener needs of the channel's runtime."""

    @property
    def ready(self) -> bool: ...

    async def handle(self, body: bytes, signature: str | None) -> Reply: ...

    def verify(self, mode: str | None, token: str | None, challenge: str | None) -> Reply: ...


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket for :class:`WebhookListener` (raises ``OSError`` when the
    address is taken or not ours).
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


class WebhookListener:
    """Serves the webhook routes for ``runtime`` on an already listening socket."""

    def __init__(self, runtime: WebhookHandler, sock: socket.socket) -> None:
        self.runtime = runtime
        self.sock = sock
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        # Bodies over the limit are refused with 400 below, before they are read whole.
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get(WEBHOOK_PATH, self._verify)
        app.router.add_post(WEBHOOK_PATH, self._receive)
        app.router.add_get(HEALTH_PATH, self._health)
        # No access log: Meta's traffic is counted by the pipeline's own records.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()
        host, port = self.sock.getsockname()[:2]
        logger.info("WhatsApp webhook also served by this process on %s:%d%s", host, port, WEBHOOK_PATH)

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            logger.warning("webhook refused: body of %d bytes is over %d", length, MAX_BODY_BYTES)
            return web.Response(status=400, text="body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            logger.warning("webhook refused: body over %d bytes", MAX_BODY_BYTES)
            return web.Response(status=400, text="body too large")
        reply = await self.runtime.handle(body, request.headers.get(HEADER))
        return web.Response(status=reply.status, text=reply.body)

    async def _verify(self, request: web.Request) -> web.Response:
        q = request.query
        reply = self.runtime.verify(q.get("hub.mode"), q.get("hub.verify_token"), q.get("hub.challenge"))
        return web.Response(status=reply.status, text=reply.body)

    async def _health(self, request: web.Request) -> web.Response:
        ready = self.runtime.ready
        return web.json_response({"status": "ok" if ready else "starting"}, status=200 if ready else 503)
