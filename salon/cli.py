"""The ``salon`` command line: operator tasks that run outside the Rasa servers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from salon import __version__
from salon.config import load_settings
from salon.outbound_cli import add_commands as add_outbound_commands


def _seed(args: argparse.Namespace) -> int:
    from salon.integrations.seed import SeedDataError, seed_database

    settings = load_settings()
    url = args.database_url or settings.effective_database_url
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    try:
        report = seed_database(url, data_dir)
    except SeedDataError as exc:
        print(f"salon seed: {exc}", file=sys.stderr)
        return 2
    print(f"salon seed: {report.summary()}")
    # Stock the seed brought back from 0 fires the waiting restock alerts.
    from salon.clock import clock_from_env
    from salon.outbound_cli import scan_after_seed

    alerts = scan_after_seed(url, clock_from_env().now())
    if alerts:
        print(f"salon seed: {alerts} restock alert(s) enqueued")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from salon.demo import run_demo

    return run_demo(args)


def _demo_check(args: argparse.Namespace) -> int:
    from salon.demo import run_check

    return run_check(args)


def build_parser() -> argparse.ArgumentParser:
    from salon.demo import add_check_arguments, add_demo_arguments

    parser = argparse.ArgumentParser(prog="salon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"salon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    seed = commands.add_parser(
        "seed",
        help="create the maison's tables and load data/maison/*.yml (idempotent)",
    )
    seed.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL or var/salon.db)")
    seed.add_argument("--data-dir", help="folder of the maison's YAML files (default: data/maison)")
    seed.set_defaults(handler=_seed)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
