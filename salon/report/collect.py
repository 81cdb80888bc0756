"""What a report reads, from the database alone: the rows of the period from the tables
the running system writes, as small values the figures are computed from.

- ``wa_outbound`` (:mod:`salon.guard.sent`): every send decided (free-form, template, nudge,
  parked, refused), with its status, error and the charge estimated when it was decided;
- ``wa_pricing`` (:mod:`salon.pricing.ledger`): Meta's price of each message whose status
  carried one, joined to its send by wamid;
- ``wa_inbox`` (:mod:`salon.webhook.inbox`): the clients' messages (their windows) and the
  echoes of what advisors wrote from the WhatsApp Business app;
- ``salon_handoffs`` (:mod:`salon.advisors.handoff`): conversations handed to a person.

A table that does not exist yet (a database older than the ledger) reads as empty, and a
column added since (the estimate columns of ``wa_outbound``) reads as NULL; the report
says which, rather than failing. Nothing personal leaves this module in the figures:
client ids are kept only to count distinct clients and to match a handoff to its client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import and_, exists, func, inspect, null, select
from sqlalchemy.engine import Engine

from salon.advisors.handoff import handoffs_table
from salon.clock import from_us, to_us
from salon.guard.sent import outbound_table
from salon.pricing.ledger import ledger_table
from salon.report.period import Period
from salon.webhook.inbox import inbox_table
from salon.whatsapp.updates import ECHO_MARK
from salon.window.rules import WINDOW

__all__ = ["ADVISOR_ACTIONS", "Handed", "Inbound", "MetaPrice", "Sent", "Traffic", "read_traffic"]

ADVISOR_ACTIONS: Final = ("advisor_reply", "advisor_template")
"""``utter_action`` of the messages an advisor sent from the console or the advisor API."""
NO_WINDOW_TYPES: Final = frozenset({"reaction", "system"})
"""Inbound types that neither open nor refresh a window (salon.whatsapp.updates)."""

_O = outbound_table.c
_L = ledger_table.c
_I = inbox_table.c
_H = handoffs_table.c
_ESTIMATES: Final = ("market", "price_category", "price_type", "cost_micros", "currency")


@dataclass(frozen=True, slots=True)
class MetaPrice:
    """Meta's pricing of one message (``wa_pricing``): billed when billable and delivered."""

    category: str
    pricing_type: str
    billable: bool
    delivered: bool
    cost_micros: int
    currency: str
    mismatch: str | None

    @property
    def billed_micros(self) -> int:
        """What Meta bills for it now: its cost once delivered, if billable."""
        return self.cost_micros if self.billable and self.delivered else 0


@dataclass(frozen=True, slots=True)
class Sent:
    """One ``wa_outbound`` row (or a message only Meta's ledger knows: ``kind`` ``meta_only``)."""

    at: datetime
    wamid: str | None
    recipient: str | None
    kind: str
    purpose: str | None
    utter_action: str | None
    status: str
    error_code: int | None
    estimate_category: str | None
    estimate_cost: int | None
    estimate_currency: str | None
    meta: MetaPrice | None

    @property
    def accepted(self) -> bool:
        """Meta took it (a wamid) and it did not fail: a message Meta may bill."""
        return self.wamid is not None and self.status not in ("failed", "parked", "refused", "error", "pending")


@dataclass(frozen=True, slots=True)
class Inbound:
    """One ``wa_inbox`` row: a client's message, or the echo of an advisor's from the app."""

    at: datetime
    client: tuple[str, str]
    """(phone number id, sender id): one client of one number."""
    type: str
    echo: bool

    @property
    def opens_window(self) -> bool:
        return not self.echo and self.type not in NO_WINDOW_TYPES


@dataclass(frozen=True, slots=True)
class Handed:
    """One ``salon_handoffs`` row: when it was made and taken, and every id of its client."""

    id: int
    created_at: datetime
    taken_at: datetime | None
    ids: frozenset[str]
    reason: str
    status: str


@dataclass(slots=True)
class Traffic:
    """Everything a report is computed from."""

    period: Period
    sent: list[Sent] = field(default_factory=list)
    """Sends decided in the period, and messages only Meta's ledger knows."""
    advisor_messages: list[Sent] = field(default_factory=list)
    """Advisors' messages from the period's start on (a handoff's first answer may come later)."""
    inbound: list[Inbound] = field(default_factory=list)
    """From a window before the start (it may still be open then) to the end, oldest first."""
    echoes_after: list[Inbound] = field(default_factory=list)
    """Echoes from the period's start on, oldest first (an advisor answering from the app)."""
    handoffs: list[Handed] = field(default_factory=list)
    earliest_inbound: datetime | None = None
    """The oldest message ``wa_inbox`` still holds (handled ones are pruned after 8 days)."""
    missing: list[str] = field(default_factory=list)
    """Tables or columns this database does not have (yet), as ``table`` or ``table.column``."""


