"""Scale-out drill: a whole deployment on this machine, on the engines Rasa supports, under
load and failure.

Every process is started from ``deploy/processes.yml`` (``salon.dev.processes``): two
``rasa run`` replicas (each with its WhatsApp channel and companion webhook port) behind
HAProxy (``deploy/haproxy.cfg``), Meta's one callback URL; the action server; two outbound
workers sharing the queue by shard; the outbound API. They share a PostgreSQL tracker store
and Salon database (fresh ones, dropped afterwards), Rasa's Redis lock store and RabbitMQ
as Rasa's event broker. The Cloud API emulator plays Meta: it posts every webhook to the
balancer and retries on 5xx and timeouts, as Meta does.

1. Throughput with one replica, then with two (the same load, other clients): messages
   per second, and the CPU milliseconds each process spent per message.
2. The drill: 48 clients x 10 messages, interleaved (each client writes every 4-12 s,
   without waiting for answers: about 6 messages a second in all), their status webhooks, and a campaign of 2,000 outbound
   messages at the same time. When 40 % of the messages are out, one Rasa replica is
   SIGKILLed (its companion with it) and started again; a few seconds into the campaign,
   one worker is SIGKILLed and started again.

Each client asks the price of ten pieces, one per message, so every answer names the
message it answers ("The Halo ring is ..."). Checks, each a JSON key, all zero to pass:
``lost`` and ``duplicated`` (answers per message), ``out_of_order`` (answers that left
before the answer to an earlier message of the same client: the fewest that would have
to move), ``double_replays`` (messages the assistant handled twice: two user events with
one wamid in the tracker store), ``e131047`` (free-form refused outside the window),
``campaign_lost`` and ``campaign_duplicated``. Figures: ``messages_per_s_one_replica``,
``messages_per_s_two_replicas``, ``cpu_ms_per_message`` per process, ``reply_p50_ms`` and
``reply_p95_ms`` (inbound to its answer at the emulator, during the drill),
``recovery_s`` (from the kill until every message written before it was answered) and
``restart_s`` (the killed replica healthy again).

    .venv/bin/python bench/scale_drill.py            # the whole drill (~6 minutes)
    .venv/bin/python bench/scale_drill.py --keep /tmp/drill   # logs kept there
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import redis
from scratch import scratch_database
from sqlalchemy import text
from sqlalchemy.engine import make_url

from salon.config import PROJECT_ROOT
from salon.dev.processes import DESCRIPTION, Launcher, Replica, load
from salon.dev.stack import StackError, listens, quiet_ports
from salon.emulator.config import EmulatorConfig
from salon.integrations.synthetic import add_synthetic_clients
from salon.storage.db import make_sync_engine

PIECES = ("Aurore tote", "Mistral clutch", "Halo ring", "Méridien 38", "Horizon GMT", "Soleil belt",
          "Vesper briefcase", "Zéphyr wallet", "Astre bracelet", "Lune card holder")
"""Each message asks the price of one; its answer begins "The <piece> ..."."""
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_DB = 9
"""Salon's window state during the drill (flushed first); Rasa's lock store keeps to
database 1 under its own prefix, as deploy/endpoints.production.yml says."""
CAMPAIGN_PURPOSE = "order_shipped"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Sent:
    """A message a client wrote: which piece it asks about, when, and its wamid."""

    client: str
    piece: str
    index: int
    at: datetime
    wamid: str


@dataclass
class Drill:
    args: argparse.Namespace
    workdir: Path
    salon_db: str
    tracker_db: str
    ports: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    launcher: Launcher | None = None
    emulator: Any = None
    emulator_log: Any = None
    campaign_clients: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ set-up
    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['emulator']}"

    def env(self) -> dict[str, str]:
        """The deployment's environment, as deploy/salon.env.example names it."""
        tracker = make_url(self.tracker_db)
        p, s = self.ports, self.secrets
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")},
            "RASA_TELEMETRY_ENABLED": "false",
            "TQDM_DISABLE": "1",
            "DATABASE_URL": self.salon_db,
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "SALON_PRIVACY_SALT": s["salt"],
            "SALON_LOG_MASK_KEY": s["mask"],
            "SALON_CACHE_DIR": str(PROJECT_ROOT / "var" / "cache"),
            "WA_PHONE_NUMBER_ID": EmulatorConfig().phone_number_id,
            "WA_WABA_ID": EmulatorConfig().waba_id,
            "WA_ACCESS_TOKEN": s["access_token"],
            "WA_APP_SECRET": s["app_secret"],
            "WA_VERIFY_TOKEN": s["verify_token"],
            "WA_API_BASE_URL": self.emulator_url,
            "WA_API_VERSION": EmulatorConfig().api_version,
            "WA_AUTH_MODE": "bearer",
            "SALON_BIND_HOST": "127.0.0.1",
            "SALON_MODEL": str(self.args.model),
            "SALON_RASA_JWT_SECRET": s["jwt"],
            "SALON_IDENTITY_KEY": s["identity"],
            "SALON_ACTIONS_TOKEN": s["actions"],
            "SALON_ACTIONS_PORT": str(p["actions"]),
            "SALON_ACTION_ENDPOINT": f"http://127.0.0.1:{p['actions']}/webhook",
            "WA_WEBHOOK_HOST": "127.0.0.1",
            "SALON_PG_HOST": tracker.host or "127.0.0.1",
            "SALON_PG_PORT": str(tracker.port or 5432),
            "SALON_PG_DATABASE": tracker.database or "",
            "SALON_PG_USER": tracker.username or "postgres",
            "SALON_PG_PASSWORD": tracker.password or "",
            "SALON_REDIS_HOST": "127.0.0.1",
            "SALON_REDIS_PORT": "6379",
            "SALON_RABBITMQ_HOST": "127.0.0.1",
            "SALON_RABBITMQ_USER": "guest",
            "SALON_RABBITMQ_PASSWORD": "guest",
            "SALON_OUTBOUND_METRICS_HOST": "127.0.0.1",
            "SALON_OUTBOUND_METRICS_PORT": str(p["worker_metrics"]),
            "SALON_OUTBOUND_RATE": "80",
            "SALON_OUTBOUND_QUIET_HOURS": "off",
            "SALON_RASA_URL": f"http://127.0.0.1:{p['balancer_api']}",
            "SALON_OUTBOUND_API_PORT": str(p["outbound_api"]),
            "SALON_API_TOKENS": json.dumps([{"name": "drill", "token": s["api"], "scopes": ["outbound"]}]),
            "SALON_BALANCER_PORT": str(p["balancer"]),
            "SALON_BALANCER_API_PORT": str(p["balancer_api"]),
            "SALON_REPLICA_1_WEBHOOK": f"127.0.0.1:{p['webhook_1']}",
            "SALON_REPLICA_2_WEBHOOK": f"127.0.0.1:{p['webhook_2']}",
            "SALON_REPLICA_1_API": f"127.0.0.1:{p['rasa_1']}",
            "SALON_REPLICA_2_API": f"127.0.0.1:{p['rasa_2']}",
            # Each answer its own message, so every message's answer can be counted.
            "SALON_MERGE_REPLIES": "off",
        }
        return env

    def prepare(self) -> None:
        names = ["emulator", "actions", "rasa_1", "rasa_2", "webhook_1", "webhook_2", "balancer",
                 "balancer_api", "outbound_api", "worker_metrics", "worker_metrics_2"]
        self.ports = dict(zip(names, quiet_ports(len(names)), strict=True))
        # The workers listen on SALON_OUTBOUND_METRICS_PORT plus their shard: two in a row.
        base = self.ports["worker_metrics"]
        for candidate in range(base, base + 200):
            if all(_free(candidate + i) for i in range(2)):
                self.ports["worker_metrics"] = candidate
                break
        self.secrets = {name: secrets.token_urlsafe(24) for name in
                        ("salt", "mask", "access_token", "app_secret", "verify_token", "jwt", "identity",
                         "actions", "api")}
        redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()
        env = self.env()
        seeded = _run([str(Path(sys.executable).parent / "salon"), "seed", "--database-url", self.salon_db], env)
        if seeded.returncode != 0:
            raise StackError(f"salon seed failed:\n{seeded.stdout}{seeded.stderr}")
        self.campaign_clients = add_synthetic_clients(self.salon_db, self.args.campaign, start=500_000)

    def start_emulator(self) -> None:
        env = {**self.env(), "WA_WEBHOOK_URL": f"http://127.0.0.1:{self.ports['balancer']}/webhooks/whatsapp/webhook",
               "WA_THROUGHPUT_PER_SECOND": "400"}
        self.emulator_log = open(self.workdir / "emulator.log", "ab")  # closed in stop()
        self.emulator = subprocess.Popen(
            [sys.executable, "-m", "salon.emulator", "--host", "127.0.0.1", "--port", str(self.ports["emulator"])],
            cwd=PROJECT_ROOT, env=env, stdout=self.emulator_log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.emulator.poll() is not None:
                raise StackError("the emulator exited; see emulator.log")
            if listens(self.emulator.pid, self.ports["emulator"]):
                try:
                    if httpx.get(f"{self.emulator_url}/_emulator/health", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise StackError("the emulator did not start")

    def replicas(self) -> dict[str, Replica]:
        assert self.launcher is not None
        base = self.env()
        launcher = self.launcher
        out: dict[str, Replica] = {}
        for index in range(2):
            env = {**base, "SALON_RASA_PORT": str(self.ports[f"rasa_{index + 1}"]),
                   "WA_WEBHOOK_PORT": str(self.ports[f"webhook_{index + 1}"])}
            out[f"rasa-{index + 1}"] = launcher.replica("rasa", index, env)
        out["actions"] = launcher.replica("actions", 0, base)
        out["balancer"] = launcher.replica("balancer", 0, base)
        out["outbound-api"] = launcher.replica("outbound-api", 0, base)
        for index in range(2):
            out[f"worker-{index + 1}"] = launcher.replica("worker", index, base)
        return out

    def stop(self) -> None:
        if self.launcher is not None:
            self.launcher.stop()
        if self.emulator is not None and self.emulator.poll() is None:
            os.killpg(self.emulator.pid, signal.SIGTERM)
            self.emulator.wait(15)
        if self.emulator_log is not None:
            self.emulator_log.close()


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _run(argv: list[str], env: dict[str, str]) -> Any:
    return subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)


# ---------------------------------------------------------------------- load
class Load:
    """Clients writing through the emulator, and what the business answered them."""

    def __init__(self, drill: Drill, http: aiohttp.ClientSession) -> None:
        self.drill = drill
        self.http = http
        self.sent: list[Sent] = []
        self.milestones: list[tuple[int, asyncio.Event]] = []

    def after(self, count: int) -> asyncio.Event:
        """Set once ``count`` messages are out."""
        event = asyncio.Event()
        self.milestones.append((count, event))
        return event

    async def write(self, wa_id: str, index: int, piece: str) -> Sent:
        body = {"from": wa_id, "name": f"Drill Client {wa_id[-3:]}", "text": f"how much is the {piece}?"}
        for attempt in range(5):
            async with self.http.post(f"{self.drill.emulator_url}/_emulator/inbound", json=body) as r:
                if r.status == 200:
                    found = await r.json()
                    sent = Sent(wa_id, piece, index, _now(), found["wamid"])
                    self.sent.append(sent)
                    for count, event in self.milestones:
                        if len(self.sent) >= count:
                            event.set()
                    return sent
                problem = await r.text()
            await asyncio.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"the emulator refused a client's message: {problem}")

    async def outbox(self) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.drill.emulator_url}/_emulator/outbox") as r:
            r.raise_for_status()
            return list(await r.json())

    async def answered(self, clients: set[str]) -> int:
        return sum(1 for m in await self.outbox() if m["to"] in clients and _piece_of(m) is not None)

    async def wait_answers(self, clients: set[str], count: int, timeout: float) -> float:
        """Seconds until ``count`` answers reached ``clients`` (monotonic time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.answered(clients) >= count:
                return time.monotonic()
            await asyncio.sleep(0.5)
        raise RuntimeError(f"only {await self.answered(clients)} of {count} answers in {timeout:.0f} s")


def _piece_of(message: dict[str, Any]) -> str | None:
    body = message.get("body") or ""
    for piece in PIECES:
        if body.startswith(f"The {piece} "):
            return piece
    return None


def _clients(tag: int, count: int) -> list[str]:
    return [f"4479{tag:02d}{k:05d}" for k in range(count)]


async def throughput(drill: Drill, http: aiohttp.ClientSession, tag: int, clients: int, per_client: int
                     ) -> tuple[float, dict[str, float]]:
    """Messages per second answered when ``clients`` each write ``per_client`` messages at
    once (faster than they can be answered), and the CPU seconds each process spent."""
    assert drill.launcher is not None
    load = Load(drill, http)
    ids = _clients(tag, clients)
    cpu_before = drill.launcher.cpu_seconds()
    started = time.monotonic()

    async def client(k: int, wa_id: str) -> None:
        await asyncio.sleep(k * 0.05)
        for i in range(per_client):
            await load.write(wa_id, i, PIECES[(k + i) % len(PIECES)])
            await asyncio.sleep(1.0)

    await asyncio.gather(*(client(k, w) for k, w in enumerate(ids)))
    finished = await load.wait_answers(set(ids), clients * per_client, timeout=600)
    cpu_after = drill.launcher.cpu_seconds()
    return clients * per_client / (finished - started), _spent(cpu_before, cpu_after)


def _spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per process between two readings (a process started again in between
    counts from its start, what it spent before its kill being lost with it)."""
    return {label: used - before.get(label, 0.0) if used >= before.get(label, 0.0) else used
            for label, used in after.items()}


