"""``salon demo`` and ``salon demo-check``: the whole assistant on one machine, as a client
would meet it on WhatsApp.

``salon demo`` starts the stack (:mod:`salon.dev.stack`: the Cloud API emulator, the action
server and ``rasa run`` with the WhatsApp channel) on the default ports, prints the phone
page's address and a short story to try, and waits; Ctrl-C or SIGTERM stops every
process it started. Next to the stack runs a small follow-up helper: the phone page's
"Assistant follow-up" button posts to it, and it asks Rasa to have the assistant write
first (``trigger_intent``), as it would with news for the client.

``salon demo-check`` runs that story without a browser against a fresh stack on free
ports, at a fixed instant (:data:`STORY_INSTANT` unless ``--at`` says otherwise, so the
story sees the same calendar on any day), and prints each step as ``ok`` or ``FAIL``; it
exits non-zero when a step fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from salon.access.rasa_auth import rasa_headers, rasa_jwt
from salon.config import PROJECT_ROOT
from salon.dev.stack import Stack, StackConfig, StackError, wait_settled
from salon.integrations.seed import load_maison

__all__ = [
    "STORY_INSTANT",
    "Conversation",
    "FollowUpServer",
    "Step",
    "add_check_arguments",
    "add_demo_arguments",
    "demo_banner",
    "run_check",
    "run_demo",
    "run_steps",
    "story_steps",
    "trigger_follow_up",
]

DEFAULT_MODEL = PROJECT_ROOT / "models" / "salon.tar.gz"
DEFAULT_WORKDIR = PROJECT_ROOT / "var" / "demo"
CLIENT = "33600000001"
CLIENT_NAME = "Claire Laurent"
ORDER = "SOL-104233"  # Claire's coat, shipped with DHL Express
GREETING = "Hello, good morning"  # English enough to turn the conversation (her book says French)
#: The moment the demo maison's records are written around (data/maison: orders shipped
#: in late November 2026, appointments from 27 November): Thursday 26 November 2026,
#: 09:00 in Paris. ``salon demo-check`` and the project's checks run at this instant
#: unless told otherwise.
STORY_INSTANT = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
#: what a demo run leaves behind and the next one starts without (unless --keep-state)
_STATE_FILES = (
    "clock.json",
    "rasa-trackers.db",
    "salon.db",
    "salon.db-wal",
    "salon.db-shm",
)
_INTENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CLIENT_ID = re.compile(r"^(?:\d{6,15}|[A-Z]{2}\.[0-9A-Za-z]{1,64})$")


def _print(text: str = "", file: TextIO | None = None) -> None:
    """A line for the person at the terminal, flushed at once."""
    stream = file or sys.stdout
    stream.write(f"{text}\n")
    stream.flush()


# --------------------------------------------------------------------------- arguments


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def instant(text: str) -> datetime:
    """An ISO-8601 instant with its UTC offset (``2026-12-04T21:00:00+01:00``)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 instant: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"an instant needs its UTC offset (+01:00, Z…): {text!r}")
    return value


def _common_arguments(parser: argparse.ArgumentParser, ports: tuple[int, int, int]) -> None:
    emulator, rasa, actions = ports
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL,
        help=f"trained Rasa model (default: {DEFAULT_MODEL.relative_to(PROJECT_ROOT)})",
    )
    free = " (0: a free one)"
    parser.add_argument("--emulator-port", type=_port, default=emulator,
                        help=f"WhatsApp Cloud API emulator and phone page (default: {emulator}){free}")
    parser.add_argument("--rasa-port", type=_port, default=rasa,
                        help=f"rasa run (default: {rasa}){free}")
    parser.add_argument("--actions-port", type=_port, default=actions,
                        help=f"action server (default: {actions}){free}")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``salon demo``: the default ports, the follow-up helper, the work
    folder and the clock.
    """
    _common_arguments(parser, (5900, 5005, 5055))
    parser.add_argument(
        "--followup-port", type=_port, default=5901,
        help="the follow-up helper behind the phone page's button (default: 5901; 0: none)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR,
        help="logs, SQLite files, clock (default: var/demo)",
    )
    parser.add_argument(
        "--keep-state", action="store_true",
        help="keep the previous run's conversations and clock (default: start afresh)",
    )
    parser.add_argument(
        "--at", type=instant, default=None,
        help="start every clock at this instant, e.g. 2026-12-04T21:00:00+01:00 "
             "(default: the real time)",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``salon demo-check``: free ports, the story's instant, the work folder
    and how long replies are watched.
    """
    _common_arguments(parser, (0, 0, 0))
    parser.add_argument(
        "--at", type=instant, default=STORY_INSTANT,
        help="the instant the story starts at (default: "
             f"{STORY_INSTANT.isoformat()}, the moment the demo maison's records describe)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None,
        help="logs and data (default: a temporary folder, removed when every step passed)",
    )
    parser.add_argument(
        "--quiet-seconds", type=float, default=0.3,
        help="how long is waited once every message of the client was answered (default: 0.3)",
    )
    parser.add_argument(
        "--quick-model-load", action="store_true",
        help="build the model's TensorFlow parts eagerly when loading it: seconds instead of "
             "about 45, the same answers (scripts/rasa_quick_load.py; make demo-check)",
    )


