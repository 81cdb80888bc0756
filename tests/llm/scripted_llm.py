"""A local OpenAI-compatible server for tests: ``POST /v1/chat/completions`` answers from
a script, one step per request, on a free loopback port.

A step is a :class:`Step`: a completion text, an HTTP error status, a delay before
answering (to outlast a client's timeout), and an optional hook run when the request
arrives (to move a test clock, as a slow provider would). Every request body is kept in
``requests`` so tests can check what was (and was not) sent to the provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Step:
    text: str | None = None
    status: int = 200
    delay: float = 0.0
    on_request: Callable[[], None] | None = None


class ScriptedLlm:
    def __init__(self, steps: list[Step], model: str = "scripted-stylist-1") -> None:
        self.steps = list(steps)
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.authorization: list[str | None] = []
        self.base_url = ""

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.authorization.append(request.headers.get("Authorization"))
        if not self.steps:
            return web.json_response({"error": {"message": "script exhausted", "type": "server_error"}}, status=500)
        step = self.steps.pop(0)
        if step.on_request is not None:
            step.on_request()
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.status != 200:
            return web.json_response({"error": {"message": f"scripted {step.status}", "type": "server_error",
                                                "code": None}}, status=step.status)
        text = step.text or ""
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 1764400000,
            "model": self.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 100 + len(self.requests), "completion_tokens": len(text.split()),
                      "total_tokens": 100 + len(self.requests) + len(text.split())},
        })


@asynccontextmanager
async def running_llm(steps: list[Step], **kwargs: Any) -> AsyncIterator[ScriptedLlm]:
    server = ScriptedLlm(steps, **kwargs)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server._completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield server
    finally:
        await runner.cleanup()
