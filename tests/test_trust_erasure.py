"""GDPR erasure leaves nothing behind (review H3), against real PostgreSQL and Redis.

A client known by ids the maison's book lacks (a BSUID-only client; a client who changed
number) uses the WhatsApp channel, STOP, WhatsApp's marketing stop, the styling advisor
(its audit), a handoff, a repair request, a restock wish, an outbound request and her
advisor's acts on them (the advisors' audit trail, kept with her ids removed); Rasa's
tracker store, configured only through Rasa's endpoints file (the production one:
PostgreSQL through ``SALON_PG_*``; or a Redis tracker store), holds her conversation.
After the erasure every table of Salon's database and of the tracker store, and every
Redis key, is scanned for her ids and her words, and no row the scenario added is left.

Also: a store that cannot be reached (or cannot be erased) fails the erasure before
anything is deleted; a store failing half-way gives a partial report, and running the
erasure again completes it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rasa.core.channels.channel import UserMessage
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from salon.advisors.audit import AdvisorAudit
from salon.advisors.handoff import HandoffBook
from salon.advisors.repairs import RepairBook
from salon.clock import ManualClock
from salon.config import Settings
from salon.consent.book import ConsentBook
from salon.dev.stack import free_port
from salon.identity import ClientRef
from salon.llm.audit import LlmAudit
from salon.llm.config import LlmSettings
from salon.llm.responder import StylingAdvisor
from salon.outbound.queue import OutboundQueue, parse_request
from salon.outbound.restock import RestockBook
from salon.privacy.rights import ErasureIncomplete, ErasureLog, StoreUnavailable, default_registry
from salon.storage.db import make_async_engine, make_sync_engine
from tests.seeding import seed_maison
from tests.test_privacy import production_endpoints
from tests.test_whatsapp_sender import T0, say, settle, wired
from tests.whatsapp_support import PNID

INES = "FR.40213376198812340001"  # writes from her username only; not in the maison's book
INES_WORDS = ("12 rue de la Paix", "Inès Moreau", "fermoir de mon bracelet")
CLAIRE = "C-001"
CLAIRE_PHONE, CLAIRE_BSUID = "33600000001", "FR.4820193746581029374"
NEW_PHONE, NEW_BSUID = "33687654321", "FR.61827364519283746501"
CLAIRE_WORDS = ("Claire Laurent", "villa Les Oliviers", "j'ai changé de numéro")
SALT = "trust-erasure-salt"
#: Tables whose rows the erasure keeps on purpose: the proof of erasure, the
#: suppression list (keyed hashes only) and the advisors' audit trail (who did what and
#: when, with who it was about removed: still scanned for her ids).
KEPT = {"privacy_erasures", "privacy_suppressions", "salon_advisor_audit",
        "restock_stock_seen",  # stock levels (sku, boutique, quantity): about pieces, not people
        "wa_pricing"}  # what Meta billed (market, category, cost), kept with who and which message removed


# --------------------------------------------------------------------------- environment


def redis_tracker_endpoints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> None:
    """An endpoints file whose tracker store is Redis (Rasa's keys ``salon:tracker:<id>``)."""
    rd = make_url(redis_url)
    path = tmp_path / "endpoints.yml"
    path.write_text("tracker_store:\n  type: redis\n  url: ${TRUST_REDIS_HOST}\n  port: ${TRUST_REDIS_PORT}\n"
                    f"  db: {int(rd.database or 0)}\n  key_prefix: salon\n")
    monkeypatch.setenv("TRUST_REDIS_HOST", rd.host or "127.0.0.1")
    monkeypatch.setenv("TRUST_REDIS_PORT", str(rd.port or 6379))
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", str(path))
    for key in ("RASA_TRACKER_STORE_URL", "RASA_TRACKER_REDIS_URL"):
        monkeypatch.delenv(key, raising=False)


def _environment(kind: str, postgres_url: str, redis_url: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Settings:
    redis.Redis.from_url(redis_url).flushdb()
    seed_maison(postgres_url)
    with_redis_sessions = kind == "redis_sessions_pg_trackers"
    if with_redis_sessions:
        production_endpoints(monkeypatch, postgres_url)
        monkeypatch.setenv("REDIS_URL", redis_url)
    else:
        redis_tracker_endpoints(monkeypatch, tmp_path, redis_url)
        monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("SALON_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SALON_PRIVACY_SALT", SALT)
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=postgres_url,
                    redis_url=redis_url if with_redis_sessions else None)


@pytest.fixture(params=["redis_sessions_pg_trackers", "sql_sessions_redis_trackers"])
def environment(request: pytest.FixtureRequest, postgres_url: str, redis_url: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The seeded maison on PostgreSQL; sessions in Redis and Rasa's production endpoints
    (PostgreSQL tracker store through SALON_PG_*, RabbitMQ broker), or sessions in SQL and
    a Redis tracker store."""
    yield _environment(request.param, postgres_url, redis_url, tmp_path, monkeypatch)
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture()
def production(postgres_url: str, redis_url: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Sessions in Redis, Rasa's production endpoints."""
    yield _environment("redis_sessions_pg_trackers", postgres_url, redis_url, tmp_path, monkeypatch)
    redis.Redis.from_url(redis_url).flushdb()


async def erasure_rows(url: str) -> list[dict[str, Any]]:
    engine = make_async_engine(url)
    try:
        return await ErasureLog(engine=engine).rows()
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- what is stored


def database_rows(url: str) -> dict[str, list[str]]:
    """Every row of every table, as JSON text."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            out: dict[str, list[str]] = {}
            for name in inspect(conn).get_table_names():
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).mappings().all()
                out[name] = [json.dumps(dict(row), default=str, ensure_ascii=False, sort_keys=True) for row in rows]
            return out
    finally:
        engine.dispose()


def redis_items(url: str) -> dict[str, str]:
    """Every Redis key with its value, as text."""
    client = redis.Redis.from_url(url, decode_responses=True)
    out: dict[str, str] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        value: Any = {"hash": client.hgetall, "list": lambda k: client.lrange(k, 0, -1),
                      "set": client.smembers, "zset": lambda k: client.zrange(k, 0, -1)}.get(kind, client.get)(key)
        out[key] = json.dumps(value, default=sorted, ensure_ascii=False)
    client.close()
    return out


def leftovers(url: str, redis_url: str, baseline: dict[str, list[str]], needles: tuple[str, ...]) -> dict[str, Any]:
    """Rows and keys that name the client or hold her words, and rows the scenario added
    that are still there (outside :data:`KEPT`)."""
    rows = database_rows(url)
    found: dict[str, Any] = {}
    for table, items in rows.items():
        naming = [row for row in items if any(needle in row for needle in needles)]
        if naming:
            found[f"names her: {table}"] = naming
        if table not in KEPT:
            added = [row for row in items if row not in set(baseline.get(table, ()))]
            if added:
                found[f"added: {table}"] = added
    keys = {key: value for key, value in redis_items(redis_url).items()
            if any(needle in key or needle in value for needle in needles)}
    if keys:
        found["redis"] = keys
    return found


async def rasa_conversation(sender_id: str, words: str) -> None:
    """Her conversation in Rasa's tracker store, written by Rasa's own store class as Rasa
    creates it from the endpoints file (``${VAR}`` replaced by Rasa)."""
    import os

    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import read_endpoint_config

    config = read_endpoint_config(os.environ["SALON_RASA_ENDPOINTS"], "tracker_store")
    store = TrackerStore.create(config, Domain.empty())
    tracker = DialogueStateTracker.from_events(sender_id, [
        UserUttered(words, {"name": "inform"}, metadata={"wa_id": None, "user_id": sender_id}),
        BotUttered(f"Bien noté : {words}"),
    ])
    await store.save(tracker)


def echo(prefix: str) -> Any:
    """The assistant's part: it repeats the client's words (so our own messages hold them)."""
    async def reply(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": f"{prefix} {message.text}"})

    return reply


async def her_records(settings: Settings, *, ref: ClientRef, conversation: str, client_id: str | None,
                      words: str) -> None:
    """A handoff, a repair request and its first status change, a restock wish, an
    outbound request, styling turns (their audit) and the advisor's acts (the advisors'
    audit trail), as the assistant, the advisor API, the outbound engine and the styling
    advisor write them."""
    engine = make_async_engine(settings.database_url)
    clock = ManualClock(T0)
    now = clock.now()
    try:
        handoffs = HandoffBook(engine=engine)
        await handoffs.initialize()
        await handoffs.open(conversation_id=conversation, reason="talk_to_advisor", note=words, language="fr",
                            now=now, client_id=client_id, phone_number_id=PNID, wa_id=ref.wa_id,
                            user_id=ref.user_id)
        repairs = RepairBook(engine=engine)
        await repairs.initialize()
        repair = await repairs.open(conversation_id=conversation, item="bracelet", issue=words, photos=[],
                                    now=now, client_id=client_id, advisor_id=None, boutique_id=None)
        await repairs.change(repair.id, status="received", note="à l'atelier", by="sophie", now=now)
        trail = AdvisorAudit(engine=engine, clock=clock)
        await trail.initialize()
        await trail.record("read_conversation", actor="sophie", advisor_id="sophie-marchand",
                           conversation_id=conversation, client_id=client_id)
        await trail.record("update_repair", actor="sophie", advisor_id="sophie-marchand",
                           conversation_id=conversation, client_id=client_id,
                           detail={"repair_id": repair.id, "status": "received"})
        await RestockBook(engine=engine).add(ref, "LG-004", now, colour="Noir")
        queue = OutboundQueue(engine=engine)
        await queue.initialize()
        client = {"wa_id": ref.wa_id} if ref.wa_id else {"user_id": ref.user_id}
        await queue.enqueue(parse_request(
            {"client": client, "purpose": "order_update", "content": {"text": f"Suite à : {words}"},
             "idempotency_key": f"trust:{conversation}"},
            requested_by="system:test", now=now, default_phone_number_id=PNID), now)
        audit = LlmAudit(engine=engine, clock=clock)
        advisor = StylingAdvisor(engine, LlmSettings(), clock=clock, audit=audit)
        await advisor.answer(f"un foulard pour ce soir, {words}", wa_id=ref.wa_id, user_id=ref.user_id)
        await advisor.answer("I want to complain, the clasp broke twice", wa_id=ref.wa_id, user_id=ref.user_id)
        await audit.close()
    finally:
        await engine.dispose()


async def erase(settings: Settings, client: str, actor: str = "dpo") -> Any:
    registry = default_registry(settings)
    try:
        subject = await registry.resolve(client)
        return subject, await registry.erase(subject, actor=actor)
    finally:
        await registry.close()


# --------------------------------------------------------------------------- tests


async def test_erasure_of_a_bsuid_only_client_leaves_no_row_anywhere(environment: Settings, redis_url: str) -> None:
    settings = environment
    baseline = database_rows(settings.database_url)
    async with wired(settings, echo("Bien noté :")) as (ch, emu, admin):
        await say(admin, user_id=INES, bsuid_only=True, name="Inès Moreau",
                  text="Bonjour, le fermoir de mon bracelet est cassé ; j'habite 12 rue de la Paix")
        await settle(ch, admin, INES, 1)
        await say(admin, user_id=INES, bsuid_only=True, name="Inès Moreau", text="STOP")
        await settle(ch, admin, INES, 2)
        async with admin.post("/_emulator/preferences", json={"user_id": INES, "value": "stop"}) as r:
            assert r.status == 200, await r.text()
        ref = ClientRef(PNID, user_id=INES)
        for _ in range(100):
            if await ch.runtime.service.consents.marketing_stopped(ref):  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
        assert ch.received and ch.received[0].sender_id == INES
    await her_records(settings, ref=ref, conversation=INES, client_id=None, words=INES_WORDS[2])
    await rasa_conversation(INES, "j'habite 12 rue de la Paix")
    before = leftovers(settings.database_url, redis_url, baseline, (INES, *INES_WORDS))
    for store in ("wa_inbox", "wa_outbound", "llm_audit", "consent_ledger", "salon_handoffs", "outbound_requests"):
        assert f"added: {store}" in before, store
    assert "names her: salon_advisor_audit" in before
    audit_keys = {json.loads(row)["client_id"] for row in database_rows(settings.database_url)["llm_audit"]}
    assert len(audit_keys) == 1 and next(iter(audit_keys)).startswith("h:")  # keyed, not masked
    assert not any(INES[-4:] in key or INES[:3] in key for key in audit_keys)

    subject, report = await erase(settings, INES)
    assert subject.user_ids == {INES} and subject.client_id is None
    assert report.complete and report.outcome == "complete"
    assert report["llm_audit"] == 2 and report["wa_inbox"] == 2 and report["salon_advisor_audit"] == 2
    tracker = "rasa_trackers_redis" if "rasa_trackers_redis" in report.stores else "rasa_trackers_sql"
    assert report.stores[tracker] == {"status": "erased", "removed": report[tracker]} and report[tracker] >= 1

    assert leftovers(settings.database_url, redis_url, baseline, (INES, *INES_WORDS)) == {}
    [erasure] = await erasure_rows(settings.database_url)
    assert erasure["outcome"] == "complete" and INES not in json.dumps(erasure, default=str)
    if tracker == "rasa_trackers_sql":  # the production endpoints: RabbitMQ keeps copies
        assert "salon_events" in report.not_erasable["rasa_event_broker"]
        assert "cannot erase" in erasure["report"]["not_erasable"]["rasa_event_broker"]
    # Her STOP outlives the erasure: should she write again, nothing the maison starts reaches her.
    book = ConsentBook(settings.database_url, salt=SALT.encode())
    await book.initialize()
    consent = await book.consent_for(ClientRef(PNID, user_id=INES))
    await book.close()
    assert consent.opted_out and not consent.messaging and not consent.marketing


async def test_erasure_of_a_client_who_changed_number_leaves_no_row_anywhere(environment: Settings,
                                                                             redis_url: str) -> None:
    settings = environment
    baseline = database_rows(settings.database_url)
    async with wired(settings, echo("C'est noté :")) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE_PHONE, "user_id": CLAIRE_BSUID, "name": "Claire Laurent",
                            "text": "Bonjour, livrez plutôt à la villa Les Oliviers"})
        await settle(ch, admin, CLAIRE_PHONE, 1)
        async with admin.post("/_emulator/identity_change", json={
                "client": CLAIRE_PHONE, "new_wa_id": NEW_PHONE, "new_user_id": NEW_BSUID}) as r:
            assert r.status == 200, await r.text()
        async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
            assert (await r.json())["idle"]
        await ch.settle()
        await say(admin, **{"from": NEW_PHONE, "user_id": NEW_BSUID, "name": "Claire Laurent",
                            "text": "C'est encore moi, j'ai changé de numéro"})
        await settle(ch, admin, NEW_PHONE, 2)
        conversation = ch.received[0].sender_id
        assert [m.sender_id for m in ch.received] == [conversation, conversation]
    assert conversation == CLAIRE_BSUID  # her conversation keeps the id it began with
    await her_records(settings, ref=ClientRef(PNID, user_id=NEW_BSUID, wa_id=NEW_PHONE),
                      conversation=conversation, client_id=CLAIRE, words=CLAIRE_WORDS[1])
    await rasa_conversation(conversation, "livrez à la villa Les Oliviers")
    needles = (CLAIRE, CLAIRE_PHONE, CLAIRE_BSUID, NEW_PHONE, NEW_BSUID, *CLAIRE_WORDS)

    # By her new number: the book knows only her new ids; the session links the old ones.
    subject, report = await erase(settings, f"+{NEW_PHONE}")
    assert subject.client_id == CLAIRE
    assert subject.wa_ids == {CLAIRE_PHONE, NEW_PHONE} and subject.user_ids == {CLAIRE_BSUID, NEW_BSUID}
    assert report.complete and report["maison_clients"] == 1 and report["maison_orders"] >= 1
    assert leftovers(settings.database_url, redis_url, baseline, needles) == {}


async def test_an_unreachable_store_fails_the_erasure_before_anything_is_deleted(
        production: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = production
    registry = default_registry(settings)
    try:
        subject = await registry.resolve(CLAIRE)
    finally:
        await registry.close()
    before = database_rows(settings.database_url)
    # The tracker store of Rasa's endpoints file is down (nothing listens on its port) ...
    down = tmp_path / "down.yml"
    down.write_text("tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: 127.0.0.1\n"
                    f"  port: {free_port()}\n  db: rasa\n  username: rasa\n")
    # ... its file names a variable that is not set, or a store Salon cannot erase.
    unset = tmp_path / "unset.yml"
    unset.write_text("tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: ${TRUST_UNSET_HOST}\n  db: rasa\n")
    mongo = tmp_path / "mongo.yml"
    mongo.write_text("tracker_store:\n  type: mongod\n  url: mongodb://127.0.0.1:27017\n  db: rasa\n")
    monkeypatch.delenv("TRUST_UNSET_HOST", raising=False)
    for endpoints, why in ((down, "cannot be reached"), (unset, "TRUST_UNSET_HOST"), (mongo, "mongod"),
                           (tmp_path / "missing.yml", "does not exist")):
        monkeypatch.setenv("SALON_RASA_ENDPOINTS", str(endpoints))
        registry = default_registry(settings)
        try:
            with pytest.raises(StoreUnavailable) as refused:
                await registry.erase(subject, actor="dpo")
            with pytest.raises(StoreUnavailable):
                await registry.export(subject)
        finally:
            await registry.close()
        [(store, reason)] = refused.value.stores.items()
        assert store in ("rasa_trackers_sql", "rasa_tracker_store") and why in reason, refused.value.stores
    # A Redis session store that does not answer, the same.
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", "endpoints.yml")
    gone = Settings(var_dir=settings.var_dir, data_dir=settings.data_dir, database_url=settings.database_url,
                    redis_url=f"redis://127.0.0.1:{free_port()}/0")
    registry = default_registry(gone)
    try:
        with pytest.raises(StoreUnavailable) as refused:
            await registry.erase(subject, actor="dpo")
    finally:
        await registry.close()
    assert "sessions_redis" in refused.value.stores
    assert database_rows(settings.database_url) == before  # nothing deleted, nothing recorded


async def test_a_partial_erasure_is_reported_and_running_it_again_completes_it(production: Settings) -> None:
    settings = production
    await rasa_conversation(INES, "j'habite 12 rue de la Paix")
    async with wired(settings, echo("Bien noté :")) as (ch, emu, admin):
        await say(admin, user_id=INES, bsuid_only=True, name="Inès Moreau", text="Bonjour, 12 rue de la Paix")
        await settle(ch, admin, INES, 1)
    # Rasa's events table refuses deletes for now (a real failure of the store, half-way).
    engine = make_sync_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE FUNCTION trust_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RAISE EXCEPTION 'events are read-only'; END $$"))
        conn.execute(text("CREATE TRIGGER trust_refuse BEFORE DELETE ON events FOR EACH ROW "
                          "EXECUTE FUNCTION trust_refuse()"))
    with pytest.raises(ErasureIncomplete) as partial:
        await erase(settings, INES)
    report = partial.value.report
    assert report is not None and report.outcome == "partial"
    assert report.stores["rasa_trackers_sql"]["status"] == "failed"
    assert "read-only" in report.stores["rasa_trackers_sql"]["error"]
    assert report.stores["consent_ledger"]["status"] == "erased"
    kept = {name for name, store in report.stores.items() if store["status"] == "kept"}
    assert {"wa_inbox", "salon_session_aliases", "salon_sessions"} <= kept  # who she is: kept for the re-run
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER trust_refuse ON events"))
    engine.dispose()

    subject, report = await erase(settings, INES)  # again, from the same id: completed
    assert subject.user_ids == {INES} and report.complete and report["rasa_trackers_sql"] >= 2
    [first, second] = await erasure_rows(settings.database_url)
    assert (first["outcome"], second["outcome"]) == ("partial", "complete")
    assert first["subject_hash"] == second["subject_hash"]
    assert "read-only" not in json.dumps(first["report"])  # the record keeps no error text
    rows = database_rows(settings.database_url)
    assert not [row for table in rows.values() for row in table if INES in row or "rue de la Paix" in row]
