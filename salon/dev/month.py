"""A month of WhatsApp traffic, made up but shaped like a boutique's, written through the
tables the running system writes: for the report's tests, its pictures in the docs, and
for trying the report and the console's report page on a laptop.

What the month holds (``seed_month``, fixed by its random seed and its ``now``):

- clients of the three boutiques' markets (France, the United Kingdom, Italy, a few in
  Germany, Switzerland and the United States, two username-only), each writing on some
  days, more in the evening and less at the weekend; a session is one to four messages,
  sometimes a reaction, a few of them started from a Click-to-WhatsApp ad (a free entry
  point). Each message gets one to three replies from the assistant, unless the
  conversation is with a person (``wa_inbox``, ``wa_outbound``);
- handoffs to a person on about one client-day in ten, taken in the console within
  minutes in the boutique's hours and the next morning otherwise, some answered through
  the advisor API or from the WhatsApp Business app (an echo in ``wa_inbox``), a few not
  yet; an advisor's reply after her window closed is parked behind one nudge, and the
  parked words leave when she taps it (``salon_handoffs``, ``wa_outbound``);
- what the maison starts: reminders, order news, restock and aftercare notes (free-form
  inside an open window, a utility template outside; a few refused for want of an opt-in),
  two marketing campaigns, and a few free-form sends Meta refused with 131047 because the
  window closed as they left, each followed by its template;
- statuses (mostly read, a few failed) and, for each message whose status came back,
  Meta's pricing in ``wa_pricing``; a few utility templates Meta billed as marketing; one
  afternoon of lost webhooks, whose messages keep only their estimate;
- every estimate computed by :func:`salon.pricing.charge.charge_for` on the rate card, as
  the guard does.

``python -m salon.dev.month --out DIR`` seeds a fresh SQLite file and writes the month's
report into ``DIR`` (``--docs`` also copies its cost picture to ``docs/images``).
"""

from __future__ import annotations

import argparse
import bisect
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from salon.advisors.handoff import handoffs_table
from salon.advisors.handoff import metadata as handoff_metadata
from salon.clock import require_aware, to_us
from salon.guard.sent import STATUS_RANK, outbound_table, outbound_values
from salon.guard.sent import metadata as outbound_metadata
from salon.pricing.card import RateCard
from salon.pricing.charge import Charge, charge_for, default_card
from salon.pricing.ledger import ledger_table, mismatch_reason
from salon.pricing.ledger import metadata as ledger_metadata
from salon.pricing.markets import market_of
from salon.purposes import NUDGE_PURPOSE, SERVICE_REPLY
from salon.storage.db import add_missing_columns_sync, make_sync_engine
from salon.templates.registry import TemplateRegistry
from salon.webhook.inbox import inbox_table
from salon.webhook.inbox import metadata as inbox_metadata
from salon.window.rules import DEFAULT_MARGIN, WINDOW, WindowState, window_state

__all__ = ["DEFAULT_SEED", "PNID", "MonthError", "MonthSummary", "main", "seed_month"]

DEFAULT_SEED: Final = 2026
PNID: Final = "100000000000001"
"""The maison's number (the emulator's, as in the Makefile)."""
PARIS: Final = ZoneInfo("Europe/Paris")
OPENS: Final = time(10, 0)
CLOSES: Final = time(19, 0)
"""The boutiques' hours, when advisors answer handoffs (Paris time)."""
ADVISORS: Final = ("sophie-marchand", "camille-roux", "james-whitfield", "giulia-ferri")

# Where the clients write from, and how many of a hundred: fictional number ranges, apart
# from the numbers of the maison's own book (data/maison/clients.yml).
COUNTRIES: Final = (
    ("FR", 46, "3360001{:04d}"),
    ("GB", 20, "447700900{:03d}"),
    ("IT", 16, "39300000{:04d}"),
    ("DE", 4, "4915100000{:03d}"),
    ("CH", 4, "4179000{:04d}"),
    ("US", 6, "1202555{:04d}"),
    ("FR.", 4, "FR.57721566490{:06d}"),
)
HOUR_WEIGHTS: Final = {8: 2, 9: 4, 10: 6, 11: 7, 12: 8, 13: 7, 14: 5, 15: 5, 16: 5, 17: 6, 18: 8, 19: 9,
                       20: 9, 21: 7, 22: 3}
