"""The WhatsApp channel's I/O in a companion process of the Rasa server.

Rasa's turns are Python work that holds the server's interpreter (its GIL) for tens of
milliseconds each. Everything else the channel does per message is Python work too:
the signature, the dedup claim, the window record, the send-time guard, the Graph API
calls, three status webhooks per reply (sent, delivered, read), the outbound record. In
the same interpreter that work takes turns with Rasa's on one core, and every webhook
acknowledgement waits for the interpreter.

So the channel runs its whole pipeline — :class:`~salon.webhook.runtime.WhatsAppRuntime`,
unchanged — in a child process, and the Rasa server keeps only what must be there: the
HTTP route (Meta calls the Rasa server's webhook URL) and the turns. Per webhook the
server forwards the raw body and signature over a private socket pair
(:mod:`salon.webhook.rpc`) and answers with the child's verdict; the child records
everything that must not be lost before that verdict, as in one process. The child asks
the server to run each turn (per client, in timestamp order) and the turn's responses go
back to the child's send-time guard.

Failure handling: if the child dies, webhooks are answered 503 (Meta retries) while it
is started again; messages it had acknowledged but not finished stay pending in the inbox
and are replayed by the new child. If the server stops, the child finishes its
background work, leaves unanswered messages pending for the next start, and exits.

With the channel's ``webhook_port`` option the child also takes Meta's webhook itself,
on a socket the server binds and hands over (:mod:`salon.webhook.listener`):
then webhooks never wait for the server's interpreter at all.

``python -m salon.webhook.companion --fd N [--listen-fd M]`` is the child's entry
point; it is started by :class:`IoProcessRuntime`, never by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import Clock, clock_from_env
from salon.config import Settings, load_settings
from salon.guard.sender import SendOutcome
from salon.identity import ClientRef
from salon.logmask import install_log_masking
from salon.metrics.registry import io_snapshot
from salon.storage.db import make_async_engine
from salon.webhook.listener import WebhookListener, bind_listener
from salon.webhook.pipeline import (
    MAX_BODY_BYTES,
    Reply,
    Turn,
    TurnHandler,
    TurnInterrupted,
    verify_handshake,
)
from salon.webhook.rpc import PeerClosed, RemoteError, RpcPeer
from salon.webhook.runtime import ChannelConfig, ChannelConfigError, WhatsAppRuntime
from salon.whatsapp.messages import OutgoingMessage
from salon.whatsapp.signature import check_signature, refusal
from salon.window.sql_store import SqlSessionStore
from salon.window.state import SessionStore
from salon.window.stores import session_store_from_settings

logger = logging.getLogger(__name__)

__all__ = ["IoProcessRuntime", "main"]

CHILD_NAME: Final = "whatsapp-io"
ACK_TIMEOUT: Final = 10.0
"""A webhook the child has not judged by then is answered 503 (Meta retries it)."""


class IoProcessRuntime:
    """The server's side: the same calls as :class:`WhatsAppRuntime` (``start``,
    ``handle``, ``verify``, ``send``, ``ready``, ``close``), served by the child.
    """

    def __init__(
        self,
        config: ChannelConfig,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        start_timeout: float = 120.0,
        restart_delay: float = 1.0,
        python: str = sys.executable,
    ) -> None:
        self.config = config
        self.settings = settings or load_settings()
        self.clock = clock or clock_from_env()
        self.sender = RemoteGuard(self)
        """The child's send-time guard, for senders in this process (the advisor API)."""
        self.sessions: SessionStore | None = None
        """This process's own reader of the session store (windows), opened at start."""
        self.engine: AsyncEngine | None = None
        """This process's pool on Salon's tables, opened at start."""
        self.start_timeout = start_timeout
        self.restart_delay = restart_delay
        self.python = python
        self.loop: asyncio.AbstractEventLoop | None = None
        self.child_pid: int | None = None
        self.restarts = 0
        self._peer: RpcPeer | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._on_turn: TurnHandler | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._turns: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.listener: socket.socket | None = None
        """The webhook's listening socket (``webhook_port``), handed to every child."""

    # ------------------------------------------------------------------ lifecycle
    async def start(self, on_turn: TurnHandler) -> None:
        """Start the child and wait until its pipeline is ready (stores open, pending
        messages queued for replay).
        """
        self.loop = asyncio.get_running_loop()
        self._on_turn = on_turn
        if self.config.webhook_port is not None and self.listener is None:
            address = f"{self.config.webhook_host}:{self.config.webhook_port}"
            try:
                self.listener = bind_listener(self.config.webhook_host, self.config.webhook_port)
            except OSError as exc:
                raise ChannelConfigError(f"WhatsApp channel: cannot listen on webhook_port {address}: {exc}") from exc
        self.engine = make_async_engine(self.settings.effective_database_url)
        self.sessions = (session_store_from_settings(self.settings, clock=self.clock)
                         if self.settings.redis_url
                         else SqlSessionStore(engine=self.engine, clock=self.clock))
        await self._spawn()
        await self.sessions.initialize()  # the child has created the tables by now
        self._supervisor = asyncio.ensure_future(self._supervise())

    async def close(self) -> None:
        """Let the child finish its background work and exit (killed after 20 s)."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        peer, process = self._peer, self._process
        self._peer = None
        if peer is not None:
            with contextlib.suppress(PeerClosed, RemoteError, asyncio.TimeoutError):
                await peer.call("stop", timeout=15)
            await peer.close()
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except asyncio.TimeoutError:
                logger.error("%s did not exit; killing it", CHILD_NAME)
                process.kill()
                await process.wait()
        if self.sessions is not None:
            await self.sessions.close()
        if self.engine is not None:
            await self.engine.dispose()
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    @property
    def ready(self) -> bool:
        return self._peer is not None and not self._peer.closed.is_set()

    # ------------------------------------------------------------------ the channel's calls
    async def handle(self, body: bytes, signature: str | None) -> Reply:
        if len(body) > MAX_BODY_BYTES:
            # Refused here, so an oversized body is never copied to the child.
            logger.warning("webhook refused: body of %d bytes is over %d", len(body), MAX_BODY_BYTES)
            return Reply(400, "body too large")
        # Judged here too, so an unsigned or forged body is never copied to the child.
        refused = refusal(check_signature(body, signature, self.config.app_secret))
        if refused is not None:
            logger.warning("webhook refused: %s", refused[1])
            return Reply(*refused)
        peer = self._peer
        if peer is None or peer.closed.is_set():
            return Reply(503, "starting")
        try:
            status, text = await peer.call("handle", body, signature, timeout=ACK_TIMEOUT)
        except (PeerClosed, RemoteError, asyncio.TimeoutError) as exc:
            logger.error("webhook not judged by %s (%s); answering 503 so Meta retries", CHILD_NAME,
                         exc or type(exc).__name__)
            return Reply(503, "unavailable")
        return Reply(status, text)

    def verify(self, mode: str | None, token: str | None, challenge: str | None) -> Reply:
        return verify_handshake(self.config.verify_token, mode, token, challenge)

    async def send(self, ref: ClientRef, response: Mapping[str, Any], *,
                   client_turn: bool = False) -> list[SendOutcome]:
        outcomes: list[SendOutcome] = await self._call("send", ref, dict(response), client_turn)
        return outcomes

    async def waiting(self, sender_id: str) -> int:
        """How many of the client's messages wait behind her turn (the I/O process's queue)."""
        count: int = await self._call("waiting", sender_id)
        return count

    async def _call(self, method: str, *args: Any) -> Any:
        peer = self._peer
        if peer is None:
            raise PeerClosed("the WhatsApp I/O process is not running")
        return await peer.call(method, *args)

    # ------------------------------------------------------------------ internals
    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        argv = ["--fd", str(theirs.fileno())]
        fds = [theirs.fileno()]
        if self.listener is not None:
            argv += ["--listen-fd", str(self.listener.fileno())]
            fds.append(self.listener.fileno())
        try:
            process = await asyncio.create_subprocess_exec(
                self.python, "-m", "salon.webhook.companion", *argv, pass_fds=tuple(fds),
            )
        finally:
            theirs.close()
        peer = await RpcPeer.connect(ours, {"turn": self._turn}, name=CHILD_NAME)
        try:
            info = await peer.call("start", self.config, timeout=self.start_timeout)
        except BaseException:
            await peer.close()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        self._peer, self._process = peer, process
        self.child_pid = int(info["pid"])
        logger.info("WhatsApp I/O process %d ready (%d pending message(s) replayed)",
                    self.child_pid, info.get("replayed", 0))

    async def _supervise(self) -> None:
        """Start the child again whenever it dies, with a growing pause between tries."""
        delay = self.restart_delay
        while True:
            peer, process = self._peer, self._process
            if peer is not None and process is not None:
                await peer.closed.wait()
                code = await process.wait()
                if self._stopping:
                    return
                logger.critical("%s exited (code %s); webhooks answer 503 until it is back",
                                CHILD_NAME, code)
                self._peer = None
                await peer.close()
                # Turns it asked for may still be running here; they are replayed by the
                # next child unless they finish first.
                if self._turns:
                    await asyncio.wait(set(self._turns), timeout=30)
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except Exception:
                logger.exception("%s could not be started; trying again in %.0f s", CHILD_NAME, delay)
                delay = min(delay * 2, 30.0)
                continue
            self.restarts += 1
            delay = self.restart_delay

    async def _turn(self, turn: Turn) -> None:
        """The child asks for one of the assistant's turns."""
        if self._on_turn is None or self._stopping:
            raise TurnInterrupted("the Rasa server is stopping")
        task = asyncio.ensure_future(self._on_turn(turn))
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)
        await task