# ---------------------------------------------------------------------- the drill
@dataclass
class Events:
    rasa_killed_at: datetime | None = None
    rasa_healthy_after_s: float | None = None
    worker_healthy_after_s: float | None = None


async def drill_run(drill: Drill, http: aiohttp.ClientSession, replicas: dict[str, Replica]) -> dict[str, Any]:
    assert drill.launcher is not None
    launcher = drill.launcher
    args = drill.args
    load = Load(drill, http)
    ids = _clients(50, args.clients)
    total = args.clients * args.messages
    events = Events()
    kill_at = load.after(int(total * 0.4))

    async def client(k: int, wa_id: str) -> None:
        await asyncio.sleep(k * args.pace / args.clients)
        for i in range(args.messages):
            await load.write(wa_id, i, PIECES[(k + i) % len(PIECES)])
            # She writes again before or after the answer: 0.5 to 1.5 times the pace.
            await asyncio.sleep(args.pace * (0.5 + (k * 7 + i * 3) % 11 / 10))

    async def crash(label: str, timeout: float) -> float:
        """SIGKILL a replica, start it again 2 s later (as a supervisor would); seconds
        from the kill until it is healthy."""
        victim = replicas[label]
        print(f"drill: SIGKILL {label}: {await asyncio.to_thread(launcher.kill, victim)}", flush=True)
        await asyncio.sleep(2)
        launcher.start(victim)
        healthy_after = 2 + await asyncio.to_thread(launcher.wait_healthy, victim, timeout)
        print(f"drill: {label} healthy again after {healthy_after:.1f} s", flush=True)
        return healthy_after

    async def kill_rasa() -> None:
        await kill_at.wait()
        events.rasa_killed_at = _now()
        events.rasa_healthy_after_s = await crash("rasa-1", 600)

    async def campaign() -> None:
        body = {"campaign_id": "drill-campaign", "purpose": CAMPAIGN_PURPOSE,
                "content": {"text": "Your order has left the atelier."},
                "clients": [{"wa_id": w, "params": {"order_ref": f"SOL-{i:06d}"}}
                            for i, w in enumerate(drill.campaign_clients)]}
        headers = {"Authorization": f"Bearer {drill.secrets['api']}"}
        async with http.post(f"http://127.0.0.1:{drill.ports['outbound_api']}/outbound/campaigns",
                             json=body, headers=headers) as r:
            if r.status not in (200, 201):
                raise RuntimeError(f"the campaign was refused: {r.status} {await r.text()}")
        await asyncio.sleep(5)
        events.worker_healthy_after_s = await crash("worker-1", 120)

    cpu_before = launcher.cpu_seconds()
    await asyncio.gather(*(client(k, w) for k, w in enumerate(ids)), kill_rasa(), campaign())
    await load.wait_answers(set(ids), total, timeout=args.settle)
    await wait_campaign(drill, http, timeout=args.settle)
    await asyncio.sleep(3)  # anything sent twice has had time to show
    cpu_after = launcher.cpu_seconds()
    outbox = await load.outbox()
    return {"load": load, "events": events, "outbox": outbox, "ids": ids,
            "cpu": _spent(cpu_before, cpu_after)}


