"""Outbound dispatch rate: the real worker (queue claims, send-time guard, outbound record,
pacing on) sending a campaign to the Cloud API emulator, running as its own process with
Meta's top throughput tier (1,000 messages/s per number) and pair rate (a burst of 45,
then one message per 6 s per client).

Baseline in the same run, ``raw_graph``: the same number of template sends posted
straight to the emulator with the Graph client, 64 in flight (no queue, no guard, no
records): the ceiling the emulator and the loopback allow on this machine.

Goal: >= 1,000 msg/s spread across many clients, 0 pair-rate violations (131056). The last
line is JSON with ``msgs_per_s`` and ``pair_rate_violations``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from salon.clock import SystemClock
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator_subprocess
from salon.integrations.seed import seed_database
from salon.integrations.synthetic import add_synthetic_clients
from salon.outbound import FINAL_STATES, RequestSpec, requests_table
from salon.outbound_worker import OutboundWorker, WorkerConfig
from salon.pacing import PacingConfig
from salon.sessions import ClientRef
from salon.templates import TemplateChoice, TemplateRegistry
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.whatsapp.runtime import open_sender


async def count_final(engine: Any) -> int:
    from sqlalchemy import func, select

    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).where(
            requests_table.c.state.in_(FINAL_STATES)))).scalar_one())


async def raw_baseline(emu_url: str, token: str, pnid: str, wa_ids: list[str], total: int) -> float:
    registry = TemplateRegistry.load_default()
    choice = registry.select("order_update", "en", {"first_name": "Client", "order_ref": "SOL-000001"})
    assert isinstance(choice, TemplateChoice)
    graph = GraphClient(GraphConfig(access_token=token, phone_number_id=pnid, base_url=emu_url, max_attempts=1))
    sent = 0
    slots = asyncio.Semaphore(64)

    async def one(n: int) -> None:
        nonlocal sent
        async with slots:
            try:
                await graph.send({"to": wa_ids[n % len(wa_ids)], "type": "template", "template": choice.payload})
                sent += 1
            except Exception:  # counted as not sent
                return

    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(total)))
    elapsed = time.monotonic() - started
    await graph.close()
    return sent / elapsed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="salon-dispatch-"))
    url = args.database_url or f"sqlite:///{tmp / 'salon.db'}"
    seed_database(url, PROJECT_ROOT / "data" / "maison")
    wa_ids = add_synthetic_clients(url, args.clients)
    settings = Settings(var_dir=tmp, data_dir=tmp, database_url=url, redis_url=None)
    config = EmulatorConfig(throughput_per_second=1000.0, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=None, port=0)
    clock = SystemClock()
    async with running_emulator_subprocess(config) as emu, aiohttp.ClientSession() as http:
        # Statuses are not what is measured here: the emulator keeps them to itself.
        async with http.post(f"{emu.base_url}/_emulator/config", json={"webhook_url": ""}) as r:
            assert r.status == 200, await r.text()
        pnid = emu.config.phone_number_id
        graph = GraphConfig(access_token=emu.config.access_token, phone_number_id=pnid, base_url=emu.base_url,
                            max_attempts=1)
        parts = await open_sender(settings, graph, clock)
        queue = parts.outbound
        now = clock.now()
        specs = [RequestSpec(client=ClientRef(pnid, wa_id=wa_ids[n % len(wa_ids)]), purpose="order_update",
                             idempotency_key=f"dispatch:{n}", requested_by="system:bench",
                             content={"text": f"Your order SOL-{n:06d} has left the atelier."},
                             params={"order_ref": f"SOL-{n:06d}"})
                 for n in range(args.requests)]
        for chunk in range(0, len(specs), 2000):
            await queue.enqueue_many(specs[chunk:chunk + 2000], now)
        worker = OutboundWorker(
            queue, parts.sender, clock,
            pacing=PacingConfig(business_rate=args.rate, business_burst=args.rate, quiet=None),
            config=WorkerConfig(batch=args.batch, concurrency=args.concurrency, lease=timedelta(seconds=120)))
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.ensure_future(worker.run(stop))
        while await count_final(queue.engine) < args.requests:
            await asyncio.sleep(0.2)
            if time.monotonic() - started > args.timeout:
                break
        elapsed = time.monotonic() - started
        stop.set()
        await task
        states = Counter(r.state for r in await queue.list(limit=args.requests + 10))
        async with http.get(f"{emu.base_url}/_emulator/outbox") as r:
            box = await r.json()
        await parts.close()
        violations = sum(1 for m in box if m["error_code"] == 131056)
        throughput_hits = sum(1 for m in box if m["error_code"] == 130429)
        async with http.post(f"{emu.base_url}/_emulator/reset") as r:
            await r.read()
        baseline = await raw_baseline(emu.base_url, emu.config.access_token, pnid, wa_ids, args.requests)
    sent = states.get("sent_template", 0) + states.get("sent_free_form", 0)
    rate = sent / elapsed
    print(f"dispatch: {args.requests} requests to {args.clients} clients, pacing {args.rate:.0f} msg/s per number, "
          f"{args.batch} per claim, {args.concurrency} clients in parallel, {url.split(':')[0]}")
    print(f"  engine (worker + guard + records): {sent} sent in {elapsed:.1f} s = {rate:.0f} msg/s; states {dict(states)}")
    print(f"  pair-rate violations (131056): {violations}; throughput errors (130429): {throughput_hits}")
    print(f"  baseline raw_graph (64 in flight, no queue or guard): {baseline:.0f} msg/s")
    return {"msgs_per_s": round(rate, 1), "pair_rate_violations": violations, "throughput_130429": throughput_hits,
            "sent": sent, "requests": args.requests, "seconds": round(elapsed, 2),
            "baseline_raw_graph_msgs_per_s": round(baseline, 1), "states": dict(states)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="pacing: messages per second per number")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
