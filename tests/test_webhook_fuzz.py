"""The webhook under attack: over ten thousand mutated and garbage signed payloads.

Mutations of Meta's real payloads (../shared/fixtures/whatsapp) and random JSON go
through :meth:`WebhookService.handle` on real SQLite stores, a few hundred more through
the real Sanic blueprint. Every answer is 200 or a 4xx, never a 5xx and never a stack
trace; afterwards the stores agree with each other: every message acknowledged is in the
inbox and was handled, every inbox message that opens a window has its client's session,
every status and preference acknowledged is recorded. Under a simulated store outage
(a Redis session store that cannot be reached) the answer is 503 and nothing of the
message is left behind, so Meta's retry finds everything as it was.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from salon.clock import ManualClock, from_us
from salon.config import Settings
from salon.consent.book import ConsentBook, preferences_table
from salon.guard.sender import GuardedSender
from salon.guard.sent import SentLog, outbound_table
from salon.templates.registry import TemplateRegistry
from salon.webhook.inbox import Inbox, InboxItem, inbox_table
from salon.webhook.pipeline import Reply, Turn, WebhookService, client_of_item
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.whatsapp.signature import sign
from salon.whatsapp.updates import WebhookFormatError, parse_body, parse_webhook
from salon.window.redis_store import RedisSessionStore
from salon.window.sql_store import SqlSessionStore
from salon.window.state import SessionStore
from tests.whatsapp_support import APP_SECRET, SHARED_FIXTURES, VERIFY_TOKEN, running_channel

OUR_NUMBER = "1"
"""The phone number id the rig's channel serves (the fixtures are rewritten to it: a
webhook of another number is ignored, and a fuzz of those would test only that)."""


def _as_ours(doc: dict[str, Any]) -> dict[str, Any]:
    for entry in doc.get("entry") or []:
        for change in entry.get("changes") or []:
            metadata = (change.get("value") or {}).get("metadata")
            if isinstance(metadata, dict) and "phone_number_id" in metadata:
                metadata["phone_number_id"] = OUR_NUMBER
    return doc


FIXTURES = [
    _as_ours(json.loads(path.read_text()))
    for path in sorted(SHARED_FIXTURES.glob("*.json"))
    if json.loads(path.read_text()).get("object") == "whatsapp_business_account"
]
SERVICE_EXAMPLES = 10_000
SEED = 20261206
BLUEPRINT_EXAMPLES = 300


async def _instant(_seconds: float) -> None:
    return None


class Rig:
    """A webhook pipeline on real stores, driven from a synchronous test."""

    def __init__(self, url: str, sessions: SessionStore | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.url = url
        self.turns: list[Turn] = []
        self.replies: list[Reply] = []
        self.acknowledged: list[bytes] = []
        self._sessions = sessions
        self.service: WebhookService = self.run(self._build())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _build(self) -> WebhookService:
        clock = ManualClock(datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc))
        records = Inbox(self.url)
        await records.initialize()
        sent = SentLog(engine=records.engine)
        await sent.initialize()
        sessions = self._sessions
        if sessions is None:  # an outage store is passed in as it is, never reachable
            sessions = SqlSessionStore(engine=records.engine, clock=clock)
            await sessions.initialize()
        consents = ConsentBook(engine=records.engine)
        await consents.initialize()
        registry = TemplateRegistry.load_default()
        # Nothing listens on port 9: mark-as-read calls fail at once and are logged.
        graph = GraphClient(GraphConfig(access_token="t", phone_number_id=OUR_NUMBER, base_url="http://127.0.0.1:9"),
                            sleep=_instant)
        sender = GuardedSender(graph=graph, sessions=sessions, sent=sent,
                               profile_name=records.latest_profile_name, consents=consents,
                               registry=registry, clock=clock)
        self.graph, self.records, self.sessions, self.consents = graph, records, sessions, consents

        async def on_turn(turn: Turn) -> None:
            self.turns.append(turn)

        return WebhookService(app_secret=APP_SECRET, verify_token=VERIFY_TOKEN, phone_number_id=OUR_NUMBER,
                              sessions=sessions, inbox=records, sent=sent, consents=consents, registry=registry,
                              sender=sender, clock=clock, on_turn=on_turn)

    def post(self, body: bytes) -> Reply:
        reply: Reply = self.run(self.service.handle(body, sign(body, APP_SECRET)))
        self.replies.append(reply)
        if reply.status == 200:
            self.acknowledged.append(body)
        return reply

    def close(self) -> None:
        async def shutdown() -> None:
            assert await self.service.drain(timeout=60)
            await self.graph.close()
            await self.sessions.close()
            await self.records.close()

        try:
            self.run(shutdown())
        finally:
            self.loop.close()
        self.loop.close()


# --------------------------------------------------------------------------- strategies

LEAVES: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**64, -(2**70), 1.5, float("nan"), float("inf"), "", "text",
    "messages", "statuses", "user_preferences", "stop", "resume", "failed", "read", "33600000001",
    "US.13491208655302741918", "1672947578", "99999999999999", "-5", "\x00", "\ud800", "x" * 300,
    "/opt_out", "STOP", "wamid.fuzz", {}, [], [[]], {"": None},
]


def random_json(rnd: random.Random, depth: int = 0) -> Any:
    """A JSON value: Meta-shaped leaves and random ones, nested a little."""
    roll = rnd.random()
    if depth < 4 and roll < 0.15:
        return [random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    if depth < 4 and roll < 0.3:
        return {rnd.choice(["id", "type", "text", "from", "timestamp", "value", "x", ""]) + str(rnd.randint(0, 2)):
                random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}
    if roll < 0.7:
        return copy.deepcopy(rnd.choice(LEAVES))
    if roll < 0.85:
        return "".join(chr(rnd.randint(0, 0x2FFF)) for _ in range(rnd.randint(0, 20)))
    return rnd.randint(-(2**40), 2**40)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def mutate(doc: Any, path: tuple[Any, ...], operation: str, value: Any) -> Any:
    if not path:
        return value if operation == "replace" else doc
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if operation == "replace":
        parent[last] = value
    elif operation == "delete":
        del parent[last]
    elif operation == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    elif operation == "wrap":
        parent[last] = [parent[last]] if not isinstance(parent[last], list) else {"v": parent[last]}
    elif operation == "stringify":
        parent[last] = json.dumps(parent[last])
    return doc


def mutated(fixture: dict[str, Any], rnd: random.Random) -> bytes:
    """One of Meta's payloads with one to four fields replaced, deleted, duplicated,
    wrapped or turned into strings."""
    doc: Any = copy.deepcopy(fixture)
    for _ in range(rnd.randint(1, 4)):
        path = rnd.choice(list(paths(doc)))
        operation = rnd.choice(["replace", "replace", "delete", "duplicate", "wrap", "stringify"])
        doc = mutate(doc, path, operation, random_json(rnd))
    return json.dumps(doc, allow_nan=True).encode()


def garbage(rnd: random.Random) -> bytes:
    kind = rnd.randrange(6)
    if kind == 0:
        return rnd.randbytes(rnd.randint(0, 200))
    if kind == 1:
        return json.dumps(random_json(rnd)).encode()
    if kind == 2:
        return json.dumps({"object": "whatsapp_business_account", "entry": random_json(rnd)}).encode()
    if kind == 3:
        return json.dumps({"object": "whatsapp_business_account",
                           "entry": [{"changes": [{"field": rnd.choice(["messages", "user_preferences",
                                                                        "message_template_status_update"]),
                                                   "value": random_json(rnd)}]}]}).encode()
    if kind == 4:
        depth = rnd.randint(33, 3000)
        return ("[" * depth + "]" * depth).encode()
    return ('{"object": ' + "9" * rnd.randint(4400, 6000) + "}").encode()


mutated_fixtures = st.builds(mutated, st.sampled_from(FIXTURES), st.randoms(use_true_random=False))
payloads = st.one_of(mutated_fixtures, st.builds(garbage, st.randoms(use_true_random=False)))


# --------------------------------------------------------------------------- checks


def check_consistent(rig: Rig) -> None:
    """Everything acknowledged is stored, handled and agrees across the stores."""
    async def load() -> tuple[dict[str, Any], set[str], set[tuple[str, str]]]:
        async with rig.records.engine.connect() as conn:
            inbox = {row.wamid: row for row in (await conn.execute(select(inbox_table))).all()}
            outbound = {row.wamid for row in (await conn.execute(select(outbound_table.c.wamid))).all()}
            prefs = {(row.phone_number_id, row.client_id)
                     for row in (await conn.execute(select(preferences_table))).all()}
        return inbox, outbound, prefs

    inbox, outbound, prefs = rig.run(load())
    for body in rig.acknowledged:
        batch = parse_webhook(parse_body(body))
        for message in batch.messages:
            row = inbox.get(message.wamid)
            if message.phone_number_id != OUR_NUMBER:
                # Another number of the account: not ours to keep or answer.
                assert row is None or row.phone_number_id == OUR_NUMBER, message.wamid
                continue
            assert row is not None, f"acknowledged message {message.wamid!r} is not in the inbox"
            assert row.state in ("done", "skipped"), (message.wamid, row.state, row.error)
        for status in batch.statuses:
            if status.phone_number_id != OUR_NUMBER:
                continue
            if status.status in ("sent", "delivered", "read", "played", "failed"):
                assert status.wamid in outbound, f"acknowledged status for {status.wamid!r} not recorded"
        for update in batch.preferences:
            assert any((update.client.phone_number_id, alias) in prefs for alias in update.client.aliases)
    for row in inbox.values():
        if row.state == "done":
            client = client_of_item(_item_of(row))
            assert rig.run(rig.sessions.get(client)) is not None, f"{row.wamid!r} handled without a session"


def _item_of(row: Any) -> InboxItem:
    return InboxItem(wamid=row.wamid, phone_number_id=row.phone_number_id, sender_id=row.sender_id,
                     sent_at=from_us(row.sent_us), text=row.text, metadata=row.metadata, state=row.state,
                     attempts=row.attempts)


def check_reply(reply: Reply) -> None:
    assert reply.status in (200, 400, 401, 403), reply
    assert "Traceback" not in reply.body and 'File "' not in reply.body


def post_seeded(rig: Rig, count: int, seed: int = SEED) -> None:
    """``count`` bodies from one seeded generator, half mutated fixtures and half garbage,
    each posted and its answer checked; a failure names the body by its seed and index.
    Drawing them this way costs nothing beside the pipeline, where Hypothesis's engine
    took three quarters of the 10,000-body test's time (56 s against 12.5 s alone).
    """
    rnd = random.Random(seed)
    for index in range(count):
        body = mutated(rnd.choice(FIXTURES), rnd) if rnd.random() < 0.5 else garbage(rnd)
        try:
            check_reply(rig.post(body))
        except AssertionError as exc:
            raise AssertionError(f"body {index} of seed {seed}: {body[:500]!r}") from exc


# --------------------------------------------------------------------------- tests


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    # In memory-backed storage when there is some: the fuzzing is about the parser and
    # the pipeline's consistency, not the disk's fsync.
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    rig = Rig(f"sqlite:///{folder / 'fuzz.db'}")
    try:
        yield rig
    finally:
        rig.close()
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)


def test_ten_thousand_mutated_and_garbage_payloads(rig: Rig) -> None:
    # The unmutated fixtures first: the baseline is accepted.
    for doc in FIXTURES:
        assert rig.post(json.dumps(doc).encode()).status == 200

    post_seeded(rig, SERVICE_EXAMPLES)
    assert len(rig.replies) >= SERVICE_EXAMPLES
    assert rig.run(rig.service.drain(timeout=60))
    statuses = {r.status for r in rig.replies}
    assert 200 in statuses and 400 in statuses, statuses
    assert rig.turns, "no mutated payload produced a turn: the fuzzing never got past the parser"
    check_consistent(rig)


PG_EXAMPLES = 1_000


def test_mutated_payloads_on_postgresql_keep_the_stores_consistent(postgres_url: str) -> None:
    """PostgreSQL is stricter than SQLite (column lengths, NUL characters, integer ranges):
    the same fuzzing on it gives no 5xx either."""
    rig = Rig(postgres_url)
    try:
        post_seeded(rig, PG_EXAMPLES)
        assert rig.run(rig.service.drain(timeout=60))
        assert {r.status for r in rig.replies} >= {200, 400}
        check_consistent(rig)
    finally:
        rig.close()


def test_store_outage_is_503_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    # A Redis session store that cannot be reached: the inbox claim must be released.
    dead = RedisSessionStore("redis://127.0.0.1:9/0")
    rig = Rig(f"sqlite:///{tmp_path / 'outage.db'}", sessions=dead)
    try:
        @settings(max_examples=200, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(mutated_fixtures)
        def post(body: bytes) -> None:
            reply = rig.post(body)
            assert reply.status in (200, 400, 503), reply
            assert "Traceback" not in reply.body

        post()
        assert any(r.status == 503 for r in rig.replies)

        async def inbox_rows() -> int:
            async with rig.records.engine.connect() as conn:
                return len((await conn.execute(select(inbox_table.c.wamid))).all())

        # Whatever needed the session store was answered 503 and released; what was
        # acknowledged (statuses, reactions: no window) is consistent. A message that
        # extends the window can only have been acknowledged as a duplicate of a row an
        # earlier acknowledged post stored (the same wamid as a reaction, say).
        acked = [m for body in rig.acknowledged for m in parse_webhook(parse_body(body)).messages]
        extending = {m.wamid for m in acked if m.extends_window}
        assert extending <= {m.wamid for m in acked if not m.extends_window}
        assert rig.run(inbox_rows()) == len({m.wamid for body in rig.acknowledged
                                             for m in parse_webhook(parse_body(body)).messages})
    finally:
        rig.close()


async def test_hundreds_of_payloads_through_the_real_blueprint(tmp_path: Path) -> None:
    settings_ = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'bp.db'}",
                         redis_url=None)
    bodies: list[bytes] = []

    @settings(max_examples=BLUEPRINT_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(payloads)
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    async with running_channel(settings_) as ch:
        seen: set[int] = set()
        for body in bodies:
            code, text = await ch.post(None, raw=body)
            seen.add(code)
            assert code in (200, 400, 401, 403), (code, text, body[:200])
            assert "Traceback" not in text and 'File "' not in text
        await ch.settle()
    assert len(bodies) >= BLUEPRINT_EXAMPLES and 200 in seen and 400 in seen


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", 12345), ("id", "w" * 500), ("timestamp", True), ("timestamp", "soon"), ("timestamp", 10**15),
     ("from", {"wa_id": "1"}), ("from", "not-a-number"), ("from_user_id", 7), ("type", ["text"])],
)
def test_a_wrong_type_rejects_its_own_message_with_a_reason_and_keeps_the_rest(field: str, value: Any) -> None:
    good = {"from": "33600000001", "id": "wamid.good", "timestamp": "1764061200", "type": "text",
            "text": {"body": "Bonjour"}}
    bad = {**good, "id": "wamid.bad", field: value}
    body = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "100000000000001"}, "messages": [bad, good]}}]}]}
    batch = parse_webhook(parse_body(json.dumps(body).encode()))
    assert [m.wamid for m in batch.messages] == ["wamid.good"]
    [(where, why)] = batch.rejected
    assert where.endswith("messages[0]") and why.startswith("message not understood")


def test_deep_nesting_and_unstorable_text_are_handled_before_parsing() -> None:
    with pytest.raises(WebhookFormatError, match="nested deeper"):
        parse_body(b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 40 + b"]" * 40 + b"}")
    with pytest.raises(WebhookFormatError, match="nested deeper"):
        parse_body(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(WebhookFormatError, match="not JSON"):
        parse_body(b'{"object": ' + b"9" * 5000 + b"}")
    body = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "100000000000001"}, "messages": [
            {"from": "33600000001", "id": "wamid.nul", "timestamp": "1764061200", "type": "text",
             "text": {"body": "a\u0000b\ud800c"}}]}}]}]}
    [message] = parse_webhook(parse_body(json.dumps(body).encode())).messages
    assert message.text == "a\ufffdb\ufffdc"
