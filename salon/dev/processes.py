"""Every process of a deployment started from its one description, ``deploy/processes.yml``:
what each runs, its ports, the environment it reads and its health check.

:func:`load` reads the description; :class:`Launcher` starts a replica of a process with
its environment (each ``${VAR}`` of its command taken from that environment, an unset one
refused), waits until it listens on its own ports and answers its health check, kills it
(SIGTERM or SIGKILL, as a deploy or a crash would) and starts it again. The scale drill
(``bench/scale_drill.py``) runs a whole deployment with it on one machine; the Dockerfile
and the compose file are checked against the same description by a test.
Synchronous on purpose: it is a launcher, not part of a server.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import IO, Any

import httpx
import psutil
import yaml

from salon.config import PROJECT_ROOT
from salon.dev.stack import StackError, listens

__all__ = ["DESCRIPTION", "Description", "Launcher", "ProcessSpec", "Replica", "command_of", "load"]

DESCRIPTION = PROJECT_ROOT / "deploy" / "processes.yml"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ProcessSpec:
    """One kind of process of the description."""

    name: str
    command: str
    replicas: int
    ports: dict[str, str]
    """Port name → the environment variable that holds it."""
    health_port: str | None
    health_path: str | None
    env: tuple[str, ...]
    salon: bool = True
    """A Salon process (reads the description's ``common_env``), not a third party's."""
    shard_env: str | None = None
    port_plus_shard: bool = False
    """The process listens on its port variable plus its shard index (the workers)."""
    balanced: tuple[str, ...] = ()

    def variables(self) -> set[str]:
        """Every ``${VAR}`` its command uses."""
        return set(_VARIABLE.findall(self.command))


@dataclass(frozen=True)
class Description:
    """The whole description: its processes, their common environment, the services."""

    processes: dict[str, ProcessSpec]
    common_env: tuple[str, ...]
    services: dict[str, int]
    """Run beside Salon (PostgreSQL, Redis, RabbitMQ) → their usual port."""

    def env_of(self, name: str) -> tuple[str, ...]:
        """Every variable the process ``name`` reads (its own, and the common ones)."""
        spec = self.processes[name]
        return (*self.common_env, *spec.env) if spec.salon else spec.env


def load(path: Path = DESCRIPTION) -> Description:
    """The description in ``path``; a malformed one is refused with what is wrong."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("processes"), dict):
        raise ValueError(f"{path}: no processes")
    processes: dict[str, ProcessSpec] = {}
    for name, item in raw["processes"].items():
        if not isinstance(item, dict) or not isinstance(item.get("command"), str):
            raise ValueError(f"{path}: process {name!r} has no command")
        ports = {str(k): str(v) for k, v in (item.get("ports") or {}).items()}
        health = item.get("health") or {}
        if health and health.get("port") not in ports:
            raise ValueError(f"{path}: the health check of {name!r} names no port of it")
        spec = ProcessSpec(
            name=str(name), command=" ".join(item["command"].split()), replicas=int(item.get("replicas", 1)),
            ports=ports, health_port=health.get("port"), health_path=health.get("path"),
            env=tuple(item.get("env") or ()), salon=bool(item.get("salon", True)),
            shard_env=item.get("shard_env"), port_plus_shard=bool(item.get("port_plus_shard", False)),
            balanced=tuple(item.get("balanced") or ()),
        )
        processes[spec.name] = spec
    description = Description(processes=processes, common_env=tuple(raw.get("common_env") or ()),
                              services={str(k): int(v["port"]) for k, v in (raw.get("services") or {}).items()})
    for spec in processes.values():
        missing = spec.variables() - set(description.env_of(spec.name))
        if missing:
            raise ValueError(f"{path}: the command of {spec.name!r} uses {sorted(missing)} not in its env")
        for variable in spec.ports.values():
            if variable not in description.env_of(spec.name):
                raise ValueError(f"{path}: {spec.name!r} listens on {variable}, not in its env")
    return description


def command_of(spec: ProcessSpec, env: dict[str, str]) -> list[str]:
    """The argv of ``spec`` with every ``${VAR}`` taken from ``env``; ``rasa``, ``salon``
    and ``python`` are this interpreter's (the project's venv) when run from one.
    """
    missing = sorted(v for v in spec.variables() if not env.get(v))
    if missing:
        raise StackError(f"{spec.name}: {', '.join(missing)} not set")
    argv = [Template(word).substitute(env) for word in shlex.split(spec.command)]
    bin_dir = Path(sys.executable).parent
    if argv[0] == "python":
        argv[0] = sys.executable
    elif (bin_dir / argv[0]).exists():
        argv[0] = str(bin_dir / argv[0])
    else:
        found = shutil.which(argv[0])
        if found is None:
            raise StackError(f"{spec.name}: {argv[0]} is not installed")
        argv[0] = found
    return argv


@dataclass
class Replica:
    """A running (or stopped) replica: its process and the environment it was given."""

    spec: ProcessSpec
    index: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)
    started: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.spec.name}-{self.index + 1}" if self.spec.replicas > 1 else self.spec.name

    def port(self, name: str) -> int:
        """The port ``name`` this replica listens on."""
        value = int(self.env[self.spec.ports[name]])
        return value + self.index if self.spec.port_plus_shard else value

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Launcher:
    """Starts, watches, kills and restarts the replicas of a description, each logging to
    ``workdir/<label>.log`` (appended across restarts).
    """

    def __init__(self, description: Description, workdir: Path) -> None:
        self.description = description
        self.workdir = workdir
        self.replicas: dict[str, Replica] = {}
        self.stopping = threading.Event()
        """Set by :meth:`stop` (or a signal handler): a wait for health gives up at once."""

    def replica(self, name: str, index: int, env: dict[str, str]) -> Replica:
        """Register replica ``index`` of process ``name`` with ``env`` (not started yet);
        its shard variable, when the process has one, is set to ``index/replicas``.
        """
        spec = self.description.processes[name]
        full = dict(env)
        if spec.shard_env:
            full[spec.shard_env] = f"{index}/{spec.replicas}"
        replica = Replica(spec, index, full, self.workdir / f"{name}-{index + 1}.log")
        self.replicas[replica.label] = replica
        return replica

    def start(self, replica: Replica) -> None:
        if replica.alive():
            raise StackError(f"{replica.label} is already running")
        argv = command_of(replica.spec, replica.env)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if replica.log is not None:
            replica.log.close()
        replica.log = open(replica.log_path, "ab")  # closed in stop()
        replica.process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=replica.env, stdout=replica.log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        replica.started = time.monotonic()

    def wait_healthy(self, replica: Replica, timeout: float) -> float:
        """Seconds until ``replica`` listens on every port of its own and its health check
        answers 200; a replica that exits or stays down past ``timeout`` is an error.
        """
        spec = replica.spec
        deadline = time.monotonic() + timeout
        began = time.monotonic()
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise StackError(f"{replica.label}: the launcher is stopping")
            process = replica.process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise StackError(f"{replica.label} exited with {code}:\n{self.tail(replica)}")
            if all(listens(process.pid, replica.port(name)) for name in spec.ports):
                if spec.health_port is None or spec.health_path is None:
                    return time.monotonic() - began
                url = f"http://127.0.0.1:{replica.port(spec.health_port)}{spec.health_path}"
                try:
                    if httpx.get(url, timeout=2, headers=self._health_headers(replica)).status_code == 200:
                        return time.monotonic() - began
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise StackError(f"{replica.label} not healthy in {timeout:.0f} s:\n{self.tail(replica)}")

    @staticmethod
    def _health_headers(replica: Replica) -> dict[str, str]:
        token = replica.env.get("SALON_METRICS_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token and replica.spec.health_path == "/metrics" else {}

    def kill(self, replica: Replica, sig: int = signal.SIGKILL, timeout: float = 30.0) -> str:
        """Send ``sig`` to the replica's whole process group (a SIGKILL takes the Rasa
        server's companion with it, as a crashed container would); how it ended.
        """
        process = replica.process
        if process is None or process.poll() is not None:
            return "not running"
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "killed after the grace period"
        return "killed" if process.returncode < 0 and -process.returncode == signal.SIGKILL else f"exited {process.returncode}"

    def stop(self, timeout: float = 20.0) -> dict[str, str]:
        """Stop every replica (SIGTERM, then SIGKILL past ``timeout``)."""
        self.stopping.set()
        ended = {label: self.kill(r, signal.SIGTERM, timeout) for label, r in reversed(list(self.replicas.items()))}
        for replica in self.replicas.values():
            if replica.log is not None:
                replica.log.close()
                replica.log = None
        return ended

    def tail(self, replica: Replica, lines: int = 30) -> str:
        if not replica.log_path.exists():
            return ""
        return "\n".join(replica.log_path.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each live replica and its children used so far."""
        used: dict[str, float] = {}
        for label, replica in self.replicas.items():
            if not replica.alive() or replica.pid is None:
                continue
            try:
                root = psutil.Process(replica.pid)
                total = 0.0
                for process in [root, *root.children(recursive=True)]:
                    times: Any = process.cpu_times()
                    total += times.user + times.system
                used[label] = total
            except psutil.Error:
                continue
        return used
