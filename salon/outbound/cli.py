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


def plan_table(plan: dict[str, Any], market_names: dict[str, str]) -> str:
    """A plan (:func:`salon.outbound.api.plan_campaign`) as a table for a terminal."""
    total = plan["total"]
    lines = [
        f"Campaign {plan['campaign_id']}: {plan['clients']} client(s), {total['count']} message(s), "
        f"estimated {total['cost']['text']} (rate card of {plan['card']}, at {plan['at']})",
        "",
        f"{'market':<28} {'category':<28} {'messages':>9} {'estimated':>12}",
    ]
    for route in plan["routes"]:
        market = f"{route['market']} {market_names.get(route['market'], '')}".strip()
        lines.append(f"{market:<28} {route['category']:<28} {route['count']:>9} {route['cost']['text']:>12}")
    lines.append(f"{'total':<57} {total['count']:>9} {total['cost']['text']:>12}")
    if "budget" in plan:
        verdict = "within it" if plan["within_budget"] else "OVER IT: the campaign would pause"
        lines.append(f"budget {plan['budget']['text']}: {verdict}")
    if plan["refused"]:
        lines += ["", f"Nothing would go to {len(plan['refused'])} client(s):"]
        lines += [f"  {entry['client']:<24} {entry['reason']}" for entry in plan["refused"]]
    if plan["held_by_caps"]:
        lines += ["", f"Held back by a marketing cap for now ({len(plan['held_by_caps'])}; sent later):"]
        lines += [f"  {entry['client']:<24} until {entry['until']} ({entry['rule']})"
                  for entry in plan["held_by_caps"]]
    return "\n".join(lines)


