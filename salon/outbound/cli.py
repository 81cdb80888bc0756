"""``salon outbound …``, ``salon outbound-worker`` and ``salon stock set``: the outbound
engine from the command line (same validation and queue as the HTTP API).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from salon.clock import clock_from_env
from salon.config import load_settings

__all__ = ["add_commands"]


def _url(args: argparse.Namespace) -> str:
    return getattr(args, "database_url", None) or load_settings().effective_database_url


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _run(coro: Callable[[], Coroutine[Any, Any, int]]) -> int:
    return asyncio.run(coro())


async def _queue(args: argparse.Namespace) -> Any:
    from salon.outbound.queue import OutboundQueue

    queue = OutboundQueue(_url(args))
    await queue.initialize()
    return queue


def _enqueue(args: argparse.Namespace) -> int:
    from salon.outbound.queue import InvalidRequest, parse_request

    body: dict[str, Any] = {"client": {}, "purpose": args.purpose}
    if args.wa_id:
        body["client"]["wa_id"] = args.wa_id
    if args.user_id:
        body["client"]["user_id"] = args.user_id
    content: dict[str, Any] = {}
    if args.text:
        content["text"] = args.text
    if args.button:
        content["buttons"] = args.button
    if content:
        body["content"] = content
    params: dict[str, str] = {}
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"salon outbound enqueue: --param {item!r} must be name=value", file=sys.stderr)
            return 2
        params[name] = value
    if params:
        body["params"] = params
    for name in ("language", "not_before", "deadline", "idempotency_key"):
        if getattr(args, name):
            body[name] = getattr(args, name)
    if args.trigger_intent:
        body["trigger_intent"] = {"name": args.trigger_intent}

    async def go() -> int:
        clock = clock_from_env()
        try:
            spec = parse_request(body, requested_by="cli", now=clock.now())
        except InvalidRequest as invalid:
            for problem in invalid.problems:
                print(f"salon outbound enqueue: {problem}", file=sys.stderr)
            return 2
        queue = await _queue(args)
        try:
            stored, created = await queue.enqueue(spec, clock.now())
        finally:
            await queue.close()
        _print({**stored.as_dict(), "created": created})
        return 0

    return _run(go)


def _show(args: argparse.Namespace) -> int:
    async def go() -> int:
        queue = await _queue(args)
        try:
            found = await queue.get(args.id) or await queue.by_key(args.id)
            if found is None:
                print(f"salon outbound show: no request {args.id!r}", file=sys.stderr)
                return 1
            _print({**found.as_dict(), "events": await queue.events(found.id)})
        finally:
            await queue.close()
        return 0

    return _run(go)


def _list(args: argparse.Namespace) -> int:
    async def go() -> int:
        queue = await _queue(args)
        try:
            rows = await queue.list(state=args.state, campaign_id=args.campaign, limit=args.limit)
        finally:
            await queue.close()
        for r in rows:
            who = r.client.wa_id or r.client.user_id
            detail = r.template or r.reason or ""
            print(f"{r.id}  {r.created_at:%Y-%m-%d %H:%M}  {who:<16} {r.purpose:<22} {r.state:<16} "
                  f"{r.delivery or '-':<10} {detail}")
        return 0

    return _run(go)


def _metrics(args: argparse.Namespace) -> int:
    async def go() -> int:
        queue = await _queue(args)
        try:
            _print(await queue.metrics())
        finally:
            await queue.close()
        return 0

    return _run(go)


def _scan(args: argparse.Namespace) -> int:
    from salon.outbound.reminders import AppointmentReminders
    from salon.outbound.restock import RestockBook

    async def go() -> int:
        queue = await _queue(args)
        clock = clock_from_env()
        pnid = os.environ.get("WA_PHONE_NUMBER_ID", "")
        try:
            reminders = await AppointmentReminders(queue, queue.engine, pnid).scan(clock.now())
            book = RestockBook(engine=queue.engine, queue=queue, phone_number_id=pnid)
            await book.initialize()
            restocks = await book.scan_stock(clock.now())
        finally:
            await queue.close()
        print(f"salon outbound scan: {reminders} reminder(s) and {restocks} restock alert(s) enqueued")
        return 0

    return _run(go)


def _worker(args: argparse.Namespace) -> int:
    from salon.outbound.worker import run_worker

    logging.basicConfig(level=os.environ.get("SALON_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if args.database_url:
        settings = type(settings)(var_dir=settings.var_dir, data_dir=settings.data_dir,
                                  database_url=args.database_url, redis_url=settings.redis_url)
    from salon.loops import run_fast

    stats = run_fast(run_worker(settings, clock_from_env(), scans=not args.no_scans))
    print(f"salon outbound worker: {stats}")
    return 0


def _api(args: argparse.Namespace) -> int:
    from aiohttp import web

    from salon.access.ratelimit import RateLimitConfigError, RateLimitSettings
    from salon.access.tokens import TokenBook, TokenConfigError
    from salon.outbound.api import DEFAULT_RATE, create_app
    from salon.outbound.queue import OutboundQueue

    logging.basicConfig(level=os.environ.get("SALON_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tokens = TokenBook.from_env()
    except TokenConfigError as exc:
        print(f"salon outbound api: {exc}", file=sys.stderr)
        return 2
    if not len(tokens):
        print("salon outbound api: SALON_API_TOKENS holds no token; every call would be refused",
              file=sys.stderr)
        return 2

    try:
        limit = RateLimitSettings.from_env("OUTBOUND_API", DEFAULT_RATE)
    except RateLimitConfigError as exc:
        print(f"salon outbound api: {exc}", file=sys.stderr)
        return 2

    async def make() -> web.Application:
        queue = OutboundQueue(_url(args))
        await queue.initialize()
        app = create_app(queue, tokens, clock_from_env(),
                         phone_number_id=os.environ.get("WA_PHONE_NUMBER_ID", ""), rate_limit=limit)

        async def close(_app: web.Application) -> None:
            await queue.close()

        # aiohttp 3.9 types its signals for aiosignal < 1.4, whose Signal took the callback type
        app.on_cleanup.append(close)  # type: ignore[arg-type]
        return app

    web.run_app(make(), host=args.host, port=args.port, access_log=None,
                print=lambda line: print(line, flush=True))
    return 0


def _stock_set(args: argparse.Namespace) -> int:
    from salon.outbound.restock import RestockBook, StockError

    async def go() -> int:
        clock = clock_from_env()
        book = RestockBook(_url(args), phone_number_id=os.environ.get("WA_PHONE_NUMBER_ID", ""))
        await book.initialize()
        try:
            alerts = await book.set_stock(args.sku, args.boutique, args.quantity, clock.now())
        except StockError as exc:
            print(f"salon stock set: {exc}", file=sys.stderr)
            return 2
        finally:
            await book.close()
        print(f"salon stock set: {args.sku} at {args.boutique} = {args.quantity}; "
              f"{alerts} restock alert(s) enqueued")
        return 0

    return _run(go)


def scan_after_seed(url: str, now: datetime) -> int:
    """Run the restock scan after a (re)seed: stock the seed brought back fires alerts."""
    from salon.outbound.restock import RestockBook

    async def go() -> int:
        book = RestockBook(url, phone_number_id=os.environ.get("WA_PHONE_NUMBER_ID", ""))
        await book.initialize()
        try:
            return await book.scan_stock(now)
        finally:
            await book.close()

    return asyncio.run(go())


def add_commands(commands: Any) -> None:
    """Register ``outbound``, ``outbound-worker`` and ``stock`` on the ``salon`` parser."""
    outbound = commands.add_parser("outbound", help="queue, inspect and dispatch bot-initiated messages")
    sub = outbound.add_subparsers(dest="outbound_command", required=True)

    def with_db(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL or var/salon.db)")
        return parser

    enqueue = with_db(sub.add_parser("enqueue", help="queue one message (decided when it is sent)"))
    enqueue.add_argument("--wa-id", help="the client's WhatsApp number (digits)")
    enqueue.add_argument("--user-id", help="the client's business-scoped user id")
    enqueue.add_argument("--purpose", required=True, help="order_update, appointment_reminder, …")
    enqueue.add_argument("--text", help="free-form text (sent while the window is open)")
    enqueue.add_argument("--button", action="append", help="a reply button title (up to 3)")
    enqueue.add_argument("--param", action="append", help="template parameter name=value")
    enqueue.add_argument("--language", help="template language (default: the client's)")
    enqueue.add_argument("--not-before", dest="not_before", help="ISO 8601 with a time zone")
    enqueue.add_argument("--deadline", help="ISO 8601 with a time zone")
    enqueue.add_argument("--key", dest="idempotency_key", help="idempotency key")
    enqueue.add_argument("--trigger-intent", help="ask Rasa for a bot-initiated turn with this intent")
    enqueue.set_defaults(handler=_enqueue)

    show = with_db(sub.add_parser("show", help="one request: state, delivery, history"))
    show.add_argument("id", help="request id or idempotency key")
    show.set_defaults(handler=_show)

    listing = with_db(sub.add_parser("list", help="recent requests"))
    listing.add_argument("--state")
    listing.add_argument("--campaign")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_list)

    with_db(sub.add_parser("metrics", help="counts and rates")).set_defaults(handler=_metrics)
    with_db(sub.add_parser("scan", help="enqueue due appointment reminders and restock alerts once")
            ).set_defaults(handler=_scan)

    for parser in (with_db(sub.add_parser("worker", help="run the dispatch worker")),
                   with_db(commands.add_parser("outbound-worker", help="run the outbound dispatch worker"))):
        parser.add_argument("--no-scans", action="store_true", help="do not scan for reminders and restocks")
        parser.set_defaults(handler=_worker)

    api = with_db(sub.add_parser("api", help="run the token-protected HTTP API"))
    api.add_argument("--host", default=os.environ.get("SALON_OUTBOUND_API_HOST", "127.0.0.1"))
    api.add_argument("--port", type=int, default=int(os.environ.get("SALON_OUTBOUND_API_PORT", "5070")))
    api.set_defaults(handler=_api)

    stock = commands.add_parser("stock", help="the maison's stock")
    stock_sub = stock.add_subparsers(dest="stock_command", required=True)
    set_ = with_db(stock_sub.add_parser("set", help="set a variant's stock in a boutique (fires restock alerts)"))
    set_.add_argument("sku")
    set_.add_argument("boutique")
    set_.add_argument("quantity", type=int)
    set_.set_defaults(handler=_stock_set)
