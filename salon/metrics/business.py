"""The business metrics: what Salon did and what it costs, read from the database.

One process reads them (``SALON_METRICS_BUSINESS``, the Rasa server by default), at scrape
time, at most every ``ttl`` seconds (10 by default): scrapes in between are answered from
the last read, and scrapes that arrive together share one read. The reads are done in the
event loop before the exposition (:meth:`BusinessMetrics.refresh`), each statement its own
transaction (no lock is held between them, none is taken for writing on SQLite); the
exposition only copies what they left. A read slower than ``timeout`` is left to finish
in the background and the scrape is answered with the previous figures. A read that fails
drops the families it could not read and sets ``salon_business_metrics_up`` to 0 (the
reason is logged, by exception type and family).

What each family counts (names and labels in :mod:`salon.metrics.catalog`):

- **messages**: ``wa_inbox`` (the client's messages by WhatsApp type and inbox state; an
  advisor's messages from the phone as ``echo``) and ``wa_outbound`` (by kind, Meta's
  billing category as the guard estimated it, latest status), by the time Meta stamped
  the message or Salon recorded the send;
- **windows**: ``salon_sessions`` as the send-time guard reads it (24 h after the client's
  last message, closed early by a 131047 after it). Not read when the sessions live in
  Redis;
- **decisions and fallback**: ``wa_outbound`` rows as the guard wrote them: free-form,
  template, parked (the content waits behind a nudge), refused. The fallback ratio is
  templates and parks per decided send;
- **131047**: outbound rows whose error is 131047;
- **nudges**: a nudge is answered when the client (any of her ids the session store
  links) wrote within 24 h after it;
- **containment**: a client-day is a client who wrote on a UTC day; it is contained when
  no handoff was opened for her that day;
- **handoff wait**: from the handoff to the advisor taking it (``taken_at``), and to the
  first message an advisor sent her (through the console or the API, or from the phone);
- **cost**: the guard's estimate on the rows that left (``wa_outbound``: not parked,
  refused or failed) and what Meta bills (``wa_pricing``: billable and delivered), in the
  rate card's currency, by category, market, purpose (the outbound record's) and client
  tier (``maison_clients``, by number or BSUID; ``unknown`` for someone not in the book);
- **LLM**: ``llm_audit`` rows by mode and verdict;
- **outbound queue**: ``outbound_requests`` still queued, due now or later, and how long
  the oldest due one has waited.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from prometheus_client.metrics_core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import and_, case, func, inspect, literal, not_, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from salon.advisors.audit import advisor_audit_table
from salon.advisors.handoff import handoffs_table
from salon.clock import Clock, from_us, to_us
from salon.guard.sent import STATUS_RANK, outbound_table
from salon.integrations.schema import TIERS
from salon.integrations.schema import clients as clients_table
from salon.llm.audit import audit_table
from salon.metrics.access import MetricsConfigError
from salon.metrics.catalog import HANDOFF_BUCKETS, INBOX_WINDOWS, RECORD_WINDOWS, family
from salon.outbound.queue import QUEUED, requests_table
from salon.pricing.card import BILLING_CATEGORIES, RateCardError
from salon.pricing.charge import PRICING_TYPES, default_card
from salon.pricing.ledger import REFERRAL_CONVERSION, ledger_table, mismatch_reason
from salon.purposes import PURPOSES, SERVICE_REPLY
from salon.webhook.inbox import inbox_table
from salon.whatsapp.updates import ECHO_MARK
from salon.window.sql_store import aliases_table, sessions_table
from salon.window.state import DAY_US

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TTL", "ENV_TTL", "BusinessMetrics", "ttl_from_env", "window_span"]

DEFAULT_TTL: Final = 10.0
ENV_TTL: Final = "SALON_METRICS_BUSINESS_TTL"
DEFAULT_TIMEOUT: Final = 5.0
CLOSING_SOON: Final = timedelta(hours=2)
NUDGE_PERIOD: Final = timedelta(days=7)
CONTAINMENT_DAYS: Final = 7
HANDOFF_PERIOD: Final = timedelta(days=7)
ERROR_131047: Final = 131047

_SPANS: Final = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
                 "30d": timedelta(days=30)}

INBOUND_TYPES: Final = frozenset({
    "text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive",
    "button", "reaction", "order", "system", "unsupported", "request_welcome", "call", "unknown"})
OUTBOUND_KINDS: Final = frozenset({"free_form", "template", "nudge", "status_only"})
INBOX_STATES: Final = frozenset({"pending", "done", "failed", "abandoned", "skipped"})
STATUSES: Final = frozenset(STATUS_RANK)
PRICE_CATEGORIES: Final = frozenset((*BILLING_CATEGORIES, REFERRAL_CONVERSION))
PRICE_TYPES: Final = frozenset(PRICING_TYPES)
MESSAGE_PURPOSES: Final = frozenset(PURPOSES | {SERVICE_REPLY})
CLIENT_TIERS: Final = frozenset(TIERS)
LLM_MODES: Final = frozenset({"llm", "offline", "handoff", "nothing_fits", "vague"})
LLM_VERDICTS: Final = frozenset({"pass", "repaired", "replaced", "unavailable", "timeout", "offline",
                                 "no_consent", "injection", "handoff", "nothing_fits", "vague"})
NOT_BILLED_STATUSES: Final = ("parked", "refused", "failed", "error")
"""Outbound rows that never reach the client, so never appear on Meta's bill."""
ADVISOR_SENT: Final = ("free_form", "template", "parked")
"""An advisor's reply that left (or waits behind the nudge): the advisor answered."""
_MARKET_CODE: Final = re.compile(r"^[A-Z]{2,8}$")
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")

