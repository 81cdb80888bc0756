"""Campaign budgets: what a campaign may spend, what its sends have reserved so far, and
its pause when the next message would go past the budget.

Since 2026-10-01 Meta bills every message it delivers (``../shared/reference/whatsapp-2026.md``
§2), so a campaign of a few thousand invitations is a line on the invoice that an operator
wants to bound before it starts. A campaign posted through the API (or the CLI) is a row of
``outbound_campaigns``: its budget in micros of the rate card's currency (or none), what its
sends have reserved (``spent_micros``), and its state, ``running`` or ``paused`` with the
reason.

Right before a worker sends a request of a campaign with a budget, it asks the guard what
the message would cost now (:meth:`~salon.guard.sender.GuardedSender.quote`) and
*reserves* that amount with one conditional UPDATE: ``spent + cost <= budget AND state =
'running'`` (the reservations of sends made at the same moment share one transaction, each
still its own conditional UPDATE). Several
workers, in several processes, race on that one row and the database serialises them:
together they never reserve more than the budget. When the reservation does not fit, the
same transaction pauses the campaign (the reason gives the figures) and the request goes
back in the queue untouched; the queue's claim skips the requests of a paused campaign
until :meth:`Budgets.resume` (optionally with a larger budget) lets them go on.

Each request's reservation is kept in ``outbound_campaign_charges``, so a request sent
again (a retry, or a claim after its worker died) reserves only the difference, and after
the send the reservation is corrected to what the guard recorded: a message parked without
a nudge, refused or failed costs nothing; a send whose answer never came (in doubt) keeps
its reservation, since it may have left. A campaign without a budget reserves nothing
before its sends (no quote is needed) and counts what the guard recorded after them. A
budget given to it later by :meth:`Budgets.resume` holds from the next reservation; the
messages already on their way are counted when they are corrected, and a correction that
takes a campaign past its budget pauses it.

Unlike the quotes, what Meta bills is known only from the status webhooks
(:mod:`salon.pricing.ledger`); ``spent_micros`` is the maison's estimate, made with the rate
card in force at each send.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from salon.clock import from_us, to_us
from salon.pricing.charge import Charge, format_money
from salon.storage.db import SqlTables

logger = logging.getLogger(__name__)

__all__ = [
    "PAUSED",
    "Ask",
    "RUNNING",
    "BudgetError",
    "Budgets",
    "Campaign",
    "Reservation",
    "campaigns_table",
    "charges_table",
    "money",
    "parse_amount",
    "parse_budget",
]

RUNNING: Final = "running"
PAUSED: Final = "paused"
MICROS: Final = Decimal(1_000_000)
MAX_BUDGET_MICROS: Final = 10**15
"""A billion in any currency: far above any campaign, well inside a BigInteger."""
_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?$")

metadata = MetaData()

campaigns_table = Table(
    "outbound_campaigns",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("budget_micros", BigInteger),  # NULL: no budget (spend is still counted)
    Column("currency", String(3), nullable=False),
    Column("spent_micros", BigInteger, nullable=False, server_default=text("0")),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

charges_table = Table(
    "outbound_campaign_charges",
    metadata,
    Column("request_id", String(32), primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("reserved_micros", BigInteger, nullable=False),
    # 0: reserved before a send (in flight, or in doubt); 1: corrected after it
    Column("settled", Integer, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index("ix_outbound_campaign_charges_campaign", "campaign_id"),
)

_C = campaigns_table.c
_Q = charges_table.c


class BudgetError(ValueError):
    """A budget that cannot be used; ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def parse_amount(raw: Any, where: str) -> int:
    """A decimal string (``"250.00"``, at most 6 decimals; never a float) → micros."""
    if not isinstance(raw, str) or not _AMOUNT.match(raw.strip()):
        raise BudgetError([f"{where}: a decimal string such as \"250.00\""])
    try:
        micros = Decimal(raw.strip()) * MICROS
    except InvalidOperation:
        raise BudgetError([f"{where}: {raw!r} is not a decimal amount"]) from None
    if micros <= 0 or micros > MAX_BUDGET_MICROS:
        raise BudgetError([f"{where}: more than zero and at most {MAX_BUDGET_MICROS // 1_000_000}"])
    return int(micros)


