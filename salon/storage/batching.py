"""Coalesced reads: concurrent lookups made in the same moment become one query.

A sender handling many clients at once (the outbound worker sends to a hundred clients
in parallel) asks the same questions for each of them right before each send: the
client's window, profile and consents. Each caller still asks at its own moment and
gets an answer read after it asked; :class:`Coalescer` only gathers the keys asked while
one event-loop turn runs (and while the previous query is in flight) and reads them with
one call to a bulk loader, so a hundred questions cost one round trip instead of a
hundred.

No value is kept once it has been handed out: nothing here is a cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["Coalescer"]

K = TypeVar("K")
V = TypeVar("V")
BulkLoad = Callable[[Sequence[K]], Awaitable[Sequence[V]]]
"""Given keys, the values in the same order (one per key)."""


class Coalescer(Generic[K, V]):
    """``await get(key)`` → the value the bulk loader returns for ``key``.

    ``identity`` maps a key to what makes two asks the same question (asked twice in one
    round, it is read once). ``max_batch`` bounds one bulk call; more waiting keys are
    read in several calls. ``gather_s`` (at most 0.1 s) holds the first ask of a round
    that long so that more asks join it: fewer, larger reads for a little latency. A failing bulk call fails every ask of its round with the
    same exception; the next round starts afresh.
    """

    def __init__(
        self,
        load: BulkLoad[K, V],
        *,
        identity: Callable[[K], Hashable] | None = None,
        max_batch: int = 500,
        gather_s: float = 0.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not 0 <= gather_s <= 0.1:
            raise ValueError("gather_s must be between 0 and 0.1 s")
        self.gather_s = gather_s
        self._load = load
        self._identity = identity or (lambda key: key)
        self.max_batch = max_batch
        self._waiting: dict[Hashable, tuple[K, list[asyncio.Future[V]]]] = {}
        self._runner: asyncio.Task[None] | None = None
        self.rounds = 0
        """Bulk calls made (for benchmarks and tests)."""
        self.asks = 0

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        ident = self._identity(key)
        entry = self._waiting.get(ident)
        if entry is None:
            self._waiting[ident] = (key, [future])
        else:
            entry[1].append(future)
        self.asks += 1
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        # Let every task that is ready this turn make its ask before the first read, and
        # with ``gather_s`` those that become ready within that many seconds.
        await asyncio.sleep(0)
        if self.gather_s and len(self._waiting) < self.max_batch:
            await asyncio.sleep(self.gather_s)
        while self._waiting:
            idents = list(self._waiting)[: self.max_batch]
            batch = [self._waiting.pop(ident) for ident in idents]
            keys = [key for key, _ in batch]
            self.rounds += 1
            try:
                values = await self._load(keys)
                if len(values) != len(keys):
                    raise RuntimeError(f"bulk load returned {len(values)} values for {len(keys)} keys")
            except BaseException as exc:  # handed to every waiter, then the next round
                for _, futures in batch:
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, futures), value in zip(batch, values, strict=True):
                for future in futures:
                    if not future.done():
                        future.set_result(value)
