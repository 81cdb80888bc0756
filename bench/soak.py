"""Outbound soak: many requests over simulated days, with random queue delays that cross
window boundaries, through the real worker and send-time guard to the Cloud API emulator.

Clients write at random moments (their windows open and close); requests are enqueued at
random moments and become due after a random delay of up to 30 hours. Time moves one
simulated hour per step (one clock shared by Salon and the emulator); after each step
the worker drains what is due, and the WhatsApp channel's webhook pipeline receives the
emulator's statuses and the clients' messages (delivering what was parked).

Baseline in the same run, ``naive_enqueue_time``: the decision taken when the request
is enqueued (free-form if the window is open then, else the purpose's template) and
sent as decided when it becomes due, to a second emulator fed the same client messages.
Its free-form messages sent after the window closed fail with 131047.

Prints counts per outcome for both; the last line is JSON with ``requests``,
``engine_131047`` (goal 0), ``baseline_131047`` (expected > 0), ``lost``,
``duplicated`` and the count per outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from scratch import scratch_database

from salon.clock import ManualClock
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import WebhookReceiver, running_emulator
from salon.identity import ClientRef
from salon.integrations.seed import seed_database
from salon.integrations.synthetic import add_synthetic_clients
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import FINAL_STATES, RequestSpec
from salon.outbound.worker import OutboundWorker, WorkerConfig
from salon.templates.registry import TemplateChoice, TemplateRegistry
from salon.webhook.pipeline import Turn
from salon.webhook.runtime import ChannelConfig, WhatsAppRuntime, open_sender
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.window.rules import DEFAULT_MARGIN

T0 = datetime(2026, 6, 1, 6, 0, tzinfo=timezone.utc)
SECRET = "soak-app-secret"
PNID = EmulatorConfig().phone_number_id
CONTENT_SENT = ("sent_free_form", "sent_template", "sent_after_reply")


@dataclass
class Planned:
    at_hour: int
    delay: timedelta
    wa_id: str
    purpose: str
    params: dict[str, str]
    text: str


def plan(requests: int, clients: list[str], hours: int, seed: int) -> tuple[list[Planned], dict[int, list[str]]]:
    rng = random.Random(seed)
    out = []
    for n in range(requests):
        wa_id = rng.choice(clients)
        kind = rng.random()
        if kind < 0.5:
            purpose, params, text = "order_update", {"order_ref": f"SOL-{n:06d}"}, f"Your order SOL-{n:06d} has left the atelier."
        elif kind < 0.8:
            purpose, params, text = "advisor_followup", {}, "The piece you asked about has arrived; shall I keep it for you?"
        else:
            purpose, params, text = "appointment_reminder", {
                "boutique": "Paris", "date": "3 June", "time": "11:00"}, "A gentle reminder of your visit on 3 June at 11:00."
        out.append(Planned(rng.randrange(hours), timedelta(minutes=rng.randrange(0, 30 * 60)), wa_id,
                           purpose, params, text))
    # Each client writes now and then (about once a day): windows open and close.
    writes: dict[int, list[str]] = {}
    for wa_id in clients:
        for hour in range(hours + 30):
            if rng.random() < 1 / 24:
                writes.setdefault(hour, []).append(wa_id)
    return out, writes


async def serve_webhooks(runtime: WhatsAppRuntime) -> tuple[web.AppRunner, str]:
    """The channel's webhook pipeline (no assistant: turns only deliver what was parked)."""

    async def on_turn(_turn: Turn) -> None:
        return None

    service = await runtime.start(on_turn)

    async def post(request: web.Request) -> web.Response:
        reply = await service.handle(await request.read(), request.headers.get("X-Hub-Signature-256"))
        return web.Response(status=reply.status, text=reply.body)

    app = web.Application()
    app.router.add_post("/webhook", post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/webhook"


class Baseline:
    """Decides at enqueue time, sends as decided when due."""

    def __init__(self, graph: GraphClient, registry: TemplateRegistry) -> None:
        self.graph = graph
        self.registry = registry
        self.last_inbound: dict[str, datetime] = {}
        self.due: list[tuple[datetime, str, dict[str, Any]]] = []
        self.outcomes: Counter[str] = Counter()

    def enqueue(self, item: Planned, now: datetime, due: datetime) -> None:
        last = self.last_inbound.get(item.wa_id)
        if last is not None and now < last + timedelta(hours=24) - DEFAULT_MARGIN:
            message = {"type": "text", "text": {"body": item.text}}
            kind = "free_form"
        else:
            choice = self.registry.select(item.purpose, "en", {"first_name": "Client", **item.params},
                                          marketing_allowed=False, now=now)
            if not isinstance(choice, TemplateChoice):
                self.outcomes["not_sent_no_template"] += 1
                return
            message = {"type": "template", "template": choice.payload}
            kind = "template"
        self.due.append((due, item.wa_id, {"kind": kind, "message": message}))

    async def dispatch(self, now: datetime) -> None:
        ready = [d for d in self.due if d[0] <= now]
        self.due = [d for d in self.due if d[0] > now]
        for _, wa_id, job in ready:
            try:
                await self.graph.send({**Recipient(wa_id=wa_id).fields(), **job["message"]})
                self.outcomes[f"sent_{job['kind']}"] += 1
            except Exception as exc:
                self.outcomes[f"error_{getattr(exc, 'code', type(exc).__name__)}"] += 1


async def run(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    seed_database(url, PROJECT_ROOT / "data" / "maison")
    clients = add_synthetic_clients(url, args.clients)
    planned, writes = plan(args.requests, clients, args.hours, args.seed)
    clock = ManualClock(T0)
    settings = Settings(var_dir=tmp, data_dir=tmp, database_url=url, redis_url=None)
    fast = {"status_sent_delay": 0.001, "status_delivered_delay": 0.002, "status_read_delay": None,
            "throughput_per_second": 1000.0}
    started = time.monotonic()
    async with running_emulator(EmulatorConfig(app_secret=SECRET, **fast), clock=clock) as emu, \
            WebhookReceiver(SECRET) as sink, \
            running_emulator(EmulatorConfig(app_secret=SECRET, webhook_url=sink.url, **fast), clock=clock) as base_emu:
        channel = ChannelConfig.from_mapping({
            "verify_token": "soak", "app_secret": SECRET, "access_token": emu.config.access_token,
            "phone_number_id": PNID, "api_base_url": emu.base_url})
        runtime = WhatsAppRuntime(channel, settings=settings, clock=clock)
        runner, hook = await serve_webhooks(runtime)
        assert runtime.sender is not None and runtime.service is not None
        # The worker, wired as the worker process wires it (its Graph client retries
        # through the queue, not inside the call).
        parts = await open_sender(settings, GraphConfig(access_token=emu.config.access_token, phone_number_id=PNID,
                                                        base_url=emu.base_url, max_attempts=1), clock,
                                  many_clients=True)
        queue = parts.outbound
        worker = OutboundWorker(
            queue, parts.sender, clock,
            pacing=PacingConfig(business_rate=1000, business_burst=1000, client_burst=45, quiet=None),
            config=WorkerConfig(batch=500, concurrency=64, lease=timedelta(hours=1)))
        baseline = Baseline(GraphClient(GraphConfig(access_token=base_emu.config.access_token, phone_number_id=PNID,
                                                    base_url=base_emu.base_url, max_attempts=1)),
                            TemplateRegistry.load_default())
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{emu.base_url}/_emulator/config", json={"webhook_url": hook}) as r:
                assert r.status == 200

            async def write(wa_id: str) -> None:
                for base in (emu.base_url, base_emu.base_url):
                    async with http.post(f"{base}/_emulator/inbound",
                                         json={"from": wa_id, "text": "Hello", "name": "Client"}) as r:
                        assert r.status == 200, await r.text()
                baseline.last_inbound[wa_id] = clock.now()

            async def idle() -> None:
                for base in (emu.base_url, base_emu.base_url):
                    async with http.post(f"{base}/_emulator/wait_idle", json={"timeout": 60}) as r:
                        await r.read()
                await runtime.service.drain(timeout=120)  # type: ignore[union-attr]

            by_hour: dict[int, list[Planned]] = {}
            for item in planned:
                by_hour.setdefault(item.at_hour, []).append(item)
            for hour in range(args.hours + 31):
                now = clock.now()
                for wa_id in writes.get(hour, []):
                    await write(wa_id)
                await idle()
                specs = _requests(by_hour.get(hour, []), hour, now, baseline)
                if specs:
                    await queue.enqueue_many(specs, now)
                while await worker.run_once():
                    pass
                await baseline.dispatch(now)
                await idle()
                clock.advance(timedelta(hours=1))
                if hour % 12 == 0:
                    done = (await queue.metrics())["states"]
                    print(f"  hour {hour:3d}: {sum(v for k, v in done.items() if k in FINAL_STATES)} final, "
                          f"{done['queued']} queued ({time.monotonic() - started:.0f} s)", flush=True)
            await idle()
            engine_box = await (await http.get(f"{emu.base_url}/_emulator/outbox")).json()
            base_box = await (await http.get(f"{base_emu.base_url}/_emulator/outbox")).json()
        metrics = await queue.metrics()
        requests = await queue.list(limit=args.requests + 10)
        await baseline.graph.close()
        await runner.cleanup()
        await runtime.close()
        await parts.close()
    return _report(args, requests, metrics, engine_box, base_box, baseline, time.monotonic() - started)


def _requests(items: list[Planned], hour: int, now: datetime, baseline: Baseline) -> list[RequestSpec]:
    """The hour's outbound requests, each also handed to the baseline."""
    specs = []
    for n, item in enumerate(items):
        due = now + item.delay
        specs.append(RequestSpec(
            client=ClientRef(PNID, wa_id=item.wa_id), purpose=item.purpose,
            idempotency_key=f"soak:{hour}:{n}", requested_by="system:soak",
            content={"text": item.text}, params=item.params, not_before=due))
        baseline.enqueue(item, now, due)
    return specs


def _report(args: argparse.Namespace, requests: list[Any], metrics: dict[str, Any],
            engine_box: list[dict[str, Any]], base_box: list[dict[str, Any]], baseline: Baseline,
            elapsed: float) -> dict[str, Any]:
    """Account for every request against what each emulator accepted; print and return the figures."""
    accepted = [m for m in engine_box if m["status"] != "rejected"]
    nudges = {m["wamid"] for m in accepted if m["template"] in ("advisor_update_nudge", "maison_news_nudge")}
    request_wamids = Counter(r.wamid for r in requests if r.state in CONTENT_SENT and r.wamid)
    content = [m for m in accepted if m["wamid"] not in nudges]
    unexplained = [m for m in content if m["wamid"] not in request_wamids]
    missing = [r for r in requests if r.state in CONTENT_SENT and r.wamid not in {m["wamid"] for m in content}]
    not_final = [r for r in requests if r.state not in FINAL_STATES]
    outcomes = dict(sorted(Counter(r.state for r in requests).items()))
    engine_131047 = sum(1 for m in engine_box if m["error_code"] == 131047)
    baseline_131047 = sum(1 for m in base_box if m["error_code"] == 131047)
    print(f"soak: {args.requests} requests, {args.clients} clients, {args.hours} h of requests "
          f"(+30 h to drain), {elapsed:.0f} s")
    print(f"  engine (decided at dispatch): {outcomes}")
    print(f"    delivery: {metrics['delivery']}, nudges: {len(nudges)}, rates: {metrics['rates']}")
    print(f"    131047: {engine_131047}   lost: {len(not_final) + len(missing)}   duplicated: {len(unexplained)}")
    print(f"  baseline naive_enqueue_time: {dict(sorted(baseline.outcomes.items()))}")
    print(f"    131047: {baseline_131047}")
    return {
        "requests": len(requests), "engine_131047": engine_131047, "baseline_131047": baseline_131047,
        "lost": len(not_final) + len(missing), "duplicated": len(unexplained),
        "outcomes": outcomes, "nudges": len(nudges), "baseline_outcomes": dict(baseline.outcomes),
        "rates": metrics["rates"], "seconds": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--hours", type=int, default=72, help="simulated hours over which requests arrive")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder; for "
                        "PostgreSQL, the server to use (the run gets a fresh database there)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="salon-soak-"))
    with scratch_database(args.database_url or f"sqlite:///{tmp / 'salon.db'}") as url:
        result = asyncio.run(run(args, url, tmp))
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
