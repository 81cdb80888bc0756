"""The advisor desk's acts for the console and the advisor API (salon/advisors/desk.py),
on SQLite and PostgreSQL with the seeded maison: who may work on a conversation handed
over or not, taking it up (claiming the open handoff, or opening one and pausing the
assistant), a manager reassigning it, a template sent by name through the real send-time
guard to the in-process Cloud API emulator, and the audit row every act leaves
(salon/advisors/audit.py). Also the handoff book's take and reassign
(salon/advisors/handoff.py), and its new columns added to a table an older version made.

The conversation store is Rasa's; the desk sees it through its ``Transcripts`` protocol,
played here by a small in-memory stand-in that keeps what the desk asked of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, inspect, select

from salon.access.tokens import Principal, TokenBook
from salon.advisors.audit import AdvisorAudit, AuditRecord
from salon.advisors.desk import AdvisorDesk, Caller, DeskAnswer
from salon.advisors.handoff import Handoff, HandoffBook, handoffs_table
from salon.clock import ManualClock
from salon.config import Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import RunningEmulator, WebhookReceiver, running_emulator
from salon.identity import ClientRef
from salon.integrations.crm import SqlCrm
from salon.integrations.schema import AwareDateTime
from salon.integrations.schema import advisors as advisors_table
from salon.outbound.queue import OutboundQueue
from salon.storage.db import make_async_engine
from salon.webhook.runtime import SenderParts, open_sender
from tests.outbound_support import emulator_graph
from tests.seeding import seed_maison
from tests.whatsapp_support import APP_SECRET

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)  # Wednesday, 10:00 in Paris
PNID = "100000000000001"  # the emulator's business number
CLAIRE = "33600000001"  # C-001, Sophie's; utility and marketing opt-in
HELENE = "33600000003"  # C-003, Sophie's; withdrew marketing with STOP
HENRY = "447700900102"  # C-014, James's
STRANGER = "33699999999"  # not in the book

SOPHIE_TOKEN = "sophie-token-0123456789"
JAMES_TOKEN = "james-token-0123456789"
OPS_TOKEN = "ops-token-0123456789"
TOKENS = [
    {"name": "sophie", "token": SOPHIE_TOKEN, "scopes": ["advisor"], "advisor_id": "sophie-marchand"},
    {"name": "james", "token": JAMES_TOKEN, "scopes": ["advisor"], "advisor_id": "james-whitaker"},
    {"name": "ops", "token": OPS_TOKEN, "scopes": ["manager"]},
    {"name": "metrics", "token": "metrics-token-0123456789", "scopes": ["metrics"]},
]
SOPHIE = f"Bearer {SOPHIE_TOKEN}"  # the advisor API's header
JAMES = f"Bearer {JAMES_TOKEN}"
OPS = f"Bearer {OPS_TOKEN}"
SOPHIE_AT_CONSOLE = Principal("sophie", frozenset({"advisor"}), "sophie-marchand")  # a console session's
OPS_AT_CONSOLE = Principal("ops", frozenset({"manager"}))


class MemoryTranscripts:
    """The Rasa side as the desk sees it, kept in memory: the advisor's lines, and every
    pause and resume asked for."""

    def __init__(self) -> None:
        self.lines: dict[str, list[dict[str, Any]]] = {}
        self.paused: list[str] = []
        self.resumed: list[str] = []

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        return list(self.lines.get(conversation_id, []))

    async def record_advisor_message(self, conversation_id: str, text: str, advisor: str) -> None:
        self.lines.setdefault(conversation_id, []).append({"from": "advisor", "advisor": advisor, "text": text})

    async def pause(self, conversation_id: str) -> None:
        self.paused.append(conversation_id)

    async def resume(self, conversation_id: str) -> None:
        self.resumed.append(conversation_id)


@dataclass
class Desk:
    desk: AdvisorDesk
    handoffs: HandoffBook
    audit: AdvisorAudit
    transcripts: MemoryTranscripts
    parts: SenderParts
    emulator: RunningEmulator
    clock: ManualClock
    advisor_ids: frozenset[str]
    trail_seen: int = field(default=0)

    async def hand_over(self, conversation: str, *, advisor_id: str | None, client_id: str | None,
                        client_name: str | None, reason: str = "talk_to_advisor",
                        ago: timedelta = timedelta(minutes=10)) -> Handoff:
        """What action_handoff does in the action server (the record; Rasa pauses itself)."""
        found, created = await self.handoffs.open(
            conversation_id=conversation, reason=reason, note="Client asked for her advisor", language="fr",
            now=self.clock.now() - ago, client_id=client_id, client_name=client_name, advisor_id=advisor_id,
            boutique_id="paris", phone_number_id=PNID, wa_id=conversation)
        assert created
        return found

    async def wrote(self, wa_id: str, ago: timedelta) -> None:
        """Her last message, as the channel records her window."""
        await self.parts.sessions.record_inbound(ClientRef(PNID, wa_id=wa_id), self.clock.now() - ago,
                                                 message_id=f"wamid.DESK{wa_id}{int(ago.total_seconds())}")

    async def outbox(self, wa_id: str) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession(base_url=self.emulator.base_url) as admin:
            async with admin.get("/_emulator/outbox", params={"to": wa_id}) as r:
                return list(await r.json())

    async def new_acts(self) -> list[AuditRecord]:
        """The acts recorded since the last call, oldest first."""
        trail = list(reversed(await self.audit.recent(1000)))
        fresh, self.trail_seen = trail[self.trail_seen:], len(trail)
        return fresh


async def _advisor_ids(parts: SenderParts) -> frozenset[str]:
    async with parts.inbox.engine.connect() as conn:
        return frozenset((await conn.execute(select(advisors_table.c.id))).scalars())


@asynccontextmanager
async def running_desk(database_url: str, tmp_path: Path, *,
                       advisor_ids: Iterable[str] | None = ()) -> AsyncIterator[Desk]:
    """The desk over the seeded maison, the real guard and the emulator. ``advisor_ids``:
    () for the seeded advisors (as the channel reads them), None for no list."""
    seed_maison(database_url)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=database_url, redis_url=None)
    clock = ManualClock(T0)
    async with WebhookReceiver(app_secret=APP_SECRET) as receiver:
        config = EmulatorConfig(app_secret=APP_SECRET, webhook_url=receiver.url, status_sent_delay=0.01,
                                status_delivered_delay=0.02, status_read_delay=None)
        async with running_emulator(config, clock=clock) as emu:
            parts = await open_sender(settings, emulator_graph(emu), clock)
            try:
                await parts.registry.refresh(force=True)
                engine = parts.inbox.engine
                handoffs = HandoffBook(engine=engine)
                await handoffs.initialize()
                audit = AdvisorAudit(engine=engine, clock=clock)
                await audit.initialize()
                known = await _advisor_ids(parts)
                queue = OutboundQueue(engine=engine)
                await queue.initialize()
                transcripts = MemoryTranscripts()
                desk = AdvisorDesk(
                    tokens=TokenBook.from_config(TOKENS), handoffs=handoffs, sessions=parts.sessions,
                    sender=parts.sender, transcripts=transcripts, clock=clock, phone_number_id=PNID,
                    crm=SqlCrm(engine), audit=audit, outbound=queue,
                    advisor_ids=None if advisor_ids is None else (frozenset(advisor_ids) or known))
                yield Desk(desk, handoffs, audit, transcripts, parts, emu, clock, known)
            finally:
                await parts.close()


@pytest.fixture()
async def desk(database_url: str, tmp_path: Path) -> AsyncIterator[Desk]:
    async with running_desk(database_url, tmp_path) as d:
        yield d


def refused(answer: DeskAnswer | tuple[Any, ...], status: int) -> bool:
    return isinstance(answer, DeskAnswer) and answer.status == status


def act(record: AuditRecord) -> tuple[str, str, str | None, str | None, dict[str, Any]]:
    return record.action, record.actor, record.conversation_id, record.client_id, dict(record.detail)


# --------------------------------------------------------------------------- access


async def test_access_to_a_conversation_handed_over_or_not(desk: Desk) -> None:
    d = desk.desk
    await desk.hand_over(HENRY, advisor_id="james-whitaker", client_id="C-014", client_name="Henry Ashworth")
    await desk.hand_over(STRANGER, advisor_id="sophie-marchand", client_id=None, client_name=None,
                         reason="booking_request")

    # Not handed over: the client's advisor in the book, and a manager.
    for caller in (SOPHIE, SOPHIE_AT_CONSOLE, OPS, OPS_AT_CONSOLE):
        found = await d.access(caller, CLAIRE)
        assert not isinstance(found, DeskAnswer), (caller, found)
        principal, handoff, record = found
        assert handoff is None and record is not None and record.id == "C-001"
        assert principal.name in ("sophie", "ops")
    assert refused(await d.access(JAMES, CLAIRE), 403)
    # Handed over: the handoff's advisor (even for someone the book does not know).
    found = await d.access(SOPHIE, STRANGER)
    assert not isinstance(found, DeskAnswer) and found[1] is not None and found[2] is None
    assert refused(await d.access(JAMES, STRANGER), 403)
    found = await d.access(JAMES, HENRY)
    assert not isinstance(found, DeskAnswer) and found[1] is not None and found[1].advisor_id == "james-whitaker"
    assert refused(await d.access(SOPHIE, HENRY), 403)
    assert not isinstance(await d.access(OPS, HENRY), DeskAnswer)
    # Someone nobody knows, never handed over: no advisor's; a manager may look.
    assert refused(await d.access(SOPHIE, "33699999998"), 403)
    assert not isinstance(await d.access(OPS, "33699999998"), DeskAnswer)
    # Not even a WhatsApp address: Salon knows nothing of it.
    assert refused(await d.access(OPS, "not-a-conversation"), 404)
    # The caller: no token, an unknown one, a token without the scope, a principal without it.
    assert refused(await d.access(None, CLAIRE), 401)
    assert refused(await d.access("Bearer not-a-known-token-at-all", CLAIRE), 401)
    assert refused(await d.access("Bearer metrics-token-0123456789", CLAIRE), 403)
    assert refused(await d.access(Principal("metrics", frozenset({"metrics"})), CLAIRE), 403)
    assert await desk.new_acts() == []  # looking is no act


# --------------------------------------------------------------------------- take


async def test_taking_a_handed_over_conversation_claims_its_handoff(desk: Desk) -> None:
    opened = await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001",
                                  client_name="Claire Laurent")
    assert refused(await desk.desk.take(JAMES, CLAIRE), 403)
    answer = await desk.desk.take(SOPHIE, CLAIRE)
    assert answer.status == 200, answer
    assert (answer.body["id"], answer.body["reason"], answer.body["status"]) == (opened.id, "talk_to_advisor", "open")
    assert (answer.body["taken_by"], answer.body["taken_at"]) == ("sophie", T0.isoformat())
    assert desk.transcripts.paused == []  # Rasa paused when it handed over: not twice
    stored = await desk.handoffs.open_for(CLAIRE)
    assert stored is not None and (stored.taken_by, stored.taken_at, stored.advisor_id) == (
        "sophie", T0, "sophie-marchand")
    # The manager stands in: the same handoff, now with him; still no second pause.
    desk.clock.advance(timedelta(minutes=5))
    answer = await desk.desk.take(OPS_AT_CONSOLE, CLAIRE)
    assert answer.status == 200 and answer.body["id"] == opened.id and answer.body["taken_by"] == "ops"
    assert desk.transcripts.paused == []
    assert [act(r) for r in await desk.new_acts()] == [
        ("take_handoff", "sophie", CLAIRE, "C-001", {"via": "api", "handoff_id": opened.id}),
        ("take_handoff", "ops", CLAIRE, "C-001", {"via": "console", "handoff_id": opened.id}),
    ]


async def test_taking_a_conversation_from_the_assistant_opens_a_handoff_and_pauses_once(desk: Desk) -> None:
    assert await desk.handoffs.latest_for(HELENE) is None
    assert refused(await desk.desk.take(JAMES, HELENE), 403)
    assert desk.transcripts.paused == []

    answer = await desk.desk.take(SOPHIE_AT_CONSOLE, HELENE)
    assert answer.status == 200, answer
    body = answer.body
    assert (body["reason"], body["status"], body["taken_by"], body["taken_at"]) == (
        "advisor_takeover", "open", "sophie", T0.isoformat())
    assert (body["client_id"], body["client_name"], body["advisor_id"], body["boutique_id"]) == (
        "C-003", "Hélène Vasseur", "sophie-marchand", "paris")
    assert (body["wa_id"], body["user_id"], body["language"]) == (HELENE, None, "fr")
    assert desk.transcripts.paused == [HELENE]
    stored = await desk.handoffs.open_for(HELENE)
    assert stored is not None and stored.id == body["id"] and stored.phone_number_id == PNID

    # Taken again (the page reloaded, the API called twice): the same handoff, no second pause.
    again = await desk.desk.take(SOPHIE, HELENE)
    assert again.status == 200 and again.body["id"] == body["id"]
    assert desk.transcripts.paused == [HELENE]

    # Handed back, then taken up once more: a new handoff, and the assistant paused again.
    back = await desk.desk.resume(SOPHIE, HELENE)
    assert back.status == 200 and back.body["status"] == "resolved"
    assert desk.transcripts.resumed == [HELENE]
    desk.clock.advance(timedelta(hours=1))
    later = await desk.desk.take(SOPHIE, HELENE)
    assert later.status == 200 and later.body["id"] != body["id"] and later.body["reason"] == "advisor_takeover"
    assert desk.transcripts.paused == [HELENE, HELENE]

    assert [act(r) for r in await desk.new_acts()] == [
        ("take_handoff", "sophie", HELENE, "C-003", {"via": "console", "handoff_id": body["id"]}),
        ("take_handoff", "sophie", HELENE, "C-003", {"via": "api", "handoff_id": body["id"]}),
        ("hand_back", "sophie", HELENE, "C-003", {"via": "api", "handoff_id": body["id"]}),
        ("take_handoff", "sophie", HELENE, "C-003", {"via": "api", "handoff_id": later.body["id"]}),
    ]


async def test_a_manager_takes_up_someone_the_book_does_not_know(desk: Desk) -> None:
    answer = await desk.desk.take(OPS, STRANGER)
    assert answer.status == 200, answer
    assert (answer.body["client_id"], answer.body["client_name"], answer.body["advisor_id"]) == (None, None, None)
    assert (answer.body["wa_id"], answer.body["language"], answer.body["taken_by"]) == (STRANGER, "en", "ops")
    assert desk.transcripts.paused == [STRANGER]
    assert refused(await desk.desk.take(SOPHIE, STRANGER), 403)  # nobody's client: not an advisor's to take
    assert refused(await desk.desk.take(OPS, "not-a-conversation"), 404)
    assert [act(r) for r in await desk.new_acts()] == [
        ("take_handoff", "ops", STRANGER, None, {"via": "api", "handoff_id": answer.body["id"]})]


# --------------------------------------------------------------------------- reassign


async def test_reassigning_refusals(desk: Desk) -> None:
    opened = await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001",
                                  client_name="Claire Laurent")
    d = desk.desk
    to_camille = {"advisor_id": "camille-roux"}
    only_manager = await d.reassign(SOPHIE, CLAIRE, to_camille)  # her own client, but no manager
    assert only_manager.status == 403 and "manager" in only_manager.body["error"]
    assert (await d.reassign(SOPHIE_AT_CONSOLE, CLAIRE, to_camille)).status == 403
    assert (await d.reassign(JAMES, CLAIRE, to_camille)).status == 403
    assert (await d.reassign(None, CLAIRE, to_camille)).status == 401
    for body in ({"advisor_id": "nobody-at-all"}, {"advisor_id": ""}, {"advisor_id": 7}, {}, None,
                 {"advisor_id": "Camille Roux, 06 12 34 56 78"}):
        answer = await d.reassign(OPS, CLAIRE, body)
        assert answer.status == 400 and "advisor" in answer.body["error"], (body, answer)
    # Nothing open: never handed over, or handed back.
    nothing = await d.reassign(OPS, HELENE, to_camille)
    assert nothing.status == 409 and "nothing to reassign" in nothing.body["error"]
    stored = await desk.handoffs.open_for(CLAIRE)
    assert stored is not None and stored.advisor_id == "sophie-marchand"  # untouched by all of that
    await desk.handoffs.resolve(CLAIRE, by="sophie", now=T0)
    assert (await d.reassign(OPS, CLAIRE, to_camille)).status == 409
    closed = await desk.handoffs.latest_for(CLAIRE)
    assert closed is not None and (closed.id, closed.advisor_id) == (opened.id, "sophie-marchand")
    assert await desk.new_acts() == []  # a refusal is no act


async def test_a_manager_reassigns_the_open_handoff(desk: Desk) -> None:
    opened = await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001",
                                  client_name="Claire Laurent")
    assert (await desk.desk.take(SOPHIE, CLAIRE)).status == 200
    answer = await desk.desk.reassign(OPS_AT_CONSOLE, CLAIRE, {"advisor_id": "camille-roux"})
    assert answer.status == 200, answer
    assert (answer.body["id"], answer.body["advisor_id"], answer.body["taken_by"], answer.body["taken_at"]) == (
        opened.id, "camille-roux", None, None)
    stored = await desk.handoffs.open_for(CLAIRE)
    assert stored is not None and stored.advisor_id == "camille-roux" and stored.taken_by is None
    # Sophie's list of handoffs no longer has it; the manager's does, with Camille.
    mine = await desk.desk.conversations(SOPHIE)
    assert mine.status == 200 and mine.body["conversations"] == []
    everyone = (await desk.desk.conversations(OPS)).body["conversations"]
    assert [(c["conversation_id"], c["advisor_id"]) for c in everyone] == [(CLAIRE, "camille-roux")]
    assert [act(r) for r in await desk.new_acts()] == [
        ("take_handoff", "sophie", CLAIRE, "C-001", {"via": "api", "handoff_id": opened.id}),
        ("reassign", "ops", CLAIRE, "C-001", {"via": "console", "from_advisor": "sophie-marchand",
                                              "to_advisor": "camille-roux", "handoff_id": opened.id}),
    ]


async def test_without_the_list_of_advisors_an_advisor_id_still_has_its_form(
        database_url: str, tmp_path: Path) -> None:
    """When the maison's advisors could not be read, any well-formed id is accepted, and
    a blank or a sentence is still refused before anything changes."""
    async with running_desk(database_url, tmp_path, advisor_ids=None) as desk:
        opened = await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001",
                                      client_name="Claire Laurent")
        for bad in ("", "   ", "Camille Roux, 06 12 34 56 78", "x" * 65):
            answer = await desk.desk.reassign(OPS, CLAIRE, {"advisor_id": bad})
            assert answer.status == 400, (bad, answer)
        stored = await desk.handoffs.open_for(CLAIRE)
        assert stored is not None and stored.advisor_id == "sophie-marchand"
        moved = await desk.desk.reassign(OPS, CLAIRE, {"advisor_id": "olivia-hart"})
        assert moved.status == 200 and moved.body["advisor_id"] == "olivia-hart"
        assert [act(r) for r in await desk.new_acts()] == [
            ("reassign", "ops", CLAIRE, "C-001", {"via": "api", "from_advisor": "sophie-marchand",
                                                  "to_advisor": "olivia-hart", "handoff_id": opened.id})]


# --------------------------------------------------------------------------- templates by name


FOLLOWUP_FR = ("Bonjour Claire, Sophie de Maison Solenne souhaite reprendre contact avec vous au sujet "
               "de votre demande.")


async def test_a_template_sent_by_name_reaches_the_phone(desk: Desk) -> None:
    opened = await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001",
                                  client_name="Claire Laurent")
    await desk.wrote(CLAIRE, timedelta(hours=30))  # her window closed yesterday
    answer = await desk.desk.send_template(SOPHIE, CLAIRE, {"template": "advisor_followup",
                                                            "params": {"advisor_name": "Sophie"}})
    assert answer.status == 200, answer
    assert (answer.body["sent"], answer.body["template"]) == ("template", "advisor_followup")
    assert answer.body["wamid"] and answer.body["window"]["open"] is False
    [shown] = await desk.outbox(CLAIRE)
    assert (shown["template"], shown["language"], shown["body"]) == ("advisor_followup", "fr", FOLLOWUP_FR)
    assert desk.transcripts.lines[CLAIRE] == [
        {"from": "advisor", "advisor": "sophie", "text": "[template advisor_followup]"}]

    # A marketing template to a client who agreed to marketing goes too.
    invitation = await desk.desk.send_template(SOPHIE_AT_CONSOLE, CLAIRE, {
        "template": "event_invitation", "params": {"event_name": "Soirée Solenne", "date": "jeudi 3 décembre"}})
    assert invitation.status == 200 and invitation.body["sent"] == "template", invitation
    assert [m["template"] for m in await desk.outbox(CLAIRE)] == ["advisor_followup", "event_invitation"]
    assert "Soirée Solenne" in (await desk.outbox(CLAIRE))[1]["body"]

    assert [act(r) for r in await desk.new_acts()] == [
        ("reply", "sophie", CLAIRE, "C-001", {"via": "api", "sent": "template", "template": "advisor_followup",
                                              "handoff_id": opened.id}),
        ("reply", "sophie", CLAIRE, "C-001", {"via": "console", "sent": "template", "template": "event_invitation",
                                              "handoff_id": opened.id}),
    ]


async def test_a_marketing_template_without_marketing_consent_is_refused(desk: Desk) -> None:
    opened = await desk.hand_over(HELENE, advisor_id="sophie-marchand", client_id="C-003",
                                  client_name="Hélène Vasseur")
    answer = await desk.desk.send_template(SOPHIE_AT_CONSOLE, HELENE, {
        "template": "event_invitation", "params": {"event_name": "Soirée Solenne", "date": "jeudi 3 décembre"}})
    assert answer.status == 409, answer
    assert (answer.body["sent"], answer.body["reason"], answer.body["wamid"]) == (
        "refused", "no_marketing_consent", None)
    assert await desk.outbox(HELENE) == [] and desk.transcripts.lines == {}
    # The utility follow-up is still hers to receive.
    followup = await desk.desk.send_template(SOPHIE_AT_CONSOLE, HELENE, {
        "template": "advisor_followup", "params": {"advisor_name": "Sophie"}})
    assert followup.status == 200 and followup.body["sent"] == "template", followup
    assert [m["template"] for m in await desk.outbox(HELENE)] == ["advisor_followup"]
    assert [act(r) for r in await desk.new_acts()] == [
        ("reply", "sophie", HELENE, "C-003", {"via": "console", "sent": "refused", "template": "event_invitation",
                                              "handoff_id": opened.id}),
        ("reply", "sophie", HELENE, "C-003", {"via": "console", "sent": "template", "template": "advisor_followup",
                                              "handoff_id": opened.id}),
    ]


async def test_a_template_request_out_of_form_sends_nothing(desk: Desk) -> None:
    await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001", client_name="Claire Laurent")
    d = desk.desk
    for body in (None, {}, {"template": ""}, {"template": "   "}, {"template": 42},
                 {"template": "advisor_followup", "params": ["Sophie"]},
                 {"template": "advisor_followup", "params": {"advisor_name": 3}},
                 {"template": "advisor_followup", "params": {"advisor_name": "S" * 1025}},
                 # A sentence typed where the name goes is no template's name.
                 {"template": "Bonjour Claire, votre collier est prêt"},
                 {"template": "Advisor_Followup"}):
        answer = await d.send_template(SOPHIE, CLAIRE, body)
        assert answer.status == 400, (body, answer)
    assert (await d.send_template(JAMES, CLAIRE, {"template": "advisor_followup"})).status == 403
    assert (await d.send_template(SOPHIE, HELENE, {"template": "advisor_followup"})).status == 403  # not handed over
    assert await desk.outbox(CLAIRE) == []
    assert await desk.new_acts() == []
    # A well-formed name the maison has no template for: the guard refuses it, and the act is kept.
    unknown = await d.send_template(SOPHIE, CLAIRE, {"template": "no_such_template"})
    assert unknown.status == 409 and unknown.body["sent"] == "refused", unknown
    assert [(r.action, r.detail["sent"], r.detail["template"]) for r in await desk.new_acts()] == [
        ("reply", "refused", "no_such_template")]
    # Handed back: nothing more goes out from the desk.
    await desk.handoffs.resolve(CLAIRE, by="sophie", now=T0)
    assert (await d.send_template(SOPHIE, CLAIRE, {"template": "advisor_followup"})).status == 409
    assert await desk.outbox(CLAIRE) == []


# --------------------------------------------------------------------------- the trail


async def test_every_act_leaves_one_row_with_its_via_and_never_its_words(desk: Desk) -> None:
    opened = await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001",
                                  client_name="Claire Laurent")
    await desk.wrote(CLAIRE, timedelta(hours=26))
    words = "Madame Laurent, votre collier est prêt à Paris."
    d = desk.desk
    steps: list[tuple[Caller, str, Any]] = [
        (SOPHIE_AT_CONSOLE, "take", None),
        (SOPHIE, "reply", {"text": words}),
        (SOPHIE_AT_CONSOLE, "send_template", {"template": "advisor_followup", "params": {"advisor_name": "Sophie"}}),
        (OPS, "reassign", {"advisor_id": "camille-roux"}),
        (OPS_AT_CONSOLE, "resume", None),
    ]
    expected = [
        ("take_handoff", "sophie", {"via": "console", "handoff_id": opened.id}),
        ("reply", "sophie", {"via": "api", "sent": "parked", "template": "advisor_update_nudge",
                             "handoff_id": opened.id}),
        ("reply", "sophie", {"via": "console", "sent": "template", "template": "advisor_followup",
                             "handoff_id": opened.id}),
        ("reassign", "ops", {"via": "api", "from_advisor": "sophie-marchand", "to_advisor": "camille-roux",
                             "handoff_id": opened.id}),
        ("hand_back", "ops", {"via": "console", "handoff_id": opened.id}),
    ]
    for (caller, name, body), (action, actor, detail) in zip(steps, expected, strict=True):
        desk.clock.advance(timedelta(minutes=1))
        route = getattr(d, name)
        answer = await (route(caller, CLAIRE) if body is None else route(caller, CLAIRE, body))
        assert answer.status in (200, 202), (name, answer)
        [record] = await desk.new_acts()  # one row per act
        assert (record.action, record.actor, record.conversation_id, record.client_id) == (
            action, actor, CLAIRE, "C-001")
        assert dict(record.detail) == detail
        assert record.at == desk.clock.now()
        assert record.advisor_id == ("sophie-marchand" if actor == "sophie" else None)
    trail = json.dumps([r.as_json() for r in await desk.audit.recent()], ensure_ascii=False)
    assert words not in trail and "collier" not in trail and SOPHIE_TOKEN not in trail and OPS_TOKEN not in trail
    assert [m["template"] for m in await desk.outbox(CLAIRE)] == ["advisor_update_nudge", "advisor_followup"]


# --------------------------------------------------------------------------- the handoff book


async def test_the_handoff_book_takes_and_reassigns_the_open_handoff(database_url: str) -> None:
    book = HandoffBook(database_url)
    await book.initialize()
    try:
        assert await book.take(CLAIRE, by="sophie", now=T0) is None  # nothing open
        assert await book.reassign(CLAIRE, "camille-roux") is None
        opened, _ = await book.open(conversation_id=CLAIRE, reason="complaint", note="", language="fr",
                                    now=T0 - timedelta(hours=1), client_id="C-001", advisor_id="sophie-marchand",
                                    phone_number_id=PNID, wa_id=CLAIRE)
        assert (opened.taken_by, opened.taken_at) == (None, None)
        taken = await book.take(CLAIRE, by="sophie", now=T0)
        assert taken is not None and (taken.id, taken.taken_by, taken.taken_at) == (opened.id, "sophie", T0)
        assert taken.taken_at is not None and taken.taken_at.utcoffset() == timedelta(0)
        stood_in = await book.take(CLAIRE, by="ops", now=T0 + timedelta(minutes=3))
        assert stood_in is not None and (stood_in.taken_by, stood_in.taken_at) == ("ops", T0 + timedelta(minutes=3))
        moved = await book.reassign(CLAIRE, "camille-roux")
        assert moved is not None and (moved.id, moved.advisor_id, moved.taken_by, moved.taken_at) == (
            opened.id, "camille-roux", None, None)
        assert moved.as_json()["taken_by"] is None and moved.as_json()["taken_at"] is None
        resolved = await book.resolve(CLAIRE, by="camille", now=T0 + timedelta(hours=1))
        assert resolved is not None and resolved.status == "resolved"
        assert await book.take(CLAIRE, by="sophie", now=T0 + timedelta(hours=2)) is None
        assert await book.reassign(CLAIRE, "sophie-marchand") is None
        latest = await book.latest_for(CLAIRE)
        assert latest is not None and latest.advisor_id == "camille-roux"  # a closed handoff stays as it was
    finally:
        await book.close()


OLD_COLUMNS = ("taken_by", "taken_at")


async def test_an_older_handoff_table_gets_the_new_columns(database_url: str) -> None:
    """A database made before the console: salon_handoffs without taken_by/taken_at, with
    an open handoff in it. initialize adds the columns; the old row reads back and can be
    taken."""
    old = MetaData()
    Table("salon_handoffs", old,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("conversation_id", String(200), nullable=False),
          Column("phone_number_id", String(64)), Column("wa_id", String(32)), Column("user_id", String(200)),
          Column("client_id", String(16)), Column("client_name", String(200)), Column("advisor_id", String(64)),
          Column("boutique_id", String(32)), Column("language", String(8), nullable=False),
          Column("reason", String(32), nullable=False), Column("note", Text, nullable=False),
          Column("status", String(16), nullable=False), Column("open_key", String(200), unique=True),
          Column("created_at", AwareDateTime, nullable=False), Column("resolved_at", AwareDateTime),
          Column("resolved_by", String(100)), Column("notified", String(16), nullable=False),
          Column("notify_detail", Text))
    engine = make_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(old.create_all)
            await conn.execute(old.tables["salon_handoffs"].insert().values(
                conversation_id=CLAIRE, phone_number_id=PNID, wa_id=CLAIRE, client_id="C-001",
                client_name="Claire Laurent", advisor_id="sophie-marchand", boutique_id="paris", language="fr",
                reason="talk_to_advisor", note="", status="open", open_key=CLAIRE,
                created_at=T0 - timedelta(days=1), notified="none"))

        def columns(sync_conn: Any) -> set[str]:
            return {c["name"] for c in inspect(sync_conn).get_columns("salon_handoffs")}

        async with engine.connect() as conn:
            assert not set(OLD_COLUMNS) & await conn.run_sync(columns)
        book = HandoffBook(engine=engine)
        await book.initialize()
        await book.initialize()  # a second start changes nothing
        async with engine.connect() as conn:
            assert await conn.run_sync(columns) == {c.name for c in handoffs_table.columns}
        before = await book.open_for(CLAIRE)
        assert before is not None and (before.taken_by, before.taken_at) == (None, None)
        assert before.created_at == T0 - timedelta(days=1)
        taken = await book.take(CLAIRE, by="sophie", now=T0)
        assert taken is not None and (taken.id, taken.taken_by, taken.taken_at) == (before.id, "sophie", T0)
        [listed] = await book.listing(advisor_id="sophie-marchand")
        assert listed == taken
    finally:
        await engine.dispose()



async def test_after_a_reassignment_the_conversation_is_the_new_advisors(desk: Desk) -> None:
    """Sophie's client handed to Camille by a manager: while it is with Camille, Sophie may
    neither open nor take it (her reply would be refused anyway); handed back, her client
    is hers to see again."""
    await desk.hand_over(CLAIRE, advisor_id="sophie-marchand", client_id="C-001", client_name="Claire Laurent")
    assert (await desk.desk.reassign(OPS, CLAIRE, {"advisor_id": "camille-roux"})).status == 200
    refused = await desk.desk.access(SOPHIE, CLAIRE)
    assert isinstance(refused, DeskAnswer) and refused.status == 403
    assert (await desk.desk.take(SOPHIE, CLAIRE)).status == 403
    assert (await desk.desk.resume(OPS, CLAIRE)).status == 200
    assert not isinstance(await desk.desk.access(SOPHIE, CLAIRE), DeskAnswer)



async def test_a_follow_up_is_queued_at_her_local_time(desk: Desk) -> None:
    """"Thursday 11:00" typed by Sophie is Claire's 11:00 in Paris; the outbound engine holds
    the request until then, for her, with the advisor's words; out of range or unreadable
    moments are refused before anything is queued; another advisor's client is refused."""
    local = (desk.clock.now() + timedelta(days=2)).astimezone(ZoneInfo("Europe/Paris")).replace(
        hour=11, minute=0, second=0, microsecond=0)
    answer = await desk.desk.schedule_follow_up(SOPHIE, CLAIRE, {
        "at": local.replace(tzinfo=None).isoformat(timespec="minutes"), "text": "Votre manteau est prêt."})
    assert answer.status == 202, answer
    request = answer.body["request"]
    assert datetime.fromisoformat(request["not_before"]) == local
    assert (request["purpose"], request["client"]["wa_id"], request["content"], request["params"],
            request["requested_by"], request["state"]) == (
        "advisor_followup", CLAIRE, {"text": "Votre manteau est prêt."}, {"advisor_name": "Sophie"},
        "advisor:sophie", "queued")
    for bad in ({"at": "demain"}, {"at": (desk.clock.now() - timedelta(hours=1)).isoformat()},
                {"at": (desk.clock.now() + timedelta(days=91)).isoformat()}, None):
        assert (await desk.desk.schedule_follow_up(SOPHIE, CLAIRE, bad)).status == 400, bad
    assert (await desk.desk.schedule_follow_up(JAMES, CLAIRE, {"at": local.isoformat()})).status == 403
    acts = [act(r) for r in await desk.new_acts()]
    assert [(a[0], a[1], a[2]) for a in acts] == [("schedule_follow_up", "sophie", CLAIRE)]
    assert acts[0][4]["purpose"] == "advisor_followup" and acts[0][4]["request_id"] == request["id"]