def parse_budget(raw: Any, currency: str) -> int:
    """``{"amount": "250.00", "currency": "USD"}`` → micros; the currency must be the
    rate card's (estimates are in it, and nothing here converts).
    """
    if not isinstance(raw, Mapping) or set(raw) - {"amount", "currency"}:
        raise BudgetError(["budget: {\"amount\": \"250.00\", \"currency\": \"" + currency + "\"}"])
    given = raw.get("currency")
    problems: list[str] = []
    if given != currency:
        problems.append(f"budget.currency: the rate card's currency, {currency}")
    try:
        micros = parse_amount(raw.get("amount"), "budget.amount")
    except BudgetError as invalid:
        problems.extend(invalid.problems)
        micros = 0
    if problems:
        raise BudgetError(problems)
    return micros


def money(micros: int | None, currency: str) -> dict[str, Any] | None:
    """An amount as the API shows it: exact micros, the decimal string and the text."""
    if micros is None:
        return None
    return {"micros": micros, "amount": str(Decimal(micros) / MICROS), "currency": currency,
            "text": format_money(micros, currency)}


@dataclass(frozen=True, slots=True)
class Campaign:
    """One row of ``outbound_campaigns``."""

    campaign_id: str
    budget_micros: int | None
    currency: str
    spent_micros: int
    state: str
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def remaining_micros(self) -> int | None:
        return None if self.budget_micros is None else max(self.budget_micros - self.spent_micros, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id, "state": self.state, "reason": self.reason,
            "budget": money(self.budget_micros, self.currency),
            "spent": money(self.spent_micros, self.currency),
            "remaining": money(self.remaining_micros, self.currency),
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Ask:
    """One send's reservation to make: its campaign, request, attempt and charge."""

    campaign_id: str
    request_id: str
    attempt: int
    charge: Charge | None


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer to :meth:`Budgets.reserve_many`."""

    allowed: bool
    """The message may go (False: its campaign is paused, now or by this reservation)."""
    tracked: bool = True
    """The campaign has a row (False: nothing is counted for it)."""
    reason: str | None = None
    """Why it may not go: the campaign's pause reason."""


def _campaign(row: Any) -> Campaign:
    m = row._mapping
    return Campaign(
        campaign_id=m["campaign_id"], budget_micros=m["budget_micros"], currency=m["currency"],
        spent_micros=int(m["spent_micros"]), state=m["state"], reason=m["reason"],
        created_at=from_us(m["created_us"]),  # type: ignore[arg-type]
        updated_at=from_us(m["updated_us"]),  # type: ignore[arg-type]
    )


class Budgets(SqlTables):
    """Campaign rows, reservations and pauses (see the module docstring)."""

    metadata = metadata

    # ------------------------------------------------------------------ campaigns
    async def register(self, conn: AsyncConnection, campaign_id: str, currency: str, now: datetime,
                       budget_micros: int | None = None) -> None:
        """Create the campaign's row on ``conn`` (inside the transaction that stores its
        requests); a campaign posted again keeps its first row (its budget changes only
        through :meth:`resume`).
        """
        now_us = to_us(now, "now")
        await conn.execute(
            self._insert(campaigns_table).on_conflict_do_nothing(index_elements=["campaign_id"]),
            {"campaign_id": campaign_id, "budget_micros": budget_micros, "currency": currency,
             "spent_micros": 0, "state": RUNNING, "reason": None, "created_us": now_us, "updated_us": now_us})

    async def get(self, campaign_id: str) -> Campaign | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(campaigns_table).where(_C.campaign_id == campaign_id))).first()
        return _campaign(row) if row is not None else None

    async def resume(self, campaign_id: str, now: datetime, *, budget_micros: int | None = None) -> Campaign | None:
        """Let a paused campaign go on (its queued requests are claimed again), with a new
        budget when given; None for an unknown campaign. A budget below what is already
        spent is refused (:class:`BudgetError`): the campaign would pause at once.
        """
        values: dict[str, Any] = {"state": RUNNING, "reason": None, "updated_us": to_us(now, "now")}
        condition = _C.campaign_id == campaign_id
        if budget_micros is not None:
            values["budget_micros"] = budget_micros
            condition = and_(condition, _C.spent_micros <= budget_micros)
        async with self.engine.begin() as conn:
            moved = (await conn.execute(update(campaigns_table).where(condition).values(**values))).rowcount == 1
            row = (await conn.execute(select(campaigns_table).where(_C.campaign_id == campaign_id))).first()
        if row is None:
            return None
        found = _campaign(row)
        if not moved:
            raise BudgetError([f"budget: {format_money(budget_micros or 0, found.currency)} is less than "
                               f"the {format_money(found.spent_micros, found.currency)} already spent"])
        logger.info("campaign %s resumed (budget %s)", campaign_id,
                    format_money(found.budget_micros, found.currency) if found.budget_micros is not None
                    else "none")
        return found

    async def pause(self, campaign_id: str, now: datetime, reason: str) -> bool:
        """Pause a running campaign by hand; True when it was running."""
        async with self.engine.begin() as conn:
            return (await conn.execute(
                update(campaigns_table).where(_C.campaign_id == campaign_id, _C.state == RUNNING)
                .values(state=PAUSED, reason=reason, updated_us=to_us(now, "now")))).rowcount == 1

    async def get_many(self, campaign_ids: Sequence[str]) -> list[Campaign | None]:
        """Several campaigns in one query, in the order asked (None: no such campaign)."""
        wanted = sorted(set(campaign_ids))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(campaigns_table).where(_C.campaign_id.in_(wanted)))).all()
        found = {row.campaign_id: _campaign(row) for row in rows}
        return [found.get(campaign_id) for campaign_id in campaign_ids]

    # ------------------------------------------------------------------ reservations
    async def reserve(self, campaign_id: str, request_id: str, attempt: int, charge: Charge | None,
                      now: datetime) -> Reservation:
        """Reserve what one send of ``request_id`` will cost (see :meth:`reserve_many`)."""
        return (await self.reserve_many([Ask(campaign_id, request_id, attempt, charge)], now))[0]

    async def reserve_many(self, asks: Sequence[Ask], now: datetime) -> list[Reservation]:
        """Reserve what each send will cost (``charge``; None: nothing leaves, free), in
        one transaction and in order within each campaign. Each reservation is its own
        conditional UPDATE of the campaign's row (``spent + cost <= budget AND state =
        'running'``), so however many workers reserve at once, together they never go
        past the budget. The first that does not fit pauses the campaign, in the same
        transaction; a paused campaign reserves nothing. A request that holds a
        reservation already (an earlier attempt) reserves only the difference.
        """
        if not asks:
            return []
        now_us = to_us(now, "now")
        # Campaign rows in one order in every transaction: no two wait on each other.
        order = sorted(range(len(asks)), key=lambda i: (asks[i].campaign_id, i))
        answers: dict[int, Reservation] = {}
        paused: list[tuple[str, str]] = []
        async with self.engine.begin() as conn:
            pick = select(_Q.request_id, _Q.reserved_micros).where(
                _Q.request_id.in_(sorted({a.request_id for a in asks}))).order_by(_Q.request_id)
            if self._dialect == "postgresql":
                pick = pick.with_for_update()
            held = {row.request_id: int(row.reserved_micros) for row in (await conn.execute(pick)).all()}
            for index in order:
                ask = asks[index]
                cost = ask.charge.cost_micros if ask.charge is not None else 0
                delta = cost - held.get(ask.request_id, 0)
                fits = or_(_C.budget_micros.is_(None), _C.spent_micros + delta <= _C.budget_micros)
                moved = (await conn.execute(
                    update(campaigns_table)
                    .where(_C.campaign_id == ask.campaign_id, _C.state == RUNNING, fits)
                    .values(spent_micros=_C.spent_micros + delta, updated_us=now_us))).rowcount == 1
                if moved:
                    held[ask.request_id] = cost
                    await conn.execute(
                        self._insert(charges_table)
                        .values(request_id=ask.request_id, campaign_id=ask.campaign_id, attempt=ask.attempt,
                                reserved_micros=cost, settled=0, updated_us=now_us)
                        .on_conflict_do_update(index_elements=["request_id"],
                                               set_={"attempt": ask.attempt, "reserved_micros": cost,
                                                     "settled": 0, "updated_us": now_us}))
                    answers[index] = Reservation(True)
                    continue
                row = (await conn.execute(
                    select(campaigns_table).where(_C.campaign_id == ask.campaign_id))).first()
                if row is None:
                    answers[index] = Reservation(True, tracked=False)
                    continue
                found = _campaign(row)
                if found.state != RUNNING:
                    answers[index] = Reservation(False, reason=found.reason or "paused")
                    continue
                reason = _over_budget(found, cost, ask.charge)
                await conn.execute(
                    update(campaigns_table).where(_C.campaign_id == ask.campaign_id, _C.state == RUNNING)
                    .values(state=PAUSED, reason=reason, updated_us=now_us))
                paused.append((ask.campaign_id, reason))
                answers[index] = Reservation(False, reason=reason)
        for campaign_id, reason in paused:
            logger.warning("campaign %s paused: %s", campaign_id, reason)
        return [answers[index] for index in range(len(asks))]

    async def settle(self, request_id: str, attempt: int, actual_micros: int, now: datetime) -> int | None:
        """Correct one reservation (see :meth:`settle_many`); returns the correction
        (None: nothing was reserved for that attempt).
        """
        return (await self.settle_many([(request_id, attempt, actual_micros)], now))[0]

    async def settle_many(self, actuals: Sequence[tuple[str, int, int]], now: datetime) -> list[int | None]:
        """Correct each reservation to what the guard recorded for the send
        (``(request_id, attempt, micros)``), in one transaction; returns each correction
        (None: nothing reserved for that attempt: none at all, or a later attempt's has
        replaced it). A correction that takes a campaign past its budget (the guard chose
        a dearer route than the quote, a moment later) pauses it.
        """
        if not actuals:
            return []
        now_us = to_us(now, "now")
        ids = sorted({request_id for request_id, _, _ in actuals})
        corrections: list[int | None] = []
        async with self.engine.begin() as conn:
            pick = select(_Q.request_id, _Q.attempt, _Q.campaign_id, _Q.reserved_micros).where(
                _Q.request_id.in_(ids)).order_by(_Q.request_id)
            if self._dialect == "postgresql":
                pick = pick.with_for_update()
            held = {row.request_id: (row.attempt, row.campaign_id, int(row.reserved_micros))
                    for row in (await conn.execute(pick)).all()}
            deltas: dict[str, int] = {}
            for request_id, attempt, actual in actuals:
                found = held.get(request_id)
                if found is None or found[0] != attempt:
                    corrections.append(None)
                    continue
                _, campaign_id, reserved = found
                held[request_id] = (attempt, campaign_id, actual)
                corrections.append(actual - reserved)
                deltas[campaign_id] = deltas.get(campaign_id, 0) + actual - reserved
                await conn.execute(update(charges_table).where(_Q.request_id == request_id)
                                   .values(reserved_micros=actual, settled=1, updated_us=now_us))
            # Campaign rows in one order in every transaction: no two wait on each other.
            for campaign_id in sorted(deltas):
                if deltas[campaign_id]:
                    await conn.execute(update(campaigns_table).where(_C.campaign_id == campaign_id)
                                       .values(spent_micros=_C.spent_micros + deltas[campaign_id],
                                               updated_us=now_us))
                if deltas[campaign_id] > 0:
                    await self._pause_if_over(conn, campaign_id, now_us)
        return corrections

    async def _pause_if_over(self, conn: AsyncConnection, campaign_id: str, now_us: int) -> None:
        over = (await conn.execute(select(campaigns_table).where(
            _C.campaign_id == campaign_id, _C.state == RUNNING, _C.budget_micros.is_not(None),
            _C.spent_micros > _C.budget_micros))).first()
        if over is None:
            return
        found = _campaign(over)
        reason = (f"budget {format_money(found.budget_micros or 0, found.currency)} "
                  f"exceeded: {format_money(found.spent_micros, found.currency)} spent")
        await conn.execute(update(campaigns_table).where(_C.campaign_id == campaign_id, _C.state == RUNNING)
                           .values(state=PAUSED, reason=reason, updated_us=now_us))
        logger.warning("campaign %s paused: %s", campaign_id, reason)


def _over_budget(found: Campaign, cost: int, charge: Charge | None) -> str:
    """The pause reason, with the figures."""
    currency = found.currency
    what = f" ({charge.market} {charge.category})" if charge is not None else ""
    return (f"budget {format_money(found.budget_micros or 0, currency)} reached: "
            f"{format_money(found.spent_micros, currency)} spent, the next message{what} would cost "
            f"{format_money(cost, currency)}")
