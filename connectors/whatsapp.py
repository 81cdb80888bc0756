"""WhatsApp Cloud API channel for Rasa 3.6: a thin adapter over :mod:`salon.whatsapp`.

Enable it in ``credentials.yml``::

    connectors.whatsapp.WhatsAppInput:
      verify_token: ${WA_VERIFY_TOKEN}
      app_secret: ${WA_APP_SECRET}
      access_token: ${WA_ACCESS_TOKEN}
      phone_number_id: ${WA_PHONE_NUMBER_ID}
      waba_id: ${WA_WABA_ID}
      api_base_url: ${WA_API_BASE_URL}     # https://graph.facebook.com, 360dialog, the emulator
      api_version: ${WA_API_VERSION}       # v21.0
      auth_mode: ${WA_AUTH_MODE}           # bearer (Meta, emulator) or d360 (360dialog)
      # assistant_thread: true             # predictions in their own event loop thread
      # io_process: true                   # the channel's I/O in a companion process
      # concurrent_turns: 4                # turns of different clients at once (1-256)
      # webhook_port: 5006                 # also take the webhook in the companion process

The webhook is ``/webhooks/whatsapp/webhook``: GET for Meta's verification handshake,
POST for signed updates; it is never rate limited (the advisor API and the health route
on the same blueprint are, per client IP: :mod:`connectors.advisor`). Everything that matters (signature, dedup, window, send-time
guard, statuses) lives in ``salon.whatsapp``; this module only translates between it and
Rasa's ``UserMessage`` / ``OutputChannel``.

Two things keep the acknowledgements quick and the assistant's throughput whole while
Rasa is busy:

- ``io_process`` (on by default): the channel's pipeline (signature, dedup, window record,
  statuses, send-time guard, Graph API) runs in a companion process
  (:mod:`salon.whatsapp.io_process`); this server forwards each webhook's raw body to it
  and runs the turns it asks for. Off, the same pipeline runs in this process.
- ``assistant_thread`` (on by default): Rasa predicts synchronously inside its
  coroutines, which holds an event loop for tens of milliseconds per turn, so each turn
  runs in a second event loop on its own thread and the server's loop stays free for
  webhooks; responses come back to the server's loop. It is switched off automatically
  with an event broker bound to the server's loop (RabbitMQ/pika).
- ``webhook_port`` (off by default): the companion process also answers the webhook path
  on this port (:mod:`salon.whatsapp.webhook_listener`), so Meta's traffic never reaches
  the server's loop; point Meta (or the reverse proxy's route for that path) there. The
  turns then run in the server's loop (``assistant_thread`` defaults to false), as with
  Rasa's own channels.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.advisor import SanicRateLimit, add_advisor_routes
from salon.logmask import install_log_masking, remember
from salon.loop_thread import LoopThread, call_in_loop
from salon.ratelimit import RateLimitConfigError
from salon.sessions import ClientRef
from salon.whatsapp.io_process import IoProcessRuntime
from salon.whatsapp.runtime import ChannelConfig, ChannelConfigError, WhatsAppRuntime
from salon.whatsapp.service import Turn, client_ref_for_recipient
from salon.whatsapp.signature import HEADER

logger = logging.getLogger(__name__)

# Rasa imports this module while it starts the server: from here on, no record of the
# server's logs carries a phone number, an email, a name or a message body.
install_log_masking()

CHANNEL = "whatsapp"
SWITCH_INTERVAL_S = 0.001

ChannelRuntime = IoProcessRuntime | WhatsAppRuntime
"""The channel's I/O: in a companion process (the default) or in the server's own."""
SESSION_START = "/session_start"


class WhatsAppOutput(OutputChannel):
    """Sends the assistant's responses through the send-time guard."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, runtime: ChannelRuntime, client: ClientRef | None = None,
                 conversation_id: str | None = None) -> None:
        self.runtime = runtime
        self.client = client
        self.conversation_id = conversation_id

    def _ref(self, recipient_id: str) -> ClientRef:
        """The client a conversation id names: the turn's client (with every id known of
        her) during her turn, else the id itself (the guard finds her session by it)."""
        if self.client is not None and recipient_id in (
                self.conversation_id, self.client.user_id, self.client.wa_id):
            return self.client
        return client_ref_for_recipient(self.runtime.config.phone_number_id, recipient_id)

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        # Rasa may call this from the assistant's thread: the channel's I/O belongs to the
        # server's loop.
        outcomes = await call_in_loop(self.runtime.loop, self.runtime.send(self._ref(recipient_id), dict(message)))
        for outcome in outcomes:
            logger.debug("whatsapp send to %s: %s", recipient_id, outcome)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": text})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": text, "buttons": buttons})

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": text, "buttons": quick_replies})

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": None, "image": image})

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": None, "attachment": attachment})

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        await self.send_response(recipient_id, {**kwargs, "text": None, "custom": json_message})


