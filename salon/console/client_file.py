"""The client's file beside her conversation: what an advisor needs before writing.

Tier, advisor, language, sizes and preferences, recent purchases, upcoming appointments,
orders still on their way, open repair requests, and her consent per purpose with its
evidence (where it was given, the words she was shown, when), all read from the maison's
book and Salon's records; nothing guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.advisors.repairs import RepairBook, RepairRequest
from salon.clock import require_aware
from salon.integrations.crm import ClientRecord, Purchase
from salon.integrations.schema import advisors, appointments, consents, orders

__all__ = ["ClientFile", "ConsentEntry", "read_client_file"]

DONE_ORDERS: Final = frozenset({"delivered", "cancelled", "returned", "collected"})
RECENT_PURCHASES: Final = 5


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    """A purpose's latest decision and its evidence."""

    purpose: str
    granted: bool
    source: str
    recorded_at: datetime
    text_shown: str


@dataclass(frozen=True, slots=True)
class ClientFile:
    """One client as the console shows her."""

    record: ClientRecord
    advisor_name: str | None
    purchases: tuple[Purchase, ...]
    appointments: tuple[dict[str, Any], ...]
    orders: tuple[dict[str, Any], ...]
    repairs: tuple[RepairRequest, ...]
    consents: tuple[ConsentEntry, ...]
    sizes: dict[str, str] = field(default_factory=dict)
    preferences: dict[str, Any] = field(default_factory=dict)


async def read_client_file(engine: AsyncEngine, record: ClientRecord, *, now: datetime,
                           repairs: RepairBook | None = None) -> ClientFile:
    """``record``'s file as of ``now`` (upcoming means from ``now`` on)."""
    require_aware(now)
    async with engine.connect() as conn:
        advisor_row = None
        if record.advisor is not None:
            advisor_row = (await conn.execute(
                select(advisors.c.first_name, advisors.c.last_name).where(advisors.c.id == record.advisor.id))).first()
        booked = (await conn.execute(
            select(appointments.c.id, appointments.c.starts_at, appointments.c.boutique_id,
                   appointments.c.status, appointments.c.service)
            .where(appointments.c.client_id == record.id, appointments.c.starts_at >= now,
                   appointments.c.status == "booked")
            .order_by(appointments.c.starts_at).limit(10))).all()
        pending = (await conn.execute(
            select(orders.c.id, orders.c.status, orders.c.eta, orders.c.carrier, orders.c.tracking_url)
            .where(orders.c.client_id == record.id, orders.c.status.not_in(DONE_ORDERS))
            .order_by(orders.c.created_at.desc()).limit(10))).all()
        decided = (await conn.execute(
            select(consents).where(consents.c.client_id == record.id)
            .order_by(consents.c.recorded_at, consents.c.id))).all()
    latest: dict[str, ConsentEntry] = {}
    for row in decided:  # append-only: the last decision per purpose counts
        latest[row.purpose] = ConsentEntry(row.purpose, bool(row.granted), row.source, row.recorded_at,
                                           row.text_shown)
    open_repairs: tuple[RepairRequest, ...] = ()
    if repairs is not None:
        open_repairs = tuple(r for r in await repairs.listing(advisor_id=None) if r.client_id == record.id)
    return ClientFile(
        record=record,
        advisor_name=f"{advisor_row.first_name} {advisor_row.last_name}" if advisor_row else None,
        purchases=tuple(sorted(record.purchases, key=lambda p: p.purchased_on, reverse=True)[:RECENT_PURCHASES]),
        appointments=tuple({"id": r.id, "starts_at": r.starts_at, "boutique_id": r.boutique_id,
                            "service": r.service} for r in booked),
        orders=tuple({"id": r.id, "status": r.status, "eta": r.eta, "carrier": r.carrier,
                      "tracking_url": r.tracking_url} for r in pending),
        repairs=open_repairs,
        consents=tuple(sorted(latest.values(), key=lambda c: c.purpose)),
        sizes=dict(record.sizes), preferences=dict(record.preferences),
    )
