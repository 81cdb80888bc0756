"""The drill map (tests/drills.py) and the drills no other test covered: R10 extreme
inbound through the signed webhook, W2 marketing after a stop through every path that can
start a message, and W1 as a time-skewed soak (bench/soak.py) run by pytest.

Everything runs against the project's own pieces: the WhatsApp channel on a real Sanic
server, the Cloud API emulator (its clock is the tests' ManualClock, so time travels
without a sleep), the outbound API, queue and worker, the advisor API, and the real
SQLite and PostgreSQL stores. Only Rasa's HTTP API is a stand-in (it is not the
project's code, and no trained model is needed to prove that it is never asked)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import regex
from aiohttp import web
from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ConversationPaused, UserUttered
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import create_engine, select

from actions import backends
from actions.handoff import ActionHandoff
from salon.access.tokens import TokenBook
from salon.advisors.handoff import HandoffBook
from salon.advisors.repairs import RepairBook
from salon.clock import ManualClock
from salon.config import PROJECT_ROOT, Settings
from salon.identity import ClientRef
from salon.outbound.api import create_app
from salon.outbound.caps import CapsConfig, MarketingCaps
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import NUDGED, REFUSED, SENT_FREE_FORM, SENT_TEMPLATE
from salon.outbound.worker import OutboundWorker, RasaTrigger
from salon.storage.db import sync_url
from salon.webhook.inbox import inbox_table
from salon.whatsapp.messages import MAX_TEXT
from tests.action_support import action_server_on, sealed
from tests.drills import DRILLS, ROOT, missing_node_ids, node_exists, node_ids
from tests.outbound_support import PNID, Stack, outbound_stack
from tests.test_whatsapp_sender import wired
from tests.whatsapp_support import (
    Channel,
    contact,
    envelope,
    messages_change,
    text_message,
    wamid,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)  # a Wednesday, 10:00 in Paris
TS = int(T0.timestamp())
CLAIRE = "33600000001"  # C-001: utility and marketing opt-ins, Sophie's client
ANTOINE = "33600000002"  # C-002: utility and marketing opt-ins (the control)


# --------------------------------------------------------------------------- the map


def test_every_drill_has_tests_and_every_node_id_names_a_test() -> None:
    assert sorted(DRILLS, key=lambda d: (d[0], int(d[1:]))) == [
        *(f"R{n}" for n in range(1, 11)), *(f"W{n}" for n in range(1, 5))]
    for name, drill in DRILLS.items():
        assert drill.goal.strip() and "\n" not in drill.goal, name
        assert drill.tests, f"{name} has no test"
        assert len(set(drill.tests)) == len(drill.tests), f"{name} lists a test twice"
    assert missing_node_ids() == []
    # The check itself sees a missing test, a missing file and a file outside tests/.
    assert not node_exists("tests/test_drills.py::test_no_such_test")
    assert not node_exists("tests/test_no_such_file.py")
    assert not node_exists("salon/window/rules.py")
    # This module's own drill tests are all in the map.
    ours = {n.partition("::")[2] for n in node_ids() if n.startswith("tests/test_drills.py::")}
    defined = {name for name in globals() if name.startswith(("test_r", "test_w"))}
    assert defined == ours


# --------------------------------------------------------------------------- R10

FAMILY = "\U0001F469\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"  # one grapheme, 7 code points
ZALGO = "Z\u0351\u0308\u0334a\u0335\u0327\u031bl\u0338g\u0336o\u0337"
EXTREME: dict[str, str] = {
    "long prose": " ".join(f"Phrase {n}: je souhaiterais voir le sac Aurore en noir, merci." for n in range(260)),
    "a long run of one family emoji": FAMILY * 700,
    "a long run of stacked accents": "e\u0301\u0302\u0303\u0304" * 1200,
    "a megabyte in one word": "x" * (1024 * 1024),
    "arabic": "مرحبا، أود حجز موعد في بوتيك باريس يوم الجمعة. شكراً جزيلاً 🌹",
    "hebrew": "שלום, אני מחפשת את התיק Aurore בצבע שחור — האם הוא במלאי?",
    "bidi controls": "\u202bأريد\u202c the \u2067Aurore\u2069 tote \u200fplease\u200e \u202etxet desrever\u202c",
    "emoji": f"{FAMILY} \U0001F1EB\U0001F1F7 \U0001F44D\U0001F3FD \u2764\ufe0f \U0001F9D1\U0001F3FF\u200d\U0001F9B1 1\ufe0f\u20e3",
    "combining": f"Cafe\u0301, re\u0301sume\u0301, {ZALGO}",
    "zero-width inside words": "Bon\u200bjour\u200c, je\u200d voudrais\ufeff un\u2060 rendez-vous",
    "only invisible characters": "\u200b\u200c\u200d\ufeff\u2060",
    "only white space": " \t\n \u3000 ",
}
ECHOED_UP_TO = 50_000
"""The assistant of this test answers with the client's own words (up to this length), so
every kind of text also goes back out through the send-time guard to the emulator."""


def _graphemes(text: str) -> list[str]:
    return list(regex.findall(r"\X", text))


def _inbox(url: str) -> dict[str, tuple[str, str]]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(inbox_table.c.wamid, inbox_table.c.text, inbox_table.c.state)).all()
    finally:
        engine.dispose()
    return {r.wamid: (r.text, r.state) for r in rows}


@asynccontextmanager
async def _wired(settings: Settings, clock: ManualClock, reply: Any = None,
                 agent: Any = None) -> AsyncIterator[tuple[Channel, aiohttp.ClientSession]]:
    """The channel and the emulator wired to each other on one clock."""
    async with wired(settings, reply, emulator_clock=clock, agent=agent) as (ch, _emu, admin):
        yield ch, admin


async def _idle(ch: Channel, admin: aiohttp.ClientSession) -> None:
    """Until neither side has anything in flight: the channel's turns (and the sends they
    make), the emulator's status webhooks, the channel's handling of them."""
    for _ in range(3):
        await ch.settle()
        async with admin.post("/_emulator/wait_idle", json={"timeout": 20}) as r:
            assert (await r.json())["idle"]
    await ch.settle()


async def _outbox(admin: aiohttp.ClientSession, to: str | None = None) -> list[dict[str, Any]]:
    async with admin.get("/_emulator/outbox", params={"to": to} if to else {}) as r:
        return list(await r.json())


@dataclass
class Echoed:
    case: str
    client: str
    text: str
    turns: list[str]
    """What the assistant received (Rasa's UserMessage strips the text)."""
    parts: list[dict[str, Any]]
    """The answer as the emulator holds it: one entry per message sent."""
    inbox: tuple[str, str] | None = None
    """(text, state) of the message's row in the inbox."""


async def _echo_through_the_webhook(url: str, tmp_path: Path, cases: dict[str, str]) -> list[Echoed]:
    """Each text as a client's message, through Meta's stand-in and the signed webhook,
    to an assistant that answers with the client's own words (up to ``ECHOED_UP_TO``)."""
    clock = ManualClock(T0)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=url, redis_url=None)

    async def echo(message: UserMessage) -> None:
        if message.text.strip() and len(message.text) <= ECHOED_UP_TO:
            await message.output_channel.send_response(message.sender_id, {"text": message.text})

    out: dict[str, Echoed] = {}
    async with _wired(settings, clock, echo) as (ch, admin):
        for n, (case, text) in enumerate(cases.items()):
            client = f"3361000{n:04d}"
            # Meta (the emulator) takes her message, opens her window on its side and
            # hands over the webhook's exact body, which is posted here, signed.
            name = f"{case[:12]} {FAMILY}{ZALGO}"  # the profile name as extreme as the text
            async with admin.post("/_emulator/inbound", json={
                    "from": client, "text": text, "name": name, "deliver": False}) as r:
                assert r.status == 200, case
                made = await r.json()
            assert await ch.post(made["webhook"]) == (200, "ok"), case
            out[made["wamid"]] = Echoed(case, client, text, [], [])
        await _idle(ch, admin)
        assert ch.runtime.service is not None
        assert ch.runtime.service.stats["rejected"] == 0
        for message in ch.received:
            out[message.message_id].turns.append(message.text)
        for wamid_, echoed in out.items():
            state = await ch.runtime.service.sessions.get(ClientRef(PNID, wa_id=echoed.client))
            assert state is not None and state.last_inbound_id == wamid_, echoed.case
            echoed.parts = await _outbox(admin, echoed.client)
    stored = _inbox(url)
    for wamid_, echoed in out.items():
        echoed.inbox = stored.get(wamid_)
    return list(out.values())


