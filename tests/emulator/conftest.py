"""Fixtures: a loopback webhook receiver that checks signatures, and the emulator running
in-process on a free port, with short status delays so the suite stays fast."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from salon.clock import Clock
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import WebhookReceiver, running_emulator
from tests.emulator.emulator_support import FAST, Api, StartApi


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as rec:
        yield rec


@pytest.fixture
def start_api(receiver: WebhookReceiver) -> StartApi:
    """``async with start_api(clock=..., **config_overrides) as api``."""

    @asynccontextmanager
    async def start(clock: Clock | None = None, **overrides: Any) -> AsyncIterator[Api]:
        config = EmulatorConfig(**{"webhook_url": receiver.url, **FAST, **overrides})
        async with running_emulator(config, clock=clock) as emu, aiohttp.ClientSession() as session:
            yield Api(session, emu, receiver)

    return start


@pytest.fixture
async def api(start_api: StartApi) -> AsyncIterator[Api]:
    async with start_api() as started:
        yield started
