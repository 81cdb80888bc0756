"""Per-client session state: the inputs of the window rules, kept per
``(business phone_number_id, client)``.

Client identity. From 2026 Meta identifies users by a business-scoped user id (BSUID,
``user_id``) and may omit the phone number (``wa_id``). A client's key is ``u:<user_id>``
when the BSUID is known, else ``w:<wa_id>``. Both ids are kept as *aliases* pointing at
the key the state was first recorded under, so a later message carrying both finds the
state recorded under either. If two states were recorded separately (one under each id)
and a message then links them, they are merged into the BSUID's state through the same
monotonic operations.

State per client (all times are Meta's timestamps, as aware UTC datetimes):

- ``last_inbound_at``: never goes backwards, whatever the arrival order;
- the current session: it starts when the client writes after the window closed (24 h
  since the previous inbound, or a known 131047 since then); ``session_count`` counts
  sessions; a late message older than the session start but still within 24 h of it
  (and after the previous window closed) moves the start back;
- ``entry_point`` of the message that opened the session, and the CTWA referral time
  plus our first reply after it (free entry point window, see :mod:`salon.window`);
- ``window_closed_at``: a 131047/470 failure at ``T`` closes the window until an inbound
  message later than ``T`` (failures older than the latest inbound are ignored);
- ``nudged_at``: when we last sent a re-engagement template;
- parked messages: a FIFO of JSON-serialisable items with ids, taken all at once,
  atomically (delivered first when the client answers).

Backends: :class:`RedisSessionStore` (Lua scripts: each update is one atomic server-side
step) and :class:`SqlSessionStore` (SQLAlchemy asyncio; conditional ``UPDATE`` statements
whose ``WHERE`` makes ``last_inbound_at`` monotonic on SQLite and PostgreSQL alike).
Times are stored as integer microseconds since the epoch so both backends do the same
integer arithmetic.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
    UniqueConstraint,
    and_,
    bindparam,
    case,
    delete,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salon.clock import Clock, SystemClock
from salon.config import Settings
from salon.db import SqlTables, insert_on_conflict
from salon.errors import WhatsAppError
from salon.window import (
    DEFAULT_MARGIN,
    ENTRY_CTWA_AD,
    ENTRY_ORGANIC,
    FEP_DURATION,
    FEP_ENTRY_POINTS,
    WINDOW,
    WindowState,
    canonical_entry_point,
    window_state,
)

__all__ = [
    "ClientRef",
    "InboundRecord",
    "InboundResult",
    "PARKED_LEASE",
    "ParkedClaim",
    "ParkedMessage",
    "RedisSessionStore",
    "SessionState",
    "SessionStore",
    "SqlSessionStore",
    "client_ref_from_webhook",
    "entry_point_of",
    "session_store_from_settings",
]

UTC: Final = timezone.utc
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US: Final = int(WINDOW / timedelta(microseconds=1))
FEP_US: Final = int(FEP_DURATION / timedelta(microseconds=1))
PARKED_LEASE: Final = timedelta(minutes=5)
"""How long a delivery of parked content holds it (:meth:`SessionStore.claim_parked`)
before another delivery may take it over (the first one died)."""


def to_us(value: datetime, name: str = "datetime") -> int:
    """Aware datetime → integer microseconds since the epoch (naive → ValueError)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_us(value: int | str | bytes | None) -> datetime | None:
    if value is None or value == "" or value == b"":
        return None
    return _EPOCH + timedelta(microseconds=int(value))


# --------------------------------------------------------------------------- identity


@dataclass(frozen=True, slots=True)
class ClientRef:
    """Who a session belongs to: our business number and the client's ids."""

    phone_number_id: str
    user_id: str | None = None
    wa_id: str | None = None

    def __post_init__(self) -> None:
        if not self.phone_number_id:
            raise ValueError("phone_number_id is required")
        if not self.user_id and not self.wa_id:
            raise ValueError("a client needs a BSUID (user_id) or a wa_id")

    @property
    def key(self) -> str:
        """The key a new state is recorded under: the BSUID if known, else the wa_id."""
        return f"u:{self.user_id}" if self.user_id else f"w:{self.wa_id}"

    @property
    def aliases(self) -> tuple[str, ...]:
        """The ids this client is known by, BSUID first."""
        out: list[str] = []
        if self.user_id:
            out.append(f"u:{self.user_id}")
        if self.wa_id:
            out.append(f"w:{self.wa_id}")
        return tuple(out)


def conversation_id(client_key: str) -> str:
    """The assistant's conversation id for a client: the id her session was first recorded
    under (``u:FR.…`` → ``FR.…``, ``w:336…`` → ``336…``). It stays when she becomes known
    by another id too (a phone number shared, a new BSUID after an identity change,
    writing from a username): the ids are linked to that session, so the conversation,
    and what the assistant remembers of it, follow her."""
    return client_key.split(":", 1)[1]


def client_ref_from_webhook(
    value: Mapping[str, Any], message: Mapping[str, Any] | None = None
) -> ClientRef:
    """The :class:`ClientRef` of a webhook ``value`` (and one of its messages)."""
    metadata = value.get("metadata") or {}
    pnid = str(metadata.get("phone_number_id", ""))
    contacts = [c for c in value.get("contacts") or [] if isinstance(c, Mapping)]
    wa_id = None
    user_id = None
    if message is not None:
        wa_id = message.get("from") or None
        user_id = message.get("from_user_id") or message.get("user_id") or None
    contact = None
    if wa_id is not None:
        contact = next((c for c in contacts if c.get("wa_id") == wa_id), None)
    if contact is None and len(contacts) == 1:
        contact = contacts[0]
    if contact is not None:
        wa_id = wa_id or contact.get("wa_id") or None
        user_id = user_id or contact.get("user_id") or None
    return ClientRef(pnid, str(user_id) if user_id else None, str(wa_id) if wa_id else None)


def entry_point_of(message: Mapping[str, Any]) -> str:
    """``ctwa_ad`` for a message from a Click-to-WhatsApp ad (``referral.source_type``
    ``ad``), ``page_cta`` for other referrals (Facebook Page call-to-action, posts),
    else ``organic``."""
    referral = message.get("referral")
    if not isinstance(referral, Mapping):
        return ENTRY_ORGANIC
    return ENTRY_CTWA_AD if referral.get("source_type") == "ad" else "page_cta"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class SessionState:
    """Everything the window rules need about one client."""

    phone_number_id: str
    client_key: str
    user_id: str | None = None
    wa_id: str | None = None
    last_inbound_at: datetime | None = None
    last_inbound_id: str | None = None
    session_started_at: datetime | None = None
    prior_inbound_at: datetime | None = None
    session_count: int = 0
    entry_point: str = ENTRY_ORGANIC
    referral_at: datetime | None = None
    first_reply_at: datetime | None = None
    window_closed_at: datetime | None = None
    window_closed_code: int | None = None
    nudged_at: datetime | None = None
    parked_count: int = 0

    def window(self, now: datetime, margin: timedelta = DEFAULT_MARGIN) -> WindowState:
        """The window at ``now`` from this state."""
        return window_state(
            self.last_inbound_at,
            now,
            margin,
            ENTRY_CTWA_AD if self.referral_at is not None else ENTRY_ORGANIC,
            referral_at=self.referral_at,
            first_reply_at=self.first_reply_at,
            closed_by_failure_at=self.window_closed_at,
        )

    @property
    def recipient(self) -> str | None:
        """Whom to address a send to: the phone number when known, else the BSUID."""
        return self.wa_id or self.user_id

    @property
    def nudge_pending(self) -> bool:
        """A re-engagement template went out after the client's last message."""
        return self.nudged_at is not None and (
            self.last_inbound_at is None or self.nudged_at > self.last_inbound_at
        )


