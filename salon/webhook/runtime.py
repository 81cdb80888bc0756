"""Everything the WhatsApp channel needs, built from its settings and started inside the
server's event loop: Graph client, session store, records, consent book, template
registry, send-time guard and webhook pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import Clock, clock_from_env
from salon.config import Settings, is_loopback_url, load_settings
from salon.consent.book import ConsentBook
from salon.guard.sender import GuardedSender, SendOutcome
from salon.guard.sent import SentLog
from salon.identity import ClientRef
from salon.outbound.queue import OutboundQueue, follow_up_recorder
from salon.templates.registry import TemplateRegistry
from salon.webhook.inbox import Inbox
from salon.webhook.pipeline import (
    DEFAULT_CONCURRENT_TURNS,
    Reply,
    TurnHandler,
    WebhookService,
    verify_handshake,
)
from salon.whatsapp.graph import DEFAULT_BASE_URL, DEFAULT_VERSION, GraphClient, GraphConfig
from salon.whatsapp.messages import RenderError, render_response
from salon.whatsapp.versions import version_warning
from salon.window.sql_store import SqlSessionStore
from salon.window.state import SessionStore
from salon.window.stores import session_store_from_settings

logger = logging.getLogger(__name__)

__all__ = ["ChannelConfig", "ChannelConfigError", "SenderParts", "WhatsAppRuntime", "open_sender"]

REQUIRED = ("verify_token", "app_secret", "access_token", "phone_number_id")
DEFAULT_WEBHOOK_HOST = "127.0.0.1"
"""Where ``webhook_port`` listens unless ``webhook_host`` says otherwise: loopback (Meta
reaches it through the reverse proxy, or ``webhook_host: 0.0.0.0`` says so)."""
PUBLIC_DEFAULTS: Final = frozenset({"emulator-app-secret", "emulator-verify-token",
                                    "emulator-access-token"})
"""The emulator's secrets, published in this repository: never accepted for Meta."""


class ChannelConfigError(ValueError):
    """The channel cannot start: a secret or id is missing or malformed."""


