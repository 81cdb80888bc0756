"""The state of the emulated account and what every part of :class:`~salon.emulator.Emulator`
needs: the clock, the webhook dispatcher, background tasks, the client book and the media
store. The jobs built on it (sending, playing the client, views, account settings) are
mixins in their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping
from datetime import datetime
from typing import Any

from salon.clock import Clock
from salon.emulator import rules
from salon.emulator.clock import EmulatorClock
from salon.emulator.config import EmulatorConfig
from salon.emulator.delivery import WebhookDispatcher
from salon.emulator.graph_errors import GraphError
from salon.emulator.ids import new_numeric_id, normalise_recipient
from salon.emulator.model import (
    AdminError,
    Client,
    InboundRecord,
    MediaItem,
    OutboundMessage,
    ThreadInbound,
)
from salon.emulator.payloads import Metadata
from salon.emulator.template_store import TemplateStore

__all__ = ["EmulatorCore"]


class EmulatorCore:
    """State of the emulated WhatsApp Business Account, with its lifecycle, client book
    and media store.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Clock | None = None,
        templates: TemplateStore | None = None,
    ) -> None:
        self.config = config
        self.clock = EmulatorClock(clock, config.clock_file)
        self.templates = templates or TemplateStore.from_file(config.templates_path)
        self.dispatcher = WebhookDispatcher(
            url=lambda: self.config.webhook_url,
            app_secret=config.app_secret,
            waba_id=config.waba_id,
            clock=self.clock,
            attempts=config.webhook_attempts,
            base_delay=config.webhook_retry_base_delay,
            max_delay=config.webhook_retry_max_delay,
            timeout=config.webhook_timeout,
            batching=config.batching,
            batch_window=config.batch_window,
            batch_max=config.batch_max,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._clear_state()

    def _clear_state(self) -> None:
        self.clients: dict[str, Client] = {}
        self._by_wa: dict[str, str] = {}
        self._by_user: dict[str, str] = {}
        #: ids a client left behind in an identity change → that client's key
        self._retired: dict[str, str] = {}
        self.windows = rules.WindowBook()
        self.outbox: list[OutboundMessage] = []
        self._by_wamid: dict[str, OutboundMessage] = {}
        self._inbound: dict[str, InboundRecord] = {}
        self._thread_inbound: list[ThreadInbound] = []
        self.media: dict[str, MediaItem] = {}
        self.pair_rate = rules.KeyedBuckets(
            self.config.pair_rate_burst, 1.0 / self.config.pair_rate_refill_seconds
        )
        self.throughput = rules.KeyedBuckets(
            self.config.throughput_per_second, self.config.throughput_per_second
        )
        self._seq = 0

    @property
    def metadata(self) -> Metadata:
        return Metadata(self.config.display_phone_number, self.config.phone_number_id)

    def now(self) -> datetime:
        return self.clock.now()

    # ------------------------------------------------------------------ lifecycle
    async def reset(self) -> None:
        """Forget clients, outbox, media, webhook log; clock offset back to zero;
        templates back to the file's state.
        """
        await self._cancel_tasks()
        await self.dispatcher.reset()
        self._clear_state()
        self.templates.reset()
        self.clock.reset()

    async def close(self) -> None:
        await self._cancel_tasks()
        await self.dispatcher.close()

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no status lifecycle runs and every webhook was delivered or given
        up (True), or ``timeout`` seconds passed (False).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks or not self.dispatcher.idle:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # ------------------------------------------------------------------ clients
    def find_client(self, identity: str, *, retired: bool = True) -> Client | None:
        """The client an id (phone number or BSUID) names; with ``retired``, also through an
        id the client left behind in an identity change (admin lookups).
        """
        parsed = normalise_recipient(identity)
        if parsed is None:
            return None
        kind, value = parsed
        key = self._by_wa.get(value) if kind == "phone" else self._by_user.get(value)
        if key is None and retired:
            key = self._retired.get(value)
        return self.clients.get(key) if key else None

    def _admin_client(self, request: Mapping[str, Any]) -> Client:
        """The ``client`` of an admin request (a phone number or a BSUID it is known by)."""
        raw = request.get("client")
        if not isinstance(raw, str) or not raw.strip():
            raise AdminError("client is required (a phone number or a business-scoped user id)")
        if normalise_recipient(raw) is None:
            raise AdminError(f"client must be a phone number or a BSUID, got {raw!r}")
        client = self.find_client(raw, retired=False)
        if client is None:
            moved = self.find_client(raw)
            if moved is not None:
                now_known = " / ".join(i for i in (moved.wa_id, moved.user_id) if i)
                raise AdminError(
                    f"{raw!r} is an id the client left behind (identity change); "
                    f"they are {now_known} now",
                    404,
                )
            raise AdminError(f"no client {raw!r}: the client has to write first", 404)
        return client

    def _client(self, wa_id: str | None, user_id: str | None) -> Client:
        """The client known by ``wa_id`` or ``user_id``, created on first sight; an id it
        did not have yet is added to it.
        """
        key = (self._by_wa.get(wa_id) if wa_id else None) or (
            self._by_user.get(user_id) if user_id else None
        )
        client = self.clients.get(key) if key else None
        if client is None:
            base = wa_id or user_id
            assert base is not None
            key, n = base, 1
            while key in self.clients:  # an id another client left behind
                n += 1
                key = f"{base}#{n}"
            client = Client(key=key)
            self.clients[key] = client
        if wa_id and client.wa_id is None:
            client.wa_id = wa_id
        if user_id and client.user_id is None:
            client.user_id = user_id
        self._index(client)
        return client

    def _index(self, client: Client) -> None:
        for ident in (client.wa_id, client.user_id, client.parent_user_id):
            if ident:
                self._retired.pop(ident, None)
        if client.wa_id:
            self._by_wa[client.wa_id] = client.key
        if client.user_id:
            self._by_user[client.user_id] = client.key
        if client.parent_user_id:
            self._by_user.setdefault(client.parent_user_id, client.key)

    # ------------------------------------------------------------------ media
    def store_media(
        self, data: bytes, mime_type: str, filename: str | None, now: datetime | None = None
    ) -> MediaItem:
        """Keep a file under a new Graph media id."""
        item = MediaItem(new_numeric_id(), data, mime_type, filename, now or self.now())
        self.media[item.id] = item
        return item

    def media_url(self, media_id: str, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/whatsapp_business/attachments/?mid={media_id}"

    def media_info(self, media_id: str, base_url: str) -> dict[str, Any]:
        """``GET /{version}/{media_id}``: the download URL and metadata (Graph error 100
        when the id is unknown).
        """
        item = self.media.get(media_id)
        if item is None:
            raise GraphError(
                100,
                f"Unsupported get request. Object with ID '{media_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation.",
            )
        return {
            "messaging_product": "whatsapp",
            "url": self.media_url(item.id, base_url),
            "mime_type": item.mime_type,
            "sha256": item.sha256_hex,
            "file_size": len(item.data),
            "id": item.id,
        }