@dataclass(frozen=True, slots=True)
class InboundResult:
    state: SessionState
    advanced: bool
    """``last_inbound_at`` moved forward (False: duplicate or out-of-order message)."""
    new_session: bool
    """This message started a new session (first message, or after the window closed)."""


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One client message for :meth:`SessionStore.record_inbound_many`."""

    ref: ClientRef
    at: datetime
    message_id: str | None = None
    entry_point: str = ENTRY_ORGANIC


@dataclass(frozen=True, slots=True)
class ParkedMessage:
    id: str
    payload: Any
    parked_at: datetime


@dataclass(frozen=True, slots=True)
class ParkedClaim:
    """Parked items held by one delivery (see :meth:`SessionStore.claim_parked`)."""

    token: str
    items: list[ParkedMessage]


def _dump_item(item_id: str, payload: Any, at_us: int) -> str:
    return json.dumps(
        {"id": item_id, "at": at_us, "payload": payload}, ensure_ascii=False, separators=(",", ":")
    )


def _load_item(raw: str | bytes) -> ParkedMessage:
    data = json.loads(raw)
    return ParkedMessage(str(data["id"]), data["payload"], from_us(data["at"]))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- interface


class SessionStore(ABC):
    """Async session state store. All writes are atomic and monotonic."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()

    # lifecycle ---------------------------------------------------------------
    @abstractmethod
    async def initialize(self) -> None:
        """Create what the backend needs (tables, script cache)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    async def __aenter__(self) -> SessionStore:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # backend primitives (keyed by the canonical client key) --------------------
    @abstractmethod
    async def _lookup(self, pnid: str, aliases: Sequence[str]) -> dict[str, str]: ...

    @abstractmethod
    async def _link(self, pnid: str, mapping: Mapping[str, str], force: bool = False) -> None: ...

    @abstractmethod
    async def _load(self, pnid: str, key: str) -> SessionState | None: ...

    @abstractmethod
    async def _load_many(self, refs: Sequence[ClientRef]) -> list[SessionState | None]: ...

    @abstractmethod
    async def _inbound(
        self, ref: ClientRef, key: str, t_us: int, message_id: str | None, entry_point: str,
        referral: bool,
    ) -> tuple[bool, SessionState]: ...

    async def _inbound_many(
        self, items: Sequence[tuple[ClientRef, str, int, str | None, str, bool]]
    ) -> list[tuple[bool, SessionState]]:
        """:meth:`_inbound` for each item, in order (a backend may do it in one go)."""
        return [await self._inbound(*item) for item in items]

    @abstractmethod
    async def _reply(self, ref: ClientRef, key: str, t_us: int) -> SessionState: ...

    @abstractmethod
    async def _closed(self, ref: ClientRef, key: str, t_us: int, code: int) -> SessionState: ...

    @abstractmethod
    async def _nudged(self, ref: ClientRef, key: str, t_us: int) -> SessionState: ...

    @abstractmethod
    async def _park(
        self, ref: ClientRef, key: str, item_id: str, payload: Any, t_us: int
    ) -> bool: ...

    @abstractmethod
    async def _peek(self, pnid: str, key: str) -> list[ParkedMessage]: ...

    @abstractmethod
    async def _take(self, pnid: str, key: str) -> list[ParkedMessage]: ...

    @abstractmethod
    async def _claim_parked(self, pnid: str, key: str, token: str, now_us: int,
                            lease: timedelta) -> list[ParkedMessage]: ...

    @abstractmethod
    async def _remove_parked(self, pnid: str, key: str, item_id: str) -> None: ...

    @abstractmethod
    async def _release_parked(self, pnid: str, key: str, token: str) -> None: ...

    @abstractmethod
    async def _delete(self, pnid: str, key: str, aliases: Sequence[str]) -> None: ...

    @abstractmethod
    async def _set_ids(self, ref: ClientRef, key: str) -> SessionState:
        """Record ``ref``'s ids as the state's current ones (an id not given stays)."""

    # identity ------------------------------------------------------------------
    async def _key_for_read(self, ref: ClientRef) -> str | None:
        found = await self._lookup(ref.phone_number_id, ref.aliases)
        for alias in ref.aliases:
            if alias in found:
                return found[alias]
        return None

    async def _key_for_write(self, ref: ClientRef) -> str:
        pnid = ref.phone_number_id
        aliases = ref.aliases
        found = await self._lookup(pnid, aliases)
        missing = [alias for alias in aliases if alias not in found]
        if missing:
            target = next((found[a] for a in aliases if a in found), ref.key)
            await self._link(pnid, {alias: target for alias in missing})
            found = await self._lookup(pnid, aliases)
        keys = [found[a] for a in aliases if a in found]
        key = keys[0]
        if len(aliases) == 2 and len(keys) == 2 and keys[0] != keys[1]:
            await self._merge(ref, into=keys[0], other=keys[1], other_alias=aliases[1])
        return key

    async def _keys_for_write(self, refs: Sequence[ClientRef]) -> list[str] | None:
        """:meth:`_key_for_write` for many clients at once: one lookup per business
        number, and one link for all the clients seen for the first time. None when one
        of them needs more than that (ids that point at two states to merge, ids shared
        by two new clients, a race with another writer): the caller then records the
        messages one by one, in order, as :meth:`record_inbound` would."""
        keys: dict[ClientRef, str] = {}
        by_number: dict[str, list[ClientRef]] = {}
        for ref in dict.fromkeys(refs):
            by_number.setdefault(ref.phone_number_id, []).append(ref)
        for pnid, group in by_number.items():
            found = await self._lookup(pnid, list(dict.fromkeys(a for ref in group for a in ref.aliases)))
            owners: dict[str, ClientRef] = {}
            for ref in group:
                known = {found[a] for a in ref.aliases if a in found}
                if len(known) == 1 and all(a in found for a in ref.aliases):
                    keys[ref] = known.pop()
                elif known:
                    return None  # partly known, or two states: a link or a merge
                elif any(owners.setdefault(a, ref) is not ref for a in ref.aliases):
                    return None  # two new clients sharing an id
            if owners:
                await self._link(pnid, {alias: ref.key for alias, ref in owners.items()})
                linked = await self._lookup(pnid, list(owners))
                for ref in dict.fromkeys(owners.values()):
                    targets = {linked.get(a) for a in ref.aliases}
                    if len(targets) != 1 or None in targets:
                        return None
                    keys[ref] = targets.pop()  # type: ignore[assignment]
        return [keys[ref] for ref in refs]

    async def _merge(self, ref: ClientRef, into: str, other: str, other_alias: str) -> None:
        """Fold the state recorded under ``other`` into ``into`` (BSUID wins)."""
        pnid = ref.phone_number_id
        await self._link(pnid, {other_alias: into}, force=True)
        old = await self._load(pnid, other)
        if old is not None:
            if old.last_inbound_at is not None:
                await self._inbound(
                    ref, into, to_us(old.last_inbound_at), old.last_inbound_id,
                    old.entry_point, False,
                )
            if old.referral_at is not None:
                await self._inbound(ref, into, to_us(old.referral_at), None, ENTRY_CTWA_AD, True)
            if old.first_reply_at is not None:
                await self._reply(ref, into, to_us(old.first_reply_at))
            if old.window_closed_at is not None:
                await self._closed(
                    ref, into, to_us(old.window_closed_at), old.window_closed_code or 131047
                )
            if old.nudged_at is not None:
                await self._nudged(ref, into, to_us(old.nudged_at))
        for item in await self._take(pnid, other):
            await self._park(ref, into, item.id, item.payload, to_us(item.parked_at))
        await self._delete(pnid, other, ())

    # public API ----------------------------------------------------------------
    async def get(self, ref: ClientRef) -> SessionState | None:
        """The state of ``ref`` (found under either of its ids), or None."""
        return (await self._load_many([ref]))[0]

    async def get_many(self, refs: Sequence[ClientRef]) -> list[SessionState | None]:
        """States for many clients in as few round trips as the backend allows."""
        return await self._load_many(refs)

    async def record_inbound(
        self,
        ref: ClientRef,
        at: datetime,
        *,
        message_id: str | None = None,
        entry_point: str = ENTRY_ORGANIC,
    ) -> InboundResult:
        """Record a client message with Meta's ``timestamp`` ``at``.

        ``entry_point`` ``ctwa_ad``/``page_cta`` (see :func:`entry_point_of`) marks a
        referral that can open a free entry point window.
        """
        t_us = to_us(at, "at")
        ep = canonical_entry_point(entry_point)
        key = await self._key_for_write(ref)
        advanced, state = await self._inbound(
            ref, key, t_us, message_id, ep, ep in FEP_ENTRY_POINTS
        )
        new_session = advanced and state.session_started_at == from_us(t_us)
        return InboundResult(state, advanced, new_session)

    async def record_inbound_many(self, records: Sequence[InboundRecord]) -> list[InboundResult]:
        """:meth:`record_inbound` for several messages, applied in the order given (give
        them in timestamp order): the same results as one call per message, with the
        clients' ids resolved together and, in SQL, every window in one transaction."""
        if not records:
            return []
        keys = await self._keys_for_write([r.ref for r in records])
        if keys is None:
            return [await self.record_inbound(r.ref, r.at, message_id=r.message_id, entry_point=r.entry_point)
                    for r in records]
        items = []
        for record, key in zip(records, keys, strict=True):
            ep = canonical_entry_point(record.entry_point)
            items.append((record.ref, key, to_us(record.at, "at"), record.message_id, ep,
                          ep in FEP_ENTRY_POINTS))
        results = await self._inbound_many(items)
        return [
            InboundResult(state, advanced, advanced and state.session_started_at == from_us(item[2]))
            for item, (advanced, state) in zip(items, results, strict=True)
        ]

    async def record_reply(self, ref: ClientRef, at: datetime) -> SessionState:
        """Record one of our messages going out at ``at`` (starts the FEP when it is the
        first reply within 24 h of a referral)."""
        t_us = to_us(at, "at")
        return await self._reply(ref, await self._key_for_write(ref), t_us)

    async def record_window_closed(
        self, ref: ClientRef, at: datetime, code: int = 131047
    ) -> SessionState:
        """Meta reported the window closed at ``at`` (131047/470)."""
        t_us = to_us(at, "at")
        return await self._closed(ref, await self._key_for_write(ref), t_us, code)

    async def record_failure(
        self, ref: ClientRef, error: WhatsAppError, at: datetime
    ) -> SessionState | None:
        """Record a send failure; only window-closing errors change the state."""
        if not error.closes_window:
            return None
        return await self.record_window_closed(ref, at, error.code)

    async def record_nudge(self, ref: ClientRef, at: datetime) -> SessionState:
        """A re-engagement template went out at ``at``."""
        t_us = to_us(at, "at")
        return await self._nudged(ref, await self._key_for_write(ref), t_us)

    async def park(
        self,
        ref: ClientRef,
        payload: Any,
        *,
        item_id: str | None = None,
        at: datetime | None = None,
    ) -> ParkedMessage | None:
        """Append ``payload`` (JSON-serialisable) to the client's parked FIFO.

        Returns the parked item, or None when an item with this id is already parked
        (parking is idempotent per id).
        """
        json.dumps(payload)  # fail early on what cannot be stored
        when = at if at is not None else self.clock.now()
        t_us = to_us(when, "at")
        item = item_id or uuid.uuid4().hex
        key = await self._key_for_write(ref)
        if not await self._park(ref, key, item, payload, t_us):
            return None
        return ParkedMessage(item, payload, from_us(t_us))  # type: ignore[arg-type]

    async def parked(self, ref: ClientRef) -> list[ParkedMessage]:
        """The parked items, oldest first, without removing them."""
        key = await self._key_for_read(ref)
        return [] if key is None else await self._peek(ref.phone_number_id, key)

    async def take_parked(self, ref: ClientRef) -> list[ParkedMessage]:
        """Remove and return all parked items, oldest first, atomically: two concurrent
        takers never both get an item."""
        key = await self._key_for_read(ref)
        return [] if key is None else await self._take(ref.phone_number_id, key)

    async def claim_parked(self, ref: ClientRef, *, lease: timedelta = PARKED_LEASE) -> ParkedClaim:
        """Hold the client's parked items for one delivery, oldest first, without
        removing them: each is removed (:meth:`remove_parked`) once it is sent, and
        :meth:`release_parked` gives back the rest. Two concurrent deliveries never hold
        the same item; a holder that dies lets go after ``lease``."""
        token = uuid.uuid4().hex
        key = await self._key_for_read(ref)
        if key is None:
            return ParkedClaim(token, [])
        items = await self._claim_parked(ref.phone_number_id, key, token,
                                         to_us(self.clock.now(), "now"), lease)
        return ParkedClaim(token, items)

    async def remove_parked(self, ref: ClientRef, item_id: str) -> None:
        """Forget one parked item (it was delivered)."""
        key = await self._key_for_read(ref)
        if key is not None:
            await self._remove_parked(ref.phone_number_id, key, item_id)

    async def release_parked(self, ref: ClientRef, claim: ParkedClaim) -> None:
        """Give back what ``claim`` still holds: it waits for the next delivery."""
        key = await self._key_for_read(ref)
        if key is not None:
            await self._release_parked(ref.phone_number_id, key, claim.token)

    async def follow_identity(self, before: ClientRef, after: ClientRef) -> SessionState | None:
        """Meta changed the client's ids (a new BSUID, a new phone number): link her new ids
        to her session, which keeps its window, its parked content and its conversation id;
        her old ids stay linked (late statuses for them still find her). A state recorded
        meanwhile under a new id (a message that overtook the change) is merged in. None
        when she has no session."""
        key = await self._key_for_read(before)
        if key is None:
            return None
        pnid = before.phone_number_id
        found = await self._lookup(pnid, after.aliases)
        for alias in after.aliases:
            other = found.get(alias)
            if other is None:
                await self._link(pnid, {alias: key})
            elif other != key:
                await self._merge(after, into=key, other=other, other_alias=alias)
        return await self._set_ids(after, key)

    async def forget(self, ref: ClientRef) -> None:
        """Erase everything about the client (GDPR erasure)."""
        key = await self._key_for_read(ref)
        if key is not None:
            await self._delete(ref.phone_number_id, key, ref.aliases)


