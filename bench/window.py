"""Window engine benchmarks: numbers, not pass/fail.

Measures, each against a named naive baseline in the same run:

- ``window_state_per_s``: pure ``window_state`` calls (goal ≥ 200,000/s);
  baseline ``naive_dataclass``: a frozen dataclass re-validating and converting every
  input to UTC through ``require_aware`` + ``astimezone``.
- ``decide_sql_per_s`` / ``decide_redis_per_s``: read one client's session state from
  the store and decide (free-form / template / park) — 32 clients in flight, as a server
  handling concurrent webhooks would; baseline ``sequential``: one client at a time.
- ``plan_100k_s``: plan a send to 100,000 clients (read every state with Redis
  pipelining + decide each; goal ≤ 3 s); baseline ``one_round_trip_per_client``, timed
  on a sample and extrapolated to 100,000.

Redis: ``BENCH_REDIS_URL`` (default db 14 on the local server), under a unique key
prefix that is deleted afterwards. SQL: a SQLite file in a temporary folder. The last
line printed is one JSON object with all figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from salon.clock import require_aware, to_us
from salon.guard.decision import Consent, Content, Decision, decide
from salon.identity import ClientRef
from salon.templates.registry import TemplateRegistry
from salon.window.redis_store import RedisSessionStore
from salon.window.rules import DEFAULT_MARGIN, window_state
from salon.window.sql_store import SqlSessionStore
from salon.window.state import SessionState, SessionStore

UTC = timezone.utc
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=30)
PN = "106540352242922"
CONSENT = Consent(messaging=True)
CONTENT = Content(text="Your Saddle bag in tan is back in Paris. Shall I hold it for you?")
DEFAULT_BENCH_REDIS = "redis://127.0.0.1:6379/14"


# --------------------------------------------------------------------------- window


@dataclass(frozen=True)
class NaiveWindow:
    is_open: bool
    can_send_free_form: bool
    closes_at: datetime | None
    remaining: timedelta


def naive_window_state(
    last: datetime | None, now: datetime, margin: timedelta = DEFAULT_MARGIN
) -> NaiveWindow:
    now = require_aware(now, "now").astimezone(UTC)
    if last is None:
        return NaiveWindow(False, False, None, timedelta(0))
    last = require_aware(last, "last").astimezone(UTC)
    closes = last + timedelta(hours=24)
    return NaiveWindow(now < closes, now < closes - margin, closes, max(timedelta(0), closes - now))


def bench_window(n: int = 400_000) -> tuple[float, float]:
    inputs = [
        (T0 + timedelta(seconds=37 * i), T0 + timedelta(hours=i % 48, seconds=i))
        for i in range(1000)
    ]
    rounds = n // len(inputs)

    def run(fn: Callable[[datetime, datetime], object]) -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            for last, now in inputs:
                fn(last, now)
        return rounds * len(inputs) / (time.perf_counter() - start)

    return run(window_state), run(naive_window_state)


# --------------------------------------------------------------------------- stores


def make_refs(n: int) -> list[ClientRef]:
    return [ClientRef(PN, wa_id=f"33{600000000 + i}") for i in range(n)]


def last_inbound_for(i: int) -> datetime:
    # a third open, a third closing/closed recently, a third long closed
    return NOW - timedelta(hours=(1, 23.99, 40)[i % 3], seconds=i % 600)


async def seed_store(store: SessionStore, refs: Sequence[ClientRef]) -> None:
    for i, ref in enumerate(refs):
        await store.record_inbound(ref, last_inbound_for(i))


def decide_one(state: SessionState | None, registry: TemplateRegistry) -> Decision:
    return decide(
        state, "restock_alert", CONTENT, CONSENT, NOW, registry=registry,
        params={"first_name": "Claire", "product_name": "Saddle bag in tan",
                "boutique": "Paris"},
        language="fr_FR",
    )


async def rate(
    fn: Callable[[ClientRef], Awaitable[object]],
    refs: Sequence[ClientRef],
    seconds: float,
    concurrency: int,
) -> float:
    done = 0
    index = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = [refs[(index + k) % len(refs)] for k in range(concurrency)]
        index += concurrency
        if concurrency == 1:
            await fn(batch[0])
        else:
            await asyncio.gather(*(fn(ref) for ref in batch))
        done += len(batch)
    return done / (time.perf_counter() - start)


async def bench_decide(
    store: SessionStore, registry: TemplateRegistry, refs: Sequence[ClientRef], seconds: float
) -> tuple[float, float]:
    kinds: dict[str, int] = {}

    async def one(ref: ClientRef) -> None:
        decision = decide_one(await store.get(ref), registry)
        kinds[decision.kind] = kinds.get(decision.kind, 0) + 1

    concurrent = await rate(one, refs, seconds, concurrency=32)
    sequential = await rate(one, refs, seconds, concurrency=1)
    assert {"send_free_form", "send_template"} <= set(kinds), kinds
    return concurrent, sequential


async def seed_redis_raw(store: RedisSessionStore, refs: Sequence[ClientRef]) -> None:
    """Write 100k states in the store's own layout with pipelining (seeding shortcut)."""
    client = store.redis
    chunk = 5000
    for start in range(0, len(refs), chunk):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + chunk, len(refs))):
                ref = refs[i]
                key = ref.key
                t = str(to_us(last_inbound_for(i)))
                pipe.hset(
                    store.state_key(PN, key),
                    mapping={"pn": PN, "ck": key, "wa": ref.wa_id or "", "L": t, "S": t,
                             "N": "1", "ep": "organic"},
                )
                for alias in ref.aliases:
                    pipe.set(store.alias_key(PN, alias), key)
            await pipe.execute()


