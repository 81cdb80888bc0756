"""Everything the WhatsApp channel needs, built from its settings and started inside the
server's event loop: Graph client, session store, records, consent book, template
registry, send-time guard and webhook pipeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from salon.clock import Clock, clock_from_env
from salon.config import Settings, load_settings
from salon.sessions import SessionStore, SqlSessionStore, session_store_from_settings
from salon.templates import TemplateRegistry
from salon.whatsapp.consent import ConsentBook
from salon.whatsapp.graph import DEFAULT_BASE_URL, DEFAULT_VERSION, GraphClient, GraphConfig
from salon.whatsapp.records import WhatsAppRecords
from salon.whatsapp.sender import GuardedSender
from salon.whatsapp.service import TurnHandler, WebhookService

logger = logging.getLogger(__name__)

__all__ = ["ChannelConfig", "ChannelConfigError", "WhatsAppRuntime"]

REQUIRED = ("verify_token", "app_secret", "access_token", "phone_number_id")


class ChannelConfigError(ValueError):
    """The channel cannot start: a secret or id is missing or malformed."""


@dataclass(frozen=True)
class ChannelConfig:
    verify_token: str
    app_secret: str
    access_token: str
    phone_number_id: str
    waba_id: str = ""
    api_base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_VERSION
    auth_mode: str = "bearer"
    assistant_thread: bool = True
    """Run the assistant's turns in their own event loop thread (see connectors/whatsapp.py)."""
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
        known = set(REQUIRED) | {"waba_id", "api_base_url", "api_version", "auth_mode", "assistant_thread"}
        thread = str(values.get("assistant_thread", "true")).strip().lower()
        if thread not in ("true", "false", "1", "0", "yes", "no"):
            raise ChannelConfigError(f"WhatsApp channel: assistant_thread must be true or false, not {thread!r}")
        return cls(
            verify_token=str(values["verify_token"]).strip(),
            app_secret=str(values["app_secret"]).strip(),
            access_token=str(values["access_token"]).strip(),
            phone_number_id=str(values["phone_number_id"]).strip(),
            waba_id=str(values.get("waba_id") or "").strip(),
            api_base_url=base,
            api_version=str(values.get("api_version") or DEFAULT_VERSION).strip(),
            auth_mode=auth_mode,
            assistant_thread=thread in ("true", "1", "yes"),
            extra={k: v for k, v in values.items() if k not in known},
        )

    @property
    def graph(self) -> GraphConfig:
        return GraphConfig(
            access_token=self.access_token, phone_number_id=self.phone_number_id,
            base_url=self.api_base_url, api_version=self.api_version, auth_mode=self.auth_mode,
        )


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
        self.records: WhatsAppRecords | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop the channel's I/O (stores, Graph client) belongs to."""

    async def start(self, on_turn: TurnHandler) -> WebhookService:
        self.loop = asyncio.get_running_loop()
        url = self.settings.effective_database_url
        records = WhatsAppRecords(url)
        await records.initialize()
        # One pool for Salon's tables: on SQLite, connections of several pools to one
        # file would only compete for its write lock.
        sessions = self._sessions or (
            SqlSessionStore(engine=records.engine, clock=self.clock)
            if not self.settings.redis_url
            else session_store_from_settings(self.settings, clock=self.clock)
        )
        await sessions.initialize()
        consents = ConsentBook(engine=records.engine)
        await consents.initialize()
        registry = self._registry or TemplateRegistry.load_default()
        graph = GraphClient(self.config.graph)
        self.sender = GuardedSender(
            graph=graph, sessions=sessions, records=records, consents=consents,
            registry=registry, clock=self.clock,
        )
        self.service = WebhookService(
            app_secret=self.config.app_secret, verify_token=self.config.verify_token,
            phone_number_id=self.config.phone_number_id, sessions=sessions, records=records,
            consents=consents, registry=registry, sender=self.sender, clock=self.clock,
            on_turn=on_turn,
        )
        self._graph, self._records, self._sessions_started = graph, records, sessions
        self.sessions, self.records = sessions, records
        logger.info(
            "WhatsApp channel ready: number %s, Graph API %s (%s), state in %s",
            self.config.phone_number_id, self.config.graph.messages_url, self.config.auth_mode,
            "Redis" if self.settings.redis_url else "SQL",
        )
        return self.service

    async def close(self) -> None:
        if self.service is not None:
            await self.service.stop_housekeeping()
            await self.service.drain(timeout=10)
        if self.sender is not None:
            await self._graph.close()
            await self._records.close()
            await self._sessions_started.close()