class WhatsAppInput(InputChannel):
    """Meta's webhook in, the Graph API out."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WhatsAppInput:
        if not credentials:
            cls.raise_missing_credentials_exception()
        try:
            return cls(ChannelConfig.from_mapping(credentials), rate_limit=SanicRateLimit.from_env())
        except (ChannelConfigError, RateLimitConfigError) as exc:
            raise RasaException(str(exc)) from exc

    def __init__(self, config: ChannelConfig, runtime: ChannelRuntime | None = None,
                 rate_limit: SanicRateLimit | None = None) -> None:
        self.config = config
        self.rate_limit = rate_limit
        self.runtime: ChannelRuntime = runtime or (
            IoProcessRuntime(config) if config.io_process else WhatsAppRuntime(config)
        )
        self.assistant: LoopThread | None = None

    def get_output_channel(self) -> OutputChannel:
        """For reminders and ``trigger_intent?output_channel=whatsapp``."""
        return WhatsAppOutput(self.runtime)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint(f"{CHANNEL}_webhook", __name__)
        runtime = self.runtime

        async def on_turn(turn: Turn) -> None:
            remember(turn.text, turn.metadata.get("profile_name"))
            output = WhatsAppOutput(runtime, turn.client, turn.sender_id)
            messages = []
            if turn.new_window:
                # The client writes after the window closed: a new session for Rasa too
                # (action_session_start carries over and recalls what was left open).
                messages.append(UserMessage(SESSION_START, output, turn.sender_id,
                                            input_channel=CHANNEL, metadata=turn.metadata))
            messages.append(UserMessage(
                turn.text, output, turn.sender_id, input_channel=CHANNEL,
                message_id=turn.item.wamid, metadata=turn.metadata,
            ))
            for message in messages:
                if self.assistant is not None:
                    await self.assistant.run(on_new_message(message))
                else:
                    await on_new_message(message)

        async def in_assistant_loop(coro: Any) -> Any:
            """Work on Rasa's stores where Rasa's turns run."""
            if self.assistant is not None:
                return await self.assistant.run(coro)
            return await coro

        # Everything on this blueprint but Meta's webhook is limited per client IP.
        limit = self.rate_limit or SanicRateLimit.from_env()
        start_advisor_api = add_advisor_routes(bp, runtime, in_assistant_loop, limit)

        @bp.listener("after_server_start")
        async def start(app: Any, loop: Any) -> None:
            if self.config.assistant_thread and _loop_free_broker(app):
                self.assistant = LoopThread("whatsapp-assistant")
                self.assistant.start()
                # A prediction holds the interpreter; the server's loop gets it back within
                # this interval (Python's default is 5 ms) to answer a webhook.
                sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
            await runtime.start(on_turn)
            await start_advisor_api(app)

        @bp.listener("before_server_stop")
        async def stop(app: Any, loop: Any) -> None:
            await runtime.close()
            if self.assistant is not None:
                self.assistant.stop()
                self.assistant = None

        @bp.route("/", methods=["GET"])
        @limit
        async def health(request: Request) -> HTTPResponse:
            ready = runtime.ready
            return response.json({"status": "ok" if ready else "starting"}, status=200 if ready else 503)

        @bp.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            reply = runtime.verify(
                request.args.get("hub.mode"),
                request.args.get("hub.verify_token"),
                request.args.get("hub.challenge"),
            )
            return response.text(reply.body, status=reply.status)

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            reply = await runtime.handle(request.body or b"", request.headers.get(HEADER))
            return response.text(reply.body, status=reply.status)

        return bp


def _loop_free_broker(app: Any) -> bool:
    """False when the tracker store's event broker is bound to the server's loop."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    broker = getattr(getattr(agent, "tracker_store", None), "event_broker", None)
    if broker is not None and type(broker).__name__ == "PikaEventBroker":
        logger.warning("WhatsApp channel: turns stay in the server's loop (the RabbitMQ event "
                       "broker is bound to it); webhook acknowledgements wait for predictions")
        return False
    return True
