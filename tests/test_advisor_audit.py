"""The advisors' audit trail (salon/advisors/audit.py) on SQLite and PostgreSQL: acts
recorded and read back; message text, secrets, unknown keys and unknown actions refused
before anything is written; a client's export holds the acts about her; her erasure keeps
the acts and removes who they were about, the report counts them, and a second erasure
changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from salon.advisors.audit import (
    DETAIL_KEYS,
    AdvisorAudit,
    AuditRecord,
    AuditRefused,
    advisor_audit_table,
    clean_detail,
)
from salon.clock import ManualClock
from salon.config import Settings
from salon.privacy.rights import ErasureLog, PrivacyRegistry, default_registry
from salon.privacy.sources import UnlinkedRowsSource
from salon.storage.db import make_async_engine
from tests.seeding import seed_maison

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
PARIS = ZoneInfo("Europe/Paris")
CLAIRE, CLAIRE_PHONE, CLAIRE_BSUID = "C-001", "33600000001", "FR.4820193746581029374"
ANTOINE, ANTOINE_PHONE = "C-002", "33600000002"
REPAIR = "REP-20261125-3F9A1C"
STORE = "salon_advisor_audit"


@pytest.fixture()
async def audit(database_url: str) -> AsyncIterator[tuple[AdvisorAudit, ManualClock]]:
    clock = ManualClock(T0)
    trail = AdvisorAudit(database_url, clock=clock)
    await trail.initialize()
    try:
        yield trail, clock
    finally:
        await trail.close()


@pytest.fixture()
def privacy_environment(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The seeded maison on the backend; Rasa's endpoints without a tracker store (the
    trackers are Rasa's concern here, not the audit's)."""
    seed_maison(database_url)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("action_endpoint:\n  url: http://127.0.0.1:5055/webhook\n")
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", str(endpoints))
    monkeypatch.setenv("SALON_PRIVACY_SALT", "advisor-audit-salt")
    for key in ("RASA_TRACKER_STORE_URL", "RASA_TRACKER_REDIS_URL", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    yield Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=database_url, redis_url=None)


class ParisClock:
    """A clock that answers in Paris time (aware, not UTC)."""

    def now(self) -> datetime:
        return T0.astimezone(PARIS)


class NaiveClock:
    def now(self) -> datetime:
        return T0.replace(tzinfo=None)


# --------------------------------------------------------------------------- record, read back


async def test_acts_are_recorded_and_read_back(audit: tuple[AdvisorAudit, ManualClock]) -> None:
    trail, clock = audit
    signed_in = await trail.record("sign_in", actor="sophie", advisor_id="sophie-marchand",
                                   detail={"via": "console", "scope": "advisor"})
    clock.advance(timedelta(minutes=1))
    read = await trail.record("read_conversation", actor="sophie", advisor_id="sophie-marchand",
                              conversation_id=CLAIRE_PHONE, client_id=CLAIRE)
    clock.advance(timedelta(minutes=1))
    replied = await trail.record("reply", actor="sophie", advisor_id="sophie-marchand",
                                 conversation_id=CLAIRE_PHONE,
                                 detail={"sent": "parked", "template": "advisor_update_nudge",
                                         "purpose": "service_reply", "via": "console"})
    clock.advance(timedelta(minutes=1))
    reassigned = await trail.record("reassign", actor="ops", conversation_id=CLAIRE_PHONE, client_id=CLAIRE,
                                    detail={"from_advisor": "sophie-marchand", "to_advisor": "camille-roux",
                                            "handoff_id": 7})
    clock.advance(timedelta(minutes=1))
    followed = await trail.record("schedule_follow_up", actor="camille", advisor_id="camille-roux",
                                  conversation_id=ANTOINE_PHONE, client_id=ANTOINE,
                                  detail={"due_at": datetime(2026, 11, 26, 10, 0, tzinfo=PARIS),
                                          "purpose": "advisor_followup", "request_id": "0" * 32})
    clock.advance(timedelta(minutes=1))
    repaired = await trail.record("update_repair", actor="sophie", advisor_id="sophie-marchand",
                                  client_id=CLAIRE,
                                  detail={"repair_id": REPAIR, "status": "ready", "previous_status": "in_progress",
                                          "sent": "template", "template": "aftercare_ready"})

    assert signed_in.at == T0 and signed_in.at.utcoffset() == timedelta(0)
    assert signed_in.detail == {"via": "console", "scope": "advisor"}
    assert followed.detail["due_at"] == "2026-11-26T09:00:00+00:00"  # an aware instant, kept in UTC
    assert [r.action for r in await trail.for_conversations([CLAIRE_PHONE])] == [
        "read_conversation", "reply", "reassign"]
    assert await trail.for_conversations([ANTOINE_PHONE, CLAIRE_PHONE, CLAIRE_PHONE]) == [
        read, replied, reassigned, followed]
    assert await trail.for_conversations([]) == []
    assert await trail.for_client(CLAIRE) == [read, reassigned, repaired]
    assert await trail.for_client("C-999") == []
    assert await trail.recent(3) == [repaired, followed, reassigned]
    assert await trail.recent(actor="sophie") == [repaired, replied, read, signed_in]
    assert await trail.recent(1, actor="camille") == [followed]
    for record in await trail.recent():
        assert record.at.tzinfo is not None and record.at.utcoffset() == timedelta(0)
    assert repaired.as_json()["at"] == "2026-11-25T09:05:00+00:00"
    with pytest.raises(ValueError, match="between 1 and 1000"):
        await trail.recent(0)


