"""``salon llm-audit-purge``: rows past the retention go, recent rows stay."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from salon.cli import main
from salon.clock import ManualClock
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
