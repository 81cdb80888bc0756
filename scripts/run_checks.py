"""``make test``: every check of the project, each to the end, then one verdict.

Each check is a target of the Makefile (``make pytest``, ``make e2e`` …, so each can also
be run alone). This runner:

- runs them two at a time (``--jobs``): the model's training beside pytest first, then the
  checks that need the model as soon as it is trained, longest first;
- runs every check even when another failed; a check that needs the model is skipped,
  with the reason, only when the training failed;
- writes each check's whole output to ``results/checks/<name>.log`` and prints one line
  per check as it ends, then a summary (one line per check: passed / failed / skipped
  and why, with its log), the end of each failed check's log, and a closing line in
  pytest's form (``11 passed, 1 failed in 642.1s``); exits 1 when anything failed;
- holds the default ports of ``make demo``/``make run`` (5005, 5055, 5900 …) for the
  whole run with a responder that answers 503, and fails the run if anything knocked on
  them: no check may rely on a default port, so the checks pass beside a running demo
  (a port a demo already holds is left to it);
- fails a check that leaves a process running (found by a marker in the environment
  every process it starts inherits) and stops those processes.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TextIO

PROJECT = Path(__file__).resolve().parent.parent
LOG_DIR = PROJECT / "results" / "checks"
#: The ports ``make demo`` / ``make run`` and the services' CLIs take by default: the
#: emulator, its follow-up helper, rasa, the companion's webhook, actions, outbound, GDPR.
DEFAULT_PORTS = (5900, 5901, 5005, 5006, 5055, 5070, 5071)
MARKER = "SALON_CHECK_RUN"
TAIL_LINES = 60


@dataclass
class Check:
    name: str
    target: str
    """The Makefile target that runs it."""
    needs_model: bool = False
    #: how the check's own result lines look in its log: the summary shows the last match
    #: of each (its group, when the pattern has one)
    details: tuple[str, ...] = (r"(?m)^.*\b\d+ (?:passed|failed)\b.*$|All checks passed|Found \d+ errors?",)
    timeout_s: float = 25 * 60
    command: list[str] | None = None
    """What runs; default ``make <target>``."""

    @property
    def argv(self) -> list[str]:
        return self.command or ["make", "--no-print-directory", self.target]


#: In the order they start, when a slot is free: the longest first (pytest beside the
#: training, then the longest of those that need the model), so that the last to end are
#: short ones.
CHECKS: tuple[Check, ...] = (
    Check("train", "train", details=(r"model is trained|trained and saved|Nothing to be done",)),
    Check("pytest", "pytest"),
    Check("e2e", "e2e", needs_model=True),
    Check("rasa-test", "rasa-test", needs_model=True,
          details=(r"CONVERSATION level:[^\n]*\n[^\n]*?(Correct:\s+\d+ / \d+)",
                   r"weighted F1 [\d.]+", r"(?<=by language: )[^\n]+")),
    Check("bookings-at-instants", "bookings-at-instants",
          details=(r"\d+ passed, \d+ failed \(instants\)",)),
    Check("smoke", "smoke", needs_model=True, details=(r"smoke: \d+ passed, \d+ failed.*",)),
    Check("demo-check", "demo-check", needs_model=True,
          details=(r"all steps passed in [\d.]+ s|FAILED in [\d.]+ s",)),
    Check("validate", "validate", details=(r"consistent \(.*\)",)),
    Check("lint", "lint"),
)


@dataclass
class Outcome:
    check: Check
    verdict: str = "pending"  # passed | failed | skipped
    reason: str = ""
    seconds: float = 0.0
    log: Path | None = None
    detail: str = ""


@dataclass
class Running:
    check: Check
    process: subprocess.Popen[bytes]
    started: float
    marker: str
    log: Path
    handle: IO[bytes]


# ------------------------------------------------------------------------- the held ports


class PortGuard:
    """Listens on the default ports for the whole run; every request gets a 503 and is
    counted: a check that knocks there relies on a default port."""

    def __init__(self, ports: Iterable[int]) -> None:
        self.knocks: dict[int, int] = {}
        self.held: list[int] = []
        self.taken: list[int] = []
        self._servers: list[ThreadingHTTPServer] = []
        for port in ports:
            try:
                server = ThreadingHTTPServer(("127.0.0.1", port), self._handler(port))
            except OSError:
                self.taken.append(port)  # a running demo, most likely: it holds it for us
                continue
            server.daemon_threads = True
            self._servers.append(server)
            self.held.append(port)
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def _handler(self, port: int) -> type[BaseHTTPRequestHandler]:
        guard = self

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                guard.knocks[port] = guard.knocks.get(port, 0) + 1
                body = b"held by make test: no check may use a default port\n"
                self.send_response(503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _refuse

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


# ------------------------------------------------------------------------- processes


def _marked_processes(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose environment carries ``marker``."""
    found = []
    needle = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry.name), command.strip()[:160]))
    return found


