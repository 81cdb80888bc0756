"""Calls between two of Salon's own processes over a stream socket.

Each frame is a 4-byte big-endian length and a pickled tuple:

- ``("call", id, method, args)``: run the peer's handler ``method(*args)``;
- ``("ok", id, result)`` / ``("err", id, type_name, message)``: its answer.

Both ends may call at once; every incoming call runs in its own task, so a long call
(a Rasa turn) never holds up a short one (a webhook acknowledgement). The socket is a
private socket pair between a parent and the child it started, never a listening
address, so unpickling only ever reads frames written by Salon itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

logger = logging.getLogger(__name__)

__all__ = ["PeerClosed", "RemoteError", "RpcPeer"]

_LENGTH: Final = struct.Struct(">I")
MAX_FRAME: Final = 64 * 1024 * 1024
"""Far above any webhook (3 MB) or response; a longer length means a corrupt stream."""

Handler = Callable[..., Awaitable[Any]]


class PeerClosed(ConnectionError):
    """The other process closed the socket (or died) before answering."""


class RemoteError(RuntimeError):
    """The peer's handler raised; ``type_name`` is the class name of what it raised."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name


class RpcPeer:
    """One end of the socket. Start with :meth:`start`; :attr:`closed` is set when the
    stream ends, after every pending call has failed with :class:`PeerClosed`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handlers: Mapping[str, Handler],
        *,
        name: str = "peer",
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.handlers = dict(handlers)
        self.name = name
        self.closed = asyncio.Event()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader_task = asyncio.ensure_future(self._read_loop())

    async def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Call the peer's ``method`` and wait for its answer."""
        if self.closed.is_set():
            raise PeerClosed(f"{self.name}: closed")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            self._write(("call", call_id, method, args))
            if timeout is None:
                return await future
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(call_id, None)

    async def close(self) -> None:
        """Close the socket; handlers still running are cancelled (their answers could
        no longer be delivered)."""
        if not self.writer.is_closing():
            self.writer.close()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ internals
    def _write(self, frame: tuple[Any, ...]) -> None:
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > MAX_FRAME:
            raise ValueError(f"{self.name}: frame of {len(data)} bytes is over {MAX_FRAME}")
        self.writer.write(_LENGTH.pack(len(data)) + data)

    async def _read_loop(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(_LENGTH.size)
                (size,) = _LENGTH.unpack(header)
                if size > MAX_FRAME:
                    logger.error("%s: frame length %d is corrupt; closing", self.name, size)
                    break
                frame = pickle.loads(await self.reader.readexactly(size))
                self._dispatch(frame)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: unreadable frame; closing", self.name)
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(PeerClosed(f"{self.name}: closed before answering"))
            if not self.writer.is_closing():
                self.writer.close()

    def _dispatch(self, frame: tuple[Any, ...]) -> None:
        kind = frame[0]
        if kind == "call":
            _, call_id, method, args = frame
            task = asyncio.ensure_future(self._answer(call_id, method, args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        future = self._pending.get(frame[1])
        if future is None or future.done():
            return  # the caller gave up (timeout); the late answer is dropped
        if kind == "ok":
            future.set_result(frame[2])
        else:
            future.set_exception(RemoteError(frame[2], frame[3]))

    async def _answer(self, call_id: int, method: str, args: tuple[Any, ...]) -> None:
        handler = self.handlers.get(method)
        try:
            if handler is None:
                raise LookupError(f"no handler for {method!r}")
            result = await handler(*args)
            reply: tuple[Any, ...] = ("ok", call_id, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("%s: %s failed", self.name, method, exc_info=True)
            reply = ("err", call_id, type(exc).__name__, str(exc))
        if self.writer.is_closing():
            return
        try:
            self._write(reply)
        except Exception as exc:  # an unpicklable result: answer with the error instead
            logger.exception("%s: answer to %s could not be sent", self.name, method)
            self._write(("err", call_id, type(exc).__name__, str(exc)))
