"""Helpers of the emulator tests: the emulator seen through HTTP (:class:`Api`), the fast
settings the suite runs with, and a few client numbers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiohttp

from salon.emulator.testing import RunningEmulator, WebhookReceiver

FAST: dict[str, Any] = {
    "status_sent_delay": 0.01,
    "status_delivered_delay": 0.02,
    "status_read_delay": 0.04,
    "webhook_retry_base_delay": 0.02,
    "webhook_retry_max_delay": 0.1,
    "webhook_timeout": 3.0,
}

CLAIRE = "33612345678"
HUGO = "33698765432"


@dataclass
class Api:
    """The emulator as the bot and the test see it."""

    session: aiohttp.ClientSession
    emu: RunningEmulator
    receiver: WebhookReceiver

    @property
    def url(self) -> str:
        return self.emu.base_url

    async def send(
        self,
        body: dict[str, Any],
        *,
        token: str | None = "default",
        phone_number_id: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        cfg = self.emu.config
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {cfg.access_token if token == 'default' else token}"
        url = f"{self.emu.graph_url}/{phone_number_id or cfg.phone_number_id}/messages"
        async with self.session.post(url, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def text(self, to: str, text: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        return await self.send(
            {
                "messaging_product": "whatsapp",
                "to": to,
                "type": "text",
                "text": {"body": text},
                **extra,
            }
        )

    async def admin(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, f"{self.url}/_emulator/{path}", json=body, params=params
        ) as resp:
            return resp.status, await resp.json()

    async def inbound(self, **fields: Any) -> dict[str, Any]:
        status, body = await self.admin("POST", "inbound", fields)
        assert status == 200, body
        return body

    async def advance(self, seconds: float) -> dict[str, Any]:
        status, body = await self.admin("POST", "clock", {"advance_seconds": seconds})
        assert status == 200, body
        return body

    async def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        status, body = await self.admin("GET", "outbox", params={"to": to} if to else None)
        assert status == 200
        return body

    async def idle(self) -> None:
        status, body = await self.admin("POST", "wait_idle", {"timeout": 5})
        assert status == 200 and body == {"idle": True}


StartApi = Callable[..., AbstractAsyncContextManager[Api]]


def nudge_request(to: str, *, language: str = "en", payload: str = "NUDGE:1") -> dict[str, Any]:
    """A ``POST /messages`` body for the maison's re-engagement template, first name
    Claire, whose quick-reply button carries ``payload``."""
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": "advisor_update_nudge",
            "language": {"code": language},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "first_name", "text": "Claire"}
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": 0,
                    "parameters": [{"type": "payload", "payload": payload}],
                },
            ],
        },
    }


def address(identity: str, field: str | None = None) -> dict[str, str]:
    """How a body names its recipient: a BSUID in ``recipient`` (with ``recipient_type``),
    a phone number in ``to``; ``field`` forces one (``"to"`` with a BSUID is the mistake
    Meta silently drops)."""
    chosen = field or ("recipient" if "." in identity else "to")
    return {"recipient_type": "individual", chosen: identity}


def text_request(identity: str, text: str = "Bonjour", *, field: str | None = None) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        **address(identity, field),
        "type": "text",
        "text": {"body": text},
    }


def _named_template(
    identity: str, name: str, params: dict[str, str], field: str | None
) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        **address(identity, field),
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": k, "text": v} for k, v in params.items()
                    ],
                }
            ],
        },
    }


def marketing_request(identity: str, *, field: str | None = None) -> dict[str, Any]:
    """The maison's MARKETING news template (``maison_news_nudge``, en)."""
    return _named_template(identity, "maison_news_nudge", {"first_name": "Claire"}, field)


def utility_request(identity: str, *, field: str | None = None) -> dict[str, Any]:
    """The maison's UTILITY appointment reminder (``appointment_reminder``, en)."""
    params = {"first_name": "Claire", "boutique": "Paris", "date": "12 March", "time": "15:00"}
    return _named_template(identity, "appointment_reminder", params, field)
