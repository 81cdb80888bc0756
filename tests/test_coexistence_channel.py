"""Coexistence end to end, without a trained model: the Cloud API emulator plays Meta (the
client on her phone, and the advisor writing from the WhatsApp Business app with
``POST /_emulator/echo``), the WhatsApp channel runs on a real Sanic server (in process,
and with its companion process), and Rasa's own in-memory tracker and lock stores hold
the conversation. The assistant's part is played by a stand-in that does what Rasa does
with a message: a new conversation starts a session, a paused one logs the message and
predicts nothing, otherwise it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    SessionStarted,
    UserUttered,
)
from sqlalchemy import create_engine, select

from connectors.advisor_api import RasaTranscripts
from salon.clock import ManualClock, from_us
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.identity import ClientRef
from salon.storage.db import sync_url
from salon.webhook.inbox import InboxItem, inbox_table
from salon.webhook.pipeline import Turn
from tests.whatsapp_support import APP_SECRET, PNID, Channel, running_channel

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"
HELENE_BSUID = "FR.4410000000000000077"
WAITING_NOTE = "Your message has reached our client advisors"


class Assistant:
    """Rasa's part on the agent's real stores, under its lock, as ``agent.handle_message``
    does it (the model's answer is a stand-in: ``Assistant: <what she wrote>``).
    """

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.heard: list[tuple[str, str]] = []

    async def __call__(self, message: UserMessage) -> None:
        sender = message.sender_id
        self.heard.append((sender, message.text or ""))
        async with self.agent.lock_store.lock(sender):
            tracker = await self.agent.tracker_store.get_or_create_tracker(sender, append_action_listen=False)
            if not tracker.applied_events():  # Rasa starts a session for an empty conversation
                tracker.update(ActionExecuted("action_session_start"))
                tracker.update(SessionStarted())
                tracker.update(ActionExecuted("action_listen"))
            intent = "session_start" if message.text == "/session_start" else "inform"
            tracker.update(UserUttered(message.text, intent={"name": intent}, metadata=message.metadata))
            if not tracker.is_paused():
                if intent == "session_start":
                    assert tracker.latest_action_name == "action_listen"  # the default rule needs it
                    tracker.update(ActionExecuted("action_session_start"))
                    tracker.update(SessionStarted())
                else:
                    answer = f"Assistant: {message.text}"
                    tracker.update(ActionExecuted("utter_answer"))
                    tracker.update(BotUttered(answer))
                    await message.output_channel.send_text_message(sender, answer)
                tracker.update(ActionExecuted("action_listen"))
            await self.agent.tracker_store.save(tracker)


@asynccontextmanager
async def coexisting(settings: Settings, clock: ManualClock | None, *, io_process: bool = False
                     ) -> AsyncIterator[tuple[Channel, Any, aiohttp.ClientSession, Assistant]]:
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    agent = SimpleNamespace(tracker_store=InMemoryTrackerStore(domain), lock_store=InMemoryLockStore())
    assistant = Assistant(agent)
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03)
    async with running_emulator(config, clock=clock) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, clock=clock, reply=assistant,
                                   access_token=config.access_token, agent=agent,
                                   io_process=io_process) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200
                yield ch, agent, admin, assistant


async def quiet(ch: Channel, admin: aiohttp.ClientSession) -> None:
    async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
        assert (await r.json())["idle"]
    if ch.runtime.config.io_process:
        await asyncio.sleep(0.5)  # the companion's turns: nothing here to wait on
    else:
        await ch.settle()


async def client_writes(ch: Channel, admin: aiohttp.ClientSession, text: str, **who: Any) -> None:
    writer = who or {"from": CLAIRE, "name": "Claire Laurent"}
    async with admin.post("/_emulator/inbound", json={**writer, "text": text}) as r:
        assert r.status == 200, await r.text()
    await quiet(ch, admin)


async def advisor_writes(ch: Channel, admin: aiohttp.ClientSession, text: str, to: str = CLAIRE,
                         duplicate: int = 0) -> str:
    async with admin.post("/_emulator/echo", json={"to": to, "text": text, "duplicate": duplicate}) as r:
        assert r.status == 200, await r.text()
        wamid = str((await r.json())["wamid"])
    await quiet(ch, admin)
    return wamid


async def sent_by_salon(admin: aiohttp.ClientSession, to: str = CLAIRE) -> list[str]:
    async with admin.get("/_emulator/outbox", params={"to": to}) as r:
        return [m["body"] for m in await r.json()]


async def transcript(agent: Any, conversation_id: str) -> list[dict[str, Any]]:
    async def run(coro: Any) -> Any:
        return await coro

    return await RasaTranscripts(lambda: agent, run).transcript(conversation_id)


def echo_events(tracker: Any) -> list[BotUttered]:
    return [e for e in tracker.events if isinstance(e, BotUttered) and (e.metadata or {}).get("echo")]


async def test_the_advisor_on_the_phone_pauses_the_assistant_for_a_while(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with coexisting(settings, clock) as (ch, agent, admin, assistant):
        await client_writes(ch, admin, "Bonjour")
        assert await sent_by_salon(admin) == ["Assistant: Bonjour"]
        window = await ch.runtime.sessions.get(ClientRef(PNID, wa_id=CLAIRE))  # type: ignore[union-attr]
        assert window is not None

        clock.advance(timedelta(minutes=2))
        wamid = await advisor_writes(ch, admin, "Bonjour Madame Laurent, c'est Sophie. Je regarde pour vous.",
                                     duplicate=1)
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        [echo] = echo_events(tracker)  # delivered twice, recorded once
        assert echo.text == "Bonjour Madame Laurent, c'est Sophie. Je regarde pour vous."
        assert echo.metadata == {"advisor": "phone", "echo": True, "wamid": wamid, "type": "text",
                                 "sent_at": int((T0 + timedelta(minutes=2)).timestamp()),
                                 "recorded_at": (T0 + timedelta(minutes=2)).timestamp()}
        assert tracker.is_paused() and tracker.events[-1] == ConversationPaused()
        assert tracker.events[-1].metadata == {"echo_pause": True, "wamid": wamid}
        line = (await transcript(agent, CLAIRE))[-2]
        assert (line["from"], line["advisor"], line["text"]) == (
            "advisor", "phone", "Bonjour Madame Laurent, c'est Sophie. Je regarde pour vous.")
        # The maison wrote: her window is neither opened nor extended.
        after = await ch.runtime.sessions.get(ClientRef(PNID, wa_id=CLAIRE))  # type: ignore[union-attr]
        assert after is not None and after.last_inbound_at == window.last_inbound_at
        assert after.session_count == window.session_count
        assert assistant.heard == [(CLAIRE, "Bonjour")]

        # Within the pause her messages are kept, unanswered, and no waiting note is sent:
        # her advisor is there.
        clock.advance(timedelta(minutes=20))
        await client_writes(ch, admin, "Merci, j'attends")
        assert await sent_by_salon(admin) == ["Assistant: Bonjour"]
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert tracker.is_paused() and tracker.latest_message.text == "Merci, j'attends"

        # Her next message after the pause is handled as usual.
        clock.advance(timedelta(minutes=11))
        await client_writes(ch, admin, "Avez-vous la taille 38 ?")
        assert await sent_by_salon(admin) == ["Assistant: Bonjour", "Assistant: Avez-vous la taille 38 ?"]
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert not tracker.is_paused()
        [resumed] = [e for e in tracker.events if isinstance(e, ConversationResumed)]
        assert resumed.metadata == {"echo_pause": "expired"}
        lines = (await transcript(agent, CLAIRE))[-5:]
        assert [line["from"] for line in lines] == ["system", "client", "system", "client", "assistant"]
        assert [line["text"] for line in lines if line["from"] != "system"] == [
            "Merci, j'attends", "Avez-vous la taille 38 ?", "Assistant: Avez-vous la taille 38 ?"]

        # The phone page shows the advisor's message as the maison's.
        async with admin.get("/_emulator/thread", params={"client": CLAIRE}) as r:
            thread = (await r.json())["messages"]
        assert [(m["direction"], m.get("source")) for m in thread][:3] == [
            ("in", None), ("out", "cloud_api"), ("out", "business_app")]

        # Another message from the phone pauses her conversation again, from then.
        await advisor_writes(ch, admin, "Oui, je vous la mets de côté.")
        await client_writes(ch, admin, "Parfait")
        assert len(await sent_by_salon(admin)) == 2


async def test_an_echo_replayed_after_a_crash_is_not_recorded_twice_and_a_late_one_pauses_nothing(
        settings: Settings) -> None:
    clock = ManualClock(T0)
    async with coexisting(settings, clock) as (ch, agent, admin, _):
        await client_writes(ch, admin, "Bonjour")
        wamid = await advisor_writes(ch, admin, "C'est Sophie.")
        # The channel stopped after writing it into her conversation and before the inbox
        # heard of it: the next start hands it over again.
        engine = create_engine(sync_url(settings.effective_database_url))
        try:
            with engine.connect() as conn:
                row = conn.execute(select(inbox_table).where(inbox_table.c.wamid == wamid)).one()
        finally:
            engine.dispose()
        item = InboxItem(wamid=row.wamid, phone_number_id=row.phone_number_id, sender_id=row.sender_id,
                         sent_at=from_us(row.sent_us), text=row.text, metadata=dict(row.metadata),  # type: ignore[arg-type]
                         state="pending", attempts=0)
        service = ch.runtime.service  # type: ignore[union-attr]
        assert service is not None
        await service.on_turn(Turn(item, ClientRef(PNID, wa_id=CLAIRE), conversation_id=CLAIRE))
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert [e.metadata["wamid"] for e in echo_events(tracker)] == [wamid]
        assert sum(isinstance(e, ConversationPaused) for e in tracker.events) == 1

        # An echo Meta delivers only after its pause would have ended is kept; it pauses
        # nothing.
        async with agent.lock_store.lock(CLAIRE):
            tracker.update(ConversationResumed())
            await agent.tracker_store.save(tracker)
        clock.advance(timedelta(hours=1))
        sent_at = int((clock.now() - timedelta(minutes=45)).timestamp())
        late = {"from": "33100000000", "to": CLAIRE, "id": "wamid.LATE", "timestamp": str(sent_at),
                "type": "text", "text": {"body": "Message parti du téléphone hier soir"}}
        status, _ = await ch.post({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "33100000000", "phone_number_id": PNID},
                "message_echoes": [late]}}]}]})
        assert status == 200
        await ch.settle()
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert [e.metadata["wamid"] for e in echo_events(tracker)] == [wamid, "wamid.LATE"]
        assert not tracker.is_paused()
        await client_writes(ch, admin, "Merci")
        assert await sent_by_salon(admin) == ["Assistant: Bonjour", "Assistant: Merci"]


async def test_a_handoff_pause_is_not_lifted_by_the_advisors_phone(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with coexisting(settings, clock) as (ch, agent, admin, _):
        await client_writes(ch, admin, "Je voudrais parler à Sophie")
        # What action_handoff leaves in the conversation.
        async with agent.lock_store.lock(CLAIRE):
            tracker = await agent.tracker_store.retrieve(CLAIRE)
            tracker.update(ActionExecuted("action_handoff"))
            tracker.update(ConversationPaused())
            await agent.tracker_store.save(tracker)

        await advisor_writes(ch, admin, "Bonjour, c'est Sophie, je suis à vous dans un instant.")
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert len(echo_events(tracker)) == 1
        assert [e.metadata for e in tracker.events if isinstance(e, ConversationPaused)] == [{}]  # no second pause

        clock.advance(timedelta(hours=2))
        await client_writes(ch, admin, "Toujours là ? C'est pour le sac Aurore")
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert tracker.is_paused()
        assert not any(isinstance(e, ConversationResumed) for e in tracker.events)
        said = await sent_by_salon(admin)
        assert said[0] == "Assistant: Je voudrais parler à Sophie"
        assert not any(text.startswith("Assistant: Toujours") for text in said)
        assert len(said) == 2 and said[1].startswith(WAITING_NOTE)  # the handoff's own line, once


async def test_with_the_pause_switched_off_the_assistant_keeps_answering(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALON_ECHO_PAUSE_MINUTES", "0")
    clock = ManualClock(T0)
    async with coexisting(settings, clock) as (ch, agent, admin, _):
        await client_writes(ch, admin, "Bonjour")
        await advisor_writes(ch, admin, "Bonjour Madame, c'est Sophie.")
        tracker = await agent.tracker_store.retrieve(CLAIRE)
        assert len(echo_events(tracker)) == 1 and not tracker.is_paused()
        await client_writes(ch, admin, "Merci")
        assert await sent_by_salon(admin) == ["Assistant: Bonjour", "Assistant: Merci"]


async def test_a_conversation_the_advisor_begins_from_the_phone(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with coexisting(settings, clock) as (ch, agent, admin, assistant):
        helene = {"user_id": HELENE_BSUID, "bsuid_only": True, "name": "Hélène"}
        await advisor_writes(ch, admin, "Bonjour Madame, votre commande est arrivée.", to=HELENE_BSUID)
        tracker = await agent.tracker_store.retrieve(HELENE_BSUID)
        assert len(echo_events(tracker)) == 1 and tracker.is_paused()
        assert await ch.runtime.sessions.get(ClientRef(PNID, user_id=HELENE_BSUID)) is None  # type: ignore[union-attr]

        clock.advance(timedelta(minutes=5))
        await client_writes(ch, admin, "Merci beaucoup !", **helene)
        assert assistant.heard == [(HELENE_BSUID, "Merci beaucoup !")]  # kept, not answered

        clock.advance(timedelta(minutes=40))
        await client_writes(ch, admin, "Je passe demain, c'est possible ?", **helene)
        # The pause is over and her conversation never had a session: one starts first.
        assert assistant.heard[1:] == [(HELENE_BSUID, "/session_start"),
                                       (HELENE_BSUID, "Je passe demain, c'est possible ?")]
        assert await sent_by_salon(admin, HELENE_BSUID) == ["Assistant: Je passe demain, c'est possible ?"]

        clock.advance(timedelta(minutes=1))
        await client_writes(ch, admin, "Vers 15 h", **helene)
        assert assistant.heard[-1] == (HELENE_BSUID, "Vers 15 h")  # started once


async def test_echoes_through_the_companion_process(settings: Settings) -> None:
    async with coexisting(settings, None, io_process=True) as (ch, agent, admin, _):
        await client_writes(ch, admin, "Bonjour")

        async def answered() -> list[str]:
            return await sent_by_salon(admin)

        for _ in range(100):
            if await answered():
                break
            await asyncio.sleep(0.1)
        assert await answered() == ["Assistant: Bonjour"]
        wamid = await advisor_writes(ch, admin, "C'est Sophie, je m'en occupe.", duplicate=2)

        async def recorded() -> Any:
            tracker = await agent.tracker_store.retrieve(CLAIRE)
            return tracker if tracker is not None and echo_events(tracker) else None

        for _ in range(100):
            if await recorded():
                break
            await asyncio.sleep(0.1)
        tracker = await recorded()
        assert [e.metadata["wamid"] for e in echo_events(tracker)] == [wamid] and tracker.is_paused()
        await client_writes(ch, admin, "Merci")
        await asyncio.sleep(1.0)
        assert await sent_by_salon(admin) == ["Assistant: Bonjour"]
        engine = create_engine(sync_url(settings.effective_database_url))
        try:
            with engine.connect() as conn:
                states = dict(conn.execute(select(inbox_table.c.wamid, inbox_table.c.state)).all())
        finally:
            engine.dispose()
        assert states[wamid] == "done"