async def test_r10_extreme_texts_are_kept_whole_and_answered_within_the_limits(
        database_url: str, tmp_path: Path) -> None:
    """Each text, signed as Meta signs it: 200 at once, one turn with the text, the exact
    text in the inbox, the client's window open; the assistant's answer of the same words
    leaves in parts of at most 4,096 characters, none refused by Meta, nothing lost."""
    for echoed in await _echo_through_the_webhook(database_url, tmp_path, EXTREME):
        case, text = echoed.case, echoed.text
        assert echoed.turns == [text.strip()], case  # one turn: Rasa's UserMessage strips
        assert echoed.inbox == (text, "done"), case
        box = echoed.parts
        if not text.strip() or len(text) > ECHOED_UP_TO:
            assert box == [], case
            continue
        assert box, f"{case}: no answer"
        assert [(m["type"], m["status"], m["error_code"]) for m in box] == [("text", "read", None)] * len(box), case
        parts = [m["body"] for m in box]
        assert all(0 < len(p) <= MAX_TEXT for p in parts), (case, [len(p) for p in parts])
        if len(text) <= MAX_TEXT:
            assert parts == [text.strip()], case
        else:
            # Nothing lost or reordered (a split may drop the white space between parts).
            assert "".join(parts).replace(" ", "") == text.strip().replace(" ", ""), case


