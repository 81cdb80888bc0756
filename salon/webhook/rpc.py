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
import socket
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


class RpcPeer(asyncio.Protocol):
    """One end of the socket, as an asyncio protocol: frames are cut from the bytes as they
    arrive and answers resolve their calls at once, with no task per read. Open with
    :meth:`connect`; :attr:`closed` is set when the stream ends, after every pending call
    has failed with :class:`PeerClosed`.
    """

    def __init__(self, handlers: Mapping[str, Handler], *, name: str = "peer") -> None:
        self.handlers = dict(handlers)
        self.name = name
        self.closed = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    async def connect(cls, sock: socket.socket, handlers: Mapping[str, Handler], *,
                      name: str = "peer") -> RpcPeer:
        """Serve ``handlers`` on one end of a Unix socket pair."""
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_unix_connection(lambda: cls(handlers, name=name), sock=sock)
        peer.transport = transport  # usable now, even where connection_made comes a moment later
        return peer

    async def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Call the peer's ``method`` and wait for its answer."""
        if self.closed.is_set() or self.transport is None:
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
        no longer be delivered).
        """
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        await self.closed.wait()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer)
            if size > MAX_FRAME:
                logger.error("%s: frame length %d is corrupt; closing", self.name, size)
                buffer.clear()
                self._abort()
                return
            end = _LENGTH.size + size
            if len(buffer) < end:
                return
            payload = bytes(buffer[_LENGTH.size:end])
            del buffer[:end]
            try:
                frame = pickle.loads(payload)
            except Exception:
                logger.exception("%s: unreadable frame; closing", self.name)
                self._abort()
                return
            self._dispatch(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerClosed(f"{self.name}: closed before answering"))

    # ------------------------------------------------------------------ internals
    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _write(self, frame: tuple[Any, ...]) -> None:
        data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > MAX_FRAME:
            raise ValueError(f"{self.name}: frame of {len(data)} bytes is over {MAX_FRAME}")
        assert self.transport is not None
        self.transport.write(_LENGTH.pack(len(data)) + data)

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
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self._write(reply)
        except Exception as exc:  # an unpicklable result: answer with the error instead
            logger.exception("%s: answer to %s could not be sent", self.name, method)
            self._write(("err", call_id, type(exc).__name__, str(exc)))
