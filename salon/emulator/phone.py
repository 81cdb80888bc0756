"""The phone page: a person chats as a client with the business, in a browser.

``GET /_emulator/phone`` serves ``static/phone.html``; its stylesheet and script come
from ``GET /_emulator/static/<name>`` (this folder only, no external assets). The page
reads ``GET /_emulator/thread?client=`` about once a second and writes through the
admin API (``/_emulator/inbound``, ``/_emulator/clock``).

Query parameters the page understands: ``client`` (phone number or BSUID, default
``33600000001``), ``name`` (the profile name sent with each message, default
``Claire Laurent``), ``username=1`` (play a username-only client: inbound messages say
``bsuid_only``), ``tz`` (the client's time zone; by default from the client's country:
+33 / ``FR.`` → Europe/Paris, +44 / ``GB.`` → Europe/London, +39 / ``IT.`` → Europe/Rome,
else UTC) and ``followup`` (the URL of a helper that asks the assistant to write first;
the page shows a "follow-up" button only when it is given).

The page also changes the client's BSUID or number (``/_emulator/identity_change``),
places a call (``/_emulator/call``), answers a contact-information request with its
"Share contact info" button (``/_emulator/share_contact``) and plays an advisor writing
from the WhatsApp Business app on the maison's number (``/_emulator/echo``: the message
shows in the thread as the business's, labelled as sent from the app).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from salon.emulator.service import AdminError, Emulator

__all__ = ["STATIC_DIR", "register_phone_routes", "static_file"]

STATIC_DIR: Final = Path(__file__).resolve().with_name("static")
_CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SAFE_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(?:css|js|svg)$")
_NO_STORE: Final = {"Cache-Control": "no-store"}


def static_file(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of ``static/<name>``, or None (unknown or unsafe name)."""
    if not _SAFE_NAME.match(name):
        return None
    path = STATIC_DIR / name
    if not path.is_file():
        return None
    return path.read_bytes(), _CONTENT_TYPES[path.suffix]


def _limit(request: Request) -> int | None:
    raw = request.args.get("limit")
    if raw is None:
        return None
    if not raw.isdigit():
        raise AdminError("limit must be a non-negative integer")
    return int(raw)


def register_phone_routes(app: Sanic, emulator: Emulator) -> None:
    """Add the phone page, its static files and the thread view to an emulator app."""

    @app.get("/_emulator/phone")
    async def phone_page(_request: Request) -> HTTPResponse:
        page = STATIC_DIR / "phone.html"
        return response.html(page.read_text(encoding="utf-8"), headers=_NO_STORE)

    @app.get("/_emulator/static/<name>")
    async def phone_static(_request: Request, name: str) -> HTTPResponse:
        found = static_file(name)
        if found is None:
            raise AdminError(f"no static file {name!r}", 404)
        body, content_type = found
        return response.raw(body, content_type=content_type, headers=_NO_STORE)

    @app.get("/_emulator/thread")
    async def thread(request: Request) -> HTTPResponse:
        view: dict[str, Any] = emulator.thread_view(request.args.get("client"), _limit(request))
        return response.json(view, dumps=lambda d: json.dumps(d, ensure_ascii=False))