class RemoteGuard:
    """The child's :class:`~salon.guard.sender.GuardedSender`, as senders in the Rasa
    server see it: the same ``send`` (decided at the moment it leaves, in the child).
    """

    def __init__(self, runtime: IoProcessRuntime) -> None:
        self._runtime = runtime

    async def send(self, ref: ClientRef, out: OutgoingMessage) -> SendOutcome:
        outcome: SendOutcome = await self._runtime._call("send_one", ref, out)
        return outcome


# --------------------------------------------------------------------------- the child


class _Child:
    """The child's handlers: the in-process runtime, driven over the socket."""

    def __init__(self, listen_fd: int | None = None) -> None:
        self.runtime: WhatsAppRuntime | None = None
        self.peer: RpcPeer | None = None
        self.listen_fd = listen_fd
        self.listener: WebhookListener | None = None

    async def start(self, config: ChannelConfig) -> dict[str, Any]:
        if self.runtime is not None:
            raise RuntimeError("already started")
        self.runtime = WhatsAppRuntime(config)
        await self.runtime.start(self._turn)
        if self.listen_fd is not None:
            # Only once the pipeline is ready: connections queued meanwhile wait.
            self.listener = WebhookListener(self.runtime, socket.socket(fileno=self.listen_fd))
            await self.listener.start()
        return {"pid": os.getpid(), "replayed": self.runtime.replayed}

    async def _turn(self, turn: Turn) -> None:
        assert self.peer is not None
        try:
            await self.peer.call("turn", turn)
        except PeerClosed as exc:
            raise TurnInterrupted(str(exc)) from exc
        except RemoteError as exc:
            if exc.type_name == TurnInterrupted.__name__:
                raise TurnInterrupted(str(exc)) from exc
            raise

    async def handle(self, body: bytes, signature: str | None) -> tuple[int, str]:
        assert self.runtime is not None
        reply = await self.runtime.handle(body, signature)
        return reply.status, reply.body

    async def send(self, ref: ClientRef, response: dict[str, Any],
                   client_turn: bool = False) -> list[SendOutcome]:
        assert self.runtime is not None
        return await self.runtime.send(ref, response, client_turn=client_turn)

    async def send_one(self, ref: ClientRef, out: OutgoingMessage) -> SendOutcome:
        assert self.runtime is not None and self.runtime.sender is not None
        return await self.runtime.sender.send(ref, out)

    async def waiting(self, sender_id: str) -> int:
        assert self.runtime is not None
        return await self.runtime.waiting(sender_id)

    async def stop(self) -> None:
        if self.listener is not None:
            listener, self.listener = self.listener, None
            await listener.close()
        if self.runtime is not None:
            runtime, self.runtime = self.runtime, None
            await runtime.close()

    async def serve(self, fd: int) -> None:
        self.peer = await RpcPeer.connect(
            socket.socket(fileno=fd),
            {"start": self.start, "handle": self.handle, "send": self.send, "send_one": self.send_one,
             "waiting": self.waiting, "metrics": lambda: io_snapshot(self.runtime), "stop": self.stop},
            name="rasa-server",
        )
        await self.peer.closed.wait()
        # The server is gone (stopped or crashed): finish what was acknowledged as far as
        # possible; unanswered messages stay pending for the next start.
        await self.stop()
        await self.peer.close()


def main(argv: list[str] | None = None) -> int:
    """The companion process's entry point (the Rasa server starts it): the channel's I/O,
    answering the server on the inherited socket until the server goes away; returns the
    exit code.
    """
    parser = argparse.ArgumentParser(description="The WhatsApp channel's I/O process (started by the Rasa server).")
    parser.add_argument("--fd", type=int, required=True, help="the inherited socket to the Rasa server")
    parser.add_argument("--listen-fd", type=int, help="an inherited listening socket for Meta's webhook")
    args = parser.parse_args(argv)
    install_log_masking()
    logging.basicConfig(
        level=os.environ.get("SALON_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s %(levelname)-8s {CHILD_NAME}[%(process)d] %(name)s - %(message)s",
    )
    asyncio.run(_Child(args.listen_fd).serve(args.fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