async def plan(store: RedisSessionStore, registry: TemplateRegistry,
               refs: Sequence[ClientRef], chunk: int = 2000) -> dict[str, int]:
    """Stream the states chunk by chunk; the next chunk's script runs in Redis while
    Python decides the current one."""
    counts: dict[str, int] = {}
    parts = [refs[i : i + chunk] for i in range(0, len(refs), chunk)]
    pending = asyncio.ensure_future(store.get_many(parts[0]))
    for k in range(len(parts)):
        states = await pending
        if k + 1 < len(parts):
            pending = asyncio.ensure_future(store.get_many(parts[k + 1]))
            await asyncio.sleep(0)  # let it send its request before we compute
        for state in states:
            kind = decide_one(state, registry).kind
            counts[kind] = counts.get(kind, 0) + 1
    return counts


async def main() -> dict[str, Any]:
    registry = TemplateRegistry.load_default()
    results: dict[str, Any] = {}

    ws, naive = bench_window()
    results["window_state_per_s"] = round(ws)
    results["window_state_baseline_naive_dataclass_per_s"] = round(naive)
    print(f"window_state:                    {ws:>12,.0f} /s   (naive_dataclass {naive:,.0f} /s)")

    refs = make_refs(2000)
    with tempfile.TemporaryDirectory() as tmp:
        sql = SqlSessionStore(f"sqlite:///{tmp}/bench.db")
        await sql.initialize()
        await seed_store(sql, refs)
        concurrent, sequential = await bench_decide(sql, registry, refs, seconds=3)
        await sql.close()
    results["decide_sql_per_s"] = round(concurrent)
    results["decide_sql_baseline_sequential_per_s"] = round(sequential)
    print(f"decide (SQLite, 32 in flight):   {concurrent:>12,.0f} /s   (sequential {sequential:,.0f} /s)")

    url = os.environ.get("BENCH_REDIS_URL", DEFAULT_BENCH_REDIS)
    redis_store = RedisSessionStore(url, prefix=f"salon-bench:{uuid.uuid4().hex[:8]}")
    try:
        await redis_store.initialize()
        await seed_store(redis_store, refs)
        concurrent, sequential = await bench_decide(redis_store, registry, refs, seconds=3)
        results["decide_redis_per_s"] = round(concurrent)
        results["decide_redis_baseline_sequential_per_s"] = round(sequential)
        print(f"decide (Redis, 32 in flight):    {concurrent:>12,.0f} /s   (sequential {sequential:,.0f} /s)")

        many = make_refs(100_000)
        await redis_store.clear()
        await seed_redis_raw(redis_store, many)
        start = time.perf_counter()
        counts = await plan(redis_store, registry, many)
        plan_s = time.perf_counter() - start
        assert sum(counts.values()) == 100_000, counts
        sample = many[:3000]
        start = time.perf_counter()
        for ref in sample:
            decide_one(await redis_store.get(ref), registry)
        naive_plan = (time.perf_counter() - start) * len(many) / len(sample)
        results["plan_100k_s"] = round(plan_s, 3)
        results["plan_100k_baseline_one_round_trip_per_client_s"] = round(naive_plan, 3)
        results["plan_100k_decisions"] = counts
        print(f"plan 100,000 clients (pipelined): {plan_s:>11.2f} s    "
              f"(one_round_trip_per_client ≈ {naive_plan:.2f} s, extrapolated from {len(sample):,})")
        print(f"plan decisions: {counts}")
    finally:
        await redis_store.clear()
        await redis_store.close()
    return results


if __name__ == "__main__":
    began = time.perf_counter()
    figures = asyncio.run(main())
    figures["bench_runtime_s"] = round(time.perf_counter() - began, 1)
    print(json.dumps(figures))
