"""Errors the emulator answers with, in Meta's two shapes.

- Synchronous Graph error body (platform reference §3.1, fixture 22)::

    {"error": {"message": "(#<code>) <title>", "type": "OAuthException", "code": <code>,
               "error_data": {"messaging_product": "whatsapp", "details": "..."},
               "fbtrace_id": "..."}}

  with the HTTP status of the reference table (§3.2).
- Asynchronous ``errors[]`` element of a status webhook (fixture 11)::

    {"code", "title", "message", "error_data": {"details"}, "href"}

- Graph-level errors that are not WhatsApp errors (an unknown or expired API version:
  2500, 2635) keep the envelope but have their own ``message`` and no ``error_data``::

    {"error": {"message": "Unknown path components: /v99.0/…", "type": "OAuthException",
               "code": 2500, "fbtrace_id": "..."}}
"""

from __future__ import annotations

from typing import Any, Final

from salon.emulator.ids import fbtrace_id
from salon.whatsapp import errors
from salon.whatsapp.errors import title_for as _salon_title_for

__all__ = [
    "ERROR_HREF",
    "GraphError",
    "graph_error_body",
    "status_error",
    "title_for",
]

ERROR_HREF: Final = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# Titles and HTTP statuses come from the one error table Salon's client also reads, so
# the emulator answers each code exactly as that table says Meta does. Codes that table does
# not know yet get their title here.
_EMULATOR_TITLES: Final[dict[int, str]] = {
    # Meta, "Business-scoped user IDs" (2026), error codes of POST /messages
    131062: "Business-scoped User ID (BSUID) recipients are not supported for this message",
}


def title_for(code: int) -> str:
    """The title of a Graph error code (the emulator's own table first, then Salon's)."""
    return _EMULATOR_TITLES.get(code) or _salon_title_for(code)


def http_status_of(code: int) -> int:
    return errors.http_status_for(code) or 400


def graph_error_body(code: int, details: str, *, title: str | None = None) -> dict[str, Any]:
    """The synchronous error body."""
    return {
        "error": {
            "message": f"(#{code}) {title or title_for(code)}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": fbtrace_id(),
        }
    }


def status_error(code: int, details: str) -> dict[str, Any]:
    """One ``statuses[].errors[]`` element."""
    title = title_for(code)
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": ERROR_HREF,
    }


class GraphError(Exception):
    """A synchronous Graph API error; the route turns it into the JSON body.

    ``message``: a Graph-level error (not a WhatsApp one) with Meta's own message and no
    ``error_data``.
    """

    def __init__(
        self,
        code: int,
        details: str,
        *,
        http_status: int | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(f"({code}) {message or title_for(code)}: {details}")
        self.code = code
        self.details = details
        self.message = message
        self.http_status = http_status if http_status is not None else http_status_of(code)

    def body(self) -> dict[str, Any]:
        if self.message is not None:
            return {
                "error": {
                    "message": self.message,
                    "type": "OAuthException",
                    "code": self.code,
                    "fbtrace_id": fbtrace_id(),
                }
            }
        return graph_error_body(self.code, self.details)
