"""GDPR export and erasure against real PostgreSQL and Redis: a client who used every
feature (the maison's book, WhatsApp conversations with Redis sessions, STOP, a
WhatsApp preference, the LLM audit, her advisor's audited acts, Rasa's SQL and Redis
tracker stores) is exported
from every store, then erased from all of them; the GDPR API's tokens and scopes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from salon import cli
from salon.access.tokens import TokenBook
from salon.advisors.audit import AdvisorAudit
from salon.advisors.handoff import HandoffBook
from salon.advisors.repairs import RepairBook
from salon.clock import SystemClock
from salon.config import Settings
from salon.identity import ClientRef
from salon.llm.audit import AuditEntry, LlmAudit
from salon.outbound.queue import OutboundQueue, parse_request
from salon.outbound.restock import RestockBook
from salon.privacy.api import build_app
from salon.privacy.retention import purge_retention
from salon.privacy.rights import ErasureLog, default_registry
from salon.storage.db import make_async_engine
from tests.seeding import seed_maison
from tests.test_whatsapp_sender import CLAIRE, answer, say, settle, wired

CLIENT = "C-001"
EVERY_STORE = {
    "maison_purchases", "maison_consents", "maison_event_rsvps", "maison_appointments", "maison_order_items",
    "maison_orders", "maison_clients", "sessions_redis", "wa_inbox", "wa_outbound", "wa_preferences",
    "llm_audit", "consent_ledger", "rasa_trackers_sql", "rasa_trackers_redis",
    "salon_handoffs", "salon_repair_requests", "salon_repair_updates", "restock_requests", "outbound_requests",
    "outbound_events", "salon_advisor_audit",
}


def production_endpoints(monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> None:
    """Rasa's production endpoints file (deploy/endpoints.production.yml: the PostgreSQL
    tracker store through SALON_PG_*, the RabbitMQ event broker) on the test's database."""
    import os
    import re

    pg = make_url(postgres_url)
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", "deploy/endpoints.production.yml")
    production = (Path(__file__).parent.parent / "deploy" / "endpoints.production.yml").read_text()
    for name in re.findall(r"\$\{([A-Z0-9_]+)\}", production):  # the file's other endpoints: unused here
        if name not in os.environ:
            monkeypatch.setenv(name, "unused-in-tests")
    for key, value in {"SALON_PG_HOST": pg.host or "127.0.0.1", "SALON_PG_PORT": str(pg.port or 5432),
                       "SALON_PG_DATABASE": pg.database or "", "SALON_PG_USER": pg.username or "",
                       "SALON_PG_PASSWORD": pg.password or ""}.items():
        monkeypatch.setenv(key, value)
    for key in ("RASA_TRACKER_STORE_URL", "RASA_TRACKER_REDIS_URL", "POSTGRESQL_SCHEMA"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture()
def environment(postgres_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    redis.Redis.from_url(redis_url).flushdb()
    seed_maison(postgres_url)
    production_endpoints(monkeypatch, postgres_url)
    for key, value in {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "SALON_VAR_DIR": str(tmp_path),
                       "RASA_TRACKER_REDIS_URL": redis_url, "SALON_PRIVACY_SALT": "test-salt"}.items():
        monkeypatch.setenv(key, value)
    yield Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=postgres_url, redis_url=redis_url)
    redis.Redis.from_url(redis_url).flushdb()


async def rasa_trackers(postgres_url: str, redis_url: str, sender_id: str) -> None:
    """Conversations in Rasa's own tracker stores, written by Rasa."""
    from rasa.core.tracker_store import RedisTrackerStore, SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    pg = make_url(postgres_url)
    rd = make_url(redis_url)
    domain = Domain.empty()
    stores = [SQLTrackerStore(domain, dialect="postgresql", host=pg.host, port=pg.port, db=pg.database,
                              username=pg.username, password=pg.password),
              RedisTrackerStore(domain, host=rd.host, port=rd.port or 6379, db=int(rd.database or 0))]
    for store in stores:
        tracker = DialogueStateTracker.from_events(sender_id, [
            UserUttered("Bonjour, où en est ma commande SOL-?", {"name": "check_order_status"}),
            BotUttered("Je regarde tout de suite."),
        ])
        await store.save(tracker)


async def clienteling_records(settings: Settings) -> None:
    """A handoff, a repair request and its first status change, a restock wish, an
    outbound request and her advisor's acts (the audit trail) of Claire's, written by the
    books the assistant, the advisor API and the outbound engine use."""
    now = SystemClock().now()
    engine = make_async_engine(settings.database_url)
    try:
        handoffs = HandoffBook(engine=engine)
        await handoffs.initialize()
        await handoffs.open(conversation_id=CLAIRE, reason="talk_to_advisor", note="wants Sophie",
                            language="fr", now=now, client_id=CLIENT, wa_id=CLAIRE)
        repairs = RepairBook(engine=engine)
        await repairs.initialize()
        repair = await repairs.open(conversation_id=CLAIRE, item="bracelet", issue="the clasp broke", photos=[],
                                    now=now, client_id=CLIENT, advisor_id=None, boutique_id=None)
        await repairs.change(repair.id, status="received", note="at the atelier", by="sophie", now=now)
        trail = AdvisorAudit(engine=engine, clock=SystemClock())
        await trail.initialize()
        await trail.record("read_conversation", actor="sophie", advisor_id="sophie-marchand",
                           conversation_id=CLAIRE, client_id=CLIENT)
        await trail.record("update_repair", actor="sophie", advisor_id="sophie-marchand", client_id=CLIENT,
                           detail={"repair_id": repair.id, "status": "received"})
        ref = ClientRef("100000000000001", wa_id=CLAIRE)
        restock = RestockBook(engine=engine)
        await restock.add(ref, "LG-004", now, colour="black")
        queue = OutboundQueue(engine=engine)
        await queue.initialize()
        await queue.enqueue(parse_request(
            {"client": {"wa_id": CLAIRE}, "purpose": "order_update", "content": {"text": "Votre commande est partie."},
             "params": {"order_ref": "SOL-104233"}, "idempotency_key": "privacy:claire"},
            requested_by="system:test", now=now, default_phone_number_id="100000000000001"), now)
    finally:
        await engine.dispose()


async def test_a_client_who_used_everything_is_exported_then_erased_everywhere(environment: Settings) -> None:
    settings = environment
    async with wired(settings, answer("Bonjour Claire, je regarde tout de suite.")) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Bonjour, ma commande ?", "name": "Claire Laurent"})
        await settle(ch, admin, CLAIRE, 1)
        await say(admin, **{"from": CLAIRE, "text": "STOP", "name": "Claire Laurent"})
        await settle(ch, admin, CLAIRE, 2)
        async with admin.post("/_emulator/preferences", json={"from": CLAIRE, "value": "stop"}) as r:
            assert r.status == 200
        for _ in range(100):
            ref = ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE)
            if await ch.runtime.service.consents.marketing_stopped(ref):  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
    audit = LlmAudit(settings.database_url, clock=SystemClock())
    await audit.initialize()
    await audit.record(AuditEntry(client_id=CLIENT, mode="styling", model="test-model", verdict="ok",
                                  prompt=[{"role": "user", "content": "un foulard pour ce soir"}], response="…"))
    await audit.close()
    await rasa_trackers(settings.database_url, settings.redis_url or "", CLAIRE)
    await clienteling_records(settings)

    registry = default_registry(settings)
    try:
        subject = await registry.resolve("+33600000001")
        assert subject.client_id == CLIENT
        exported = await registry.export(subject)
        empty = sorted(name for name in EVERY_STORE if not exported["stores"].get(name))
        assert empty == [], f"stores with nothing for the client: {empty}"
        assert any("où en est ma commande" in json.dumps(row, ensure_ascii=False)
                   for row in exported["stores"]["rasa_trackers_sql"])
        assert any(key.startswith("tracker:") for key in exported["stores"]["rasa_trackers_redis"])
    finally:
        await registry.close()

    # The command line erases; afterwards no store returns anything.
    code = await asyncio.to_thread(cli.main, ["gdpr", "erase", CLIENT, "--actor", "dpo"])
    assert code == 0
    registry = default_registry(settings)
    try:
        subject = await registry.resolve(CLAIRE)  # the book no longer knows her: by number
        assert subject.client_id is None
        subject = type(subject)(CLIENT, subject.wa_ids, frozenset({"FR.4820193746581029374"}))
        after = await registry.export(subject)
        left = {name: rows for name, rows in after["stores"].items() if rows}
        assert left == {}
        [erasure] = await ErasureLog(engine=registry.engine).rows()
        record = json.dumps(erasure, default=str)
        assert CLIENT not in record and CLAIRE not in record and "Laurent" not in record
        assert erasure["actor"] == "cli:dpo" and len(erasure["subject_hash"]) == 64
        assert erasure["removed"]["wa_inbox"] == 2 and erasure["removed"]["rasa_trackers_redis"] == 1
        assert erasure["removed"]["salon_advisor_audit"] == 2  # kept, unlinked from her
    finally:
        await registry.close()
    assert not redis.Redis.from_url(settings.redis_url or "").keys(f"*{CLAIRE}*")


