"""The one process description (deploy/processes.yml) and the launcher that starts a
deployment from it (salon/dev/processes.py): what it refuses, and a real process started,
killed as a crash would and started again.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from salon.dev.processes import Launcher, command_of, load
from salon.dev.stack import StackError, listens, quiet_ports

WEB = """
common_env: [SALON_LOG_MASK_KEY]
processes:
  web:
    replicas: 2
    command: python -m http.server --bind ${SALON_BIND_HOST} ${WEB_PORT}
    ports: {http: WEB_PORT}
    health: {port: http, path: /}
    env: [SALON_BIND_HOST, WEB_PORT]
"""


def describe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "processes.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_description_names_every_variable_its_commands_use() -> None:
    description = load()
    assert {"rasa", "actions", "worker", "outbound-api", "balancer"} <= set(description.processes)
    rasa = description.processes["rasa"]
    assert rasa.replicas >= 2 and rasa.health_path == "/webhooks/whatsapp/" and "webhook" in rasa.balanced
    for spec in description.processes.values():
        assert spec.variables() <= set(description.env_of(spec.name)), spec.name
    assert description.processes["worker"].shard_env == "SALON_OUTBOUND_SHARD"


def test_a_command_using_a_variable_outside_its_env_is_refused(tmp_path: Path) -> None:
    text = WEB.replace("env: [SALON_BIND_HOST, WEB_PORT]", "env: [WEB_PORT]")
    with pytest.raises(ValueError, match=r"'web' uses \['SALON_BIND_HOST'\] not in its env"):
        load(describe(tmp_path, text))


def test_a_health_check_on_a_port_the_process_does_not_have_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="health check of 'web' names no port"):
        load(describe(tmp_path, WEB.replace("health: {port: http", "health: {port: admin")))


def test_an_unset_variable_stops_the_start_with_its_name(tmp_path: Path) -> None:
    spec = load(describe(tmp_path, WEB)).processes["web"]
    with pytest.raises(StackError, match="web: SALON_BIND_HOST not set"):
        command_of(spec, {"WEB_PORT": "8000"})
    argv = command_of(spec, {"WEB_PORT": "8000", "SALON_BIND_HOST": "127.0.0.1"})
    assert argv == [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "8000"]


def test_a_replica_killed_as_a_crash_would_starts_again_on_its_port(tmp_path: Path) -> None:
    launcher = Launcher(load(describe(tmp_path, WEB)), tmp_path / "logs")
    first, second = quiet_ports(2)
    base = {"SALON_BIND_HOST": "127.0.0.1", "PATH": "/usr/bin:/bin"}
    one = launcher.replica("web", 0, {**base, "WEB_PORT": str(first)})
    two = launcher.replica("web", 1, {**base, "WEB_PORT": str(second)})
    assert (one.label, two.label) == ("web-1", "web-2")
    try:
        for replica in (one, two):
            launcher.start(replica)
        for replica in (one, two):
            launcher.wait_healthy(replica, 30)
        assert replica.pid is not None and listens(replica.pid, second)
        assert launcher.kill(one, signal.SIGKILL) == "killed"
        assert not one.alive() and two.alive()
        launcher.start(one)
        launcher.wait_healthy(one, 30)
        assert one.pid is not None and listens(one.pid, first)
        assert set(launcher.cpu_seconds()) == {"web-1", "web-2"}
    finally:
        ended = launcher.stop()
    assert set(ended) == {"web-1", "web-2"}
    assert not one.alive() and not two.alive()
    assert one.log_path.exists()


def test_a_replica_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    launcher = Launcher(load(describe(tmp_path, WEB)), tmp_path / "logs")
    [port] = quiet_ports(1)
    replica = launcher.replica("web", 0, {"SALON_BIND_HOST": "not-an-address.invalid", "WEB_PORT": str(port)})
    launcher.start(replica)
    try:
        with pytest.raises(StackError, match="web-1 exited with"):
            launcher.wait_healthy(replica, 30)
    finally:
        launcher.stop()
