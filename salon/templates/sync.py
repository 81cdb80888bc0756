"""Keeping the registry in step with the maison's templates at Meta: a page fetcher on the
Graph API and the periodic reconciliation loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from salon.templates.lifecycle import FetchPage
from salon.templates.registry import TemplateRegistry
from salon.whatsapp.errors import from_graph_error
from salon.whatsapp.versions import DEFAULT_API_VERSION

logger = logging.getLogger(__name__)

__all__ = ["GraphTemplatePageFetcher", "SYNC_EVERY", "keep_in_sync"]


SYNC_EVERY: Final = timedelta(minutes=15)
"""How often a long-running process reconciles its templates with the Graph API."""


async def keep_in_sync(registry: TemplateRegistry, fetch_page: FetchPage, stop: asyncio.Event, *,
                       every: timedelta = SYNC_EVERY) -> None:
    """Reconcile ``registry`` with the Graph API now, then every ``every``, until ``stop``
    is set; a failed reconciliation is logged and tried again at the next turn.
    """
    while not stop.is_set():
        try:
            report = await registry.sync_durably(fetch_page)
            for change in report.changes:
                logger.info("template sync: %s", change)
        except Exception as exc:
            logger.warning("template sync with the Graph API failed (%s); trying again in %s",
                           type(exc).__name__, every)
        try:
            await asyncio.wait_for(stop.wait(), every.total_seconds())
        except asyncio.TimeoutError:
            pass


class GraphTemplatePageFetcher:
    """``FetchPage`` over httpx: ``GET {base}/{version}/{waba_id}/message_templates``.

    Works against graph.facebook.com, a BSP with the same API, or the local emulator.
    Non-2xx answers raise the typed :class:`salon.whatsapp.errors.WhatsAppError`.
    """

    FIELDS = "name,language,status,category,id,components,quality_score,parameter_format"

    def __init__(
        self,
        waba_id: str,
        access_token: str,
        *,
        base_url: str = "https://graph.facebook.com",
        api_version: str = DEFAULT_API_VERSION,
        limit: int = 100,
        client: Any = None,
        timeout: float = 10.0,
    ) -> None:
        import httpx

        self.url = f"{base_url.rstrip('/')}/{api_version}/{waba_id}/message_templates"
        self.limit = limit
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._own_client = client is None
        self._client: httpx.AsyncClient = client or httpx.AsyncClient(timeout=timeout)

    async def __call__(self, after: str | None) -> Mapping[str, Any]:
        params: dict[str, str | int] = {"fields": self.FIELDS, "limit": self.limit}
        if after:
            params["after"] = after
        response = await self._client.get(self.url, params=params, headers=self._headers)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400 or (isinstance(body, Mapping) and "error" in body):
            raise from_graph_error(body, http_status=response.status_code)
        if not isinstance(body, Mapping):
            raise from_graph_error(body, http_status=response.status_code)
        return body

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> GraphTemplatePageFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
