"""A second event loop on its own thread, and calls between the two loops."""

from __future__ import annotations

import asyncio
import threading
import time

from salon.loops import LoopThread, call_in_loop


async def test_blocking_work_in_the_thread_leaves_this_loop_free() -> None:
    worker = LoopThread("test-worker")
    worker.start()
    try:
        main_loop = asyncio.get_running_loop()

        async def blocking_turn() -> str:
            time.sleep(0.3)  # noqa: ASYNC251 - a prediction holding its loop, on purpose
            # ... then a reply that must run in the caller's loop
            return await call_in_loop(main_loop, where())

        async def where() -> str:
            return threading.current_thread().name

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        answer = await worker.run(blocking_turn())
        tick_task.cancel()
        assert answer == threading.current_thread().name  # the reply ran here
        assert ticks >= 10  # this loop kept running during the 0.3 s block
    finally:
        worker.stop()
    assert worker.loop is None


async def test_call_in_loop_runs_directly_in_the_running_loop() -> None:
    async def value() -> int:
        return 7

    assert await call_in_loop(asyncio.get_running_loop(), value()) == 7
    assert await call_in_loop(None, value()) == 7


def test_stop_cancels_pending_work() -> None:
    worker = LoopThread("test-stop")
    worker.start()
    assert worker.loop is not None
    future = asyncio.run_coroutine_threadsafe(asyncio.sleep(60), worker.loop)
    worker.stop(timeout=5)
    assert future.cancelled() or future.done()
