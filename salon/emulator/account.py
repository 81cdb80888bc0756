"""The account's settings as the admin API changes them: run-time configuration, the
emulator's clock, template statuses (with their management webhooks) and Meta's webhook
verification handshake.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp

from salon.emulator.config import EmulatorConfig
from salon.emulator.core import EmulatorCore
from salon.emulator.model import AdminError, opt_str
from salon.emulator.payloads import WebhookEvent, template_status_value, unix
from salon.emulator.template_store import TEMPLATE_STATUSES
from salon.templates.model import Template

__all__ = ["ACCOUNT_ORDER_KEY", "AccountMixin"]

#: The delivery order key of the account's management webhooks (template statuses).
ACCOUNT_ORDER_KEY: Final = "_account"
_RUNTIME_SETTINGS: Final = frozenset(
    {"webhook_url", "status_sent_delay", "status_delivered_delay", "status_read_delay"}
)


class AccountMixin(EmulatorCore):
    """Configuration, clock, templates and webhook verification of
    :class:`~salon.emulator.Emulator`.
    """

    def update_config(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """``POST /_emulator/config``: change the webhook URL or the status delays."""
        unknown = set(changes) - _RUNTIME_SETTINGS
        if unknown:
            raise AdminError(
                f"cannot change {sorted(unknown)} at run time "
                f"(allowed: {sorted(_RUNTIME_SETTINGS)})"
            )
        try:
            self.config = replace(self.config, **dict(changes))
        except (TypeError, ValueError) as exc:
            raise AdminError(str(exc)) from None
        return self.config

    # ------------------------------------------------------------------ clock
    def clock_view(self) -> dict[str, Any]:
        return {"now": self.now().isoformat(), "offset_seconds": self.clock.offset.total_seconds()}

    def move_clock(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/clock``: ``advance_seconds`` or ``set`` (ISO 8601 with an
        offset).
        """
        if "advance_seconds" in request:
            seconds = request["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise AdminError("advance_seconds must be a number")
            self.clock.advance(timedelta(seconds=seconds))
        elif "set" in request:
            raw = request["set"]
            if not isinstance(raw, str):
                raise AdminError("set must be an ISO 8601 string with a UTC offset")
            try:
                when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise AdminError(f"set: not an ISO 8601 datetime: {raw!r}") from None
            if when.tzinfo is None or when.utcoffset() is None:
                raise AdminError("set: a naive datetime is ambiguous; give an offset (e.g. +00:00)")
            self.clock.set(when)
        else:
            raise AdminError("give advance_seconds or set")
        return self.clock_view()

    # ------------------------------------------------------------------ templates
    def set_template_status(self, name: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_emulator/templates/{name}/status``: change a template's status (every
        language unless ``language``) and send ``message_template_status_update``.
        """
        status = str(request.get("status") or "").upper()
        if status not in TEMPLATE_STATUSES:
            raise AdminError(f"status must be one of {sorted(TEMPLATE_STATUSES)}")
        language = opt_str(request.get("language"), "language")
        targets = self.templates.by_name(name)
        if language is not None:
            targets = [t for t in targets if t.language == language]
        if not targets:
            raise AdminError(
                f"no template {name!r}" + (f" in {language!r}" if language else ""), 404
            )
        now = self.now()
        changed = []
        for template in targets:
            updated = self._change_template_status(name, template, status, request, now)
            changed.append(
                {
                    "name": updated.name,
                    "language": updated.language,
                    "status": updated.status,
                    "id": updated.template_id,
                }
            )
        return {"templates": changed}

    def _change_template_status(
        self,
        name: str,
        template: Template,
        status: str,
        request: Mapping[str, Any],
        now: datetime,
    ) -> Template:
        """Set one template's status and send its management webhook."""
        reason = request.get("reason")
        updated = self.templates.set_status(template.name, template.language, status)
        extra: dict[str, Any] = {}
        if status == "PAUSED":
            extra["other_info"] = {
                "title": "FIRST_PAUSE",
                "description": "Your WhatsApp message template has been paused for 3 hours "
                "due to low quality.",
            }
        elif status == "DISABLED":
            extra["disable_info"] = {"disable_date": now.date().isoformat()}
        for key in ("other_info", "rejection_info", "disable_info"):
            if isinstance(request.get(key), Mapping):
                extra[key] = dict(request[key])
        value = template_status_value(
            event=status,
            template_id=updated.template_id or "0",
            name=updated.name,
            language=updated.language,
            category=updated.category,
            reason=str(reason) if reason is not None else "NONE",
            extra=extra,
        )
        self.dispatcher.submit(
            WebhookEvent(
                "message_template_status_update",
                value,
                ACCOUNT_ORDER_KEY,
                entry_time=unix(now),
                labels=[f"template:{name}:{status}"],
            )
        )
        return updated

    # ------------------------------------------------------------------ webhooks
    async def verify_webhook(self, verify_token: str | None = None) -> dict[str, Any]:
        """Meta's subscription handshake against the bot's webhook URL (§4.1)."""
        challenge = str(secrets.randbelow(10**9))
        params = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge,
            "hub.verify_token": verify_token
            if verify_token is not None
            else self.config.verify_token,
        }
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout)
                ) as session,
                session.get(self.config.webhook_url, params=params) as resp,
            ):
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return {
                "ok": False,
                "status": None,
                "body": None,
                "error": str(exc),
                "challenge": challenge,
            }
        return {
            "ok": status == 200 and text.strip() == challenge,
            "status": status,
            "body": text[:500],
            "challenge": challenge,
        }
