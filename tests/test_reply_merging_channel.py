"""A client's turn leaves in fewer WhatsApp messages: the channel holds the turn's
responses and sends them merged when the turn is over, through the send-time guard, to
the Cloud API emulator (salon/whatsapp/merging.py, connectors/whatsapp.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from sqlalchemy import create_engine, select

from connectors.whatsapp import WhatsAppOutput
from salon.clock import ManualClock
from salon.config import Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.guard.sent import outbound_table
from salon.identity import ClientRef
from salon.storage.db import sync_url
from salon.whatsapp.merging import MergeConfig
from tests.test_whatsapp_sender import CLAIRE, T0, outbox, say, settle, wired
from tests.whatsapp_support import (
    APP_SECRET,
    contact,
    envelope,
    messages_change,
    running_channel,
    text_message,
)

BOUTIQUES = [{"title": "Paris", "payload": '/inform{"boutique": "paris"}'},
             {"title": "London", "payload": '/inform{"boutique": "london"}'},
             {"title": "Milan", "payload": '/inform{"boutique": "milan"}'}]
TOTE = "https://maison-solenne.example/aurore-tote.jpg"


def records(settings: Settings) -> list[Any]:
    """The outbound record, in order."""
    engine = create_engine(sync_url(settings.effective_database_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(outbound_table).order_by(outbound_table.c.id)).all())
    finally:
        engine.dispose()


def merging(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    monkeypatch.setenv("SALON_MERGE_REPLIES", "on" if on else "off")


@pytest.mark.parametrize("on", [True, False], ids=["merging on", "merging off"])
async def test_a_two_response_turn_is_one_graph_send_with_merging_and_two_without(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    merging(monkeypatch, on)
    threads: list[str] = []

    async def reply(message: UserMessage) -> None:
        threads.append(threading.current_thread().name)
        out = message.output_channel
        await out.send_response(message.sender_id, {"text": "Happy to book a visit, Claire.",
                                                    "utter_action": "utter_happy_to_book"})
        await out.send_response(message.sender_id, {"text": "Which boutique?", "buttons": BOUTIQUES,
                                                    "utter_action": "utter_ask_boutique"})

    async with wired(settings, reply) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "I'd like to book a visit", "name": "Claire Laurent"})
        box = await settle(ch, admin, CLAIRE, 1 if on else 2)
    # Rasa's part ran in the assistant's own loop and thread, as under `rasa run`.
    assert threads == ["whatsapp-assistant"]
    rows = [r for r in records(settings) if r.wamid is not None]
    if on:
        [sent] = box
        assert sent["type"] == "interactive" and sent["status"] == "read"
        assert sent["body"] == "Happy to book a visit, Claire.\n\nWhich boutique?"
        assert [r.utter_action for r in rows] == ["utter_happy_to_book+utter_ask_boutique"]
        assert rows[0].wamid == sent["wamid"] and rows[0].purpose == "service_reply"
    else:
        assert [(m["type"], m["body"]) for m in box] == [("text", "Happy to book a visit, Claire."),
                                                        ("interactive", "Which boutique?")]
        assert [r.utter_action for r in rows] == ["utter_happy_to_book", "utter_ask_boutique"]


async def test_what_does_not_merge_leaves_in_order_within_one_turn(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    merging(monkeypatch, True)

    async def reply(message: UserMessage) -> None:
        out, to = message.output_channel, message.sender_id
        await out.send_text_message(to, "The Aurore tote is in stock in Paris.")
        await out.send_image_url(to, TOTE)
        await out.send_text_message(to, "Shall I hold it for you?")
        await out.send_text_with_buttons(to, "Until when?", [{"title": "Tomorrow", "payload": "/a"},
                                                             {"title": "Saturday", "payload": "/b"}])
        await out.send_text_message(to, "You can also see it online.")

    async with wired(settings, reply) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Is the Aurore tote in stock?", "name": "Claire Laurent"})
        box = await settle(ch, admin, CLAIRE, 4)
    assert [(m["type"], m["body"]) for m in box] == [
        ("text", "The Aurore tote is in stock in Paris."),
        ("image", None),
        ("interactive", "Shall I hold it for you?\n\nUntil when?"),
        ("text", "You can also see it online."),  # after buttons: a message of its own
    ]


@pytest.mark.parametrize("on", [True, False], ids=["merging on", "merging off"])
async def test_a_late_turn_parks_behind_one_nudge_and_all_of_it_arrives_when_she_writes(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    """Her turn is answered after her window closed (the channel was down for a day and
    replays it): every response is parked, one nudge knocks, never a second, and when she
    writes again all of it arrives, in order."""
    merging(monkeypatch, on)
    clock = ManualClock(T0)

    async def reply(message: UserMessage) -> None:
        out, to = message.output_channel, message.sender_id
        if message.text == "/session_start":  # her window had closed: a new session, said nothing
            return
        if message.text != "Has my alteration been done?":
            await out.send_text_message(to, f"Assistant: {message.text}")
            return
        clock.advance(timedelta(hours=25))
        await out.send_text_message(to, "Your alteration is ready, Claire.", utter_action="utter_alteration_ready")
        await out.send_text_with_buttons(to, "When would you like to collect it?", BOUTIQUES[:2],
                                         utter_action="utter_ask_collect")
        await out.send_image_url(to, TOTE)
        await out.send_text_message(to, "We also kept the scarf you liked.", utter_action="utter_scarf")

    async with wired(settings, reply, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Has my alteration been done?", "name": "Claire Laurent"})
        [nudge] = await settle(ch, admin, CLAIRE, 1)
        assert nudge["type"] == "template" and nudge["template"] == "advisor_update_nudge"
        ref = ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE)
        state = await ch.runtime.service.sessions.get(ref)  # type: ignore[union-attr]
        assert state is not None and state.nudge_pending
        assert state.parked_count == (3 if on else 4)
        parked = [r for r in records(settings) if r.status == "parked"]
        assert [r.utter_action for r in parked] == (
            ["utter_alteration_ready+utter_ask_collect", None, "utter_scarf"] if on
            else ["utter_alteration_ready", "utter_ask_collect", None, "utter_scarf"])

        clock.advance(timedelta(minutes=5))
        await say(admin, **{"from": CLAIRE, "text": "Hello?", "name": "Claire Laurent"})
        box = await settle(ch, admin, CLAIRE, 5 if on else 6)
        state = await ch.runtime.service.sessions.get(ref)  # type: ignore[union-attr]
    assert [m["template"] for m in box if m["type"] == "template"] == ["advisor_update_nudge"]  # one knock
    delivered = box[1:]
    if on:
        assert [(m["type"], m["body"]) for m in delivered] == [
            ("interactive", "Your alteration is ready, Claire.\n\nWhen would you like to collect it?"),
            ("image", None), ("text", "We also kept the scarf you liked."), ("text", "Assistant: Hello?")]
    else:
        assert [(m["type"], m["body"]) for m in delivered] == [
            ("text", "Your alteration is ready, Claire."),
            ("interactive", "When would you like to collect it?"),
            ("image", None), ("text", "We also kept the scarf you liked."), ("text", "Assistant: Hello?")]
    [asked] = [m for m in delivered if m["type"] == "interactive"]
    assert asked["buttons"] == ["Paris", "London"]
    assert all(m["error_code"] is None and m["status"] == "read" for m in box)
    assert state is not None and state.parked_count == 0 and not state.nudge_pending


async def test_a_failed_send_is_logged_and_the_rest_of_the_turn_still_leaves(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    merging(monkeypatch, True)

    async def reply(message: UserMessage) -> None:
        out, to = message.output_channel, message.sender_id
        await out.send_text_message(to, "Our Paris boutique:", utter_action="utter_boutique_intro")
        # An action's slip: bytes where Graph wants text, which cannot become a request.
        await out.send_custom_json(to, {"type": "location", "location": {
            "latitude": 48.8656, "longitude": 2.3212, "name": b"Maison Solenne"}}, utter_action="utter_where")
        await out.send_text_message(to, "Open every day from 10 to 19.", utter_action="utter_hours")
        await out.send_text_message(to, "Shall I book you a visit?", utter_action="utter_offer_visit")

    caplog.set_level(logging.ERROR, logger="connectors.whatsapp")
    async with wired(settings, reply) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Where are you in Paris?", "name": "Claire Laurent"})
        box = await settle(ch, admin, CLAIRE, 2)
        await asyncio.sleep(0.2)
        box = await outbox(admin, CLAIRE)
    assert [m["body"] for m in box] == ["Our Paris boutique:",
                                        "Open every day from 10 to 19.\n\nShall I book you a visit?"]
    [failure] = [r for r in caplog.records if "not sent" in r.getMessage()]
    assert "utter_where" in failure.getMessage() and "TypeError" in failure.getMessage()
    assert "sending the rest" in failure.getMessage()


async def test_outside_a_client_turn_each_response_leaves_at_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    merging(monkeypatch, True)
    turn_outputs: list[Any] = []

    async def reply(message: UserMessage) -> None:
        turn_outputs.append(message.output_channel)
        await message.output_channel.send_text_message(message.sender_id, "Good day, Claire.")

    async with wired(settings, reply) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        await settle(ch, admin, CLAIRE, 1)
        # A turn the assistant starts itself holds nothing back, even when asked to.
        started = WhatsAppOutput(ch.runtime, merging=MergeConfig(enabled=True))
        started.hold()
        await started.send_response(CLAIRE, {"text": "Your order has left the atelier."})
        assert len(await outbox(admin, CLAIRE)) == 2
        await started.send_response(CLAIRE, {"text": "It arrives on Friday."})
        assert len(await outbox(admin, CLAIRE)) == 3
        # Once her turn is over, its output sends at once (a reminder Rasa fires later).
        [output] = turn_outputs
        await output.send_text_message(CLAIRE, "A reminder of your visit tomorrow.")
        box = await settle(ch, admin, CLAIRE, 4)
    assert [m["body"] for m in box] == ["Good day, Claire.", "Your order has left the atelier.",
                                        "It arrives on Friday.", "A reminder of your visit tomorrow."]


async def test_responses_held_from_another_thread_leave_merged_in_their_order(settings: Settings) -> None:
    """Rasa answers in the assistant's loop, on its own thread, while the server's loop
    keeps working: what it hands over is held safely and sent in order."""
    from salon.loops import LoopThread

    async with wired(settings) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        await ch.settle()
        ref = ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE)
        output = WhatsAppOutput(ch.runtime, ref, CLAIRE, merging=MergeConfig(enabled=True))
        output.hold()
        assistant = LoopThread("test-assistant")
        assistant.start()
        try:
            async def speak(first: int) -> None:
                for index in range(first, first + 20):
                    await output.send_text_message(CLAIRE, f"Line {index}.")
                    await asyncio.sleep(0)

            await assistant.run(speak(0))
            # Meanwhile the server's loop is free: nothing has left yet.
            assert await outbox(admin, CLAIRE) == []
            await assistant.run(speak(20))
        finally:
            assistant.stop()
        assert await output.flush() == 1
        [sent] = await settle(ch, admin, CLAIRE, 1)
    assert sent["body"] == "\n\n".join(f"Line {index}." for index in range(40))


async def test_a_turn_merged_through_the_companion_process(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    merging(monkeypatch, True)

    async def reply(message: UserMessage) -> None:
        out = message.output_channel
        await out.send_text_message(message.sender_id, "Of course.", utter_action="utter_of_course")
        await out.send_text_message(message.sender_id, "Your order SOL-104233 arrives on Friday.",
                                    utter_action="utter_order_eta")

    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03)
    async with running_emulator(config) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, reply=reply,
                                   access_token=config.access_token, io_process=True) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200
                await say(admin, **{"from": CLAIRE, "text": "Where is my order?", "name": "Claire Laurent"})
                box: list[dict[str, Any]] = []
                for _ in range(100):
                    box = await outbox(admin, CLAIRE)
                    if box and box[0]["status"] == "read":
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.3)  # a second message would have left by now
                box = await outbox(admin, CLAIRE)
    assert [m["body"] for m in box] == ["Of course.\n\nYour order SOL-104233 arrives on Friday."]
    assert [r.utter_action for r in records(settings) if r.wamid] == ["utter_of_course+utter_order_eta"]


# --------------------------------------------------------------------------- her burst


async def _burst(ch: Any, texts: list[str], ts: int) -> None:
    """Her messages in one webhook, as when she writes faster than the assistant answers."""
    messages = [text_message(CLAIRE, text, ts + i) for i, text in enumerate(texts)]
    status, _ = await ch.post(envelope(messages_change(messages, contacts=[contact(CLAIRE)])))
    assert status == 200


@pytest.mark.parametrize("on", [True, False], ids=["merging on", "merging off"])
async def test_she_wrote_again_before_the_answer_one_message_answers_both(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    merging(monkeypatch, on)
    answers = {"Bonjour": "Bonjour Madame Laurent. Comment puis-je vous aider ?",
               "Où en est ma commande SOL-104233 ?": "Votre commande SOL-104233 a quitté Paris ce matin."}

    choices = [{"title": "Prendre rendez-vous", "payload": "/book_appointment"},
               {"title": "Suivre une commande", "payload": "/check_order_status"}]

    async def reply(message: UserMessage) -> None:
        response: dict[str, Any] = {"text": answers[message.text]}
        if message.text == "Bonjour":
            response["buttons"] = choices  # what the greeting offers
        await message.output_channel.send_response(message.sender_id, response)

    clock = ManualClock(T0)
    async with wired(settings, reply, emulator_clock=clock) as (ch, emu, admin):
        async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": "Bonjour", "deliver": False}) as r:
            assert r.status == 200  # her window opens at Meta's side too
        await _burst(ch, list(answers), int(clock.now().timestamp()))
        box = await settle(ch, admin, CLAIRE, 1 if on else 2)
        assert [m.text for m in ch.received] == list(answers)  # two turns for the assistant
        if on:
            # One message; the greeting's choices are gone: she already said what she wants.
            assert [(m["type"], m["body"]) for m in box] == [("text", "\n\n".join(answers.values()))]
        else:
            assert [m["body"] for m in box] == list(answers.values())
            assert box[0]["buttons"] == ["Prendre rendez-vous", "Suivre une commande"]


async def test_an_answer_kept_for_a_turn_that_never_comes_still_leaves(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Her second message is STOP: the channel confirms it itself and the assistant is not
    asked; the answer to her first message, kept for that turn, leaves anyway."""
    merging(monkeypatch, True)

    async def reply(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": "Bonjour Madame Laurent."})

    clock = ManualClock(T0)
    async with wired(settings, reply, emulator_clock=clock) as (ch, emu, admin):
        async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": "Bonjour", "deliver": False}) as r:
            assert r.status == 200
        await _burst(ch, ["Bonjour", "STOP"], int(clock.now().timestamp()))
        box = await settle(ch, admin, CLAIRE, 2)
        bodies = [m["body"] for m in box]
        assert "Bonjour Madame Laurent." in bodies and len(bodies) == 2, bodies
        assert [m.text for m in ch.received] == ["Bonjour"]