def stack_config(args: argparse.Namespace, workdir: Path) -> StackConfig:
    """The stack of a demo run: its secrets are made afresh for each run, the advisors'
    console credentials too (:func:`demo_credentials`).
    """
    return StackConfig(
        model=Path(args.model).resolve(),
        workdir=workdir.resolve(),
        emulator_port=args.emulator_port,
        rasa_port=args.rasa_port,
        actions_port=args.actions_port,
        start_at=args.at,
        # The maison's records are dated relative to the stack's today: the orders,
        # appointments and events of the story stay this week's on any day.
        seed_today=True,
        extra_env={"SALON_API_TOKENS": json.dumps(demo_credentials())},
        quick_model_load=bool(getattr(args, "quick_model_load", False)),
    )


MANAGER = "maison-manager"
"""The demo's manager (sees every advisor's clients, reassigns)."""


def demo_credentials(data_dir: Path | None = None) -> list[dict[str, Any]]:
    """A console credential for each advisor of the maison's book and one manager, made
    afresh for this run (random, never written to a file): local use only, nothing a
    deployment could inherit. The advisor's first name, lower-cased, names the token.
    """
    maison = load_maison(data_dir or PROJECT_ROOT / "data" / "maison")
    entries: list[dict[str, Any]] = [
        {"name": a.first_name.lower(), "token": secrets.token_urlsafe(18), "scopes": ["advisor"],
         "advisor_id": a.id}
        for a in maison.advisors.values()
    ]
    entries.append({"name": MANAGER, "token": secrets.token_urlsafe(18), "scopes": ["manager"]})
    return entries


def console_signin(config: StackConfig, name: str) -> str | None:
    """The demo credential of ``name`` (an advisor's first name, lower-cased, or the
    manager), from the run's ``SALON_API_TOKENS``.
    """
    for entry in json.loads(config.extra_env.get("SALON_API_TOKENS") or "[]"):
        if entry.get("name") == name:
            return str(entry["token"])
    return None


# --------------------------------------------------------------------------- follow-up


FOLLOW_UP_PURPOSE = "advisor_followup"
#: What a follow-up asks the assistant: the news it promised (actions/followup.py).
FOLLOW_UP_INTENT = "advisor_followup"


def trigger_follow_up(
    rasa_url: str, jwt_secret: str, client: str, intent: str = FOLLOW_UP_INTENT, timeout: float = 60.0
) -> dict[str, Any]:
    """Have the assistant write first to ``client``: Rasa's ``trigger_intent`` with the
    WhatsApp output channel, as a follow-up (its consent is checked). Outside the 24-hour
    window the channel parks the message and sends a template instead. Raises
    :class:`httpx.HTTPError` on failure.
    """
    if not _CLIENT_ID.match(client):
        raise ValueError(f"not a WhatsApp number: {client!r}")
    if not _INTENT.match(intent):
        raise ValueError(f"not an intent name: {intent!r}")
    response = httpx.post(
        f"{rasa_url.rstrip('/')}/conversations/{client}/trigger_intent",
        params={"output_channel": "whatsapp", "purpose": FOLLOW_UP_PURPOSE},
        headers=rasa_headers(jwt_secret),
        json={"name": intent},
        timeout=timeout,
    )
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


