"""A styling turn through the WhatsApp channel and the Cloud API emulator: the action's
answer becomes Rasa's bot message and goes through the send-time guard. When the model
is slow and the turn ends after the window closed, the answer is parked behind the
re-engagement template, never sent free-form; the client's tap delivers it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rasa.core.actions.action import create_bot_utterance
from rasa.core.channels.channel import UserMessage
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import backends
from actions.styling import ActionStylingAdvice
from salon.clock import ManualClock
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.identity import ClientRef
from salon.integrations.seed import seed_database
from tests.llm.scripted_llm import Step, running_llm
from tests.whatsapp_support import APP_SECRET, running_channel

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"
QUESTION = "which clutch should I take to a black-tie gala?"
DRAFT = ("For a black-tie gala, the Mistral clutch in Noir, at €1,850, is slim enough for an evening. "
         "Shall I ask Sophie to set it aside for you?")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("window") / "salon.db"
    seed_database(f"sqlite:///{path}", PROJECT_ROOT / "data" / "maison")
    return path


@pytest.fixture()
def settings(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    db = tmp_path / "salon.db"
    shutil.copy(seeded, db)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    backends.reset()
    yield Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=f"sqlite:///{db}", redis_url=None)
    backends.reset()


async def styling_turn(message: UserMessage) -> None:
    """What Rasa does for a styling_advice turn: run the action, turn each message it
    dispatched into a bot utterance, hand that to the output channel."""
    tracker = Tracker(
        sender_id=message.sender_id, slots={},
        latest_message={"text": message.text, "intent": {"name": "styling_advice", "confidence": 0.95},
                        "entities": [], "metadata": message.metadata or {}},
        events=[], paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    await ActionStylingAdvice().run(dispatcher, tracker, {})
    for sent in dispatcher.messages:
        await message.output_channel.send_response(message.sender_id, create_bot_utterance(dict(sent)).message())


async def client_box(admin: aiohttp.ClientSession, count: int) -> list[dict[str, Any]]:
    box: list[dict[str, Any]] = []
    for _ in range(200):
        async with admin.get("/_emulator/outbox", params={"to": CLAIRE}) as r:
            box = list(await r.json())
        if len(box) >= count and all(m["status"] in ("read", "failed", "rejected") for m in box):
            return box
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox: {box}")


async def inbound(admin: aiohttp.ClientSession, **body: Any) -> None:
    async with admin.post("/_emulator/inbound", json=body) as r:
        assert r.status == 200, await r.text()
    async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
        assert (await r.json())["idle"]


@pytest.mark.parametrize("slow", [False, True], ids=["in time", "after the window"])
async def test_a_slow_model_turn_after_the_window_is_parked_not_sent(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    clock = ManualClock(T0)

    def provider_takes_a_day() -> None:  # the turn ends 25 h after the client wrote
        clock.advance(timedelta(hours=25))

    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03)
    async with running_llm([Step(DRAFT, on_request=provider_takes_a_day if slow else None)]) as llm, \
            running_emulator(config, clock=clock) as emu, \
            running_channel(settings, api_base_url=emu.base_url, clock=clock, reply=styling_turn,
                            access_token=config.access_token) as ch, \
            aiohttp.ClientSession(base_url=emu.base_url) as admin:
        monkeypatch.setenv("SALON_LLM_BASE_URL", llm.base_url)
        monkeypatch.setenv("SALON_LLM_MODEL", "stylist")
        async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
            assert r.status == 200
        await inbound(admin, **{"from": CLAIRE, "text": QUESTION, "name": "Claire Laurent"})
        await ch.settle()
        assert len(llm.requests) == 1
        box = await client_box(admin, 1)
        ref = ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE)
        state = await ch.runtime.service.sessions.get(ref)  # type: ignore[union-attr]
        assert state is not None
        if not slow:
            [answer] = box
            assert answer["type"] == "interactive" and answer["template"] is None
            assert DRAFT in answer["body"] and state.parked_count == 0
            return
        # After the window: the answer waits; one approved template knocks.
        [nudge] = box
        assert nudge["type"] == "template" and nudge["template"] == "advisor_update_nudge"
        assert "Mistral" not in (nudge["body"] or "") and "1,850" not in (nudge["body"] or "")
        assert state.parked_count == 1 and state.nudge_pending
        record = await ch.runtime.service.sent.outbound_by_wamid(nudge["wamid"])  # type: ignore[union-attr]
        assert record is not None and record.kind == "nudge"
        # Her tap opens the window again and delivers the answer, with no new turn.
        turns = len(ch.received)
        await inbound(admin, **{"from": CLAIRE, "reply_to": nudge["wamid"], "button": "0"})
        box = await client_box(admin, 2)
        assert box[1]["type"] == "interactive" and DRAFT in box[1]["body"] and box[1]["template"] is None
        assert len(ch.received) == turns and len(llm.requests) == 1