@dataclass(frozen=True)
class ChannelConfig:
    """The WhatsApp channel's settings, as ``credentials.yml`` gives them (see
    :meth:`from_mapping`).
    """

    verify_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    phone_number_id: str
    waba_id: str = ""
    api_base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_VERSION
    auth_mode: str = "bearer"
    assistant_thread: bool = True
    """Run the assistant's turns in their own event loop thread (see connectors/whatsapp.py)."""
    io_process: bool = True
    """Run the channel's I/O (webhook pipeline, stores, send-time guard, Graph API) in a
    companion process (:mod:`salon.webhook.companion`), off the assistant's interpreter."""
    concurrent_turns: int = DEFAULT_CONCURRENT_TURNS
    """Turns of different clients the assistant runs at once (a client's own are always
    one after the other)."""
    webhook_port: int | None = None
    """Also serve Meta's webhook from the companion process on this port
    (:mod:`salon.webhook.listener`); needs ``io_process``."""
    webhook_host: str = DEFAULT_WEBHOOK_HOST
    """The address that port is bound to."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ChannelConfig:
        values = dict(values or {})
        missing = [k for k in REQUIRED if not str(values.get(k) or "").strip()]
        if missing:
            raise ChannelConfigError(
                "WhatsApp channel: missing " + ", ".join(missing) + " (set them in credentials.yml, "
                "usually from WA_VERIFY_TOKEN, WA_APP_SECRET, WA_ACCESS_TOKEN, WA_PHONE_NUMBER_ID). "
                "Webhooks are never accepted without signature verification."
            )
        auth_mode = str(values.get("auth_mode") or "bearer").strip()
        if auth_mode not in ("bearer", "d360"):
            raise ChannelConfigError(f"WhatsApp channel: auth_mode must be bearer or d360, not {auth_mode!r}")
        base = str(values.get("api_base_url") or DEFAULT_BASE_URL).strip()
        if not base.startswith(("http://", "https://")):
            raise ChannelConfigError(f"WhatsApp channel: api_base_url {base!r} is not an http(s) URL")
        published = sorted(k for k in REQUIRED if str(values.get(k) or "").strip() in PUBLIC_DEFAULTS)
        if published and not is_loopback_url(base):
            raise ChannelConfigError(
                "WhatsApp channel: " + ", ".join(published) + " still hold the emulator's published "
                f"value(s), which only the local emulator may use (api_base_url is {base}); set your own")
        known = set(REQUIRED) | {"waba_id", "api_base_url", "api_version", "auth_mode",
                                 "assistant_thread", "io_process", "concurrent_turns",
                                 "webhook_port", "webhook_host"}
        io_process = _flag(values, "io_process")
        webhook_port = _port(values, "webhook_port")
        if webhook_port is not None and not io_process:
            raise ChannelConfigError("WhatsApp channel: webhook_port is served by the companion process; "
                                     "it needs io_process: true")
        return cls(
            verify_token=str(values["verify_token"]).strip(),
            app_secret=str(values["app_secret"]).strip(),
            access_token=str(values["access_token"]).strip(),
            phone_number_id=str(values["phone_number_id"]).strip(),
            waba_id=str(values.get("waba_id") or "").strip(),
            api_base_url=base,
            api_version=str(values.get("api_version") or DEFAULT_VERSION).strip(),
            auth_mode=auth_mode,
            # With the webhook off the server's loop, turns need no thread of their own.
            assistant_thread=_flag(values, "assistant_thread", default=webhook_port is None),
            io_process=io_process,
            concurrent_turns=_count(values, "concurrent_turns", DEFAULT_CONCURRENT_TURNS),
            webhook_port=webhook_port,
            webhook_host=str(values.get("webhook_host") or DEFAULT_WEBHOOK_HOST).strip(),
            extra={k: v for k, v in values.items() if k not in known},
        )

    @property
    def graph(self) -> GraphConfig:
        return GraphConfig(
            access_token=self.access_token, phone_number_id=self.phone_number_id,
            base_url=self.api_base_url, api_version=self.api_version, auth_mode=self.auth_mode,
        )


def _flag(values: Mapping[str, Any], key: str, default: bool = True) -> bool:
    raw = str(values.get(key, default)).strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ChannelConfigError(f"WhatsApp channel: {key} must be true or false, not {raw!r}")
    return raw in ("true", "1", "yes")


def _count(values: Mapping[str, Any], key: str, default: int) -> int:
    value = values.get(key)
    raw = str(default if value is None or value == "" else value).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 256:
        raise ChannelConfigError(f"WhatsApp channel: {key} must be a whole number from 1 to 256, not {raw!r}")
    return int(raw)


def _port(values: Mapping[str, Any], key: str) -> int | None:
    value = values.get(key)
    if value is None or str(value).strip() == "":
        return None
    raw = str(value).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ChannelConfigError(f"WhatsApp channel: {key} must be a TCP port from 1 to 65535, not {raw!r}")
    return int(raw)


@dataclass
class SenderParts:
    """The send-time guard and the stores and client it runs on."""

    sender: GuardedSender
    graph: GraphClient
    inbox: Inbox
    sent: SentLog
    sessions: SessionStore
    consents: ConsentBook
    registry: TemplateRegistry
    outbound: OutboundQueue

    async def close(self) -> None:
        await self.graph.close()
        await self.sent.close()
        await self.inbox.close()
        await self.sessions.close()


async def open_sender(
    settings: Settings,
    graph_config: GraphConfig,
    clock: Clock,
    *,
    sessions: SessionStore | None = None,
    registry: TemplateRegistry | None = None,
    many_clients: bool = False,
    inline_sqlite: bool = False,
) -> SenderParts:
    """Build and initialise the guard as every sender uses it: the WhatsApp channel and
    the outbound worker. One pool for Salon's tables: on SQLite, connections of several
    pools to one file would only compete for its write lock. ``many_clients``: the
    worker's guard (see :class:`GuardedSender`), whose concurrent sends share their reads
    and whose records the worker flushes. ``inline_sqlite``: on SQLite, the pool runs its
    statements in the event loop's thread (:mod:`salon.storage.sqlite_inline`).
    """
    warning = version_warning(graph_config.api_version, clock.now())
    if warning:
        logger.warning("%s", warning)
    inbox = Inbox(settings.effective_database_url, inline_sqlite=inline_sqlite)
    await inbox.initialize()
    sent = SentLog(engine=inbox.engine)
    await sent.initialize()
    store = sessions or (
        SqlSessionStore(engine=inbox.engine, clock=clock)
        if not settings.redis_url
        else session_store_from_settings(settings, clock=clock)
    )
    await store.initialize()
    consents = ConsentBook(engine=inbox.engine)
    await consents.initialize()
    templates = registry or TemplateRegistry.load_default()
    graph = GraphClient(graph_config)
    # Outbound requests parked by the worker are delivered by the channel when the
    # client writes again (or re-routed after a 131047): their state follows.
    outbound = OutboundQueue(engine=inbox.engine)
    await outbound.initialize()
    sender = GuardedSender(
        graph=graph, sessions=store, sent=sent, profile_name=inbox.latest_profile_name, consents=consents, registry=templates,
        clock=clock, on_follow_up=follow_up_recorder(outbound, clock), many_clients=many_clients,
    )
    return SenderParts(sender, graph, inbox, sent, store, consents, templates, outbound)


class WhatsAppRuntime:
    """Start with :meth:`start` in the running loop; :meth:`close` on shutdown."""

    def __init__(
        self,
        config: ChannelConfig,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        sessions: SessionStore | None = None,
        registry: TemplateRegistry | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or load_settings()
        self.clock = clock or clock_from_env()
        self._sessions = sessions
        self._registry = registry
        self.service: WebhookService | None = None
        self.sender: GuardedSender | None = None
        self.sessions: SessionStore | None = None
        """The session store in use once started (the advisor API reads windows from it)."""
        self.inbox: Inbox | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop the channel's I/O (stores, Graph client) belongs to."""
        self.replayed = 0
        """Messages acknowledged earlier but never answered, queued again at start."""

    async def start(self, on_turn: TurnHandler) -> WebhookService:
        """Build everything in the running loop, queue the messages acknowledged earlier
        but never answered, and start the inbox pruning.
        """
        self.loop = asyncio.get_running_loop()
        # The acknowledgement is a chain of short transactions (inbox claim, window
        # record): on SQLite they run in this loop's thread, without a hop to a driver
        # thread per call.
        parts = await open_sender(self.settings, self.config.graph, self.clock,
                                  sessions=self._sessions, registry=self._registry, inline_sqlite=True)
        self.sender, self._parts = parts.sender, parts
        sessions, consents, registry = parts.sessions, parts.consents, parts.registry
        self.service = WebhookService(
            app_secret=self.config.app_secret, verify_token=self.config.verify_token,
            phone_number_id=self.config.phone_number_id, sessions=sessions, inbox=parts.inbox, sent=parts.sent,
            consents=consents, registry=registry, sender=self.sender, clock=self.clock,
            on_turn=on_turn, max_concurrent_turns=self.config.concurrent_turns,
        )
        self.sessions, self.inbox = sessions, parts.inbox
        logger.info(
            "WhatsApp channel ready: number %s, Graph API %s (%s), state in %s",
            self.config.phone_number_id, self.config.graph.messages_url, self.config.auth_mode,
            "Redis" if self.settings.redis_url else "SQL",
        )
        self.replayed = await self.service.replay_pending()
        self.service.start_housekeeping()
        return self.service

    # ------------------------------------------------------------------ the channel's calls
    @property
    def ready(self) -> bool:
        return self.service is not None

    @property
    def engine(self) -> AsyncEngine | None:
        """The pool on Salon's tables, once started."""
        return self.inbox.engine if self.inbox is not None else None

    async def handle(self, body: bytes, signature: str | None) -> Reply:
        """One webhook POST (see :meth:`WebhookService.handle`)."""
        if self.service is None:
            return Reply(503, "starting")
        return await self.service.handle(body, signature)

    def verify(self, mode: str | None, token: str | None, challenge: str | None) -> Reply:
        return verify_handshake(self.config.verify_token, mode, token, challenge)

    async def waiting(self, sender_id: str) -> int:
        """How many of the client's messages wait behind her turn running now."""
        return self.service.waiting(sender_id) if self.service is not None else 0

    async def send(self, ref: ClientRef, response: Mapping[str, Any], *,
                   client_turn: bool = False) -> list[SendOutcome]:
        """Render one assistant response and send it through the send-time guard. A
        response that cannot become a WhatsApp message is reported, never sent half.
        ``client_turn``: the response answers the client's own WhatsApp message.
        """
        if self.sender is None:
            raise RuntimeError("the WhatsApp channel has not started")
        if client_turn and self.service is not None:
            # An opt-out the assistant understood in the client's own words is in the
            # ledger before she reads its confirmation.
            await self.service.consents.record_understood_opt_out(
                ref, response.get("utter_action"), str(response.get("text") or ""), self.clock.now())
        try:
            outgoing = render_response(dict(response))
        except RenderError as exc:
            logger.error("response %s for %s not sent: %s", response.get("utter_action"),
                         ref.user_id or ref.wa_id, exc)
            return [SendOutcome("refused", reason=f"render: {exc}")]
        return await self.sender.send_all(ref, outgoing)

    async def close(self) -> None:
        if self.service is not None:
            await self.service.stop_housekeeping()
            await self.service.drain(timeout=10)
        if self.sender is not None:
            await self._parts.close()