CLIENT_WORDS: Final = (
    "Bonjour, le sac Aurore existe-t-il en tan ?", "Hello, could I book a fitting on Saturday?",
    "Buongiorno, a che punto è il mio ordine?", "Merci beaucoup !", "Is the Riviera coat back in 40?",
    "Pouvez-vous me rappeler l'heure de mon rendez-vous ?", "Grazie mille, a presto.",
    "I'd like to speak to my advisor, please.", "Quelle est la différence entre les deux parfums ?",
    "Could you hold it for me until Friday?",
)
BOT_ACTIONS: Final = ("utter_greet", "utter_booking_offer", "action_order_status", "action_styling_advice",
                      "utter_hold_piece", "utter_anything_else", "action_product_answer")
REASONS: Final = ("talk_to_advisor", "talk_to_advisor", "complaint", "booking_request", "bespoke", "sensitive")
RECATEGORISED: Final = frozenset({"order_shipped"})
"""Purposes whose template Meta bills as marketing from two thirds of the month on (it
recategorised the template: its wording read as a promotion)."""


class MonthError(RuntimeError):
    """The month cannot be written (it is there already, or the rate card is missing)."""


@dataclass(frozen=True, slots=True)
class MonthSummary:
    """What was written, by table, and the month's span."""

    start: datetime
    end: datetime
    inbox: int
    outbound: int
    pricing: int
    handoffs: int

    def __str__(self) -> str:
        return (f"{self.inbox} inbound, {self.outbound} outbound, {self.pricing} priced, "
                f"{self.handoffs} handoffs from {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC")


@dataclass
class _Client:
    id: str
    vic: bool
    rate: float
    marketing: bool
    opted_in: bool
    ad: bool
    language: str
    inbound: list[datetime] = field(default_factory=list)
    """Messages that open a window, in order."""
    referral_at: datetime | None = None
    first_reply_at: datetime | None = None
    open_until: datetime | None = None
    """The end of her open handoff (while it runs, the assistant is paused)."""


