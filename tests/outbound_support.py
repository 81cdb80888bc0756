"""Helpers for the outbound engine's tests: the whole dispatch path wired to the
emulator (the WhatsApp channel receives the emulator's webhooks; the worker sends
through the guard)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp

from salon.clock import Clock
from salon.config import Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import RunningEmulator, running_emulator
from salon.outbound import OutboundQueue
from salon.outbound_worker import OutboundWorker, WorkerConfig
from salon.pacing import PacingConfig
from salon.whatsapp.graph import GraphConfig
from salon.whatsapp.runtime import SenderParts, open_sender
from tests.whatsapp_support import APP_SECRET, Channel, running_channel

PNID = "100000000000001"


def emulator_graph(emu: RunningEmulator) -> GraphConfig:
    return GraphConfig(access_token=emu.config.access_token, phone_number_id=emu.config.phone_number_id,
                       base_url=emu.base_url, max_attempts=1)


@dataclass
class Stack:
    channel: Channel
    emulator: RunningEmulator
    admin: aiohttp.ClientSession
    parts: SenderParts
    worker: OutboundWorker

    @property
    def queue(self) -> OutboundQueue:
        return self.parts.outbound

    async def say(self, **body: Any) -> dict[str, Any]:
        async with self.admin.post("/_emulator/inbound", json=body) as r:
            assert r.status == 200, await r.text()
            sent = dict(await r.json())
        await self.idle()
        await self.channel.settle()
        return sent

    async def idle(self) -> None:
        async with self.admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
            assert (await r.json())["idle"]

    async def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to} if to else {}
        async with self.admin.get("/_emulator/outbox", params=params) as r:
            return list(await r.json())

    async def delivered(self, to: str | None = None) -> list[dict[str, Any]]:
        """Messages Meta accepted (not the ones it rejected synchronously)."""
        return [m for m in await self.outbox(to) if m["status"] != "rejected"]


@asynccontextmanager
async def outbound_stack(
    settings: Settings,
    clock: Clock,
    *,
    salon_clock: Clock | None = None,
    pacing: PacingConfig | None = None,
    worker_config: WorkerConfig | None = None,
    **emulator: Any,
) -> AsyncIterator[Stack]:
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03, **emulator)
    ours = salon_clock or clock
    async with running_emulator(config, clock=clock) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, clock=ours,
                                   access_token=config.access_token) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200, await r.text()
                parts = await open_sender(settings, emulator_graph(emu), ours, many_clients=True)
                worker = OutboundWorker(
                    parts.outbound, parts.sender, ours,
                    pacing=pacing or PacingConfig(business_rate=1000, business_burst=1000, quiet=None),
                    config=worker_config or WorkerConfig(lease=timedelta(seconds=5)),
                )
                try:
                    yield Stack(ch, emu, admin, parts, worker)
                finally:
                    await parts.close()
