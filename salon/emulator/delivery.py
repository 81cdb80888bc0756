"""Signed webhook delivery to the bot.

- Each POST carries ``X-Hub-Signature-256: sha256=<HMAC-SHA256(raw body, app secret)>``
  and ``Content-Type: application/json``; the body is serialised once
  (:func:`salon.emulator.payloads.serialise`) and those exact bytes are signed and sent.
- Anything but HTTP 200 (or a connection error / timeout) is retried with exponential
  backoff (``base * 2**n`` seconds, capped), up to a bounded number of attempts; every
  attempt and its outcome is kept in :attr:`WebhookDispatcher.log`.
- Order: events of one ``order_key`` (one client, or the account's management events)
  are delivered one after the other, a POST waiting for the previous one (and its
  retries) to finish; different keys are delivered concurrently, as Meta does.
- Batching (off by default): all events go through one queue and those arriving within
  ``batch_window`` seconds are sent in one POST (several entries / changes / messages /
  statuses).
- Duplicates: an event with ``duplicates=N`` is POSTed N extra times, byte for byte.

:meth:`WebhookDispatcher.submit` never waits: the Graph API answers immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from salon.clock import Clock
from salon.emulator.payloads import WebhookEvent, build_payload, serialise, sign

__all__ = ["Delivery", "DeliveryAttempt", "WebhookDispatcher"]

logger = logging.getLogger(__name__)

_BATCH_KEY = "*"


@dataclass
class DeliveryAttempt:
    """One POST of a webhook: its number, when (ISO time on the emulator's clock), the
    HTTP status or the error, and how long it took.
    """

    attempt: int
    at: str
    status: int | None
    error: str | None
    elapsed_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "at": self.at,
            "status": self.status,
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 2),
        }


@dataclass
class Delivery:
    """One webhook POST (with all its attempts)."""

    id: int
    order_key: str
    url: str
    payload: dict[str, Any]
    body: bytes
    signature: str
    fields: list[str]
    labels: list[str]
    created_at: str
    duplicate_of: int | None = None
    state: str = "pending"  # pending | delivered | failed | skipped
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "order_key": self.order_key,
            "url": self.url,
            "state": self.state,
            "fields": self.fields,
            "labels": self.labels,
            "duplicate_of": self.duplicate_of,
            "created_at": self.created_at,
            "attempts": [a.as_dict() for a in self.attempts],
            "signature": self.signature,
            "payload": self.payload,
        }


class WebhookDispatcher:
    """Queues, batches, signs, POSTs and retries webhook events."""

    def __init__(
        self,
        *,
        url: Callable[[], str],
        app_secret: str,
        waba_id: str,
        clock: Clock,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float = 10.0,
        batching: bool = False,
        batch_window: float = 0.05,
        batch_max: int = 50,
    ) -> None:
        self._url = url
        self._secret = app_secret
        self._waba_id = waba_id
        self._clock = clock
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.batching = batching
        self.batch_window = batch_window
        self.batch_max = batch_max
        self.log: list[Delivery] = []
        self._queues: dict[str, asyncio.Queue[WebhookEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._next_id = 1
        self.skipped = 0
        """Events not delivered because no webhook URL was configured."""

    # -- public
    def submit(self, event: WebhookEvent) -> None:
        """Queue ``event`` (returns at once). With no webhook URL configured the event is
        only counted (``skipped``): nothing is built, signed or kept.
        """
        if not self._url():
            self.skipped += 1
            return
        key = _BATCH_KEY if self.batching else event.order_key
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
        worker = self._workers.get(key)
        if worker is None or worker.done():
            self._workers[key] = asyncio.get_running_loop().create_task(
                self._worker(key, queue), name=f"webhook-{key}"
            )
        self._pending += 1
        self._idle.clear()
        queue.put_nowait(event)

    @property
    def enabled(self) -> bool:
        """A webhook URL is configured (events are delivered, not only counted)."""
        return bool(self._url())

    @property
    def idle(self) -> bool:
        return self._pending == 0

    async def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up (True) or timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def deliveries(self) -> list[dict[str, Any]]:
        return [d.as_dict() for d in self.log]

    async def reset(self) -> None:
        """Drop queued events, stop the workers, forget the log."""
        await self._stop_workers()
        self.log.clear()
        self.skipped = 0
        self._next_id = 1

    async def close(self) -> None:
        await self._stop_workers()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- internals
    async def _stop_workers(self) -> None:
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        self._queues.clear()
        self._pending = 0
        self._idle.set()

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def _worker(self, key: str, queue: asyncio.Queue[WebhookEvent]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            if self.batching:
                deadline = loop.time() + self.batch_window
                while len(batch) < self.batch_max:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(queue.get(), remaining))
                    except asyncio.TimeoutError:
                        break
            try:
                await self._deliver(key, batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad batch stop the client's queue
                logger.exception("webhook delivery crashed")
            finally:
                self._pending -= len(batch)
                if self._pending <= 0:
                    self._pending = 0
                    self._idle.set()

    def _new_delivery(
        self,
        key: str,
        url: str,
        batch: list[WebhookEvent],
        payload: dict[str, Any],
        body: bytes,
        duplicate_of: int | None,
    ) -> Delivery:
        delivery = Delivery(
            id=self._next_id,
            order_key=key,
            url=url,
            payload=payload,
            body=body,
            signature=sign(body, self._secret),
            fields=sorted({e.field for e in batch}),
            labels=[label for e in batch for label in e.labels],
            created_at=self._clock.now().isoformat(),
            duplicate_of=duplicate_of,
        )
        self._next_id += 1
        self.log.append(delivery)
        return delivery

    async def _deliver(self, key: str, batch: list[WebhookEvent]) -> None:
        payload = build_payload(self._waba_id, batch)
        body = serialise(payload)
        url = self._url()
        first = self._new_delivery(key, url, batch, payload, body, None)
        await self._post(first)
        for _ in range(max(e.duplicates for e in batch)):
            await self._post(self._new_delivery(key, url, batch, payload, body, first.id))

    async def _post(self, delivery: Delivery) -> None:
        if not delivery.url:
            delivery.state = "skipped"
            return
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": delivery.signature,
            "User-Agent": "facebookexternalua",
        }
        session = self._session_for_loop()
        for attempt in range(1, self.attempts + 1):
            started = time.perf_counter()
            status: int | None = None
            error: str | None = None
            try:
                async with session.post(delivery.url, data=delivery.body, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            delivery.attempts.append(
                DeliveryAttempt(
                    attempt,
                    self._clock.now().isoformat(),
                    status,
                    error,
                    (time.perf_counter() - started) * 1000,
                )
            )
            if status == 200:
                delivery.state = "delivered"
                return
            if attempt < self.attempts:
                await asyncio.sleep(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        delivery.state = "failed"
        logger.warning(
            "webhook %s to %s given up after %d attempts", delivery.id, delivery.url, self.attempts
        )