async def test_export_command_writes_json(environment: Settings, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    assert await asyncio.to_thread(cli.main, ["gdpr", "export", CLIENT, "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["client"]["client_id"] == CLIENT
    assert [row["first_name"] for row in data["stores"]["maison_clients"]] == ["Claire"]
    assert data["stores"]["maison_orders"] and data["stores"]["maison_consents"]
    assert await asyncio.to_thread(cli.main, ["gdpr", "export", "nobody-known"]) == 1


async def test_retention_purge_removes_old_conversations_only(environment: Settings) -> None:
    from datetime import datetime, timedelta, timezone

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from salon.webhook.inbox import Inbox, InboxItem

    now = datetime.now(timezone.utc)
    old, recent = now - timedelta(days=400), now - timedelta(days=2)
    records = Inbox(environment.database_url)
    await records.initialize()
    for wamid, at in (("wamid.OLD", old), ("wamid.RECENT", recent)):
        item = InboxItem(wamid=wamid, phone_number_id="1", sender_id=CLAIRE, sent_at=at, text="Bonjour",
                         metadata={}, state="pending", attempts=0)
        await records.claim_inbound([item], at)
        await records.finish_inbound(wamid, at, state="done")
    await records.close()
    pg = make_url(environment.database_url)
    store = SQLTrackerStore(Domain.empty(), dialect="postgresql", host=pg.host, port=pg.port, db=pg.database,
                            username=pg.username)
    await store.save(DialogueStateTracker.from_events("old-sender", [
        UserUttered("il y a longtemps", timestamp=old.timestamp())]))
    await store.save(DialogueStateTracker.from_events("new-sender", [
        UserUttered("hier", timestamp=recent.timestamp())]))

    removed = await purge_retention(environment, conversation_days=365)
    assert removed["wa_inbox"] == 1 and removed["rasa_trackers_sql"] >= 1
    assert (await store.retrieve("old-sender")) is None or not [
        e for e in (await store.retrieve("old-sender")).events if isinstance(e, UserUttered)]
    assert [e.text for e in (await store.retrieve("new-sender")).events if isinstance(e, UserUttered)] == ["hier"]
    # and from the command line, nothing older is left
    assert await asyncio.to_thread(cli.main, ["gdpr", "purge", "--days", "365"]) == 0


async def test_gdpr_api_tokens_and_scopes(environment: Settings) -> None:
    tokens = TokenBook.from_config([
        {"name": "dpo", "token": "dpo-secret-token", "scopes": ["gdpr"]},
        {"name": "crm", "token": "crm-secret-token", "scopes": ["outbound"]},
    ])
    app = build_app(default_registry(environment), tokens)
    async with TestClient(TestServer(app)) as client:
        url = f"/gdpr/clients/{CLIENT}"
        assert (await client.get(url)).status == 401
        assert (await client.get(url, headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get(url, headers={"Authorization": "Basic abc"})).status == 401
        forbidden = await client.delete(url, headers={"Authorization": "Bearer crm-secret-token"})
        assert forbidden.status == 403 and "Traceback" not in await forbidden.text()
        dpo = {"Authorization": "Bearer dpo-secret-token"}
        assert (await client.get("/gdpr/clients/nobody-known", headers=dpo)).status == 404
        resp = await client.get(url, headers=dpo)
        assert resp.status == 200
        assert (await resp.json())["stores"]["maison_clients"][0]["id"] == CLIENT
        resp = await client.delete(url, headers=dpo)
        assert resp.status == 200 and (await resp.json())["removed"]["maison_clients"] == 1
        assert (await client.get(url, headers=dpo)).status == 404


async def test_gdpr_api_rate_limits_each_ip_before_checking_tokens(environment: Settings) -> None:
    from salon.access.ratelimit import RateLimitSettings

    now = [1000.0]
    tokens = TokenBook.from_config([{"name": "dpo", "token": "dpo-secret-token", "scopes": ["gdpr"]}])
    app = build_app(default_registry(environment), tokens, rate_limit=RateLimitSettings(per_minute=5, burst=5),
                    rate_clock=lambda: now[0])
    async with TestClient(TestServer(app)) as client:
        codes = [(await client.get(f"/gdpr/clients/{CLIENT}", headers={"Authorization": f"Bearer guess-{i}"})).status
                 for i in range(7)]
        assert codes == [401] * 5 + [429] * 2
        refused = await client.get(f"/gdpr/clients/{CLIENT}")
        assert refused.status == 429 and refused.headers["Retry-After"] == "12"
        assert await refused.json() == {"error": "too many requests", "retry_after": 12}
        now[0] += 12  # one request's worth refilled
        ok = await client.get(f"/gdpr/clients/{CLIENT}", headers={"Authorization": "Bearer dpo-secret-token"})
        assert ok.status == 200
        assert (await client.get(f"/gdpr/clients/{CLIENT}")).status == 429


async def test_gdpr_api_refuses_when_a_store_cannot_be_erased_and_reports_each_erasure(
        environment: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review H3: 503 naming the store (nothing done) when Rasa's tracker store cannot be
    reached; otherwise the erasure's report, store by store, with the broker's copies."""
    tokens = TokenBook.from_config([{"name": "dpo", "token": "dpo-secret-token", "scopes": ["gdpr"]}])
    dpo = {"Authorization": "Bearer dpo-secret-token"}
    broken = tmp_path / "endpoints.yml"
    broken.write_text("tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: ${PRIVACY_TEST_UNSET}\n")
    monkeypatch.delenv("PRIVACY_TEST_UNSET", raising=False)
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", str(broken))
    async with TestClient(TestServer(build_app(default_registry(environment), tokens))) as client:
        for method in (client.get, client.delete):
            refused = await method(f"/gdpr/clients/{CLIENT}", headers=dpo)
            body = await refused.json()
            assert refused.status == 503 and "PRIVACY_TEST_UNSET" in body["stores"]["rasa_tracker_store"]
    production_endpoints(monkeypatch, environment.database_url)
    async with TestClient(TestServer(build_app(default_registry(environment), tokens))) as client:
        done = await client.delete(f"/gdpr/clients/{CLIENT}", headers=dpo)
        body = await done.json()
    assert done.status == 200 and body["erased"] is True and body["report"]["outcome"] == "complete"
    assert body["report"]["stores"]["maison_clients"] == {"status": "erased", "removed": 1}
    assert body["report"]["stores"]["rasa_trackers_sql"]["status"] == "erased"
    assert "salon_events" in body["report"]["not_erasable"]["rasa_event_broker"]
    assert body["removed"]["maison_clients"] == 1