async def test_r10_a_long_answer_is_cut_only_between_graphemes(sqlite_url: str, tmp_path: Path) -> None:
    """An answer longer than 4,096 characters is sent in parts; a part never begins inside
    what the client sees as one character (an emoji drawn from several code points, a letter
    with its accents): each part is whole on her screen."""
    cases = {case: EXTREME[case] for case in (
        "long prose", "a long run of one family emoji", "a long run of stacked accents")}
    for echoed in await _echo_through_the_webhook(sqlite_url, tmp_path, cases):
        parts = [m["body"] for m in echoed.parts]
        assert len(parts) > 1 and "".join(parts).replace(" ", "") == echoed.text.replace(" ", ""), echoed.case
        cut = [n for n in range(1, len(parts))
               if _graphemes(parts[n - 1] + parts[n]) != _graphemes(parts[n - 1]) + _graphemes(parts[n])]
        assert cut == [], f"{echoed.case}: part(s) {cut} begin inside a grapheme: {parts[cut[0]][:4]!r}"


async def test_r10_what_cannot_be_taken_is_refused_with_its_reason_and_the_rest_kept(
        sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A body beyond the size limit is refused whole with its reason (400, never a 500, no
    turn); in a batch, an item that cannot be read is rejected with its reason (logged,
    counted) and its neighbours, extreme as they are, are kept."""
    caplog.set_level(logging.WARNING)
    clock = ManualClock(T0)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=sqlite_url, redis_url=None)
    async with _wired(settings, clock) as (ch, admin):
        huge = text_message("33610009001", "x" * (3 * 1024 * 1024), TS)
        status, reason = await ch.post(envelope(messages_change([huge], [contact("33610009001")])))
        assert (status, reason) == (400, "body too large")
        assert "webhook refused: body" in caplog.text  # the reason, logged

        kept = [text_message("33610009002", EXTREME["arabic"], TS + 1),
                text_message("33610009003", EXTREME["emoji"] + " " + EXTREME["combining"], TS + 2)]
        numeric = {"id": wamid(), "timestamp": str(TS + 3), "from": "33610009004", "type": "text",
                   "text": {"body": 4096}}
        no_sender = {"id": wamid(), "timestamp": str(TS + 4), "type": "text", "text": {"body": "\u202eSTOP"}}
        bad_time = {"id": wamid(), "timestamp": "demain", "from": "33610009005", "type": "text",
                    "text": {"body": "שלום"}}
        payload = envelope(messages_change([kept[0], numeric, no_sender, kept[1], bad_time],
                                           [contact("33610009002"), contact("33610009003")]))
        assert await ch.post(payload) == (200, "ok")
        await _idle(ch, admin)
        assert sorted(m.text for m in ch.received) == sorted(m["text"]["body"] for m in kept)
        assert ch.runtime.service is not None and ch.runtime.service.stats["rejected"] == 3
        reasons = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert len(reasons) == 3
        assert any("text.body is missing" in r for r in reasons)
        assert any("no sender" in r for r in reasons)
        assert any("Unix seconds" in r for r in reasons)
    assert {text for text, _ in _inbox(sqlite_url).values()} == {m["text"]["body"] for m in kept}


STOPS = {
    "plain": "STOP",
    "zero-width space after": "STOP\u200b",
    "byte order mark before": "\ufeffStop",
    "right-to-left mark before": "\u200fSTOP",
    "right-to-left override": "\u202eSTOP\u202c",
    "isolates": "\u2067STOP\u2069",
    "full-width letters": "\uff33\uff34\uff2f\uff30",
    "emoji after": "Stop \U0001F64F\U0001F3FD",
    "combining accent": "Arre\u0302t",
    "no-break space": "STOP\u00a0merci",
}


@pytest.mark.parametrize("text", list(STOPS.values()), ids=list(STOPS))
async def test_r10_a_stop_wrapped_in_invisible_or_rtl_marks_is_still_a_stop(
        text: str, settings: Settings) -> None:
    """Through the signed webhook, a STOP however it is dressed is recorded before any
    assistant sees it: the client is opted out, marketing refused."""
    clock = ManualClock(T0)
    async with _wired(settings, clock) as (ch, admin):
        async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": text,
                                                          "name": "Claire Laurent"}) as r:
            assert r.status == 200
        await _idle(ch, admin)
        assert ch.received == [], "a keyword never reaches the assistant"
        [confirmation] = await _outbox(admin, CLAIRE)
        assert confirmation["type"] == "text" and "START" in confirmation["body"]
        assert ch.runtime.service is not None
        consent = await ch.runtime.service.consents.consent_for(ClientRef(PNID, wa_id=CLAIRE))
        assert consent.opted_out and not consent.marketing_allowed


async def test_r10_a_stranger_with_an_extreme_profile_name_reaches_an_advisor(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client not in the maison's book asks for a person; the only name known of her is
    her WhatsApp profile name, as the webhook gave it: 25 letters, each drawn with a stack
    of accents (hundreds of code points). The handoff is recorded on PostgreSQL (the name
    kept or shortened, never a failed insert that tells her nobody can be reached)."""
    stranger = "447700900123"
    name = "".join(ch + "\u0301\u0308\u0327\u0336\u034f" * 3 for ch in "Anastasia Wolkonsky-Orlov")
    assert len(_graphemes(name)) == 25 and len(name) > 200
    action_server_on(postgres_url, tmp_path, monkeypatch, datetime(2026, 11, 25, 19, 0, tzinfo=timezone.utc))
    try:
        tracker = Tracker(sender_id=stranger, slots={}, latest_message={
            "text": "I would like to speak to someone", "intent": {"name": "talk_to_advisor"}, "entities": [],
            "metadata": sealed(stranger, wa_id=stranger, phone_number_id=PNID, profile_name=name)},
            events=[], paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen")
        dispatcher = CollectingDispatcher()
        await ActionHandoff().run(dispatcher, tracker, {})
        handoff = await (await backends.handoffs()).open_for(stranger)
        assert handoff is not None, f"no handoff; the client was told {[m['text'] for m in dispatcher.messages]}"
        assert handoff.client_name and name.startswith(handoff.client_name[:10])
        assert "cannot reach an advisor" not in " ".join(m["text"] or "" for m in dispatcher.messages)
    finally:
        backends.reset()


# --------------------------------------------------------------------------- W2

RASA_SECRET = "rasa-jwt-secret-for-the-drill-0123456789"
CRM = "crm-token-0123456789"
SOPHIE = "sophie-token-0123456789"
TOKENS = [
    {"name": "crm", "token": CRM, "scopes": ["outbound"]},
    {"name": "sophie", "token": SOPHIE, "scopes": ["advisor", "outbound"], "advisor_id": "sophie-marchand"},
]
MARKETING_STOPS = {"keyword": "opted_out", "user_preferences": "marketing_stopped"}


@dataclass
class RasaStandIn:
    """Rasa's ``trigger_intent`` as far as the worker uses it: records who was asked."""

    calls: list[str] = field(default_factory=list)
    url: str = ""

    async def trigger(self, request: web.Request) -> web.Response:
        self.calls.append(request.match_info["cid"])
        return web.json_response({"tracker": {}, "messages": []})


@asynccontextmanager
async def _served(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _rasa() -> AsyncIterator[RasaStandIn]:
    rasa = RasaStandIn()
    app = web.Application()
    app.router.add_post("/conversations/{cid}/trigger_intent", rasa.trigger)
    async with _served(app) as url:
        rasa.url = url
        yield rasa


async def _api(http: aiohttp.ClientSession, method: str, path: str, token: str,
               body: Any = None) -> tuple[int, Any]:
    async with http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, await r.json()


async def _stop(stack: Stack, how: str, client: str) -> None:
    if how == "keyword":
        await stack.say(**{"from": client, "text": "STOP", "name": "Claire Laurent"})
        return
    async with stack.admin.post("/_emulator/preferences", json={"from": client, "value": "stop"}) as r:
        assert r.status == 200, await r.text()
    await stack.idle()
    await stack.channel.settle()


@pytest.mark.parametrize("how", list(MARKETING_STOPS))
async def test_w2_marketing_after_a_stop_is_refused_through_every_path(how: str, settings: Settings) -> None:
    """Claire stops (the STOP keyword, or Meta's ``user_preferences`` stop); Antoine, with
    the same opt-ins, does not. Marketing for Claire through the outbound API (content, and
    template parameters only), a ``trigger_intent`` request, a campaign and her advisor's
    own request is refused, each with its reason on the request; nothing new reaches her
    phone and Rasa is never asked for her turn. The same requests for Antoine go out, so
    each path is open: only the stop closes it. Again once her window has closed."""
    clock = ManualClock(T0)
    expected = MARKETING_STOPS[how]
    async with outbound_stack(settings, clock) as stack, _rasa() as rasa:
        pacing = PacingConfig(business_rate=1000, business_burst=1000, client_burst=50, quiet=None)
        # Every path is tried for Antoine within minutes: the maison's gap between two
        # marketing templates (tests/test_marketing_caps.py) would hold all but the first.
        worker = OutboundWorker(stack.queue, stack.parts.sender, clock, pacing=pacing,
                                rasa=RasaTrigger(rasa.url, RASA_SECRET),
                                caps=MarketingCaps(stack.queue.engine, CapsConfig(gap=timedelta(0))))
        app = create_app(stack.queue, TokenBook.from_config(TOKENS), clock, phone_number_id=PNID)
        try:
            async with _served(app) as api_url, aiohttp.ClientSession(base_url=api_url) as http:
                await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
                await stack.say(**{"from": ANTOINE, "text": "Bonjour", "name": "Antoine Delacroix"})
                await _stop(stack, how, CLAIRE)
                before = [m["wamid"] for m in await stack.delivered(CLAIRE)]
                asked = []
                held = 0

                for phase in ("window open", "window closed"):
                    if phase == "window closed":
                        clock.advance(timedelta(hours=25))
                    tag = phase.split()[1]
                    ids: dict[tuple[str, str], str] = {}
                    for wa_id in (CLAIRE, ANTOINE):
                        for path, token, body in (
                            ("api content", CRM, {"purpose": "new_collection", "content": {
                                "text": "La collection Riviera vient d'arriver."}}),
                            ("api template", CRM, {"purpose": "new_collection", "params": {
                                "collection_name": "Riviera"}}),
                            ("trigger_intent", CRM, {"purpose": "new_collection", "trigger_intent": {
                                "name": "new_collection", "entities": {"collection": "Riviera"}}}),
                            ("advisor", SOPHIE, {"purpose": "event_invitation", "content": {
                                "text": "Sophie vous invite au vernissage de jeudi."},
                                "params": {"event_name": "le vernissage", "date": "jeudi 3 décembre"}}),
                        ):
                            status, answer = await _api(http, "POST", "/outbound", token, {
                                **body, "client": {"wa_id": wa_id}, "idempotency_key": f"w2-{tag}-{path.replace(' ', '-')}-{wa_id}"})
                            assert status == 201, answer
                            ids[(path, wa_id)] = answer["id"]
                    status, answer = await _api(http, "POST", "/outbound/campaigns", CRM, {
                        "campaign_id": f"w2-preview-{tag}", "purpose": "event_invitation",
                        "content": {"text": "Maison Solenne vous invite à la présentation privée."},
                        "params": {"event_name": "la présentation privée", "date": "jeudi 3 décembre"},
                        "clients": [{"wa_id": CLAIRE}, {"wa_id": ANTOINE}]})
                    assert status == 201 and answer["requests"] == 2, answer
                    ids[("campaign", CLAIRE)], ids[("campaign", ANTOINE)] = answer["ids"]

                    while await worker.run_once():
                        pass
                    await stack.idle()
                    await stack.channel.settle()
                    asked.append(ANTOINE)  # the control's trigger_intent, once per phase

                    for (path, wa_id), request_id in ids.items():
                        status, shown = await _api(http, "GET", f"/outbound/{request_id}", CRM)
                        assert status == 200
                        where = f"{phase}, {path}, {wa_id}"
                        if wa_id == CLAIRE:
                            assert shown["state"] == REFUSED, (where, shown)
                            assert shown["reason"] == expected, (where, shown)
                            assert [(e["state"], e["detail"]) for e in shown["events"]][-1] == (
                                REFUSED, {"reason": shown["reason"]}), (where, shown["events"])
                        elif tag == "closed" and shown["state"] == "queued":
                            # Meta failed an earlier marketing template to him with 131049:
                            # the next one waits 24 h (salon/outbound/caps.py), not lost;
                            # a held trigger_intent does not ask Rasa either.
                            assert shown["reason"] == "marketing_cap:131049", (where, shown)
                            if path == "trigger_intent":
                                asked.remove(ANTOINE)
                            else:
                                held += 1
                        elif path == "trigger_intent":
                            assert shown["state"] == "triggered", (where, shown)
                        elif tag == "open":  # free-form content while his window is open
                            free = path != "api template"
                            assert shown["state"] == (SENT_FREE_FORM if free else SENT_TEMPLATE), (where, shown)
                        else:  # then its template, or parked behind the marketing nudge
                            assert shown["state"] in (SENT_TEMPLATE, NUDGED), (where, shown["reason"], shown["events"])

                    now_there = [m["wamid"] for m in await stack.delivered(CLAIRE)]
                    assert now_there == before, f"{phase}: something reached Claire"
                    assert rasa.calls == asked, f"{phase}: Rasa was asked for {rasa.calls}"

                # Antoine: in each phase, one message for each of the four requests that are
                # not Rasa's (a template, or the marketing nudge once his window closed), all
                # taken by Meta (which may fail one later with 131049, its own cap on the
                # marketing templates one person receives).
                box = await stack.delivered(ANTOINE)
                assert not held or any(m["error_code"] == 131049 for m in box), box
                assert len(box) == 8 - held and all(m["error_code"] in (None, 131049) for m in box), [
                    (m["type"], m["template"], m["status"], m["error_code"]) for m in box]
        finally:
            assert worker.rasa is not None
            await worker.rasa.close()


async def test_w2_an_advisor_writing_first_after_a_stop_reaches_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Claire was handed to Sophie, then wrote STOP and went quiet. A day later Sophie
    writes to her through the advisor API, and marks her repair request ready: nothing
    reaches Claire's phone (no message, no template, no re-engagement nudge) and each answer
    says why (``opted_out``); Sophie's words wait for Claire's own next message."""
    monkeypatch.setenv("SALON_API_TOKENS", json.dumps(TOKENS))
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    agent = SimpleNamespace(tracker_store=InMemoryTrackerStore(domain), lock_store=InMemoryLockStore())

    async def paused_assistant(message: UserMessage) -> None:  # a paused conversation is only logged
        tracker = await agent.tracker_store.get_or_create_tracker(message.sender_id)
        tracker.update(UserUttered(message.text, metadata=message.metadata))
        await agent.tracker_store.save(tracker)

    clock = ManualClock(T0)
    async with _wired(settings, clock, paused_assistant, agent) as (ch, admin):
        async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": "I would like to speak to Sophie",
                                                          "name": "Claire Laurent"}) as r:
            assert r.status == 200
        await _idle(ch, admin)
        book = HandoffBook(settings.effective_database_url)
        await book.initialize()
        await book.open(conversation_id=CLAIRE, reason="talk_to_advisor", note="Client wrote: speak to Sophie",
                        language="fr", now=clock.now(), client_id="C-001", client_name="Claire Laurent",
                        advisor_id="sophie-marchand", boutique_id="paris", phone_number_id=PNID, wa_id=CLAIRE)
        await book.close()
        repairs = RepairBook(settings.effective_database_url)
        await repairs.initialize()
        try:
            repair = await repairs.open(conversation_id=CLAIRE, item="Astre bracelet", issue="the clasp is broken",
                                        photos=[], now=clock.now(), client_id="C-001",
                                        advisor_id="sophie-marchand", boutique_id="paris")
        finally:
            await repairs.close()
        tracker = await agent.tracker_store.get_or_create_tracker(CLAIRE)
        tracker.update(ActionExecuted("action_handoff"))
        tracker.update(ConversationPaused())
        await agent.tracker_store.save(tracker)

        async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": "STOP",
                                                          "name": "Claire Laurent"}) as r:
            assert r.status == 200
        await _idle(ch, admin)
        before = await _outbox(admin, CLAIRE)
        assert [m["type"] for m in before] == ["text"] and "START" in before[0]["body"]

        clock.advance(timedelta(hours=25))
        assert ch.http is not None
        async with ch.http.post(f"{ch.url}/webhooks/whatsapp/advisor/conversations/{CLAIRE}/reply",
                                headers={"Authorization": f"Bearer {SOPHIE}"},
                                json={"text": "Notre nouvelle collection est arrivée, je vous la réserve ?"}) as r:
            status, answer = r.status, await r.json()
        await _idle(ch, admin)
        assert status == 202, answer
        assert (answer["sent"], answer["wamid"], answer["nudge_wamid"]) == ("parked", None, None), answer
        assert answer["reason"] == "opted_out", answer

        # Her piece is ready: the notice (its own utility template once the window closed)
        # is refused as well, the change itself kept.
        async with ch.http.post(f"{ch.url}/webhooks/whatsapp/advisor/repairs/{repair.id}/status",
                                headers={"Authorization": f"Bearer {SOPHIE}"},
                                json={"status": "ready", "note": "Fermoir remplacé"}) as r:
            status, answer = r.status, await r.json()
        await _idle(ch, admin)
        assert status == 200, answer
        assert answer["repair"]["status"] == "ready"
        notice = answer["notice"]
        assert (notice["sent"], notice["wamid"], notice["nudge_wamid"]) == ("refused", None, None), notice
        assert notice["reason"] == "opted_out", notice
        assert answer["update"]["notified"] == notice["sent"]
        assert [m["wamid"] for m in await _outbox(admin, CLAIRE)] == [m["wamid"] for m in before], (
            "nothing reached Claire")


# --------------------------------------------------------------------------- W1


def test_w1_a_time_skewed_soak_sends_no_free_form_outside_the_window(tmp_path: Path) -> None:
    """bench/soak.py at a small size: 400 requests to 40 clients over 48 simulated hours
    (+30 to drain), queue delays of up to 30 h crossing window boundaries, one clock for
    Salon and the emulator moving an hour a step. The engine decides at send time: no
    131047, nothing lost, nothing sent twice, every request final; the baseline that
    decided at enqueue time does hit 131047 on the same traffic, so the soak did cross
    windows."""
    env = {**os.environ, "TQDM_DISABLE": "1", "TMPDIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "bench/soak.py", "--requests", "400", "--clients", "40", "--hours", "48"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["requests"] == 400
    assert (result["engine_131047"], result["lost"], result["duplicated"]) == (0, 0, 0), result
    assert result["baseline_131047"] > 0, result
    assert sum(result["outcomes"].values()) == 400, result
    assert result["rates"]["rate_131047"] == 0, result
