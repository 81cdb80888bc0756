"""Coexistence: what an advisor types in the WhatsApp Business app on the maison's number
reaches Salon as ``smb_message_echoes``. Here: the parser (Meta's payload, BSUIDs, other
types, malformed items), the pause rules, and the webhook pipeline on SQLite and
PostgreSQL (claimed once in the inbox, handed over in order as an echo, no window opened
or extended, no read receipt, our own sends not recorded twice, nothing handed to an
advisor when recording keeps failing). The channel's side (Rasa's tracker, the pause,
the emulator) is in ``tests/test_coexistence_channel.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from salon.advisors.handoff import HandoffBook
from salon.clock import ManualClock
from salon.consent.book import ConsentBook
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import WebhookReceiver, running_emulator
from salon.guard.sender import GuardedSender
from salon.guard.sent import SentLog
from salon.identity import ClientRef
from salon.templates.registry import TemplateRegistry
from salon.webhook.echoes import (
    EchoConfigError,
    EchoPause,
    PauseWatch,
    TrackerEvent,
    echo_event_metadata,
    pause_from_env,
    pause_metadata,
    read_pause,
    resume_metadata,
)
from salon.webhook.inbox import Inbox, inbox_table
from salon.webhook.pipeline import Turn, WebhookService
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.whatsapp.messages import OutgoingMessage
from salon.whatsapp.signature import sign
from salon.whatsapp.updates import parse_body, parse_webhook
from salon.window.sql_store import SqlSessionStore
from tests.fake_graph import FakeGraph

APP_SECRET = "test-app-secret"
PNID = "100000000000001"
OTHER_PNID = "100000000000002"
BUSINESS = "33100000000"
WABA = "200000000000001"
CLAIRE = "33600000001"
CLAIRE_BSUID = "FR.5772156649015328606"
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
TS = int(T0.timestamp())


# --------------------------------------------------------------------------- payloads


def echo(text: str | None = "Bonjour Madame Laurent, c'est Sophie.", *, to: str | None = CLAIRE,
         to_user_id: str | None = None, wamid: str = "wamid.ECHO1", ts: int = TS,
         kind: str = "text", content: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"from": BUSINESS, "id": wamid, "timestamp": str(ts), "type": kind}
    if to is not None:
        item["to"] = to
    if to_user_id is not None:
        item["to_user_id"] = to_user_id
    item[kind] = content if content is not None else {"body": text}
    return item


def echoes_change(*items: Any, pnid: str = PNID) -> dict[str, Any]:
    return {"field": "smb_message_echoes",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": BUSINESS, "phone_number_id": pnid},
                      "message_echoes": list(items)}}


def client_text(body: str, *, wamid: str, ts: int = TS, wa_id: str = CLAIRE,
                user_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(ts), "type": "text",
                               "text": {"body": body}}
    contact: dict[str, Any] = {"profile": {"name": "Claire Laurent"}, "wa_id": wa_id}
    if user_id:
        message["from_user_id"] = user_id
        contact["user_id"] = user_id
    return {"field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": BUSINESS, "phone_number_id": PNID},
                      "contacts": [contact], "messages": [message]}}


def webhook(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": list(changes)}]}


def parsed(*changes: dict[str, Any]) -> Any:
    return parse_webhook(parse_body(json.dumps(webhook(*changes)).encode()))


# --------------------------------------------------------------------------- the parser


def test_metas_echo_payload_is_an_echo_not_a_client_message() -> None:
    batch = parsed(echoes_change(echo()))
    assert batch.messages == [] and batch.rejected == [] and batch.ignored == []
    [item] = batch.echoes
    assert (item.wamid, item.phone_number_id, item.type, item.text) == (
        "wamid.ECHO1", PNID, "text", "Bonjour Madame Laurent, c'est Sophie.")
    assert item.client == ClientRef(PNID, None, CLAIRE) and item.sender_id == CLAIRE
    assert item.timestamp == T0
    assert item.metadata["echo"] is True
    assert (item.metadata["wa_id"], item.metadata["user_id"], item.metadata["business_number"]) == (
        CLAIRE, None, BUSINESS)


def test_the_recipient_may_be_a_bsuid_beside_or_instead_of_the_number() -> None:
    both, alone, in_to = parsed(echoes_change(
        echo(to_user_id=CLAIRE_BSUID, wamid="wamid.A"),
        echo(to=None, to_user_id=CLAIRE_BSUID, wamid="wamid.B"),
        echo(to=CLAIRE_BSUID, wamid="wamid.C"),
    )).echoes
    assert both.client == ClientRef(PNID, CLAIRE_BSUID, CLAIRE)
    assert alone.client == in_to.client == ClientRef(PNID, CLAIRE_BSUID, None)
    # Her conversation is found by the BSUID first, as for her own messages.
    assert both.sender_id == alone.sender_id == CLAIRE_BSUID


def test_other_types_are_kept_as_their_type_and_never_crash() -> None:
    batch = parsed(echoes_change(
        echo(kind="image", wamid="wamid.I",
             content={"id": "1234", "mime_type": "image/jpeg", "caption": "La nouvelle teinte"}),
        echo(kind="sticker", wamid="wamid.S", content={"id": "99", "mime_type": "image/webp"}),
        echo(kind="location", wamid="wamid.L", content={"latitude": 48.86, "longitude": 2.33}),
        echo(kind="interactive", wamid="wamid.X", content="not even an object"),
    ))
    assert batch.rejected == []
    assert [(e.type, e.text) for e in batch.echoes] == [
        ("image", "[image] La nouvelle teinte"), ("sticker", "[sticker]"),
        ("location", "[location]"), ("interactive", "[interactive]")]
    assert batch.echoes[0].metadata["attachment"] == {
        "id": "1234", "mime_type": "image/jpeg", "type": "image"}


def test_a_malformed_echo_is_rejected_with_its_reason_and_the_rest_is_kept() -> None:
    batch = parsed(
        echoes_change(
            echo(wamid="wamid.GOOD"),
            "not an object",
            echo(to=None, wamid="wamid.NOBODY"),
            echo(to="not-a-number", wamid="wamid.BADTO"),
            echo(to_user_id="33600000001", wamid="wamid.BADBSUID"),
            echo(ts=-5, wamid="wamid.BADTIME"),
            echo(text="   ", wamid="wamid.EMPTY"),
            echo(kind="text", content={"caption": "no body"}, wamid="wamid.NOBODYTEXT"),
            {**echo(wamid="wamid.NOID"), "id": 42},
            echo(kind="Not A Type", wamid="wamid.BADTYPE"),
            echo(to=CLAIRE_BSUID, to_user_id="FR.1111", wamid="wamid.TWO"),
        ),
        client_text("Merci", wamid="wamid.CLIENT"),
    )
    assert [e.wamid for e in batch.echoes] == ["wamid.GOOD"]
    assert [m.wamid for m in batch.messages] == ["wamid.CLIENT"]
    reasons = dict(batch.rejected)
    assert len(reasons) == 10
    where = "entry[0].changes[0].message_echoes"
    assert "not an object" in reasons[f"{where}[1]"]
    assert "no recipient" in reasons[f"{where}[2]"]
    assert "not a phone number" in reasons[f"{where}[3]"]
    assert "not a BSUID" in reasons[f"{where}[4]"]
    assert "out of range" in reasons[f"{where}[5]"] or "Unix seconds" in reasons[f"{where}[5]"]
    assert "text.body" in reasons[f"{where}[6]"] and "text.body" in reasons[f"{where}[7]"]
    assert "'id'" in reasons[f"{where}[8]"]
    assert "not a message type" in reasons[f"{where}[9]"]
    assert "two different BSUIDs" in reasons[f"{where}[10]"]
    assert all(why.startswith("message echo not understood") for why in reasons.values())


def test_message_echoes_that_is_not_a_list_is_one_rejection() -> None:
    change = echoes_change()
    change["value"]["message_echoes"] = {"id": "wamid.X"}
    batch = parsed(change, client_text("Bonjour", wamid="wamid.CLIENT2"))
    assert batch.echoes == [] and [m.wamid for m in batch.messages] == ["wamid.CLIENT2"]
    assert batch.rejected == [("entry[0].changes[0].message_echoes", "message_echoes is a dict, not an array")]


# --------------------------------------------------------------------------- the pause rules


def test_the_pause_setting() -> None:
    assert pause_from_env({}) == timedelta(minutes=30)
    assert pause_from_env({"SALON_ECHO_PAUSE_MINUTES": " 0 "}) == timedelta(0)
    assert pause_from_env({"SALON_ECHO_PAUSE_MINUTES": "45"}) == timedelta(minutes=45)
    for wrong in ("-1", "half an hour", "1.5", "999999"):
        with pytest.raises(EchoConfigError):
            pause_from_env({"SALON_ECHO_PAUSE_MINUTES": wrong})


def _echo_event(at: datetime, wamid: str = "wamid.E") -> TrackerEvent:
    return TrackerEvent("echo", echo_event_metadata({"wamid": wamid, "type": "text", "timestamp": TS}, at))


def test_an_echo_pause_ends_its_time_after_the_latest_echo() -> None:
    pause = timedelta(minutes=30)
    events = [TrackerEvent("session"), _echo_event(T0, "wamid.1"),
              TrackerEvent("paused", pause_metadata("wamid.1")),
              _echo_event(T0 + timedelta(minutes=20), "wamid.2")]
    view = read_pause(events, paused=True)
    assert view.kind == "echo" and view.wamids == {"wamid.1", "wamid.2"} and not view.never_started
    assert view.until(pause) == T0 + timedelta(minutes=50)
    assert not view.lifted_for(T0 + timedelta(minutes=49), pause)
    assert view.lifted_for(T0 + timedelta(minutes=50), pause)
    resumed = read_pause([*events, TrackerEvent("resumed", resume_metadata())], paused=False)
    assert resumed.kind == "none" and not resumed.lifted_for(T0 + timedelta(days=1), pause)


def test_a_handoff_pause_is_never_lifted_by_the_timer() -> None:
    pause = timedelta(minutes=30)
    handoff = [TrackerEvent("session"), TrackerEvent("paused", {}), _echo_event(T0)]
    view = read_pause(handoff, paused=True)
    assert view.kind == "handoff" and view.until(pause) is None
    assert not view.lifted_for(T0 + timedelta(days=3), pause)
    # Even an echo pause event after it does not make it the timer's.
    assert read_pause([*handoff, TrackerEvent("paused", pause_metadata("x"))], paused=True).kind == "handoff"
    # A paused conversation whose pause these events do not explain is not ours to lift.
    assert read_pause([_echo_event(T0)], paused=True).kind == "handoff"
    # A new session starts over: the carried-over handoff pause is a handoff again.
    again = read_pause([*handoff, TrackerEvent("session"), TrackerEvent("paused", {})], paused=True)
    assert again.kind == "handoff"


def test_a_conversation_begun_by_an_echo_has_no_session_yet() -> None:
    assert read_pause([_echo_event(T0)], paused=False).never_started
    assert not read_pause([_echo_event(T0), TrackerEvent("session")], paused=False).never_started
    assert not read_pause([TrackerEvent("session")], paused=False).never_started
    assert not read_pause([], paused=False).never_started


def test_the_watch_reads_a_conversation_only_when_a_pause_may_have_ended() -> None:
    pause = timedelta(minutes=30)
    watch = PauseWatch(pause, capacity=2)
    assert watch.must_look("a", T0, T0)  # never seen
    watch.saw("a", EchoPause("none"), T0)
    assert not watch.must_look("a", T0 + timedelta(minutes=29), T0 + timedelta(minutes=29))
    # A pause set elsewhere since could have run its time only after this long.
    assert watch.must_look("a", T0 + timedelta(minutes=30), T0 + timedelta(minutes=30))
    watch.saw("b", EchoPause("echo", last_echo_at=T0), T0)
    assert not watch.must_look("b", T0 + timedelta(minutes=10), T0 + timedelta(minutes=10))
    assert watch.must_look("b", T0 + timedelta(minutes=30), T0 + timedelta(minutes=30))
    watch.saw("c", EchoPause("none", never_started=True), T0)
    assert watch.must_look("c", T0, T0)
    assert watch.must_look("a", T0, T0)  # forgotten: two conversations at most
    watch.saw("b", None, T0)
    assert watch.must_look("b", T0, T0)
    never = PauseWatch(timedelta(0))
    never.saw("a", EchoPause("none"), T0)
    assert not never.must_look("a", T0 + timedelta(days=30), T0 + timedelta(days=30))


# --------------------------------------------------------------------------- the pipeline


@dataclass
class Pipeline:
    service: WebhookService
    sessions: SqlSessionStore
    inbox: Inbox
    sent: SentLog
    graph: FakeGraph
    clock: ManualClock
    turns: list[Turn] = field(default_factory=list)

    async def post(self, payload: dict[str, Any]) -> int:
        body = json.dumps(payload).encode()
        reply = await self.service.handle(body, sign(body, APP_SECRET))
        return reply.status

    async def settle(self) -> None:
        assert await self.service.drain(timeout=20)

    async def inbox_rows(self) -> dict[str, Any]:
        async with self.inbox.engine.connect() as conn:
            return {row.wamid: row for row in (await conn.execute(select(inbox_table))).all()}


async def _instant(_seconds: float) -> None:
    return None


@asynccontextmanager
async def pipeline(url: str, on_turn: Callable[[Turn], Any] | None = None) -> AsyncIterator[Pipeline]:
    clock = ManualClock(T0 + timedelta(seconds=5))
    inbox = Inbox(url)
    await inbox.initialize()
    sent = SentLog(engine=inbox.engine)
    await sent.initialize()
    sessions = SqlSessionStore(engine=inbox.engine, clock=clock)
    await sessions.initialize()
    consents = ConsentBook(engine=inbox.engine)
    await consents.initialize()
    fake = FakeGraph()
    graph = GraphClient(GraphConfig(access_token="t", phone_number_id=PNID, base_url="http://graph.test"),
                        sleep=_instant, transport=fake)
    sender = GuardedSender(graph=graph, sessions=sessions, sent=sent, profile_name=inbox.latest_profile_name,
                           consents=consents, registry=TemplateRegistry.load_default(), clock=clock)
    turns: list[Turn] = []

    async def record(turn: Turn) -> None:
        turns.append(turn)
        if on_turn is not None:
            await on_turn(turn)

    service = WebhookService(app_secret=APP_SECRET, verify_token="v", phone_number_id=PNID, sessions=sessions,
                             inbox=inbox, sent=sent, consents=consents, registry=TemplateRegistry.load_default(),
                             sender=sender, clock=clock, on_turn=record)
    harness = Pipeline(service, sessions, inbox, sent, fake, clock, turns)
    try:
        yield harness
    finally:
        await service.drain(timeout=20)
        await graph.close()
        await sessions.close()
        await inbox.close()


async def test_an_echo_is_claimed_once_and_handed_over_in_order_without_touching_the_window(
        database_url: str) -> None:
    async with pipeline(database_url) as p:
        assert await p.post(webhook(client_text("Bonjour", wamid="wamid.C1", ts=TS - 60,
                                                user_id=CLAIRE_BSUID))) == 200
        await p.settle()
        before = await p.sessions.get(ClientRef(PNID, wa_id=CLAIRE))
        assert before is not None and before.last_inbound_at == T0 - timedelta(seconds=60)
        p.graph.requests.clear()

        # Meta's echo names her phone only; her conversation is her BSUID's. Delivered
        # twice in one body and once more later: recorded once.
        payload = webhook(echoes_change(echo(wamid="wamid.E1"), echo(wamid="wamid.E1")),
                          client_text("Et la taille 38 ?", wamid="wamid.C2", ts=TS + 30))
        assert await p.post(payload) == 200
        assert await p.post(webhook(echoes_change(echo(wamid="wamid.E1")))) == 200
        await p.settle()

        echoes = [t for t in p.turns if t.is_echo]
        assert [t.item.wamid for t in p.turns] == ["wamid.C1", "wamid.E1", "wamid.C2"]
        [turn] = echoes
        assert turn.sender_id == CLAIRE_BSUID
        assert turn.client == ClientRef(PNID, CLAIRE_BSUID, CLAIRE)
        assert turn.text == "Bonjour Madame Laurent, c'est Sophie."
        assert (turn.metadata["wa_id"], turn.metadata["user_id"]) == (CLAIRE, CLAIRE_BSUID)
        assert not turn.new_window and not any(t.is_echo for t in p.turns if t.item.wamid != "wamid.E1")
        assert p.service.stats["echoes"] == 1 and p.service.stats["duplicates"] == 2

        rows = await p.inbox_rows()
        assert rows["wamid.E1"].state == "done" and rows["wamid.E1"].sender_id == CLAIRE
        # Only her own message moved her window; nothing was marked read for the echo.
        after = await p.sessions.get(ClientRef(PNID, wa_id=CLAIRE))
        assert after is not None and after.last_inbound_at == T0 + timedelta(seconds=30)
        read_receipts = [r.get("message_id") for r in p.graph.requests if r.get("status") == "read"]
        assert read_receipts == ["wamid.C2"]


async def test_an_echo_never_opens_a_window_for_a_client_who_never_wrote(database_url: str) -> None:
    async with pipeline(database_url) as p:
        assert await p.post(webhook(echoes_change(echo(to=None, to_user_id=CLAIRE_BSUID, wamid="wamid.FIRST")))) == 200
        await p.settle()
        [turn] = p.turns
        assert turn.is_echo and turn.sender_id == CLAIRE_BSUID
        assert await p.sessions.get(ClientRef(PNID, user_id=CLAIRE_BSUID)) is None
        assert p.graph.requests == []


async def test_an_echo_of_a_message_salon_sent_is_not_recorded_twice(database_url: str) -> None:
    async with pipeline(database_url) as p:
        assert await p.post(webhook(client_text("Bonjour", wamid="wamid.HELLO"))) == 200
        await p.settle()
        outcome = await p.service.sender.send(ClientRef(PNID, wa_id=CLAIRE), OutgoingMessage(
            {"type": "text", "text": {"body": "Bonjour Madame"}}, purpose="service_reply"))
        assert outcome.action == "free_form" and outcome.wamid
        # A status alone (no send of ours behind it) does not make a message ours.
        await p.sent.apply_status(wamid="wamid.APP", status="delivered", at=T0, phone_number_id=PNID,
                                  recipient=CLAIRE, error=None, callback=None)
        assert await p.post(webhook(echoes_change(echo(wamid=outcome.wamid), echo(wamid="wamid.APP")))) == 200
        await p.settle()
        # Ours never reaches the channel; the app's does.
        assert [t.item.wamid for t in p.turns] == ["wamid.HELLO", "wamid.APP"]
        rows = await p.inbox_rows()
        assert (rows[outcome.wamid].state, rows["wamid.APP"].state) == ("skipped", "done")
        assert p.service.stats["echoes"] == 1


async def test_echoes_and_messages_of_another_number_are_ignored(database_url: str) -> None:
    async with pipeline(database_url) as p:
        assert await p.post(webhook(echoes_change(echo(wamid="wamid.THEIRS"), pnid=OTHER_PNID))) == 200
        await p.settle()
        assert p.turns == [] and await p.inbox_rows() == {}
        assert p.service.stats["foreign"] == 1


async def test_a_malformed_echo_is_logged_and_the_rest_of_the_webhook_handled(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with pipeline(database_url) as p:
        with caplog.at_level(logging.ERROR, logger="salon.webhook.pipeline"):
            status = await p.post(webhook(echoes_change({**echo(wamid="wamid.BROKEN"), "to": None}, echo(wamid="wamid.OK")),
                                          client_text("Bonjour", wamid="wamid.MSG")))
        assert status == 200
        await p.settle()
        assert sorted(t.item.wamid for t in p.turns) == ["wamid.MSG", "wamid.OK"]
        [line] = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert "message_echoes[0]" in line and "no recipient" in line


async def test_an_echo_that_cannot_be_recorded_is_retried_then_given_up_without_a_handoff(
        database_url: str) -> None:
    attempts: list[str] = []

    async def failing(turn: Turn) -> None:
        if turn.is_echo:
            attempts.append(turn.item.wamid)
            raise RuntimeError("the assistant's conversation store is not ready")

    async with pipeline(database_url, failing) as p:
        assert await p.post(webhook(echoes_change(echo(wamid="wamid.STUCK")))) == 200
        await p.settle()
        assert (await p.inbox_rows())["wamid.STUCK"].state == "failed"
        for wait in (timedelta(minutes=1), timedelta(minutes=5)):
            p.clock.advance(wait + timedelta(seconds=1))
            assert await p.service.sweep() == 1
            await p.settle()
        assert attempts == ["wamid.STUCK"] * 3
        row = (await p.inbox_rows())["wamid.STUCK"]
        assert row.state == "abandoned" and "given up after 3 attempts" in row.error
        book = HandoffBook(engine=p.inbox.engine)
        await book.initialize()
        assert await book.listing(advisor_id=None) == []


# --------------------------------------------------------------------------- the emulator


async def test_the_emulator_sends_a_signed_echo_as_meta_would_and_shows_it_as_the_maisons() -> None:
    clock = ManualClock(T0)
    async with WebhookReceiver(app_secret="emulator-app-secret") as receiver:
        config = EmulatorConfig(webhook_url=receiver.url, status_sent_delay=0.01, status_delivered_delay=0.02,
                                status_read_delay=0.03)
        async with running_emulator(config, clock=clock) as emu, aiohttp.ClientSession(base_url=emu.base_url) as admin:
            async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": "Bonjour"}) as r:
                assert r.status == 200
            clock.advance(timedelta(minutes=3))
            async with admin.post("/_emulator/echo", json={"to": CLAIRE, "text": "Bonjour, c'est Sophie",
                                                           "duplicate": 1}) as r:
                assert r.status == 200
                sent = await r.json()
            async with admin.post("/_emulator/echo", json={"to": "FR.4410000000000000001",
                                                           "type": "image", "text": "La teinte"}) as r:
                assert r.status == 200
                photo = await r.json()
            async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
                assert (await r.json())["idle"]

            changes = receiver.changes("smb_message_echoes")
            assert all(p.signature_valid for p in receiver.accepted())
            assert len(changes) == 3  # the first one delivered twice
            texts = [c["value"] for c in changes if c["value"]["message_echoes"][0]["type"] == "text"]
            images = [c["value"] for c in changes if c["value"]["message_echoes"][0]["type"] == "image"]
            assert len(texts) == 2 and texts[0] == texts[1] and len(images) == 1
            value = texts[0]
            assert value["metadata"] == {"display_phone_number": config.display_phone_number,
                                         "phone_number_id": config.phone_number_id}
            assert value["message_echoes"] == [{
                "from": config.display_phone_number, "to": CLAIRE, "id": sent["wamid"],
                "timestamp": str(TS + 180), "type": "text", "text": {"body": "Bonjour, c'est Sophie"}}]
            [image] = images[0]["message_echoes"]
            assert "to" not in image and image["to_user_id"] == "FR.4410000000000000001"
            assert image["image"]["caption"] == "La teinte" and image["image"]["id"] == photo["message"]["image"]["id"]
            # Salon reads exactly what the emulator sends.
            bodies = [p.body for p in receiver.accepted() if b'"image"' in p.body]
            batch = parse_webhook(parse_body(bodies[0]))
            assert [(e.wamid, e.text, e.client.user_id) for e in batch.echoes] == [
                (photo["wamid"], "[image] La teinte", "FR.4410000000000000001")]

            async with admin.get("/_emulator/thread", params={"client": CLAIRE}) as r:
                thread = await r.json()
            assert [(m["direction"], m.get("source"), m.get("text") or m.get("body")) for m in thread["messages"]] == [
                ("in", None, "Bonjour"), ("out", "business_app", "Bonjour, c'est Sophie")]
            # No Graph API call: no outbox entry; her window is where her message left it.
            async with admin.get("/_emulator/outbox") as r:
                assert await r.json() == []
            assert thread["window"]["last_inbound_at"] == T0.isoformat()

            for wrong in ({"text": "x"}, {"to": CLAIRE}, {"to": CLAIRE, "text": "  "},
                          {"to": "nobody", "text": "x"}, {"to": CLAIRE, "text": "x", "type": "template"},
                          {"to": CLAIRE, "text": "x", "duplicate": -1}):
                async with admin.post("/_emulator/echo", json=wrong) as r:
                    assert r.status == 400, wrong
                    assert "error" in await r.json()
