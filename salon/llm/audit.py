"""The audit of the styling fallback: one row per turn in ``llm_audit``.

Each row keeps when it happened, the client (the maison's client id, or for someone not in
the book a keyed hash of the id she wrote from, :func:`sender_key`: ``h:`` and an
HMAC-SHA256 with the privacy salt, so that a GDPR erasure, which knows her ids and the salt,
finds her rows and nobody else can tell who she is), the mode (``llm``, ``offline``, ``handoff``), the model,
the prompt sent and the response received with phone numbers and e-mail addresses
masked, the retrieved product ids, the guardrail verdict and its problems, the latency,
the attempts and the tokens. Rows older than the retention (``SALON_LLM_AUDIT_RETENTION_DAYS``,
90 days by default) are deleted by :meth:`LlmAudit.purge`, which the fallback runs at
start and then at most every six hours as it records, and which ``salon llm-audit-purge``
runs on demand.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, MetaData, String, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import Clock, require_aware
from salon.integrations.schema import AwareDateTime
from salon.storage.db import SqlTables

__all__ = ["AuditEntry", "LlmAudit", "audit_table", "legacy_sender_keys", "mask", "sender_key", "sender_keys"]

metadata = MetaData()

audit_table = Table(
    "llm_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", AwareDateTime, nullable=False),
    Column("client_id", String(64)),
    Column("mode", String(16), nullable=False),
    Column("model", String(200), nullable=False),
    Column("prompt", Text),
    Column("response", Text),
    Column("retrieved_ids", JSON, nullable=False),
    Column("verdict", String(32), nullable=False),
    Column("problems", JSON, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Index("ix_llm_audit_at", "at"),
    Index("ix_llm_audit_client", "client_id", "at"),
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w])\+?\d[\d ()./-]{6,}\d(?![\w])")
PURGE_EVERY = timedelta(hours=6)


def sender_key(salt: bytes, *, wa_id: str | None, user_id: str | None) -> str | None:
    """The audit's key for a sender the book does not know: ``h:`` and the keyed hash of
    her BSUID when she wrote with one, else of her number (None for nobody).
    """
    if user_id:
        subject = f"u:{user_id}"
    elif wa_id:
        subject = f"w:{wa_id.lstrip('+')}"
    else:
        return None
    return "h:" + hmac.new(salt, b"llm-audit\n" + subject.encode(), hashlib.sha256).hexdigest()[:40]


def sender_keys(salt: bytes, wa_ids: Sequence[str], user_ids: Sequence[str]) -> list[str]:
    """Every key :func:`sender_key` may have written for a client with these ids."""
    keys = {sender_key(salt, wa_id=w, user_id=None) for w in wa_ids}
    keys |= {sender_key(salt, wa_id=None, user_id=u) for u in user_ids}
    return sorted(k for k in keys if k)


def legacy_sender_keys(wa_ids: Sequence[str], user_ids: Sequence[str]) -> list[str]:
    """The masked senders older versions wrote (``w:…1234``, ``u:FR.…5678``): not unique
    (another client may share the last four digits), so erasing them may remove a little
    more of the audit than the client's own rows, never less.
    """
    keys = {f"w:…{w.lstrip('+')[-4:]}" for w in wa_ids if w}
    keys |= {f"u:{u[:3]}…{u[-4:]}" for u in user_ids if u}
    return sorted(keys)


def mask(text: str | None) -> str | None:
    """``text`` with e-mail addresses and phone numbers replaced."""
    if text is None:
        return None
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One turn of the styling fallback, as :meth:`LlmAudit.record` stores it (masked)."""

    client_id: str | None
    mode: str
    model: str
    verdict: str
    prompt: Sequence[dict[str, str]] | None = None
    response: str | None = None
    retrieved_ids: Sequence[str] = ()
    problems: Sequence[str] = ()
    latency_ms: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class LlmAudit(SqlTables):
    """The ``llm_audit`` table: records turns and purges those past the retention."""

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None, clock: Clock,
                 retention: timedelta = timedelta(days=90)) -> None:
        super().__init__(url, engine=engine)
        if retention <= timedelta(0):
            raise ValueError("the audit retention must be positive")
        self.clock = clock
        self.retention = retention
        self._last_purge: datetime | None = None

    async def record(self, entry: AuditEntry) -> int:
        now = self.clock.now()
        prompt = json.dumps(list(entry.prompt), ensure_ascii=False) if entry.prompt is not None else None
        row = {
            "at": now,
            "client_id": entry.client_id,
            "mode": entry.mode,
            "model": entry.model,
            "prompt": mask(prompt),
            "response": mask(entry.response),
            "retrieved_ids": list(entry.retrieved_ids),
            "verdict": entry.verdict,
            "problems": [mask(p) for p in entry.problems],
            "latency_ms": entry.latency_ms,
            "attempts": entry.attempts,
            "prompt_tokens": entry.prompt_tokens,
            "completion_tokens": entry.completion_tokens,
        }
        async with self.engine.begin() as conn:
            result = await conn.execute(audit_table.insert().values(**row))
        if self._last_purge is None or now - self._last_purge >= PURGE_EVERY:
            await self.purge()
        return int(result.inserted_primary_key[0])

    async def purge(self, now: datetime | None = None) -> int:
        """Delete rows older than the retention; returns how many."""
        now = require_aware(now, "now") if now is not None else self.clock.now()
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(audit_table).where(audit_table.c.at < now - self.retention))
        self._last_purge = now
        return int(result.rowcount or 0)

    async def rows(self, client_id: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_table).order_by(audit_table.c.id)
        if client_id is not None:
            query = query.where(audit_table.c.client_id == client_id)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]
