"""The window's state in SQL (SQLite or PostgreSQL, SQLAlchemy asyncio): conditional ``UPDATE``
statements whose ``WHERE`` makes ``last_inbound_at`` monotonic on both.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

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

from salon.clock import Clock, from_us
from salon.identity import ClientRef
from salon.storage.db import SqlTables, insert_on_conflict
from salon.window.rules import (
    ENTRY_ORGANIC,
)
from salon.window.state import DAY_US, FEP_US, ParkedMessage, SessionState, SessionStore

__all__ = ["SqlSessionStore", "aliases_table", "metadata", "parked_table", "sessions_table"]


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


# The inserts, as statements SQLAlchemy compiles once (see salon.storage.db.insert_on_conflict).
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
        order between them does not matter.
        """
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