async def test_the_time_is_the_injected_clocks_kept_in_utc(audit: tuple[AdvisorAudit, ManualClock]) -> None:
    trail, _ = audit
    paris = AdvisorAudit(engine=trail.engine, clock=ParisClock())
    record = await paris.record("sign_out", actor="sophie")
    assert record.at == T0 and record.at.tzinfo == timezone.utc
    [stored] = await trail.recent()
    assert stored == record
    naive = AdvisorAudit(engine=trail.engine, clock=NaiveClock())
    with pytest.raises(ValueError, match="timezone-aware"):
        await naive.record("sign_out", actor="sophie")
    assert await trail.recent() == [record]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("detail", "why"), [
    ({"text": "Bonjour Claire, votre bracelet est prêt"}, "message text"),
    ({"message_body": "Bonjour Claire, votre bracelet est prêt"}, "message text"),
    ({"note": "cliente pressée, rappeler demain"}, "message text"),
    ({"token": "adv-sophie-0123456789abcdef"}, "secrets"),
    ({"Authorization": "Bearer adv-sophie-0123456789abcdef"}, "secrets"),
    ({"colour": "noir"}, "unknown key; allowed: " + ", ".join(sorted(DETAIL_KEYS))),
    ({"Bonjour Claire, votre bracelet": "prêt"}, "a key that is no plain name"),
    ({"template": "Bonjour Claire, votre bracelet est prêt"}, "'template' must be a template name"),
    ({"sent": "by carrier pigeon"}, "'sent' must be one of failed, free_form, parked, refused, template"),
    ({"status": "lost in Lyon"}, "'status' must be one of"),
    ({"to_advisor": "Camille Roux, 06 12 34 56 78"}, "'to_advisor' must be an advisor id"),
    ({"handoff_id": True}, "'handoff_id' must be a handoff's id"),
    ({"repair_id": "the clasp of her bracelet"}, "'repair_id' must be a repair request's reference"),
    ({"due_at": "2026-11-26T10:00:00"}, "'due_at' must be an aware instant"),
    ({"due_at": "demain matin"}, "'due_at' must be an aware instant"),
])
def test_the_detail_allows_only_its_keys_and_never_quotes_a_value(detail: dict[str, Any], why: str) -> None:
    with pytest.raises(AuditRefused) as refused:
        clean_detail(detail)
    message = str(refused.value)
    assert why in message, message
    for key, value in detail.items():
        if " " in key:
            assert key not in message
        if isinstance(value, str):
            assert value not in message


def test_a_clean_detail_is_kept_as_given() -> None:
    assert clean_detail(None) == {}
    assert clean_detail({"sent": "free_form", "template": None}) == {"sent": "free_form"}
    assert clean_detail({"due_at": "2026-11-26T09:00:00Z", "handoff_id": 3}) == {
        "due_at": "2026-11-26T09:00:00+00:00", "handoff_id": 3}
    with pytest.raises(AuditRefused, match="a mapping"):
        clean_detail(["sent", "free_form"])  # type: ignore[arg-type]