_O = outbound_table.c
_I = inbox_table.c
_P = ledger_table.c
_H = handoffs_table.c


def ttl_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``SALON_METRICS_BUSINESS_TTL``: seconds between two reads of the database (10 by
    default; raise it when a read grows long on a large history). A malformed value stops
    the process at start with the variable's name.
    """
    raw = (environ if environ is not None else os.environ).get(ENV_TTL, "").strip()
    if not raw:
        return DEFAULT_TTL
    try:
        ttl = float(raw)
    except ValueError:
        ttl = -1.0
    if not 0 < ttl <= 3600:
        raise MetricsConfigError(f"{ENV_TTL} must be a number of seconds between 0 and 3600, got {raw!r}")
    return ttl


def window_span(window: str) -> timedelta:
    """The length of a ``window`` label (``1h``, ``24h``, ``7d``, ``30d``)."""
    return _SPANS[window]


def _bounded(value: Any, allowed: Collection[str], *, none: str = "none", other: str = "other") -> str:
    if value is None or value == "":
        return none
    text = str(value)
    return text if text in allowed else other


def _bounded_or_none(value: Any, allowed: Collection[str]) -> str | None:
    return None if value is None else _bounded(value, allowed)


def _not_echo(column: Any) -> ColumnElement[Any]:
    """An inbox row that is the client's own message (an echo is an advisor's from the phone)."""
    return column[ECHO_MARK].as_boolean().isnot(True)


def _sums(column: Any, now_us: int, windows: Sequence[str], value: Any = 1, *, prefix: str = "w") -> list[Any]:
    """One ``SUM`` per window (labelled ``<prefix>_<window>``): ``value`` for rows whose
    ``column`` falls inside it.
    """
    return [func.coalesce(func.sum(case((column >= now_us - _us(window_span(w)), value), else_=0)), 0)
            .label(f"{prefix}_{w}") for w in windows]


def _us(span: timedelta) -> int:
    return int(span / timedelta(microseconds=1))


class _Gauges:
    """Values of one gauge family, summed per label set (several raw values may fall into
    one bounded label value).
    """

    def __init__(self, name: str) -> None:
        self.entry = family(name)
        self.values: dict[tuple[str, ...], float] = defaultdict(float)

    def add(self, labels: Sequence[str], value: float) -> None:
        self.values[tuple(labels)] += value

    def add_windows(self, labels: Sequence[str], row: Row[Any], windows: Sequence[str], scale: float = 1.0, *,
                    prefix: str = "w") -> None:
        for window in windows:
            key = (window, *labels)
            self.values[key] += float(getattr(row, f"{prefix}_{window}") or 0) * scale

    def family(self) -> GaugeMetricFamily:
        out = GaugeMetricFamily(self.entry.name, self.entry.help, labels=self.entry.labels)
        for labels, value in sorted(self.values.items()):
            out.add_metric(list(labels), value)
        return out


@dataclass(frozen=True, slots=True)
class _Read:
    """A snapshot of the database: the families it produced, and whether every read
    succeeded.
    """

    families: tuple[Metric, ...]
    complete: bool
    seconds: float


class BusinessMetrics(Collector):
    """The business families over ``engine``'s tables, as of ``clock.now()``.

    ``windows``: read the customer service windows from ``salon_sessions`` (False when the
    session store is Redis). ``markets``: the market codes of the rate card (by default
    the card's, ``SALON_PRICING_DIR`` or ``data/pricing``).
    """

    def __init__(self, engine: AsyncEngine, clock: Clock, *, ttl: float | None = None,
                 timeout: float = DEFAULT_TIMEOUT, windows: bool = True,
                 markets: Collection[str] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.clock = clock
        self.ttl = ttl if ttl is not None else ttl_from_env()
        self.timeout = timeout
        self.windows = windows
        self._markets = frozenset(markets) if markets is not None else _card_markets()
        self._monotonic = monotonic
        self._snapshot: _Read | None = None
        self._read_at: float | None = None
        self._reading: asyncio.Future[None] | None = None
        self._failed: set[str] = set()

    # ------------------------------------------------------------------ scrape
    async def refresh(self) -> None:
        """Read the database again when the last read is older than ``ttl`` (one read at a
        time; a scrape waits for it at most ``timeout`` seconds).
        """
        if self._read_at is not None and self._monotonic() - self._read_at < self.ttl:
            return
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        try:
            await asyncio.wait_for(asyncio.shield(self._reading), self.timeout)
        except asyncio.TimeoutError:
            logger.warning("business metrics: the database read takes over %.0f s; the last figures are served",
                           self.timeout)

    async def _read(self) -> None:
        started = time.perf_counter()
        try:
            families, complete = await self.read(self.clock.now())
        except Exception as exc:  # the database unreachable: said by the up gauge, not by a failed scrape
            logger.warning("business metrics: the database cannot be read (%s)", type(exc).__name__)
            families, complete = [], False
        self._snapshot = _Read(tuple(families), complete, time.perf_counter() - started)
        self._read_at = self._monotonic()

    def collect(self) -> Iterable[Metric]:
        snapshot = self._snapshot
        up = family("salon_business_metrics_up")
        yield GaugeMetricFamily(up.name, up.help, value=1 if snapshot is not None and snapshot.complete else 0)
        if snapshot is None:
            return
        took = family("salon_business_metrics_refresh_seconds")
        yield GaugeMetricFamily(took.name, took.help, value=snapshot.seconds)
        yield from snapshot.families

    # ------------------------------------------------------------------ reads
    async def read(self, now: datetime) -> tuple[list[Metric], bool]:
        """Every family that can be read now, and whether all of them could."""
        families: list[Metric] = []
        complete = True
        async with self.engine.connect() as conn:
            try:
                tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            except SQLAlchemyError as exc:
                logger.warning("business metrics: the database cannot be read (%s)", type(exc).__name__)
                return [], False
            readers: list[tuple[str, Callable[[], Any]]] = [
                ("messages", lambda: self._messages(conn, tables, now)),
                ("windows", lambda: self._windows(conn, tables, now)),
                ("nudges", lambda: self._nudges(conn, tables, now)),
                ("containment", lambda: self._containment(conn, tables, now)),
                ("handoffs", lambda: self._handoffs(conn, tables, now)),
                ("pricing", lambda: self._pricing(conn, tables, now)),
                ("llm", lambda: self._llm(conn, tables, now)),
                ("queue", lambda: self._queue(conn, tables, now)),
            ]
            for name, reader in readers:
                try:
                    families.extend(await reader())
                except SQLAlchemyError as exc:
                    complete = False
                    if name not in self._failed:
                        logger.warning("business metrics: %s not read (%s)", name, type(exc).__name__)
                    self._failed.add(name)
                else:
                    self._failed.discard(name)
        return families, complete

    async def _messages(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        """Messages both ways; and, from the same pass over the outbound record, the
        guard's decisions, the 131047s and the estimated cost.
        """
        now_us = to_us(now)
        gauges = _Gauges("salon_messages")
        out: list[Metric] = []
        if inbox_table.name in tables:
            # Grouped over a subquery: PostgreSQL does not match an expression with bound
            # parameters in GROUP BY to the same expression in SELECT.
            rows_in = select(_I.metadata[ECHO_MARK].as_boolean().label("echo"),
                             _I.metadata["type"].as_string().label("kind"), _I.state, _I.sent_us
                             ).where(_I.sent_us >= now_us - _us(window_span(INBOX_WINDOWS[-1]))).subquery()
            c = rows_in.c
            rows = (await conn.execute(
                select(c.echo, c.kind, c.state, *_sums(c.sent_us, now_us, INBOX_WINDOWS))
                .group_by(c.echo, c.kind, c.state))).all()
            for row in rows:
                direction = "echo" if row.echo else "inbound"
                gauges.add_windows((direction, _bounded(row.kind, INBOUND_TYPES), "none",
                                    _bounded(row.state, INBOX_STATES)), row, INBOX_WINDOWS)
        if outbound_table.name in tables:
            out.extend(await self._sends(conn, tables, now_us, gauges))
        if inbox_table.name in tables or outbound_table.name in tables:
            out.insert(0, gauges.family())
        return out

    async def _sends(self, conn: AsyncConnection, tables: set[str], now_us: int, messages: _Gauges) -> list[Metric]:
        """One pass over 30 days of ``wa_outbound``: the outbound messages (into
        ``messages``), the decisions and fallback ratio, the 131047s, the estimated cost.
        """
        tier, joined = self._tier_of(outbound_table, _O.recipient, tables)
        labels = [_O.kind, _O.status, _O.price_category, _O.market, _O.purpose, _O.currency, tier.label("tier")]
        sent_cost = case((_O.status.notin_(NOT_BILLED_STATUSES), func.coalesce(_O.cost_micros, 0)), else_=0)
        rows = (await conn.execute(
            select(*labels, *_sums(_O.created_us, now_us, RECORD_WINDOWS),
                   *_sums(_O.created_us, now_us, RECORD_WINDOWS, case((_O.error_code == ERROR_131047, 1), else_=0),
                          prefix="e"),
                   *_sums(_O.created_us, now_us, RECORD_WINDOWS, sent_cost, prefix="c"))
            .select_from(joined)
            .where(_O.created_us >= now_us - _us(window_span(RECORD_WINDOWS[-1])))
            .group_by(*labels))).all()
        decisions = _Gauges("salon_send_decisions")
        hits = _Gauges("salon_error_131047")
        estimated = _Gauges("salon_whatsapp_estimated_cost")
        for window in RECORD_WINDOWS:
            hits.add((window,), 0.0)
            for decision in ("free_form", "template", "park", "refused"):
                decisions.add((window, decision), 0.0)
        for row in rows:
            messages.add_windows(("outbound", _bounded(row.kind, OUTBOUND_KINDS),
                                  _bounded(row.price_category, PRICE_CATEGORIES), _bounded(row.status, STATUSES)),
                                 row, INBOX_WINDOWS)
            hits.add_windows((), row, RECORD_WINDOWS, prefix="e")
            if row.kind in ("free_form", "template"):
                decision = {"refused": "refused", "parked": "park"}.get(row.status, row.kind)
                decisions.add_windows((decision,), row, RECORD_WINDOWS)
            if row.price_category is not None and row.status not in NOT_BILLED_STATUSES:
                estimated.add_windows(self._cost_labels(row.price_category, row.market, row.purpose, row.tier,
                                                        row.currency), row, RECORD_WINDOWS, 1e-6, prefix="c")
        ratio = _Gauges("salon_fallback_ratio")
        for window in RECORD_WINDOWS:
            fallback = decisions.values[(window, "template")] + decisions.values[(window, "park")]
            decided = fallback + decisions.values[(window, "free_form")]
            if decided:
                ratio.add((window,), fallback / decided)
        return [decisions.family(), ratio.family(), hits.family(), estimated.family()]

    async def _windows(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        if not self.windows or sessions_table.name not in tables:
            return []
        s = sessions_table.c
        now_us = to_us(now)
        closes = s.last_inbound_us + DAY_US
        failed = and_(s.window_closed_us.isnot(None), s.window_closed_us >= s.last_inbound_us)
        is_open = and_(s.last_inbound_us.isnot(None), closes > now_us, not_(failed))
        closing = and_(is_open, closes <= now_us + _us(CLOSING_SOON))
        row = (await conn.execute(select(
            func.count().label("total"),
            func.coalesce(func.sum(case((and_(is_open, not_(closing)), 1), else_=0)), 0).label("open"),
            func.coalesce(func.sum(case((closing, 1), else_=0)), 0).label("closing"),
        ))).one()
        gauges = _Gauges("salon_windows")
        gauges.add(("open",), float(row.open))
        gauges.add(("closing",), float(row.closing))
        gauges.add(("closed",), float(row.total - row.open - row.closing))
        return [gauges.family()]

    async def _nudges(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        if outbound_table.name not in tables or inbox_table.name not in tables:
            return []
        now_us = to_us(now)
        nudged = and_(_O.kind == "nudge", _O.created_us >= now_us - _us(NUDGE_PERIOD),
                      _O.status.notin_(NOT_BILLED_STATUSES), _O.recipient.isnot(None))
        nudges = (await conn.execute(select(_O.phone_number_id, _O.recipient, _O.created_us).where(nudged))).all()
        # Each nudged client's ids: she may answer from her BSUID a nudge sent to her number.
        ids: dict[tuple[str, str], set[str]] = {(n.phone_number_id, n.recipient): {n.recipient} for n in nudges}
        if nudges and aliases_table.name in tables:
            known = aliases_table.alias("known")
            linked = aliases_table.alias("linked")
            pairs = (await conn.execute(
                select(_O.phone_number_id, _O.recipient, linked.c.alias).distinct()
                .select_from(outbound_table
                             .join(known, and_(known.c.phone_number_id == _O.phone_number_id,
                                               or_(known.c.alias == literal("w:") + _O.recipient,
                                                   known.c.alias == literal("u:") + _O.recipient)))
                             .join(linked, and_(linked.c.phone_number_id == known.c.phone_number_id,
                                                linked.c.client_key == known.c.client_key)))
                .where(nudged))).all()
            for pair in pairs:
                ids[(pair.phone_number_id, pair.recipient)].add(pair.alias[2:])
        # The clients' messages since the first nudge (a week at most), read in one pass.
        written: dict[tuple[str, str], list[int]] = defaultdict(list)
        if nudges:
            since = min(int(n.created_us) for n in nudges)
            for row in (await conn.execute(
                    select(_I.phone_number_id, _I.sender_id, _I.sent_us)
                    .where(_I.sent_us > since, _not_echo(_I.metadata)))).all():
                written[(row.phone_number_id, row.sender_id)].append(int(row.sent_us))
        outcomes = _Gauges("salon_nudges")
        for outcome in ("replied", "waiting", "unanswered"):
            outcomes.add((outcome,), 0.0)
        matured = answered = 0
        for nudge in nudges:
            created = int(nudge.created_us)
            replied = any(created < at <= created + DAY_US
                          for who in ids[(nudge.phone_number_id, nudge.recipient)]
                          for at in written.get((nudge.phone_number_id, who), ()))
            old_enough = now_us - created >= DAY_US
            if replied:
                outcomes.add(("replied",), 1.0)
            else:
                outcomes.add(("unanswered" if old_enough else "waiting",), 1.0)
            if old_enough:
                matured += 1
                answered += 1 if replied else 0
        out: list[Metric] = [outcomes.family()]
        if matured:
            ratio = _Gauges("salon_nudge_conversion_ratio")
            ratio.add((), answered / matured)
            out.append(ratio.family())
        return out

    async def _containment(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        if inbox_table.name not in tables or handoffs_table.name not in tables:
            return []
        today = to_us(now) // DAY_US
        first_day = today - (CONTAINMENT_DAYS - 1)
        written = select(_I.sender_id, (_I.sent_us / DAY_US).label("day"),
                         _I.metadata["wa_id"].as_string().label("wa_id"),
                         _I.metadata["user_id"].as_string().label("user_id")
                         ).where(_I.sent_us >= first_day * DAY_US, _not_echo(_I.metadata)).subquery()
        c = written.c
        rows = (await conn.execute(
            select(c.sender_id, c.day, func.max(c.wa_id).label("wa_id"), func.max(c.user_id).label("user_id"))
            .group_by(c.sender_id, c.day))).all()
        handed: set[tuple[str, int]] = set()
        for h in (await conn.execute(
                select(_H.conversation_id, _H.wa_id, _H.user_id, _H.created_at)
                .where(_H.created_at >= from_us(first_day * DAY_US)))).all():
            handoff_day = to_us(h.created_at) // DAY_US
            handed.update((who, handoff_day) for who in (h.conversation_id, h.wa_id, h.user_id) if who)
        days = _Gauges("salon_client_days")
        days.add(("assistant",), 0.0)
        days.add(("advisor",), 0.0)
        for row in rows:
            ids = {who for who in (row.sender_id, row.wa_id, row.user_id) if who}
            person = any((who, int(row.day)) in handed for who in ids)
            days.add(("advisor" if person else "assistant",), 1.0)
        out: list[Metric] = [days.family()]
        total = days.values[("assistant",)] + days.values[("advisor",)]
        if total:
            ratio = _Gauges("salon_containment_ratio")
            ratio.add((), days.values[("assistant",)] / total)
            out.append(ratio.family())
        return out

    async def _handoffs(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        if handoffs_table.name not in tables:
            return []
        since = now - HANDOFF_PERIOD
        handoffs = (await conn.execute(
            select(_H.conversation_id, _H.phone_number_id, _H.wa_id, _H.user_id, _H.status, _H.created_at,
                   _H.taken_at)
            .where(or_(_H.created_at >= since, _H.status == "open")))).all()
        replies = await self._advisor_messages(conn, tables, handoffs)
        waits: dict[str, list[float]] = {"taken": [], "first_reply": []}
        waiting: list[datetime] = []
        for h in handoffs:
            ids = {who for who in (h.conversation_id, h.wa_id, h.user_id) if who}
            first = min((at for who in ids for at in replies.get(who, ()) if at >= h.created_at), default=None)
            if h.created_at >= since:
                if h.taken_at is not None:
                    waits["taken"].append(max((h.taken_at - h.created_at).total_seconds(), 0.0))
                if first is not None:
                    waits["first_reply"].append(max((first - h.created_at).total_seconds(), 0.0))
            if h.status == "open" and h.taken_at is None and first is None:
                waiting.append(h.created_at)
        entry = family("salon_handoff_wait_seconds")
        histogram = GaugeHistogramMetricFamily(entry.name, entry.help, labels=entry.labels)
        for until, values in waits.items():
            buckets = [(floatToGoString(bound), float(sum(1 for v in values if v <= bound))) for bound in HANDOFF_BUCKETS]
            buckets.append(("+Inf", float(len(values))))
            histogram.add_metric([until], buckets, float(sum(values)))
        count = _Gauges("salon_handoffs_waiting")
        count.add((), float(len(waiting)))
        oldest = _Gauges("salon_handoff_oldest_wait_seconds")
        oldest.add((), max((now - min(waiting)).total_seconds(), 0.0) if waiting else 0.0)
        return [histogram, count.family(), oldest.family()]

    async def _advisor_messages(self, conn: AsyncConnection, tables: set[str],
                                handoffs: Sequence[Row[Any]]) -> dict[str, list[datetime]]:
        """When an advisor wrote to each of these handoffs' clients (by any of her ids):
        replies through the console or the API, and messages from the phone.
        """
        if not handoffs:
            return {}
        ids = sorted({who for h in handoffs for who in (h.conversation_id, h.wa_id, h.user_id) if who})
        earliest = min(h.created_at for h in handoffs)
        out: dict[str, list[datetime]] = defaultdict(list)
        if advisor_audit_table.name in tables:
            a = advisor_audit_table.c
            for row in (await conn.execute(
                    select(a.conversation_id, a.at, a.detail)
                    .where(a.action == "reply", a.at >= earliest, a.conversation_id.in_(ids)))).all():
                detail = row.detail if isinstance(row.detail, Mapping) else {}
                if detail.get("sent") in ADVISOR_SENT:
                    out[row.conversation_id].append(row.at)
        if inbox_table.name in tables:
            numbers = sorted({h.phone_number_id for h in handoffs if h.phone_number_id})
            echo = _I.metadata[ECHO_MARK].as_boolean()
            query = select(_I.sender_id, _I.sent_us).where(
                _I.sender_id.in_(ids), _I.sent_us >= to_us(earliest), echo.is_(True))
            if numbers:
                query = query.where(_I.phone_number_id.in_(numbers))
            for row in (await conn.execute(query)).all():
                at = from_us(row.sent_us)
                if at is not None:
                    out[row.sender_id].append(at)
        return out

    async def _pricing(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        """One pass over 30 days of ``wa_pricing`` (with the outbound record's purpose and
        estimate, and the client's tier): the billed cost, the priced messages, the
        mismatches with the estimate.
        """
        if ledger_table.name not in tables:
            return []
        now_us = to_us(now)
        has_outbound = outbound_table.name in tables
        tier, joined = self._tier_of(ledger_table, _P.recipient, tables)
        labels: list[Any] = [_P.category, _P.pricing_type, _P.billable, _P.delivered, _P.market, _P.currency,
                             tier.label("tier")]
        if has_outbound:
            joined = joined.outerjoin(outbound_table, _O.wamid == _P.wamid)
            labels += [_O.purpose, _O.price_category, _O.price_type]
        rows = (await conn.execute(
            select(*labels, *_sums(_P.first_us, now_us, RECORD_WINDOWS),
                   *_sums(_P.first_us, now_us, RECORD_WINDOWS, _P.cost_micros, prefix="c"))
            .select_from(joined)
            .where(_P.first_us >= now_us - _us(window_span(RECORD_WINDOWS[-1])))
            .group_by(*labels))).all()
        billed = _Gauges("salon_whatsapp_billed_cost")
        priced = _Gauges("salon_whatsapp_priced_messages")
        mismatches = _Gauges("salon_whatsapp_pricing_mismatches")
        for row in rows:
            category, pricing_type = _bounded(row.category, PRICE_CATEGORIES), _bounded(row.pricing_type, PRICE_TYPES)
            purpose = row.purpose if has_outbound else None
            priced.add_windows((category, pricing_type, "true" if row.delivered else "false"), row, RECORD_WINDOWS)
            if row.billable and row.delivered:
                billed.add_windows(self._cost_labels(row.category, row.market, purpose, row.tier, row.currency),
                                   row, RECORD_WINDOWS, 1e-6, prefix="c")
            if has_outbound and row.price_type is not None:
                # Compared now, as the ledger does: a status that overtook its send record counts too.
                reason = mismatch_reason(_bounded_or_none(row.price_category, PRICE_CATEGORIES),
                                         _bounded_or_none(row.price_type, PRICE_TYPES), category, pricing_type)
                if reason is not None:
                    mismatches.add_windows((reason,), row, RECORD_WINDOWS)
        out: list[Metric] = [billed.family(), priced.family()]
        if has_outbound:
            out.append(mismatches.family())
        return out

    async def _llm(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        if audit_table.name not in tables:
            return []
        a = audit_table.c
        sums = [func.coalesce(func.sum(case((a.at >= now - window_span(w), 1), else_=0)), 0).label(f"w_{w}")
                for w in RECORD_WINDOWS]
        rows = (await conn.execute(
            select(a.mode, a.verdict, *sums).where(a.at >= now - window_span(RECORD_WINDOWS[-1]))
            .group_by(a.mode, a.verdict))).all()
        turns = _Gauges("salon_llm_turns")
        for row in rows:
            turns.add_windows((_bounded(row.mode, LLM_MODES), _bounded(row.verdict, LLM_VERDICTS)), row,
                              RECORD_WINDOWS)
        return [turns.family()]

    async def _queue(self, conn: AsyncConnection, tables: set[str], now: datetime) -> list[Metric]:
        if requests_table.name not in tables:
            return []
        r = requests_table.c
        now_us = to_us(now)
        row = (await conn.execute(select(
            func.coalesce(func.sum(case((r.due_us <= now_us, 1), else_=0)), 0).label("due"),
            func.coalesce(func.sum(case((r.due_us > now_us, 1), else_=0)), 0).label("later"),
            func.min(case((r.due_us <= now_us, r.due_us), else_=None)).label("oldest"),
        ).where(r.state == QUEUED))).one()
        queued = _Gauges("salon_outbound_queued")
        queued.add(("now",), float(row.due))
        queued.add(("later",), float(row.later))
        age = _Gauges("salon_outbound_oldest_due_age_seconds")
        age.add((), max((now_us - int(row.oldest)) / 1e6, 0.0) if row.oldest is not None else 0.0)
        return [queued.family(), age.family()]

    # ------------------------------------------------------------------ labels
    def _tier_of(self, table: Any, recipient: Any, tables: set[str]) -> tuple[Any, Any]:
        """The client tier of ``recipient`` (her number or BSUID in the client book), and
        ``table`` joined with the book for it.
        """
        if clients_table.name not in tables:
            return literal(None), table
        by_number = clients_table.alias("by_number")
        by_bsuid = clients_table.alias("by_bsuid")
        joined = (table.outerjoin(by_number, by_number.c.wa_id == recipient)
                  .outerjoin(by_bsuid, by_bsuid.c.user_id == recipient))
        return func.coalesce(by_number.c.tier, by_bsuid.c.tier), joined

    def _cost_labels(self, category: Any, market: Any, purpose: Any, tier: Any, currency: Any) -> tuple[str, ...]:
        market_label = str(market) if market in self._markets or (
            not self._markets and isinstance(market, str) and _MARKET_CODE.match(market)) else (
            "none" if market is None else "other")
        currency_label = str(currency) if isinstance(currency, str) and _CURRENCY.match(currency) else "none"
        return (_bounded(category, PRICE_CATEGORIES), market_label, _bounded(purpose, MESSAGE_PURPOSES),
                _bounded(tier, CLIENT_TIERS, none="unknown"), currency_label)


def _card_markets() -> frozenset[str]:
    """The rate card's market codes; none (any code-shaped value) when the card cannot load."""
    try:
        return frozenset(default_card().markets)
    except (RateCardError, OSError) as exc:
        logger.warning("business metrics: the rate card cannot be read (%s); market labels are not checked", exc)
        return frozenset()
