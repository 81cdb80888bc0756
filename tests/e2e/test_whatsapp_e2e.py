"""End to end: `rasa run` with the trained model, the action server and the WhatsApp
channel, against the local Cloud API emulator (separate processes, real HTTP, signed
webhooks, one shared clock file for time travel).

Needs the trained model (`make train`); `make e2e` runs this after training.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from salon.config import PROJECT_ROOT
from salon.stack import Stack, StackConfig

MODEL = PROJECT_ROOT / "models" / "salon.tar.gz"
CLAIRE = "33600000001"  # in the maison's book, utility opt-in, English
QUIET_S = 2.5  # how long "nothing more arrives" is watched


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not MODEL.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{MODEL} is missing: make e2e trains it first")
        pytest.skip(f"no trained model at {MODEL} (run `make train`)")
    config = StackConfig(
        model=MODEL, workdir=Path(tmp_path_factory.mktemp("stack")),
        emulator_port=5921, rasa_port=5925, actions_port=5975, rasa_token="e2e-token",
    )
    with Stack(config).running() as running:
        yield running


def _settled(stack: Stack, to: str, count: int) -> list[dict]:  # type: ignore[type-arg]
    stack.wait_outbox(to, count)
    time.sleep(QUIET_S)
    return stack.outbox(to)


def test_signed_inbound_text_gets_exactly_one_reply(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    sent = stack.emulator("POST", "/_emulator/inbound", json={"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
    assert sent["wamid"].startswith("wamid.")
    box = _settled(stack, CLAIRE, 1)
    assert len(box) == 1, box
    reply = box[0]
    assert reply["type"] == "interactive" and reply["template"] is None
    assert "welcome to Maison Solenne" in reply["body"]
    assert reply["buttons"][:1] == ["Book a visit"]
    # The reply was delivered (status webhooks flowed back into the channel).
    deadline = time.monotonic() + 10
    while stack.outbox(CLAIRE)[0]["status"] not in ("delivered", "read") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.outbox(CLAIRE)[0]["status"] in ("delivered", "read")


def test_turn_across_the_window_boundary_sends_a_template_never_free_form(stack: Stack) -> None:
    stack.emulator("POST", "/_emulator/reset")
    stack.emulator("POST", "/_emulator/inbound", json={"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
    _settled(stack, CLAIRE, 1)

    stack.emulator("POST", "/_emulator/clock", json={"advance_seconds": 25 * 3600})
    # The assistant speaks first, 25 h later (a reminder or an external event).
    response = httpx.post(
        f"{stack.config.rasa_url}/conversations/{CLAIRE}/trigger_intent",
        params={"output_channel": "whatsapp", "token": stack.config.rasa_token},
        json={"name": "greet"}, timeout=60,
    )
    assert response.status_code == 200, response.text
    box = _settled(stack, CLAIRE, 2)
    assert len(box) == 2, box
    nudge = box[1]
    assert nudge["type"] == "template", box
    assert nudge["template"] == "advisor_update_nudge"
    assert "Claire" in nudge["body"]
    assert nudge["status"] != "failed" and nudge["error_code"] is None
    assert all(m["error_code"] != 131047 for m in box)

    # The client taps the nudge's button: the parked message arrives, nothing else.
    stack.emulator("POST", "/_emulator/inbound", json={
        "from": CLAIRE, "reply_to": nudge["wamid"], "button": "0", "name": "Claire Laurent",
    })
    box = _settled(stack, CLAIRE, 3)
    assert len(box) == 3, box
    delivered = box[2]
    assert delivered["template"] is None and delivered["type"] == "interactive"
    assert "welcome to Maison Solenne" in delivered["body"]
    assert delivered["error_code"] is None