class _Month:
    """The rows of one month, accumulated in memory then written in one transaction."""

    def __init__(self, rng: random.Random, card: RateCard, start: datetime, end: datetime, tag: str) -> None:
        self.rng = rng
        self.card = card
        self.start = start
        self.end = end
        self.tag = tag
        self.count = 0
        self.inbox: list[dict[str, Any]] = []
        self.outbound: list[dict[str, Any]] = []
        self.pricing: list[dict[str, Any]] = []
        self.handoffs: list[dict[str, Any]] = []
        registry = TemplateRegistry.load_default()
        self.templates = {p: (t.name, t.category) for t in registry.all() for p in sorted(t.purposes)}
        day = start + timedelta(days=int((end - start).days * 0.55))
        local = day.astimezone(PARIS).replace(hour=14, minute=0, second=0, microsecond=0)
        self.outage = (local, local + timedelta(hours=6))
        """An afternoon whose status webhooks never arrived: estimates only."""
        self.recategorised_from = start + (end - start) * 2 / 3

    def wamid(self) -> str:
        self.count += 1
        return f"wamid.{self.tag}.{self.count:06d}"

    # ------------------------------------------------------------------ in
    def inbound(self, client: _Client, at: datetime, *, kind: str = "text", text: str = "") -> None:
        wamid = self.wamid()
        wa_id = None if client.id.startswith("FR.") else client.id
        meta: dict[str, Any] = {"wamid": wamid, "timestamp": int(at.timestamp()), "phone_number_id": PNID,
                                "type": kind, "wa_id": wa_id, "user_id": client.id if wa_id is None else None}
        if kind == "reaction":
            meta["reaction"] = {"message_id": None, "emoji": "\u2764\ufe0f"}
        if client.ad and client.referral_at is None and kind == "text":
            meta["referral"] = {"source_type": "ad", "source_id": "120211111111", "ctwa_clid": self.tag}
            client.referral_at = at
        self._inbox_row(wamid, client.id, at, text, meta)
        if kind != "reaction":
            bisect.insort(client.inbound, at)

    def echo(self, client: _Client, at: datetime, text: str) -> None:
        wamid = self.wamid()
        meta = {"echo": True, "wamid": wamid, "timestamp": int(at.timestamp()), "phone_number_id": PNID,
                "type": "text", "wa_id": None if client.id.startswith("FR.") else client.id,
                "user_id": client.id if client.id.startswith("FR.") else None}
        self._inbox_row(wamid, client.id, at, text, meta)

    def _inbox_row(self, wamid: str, sender: str, at: datetime, text: str, meta: dict[str, Any]) -> None:
        sent_us = to_us(at)
        self.inbox.append({"wamid": wamid, "phone_number_id": PNID, "sender_id": sender, "sent_us": sent_us,
                           "received_us": sent_us + 900_000, "text": text, "metadata": meta, "state": "done",
                           "attempts": 1, "updated_us": sent_us + 2_000_000, "error": None, "owner": None,
                           "lease_until_us": None})

    # ------------------------------------------------------------------ windows
    def window(self, client: _Client, at: datetime) -> WindowState:
        i = bisect.bisect_right(client.inbound, at)
        last = client.inbound[i - 1] if i else None
        if client.referral_at is not None and last is not None and last >= client.referral_at:
            return window_state(last, at, entry_point="ctwa_ad", referral_at=client.referral_at,
                                first_reply_at=client.first_reply_at)
        return window_state(last, at)

    # ------------------------------------------------------------------ out
    def send(self, client: _Client, at: datetime, *, purpose: str, utter_action: str | None = None,
             kind: str | None = None, template: str | None = None, category: str | None = None,
             fail: int | None = None) -> str | None:
        """One message that leaves: free-form (no ``template``) or a template; its status,
        and Meta's pricing when its status comes back. Returns its wamid.
        """
        kind = kind or ("template" if template else "free_form")
        window = self.window(client, at)
        charge = charge_for(template_category=category, window=window, market=market_of(client.id, self.card),
                            at=at, card=self.card)
        if client.referral_at is not None and client.first_reply_at is None and at >= client.referral_at:
            client.first_reply_at = at
        wamid = self.wamid()
        message: dict[str, Any] = ({"type": "template", "template": {"name": template}} if template
                                   else {"type": "text", "text": {"body": "…"}})
        if fail is not None:
            row = outbound_values(phone_number_id=PNID, recipient=client.id, kind=kind, status="failed", at=at,
                                  payload={"message": message, "params": {}}, purpose=purpose,
                                  utter_action=utter_action, template=template, charge=charge,
                                  error={"code": fail, "title": "Re-engagement message"})
            self.outbound.append(row)
            return None
        status, seen = self._fate(at)
        row = outbound_values(phone_number_id=PNID, recipient=client.id, kind=kind, status="accepted", at=at,
                              wamid=wamid, payload={"message": message, "params": {}}, purpose=purpose,
                              utter_action=utter_action, template=template, charge=charge)
        if status != "accepted":
            row.update(status=status, status_rank=STATUS_RANK[status], status_us=to_us(seen),
                       updated_us=to_us(seen))
            if status == "failed":
                row.update(error_code=131026, error={"code": 131026, "title": "Message undeliverable"})
        self.outbound.append(row)
        if status in ("sent", "delivered", "read"):
            self._priced(wamid, client, at, seen, charge, status, purpose)
        return wamid

    def _fate(self, at: datetime) -> tuple[str, datetime]:
        """The status a send reached, and when the last one came."""
        if self.outage[0] <= at < self.outage[1] or at > self.end - timedelta(minutes=2):
            return "accepted", at
        roll = self.rng.random()
        if roll < 0.006:
            return "failed", at + timedelta(seconds=3)
        if roll < 0.02:
            return "sent", at + timedelta(seconds=2)
        if roll < 0.09:
            return "delivered", at + timedelta(seconds=4)
        read = at + timedelta(minutes=self.rng.randint(1, 240))
        return ("read", read) if read < self.end else ("delivered", at + timedelta(seconds=4))

    def _priced(self, wamid: str, client: _Client, at: datetime, seen: datetime, charge: Charge, status: str,
                purpose: str) -> None:
        category, pricing_type, billable = charge.category, charge.pricing_type, charge.billable
        if pricing_type == "free_entry_point":
            category = "referral_conversion"
        elif purpose in RECATEGORISED and category == "utility" and at >= self.recategorised_from:
            category, pricing_type, billable = "marketing", "regular", True
        first = at + timedelta(seconds=2)
        cost = self.card.rate(charge.market, category, first) if billable else 0
        self.pricing.append({
            "wamid": wamid, "phone_number_id": PNID, "recipient": client.id, "market": charge.market,
            "category": category, "pricing_type": pricing_type, "billable": int(billable),
            "pricing_model": "PMP", "cost_micros": cost, "currency": self.card.currency,
            "delivered": int(status in ("delivered", "read")), "first_us": to_us(first), "updated_us": to_us(seen),
            "mismatch": mismatch_reason(charge.category, charge.pricing_type, category, pricing_type),
        })

    def park(self, client: _Client, at: datetime, *, purpose: str, utter_action: str | None) -> None:
        """The guard parks words after the window closed, and knocks with one nudge."""
        self.outbound.append(outbound_values(
            phone_number_id=PNID, recipient=client.id, kind="free_form", status="parked", at=at,
            payload={"message": {"type": "text", "text": {"body": "…"}}, "reason": "window_closed"},
            purpose=purpose, utter_action=utter_action))
        nudge_purpose = NUDGE_PURPOSE[False]
        name, category = self.templates[nudge_purpose]
        self.send(client, at + timedelta(milliseconds=400), purpose=nudge_purpose, kind="nudge", template=name,
                  category=category)

    def refuse(self, client: _Client, at: datetime, *, purpose: str, reason: str) -> None:
        self.outbound.append(outbound_values(
            phone_number_id=PNID, recipient=client.id, kind="free_form", status="refused", at=at,
            payload={"message": {}, "reason": reason}, purpose=purpose, error={"reason": reason}))