def read_traffic(engine: Engine, period: Period, *, answered_until: datetime | None = None) -> Traffic:
    """Read the period's rows. ``answered_until``: how far to look for a handoff's first
    answer (default the period's end).
    """
    # Each statement on its own: a report takes no lock a writer would wait for (on
    # SQLite a transaction of this engine begins IMMEDIATE, holding the write lock).
    engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    names = set(inspect(engine).get_table_names())
    traffic = Traffic(period)
    for table in (outbound_table, ledger_table, inbox_table, handoffs_table):
        if table.name not in names:
            traffic.missing.append(table.name)
    outbound_columns = ({c["name"] for c in inspect(engine).get_columns(outbound_table.name)}
                        if outbound_table.name in names else set())
    traffic.missing += [f"{outbound_table.name}.{c}" for c in _ESTIMATES
                        if outbound_table.name in names and c not in outbound_columns]
    start_us, end_us = to_us(period.start, "start"), to_us(period.end, "end")
    horizon_us = to_us(answered_until or period.end, "answered_until")
    with engine.connect() as conn:
        if outbound_table.name in names:
            ledger = ledger_table.name in names
            traffic.sent = [_sent(r) for r in conn.execute(_outbound_query(
                outbound_columns, ledger, and_(_O.created_us >= start_us, _O.created_us < end_us)))]
            traffic.advisor_messages = [_sent(r) for r in conn.execute(_outbound_query(
                outbound_columns, ledger, and_(_O.created_us >= start_us, _O.created_us < horizon_us,
                                               _O.utter_action.in_(ADVISOR_ACTIONS))))]
        if ledger_table.name in names:
            traffic.sent += [_meta_only(r) for r in conn.execute(_ledger_only_query(
                outbound_table.name in names, start_us, end_us))]
        traffic.sent.sort(key=lambda s: s.at)
        if inbox_table.name in names:
            since_us = to_us(period.start - WINDOW, "start")
            rows = conn.execute(
                select(_I.phone_number_id, _I.sender_id, _I.sent_us, _I.metadata)
                .where(_I.sent_us >= since_us, _I.sent_us < max(end_us, horizon_us)).order_by(_I.sent_us))
            for row in rows:
                item = _inbound(row)
                if row.sent_us < end_us:
                    traffic.inbound.append(item)
                if item.echo and row.sent_us >= start_us:
                    traffic.echoes_after.append(item)
            traffic.earliest_inbound = from_us(conn.execute(select(func.min(_I.sent_us))).scalar())
        if handoffs_table.name in names:
            traffic.handoffs = [_handed(r) for r in conn.execute(
                select(handoffs_table).where(_H.created_at >= period.start, _H.created_at < period.end)
                .order_by(_H.created_at, _H.id))]
    return traffic


def _outbound_query(present: set[str], ledger: bool, where: Any) -> Any:
    estimates = [(_O[c] if c in present else null()).label(c) for c in _ESTIMATES]
    prices: Sequence[Any] = (
        [_L.category.label("meta_category"), _L.pricing_type.label("meta_type"), _L.billable, _L.delivered,
         _L.cost_micros.label("meta_cost"), _L.currency.label("meta_currency"), _L.mismatch]
        if ledger else [null().label(n) for n in ("meta_category", "meta_type", "billable", "delivered",
                                                  "meta_cost", "meta_currency", "mismatch")])
    source = outbound_table.outerjoin(ledger_table, _L.wamid == _O.wamid) if ledger else outbound_table
    return (select(_O.created_us, _O.wamid, _O.recipient, _O.kind, _O.purpose, _O.utter_action, _O.status,
                   _O.error_code, *estimates, *prices)
            .select_from(source).where(where, _O.kind != "status_only").order_by(_O.created_us, _O.id))


def _ledger_only_query(outbound: bool, start_us: int, end_us: int) -> Any:
    query = select(ledger_table).where(_L.first_us >= start_us, _L.first_us < end_us)
    if outbound:
        # Sent by Salon: counted with its send. Otherwise only Meta knows it (a status
        # whose send was never recorded here).
        query = query.where(~exists().where(_O.wamid == _L.wamid, _O.kind != "status_only"))
    return query.order_by(_L.first_us)


def _price(m: Mapping[str, Any]) -> MetaPrice | None:
    if m["meta_category"] is None:
        return None
    return MetaPrice(category=m["meta_category"], pricing_type=m["meta_type"], billable=bool(m["billable"]),
                     delivered=bool(m["delivered"]), cost_micros=int(m["meta_cost"] or 0),
                     currency=m["meta_currency"], mismatch=m["mismatch"])


def _sent(row: Any) -> Sent:
    m = row._mapping
    at = from_us(m["created_us"])
    assert at is not None
    return Sent(at=at, wamid=m["wamid"], recipient=m["recipient"], kind=m["kind"], purpose=m["purpose"],
                utter_action=m["utter_action"], status=m["status"], error_code=m["error_code"],
                estimate_category=m["price_category"],
                estimate_cost=int(m["cost_micros"]) if m["cost_micros"] is not None else None,
                estimate_currency=m["currency"], meta=_price(m))


def _meta_only(row: Any) -> Sent:
    m = row._mapping
    at = from_us(m["first_us"])
    assert at is not None
    price = MetaPrice(category=m["category"], pricing_type=m["pricing_type"], billable=bool(m["billable"]),
                      delivered=bool(m["delivered"]), cost_micros=int(m["cost_micros"] or 0),
                      currency=m["currency"], mismatch=m["mismatch"])
    return Sent(at=at, wamid=m["wamid"], recipient=m["recipient"], kind="meta_only", purpose=None,
                utter_action=None, status="delivered" if price.delivered else "sent", error_code=None,
                estimate_category=None, estimate_cost=None, estimate_currency=None, meta=price)


def _inbound(row: Any) -> Inbound:
    meta = row.metadata if isinstance(row.metadata, Mapping) else {}
    at = from_us(row.sent_us)
    assert at is not None
    return Inbound(at=at, client=(row.phone_number_id, row.sender_id), type=str(meta.get("type") or "text"),
                   echo=bool(meta.get(ECHO_MARK)))


def _handed(row: Any) -> Handed:
    m = row._mapping
    ids = frozenset(i for i in (m["conversation_id"], m["wa_id"], m["user_id"]) if i)
    return Handed(id=m["id"], created_at=m["created_at"], taken_at=m["taken_at"], ids=ids,
                  reason=m["reason"], status=m["status"])
