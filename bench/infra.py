"""Home-made infrastructure against the well-kept library it stands in for, in the same run.

Each comparison runs its contenders in alternating rounds (the order rotates every round)
and reports the median over ``--rounds``. CPU is ``time.process_time`` of this (the
client's) process, worker threads included; wall is ``time.perf_counter``. Everything
runs on the loop Salon's long-running processes use (:func:`salon.loops.run_fast`,
uvloop when installed; ``--loop asyncio`` for asyncio's own).

1. HTTP client. ``salon.whatsapp.http1.Http1Pool`` (as the Graph client drives it: the
   request head built once, then ``send(head, body)``) against the baselines
   ``aiohttp.ClientSession`` and ``httpx.AsyncClient`` (keep-alive, at most 64
   connections each, as the Graph client). Each POSTs ``--requests`` bodies of ~300 bytes
   (a Graph API text message, pre-encoded: transport only) with C in flight
   (``--concurrency``, default 1 and 32) to a minimal keep-alive HTTP/1.1 server in a
   separate process (an asyncio protocol on 127.0.0.1, port 0, answering a fixed Graph
   JSON body). Figures per C: ``http_c{C}_{client}_req_per_s`` and
   ``http_c{C}_{client}_cpu_us_per_req``, ratios ``http_c{C}_{aiohttp,httpx}_over_http1_cpu``
   and ``..._wall`` (CPU and wall time per request, baseline over Http1Pool: above 1
   means Http1Pool is cheaper). The unsuffixed ``http_{client}_cpu_us_per_req``,
   ``http_{aiohttp,httpx}_over_http1_cpu`` repeat the highest C (the outbound worker's
   shape: many sends in flight).
2. SQLite driver. ``make_async_engine(url, inline_sqlite=True)`` (the in-loop driver,
   ``salon.storage.sqlite_inline``, the channel's) against the baseline
   ``inline_sqlite=False`` (aiosqlite, SQLAlchemy's default async SQLite driver), each on
   its own temporary SQLite file, running the channel's acknowledgement statements one at
   a time, ``--ops`` of each: ``Inbox.claim_inbound`` of a new wamid and
   ``SqlSessionStore.record_inbound`` (200 clients in turn, advancing timestamps).
   Figures: ``sqlite_{claim,record}_{inline,aiosqlite}_us_per_op`` (wall),
   ``..._cpu_us_per_op`` and ``sqlite_{claim,record}_aiosqlite_over_inline_{wall,cpu}``.
3. Coalesced reads. 32 concurrent window reads (``--coalesce-rounds`` rounds) on a SQLite
   file holding 32 clients, with the outbound worker's engine (aiosqlite): through
   ``salon.storage.batching.Coalescer`` over ``SqlSessionStore.get_many`` (``batched``:
   ``gather_s=0``; ``sender``: exactly as ``GuardedSender`` builds it, ``gather_s=GATHER_S``)
   against the baseline ``individual``: each read its own ``SessionStore.get``. Figures:
   ``coalesce_{individual,batched,sender}_ms_per_round`` (wall, 32 reads) and
   ``..._cpu_us_per_read``, ratios ``coalesce_individual_over_batched_{wall,cpu}`` and
   ``coalesce_individual_over_sender_wall``.
4. Calls between processes. ``salon.webhook.rpc.RpcPeer`` (a socket pair to a spawned
   child serving an ``echo`` handler on the same kind of loop, as the companion process
   does) against the baseline ``multiprocessing.connection`` (``Pipe`` to a spawned child
   echoing with blocking ``recv``/``send``), driven from the asyncio loop both standard
   ways: ``loop.add_reader`` on the connection's fileno, and ``run_in_executor`` (one
   thread doing send + recv); the faster is the baseline, ``pipe_method`` says which.
   ``--round-trips`` sequential round trips of a ~2 KB payload (a webhook body and its
   signature). Figures: ``{rpc,pipe}_round_trips_per_s``, ``..._us_per_round_trip``,
   ``..._cpu_us_per_round_trip`` (this process), ``pipe_{add_reader,executor}_us_per_round_trip``
   and ``rpc_over_pipe_{wall,cpu}``.

Every server binds 127.0.0.1 port 0 or is a socket pair; children are always
terminated. The last line printed is one JSON object with all figures.

Options: ``--rounds`` (default 3), ``--requests`` (default 3000), ``--concurrency``
(default ``1,32``), ``--ops`` (default 1500), ``--coalesce-rounds`` (default 100),
``--round-trips`` (default 5000), ``--loop`` (``uvloop``/``asyncio``), ``--quick`` (a fast
smoke run: 1 round, a tenth of each count).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from salon.whatsapp.addressing import Recipient

UTC = timezone.utc
AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PN = "106540352242922"
CLIENTS = 200
SPAWN = multiprocessing.get_context("spawn")

GRAPH_TARGET = f"/v21.0/{PN}/messages"
GRAPH_HEADERS = {
    "Authorization": "Bearer EAAG" + "x" * 200,
    "Content-Type": "application/json",
}
GRAPH_BODY = json.dumps({
    "messaging_product": "whatsapp", **Recipient(wa_id="33612345678").fields(),
    "type": "text",
    "text": {"preview_url": False,
             "body": "Bonjour Claire, votre sac Saddle en cuir tan est de retour à la boutique "
                     "de Paris. Souhaitez-vous que nous le gardions pour vous jusqu'à samedi ?"},
}, ensure_ascii=False).encode()
GRAPH_ANSWER = json.dumps({
    "messaging_product": "whatsapp",
    "contacts": [{"input": "33612345678", "wa_id": "33612345678"}],
    "messages": [{"id": "wamid.HBgLMzM2MTIzNDU2NzgVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
                  "message_status": "accepted"}],
}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(GRAPH_ANSWER), GRAPH_ANSWER))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rotated(items: Sequence[Any], round_no: int) -> list[Any]:
    """The contenders in this round's order (rotating, so no one always goes first)."""
    shift = round_no % len(items)
    return [*items[shift:], *items[:shift]]


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one run of ``work``."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_loop(main: Any, loop_kind: str) -> Any:
    from salon.loops import run_fast

    return run_fast(main, use_uvloop=loop_kind == "uvloop")


