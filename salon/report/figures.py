"""The report's figures, computed from the rows of :mod:`salon.report.collect` (pure: no
I/O, no clock). Each figure says how it is counted, since an operator acts on it.

- **Messages and cost per day, by billing category.** A message is a send Meta accepted (it
  has a wamid) and that did not fail. Its cost is Meta's word where a status carried its
  ``pricing`` (``wa_pricing``: billed once delivered, when billable), else the estimate the
  guard kept when it decided the send (``wa_outbound``). Its category is Meta's, else the
  estimate's; a send recorded before estimates existed is ``unpriced``. Messages only Meta's
  ledger knows (their send was never recorded here) are counted with Meta's price.
- **Windows.** A client's window is open for 24 h after each message she writes (not a
  reaction, not a system notice, not an advisor's echo). Counted on the hour: clients
  whose window is open at that instant; per day: clients whose window was open at some
  moment of the day, and the most at once.
- **Fallback and 131047.** Every send decided is one of: free-form, template, parked (its
  nudge is counted beside it), refused. The guard sends a template or parks only when the
  window has closed (or is about to): the *fallback rate* is templates and parks among the
  sends decided (refusals set aside). The *131047 rate* is free-form sends Meta refused
  because the window had closed, among the free-form sends tried (the goal is none: each
  one is re-decided as a template or a park, and counted there too).
- **Containment.** Client-days: a client who wrote on a day. Contained: no handoff to a
  person was opened for her that day.
- **Handoff wait.** From a handoff's creation to the first sign of a person: taken in the
  console, or an advisor's first message to her (console, advisor API or, seen as an echo,
  the WhatsApp Business app), whichever came first.
- **Purposes by cost.** The purpose each message carried (nudges carry the re-engagement
  purpose), by what it cost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from salon.report.collect import Handed, Inbound, Sent, Traffic
from salon.report.period import Period
from salon.window.rules import WINDOW

__all__ = [
    "CATEGORIES",
    "WAIT_BUCKETS",
    "ContainmentDay",
    "CostDay",
    "FallbackDay",
    "Figures",
    "HandoffWaits",
    "PurposeCost",
    "Totals",
    "WindowDay",
    "compute",
]

UNPRICED: Final = "unpriced"
CATEGORIES: Final = ("marketing", "utility", "authentication", "authentication_international", "service",
                     "referral_conversion", UNPRICED)
"""Billing categories in the order they are stacked (Meta's, then what has no price)."""
WINDOW_CLOSED_CODES: Final = frozenset({131047, 470})
"""Meta's "re-engagement message" errors: the window had closed (470 is the legacy code)."""
WAIT_BUCKETS: Final[tuple[tuple[timedelta | None, str], ...]] = (
    (timedelta(minutes=5), "under 5 min"),
    (timedelta(minutes=15), "5–15 min"),
    (timedelta(hours=1), "15–60 min"),
    (timedelta(hours=4), "1–4 h"),
    (timedelta(hours=24), "4–24 h"),
    (None, "over a day"),
)
TOP_PURPOSES: Final = 10
NO_PURPOSE: Final = "(no purpose)"
META_ONLY: Final = "(not sent by Salon)"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class CostDay:
    """One day's messages and cost, by category (cost in micros of the report's currency)."""

    day: date
    messages: Mapping[str, int]
    cost: Mapping[str, int]
    meta_priced: int
    """Messages costed at Meta's price."""
    estimated: int
    """Messages costed at the guard's estimate (Meta's pricing has not arrived)."""

    @property
    def total_messages(self) -> int:
        return sum(self.messages.values())

    @property
    def total_cost(self) -> int:
        return sum(self.cost.values())


@dataclass(frozen=True, slots=True)
class WindowDay:
    """One day of windows."""

    day: date
    clients: int
    """Clients whose window was open at some moment of the day."""
    peak: int
    """The most windows open at once (on the hour)."""
    wrote: int
    """Clients who wrote that day (a message that opens a window)."""


@dataclass(frozen=True, slots=True)
class FallbackDay:
    """One day's sends decided, by what became of them."""

    day: date
    free_form: int
    templates: int
    parked: int
    nudges: int
    refused: int
    window_closed_failures: int
    """Free-form sends Meta refused with 131047 (the window had closed)."""

    @property
    def decided(self) -> int:
        """Sends decided, refusals set aside."""
        return self.free_form + self.templates + self.parked

    @property
    def fallback_rate(self) -> float | None:
        return _rate(self.templates + self.parked, self.decided)

    @property
    def failure_rate(self) -> float | None:
        return _rate(self.window_closed_failures, self.free_form)


@dataclass(frozen=True, slots=True)
class ContainmentDay:
    """One day's client-days, and those handed to a person."""

    day: date
    client_days: int
    handed: int

    @property
    def contained(self) -> int:
        return self.client_days - self.handed

    @property
    def rate(self) -> float | None:
        return _rate(self.contained, self.client_days)


@dataclass(frozen=True, slots=True)
class HandoffWaits:
    """How long handoffs of the period waited for a person."""

    waits: tuple[timedelta, ...]
    """One per answered handoff, in creation order."""
    unanswered: int
    by: Mapping[str, int]
    """How each was first answered: taken, an advisor's message, a message from the app."""

    @property
    def handoffs(self) -> int:
        return len(self.waits) + self.unanswered

    @property
    def median(self) -> timedelta | None:
        if not self.waits:
            return None
        ordered = sorted(self.waits)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    @property
    def p90(self) -> timedelta | None:
        if not self.waits:
            return None
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, max(0, -(-9 * len(ordered) // 10) - 1))]

    @property
    def longest(self) -> timedelta | None:
        return max(self.waits) if self.waits else None

    def buckets(self) -> list[tuple[str, int]]:
        """Answered handoffs per wait bucket (:data:`WAIT_BUCKETS`), then the unanswered."""
        counts = Counter(_bucket(w) for w in self.waits)
        return [(label, counts[label]) for _, label in WAIT_BUCKETS] + [("not answered", self.unanswered)]


def _bucket(wait: timedelta) -> str:
    for bound, label in WAIT_BUCKETS:
        if bound is None or wait < bound:
            return label
    raise AssertionError("the last bucket has no bound")


@dataclass(frozen=True, slots=True)
class PurposeCost:
    """One purpose: its messages and what they cost (micros of the report's currency)."""

    purpose: str
    messages: int
    cost: int


@dataclass(frozen=True, slots=True)
class Totals:
    """The period's figures in one line each (costs in micros of the report's currency)."""

    messages: int
    cost: int
    meta_priced: int
    estimated: int
    unpriced: int
    mismatches: int
    """Messages Meta priced otherwise than the estimate (category or type)."""
    decided: int
    templates: int
    parked: int
    nudges: int
    refused: int
    free_form: int
    window_closed_failures: int
    client_days: int
    contained: int
    handoffs: int
    answered: int
    inbound: int
    """Client messages that opened or refreshed a window."""
    clients: int
    """Distinct clients who wrote."""

    @property
    def fallbacks(self) -> int:
        """Sends that became a template or were parked."""
        return self.templates + self.parked

    @property
    def fallback_rate(self) -> float | None:
        return _rate(self.fallbacks, self.decided)

    @property
    def failure_rate(self) -> float | None:
        return _rate(self.window_closed_failures, self.free_form)

    @property
    def containment(self) -> float | None:
        return _rate(self.contained, self.client_days)


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything the report shows."""

    period: Period
    currency: str | None
    cost_days: tuple[CostDay, ...]
    window_hours: tuple[tuple[datetime, int], ...]
    window_days: tuple[WindowDay, ...]
    fallback_days: tuple[FallbackDay, ...]
    containment_days: tuple[ContainmentDay, ...]
    waits: HandoffWaits
    purposes: tuple[PurposeCost, ...]
    totals: Totals
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """Nothing happened in the period: no send, no client message, no handoff."""
        t = self.totals
        return not (t.messages or t.decided or t.refused or t.inbound or t.handoffs)

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories that occur in the period, in stacking order."""
        seen = {c for d in self.cost_days for c, n in d.messages.items() if n}
        return tuple(c for c in CATEGORIES if c in seen) + tuple(sorted(seen - set(CATEGORIES)))


def compute(traffic: Traffic, *, currency: str | None = None) -> Figures:
    """The figures of ``traffic``. ``currency``: the rate card's, used when no row names one."""
    period = traffic.period
    days = period.days()
    chosen = _currency(traffic.sent) or currency
    notes = _notes(traffic, chosen)
    messages = [s for s in traffic.sent if s.accepted]
    cost_days, stray = _cost_days(messages, days, period, chosen)
    if stray:
        notes.append(f"{stray} message(s) priced in another currency than {chosen} are counted but not costed.")
    opening = [i for i in traffic.inbound if i.opens_window]
    window_hours, window_days = _windows(opening, period, days)
    fallback_days = _fallbacks(traffic.sent, days, period)
    containment_days = _containment(opening, traffic.handoffs, days, period)
    waits = _waits(traffic.handoffs, traffic.advisor_messages, traffic.echoes_after)
    purposes = _purposes(messages, chosen)
    in_period = [i for i in opening if period.contains(i.at)]
    totals = Totals(
        messages=sum(d.total_messages for d in cost_days), cost=sum(d.total_cost for d in cost_days),
        meta_priced=sum(d.meta_priced for d in cost_days), estimated=sum(d.estimated for d in cost_days),
        unpriced=sum(d.messages.get(UNPRICED, 0) for d in cost_days),
        mismatches=sum(1 for s in messages if s.meta is not None and s.meta.mismatch),
        decided=sum(d.decided for d in fallback_days),
        templates=sum(d.templates for d in fallback_days), parked=sum(d.parked for d in fallback_days),
        nudges=sum(d.nudges for d in fallback_days), refused=sum(d.refused for d in fallback_days),
        free_form=sum(d.free_form for d in fallback_days),
        window_closed_failures=sum(d.window_closed_failures for d in fallback_days),
        client_days=sum(d.client_days for d in containment_days),
        contained=sum(d.contained for d in containment_days),
        handoffs=waits.handoffs, answered=len(waits.waits),
        inbound=len(in_period), clients=len({i.client for i in in_period}),
    )
    figures = Figures(period=period, currency=chosen, cost_days=tuple(cost_days), window_hours=window_hours,
                      window_days=window_days, fallback_days=fallback_days,
                      containment_days=containment_days, waits=waits, purposes=purposes, totals=totals,
                      notes=tuple(notes))
    return figures


def _currency(sent: Iterable[Sent]) -> str | None:
    """The currency most of the period's prices are in."""
    counts = Counter(c for s in sent for c in (s.meta.currency if s.meta else s.estimate_currency,) if c)
    return counts.most_common(1)[0][0] if counts else None


def _notes(traffic: Traffic, currency: str | None) -> list[str]:
    notes: list[str] = []
    absent = [m for m in traffic.missing if "." not in m]
    if absent:
        notes.append("This database has no " + ", ".join(absent) + " table yet: what it would hold is "
                     "counted as nothing.")
    columns = [m for m in traffic.missing if "." in m]
    if columns:
        notes.append("wa_outbound has no estimate columns yet: sends are counted, their cost comes "
                     "from Meta's pricing alone.")
    earliest = traffic.earliest_inbound
    # Sends long before the oldest client message: her messages were there, and are gone.
    pruned = earliest is not None and earliest > traffic.period.start and any(
        s.at < earliest - WINDOW for s in traffic.sent)
    if pruned and earliest is not None:
        notes.append(f"wa_inbox holds client messages from {earliest.astimezone(traffic.period.zone):%d %b %Y %H:%M} "
                     "on (handled messages are pruned after 8 days): windows and containment before "
                     "then are not known.")
    if currency is None:
        notes.append("No price and no rate card in reach: costs are not shown.")
    return notes


def _cost_days(messages: Sequence[Sent], days: Sequence[date], period: Period,
               currency: str | None) -> tuple[list[CostDay], int]:
    counts: dict[date, Counter[str]] = defaultdict(Counter)
    costs: dict[date, Counter[str]] = defaultdict(Counter)
    meta: Counter[date] = Counter()
    estimated: Counter[date] = Counter()
    stray = 0
    for s in messages:
        day = period.day_of(s.at)
        money: str | None
        if s.meta is not None:
            category, amount, money = s.meta.category, s.meta.billed_micros, s.meta.currency
            meta[day] += 1
        else:
            category = s.estimate_category or UNPRICED
            amount, money = s.estimate_cost or 0, s.estimate_currency
            if s.estimate_category is not None:
                estimated[day] += 1
        counts[day][category] += 1
        if money is not None and money != currency:
            stray += 1
            continue
        costs[day][category] += amount
    out = [CostDay(day=d, messages=dict(counts[d]), cost=dict(costs[d]), meta_priced=meta[d],
                   estimated=estimated[d]) for d in days]
    return out, stray


def _intervals(opening: Sequence[Inbound]) -> dict[tuple[str, str], list[tuple[datetime, datetime]]]:
    """Each client's open windows, merged: ``[message, message + 24 h)``."""
    out: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for item in opening:  # oldest first
        spans = out[item.client]
        end = item.at + WINDOW
        if spans and item.at <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((item.at, end))
    return out


def _windows(opening: Sequence[Inbound], period: Period, days: Sequence[date],
             ) -> tuple[tuple[tuple[datetime, int], ...], tuple[WindowDay, ...]]:
    spans = _intervals(opening)
    events = sorted([(s, 1) for v in spans.values() for s, _ in v] + [(e, -1) for v in spans.values() for _, e in v])
    hours: list[tuple[datetime, int]] = []
    open_now, i = 0, 0
    for hour in period.hours():
        while i < len(events) and events[i][0] <= hour:
            open_now += events[i][1]
            i += 1
        hours.append((hour, open_now))
    per_day: dict[date, set[tuple[str, str]]] = defaultdict(set)
    for client, ranges in spans.items():
        for start, end in ranges:
            start, end = max(start, period.start), min(end, period.end)
            if start >= end:
                continue
            day = period.day_of(start)
            last = period.day_of(end - timedelta(microseconds=1))
            while day <= last:
                per_day[day].add(client)
                day += timedelta(days=1)
    peaks: dict[date, int] = defaultdict(int)
    for hour, count in hours:
        day = period.day_of(hour)
        peaks[day] = max(peaks[day], count)
    wrote: dict[date, set[tuple[str, str]]] = defaultdict(set)
    for item in opening:
        if period.contains(item.at):
            wrote[period.day_of(item.at)].add(item.client)
    return tuple(hours), tuple(WindowDay(d, len(per_day[d]), peaks[d], len(wrote[d])) for d in days)


def _fallbacks(sent: Sequence[Sent], days: Sequence[date], period: Period) -> tuple[FallbackDay, ...]:
    tally: dict[date, Counter[str]] = defaultdict(Counter)
    for s in sent:
        if s.kind == "meta_only":
            continue
        day = tally[period.day_of(s.at)]
        if s.kind == "nudge":
            day["nudges"] += 1
        elif s.status == "parked":
            day["parked"] += 1
        elif s.status == "refused":
            day["refused"] += 1
        elif s.kind == "template":
            day["templates"] += 1
        elif s.kind == "free_form":
            day["free_form"] += 1
            if s.error_code in WINDOW_CLOSED_CODES:
                day["closed"] += 1
    return tuple(FallbackDay(day=d, free_form=t["free_form"], templates=t["templates"], parked=t["parked"],
                             nudges=t["nudges"], refused=t["refused"], window_closed_failures=t["closed"])
                 for d in days for t in (tally[d],))


def _containment(opening: Sequence[Inbound], handoffs: Sequence[Handed], days: Sequence[date],
                 period: Period) -> tuple[ContainmentDay, ...]:
    wrote: dict[date, set[str]] = defaultdict(set)
    for item in opening:
        if period.contains(item.at):
            wrote[period.day_of(item.at)].add(item.client[1])
    handed: dict[date, set[str]] = defaultdict(set)
    for h in handoffs:
        handed[period.day_of(h.created_at)].update(h.ids)
    return tuple(ContainmentDay(d, len(wrote[d]), len(wrote[d] & handed[d])) for d in days)


def _waits(handoffs: Sequence[Handed], advisor_messages: Sequence[Sent],
           echoes: Sequence[Inbound]) -> HandoffWaits:
    said: dict[str, list[datetime]] = defaultdict(list)
    for s in advisor_messages:
        if s.recipient:
            said[s.recipient].append(s.at)
    from_app: dict[str, list[datetime]] = defaultdict(list)
    for e in echoes:
        from_app[e.client[1]].append(e.at)
    waits: list[timedelta] = []
    by: Counter[str] = Counter()
    unanswered = 0
    for h in handoffs:
        signs: list[tuple[datetime, str]] = []
        if h.taken_at is not None and h.taken_at >= h.created_at:
            signs.append((h.taken_at, "taken in the console"))
        for ident in h.ids:
            signs += [(at, "an advisor's message") for at in said.get(ident, ()) if at >= h.created_at]
            signs += [(at, "a message from the Business app") for at in from_app.get(ident, ()) if at >= h.created_at]
        if not signs:
            unanswered += 1
            continue
        first, how = min(signs)
        waits.append(first - h.created_at)
        by[how] += 1
    return HandoffWaits(waits=tuple(waits), unanswered=unanswered, by=dict(by))


def _purposes(messages: Sequence[Sent], currency: str | None) -> tuple[PurposeCost, ...]:
    count: Counter[str] = Counter()
    cost: Counter[str] = Counter()
    for s in messages:
        name = META_ONLY if s.kind == "meta_only" else (s.purpose or NO_PURPOSE)
        count[name] += 1
        amount, money = ((s.meta.billed_micros, s.meta.currency) if s.meta is not None
                         else (s.estimate_cost or 0, s.estimate_currency))
        if money is None or money == currency:
            cost[name] += amount
    ranked = sorted(count, key=lambda p: (-cost[p], -count[p], p))[:TOP_PURPOSES]
    return tuple(PurposeCost(p, count[p], cost[p]) for p in ranked)