# --------------------------------------------------------------------------- Redis

_LUA_ENSURE = """
local k = KEYS[1]
redis.call('HSET', k, 'pn', ARGV[1], 'ck', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', k, 'uid', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', k, 'wa', ARGV[4]) end
if redis.call('HEXISTS', k, 'N') == 0 then redis.call('HSET', k, 'N', '0') end
"""

_LUA_RESULT = """
return {redis.call('HGETALL', KEYS[1]), redis.call('LLEN', KEYS[2])}
"""

_LUA_IDS = _LUA_ENSURE + _LUA_RESULT

# ARGV: 1 pn, 2 ck, 3 uid, 4 wa, 5 t, 6 message id, 7 entry point, 8 referral, 9 day, 10 fep
_LUA_INBOUND = (
    _LUA_ENSURE
    + """
local t = tonumber(ARGV[5])
local day = tonumber(ARGV[9])
local fep = tonumber(ARGV[10])
local v = redis.call('HMGET', k, 'L', 'S', 'P', 'F', 'R', 'FR')
local L = tonumber(v[1])
local S = tonumber(v[2])
local P = tonumber(v[3])
local F = tonumber(v[4])
local R = tonumber(v[5])
local FR = tonumber(v[6])
local advanced = 0
local new = 0
if (not L) or t > L then
  advanced = 1
  if (not L) or t >= L + day or (F and F >= L and t > F) then
    new = 1
    if L then redis.call('HSET', k, 'P', v[1]) else redis.call('HDEL', k, 'P') end
    redis.call('HSET', k, 'S', ARGV[5], 'ep', ARGV[7])
    redis.call('HINCRBY', k, 'N', 1)
  end
  redis.call('HSET', k, 'L', ARGV[5], 'lid', ARGV[6])
  if F and t > F then redis.call('HDEL', k, 'F', 'Fc') end
elseif S and t < S and t > S - day and ((not P) or t >= P + day) then
  redis.call('HSET', k, 'S', ARGV[5])
end
if ARGV[8] == '1' and ((not R) or (FR and t >= FR + fep) or ((not FR) and t >= R + day)) then
  redis.call('HSET', k, 'R', ARGV[5])
  redis.call('HDEL', k, 'FR')
end
return {advanced, redis.call('HGETALL', k), redis.call('LLEN', KEYS[2])}
"""
)