class FollowUpServer:
    """``POST /follow-up`` with ``{"client", "intent"?}`` → ``trigger(client, intent)``.

    A loopback HTTP server in a thread, so the phone page (another origin: the emulator)
    can ask the assistant to write first; CORS allows ``allowed_origins`` only.
    """

    def __init__(
        self,
        trigger: Callable[[str, str], Any],
        allowed_origins: Sequence[str],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.trigger = trigger
        self.allowed_origins = frozenset(allowed_origins)
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        # The bound (host, port) of this IPv4 server; the port is the one chosen for 0.
        bound: tuple[str, int] = self._server.socket.getsockname()[:2]
        self._host, self._port = bound

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}/follow-up"

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="salon-follow-up", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the demo's terminal is for the person trying it

            def _cors(self) -> None:
                origin = self.headers.get("Origin")
                if origin and origin in server.allowed_origins:
                    self.send_header("Access-Control-Allow-Origin", origin)
                    self.send_header("Vary", "Origin")

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self._cors()
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_OPTIONS(self) -> None:
                self.send_response(204)
                self._cors()
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
                self.send_header("Access-Control-Max-Age", "600")
                self.end_headers()

            def do_POST(self) -> None:
                if self.path.split("?")[0] != "/follow-up":
                    self._reply(404, {"error": f"no route POST {self.path}"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
                except ValueError:
                    self._reply(400, {"error": "the body must be JSON"})
                    return
                if not isinstance(body, dict):
                    self._reply(400, {"error": "the body must be a JSON object"})
                    return
                client = str(body.get("client") or CLIENT).lstrip("+")
                intent = str(body.get("intent") or FOLLOW_UP_INTENT)
                if not _CLIENT_ID.match(client) or not _INTENT.match(intent):
                    self._reply(400, {"error": "client must be a number, intent a name"})
                    return
                try:
                    server.trigger(client, intent)
                except httpx.HTTPStatusError as exc:
                    detail = exc.response.text[:300]
                    self._reply(502, {"error": f"Rasa answered {exc.response.status_code}: {detail}"})
                    return
                except Exception as exc:
                    self._reply(502, {"error": f"the assistant could not be reached: {exc}"})
                    return
                self._reply(200, {"ok": True, "client": client, "intent": intent})

        return Handler


# --------------------------------------------------------------------------- processes


def ports_in_use(ports: Sequence[int], host: str = "127.0.0.1") -> list[int]:
    """The ports something already listens on (a stale stack would answer our health
    checks and pass for ours).
    """
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.3)
            if sock.connect_ex((host, port)) == 0:
                busy.append(port)
    return busy


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so every ``finally`` runs."""


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGINT → KeyboardInterrupt, SIGTERM → :class:`_Terminated`, for the duration."""

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise _Terminated()

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_term),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _shutdown(
    stack: Stack, helper: FollowUpServer | None, out: TextIO, prog: str = "salon demo"
) -> None:
    """Stop everything, deaf to further Ctrl-C / SIGTERM until done (no orphans)."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        if helper is not None:
            helper.stop()
        if stack.processes:
            _print(f"{prog}: stopping the emulator, the action server and rasa…", out)
        stack.stop()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def _dead_process(stack: Stack) -> str | None:
    for name, process in stack.processes.items():
        if process.poll() is not None:
            return f"{name} exited with {process.returncode}:\n{stack.log_tail(name)}"
    return None


# --------------------------------------------------------------------------- demo


def demo_banner(config: StackConfig, followup_url: str | None) -> str:
    """What ``salon demo`` prints once the stack is up: the addresses and a story to try."""
    phone = f"{config.emulator_url}/_emulator/phone"
    if followup_url:
        phone += f"?followup={followup_url}"
    token = rasa_jwt(config.rasa_jwt_secret, lifetime=timedelta(hours=12))
    trigger = (
        f"curl -X POST '{config.rasa_url}/conversations/{CLIENT}/trigger_intent"
        f"?output_channel=whatsapp&purpose={FOLLOW_UP_PURPOSE}' "
        "-H \"Authorization: Bearer $SALON_DEMO_TOKEN\" "
        f"-H 'Content-Type: application/json' -d '{{\"name\": \"{FOLLOW_UP_INTENT}\"}}'"
    )
    follow_up_step = (
        '  5. Press "Assistant follow-up": the assistant writes first. Outside the window a\n'
        "     free-form message cannot be sent, so a template knocks instead (\"Bonjour\n"
        '     Claire, …\"). Tap "Voir le message": the news of her order arrives first.\n'
        f"     Without the page:\n     {trigger}\n"
        if followup_url
        else "  5. Have the assistant write first; outside the window a template knocks instead\n"
        f"     (\"Bonjour Claire, …\"). Tap it and the waiting message arrives:\n     {trigger}\n"
    )
    console = f"{config.rasa_url}/webhooks/whatsapp/console"
    return (
        "\nMaison Solenne is open. Chat as Claire Laurent (+33 6 00 00 00 01) on the phone page:\n\n"
        f"  Phone page            {phone}\n"
        f"  Advisor console       {console}\n"
        f"                        sign in as Sophie (Claire's advisor): {console_signin(config, 'sophie')}\n"
        f"                        or as the manager: {console_signin(config, MANAGER)}\n"
        f"  Rasa HTTP API         {config.rasa_url}  (header Authorization: Bearer "
        "$SALON_DEMO_TOKEN, valid 12 h:)\n"
        f"                        export SALON_DEMO_TOKEN={token}\n"
        f"  Action server         http://127.0.0.1:{config.actions_port}/health\n"
        f"  Emulator admin API    {config.emulator_url}/_emulator/  "
        f"(e.g. /_emulator/outbox?to={CLIENT})\n"
        f"  Graph API (emulated)  {config.emulator_url}/{config.api_version}\n"
        f"  Logs and data         {config.workdir}\n"
        "\nA story to try:\n"
        '  1. Write "Hello, good morning": the assistant greets you and offers three buttons\n'
        "     (Claire's book says French: a lone \"Hello\" is answered in French, a sentence\n"
        "     in English turns the conversation to English).\n"
        '  2. Tap "Book a visit", then answer Paris, a private viewing, next Tuesday\n'
        "     afternoon; tap a free time, say who comes, confirm: it is booked.\n"
        '  3. Ask "where is my order?": no number needed, the assistant knows her order.\n'
        '  4. Press "+24 h" and "+1 h": after 25 hours of silence the window closes and the\n'
        '     banner says "only templates can be sent".\n'
        f"{follow_up_step}"
        '  6. Write "I would like to speak to my advisor", then sign in to the console as\n'
        "     Sophie: Claire waits at the top of the inbox with the reason; open her, answer;\n"
        "     the answer reaches the phone page. Press \"+24 h\" and \"+1 h\": the composer\n"
        "     offers only the templates she can receive, or your words behind one nudge.\n"
        "  7. Sign in to the console as the manager and open Report, then \"Generate now\":\n"
        "     what each message of the story cost, by day and category, against Meta's own\n"
        "     pricing (the rate card in data/pricing is illustrative).\n"
        "\nCtrl-C stops everything.\n"
    )


def _fresh(workdir: Path) -> None:
    for name in _STATE_FILES:
        with contextlib.suppress(FileNotFoundError):
            (workdir / name).unlink()


def run_demo(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``salon demo``: start, print, wait for Ctrl-C / SIGTERM, stop. 0 on a clean stop."""
    out = out or sys.stdout
    config = stack_config(args, Path(args.workdir))
    if not config.model.exists():
        _print(f"salon demo: no trained model at {config.model} (make train)", file=sys.stderr)
        return 2
    wanted = [config.emulator_port, config.rasa_port, config.actions_port, args.followup_port]
    busy = ports_in_use([port for port in wanted if port])
    if busy:
        _print(f"salon demo: port(s) {busy} already in use (another demo or rasa run?); "
               "stop it or choose other ports", file=sys.stderr)
        return 2
    config.workdir.mkdir(parents=True, exist_ok=True)
    if not args.keep_state:
        _fresh(config.workdir)
    stack = Stack(config)
    helper: FollowUpServer | None = None
    with _stop_signals():
        try:
            _print(f"salon demo: starting the stack in {config.workdir} (about a minute)…",
                   file=out)
            started = time.monotonic()
            stack.start()
            if args.followup_port:
                origins = [config.emulator_url, f"http://localhost:{config.emulator_port}"]
                helper = FollowUpServer(
                    lambda client, intent: trigger_follow_up(
                        config.rasa_url, config.rasa_jwt_secret, client, intent
                    ),
                    origins,
                    port=args.followup_port,
                )
                helper.start()
            _print(f"salon demo: ready in {time.monotonic() - started:.0f} s", file=out)
            _print(demo_banner(config, helper.url if helper else None), file=out)
            while True:
                time.sleep(1.0)
                dead = _dead_process(stack)
                if dead:
                    _print(f"salon demo: {dead}", file=sys.stderr)
                    return 1
        except (KeyboardInterrupt, _Terminated):
            _print("", file=out)
            return 0
        except (StackError, OSError) as exc:
            _print(f"salon demo: {exc}", file=sys.stderr)
            return 1
        finally:
            _shutdown(stack, helper, out)


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
    """One step of a scripted run: ``check()`` acts, then returns (passed, what was seen)."""

    title: str
    expected: str
    check: Callable[[], tuple[bool, str]]


