"""A Graph API transport for the guard's unit tests: it records every request and answers
as Meta does (message ids, ``contacts`` naming whom Meta sent to, Meta's error bodies),
in process, with nothing listening on a port. The emulator stays the stand-in for the
end-to-end tests; this one is for tests that look at one request at a time.

Plug it into :class:`salon.whatsapp.graph.GraphClient` with ``transport=FakeGraph()``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from salon.whatsapp.addressing import is_bsuid
from salon.whatsapp.http1 import HttpReply, NoAnswer

_JSON = {"content-type": "application/json"}

#: Meta's titles for the error codes the tests script (the body Meta sends carries them).
TITLES = {
    131047: "Re-engagement message",
    131026: "Message undeliverable",
    130429: "Rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132015: "Template is paused",
    132016: "Template is disabled",
    190: "Invalid OAuth access token",
    2: "Service temporarily unavailable",
}


@dataclass
class FakeGraph:
    """Records requests; answers each with the next scripted answer, else as Meta would."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request body, in order (message sends and read receipts)."""
    dropped: list[dict[str, Any]] = field(default_factory=list)
    """Sends Meta accepts and never delivers: a BSUID written in ``to``."""
    target: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    _script: deque[Any] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------------ the script
    def fail_next(self, code: int, *, http_status: int = 400, details: str = "") -> None:
        """The next request gets Meta's error body for ``code``."""
        self._script.append(("error", code, http_status, details))

    def time_out_next(self) -> None:
        """The next request is written and never answered within the deadline."""
        self._script.append(("timeout",))

    def cut_next(self) -> None:
        """The next request is written and the connection closes before the answer."""
        self._script.append(("cut",))

    def sent(self) -> list[dict[str, Any]]:
        """The message sends, without read receipts."""
        return [r for r in self.requests if r.get("status") != "read"]

    # ------------------------------------------------------------------ the transport
    def request_head(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        self.target, self.headers = target, dict(headers)
        return f"{method} {target} HTTP/1.1\r\n\r\n".encode()

    async def send(self, head: bytes, body: bytes) -> HttpReply:
        request = json.loads(body)
        self.requests.append(request)
        if self._script:
            step = self._script.popleft()
            if step[0] == "timeout":
                raise asyncio.TimeoutError
            if step[0] == "cut":
                raise NoAnswer("connection closed before the answer was complete")
            _, code, http_status, details = step
            return _reply(http_status, {"error": {
                "message": f"({'#'}{code}) {TITLES.get(code, 'Error')}", "type": "OAuthException",
                "code": code, "error_data": {"messaging_product": "whatsapp", "details": details},
                "fbtrace_id": "AfakeTrace"}})
        if request.get("status") == "read":
            return _reply(200, {"success": True})
        return _reply(200, self._accepted(request))

    async def close(self) -> None:
        return None

    def _accepted(self, request: dict[str, Any]) -> dict[str, Any]:
        to, recipient = request.get("to"), request.get("recipient")
        if to is not None and is_bsuid(str(to)):
            # Meta answers 200 with an id and delivers nothing.
            self.dropped.append(request)
        contact: dict[str, Any] = {"input": str(to or recipient)}
        if to is not None and not is_bsuid(str(to)):
            contact["wa_id"] = str(to)
        else:
            contact["user_id"] = str(to or recipient)
        message: dict[str, Any] = {"id": f"wamid.FAKE{next(self._ids):06d}"}
        if request.get("type") == "template":
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}


def _reply(status: int, payload: dict[str, Any]) -> HttpReply:
    return HttpReply(status, dict(_JSON), json.dumps(payload).encode())
