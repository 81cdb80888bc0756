"""Outbound dispatch rate: real worker processes (``salon outbound-worker``: queue claims,
send-time guard, outbound records, pacing on) sending a campaign to the Cloud API
emulator, running as its own process with Meta's top throughput tier (1,000 messages/s
per number) and pair rate (a burst of 45, then one message per 6 s per client).

With ``--workers n`` the workers share the queue as in production: worker ``i`` takes
the clients of its shard and ``1/n`` of the number's 1,000 msg/s (``SALON_OUTBOUND_SHARD``).

``msgs_per_s`` is the sustained rate: messages Meta (the emulator) accepted between its
first and last acceptance; ``steady_msgs_per_s`` the same over the middle 80 % of them
(no first burst); ``wall_msgs_per_s`` also counts the workers' start-up. With pacing at
Meta's top tier, 1,000 msg/s is the ceiling the pacing itself sets.

Baseline in the same run, ``raw_graph``: the same number of template sends posted
straight to a fresh emulator with the Graph client, 64 in flight (no queue, no guard, no
records, and Meta's throughput tier lifted): the ceiling the emulator, the client and the
loopback allow on this machine.

Goal: >= 1,000 msg/s spread across many clients, 0 pair-rate violations (131056). The last
line is JSON with ``msgs_per_s`` and ``pair_rate_violations``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from scratch import scratch_database

from salon.clock import SystemClock
from salon.config import PROJECT_ROOT
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator_subprocess
from salon.identity import ClientRef
from salon.integrations.seed import seed_database
from salon.integrations.synthetic import add_synthetic_clients
from salon.loops import run_fast
from salon.outbound.queue import FINAL_STATES, OutboundQueue, RequestSpec, requests_table
from salon.templates.registry import TemplateChoice, TemplateRegistry
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.graph import GraphClient, GraphConfig


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
                await graph.send({**Recipient(wa_id=wa_ids[n % len(wa_ids)]).fields(), "type": "template",
                                  "template": choice.payload})
                sent += 1
            except Exception:  # counted as not sent
                return

    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(total)))
    elapsed = time.monotonic() - started
    await graph.close()
    return sent / elapsed


async def enqueue_campaign(queue: OutboundQueue, requests: int, wa_ids: list[str], pnid: str,
                           now: datetime) -> None:
    """``requests`` order updates, spread over the clients in turn."""
    specs = [RequestSpec(client=ClientRef(pnid, wa_id=wa_ids[n % len(wa_ids)]), purpose="order_update",
                         idempotency_key=f"dispatch:{n}", requested_by="system:bench",
                         content={"text": f"Your order SOL-{n:06d} has left the atelier."},
                         params={"order_ref": f"SOL-{n:06d}"})
             for n in range(requests)]
    for chunk in range(0, len(specs), 2000):
        await queue.enqueue_many(specs[chunk:chunk + 2000], now)


def worker_env(args: argparse.Namespace, url: str, tmp: Path, base_url: str, token: str,
               pnid: str) -> dict[str, str]:
    """The environment of a worker process: the emulator as the Graph API, pacing and batch from ``args``."""
    env = {**os.environ, "DATABASE_URL": url, "SALON_VAR_DIR": str(tmp), "SALON_CLOCK_FILE": "",
           "WA_API_BASE_URL": base_url, "WA_ACCESS_TOKEN": token,
           "WA_PHONE_NUMBER_ID": pnid, "WA_AUTH_MODE": "bearer",
           "SALON_OUTBOUND_RATE": str(args.rate),
           "SALON_OUTBOUND_QUIET_HOURS": "", "SALON_OUTBOUND_BATCH": str(args.batch),
           "SALON_OUTBOUND_CONCURRENCY": str(args.concurrency), "SALON_OUTBOUND_LEASE": "120",
           "SALON_OUTBOUND_POLL": "0.05", "SALON_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    return env


async def run(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    seed_database(url, PROJECT_ROOT / "data" / "maison")
    wa_ids = add_synthetic_clients(url, args.clients)
    config = EmulatorConfig(throughput_per_second=1000.0, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=None, port=0)
    clock = SystemClock()
    async with running_emulator_subprocess(config) as emu, aiohttp.ClientSession() as http:
        # Statuses are not what is measured here: the emulator keeps them to itself.
        async with http.post(f"{emu.base_url}/_emulator/config", json={"webhook_url": ""}) as r:
            assert r.status == 200, await r.text()
        pnid = emu.config.phone_number_id
        queue = OutboundQueue(url)
        await queue.initialize()
        now = clock.now()
        await enqueue_campaign(queue, args.requests, wa_ids, pnid, now)
        env = worker_env(args, url, tmp, emu.base_url, emu.config.access_token, pnid)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "salon.cli", "outbound-worker", "--no-scans",
                env={**env, "SALON_OUTBOUND_SHARD": f"{i}/{args.workers}"},
                stdout=open(tmp / f"worker-{i}.log", "wb"), stderr=asyncio.subprocess.STDOUT)  # noqa: ASYNC230
            for i in range(args.workers)
        ]
        while await count_final(queue.engine) < args.requests:
            await asyncio.sleep(0.2)
            if time.monotonic() - started > args.timeout or any(w.returncode is not None for w in workers):
                break
        elapsed = time.monotonic() - started
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        codes = [await worker.wait() for worker in workers]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        states = Counter(r.state for r in await queue.list(limit=args.requests + 10))
        async with http.get(f"{emu.base_url}/_emulator/outbox") as r:
            box = await r.json()
        await queue.close()
        accepted = sorted(datetime.fromisoformat(m["sent_at"]) for m in box if m["status"] != "rejected")
        violations = sum(1 for m in box if m["error_code"] == 131056)
        throughput_hits = sum(1 for m in box if m["error_code"] == 130429)
    # The ceiling: the emulator and the Graph client alone, with Meta's throughput tier
    # lifted so that it measures the machine rather than the tier.
    async with running_emulator_subprocess(replace(config, throughput_per_second=1_000_000.0)) as raw_emu, \
            aiohttp.ClientSession() as http:
        async with http.post(f"{raw_emu.base_url}/_emulator/config", json={"webhook_url": ""}) as r:
            assert r.status == 200, await r.text()
        baseline = await raw_baseline(raw_emu.base_url, raw_emu.config.access_token, raw_emu.config.phone_number_id,
                                      wa_ids, args.requests)
    sent = states.get("sent_template", 0) + states.get("sent_free_form", 0)
    span = (accepted[-1] - accepted[0]).total_seconds() if len(accepted) > 1 else 0.0
    rate = (len(accepted) - 1) / span if span > 0 else 0.0
    # Without the first burst and the last stragglers: the middle 80 % of acceptances.
    lo, hi = len(accepted) // 10, len(accepted) * 9 // 10
    middle = (accepted[hi] - accepted[lo]).total_seconds() if hi > lo else 0.0
    steady = (hi - lo) / middle if middle > 0 else 0.0
    print(f"dispatch: {args.requests} requests to {args.clients} clients, pacing {args.rate:.0f} msg/s per number, "
          f"{args.workers} worker process(es), {args.batch} per claim, {args.concurrency} clients in parallel each, "
          f"{url.split(':')[0]}")
    print(f"  engine (workers + guard + records): {sent} sent; {len(accepted)} accepted by Meta in {span:.2f} s "
          f"= {rate:.0f} msg/s sustained ({steady:.0f} msg/s over the middle 80 %); {sent / elapsed:.0f} msg/s counting start-up ({elapsed:.1f} s); "
          f"states {dict(states)}; worker exit codes {codes}")
    print(f"  worker CPU (all processes, start-up included): {worker_cpu:.1f} s = "
          f"{worker_cpu / max(sent, 1) * 1000:.2f} ms per message")
    print(f"  pair-rate violations (131056): {violations}; throughput errors (130429): {throughput_hits}")
    print(f"  baseline raw_graph (64 in flight, no queue, guard or throughput tier): {baseline:.0f} msg/s")
    return {"msgs_per_s": round(rate, 1), "steady_msgs_per_s": round(steady, 1),
            "pair_rate_violations": violations, "throughput_130429": throughput_hits,
            "wall_msgs_per_s": round(sent / elapsed, 1), "workers": args.workers,
            "worker_cpu_ms_per_msg": round(worker_cpu / max(sent, 1) * 1000, 3),
            "sent": sent, "requests": args.requests, "seconds": round(elapsed, 2),
            "baseline_raw_graph_msgs_per_s": round(baseline, 1), "states": dict(states)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="pacing: messages per second per number")
    parser.add_argument("--workers", type=int, default=2, help="worker processes sharing the queue")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder; for "
                        "PostgreSQL, the server to use (the run gets a fresh database there)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="salon-dispatch-"))
    with scratch_database(args.database_url or f"sqlite:///{tmp / 'salon.db'}") as url:
        figures = run_fast(run(args, url, tmp))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
