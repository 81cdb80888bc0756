"""Repair requests: the piece, what happened and the photos the client sent, opened in
``salon_repair_requests`` for the client's advisor and the atelier.

The request is the record the advisor and the atelier work from (client, advisor,
boutique, status); the client gets its reference. Its status then moves through
``received`` (the piece is at the atelier), ``in_progress``, ``ready`` (for collection)
and ``closed``; each change is kept in ``salon_repair_updates`` with who made it, the
advisor's note and how the client was told (the advisor API sends the line of
:func:`status_message` through the send-time guard). A closed request changes no more.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    update,
)

from salon.conversation.phrasing import agreed, pick, say_city
from salon.integrations.schema import AwareDateTime
from salon.storage.db import SqlTables

__all__ = [
    "NOTIFIED_STATUSES",
    "STATUSES",
    "RepairBook",
    "RepairClosed",
    "RepairRequest",
    "RepairUpdate",
    "status_message",
]

STATUSES = ("open", "received", "in_progress", "ready", "closed")
"""``open`` when the client asked; the advisor moves it on (``closed``: collected or ended)."""
NOTIFIED_STATUSES = ("received", "in_progress", "ready")
"""The changes the client is told of."""

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
    Column("status", String(16), nullable=False),  # one of STATUSES
    Column("created_at", AwareDateTime, nullable=False),
    Index("ix_salon_repair_requests_client", "client_id", "created_at"),
)

updates_table = Table(
    "salon_repair_updates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("note", Text),
    Column("changed_by", String(100), nullable=False),  # the advisor API token's name
    Column("at", AwareDateTime, nullable=False),
    Column("notified", String(16)),  # free_form | template | parked | refused | failed; NULL: not told
    Column("notify_detail", Text),
    Index("ix_salon_repair_updates_request", "request_id", "at"),
)


class RepairClosed(Exception):
    """The request is closed: it changes no more."""


@dataclass(frozen=True, slots=True)
class RepairRequest:
    """One repair request as ``salon_repair_requests`` keeps it."""

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


@dataclass(frozen=True, slots=True)
class RepairUpdate:
    """One change of a request: its status, the note, who made it, when, and how the client
    was told (``notified``: None when not told).
    """

    id: int
    request_id: str
    status: str
    note: str | None
    by: str
    at: datetime
    notified: str | None = None
    notify_detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "note": self.note, "by": self.by, "at": self.at.isoformat(),
                "notified": self.notified}


def _update(row: Any) -> RepairUpdate:
    m = row._mapping
    return RepairUpdate(m["id"], m["request_id"], m["status"], m["note"], m["changed_by"], m["at"], m["notified"],
                        m["notify_detail"])


def _request(row: Any) -> RepairRequest:
    m = row._mapping
    return RepairRequest(m["id"], m["conversation_id"], m["client_id"], m["advisor_id"],
                         m["boutique_id"], m["item"], m["issue"], tuple(m["photos"] or ()),
                         m["status"], m["created_at"])


class RepairBook(SqlTables):
    """The repair requests and their history of changes (``salon_repair_requests``,
    ``salon_repair_updates``).
    """

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

    async def listing(self, *, advisor_id: str | None, include_closed: bool = False,
                      limit: int = 200) -> list[RepairRequest]:
        """Requests of one advisor's clients (``advisor_id``) or of everyone (None),
        newest first.
        """
        query = select(repairs_table).order_by(repairs_table.c.created_at.desc(),
                                               repairs_table.c.id).limit(limit)
        if advisor_id is not None:
            query = query.where(repairs_table.c.advisor_id == advisor_id)
        if not include_closed:
            query = query.where(repairs_table.c.status != "closed")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_request(r) for r in rows]

    async def last_changes(self, request_ids: Sequence[str]) -> dict[str, datetime]:
        """When each request last changed status (requests never changed are absent)."""
        if not request_ids:
            return {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(updates_table.c.request_id, func.max(updates_table.c.at))
                .where(updates_table.c.request_id.in_(list(request_ids)))
                .group_by(updates_table.c.request_id))).all()
        return {request_id: at for request_id, at in rows}

    async def history(self, request_id: str) -> list[RepairUpdate]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(updates_table).where(updates_table.c.request_id == request_id)
                                       .order_by(updates_table.c.at, updates_table.c.id))).all()
        return [_update(r) for r in rows]

    async def change(self, request_id: str, *, status: str | None, note: str | None, by: str,
                     now: datetime) -> tuple[RepairRequest, RepairUpdate]:
        """Move the request to ``status`` (None: keep it, a note only) and keep the change.
        Raises ``KeyError`` for an unknown request, :class:`RepairClosed` for a closed one,
        ``ValueError`` for an unknown status.
        """
        if status is not None and status not in STATUSES[1:]:
            raise ValueError(f"status must be one of {', '.join(STATUSES[1:])}")
        async with self.engine.begin() as conn:
            current = (await conn.execute(select(repairs_table.c.status)
                                          .where(repairs_table.c.id == request_id))).scalar_one_or_none()
            if current is None:
                raise KeyError(request_id)
            if current == "closed":
                raise RepairClosed(f"{request_id} is closed")
            new = status or current
            # Conditional on the status read, so two advisors' changes cannot cross.
            changed = await conn.execute(update(repairs_table).where(
                repairs_table.c.id == request_id, repairs_table.c.status == current).values(status=new))
            if changed.rowcount != 1:
                raise RepairClosed(f"{request_id} changed meanwhile")
            clean = note.strip()[:2000] if note and note.strip() else None
            result = await conn.execute(updates_table.insert().values(
                request_id=request_id, status=new, note=clean, changed_by=by, at=now))
            update_id = int(result.inserted_primary_key[0])
        request = await self.get(request_id)
        assert request is not None
        return request, RepairUpdate(update_id, request_id, new, clean, by, now)

    async def mark_notified(self, update_id: int, outcome: str, detail: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(updates_table).where(updates_table.c.id == update_id)
                               .values(notified=outcome, notify_detail=detail))


#: The lines that tell the client their piece moved on, by language and status; ``lead``
#: opens them, with the client's name (``lead_named``) or without.
_STATUS_LINES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "lead_named": "{name}, your", "lead": "Your",
        "received": ("{lead} {item} has safely reached our atelier (request {ref}); we will keep "
                     "you informed here."),
        "in_progress": ("{lead} {item} is now in the hands of our artisans (request {ref}); we will "
                        "tell you here as soon as it is ready."),
        "ready": ("{lead} {item} is back from our atelier and ready for you {where} (request "
                  "{ref}). We look forward to seeing you."),
        "where_city": "at our {city} boutique", "where": "at the boutique",
    },
    "fr": {
        "lead_named": "{name}, votre", "lead": "Votre",
        "received": ("{lead} pièce ({item}) est bien arrivée à notre atelier (demande {ref}) ; "
                     "nous vous donnerons de ses nouvelles ici."),
        "received_f": ("{lead} pièce ({item}) est bien arrivée à notre atelier (demande {ref}) ; "
                       "nous vous tiendrons informée ici."),
        "received_m": ("{lead} pièce ({item}) est bien arrivée à notre atelier (demande {ref}) ; "
                       "nous vous tiendrons informé ici."),
        "in_progress": ("{lead} pièce ({item}) est entre les mains de nos artisans (demande "
                        "{ref}) ; nous vous préviendrons ici dès qu'elle sera prête."),
        "ready": ("{lead} pièce ({item}) est revenue de notre atelier et vous attend {where} "
                  "(demande {ref}). Au plaisir de vous y accueillir."),
        "where_city": "dans notre boutique de {city}", "where": "en boutique",
    },
    "it": {
        "lead_named": "{name}, il Suo", "lead": "Il Suo",
        "received": ("{lead} pezzo ({item}) è arrivato al nostro atelier (richiesta {ref}); La "
                     "aggiorneremo qui."),
        "in_progress": ("{lead} pezzo ({item}) è ora nelle mani dei nostri artigiani (richiesta "
                        "{ref}); La avviseremo qui non appena sarà pronto."),
        "ready": ("{lead} pezzo ({item}) è tornato dal nostro atelier e La attende {where} "
                  "(richiesta {ref}). Sarà un piacere accoglierLa."),
        "where_city": "nella nostra boutique di {city}", "where": "in boutique",
    },
}


def status_message(request: RepairRequest, status: str, *, language: str, name: str | None,
                   boutique_city: str | None, gender: str | None = None) -> str | None:
    """The line that tells the client their piece moved on (None: nothing to tell); in
    French, agreed with her title (``gender``: :func:`salon.conversation.phrasing.gender_of`).
    """
    if status not in NOTIFIED_STATUSES:
        return None
    words = pick(_STATUS_LINES, language)
    lead = words["lead_named"].format(name=name) if name else words["lead"]
    where = (words["where_city"].format(city=say_city(boutique_city, language)) if boutique_city
             else words["where"])
    return agreed(words, status, gender).format(lead=lead, item=request.item, ref=request.id, where=where)
