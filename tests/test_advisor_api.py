"""The advisor API on the WhatsApp channel's blueprint, against the Cloud API emulator
and Rasa's own in-memory tracker and lock stores: tokens and visibility, the list with
window state, the transcript, replies through the send-time guard (free-form while the
window is open, parked behind the nudge template once closed) and the hand-back."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationPaused, UserUttered

from salon.advisors.handoff import HandoffBook
from salon.clock import ManualClock
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.integrations.seed import seed_database
from tests.whatsapp_support import APP_SECRET, PNID, Channel, running_channel

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)  # Wednesday, 10:00 in Paris
CLAIRE = "33600000001"  # Sophie's client
SOPHIE = "sophie-token-0123456789"
JAMES = "james-token-0123456789"
OPS = "ops-token-0123456789"
TOKENS = [
    {"name": "sophie", "token": SOPHIE, "scopes": ["advisor"], "advisor_id": "sophie-marchand"},
    {"name": "james", "token": JAMES, "scopes": ["advisor"], "advisor_id": "james-whitaker"},
    {"name": "ops", "token": OPS, "scopes": ["manager"]},
    {"name": "metrics", "token": "metrics-token-0123456789", "scopes": ["metrics"]},
]


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    template = tmp_path / "seeded.db"
    seed_database(f"sqlite:///{template}", PROJECT_ROOT / "data" / "maison")
    db = tmp_path / "salon.db"
    shutil.copy(template, db)
    monkeypatch.setenv("SALON_API_TOKENS", json.dumps(TOKENS))
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=f"sqlite:///{db}", redis_url=None)


@asynccontextmanager
async def desk(settings: Settings, clock: ManualClock) -> AsyncIterator[tuple[Channel, Any, aiohttp.ClientSession, Any]]:
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    agent = SimpleNamespace(tracker_store=InMemoryTrackerStore(domain), lock_store=InMemoryLockStore())

    async def reply(message: Any) -> None:  # Rasa logs a paused conversation's messages, no reply
        tracker = await agent.tracker_store.get_or_create_tracker(message.sender_id)
        intent = "thank" if message.text.startswith("Thank") else "inform"  # what the NLU would say
        tracker.update(UserUttered(message.text, intent={"name": intent}, metadata=message.metadata))
        await agent.tracker_store.save(tracker)

    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03)
    async with running_emulator(config, clock=clock) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, clock=clock, reply=reply,
                                   access_token=config.access_token, agent=agent) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200
                yield ch, agent, admin, emu


async def call(ch: Channel, method: str, path: str, token: str | None = None,
               body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert ch.http is not None
    async with ch.http.request(method, f"{ch.url}/webhooks/whatsapp/advisor{path}", headers=headers,
                               json=body) as resp:
        return resp.status, await resp.json()


async def client_writes(ch: Channel, admin: aiohttp.ClientSession, text: str) -> None:
    async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": text,
                                                      "name": "Claire Laurent"}) as r:
        assert r.status == 200
    async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
        assert (await r.json())["idle"]
    await ch.settle()


async def outbox(admin: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with admin.post("/_emulator/wait_idle", json={"timeout": 10}):
        pass
    async with admin.get("/_emulator/outbox", params={"to": CLAIRE}) as r:
        return list(await r.json())


async def test_advisor_api_end_to_end(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with desk(settings, clock) as (ch, agent, admin, _):
        await client_writes(ch, admin, "I would like to speak to Sophie")
        # What action_handoff does in the action server: the record, then the pause.
        book = HandoffBook(settings.effective_database_url)
        await book.initialize()
        await book.open(conversation_id=CLAIRE, reason="talk_to_advisor", note="Client wrote: speak to Sophie",
                        language="fr", now=clock.now(), client_id="C-001", client_name="Claire Laurent",
                        advisor_id="sophie-marchand", boutique_id="paris", phone_number_id=PNID,
                        wa_id=CLAIRE)
        await book.close()
        tracker = await agent.tracker_store.get_or_create_tracker(CLAIRE)
        tracker.update(ActionExecuted("action_handoff"))
        tracker.update(ConversationPaused())
        await agent.tracker_store.save(tracker)
        await client_writes(ch, admin, "Thank you, I will wait for her")  # paused: logged, window kept

        # Tokens and visibility.
        assert (await call(ch, "GET", "/conversations"))[0] == 401
        assert (await call(ch, "GET", "/conversations", "not-a-known-token-at-all"))[0] == 401
        assert (await call(ch, "GET", "/conversations", "metrics-token-0123456789"))[0] == 403
        status, body = await call(ch, "GET", "/conversations", JAMES)
        assert (status, body) == (200, {"conversations": []})
        assert (await call(ch, "GET", f"/conversations/{CLAIRE}", JAMES))[0] == 403
        assert (await call(ch, "POST", f"/conversations/{CLAIRE}/reply", JAMES, {"text": "Hello"}))[0] == 403
        assert (await call(ch, "GET", "/conversations/33600000099", OPS))[0] == 404
        assert (await call(ch, "GET", "/conversations/33600000099", SOPHIE))[0] == 403

        status, body = await call(ch, "GET", "/conversations", SOPHIE)
        assert status == 200
        [item] = body["conversations"]
        assert (item["conversation_id"], item["client_id"], item["reason"], item["status"]) == (
            CLAIRE, "C-001", "talk_to_advisor", "open")
        assert item["window"]["open"] is True and item["window"]["can_send_free_form"] is True
        assert (await call(ch, "GET", "/conversations", OPS))[1]["conversations"] == body["conversations"]

        status, body = await call(ch, "GET", f"/conversations/{CLAIRE}", SOPHIE)
        assert status == 200
        assert [(line["from"], line["text"]) for line in body["transcript"]] == [
            ("client", "I would like to speak to Sophie"), ("system", "handed to an advisor"),
            ("client", "Thank you, I will wait for her")]
        assert await outbox(admin) == []  # a thank-you needs no answer

        # Something more for her advisor: the client hears once that Sophie's desk has it.
        await client_writes(ch, admin, "It is about the Aurore bag")
        await client_writes(ch, admin, "the one in tan")
        # No advisor_name slot in this tracker: the note names the maison's advisors.
        note = ("Your message has reached our client advisors; one of them will reply to you here "
                "personally.")
        assert [(m["type"], m["body"]) for m in await outbox(admin)] == [("text", note)]
        transcript = (await call(ch, "GET", f"/conversations/{CLAIRE}", SOPHIE))[1]["transcript"]
        assert [(line["from"], line["text"]) for line in transcript[-3:]] == [
            ("client", "It is about the Aurore bag"), ("assistant", note), ("client", "the one in tan")]

        # A reply while the window is open goes out free-form, and joins the transcript.
        assert (await call(ch, "POST", f"/conversations/{CLAIRE}/reply", SOPHIE, {"text": ""}))[0] == 400
        status, body = await call(ch, "POST", f"/conversations/{CLAIRE}/reply", SOPHIE,
                                  {"text": "Bonjour Madame Laurent, c'est Sophie. Je m'en occupe."})
        assert status == 200 and body["sent"] == "free_form" and body["wamid"]
        box = await outbox(admin)
        assert [(m["type"], m["body"]) for m in box] == [
            ("text", note), ("text", "Bonjour Madame Laurent, c'est Sophie. Je m'en occupe.")]
        transcript = (await call(ch, "GET", f"/conversations/{CLAIRE}", SOPHIE))[1]["transcript"]
        assert transcript[-1] == {**transcript[-1], "from": "advisor", "advisor": "sophie",
                                  "text": "Bonjour Madame Laurent, c'est Sophie. Je m'en occupe."}

        # 25 hours later the window has closed: the reply is parked behind the nudge template.
        clock.advance(timedelta(hours=25))
        item = (await call(ch, "GET", "/conversations", SOPHIE))[1]["conversations"][0]
        assert item["window"]["open"] is False
        status, body = await call(ch, "POST", f"/conversations/{CLAIRE}/reply", SOPHIE,
                                  {"text": "Votre pièce est prête."})
        assert status == 202 and body["sent"] == "parked" and body["nudge_wamid"]
        box = await outbox(admin)
        assert [m["type"] for m in box] == ["text", "text", "template"]
        assert box[2]["template"] == "advisor_update_nudge" and "Votre pièce" not in box[2]["body"]

        # Handed back: the handoff is resolved, Rasa's tracker resumed, no more replies.
        status, body = await call(ch, "POST", f"/conversations/{CLAIRE}/resume", SOPHIE)
        assert status == 200 and body["status"] == "resolved" and body["resolved_by"] == "sophie"
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert tracker is not None and not tracker.is_paused()
        assert tracker.latest_action_name == "action_listen"  # the next message finds it listening
        assert (await call(ch, "GET", "/conversations", SOPHIE))[1] == {"conversations": []}
        status, body = await call(ch, "POST", f"/conversations/{CLAIRE}/reply", SOPHIE, {"text": "Encore"})
        assert status == 409
