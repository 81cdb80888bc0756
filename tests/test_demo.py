"""`salon demo` / `salon demo-check`: the parts that need no running stack."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from salon.cli import build_parser
from salon.config import PROJECT_ROOT
from salon.dev import demo
from salon.dev.demo import FollowUpServer, Step, demo_banner, run_steps, stack_config
from salon.dev.stack import StackConfig, free_ports

# --------------------------------------------------------------------------- arguments


def test_demo_defaults_to_the_standard_ports_and_var_demo() -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.emulator_port, args.rasa_port, args.actions_port) == (5900, 5005, 5055)
    assert args.followup_port == 5901
    assert args.model == PROJECT_ROOT / "models" / "salon.tar.gz"
    assert args.workdir == PROJECT_ROOT / "var" / "demo"
    assert args.keep_state is False
    assert args.handler.__name__ == "_demo"


def test_demo_options_override_model_and_ports() -> None:
    args = build_parser().parse_args(
        ["demo", "--model", "other.tar.gz", "--emulator-port", "6900", "--rasa-port", "6005",
         "--actions-port", "6055", "--followup-port", "0", "--keep-state"]
    )
    config = stack_config(args, Path("somewhere"))
    assert config.model == Path("other.tar.gz").resolve()
    assert (config.emulator_port, config.rasa_port, config.actions_port) == (6900, 6005, 6055)
    assert args.followup_port == 0 and args.keep_state is True and config.workdir.is_absolute()
    # each run makes its own secrets: none is a published default, none shows in a repr
    again = stack_config(args, Path("somewhere"))
    for name in ("rasa_jwt_secret", "identity_key", "actions_token"):
        assert len(getattr(config, name)) >= 32 and getattr(config, name) != getattr(again, name)
        assert getattr(config, name) not in repr(config)


def test_demo_check_uses_free_ports_a_temporary_folder_and_a_fixed_instant() -> None:
    args = build_parser().parse_args(["demo-check"])
    assert (args.emulator_port, args.rasa_port, args.actions_port) == (0, 0, 0)  # chosen free
    assert args.workdir is None and args.quiet_seconds == 0.3
    assert args.at == demo.STORY_INSTANT
    assert args.handler.__name__ == "_demo_check"
    config = stack_config(args, Path("somewhere"))
    assert config.start_at == demo.STORY_INSTANT


def test_instants_need_their_offset(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["demo-check", "--at", "2026-12-31T23:30:00+01:00"])
    assert args.at == datetime(2026, 12, 31, 22, 30, tzinfo=timezone.utc)
    assert build_parser().parse_args(["demo"]).at is None  # the demo runs on the real time
    for bad in ("2026-12-31T23:30:00", "next friday"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["demo-check", "--at", bad])
    assert "offset" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["http", "-1", "70000"])
def test_a_bad_port_is_refused(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["demo", "--rasa-port", bad])
    assert exit_info.value.code == 2
    assert "port" in capsys.readouterr().err


# --------------------------------------------------------------------------- steps


def _step(title: str, passed: bool, seen: str, calls: list[str]) -> Step:
    def check() -> tuple[bool, str]:
        calls.append(title)
        return passed, seen

    return Step(title, f"expected of {title}", check)


def test_all_steps_passing_exit_zero() -> None:
    calls: list[str] = []
    out = io.StringIO()
    steps = [_step("greet", True, "a greeting", calls), _step("book", True, "a prompt", calls)]
    assert run_steps(steps, out) == 0
    assert calls == ["greet", "book"]
    text = out.getvalue()
    assert "ok    1. greet" in text and "saw: a greeting" in text
    assert "FAIL" not in text


def test_a_failed_step_is_reported_with_what_was_expected_and_seen() -> None:
    calls: list[str] = []
    out = io.StringIO()
    steps = [
        _step("greet", True, "a greeting", calls),
        _step("follow up", False, 'text "Good day" (failed, error 131047)', calls),
        _step("tap", True, "never", calls),
    ]
    assert run_steps(steps, out) == 1
    assert calls == ["greet", "follow up"]  # nothing runs after a failure
    text = out.getvalue()
    assert "FAIL  2. follow up" in text
    assert "expected: expected of follow up" in text
    assert 'saw: text "Good day" (failed, error 131047)' in text
    assert "skip  3. tap" in text


def test_a_crashing_step_is_a_failed_step() -> None:
    def boom() -> tuple[bool, str]:
        raise httpx.ConnectError("connection refused")

    out = io.StringIO()
    assert run_steps([Step("greet", "a greeting", boom)], out) == 1
    assert "FAIL  1. greet" in out.getvalue()
    assert "ConnectError: connection refused" in out.getvalue()


def test_show_describes_templates_buttons_and_failures() -> None:
    shown = demo._show_all(
        [
            {"type": "interactive", "template": None, "body": "Good day", "buttons": ["Book a visit"],
             "status": "read"},
            {"type": "text", "template": None, "body": "Late", "buttons": [], "status": "failed",
             "error_code": 131047},
            {"type": "template", "template": "advisor_update_nudge", "body": "Bonjour Claire",
             "buttons": ["Voir le message"], "status": "sent"},
        ]
    )
    assert 'interactive "Good day" [Book a visit]' in shown
    assert '(failed, error 131047)' in shown
    assert 'template advisor_update_nudge "Bonjour Claire" [Voir le message]' in shown
    assert demo._show_all([]) == "nothing"


def test_one_containing_refuses_failures_and_templates() -> None:
    good = {"body": "Which boutique would suit you?", "template": None, "status": "sent"}
    assert demo._one_containing([good], "Which boutique")[0] is True
    assert demo._one_containing([good], "Which service")[0] is False
    assert demo._one_containing([{**good, "status": "failed"}], "Which boutique")[0] is False
    nudge = {**good, "template": "advisor_update_nudge"}
    assert demo._one_containing([nudge], "Which boutique")[0] is False
    assert demo._one_containing([], "anything") == (False, "nothing")


# --------------------------------------------------------------------------- banner


def test_the_banner_gives_every_address_and_the_story() -> None:
    config = StackConfig(model=Path("m.tar.gz"), workdir=Path("/tmp/demo"))
    text = demo_banner(config, "http://127.0.0.1:5901/follow-up")
    assert "http://127.0.0.1:5900/_emulator/phone?followup=http://127.0.0.1:5901/follow-up" in text
    assert "http://127.0.0.1:5005" in text and "http://127.0.0.1:5055/health" in text
    assert "http://127.0.0.1:5900/_emulator/" in text
    assert "Book a visit" in text and '"where is my order?"' in text and "+24 h" in text
    assert "Assistant follow-up" in text
    assert "trigger_intent?output_channel=whatsapp&purpose=advisor_followup" in text
    assert "token=" not in text.replace("export SALON_DEMO_TOKEN=", "")  # never in a URL
    [token] = [line.split("=", 1)[1] for line in text.splitlines() if "export SALON_DEMO_TOKEN=" in line]
    assert jwt.decode(token, config.rasa_jwt_secret, algorithms=["HS256"])["user"]["role"] == "admin"

    plain = demo_banner(config, None)
    assert "http://127.0.0.1:5900/_emulator/phone\n" in plain
    assert "Assistant follow-up" not in plain and "curl -X POST" in plain


# --------------------------------------------------------------------------- follow-up


@pytest.fixture
def fake_rasa() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            auth = self.headers.get("Authorization") or ""
            seen.append({"path": self.path, "body": json.loads(self.rfile.read(length)), "auth": auth})
            try:
                jwt.decode(auth.removeprefix("Bearer "), "secret", algorithms=["HS256"])
                status = 200
            except jwt.InvalidTokenError:
                status = 401
            data = json.dumps({"tracker": {}} if status == 200 else {"message": "nope"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_trigger_follow_up_asks_rasa_for_the_whatsapp_channel(
    fake_rasa: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = fake_rasa
    assert demo.trigger_follow_up(url, "secret", "33600000001") == {"tracker": {}}
    [call] = seen
    # the purpose in the query, the credential in a header, no secret in the URL
    assert call["path"] == ("/conversations/33600000001/trigger_intent"
                            "?output_channel=whatsapp&purpose=advisor_followup")
    assert call["body"] == {"name": "advisor_followup"} and call["auth"].startswith("Bearer ")
    with pytest.raises(httpx.HTTPStatusError):
        demo.trigger_follow_up(url, "wrong", "33600000001")
    with pytest.raises(ValueError):
        demo.trigger_follow_up(url, "secret", "../admin")
    with pytest.raises(ValueError):
        demo.trigger_follow_up(url, "secret", "33600000001", intent="greet; rm")


@pytest.fixture
def helper() -> Iterator[tuple[FollowUpServer, list[tuple[str, str]]]]:
    calls: list[tuple[str, str]] = []

    def trigger(client: str, intent: str) -> None:
        if client == "33699999999":
            raise httpx.ConnectError("connection refused")
        calls.append((client, intent))

    server = FollowUpServer(trigger, ["http://127.0.0.1:5900"])
    server.start()
    try:
        yield server, calls
    finally:
        server.stop()


def test_the_follow_up_helper_triggers_and_allows_the_phone_page(
    helper: tuple[FollowUpServer, list[tuple[str, str]]],
) -> None:
    server, calls = helper
    page = {"Origin": "http://127.0.0.1:5900"}
    preflight = httpx.options(server.url, headers={
        **page, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    })
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:5900"
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]

    response = httpx.post(server.url, json={"client": "+33600000001"}, headers=page)
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "client": "33600000001", "intent": "advisor_followup"}
    assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:5900"
    assert calls == [("33600000001", "advisor_followup")]

    other = httpx.post(server.url, json={}, headers={"Origin": "http://evil.example"})
    assert other.status_code == 200  # curl-like callers work; browsers elsewhere are not let in
    assert "access-control-allow-origin" not in other.headers


def test_the_follow_up_helper_reports_errors_plainly(
    helper: tuple[FollowUpServer, list[tuple[str, str]]],
) -> None:
    server, calls = helper
    bad = httpx.post(server.url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    assert httpx.post(server.url, json={"client": "abc"}).status_code == 400
    assert httpx.post(server.url, json=["x"]).status_code == 400
    down = httpx.post(server.url, json={"client": "33699999999"})
    assert down.status_code == 502 and "could not be reached" in down.json()["error"]
    assert httpx.post(server.url.replace("/follow-up", "/other"), json={}).status_code == 404
    assert calls == []


# --------------------------------------------------------------------------- refusals


def test_demo_refuses_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["demo", "--model", str(tmp_path / "none.tar.gz"), "--workdir", str(tmp_path)]
    )
    assert args.handler(args) == 2
    assert "no trained model" in capsys.readouterr().err
    check = build_parser().parse_args(["demo-check", "--model", str(tmp_path / "none.tar.gz")])
    assert check.handler(check) == 2


def test_demo_refuses_ports_already_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the port held here is reported busy: every other port of the run is a free one
    too, so the test passes while a demo holds the default ports."""
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"")
    rasa, actions, followup = free_ports(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert demo.ports_in_use([port]) == [port]
        args = build_parser().parse_args(
            ["demo", "--model", str(model), "--workdir", str(tmp_path / "w"),
             "--emulator-port", str(port), "--rasa-port", str(rasa),
             "--actions-port", str(actions), "--followup-port", str(followup)]
        )
        assert demo.run_demo(args) == 2
    assert f"[{port}] already in use" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing was started or written


def test_sigterm_becomes_an_exception_so_cleanup_runs() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(demo._Terminated), demo._stop_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises in the main thread, interrupting the sleep
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_fresh_demo_forgets_the_previous_run_only(tmp_path: Path) -> None:
    for name in ("clock.json", "rasa-trackers.db", "salon.db", "salon.db-wal", "rasa.log"):
        (tmp_path / name).write_text("x")
    demo._fresh(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rasa.log"]
