"""L7: an idempotency key belongs to the principal that gives it. An API caller cannot
take a reminder's key (or another caller's) in advance and so suppress that message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import web

from salon.access.tokens import TokenBook
from salon.clock import ManualClock
from salon.dev.stack import free_port
from salon.outbound.api import create_app
from salon.outbound.queue import OutboundQueue, parse_request

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
PNID = "100000000000001"
TOKENS = [{"name": "crm", "token": "crm-token-0123456789", "scopes": ["outbound"]},
          {"name": "shop", "token": "shop-token-0123456789", "scopes": ["outbound"]}]
CRM = {"Authorization": "Bearer crm-token-0123456789"}
SHOP = {"Authorization": "Bearer shop-token-0123456789"}
REMINDER_KEY = "appt:APT-20261127-PAR-02:24h:2026-11-27T10:00:00+00:00"


@asynccontextmanager
async def api(url: str) -> AsyncIterator[tuple[OutboundQueue, str]]:
    queue = OutboundQueue(url)
    await queue.initialize()
    runner = web.AppRunner(create_app(queue, TokenBook.from_config(TOKENS), ManualClock(T0), phone_number_id=PNID))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield queue, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await queue.close()


def body(key: str) -> dict[str, Any]:
    return {"client": {"wa_id": "33600000001"}, "purpose": "appointment_reminder",
            "content": {"text": "See you tomorrow at 10:00."}, "idempotency_key": key}


async def test_a_caller_cannot_take_a_reminders_key(sqlite_url: str) -> None:
    async with api(sqlite_url) as (queue, base), aiohttp.ClientSession() as http:
        # The caller registers the reminder's key first …
        async with http.post(f"{base}/outbound", json=body(REMINDER_KEY), headers=CRM) as r:
            assert r.status == 201
            taken = await r.json()
        assert taken["idempotency_key"] == REMINDER_KEY  # its own key, as it gave it
        # … the reminders' scan still enqueues its own reminder.
        spec = parse_request(body(REMINDER_KEY), requested_by="system:reminders", now=T0,
                             default_phone_number_id=PNID)
        reminder, created = await queue.enqueue(spec, T0)
        assert created and reminder.id != taken["id"]
        assert (await queue.by_key(REMINDER_KEY)).id == reminder.id  # type: ignore[union-attr]


async def test_keys_are_per_principal_and_idempotent_for_each(sqlite_url: str) -> None:
    async with api(sqlite_url) as (queue, base), aiohttp.ClientSession() as http:
        # The reminder exists first: a caller reusing its key gets a request of its own,
        # never the reminder (nor a way to see or suppress it).
        spec = parse_request(body(REMINDER_KEY), requested_by="system:reminders", now=T0,
                             default_phone_number_id=PNID)
        reminder, _ = await queue.enqueue(spec, T0)
        ids = []
        for headers in (CRM, CRM, SHOP, SHOP):
            async with http.post(f"{base}/outbound", json=body(REMINDER_KEY), headers=headers) as r:
                assert r.status in (200, 201)
                ids.append((await r.json())["id"])
        assert ids[0] == ids[1] and ids[2] == ids[3], "the same key twice from one caller is one request"
        assert len({reminder.id, ids[0], ids[2]}) == 3
        # A campaign's keys are the caller's too.
        campaign = {"campaign_id": "winter", "purpose": "order_update",
                    "content": {"text": "A word about your order."}, "clients": [{"wa_id": "33600000002"}]}
        for headers, created in ((CRM, 1), (SHOP, 1), (CRM, 0)):
            async with http.post(f"{base}/outbound/campaigns", json=campaign, headers=headers) as r:
                assert (await r.json())["created"] == created
        long_key = "k" * 200
        async with http.post(f"{base}/outbound", json=body(long_key), headers=CRM) as r:
            assert r.status == 201 and (await r.json())["idempotency_key"].endswith("k" * 20)
