"""``salon report``: pictures and tables of a period, from the database alone.

Three ways in: a handful of rows written by the real writers (the inbox, the outbound
record, Meta's ledger, the handoff book), each figure checked against what it says it
counts; a seeded month (salon/dev/month.py), whose report has every picture and whose
figures match SQL counts of the rows; and the command line's honest answers to an empty
period, a database without the tables, and what an operator may mistype. Both SQL
backends where the rows are written.
"""

from __future__ import annotations

import html as markup
import json
import struct
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from salon.advisors.handoff import HandoffBook, handoffs_table
from salon.cli import main
from salon.clock import SystemClock, from_us, to_us, write_offset_file
from salon.dev.month import PNID, seed_month
from salon.guard.sent import SentLog
from salon.pricing.charge import charge_for, default_card
from salon.pricing.ledger import Ledger
from salon.pricing.markets import market_of
from salon.report import Period, parse_since
from salon.report.build import generate, report_defaults
from salon.report.plots import PLOTS, as_money
from salon.storage.db import make_sync_engine
from salon.webhook.inbox import Inbox, InboxItem
from salon.window.rules import window_state

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
"""Tuesday 1 December 2026, 10:00 in Paris."""
PNG = b"\x89PNG\r\n\x1a\n"
ACCEPTED = "('failed', 'parked', 'refused', 'error', 'pending')"


def _clock_at(monkeypatch: pytest.MonkeyPatch, folder: Path, at: datetime) -> None:
    """Every clock the command reads (SALON_CLOCK_FILE) says ``at``."""
    clock_file = folder / "clock.json"
    write_offset_file(clock_file, at - SystemClock().now())
    monkeypatch.setenv("SALON_CLOCK_FILE", str(clock_file))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _every_picture(folder: Path) -> None:
    for plot in PLOTS:
        path = folder / plot.name
        assert path.is_file(), plot.name
        width, height = _png_size(path)
        assert (width, height) == plot.pixels, plot.name
        assert 800 <= width <= 1600 and 400 <= height <= 900, (plot.name, width, height)
        assert path.stat().st_size > 8_000, f"{plot.name} is nearly empty"


# ---------------------------------------------------------------------- the writers' rows
def _inbound(wamid: str, sender: str, at: datetime, *, kind: str = "text", echo: bool = False) -> InboxItem:
    metadata: dict[str, Any] = {"wamid": wamid, "timestamp": int(at.timestamp()), "phone_number_id": PNID,
                                "type": kind, "wa_id": sender}
    if echo:
        metadata["echo"] = True
    return InboxItem(wamid=wamid, phone_number_id=PNID, sender_id=sender, sent_at=at, text="…",
                     metadata=metadata, state="done", attempts=0)