async def wait_campaign(drill: Drill, http: aiohttp.ClientSession, timeout: float) -> None:
    """Until every request of the campaign is in a final state."""
    engine = make_sync_engine(drill.salon_db)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                open_ = conn.execute(text(
                    "SELECT count(*) FROM outbound_requests WHERE campaign_id = 'drill-campaign' "
                    "AND state = 'queued'")).scalar_one()
            if open_ == 0:
                return
            await asyncio.sleep(1)
    finally:
        engine.dispose()
    raise RuntimeError("the campaign did not finish in time")


def checks(drill: Drill, run: dict[str, Any]) -> dict[str, Any]:
    load: Load = run["load"]
    outbox: list[dict[str, Any]] = run["outbox"]
    events: Events = run["events"]
    answers: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for message in outbox:
        piece = _piece_of(message)
        if piece is not None:
            answers[message["to"]].append((piece, message))
    lost = duplicated = out_of_order = 0
    latencies: list[float] = []
    written_by: dict[str, list[Sent]] = defaultdict(list)
    for sent in load.sent:
        written_by[sent.client].append(sent)
    last_before_kill = events.rasa_killed_at
    recovered_at = last_before_kill
    for client, written in written_by.items():
        got = answers.get(client, [])
        counts = Counter(piece for piece, _ in got)
        for sent in written:
            n = counts.get(sent.piece, 0)
            lost += n == 0
            duplicated += max(0, n - 1)
        order = {sent.piece: sent.index for sent in written}
        sequence = [order[piece] for piece, _ in got if piece in order]
        out_of_order += len(sequence) - _longest_increasing(sequence)
        first = {}
        for piece, message in got:
            first.setdefault(piece, message)
        for sent in written:
            message = first.get(sent.piece)
            if message is None or not message.get("sent_at"):
                continue
            at = datetime.fromisoformat(message["sent_at"])
            latencies.append((at - sent.at).total_seconds() * 1000)
            if last_before_kill is not None and sent.at < last_before_kill and recovered_at is not None:
                recovered_at = max(recovered_at, at)
    e131047 = sum(1 for m in outbox if str(m.get("error_code")) == "131047")
    campaign = Counter(m["to"] for m in outbox if m.get("type") == "template"
                       and m.get("template") and m["to"] in set(drill.campaign_clients))
    campaign_lost = sum(1 for w in drill.campaign_clients if campaign.get(w, 0) == 0)
    campaign_duplicated = sum(max(0, n - 1) for n in campaign.values())
    return {
        "lost": lost, "duplicated": duplicated, "out_of_order": out_of_order,
        "double_replays": double_replays(drill.tracker_db, {s.wamid for s in load.sent}),
        "e131047": e131047, "campaign_lost": campaign_lost, "campaign_duplicated": campaign_duplicated,
        "reply_p50_ms": round(statistics.median(latencies)) if latencies else None,
        "reply_p95_ms": round(_percentile(latencies, 95)) if latencies else None,
        "recovery_s": round((recovered_at - last_before_kill).total_seconds(), 1)
        if recovered_at is not None and last_before_kill is not None else None,
        "restart_s": round(events.rasa_healthy_after_s, 1) if events.rasa_healthy_after_s else None,
        "worker_restart_s": round(events.worker_healthy_after_s, 1) if events.worker_healthy_after_s else None,
    }


