"""The event loop of Salon's long-running processes (the emulator, the outbound worker).

uvloop (a libuv loop, installed with the Rasa server's web stack) when it imports, else
asyncio's own loop. Sockets, timers and callbacks cost about half as much CPU on uvloop,
which matters to processes whose work is mostly small HTTP exchanges.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["loop_name", "run_fast"]

T = TypeVar("T")


def run_fast(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    """``asyncio.run(main)`` on uvloop when available (``use_uvloop=False`` forces the
    standard loop)."""
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
    ``asyncio.run`` does."""
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