async def test_each_figure_counts_what_it_says(database_url: str, tmp_path: Path) -> None:
    card = default_card()
    a, b, c, d = "33600010101", "447700900201", "39300000101", "33600010102"
    inbox, sent, ledger, book = (Inbox(database_url), SentLog(database_url), Ledger(database_url, card=card),
                                 HandoffBook(database_url))
    for store in (inbox, sent, ledger, book):
        await store.initialize()

    def charge(recipient: str, at: datetime, category: str | None, last: datetime | None) -> Any:
        return charge_for(template_category=category, window=window_state(last, at),
                          market=market_of(recipient, card), at=at, card=card)

    try:
        # A writes at 10:00 (a reaction an hour later opens nothing), B at 12:00, D at 13:00;
        # an advisor answers A from the WhatsApp Business app at 10:20 (an echo).
        await inbox.claim_inbound([
            _inbound("in-a", a, T), _inbound("in-a-heart", a, T + timedelta(hours=1), kind="reaction"),
            _inbound("in-b", b, T + timedelta(hours=2)), _inbound("in-d", d, T + timedelta(hours=3)),
            _inbound("echo-a", a, T + timedelta(minutes=20), echo=True)], at=T)
        # Two replies to A: Meta prices both; one is delivered (billed), one only sent (not yet).
        at = T + timedelta(seconds=2)
        for wamid, status in (("w-a1", "delivered"), ("w-a2", "sent")):
            await sent.record_outbound(phone_number_id=PNID, recipient=a, kind="free_form", status="accepted",
                                       at=at, wamid=wamid, purpose="service_reply", charge=charge(a, at, None, T))
            await ledger.record(wamid=wamid, status=status, at=at + timedelta(seconds=1), phone_number_id=PNID,
                                recipient=a, pricing={"type": "regular", "category": "service",
                                                      "pricing_model": "PMP", "billable": True})
        # C never wrote: a reminder as a template (its estimate only), a free-form order
        # note Meta refused with 131047, its template (Meta bills it as marketing), a refusal.
        c1 = T + timedelta(hours=3)
        await sent.record_outbound(phone_number_id=PNID, recipient=c, kind="template", status="accepted", at=c1,
                                   wamid="w-c1", purpose="appointment_reminder", template="appointment_reminder",
                                   charge=charge(c, c1, "UTILITY", None))
        c2 = T + timedelta(hours=4)
        await sent.record_outbound(phone_number_id=PNID, recipient=c, kind="free_form", status="failed", at=c2,
                                   purpose="order_update", error={"code": 131047, "title": "Re-engagement message"},
                                   charge=charge(c, c2, None, None))
        await sent.record_outbound(phone_number_id=PNID, recipient=c, kind="template", status="accepted",
                                   at=c2 + timedelta(seconds=1), wamid="w-c2", purpose="order_update",
                                   template="order_shipped", charge=charge(c, c2, "UTILITY", None))
        await ledger.record(wamid="w-c2", status="read", at=c2 + timedelta(minutes=5), phone_number_id=PNID,
                            recipient=c, pricing={"type": "regular", "category": "marketing", "pricing_model": "PMP"})
        await sent.record_outbound(phone_number_id=PNID, recipient=c, kind="free_form", status="refused",
                                   at=T + timedelta(hours=5), purpose="restock_alert", error={"reason": "no_opt_in"})
        # Handoffs: A's (answered by the echo at 10:20, taken later), B's (an advisor's reply
        # 30 minutes on), C's (nobody yet).
        await book.open(conversation_id=a, reason="talk_to_advisor", note="-", language="fr",
                        now=T + timedelta(minutes=5), phone_number_id=PNID, wa_id=a)
        await book.take(a, by="sophie", now=T + timedelta(minutes=40))
        b_handoff = T + timedelta(hours=2, minutes=1)
        await book.open(conversation_id=b, reason="complaint", note="-", language="en", now=b_handoff,
                        phone_number_id=PNID, wa_id=b)
        b2 = b_handoff + timedelta(minutes=30)
        await sent.record_outbound(phone_number_id=PNID, recipient=b, kind="free_form", status="accepted", at=b2,
                                   wamid="w-b2", purpose="service_reply", utter_action="advisor_reply",
                                   charge=charge(b, b2, None, T + timedelta(hours=2)))
        await book.open(conversation_id=c, reason="booking_request", note="-", language="it",
                        now=T + timedelta(hours=6), phone_number_id=PNID, wa_id=c)
        # B's window has closed by the next day's 13:00: a reply is parked behind one nudge.
        b3 = T + timedelta(hours=28)
        await sent.record_outbound(phone_number_id=PNID, recipient=b, kind="free_form", status="parked", at=b3,
                                   purpose="service_reply")
        await sent.record_outbound(phone_number_id=PNID, recipient=b, kind="nudge", status="accepted", at=b3,
                                   wamid="w-b1", purpose="reengage_update", template="advisor_update_nudge",
                                   charge=charge(b, b3, "UTILITY", T + timedelta(hours=2)))
    finally:
        for store in (inbox, sent, ledger, book):
            await store.close()

    period = Period(T - timedelta(hours=1), T + timedelta(days=2), PARIS)
    written = generate(database_url, period, tmp_path / "report", now=T + timedelta(days=2), currency=card.currency)
    f, t = written.figures, written.figures.totals
    _every_picture(tmp_path / "report")

    # Messages and cost: Meta's price where it came (billed once delivered), else the estimate.
    service_fr = card.rate("FR", "service", T)
    assert t.messages == 6  # the failed, the parked and the refused are no messages
    assert (t.meta_priced, t.estimated, t.unpriced, t.mismatches) == (3, 3, 0, 1)
    expected = (service_fr + 0 + card.rate("IT", "utility", T) + card.rate("IT", "marketing", T)
                + card.rate("GB", "service", T) + card.rate("GB", "utility", T))
    assert t.cost == expected
    first = f.cost_days[period.days().index(date(2026, 12, 1))]
    assert first.messages == {"service": 3, "utility": 1, "marketing": 1}
    assert first.cost["marketing"] == card.rate("IT", "marketing", T)
    second = f.cost_days[period.days().index(date(2026, 12, 2))]
    assert second.messages == {"utility": 1}

    # Windows, on the hour: A's from 10:00 for 24 hours, B's from 12:00, D's from 13:00.
    hours = dict(f.window_hours)
    assert hours[T] == 1 and hours[T + timedelta(hours=2)] == 2 and hours[T + timedelta(hours=3)] == 3
    assert hours[T + timedelta(hours=24)] == 2  # A's closed at 24:00:00 exactly
    assert hours[T + timedelta(hours=27)] == 0
    assert (t.inbound, t.clients) == (3, 3)  # not the reaction, not the echo

    # Fallback: 2 templates and 1 park among 7 sends decided; 1 of 4 free-form sends was a 131047.
    assert (t.decided, t.templates, t.parked, t.nudges, t.refused) == (7, 2, 1, 1, 1)
    assert (t.window_closed_failures, t.free_form) == (1, 4)
    assert t.fallback_rate == pytest.approx(3 / 7) and t.failure_rate == pytest.approx(1 / 4)

    # Containment: A and B were handed to a person on the day they wrote, D was not.
    assert (t.client_days, t.contained) == (3, 1)

    # Handoff wait: A's 15 minutes (the echo came before the take), B's 30, C's not yet.
    assert f.waits.waits == (timedelta(minutes=15), timedelta(minutes=30))
    assert f.waits.unanswered == 1 and f.waits.median == timedelta(minutes=22, seconds=30)
    assert dict(f.waits.buckets())["15–60 min"] == 2
    assert f.waits.by == {"a message from the Business app": 1, "an advisor's message": 1}

    # Purposes by cost: the recategorised order note first.
    assert f.purposes[0].purpose == "order_update" and f.purposes[0].cost == card.rate("IT", "marketing", T)
    assert {p.purpose: p.messages for p in f.purposes}["service_reply"] == 3

    page = markup.unescape(written.page.read_text(encoding="utf-8"))
    assert (f'<th scope="row">Cost</th><td>{as_money(expected, card.currency)} '
            "(Meta's price for 3, our estimate for 3)") in page


