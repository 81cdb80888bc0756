"""Prometheus metrics: the catalogue's names and labels, the business figures against rows
seeded into the real tables (SQLite and PostgreSQL), the exposition parsed as Prometheus
would, and who may read ``/metrics`` over real HTTP (loopback, forwarded, another address,
the token) on every kind of server: the Rasa server's channel route (with the companion
process), the action server, an aiohttp API and the outbound worker's own server."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sanic import Sanic
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from salon import __version__
from salon.access.tokens import TokenBook
from salon.advisors.audit import AdvisorAudit, advisor_audit_table
from salon.advisors.handoff import HandoffBook, handoffs_table
from salon.clock import ManualClock, to_us
from salon.config import PROJECT_ROOT, Settings
from salon.guard.sent import STATUS_RANK, SentLog, outbound_table
from salon.integrations.seed import seed_database
from salon.llm.audit import LlmAudit, audit_table
from salon.metrics.access import ENV_TOKEN, MetricsAccess, MetricsConfigError, is_loopback_peer
from salon.metrics.business import ENV_TTL, BusinessMetrics, ttl_from_env
from salon.metrics.catalog import BUSINESS_FAMILIES, FAMILIES, family
from salon.metrics.registry import (
    ENV_BUSINESS,
    GDPR_API,
    RASA,
    ProcessMetrics,
    io_snapshot,
    reads_business,
)
from salon.metrics.serve import ENV_WORKER_PORT, install_metrics, serve_worker_metrics
from salon.outbound.queue import OutboundQueue, requests_table
from salon.pricing.charge import default_card
from salon.pricing.ledger import Ledger, ledger_table
from salon.storage.db import make_async_engine
from salon.webhook.inbox import Inbox, inbox_table
from salon.webhook.runtime import WhatsAppRuntime
from salon.window.sql_store import SqlSessionStore, aliases_table, sessions_table
from tests.whatsapp_support import (
    contact,
    envelope,
    free_port,
    messages_change,
    running_channel,
    serve,
    text_message,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # a Wednesday
PNID = "100000000000001"
CLAIRE, CLAIRE_BSUID = "33600000001", "FR.4820193746581029374"  # C-001, VIC
MARC = "33600000002"  # C-002, Platinum
ELENA = "33600000003"  # C-003, Gold
STRANGER = "33699999999"  # not in the client book
TOKEN = "metrics-token-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --------------------------------------------------------------------------- helpers


def parse(exposition: str) -> Samples:
    """Every sample of a text exposition, as Prometheus' own parser reads it."""
    out: Samples = {}
    for fam in text_string_to_metric_families(exposition):
        for sample in fam.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def ago(**delta: float) -> int:
    return to_us(T0 - timedelta(**delta))


def outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    found: set[str] = set()
    try:
        found.update(str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    return next((a for a in sorted(found) if not ipaddress.ip_address(a).is_loopback), None)


@asynccontextmanager
async def serve_sanic_on(app: Sanic, host: str) -> AsyncIterator[str]:
    """Run a Sanic app on ``host`` (any local address) and a free port."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    Sanic.test_mode = True
    server = await app.create_server(host=host, port=port, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    await server.before_start()
    try:
        await server.after_start()
        yield f"http://{host}:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


@asynccontextmanager
async def serve_aiohttp(app: web.Application, *hosts: str) -> AsyncIterator[list[str]]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    urls = []
    try:
        for host in hosts:
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = int(probe.getsockname()[1])
            await web.TCPSite(runner, host, port).start()
            urls.append(f"http://{host}:{port}")
        yield urls
    finally:
        await runner.cleanup()


async def get(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.text()


# --------------------------------------------------------------------------- catalogue


def test_every_family_is_named_for_salon_with_bounded_labels() -> None:
    seen = set()
    for entry in FAMILIES:
        assert entry.name not in seen, entry.name
        seen.add(entry.name)
        assert entry.kind in {"gauge", "counter", "histogram", "gaugehistogram"}
        assert entry.name.startswith("salon_") or entry.source == "process", entry.name
        assert entry.help and entry.help.endswith("."), entry.name
        # No label may carry who the client is.
        assert not set(entry.labels) & {"client", "client_id", "wa_id", "user_id", "recipient", "wamid",
                                        "conversation_id", "phone"}, entry.name
    assert {f.name for f in BUSINESS_FAMILIES} >= {
        "salon_messages", "salon_windows", "salon_fallback_ratio", "salon_error_131047",
        "salon_nudge_conversion_ratio", "salon_containment_ratio", "salon_handoff_wait_seconds",
        "salon_whatsapp_estimated_cost", "salon_whatsapp_billed_cost", "salon_llm_turns",
        "salon_outbound_queued", "salon_outbound_oldest_due_age_seconds"}


def test_the_metrics_token_is_checked_at_start_and_never_shown() -> None:
    with pytest.raises(MetricsConfigError, match=ENV_TOKEN):
        MetricsAccess.from_env({ENV_TOKEN: "short"})
    with pytest.raises(MetricsConfigError):
        MetricsAccess.from_env({ENV_TOKEN: "has a space in it 0123456789"})
    access = MetricsAccess.from_env({ENV_TOKEN: TOKEN})
    assert TOKEN not in repr(access) and access.token_required
    assert not MetricsAccess.from_env({}).token_required
    assert access.refusal("127.0.0.1", {"authorization": f"Bearer {TOKEN}"}) is None
    assert access.refusal("127.0.0.1", {"authorization": f"Basic {TOKEN}"}) == 401
    assert ttl_from_env({}) == 10.0 and ttl_from_env({ENV_TTL: "45"}) == 45.0
    for wrong in ("soon", "0", "-5", "86400"):
        with pytest.raises(MetricsConfigError, match=ENV_TTL):
            ttl_from_env({ENV_TTL: wrong})
    assert reads_business(RASA, {}) and not reads_business(RASA, {ENV_BUSINESS: "off"})
    assert reads_business(GDPR_API, {ENV_BUSINESS: "GDPR-API"})
    with pytest.raises(MetricsConfigError, match=ENV_BUSINESS):
        reads_business(RASA, {ENV_BUSINESS: "everywhere"})
    assert is_loopback_peer("::1") and is_loopback_peer("::ffff:127.0.0.1") and is_loopback_peer("127.8.0.1")
    assert not is_loopback_peer("10.0.0.1") and not is_loopback_peer(None) and not is_loopback_peer("/run/x.sock")


# --------------------------------------------------------------------------- business figures


async def tables(url: str, clock: ManualClock) -> AsyncEngine:
    """Every table the business metrics read, created by their own stores, with the maison's
    client book seeded."""
    await asyncio.to_thread(seed_database, url, PROJECT_ROOT / "data" / "maison")
    engine = make_async_engine(url)
    for store in (Inbox(engine=engine), SentLog(engine=engine), SqlSessionStore(engine=engine, clock=clock),
                  HandoffBook(engine=engine), AdvisorAudit(engine=engine, clock=clock),
                  LlmAudit(engine=engine, clock=clock), OutboundQueue(engine=engine),
                  Ledger(engine=engine, card=default_card())):
        await store.initialize()
    return engine


def inbound(wamid: str, sender: str, sent: int, *, kind: str = "text", state: str = "done", echo: bool = False,
            wa_id: str | None = None, user_id: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": kind, "wa_id": wa_id, "user_id": user_id}
    if echo:
        meta["echo"] = True
    return {"wamid": wamid, "phone_number_id": PNID, "sender_id": sender, "sent_us": sent, "received_us": sent,
            "text": "…", "metadata": meta, "state": state, "attempts": 1, "updated_us": sent}


def sent(wamid: str | None, recipient: str, created: int, *, kind: str, status: str, purpose: str,
         category: str | None = None, price_type: str | None = "regular", cost: int | None = None,
         market: str | None = "FR", error_code: int | None = None) -> dict[str, Any]:
    priced = category is not None
    return {"wamid": wamid, "phone_number_id": PNID, "recipient": recipient, "kind": kind, "purpose": purpose,
            "status": status, "status_rank": STATUS_RANK[status], "status_us": created, "error_code": error_code,
            "created_us": created, "updated_us": created, "price_category": category,
            "price_type": price_type if priced else None, "market": market if priced else None,
            "cost_micros": cost, "currency": "USD" if priced else None}


def priced(wamid: str, recipient: str, first: int, *, category: str, pricing_type: str = "regular",
           billable: bool = True, delivered: bool = True, cost: int = 0, market: str = "FR") -> dict[str, Any]:
    return {"wamid": wamid, "phone_number_id": PNID, "recipient": recipient, "market": market,
            "category": category, "pricing_type": pricing_type, "billable": int(billable), "pricing_model": "PMP",
            "cost_micros": cost, "currency": "USD", "delivered": int(delivered), "first_us": first,
            "updated_us": first, "mismatch": None}


def session(wa_id: str, last: int | None, *, user_id: str | None = None, closed: int | None = None
            ) -> dict[str, Any]:
    return {"phone_number_id": PNID, "client_key": f"w:{wa_id}", "wa_id": wa_id, "user_id": user_id,
            "last_inbound_us": last, "window_closed_us": closed, "window_closed_code": 131047 if closed else None,
            "session_count": 1 if last else 0}


def handoff(conversation: str, created: datetime, *, status: str = "open", wa_id: str | None = None,
            user_id: str | None = None, taken: datetime | None = None) -> dict[str, Any]:
    return {"conversation_id": conversation, "phone_number_id": PNID, "wa_id": wa_id, "user_id": user_id,
            "language": "fr", "reason": "talk_to_advisor", "note": "", "status": status,
            "open_key": conversation if status == "open" else None, "created_at": created,
            "resolved_at": None if status == "open" else created + timedelta(hours=2),
            "notified": "none", "taken_by": "sophie" if taken else None, "taken_at": taken}


def request_row(n: int, state: str, due: int) -> dict[str, Any]:
    return {"id": f"{n:032x}", "idempotency_key": f"test:{n}", "phone_number_id": PNID, "wa_id": CLAIRE,
            "purpose": "order_update", "params": {}, "requested_by": "system:test", "state": state, "attempts": 0,
            "created_us": due, "not_before_us": due, "due_us": due, "updated_us": due}


async def seed_rows(engine: AsyncEngine) -> None:
    day = timedelta(days=1)
    async with engine.begin() as conn:
        await conn.execute(inbox_table.insert(), [
            inbound("in-1", CLAIRE_BSUID, ago(minutes=30), wa_id=CLAIRE, user_id=CLAIRE_BSUID),
            inbound("in-2", CLAIRE_BSUID, ago(hours=3), kind="interactive", wa_id=CLAIRE, user_id=CLAIRE_BSUID),
            inbound("in-3", MARC, ago(days=2), state="abandoned", wa_id=MARC),
            inbound("in-4", CLAIRE, ago(minutes=20), echo=True, wa_id=CLAIRE),  # her advisor, from the phone
            inbound("in-5", ELENA, ago(days=3) + 7_200_000_000, wa_id=ELENA),  # answers the nudge 2 h later
            inbound("in-6", "33600000005", ago(minutes=10), kind="hologram", state="pending"),
            inbound("in-7", ELENA, ago(hours=25), echo=True, wa_id=ELENA),  # her advisor answers the handoff
        ])
        await conn.execute(outbound_table.insert(), [
            sent("w-1", CLAIRE, ago(minutes=29), kind="free_form", status="read", purpose="service_reply",
                 category="service", cost=30_000),
            sent("w-2", MARC, ago(hours=5), kind="template", status="delivered", purpose="order_update",
                 category="utility", cost=30_000),
            sent(None, ELENA, ago(days=3), kind="free_form", status="parked", purpose="order_update"),
            sent("w-4", ELENA, ago(days=3), kind="nudge", status="delivered", purpose="reengage_update",
                 category="utility", cost=30_000),
            sent("w-5", MARC, ago(days=4), kind="nudge", status="delivered", purpose="reengage_update",
                 category="utility", cost=30_000),
            sent("w-6", CLAIRE, ago(minutes=50), kind="nudge", status="delivered", purpose="reengage_update",
                 category="utility", cost=30_000),
            sent("w-7", STRANGER, ago(hours=2), kind="nudge", status="sent", purpose="reengage_update",
                 category="utility", cost=30_000),
            sent(None, MARC, ago(hours=26), kind="free_form", status="failed", purpose="service_reply",
                 category="service", cost=30_000, error_code=131047),
            sent(None, CLAIRE, ago(minutes=10), kind="free_form", status="refused", purpose="new_collection"),
            sent("w-10", CLAIRE_BSUID, ago(hours=2), kind="template", status="sent", purpose="event_invitation",
                 category="marketing", cost=79_400),
            sent("w-11", "447700900123", ago(days=40), kind="template", status="delivered",
                 purpose="appointment_reminder", category="utility", cost=22_000, market="GB"),
        ])
        await conn.execute(ledger_table.insert(), [
            priced("w-1", CLAIRE, ago(minutes=29), category="service", cost=30_000),
            priced("w-2", MARC, ago(hours=5), category="utility", cost=30_000),
            priced("w-10", CLAIRE_BSUID, ago(hours=2), category="utility", delivered=False, cost=30_000),
            priced("w-99", "447700900123", ago(hours=3), category="marketing", cost=52_900, market="GB"),
            priced("w-4", ELENA, ago(days=3), category="utility", pricing_type="free_customer_service",
                   billable=False),
        ])
        await conn.execute(sessions_table.insert(), [
            session(CLAIRE, ago(minutes=30), user_id=CLAIRE_BSUID),
            session(MARC, ago(hours=23)),  # closes within the hour
            session(ELENA, ago(days=3)),
            session("33600000006", ago(hours=1), closed=ago(minutes=10)),  # a 131047 since she wrote
            session("33600000007", None),  # never wrote
        ])
        await conn.execute(aliases_table.insert(), [
            {"phone_number_id": PNID, "alias": f"w:{CLAIRE}", "client_key": f"w:{CLAIRE}"},
            {"phone_number_id": PNID, "alias": f"u:{CLAIRE_BSUID}", "client_key": f"w:{CLAIRE}"},
        ])
        marc_handed = T0 - 2 * day + timedelta(hours=1)
        await conn.execute(handoffs_table.insert(), [
            handoff(MARC, marc_handed, status="resolved", wa_id=MARC, taken=marc_handed + timedelta(minutes=10)),
            handoff(CLAIRE, T0 - timedelta(minutes=15), wa_id=CLAIRE, user_id=CLAIRE_BSUID),
            handoff("33600000008", T0 - 10 * day, wa_id="33600000008"),
            handoff(ELENA, T0 - timedelta(hours=26), status="resolved", wa_id=ELENA),
        ])
        await conn.execute(advisor_audit_table.insert(), [
            {"at": marc_handed + timedelta(minutes=25), "actor": "sophie", "advisor_id": "sophie-marchand",
             "action": "reply", "conversation_id": MARC, "client_id": "C-002", "detail": {"sent": "free_form"}},
            {"at": T0 - timedelta(minutes=5), "actor": "sophie", "advisor_id": "sophie-marchand",
             "action": "reply", "conversation_id": CLAIRE, "client_id": "C-001", "detail": {"sent": "refused"}},
        ])
        await conn.execute(audit_table.insert(), [
            {"at": T0 - timedelta(minutes=10), "client_id": "C-001", "mode": "llm", "model": "m", "retrieved_ids": [],
             "verdict": "pass", "problems": [], "latency_ms": 900, "attempts": 1, "prompt_tokens": 10,
             "completion_tokens": 20},
            {"at": T0 - timedelta(hours=2), "client_id": "C-002", "mode": "offline", "model": "offline",
             "retrieved_ids": [], "verdict": "offline", "problems": [], "latency_ms": 3, "attempts": 0,
             "prompt_tokens": 0, "completion_tokens": 0},
            {"at": T0 - timedelta(days=3), "client_id": "C-003", "mode": "llm", "model": "m", "retrieved_ids": [],
             "verdict": "something new", "problems": [], "latency_ms": 800, "attempts": 2, "prompt_tokens": 10,
             "completion_tokens": 20},
        ])
        await conn.execute(requests_table.insert(), [
            request_row(1, "queued", ago(minutes=5)),
            request_row(2, "queued", ago(seconds=90)),
            request_row(3, "queued", to_us(T0 + timedelta(hours=1))),
            request_row(4, "sent_free_form", ago(days=1)),
        ])


async def business_exposition(engine: AsyncEngine, clock: ManualClock) -> Samples:
    metrics = ProcessMetrics(RASA, MetricsAccess())
    metrics.add(BusinessMetrics(engine, clock))
    return parse((await metrics.exposition()).decode())


async def test_business_metrics_count_the_seeded_rows(database_url: str) -> None:
    clock = ManualClock(T0)
    engine = await tables(database_url, clock)
    try:
        await seed_rows(engine)
        s = await business_exposition(engine, clock)
    finally:
        await engine.dispose()
    assert value(s, "salon_business_metrics_up") == 1

    # Messages, by direction, type, category and outcome.
    messages = "salon_messages"
    assert value(s, messages, window="1h", direction="inbound", type="text", category="none", outcome="done") == 1
    assert value(s, messages, window="7d", direction="inbound", type="text", category="none", outcome="done") == 2
    assert value(s, messages, window="24h", direction="inbound", type="interactive", category="none",
                 outcome="done") == 1
    assert value(s, messages, window="7d", direction="inbound", type="text", category="none",
                 outcome="abandoned") == 1
    assert value(s, messages, window="1h", direction="inbound", type="other", category="none",
                 outcome="pending") == 1
    assert value(s, messages, window="1h", direction="echo", type="text", category="none", outcome="done") == 1
    assert value(s, messages, window="24h", direction="outbound", type="nudge", category="utility",
                 outcome="delivered") == 1
    assert value(s, messages, window="7d", direction="outbound", type="nudge", category="utility",
                 outcome="delivered") == 3
    assert value(s, messages, window="7d", direction="outbound", type="free_form", category="none",
                 outcome="parked") == 1
    assert value(s, messages, window="1h", direction="outbound", type="free_form", category="none",
                 outcome="refused") == 1
    assert not any(name == messages and ("window", "30d") in labels for name, labels in s)

    # Windows now: Claire open, Marc closing within 2 h, the rest closed (one by a 131047).
    assert value(s, "salon_windows", state="open") == 1
    assert value(s, "salon_windows", state="closing") == 1
    assert value(s, "salon_windows", state="closed") == 3

    # Decisions and the fallback ratio (templates and parks per decided send).
    assert value(s, "salon_send_decisions", window="1h", decision="free_form") == 1
    assert value(s, "salon_send_decisions", window="1h", decision="refused") == 1
    assert value(s, "salon_send_decisions", window="24h", decision="template") == 2
    assert value(s, "salon_send_decisions", window="7d", decision="park") == 1
    assert value(s, "salon_send_decisions", window="30d", decision="free_form") == 2
    assert value(s, "salon_fallback_ratio", window="1h") == 0
    assert value(s, "salon_fallback_ratio", window="24h") == pytest.approx(2 / 3)
    assert value(s, "salon_fallback_ratio", window="7d") == pytest.approx(3 / 5)
    assert value(s, "salon_error_131047", window="24h") == 0
    assert value(s, "salon_error_131047", window="7d") == 1

    # Nudges: Elena answered (2 h later), Marc did not, Claire answered from her BSUID a
    # nudge sent to her number (young), the stranger's is young and unanswered.
    assert value(s, "salon_nudges", outcome="replied") == 2
    assert value(s, "salon_nudges", outcome="unanswered") == 1
    assert value(s, "salon_nudges", outcome="waiting") == 1
    assert value(s, "salon_nudge_conversion_ratio") == pytest.approx(1 / 2)

    # Containment: Claire (handed over today) and Marc (the day he wrote) needed a person.
    assert value(s, "salon_client_days", resolution="assistant") == 2
    assert value(s, "salon_client_days", resolution="advisor") == 2
    assert value(s, "salon_containment_ratio") == pytest.approx(0.5)

    # Handoffs: Marc's taken after 10 min, answered after 25; Elena's answered from the
    # phone after an hour; Claire's and an old one still wait (the refused reply and the
    # echo before her handoff do not count).
    wait = "salon_handoff_wait_seconds"
    assert value(s, f"{wait}_bucket", until="taken", le="300.0") == 0
    assert value(s, f"{wait}_bucket", until="taken", le="900.0") == 1
    assert value(s, f"{wait}_gcount", until="taken") == 1
    assert value(s, f"{wait}_gsum", until="taken") == 600
    assert value(s, f"{wait}_bucket", until="first_reply", le="900.0") == 0
    assert value(s, f"{wait}_bucket", until="first_reply", le="1800.0") == 1
    assert value(s, f"{wait}_bucket", until="first_reply", le="3600.0") == 2
    assert value(s, f"{wait}_bucket", until="first_reply", le="+Inf") == 2
    assert value(s, f"{wait}_gsum", until="first_reply") == 25 * 60 + 3600
    assert value(s, "salon_handoffs_waiting") == 2
    assert value(s, "salon_handoff_oldest_wait_seconds") == 10 * 86400

    # Cost, estimated: sends that left, by category, market, purpose and tier, in dollars.
    est = "salon_whatsapp_estimated_cost"
    assert value(s, est, window="1h", category="service", market="FR", purpose="service_reply", tier="VIC",
                 currency="USD") == pytest.approx(0.03)
    assert value(s, est, window="1h", category="utility", market="FR", purpose="reengage_update", tier="VIC",
                 currency="USD") == pytest.approx(0.03)
    assert value(s, est, window="24h", category="marketing", market="FR", purpose="event_invitation",
                 tier="VIC", currency="USD") == pytest.approx(0.0794)  # to her BSUID
    assert value(s, est, window="24h", category="utility", market="FR", purpose="reengage_update",
                 tier="unknown", currency="USD") == pytest.approx(0.03)
    assert value(s, est, window="7d", category="utility", market="FR", purpose="reengage_update",
                 tier="Platinum", currency="USD") == pytest.approx(0.03)
    assert value(s, est, window="30d", category="utility", market="FR", purpose="order_update",
                 tier="Platinum", currency="USD") == pytest.approx(0.03)
    assert value(s, est, window="7d", category="service", market="FR", purpose="service_reply",
                 tier="VIC", currency="USD") == pytest.approx(0.03)  # not the failed send to Marc
    assert not any(name == est and ("market", "GB") in labels for name, labels in s)  # 40 days old

    # Cost, billed by Meta: billable and delivered only.
    billed = "salon_whatsapp_billed_cost"
    assert value(s, billed, window="1h", category="service", market="FR", purpose="service_reply", tier="VIC",
                 currency="USD") == pytest.approx(0.03)
    assert value(s, billed, window="24h", category="utility", market="FR", purpose="order_update",
                 tier="Platinum", currency="USD") == pytest.approx(0.03)
    assert value(s, billed, window="24h", category="marketing", market="GB", purpose="none", tier="unknown",
                 currency="USD") == pytest.approx(0.0529)
    assert sum(v for (name, labels), v in s.items() if name == billed and ("window", "30d") in labels) \
        == pytest.approx(0.03 + 0.03 + 0.0529)
    priced_count = "salon_whatsapp_priced_messages"
    assert value(s, priced_count, window="24h", category="utility", pricing_type="regular", delivered="false") == 1
    assert value(s, priced_count, window="7d", category="utility", pricing_type="free_customer_service",
                 delivered="true") == 1
    assert value(s, "salon_whatsapp_pricing_mismatches", window="24h", reason="category marketing→utility") == 1
    assert value(s, "salon_whatsapp_pricing_mismatches", window="7d",
                 reason="type regular→free_customer_service") == 1

    # The styling fallback's verdicts; the outbound queue.
    assert value(s, "salon_llm_turns", window="1h", mode="llm", verdict="pass") == 1
    assert value(s, "salon_llm_turns", window="24h", mode="offline", verdict="offline") == 1
    assert value(s, "salon_llm_turns", window="7d", mode="llm", verdict="other") == 1
    assert value(s, "salon_outbound_queued", due="now") == 2
    assert value(s, "salon_outbound_queued", due="later") == 1
    assert value(s, "salon_outbound_oldest_due_age_seconds") == 300


async def test_the_exposition_names_and_labels_match_the_catalogue(sqlite_url: str) -> None:
    clock = ManualClock(T0)
    engine = await tables(sqlite_url, clock)
    try:
        await seed_rows(engine)
        metrics = ProcessMetrics(RASA, MetricsAccess())
        metrics.add(BusinessMetrics(engine, clock))
        exposition = (await metrics.exposition()).decode()
    finally:
        await engine.dispose()
    families = {fam.name: fam for fam in text_string_to_metric_families(exposition)}
    for entry in BUSINESS_FAMILIES:
        assert entry.name in families, f"{entry.name} is not exported"
    for fam in families.values():
        # The parser names a gauge histogram's _gsum/_gcount as families of their own.
        base = fam.name.removesuffix("_gsum").removesuffix("_gcount")
        entry = family(base)
        for sample in fam.samples:
            assert set(sample.labels) - {"le"} == set(entry.labels), (sample.name, sample.labels)
    assert value(parse(exposition), "salon_process_info", process=RASA, version=__version__) == 1
    assert value(parse(exposition), "process_resident_memory_bytes") > 0


async def test_figures_are_read_once_per_ttl_and_a_failed_read_says_so(sqlite_url: str) -> None:
    clock = ManualClock(T0)
    engine = await tables(sqlite_url, clock)
    ticks = [0.0]
    try:
        business = BusinessMetrics(engine, clock, ttl=10.0, monotonic=lambda: ticks[0])
        metrics = ProcessMetrics(RASA, MetricsAccess())
        metrics.add(business)
        first = parse((await metrics.exposition()).decode())
        assert value(first, "salon_outbound_queued", due="now") == 0
        async with engine.begin() as conn:
            await conn.execute(requests_table.insert(), [request_row(7, "queued", ago(minutes=1))])
        ticks[0] = 9.0  # within the ttl: the last read is served
        assert value(parse((await metrics.exposition()).decode()), "salon_outbound_queued", due="now") == 0
        ticks[0] = 10.5
        assert value(parse((await metrics.exposition()).decode()), "salon_outbound_queued", due="now") == 1

        # A database from before the cost columns: that family fails, the others stay.
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE wa_outbound"))
            await conn.execute(text("CREATE TABLE wa_outbound (id INTEGER PRIMARY KEY, kind VARCHAR(16), "
                                    "status VARCHAR(16), created_us BIGINT)"))
        ticks[0] = 30.0
        broken = parse((await metrics.exposition()).decode())
        assert value(broken, "salon_business_metrics_up") == 0
        assert value(broken, "salon_outbound_queued", due="now") == 1
        assert "salon_whatsapp_estimated_cost" not in names(broken)
    finally:
        await engine.dispose()


async def test_an_unreachable_database_is_said_by_the_up_gauge() -> None:
    engine = make_async_engine(f"postgresql://salon@127.0.0.1:{free_port()}/salon")  # nothing listens there
    try:
        metrics = ProcessMetrics(RASA, MetricsAccess())
        metrics.add(BusinessMetrics(engine, ManualClock(T0), timeout=20))
        samples = parse((await metrics.exposition()).decode())
    finally:
        await engine.dispose()
    assert value(samples, "salon_business_metrics_up") == 0
    assert "salon_messages" not in names(samples)
    assert value(samples, "process_open_fds") > 0  # the rest of the exposition is whole


# --------------------------------------------------------------------------- over HTTP


async def test_an_api_serves_metrics_to_loopback_and_token_holders_only(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from salon.privacy.api import build_app
    from salon.privacy.rights import default_registry

    monkeypatch.setenv("SALON_API_TOKENS", json.dumps([{"name": "ops", "token": "gdpr-token-0123456789",
                                                        "scopes": ["gdpr"]}]))
    monkeypatch.setenv(ENV_BUSINESS, GDPR_API)
    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    app = build_app(default_registry(settings), TokenBook.from_env())
    install_metrics(app, GDPR_API, settings=settings, clock=ManualClock(T0))
    outside = outside_address()
    hosts = ["127.0.0.1"] + ([outside] if outside else [])
    async with serve_aiohttp(app, *hosts) as urls, aiohttp.ClientSession() as http:
        status, body = await get(http, f"{urls[0]}/metrics")
        assert status == 200
        samples = parse(body)
        assert value(samples, "salon_process_info", process=GDPR_API, version=__version__) == 1
        assert value(samples, "salon_business_metrics_up") == 1  # this process reads them here
        # The API's own routes still want its token.
        assert (await get(http, f"{urls[0]}/gdpr/clients/C-001"))[0] == 401
        # Relayed by a proxy: not a loopback caller.
        assert (await get(http, f"{urls[0]}/metrics", **{"X-Forwarded-For": "203.0.113.9"}))[0] == 403
        assert (await get(http, f"{urls[0]}/metrics", Forwarded="for=203.0.113.9"))[0] == 403
        if outside:
            assert (await get(http, f"{urls[1]}/metrics"))[0] == 403

    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    app = build_app(default_registry(settings), TokenBook.from_env())
    install_metrics(app, GDPR_API, settings=settings)
    async with serve_aiohttp(app, *hosts) as urls, aiohttp.ClientSession() as http:
        for url in urls:
            assert (await get(http, f"{url}/metrics"))[0] == 401
            assert (await get(http, f"{url}/metrics", Authorization="Bearer wrong-token-0123456789"))[0] == 401
            assert (await get(http, f"{url}/metrics?token={TOKEN}"))[0] == 401  # never in a URL
            assert (await get(http, f"{url}/metrics", Authorization="Bearer gdpr-token-0123456789"))[0] == 401
            status, body = await get(http, f"{url}/metrics", Authorization=f"Bearer {TOKEN}")
            assert status == 200 and "salon_process_info" in body
            assert TOKEN not in body


async def test_the_rasa_server_serves_its_metrics_beside_the_desk(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.delenv(ENV_BUSINESS, raising=False)
    clock = ManualClock(T0)
    async with running_channel(settings, clock=clock) as ch:
        assert ch.http is not None
        ts = int(T0.timestamp()) - 60
        status, _ = await ch.post(envelope(messages_change([text_message(CLAIRE, "Bonjour", ts)],
                                                           [contact(CLAIRE)])))
        assert status == 200
        await ch.settle()
        url = f"{ch.url}/webhooks/whatsapp/metrics"
        status, body = await get(ch.http, url)
        assert status == 200
        samples = parse(body)
        assert value(samples, "salon_webhook_events_total", event="posts") == 1
        assert value(samples, "salon_webhook_events_total", event="messages") == 1
        assert value(samples, "salon_webhook_events_total", event="turns") == 1
        assert value(samples, "salon_process_info", process=RASA, version=__version__) == 1
        assert value(samples, "salon_messages", window="1h", direction="inbound", type="text", category="none",
                     outcome="done") == 1
        assert value(samples, "salon_windows", state="open") == 1
        assert (await get(ch.http, url, **{"X-Forwarded-For": "203.0.113.9"}))[0] == 403
        assert isinstance(ch.runtime, WhatsAppRuntime) and ch.runtime.service is not None
        assert await io_snapshot(ch.runtime) == {"pid": os.getpid(), "stats": ch.runtime.service.stats}

    monkeypatch.setenv(ENV_TOKEN, TOKEN)
    async with running_channel(settings, clock=clock) as ch:
        assert ch.http is not None
        url = f"{ch.url}/webhooks/whatsapp/metrics"
        assert (await get(ch.http, url))[0] == 401
        status, body = await get(ch.http, url, Authorization=f"Bearer {TOKEN}")
        assert status == 200 and "salon_webhook_events_total" in body


async def test_the_companion_process_is_seen_from_the_rasa_server(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.setenv(ENV_BUSINESS, "off")
    async with running_channel(settings, io_process=True) as ch:
        assert ch.http is not None
        status, body = await get(ch.http, f"{ch.url}/webhooks/whatsapp/metrics")
        assert status == 200
        samples = parse(body)
        assert value(samples, "salon_io_up") == 1
        assert value(samples, "salon_io_restarts_total") == 0
        assert value(samples, "salon_io_process_resident_memory_bytes") > 0
        assert value(samples, "salon_io_process_start_time_seconds") > 0
        assert "salon_business_metrics_up" not in names(samples)  # another process reads them


async def test_the_action_server_times_each_action_and_guards_its_metrics(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from actions import backends
    from actions.server import guarded_app

    monkeypatch.setenv("DATABASE_URL", settings.effective_database_url)
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.delenv(ENV_BUSINESS, raising=False)
    backends.reset()
    credential = "actions-credential-0123456789"
    tracker = {"sender_id": "x", "slots": {}, "latest_message": {"text": "hello"}, "events": []}

    def call(action: str) -> dict[str, Any]:
        return {"next_action": action, "sender_id": "x", "version": "3.6.2", "tracker": tracker, "domain": {}}

    app = guarded_app(credential)
    auth = {"Authorization": f"Bearer {credential}"}
    try:
        async with serve(app) as url, aiohttp.ClientSession() as http:
            for action in ("action_ask_party_size", "action_ask_party_size", "action_not_ours"):
                async with http.post(f"{url}/webhook", json=call(action), headers=auth) as r:
                    assert r.status == (404 if action == "action_not_ours" else 200)
            async with http.post(f"{url}/webhook", json={**call("action_order_status"), "tracker": "junk"},
                                 headers=auth) as r:
                assert r.status == 500
            async with http.post(f"{url}/webhook", json=call("action_ask_party_size")) as r:
                assert r.status == 401  # not run, not counted
            status, body = await get(http, f"{url}/metrics")  # the metrics rule, not the actions credential
            assert status == 200
            samples = parse(body)
            duration = "salon_action_duration_seconds"
            assert value(samples, f"{duration}_count", action="action_ask_party_size", outcome="success") == 2
            assert value(samples, f"{duration}_count", action="unknown", outcome="not_found") == 1
            assert value(samples, f"{duration}_count", action="action_order_status", outcome="error") == 1
            assert value(samples, f"{duration}_sum", action="action_ask_party_size", outcome="success") > 0
            assert value(samples, "salon_process_info", process="actions", version=__version__) == 1
            assert (await get(http, f"{url}/metrics", **{"X-Real-IP": "203.0.113.9"}))[0] == 403

        outside = outside_address()
        if outside is not None:
            app = guarded_app(credential)
            async with serve_sanic_on(app, outside) as url, aiohttp.ClientSession() as http:
                assert (await get(http, f"{url}/metrics"))[0] == 403  # the peer is not loopback
                assert (await get(http, f"{url}/metrics", **auth))[0] == 403

        monkeypatch.setenv(ENV_TOKEN, TOKEN)
        monkeypatch.setenv(ENV_BUSINESS, "actions")  # this process reads the business figures
        app = guarded_app(credential)
        async with serve(app) as url, aiohttp.ClientSession() as http:
            assert (await get(http, f"{url}/metrics"))[0] == 401
            assert (await get(http, f"{url}/metrics", **auth))[0] == 401  # the actions credential is not it
            status, body = await get(http, f"{url}/metrics", Authorization=f"Bearer {TOKEN}")
            assert status == 200
            assert value(parse(body), "salon_business_metrics_up") == 1
            assert value(parse(body), "salon_business_metrics_refresh_seconds") > 0
    finally:
        await backends.close()
        backends.reset()


async def test_the_outbound_worker_serves_its_counters_and_the_costs_it_sent(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from salon.outbound.queue import parse_request
    from tests.outbound_support import outbound_stack

    monkeypatch.delenv(ENV_TOKEN, raising=False)
    clock = ManualClock(T0)
    port = free_port()
    environ = {ENV_WORKER_PORT: str(port), ENV_BUSINESS: "worker"}
    async with outbound_stack(settings, clock) as stack:
        async with serve_worker_metrics(stack.worker, database_url=settings.effective_database_url,
                                        environ=environ) as url, \
                aiohttp.ClientSession() as http:
            assert url == f"http://127.0.0.1:{port}/metrics"
            await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
            spec = parse_request({"client": {"wa_id": CLAIRE}, "purpose": "order_update",
                                  "content": {"text": "Votre commande est prête."},
                                  "idempotency_key": f"metrics-{uuid.uuid4().hex[:8]}"},
                                 requested_by="system:test", now=clock.now(), default_phone_number_id=PNID)
            await stack.queue.enqueue(spec, clock.now())
            assert await stack.worker.run_once() == 1
            status, body = await get(http, url)
            assert status == 200
            samples = parse(body)
            assert value(samples, "salon_outbound_worker_events_total", event="claimed") == 1
            assert value(samples, "salon_outbound_worker_events_total", event="finished") == 1
            assert value(samples, "salon_process_info", process="worker", version=__version__) == 1
            # The free-form update inside Claire's window, priced by the guard (a service
            # message in France, billed since 2026-10-01).
            cost = {labels: v for (name, labels), v in samples.items()
                    if name == "salon_whatsapp_estimated_cost" and ("window", "1h") in labels}
            assert sum(cost.values()) > 0
            assert all(("purpose", "order_update") in labels and ("tier", "VIC") in labels for labels in cost)
    async with serve_worker_metrics(stack.worker, environ={}) as nothing:
        assert nothing is None  # no port: no server