def run_steps(steps: Sequence[Step], out: TextIO | None = None) -> int:
    """Run the steps in order, print each as ok / FAIL (with what was expected and seen);
    after a failure the rest are skipped. 0 when all passed, 1 otherwise.
    """
    out = out or sys.stdout
    failed = 0
    width = len(str(len(steps)))
    for number, step in enumerate(steps, 1):
        label = f"{number:>{width}}. {step.title}"
        if failed:
            _print(f"  skip  {label}", file=out)
            continue
        started = time.monotonic()
        try:
            passed, seen = step.check()
        except Exception as exc:
            passed, seen = False, f"{type(exc).__name__}: {exc}"
        took = time.monotonic() - started
        if passed:
            _print(f"  ok    {label} ({took:.1f} s)\n        saw: {seen}", file=out)
        else:
            failed += 1
            _print(
                f"  FAIL  {label} ({took:.1f} s)\n        expected: {step.expected}\n"
                f"        saw: {seen}",
                file=out,
            )
    return 1 if failed else 0


def _show(message: dict[str, Any]) -> str:
    kind = f"template {message['template']}" if message.get("template") else message.get("type")
    text = f'{kind} "{message.get("body") or ""}"'
    if message.get("buttons"):
        text += " [" + " | ".join(message["buttons"]) + "]"
    if message.get("status") in ("failed", "rejected"):
        text += f" ({message['status']}, error {message.get('error_code')})"
    return text