def _plan(args: argparse.Namespace) -> int:
    from salon.outbound.api import parse_campaign, plan_campaign
    from salon.outbound.caps import CapsConfig, MarketingCaps
    from salon.outbound.queue import InvalidRequest
    from salon.outbound.worker import graph_config_from_env
    from salon.webhook.runtime import open_sender

    try:
        with open(args.file, encoding="utf-8") as handle:
            body = json.load(handle)
    except (OSError, ValueError) as exc:
        print(f"salon outbound plan: {args.file}: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        clock = clock_from_env()
        try:
            graph = graph_config_from_env()
        except ValueError as exc:
            print(f"salon outbound plan: the send-time guard needs the channel's settings "
                  f"(WA_ACCESS_TOKEN, WA_PHONE_NUMBER_ID; nothing is sent): {exc}", file=sys.stderr)
            return 2
        parts = await open_sender(_settings(args), graph, clock, many_clients=True)
        try:
            card = parts.sender.card
            try:
                campaign = parse_campaign(body, requested_by="cli", now=clock.now(),
                                          phone_number_id=os.environ.get("WA_PHONE_NUMBER_ID") or None,
                                          currency=card.currency)
            except InvalidRequest as invalid:
                for problem in invalid.problems:
                    print(f"salon outbound plan: {problem}", file=sys.stderr)
                return 2
            caps = MarketingCaps(parts.outbound.engine, CapsConfig.from_env())
            plan = await plan_campaign(campaign, parts.sender, clock.now(), caps=caps)
        finally:
            await parts.close()
        if args.json:
            _print(plan)
        else:
            print(plan_table(plan, {code: market.name for code, market in card.markets.items()}))
        return 0

    return _run(go)


def _campaign(args: argparse.Namespace) -> int:
    from salon.outbound.budgets import Budgets

    async def go() -> int:
        queue = await _queue(args)
        try:
            found = await Budgets(engine=queue.engine).get(args.id)
            if found is None:
                print(f"salon outbound campaign: no campaign {args.id!r}", file=sys.stderr)
                return 1
            _print({**found.as_dict(), "requests": await queue.campaign_counts(args.id)})
        finally:
            await queue.close()
        return 0

    return _run(go)


def _resume(args: argparse.Namespace) -> int:
    from salon.outbound.budgets import BudgetError, Budgets, parse_amount

    async def go() -> int:
        queue = await _queue(args)
        try:
            budgets = Budgets(engine=queue.engine)
            try:
                micros = parse_amount(args.budget, "--budget") if args.budget is not None else None
                resumed = await budgets.resume(args.id, clock_from_env().now(), budget_micros=micros)
            except BudgetError as invalid:
                for problem in invalid.problems:
                    print(f"salon outbound resume: {problem}", file=sys.stderr)
                return 2
            if resumed is None:
                print(f"salon outbound resume: no campaign {args.id!r}", file=sys.stderr)
                return 1
            _print({**resumed.as_dict(), "requests": await queue.campaign_counts(args.id)})
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


def _settings(args: argparse.Namespace) -> Any:
    """The settings, with ``--database-url`` when given."""
    settings = load_settings()
    if getattr(args, "database_url", None):
        settings = type(settings)(var_dir=settings.var_dir, data_dir=settings.data_dir,
                                  database_url=args.database_url, redis_url=settings.redis_url)
    return settings


def _worker(args: argparse.Namespace) -> int:
    from salon.outbound.worker import run_worker

    logging.basicConfig(level=os.environ.get("SALON_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(args)
    from salon.loops import run_fast

    stats = run_fast(run_worker(settings, clock_from_env(), scans=not args.no_scans))
    print(f"salon outbound worker: {stats}")
    return 0


def _api(args: argparse.Namespace) -> int:
    from aiohttp import web

    from salon.access.ratelimit import RateLimitConfigError, RateLimitSettings
    from salon.access.tokens import TokenBook, TokenConfigError
    from salon.outbound.api import DEFAULT_RATE, create_app
    from salon.outbound.caps import CapsConfig, MarketingCaps
    from salon.outbound.worker import graph_config_from_env
    from salon.webhook.runtime import open_sender

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

    from salon.metrics.access import MetricsConfigError
    from salon.metrics.registry import OUTBOUND_API
    from salon.metrics.serve import install_metrics

    async def make() -> web.Application:
        from salon.outbound.queue import OutboundQueue

        clock = clock_from_env()
        try:
            graph = graph_config_from_env()
        except ValueError as exc:
            # The guard needs the channel's settings to exist; without them, no plans.
            print(f"salon outbound api: campaign plans are off ({exc})", file=sys.stderr)
            queue = OutboundQueue(_url(args))
            await queue.initialize()
            app = create_app(queue, tokens, clock, phone_number_id=os.environ.get("WA_PHONE_NUMBER_ID", ""),
                             rate_limit=limit)
            closing: Callable[[], Coroutine[Any, Any, None]] = queue.close
        else:
            # The guard a plan asks what each client would get now; it sends nothing here.
            parts = await open_sender(_settings(args), graph, clock, many_clients=True)
            app = create_app(parts.outbound, tokens, clock,
                             phone_number_id=os.environ.get("WA_PHONE_NUMBER_ID", ""), rate_limit=limit,
                             planner=parts.sender, caps=MarketingCaps(parts.outbound.engine, CapsConfig.from_env()))
            closing = parts.close

        try:
            # GET /metrics for Prometheus (loopback, or SALON_METRICS_TOKEN).
            install_metrics(app, OUTBOUND_API)
        except MetricsConfigError as exc:
            raise SystemExit(f"salon outbound api: {exc}") from None

        async def close(_app: web.Application) -> None:
            await closing()

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

    plan = with_db(sub.add_parser("plan", help="what a campaign would send now and cost (nothing stored)"))
    plan.add_argument("file", help="a campaign body as POST /outbound/campaigns takes it (JSON)")
    plan.add_argument("--json", action="store_true", help="the plan as JSON rather than a table")
    plan.set_defaults(handler=_plan)

    campaign = with_db(sub.add_parser("campaign", help="a campaign: budget, spent, state, requests"))
    campaign.add_argument("id", help="the campaign id")
    campaign.set_defaults(handler=_campaign)

    resume = with_db(sub.add_parser("resume", help="let a paused campaign go on"))
    resume.add_argument("id", help="the campaign id")
    resume.add_argument("--budget", help="a new budget, e.g. 300.00 (the rate card's currency)")
    resume.set_defaults(handler=_resume)
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