# ---------------------------------------------------------------------- the seeded month
def _sql_totals(url: str, start: datetime, end: datetime) -> dict[str, int]:
    """The month's figures counted again, in SQL, from the rows."""
    window = "o.created_us >= :s AND o.created_us < :e AND o.kind <> 'status_only'"
    accepted = f"o.wamid IS NOT NULL AND o.status NOT IN {ACCEPTED}"
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            def one(sql: str) -> int:
                return int(conn.execute(text(sql), {"s": to_us(start), "e": to_us(end)}).scalar_one() or 0)

            base = f"FROM wa_outbound o LEFT JOIN wa_pricing p ON p.wamid = o.wamid WHERE {window}"
            return {
                "messages": one(f"SELECT count(*) {base} AND {accepted}"),
                "cost_micros": one(
                    f"SELECT sum(CASE WHEN p.wamid IS NOT NULL THEN p.cost_micros * p.billable * p.delivered "
                    f"ELSE coalesce(o.cost_micros, 0) END) {base} AND {accepted}"),
                "meta_priced": one(f"SELECT count(p.wamid) {base} AND {accepted}"),
                "mismatches": one(f"SELECT count(*) {base} AND {accepted} AND p.mismatch IS NOT NULL"),
                "templates": one(f"SELECT count(*) {base} AND o.kind = 'template' AND o.status NOT IN ('parked', 'refused')"),
                "parked": one(f"SELECT count(*) {base} AND o.kind <> 'nudge' AND o.status = 'parked'"),
                "nudges": one(f"SELECT count(*) {base} AND o.kind = 'nudge'"),
                "refused": one(f"SELECT count(*) {base} AND o.kind <> 'nudge' AND o.status = 'refused'"),
                "free_form": one(f"SELECT count(*) {base} AND o.kind = 'free_form' AND o.status NOT IN ('parked', 'refused')"),
                "window_closed_failures": one(
                    f"SELECT count(*) {base} AND o.kind = 'free_form' AND o.error_code IN (131047, 470)"),
                "handoffs": int(conn.execute(select(func.count()).select_from(handoffs_table).where(
                    handoffs_table.c.created_at >= start, handoffs_table.c.created_at < end)).scalar_one()),
            }
    finally:
        engine.dispose()