def _stop_marked(marker: str) -> list[tuple[int, str]]:
    """Stop what is left of a check (SIGTERM, then SIGKILL); what was found."""
    left = _marked_processes(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, _ in _marked_processes(marker):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while _marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
    return left


def _start(check: Check, env: dict[str, str], run_id: str, log_dir: Path) -> Running:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{check.name}.log"
    handle = open(log, "wb")  # closed when the check ends
    marker = f"{run_id}:{check.name}"
    process = subprocess.Popen(
        check.argv, cwd=PROJECT,
        env={**env, MARKER: marker}, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Running(check, process, time.monotonic(), marker, log, handle)


def _detail(check: Check, log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    shown = []
    for pattern in check.details:
        found = re.findall(pattern, text)
        if found:
            shown.append(" ".join(found[-1].split()))
    return "; ".join(shown)


def tail(log: Path, lines: int = TAIL_LINES) -> list[str]:
    """The end of a log worth reading: from pytest's "short test summary info" when there
    is one, else the last lines; a progress bar's redraws reduced to their last state."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    marks = [i for i, row in enumerate(rows) if "short test summary info" in row]
    if marks and len(rows) - marks[-1] <= lines:
        rows = rows[marks[-1]:]
    return rows[-lines:]


# ------------------------------------------------------------------------- the run


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:d}:{secs:02d}"


def _shown(path: Path) -> str:
    return str(path.relative_to(PROJECT)) if path.is_relative_to(PROJECT) else str(path)


def run(checks: tuple[Check, ...], jobs: int = 2, out: TextIO = sys.stdout,
        log_dir: Path = LOG_DIR, ports: Iterable[int] = DEFAULT_PORTS) -> int:
    """Run ``checks`` (see the module's docstring); 0 when every one passed."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    run_id = uuid.uuid4().hex[:12]
    # COLUMNS: pytest's short summary keeps each failure's message on its line.
    env = {**os.environ, "TQDM_DISABLE": "1", "RASA_TELEMETRY_ENABLED": "false", "COLUMNS": "200"}
    guard = PortGuard(ports)
    if guard.taken:
        say(f"make test: ports {guard.taken} are already in use (a running demo?): "
            "the checks run beside it")
    say(f"make test: {len(checks)} checks, {jobs} at a time; each log in {_shown(log_dir)}/")
    began = time.monotonic()
    outcomes = {check.name: Outcome(check) for check in checks}
    waiting = list(checks)
    running: list[Running] = []
    train_state = "pending" if any(c.name == "train" for c in checks) else "passed"

    def finish(item: Running, verdict: str, reason: str = "") -> None:
        item.handle.close()
        outcome = outcomes[item.check.name]
        left = _stop_marked(item.marker)
        if left:
            verdict = "failed"
            reason = (reason + "; " if reason else "") + "left running: " + ", ".join(
                f"{pid} {command}" for pid, command in left)
        outcome.verdict, outcome.reason = verdict, reason
        outcome.seconds = time.monotonic() - item.started
        outcome.log, outcome.detail = item.log, _detail(item.check, item.log)
        say(f"[{_clock(time.monotonic() - began)}] {item.check.name:<21} {verdict:<7} "
            + "; ".join(part for part in (outcome.detail, reason) if part))

    try:
        while waiting or running:
            for item in list(running):
                code = item.process.poll()
                overdue = time.monotonic() - item.started > item.check.timeout_s
                if code is None and not overdue:
                    continue
                if code is None:
                    os.killpg(item.process.pid, signal.SIGKILL)
                    item.process.wait()
                    finish(item, "failed", f"timed out after {item.check.timeout_s:.0f} s")
                else:
                    finish(item, "passed" if code == 0 else "failed",
                           "" if code == 0 else f"exit {code}")
                running.remove(item)
                if item.check.name == "train":
                    train_state = outcomes["train"].verdict
            for check in list(waiting):
                if check.needs_model and train_state == "failed":
                    waiting.remove(check)
                    outcome = outcomes[check.name]
                    outcome.verdict, outcome.reason = "skipped", "needs the model, and train failed"
                    say(f"[{_clock(time.monotonic() - began)}] {check.name:<21} skipped "
                        f"{outcome.reason}")
            free = jobs - len(running)
            for check in [c for c in waiting if not c.needs_model or train_state == "passed"][:free]:
                waiting.remove(check)
                running.append(_start(check, env, run_id, log_dir))
            time.sleep(0.25)
    except KeyboardInterrupt:
        for item in running:
            os.killpg(item.process.pid, signal.SIGTERM)
            _stop_marked(item.marker)
        say("make test: interrupted")
        return 130
    finally:
        guard.close()

    return _summarise(outcomes, guard.knocks, time.monotonic() - began, say)


def _summarise(outcomes: dict[str, Outcome], knocks: dict[int, int], elapsed: float,
               say: Callable[[str], None]) -> int:
    """Print the summary (a line per check, the end of each failed log); the exit code."""
    knocked = {port: count for port, count in knocks.items() if count}
    say("\nmake test: summary")
    for outcome in outcomes.values():
        log = _shown(outcome.log) if outcome.log else "-"
        why = "; ".join(part for part in (outcome.detail, outcome.reason) if part)
        say(f"  {outcome.check.name:<21} {outcome.verdict:<7} {outcome.seconds:6.0f} s  "
            f"{why}  [{log}]")
    if knocked:
        say(f"  {'default ports':<21} failed  a check used {sorted(knocked)} "
            f"({sum(knocked.values())} requests): checks must choose free ports")
    for outcome in outcomes.values():
        if outcome.verdict == "failed" and outcome.log:
            say(f"\n--- the end of {_shown(outcome.log)} ---")
            for line in tail(outcome.log):
                say(line)
    counts = {v: sum(o.verdict == v for o in outcomes.values())
              for v in ("passed", "failed", "skipped")}
    failed = counts["failed"] + (1 if knocked else 0)
    closing = f"{counts['passed']} passed, {failed} failed"
    if counts["skipped"]:
        closing += f", {counts['skipped']} skipped"
    say(f"\n{closing} in {elapsed:.1f}s ({_clock(elapsed)})")
    return 1 if failed or counts["skipped"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="checks at a time (default 2)")
    parser.add_argument("--only", nargs="+", metavar="CHECK",
                        choices=[c.name for c in CHECKS], help="run these checks alone")
    args = parser.parse_args(argv)
    checks = tuple(c for c in CHECKS if not args.only or c.name in args.only)
    compile_sources()
    return run(checks, max(1, args.jobs))


#: The project's own modules, imported by nearly every process a check starts.
SOURCES = ("salon", "actions", "components", "connectors", "scripts", "bench", "tests")


def compile_sources() -> None:
    """Byte-compile the project's modules before the checks start, so that the hundreds of
    processes they start read them rather than compile each again: where
    PYTHONDONTWRITEBYTECODE is set, Python never keeps what it compiled. A file changed
    later is compiled again on import, as Python checks each one's time stamp.
    """
    for folder in SOURCES:
        compileall.compile_dir(PROJECT / folder, quiet=1, workers=2)


if __name__ == "__main__":
    sys.exit(main())