# --------------------------------------------------------------------------- 1. HTTP


class _EchoServer(asyncio.Protocol):
    """Answers every request (head with Content-Length, then body) with ``RESPONSE``."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buffer = bytearray()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            at = head.find(b"content-length:")
            size = 0
            if at >= 0:
                stop = head.find(b"\r\n", at)
                size = int(head[at + 15: stop if stop >= 0 else None])
            total = end + 4 + size
            if len(buffer) < total:
                return
            del buffer[:total]
            self.transport.write(RESPONSE)


def _http_server(port_out: Any, loop_kind: str) -> None:
    """Child process: serve on 127.0.0.1, port 0; send the port to the parent."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_EchoServer, "127.0.0.1", 0, backlog=512)
        port_out.send(server.sockets[0].getsockname()[1])
        port_out.close()
        await asyncio.Event().wait()

    run_loop(serve(), loop_kind)


async def drive(send: Callable[[], Awaitable[None]], n: int, in_flight: int) -> None:
    """``n`` calls of ``send``, ``in_flight`` at a time."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    await asyncio.gather(*(worker() for _ in range(in_flight)))


async def http_client(name: str, port: int) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """(send one request, close) for the client ``name``."""
    origin = f"http://127.0.0.1:{port}"
    url = origin + GRAPH_TARGET
    body = GRAPH_BODY
    if name == "http1":
        from salon.whatsapp.http1 import Http1Pool

        pool = Http1Pool(origin, limit=64, timeout_s=10.0)
        head = pool.request_head("POST", GRAPH_TARGET, GRAPH_HEADERS)

        async def send_http1() -> None:
            reply = await pool.send(head, body)
            if reply.status != 200 or len(reply.body) != len(GRAPH_ANSWER):
                raise RuntimeError(f"http1: bad answer {reply.status}")

        return send_http1, pool.close
    if name == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                        timeout=aiohttp.ClientTimeout(total=10.0))

        async def send_aiohttp() -> None:
            async with session.post(url, data=body, headers=GRAPH_HEADERS) as response:
                data = await response.read()
                if response.status != 200 or len(data) != len(GRAPH_ANSWER):
                    raise RuntimeError(f"aiohttp: bad answer {response.status}")

        return send_aiohttp, session.close
    if name == "httpx":
        import httpx

        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            timeout=10.0, trust_env=False,
        )

        async def send_httpx() -> None:
            response = await client.post(url, content=body, headers=GRAPH_HEADERS)
            if response.status_code != 200 or len(response.content) != len(GRAPH_ANSWER):
                raise RuntimeError(f"httpx: bad answer {response.status_code}")

        return send_httpx, client.aclose
    raise ValueError(name)


HTTP_CLIENTS = ("http1", "aiohttp", "httpx")


async def bench_http(args: argparse.Namespace, port: int) -> dict[str, Any]:
    results: dict[str, Any] = {"http_requests": args.requests, "http_body_bytes": len(GRAPH_BODY)}
    for in_flight in args.concurrency:
        walls: dict[str, list[float]] = {name: [] for name in HTTP_CLIENTS}
        cpus: dict[str, list[float]] = {name: [] for name in HTTP_CLIENTS}
        for round_no in range(args.rounds):
            for name in rotated(HTTP_CLIENTS, round_no):
                send, close = await http_client(name, port)
                try:
                    await drive(send, max(4 * in_flight, 100), in_flight)  # connections open, warm
                    wall, cpu = await timed(partial(drive, send, args.requests, in_flight))
                finally:
                    await close()
                walls[name].append(wall / args.requests)
                cpus[name].append(cpu / args.requests)
        print(f"HTTP, {in_flight} in flight, {args.requests:,} POSTs of {len(GRAPH_BODY)} bytes "
              f"(median of {args.rounds}):")
        base_wall, base_cpu = median(walls["http1"]), median(cpus["http1"])
        for name in HTTP_CLIENTS:
            wall, cpu = median(walls[name]), median(cpus[name])
            prefix = f"http_c{in_flight}_{name}"
            results[f"{prefix}_req_per_s"] = round(1 / wall)
            results[f"{prefix}_cpu_us_per_req"] = round(cpu * 1e6, 1)
            note = "" if name == "http1" else (f"   ({cpu / base_cpu:.2f}x CPU, "
                                               f"{wall / base_wall:.2f}x wall of http1)")
            if name != "http1":
                results[f"http_c{in_flight}_{name}_over_http1_cpu"] = round(cpu / base_cpu, 2)
                results[f"http_c{in_flight}_{name}_over_http1_wall"] = round(wall / base_wall, 2)
            print(f"  {name:<8} {1 / wall:>9,.0f} req/s  {cpu * 1e6:>7.1f} CPU µs/req{note}")
    top = max(args.concurrency)
    for name in HTTP_CLIENTS:
        results[f"http_{name}_cpu_us_per_req"] = results[f"http_c{top}_{name}_cpu_us_per_req"]
        results[f"http_{name}_req_per_s"] = results[f"http_c{top}_{name}_req_per_s"]
    for name in ("aiohttp", "httpx"):
        results[f"http_{name}_over_http1_cpu"] = results[f"http_c{top}_{name}_over_http1_cpu"]
        results[f"http_{name}_over_http1_wall"] = results[f"http_c{top}_{name}_over_http1_wall"]
    results["http_headline_concurrency"] = top
    return results


def part_http(args: argparse.Namespace) -> dict[str, Any]:
    for variable in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(variable, None)  # loopback only, every client direct
    ours, theirs = SPAWN.Pipe(duplex=False)
    server = SPAWN.Process(target=_http_server, args=(theirs, args.loop), daemon=True)
    server.start()
    try:
        theirs.close()
        if not ours.poll(60):
            raise RuntimeError("the HTTP server process did not report its port")
        port = int(ours.recv())
        return run_loop(bench_http(args, port), args.loop)
    finally:
        stop(server)


def stop(process: Any) -> None:
    if process.is_alive():
        process.terminate()
    process.join(10)
    if process.is_alive():
        process.kill()
        process.join(5)


# --------------------------------------------------------------------------- 2. SQLite


def inbox_item(wamid: str, client: int) -> Any:
    from salon.webhook.inbox import InboxItem

    sender = f"336{client:08d}"
    return InboxItem(wamid=wamid, phone_number_id=PN, sender_id=sender, sent_at=AT, text="Bonjour",
                     metadata={"wa_id": sender}, state="pending", attempts=0)


def client_ref(client: int) -> Any:
    from salon.identity import ClientRef

    return ClientRef(PN, None, f"336{client:08d}")


DRIVERS = ("inline", "aiosqlite")


async def bench_sqlite(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from salon.clock import ManualClock
    from salon.storage.db import make_async_engine
    from salon.webhook.inbox import Inbox
    from salon.window.sql_store import SqlSessionStore

    refs = [client_ref(i) for i in range(CLIENTS)]
    counters = {driver: 0 for driver in DRIVERS}
    figures: dict[tuple[str, str, str], list[float]] = {}
    for round_no in range(args.rounds):
        for driver in rotated(DRIVERS, round_no):
            engine = make_async_engine(f"sqlite:///{folder / driver}.db", inline_sqlite=driver == "inline")
            try:
                inbox = Inbox(engine=engine)
                await inbox.initialize()
                sessions = SqlSessionStore(engine=engine, clock=ManualClock(AT + timedelta(days=60)))
                await sessions.initialize()

                async def claims(n: int, driver: str = driver, inbox: Any = inbox) -> None:
                    for _ in range(n):
                        counters[driver] += 1
                        k = counters[driver]
                        won = await inbox.claim_inbound([inbox_item(f"wamid.{driver}.{k}", k % CLIENTS)], AT)
                        if won != [True]:
                            raise RuntimeError(f"claim of a new wamid returned {won}")

                async def records(n: int, driver: str = driver, sessions: Any = sessions) -> None:
                    for _ in range(n):
                        counters[driver] += 1
                        k = counters[driver]
                        result = await sessions.record_inbound(
                            refs[k % CLIENTS], AT + timedelta(milliseconds=k), message_id=f"wamid.{driver}.{k}")
                        if not result.advanced:
                            raise RuntimeError("record_inbound did not advance")

                for what, work in (("claim", claims), ("record", records)):
                    await work(50)  # warm: connection open, statements compiled
                    wall, cpu = await timed(partial(work, args.ops))
                    figures.setdefault((what, driver, "wall"), []).append(wall / args.ops)
                    figures.setdefault((what, driver, "cpu"), []).append(cpu / args.ops)
            finally:
                await engine.dispose()
    results: dict[str, Any] = {"sqlite_ops": args.ops}
    print(f"SQLite, {args.ops:,} sequential operations each (median of {args.rounds}):")
    for what, label in (("claim", "Inbox.claim_inbound"), ("record", "SqlSessionStore.record_inbound")):
        for driver in DRIVERS:
            wall = median(figures[(what, driver, "wall")])
            cpu = median(figures[(what, driver, "cpu")])
            results[f"sqlite_{what}_{driver}_us_per_op"] = round(wall * 1e6, 1)
            results[f"sqlite_{what}_{driver}_cpu_us_per_op"] = round(cpu * 1e6, 1)
            print(f"  {label:<31} {driver:<9} {wall * 1e6:>8.1f} µs/op  {cpu * 1e6:>8.1f} CPU µs/op")
        wall_ratio = median(figures[(what, "aiosqlite", "wall")]) / median(figures[(what, "inline", "wall")])
        cpu_ratio = median(figures[(what, "aiosqlite", "cpu")]) / median(figures[(what, "inline", "cpu")])
        results[f"sqlite_{what}_aiosqlite_over_inline_wall"] = round(wall_ratio, 2)
        results[f"sqlite_{what}_aiosqlite_over_inline_cpu"] = round(cpu_ratio, 2)
        print(f"  {'':<31} aiosqlite/inline: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")
    return results


# --------------------------------------------------------------------------- 3. coalescing


COALESCE_MODES = ("individual", "batched", "sender")
READERS = 32


async def bench_coalesce(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from salon.clock import ManualClock
    from salon.guard.sender import GATHER_S, _ref_identity
    from salon.storage.batching import Coalescer
    from salon.storage.db import make_async_engine
    from salon.window.sql_store import SqlSessionStore

    refs = [client_ref(i) for i in range(READERS)]
    engine = make_async_engine(f"sqlite:///{folder / 'coalesce'}.db", inline_sqlite=False)
    figures: dict[tuple[str, str], list[float]] = {}
    try:
        store = SqlSessionStore(engine=engine, clock=ManualClock(AT + timedelta(days=1)))
        await store.initialize()
        for i, ref in enumerate(refs):
            await store.record_inbound(ref, AT + timedelta(minutes=i), message_id=f"wamid.seed.{i}")
        coalescers = {
            "batched": Coalescer(store.get_many, identity=_ref_identity, gather_s=0.0),
            "sender": Coalescer(store.get_many, identity=_ref_identity, gather_s=GATHER_S),
        }
        readers: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "individual": store.get, "batched": coalescers["batched"].get, "sender": coalescers["sender"].get,
        }

        async def rounds(mode: str, k: int) -> None:
            read = readers[mode]
            for _ in range(k):
                states = await asyncio.gather(*(read(ref) for ref in refs))
                if any(state is None for state in states):
                    raise RuntimeError(f"{mode}: a recorded client has no state")

        for round_no in range(args.rounds):
            for mode in rotated(COALESCE_MODES, round_no):
                await rounds(mode, 5)  # warm
                wall, cpu = await timed(partial(rounds, mode, args.coalesce_rounds))
                figures.setdefault((mode, "wall"), []).append(wall / args.coalesce_rounds)
                figures.setdefault((mode, "cpu"), []).append(cpu / args.coalesce_rounds / READERS)
        for name, coalescer in coalescers.items():
            if coalescer.rounds != coalescer.asks // READERS:
                raise RuntimeError(f"{name}: {coalescer.rounds} bulk reads for "
                                   f"{coalescer.asks // READERS} rounds of {READERS}")
    finally:
        await engine.dispose()
    results: dict[str, Any] = {"coalesce_rounds": args.coalesce_rounds, "coalesce_readers": READERS,
                               "coalesce_sender_gather_s": GATHER_S}
    print(f"Window reads, {READERS} concurrent x {args.coalesce_rounds} rounds, aiosqlite "
          f"(median of {args.rounds}):")
    labels = {"individual": "individual get", "batched": "Coalescer, gather_s=0",
              "sender": f"Coalescer, gather_s={GATHER_S:g} (sender)"}
    for mode in COALESCE_MODES:
        wall, cpu = median(figures[(mode, "wall")]), median(figures[(mode, "cpu")])
        results[f"coalesce_{mode}_ms_per_round"] = round(wall * 1e3, 3)
        results[f"coalesce_{mode}_cpu_us_per_read"] = round(cpu * 1e6, 1)
        print(f"  {labels[mode]:<34} {wall * 1e3:>8.2f} ms/round  {cpu * 1e6:>7.1f} CPU µs/read")
    wall_ratio = median(figures[("individual", "wall")]) / median(figures[("batched", "wall")])
    cpu_ratio = median(figures[("individual", "cpu")]) / median(figures[("batched", "cpu")])
    results["coalesce_individual_over_batched_wall"] = round(wall_ratio, 2)
    results["coalesce_individual_over_batched_cpu"] = round(cpu_ratio, 2)
    results["coalesce_individual_over_sender_wall"] = round(
        median(figures[("individual", "wall")]) / median(figures[("sender", "wall")]), 2)
    print(f"  individual/batched: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")
    return results


def part_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="salon-bench-infra-") as tmp:
        results = run_loop(bench_sqlite(args, Path(tmp)), args.loop)
        results.update(run_loop(bench_coalesce(args, Path(tmp)), args.loop))
    return results


# --------------------------------------------------------------------------- 4. rpc


def rpc_payload() -> tuple[bytes, str]:
    """A webhook body of ~2 KB and its signature, as the channel hands them over."""
    text = "Bonjour, je voudrais savoir si le sac Saddle en cuir tan est disponible. " * 30
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
                                        "metadata": {"phone_number_id": PN},
                                        "messages": [{"from": "33612345678", "id": "wamid.HBgL",
                                                      "type": "text", "text": {"body": text}}]}}]}]})
    return body.encode()[:2048], "sha256=" + "ab" * 32


def _rpc_echo(sock: socket.socket, loop_kind: str) -> None:
    """Child process: serve ``echo`` on the socket until the parent closes it."""
    from salon.webhook.rpc import RpcPeer

    async def echo(*args: Any) -> Any:
        return args

    async def serve() -> None:
        peer = await RpcPeer.connect(sock, {"echo": echo}, name="bench-parent")
        await peer.closed.wait()
        await peer.close()

    run_loop(serve(), loop_kind)


def _pipe_echo(conn: Any) -> None:
    """Child process: send back every object received, until the parent closes the pipe."""
    try:
        while True:
            conn.send(conn.recv())
    except (EOFError, OSError):
        pass


PIPE_METHODS = ("add_reader", "executor")
CALLS = ("rpc", *(f"pipe_{method}" for method in PIPE_METHODS))


async def bench_rpc(args: argparse.Namespace, rpc_sock: socket.socket, pipe: Any) -> dict[str, Any]:
    from salon.webhook.rpc import RpcPeer

    loop = asyncio.get_running_loop()
    body, signature = rpc_payload()
    peer = await RpcPeer.connect(rpc_sock, {}, name="bench-child")
    executor = ThreadPoolExecutor(1, thread_name_prefix="bench-pipe")

    async def via_rpc(n: int) -> None:
        for _ in range(n):
            reply = await peer.call("echo", body, signature, timeout=10)
            if reply[0] != body:
                raise RuntimeError("rpc: wrong echo")

    async def via_add_reader(n: int) -> None:
        waiter: asyncio.Future[Any] | None = None

        def readable() -> None:
            if waiter is not None and not waiter.done():
                waiter.set_result(pipe.recv())

        loop.add_reader(pipe.fileno(), readable)
        # uvloop makes a watched descriptor non-blocking; Connection.recv needs it blocking.
        os.set_blocking(pipe.fileno(), True)
        try:
            for _ in range(n):
                waiter = loop.create_future()
                pipe.send((body, signature))
                reply = await asyncio.wait_for(waiter, 10)
                if reply[0] != body:
                    raise RuntimeError("pipe: wrong echo")
        finally:
            loop.remove_reader(pipe.fileno())
            os.set_blocking(pipe.fileno(), True)

    def round_trip() -> Any:
        pipe.send((body, signature))
        return pipe.recv()

    async def via_executor(n: int) -> None:
        for _ in range(n):
            reply = await loop.run_in_executor(executor, round_trip)
            if reply[0] != body:
                raise RuntimeError("pipe: wrong echo")

    ways = {"rpc": via_rpc, "pipe_add_reader": via_add_reader, "pipe_executor": via_executor}
    figures: dict[tuple[str, str], list[float]] = {}
    try:
        for round_no in range(args.rounds):
            for name in rotated(CALLS, round_no):
                await ways[name](200)  # warm
                wall, cpu = await timed(partial(ways[name], args.round_trips))
                figures.setdefault((name, "wall"), []).append(wall / args.round_trips)
                figures.setdefault((name, "cpu"), []).append(cpu / args.round_trips)
    finally:
        executor.shutdown(wait=True)
        await peer.close()
    size = len(body) + len(signature)
    results: dict[str, Any] = {"rpc_round_trips": args.round_trips, "rpc_payload_bytes": size}
    print(f"Calls between processes, {args.round_trips:,} sequential round trips of {size:,} bytes "
          f"(median of {args.rounds}):")
    for name in CALLS:
        wall, cpu = median(figures[(name, "wall")]), median(figures[(name, "cpu")])
        print(f"  {name:<16} {1 / wall:>9,.0f} round trips/s  {wall * 1e6:>7.1f} µs  {cpu * 1e6:>7.1f} CPU µs")
        if name != "rpc":
            results[f"{name}_us_per_round_trip"] = round(wall * 1e6, 1)
            results[f"{name}_cpu_us_per_round_trip"] = round(cpu * 1e6, 1)
    best = min(PIPE_METHODS, key=lambda method: median(figures[(f"pipe_{method}", "wall")]))
    results["pipe_method"] = best
    for prefix, key in (("rpc", "rpc"), ("pipe", f"pipe_{best}")):
        wall, cpu = median(figures[(key, "wall")]), median(figures[(key, "cpu")])
        results[f"{prefix}_round_trips_per_s"] = round(1 / wall)
        results[f"{prefix}_us_per_round_trip"] = round(wall * 1e6, 1)
        results[f"{prefix}_cpu_us_per_round_trip"] = round(cpu * 1e6, 1)
    results["rpc_over_pipe_wall"] = round(results["rpc_us_per_round_trip"] / results["pipe_us_per_round_trip"], 2)
    results["rpc_over_pipe_cpu"] = round(results["rpc_cpu_us_per_round_trip"]
                                         / results["pipe_cpu_us_per_round_trip"], 2)
    print(f"  baseline pipe = {best}; rpc/pipe: {results['rpc_over_pipe_wall']:.2f}x wall, "
          f"{results['rpc_over_pipe_cpu']:.2f}x CPU")
    return results


def part_rpc(args: argparse.Namespace) -> dict[str, Any]:
    ours, theirs = socket.socketpair()
    parent_end, child_end = SPAWN.Pipe()
    children = [
        SPAWN.Process(target=_rpc_echo, args=(theirs, args.loop), daemon=True),
        SPAWN.Process(target=_pipe_echo, args=(child_end,), daemon=True),
    ]
    try:
        for child in children:
            child.start()
        theirs.close()
        child_end.close()
        return run_loop(bench_rpc(args, ours, parent_end), args.loop)
    finally:
        ours.close()
        parent_end.close()
        for child in children:
            if child.pid is not None:
                stop(child)


# --------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians reported")
    parser.add_argument("--requests", type=int, default=3000, help="HTTP: POSTs per client per round")
    parser.add_argument("--concurrency", default="1,32", help="HTTP: requests in flight, comma-separated")
    parser.add_argument("--ops", type=int, default=1500, help="SQLite: operations of each kind per round")
    parser.add_argument("--coalesce-rounds", type=int, default=100, help="rounds of 32 concurrent reads")
    parser.add_argument("--round-trips", type=int, default=5000, help="calls between processes per round")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, a tenth of each count")
    args = parser.parse_args(argv)
    args.concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    if args.quick:
        args.rounds = 1
        args.requests = max(100, args.requests // 10)
        args.ops = max(50, args.ops // 10)
        args.coalesce_rounds = max(5, args.coalesce_rounds // 10)
        args.round_trips = max(200, args.round_trips // 10)
    if args.loop == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            args.loop = "asyncio"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    began = time.perf_counter()
    figures: dict[str, Any] = {"loop": args.loop, "rounds": args.rounds}
    figures.update(part_http(args))
    figures.update(part_sqlite(args))
    figures.update(part_rpc(args))
    figures["bench_runtime_s"] = round(time.perf_counter() - began, 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