# ARGV: 1-4 identity, 5 t, 6 day
_LUA_REPLY = (
    _LUA_ENSURE
    + """
local t = tonumber(ARGV[5])
local v = redis.call('HMGET', k, 'R', 'FR')
local R = tonumber(v[1])
local FR = tonumber(v[2])
if R and t >= R and t < R + tonumber(ARGV[6]) and ((not FR) or t < FR) then
  redis.call('HSET', k, 'FR', ARGV[5])
end
"""
    + _LUA_RESULT
)

# ARGV: 1-4 identity, 5 t, 6 code
_LUA_CLOSED = (
    _LUA_ENSURE
    + """
local t = tonumber(ARGV[5])
local v = redis.call('HMGET', k, 'L', 'F')
local L = tonumber(v[1])
local F = tonumber(v[2])
if ((not L) or t >= L) and ((not F) or t > F) then
  redis.call('HSET', k, 'F', ARGV[5], 'Fc', ARGV[6])
end
"""
    + _LUA_RESULT
)

# ARGV: 1-4 identity, 5 t
_LUA_NUDGED = (
    _LUA_ENSURE
    + """
local G = tonumber(redis.call('HGET', k, 'G'))
if (not G) or tonumber(ARGV[5]) > G then redis.call('HSET', k, 'G', ARGV[5]) end
"""
    + _LUA_RESULT
)

# KEYS: 1 state, 2 list, 3 id set; ARGV: 1-4 identity, 5 item id, 6 item json
_LUA_PARK = (
    _LUA_ENSURE
    + """
if redis.call('SADD', KEYS[3], ARGV[5]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[6])
  return 1
end
return 0
"""
)

# KEYS: 1 list, 2 id set
_LUA_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return items
"""

# KEYS: 1 delivery lock, 2 list; ARGV: 1 token, 2 lease (ms). The items while the lock is
# ours (nothing when another delivery holds them).
_LUA_CLAIM_PARKED = """
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return redis.call('LRANGE', KEYS[2], 0, -1)
end
return {}
"""

# KEYS: 1 list, 2 id set; ARGV: 1 item id
_LUA_REMOVE_PARKED = """
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if tostring(cjson.decode(raw)['id']) == ARGV[1] then
    redis.call('LREM', KEYS[1], 1, raw)
    break
  end
end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: 1 delivery lock; ARGV: 1 token
_LUA_RELEASE_PARKED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""



# ARGV: 1 prefix (ends with ':'), then per client: phone_number_id, alias 1, alias 2 ('' if
# absent). Returns one string per client: '' when unknown, else the fields of _BULK_FIELDS
# joined by \x1f, then the parked count.
_LUA_GET_MANY = """
local prefix = ARGV[1]
local out = {}
local n = 0
for i = 2, #ARGV, 3 do
  local pn = ARGV[i]
  local key = false
  if ARGV[i + 1] ~= '' then key = redis.call('GET', prefix .. 'a:' .. pn .. ':' .. ARGV[i + 1]) end
  if (not key) and ARGV[i + 2] ~= '' then
    key = redis.call('GET', prefix .. 'a:' .. pn .. ':' .. ARGV[i + 2])
  end
  n = n + 1
  if key then
    local v = redis.call('HMGET', prefix .. 's:' .. pn .. ':' .. key,
      'pn', 'ck', 'uid', 'wa', 'L', 'lid', 'S', 'P', 'N', 'ep', 'R', 'FR', 'F', 'Fc', 'G')
    if v[2] then
      for j = 1, 15 do if not v[j] then v[j] = '' end end
      v[16] = tostring(redis.call('LLEN', prefix .. 'q:' .. pn .. ':' .. key))
      out[n] = table.concat(v, string.char(31))
    else
      out[n] = ''
    end
  else
    out[n] = ''
  end
end
return out
"""


def _state_from_joined(joined: str) -> SessionState | None:
    if not joined:
        return None
    pn, ck, uid, wa, L, lid, S, P, N, ep, R, FR, F, Fc, G, parked = joined.split("\x1f")
    return SessionState(
        phone_number_id=pn,
        client_key=ck,
        user_id=uid or None,
        wa_id=wa or None,
        last_inbound_at=from_us(L) if L else None,
        last_inbound_id=lid or None,
        session_started_at=from_us(S) if S else None,
        prior_inbound_at=from_us(P) if P else None,
        session_count=int(N) if N else 0,
        entry_point=ep or ENTRY_ORGANIC,
        referral_at=from_us(R) if R else None,
        first_reply_at=from_us(FR) if FR else None,
        window_closed_at=from_us(F) if F else None,
        window_closed_code=int(Fc) if Fc else None,
        nudged_at=from_us(G) if G else None,
        parked_count=int(parked),
    )


