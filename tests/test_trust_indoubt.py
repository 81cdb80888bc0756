"""H2: a send that Meta accepted but whose answer never came back (a read timeout, or the
worker killed right after Meta accepted) is never sent a second time: any evidence of
acceptance (a wamid, a status webhook, its ``biz_opaque_callback_data``) wins over the
guard's own "no answer" row, which means "in doubt", never "not sent"."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from salon.clock import ManualClock, SystemClock
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.guard.sent import outbound_table
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import QUEUED, SENT_FREE_FORM, OutboundQueue, origin_of, parse_request
from salon.outbound.worker import OutboundWorker, WorkerConfig
from salon.webhook.runtime import open_sender
from salon.whatsapp.graph import GraphConfig
from tests.outbound_support import PNID, GraphStandIn, outbound_stack

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"
PACING = PacingConfig(business_rate=1000, business_burst=1000, quiet=None)


def request(now: datetime, key: str) -> Any:
    return parse_request({"client": {"wa_id": CLAIRE}, "purpose": "order_update",
                          "content": {"text": "Your coat has left the atelier."},
                          "params": {"order_ref": "SOL-104233"}, "idempotency_key": key},
                         requested_by="system:test", now=now, default_phone_number_id=PNID)


async def trace_rows(queue: OutboundQueue, request_id: str, attempt: int) -> list[tuple[str, str, int | None]]:
    """The outbound rows of one attempt, in the order they were written."""
    origin = origin_of(request_id, attempt)
    async with queue.engine.connect() as conn:
        rows = (await conn.execute(select(outbound_table).order_by(outbound_table.c.id))).all()
    return [(r.kind, r.status, r.error_code) for r in rows
            if (r.payload or {}).get("origin") == origin
            or str((r.payload or {}).get("callback", "")).startswith(f"{origin}#")]


async def sent_once(stack: Any, graph: Any, request_id: str) -> None:
    """The request went out once: one message in Claire's phone, one send to the Graph
    API, and the request records it."""
    await stack.idle()
    box = await stack.delivered(CLAIRE)
    assert len(box) == 1, f"sent {len(box)} times"
    done = await stack.queue.get(request_id)
    assert done is not None and done.state == SENT_FREE_FORM and done.wamid == box[0]["wamid"]
    assert len(graph.sends) == 1


async def test_a_send_whose_answer_timed_out_after_meta_accepted_it_is_not_sent_again(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack, GraphStandIn(stack.emulator.base_url) as graph:
        parts = await open_sender(settings, GraphConfig(
            access_token=stack.emulator.config.access_token, phone_number_id=PNID, base_url=graph.url,
            max_attempts=1, timeout_s=0.5), clock, many_clients=True)
        try:
            lease = timedelta(seconds=5)
            worker = OutboundWorker(parts.outbound, parts.sender, clock, pacing=PACING,
                                    config=WorkerConfig(lease=lease))
            await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
            stored, _ = await stack.queue.enqueue(request(clock.now(), "indoubt-1"), clock.now())
            graph.withhold(1)  # Meta accepts it; its answer is lost on the way back
            assert await worker.run_once() == 1
            await stack.idle()
            await stack.channel.settle()
            # Exactly the order of the review: Meta's status webhook first, then the
            # guard's own row for the send that got no answer.
            assert await trace_rows(stack.queue, stored.id, 1) == [
                ("status_only", "read", None), ("free_form", "failed", -2)]
            waiting = await stack.queue.get(stored.id)
            assert waiting is not None and waiting.state == QUEUED and waiting.reason == "in_doubt"

            clock.advance(lease + timedelta(seconds=1))
            assert await worker.run_once() == 1
            await sent_once(stack, graph, stored.id)
        finally:
            await parts.close()


def start_worker(url: str, graph_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DATABASE_URL": url,
        "WA_ACCESS_TOKEN": EmulatorConfig().access_token, "WA_PHONE_NUMBER_ID": PNID,
        "WA_API_BASE_URL": graph_url, "SALON_OUTBOUND_LEASE": "1", "SALON_OUTBOUND_POLL": "0.1",
        "SALON_OUTBOUND_QUIET_HOURS": "off",
    }
    env.pop("SALON_CLOCK_FILE", None)
    handle = open(log, "ab")  # the child writes to it until it dies
    return subprocess.Popen([sys.executable, "-m", "salon.cli", "outbound-worker", "--no-scans"],
                            env=env, stdout=handle, stderr=handle, cwd=PROJECT_ROOT)


async def test_a_worker_killed_right_after_meta_accepted_is_not_sent_again(settings: Settings, tmp_path: Path) -> None:
    """R5's variant: the worker process dies (SIGKILL) between Meta's acceptance and its
    own record of the send; only the status webhook is left as evidence."""
    clock = SystemClock()
    async with outbound_stack(settings, clock) as stack, GraphStandIn(stack.emulator.base_url) as graph:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        stored, _ = await stack.queue.enqueue(request(clock.now(), "killed-1"), clock.now())
        proc = start_worker(settings.effective_database_url, graph.url, tmp_path / "worker.log")
        killed: list[int] = []
        loop, dead = asyncio.get_running_loop(), asyncio.Event()

        def kill(_body: dict[str, Any]) -> None:
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(proc.pid)
            loop.call_soon_threadsafe(dead.set)

        graph.on_accepted = kill
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(dead.wait(), 60)
            assert killed, (tmp_path / "worker.log").read_text()
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        graph.on_accepted = None
        await stack.idle()
        await stack.channel.settle()
        assert [row[0] for row in await trace_rows(stack.queue, stored.id, 1)] == ["status_only"]

        await asyncio.sleep(1.5)  # the dead worker's lease runs out
        recovered = OutboundWorker(stack.queue, stack.parts.sender, clock, pacing=PACING,
                                   config=WorkerConfig(lease=timedelta(seconds=1)))
        assert await recovered.run_once() == 1
        await sent_once(stack, graph, stored.id)


async def test_attempt_trace_prefers_any_evidence_of_acceptance(database_url: str) -> None:
    """The rows of one attempt in every order they can be written: the guard's "no
    answer" row never hides Meta's status webhook, and alone it is "in doubt"."""
    from salon.guard.sent import SentLog

    records = SentLog(database_url)
    await records.initialize()
    queue = OutboundQueue(engine=records.engine)
    await queue.initialize()
    try:
        async def no_answer(origin: str) -> None:
            await records.record_outbound(
                phone_number_id=PNID, recipient=CLAIRE, kind="free_form", status="failed", at=T0,
                payload={"message": {"type": "text", "text": {"body": "x"}}, "origin": origin},
                error={"code": -2, "title": "No answer from the Graph API"})

        async def webhook(origin: str, wamid: str, status: str = "sent",
                          error: dict[str, Any] | None = None) -> None:
            await records.apply_status(wamid=wamid, status=status, at=T0, phone_number_id=PNID,
                                       recipient=CLAIRE, error=error, callback=f"{origin}#free_form")

        # The review's order: Meta's status first, the guard's failed row after it.
        await webhook(origin_of("a" * 32, 1), "wamid.A")
        await no_answer(origin_of("a" * 32, 1))
        # The other order.
        await no_answer(origin_of("b" * 32, 1))
        await webhook(origin_of("b" * 32, 1), "wamid.B", "delivered")
        # Accepted, then failed asynchronously (131047): it reached Meta all the same.
        await no_answer(origin_of("c" * 32, 1))
        await webhook(origin_of("c" * 32, 1), "wamid.C", "failed", {"code": 131047, "title": "Re-engagement"})
        # No answer, and nothing else.
        await no_answer(origin_of("d" * 32, 1))
        for request_id, wamid, status in (("a", "wamid.A", "sent"), ("b", "wamid.B", "delivered"),
                                          ("c", "wamid.C", "failed")):
            trace = await queue.attempt_trace(request_id * 32, 1)
            assert trace is not None and trace["accepted"] and trace["wamid"] == wamid, trace
            assert trace["kind"] == "free_form" and trace["status"] == status
        trace = await queue.attempt_trace("d" * 32, 1)
        assert trace is not None and not trace["accepted"] and trace["status"] == "in_doubt"
    finally:
        await queue.close()
        await records.close()
