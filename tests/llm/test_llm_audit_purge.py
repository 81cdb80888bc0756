"""``salon llm-audit-purge``: rows past the retention go, recent rows stay."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from salon.cli import main
from salon.clock import ManualClock
from salon.config import Settings
from salon.llm.audit import AuditEntry, LlmAudit


async def _write(url: str, ages_in_days: list[int]) -> None:
    now = datetime.now(timezone.utc)
    for age in ages_in_days:
        audit = LlmAudit(url, clock=ManualClock(now - timedelta(days=age)), retention=timedelta(days=3650))
        await audit.initialize()
        await audit.record(AuditEntry("C-001", "offline", "offline", "offline", response=f"{age} days"))
        await audit.close()


async def _left(url: str) -> list[str]:
    audit = LlmAudit(url, clock=ManualClock(datetime.now(timezone.utc)))
    try:
        return [row["response"] for row in await audit.rows()]
    finally:
        await audit.close()


def test_purge_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SALON_CLOCK_FILE", raising=False)
    url = f"sqlite:///{tmp_path / 'salon.db'}"
    asyncio.run(_write(url, [40, 10, 1]))
    assert main(["llm-audit-purge", "--database-url", url, "--days", "30"]) == 0
    assert "1 audit rows older than 30 days deleted" in capsys.readouterr().out
    assert asyncio.run(_left(url)) == ["10 days", "1 days"]
    monkeypatch.setenv("SALON_LLM_AUDIT_RETENTION_DAYS", "5")
    assert main(["llm-audit-purge", "--database-url", url]) == 0
    assert asyncio.run(_left(url)) == ["1 days"]
    monkeypatch.setenv("SALON_LLM_AUDIT_RETENTION_DAYS", "soon")
    assert main(["llm-audit-purge", "--database-url", url]) == 2
    assert "SALON_LLM_AUDIT_RETENTION_DAYS must be a number" in capsys.readouterr().err


async def test_an_unknown_senders_audit_is_keyed_by_a_salted_hash_and_erased_with_her(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review H3: someone the book does not know is audited under a keyed hash of the id she
    wrote from (not her last digits), which her erasure finds; another sender's rows stay."""
    from salon.llm.config import LlmSettings
    from salon.llm.responder import StylingAdvisor
    from salon.privacy.rights import default_registry
    from salon.storage.db import make_async_engine

    ines, stranger = "FR.40213376198812340001", "33699999999"
    monkeypatch.setenv("SALON_PRIVACY_SALT", "audit-test-salt")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("action_endpoint:\n  url: http://127.0.0.1:5055/webhook\n")
    monkeypatch.setenv("SALON_RASA_ENDPOINTS", str(endpoints))
    engine = make_async_engine(settings.database_url)
    clock = ManualClock(datetime.now(timezone.utc))
    audit = LlmAudit(engine=engine, clock=clock)
    advisor = StylingAdvisor(engine, LlmSettings(), clock=clock, audit=audit)
    try:
        for wa_id, user_id in ((None, ines), (None, ines), (stranger, None)):
            await advisor.answer("a silk scarf for this evening", wa_id=wa_id, user_id=user_id)
        # A row an earlier version wrote for her, keyed by her masked BSUID.
        await audit.record(AuditEntry(f"u:{ines[:3]}…{ines[-4:]}", "offline", "offline", "offline"))
        keys = [row["client_id"] for row in await audit.rows()]
        assert [k.startswith("h:") for k in keys] == [True, True, True, False]
        assert keys[0] == keys[1] != keys[2]
        assert not any(fragment in key for key in keys[:3] for fragment in (ines[-4:], stranger[-4:], "FR."))
    finally:
        await advisor.close()
        await engine.dispose()
    registry = default_registry(settings)
    try:
        report = await registry.erase(await registry.resolve(ines), actor="dpo")
    finally:
        await registry.close()
    assert report["llm_audit"] == 3
    assert [row["client_id"] for row in await _rows(settings.database_url)] == [keys[2]]


async def _rows(url: str) -> list[dict]:  # type: ignore[type-arg]
    audit = LlmAudit(url, clock=ManualClock(datetime.now(timezone.utc)))
    try:
        return await audit.rows()
    finally:
        await audit.close()
