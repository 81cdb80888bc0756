"""Event loops: the one Salon's long-running processes run on, and one in its own thread.

:func:`run_fast` runs a process's main coroutine on uvloop (a libuv loop, installed with
the Rasa server's web stack) when it imports, else on asyncio's own loop. Sockets, timers
and callbacks cost about half as much CPU on uvloop, which matters to processes whose work
is mostly small HTTP exchanges (the emulator, the outbound worker).

:class:`LoopThread` is for work that blocks its loop. The assistant's predictions
(TensorFlow, called synchronously from Rasa's coroutines) hold an event loop for tens of
milliseconds at a time. Run in the server's loop, every webhook acknowledgement waits
behind them. :class:`LoopThread` runs such coroutines in a second loop on a dedicated
thread; the server's loop stays free to acknowledge, and the two meet through
:func:`call_in_loop`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["LoopThread", "call_in_loop", "loop_name", "run_fast"]

T = TypeVar("T")


def run_fast(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """``asyncio.run(main)`` on uvloop when available (``use_uvloop=False`` forces the
    standard loop).
    """
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            logger.info("uvloop is not installed; running on asyncio's own event loop")
        else:
            loop = uvloop.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                return loop.run_until_complete(_with_cleanup(main))
            finally:
                asyncio.set_event_loop(None)
                loop.close()
    return asyncio.run(main)


async def _with_cleanup(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main``, then cancel what it left running and close async generators, as
    ``asyncio.run`` does.
    """
    try:
        return await main
    finally:
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks(loop) if task is not current]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        await loop.shutdown_asyncgens()


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop running now (for logs and benchmarks)."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


class LoopThread:
    """An event loop of its own on a daemon thread (see the module's docstring): ``start``,
    then ``await run(coro)`` from any other loop, and ``stop`` at the end.
    """

    def __init__(self, name: str = "salon-loop") -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in this thread's loop and wait for it from the caller's loop."""
        if self.loop is None:
            raise RuntimeError(f"{self.name} is not started")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is None or self._thread is None:
            return
        loop = self.loop

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout)
        except Exception:  # the loop may already be closing
            logger.debug("%s: cancelling tasks failed", self.name, exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self.loop = None


async def call_in_loop(loop: asyncio.AbstractEventLoop | None, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` in ``loop`` (directly when it is the running loop)."""
    running = asyncio.get_running_loop()
    if loop is None or loop is running:
        return await awaitable

    async def _wrap() -> T:
        return await awaitable

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_wrap(), loop))
