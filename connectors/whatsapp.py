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

Coexistence: when the number also runs the WhatsApp Business app, what an advisor types
on the phone arrives as ``smb_message_echoes``; each one is written into the client's
conversation as the advisor's message (``{"advisor": "phone", "echo": true, ...}``) and
pauses the assistant for ``SALON_ECHO_PAUSE_MINUTES`` (30 by default, 0: never) unless a
handoff already holds it (rules in :mod:`salon.webhook.echoes`).

Every message is billed (since 2026-10-01, replies inside the window too): the responses
of a client's turn are held until the turn is over and leave merged where they read as
one message (:mod:`salon.whatsapp.merging`; ``SALON_MERGE_REPLIES=off`` sends each at
once, as Rasa produces it).

The webhook is ``/webhooks/whatsapp/webhook``: GET for Meta's verification handshake,
POST for signed updates; it is never rate limited (the advisor API and the health route
on the same blueprint are, per client IP: :mod:`connectors.advisor_api`). Everything that matters (signature, dedup, window, send-time
guard, statuses) lives in ``salon.whatsapp``; this module only translates between it and
Rasa's ``UserMessage`` / ``OutputChannel``.

Two things keep the acknowledgements quick and the assistant's throughput whole while
Rasa is busy:

- ``io_process`` (on by default): the channel's pipeline (signature, dedup, window record,
  statuses, send-time guard, Graph API) runs in a companion process
  (:mod:`salon.webhook.companion`); this server forwards each webhook's raw body to it
  and runs the turns it asks for. Off, the same pipeline runs in this process.
- ``assistant_thread`` (on by default): Rasa predicts synchronously inside its
  coroutines, which holds an event loop for tens of milliseconds per turn, so each turn
  runs in a second event loop on its own thread and the server's loop stays free for
  webhooks; responses come back to the server's loop. It is switched off automatically
  with an event broker bound to the server's loop (RabbitMQ/pika).
- ``webhook_port`` (off by default): the companion process also answers the webhook path
  on this port (:mod:`salon.webhook.listener`), so Meta's traffic never reaches
  the server's loop; point Meta (or the reverse proxy's route for that path) there. The
  turns then run in the server's loop (``assistant_thread`` defaults to false), as with
  Rasa's own channels.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    Restarted,
    SessionStarted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.advisor_api import SanicRateLimit, add_advisor_routes
from salon.access.ratelimit import RateLimitConfigError
from salon.access.signed_identity import SEAL_KEY, identity_key, seal
from salon.advisors.paused import WAITING_NOTE_KEY, should_acknowledge, waiting_note
from salon.identity import ClientRef
from salon.logmask import install_log_masking, remember
from salon.loops import LoopThread, call_in_loop
from salon.webhook.companion import IoProcessRuntime
from salon.webhook.echoes import (
    EchoConfigError,
    EchoPause,
    PauseWatch,
    TrackerEvent,
    echo_event_metadata,
    is_echo_event,
    pause_from_env,
    pause_metadata,
    read_pause,
    resume_metadata,
)
from salon.webhook.pipeline import MAX_BODY_BYTES, Turn, client_ref_for_recipient
from salon.webhook.runtime import ChannelConfig, ChannelConfigError, WhatsAppRuntime
from salon.whatsapp.merging import MergeConfig, MergeConfigError, merge_responses, superseded
from salon.whatsapp.signature import HEADER

logger = logging.getLogger(__name__)

# Rasa imports this module while it starts the server: from here on, no record of the
# server's logs carries a phone number, an email, a name or a message body.
install_log_masking()

CHANNEL = "whatsapp"
SWITCH_INTERVAL_S = 0.001
#: A turn the assistant starts itself (``trigger_intent``) without saying what for: a
#: follow-up from the maison, which needs the client's utility opt-in.
BOT_INITIATED_PURPOSE: Final = "advisor_followup"
_TRIGGER: ContextVar[tuple[str | None, str | None] | None] = ContextVar("whatsapp_trigger", default=None)
"""(purpose, origin) of the ``trigger_intent`` request being handled, from its query."""

