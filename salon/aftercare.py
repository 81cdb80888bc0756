"""Repair requests: the piece, what happened and the photos the client sent, opened in
``salon_repair_requests`` for the client's advisor and the atelier.

The request is the record the advisor and the atelier work from (client, advisor,
boutique, status); the client gets its reference.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, MetaData, String, Table, Text, select

from salon.db import SqlTables
from salon.integrations.schema import AwareDateTime

__all__ = ["RepairBook", "RepairRequest"]

metadata = MetaData()

repairs_table = Table(
    "salon_repair_requests",
    metadata,
    Column("id", String(32), primary_key=True),  # REP-20261125-3F9A1C
    Column("conversation_id", String(200), nullable=False),
    Column("client_id", String(16)),
    Column("advisor_id", String(64)),
    Column("boutique_id", String(32)),
    Column("item", Text, nullable=False),
    Column("issue", Text, nullable=False),
    Column("photos", JSON, nullable=False),  # WhatsApp media objects: id, mime_type, caption
    Column("status", String(16), nullable=False),  # open | in_atelier | ready | closed
    Column("created_at", AwareDateTime, nullable=False),
    Index("ix_salon_repair_requests_client", "client_id", "created_at"),
)


@dataclass(frozen=True, slots=True)
class RepairRequest:
    id: str
    conversation_id: str
    client_id: str | None
    advisor_id: str | None
    boutique_id: str | None
    item: str
    issue: str
    photos: tuple[dict[str, Any], ...]
    status: str
    created_at: datetime


def _request(row: Any) -> RepairRequest:
    m = row._mapping
    return RepairRequest(m["id"], m["conversation_id"], m["client_id"], m["advisor_id"],
                         m["boutique_id"], m["item"], m["issue"], tuple(m["photos"] or ()),
                         m["status"], m["created_at"])


class RepairBook(SqlTables):
    metadata = metadata

    async def open(self, *, conversation_id: str, item: str, issue: str,
                   photos: Sequence[dict[str, Any]], now: datetime, client_id: str | None,
                   advisor_id: str | None, boutique_id: str | None) -> RepairRequest:
        if not item.strip() or not issue.strip():
            raise ValueError("a repair request needs the piece and what happened")
        request = RepairRequest(
            id=f"REP-{now:%Y%m%d}-{secrets.token_hex(3).upper()}", conversation_id=conversation_id,
            client_id=client_id, advisor_id=advisor_id, boutique_id=boutique_id,
            item=item.strip()[:500], issue=issue.strip()[:2000], photos=tuple(photos),
            status="open", created_at=now)
        async with self.engine.begin() as conn:
            await conn.execute(repairs_table.insert().values(
                id=request.id, conversation_id=conversation_id, client_id=client_id,
                advisor_id=advisor_id, boutique_id=boutique_id, item=request.item,
                issue=request.issue, photos=list(photos), status="open", created_at=now))
        return request

    async def get(self, request_id: str) -> RepairRequest | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(repairs_table).where(repairs_table.c.id == request_id))).first()
        return _request(row) if row is not None else None