def _state_from_hash(flat: Sequence[Any], parked: int) -> SessionState | None:
    if not flat:
        return None
    h: dict[str, str] = {}
    it = iter(flat)
    for name, value in zip(it, it, strict=True):
        h[name.decode() if isinstance(name, bytes) else name] = (
            value.decode() if isinstance(value, bytes) else value
        )
    code = h.get("Fc")
    return SessionState(
        phone_number_id=h.get("pn", ""),
        client_key=h.get("ck", ""),
        user_id=h.get("uid") or None,
        wa_id=h.get("wa") or None,
        last_inbound_at=from_us(h.get("L")),
        last_inbound_id=h.get("lid") or None,
        session_started_at=from_us(h.get("S")),
        prior_inbound_at=from_us(h.get("P")),
        session_count=int(h.get("N") or 0),
        entry_point=h.get("ep") or ENTRY_ORGANIC,
        referral_at=from_us(h.get("R")),
        first_reply_at=from_us(h.get("FR")),
        window_closed_at=from_us(h.get("F")),
        window_closed_code=int(code) if code else None,
        nudged_at=from_us(h.get("G")),
        parked_count=int(parked),
    )


class RedisSessionStore(SessionStore):
    """Session state in Redis (``redis.asyncio``); every update is one Lua script."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "salon:session",
        clock: Clock | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(clock)
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._client = client or aioredis.Redis.from_url(url, decode_responses=True)
        self._own_client = client is None
        self._inbound_script = self._client.register_script(_LUA_INBOUND)
        self._reply_script = self._client.register_script(_LUA_REPLY)
        self._closed_script = self._client.register_script(_LUA_CLOSED)
        self._nudged_script = self._client.register_script(_LUA_NUDGED)
        self._park_script = self._client.register_script(_LUA_PARK)
        self._take_script = self._client.register_script(_LUA_TAKE)
        self._claim_parked_script = self._client.register_script(_LUA_CLAIM_PARKED)
        self._remove_parked_script = self._client.register_script(_LUA_REMOVE_PARKED)
        self._release_parked_script = self._client.register_script(_LUA_RELEASE_PARKED)
        self._get_many_script = self._client.register_script(_LUA_GET_MANY)
        self._ids_script = self._client.register_script(_LUA_IDS)

    @property
    def redis(self) -> Any:
        return self._client

    # key layout
    def state_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:s:{pnid}:{key}"

    def alias_key(self, pnid: str, alias: str) -> str:
        return f"{self.prefix}:a:{pnid}:{alias}"

    def parked_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:q:{pnid}:{key}"

    def parked_ids_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:qi:{pnid}:{key}"

    def parked_lock_key(self, pnid: str, key: str) -> str:
        return f"{self.prefix}:ql:{pnid}:{key}"

    async def initialize(self) -> None:
        """Load the Lua scripts (pipelines use EVALSHA) and check the server answers."""
        for script in (
            self._inbound_script, self._reply_script, self._closed_script,
            self._nudged_script, self._park_script, self._take_script,
            self._get_many_script, self._ids_script, self._claim_parked_script,
            self._remove_parked_script, self._release_parked_script,
        ):
            script.sha = await self._client.script_load(script.script)

    async def close(self) -> None:
        if self._own_client:
            await self._client.close()
            await self._client.connection_pool.disconnect()

    async def clear(self) -> None:
        """Delete every key under this store's prefix (tests, benches)."""
        batch: list[str] = []
        async for name in self._client.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                await self._client.delete(*batch)
                batch = []
        if batch:
            await self._client.delete(*batch)

    def _identity(self, ref: ClientRef, key: str) -> list[str]:
        return [ref.phone_number_id, key, ref.user_id or "", ref.wa_id or ""]

    def _two(self, pnid: str, key: str) -> list[str]:
        return [self.state_key(pnid, key), self.parked_key(pnid, key)]

    async def _lookup(self, pnid: str, aliases: Sequence[str]) -> dict[str, str]:
        values = await self._client.mget([self.alias_key(pnid, a) for a in aliases])
        return {a: v for a, v in zip(aliases, values, strict=True) if v is not None}

    async def _link(self, pnid: str, mapping: Mapping[str, str], force: bool = False) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for alias, key in mapping.items():
                pipe.set(self.alias_key(pnid, alias), key, nx=not force)
            await pipe.execute()

    async def _load(self, pnid: str, key: str) -> SessionState | None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.state_key(pnid, key))
            pipe.llen(self.parked_key(pnid, key))
            mapping, parked = await pipe.execute()
        if not mapping:
            return None
        flat = [x for pair in mapping.items() for x in pair]
        return _state_from_hash(flat, parked)

    async def _load_many(
        self, refs: Sequence[ClientRef], chunk: int = 1000
    ) -> list[SessionState | None]:
        """One script call per ``chunk`` clients: aliases resolved and fields read
        server-side, one compact string per client on the wire."""
        out: list[SessionState | None] = []
        prefix = f"{self.prefix}:"
        for start in range(0, len(refs), chunk):
            args: list[str] = [prefix]
            for ref in refs[start : start + chunk]:
                args.append(ref.phone_number_id)
                args.append(f"u:{ref.user_id}" if ref.user_id else "")
                args.append(f"w:{ref.wa_id}" if ref.wa_id else "")
            joined = await self._get_many_script(keys=[], args=args)
            out.extend(_state_from_joined(item) for item in joined)
        return out

    async def _inbound(
        self, ref: ClientRef, key: str, t_us: int, message_id: str | None, entry_point: str,
        referral: bool,
    ) -> tuple[bool, SessionState]:
        pnid = ref.phone_number_id
        advanced, flat, parked = await self._inbound_script(
            keys=self._two(pnid, key),
            args=[*self._identity(ref, key), str(t_us), message_id or "", entry_point,
                  "1" if referral else "0", str(DAY_US), str(FEP_US)],
        )
        state = _state_from_hash(flat, parked)
        assert state is not None
        return bool(advanced), state

    async def _run_simple(self, script: Any, ref: ClientRef, key: str, *extra: str) -> SessionState:
        flat, parked = await script(
            keys=self._two(ref.phone_number_id, key), args=[*self._identity(ref, key), *extra]
        )
        state = _state_from_hash(flat, parked)
        assert state is not None
        return state

    async def _reply(self, ref: ClientRef, key: str, t_us: int) -> SessionState:
        return await self._run_simple(self._reply_script, ref, key, str(t_us), str(DAY_US))

    async def _set_ids(self, ref: ClientRef, key: str) -> SessionState:
        return await self._run_simple(self._ids_script, ref, key)

    async def _closed(self, ref: ClientRef, key: str, t_us: int, code: int) -> SessionState:
        return await self._run_simple(self._closed_script, ref, key, str(t_us), str(code))

    async def _nudged(self, ref: ClientRef, key: str, t_us: int) -> SessionState:
        return await self._run_simple(self._nudged_script, ref, key, str(t_us))

    async def _park(
        self, ref: ClientRef, key: str, item_id: str, payload: Any, t_us: int
    ) -> bool:
        pnid = ref.phone_number_id
        added = await self._park_script(
            keys=[self.state_key(pnid, key), self.parked_key(pnid, key),
                  self.parked_ids_key(pnid, key)],
            args=[*self._identity(ref, key), item_id, _dump_item(item_id, payload, t_us)],
        )
        return bool(added)

    async def _peek(self, pnid: str, key: str) -> list[ParkedMessage]:
        raw = await self._client.lrange(self.parked_key(pnid, key), 0, -1)
        return [_load_item(item) for item in raw]

    async def _take(self, pnid: str, key: str) -> list[ParkedMessage]:
        raw = await self._take_script(
            keys=[self.parked_key(pnid, key), self.parked_ids_key(pnid, key)]
        )
        return [_load_item(item) for item in raw]

    async def _claim_parked(self, pnid: str, key: str, token: str, now_us: int,
                            lease: timedelta) -> list[ParkedMessage]:
        raw = await self._claim_parked_script(
            keys=[self.parked_lock_key(pnid, key), self.parked_key(pnid, key)],
            args=[token, str(max(1, int(lease / timedelta(milliseconds=1))))],
        )
        return [_load_item(item) for item in raw]

    async def _remove_parked(self, pnid: str, key: str, item_id: str) -> None:
        await self._remove_parked_script(
            keys=[self.parked_key(pnid, key), self.parked_ids_key(pnid, key)], args=[item_id])

    async def _release_parked(self, pnid: str, key: str, token: str) -> None:
        await self._release_parked_script(keys=[self.parked_lock_key(pnid, key)], args=[token])

    async def _delete(self, pnid: str, key: str, aliases: Sequence[str]) -> None:
        names = [self.state_key(pnid, key), self.parked_key(pnid, key),
                 self.parked_ids_key(pnid, key)]
        names += [self.alias_key(pnid, alias) for alias in aliases]
        await self._client.delete(*names)


