"""The send-time guard on its own: real stores (SQLite), the maison's real templates and
consents, and a Graph transport that answers as Meta does (tests/fake_graph.py), so each
test reads the exact request the guard wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from salon.clock import ManualClock
from salon.config import Settings
from salon.consent.book import ConsentBook
from salon.guard.sender import GuardedSender
from salon.guard.sent import SentLog
from salon.identity import ClientRef
from salon.templates.registry import TemplateRegistry
from salon.webhook.inbox import Inbox
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.whatsapp.messages import OutgoingMessage
from salon.window.sql_store import SqlSessionStore
from tests.fake_graph import FakeGraph

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
PNID = "109876543210"
CLAIRE = "33600000001"  # in the maison's book: French, utility and marketing opt-in
JULIEN = "33600000005"  # in the maison's book: utility opt-in, marketing declined
BSUID = "FR.1234567890123456789"
REPLY = OutgoingMessage({"type": "text", "text": {"body": "Your piece is ready, Claire."}})


@dataclass
class Rig:
    sender: GuardedSender
    meta: FakeGraph
    sessions: SqlSessionStore
    sent: SentLog
    clock: ManualClock


async def _instant(_: float) -> None:
    return None


@asynccontextmanager
async def guard(settings: Settings) -> AsyncIterator[Rig]:
    clock = ManualClock(T0)
    inbox = Inbox(settings.effective_database_url)
    await inbox.initialize()
    sent = SentLog(engine=inbox.engine)
    sessions = SqlSessionStore(engine=inbox.engine, clock=clock)
    consents = ConsentBook(engine=inbox.engine)
    for store in (sent, sessions, consents):
        await store.initialize()
    meta = FakeGraph()
    graph = GraphClient(GraphConfig(access_token="t", phone_number_id=PNID), sleep=_instant, transport=meta)
    sender = GuardedSender(graph=graph, sessions=sessions, sent=sent, profile_name=inbox.latest_profile_name,
                           consents=consents, registry=TemplateRegistry.load_default(), clock=clock)
    try:
        yield Rig(sender, meta, sessions, sent, clock)
    finally:
        await graph.close()
        await inbox.close()


async def test_an_open_window_sends_free_form_to_the_phone_number(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        await rig.sessions.record_inbound(ref, T0 - timedelta(hours=1), message_id="wamid.IN1")
        outcome = await rig.sender.send(ref, REPLY)
        assert outcome.action == "free_form"
        [request] = rig.meta.sent()
        assert request["to"] == CLAIRE and "recipient" not in request
        assert request["text"] == {"body": "Your piece is ready, Claire."}
        assert rig.meta.target == f"/v27.0/{PNID}/messages"
        record = await rig.sent.outbound_by_wamid(outcome.wamid or "")
        assert record is not None and record.kind == "free_form" and record.status == "accepted"


async def test_a_bsuid_only_client_is_addressed_in_recipient_never_in_to(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, user_id=BSUID)
        await rig.sessions.record_inbound(ref, T0 - timedelta(minutes=5), message_id="wamid.IN2")
        outcome = await rig.sender.send(ref, REPLY)
        assert outcome.action == "free_form"
        [request] = rig.meta.sent()
        assert request["recipient"] == BSUID and request["recipient_type"] == "individual"
        assert "to" not in request
        assert rig.meta.dropped == []  # Meta would have dropped a BSUID written in ``to``


async def test_a_closed_window_sends_the_purposes_approved_template(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        await rig.sessions.record_inbound(ref, T0 - timedelta(hours=30), message_id="wamid.IN3")
        out = OutgoingMessage({"type": "text", "text": {"body": "Your order has left the atelier."}},
                              purpose="order_shipped", params={"order_ref": "SOL-482913"})
        outcome = await rig.sender.send(ref, out)
        assert outcome.action == "template" and outcome.template == "order_shipped"
        [request] = rig.meta.sent()
        assert request["type"] == "template" and request["to"] == CLAIRE
        template = request["template"]
        assert template["name"] == "order_shipped" and template["language"]["code"] == "fr"
        body = next(c for c in template["components"] if c["type"] == "body")
        assert [p["text"] for p in body["parameters"]] == ["Claire", "SOL-482913"]


async def test_a_reply_after_the_window_is_parked_behind_one_nudge(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        await rig.sessions.record_inbound(ref, T0 - timedelta(hours=25), message_id="wamid.IN4")
        first = await rig.sender.send(ref, REPLY)
        second = await rig.sender.send(ref, OutgoingMessage({"type": "text", "text": {"body": "And a photo."}}))
        assert first.action == second.action == "parked"
        nudges = [r for r in rig.meta.sent() if r["type"] == "template"]
        assert len(nudges) == 1, rig.meta.sent()  # one branded knock, however much is parked
        assert not [r for r in rig.meta.sent() if r["type"] == "text"]
        state = await rig.sessions.get(ref)
        assert state is not None and state.parked_count == 2


async def test_a_synchronous_131047_closes_the_window_and_the_message_is_decided_again(
    settings: Settings,
) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        await rig.sessions.record_inbound(ref, T0 - timedelta(hours=2), message_id="wamid.IN5")
        rig.meta.fail_next(131047, details="More than 24 hours have passed since the customer last replied")
        outcome = await rig.sender.send(ref, REPLY)
        assert outcome.action == "parked"
        kinds = [r["type"] for r in rig.meta.sent()]
        assert kinds == ["text", "template"], kinds  # refused, then the nudge
        state = await rig.sessions.get(ref)
        assert state is not None and state.window_closed_code == 131047
        assert not state.window(rig.clock.now()).can_send_free_form


async def test_a_send_without_an_answer_is_in_doubt_and_sent_once(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        await rig.sessions.record_inbound(ref, T0 - timedelta(hours=1), message_id="wamid.IN6")
        rig.meta.time_out_next()
        outcome = await rig.sender.send(ref, REPLY)
        assert outcome.action == "failed" and outcome.error is not None and outcome.error.code == -2
        assert len(rig.meta.sent()) == 1  # never written twice: Meta may have accepted it


async def test_marketing_without_consent_is_refused_before_any_request(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=JULIEN)
        await rig.sessions.record_inbound(ref, T0 - timedelta(hours=1), message_id="wamid.IN7")
        out = OutgoingMessage({"type": "text", "text": {"body": "Our new collection is here."}},
                              purpose="new_collection")
        outcome = await rig.sender.send(ref, out)
        assert outcome.action == "refused" and outcome.reason == "no_marketing_opt_in", outcome
        assert rig.meta.requests == []


async def test_a_retryable_error_is_retried_by_its_policy(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        await rig.sessions.record_inbound(ref, T0 - timedelta(hours=1), message_id="wamid.IN8")
        rig.meta.fail_next(2, http_status=503)
        outcome = await rig.sender.send(ref, REPLY)
        assert outcome.action == "free_form"
        assert len(rig.meta.sent()) == 2


async def test_an_explicit_template_follows_the_registrys_language_fallback(settings: Settings) -> None:
    async with guard(settings) as rig:
        ref = ClientRef(PNID, wa_id=CLAIRE)
        params = {"first_name": "Claire", "order_ref": "SOL-104233"}
        for asked, sent in (("it_IT", "it"), ("it", "it"), ("de", "en")):
            out = OutgoingMessage({}, purpose="order_shipped", params=params,
                                  template="order_shipped", language=asked)
            outcome = await rig.sender.send(ref, out)
            assert outcome.action == "template", (asked, outcome)
            request = rig.meta.sent()[-1]
            assert request["template"]["language"]["code"] == sent, asked