async def test_refused_acts_write_nothing(audit: tuple[AdvisorAudit, ManualClock]) -> None:
    trail, _ = audit
    token = "adv-sophie-0123456789abcdef"
    attempts: list[tuple[dict[str, Any], str]] = [
        ({"action": "delete_client", "actor": "sophie", "client_id": CLAIRE}, "unknown action 'delete_client'"),
        ({"action": "reply", "actor": "sophie", "conversation_id": CLAIRE_PHONE,
          "detail": {"sent": "free_form", "text": "Votre bracelet est prêt"}}, "message text"),
        ({"action": "sign_in", "actor": "sophie", "detail": {"token": token}}, "secrets"),
        ({"action": "reply", "actor": "sophie", "conversation_id": CLAIRE_PHONE,
          "detail": {"template": "Votre bracelet est prêt"}}, "template name"),
        ({"action": "sign_in", "actor": "sophie", "conversation_id": CLAIRE_PHONE}, "about no client"),
        ({"action": "read_conversation", "actor": "sophie"}, "needs the conversation id or the client id"),
        ({"action": "read_conversation", "actor": "  ", "client_id": CLAIRE}, "actor must be"),
        ({"action": "read_conversation", "actor": "sophie\nadmin", "client_id": CLAIRE}, "actor must be"),
        ({"action": "read_conversation", "actor": "sophie", "client_id": CLAIRE,
          "advisor_id": "Sophie Marchand <sophie@maison.fr>"}, "advisor_id must be"),
    ]
    for attempt, why in attempts:
        action = attempt.pop("action")
        with pytest.raises(AuditRefused) as refused:
            await trail.record(action, **attempt)
        assert why in str(refused.value), str(refused.value)
        assert token not in str(refused.value) and "prêt" not in str(refused.value)
    assert await trail.recent() == []


# --------------------------------------------------------------------------- export and erasure


async def _her_acts(settings: Settings) -> dict[str, AuditRecord]:
    """Acts about Claire (by her number, her BSUID, her client id), one about Antoine and
    a sign-in, as the advisor API would record them."""
    clock = ManualClock(T0)
    trail = AdvisorAudit(settings.database_url, clock=clock)
    await trail.initialize()
    acts: dict[str, AuditRecord] = {}
    try:
        acts["sign_in"] = await trail.record("sign_in", actor="sophie", advisor_id="sophie-marchand",
                                             detail={"via": "console"})
        clock.advance(timedelta(seconds=30))
        acts["read"] = await trail.record("read_conversation", actor="sophie", advisor_id="sophie-marchand",
                                          conversation_id=CLAIRE_PHONE, client_id=CLAIRE)
        clock.advance(timedelta(seconds=30))
        acts["reply"] = await trail.record("reply", actor="sophie", advisor_id="sophie-marchand",
                                           conversation_id=CLAIRE_BSUID, detail={"sent": "free_form"})
        clock.advance(timedelta(seconds=30))
        acts["repair"] = await trail.record("update_repair", actor="sophie", advisor_id="sophie-marchand",
                                            client_id=CLAIRE,
                                            detail={"repair_id": REPAIR, "status": "ready", "sent": "template",
                                                    "template": "aftercare_ready"})
        clock.advance(timedelta(seconds=30))
        acts["reassign"] = await trail.record("reassign", actor="ops", conversation_id=CLAIRE_PHONE,
                                              detail={"handoff_id": 12, "from_advisor": "sophie-marchand",
                                                      "to_advisor": "camille-roux"})
        clock.advance(timedelta(seconds=30))
        acts["antoine"] = await trail.record("read_conversation", actor="camille", advisor_id="camille-roux",
                                             conversation_id=ANTOINE_PHONE, client_id=ANTOINE)
    finally:
        await trail.close()
    return acts


async def _trail(settings: Settings) -> list[AuditRecord]:
    trail = AdvisorAudit(settings.database_url, clock=ManualClock(T0))
    try:
        return await trail.recent()
    finally:
        await trail.close()


