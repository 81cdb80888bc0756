"""End-to-end smoke test of the trained assistant: real servers, real HTTP.

Starts the action server and `rasa run --enable-api --auth-token …` on loopback with the
given model, waits until the model is loaded, then holds one short conversation per core
intent through the REST channel and checks each answer. Also checks that the HTTP API
refuses requests without the token. Stops both servers at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent

# (what a client writes, a phrase the assistant's answer must contain); button payloads
# are shown after the text as " [payload]", so a phrase can pin what a tap will send.
CONVERSATIONS: list[list[tuple[str, str]]] = [
    [("Good evening", "welcome to Maison Solenne"), ("thank you", "With pleasure"), ("no, that's all", "")],
    [("are you a bot?", "digital assistant")],
    [("is the Aurore tote available in tan?", "The Aurore tote in Tan is available in Paris")],
    [("how much is the Méridien 38", "The Méridien 38")],
    [
        ("I would like to book an appointment", 'suit you? [/inform{"boutique": "paris"}]'),
        ('/inform{"boutique": "paris"}', "What shall we prepare"),
        ('/inform{"service": "private_viewing"}', "Which day and time"),
        ("friday afternoon", 'free times in Paris. Which would suit you? [/inform{"appointment_start": '),
    ],
    [("where is my order?", "order number"), ("SOL-104233", "order SOL-104233")],
    [("can you recommend something to wear to a summer wedding?", "I would suggest the Amalfi silk dress"),
     ("yes please", "will reply to you here")],
    [("the clasp on my bracelet broke", "Which piece is it?"),
     ("the Astre bracelet", "Could you send me a photo? It helps our atelier a great deal. [/deny]")],
    [("tell me when the Ondine bucket bag is back in black", "is available at our London, Milan and Paris boutiques")],
    [("I'd love to attend the trunk show with my husband", "by personal invitation")],
    [("can I have my initials embossed on a card holder", "I have prepared your request")],
    [("I want to speak to my advisor", "client advisor from our Paris boutique will reply to you here")],
    [("my coat arrived damaged, this is unacceptable", "truly sorry")],
    [("STOP", "no longer receive"), ("START", "again receive")],
    [("who won the football last night", "beyond what I can help")],
]


def wait_for(url: str, params: dict[str, str], deadline: float, process: subprocess.Popen) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} while starting")
        try:
            if httpx.get(url, params=params, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/salon.tar.gz")
    parser.add_argument("--rasa-port", type=int, default=5905)
    parser.add_argument("--actions-port", type=int, default=5956)
    parser.add_argument("--timeout", type=float, default=480.0)
    args = parser.parse_args(argv)

    token = uuid.uuid4().hex
    bin_dir = Path(sys.executable).parent
    log_dir = PROJECT / "var"
    log_dir.mkdir(exist_ok=True)
    endpoints = log_dir / "smoke-endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{args.actions_port}/webhook"\n'
        f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "var/smoke-trackers.db"\n'
    )
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log_dir / "smoke-actions.log", "w") as actions_log, open(log_dir / "smoke-rasa.log", "w") as rasa_log:
        actions = subprocess.Popen(
            [str(bin_dir / "python"), "-m", "rasa_sdk", "--actions", "actions", "--port", str(args.actions_port)],
            cwd=PROJECT, env=env, stdout=actions_log, stderr=subprocess.STDOUT,
        )
        rasa = subprocess.Popen(
            [str(bin_dir / "rasa"), "run", "--enable-api", "--auth-token", token, "--port", str(args.rasa_port),
             "--interface", "127.0.0.1", "--model", args.model, "--endpoints", str(endpoints),
             "--credentials", "credentials.yml"],
            cwd=PROJECT, env=env, stdout=rasa_log, stderr=subprocess.STDOUT,
        )
        passed = failed = 0
        try:
            deadline = time.monotonic() + args.timeout
            base = f"http://127.0.0.1:{args.rasa_port}"
            wait_for(f"http://127.0.0.1:{args.actions_port}/health", {}, deadline, actions)
            wait_for(f"{base}/status", {"token": token}, deadline, rasa)

            refused = httpx.get(f"{base}/status", timeout=10).status_code
            if refused == 401:
                passed += 1
            else:
                failed += 1
                print(f"smoke FAIL: /status without a token answered {refused}, expected 401")

            for conversation in CONVERSATIONS:
                sender = f"smoke-{uuid.uuid4().hex[:10]}"
                for text, expected in conversation:
                    reply = httpx.post(
                        f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60
                    )
                    answers = " / ".join(
                        item.get("text", "")
                        + "".join(f" [{button.get('payload')}]" for button in item.get("buttons", []))
                        for item in reply.json()
                    )
                    if reply.status_code == 200 and answers and expected in answers:
                        passed += 1
                        print(f"smoke ok: {text!r} -> {answers!r}")
                    else:
                        failed += 1
                        print(f"smoke FAIL: {text!r} -> {answers!r} (expected {expected!r})")
        except RuntimeError as exc:
            failed += 1
            print(f"smoke FAIL: {exc}; see var/smoke-rasa.log and var/smoke-actions.log")
        finally:
            for process in (rasa, actions):
                process.terminate()
            for process in (rasa, actions):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
    print(f"smoke: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
