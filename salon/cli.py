"""The ``salon`` command line: operator tasks that run outside the Rasa servers."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from salon import __version__
from salon.config import load_settings
from salon.logmask import install_log_masking
from salon.outbound.cli import add_commands as add_outbound_commands


def _seed(args: argparse.Namespace) -> int:
    from salon.integrations.seed import SeedDataError, seed_database

    settings = load_settings()
    url = args.database_url or settings.effective_database_url
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    from salon.clock import clock_from_env

    now = clock_from_env().now()
    today = now.astimezone(ZoneInfo(args.zone)).date() if args.today else None
    try:
        report = seed_database(url, data_dir, today=today)
    except SeedDataError as exc:
        print(f"salon seed: {exc}", file=sys.stderr)
        return 2
    dated = f", dated relative to {today.isoformat()}" if today else ""
    print(f"salon seed: {report.summary()}{dated}")
    # Stock the seed brought back from 0 fires the waiting restock alerts.
    from salon.outbound.cli import scan_after_seed

    alerts = scan_after_seed(url, now)
    if alerts:
        print(f"salon seed: {alerts} restock alert(s) enqueued")
    return 0


def _llm_audit_purge(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import timedelta

    from salon.clock import clock_from_env
    from salon.llm.audit import LlmAudit
    from salon.llm.config import load_llm_settings

    try:
        days = args.days or load_llm_settings().audit_retention_days
    except ValueError as exc:
        print(f"salon llm-audit-purge: {exc}", file=sys.stderr)
        return 2
    if days < 1:
        print("salon llm-audit-purge: --days must be at least 1", file=sys.stderr)
        return 2
    url = args.database_url or load_settings().effective_database_url

    async def purge() -> int:
        audit = LlmAudit(url, clock=clock_from_env(), retention=timedelta(days=days))
        try:
            await audit.initialize()
            return await audit.purge()
        finally:
            await audit.close()

    print(f"salon llm-audit-purge: {asyncio.run(purge())} audit rows older than {days} days deleted")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from salon.dev.demo import run_demo

    return run_demo(args)


def _demo_check(args: argparse.Namespace) -> int:
    from salon.dev.demo import run_check

    return run_check(args)


def _report(args: argparse.Namespace) -> int:
    from salon.clock import clock_from_env
    from salon.report import Period, PeriodError, parse_since, parse_until, parse_zone
    from salon.report.build import ReportError, generate, report_defaults
    from salon.report.plots import as_money

    zone, currency = report_defaults()
    now = clock_from_env().now()
    try:
        if args.zone:
            zone = parse_zone(args.zone)
        span = parse_since(args.since)
        until = parse_until(args.until, zone) if args.until else now
        period = Period.ending(until, span, zone)
    except PeriodError as exc:
        print(f"salon report: {exc}", file=sys.stderr)
        return 2
    url = args.database_url or load_settings().effective_database_url
    try:
        written = generate(url, period, Path(args.out), now=now, currency=currency)
    except ReportError as exc:
        print(f"salon report: {exc}", file=sys.stderr)
        return 1
    figures = written.figures
    if figures.empty:
        print(f"salon report: no traffic from {period.describe()}; written to {written.page}")
        return 0
    cost = as_money(figures.totals.cost, figures.currency) if figures.currency else "no price"
    print(f"salon report: {figures.totals.messages} messages, {cost}, {figures.totals.handoffs} handoffs "
          f"from {period.describe()}; written to {written.page}")
    return 0


def _gdpr(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from salon.privacy.retention import purge_retention
    from salon.privacy.rights import ClientNotFound, default_registry

    settings = load_settings()
    if args.action == "purge":
        removed = asyncio.run(purge_retention(settings, conversation_days=args.days))
        print("salon gdpr purge: " + ", ".join(f"{k} {v}" for k, v in removed.items()))
        return 0
    if not args.client:
        print(f"salon gdpr {args.action}: CLIENT is required", file=sys.stderr)
        return 2

    exported: list[str] = []

    async def run() -> int:
        registry = default_registry(settings)
        try:
            subject = await registry.resolve(args.client)
            if args.action == "export":
                exported.append(json.dumps(await registry.export(subject), ensure_ascii=False, indent=2,
                                           default=str))
                return 0
            removed = await registry.erase(subject, actor=f"cli:{args.actor}")
            print(f"salon gdpr erase: {sum(removed.values())} item(s) removed ("
                  + ", ".join(f"{k} {v}" for k, v in removed.items() if v) + ")")
            return 0
        except ClientNotFound as exc:
            print(f"salon gdpr {args.action}: {exc}", file=sys.stderr)
            return 1
        finally:
            await registry.close()

    code = asyncio.run(run())
    for text in exported:
        if args.output:
            Path(args.output).write_text(text + "\n")
        else:
            print(text)
    return code


def _gdpr_api(args: argparse.Namespace) -> int:
    from salon.access.tokens import TokenBook
    from salon.privacy.api import serve
    from salon.privacy.rights import default_registry

    serve(default_registry(load_settings()), TokenBook.from_env(), args.host, args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``salon`` parser: one subcommand per operator task, each with its handler."""
    from salon.dev.demo import add_check_arguments, add_demo_arguments

    parser = argparse.ArgumentParser(prog="salon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"salon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    seed = commands.add_parser(
        "seed",
        help="create the maison's tables and load data/maison/*.yml (idempotent)",
    )
    seed.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL or var/salon.db)")
    seed.add_argument("--data-dir", help="folder of the maison's YAML files (default: data/maison)")
    seed.add_argument(
        "--today", action="store_true",
        help="date the records relative to today by the clock (SALON_CLOCK_FILE or the real "
             "time): moved by whole weeks so the day they describe (maison.yml dated_on) falls "
             "in the week up to today (default: as written)",
    )
    seed.add_argument("--zone", default="Europe/Paris",
                      help="the time zone 'today' is read in (default: Europe/Paris)")
    seed.set_defaults(handler=_seed)

    purge = commands.add_parser(
        "llm-audit-purge",
        help="delete styling fallback audit rows older than the retention (SALON_LLM_AUDIT_RETENTION_DAYS)",
    )
    purge.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL or var/salon.db)")
    purge.add_argument("--days", type=int, help="retention in days (default: SALON_LLM_AUDIT_RETENTION_DAYS or 90)")
    purge.set_defaults(handler=_llm_audit_purge)

    demo = commands.add_parser(
        "demo",
        help="run the assistant on the WhatsApp emulator and chat as a client on the phone page",
    )
    add_demo_arguments(demo)
    demo.set_defaults(handler=_demo)

    check = commands.add_parser(
        "demo-check",
        help="play the demo's story headless against a fresh stack; non-zero if a step fails",
    )
    add_check_arguments(check)
    check.set_defaults(handler=_demo_check)
    add_outbound_commands(commands)

    report = commands.add_parser(
        "report",
        help="pictures and tables of what WhatsApp did and cost over a period: PNGs and one HTML page",
    )
    report.add_argument("--since", default="30d",
                        help="how far back from --until: a duration such as 7d, 30d, 12h or 2w (default: 30d)")
    report.add_argument("--until",
                        help="the period's end: an ISO instant with its offset (2026-12-01T09:00Z) or a date "
                             "(the midnight that starts it); default: now")
    report.add_argument("--out", required=True, help="the folder to write the report into (made if missing)")
    report.add_argument("--zone",
                        help="the time zone of the report's days (default: the WhatsApp Business Account's, "
                             "billing_time_zone in data/pricing/markets.yml)")
    report.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL or var/salon.db)")
    report.set_defaults(handler=_report)

    gdpr = commands.add_parser(
        "gdpr",
        help="export or erase everything held about a client (GDPR/CCPA); purge old conversations",
    )
    gdpr.add_argument("action", choices=["export", "erase", "purge"])
    gdpr.add_argument("client", nargs="?", help="maison client id, phone number or BSUID")
    gdpr.add_argument("--output", help="export: write the JSON to this file instead of stdout")
    gdpr.add_argument("--actor", default=os.environ.get("USER", "operator"),
                      help="erase: who asked (kept in the erasure record)")
    gdpr.add_argument("--days", type=int,
                      help="purge: conversation retention in days (default: SALON_CONVERSATION_RETENTION_DAYS or 365)")
    gdpr.set_defaults(handler=_gdpr)

    api = commands.add_parser("gdpr-api", help="serve the token-protected GDPR API (scope gdpr)")
    api.add_argument("--host", help="default: SALON_GDPR_API_HOST or 127.0.0.1")
    api.add_argument("--port", type=int, help="default: SALON_GDPR_API_PORT or 5071")
    api.set_defaults(handler=_gdpr_api)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``salon`` command with log masking on; its exit status."""
    args = build_parser().parse_args(argv)
    # Every salon command (the outbound worker and APIs, the GDPR API, seeding ...) logs
    # without personal data, whatever its handlers.
    install_log_masking()
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
