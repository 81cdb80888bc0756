"""The whole system on one machine: the WhatsApp Cloud API emulator, the action server and
``rasa run`` with the WhatsApp channel pointed at the emulator, on embedded defaults.

Used by ``make demo``, the end-to-end tests and the ingest benchmark. Everything goes to
one folder (logs, SQLite files, the shared clock file, generated credentials and
endpoints), so several stacks can run side by side on different ports. Synchronous on
purpose: it is a launcher, not part of a server.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from salon.access.rasa_auth import rasa_headers
from salon.clock import SystemClock, require_aware, write_offset_file
from salon.config import PROJECT_ROOT
from salon.whatsapp.versions import DEFAULT_API_VERSION

__all__ = ["Stack", "StackConfig", "StackError", "free_port", "free_ports", "quiet_ports"]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports nothing listens on now, chosen by the kernel (bind to port
    0). The sockets are held until all are chosen, so the ports differ from one another.
    """
    with ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port(host: str = "127.0.0.1") -> int:
    """One port nothing listens on now (see :func:`free_ports`)."""
    return free_ports(1, host)[0]


QUIET_LOW = 20000
"""Where :func:`quiet_ports` starts looking (below it sit the well-known defaults)."""


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for port-0 binds and outgoing connections (Linux's default when
    it cannot be read).
    """
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def quiet_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports below the kernel's ephemeral range, for a process that
    binds long after its port is chosen (a Rasa server binds once its model is loaded, a
    minute later): the kernel hands ports of that range to every port-0 bind and outgoing
    connection on the machine, so one of those could take a port chosen there meanwhile.
    """
    if count <= 0:
        return []
    low = ephemeral_range()[0]
    ceiling = low if low - QUIET_LOW >= 1000 else 65536
    floor = QUIET_LOW if ceiling == low else ephemeral_range()[1] + 1
    chosen: list[int] = []
    for port in random.sample(range(floor, ceiling), min(ceiling - floor, 50 * count)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise StackError(f"no {count} free port(s) between {floor} and {ceiling}")


def listens(pid: int, port: int) -> bool:
    """Whether the process ``pid`` or one of its children listens on ``port`` (a server
    answering there could be another's that took the port first).
    """
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return False
    for process in family:
        try:
            sockets = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port for s in sockets):
            return True
    return False


BIND_FAILED = ("address already in use", "errno 98")
"""What a process's log says when another took its port (the start is tried again)."""
START_ATTEMPTS = 3



class StackError(RuntimeError):
    """A process did not start; the message carries the end of its log."""


@dataclass
class StackConfig:
    """What a stack runs: the model, its work folder, ports, credentials and options."""

    model: Path
    workdir: Path
    emulator_port: int = 5900
    rasa_port: int = 5005
    actions_port: int = 5055
    """A port of 0 is chosen free when the stack starts (the config then holds it)."""
    rasa_jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    """Signs the tokens of Rasa's HTTP API (``--jwt-secret``); a fresh one per stack."""
    identity_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    """Seals who writes for the action server (:mod:`salon.access.signed_identity`)."""
    actions_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    """The action server's credential, sent by Rasa from the endpoints file."""
    database_url: str | None = None
    """Salon's tables (sessions, records, the maison's book); default SQLite in workdir."""
    redis_url: str | None = None
    emulator_args: list[str] = field(default_factory=list)
    start_timeout_s: float = 480.0
    """Loading a model traces its TensorFlow graphs: about a minute on a quiet 2-core
    machine, several when other model loads or training share the cores."""
    phone_number_id: str = "100000000000001"
    waba_id: str = "200000000000001"
    access_token: str = "emulator-access-token"
    app_secret: str = "emulator-app-secret"
    verify_token: str = "emulator-verify-token"
    api_version: str = DEFAULT_API_VERSION
    extra_env: dict[str, str] = field(default_factory=dict)
    channel_options: dict[str, str] = field(default_factory=dict)
    """More keys of the WhatsApp channel's credentials (``io_process: "false"`` …)."""
    outbound_api_port: int | None = None
    """When set, the outbound worker (``salon outbound-worker --no-scans``) and the outbound
    API (``salon outbound api`` on this port; 0: a free one) run too."""
    start_at: datetime | None = None
    """The instant every process's clock shows when the stack starts (time then runs on):
    the shared clock file is set before anything starts, so checks do not depend on the
    day they run. None: the real time."""
    seed_today: bool = False
    """Date the maison's records relative to the stack clock's today (``salon seed
    --today``) instead of as written."""
    quick_model_load: bool = False
    """Rasa builds each TensorFlow model it loads eagerly, then predicts on TensorFlow's
    graphs as in production (``scripts/rasa_quick_load.py``): the model loads in seconds
    instead of about 45 s, with the same predictions. For the checks; the demo runs Rasa
    untouched."""
    log_level: str | None = None
    """``"DEBUG"``: every process logs at that level (``rasa run --debug``, the action
    server's ``--debug``, ``SALON_LOG_LEVEL`` for the WhatsApp I/O process and the
    emulator); by default each keeps its own."""

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def webhook_url(self) -> str:
        """Where Meta's webhook goes: the companion process's own port when the channel
        has ``webhook_port``, else the Rasa server's route.
        """
        port = self.channel_options.get("webhook_port")
        base = f"http://127.0.0.1:{port}" if port else self.rasa_url
        return f"{base}/webhooks/whatsapp/webhook"

    @property
    def outbound_api_url(self) -> str | None:
        return f"http://127.0.0.1:{self.outbound_api_port}" if self.outbound_api_port else None

    @property
    def clock_file(self) -> Path:
        return self.workdir / "clock.json"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workdir / 'salon.db'}"