def _clients(rng: random.Random, count: int) -> list[_Client]:
    weights = [w for _, w, _ in COUNTRIES]
    used: set[str] = set()
    out: list[_Client] = []
    while len(out) < count:
        region, _, pattern = rng.choices(COUNTRIES, weights)[0]
        number = pattern.format(rng.randint(200, 999))
        if number in used:
            continue
        used.add(number)
        vic = rng.random() < 0.15
        language = {"FR": "fr", "IT": "it"}.get(region.rstrip("."), "en")
        out.append(_Client(id=number, vic=vic, rate=rng.uniform(0.18, 0.35) if vic else rng.uniform(0.04, 0.16),
                           marketing=rng.random() < 0.6, opted_in=rng.random() < 0.9,
                           ad=len(out) in (5, 17, 29), language=language))
    return out


def _local(day: datetime, hour: int, minute: int) -> datetime:
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0).astimezone(timezone.utc)


def _answered_at(rng: random.Random, created: datetime) -> datetime:
    """When an advisor takes a handoff up: minutes in the boutique's hours, else the next opening."""
    local = created.astimezone(PARIS)
    if OPENS <= local.time() < CLOSES and local.weekday() < 6:
        return created + timedelta(minutes=min(180.0, rng.lognormvariate(2.4, 0.9)))
    opening = local.replace(hour=OPENS.hour, minute=0, second=0, microsecond=0)
    if local.time() >= CLOSES:
        opening += timedelta(days=1)
    if opening.weekday() == 6:  # the boutiques are closed on Sunday
        opening += timedelta(days=1)
    return opening.astimezone(timezone.utc) + timedelta(minutes=rng.lognormvariate(2.8, 0.7))


def _session(month: _Month, client: _Client, start: datetime) -> None:
    """A client writes one to four messages; the assistant answers each, unless a person has her."""
    rng = month.rng
    at = start
    handoff_at = rng.randrange(4) if rng.random() < (0.18 if client.vic else 0.09) else None
    messages = rng.choices((1, 2, 3, 4), (35, 30, 20, 15))[0]
    for index in range(messages):
        if at >= month.end:
            return
        month.inbound(client, at, text=rng.choice(CLIENT_WORDS))
        paused = client.open_until is not None and at < client.open_until
        if not paused:
            replies = rng.choices((1, 2, 3), (70, 25, 5))[0]
            for n in range(replies):
                when = at + timedelta(seconds=2 + 2 * n)
                if when < month.end:
                    month.send(client, when, purpose=SERVICE_REPLY, utter_action=rng.choice(BOT_ACTIONS))
        if handoff_at == index and not paused:
            _handoff(month, client, at + timedelta(seconds=8))
        if rng.random() < 0.05:
            month.inbound(client, at + timedelta(seconds=40), kind="reaction")
        at += timedelta(minutes=rng.randint(1, 6), seconds=rng.randint(0, 59))


