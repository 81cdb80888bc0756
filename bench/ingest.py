"""Ingest benchmark: the WhatsApp channel against Rasa's REST channel on the same model.

One `rasa run` (trained model, action server, both channels, the Cloud API emulator as
the Graph API) serves two runs of the same conversations:

- ``rest``: each client posts to ``/webhooks/rest/webhook`` and waits for the answer
  (the baseline: Rasa's own channel, no signature, no dedup, replies in the response);
- ``whatsapp``: each client writes through the emulator (``/_emulator/inbound`` with
  ``deliver: false``, so the window opens on Meta's side too) and the emulator-built
  webhook is signed and posted to ``/webhooks/whatsapp/webhook`` by this script, which
  times the acknowledgement; a message is done when the assistant's reply has been sent
  through the send-time guard to the Graph API (its inbox row is ``done``). Meta's
  status webhooks (sent, delivered, read) flow back as they would in production.

Clients send their messages one after the other; all clients (24 by default) run at once,
which keeps Rasa saturated. They start one after the other over ``--ramp-up`` seconds (1 s
by default, a load test's spawn rate; the same for both channels): Rasa is saturated
within that second, and the run lasts half a minute or more. With ``--ramp-up 0`` every
client's first message lands in the same instant, before any turn has started: that cold
burst of new clients is measured apart too (``ack_first_*``, the clients' first messages). The runs go REST, then ``--rounds`` times WhatsApp and REST,
so every WhatsApp run has a REST run just before and after it (the machine's speed may
drift during a run). Figures: messages per second for both (means over the runs), the
ratio (goal ≥ 0.95: the mean of each round's, a WhatsApp run against the REST runs on
either side of it; the ratio of the means is printed too), the webhook acknowledgement latency p50/p99 under
that load (goal p99 ≤ 25 ms), and the CPU each process spent per message, this script's
own (``bench``) included. The last line is one JSON object.

Meta's webhook goes to the channel companion's own port (``webhook_port``, as in
``deploy/credentials.production.yml``); ``--server-route`` sends it through the Rasa
server's route instead.

Needs the trained model (`make train`). Options: --clients, --messages-per-client, --rounds,
--ramp-up, --server-route.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine

from salon.config import PROJECT_ROOT
from salon.dev.stack import Stack, StackConfig, free_port
from salon.storage.db import sync_url
from salon.webhook.inbox import inbox_table
from salon.whatsapp.signature import sign

"""The companion process's webhook port in this benchmark's stack."""

TEXTS = [
    "Hello",
    "I'd like to book an appointment",
    "Is the Ondine bag available in black?",
    "where is my order SOL-104233",
    "thank you",
    "the clasp on my bracelet broke",
    "tell me when the Ondine bucket bag is back in black",
    "I want to speak to my advisor",
    "can I have my initials embossed on a card holder",
    "goodbye",
]


def _cpu_of(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / tick


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class CpuMeter:
    """CPU seconds each server process spent during a run; a process's children (the
    Rasa server's WhatsApp I/O process) are counted apart, as ``<name>+children``, and
    this script's own (the load generator's) as ``bench``."""

    def __init__(self, stack: Stack) -> None:
        self.pids = {name: p.pid for name, p in stack.processes.items()}
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            out[name] = _cpu_of(pid)
            children = _children(pid)
            if children:
                out[f"{name}+children"] = sum(_cpu_of(c) for c in children)
        own = os.times()
        out["bench"] = own.user + own.system
        return out

    def per_message_ms(self, messages: int) -> dict[str, float]:
        now = self._now()
        return {name: round((now[name] - self.start.get(name, 0.0)) * 1000 / messages, 1) for name in now}


def _mean_per_key(samples: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for sample in samples for k in sample}
    return {k: round(statistics.mean(s[k] for s in samples if k in s), 1) for k in sorted(keys)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_rest(stack: Stack, clients: int, per_client: int, tag: str, ramp_up: float = 0.0) -> float:
    url = f"{stack.config.rasa_url}/webhooks/rest/webhook"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:

        async def client(k: int) -> None:
            sender = f"{tag}-{k}"
            await asyncio.sleep(k * ramp_up / clients)
            for i in range(per_client):
                async with http.post(url, json={"sender": sender, "message": TEXTS[i % len(TEXTS)]}) as r:
                    assert r.status == 200, await r.text()
                    await r.json()

        start = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        return clients * per_client / (time.perf_counter() - start)


class InboxWatcher:
    """Resolves a future per wamid once its inbox row is done (one poller for all).

    One DB-API connection on one thread of its own and a plain statement over the waiting
    messages only: the load generator should cost the machine as little as it can, since
    it shares the two cores with the servers. If polling fails, every waiting message
    fails with it."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(sync_url(database_url))
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-watcher")
        self.connection: Any = None
        self.waiting: dict[str, asyncio.Future[None]] = {}

    def wait(self, wamid: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[wamid] = future
        return future

    def _done(self, wamids: list[str]) -> set[str]:
        if self.connection is None:
            self.connection = self.engine.raw_connection()
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        query = (f"SELECT wamid FROM {inbox_table.name} "
                 f"WHERE state <> 'pending' AND wamid IN ({', '.join([mark] * len(wamids))})")
        cursor = self.connection.cursor()
        try:
            cursor.execute(query, wamids)
            return {row[0] for row in cursor.fetchall()}
        finally:
            cursor.close()
            self.connection.commit()  # a fresh snapshot for the next poll

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                if self.waiting:
                    done = await loop.run_in_executor(self.thread, self._done, list(self.waiting))
                    for wamid in done.intersection(self.waiting):
                        self.waiting.pop(wamid).set_result(None)
                await asyncio.sleep(0.02)
        except Exception as exc:
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(RuntimeError(f"polling the inbox failed: {exc!r}"))
            raise

    async def close(self) -> None:
        def close_connection() -> None:
            if self.connection is not None:
                self.connection.close()

        await asyncio.get_running_loop().run_in_executor(self.thread, close_connection)
        self.thread.shutdown()
        self.engine.dispose()


async def run_whatsapp(
    stack: Stack, clients: int, per_client: int, tag: int, acks: list[float], ramp_up: float = 0.0,
    first_acks: list[float] | None = None,
) -> float:
    c = stack.config
    watcher = InboxWatcher(c.effective_database_url)
    stop = asyncio.Event()
    poller = asyncio.create_task(watcher.run(stop))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:

        async def client(k: int) -> None:
            wa_id = f"44770{tag:02d}{k:05d}"
            await asyncio.sleep(k * ramp_up / clients)
            for i in range(per_client):
                # The client writes through the emulator (its window opens there too);
                # we deliver the emulator-built webhook ourselves to time the ack.
                async with http.post(f"{c.emulator_url}/_emulator/inbound", json={
                    "from": wa_id, "name": f"Client {k}", "text": TEXTS[i % len(TEXTS)],
                    "deliver": False,
                }) as r:
                    assert r.status == 200, await r.text()
                    inbound = await r.json()
                body = json.dumps(inbound["webhook"], separators=(",", ":")).encode()
                headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, c.app_secret)}
                done = watcher.wait(inbound["wamid"])
                started = time.perf_counter()
                async with http.post(c.webhook_url, data=body, headers=headers) as r:
                    await r.read()
                    acks.append((time.perf_counter() - started) * 1000)
                    if i == 0 and first_acks is not None:
                        first_acks.append(acks[-1])
                    if r.status != 200:
                        raise RuntimeError(f"webhook answered {r.status}; see {c.workdir}/rasa.log")
                await done

        start = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        elapsed = time.perf_counter() - start
    stop.set()
    await poller
    await watcher.close()
    return clients * per_client / elapsed