def _show_all(messages: Sequence[dict[str, Any]]) -> str:
    return "; ".join(_show(m) for m in messages) if messages else "nothing"


class Conversation:
    """Claire's side of the conversation, through the emulator's admin API."""

    def __init__(self, config: StackConfig, quiet: float = 0.3, timeout: float = 45.0) -> None:
        self.config = config
        self.quiet = quiet
        self.timeout = timeout
        self.http = httpx.Client(base_url=config.emulator_url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/_emulator/{path}", **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} /_emulator/{path}: {response.status_code} {response.text}")
        return response.json()

    def outbox(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "outbox", params={"to": CLIENT}))

    def say(self, text: str) -> None:
        self.admin("POST", "inbound", json={"from": CLIENT, "name": CLIENT_NAME, "text": text})

    def tap(self, message: dict[str, Any], button: str) -> None:
        self.admin("POST", "inbound", json={
            "from": CLIENT, "name": CLIENT_NAME, "reply_to": message["wamid"], "button": button,
        })

    def replies(self, act: Callable[[], Any], count: int = 1) -> list[dict[str, Any]]:
        """Do ``act`` and return what the business sent after it: once ``count`` new
        messages arrived and every message of the client was answered, statuses included
        (a 131047 arrives as a status), and ``quiet`` seconds more.
        """
        before = len(self.outbox())
        act()
        deadline = time.monotonic() + self.timeout
        while len(self.outbox()) - before < count and time.monotonic() < deadline:
            time.sleep(0.2)
        wait_settled(self.config, timeout=max(deadline - time.monotonic(), 5.0), grace_s=self.quiet)
        return self.outbox()[before:]

    def window(self) -> dict[str, Any]:
        return dict(self.admin("GET", "thread", params={"client": CLIENT, "limit": "0"})["window"])


