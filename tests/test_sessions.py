"""Per-client session state: one suite, three backends (SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from salon.config import Settings
from salon.identity import ClientRef
from salon.whatsapp.errors import from_status_error
from salon.whatsapp.updates import parse_webhook
from salon.window.redis_store import RedisSessionStore
from salon.window.sql_store import SqlSessionStore
from salon.window.state import InboundRecord, SessionStore
from salon.window.stores import session_store_from_settings

UTC = timezone.utc
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
PN = "106540352242922"
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "whatsapp"


def shared_fixture(name: str) -> dict[str, Any]:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures folder absent: {SHARED_FIXTURES}")
    [path] = sorted(SHARED_FIXTURES.glob(f"{name}_*.json"))
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    backend: SessionStore
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        backend = RedisSessionStore(url, prefix=f"salon-test:{uuid.uuid4().hex}")
    elif request.param == "postgresql":
        backend = SqlSessionStore(request.getfixturevalue("postgres_url"))
    else:
        backend = SqlSessionStore(request.getfixturevalue("sqlite_url"))
    await backend.initialize()
    try:
        yield backend
    finally:
        if isinstance(backend, RedisSessionStore):
            await backend.clear()
        await backend.close()


def client(n: int = 1) -> ClientRef:
    return ClientRef(PN, wa_id=f"3361234{n:04d}")


# --------------------------------------------------------------------------- inbound


async def test_first_message_opens_a_session(store: SessionStore) -> None:
    ref = client()
    assert await store.get(ref) is None
    result = await store.record_inbound(ref, T0, message_id="wamid.1")
    assert result.advanced and result.new_session
    state = result.state
    assert state.last_inbound_at == T0 and state.last_inbound_id == "wamid.1"
    assert state.session_started_at == T0 and state.session_count == 1
    assert state.prior_inbound_at is None
    assert state.wa_id == ref.wa_id and state.client_key == ref.key
    assert await store.get(ref) == state
    assert state.window(T0 + timedelta(hours=1)).can_send_free_form


async def test_last_inbound_never_goes_backwards(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0 + timedelta(minutes=10), message_id="late-but-newer")
    older = await store.record_inbound(ref, T0, message_id="older")
    assert not older.advanced and not older.new_session
    assert older.state.last_inbound_at == T0 + timedelta(minutes=10)
    assert older.state.last_inbound_id == "late-but-newer"
    # the older message was part of the same session: the session start moves back
    assert older.state.session_started_at == T0
    duplicate = await store.record_inbound(ref, T0 + timedelta(minutes=10))
    assert not duplicate.advanced


async def test_50_concurrent_out_of_order_updates_max_wins(store: SessionStore) -> None:
    ref = client()
    stamps = [T0 + timedelta(seconds=7 * i, microseconds=i) for i in range(50)]
    shuffled = stamps[:]
    random.Random(3).shuffle(shuffled)
    results = await asyncio.gather(
        *(store.record_inbound(ref, t, message_id=f"m{stamps.index(t)}") for t in shuffled)
    )
    state = await store.get(ref)
    assert state is not None
    assert state.last_inbound_at == max(stamps)
    assert state.last_inbound_id == "m49"
    assert state.session_count == 1
    assert state.session_started_at == min(stamps)
    assert sum(r.new_session for r in results) == 1


async def test_concurrent_first_contact_with_both_ids(store: SessionStore) -> None:
    refs = [ClientRef(PN, user_id="FR.777", wa_id="33699990000")] * 10 + [
        ClientRef(PN, user_id="FR.777")
    ] * 10
    await asyncio.gather(
        *(store.record_inbound(r, T0 + timedelta(seconds=i)) for i, r in enumerate(refs))
    )
    a = await store.get(ClientRef(PN, wa_id="33699990000"))
    b = await store.get(ClientRef(PN, user_id="FR.777"))
    assert a is not None and a == b
    assert a.last_inbound_at == T0 + timedelta(seconds=19)


async def test_new_session_exactly_when_the_window_closed(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0)
    same = await store.record_inbound(ref, T0 + DAY - timedelta(microseconds=1))
    assert same.advanced and not same.new_session
    assert same.state.session_count == 1
    last = same.state.last_inbound_at
    assert last is not None
    new = await store.record_inbound(ref, last + DAY)
    assert new.new_session
    assert new.state.session_count == 2
    assert new.state.session_started_at == last + DAY
    assert new.state.prior_inbound_at == last


async def test_late_message_of_new_session_moves_its_start(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0)
    second = T0 + timedelta(hours=30)
    third = second + timedelta(minutes=5)
    await store.record_inbound(ref, third)  # arrives first
    result = await store.record_inbound(ref, second)
    assert result.state.session_started_at == second
    assert result.state.session_count == 2
    # a late message of the previous session does not touch the current one
    again = await store.record_inbound(ref, T0 + timedelta(hours=1))
    assert again.state.session_started_at == second


async def test_entry_point_and_fep(store: SessionStore) -> None:
    ref = client()
    result = await store.record_inbound(ref, T0, entry_point="ctwa_ad")
    assert result.state.entry_point == "ctwa_ad"
    assert result.state.referral_at == T0
    reply = T0 + timedelta(seconds=20)
    state = await store.record_reply(ref, reply)
    assert state.first_reply_at == reply
    later = await store.record_reply(ref, reply + timedelta(minutes=1))
    assert later.first_reply_at == reply  # the first reply counts
    window = state.window(T0 + timedelta(hours=40))
    assert not window.is_open
    assert window.free_entry_point_until == reply + timedelta(hours=72)
    assert window.fep_active
    # an organic message later in the session keeps the FEP
    after = await store.record_inbound(ref, T0 + timedelta(hours=2))
    assert after.state.referral_at == T0 and after.state.entry_point == "ctwa_ad"


async def test_reply_after_24h_opens_no_fep(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0, entry_point="ctwa")
    state = await store.record_reply(ref, T0 + DAY)
    assert state.first_reply_at is None
    assert state.window(T0 + DAY).free_entry_point_until is None
    organic = client(2)
    await store.record_inbound(organic, T0)
    assert (await store.record_reply(organic, T0)).first_reply_at is None


# --------------------------------------------------------------------------- 131047


async def test_131047_marks_the_window_closed_until_a_newer_inbound(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0)
    failed_at = T0 + timedelta(hours=2)
    error = from_status_error({"code": 131047, "title": "Re-engagement message"})
    state = await store.record_failure(ref, error, failed_at)
    assert state is not None
    assert state.window_closed_at == failed_at and state.window_closed_code == 131047
    assert not state.window(T0 + timedelta(hours=3)).is_open
    # the client writes again: open, and it is a new session
    reopened = await store.record_inbound(ref, failed_at + timedelta(seconds=1))
    assert reopened.new_session
    assert reopened.state.window_closed_at is None
    assert reopened.state.window(failed_at + timedelta(seconds=2)).can_send_free_form


async def test_stale_131047_is_ignored(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0 + timedelta(hours=1))
    state = await store.record_window_closed(ref, T0)
    assert state.window_closed_at is None
    assert state.window(T0 + timedelta(hours=2)).can_send_free_form


async def test_non_window_failures_change_nothing(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0)
    assert await store.record_failure(ref, from_status_error({"code": 130429}), T0) is None
    state = await store.get(ref)
    assert state is not None and state.window_closed_at is None


async def test_131047_for_a_client_who_never_wrote(store: SessionStore) -> None:
    ref = client()
    state = await store.record_window_closed(ref, T0, code=470)
    assert state.window_closed_code == 470 and state.last_inbound_at is None
    first = await store.record_inbound(ref, T0 + timedelta(minutes=1))
    assert first.new_session and first.state.session_count == 1


# --------------------------------------------------------------------------- identity


async def test_state_recorded_under_wa_id_found_by_a_message_with_both(store: SessionStore) -> None:
    await store.record_inbound(ClientRef(PN, wa_id="33611112222"), T0)
    both = ClientRef(PN, user_id="FR.123", wa_id="33611112222")
    found = await store.get(both)
    assert found is not None and found.last_inbound_at == T0
    result = await store.record_inbound(both, T0 + timedelta(minutes=1))
    assert result.state.client_key == "w:33611112222"
    assert result.state.user_id == "FR.123"
    by_bsuid = await store.get(ClientRef(PN, user_id="FR.123"))
    assert by_bsuid == result.state


async def test_state_recorded_under_bsuid_found_by_wa_id_later(store: SessionStore) -> None:
    await store.record_inbound(ClientRef(PN, user_id="FR.55"), T0)
    await store.record_inbound(ClientRef(PN, user_id="FR.55", wa_id="33655556666"), T0)
    by_wa = await store.get(ClientRef(PN, wa_id="33655556666"))
    assert by_wa is not None and by_wa.client_key == "u:FR.55"
    assert by_wa.wa_id == "33655556666"


async def test_separate_states_are_merged_when_linked(store: SessionStore) -> None:
    wa_only = ClientRef(PN, wa_id="33677778888")
    bsuid_only = ClientRef(PN, user_id="FR.9")
    await store.record_inbound(wa_only, T0 + timedelta(hours=5), message_id="from-phone")
    await store.park(wa_only, {"text": "parked under the phone"}, item_id="p1", at=T0)
    await store.record_inbound(bsuid_only, T0)
    await store.park(bsuid_only, {"text": "parked under the bsuid"}, item_id="b1", at=T0)
    result = await store.record_inbound(
        ClientRef(PN, user_id="FR.9", wa_id="33677778888"), T0 + timedelta(hours=1)
    )
    state = result.state
    assert state.client_key == "u:FR.9"
    assert state.last_inbound_at == T0 + timedelta(hours=5)
    assert state.parked_count == 2
    for ref in (wa_only, bsuid_only):
        assert await store.get(ref) == state
    items = await store.take_parked(wa_only)
    assert [i.id for i in items] == ["b1", "p1"]


def test_client_ref_needs_an_id() -> None:
    with pytest.raises(ValueError):
        ClientRef(PN)
    with pytest.raises(ValueError):
        ClientRef("", wa_id="1")
    assert ClientRef(PN, user_id="A", wa_id="1").aliases == ("u:A", "w:1")


def test_client_ref_from_real_webhooks() -> None:
    text = parse_webhook(shared_fixture("01")).messages[0]
    assert text.client == ClientRef("409552778964973", wa_id="1111111111111")
    assert text.entry_point == "organic"
    assert parse_webhook(shared_fixture("18")).messages[0].entry_point == "ctwa_ad"
    bsuid = parse_webhook(shared_fixture("24")).statuses[0].client
    assert bsuid is not None
    assert bsuid.user_id == "US.13491208655302741918" and bsuid.wa_id == "972987654321"
    assert bsuid.key == "u:US.13491208655302741918"


# --------------------------------------------------------------------------- parked


async def test_parked_fifo_take_all(store: SessionStore) -> None:
    ref = client()
    for i in range(5):
        item = await store.park(ref, {"n": i, "text": f"message {i}"}, at=T0 + timedelta(seconds=i))
        assert item is not None
    peek = await store.parked(ref)
    assert [p.payload["n"] for p in peek] == [0, 1, 2, 3, 4]
    assert peek[0].parked_at == T0
    state = await store.get(ref)
    assert state is not None and state.parked_count == 5
    taken = await store.take_parked(ref)
    assert [p.payload["n"] for p in taken] == [0, 1, 2, 3, 4]
    assert [p.id for p in taken] == [p.id for p in peek]
    assert await store.take_parked(ref) == []
    assert await store.parked(ref) == []


async def test_parking_is_idempotent_per_id(store: SessionStore) -> None:
    ref = client()
    assert await store.park(ref, {"a": 1}, item_id="outbound-42", at=T0) is not None
    assert await store.park(ref, {"a": 2}, item_id="outbound-42", at=T0) is None
    [item] = await store.take_parked(ref)
    assert item.payload == {"a": 1}
    # once delivered, the same id may be parked again
    assert await store.park(ref, {"a": 3}, item_id="outbound-42", at=T0) is not None


async def test_concurrent_takers_get_each_item_once(store: SessionStore) -> None:
    ref = client()
    for i in range(20):
        await store.park(ref, {"n": i}, item_id=f"i{i}", at=T0)
    batches = await asyncio.gather(*(store.take_parked(ref) for _ in range(8)))
    ids = [item.id for batch in batches for item in batch]
    assert sorted(ids) == sorted(f"i{i}" for i in range(20))
    assert len(ids) == len(set(ids))


async def test_parked_items_are_held_while_delivered_and_only_sent_ones_forgotten(store: SessionStore) -> None:
    """M3: a delivery holds the items (a second delivery gets none of them), forgets each
    one it sent and gives back the rest; a holder that died lets go after its lease."""
    ref = client()
    for i in range(3):
        await store.park(ref, {"n": i}, item_id=f"p{i}", at=T0 + timedelta(seconds=i))
    first = await store.claim_parked(ref)
    assert [item.id for item in first.items] == ["p0", "p1", "p2"]
    assert (await store.claim_parked(ref)).items == []  # held by the first delivery
    await store.remove_parked(ref, "p0")  # sent
    await store.release_parked(ref, first)  # p1 failed: p1 and p2 wait
    state = await store.get(ref)
    assert state is not None and state.parked_count == 2
    assert [item.id for item in await store.parked(ref)] == ["p1", "p2"]

    dead = await store.claim_parked(ref, lease=timedelta(milliseconds=50))
    assert [item.id for item in dead.items] == ["p1", "p2"]
    assert (await store.claim_parked(ref)).items == []
    await asyncio.sleep(0.2)  # its holder never came back
    again = await store.claim_parked(ref)
    assert [item.id for item in again.items] == ["p1", "p2"]
    for item in again.items:
        await store.remove_parked(ref, item.id)
    await store.release_parked(ref, again)
    assert await store.parked(ref) == [] and (await store.claim_parked(ref)).items == []
    # A delivered id may be parked again.
    assert await store.park(ref, {"n": 9}, item_id="p1", at=T0) is not None


async def test_park_rejects_what_json_cannot_hold(store: SessionStore) -> None:
    with pytest.raises(TypeError):
        await store.park(client(), {"when": T0})


async def test_unknown_client_reads(store: SessionStore) -> None:
    ref = client(99)
    assert await store.get(ref) is None
    assert await store.parked(ref) == []
    assert await store.take_parked(ref) == []


# --------------------------------------------------------------------------- misc


async def test_nudge_pending_until_the_client_answers(store: SessionStore) -> None:
    ref = client()
    await store.record_inbound(ref, T0)
    state = await store.record_nudge(ref, T0 + timedelta(hours=30))
    assert state.nudge_pending
    older = await store.record_nudge(ref, T0 + timedelta(hours=29))
    assert older.nudged_at == T0 + timedelta(hours=30)
    answered = await store.record_inbound(ref, T0 + timedelta(hours=31))
    assert not answered.state.nudge_pending


async def test_get_many_keeps_order(store: SessionStore) -> None:
    refs = [client(i) for i in range(30)]
    for i, ref in enumerate(refs[:20]):
        await store.record_inbound(ref, T0 + timedelta(minutes=i))
    states = await store.get_many(refs)
    assert len(states) == 30
    for i, state in enumerate(states[:20]):
        assert state is not None and state.last_inbound_at == T0 + timedelta(minutes=i)
    assert states[20:] == [None] * 10


async def test_forget_erases_everything(store: SessionStore) -> None:
    ref = ClientRef(PN, user_id="FR.1", wa_id="33600000001")
    await store.record_inbound(ref, T0)
    await store.park(ref, {"x": 1}, at=T0)
    await store.forget(ref)
    assert await store.get(ref) is None
    assert await store.get(ClientRef(PN, wa_id="33600000001")) is None
    assert await store.parked(ref) == []


async def test_naive_times_are_rejected(store: SessionStore) -> None:
    with pytest.raises(ValueError):
        await store.record_inbound(client(), T0.replace(tzinfo=None))


# --------------------------------------------------------------------------- model check


@dataclass
class Model:
    """The rules of the module docstring, written plainly."""

    L: datetime | None = None
    S: datetime | None = None
    P: datetime | None = None
    F: datetime | None = None
    N: int = 0

    def inbound(self, t: datetime) -> None:
        if self.L is None or t > self.L:
            opens = (
                self.L is None
                or t >= self.L + DAY
                or (self.F is not None and self.F >= self.L and t > self.F)
            )
            if opens:
                self.P, self.S, self.N = self.L, t, self.N + 1
            self.L = t
            if self.F is not None and t > self.F:
                self.F = None
        elif (
            self.S is not None
            and self.S - DAY < t < self.S
            and (self.P is None or t >= self.P + DAY)
        ):
            self.S = t

    def closed(self, t: datetime) -> None:
        if (self.L is None or t >= self.L) and (self.F is None or t > self.F):
            self.F = t


@pytest.mark.parametrize("seed", range(4))
async def test_random_histories_match_the_model(store: SessionStore, seed: int) -> None:
    rng = random.Random(seed)
    ref = client(seed)
    model = Model()
    for _ in range(40):
        t = T0 + timedelta(hours=rng.choice([0, 3, 12, 23, 24, 25, 30, 47, 48, 50, 75, 100]),
                           seconds=rng.randrange(0, 4))
        if rng.random() < 0.8:
            model.inbound(t)
            state = (await store.record_inbound(ref, t)).state
        else:
            model.closed(t)
            state = await store.record_window_closed(ref, t)
        assert (state.last_inbound_at, state.session_started_at, state.prior_inbound_at,
                state.window_closed_at, state.session_count) == (
            model.L, model.S, model.P, model.F, model.N
        )


# --------------------------------------------------------------------------- many at once


def _same_state(a: Any, b: Any) -> tuple[Any, ...]:
    fields = ("last_inbound_at", "last_inbound_id", "session_started_at", "prior_inbound_at",
              "session_count", "entry_point", "referral_at", "window_closed_at", "parked_count")
    return tuple(getattr(a, f) for f in fields), tuple(getattr(b, f) for f in fields)


@pytest.mark.parametrize("seed", range(3))
async def test_record_inbound_many_gives_what_one_by_one_gives(store: SessionStore, seed: int) -> None:
    """Random messages of new and known clients, some by wa_id only, some by BSUID only,
    some with both (so groups hold clients seen for the first time, clients sharing an
    id, and states to merge), recorded in random groups on one number and one by one on
    another: the same results, message by message, and the same states."""
    rng = random.Random(seed)
    batched_pn, single_pn = "106540352240001", "106540352240002"
    people = [(f"FR.{seed}{n}", f"3367{seed}{n:05d}") for n in range(6)]
    messages = []
    for k in range(60):
        user, wa = rng.choice(people)
        ids = rng.choice([(user, None), (None, wa), (user, wa)])
        t = T0 + timedelta(hours=rng.choice([0, 1, 5, 23, 24, 25, 48, 49]), seconds=rng.randrange(0, 30))
        messages.append((ids, t, f"wamid.{seed}.{k}", rng.choice(["organic", "organic", "ctwa_ad"])))
    messages.sort(key=lambda m: m[1])
    start = 0
    while start < len(messages):
        group = messages[start:start + rng.choice([1, 2, 5, 12, 24])]
        start += len(group)
        batched = await store.record_inbound_many([
            InboundRecord(ClientRef(batched_pn, *ids), t, msg, ep) for ids, t, msg, ep in group])
        for (ids, t, msg, ep), many in zip(group, batched, strict=True):
            one = await store.record_inbound(ClientRef(single_pn, *ids), t, message_id=msg, entry_point=ep)
            assert (many.advanced, many.new_session) == (one.advanced, one.new_session), msg
            assert many.state.client_key == one.state.client_key
            left, right = _same_state(many.state, one.state)
            assert left == right, msg
    for user, wa in people:
        for ids in ((user, None), (None, wa)):
            left, right = _same_state(await store.get(ClientRef(batched_pn, *ids)),
                                      await store.get(ClientRef(single_pn, *ids)))
            assert left == right


@pytest.mark.parametrize("seed", range(3))
async def test_record_inbound_many_of_distinct_clients_gives_what_one_by_one_gives(
    store: SessionStore, seed: int
) -> None:
    """Groups in which every client has one message (the shape of a burst of clients
    writing at once): new clients, messages hours or days after the last, late messages
    (older than the client's last one, within or beyond the session's start), parked
    content, a failure that closed the window, and a message recorded a second time (a
    retry): the same results as one by one, message by message."""
    rng = random.Random(seed)
    batched_pn, single_pn = "106540352240011", "106540352240012"
    people = [f"3368{seed}{n:05d}" for n in range(40)]
    last: dict[str, datetime] = {}
    recorded: list[tuple[str, datetime, str]] = []
    for pn in (batched_pn, single_pn):
        # Some clients start with parked content and a closed window.
        for wa in people[:5]:
            ref = ClientRef(pn, wa_id=wa)
            await store.record_inbound(ref, T0 - DAY, message_id=f"wamid.{seed}.{wa}.0")
            await store.park(ref, {"text": "parked"}, item_id="p1", at=T0 - DAY + timedelta(hours=1))
            await store.record_window_closed(ref, T0 - DAY + timedelta(hours=2))
    for round_ in range(8):
        group = []
        for wa in rng.sample(people, rng.choice([2, 5, 12, 24, 40])):
            if recorded and rng.random() < 0.1:
                # The same message again (Meta's retry after a failed acknowledgement).
                wa, t, msg = rng.choice(recorded)
                if any(g[0] == wa for g in group):
                    continue
            else:
                base = last.get(wa, T0)
                t = base + rng.choice([timedelta(seconds=5), timedelta(hours=3), DAY + timedelta(minutes=1),
                                       -timedelta(minutes=30), -timedelta(hours=30)])
                msg = f"wamid.{seed}.{round_}.{wa}"
                last[wa] = max(base, t)
                recorded.append((wa, t, msg))
            group.append((wa, t, msg))
        group.sort(key=lambda g: g[1])
        batched = await store.record_inbound_many([
            InboundRecord(ClientRef(batched_pn, wa_id=wa), t, msg) for wa, t, msg in group])
        for (wa, t, msg), many in zip(group, batched, strict=True):
            one = await store.record_inbound(ClientRef(single_pn, wa_id=wa), t, message_id=msg)
            assert (many.advanced, many.new_session) == (one.advanced, one.new_session), msg
            left, right = _same_state(many.state, one.state)
            assert left == right, msg
    for wa in people:
        a, b = await store.get(ClientRef(batched_pn, wa_id=wa)), await store.get(ClientRef(single_pn, wa_id=wa))
        assert (a is None) == (b is None)
        if a is not None:
            left, right = _same_state(a, b)
            assert left == right


@pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)
async def test_a_burst_of_clients_costs_the_same_few_statements_whatever_its_size(store: SessionStore) -> None:
    """The window record is what the channel writes before acknowledging each webhook:
    a burst of new clients must not cost a statement per client."""
    assert isinstance(store, SqlSessionStore)
    counted: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counted.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        costs = []
        for size in (6, 24, 96):
            counted.clear()
            await store.record_inbound_many([
                InboundRecord(ClientRef(PN, wa_id=f"33690{size:03d}{n:04d}"), T0 + timedelta(seconds=n), f"m.{size}.{n}")
                for n in range(size)])
            costs.append(len(counted))
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert costs[0] == costs[1] == costs[2], costs
    # Ids looked up, linked and read back, then the windows: ensure, lock, advance, late
    # message, read back (and on SQLite each transaction's BEGIN).
    assert costs[0] <= 12, counted


async def test_record_inbound_many_with_nothing_and_with_one_client_twice(store: SessionStore) -> None:
    assert await store.record_inbound_many([]) == []
    ref = client(77)
    first, second = await store.record_inbound_many([
        InboundRecord(ref, T0, "m1"), InboundRecord(ref, T0 + timedelta(minutes=3), "m2")])
    assert first.new_session and first.advanced and first.state.last_inbound_id == "m1"
    assert second.advanced and not second.new_session and second.state.last_inbound_id == "m2"
    assert second.state.session_count == 1


# --------------------------------------------------------------------------- factory


async def test_factory_prefers_redis(redis_url: str, tmp_path: Path) -> None:
    chosen = session_store_from_settings(Settings(var_dir=tmp_path, redis_url=redis_url))
    assert isinstance(chosen, RedisSessionStore)
    await chosen.close()


async def test_factory_defaults_to_sqlite_under_var(tmp_path: Path) -> None:
    chosen = session_store_from_settings(Settings(var_dir=tmp_path, database_url="", redis_url=None))
    assert isinstance(chosen, SqlSessionStore)
    async with chosen:
        await chosen.record_inbound(client(), T0)
    assert (tmp_path / "salon.db").is_file()


@pytest.mark.postgres
async def test_factory_uses_database_url(postgres_url: str, tmp_path: Path) -> None:
    chosen = session_store_from_settings(
        Settings(var_dir=tmp_path, database_url=postgres_url, redis_url=None)
    )
    assert isinstance(chosen, SqlSessionStore)
    async with chosen:
        assert chosen.engine.dialect.name == "postgresql"
        await chosen.record_inbound(client(), T0)
        assert (await chosen.get(client())) is not None
