"""What lets the outbound engine send many messages a second without cutting corners:
coalesced reads (each send still reads the window and consents after it asked), batched
outcome writes that keep the lease check, workers sharing the queue by client shard,
and tables created safely by processes that start together."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from salon.clock import ManualClock
from salon.config import Settings
from salon.consent.book import ConsentBook
from salon.consent.ledger import ConsentLedger
from salon.identity import ClientRef
from salon.integrations.synthetic import add_synthetic_clients
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import (
    SENT_FREE_FORM,
    SENT_TEMPLATE,
    SHARDS,
    OutboundQueue,
    RequestSpec,
    shard_of,
)
from salon.outbound.worker import OutboundWorker, WorkerConfig, parse_shard
from salon.storage.batching import Coalescer
from salon.storage.db import make_async_engine
from tests.outbound_support import outbound_stack
from tests.seeding import seed_maison

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
PNID = "100000000000001"


# --------------------------------------------------------------------------- coalescer


async def test_concurrent_asks_share_one_bulk_read_and_each_gets_its_own_answer() -> None:
    calls: list[list[int]] = []

    async def load(keys: Any) -> list[int]:
        calls.append(list(keys))
        await asyncio.sleep(0.01)
        return [k * 10 for k in keys]

    squares = Coalescer(load)
    answers = await asyncio.gather(*(squares.get(k) for k in [1, 2, 3, 2, 1]))
    assert answers == [10, 20, 30, 20, 10]
    assert calls == [[1, 2, 3]]  # one read, each key once
    # Nothing is kept: asking again reads again.
    assert await squares.get(1) == 10
    assert calls[-1] == [1] and squares.rounds == 2 and squares.asks == 6


async def test_asks_made_during_a_read_go_into_the_next_one_and_batches_are_bounded() -> None:
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def load(keys: Any) -> list[int]:
        calls.append(list(keys))
        if len(calls) == 1:
            await release.wait()
        return list(keys)

    values = Coalescer(load, max_batch=2)
    first = asyncio.ensure_future(asyncio.gather(*(values.get(k) for k in range(3))))
    await asyncio.sleep(0.01)
    late = asyncio.ensure_future(values.get(7))
    await asyncio.sleep(0.01)
    release.set()
    assert await first == [0, 1, 2] and await late == 7
    assert calls == [[0, 1], [2, 7]]


async def test_a_failed_read_fails_its_asks_only() -> None:
    attempts = 0

    async def load(keys: Any) -> list[str]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database went away")
        return [str(k) for k in keys]

    values = Coalescer(load)
    results = await asyncio.gather(values.get(1), values.get(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await values.get(3) == "3"


async def test_a_loader_returning_the_wrong_number_of_values_is_an_error() -> None:
    async def load(keys: Any) -> list[int]:
        return [1]

    values = Coalescer(load)
    results = await asyncio.gather(values.get("a"), values.get("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "returned 1 values for 2 keys" in str(r) for r in results)


async def test_gathering_waits_for_asks_that_arrive_shortly_after() -> None:
    calls: list[list[int]] = []

    async def load(keys: Any) -> list[int]:
        calls.append(list(keys))
        return list(keys)

    values = Coalescer(load, gather_s=0.05)

    async def ask_later(key: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return await values.get(key)

    assert await asyncio.gather(ask_later(1, 0), ask_later(2, 0.01), ask_later(3, 0.02)) == [1, 2, 3]
    assert calls == [[1, 2, 3]]
    with pytest.raises(ValueError):
        Coalescer(load, gather_s=1.0)


# --------------------------------------------------------------------------- consents in bulk


async def test_contexts_many_answers_exactly_what_the_one_client_questions_answer(database_url: str) -> None:
    seed_maison(database_url)
    book = ConsentBook(database_url)
    await book.initialize()
    try:
        ledger = ConsentLedger(engine=book.engine)
        known = ClientRef(PNID, wa_id="33600000001")
        by_bsuid = ClientRef(PNID, user_id="FR.9102837465019283746")
        stopped = ClientRef(PNID, wa_id="33600000002")
        keyword = ClientRef(PNID, wa_id="33600000003")
        stranger = ClientRef(PNID, wa_id="447700900123")
        stranger_stop = ClientRef(PNID, user_id="GB.4444444444")
        # WhatsApp stops and resumes, a STOP keyword, a stranger who opted in by keyword.
        await book.record_preference(stopped, "stop", T0)
        await book.record_preference(stopped, "resume", T0 + timedelta(hours=1))
        await book.record_preference(stopped, "stop", T0 + timedelta(hours=2))
        await ledger.record(["w:33600000003"], ["utility", "marketing"], False, source="whatsapp_keyword",
                            at=T0, actor="client", text_shown="STOP")
        await ledger.record(["w:447700900123"], ["utility"], True, source="whatsapp_keyword",
                            at=T0, actor="client", text_shown="START")
        await book.record_preference(stranger_stop, "stop", T0)
        refs = [known, by_bsuid, stopped, keyword, stranger, stranger_stop, known]
        expected = [(await book.profile(r), await book.consent_for(r)) for r in refs]
        assert await book.contexts_many(refs) == expected
        # The cases are really different from one another.
        consents = [c for _, c in expected]
        assert consents[2].marketing_stopped and not consents[0].marketing_stopped
        assert not consents[3].messaging and consents[4].messaging
        assert expected[1][0] is not None and expected[4][0] is None
        assert await book.contexts_many([]) == []
    finally:
        await book.close()


# --------------------------------------------------------------------------- queue


def _spec(n: int, wa_id: str | None = None) -> RequestSpec:
    return RequestSpec(client=ClientRef(PNID, wa_id=wa_id or f"3361{n:07d}"), purpose="order_update",
                       idempotency_key=f"scale:{n}", requested_by="system:test",
                       content={"text": f"Your order SOL-{n:06d} has left the atelier."},
                       params={"order_ref": f"SOL-{n:06d}"})


async def test_finish_many_records_only_what_the_worker_still_holds(database_url: str) -> None:
    queue = OutboundQueue(database_url)
    await queue.initialize()
    try:
        created = await queue.enqueue_many([_spec(n) for n in range(3)], T0)
        ids = [r.id for r, _ in created]
        assert len(await queue.claim("w1", T0, lease=timedelta(seconds=5))) == 3
        # w1 stalls; its lease on the first two runs out and w2 takes them.
        taken = await queue.claim("w2", T0 + timedelta(seconds=6), limit=2, lease=timedelta(seconds=5))
        assert {c.request.id for c in taken} <= set(ids) and len(taken) == 2
        outcomes = [(i, SENT_TEMPLATE, {"wamid": f"wamid.{n}", "template": "order_update_en"})
                    for n, i in enumerate(ids)]
        applied = await queue.finish_many(outcomes, T0 + timedelta(seconds=7), worker="w1")
        held_by_w1 = [i not in {c.request.id for c in taken} for i in ids]
        assert applied == held_by_w1
        for request_id, was_held in zip(ids, held_by_w1, strict=True):
            request = await queue.get(request_id)
            assert request is not None
            if was_held:
                assert request.state == SENT_TEMPLATE and request.template == "order_update_en"
                assert [e["state"] for e in await queue.events(request_id)] == ["queued", SENT_TEMPLATE]
            else:
                assert request.state == "queued"
        with pytest.raises(ValueError, match="not a final state"):
            await queue.finish_many([(ids[0], "queued", {})], T0, worker="w2")
        assert await queue.finish_many([], T0, worker="w2") == []
        # The same request listed twice is finished once.
        second = [c.request.id for c in taken]
        assert await queue.finish_many([(second[0], SENT_FREE_FORM, {}), (second[0], SENT_FREE_FORM, {})],
                                       T0 + timedelta(seconds=8), worker="w2") == [True, False]
    finally:
        await queue.close()


def test_shards_are_stable_per_client_and_spread() -> None:
    a = ClientRef(PNID, wa_id="33600000001")
    assert shard_of(a) == shard_of(ClientRef(PNID, wa_id="33600000001")) and 0 <= shard_of(a) < SHARDS
    spread = Counter(shard_of(ClientRef(PNID, wa_id=f"336{n:08d}")) % 2 for n in range(2000))
    assert 900 < spread[0] < 1100
    assert parse_shard("1/3") == (1, 3) and parse_shard(" 0/1 ") == (0, 1)
    for bad in ("3/3", "1", "a/b", "-1/2", ""):
        with pytest.raises(ValueError):
            parse_shard(bad)
    with pytest.raises(ValueError):
        WorkerConfig(shard=(2, 2))
    half = PacingConfig(business_rate=1000, business_burst=1000).share(2)
    assert (half.business_rate, half.business_burst) == (500, 500)
    assert PacingConfig(business_rate=80, business_burst=1).share(4).business_burst == 1


async def test_workers_of_a_shard_claim_disjoint_clients_and_cover_every_request(database_url: str) -> None:
    queue = OutboundQueue(database_url)
    await queue.initialize()
    try:
        # 60 clients, two requests each.
        await queue.enqueue_many([_spec(n, wa_id=f"3361{n % 60:07d}") for n in range(120)], T0)
        claims = await asyncio.gather(*(queue.claim(f"w{i}", T0, limit=500, shard=(i, 3)) for i in range(3)))
        ids = [c.request.id for batch in claims for c in batch]
        assert len(ids) == len(set(ids)) == 120
        owners: dict[str, set[int]] = {}
        for i, batch in enumerate(claims):
            for c in batch:
                owners.setdefault(c.request.client.wa_id or "", set()).add(i)
                assert shard_of(c.request.client) % 3 == i
        assert all(len(workers) == 1 for workers in owners.values())
        with pytest.raises(ValueError):
            await queue.claim("w", T0, shard=(3, 3))
    finally:
        await queue.close()


async def test_a_queue_created_before_sharding_gets_the_column_and_its_rows_go_to_worker_0(sqlite_url: str) -> None:
    engine = make_async_engine(sqlite_url)
    async with engine.begin() as conn:
        # The table as it was created before requests had a shard.
        await conn.execute(text(
            "CREATE TABLE outbound_requests (id VARCHAR(32) PRIMARY KEY, idempotency_key VARCHAR(200) NOT NULL "
            "UNIQUE, phone_number_id VARCHAR(64) NOT NULL, wa_id VARCHAR(32), user_id VARCHAR(64), purpose "
            "VARCHAR(64) NOT NULL, content JSON, params JSON NOT NULL, language VARCHAR(8), \"trigger\" JSON, "
            "requested_by VARCHAR(120) NOT NULL, campaign_id VARCHAR(64), state VARCHAR(24) NOT NULL, attempts "
            "INTEGER NOT NULL, created_us BIGINT NOT NULL, not_before_us BIGINT NOT NULL, deadline_us BIGINT, "
            "due_us BIGINT NOT NULL, lease_owner VARCHAR(64), lease_until_us BIGINT, claimed_us BIGINT, template "
            "VARCHAR(200), wamid VARCHAR(200), nudge_wamid VARCHAR(200), parked_id VARCHAR(64), error_code "
            "INTEGER, reason TEXT, hit_131047 INTEGER DEFAULT 0 NOT NULL, updated_us BIGINT NOT NULL)"))
        await conn.execute(text(
            "INSERT INTO outbound_requests (id, idempotency_key, phone_number_id, wa_id, purpose, params, state, "
            "attempts, created_us, not_before_us, due_us, requested_by, updated_us) VALUES ('old1', 'old-1', "
            f"'{PNID}', '33600000001', 'order_update', '{{}}', 'queued', 0, 1, 1, 1, 'system', 1)"))
    await engine.dispose()
    queue = OutboundQueue(sqlite_url)
    await queue.initialize()
    await queue.initialize()  # idempotent
    try:
        assert await queue.claim("w1", T0, shard=(1, 2)) == []
        assert [c.request.id for c in await queue.claim("w0", T0, shard=(0, 2))] == ["old1"]
    finally:
        await queue.close()


async def test_processes_starting_together_create_the_tables_once(postgres_url: str) -> None:
    queues = [OutboundQueue(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(q.initialize() for q in queues))
        created, _ = await queues[1].enqueue(_spec(1), T0)
        assert (await queues[3].get(created.id)) is not None
    finally:
        for q in queues:
            await q.close()


# --------------------------------------------------------------------------- two workers


async def test_two_shard_workers_send_a_campaign_once_each_and_each_client_stays_with_one(
    settings: Settings,
) -> None:
    clock = ManualClock(T0)
    pacing = PacingConfig(business_rate=1000, business_burst=1000, quiet=None)
    async with outbound_stack(settings, clock) as stack:
        workers = [OutboundWorker(stack.queue, stack.parts.sender, clock, pacing=pacing,
                                  config=WorkerConfig(lease=timedelta(seconds=5), shard=(i, 2))) for i in range(2)]
        assert workers[0].pacing.business_rate == 500
        # 20 clients of the book (utility opt-in) who never wrote: two order updates each.
        wa_ids = add_synthetic_clients(settings.database_url, 20)
        specs = [_spec(n, wa_id=wa_ids[n % 20]) for n in range(40)]
        await stack.queue.enqueue_many(specs, clock.now())
        handled = await asyncio.gather(*(w.run_once() for w in workers))
        expected = Counter(shard_of(s.client) % 2 for s in specs)
        assert list(handled) == [expected[0], expected[1]] and all(handled)
        sent = [m for m in await stack.outbox() if m["status"] != "rejected"]
        assert Counter(m["to"] for m in sent) == Counter({s.client.wa_id: 2 for s in specs})
        assert not [m for m in await stack.outbox() if m["error_code"] == 131056]
        states = Counter(r.state for r in await stack.queue.list(limit=100))
        assert states == Counter({SENT_TEMPLATE: 40})
        # The records of the sends were written in the workers' batches.
        traces = [await stack.queue.attempt_trace(r.id, 1) for r in await stack.queue.list(limit=100)]
        assert all(t is not None and t["kind"] == "template" for t in traces)