# --------------------------------------------------------------------------- SQL

metadata = MetaData()

sessions_table = Table(
    "salon_sessions",
    metadata,
    Column("phone_number_id", String(64), primary_key=True),
    Column("client_key", String(200), primary_key=True),
    Column("user_id", String(200)),
    Column("wa_id", String(64)),
    Column("last_inbound_us", BigInteger),
    Column("last_inbound_id", String(255)),
    Column("session_started_us", BigInteger),
    Column("prior_inbound_us", BigInteger),
    Column("session_count", Integer, nullable=False, default=0),
    Column("entry_point", String(32), nullable=False, default=ENTRY_ORGANIC),
    Column("referral_us", BigInteger),
    Column("first_reply_us", BigInteger),
    Column("window_closed_us", BigInteger),
    Column("window_closed_code", Integer),
    Column("nudged_us", BigInteger),
)

aliases_table = Table(
    "salon_session_aliases",
    metadata,
    Column("phone_number_id", String(64), primary_key=True),
    Column("alias", String(200), primary_key=True),
    Column("client_key", String(200), nullable=False),
)

parked_table = Table(
    "salon_parked_messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("client_key", String(200), nullable=False),
    Column("item_id", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("parked_us", BigInteger, nullable=False),
    Column("claim", String(64)),
    UniqueConstraint("phone_number_id", "client_key", "item_id", name="uq_salon_parked_item"),
    Index("ix_salon_parked_client", "phone_number_id", "client_key", "seq"),
)

_S = sessions_table.c
_A = aliases_table.c
_P = parked_table.c

_PARKED_COUNT = (
    select(func.count())
    .where(_P.phone_number_id == _S.phone_number_id, _P.client_key == _S.client_key)
    .scalar_subquery()
    .label("parked_count")
)


def _state_from_row(row: Any) -> SessionState:
    m = row._mapping
    return SessionState(
        phone_number_id=m["phone_number_id"],
        client_key=m["client_key"],
        user_id=m["user_id"],
        wa_id=m["wa_id"],
        last_inbound_at=from_us(m["last_inbound_us"]),
        last_inbound_id=m["last_inbound_id"],
        session_started_at=from_us(m["session_started_us"]),
        prior_inbound_at=from_us(m["prior_inbound_us"]),
        session_count=int(m["session_count"] or 0),
        entry_point=m["entry_point"] or ENTRY_ORGANIC,
        referral_at=from_us(m["referral_us"]),
        first_reply_at=from_us(m["first_reply_us"]),
        window_closed_at=from_us(m["window_closed_us"]),
        window_closed_code=m["window_closed_code"],
        nudged_at=from_us(m["nudged_us"]),
        parked_count=int(m["parked_count"] or 0),
    )


# The session store's statements, built once: building and hashing an expression of
# this size costs about a millisecond of CPU each time, which the channel would pay on
# every acknowledgement. Parameters are named p_* so none reads as a column to set.
_WHERE_CLIENT = and_(_S.phone_number_id == bindparam("p_pnid"), _S.client_key == bindparam("p_key"))
_WHERE_CLIENTS = and_(_S.phone_number_id == bindparam("p_pnid"),
                      _S.client_key.in_(bindparam("p_keys", expanding=True)))


def _session_statements() -> dict[str, Any]:
    t = bindparam("p_t", type_=BigInteger)
    L, F, S, P = _S.last_inbound_us, _S.window_closed_us, _S.session_started_us, _S.prior_inbound_us
    R, FR, G = _S.referral_us, _S.first_reply_us, _S.nudged_us
    opens = or_(L.is_(None), t >= L + DAY_US, and_(F.isnot(None), F >= L, t > F))
    failure_cleared = and_(F.isnot(None), t > F)
    return {
        "advance": update(sessions_table)
        .where(_WHERE_CLIENT, or_(L.is_(None), L < t))
        .values(
            prior_inbound_us=case((opens, L), else_=P),
            session_started_us=case((opens, t), else_=S),
            session_count=case((opens, _S.session_count + 1), else_=_S.session_count),
            entry_point=case((opens, bindparam("p_ep")), else_=_S.entry_point),
            last_inbound_us=t,
            last_inbound_id=bindparam("p_msg"),
            window_closed_us=case((failure_cleared, null()), else_=F),
            window_closed_code=case((failure_cleared, null()), else_=_S.window_closed_code),
        ),
        "late": update(sessions_table)
        .where(
            _WHERE_CLIENT,
            L >= t,
            S.isnot(None),
            t < S,
            t > S - DAY_US,
            or_(P.is_(None), t >= P + DAY_US),
        )
        .values(session_started_us=t),
        "new_referral": update(sessions_table)
        .where(
            _WHERE_CLIENT,
            or_(
                R.is_(None),
                and_(FR.isnot(None), t >= FR + FEP_US),
                and_(FR.is_(None), t >= R + DAY_US),
            ),
        )
        .values(referral_us=t, first_reply_us=null()),
        "reply": update(sessions_table)
        .where(_WHERE_CLIENT, R.isnot(None), t >= R, t < R + DAY_US, or_(FR.is_(None), t < FR))
        .values(first_reply_us=t),
        "closed": update(sessions_table)
        .where(_WHERE_CLIENT, or_(L.is_(None), t >= L), or_(F.is_(None), t > F))
        .values(window_closed_us=t, window_closed_code=bindparam("p_code")),
        "nudged": update(sessions_table).where(_WHERE_CLIENT, or_(G.is_(None), t > G)).values(nudged_us=t),
        "state": select(sessions_table, _PARKED_COUNT).where(_WHERE_CLIENT),
        "states": select(sessions_table, _PARKED_COUNT).where(_WHERE_CLIENTS),
        "lock_states": select(_S.phone_number_id, _S.client_key, _S.last_inbound_us)
        .where(_WHERE_CLIENTS)
        .with_for_update(),
        "lookup": select(_A.alias, _A.client_key).where(
            _A.phone_number_id == bindparam("p_pnid"), _A.alias.in_(bindparam("p_aliases", expanding=True))
        ),
    }


_STATEMENTS = _session_statements()
_ADVANCE, _LATE, _NEW_REFERRAL = _STATEMENTS["advance"], _STATEMENTS["late"], _STATEMENTS["new_referral"]
_REPLY, _CLOSED, _NUDGED = _STATEMENTS["reply"], _STATEMENTS["closed"], _STATEMENTS["nudged"]
_SELECT_STATE, _SELECT_STATES, _LOOKUP = _STATEMENTS["state"], _STATEMENTS["states"], _STATEMENTS["lookup"]
_LOCK_STATES = _STATEMENTS["lock_states"]

# The inserts, as statements SQLAlchemy compiles once (see salon.db.insert_on_conflict).
_LINK = insert_on_conflict(aliases_table, ["phone_number_id", "alias", "client_key"], ["phone_number_id", "alias"])
_RELINK = insert_on_conflict(aliases_table, ["phone_number_id", "alias", "client_key"], ["phone_number_id", "alias"],
                             update={"client_key": "excluded.client_key"})
# The client's row when it is missing; when it exists, the ids it lacked are filled in.
_ENSURE = insert_on_conflict(
    sessions_table,
    {"phone_number_id": "p_pnid", "client_key": "p_key", "user_id": "p_user", "wa_id": "p_wa",
     "session_count": "p_count", "entry_point": "p_ep"},
    ["phone_number_id", "client_key"],
    update={column: f"coalesce(excluded.{column}, {sessions_table.name}.{column})" for column in ("user_id", "wa_id")},
)
_PARK = insert_on_conflict(parked_table, ["phone_number_id", "client_key", "item_id", "payload", "parked_us"],
                           ["phone_number_id", "client_key", "item_id"])


class SqlSessionStore(SessionStore, SqlTables):
    """Session state in SQL (SQLite or PostgreSQL) through an asyncio engine.

    Monotonicity comes from conditional ``UPDATE`` statements (``WHERE last_inbound_us
    IS NULL OR last_inbound_us < :t``) whose ``SET`` expressions read the row's previous
    values, so concurrent and out-of-order writes converge to the maximum.
    """

    metadata = metadata

    def __init__(
        self, url: str | None = None, *, engine: AsyncEngine | None = None,
        clock: Clock | None = None,
    ) -> None:
        SessionStore.__init__(self, clock)
        SqlTables.__init__(self, url, engine=engine)

    async def initialize(self) -> None:
        await SqlTables.initialize(self)

    async def close(self) -> None:
        await SqlTables.close(self)

    async def _lookup(self, pnid: str, aliases: Sequence[str]) -> dict[str, str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(_LOOKUP, {"p_pnid": pnid, "p_aliases": list(aliases)})
            return {row.alias: row.client_key for row in rows}

    async def _link(self, pnid: str, mapping: Mapping[str, str], force: bool = False) -> None:
        rows = [{"phone_number_id": pnid, "alias": alias, "client_key": key} for alias, key in mapping.items()]
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(_RELINK if force else _LINK, rows)

    async def _select_state(self, conn: AsyncConnection, pnid: str, key: str) -> SessionState | None:
        row = (await conn.execute(_SELECT_STATE, {"p_pnid": pnid, "p_key": key})).first()
        return _state_from_row(row) if row is not None else None

    async def _load(self, pnid: str, key: str) -> SessionState | None:
        async with self.engine.connect() as conn:
            return await self._select_state(conn, pnid, key)

    async def _load_many(
        self, refs: Sequence[ClientRef], chunk: int = 400
    ) -> list[SessionState | None]:
        by_alias: dict[tuple[str, str], SessionState] = {}
        groups: dict[str, list[str]] = {}
        for ref in refs:
            groups.setdefault(ref.phone_number_id, []).extend(ref.aliases)
        async with self.engine.connect() as conn:
            for pnid, aliases in groups.items():
                unique = list(dict.fromkeys(aliases))
                for start in range(0, len(unique), chunk):
                    part = unique[start : start + chunk]
                    stmt = (
                        select(_A.alias, sessions_table, _PARKED_COUNT)
                        .select_from(
                            aliases_table.join(
                                sessions_table,
                                and_(
                                    _S.phone_number_id == _A.phone_number_id,
                                    _S.client_key == _A.client_key,
                                ),
                            )
                        )
                        .where(_A.phone_number_id == pnid, _A.alias.in_(part))
                    )
                    for row in await conn.execute(stmt):
                        by_alias[(pnid, row.alias)] = _state_from_row(row)
        out: list[SessionState | None] = []
        for ref in refs:
            state = None
            for alias in ref.aliases:
                state = by_alias.get((ref.phone_number_id, alias))
                if state is not None:
                    break
            out.append(state)
        return out

    async def _ensure_row(
        self, conn: AsyncConnection, ref: ClientRef, key: str, entry_point: str = ENTRY_ORGANIC
    ) -> None:
        await conn.execute(_ENSURE, {
            "p_pnid": ref.phone_number_id, "p_key": key, "p_user": ref.user_id, "p_wa": ref.wa_id,
            "p_ep": entry_point, "p_count": 0,
        })

    async def _inbound(
        self, ref: ClientRef, key: str, t_us: int, message_id: str | None, entry_point: str,
        referral: bool,
    ) -> tuple[bool, SessionState]:
        return (await self._inbound_many([(ref, key, t_us, message_id, entry_point, referral)]))[0]

    async def _inbound_many(
        self, items: Sequence[tuple[ClientRef, str, int, str | None, str, bool]]
    ) -> list[tuple[bool, SessionState]]:
        """Every item in one transaction: the rows ensured in one statement, then each
        message's conditional updates and its state read back, in order.

        A burst of different clients (one message each, no referral: say, a campaign's
        answers, or every client writing at the start of the day) takes five statements
        in all, whatever its size: their updates do not touch each other's rows, so the
        order between them does not matter."""
        async with self.engine.begin() as conn:
            rows: dict[tuple[str, str, str | None, str | None], dict[str, Any]] = {}
            for ref, key, _, _, entry_point, _ in items:
                rows.setdefault((ref.phone_number_id, key, ref.user_id, ref.wa_id), {
                    "p_pnid": ref.phone_number_id, "p_key": key, "p_user": ref.user_id,
                    "p_wa": ref.wa_id, "p_ep": entry_point, "p_count": 0,
                })
            # In key order: transactions that lock the same clients lock them in the
            # same order (PostgreSQL), so two bursts never wait on each other in a cycle.
            await conn.execute(_ENSURE, [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1]))])
            clients = {(ref.phone_number_id, key) for ref, key, *_ in items}
            if (len(items) > 1 and len(clients) == len(items)
                    and all(message_id is not None and not referral for _, _, _, message_id, _, referral in items)):
                return await self._inbound_of_distinct_clients(conn, items)
            return await self._inbound_in_order(conn, items)

    async def _inbound_in_order(
        self, conn: AsyncConnection, items: Sequence[tuple[ClientRef, str, int, str | None, str, bool]]
    ) -> list[tuple[bool, SessionState]]:
        out: list[tuple[bool, SessionState]] = []
        for ref, key, t_us, message_id, entry_point, referral in items:
            params = {"p_pnid": ref.phone_number_id, "p_key": key, "p_t": t_us, "p_msg": message_id,
                      "p_ep": entry_point}
            advanced = (await conn.execute(_ADVANCE, params)).rowcount == 1
            if not advanced:
                await conn.execute(_LATE, params)
            if referral:
                await conn.execute(_NEW_REFERRAL, params)
            state = await self._select_state(conn, ref.phone_number_id, key)
            assert state is not None
            out.append((advanced, state))
        return out

    async def _inbound_of_distinct_clients(
        self, conn: AsyncConnection, items: Sequence[tuple[ClientRef, str, int, str | None, str, bool]]
    ) -> list[tuple[bool, SessionState]]:
        by_number: dict[str, list[str]] = {}
        for ref, key, *_ in items:
            by_number.setdefault(ref.phone_number_id, []).append(key)

        async def rows_by_client(stmt: Any) -> dict[tuple[str, str], Any]:
            found: dict[tuple[str, str], Any] = {}
            for pnid, keys in by_number.items():
                for row in await conn.execute(stmt, {"p_pnid": pnid, "p_keys": keys}):
                    found[(row.phone_number_id, row.client_key)] = row
            return found

        # Which messages the advance will move forward (the rows stay locked until the
        # transaction ends): those later than the client's last message.
        before = await rows_by_client(_LOCK_STATES)
        params = [{"p_pnid": ref.phone_number_id, "p_key": key, "p_t": t_us, "p_msg": message_id,
                   "p_ep": entry_point} for ref, key, t_us, message_id, entry_point, _ in items]
        await conn.execute(_ADVANCE, params)
        # Where a message advanced the window, the late-message update finds the session
        # started at or before it and changes nothing; elsewhere it is the update the
        # message needs, as in the one-by-one path.
        await conn.execute(_LATE, params)
        after = await rows_by_client(_SELECT_STATES)
        out: list[tuple[bool, SessionState]] = []
        for ref, key, t_us, _, _, _ in items:
            last = before[(ref.phone_number_id, key)].last_inbound_us
            out.append((last is None or last < t_us, _state_from_row(after[(ref.phone_number_id, key)])))
        return out

    async def _simple(self, ref: ClientRef, key: str, stmt: Any, params: dict[str, Any]) -> SessionState:
        async with self.engine.begin() as conn:
            await self._ensure_row(conn, ref, key)
            await conn.execute(stmt, {"p_pnid": ref.phone_number_id, "p_key": key, **params})
            state = await self._select_state(conn, ref.phone_number_id, key)
        assert state is not None
        return state

    async def _reply(self, ref: ClientRef, key: str, t_us: int) -> SessionState:
        return await self._simple(ref, key, _REPLY, {"p_t": t_us})

    async def _set_ids(self, ref: ClientRef, key: str) -> SessionState:
        async with self.engine.begin() as conn:
            await self._ensure_row(conn, ref, key)
            state = await self._select_state(conn, ref.phone_number_id, key)
        assert state is not None
        return state

    async def _closed(self, ref: ClientRef, key: str, t_us: int, code: int) -> SessionState:
        return await self._simple(ref, key, _CLOSED, {"p_t": t_us, "p_code": code})

    async def _nudged(self, ref: ClientRef, key: str, t_us: int) -> SessionState:
        return await self._simple(ref, key, _NUDGED, {"p_t": t_us})

    async def _park(
        self, ref: ClientRef, key: str, item_id: str, payload: Any, t_us: int
    ) -> bool:
        row = {"phone_number_id": ref.phone_number_id, "client_key": key, "item_id": item_id,
               "payload": json.dumps(payload, ensure_ascii=False), "parked_us": t_us}
        async with self.engine.begin() as conn:
            await self._ensure_row(conn, ref, key)
            return (await conn.execute(_PARK, row)).rowcount == 1

    @staticmethod
    def _parked_from_rows(rows: Any) -> list[ParkedMessage]:
        return [
            ParkedMessage(row.item_id, json.loads(row.payload), from_us(row.parked_us))  # type: ignore[arg-type]
            for row in rows
        ]

    async def _peek(self, pnid: str, key: str) -> list[ParkedMessage]:
        # Every item, those a delivery holds included (a take's own claims never outlive
        # its transaction).
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(_P.item_id, _P.payload, _P.parked_us)
                .where(_P.phone_number_id == pnid, _P.client_key == key)
                .order_by(_P.seq)
            )
            return self._parked_from_rows(rows)

    async def _take(self, pnid: str, key: str) -> list[ParkedMessage]:
        # Claim first (one UPDATE: each row goes to exactly one taker), then read and
        # delete what this call claimed.
        # Items a delivery holds are taken too (moved rather than lost when the client's
        # states are merged).
        token = uuid.uuid4().hex
        mine = and_(_P.phone_number_id == pnid, _P.client_key == key, _P.claim == token)
        async with self.engine.begin() as conn:
            await conn.execute(
                update(parked_table)
                .where(_P.phone_number_id == pnid, _P.client_key == key)
                .values(claim=token)
            )
            rows = await conn.execute(
                select(_P.item_id, _P.payload, _P.parked_us).where(mine).order_by(_P.seq)
            )
            items = self._parked_from_rows(rows)
            await conn.execute(delete(parked_table).where(mine))
        return items

    async def _claim_parked(self, pnid: str, key: str, token: str, now_us: int,
                            lease: timedelta) -> list[ParkedMessage]:
        # A delivery's claim is "<lease end, 20 digits>:<token>": one still running
        # compares greater than "<now>", one whose holder died compares less.
        held = f"{now_us + int(lease / timedelta(microseconds=1)):020d}:{token}"
        client = and_(_P.phone_number_id == pnid, _P.client_key == key)
        async with self.engine.begin() as conn:
            await conn.execute(
                update(parked_table)
                .where(client, or_(_P.claim.is_(None), _P.claim < f"{now_us:020d}"))
                .values(claim=held)
            )
            rows = await conn.execute(
                select(_P.item_id, _P.payload, _P.parked_us).where(client, _P.claim == held).order_by(_P.seq)
            )
            return self._parked_from_rows(rows)

    async def _remove_parked(self, pnid: str, key: str, item_id: str) -> None:
        async with self.single() as conn:
            await conn.execute(delete(parked_table).where(
                _P.phone_number_id == pnid, _P.client_key == key, _P.item_id == item_id))

    async def _release_parked(self, pnid: str, key: str, token: str) -> None:
        async with self.single() as conn:
            await conn.execute(
                update(parked_table)
                .where(_P.phone_number_id == pnid, _P.client_key == key, _P.claim.like(f"%:{token}"))
                .values(claim=None))

    async def _delete(self, pnid: str, key: str, aliases: Sequence[str]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(parked_table).where(_P.phone_number_id == pnid, _P.client_key == key)
            )
            await conn.execute(
                delete(sessions_table).where(_S.phone_number_id == pnid, _S.client_key == key)
            )
            await conn.execute(
                delete(aliases_table).where(
                    _A.phone_number_id == pnid,
                    or_(_A.client_key == key, _A.alias.in_(list(aliases))),
                )
            )


# --------------------------------------------------------------------------- factory


def session_store_from_settings(
    settings: Settings, *, clock: Clock | None = None, prefix: str = "salon:session"
) -> SessionStore:
    """Redis when ``REDIS_URL`` is set, else SQL on ``effective_database_url``.

    Call ``await store.initialize()`` (or use ``async with``) before use.
    """
    if settings.redis_url:
        return RedisSessionStore(settings.redis_url, prefix=prefix, clock=clock)
    return SqlSessionStore(settings.effective_database_url, clock=clock)
