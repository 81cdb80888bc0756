"""Real worker processes killed with SIGKILL mid-campaign: after a restart nothing is
lost and nothing is sent twice. On PostgreSQL three workers share the queue
(``FOR UPDATE SKIP LOCKED``) and one of them is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from salon.clock import SystemClock
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.integrations.synthetic import add_synthetic_clients as add_clients
from salon.outbound.queue import (
    FINAL_STATES,
    SENT_TEMPLATE,
    OutboundQueue,
    parse_request,
    requests_table,
)
from tests.outbound_support import PNID
from tests.seeding import seed_maison
from tests.whatsapp_support import APP_SECRET, running_channel

CLIENTS = 150


def start_worker(url: str, emulator_url: str, log: Path, *, rate: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": url,
        "WA_ACCESS_TOKEN": EmulatorConfig().access_token,
        "WA_PHONE_NUMBER_ID": PNID,
        "WA_API_BASE_URL": emulator_url,
        "SALON_OUTBOUND_RATE": str(rate),
        "SALON_OUTBOUND_LEASE": "5",
        "SALON_OUTBOUND_BATCH": "20",
        "SALON_OUTBOUND_POLL": "0.1",
        "SALON_OUTBOUND_QUIET_HOURS": "off",
    }
    env.pop("SALON_CLOCK_FILE", None)
    handle = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "salon.cli", "outbound-worker", "--no-scans"],
                            env=env, stdout=handle, stderr=handle, cwd=PROJECT_ROOT)


async def finished(queue: OutboundQueue) -> int:
    async with queue.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).where(
            requests_table.c.state.in_(FINAL_STATES)))).scalar_one())


async def wait_for(queue: OutboundQueue, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = await finished(queue)
        if done >= count:
            return done
        await asyncio.sleep(0.05)
    return done


async def campaign_survives_kill(url: str, tmp_path: Path, *, workers: int) -> None:
    seed_maison(url)
    wa_ids = add_clients(url, CLIENTS)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=url, redis_url=None)
    clock = SystemClock()
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=None, throughput_per_second=1000.0)
    queue = OutboundQueue(url)
    await queue.initialize()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with running_emulator(config, clock=clock) as emu:
            async with running_channel(settings, api_base_url=emu.base_url, clock=clock,
                                       access_token=config.access_token) as ch:
                async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                    async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                        assert r.status == 200
                    now = clock.now()
                    specs = [parse_request(
                        {"client": {"wa_id": wa}, "purpose": "order_update",
                         "content": {"text": "Your order has left the atelier."},
                         "params": {"order_ref": f"SOL-{n:06d}"}, "idempotency_key": f"kill:{wa}"},
                        requested_by="system:test", now=now, default_phone_number_id=PNID,
                        campaign_id="kill") for n, wa in enumerate(wa_ids)]
                    await queue.enqueue_many(specs, now)
                    rate = 60 // workers
                    procs = [start_worker(url, emu.base_url, tmp_path / f"worker{i}.log", rate=rate)
                             for i in range(workers)]
                    assert await wait_for(queue, 30, 60) >= 30, "the campaign did not start"
                    victim = procs[0]
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(10)
                    at_kill = await finished(queue)
                    assert at_kill < CLIENTS, "killed too late to prove anything"
                    procs[0] = start_worker(url, emu.base_url, tmp_path / "worker0-restarted.log", rate=rate)
                    assert await wait_for(queue, CLIENTS, 90) == CLIENTS
                    await asyncio.sleep(0.5)  # late webhooks
                    async with admin.get("/_emulator/outbox") as r:
                        box = [m for m in await r.json() if m["status"] != "rejected"]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    try:
        per_client = Counter(m["to"] for m in box)
        assert set(per_client) == set(wa_ids), "lost"
        assert max(per_client.values()) == 1, f"duplicated: {[k for k, v in per_client.items() if v > 1]}"
        states = Counter(r.state for r in await queue.list(campaign_id="kill", limit=CLIENTS + 10))
        assert states == {SENT_TEMPLATE: CLIENTS}
    finally:
        await queue.close()


async def test_sqlite_worker_killed_mid_campaign_loses_and_doubles_nothing(sqlite_url: str, tmp_path: Path) -> None:
    await campaign_survives_kill(sqlite_url, tmp_path, workers=1)


async def test_three_postgres_workers_one_killed_mid_campaign(postgres_url: str, tmp_path: Path) -> None:
    await campaign_survives_kill(postgres_url, tmp_path, workers=3)