async def measure(
    stack: Stack, clients: int, per_client: int, rounds: int = 1, acks_out: Path | None = None,
    ramp_up: float = 0.0,
) -> dict[str, Any]:
    """REST, then ``rounds`` times (WhatsApp, REST): each WhatsApp run sits between two
    REST runs, so a drift of the machine's speed during the run shows in both."""
    # Warm both paths (model caches, connections, action server).
    await run_rest(stack, 2, 3, "warm-rest")
    await run_whatsapp(stack, 2, 3, 99, [])
    acks: list[float] = []
    first_acks: list[float] = []
    n = clients * per_client

    async def timed(kind: str, run: Awaitable[float], cpu: list[dict[str, float]]) -> float:
        print(f"phase: {kind}", flush=True)
        meter = CpuMeter(stack)
        rate = await run
        cpu.append(meter.per_message_ms(n))
        return rate

    rest_cpu: list[dict[str, float]] = []
    whatsapp_cpu: list[dict[str, float]] = []
    rest_runs = [await timed("rest", run_rest(stack, clients, per_client, "rest0", ramp_up), rest_cpu)]
    whatsapp_runs: list[float] = []
    for r in range(rounds):
        whatsapp_runs.append(await timed(
            "whatsapp", run_whatsapp(stack, clients, per_client, r + 1, acks, ramp_up, first_acks), whatsapp_cpu))
        rest_runs.append(await timed("rest", run_rest(stack, clients, per_client, f"rest{r + 1}", ramp_up), rest_cpu))
    if acks_out is not None:
        await asyncio.to_thread(acks_out.write_text, json.dumps([round(a, 3) for a in acks]))
    rest_mean = statistics.mean(rest_runs)
    whatsapp_mean = statistics.mean(whatsapp_runs)
    # Each WhatsApp run against the REST runs just before and after it (a drift of the
    # machine's speed during the run shows in both), then the mean of those.
    round_ratios = [w / statistics.mean(rest_runs[i:i + 2]) for i, w in enumerate(whatsapp_runs)]
    sent = stack.outbox()
    failed = [m for m in sent if m.get("status") in ("failed", "rejected")]
    return {
        "clients": clients,
        "messages": n,
        "rounds": rounds,
        "rest_msgs_per_s": round(rest_mean, 2),
        "rest_runs_msgs_per_s": [round(r, 2) for r in rest_runs],
        "whatsapp_msgs_per_s": round(whatsapp_mean, 2),
        "whatsapp_runs_msgs_per_s": [round(w, 2) for w in whatsapp_runs],
        "ratio": round(statistics.mean(round_ratios), 3),
        "round_ratios": [round(r, 3) for r in round_ratios],
        "ratio_of_means": round(whatsapp_mean / rest_mean, 3),
        "ack_p50_ms": round(percentile(acks, 50), 2),
        "ack_p99_ms": round(percentile(acks, 99), 2),
        "ack_max_ms": round(max(acks), 2),
        "ack_first_p50_ms": round(percentile(first_acks, 50), 2),
        "ack_first_max_ms": round(max(first_acks), 2),
        "ramp_up_s": ramp_up,
        "cpu_ms_per_msg_rest": _mean_per_key(rest_cpu),
        "cpu_ms_per_msg_whatsapp": _mean_per_key(whatsapp_cpu),
        "graph_sends": len(sent),
        "graph_failures": len(failed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--messages-per-client", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1,
                        help="WhatsApp runs, each followed by a REST run (after a first REST run)")
    parser.add_argument("--ramp-up", type=float, default=1.0, metavar="SECONDS",
                        help="the clients start one after the other over this time (0: all at the same instant)")
    parser.add_argument("--model", default=str(PROJECT_ROOT / "models" / "salon.tar.gz"))
    parser.add_argument("--database-url", help="Salon's tables (default: SQLite in a temporary folder)")
    parser.add_argument("--redis-url", help="session state in Redis (default: in the SQL database)")
    parser.add_argument("--server-route", action="store_true",
                        help="Meta's webhook through the Rasa server's route instead of the companion's own "
                             "port (webhook_port, the production setting in deploy/credentials.production.yml)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the channel's I/O in the Rasa server's own process (io_process: false)")
    parser.add_argument("--channel-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a WhatsApp channel option for this run (credentials.yml), e.g. assistant_thread=false")
    parser.add_argument("--acks-out", type=Path, help="write every acknowledgement time (ms, in order) to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.clients < 1 or args.messages_per_client < 1:
        parser.error("--rounds, --clients and --messages-per-client take a whole number from 1")
    if not 0 <= args.ramp_up <= 60:
        parser.error("--ramp-up takes seconds from 0 to 60")
    options = dict(option.partition("=")[::2] for option in args.channel_option)
    if args.in_process and not args.server_route:
        parser.error("--in-process has no companion process to take the webhook: add --server-route")
    webhook_port = free_port()
    channel_options = {"webhook_port": str(webhook_port)} if not args.server_route else {}
    if args.in_process:
        channel_options["io_process"] = "false"
    with tempfile.TemporaryDirectory(prefix="salon-bench-", ignore_cleanup_errors=True) as tmp:
        config = StackConfig(
            model=Path(args.model), workdir=Path(tmp), emulator_port=0, rasa_port=0,
            actions_port=0,
            database_url=args.database_url, redis_url=args.redis_url,
            # Meta's default 80 msg/s would not bind here; keep the emulator out of the way.
            emulator_args=["--throughput-per-second", "10000"],
            channel_options={**channel_options, **options},
        )
        stack = Stack(config)
        with stack.running():
            try:
                figures = asyncio.run(measure(stack, args.clients, args.messages_per_client, args.rounds,
                                              args.acks_out, args.ramp_up))
            except Exception:
                print(stack.log_tail("rasa", 60), file=sys.stderr)
                raise
    figures["webhook_route"] = "server" if args.server_route else "companion port"
    print(f"WhatsApp webhook via:    {figures['webhook_route']}")
    print(f"REST channel (baseline): {figures['rest_msgs_per_s']} msg/s "
          f"(runs: {figures['rest_runs_msgs_per_s']})")
    print(f"WhatsApp channel:        {figures['whatsapp_msgs_per_s']} msg/s "
          f"(runs: {figures['whatsapp_runs_msgs_per_s']})")
    print(f"ratio:                   {figures['ratio']} (goal >= 0.95; per round: {figures['round_ratios']}; "
          f"mean over mean: {figures['ratio_of_means']})")
    print(f"webhook ack latency:     p50 {figures['ack_p50_ms']} ms, p99 {figures['ack_p99_ms']} ms "
          f"(goal p99 <= 25 ms), max {figures['ack_max_ms']} ms")
    print(f"  clients' first messages: p50 {figures['ack_first_p50_ms']} ms, max {figures['ack_first_max_ms']} ms "
          f"(clients starting over {figures['ramp_up_s']} s)")
    print(f"Graph API sends: {figures['graph_sends']}, failed: {figures['graph_failures']}")
    print(f"CPU per message (ms) REST:     {figures['cpu_ms_per_msg_rest']}")
    print(f"CPU per message (ms) WhatsApp: {figures['cpu_ms_per_msg_whatsapp']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