async def test_export_holds_her_acts_and_erasure_unlinks_them_once(privacy_environment: Settings) -> None:
    settings = privacy_environment
    acts = await _her_acts(settings)
    hers = [acts[name] for name in ("read", "reply", "repair", "reassign")]
    registry = default_registry(settings, clock=ManualClock(T0 + timedelta(days=1)))
    try:
        subject = await registry.resolve(f"+{CLAIRE_PHONE}")
        assert subject.client_id == CLAIRE and CLAIRE_BSUID in subject.user_ids
        exported = (await registry.export(subject))["stores"][STORE]
        assert sorted(row["id"] for row in exported) == sorted(act.id for act in hers)
        repair_row = next(row for row in exported if row["action"] == "update_repair")
        assert repair_row["actor"] == "sophie" and repair_row["detail"]["repair_id"] == REPAIR
        assert repair_row["at"] == (T0 + timedelta(seconds=90)).isoformat()
        json.dumps(exported)  # the export is plain JSON

        report = await registry.erase(subject, actor="dpo")
        assert report.complete
        assert report[STORE] == 4
        assert report.stores[STORE]["status"] == "erased" and report.stores[STORE]["removed"] == 4
        assert "unlinked" in report.stores[STORE]["detail"]
        assert report["maison_clients"] == 1  # the rest of her erasure went on as before
        [record] = await ErasureLog(engine=registry.engine).rows()
        assert record["removed"][STORE] == 4

        after = {record.id: record for record in await _trail(settings)}
        assert len(after) == 6  # nothing deleted
        for act in hers:  # who did what, when: kept; about whom: gone
            kept = after[act.id]
            assert (kept.at, kept.actor, kept.advisor_id, kept.action) == (
                act.at, act.actor, act.advisor_id, act.action)
            assert kept.conversation_id is None and kept.client_id is None
        assert after[acts["repair"].id].detail == {"status": "ready", "sent": "template",
                                                   "template": "aftercare_ready"}
        assert after[acts["reassign"].id].detail == {"from_advisor": "sophie-marchand",
                                                     "to_advisor": "camille-roux"}
        assert after[acts["reply"].id].detail == {"sent": "free_form"}
        assert after[acts["antoine"].id] == acts["antoine"]  # another client's act: untouched
        assert after[acts["sign_in"].id] == acts["sign_in"]
        text = json.dumps([record.as_json() for record in after.values()])
        for needle in (CLAIRE, CLAIRE_PHONE, CLAIRE_BSUID, REPAIR):
            assert needle not in text
        assert (await registry.export(subject))["stores"][STORE] == []

        again = await registry.erase(subject, actor="dpo")  # a second erasure: nothing more to do
        assert again[STORE] == 0 and again.stores[STORE]["status"] == "erased"
        assert {record.id: record for record in await _trail(settings)} == after
    finally:
        await registry.close()


async def test_a_database_without_the_audit_table_exports_and_erases_nothing(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("action_endpoint:\n  url: http://127.0.0.1:5055/webhook\n")
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", str(endpoints))
    monkeypatch.setenv("SALON_PRIVACY_SALT", "advisor-audit-salt")
    for key in ("RASA_TRACKER_STORE_URL", "RASA_TRACKER_REDIS_URL", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    registry: PrivacyRegistry = default_registry(
        Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=database_url, redis_url=None),
        clock=ManualClock(T0))
    try:
        subject = await registry.resolve(f"+{CLAIRE_PHONE}")
        assert (await registry.export(subject))["stores"][STORE] == []
        report = await registry.erase(subject, actor="dpo")
        assert report[STORE] == 0 and report.complete
    finally:
        await registry.close()


async def test_unlinked_rows_need_nullable_columns_that_name_the_client(sqlite_url: str) -> None:
    engine = make_async_engine(sqlite_url)
    try:
        with pytest.raises(ValueError, match="NOT NULL"):
            UnlinkedRowsSource("audit_by_actor", engine, advisor_audit_table, "actor", lambda s: [])
        with pytest.raises(ValueError, match="no column"):
            UnlinkedRowsSource("audit", engine, advisor_audit_table, "conversation_id", lambda s: [],
                               rewrite=(("words", dict),))
    finally:
        await engine.dispose()
