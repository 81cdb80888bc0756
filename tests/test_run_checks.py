"""`make test`'s runner (scripts/run_checks.py) with small checks of its own: every check
runs to the end whatever another gave, the summary names each verdict, the closing line
reads like pytest's, and the exit code says whether anything failed."""

from __future__ import annotations

import importlib.util
import io
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from salon.config import PROJECT_ROOT
from salon.dev.stack import free_ports


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_checks", PROJECT_ROOT / "scripts" / "run_checks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_checks"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


def check(name: str, code: str, *, needs_model: bool = False, timeout_s: float = 60) -> object:
    return runner.Check(name, name, needs_model=needs_model, timeout_s=timeout_s,
                        details=(r"\d+ passed.*",), command=[sys.executable, "-c", code])


def _run(checks: list[object], tmp_path: Path, ports: list[int] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = runner.run(tuple(checks), jobs=2, out=out, log_dir=tmp_path / "logs",
                      ports=ports if ports is not None else free_ports(1))
    return code, out.getvalue()


def test_a_failing_check_does_not_stop_the_others(tmp_path: Path) -> None:
    code, text = _run([
        check("first", "print('3 passed in 0.1s')"),
        check("broken", "import sys; print('boom'); sys.exit(3)"),
        check("third", "print('5 passed in 0.2s')"),
        check("fourth", "print('1 passed')"),
    ], tmp_path)
    assert code == 1
    summary = text[text.index("make test: summary"):]
    lines = {line.split()[0]: line for line in summary.splitlines()[1:] if line.startswith("  ")}
    assert "passed" in lines["first"] and "3 passed in 0.1s" in lines["first"]
    assert "failed" in lines["broken"] and "exit 3" in lines["broken"]
    assert "passed" in lines["third"] and "passed" in lines["fourth"]
    assert str(tmp_path / "logs" / "broken.log") in lines["broken"]
    assert "--- the end of" in text and "boom" in text  # the failed check's log, shown
    assert (tmp_path / "logs" / "third.log").read_text().strip() == "5 passed in 0.2s"
    assert text.rstrip().splitlines()[-1].startswith("3 passed, 1 failed in ")


def test_all_passing_exits_zero_and_says_so(tmp_path: Path) -> None:
    code, text = _run([check("a", "print('1 passed')"), check("b", "print('2 passed')")], tmp_path)
    assert code == 0
    assert text.rstrip().splitlines()[-1].startswith("2 passed, 0 failed in ")


def test_checks_that_need_the_model_are_skipped_with_the_reason_when_training_fails(
    tmp_path: Path,
) -> None:
    code, text = _run([
        check("train", "import sys; sys.exit(1)"),
        check("unit", "print('7 passed')"),
        check("smoke", "print('1 passed')", needs_model=True),
    ], tmp_path)
    assert code == 1
    summary = text[text.index("make test: summary"):]
    assert any(line.split()[:2] == ["smoke", "skipped"] and "train failed" in line
               for line in summary.splitlines())
    assert any(line.split()[:2] == ["unit", "passed"] for line in summary.splitlines())
    assert text.rstrip().splitlines()[-1].startswith("1 passed, 1 failed, 1 skipped in ")


def test_a_check_using_a_held_default_port_fails_the_run(tmp_path: Path) -> None:
    [held] = free_ports(1)
    knock = f"import httpx; print(httpx.get('http://127.0.0.1:{held}/status').status_code)"
    code, text = _run([check("sloppy", knock)], tmp_path, ports=[held])
    assert code == 1
    assert (tmp_path / "logs" / "sloppy.log").read_text().strip() == "503"
    assert f"a check used [{held}]" in text
    assert text.rstrip().splitlines()[-1].startswith("1 passed, 1 failed in ")
    with pytest.raises(httpx.ConnectError):  # released at the end of the run
        httpx.get(f"http://127.0.0.1:{held}/", timeout=2)


def test_a_port_already_taken_is_left_to_its_owner(tmp_path: Path) -> None:
    with socket.socket() as demo:
        demo.bind(("127.0.0.1", 0))
        demo.listen()
        port = demo.getsockname()[1]
        code, text = _run([check("a", "print('1 passed')")], tmp_path, ports=[port])
    assert code == 0
    assert f"ports [{port}] are already in use" in text


def test_a_check_that_leaves_a_process_running_fails_and_the_process_is_stopped(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "orphan.pid"
    leave = ("import subprocess, sys, pathlib; "
             "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], "
             "start_new_session=True); "
             f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); print('1 passed')")
    code, text = _run([check("leaky", leave)], tmp_path)
    assert code == 1
    assert "left running" in text
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    status = Path(f"/proc/{pid}/status")
    assert not status.exists() or "zombie" in status.read_text()


def test_a_check_over_its_time_is_stopped_and_failed(tmp_path: Path) -> None:
    code, text = _run([check("slow", "import time; time.sleep(60)", timeout_s=1)], tmp_path)
    assert code == 1
    assert "timed out after 1 s" in text


def test_the_project_checks_are_the_makefile_targets() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for item in runner.CHECKS:
        assert f"\n{item.target}:" in makefile, item.target
    names = [item.name for item in runner.CHECKS]
    assert {"pytest", "e2e", "demo-check", "smoke", "bookings-at-instants", "lint", "validate",
            "train", "rasa-test"} <= set(names)
