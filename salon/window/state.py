"""Per-client session state: the inputs of the window rules, kept per
``(business phone_number_id, client)`` (the client as :class:`salon.identity.ClientRef`;
a state recorded under one id is found under any other id linked to it, and two states
that a message links are merged through the same monotonic operations).

State per client (all times are Meta's timestamps, as aware UTC datetimes):

- ``last_inbound_at``: never goes backwards, whatever the arrival order;
- the current session: it starts when the client writes after the window closed (24 h
  since the previous inbound, or a known 131047 since then); ``session_count`` counts
  sessions; a late message older than the session start but still within 24 h of it
  (and after the previous window closed) moves the start back;
- ``entry_point`` of the message that opened the session, and the CTWA referral time
  plus our first reply after it (free entry point window, see :mod:`salon.window.rules`);
- ``window_closed_at``: a 131047/470 failure at ``T`` closes the window until an inbound
  message later than ``T`` (failures older than the latest inbound are ignored);
- ``nudged_at``: when we last sent a re-engagement template;
- parked messages: a FIFO of JSON-serialisable items with ids, taken all at once,
  atomically (delivered first when the client answers).

The store interface is :class:`SessionStore`; its backends are
:class:`salon.window.redis_store.RedisSessionStore` and
:class:`salon.window.sql_store.SqlSessionStore`.
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

from salon.clock import Clock, SystemClock, from_us, to_us
from salon.identity import ClientRef
from salon.whatsapp.errors import WhatsAppError
from salon.window.rules import (
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

__all__ = ["InboundRecord", "InboundResult", "PARKED_LEASE", "ParkedClaim", "ParkedMessage", "SessionState", "SessionStore"]

UTC: Final = timezone.utc
DAY_US: Final = int(WINDOW / timedelta(microseconds=1))
FEP_US: Final = int(FEP_DURATION / timedelta(microseconds=1))
PARKED_LEASE: Final = timedelta(minutes=5)
"""How long a delivery of parked content holds it (:meth:`SessionStore.claim_parked`)
before another delivery may take it over (the first one died)."""


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
    """What recording one inbound message did: the client's state after it, and whether
    it moved the window or started a session.
    """

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
    """One item parked for a client until she writes again: its id, the payload and when
    it was parked.
    """

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
        messages one by one, in order, as :meth:`record_inbound` would.
        """
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
        clients' ids resolved together and, in SQL, every window in one transaction.
        """
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
        first reply within 24 h of a referral).
        """
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
        takers never both get an item.
        """
        key = await self._key_for_read(ref)
        return [] if key is None else await self._take(ref.phone_number_id, key)

    async def claim_parked(self, ref: ClientRef, *, lease: timedelta = PARKED_LEASE) -> ParkedClaim:
        """Hold the client's parked items for one delivery, oldest first, without
        removing them: each is removed (:meth:`remove_parked`) once it is sent, and
        :meth:`release_parked` gives back the rest. Two concurrent deliveries never hold
        the same item; a holder that dies lets go after ``lease``.
        """
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
        when she has no session.
        """
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