def _handoff(month: _Month, client: _Client, created: datetime) -> None:
    rng = month.rng
    late = created > month.end - timedelta(days=3)
    roll = rng.random()
    how = ("none" if (late and roll < 0.35) or roll < 0.03 else
           "console" if roll < 0.82 else "api" if roll < 0.93 else "app")
    taken = answered = None
    if how != "none":
        answered = _answered_at(rng, created)
        if answered >= month.end:
            how, answered = "none", None
    if how == "console" and answered is not None:
        taken = answered
        answered = taken + timedelta(minutes=rng.randint(1, 6))
    if answered is not None and answered < month.end:
        if how == "app":
            month.echo(client, answered, "Bonjour, c'est votre conseillère.")
        elif month.window(client, answered).can_send_free_form:
            month.send(client, answered, purpose=SERVICE_REPLY, utter_action="advisor_reply")
        else:
            month.park(client, answered, purpose=SERVICE_REPLY, utter_action="advisor_reply")
            tap = answered + timedelta(hours=rng.uniform(0.5, 20))
            if tap < month.end and rng.random() < 0.75:
                month.inbound(client, tap, kind="button", text="Voir le message")
                month.send(client, tap + timedelta(seconds=2), purpose=SERVICE_REPLY, utter_action="advisor_reply")
    resolved = answered + timedelta(minutes=rng.randint(20, 150)) if answered is not None else None
    if resolved is not None and resolved >= month.end:
        resolved = None
    client.open_until = resolved or month.end
    advisor = rng.choice(ADVISORS)
    month.handoffs.append({
        "conversation_id": client.id, "phone_number_id": PNID,
        "wa_id": None if client.id.startswith("FR.") else client.id,
        "user_id": client.id if client.id.startswith("FR.") else None, "client_id": None, "client_name": None,
        "advisor_id": advisor, "boutique_id": "paris", "language": client.language,
        "reason": rng.choice(REASONS), "note": "Asked for a person", "status": "resolved" if resolved else "open",
        "open_key": None if resolved else client.id, "created_at": created, "resolved_at": resolved,
        "resolved_by": advisor.split("-")[0] if resolved else None, "notified": "none", "notify_detail": None,
        "taken_by": advisor.split("-")[0] if taken else None, "taken_at": taken,
    })


def _initiated(month: _Month, client: _Client, at: datetime, purpose: str) -> None:
    """Something the maison starts: free-form in her open window, else the purpose's template."""
    rng = month.rng
    name, category = month.templates[purpose]
    if not client.opted_in:
        month.refuse(client, at, purpose=purpose, reason="no_opt_in")
        return
    window = month.window(client, at)
    if window.can_send_free_form:
        closing = window.closes_at is not None and window.closes_at - at < timedelta(minutes=40)
        if closing and rng.random() < 0.6:
            # Meta's clock saw the window closed as it left: 131047, then the template.
            month.send(client, at, purpose=purpose, fail=131047)
            month.send(client, at + timedelta(seconds=1), purpose=purpose, template=name, category=category)
            return
        month.send(client, at, purpose=purpose)
        return
    month.send(client, at, purpose=purpose, template=name, category=category)


def _campaign(month: _Month, clients: Sequence[_Client], at: datetime, purpose: str) -> None:
    rng = month.rng
    name, category = month.templates[purpose]
    for client in clients:
        if not client.marketing:
            continue
        when = at + timedelta(seconds=rng.randint(0, 1200))
        if when >= month.end:
            continue
        if rng.random() < 0.05:
            month.refuse(client, when, purpose=purpose, reason="marketing_stopped")
        elif month.window(client, when).can_send_free_form:
            month.send(client, when, purpose=purpose)
        else:
            month.send(client, when, purpose=purpose, template=name, category=category)


