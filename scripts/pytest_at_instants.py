"""Run pytest once per frozen instant of tests/instants.py, with ``SALON_TEST_NOW`` set.

    python scripts/pytest_at_instants.py tests/test_bookings.py tests/test_when.py

Prints one line per instant (its name, the instant, pytest's closing line) and exits
non-zero when pytest failed at any of them. Every instant runs, whatever the one before
gave. Arguments are handed to pytest as they are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tests.instants import FROZEN_INSTANTS  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: pytest_at_instants.py PYTEST-ARGS...", file=sys.stderr)
        return 2
    failed: list[str] = []
    for name, moment in FROZEN_INSTANTS.items():
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv],
            cwd=PROJECT, env={**os.environ, "SALON_TEST_NOW": moment},
            capture_output=True, text=True, check=False,
        )
        lines = result.stdout.strip().splitlines()
        closing = lines[-1] if lines else f"no output (exit {result.returncode})"
        verdict = "ok  " if result.returncode == 0 else "FAIL"
        print(f"{verdict} {name:<20} {moment}  {closing}")
        if result.returncode != 0:
            failed.append(name)
            print(result.stdout[-6000:], result.stderr[-2000:], sep="\n")
    passed = len(FROZEN_INSTANTS) - len(failed)
    print(f"{passed} passed, {len(failed)} failed (instants)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