def rasa_run_args(config: StackConfig, *, credentials: Path, endpoints: Path) -> list[str]:
    """``rasa run``'s arguments for a stack. The secret is joined to its option
    (``--jwt-secret=…``): a generated one may begin with "-", which Rasa's parser would
    otherwise take for another option.
    """
    return ["run", "--enable-api", f"--jwt-secret={config.rasa_jwt_secret}", "--jwt-method", "HS256",
            "--interface", "127.0.0.1", "--port", str(config.rasa_port), "--model", str(config.model),
            "--credentials", str(credentials), "--endpoints", str(endpoints)]


class Stack:
    """The processes of one stack (emulator, action server, ``rasa run``, optionally the
    outbound worker and API): started, watched, driven and stopped together.
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    # ------------------------------------------------------------------ files
    def _env(self) -> dict[str, str]:
        c = self.config
        env = {
            **os.environ,
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
            # Every line reaches its log file, even from a process that is killed.
            "PYTHONUNBUFFERED": "1",
            "SALON_CLOCK_FILE": str(c.clock_file),
            "SALON_VAR_DIR": str(c.workdir),
            "DATABASE_URL": c.effective_database_url,
            "WA_PHONE_NUMBER_ID": c.phone_number_id,
            "WA_WABA_ID": c.waba_id,
            "WA_ACCESS_TOKEN": c.access_token,
            "WA_APP_SECRET": c.app_secret,
            "WA_VERIFY_TOKEN": c.verify_token,
            "WA_API_VERSION": c.api_version,
            "WA_API_BASE_URL": c.emulator_url,
            "WA_AUTH_MODE": "bearer",
            # the outbound worker's bot-initiated turns (trigger_intent)
            "SALON_RASA_URL": c.rasa_url,
            "SALON_RASA_JWT_SECRET": c.rasa_jwt_secret,
            "SALON_IDENTITY_KEY": c.identity_key,
            "SALON_ACTIONS_TOKEN": c.actions_token,
            **c.extra_env,
        }
        if c.log_level:
            env["SALON_LOG_LEVEL"] = c.log_level
        if c.redis_url:
            env["REDIS_URL"] = c.redis_url
        else:
            env.pop("REDIS_URL", None)
        return env

    def _ports_to_choose(self) -> list[str]:
        """The ports given as 0: chosen free when the stack starts (again on a retry)."""
        c = self.config
        names = ["emulator_port", "rasa_port", "actions_port"]
        if c.outbound_api_port == 0:
            names.append("outbound_api_port")
        return [name for name in names if getattr(c, name) == 0]

    def _choose_ports(self, names: list[str]) -> None:
        for name, port in zip(names, quiet_ports(len(names)), strict=True):
            setattr(self.config, name, port)

    def _set_clock(self) -> None:
        c = self.config
        if c.start_at is not None:
            require_aware(c.start_at, "start_at")
            write_offset_file(c.clock_file, c.start_at - SystemClock().now())

    def _write_files(self) -> tuple[Path, Path]:
        c = self.config
        c.workdir.mkdir(parents=True, exist_ok=True)
        credentials = c.workdir / "credentials.yml"
        credentials.write_text(
            "rest:\n"
            "connectors.whatsapp.WhatsAppInput:\n"
            f"  verify_token: {c.verify_token}\n"
            f"  app_secret: {c.app_secret}\n"
            f"  access_token: {c.access_token}\n"
            f'  phone_number_id: "{c.phone_number_id}"\n'
            f'  waba_id: "{c.waba_id}"\n'
            f"  api_base_url: {c.emulator_url}\n"
            f"  api_version: {c.api_version}\n"
            "  auth_mode: bearer\n"
            + "".join(f'  {key}: "{value}"\n' for key, value in c.channel_options.items()),
            encoding="utf-8",
        )
        endpoints = c.workdir / "endpoints.yml"
        endpoints.write_text(
            "action_endpoint:\n"
            f'  url: "http://127.0.0.1:{c.actions_port}/webhook"\n'
            "  headers:\n"
            f'    Authorization: "Bearer {c.actions_token}"\n'
            "tracker_store:\n"
            "  type: SQL\n"
            '  dialect: "sqlite"\n'
            f'  db: "{c.workdir / "rasa-trackers.db"}"\n',
            encoding="utf-8",
        )
        return credentials, endpoints

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.config.workdir / f"{name}.log", "wb")  # closed in stop()
        self._logs[name] = log
        self.processes[name] = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=self._env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_paths(self) -> dict[str, Path]:
        """Each process's log (its stdout and stderr; the WhatsApp I/O process writes to
        the Rasa server's).
        """
        names = ["emulator", "actions", "rasa"]
        if self.config.outbound_api_port:
            names += ["outbound-worker", "outbound-api"]
        return {name: self.config.workdir / f"{name}.log" for name in names}

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.config.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------------ lifecycle
    def seed(self) -> None:
        bin_dir = Path(sys.executable).parent
        result = subprocess.run(
            [str(bin_dir / "salon"), "seed", "--database-url", self.config.effective_database_url,
             *(["--today"] if self.config.seed_today else [])],
            cwd=PROJECT_ROOT, env=self._env(), capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise StackError(f"salon seed failed:\n{result.stdout}{result.stderr}")

    def salon(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ``salon ARGS`` against this stack (its database, clock and number): what an
        operator's cron would run beside it, e.g. ``salon outbound scan``.
        """
        return subprocess.run(
            [str(Path(sys.executable).parent / "salon"), *args], cwd=PROJECT_ROOT, env=self._env(),
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def start(self) -> None:
        """Start every process and wait until each answers on its own port. When one of them
        finds its chosen port taken (chosen free, then taken before it bound), the stack
        stops and starts again on other ports, up to :data:`START_ATTEMPTS` times.
        """
        if not self.config.model.exists():
            raise StackError(f"no trained model at {self.config.model}: run `make train`")
        chosen = self._ports_to_choose()
        for attempt in range(1, START_ATTEMPTS + 1):
            self._choose_ports(chosen)
            try:
                self._start_once()
                return
            except StackError as error:
                if not chosen or attempt == START_ATTEMPTS or not any(
                        phrase in str(error).lower() for phrase in BIND_FAILED):
                    raise

    def _start_once(self) -> None:
        c = self.config
        credentials, endpoints = self._write_files()
        self._set_clock()
        self.seed()
        python = sys.executable
        bin_dir = Path(python).parent
        self._spawn("emulator", [
            python, "-m", "salon.emulator", "--host", "127.0.0.1", "--port", str(c.emulator_port),
            "--webhook-url", c.webhook_url, "--clock-file", str(c.clock_file), *c.emulator_args,
        ])
        debug = ["--debug"] if (c.log_level or "").upper() == "DEBUG" else []
        self._spawn("actions", [python, "-m", "actions.server", "--host", "127.0.0.1",
                                "--port", str(c.actions_port), *debug])
        rasa = ([python, str(PROJECT_ROOT / "scripts" / "rasa_quick_load.py")] if c.quick_model_load
                else [str(bin_dir / "rasa")])
        self._spawn("rasa", [*rasa, *rasa_run_args(c, credentials=credentials, endpoints=endpoints), *debug])
        if c.outbound_api_port:
            # No reminder or restock scans: they would write to the clients of a scripted run.
            self._spawn("outbound-worker", [str(bin_dir / "salon"), "outbound-worker", "--no-scans"])
            self._spawn("outbound-api", [str(bin_dir / "salon"), "outbound", "api", "--host", "127.0.0.1",
                                         "--port", str(c.outbound_api_port)])
        deadline = time.monotonic() + c.start_timeout_s
        try:
            self._wait("emulator", c.emulator_port, "/_emulator/config", deadline)
            self._wait("actions", c.actions_port, "/health", deadline)
            self._wait("rasa", c.rasa_port, "/webhooks/whatsapp/", deadline)
            if c.outbound_api_port:
                self._wait("outbound-api", c.outbound_api_port, "/health", deadline)
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise StackError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
        except BaseException:
            self.stop()
            raise

    def _wait(self, name: str, port: int, path: str, deadline: float) -> None:
        """Until ``name`` listens on ``port`` itself and answers ``path`` with 200."""
        process = self.processes[name]
        url = f"http://127.0.0.1:{port}{path}"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                if listens(process.pid, port) and httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise StackError(f"{name} did not answer {url} in time:\n{self.log_tail(name)}")

    def stop(self, timeout: float = 15.0) -> dict[str, str]:
        """Stop every process (SIGTERM, SIGKILL past ``timeout``); how each ended:
        ``"exited 0"``, ``"exited 1"`` ... or ``"killed"``.
        """
        ended: dict[str, str] = {}
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + timeout
        for name, process in self.processes.items():
            try:
                process.wait(max(0.1, end - time.monotonic()))
                ended[name] = f"exited {process.returncode}"
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
                ended[name] = "killed"
        for log in self._logs.values():
            log.close()
        self.processes.clear()
        self._logs.clear()
        return ended

    @contextmanager
    def running(self) -> Iterator[Stack]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # ------------------------------------------------------------------ Rasa's API
    def rasa_headers(self) -> dict[str, str]:
        """What a call to this stack's Rasa HTTP API carries (a JWT, never a URL token)."""
        return rasa_headers(self.config.rasa_jwt_secret)

    def trigger(self, conversation: str, intent: str, *, purpose: str | None = None,
                origin: str | None = None, timeout: float = 60.0) -> httpx.Response:
        """Have the assistant start a turn for ``conversation`` (Rasa's ``trigger_intent``,
        WhatsApp output), for ``purpose`` (a follow-up's when None).
        """
        params = {"output_channel": "whatsapp"}
        if purpose:
            params["purpose"] = purpose
        if origin:
            params["origin"] = origin
        return httpx.post(f"{self.config.rasa_url}/conversations/{conversation}/trigger_intent",
                          params=params, headers=self.rasa_headers(), json={"name": intent},
                          timeout=timeout)

    def wait_settled(self, timeout: float = 60.0, grace_s: float = 0.3) -> None:
        """Until every message a client wrote has been answered (:func:`wait_settled`)."""
        wait_settled(self.config, timeout=timeout, grace_s=grace_s, log_tail=lambda: self.log_tail("rasa"))

    # ------------------------------------------------------------------ emulator admin
    def emulator(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.config.emulator_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        return list(self.emulator("GET", "/_emulator/outbox", params={"to": to} if to else None))

    def wait_outbox(self, to: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The client's outbox once it holds at least ``count`` messages."""
        deadline = time.monotonic() + timeout
        box: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            box = self.outbox(to)
            if len(box) >= count:
                return box
            time.sleep(0.2)
        raise StackError(f"outbox for {to} has {len(box)} message(s), expected {count}:\n"
                         f"{box}\n--- rasa log ---\n{self.log_tail('rasa')}")


def wait_settled(config: StackConfig, *, timeout: float = 60.0, grace_s: float = 0.3,
                 log_tail: Callable[[], str] | None = None) -> None:
    """Until the emulator has delivered every webhook it owes and the channel has answered
    every message it received (its inbox holds none pending: a turn's replies leave before
    its message is marked done, so nothing more of that turn can arrive), then
    ``grace_s`` more. Faster and surer than watching the outbox stay quiet for a while.
    """
    from sqlalchemy import func, select

    from salon.storage.db import make_sync_engine
    from salon.webhook.inbox import inbox_table

    deadline = time.monotonic() + timeout
    engine = make_sync_engine(config.effective_database_url)
    count = select(func.count()).select_from(inbox_table).where(inbox_table.c.state == "pending")
    pending = -1
    try:
        with httpx.Client(base_url=config.emulator_url, timeout=30) as http:
            while time.monotonic() < deadline:
                left = min(max(deadline - time.monotonic(), 1.0), 25.0)  # within the call's 30 s
                response = http.post("/_emulator/wait_idle", json={"timeout": left})
                response.raise_for_status()
                with engine.connect() as conn:
                    pending = int(conn.execute(count).scalar_one())
                if response.json().get("idle") and pending == 0:
                    time.sleep(grace_s)
                    return
                time.sleep(0.1)
    finally:
        engine.dispose()
    tail = f":\n{log_tail()}" if log_tail is not None else ""
    raise StackError(f"the channel did not settle in {timeout:.0f} s ({pending} message(s) pending){tail}")