def double_replays(tracker_db: str, wamids: set[str]) -> int:
    """Messages with more than one user event in Rasa's tracker store."""
    engine = make_sync_engine(tracker_db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT data FROM events WHERE type_name = 'user'")).all()
    finally:
        engine.dispose()
    seen = Counter(json.loads(row[0]).get("message_id") for row in rows)
    return sum(1 for wamid, n in seen.items() if wamid in wamids and n > 1)


def _longest_increasing(values: list[int]) -> int:
    tails: list[int] = []
    for value in values:
        at = bisect.bisect_left(tails, value)
        if at == len(tails):
            tails.append(value)
        else:
            tails[at] = value
    return len(tails)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def per_message_ms(cpu: dict[str, float], messages: int) -> dict[str, float]:
    return {label: round(seconds * 1000 / messages, 2) for label, seconds in sorted(cpu.items())}


# ---------------------------------------------------------------------- main
@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    folder = Path(tempfile.mkdtemp(prefix="salon-drill-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def run(drill: Drill) -> dict[str, Any]:
    args = drill.args
    drill.launcher = Launcher(load(DESCRIPTION), drill.workdir)
    replicas = drill.replicas()
    launcher = drill.launcher
    drill.start_emulator()
    timeout = 900.0
    for label in ("actions", "rasa-1", "balancer", "outbound-api"):
        launcher.start(replicas[label])
    for label in ("actions", "rasa-1", "balancer", "outbound-api"):
        await asyncio.to_thread(launcher.wait_healthy, replicas[label], timeout)
    print("drill: one replica up", flush=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        # Warm-up: the first turn of a process loads what it keeps.
        await throughput(drill, http, 1, 2, 2)
        one, cpu_one = await throughput(drill, http, 2, args.throughput_clients, args.throughput_messages)
        print(f"drill: one replica, {one:.2f} messages/s", flush=True)
        launcher.start(replicas["rasa-2"])
        await asyncio.to_thread(launcher.wait_healthy, replicas["rasa-2"], timeout)
        await throughput(drill, http, 3, 2, 2)
        two, cpu_two = await throughput(drill, http, 4, args.throughput_clients, args.throughput_messages)
        print(f"drill: two replicas, {two:.2f} messages/s", flush=True)
        for label in ("worker-1", "worker-2"):
            launcher.start(replicas[label])
        for label in ("worker-1", "worker-2"):
            await asyncio.to_thread(launcher.wait_healthy, replicas[label], timeout)
        outcome = await drill_run(drill, http, replicas)
    found = checks(drill, outcome)
    (drill.workdir / "answers.json").write_text(json.dumps({
        "sent": [{"client": s.client, "piece": s.piece, "index": s.index, "at": s.at.isoformat(), "wamid": s.wamid}
                 for s in outcome["load"].sent],
        "answers": [{"client": m["to"], "piece": _piece_of(m), "sent_at": m.get("sent_at")}
                    for m in outcome["outbox"] if _piece_of(m) is not None],
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    messages = args.throughput_clients * args.throughput_messages
    campaign_cpu = {k: v for k, v in outcome["cpu"].items() if k.startswith("worker")}
    return {
        **{k: found[k] for k in ("lost", "duplicated", "out_of_order", "double_replays", "e131047",
                                 "campaign_lost", "campaign_duplicated")},
        "messages": args.clients * args.messages,
        "campaign": args.campaign,
        "messages_per_s_one_replica": round(one, 2),
        "messages_per_s_two_replicas": round(two, 2),
        "cpu_ms_per_message": {
            "one_replica": per_message_ms(cpu_one, messages),
            "two_replicas": per_message_ms(cpu_two, messages),
            "worker_per_campaign_message": per_message_ms(campaign_cpu, args.campaign),
        },
        **{k: found[k] for k in ("reply_p50_ms", "reply_p95_ms", "recovery_s", "restart_s", "worker_restart_s")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models" / "salon.tar.gz")
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--campaign", type=int, default=2000)
    parser.add_argument("--throughput-clients", type=int, default=48)
    parser.add_argument("--throughput-messages", type=int, default=2)
    parser.add_argument("--pace", type=float, default=8.0,
                        help="seconds between a client's messages, on average (she does not wait for answers)")
    parser.add_argument("--settle", type=float, default=420.0, help="seconds to wait for the last answers")
    parser.add_argument("--keep", type=Path, help="keep logs in this folder")
    args = parser.parse_args(argv)
    if not args.model.exists():
        print(f"no trained model at {args.model}: run `make train`", file=sys.stderr)
        return 2
    if shutil.which("haproxy") is None:
        print("haproxy is not installed: `make haproxy` (Debian's package)", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        workdir = stack.enter_context(_workdir(args.keep))
        salon_db = stack.enter_context(scratch_database(POSTGRES))
        tracker_db = stack.enter_context(scratch_database(POSTGRES))
        drill = Drill(args, workdir, salon_db, tracker_db)
        stack.callback(drill.stop)

        def terminate(*_: object) -> None:
            # A SIGTERM unwinds like Ctrl-C: waits end, every process is stopped and the
            # scratch databases are dropped.
            if drill.launcher is not None:
                drill.launcher.stopping.set()
            sys.exit(143)

        signal.signal(signal.SIGTERM, terminate)
        drill.prepare()
        result = asyncio.run(run(drill))
    checks_zero = all(result[k] == 0 for k in ("lost", "duplicated", "out_of_order", "double_replays",
                                                "e131047", "campaign_lost", "campaign_duplicated"))
    result["passed"] = checks_zero
    print(json.dumps(result, ensure_ascii=False))
    return 0 if checks_zero else 1


if __name__ == "__main__":
    sys.exit(main())