def _sql_inbound(url: str, start: datetime, end: datetime) -> list[tuple[str, datetime, str, bool]]:
    """(sender, sent at, type, echo) of every wa_inbox row from a day before ``start`` to ``end``."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT sender_id, sent_us, metadata FROM wa_inbox "
                                     "WHERE sent_us >= :s AND sent_us < :e ORDER BY sent_us"),
                                {"s": to_us(start - timedelta(days=1)), "e": to_us(end)}).all()
    finally:
        engine.dispose()
    out = []
    for sender, sent_us, meta in rows:
        meta = json.loads(meta) if isinstance(meta, str) else meta
        at = from_us(sent_us)
        assert at is not None
        out.append((sender, at, str(meta.get("type")), bool(meta.get("echo"))))
    return out


def test_the_report_of_a_seeded_month(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    month = seed_month(database_url, now=NOW)
    assert month.outbound > 1000 and month.inbox > 500 and month.handoffs > 10
    _clock_at(monkeypatch, tmp_path, NOW)
    out = tmp_path / "report"
    assert main(["report", "--since", "30d", "--until", "2026-12-07T12:00:00Z", "--out", str(out),
                 "--database-url", database_url]) == 0
    said = capsys.readouterr().out
    _every_picture(out)
    manifest = json.loads((out / "report.json").read_text(encoding="utf-8"))
    totals = manifest["totals"]

    start = NOW - timedelta(days=30)
    expected = _sql_totals(database_url, start, NOW)
    for name, value in expected.items():
        assert totals[name] == value, name
    assert totals["estimated"] == totals["messages"] - totals["meta_priced"] > 0  # the afternoon without webhooks
    # The month has every kind of event the report counts.
    for name in ("templates", "parked", "nudges", "refused", "window_closed_failures", "mismatches"):
        assert totals[name] > 0, name

    zone, currency = report_defaults()
    assert currency is not None and manifest["period"]["zone"] == str(zone)
    cost = as_money(expected["cost_micros"], currency)
    assert f"{expected['messages']} messages, {cost}" in said

    # The page shows every picture and the totals.
    html = (out / "report.html").read_text(encoding="utf-8")
    for plot in PLOTS:
        assert f'src="{plot.name}"' in html, plot.name
    assert f'<th scope="row">Messages sent</th><td>{expected["messages"]}</td>' in html
    assert cost in html and "No traffic" not in html
    assert 'href="report.css"' in html and "http://" not in html and "https://" not in html

    # Client messages, windows and containment, counted again from the rows.
    inbound = _sql_inbound(database_url, start, NOW)
    opening = [(s, at) for s, at, kind, echo in inbound if not echo and kind not in ("reaction", "system")]
    in_period = [(s, at) for s, at in opening if at >= start]
    assert totals["inbound"] == len(in_period)
    assert totals["clients"] == len({s for s, _ in in_period})
    client_days = {(s, at.astimezone(zone).date()) for s, at in in_period}
    assert totals["client_days"] == len(client_days)

    written = generate(database_url, Period.ending(NOW, timedelta(days=30), zone), tmp_path / "again",
                       now=NOW, currency=currency)
    figures = written.figures
    hours = dict(figures.window_hours)
    for hour in list(hours)[::23]:
        open_now = {s for s, at in opening if hour - timedelta(hours=24) < at <= hour}
        assert hours[hour] == len(open_now), hour
    per_day: Counter[date] = Counter(day for _, day in client_days)
    assert {d.day: d.client_days for d in figures.containment_days if d.client_days} == dict(per_day)

    # Messages per day, counted again from the rows.
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT created_us FROM wa_outbound o WHERE o.created_us >= :s AND "
                                     f"o.created_us < :e AND o.kind <> 'status_only' AND "
                                     f"o.wamid IS NOT NULL AND o.status NOT IN {ACCEPTED}"),
                                {"s": to_us(start), "e": to_us(NOW)}).all()
    finally:
        engine.dispose()
    by_day: defaultdict[date, int] = defaultdict(int)
    for (created_us,) in rows:
        at = from_us(created_us)
        assert at is not None
        by_day[at.astimezone(zone).date()] += 1
    assert {d.day: d.total_messages for d in figures.cost_days if d.total_messages} == dict(by_day)

    # The same seed and instant write the same month: a second time is refused.
    from salon.dev.month import MonthError

    with pytest.raises(MonthError):
        seed_month(database_url, now=NOW)


# ---------------------------------------------------------------------- honest answers
def test_an_empty_period_says_no_traffic(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    seed_month(sqlite_url, now=NOW, days=7, clients=20)
    _clock_at(monkeypatch, tmp_path, NOW)
    out = tmp_path / "quiet"
    # The month before the seeded week: nothing happened.
    assert main(["report", "--since", "30d", "--until", "2026-11-01", "--out", str(out),
                 "--database-url", sqlite_url]) == 0
    assert "no traffic" in capsys.readouterr().out
    _every_picture(out)
    manifest = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert manifest["empty"] is True and manifest["totals"]["messages"] == 0
    # From 2 October to 1 November, midnight to midnight in Paris (summer time ended between).
    assert manifest["period"]["start"] == "2026-10-01T22:00:00+00:00"
    assert manifest["period"]["end"] == "2026-10-31T23:00:00+00:00"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="no-traffic"' in html and html.count("No traffic in this period") >= 6
    for plot in PLOTS:
        assert f'src="{plot.name}"' in html


def test_a_database_without_the_tables_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    engine = make_sync_engine(url)
    with engine.begin() as conn:  # a database file with one unrelated table
        conn.execute(text("CREATE TABLE unrelated (id INTEGER)"))
    engine.dispose()
    _clock_at(monkeypatch, tmp_path, NOW)
    assert main(["report", "--since", "7d", "--out", str(tmp_path / "r"), "--database-url", url]) == 0
    assert "no traffic" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert any("wa_outbound" in note and "wa_pricing" in note for note in manifest["notes"])
    _every_picture(tmp_path / "r")


def test_since_counts_hours_as_hours_and_days_on_the_calendar() -> None:
    assert parse_since("12h") == timedelta(hours=12) and parse_since(" 2W ") == timedelta(weeks=2)
    end = datetime(2026, 11, 1, 0, 0, tzinfo=PARIS)  # summer time ended on 25 October
    days = Period.ending(end, parse_since("7d"), PARIS)
    assert days.start.astimezone(PARIS) == datetime(2026, 10, 25, 0, 0, tzinfo=PARIS)
    assert days.end - days.start == timedelta(days=7, hours=1)
    assert days.days() == [date(2026, 10, 25) + timedelta(days=i) for i in range(7)]
    hours = Period.ending(end, parse_since("12h"), PARIS)
    assert hours.end - hours.start == timedelta(hours=12) and len(list(hours.hours())) == 12


@pytest.mark.parametrize(("argv", "says"), [
    (["--since", "30"], "--since takes a duration such as 7d, 30d or 12h"),
    (["--since", "thirty days"], "--since takes a duration"),
    (["--since", "0d"], "longer than nothing"),
    (["--since", "500d"], "at most 400 days"),
    (["--since=-7d"], "--since takes a duration"),
    (["--until", "2026-12-01T10:00"], "has no offset"),
    (["--until", "yesterday"], "--until takes an ISO date or instant"),
    (["--until", "2026-02-30"], "no calendar date"),
    (["--zone", "Mars/Olympus"], "is no time zone"),
])
def test_bad_input_is_refused_clearly(argv: list[str], says: str, sqlite_url: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    assert main(["report", "--out", str(out), "--database-url", sqlite_url, *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith("salon report: ") and says in error
    assert not out.exists()


def test_a_missing_database_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "salon.db"
    assert main(["report", "--out", str(tmp_path / "r"), "--database-url", f"sqlite:///{missing}"]) == 1
    assert f"no database at {missing}" in capsys.readouterr().err
    assert not missing.exists()
