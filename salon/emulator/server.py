"""Serve an emulator app on the running event loop (in-process), Sanic 21.12 style:
``create_server(..., return_asyncio_server=True)`` then the startup/serve events, and the
shutdown events on stop.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from sanic import Sanic

__all__ = ["EmulatorServer"]


class EmulatorServer:
    """``await start()`` → base URL; ``await stop()``. ``port=0`` picks a free port."""

    def __init__(self, app: Sanic, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: Any = None
        self._sock: socket.socket | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.set_inheritable(False)
        self.port = sock.getsockname()[1]
        self._sock = sock
        server = await self.app.create_server(
            sock=sock, return_asyncio_server=True, access_log=False
        )
        if server is None:  # pragma: no cover - only without return_asyncio_server
            raise RuntimeError("Sanic did not return a server")
        await server.startup()
        await server.before_start()
        await server.after_start()
        self._server = server
        return self.base_url

    async def stop(self, grace: float = 1.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        await server.before_stop()
        closing = server.close()
        for connection in list(server.connections):
            connection.close_if_idle()
        for _ in range(max(1, int(grace / 0.02))):
            if not server.connections:
                break
            await asyncio.sleep(0.02)
        for connection in list(server.connections):
            connection.abort()
        if closing is not None:
            await closing
        await server.after_stop()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