def _one_containing(
    messages: Sequence[dict[str, Any]], *needles: str, free_form: bool = True
) -> tuple[bool, str]:
    texts = [(m.get("body") or "") for m in messages]
    ok = any(all(n in t for n in needles) for t in texts) and all(
        m.get("status") not in ("failed", "rejected") for m in messages
    )
    if free_form:
        ok = ok and all(m.get("template") is None for m in messages)
    return ok, _show_all(messages)


class _Story:
    """The demo's story, one check per step; ``seen`` keeps the messages whose buttons a
    later step taps.
    """

    def __init__(self, conv: Conversation, rasa_url: str, jwt_secret: str) -> None:
        self.conv = conv
        self.rasa_url = rasa_url
        self.jwt_secret = jwt_secret
        self.seen: dict[str, dict[str, Any]] = {}

    def phone_page(self) -> tuple[bool, str]:
        response = self.conv.http.get("/_emulator/phone")
        ok = response.status_code == 200 and 'id="thread"' in response.text
        return ok, f"HTTP {response.status_code}, {len(response.text)} characters of HTML"

    def greet(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.say(GREETING))
        ok, shown = _one_containing(box, "Ms Laurent")
        greeting = next((m for m in box if "Ms Laurent" in (m.get("body") or "")), None)
        if greeting is not None:
            self.seen["greeting"] = greeting
        return ok and greeting is not None and "Book a visit" in greeting["buttons"], shown

    def book(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.tap(self.seen["greeting"], "Book a visit"))
        return _one_containing(box, "Which boutique would suit you")

    def boutique(self) -> tuple[bool, str]:
        conv = self.conv
        return _one_containing(conv.replies(lambda: conv.say("Paris")),
                               "What shall we prepare for your visit")

    def service(self) -> tuple[bool, str]:
        conv = self.conv
        return _one_containing(conv.replies(lambda: conv.say("a private viewing")),
                               "Which day and time would suit you")

    def _offered(self, key: str, box: list[dict[str, Any]], *needles: str) -> tuple[bool, str]:
        """A reply holding ``needles`` with buttons, kept as ``seen[key]`` for the next tap."""
        ok, shown = _one_containing(box, *needles)
        found = next((m for m in box if all(n in (m.get("body") or "") for n in needles)), None)
        if found is not None and found.get("buttons"):
            self.seen[key] = found
        return ok and key in self.seen, shown

    def when(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.say("next Tuesday afternoon"))
        return self._offered("times", box, "free times in Paris")

    def pick_time(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.tap(self.seen["times"], "0"))
        return self._offered("party", box, "Will anyone be joining you")

    def party(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.tap(self.seen["party"], "Just me"))
        return self._offered("summary", box, "private viewing on Tuesday", "Shall I confirm")

    def confirm(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.tap(self.seen["summary"], "Yes, please confirm"))
        return _one_containing(box, "It is booked", "Your reference is APT-")

    def order(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.say("where is my order?"))
        return _one_containing(box, ORDER, "DHL Express")

    def later(self) -> tuple[bool, str]:
        self.conv.admin("POST", "clock", json={"advance_seconds": 25 * 3600})
        window = self.conv.window()
        return window["open"] is False, (
            f"window open={window['open']}, closed at {window['closes_at']}"
        )

    def follow_up(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(
            lambda: trigger_follow_up(self.rasa_url, self.jwt_secret, CLIENT)
        )
        templates = [m for m in box if m.get("template") == "advisor_update_nudge"]
        ok = (
            len(templates) == 1
            and all(m.get("type") == "template" for m in box)
            and all(m.get("status") not in ("failed", "rejected") for m in box)
            and all(m.get("error_code") != 131047 for m in conv.outbox())
        )
        if templates:
            self.seen["nudge"] = templates[0]
        return ok, _show_all(box)

    def tap_nudge(self) -> tuple[bool, str]:
        conv = self.conv
        box = conv.replies(lambda: conv.tap(self.seen["nudge"], "0"))
        return _one_containing(box, f"news of your order {ORDER}")


def story_steps(conv: Conversation, rasa_url: str, jwt_secret: str) -> list[Step]:
    """The demo's story as checks; the substrings come from domain.yml's responses."""
    story = _Story(conv, rasa_url, jwt_secret)
    return [
        Step("the phone page is served", "GET /_emulator/phone answers 200 with the page",
             story.phone_page),
        Step(f'Claire writes "{GREETING}"',
             'the greeting by name ("…Ms Laurent…") with a "Book a visit" button', story.greet),
        Step('she taps "Book a visit"', 'the boutique prompt ("Which boutique would suit you?")',
             story.book),
        Step('she answers "Paris"', 'the service prompt ("What shall we prepare for your visit?")',
             story.boutique),
        Step('she answers "a private viewing"',
             'the date prompt ("Which day and time would suit you best?")', story.service),
        Step('she answers "next Tuesday afternoon"',
             'real free times in Paris as buttons ("…free times in Paris…")', story.when),
        Step("she taps the first time", 'the party question ("Will anyone be joining you?")',
             story.pick_time),
        Step('she taps "Just me"', 'the summary ("…private viewing on Tuesday… Shall I confirm?")',
             story.party),
        Step('she taps "Yes, please confirm"',
             'the booking with its reference ("It is booked… Your reference is APT-…")',
             story.confirm),
        Step('she asks "where is my order?" (no number)',
             f'her order\'s real status ("…{ORDER}… DHL Express…")', story.order),
        Step("25 hours pass", "the 24-hour window is closed", story.later),
        Step("the assistant follows up (trigger_intent advisor_followup)",
             "exactly one template, advisor_update_nudge; no free-form message, no 131047",
             story.follow_up),
        Step("she taps the template's button",
             f'the parked news arrives ("As promised, news of your order {ORDER}: …"), free-form',
             story.tap_nudge),
    ]


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``salon demo-check``: a fresh stack, the story, a verdict. 0 when every step passed."""
    out = out or sys.stdout
    model = Path(args.model).resolve()
    if not model.exists():
        _print(f"salon demo-check: no trained model at {model} (make train)", file=sys.stderr)
        return 2
    busy = ports_in_use([port for port in (args.emulator_port, args.rasa_port, args.actions_port)
                         if port])
    if busy:
        _print(f"salon demo-check: port(s) {busy} already in use; choose other ports",
               file=sys.stderr)
        return 2
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="salon-demo-check-")) if temporary else Path(args.workdir)
    config = stack_config(args, workdir)
    if not temporary:
        config.workdir.mkdir(parents=True, exist_ok=True)
        _fresh(config.workdir)
    stack = Stack(config)
    started = time.monotonic()
    code = 1
    with _stop_signals():
        try:
            _print(f"salon demo-check: starting a fresh stack, its clocks at "
                   f"{args.at.isoformat()}…", out)
            stack.start()
            _print(f"salon demo-check: stack up in {time.monotonic() - started:.1f} s (emulator "
                   f":{config.emulator_port}, rasa :{config.rasa_port}, actions "
                   f":{config.actions_port}); the story, as {CLIENT_NAME} ({CLIENT}):", file=out)
            conv = Conversation(config, quiet=args.quiet_seconds)
            try:
                code = run_steps(story_steps(conv, config.rasa_url, config.rasa_jwt_secret), out)
            finally:
                conv.close()
        except (KeyboardInterrupt, _Terminated):
            _print("salon demo-check: interrupted", file=sys.stderr)
            code = 130
        except (StackError, OSError) as exc:
            _print(f"salon demo-check: {exc}", file=sys.stderr)
            code = 1
        finally:
            _shutdown(stack, None, out, "salon demo-check")
    verdict = "all steps passed" if code == 0 else "FAILED"
    _print(f"salon demo-check: {verdict} in {time.monotonic() - started:.1f} s", file=out)
    if code != 0:
        _print(f"salon demo-check: logs kept in {config.workdir} (rasa.log, actions.log, "
               "emulator.log)", file=out)
    elif temporary:
        shutil.rmtree(workdir, ignore_errors=True)
    return code
