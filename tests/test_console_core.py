"""The advisor console's core, without its web layer: the inbox (salon/console/inbox.py:
which conversations an advisor sees and in what order), the signed-in sessions
(salon/console/sessions.py), the client's file beside a conversation
(salon/console/client_file.py) and the pages' small helpers (salon/console/pages.py).

The ordering and filter rules are checked on hand-made rows at a fixed instant; what
touches a database runs on SQLite and PostgreSQL against the seeded maison, with rows
written by the project's own writers (the webhook inbox's claim, the session store, the
handoff and repair books).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from salon.access.tokens import Principal, TokenBook
from salon.advisors.handoff import Handoff, HandoffBook
from salon.advisors.repairs import RepairBook
from salon.clock import ManualClock
from salon.console.client_file import read_client_file
from salon.console.inbox import FILTERS, InboxRow, arrange, load_inbox, masked, matches
from salon.console.pages import STATIC_FILES, countdown, render, said, static_file, waited
from salon.console.sessions import ConsoleSessions, session_hours, sessions_table
from salon.identity import ClientRef
from salon.integrations.crm import ClientRecord, SqlCrm
from salon.integrations.schema import consents
from salon.storage.db import make_async_engine
from salon.webhook.inbox import Inbox, InboxItem
from salon.window.rules import WINDOW
from salon.window.sql_store import SqlSessionStore
from tests.seeding import seed_maison

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)  # a Wednesday, 10:00 in Paris
PNID = "100000000000001"
OTHER_PNID = "100000000000002"

SOPHIE = Principal("sophie", frozenset({"advisor"}), "sophie-marchand")
JAMES = Principal("james", frozenset({"advisor"}), "james-whitaker")
OPS = Principal("ops", frozenset({"manager"}))
LEAD = Principal("lead", frozenset({"manager"}), "james-whitaker")  # a manager with clients of his own

CLAIRE = "33600000001"  # C-001, Sophie's
ANTOINE = "33600000002"  # C-002, Camille's
HELENE = "33600000003"  # C-003, Sophie's
MARGAUX = "33600000004"  # C-004, Sophie's
LOUIS = "33600000010"  # C-010, Sophie's
INES = "FR.5772156649015328606"  # C-031, Sophie's, known by her BSUID only
ELEANOR = "447700900101"  # C-013, James's
HENRY = "447700900102"  # C-014, James's
STRANGER = "33699999999"  # not in the book
UNKNOWN_UK = "447700900999"  # not in the book


# --------------------------------------------------------------------------- hand-made rows


_handoff_ids = itertools.count(1)


def handoff(conversation_id: str, created_at: datetime, *, advisor_id: str | None = "sophie-marchand",
            reason: str = "talk_to_advisor") -> Handoff:
    return Handoff(id=next(_handoff_ids), conversation_id=conversation_id,
                   phone_number_id=PNID, wa_id=conversation_id, user_id=None, client_id=None,
                   client_name=None, advisor_id=advisor_id, boutique_id="paris", language="fr",
                   reason=reason, note="", status="open", created_at=created_at, resolved_at=None,
                   resolved_by=None, notified="none", notify_detail=None)


def row(conversation_id: str, *, name: str | None = None, advisor_id: str | None = "sophie-marchand",
        waiting_since: datetime | None = None, closes_at: datetime | None = None,
        last_at: datetime | None = None) -> InboxRow:
    """A conversation: handed over when ``waiting_since`` is given, its window open when
    ``closes_at`` is."""
    return InboxRow(
        conversation_id=conversation_id, client_id=None, client_name=name or f"Client {conversation_id}",
        tier=None, language="fr", advisor_id=advisor_id, wa_id=conversation_id, user_id=None,
        handoff=handoff(conversation_id, waiting_since, advisor_id=advisor_id) if waiting_since else None,
        window_open=closes_at is not None, closes_at=closes_at, last_at=last_at)


def ids(rows: list[InboxRow]) -> list[str]:
    return [r.conversation_id for r in rows]


def every_order(rows: list[InboxRow]) -> list[list[InboxRow]]:
    """``rows`` in each of their orders (the arrangement must not depend on it)."""
    return [list(p) for p in itertools.permutations(rows)]


# --------------------------------------------------------------------------- arrange: order


def test_waiting_handoffs_come_first_the_longest_wait_first() -> None:
    rows = [
        row("a", waiting_since=NOW - timedelta(minutes=10), closes_at=NOW + timedelta(minutes=5)),
        row("b", waiting_since=NOW - timedelta(hours=3)),  # window closed, still first
        row("c", closes_at=NOW + timedelta(minutes=1), last_at=NOW - timedelta(hours=23, minutes=59)),
        row("d", last_at=NOW - timedelta(minutes=1)),
        row("e", waiting_since=NOW - timedelta(hours=1), last_at=NOW - timedelta(hours=30)),
    ]
    for given in every_order(rows):
        assert ids(arrange(given, NOW, principal=OPS)) == ["b", "e", "a", "c", "d"]
    assert [r.group for r in arrange(rows, NOW, principal=OPS)] == [0, 0, 0, 1, 2]


def test_open_windows_the_soonest_closing_first() -> None:
    rows = [
        row("late", closes_at=NOW + timedelta(hours=20), last_at=NOW - timedelta(hours=4)),
        row("soon", closes_at=NOW + timedelta(minutes=20), last_at=NOW - timedelta(hours=23)),
        row("mid", closes_at=NOW + timedelta(hours=2), last_at=NOW - timedelta(hours=22)),
        row("recent-but-closed", last_at=NOW - timedelta(minutes=1)),
    ]
    for given in every_order(rows):
        assert ids(arrange(given, NOW, principal=OPS)) == ["soon", "mid", "late", "recent-but-closed"]


def test_the_rest_the_most_recent_first() -> None:
    rows = [
        row("day", last_at=NOW - timedelta(days=1)),
        row("never"),  # nothing from her in the inbox: last
        row("hour", last_at=NOW - timedelta(hours=1)),
        row("week", last_at=NOW - timedelta(days=7)),
    ]
    for given in every_order(rows):
        assert ids(arrange(given, NOW, principal=OPS)) == ["hour", "day", "week", "never"]


def test_arrange_refuses_a_naive_instant_and_an_unknown_filter() -> None:
    rows = [row("a", last_at=NOW)]
    with pytest.raises(ValueError, match="timezone-aware"):
        arrange(rows, NOW.replace(tzinfo=None), principal=OPS)
    with pytest.raises(ValueError, match="unknown inbox filter 'everything'"):
        arrange(rows, NOW, principal=OPS, view="everything")
    assert FILTERS == ("all", "mine", "waiting", "closing", "closed")


# --------------------------------------------------------------------------- arrange: filters


ROWS = [
    row("sophie-waiting", waiting_since=NOW - timedelta(minutes=30), closes_at=NOW + timedelta(hours=23)),
    row("sophie-closing", closes_at=NOW + timedelta(hours=2)),  # exactly 2 h left: closing
    row("james-closing", advisor_id="james-whitaker", closes_at=NOW + timedelta(minutes=15)),
    row("james-open", advisor_id="james-whitaker", closes_at=NOW + timedelta(hours=2, seconds=1)),
    row("sophie-closed", last_at=NOW - timedelta(days=2)),
    row("james-waiting-closed", advisor_id="james-whitaker", waiting_since=NOW - timedelta(hours=5),
        last_at=NOW - timedelta(days=1, hours=1)),
]


def test_the_filter_mine_keeps_the_callers_own_conversations() -> None:
    assert ids(arrange(ROWS, NOW, principal=SOPHIE, view="mine")) == [
        "sophie-waiting", "sophie-closing", "sophie-closed"]
    assert ids(arrange(ROWS, NOW, principal=LEAD, view="mine")) == [
        "james-waiting-closed", "james-closing", "james-open"]
    # A manager without clients of his own has none.
    assert arrange(ROWS, NOW, principal=OPS, view="mine") == []
    assert len(arrange(ROWS, NOW, principal=OPS, view="all")) == len(ROWS)


def test_the_filter_waiting_keeps_the_handoffs() -> None:
    assert ids(arrange(ROWS, NOW, principal=OPS, view="waiting")) == ["james-waiting-closed", "sophie-waiting"]


def test_the_filter_closing_keeps_open_windows_with_two_hours_or_less() -> None:
    assert ids(arrange(ROWS, NOW, principal=OPS, view="closing")) == ["james-closing", "sophie-closing"]
    # A minute later the window that had 2 h and 1 s left is closing too.
    later = NOW + timedelta(minutes=1)
    assert ids(arrange(ROWS, later, principal=OPS, view="closing")) == [
        "james-closing", "sophie-closing", "james-open"]


def test_the_filter_closed_keeps_the_closed_windows_handed_over_or_not() -> None:
    assert ids(arrange(ROWS, NOW, principal=OPS, view="closed")) == ["james-waiting-closed", "sophie-closed"]


def test_the_name_search_ignores_case_and_accents() -> None:
    rows = [row("1", name="Hélène Vasseur", last_at=NOW - timedelta(hours=1)),
            row("2", name="Inès Moreau", last_at=NOW - timedelta(hours=2)),
            row("3", name="Julien Moreau", last_at=NOW - timedelta(hours=3)),
            row("4", name="Zoë Ashworth", closes_at=NOW + timedelta(hours=1))]
    for query in ("helene", "HÉLÈNE", "Hélène", "  vasseur ", "lène v"):
        assert ids(arrange(rows, NOW, principal=OPS, query=query)) == ["1"], query
    assert ids(arrange(rows, NOW, principal=OPS, query="moreau")) == ["2", "3"]
    assert ids(arrange(rows, NOW, principal=OPS, query="ines")) == ["2"]
    assert ids(arrange(rows, NOW, principal=OPS, query="ZOE")) == ["4"]
    assert arrange(rows, NOW, principal=OPS, query="Margaux") == []
    assert ids(arrange(rows, NOW, principal=OPS, query="   ")) == ["4", "1", "2", "3"]
    assert ids(arrange(rows, NOW, principal=OPS, query=None)) == ["4", "1", "2", "3"]
    # The search and a filter together.
    assert ids(arrange(rows, NOW, principal=OPS, view="closed", query="moreau")) == ["2", "3"]
    assert matches(rows[0], "hélene") and not matches(rows[0], "helena")


def test_an_unknown_number_is_masked() -> None:
    assert masked(STRANGER) == "+33 … 9999"
    assert masked("IT.1234567890123456789") == "WhatsApp user …6789"
    for shown in (masked(STRANGER), masked(UNKNOWN_UK)):
        assert STRANGER not in shown and UNKNOWN_UK not in shown
        assert "6999" not in shown and "7700" not in shown


# --------------------------------------------------------------------------- load_inbox


@dataclass
class Maison:
    inbox: Inbox
    sessions: SqlSessionStore
    handoffs: HandoffBook


@pytest.fixture()
async def maison(database_url: str) -> AsyncIterator[Maison]:
    """The seeded maison with the webhook inbox, the session store and the handoff book
    on one engine."""
    seed_maison(database_url)
    inbox = Inbox(database_url)
    await inbox.initialize()
    sessions = SqlSessionStore(engine=inbox.engine, clock=ManualClock(NOW))
    await sessions.initialize()
    handoffs = HandoffBook(engine=inbox.engine)
    await handoffs.initialize()
    try:
        yield Maison(inbox, sessions, handoffs)
    finally:
        await inbox.close()


_wamids = itertools.count(1)


async def writes(m: Maison, sender: str, at: datetime, *, pnid: str = PNID) -> None:
    """A client's message as the webhook pipeline keeps it: the inbox's claim and her window."""
    item = InboxItem(wamid=f"wamid.CORE{next(_wamids):06d}", phone_number_id=pnid, sender_id=sender,
                     sent_at=at, text="Bonjour", metadata={}, state="done", attempts=1)
    assert await m.inbox.claim_inbound([item], at) == [True]
    ref = ClientRef(pnid, user_id=sender) if sender.startswith("FR.") else ClientRef(pnid, wa_id=sender)
    await m.sessions.record_inbound(ref, at, message_id=item.wamid)


async def hand_over(m: Maison, conversation: str, at: datetime, *, advisor_id: str, reason: str,
                    client_id: str | None = None, client_name: str | None = None) -> Handoff:
    found, created = await m.handoffs.open(
        conversation_id=conversation, reason=reason, note="", language="fr", now=at, client_id=client_id,
        client_name=client_name, advisor_id=advisor_id, boutique_id="paris", phone_number_id=PNID,
        wa_id=conversation)
    assert created
    return found


async def the_day(m: Maison) -> dict[str, datetime]:
    """Who wrote when, and who was handed to whom, by 10:00 in Paris."""
    wrote = {
        CLAIRE: NOW - timedelta(hours=3),
        HELENE: NOW - timedelta(days=3),
        MARGAUX: NOW - timedelta(days=2),
        INES: NOW - timedelta(hours=1),
        ELEANOR: NOW - timedelta(hours=2),
        HENRY: NOW - timedelta(minutes=45),
        STRANGER: NOW - timedelta(minutes=25),
        UNKNOWN_UK: NOW - timedelta(minutes=30),
    }
    for sender, at in wrote.items():
        await writes(m, sender, at)
    await writes(m, LOUIS, NOW - timedelta(days=31))  # too long ago for the inbox
    await writes(m, ANTOINE, NOW - timedelta(hours=1), pnid=OTHER_PNID)  # another business number
    await hand_over(m, HELENE, NOW - timedelta(hours=2), advisor_id="sophie-marchand", reason="talk_to_advisor",
                    client_id="C-003", client_name="Hélène Vasseur")
    await hand_over(m, HENRY, NOW - timedelta(minutes=40), advisor_id="james-whitaker", reason="complaint",
                    client_id="C-014", client_name="Henry Ashworth")
    await hand_over(m, STRANGER, NOW - timedelta(minutes=20), advisor_id="sophie-marchand",
                    reason="booking_request")
    return wrote


async def inbox_of(m: Maison, principal: Principal) -> list[InboxRow]:
    return await load_inbox(m.inbox.engine, handoffs=m.handoffs, sessions=m.sessions, principal=principal,
                            phone_number_id=PNID, now=NOW)


async def test_sophie_sees_her_clients_and_her_handoffs_not_james(maison: Maison) -> None:
    wrote = await the_day(maison)
    rows = {r.conversation_id: r for r in await inbox_of(maison, SOPHIE)}
    assert set(rows) == {CLAIRE, HELENE, MARGAUX, INES, STRANGER}

    claire = rows[CLAIRE]
    assert (claire.client_id, claire.client_name, claire.tier, claire.language, claire.advisor_id) == (
        "C-001", "Claire Laurent", "VIC", "fr", "sophie-marchand")
    assert (claire.wa_id, claire.user_id) == (CLAIRE, "FR.4820193746581029374")
    assert claire.handoff is None and claire.window_open
    assert claire.closes_at == wrote[CLAIRE] + WINDOW and claire.last_at == wrote[CLAIRE]

    ines = rows[INES]  # known by her BSUID alone
    assert (ines.client_id, ines.client_name, ines.wa_id, ines.user_id) == ("C-031", "Inès Moreau", None, INES)
    assert ines.window_open and ines.closes_at == wrote[INES] + WINDOW

    helene = rows[HELENE]  # handed over, her window closed long ago
    assert helene.handoff is not None and helene.handoff.reason == "talk_to_advisor"
    assert not helene.window_open and helene.closes_at is None and helene.last_at == wrote[HELENE]

    stranger = rows[STRANGER]  # not in the book: handed to Sophie, named by the end of the number
    assert stranger.client_name == "+33 … 9999" and STRANGER not in stranger.client_name
    assert (stranger.client_id, stranger.tier, stranger.language, stranger.advisor_id) == (
        None, None, "fr", "sophie-marchand")
    assert stranger.handoff is not None and stranger.handoff.reason == "booking_request"

    assert ids(arrange(list(rows.values()), NOW, principal=SOPHIE)) == [HELENE, STRANGER, CLAIRE, INES, MARGAUX]
    assert ids(arrange(list(rows.values()), NOW, principal=SOPHIE, view="waiting")) == [HELENE, STRANGER]
    assert ids(arrange(list(rows.values()), NOW, principal=SOPHIE, view="closed")) == [HELENE, MARGAUX]
    assert ids(arrange(list(rows.values()), NOW, principal=SOPHIE, query="helene")) == [HELENE]

    assert {r.conversation_id for r in await inbox_of(maison, JAMES)} == {ELEANOR, HENRY}


async def test_the_manager_sees_every_conversation(maison: Maison) -> None:
    await the_day(maison)
    rows = await inbox_of(maison, OPS)
    arranged = arrange(rows, NOW, principal=OPS)
    assert ids(arranged) == [HELENE, HENRY, STRANGER,  # waiting, the longest first
                             CLAIRE, ELEANOR, INES, UNKNOWN_UK,  # open, the soonest closing first
                             MARGAUX]  # the rest
    unknown = next(r for r in rows if r.conversation_id == UNKNOWN_UK)
    assert unknown.client_name == "+44 … 0999" and UNKNOWN_UK not in unknown.client_name
    assert (unknown.client_id, unknown.advisor_id, unknown.handoff) == (None, None, None)
    assert unknown.window_open
    # Not for a manager either: a client of another business number, a message of 31 days ago.
    assert ANTOINE not in ids(rows) and LOUIS not in ids(rows)


async def test_an_empty_inbox(maison: Maison) -> None:
    assert await inbox_of(maison, OPS) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await load_inbox(maison.inbox.engine, handoffs=maison.handoffs, sessions=maison.sessions,
                         principal=OPS, phone_number_id=PNID, now=NOW.replace(tzinfo=None))


# --------------------------------------------------------------------------- sessions

TOKENS = [
    {"name": "sophie", "token": "sophie-token-0123456789", "scopes": ["advisor"], "advisor_id": "sophie-marchand"},
    {"name": "ops", "token": "ops-token-0123456789", "scopes": ["manager"]},
]


@pytest.fixture()
async def console_sessions(database_url: str) -> AsyncIterator[ConsoleSessions]:
    store = ConsoleSessions(database_url)
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()


async def _stored(store: ConsoleSessions) -> list[str]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(select(sessions_table.c.key_hash))).scalars())


async def test_a_session_is_found_by_its_key_and_only_its_digest_is_kept(console_sessions: ConsoleSessions) -> None:
    tokens = TokenBook.from_config(TOKENS)
    sophie = tokens.principal_named("sophie")
    assert sophie is not None
    key, session = await console_sessions.open(sophie, now=NOW, hours=8)
    assert session.principal == sophie and session.expires_at == NOW + timedelta(hours=8)
    assert await _stored(console_sessions) == [hashlib.sha256(key.encode()).hexdigest()]
    async with console_sessions.engine.connect() as conn:
        stored = (await conn.execute(select(sessions_table))).one()
    assert key not in repr(tuple(stored))  # the cookie's key itself is nowhere in the table

    found = await console_sessions.find(key, now=NOW + timedelta(hours=1), tokens=tokens)
    assert found is not None and found.principal == sophie and found.csrf == session.csrf
    assert found.expires_at == session.expires_at
    for wrong in (None, "", key[:-1], key + "x", hashlib.sha256(key.encode()).hexdigest(), "k" * 101):
        assert await console_sessions.find(wrong, now=NOW, tokens=tokens) is None

    other_key, other = await console_sessions.open(sophie, now=NOW, hours=8)
    assert other_key != key and other.csrf != session.csrf

    await console_sessions.end(key)
    assert await console_sessions.find(key, now=NOW, tokens=tokens) is None
    assert await console_sessions.find(other_key, now=NOW, tokens=tokens) is not None
    await console_sessions.end(None)  # signing out without a cookie changes nothing
    assert len(await _stored(console_sessions)) == 1


async def test_a_session_expires_at_its_boundary(console_sessions: ConsoleSessions) -> None:
    tokens = TokenBook.from_config(TOKENS)
    ops = tokens.principal_named("ops")
    assert ops is not None
    key, session = await console_sessions.open(ops, now=NOW, hours=8)
    ends = NOW + timedelta(hours=8)
    assert await console_sessions.find(key, now=ends - timedelta(microseconds=1), tokens=tokens) is not None
    assert await console_sessions.find(key, now=ends, tokens=tokens) is None
    assert await console_sessions.find(key, now=ends + timedelta(days=1), tokens=tokens) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        await console_sessions.find(key, now=NOW.replace(tzinfo=None), tokens=tokens)

    # Opening a session sweeps the ones that ended.
    await console_sessions.open(ops, now=ends, hours=0.5)
    assert len(await _stored(console_sessions)) == 1
    assert await console_sessions.find(key, now=NOW, tokens=tokens) is None  # gone, whatever the clock


async def test_a_revoked_token_ends_its_sessions(console_sessions: ConsoleSessions) -> None:
    tokens = TokenBook.from_config(TOKENS)
    sophie = tokens.principal_named("sophie")
    assert sophie is not None
    key, _ = await console_sessions.open(sophie, now=NOW, hours=8)
    assert await console_sessions.find(key, now=NOW, tokens=tokens) is not None
    # Her token is taken out of SALON_API_TOKENS.
    revoked = TokenBook.from_config([t for t in TOKENS if t["name"] != "sophie"])
    assert await console_sessions.find(key, now=NOW, tokens=revoked) is None
    # Her name now holds a token that does not open the console.
    demoted = TokenBook.from_config([
        {"name": "sophie", "token": "sophie-metrics-0123456789", "scopes": ["metrics"]}, TOKENS[1]])
    assert await console_sessions.find(key, now=NOW, tokens=demoted) is None
    assert await console_sessions.find(key, now=NOW, tokens=TokenBook()) is None


async def test_the_csrf_key_is_compared_and_kept_out_of_repr(console_sessions: ConsoleSessions) -> None:
    tokens = TokenBook.from_config(TOKENS)
    sophie = tokens.principal_named("sophie")
    assert sophie is not None
    key, session = await console_sessions.open(sophie, now=NOW, hours=8)
    assert len(session.csrf) >= 32
    assert session.csrf_ok(session.csrf)
    for wrong in (None, "", session.csrf[:-1], session.csrf + "=", session.csrf.upper() + "é", key):
        assert not session.csrf_ok(wrong), wrong
    found = await console_sessions.find(key, now=NOW, tokens=tokens)
    assert found is not None and found.csrf_ok(session.csrf)
    for shown in (repr(session), str(session), f"{found!r}", repr([session])):
        assert session.csrf not in shown and key not in shown
        assert "sophie" in shown


def test_session_hours_from_the_environment() -> None:
    assert session_hours({}) == 8.0
    assert session_hours({"SALON_CONSOLE_SESSION_HOURS": " 12 "}) == 12.0
    assert session_hours({"SALON_CONSOLE_SESSION_HOURS": "0.5"}) == 0.5
    for bad in ("0", "-1", "337", "eight", "nan"):
        with pytest.raises(ValueError, match="SALON_CONSOLE_SESSION_HOURS"):
            session_hours({"SALON_CONSOLE_SESSION_HOURS": bad})


# --------------------------------------------------------------------------- the client's file

FR_MARKETING = ("Je souhaite recevoir sur WhatsApp les invitations, avant-premières et nouvelles de "
                "Maison Solenne. Je peux répondre STOP à tout moment.")
FR_STOP = ("Vous ne recevrez plus d'invitations ni de nouvelles sur WhatsApp. Répondez START pour "
           "vous réabonner.")


@dataclass
class Book:
    crm: SqlCrm
    repairs: RepairBook

    async def record(self, wa_id: str) -> ClientRecord:
        found = await self.crm.find(wa_id=wa_id, user_id=None)
        assert found is not None
        return found


@pytest.fixture()
async def book(database_url: str) -> AsyncIterator[Book]:
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    repairs = RepairBook(engine=engine)
    await repairs.initialize()
    try:
        yield Book(SqlCrm(engine), repairs)
    finally:
        await engine.dispose()


async def test_claires_file_from_the_seeded_book(book: Book) -> None:
    engine = book.crm.engine
    mine = await book.repairs.open(conversation_id=CLAIRE, item="Constellation necklace", issue="The clasp slips",
                                   photos=[], now=NOW - timedelta(days=2), client_id="C-001",
                                   advisor_id="sophie-marchand", boutique_id="paris")
    done = await book.repairs.open(conversation_id=CLAIRE, item="Céleste saddle bag", issue="A loose strap",
                                   photos=[], now=NOW - timedelta(days=40), client_id="C-001",
                                   advisor_id="sophie-marchand", boutique_id="paris")
    await book.repairs.change(done.id, status="closed", note=None, by="sophie", now=NOW - timedelta(days=10))
    await book.repairs.open(conversation_id=ANTOINE, item="Watch", issue="Fogged glass", photos=[],
                            now=NOW - timedelta(days=1), client_id="C-002", advisor_id="camille-roux",
                            boutique_id="paris")

    claire = await book.record(CLAIRE)
    file = await read_client_file(engine, claire, now=NOW, repairs=book.repairs)
    assert file.record == claire and file.advisor_name == "Sophie Marchand"
    assert [(p.product_id, p.product_name, p.purchased_on) for p in file.purchases] == [
        ("FR-001", "Eau de Solenne", date(2026, 5, 2)),
        ("JW-001", "Constellation necklace", date(2025, 12, 19)),
        ("RW-005", "Étoile silk scarf", date(2025, 3, 21)),
        ("LG-002", "Céleste saddle bag", date(2024, 11, 8)),
    ]
    assert file.appointments == ({"id": "APT-20261127-PAR-01",
                                  "starts_at": datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc),
                                  "boutique_id": "paris", "service": "styling_session"},)
    assert file.orders == ({"id": "SOL-104233", "status": "shipped", "eta": date(2026, 11, 25),
                            "carrier": "DHL Express",
                            "tracking_url": "https://www.dhl.com/fr-en/home/tracking.html?tracking-id=4829301756"},)
    assert [r.id for r in file.repairs] == [mine.id]  # hers, still open
    assert [(c.purpose, c.granted, c.source, c.recorded_at) for c in file.consents] == [
        ("llm", True, "web", datetime(2026, 2, 3, 20, 15, tzinfo=timezone.utc)),
        ("marketing", True, "boutique_form", datetime(2024, 11, 8, 15, 42, tzinfo=timezone.utc)),
        ("personalisation", True, "boutique_form", datetime(2024, 11, 8, 15, 42, tzinfo=timezone.utc)),
        ("service", True, "boutique_form", datetime(2024, 11, 8, 15, 42, tzinfo=timezone.utc)),
        ("utility", True, "boutique_form", datetime(2024, 11, 8, 15, 42, tzinfo=timezone.utc)),
    ]
    assert next(c for c in file.consents if c.purpose == "marketing").text_shown == FR_MARKETING
    assert file.sizes == {"ready_to_wear": "38", "shoes": "38.5", "ring": "52"}
    assert file.preferences["colours"] == ["Tan", "Noir", "Camel"]
    [wish] = file.preferences["wishlist"]
    assert (wish["product_id"], wish["colour"], wish["size"]) == ("LG-002", "Tan", "one size")

    # Upcoming means from now on: the appointment is listed at its start, not a second later.
    starts = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    assert len((await read_client_file(engine, claire, now=starts)).appointments) == 1
    later = await read_client_file(engine, claire, now=starts + timedelta(seconds=1))
    assert later.appointments == () and later.repairs == ()  # and no repair book given: none
    with pytest.raises(ValueError, match="timezone-aware"):
        await read_client_file(engine, claire, now=NOW.replace(tzinfo=None))


async def test_the_latest_decision_per_purpose_is_shown_with_its_evidence(book: Book) -> None:
    engine = book.crm.engine
    # Hélène granted marketing at the boutique, then withdrew it with STOP.
    helene = await read_client_file(engine, await book.record(HELENE), now=NOW)
    marketing = next(c for c in helene.consents if c.purpose == "marketing")
    assert (marketing.granted, marketing.source, marketing.text_shown) == (False, "whatsapp_keyword", FR_STOP)
    assert marketing.recorded_at == datetime(2026, 1, 15, 8, 12, 44, tzinfo=timezone.utc)
    assert [c.purpose for c in helene.consents] == ["marketing", "personalisation", "service", "utility"]
    assert helene.orders == () and helene.appointments == ()
    # Claire withdraws the model-drafted replies in the boutique: the new decision is shown.
    async with engine.begin() as conn:
        await conn.execute(consents.insert().values(
            client_id="C-001", purpose="llm", granted=False, source="boutique_form",
            recorded_at=NOW - timedelta(hours=1), text_shown="Je ne souhaite plus de réponses rédigées par une IA."))
        count = (await conn.execute(select(func.count()).select_from(consents)
                                    .where(consents.c.client_id == "C-001"))).scalar_one()
    claire = await read_client_file(engine, await book.record(CLAIRE), now=NOW)
    llm = next(c for c in claire.consents if c.purpose == "llm")
    assert (llm.granted, llm.source, llm.recorded_at) == (False, "boutique_form", NOW - timedelta(hours=1))
    assert len(claire.consents) == 5 and count == 6  # one entry per purpose, however many decisions


# --------------------------------------------------------------------------- pages


def test_countdown() -> None:
    assert countdown(NOW + timedelta(hours=1, minutes=12, seconds=59), NOW) == "closes in 1 h 12"
    assert countdown(NOW + timedelta(hours=23, minutes=5), NOW) == "closes in 23 h 05"
    assert countdown(NOW + timedelta(hours=2), NOW) == "closes in 2 h 00"
    assert countdown(NOW + timedelta(minutes=8, seconds=30), NOW) == "closes in 8 min"
    assert countdown(NOW + timedelta(seconds=30), NOW) == "closes in 0 min"
    assert countdown(NOW, NOW) == "closed"
    assert countdown(NOW - timedelta(minutes=1), NOW) == "closed"
    assert countdown(None, NOW) == "closed"
    with pytest.raises(ValueError, match="timezone-aware"):
        countdown(NOW + timedelta(hours=1), NOW.replace(tzinfo=None))


def test_waited() -> None:
    assert waited(NOW - timedelta(minutes=3, seconds=59), NOW) == "waiting 3 min"
    assert waited(NOW - timedelta(minutes=59), NOW) == "waiting 59 min"
    assert waited(NOW - timedelta(hours=2, minutes=5), NOW) == "waiting 2 h 05"
    assert waited(NOW - timedelta(hours=23, minutes=59), NOW) == "waiting 23 h 59"
    assert waited(NOW - timedelta(days=1, hours=3), NOW) == "waiting 1 day"
    assert waited(NOW - timedelta(days=3), NOW) == "waiting 3 days"
    assert waited(NOW + timedelta(minutes=5), NOW) == "waiting 0 min"  # a clock a little ahead


def test_said_shows_a_preference_as_a_person_reads_it() -> None:
    assert said("leather_goods") == "leather goods"
    assert said("Prefers discreet packaging, no logo on the shopping bag.") == (
        "Prefers discreet packaging, no logo on the shopping bag.")
    assert said(["Tan", "Noir", "Camel"]) == "Tan; Noir; Camel"
    assert said([{"product_id": "LG-002", "colour": "Tan", "size": "one size"}]) == "LG-002 · Tan · one size"
    assert said({"product_id": "LG-002"}) == "LG-002"
    assert said({"occasion": "wedding_guest", "budget": 2000}) == "occasion: wedding guest, budget: 2000"
    assert said(("ready_to_wear", "jewellery")) == "ready to wear; jewellery"
    assert said(38.5) == "38.5"
    assert said(["Prefers discreet packaging.", "Happy to be contacted after 18:00."]) == (
        "Prefers discreet packaging. Happy to be contacted after 18:00.")
    for value in (["Tan"], {"colour": "Tan"}, ("a",)):
        shown = said(value)
        assert "[" not in shown and "{" not in shown and "(" not in shown and "'" not in shown


def test_pages_escape_what_clients_and_advisors_wrote() -> None:
    hostile = '<script>alert("x")</script>'
    shown = render("inbox.html", base="/console", session=None, rows=[row(STRANGER, name=hostile, last_at=NOW)],
                   view="all", query='"><img src=x onerror=alert(1)>',
                   filters=(("all", "All"),), notice=hostile, notice_kind="info",
                   countdown=lambda at: countdown(at, NOW), waited=lambda at: waited(at, NOW))
    assert "<script>" not in shown and "<img src=x" not in shown
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in shown
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in shown
    assert shown.count('<script src="/console/static/console.js" defer></script>') == 1  # the page's own
    refused = render("refused.html", base="/console", session=None, reason=hostile)
    assert "<script>" not in refused and "&lt;script&gt;" in refused


def test_static_files_come_from_a_fixed_list() -> None:
    assert set(STATIC_FILES) == {"console.css", "console.js", "monogram.svg"}
    for name, kind in STATIC_FILES.items():
        found = static_file(name)
        assert found is not None
        body, served = found
        assert served == kind and body
    css = static_file("console.css")
    assert css is not None and css[1] == "text/css; charset=utf-8"
    for name in ("../sessions.py", "../templates/base.html", "static/console.css", "/etc/passwd",
                 "console.css/../../pages.py", "Console.css", "", ".", "..", "console.css "):
        assert static_file(name) is None, name
