"""A stack's processes bind their ports late (a Rasa server once its model is loaded), so a
port chosen free can be taken meanwhile by another program on the machine: a test suite
running beside it, say. The stack must then never mistake that program for its own, and
starts again on other ports (salon/dev/stack.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from salon.dev import stack as stack_module
from salon.dev.stack import Stack, StackConfig, StackError, ephemeral_range, listens, quiet_ports


class _AnswersEverything(BaseHTTPRequestHandler):
    """Another program's server: 200 to any path, as a health route would."""

    def do_GET(self) -> None:
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def squatter() -> Iterator[int]:
    """A server on a quiet port that is not the stack's, answering 200 everywhere."""
    [port] = quiet_ports(1)
    server = ThreadingHTTPServer(("127.0.0.1", port), _AnswersEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


def test_quiet_ports_are_free_distinct_and_below_the_kernels_ephemeral_range() -> None:
    low, _ = ephemeral_range()
    ports = quiet_ports(5)
    assert len(set(ports)) == 5
    assert all(20000 <= port < low for port in ports)
    assert quiet_ports(0) == []  # a stack on fixed ports (the demo's) chooses none


def test_listens_tells_the_process_that_holds_a_port(squatter: int) -> None:
    assert listens(os.getpid(), squatter)
    assert not listens(os.getpid(), quiet_ports(1)[0])


def test_a_server_that_took_the_stacks_port_is_never_taken_for_its_own(tmp_path: Path, squatter: int) -> None:
    """The emulator's port is held by another server that answers its health route: the stack
    must report the emulator's failure to bind, not start against the stranger."""
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"not a model")
    stack = Stack(StackConfig(model=model, workdir=tmp_path / "stack", emulator_port=squatter,
                              rasa_port=0, actions_port=0, start_timeout_s=120))
    with pytest.raises(StackError, match="(?is)emulator exited.*address already in use"):
        stack.start()
    assert stack.processes == {}


def test_a_chosen_port_taken_before_the_bind_is_chosen_again(tmp_path: Path, squatter: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The first choice for the emulator is a port another server takes before the emulator
    binds: the stack starts again on other ports, and every process answers on its own."""
    choices: list[list[int]] = []

    def choose(count: int, host: str = "127.0.0.1") -> list[int]:
        ports = quiet_ports(count, host)
        if not choices:
            ports[0] = squatter
        choices.append(ports)
        return ports

    monkeypatch.setattr(stack_module, "quiet_ports", choose)
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"not a model")  # Rasa serves without one: enough to see it bound
    stack = Stack(StackConfig(model=model, workdir=tmp_path / "stack", emulator_port=0,
                              rasa_port=0, actions_port=0, start_timeout_s=180))
    with stack.running():
        assert len(choices) == 2 and choices[0][0] == squatter
        c = stack.config
        assert [c.emulator_port, c.rasa_port, c.actions_port] == choices[1]
        assert squatter not in choices[1]
        for name, port in (("emulator", c.emulator_port), ("rasa", c.rasa_port), ("actions", c.actions_port)):
            assert listens(stack.processes[name].pid, port), name
        assert "address already in use" not in stack.log_tail("emulator", 200).lower()