CARRY_S: Final = 3.0
"""How long a turn's answer may wait for the client's next turn, already queued when it
ended, to leave with it: the next turn normally comes at once; this bounds the wait when
it does not reach the assistant."""


@dataclass(slots=True)
class _Carried:
    """A turn's answer waiting for the client's next turn, and the timer that sends it
    alone.
    """

    output: WhatsAppOutput
    timer: asyncio.TimerHandle


ChannelRuntime = IoProcessRuntime | WhatsAppRuntime
"""The channel's I/O: in a companion process (the default) or in the server's own."""
SESSION_START = "/session_start"


class WhatsAppOutput(OutputChannel):
    """Sends the assistant's responses through the send-time guard.

    During a client's own turn (between :meth:`hold` and :meth:`flush`) the responses
    wait, and leave together when the turn is over, merged where they read as one
    message (:mod:`salon.whatsapp.merging`): every message is billed. Otherwise (a turn
    the assistant starts itself, merging off, or once the turn is over) each response
    leaves at once.
    """

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, runtime: ChannelRuntime, client: ClientRef | None = None,
                 conversation_id: str | None = None, *, purpose: str | None = None,
                 origin: str | None = None, merging: MergeConfig | None = None,
                 reply_to: str | None = None) -> None:
        self.runtime = runtime
        self.reply_to = reply_to
        """The wamid of the client's message this turn answers (kept with each reply)."""
        self.client = client
        """The client whose turn this is (None: a turn the assistant started itself)."""
        self.conversation_id = conversation_id
        self.purpose = purpose
        """For a turn the assistant started: what its messages are for (the send-time
        guard checks the client's consent for it); a client's own turn is a reply."""
        self.origin = origin
        self.merging = merging or MergeConfig(enabled=False)
        self._held: list[tuple[str, dict[str, Any]]] | None = None
        """The turn's responses waiting for :meth:`flush` (None: each is sent at once)."""
        self._holding = threading.Lock()
        """Rasa calls :meth:`send_response` from the assistant's loop, on its own thread;
        the turn is flushed from the server's."""

    def _ref(self, recipient_id: str) -> ClientRef:
        """The client a conversation id names: the turn's client (with every id known of
        her) during her turn, else the id itself (the guard finds her session by it).
        """
        if self.client is not None and recipient_id in (
                self.conversation_id, self.client.user_id, self.client.wa_id):
            return self.client
        return client_ref_for_recipient(self.runtime.config.phone_number_id, recipient_id)

    def hold(self) -> None:
        """From now until :meth:`flush`, keep the responses of the client's turn to send
        them together (nothing is held for a turn the assistant starts, or with merging
        off).
        """
        if self.client is None or not self.merging.enabled:
            return
        with self._holding:
            if self._held is None:
                self._held = []

    def take_over(self, earlier: WhatsAppOutput) -> None:
        """Put what ``earlier`` (the client's previous turn, answered with this one) still
        holds before this turn's responses.
        """
        with earlier._holding:
            waiting, earlier._held = earlier._held or [], None
        # She wrote again before they left: the buttons of those responses offer choices
        # she has answered by writing.
        waiting = [(recipient, dict(superseded(response))) for recipient, response in waiting]
        with self._holding:
            if self._held is None:
                self._held = []
            self._held[:0] = waiting

    async def flush(self) -> int:
        """Send what the turn held, merged, in order, and send at once from then on.

        A message whose send fails is logged with its reason and the rest are still
        sent: the turn is over, and running it again would repeat what already left.
        Returns how many messages went to the send-time guard.
        """
        with self._holding:
            held, self._held = self._held, None
        if not held:
            return 0
        runs: list[tuple[str, list[dict[str, Any]]]] = []
        for recipient_id, said in held:
            if runs and runs[-1][0] == recipient_id:
                runs[-1][1].append(said)
            else:
                runs.append((recipient_id, [said]))
        sent = 0
        for recipient_id, responses in runs:
            messages = merge_responses(responses, self.merging)
            if len(messages) < len(responses):
                logger.debug("whatsapp turn of %s: %d responses in %d messages", recipient_id,
                             len(responses), len(messages))
            for message in messages:
                try:
                    await self._send(recipient_id, message)
                except Exception as exc:
                    logger.error("whatsapp response %s to %s not sent (%s: %s); sending the rest",
                                 message.get("utter_action"), recipient_id, type(exc).__name__, exc,
                                 exc_info=True)
                    continue
                sent += 1
        return sent

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        response = dict(message)
        if self.client is None:
            # The assistant writes first: never a mere reply, whatever the response says.
            metadata = dict(response.get("metadata") or {})
            if metadata.get("purpose") in (None, "", "service_reply"):
                metadata["purpose"] = self.purpose or BOT_INITIATED_PURPOSE
            if self.origin and not metadata.get("origin"):
                metadata["origin"] = self.origin
            response["metadata"] = metadata
        elif self.reply_to and not (response.get("metadata") or {}).get("reply_to"):
            response["metadata"] = {**(response.get("metadata") or {}), "reply_to": self.reply_to}
        with self._holding:
            if self._held is not None:
                self._held.append((recipient_id, response))
                return
        await self._send(recipient_id, response)

    async def _send(self, recipient_id: str, response: Mapping[str, Any]) -> None:
        # Rasa may call this from the assistant's thread: the channel's I/O belongs to the
        # server's loop.
        outcomes = await call_in_loop(self.runtime.loop, self.runtime.send(
            self._ref(recipient_id), response, client_turn=self.client is not None))
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
        except (ChannelConfigError, RateLimitConfigError, EchoConfigError, MergeConfigError) as exc:
            raise RasaException(str(exc)) from exc

    def __init__(self, config: ChannelConfig, runtime: ChannelRuntime | None = None,
                 rate_limit: SanicRateLimit | None = None) -> None:
        self.config = config
        self.rate_limit = rate_limit
        self.runtime: ChannelRuntime = runtime or (
            IoProcessRuntime(config) if config.io_process else WhatsAppRuntime(config)
        )
        self.assistant: LoopThread | None = None
        self._app: Any = None
        """The Sanic app once the server has started (its ``ctx.agent`` is Rasa's)."""
        self.echo_pause = pause_from_env()
        """How long an advisor's message from the phone pauses the assistant (0: never)."""
        self._pauses = PauseWatch(self.echo_pause)
        self.merging = MergeConfig.from_env()
        """Whether a client's turn sends its responses merged (``SALON_MERGE_REPLIES``)."""
        self._carried: dict[str, _Carried] = {}
        """Answers waiting for the client's next turn (she wrote again meanwhile), by sender."""
        self._flushes: set[asyncio.Task[int]] = set()

    def get_output_channel(self) -> OutputChannel:
        """For ``trigger_intent?output_channel=whatsapp[&purpose=…&origin=…]``: a turn the
        assistant starts, whose messages carry that purpose (or a follow-up's).
        """
        purpose, origin = _TRIGGER.get() or (None, None)
        return WhatsAppOutput(self.runtime, purpose=purpose, origin=origin)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The channel's routes: Meta's webhook, the health route and the advisor API,
        with the listeners that start and stop the channel with the server.
        """
        bp = Blueprint(f"{CHANNEL}_webhook", __name__)
        key = identity_key()
        if key is None:
            logger.warning("WhatsApp channel: SALON_IDENTITY_KEY is not set; the action server "
                           "will not know who writes (no client book, orders or appointments)")
        on_turn = self._turn_handler(on_new_message, key)
        # Everything on this blueprint but Meta's webhook is limited per client IP.
        limit = self.rate_limit or SanicRateLimit.from_env()
        start_advisor_api = add_advisor_routes(bp, self.runtime, self._in_assistant_loop, limit)
        self._add_listeners(bp, on_turn, start_advisor_api)
        self._add_webhook_routes(bp, limit)
        return bp

    def _turn_handler(self, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                      key: bytes | None) -> Callable[[Turn], Awaitable[None]]:
        """What the runtime calls for each client message: Rasa's ``UserMessage`` (after
        a ``/session_start`` when the message reopened her window, or when her
        conversation began with an advisor's message from the phone), in the assistant's
        loop when it has one. An advisor's message from the phone (an echo) is written
        into her conversation instead; the assistant is not asked anything.
        """
        runtime = self.runtime

        async def handle(message: UserMessage) -> None:
            # A coroutine for the assistant's loop (Rasa's handler is only said to
            # return an awaitable).
            await on_new_message(message)

        async def on_turn(turn: Turn) -> None:
            if turn.is_echo:
                # The advisor wrote from the phone: into her conversation, nothing to answer.
                await self._in_assistant_loop(self._record_echo(turn))
                return
            remember(turn.text, turn.metadata.get("profile_name"))
            output = WhatsAppOutput(runtime, turn.client, turn.sender_id, merging=self.merging,
                                    reply_to=turn.item.wamid)
            if key is not None:
                # Who writes, sealed for the action server (salon.access.signed_identity).
                turn.metadata[SEAL_KEY] = seal(key, turn.sender_id, turn.client.wa_id, turn.client.user_id)
            start_session = turn.new_window
            if self._pauses.must_look(turn.sender_id, turn.item.sent_at, runtime.clock.now()):
                # An advisor's pause from the phone may be over, or her conversation began
                # with one (no session started for her yet).
                start_session = await self._in_assistant_loop(self._before_turn(turn)) or start_session
            messages = []
            if start_session:
                # The client writes after the window closed (or for the first time after
                # her advisor wrote first): a new session for Rasa too
                # (action_session_start carries over and recalls what was left open).
                messages.append(UserMessage(SESSION_START, output, turn.sender_id,
                                            input_channel=CHANNEL, metadata=turn.metadata))
            messages.append(UserMessage(
                turn.text, output, turn.sender_id, input_channel=CHANNEL,
                message_id=turn.item.wamid, metadata=turn.metadata,
            ))
            # Her turn's responses leave together once it is over, merged where they read
            # as one message; whatever Rasa said before a failure still leaves. When she
            # wrote again before the assistant answered, the answer waits for her next
            # turn's and both leave as one (never longer than CARRY_S).
            output.hold()
            earlier = self._carried.pop(turn.sender_id, None)
            if earlier is not None:
                earlier.timer.cancel()
                output.take_over(earlier.output)
            carry = False
            try:
                for message in messages:
                    if self.assistant is not None:
                        await self.assistant.run(handle(message))
                    else:
                        await on_new_message(message)
                note = await self._in_assistant_loop(self._waiting_note(turn.sender_id))
                if note is not None:
                    await output.send_text_message(turn.sender_id, note)
                carry = self.merging.enabled and await self._more_coming(turn.sender_id)
            finally:
                if carry:
                    self._carry(turn.sender_id, output)
                else:
                    await output.flush()

        return on_turn

    async def flush_carried(self) -> int:
        """Send every answer still waiting for a client's next turn (the server stops)."""
        carried, self._carried = self._carried, {}
        sent = 0
        for held in carried.values():
            held.timer.cancel()
            sent += await held.output.flush()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        return sent

    async def _more_coming(self, sender_id: str) -> bool:
        """Whether the client's next message already waits behind this turn."""
        try:
            return await self.runtime.waiting(sender_id) > 0
        except Exception as exc:  # the I/O process restarting: answer now
            logger.debug("whatsapp: could not ask what waits for %s (%s)", sender_id, type(exc).__name__)
            return False

    def _carry(self, sender_id: str, output: WhatsAppOutput) -> None:
        """Keep a turn's answer for the client's next turn; sent on its own after CARRY_S
        if that turn never comes to the assistant (a tap on a nudge, a STOP).
        """
        loop = asyncio.get_running_loop()

        def expire() -> None:
            if self._carried.get(sender_id) is held:
                del self._carried[sender_id]
                task = loop.create_task(output.flush())
                self._flushes.add(task)
                task.add_done_callback(self._flushes.discard)

        held = _Carried(output, loop.call_later(CARRY_S, expire))
        self._carried[sender_id] = held

    def _agent(self) -> Any:
        """Rasa's agent once the server runs (its tracker store and lock store), or None."""
        agent = getattr(getattr(self._app, "ctx", None), "agent", None)
        if agent is None or getattr(agent, "tracker_store", None) is None:
            return None
        return agent

    async def _waiting_note(self, sender_id: str) -> str | None:
        """The once-per-handover line for a client who writes while her advisor has the
        conversation (salon/advisors/paused.py), recorded in her conversation before it is
        sent; None when the assistant is not paused, the line is not due, or the pause is
        the one her advisor's messages from the phone started (the advisor is there).
        """
        agent = self._agent()
        if agent is None:
            return None
        async with agent.lock_store.lock(sender_id):
            seen_at = self.runtime.clock.now()
            tracker = await agent.tracker_store.retrieve(sender_id)
            view = _pause_view(tracker) if tracker is not None else None
            self._pauses.saw(sender_id, view, seen_at)
            if tracker is None or view is None or not tracker.is_paused() or view.kind == "echo":
                return None
            since: list[Any] = []
            for event in reversed(tracker.events):
                if isinstance(event, ConversationPaused):
                    break
                since.append(event)
            since.reverse()
            intents = [event.intent.get("name") for event in since if isinstance(event, UserUttered)]
            told = any(isinstance(event, BotUttered) and (event.metadata or {}).get(WAITING_NOTE_KEY)
                       for event in since)
            if not should_acknowledge(intents, told):
                return None
            note = waiting_note(tracker.get_slot("language"), tracker.get_slot("advisor_name"),
                                tracker.get_slot("advisor_gender"))
            tracker.update(BotUttered(note, metadata={WAITING_NOTE_KEY: True}))
            await agent.tracker_store.save(tracker)
        return note

    async def _record_echo(self, turn: Turn) -> None:
        """Write an advisor's message from the phone into the client's conversation (once,
        whatever the deliveries) and pause the assistant for :attr:`echo_pause` from now,
        unless it is paused already (a handoff keeps its own pause) or the message is
        older than that. Raises when Rasa's stores are not ready: the turn is tried again
        later.
        """
        agent = self._agent()
        if agent is None:
            raise RuntimeError("the assistant's conversation store is not ready")
        sender_id, wamid = turn.sender_id, turn.item.wamid
        remember(turn.text)
        async with agent.lock_store.lock(sender_id):
            now = self.runtime.clock.now()
            tracker = await agent.tracker_store.get_or_create_tracker(sender_id)
            view = _pause_view(tracker)
            if wamid in view.wamids:
                self._pauses.saw(sender_id, view, now)
                logger.info("advisor's message %s from the phone already in %s's conversation", wamid, sender_id)
                return
            tracker.update(BotUttered(turn.text, metadata=echo_event_metadata(turn.metadata, now)))
            paused = (self.echo_pause > timedelta(0) and not tracker.is_paused()
                      and turn.item.sent_at + self.echo_pause > now)
            if paused:
                tracker.update(ConversationPaused(metadata=pause_metadata(wamid)))
            await agent.tracker_store.save(tracker)
            view = _pause_view(tracker)
            self._pauses.saw(sender_id, view, now)
        logger.info("advisor's message %s from the phone recorded for %s (%s)", wamid, sender_id,
                    "assistant paused" if paused else f"assistant already paused ({view.kind})"
                    if view.kind != "none" else "assistant not paused")

    async def _before_turn(self, turn: Turn) -> bool:
        """Before a client's message: lift the pause her advisor's messages from the phone
        started when it has run its time by the moment she wrote. Returns whether her
        conversation, begun by such a message, still needs its first session started.
        """
        agent = self._agent()
        if agent is None:
            return False
        sender_id = turn.sender_id
        async with agent.lock_store.lock(sender_id):
            # Taken before the read, under the lock: nothing recorded since is missed.
            seen_at = self.runtime.clock.now()
            tracker = await agent.tracker_store.retrieve(sender_id)
            if tracker is None:
                self._pauses.saw(sender_id, None, seen_at)
                return False
            view = _pause_view(tracker)
            if view.lifted_for(turn.item.sent_at, self.echo_pause):
                tracker.update(ConversationResumed(metadata=resume_metadata()))
                if tracker.latest_action_name != ACTION_LISTEN_NAME:
                    tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
                await agent.tracker_store.save(tracker)
                logger.info("assistant back for %s: the pause of the advisor's messages from the phone "
                            "ended", sender_id)
                view = _pause_view(tracker)
            self._pauses.saw(sender_id, view, seen_at)
        return view.never_started and view.kind == "none"

    async def _in_assistant_loop(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Work on Rasa's stores where Rasa's turns run."""
        if self.assistant is not None:
            return await self.assistant.run(coro)
        return await coro

    def _add_listeners(self, bp: Blueprint, on_turn: Callable[[Turn], Awaitable[None]],
                       start_advisor_api: Callable[[Any], Awaitable[None]]) -> None:
        """Start the channel (and the assistant's loop) with the server, stop it with it."""
        runtime = self.runtime

        @bp.listener("after_server_start")
        async def start(app: Any, loop: Any) -> None:
            self._app = app
            if self.config.assistant_thread and _loop_free_broker(app):
                self.assistant = LoopThread("whatsapp-assistant")
                self.assistant.start()
                # A prediction holds the interpreter; the server's loop gets it back within
                # this interval (Python's default is 5 ms) to answer a webhook.
                sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
            await runtime.start(on_turn)
            await start_advisor_api(app)

        @bp.listener("before_server_start")
        async def watch_triggers(app: Any, loop: Any) -> None:
            # Rasa's trigger_intent route is the server's own: what it was asked for (the
            # purpose and origin of a bot-initiated turn) reaches get_output_channel through
            # the request's context.
            app.register_middleware(_note_trigger, "request")

        @bp.listener("before_server_stop")
        async def stop(app: Any, loop: Any) -> None:
            await self.flush_carried()
            await runtime.close()
            if self.assistant is not None:
                self.assistant.stop()
                self.assistant = None

    def _add_webhook_routes(self, bp: Blueprint, limit: SanicRateLimit) -> None:
        """The health route (under ``limit``) and Meta's webhook: the GET handshake and
        the signed POSTs, never limited.
        """
        runtime = self.runtime

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

        @bp.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            # Read as it comes, and no further than Meta's 3 MB: Sanic would otherwise
            # buffer up to 100 MB before anything looks at it.
            body = await _read_at_most(request, MAX_BODY_BYTES)
            if body is None:
                logger.warning("webhook refused: body over %d bytes", MAX_BODY_BYTES)
                return response.text("body too large", status=400)
            reply = await runtime.handle(body, request.headers.get(HEADER))
            return response.text(reply.body, status=reply.status)


def _pause_view(tracker: DialogueStateTracker) -> EchoPause:
    """What the echo pause rules read of Rasa's tracker."""
    events: list[TrackerEvent] = []
    for event in tracker.events:
        if isinstance(event, ConversationPaused):
            events.append(TrackerEvent("paused", event.metadata))
        elif isinstance(event, ConversationResumed):
            events.append(TrackerEvent("resumed", event.metadata))
        elif isinstance(event, (SessionStarted, Restarted)):
            events.append(TrackerEvent("session"))
        elif isinstance(event, BotUttered) and is_echo_event(event.metadata):
            events.append(TrackerEvent("echo", event.metadata))
    return read_pause(events, paused=tracker.is_paused())


async def _note_trigger(request: Request) -> None:
    if request.method == "POST" and request.path.endswith("/trigger_intent"):
        _TRIGGER.set((request.args.get("purpose") or None, request.args.get("origin") or None))


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    """The streamed body, or None as soon as it is longer than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.stream.read() if request.stream is not None else None
        if chunk is None:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _loop_free_broker(app: Any) -> bool:
    """False when the tracker store's event broker is bound to the server's loop."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    broker = getattr(getattr(agent, "tracker_store", None), "event_broker", None)
    if broker is not None and type(broker).__name__ == "PikaEventBroker":
        logger.warning("WhatsApp channel: turns stay in the server's loop (the RabbitMQ event "
                       "broker is bound to it); webhook acknowledgements wait for predictions")
        return False
    return True