def build_month(*, now: datetime, seed: int = DEFAULT_SEED, days: int = 30, clients: int = 80,
                card: RateCard | None = None) -> _Month:
    """The month's rows, in memory (:func:`seed_month` writes them)."""
    end = require_aware(now, "now").astimezone(timezone.utc)
    start = end - timedelta(days=days)
    rng = random.Random(seed)
    month = _Month(rng, card or default_card(), start, end, f"m{seed}x{int(end.timestamp())}")
    people = _clients(rng, clients)
    hours = list(HOUR_WEIGHTS)
    weights = list(HOUR_WEIGHTS.values())
    first = start.astimezone(PARIS).replace(hour=0, minute=0, second=0, microsecond=0)
    # Client sessions first (the windows every later decision reads), day by day.
    sessions: list[tuple[datetime, _Client]] = []
    for d in range(days + 1):
        day = first + timedelta(days=d)
        weekend = 0.7 if day.weekday() >= 5 else 1.0
        for client in people:
            if rng.random() < client.rate * weekend:
                at = _local(day, rng.choices(hours, weights)[0], rng.randrange(60)) + timedelta(seconds=rng.randrange(60))
                if start <= at < end:
                    sessions.append((at, client))
    sessions.sort(key=lambda s: (s[0], s[1].id))
    for at, client in sessions:
        if client.inbound and at - client.inbound[-1] < timedelta(minutes=30):
            continue
        _session(month, client, at)
    # Then what the maison starts.
    campaigns = {int(days * 0.3): ("new_collection", 11), int(days * 0.7): ("event_invitation", 17)}
    for d in range(days + 1):
        day = first + timedelta(days=d)
        sends = ([("appointment_reminder", 9)] * rng.randint(2, 4) + [("order_shipped", 11)] * rng.randint(1, 3)
                 + [("order_ready", 15)] * rng.randint(0, 2) + [("restock_alert", 12)] * rng.randint(0, 1)
                 + [("aftercare_update", 16)] * rng.randint(0, 1) + [("advisor_followup", 17)] * rng.randint(0, 1))
        for purpose, hour in sends:
            at = _local(day, hour, rng.randrange(60)) + timedelta(seconds=rng.randrange(60))
            if start <= at < end:
                _initiated(month, rng.choice(people), at, purpose)
        # Sends decided as the window was about to close: the guard's margin, Meta's clock.
        for client in rng.sample(people, 3):
            closes = [t + WINDOW for t in client.inbound if day <= t + WINDOW < day + timedelta(days=1)]
            if closes and rng.random() < 0.25:
                at = closes[0] - DEFAULT_MARGIN - timedelta(minutes=rng.randint(5, 30))
                if start <= at < end:
                    _initiated(month, client, at, "order_update")
        if d in campaigns:
            purpose, hour = campaigns[d]
            at = _local(day, hour, 0)
            if start <= at < end:
                _campaign(month, people, at, purpose)
    return month


def seed_month(url: str, *, now: datetime, seed: int = DEFAULT_SEED, days: int = 30, clients: int = 80,
               card: RateCard | None = None) -> MonthSummary:
    """Write a month of traffic up to ``now`` into the database at ``url`` (its tables
    made if missing); the same ``seed`` and ``now`` write the same rows.
    """
    month = build_month(now=now, seed=seed, days=days, clients=clients, card=card)
    engine = make_sync_engine(url)
    try:
        for metadata in (inbox_metadata, outbound_metadata, ledger_metadata, handoff_metadata):
            metadata.create_all(engine)
        with engine.begin() as conn:
            add_missing_columns_sync(conn, outbound_table)
            add_missing_columns_sync(conn, handoffs_table)
            there = conn.execute(select(func.count()).select_from(inbox_table).where(
                inbox_table.c.wamid.like(f"wamid.{month.tag}.%"))).scalar_one()
            if there:
                raise MonthError("this month is in the database already (same seed and now)")
            for table, rows in ((inbox_table, month.inbox), (outbound_table, month.outbound),
                                (ledger_table, month.pricing), (handoffs_table, month.handoffs)):
                if rows:
                    conn.execute(table.insert(), rows)
    finally:
        engine.dispose()
    return MonthSummary(start=month.start, end=month.end, inbox=len(month.inbox), outbound=len(month.outbound),
                        pricing=len(month.pricing), handoffs=len(month.handoffs))


def main(argv: Sequence[str] | None = None) -> int:
    """Seed a month into a fresh SQLite file (or ``--database-url``) and write its report."""
    from salon.report import Period, parse_until
    from salon.report.build import generate, report_defaults

    parser = argparse.ArgumentParser(prog="python -m salon.dev.month", description=main.__doc__)
    parser.add_argument("--out", required=True, type=Path, help="the report's folder")
    parser.add_argument("--now", default="2026-12-07T12:00:00+00:00",
                        help="the month's end, an ISO instant with its offset (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--database-url", help="write the month here instead of a fresh SQLite file")
    parser.add_argument("--docs", type=Path, help="also copy the cost picture into this folder (docs/images)")
    args = parser.parse_args(argv)
    zone, currency = report_defaults()
    now = parse_until(args.now, zone)
    with tempfile.TemporaryDirectory(prefix="salon-month-") as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'month.db'}"
        summary = seed_month(url, now=now, seed=args.seed)
        print(f"month: {summary}")  # noqa: T201
        written = generate(url, Period.ending(now, timedelta(days=30), zone), args.out, now=now,
                           currency=currency)
    print(f"report: {written.page}")  # noqa: T201
    if args.docs is not None:
        args.docs.mkdir(parents=True, exist_ok=True)
        target = args.docs / "report-cost.png"
        target.write_bytes((args.out / "report-cost.png").read_bytes())
        print(f"docs: {target}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
