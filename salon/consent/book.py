"""Who the client is and what they agreed to, as the send-time guard needs it.

Two sources, merged at read time:

- the maison's client book (``maison_clients`` and its append-only ``maison_consents``
  history): first name, language, and the latest decision per purpose;
- ``wa_preferences``: WhatsApp's own ``user_preferences`` webhooks (the client stopped or
  resumed marketing messages in the app) and 131050 failures, recorded per business number
  and client id, including clients the book does not know yet.

- the consent ledger (:mod:`salon.consent.ledger`): STOP/START keywords, advisors, and a copy
  of every WhatsApp preference, each decision with its source, actor and text shown.

Per purpose the latest decision of the book and the ledger wins. A client whose latest
STOP/START (keyword, or an opt-out understood in her sentence) is a STOP is *opted out*
(:attr:`salon.guard.decision.Consent.opted_out`): nothing the maison starts goes to her. What a
client had stopped when she was erased is kept, hashed, in the suppression list
(:mod:`salon.consent.ledger`) and read here too, with the privacy salt (``SALON_PRIVACY_SALT`` or
``var/privacy.salt``; until one exists, no erasure has kept anything).

A client who writes to us needs no prior opt-in for our answers (``service_reply``);
templates need the utility opt-in, marketing needs the marketing opt-in and no stop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import from_us, to_us
from salon.consent.keywords import (
    CONSENT_UTTERANCES,
    STOP_CATEGORIES,
    confirmation,
    keyword_categories,
)
from salon.consent.ledger import ConsentLedger, ConsentState, consent_states_many, subjects_for
from salon.guard.decision import Consent
from salon.identity import ClientRef
from salon.integrations.schema import clients as clients_table
from salon.integrations.schema import consents as consents_table
from salon.privacy.salt import existing_privacy_salt
from salon.storage.db import SqlTables

__all__ = ["ClientProfile", "ConsentBook"]

SALT_RECHECK_S: Final = 30.0
"""How often a process with no privacy salt yet looks for one (an erasure may create it)."""

metadata = MetaData()

preferences_table = Table(
    "wa_preferences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("client_id", String(200), nullable=False),  # "w:<wa_id>" or "u:<BSUID>"
    Column("category", String(64), nullable=False),
    Column("value", String(16), nullable=False),  # stop | resume
    Column("at_us", BigInteger, nullable=False),
    Column("source", String(32), nullable=False),  # user_preferences | error_131050
    Column("detail", Text),
    Index("ix_wa_preferences_client", "phone_number_id", "client_id", "at_us"),
)

_P = preferences_table.c
_C = clients_table.c


def _consent(state: ConsentState, marketing_stopped: bool) -> Consent:
    latest = {purpose: granted for purpose, (granted, _) in state.decisions.items()}
    return Consent(
        messaging=bool(latest.get("utility", latest.get("service", False))),
        marketing=latest.get("marketing", False),
        opted_out=state.opted_out,
        marketing_stopped=marketing_stopped,
    )


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """A client's entry in the maison's book, as the guard needs it: id, first name,
    language and time zone.
    """

    client_id: str
    first_name: str
    language: str
    time_zone: str | None = None


class ConsentBook(SqlTables):
    """Who the client is and what she agreed to, read from the book, ``wa_preferences``, the
    ledger and the suppression list (see the module docstring).
    """

    metadata = metadata

    def __init__(self, url: str | None = None, *, engine: AsyncEngine | None = None,
                 salt: bytes | None = None) -> None:
        super().__init__(url, engine=engine)
        self._has_book = False
        self._tables: set[str] | None = None
        self._salt = salt
        self._salt_checked = float("-inf")
        self.ledger = ConsentLedger(engine=self.engine)

    def salt(self) -> bytes | None:
        """The privacy salt the suppression list is keyed with: the one given, else the
        installation's once it exists (the first erasure creates it: looked for again at
        most every :data:`SALT_RECHECK_S` seconds until then).
        """
        if self._salt is None and time.monotonic() - self._salt_checked >= SALT_RECHECK_S:
            self._salt_checked = time.monotonic()
            self._salt = existing_privacy_salt()
        return self._salt

    async def initialize(self) -> None:
        await super().initialize()
        await self.ledger.initialize()
        async with self.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        self._has_book = {clients_table.name, consents_table.name} <= names
        self._tables = names

    # ------------------------------------------------------------------ the book
    async def profile(self, ref: ClientRef) -> ClientProfile | None:
        """The client's entry in the maison's book, by BSUID or number."""
        if not self._has_book:
            return None
        conditions = []
        if ref.user_id:
            conditions.append(_C.user_id == ref.user_id)
        if ref.wa_id:
            digits = ref.wa_id.lstrip("+")
            conditions.extend([_C.wa_id == digits, _C.phone == f"+{digits}"])
        query = select(_C.id, _C.first_name, _C.language, _C.time_zone).where(or_(*conditions))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query.limit(1))).first()
        return ClientProfile(row.id, row.first_name, row.language, row.time_zone) if row is not None else None

    async def consent_for(self, ref: ClientRef, profile: ClientProfile | None = None) -> Consent:
        profile = profile if profile is not None else await self.profile(ref)
        state = await self.state(ref, profile)
        stopped = await self.marketing_stopped(ref)
        return _consent(state, stopped)

    async def state(self, ref: ClientRef, profile: ClientProfile | None, *,
                    exclude_sources: tuple[str, ...] = ()) -> ConsentState:
        """The client's decisions per purpose and the STOP in force (book, ledger,
        suppression list).
        """
        async with self.engine.connect() as conn:
            [state] = await consent_states_many(
                conn, [(profile.client_id if profile is not None else None, ref.aliases)],
                exclude_sources=exclude_sources, salt=self.salt())
        return state

    async def decisions(
        self, ref: ClientRef, profile: ClientProfile | None, *, exclude_sources: tuple[str, ...] = ()
    ) -> dict[str, tuple[bool, datetime]]:
        """Per purpose, the latest decision of the maison's book and the ledger."""
        return (await self.state(ref, profile, exclude_sources=exclude_sources)).decisions

    async def contexts_many(self, refs: Sequence[ClientRef]) -> list[tuple[ClientProfile | None, Consent]]:
        """:meth:`profile` and :meth:`consent_for` for many clients in a few queries (the
        book, its consents, the ledger, the suppression list, WhatsApp's preferences),
        answers in order.
        """
        if not refs:
            return []
        profiles = await self.profiles_many(refs)
        stopped = await self.marketing_stopped_many(refs)
        async with self.engine.connect() as conn:
            states = await consent_states_many(
                conn, [(p.client_id if p is not None else None, ref.aliases) for ref, p in zip(refs, profiles, strict=True)],
                table_names=self._tables, salt=self.salt())
        return [(profile, _consent(state, stop))
                for profile, state, stop in zip(profiles, states, stopped, strict=True)]

    async def profiles_many(self, refs: Sequence[ClientRef], chunk: int = 400) -> list[ClientProfile | None]:
        """:meth:`profile` for many clients; a BSUID match wins over a number match."""
        if not self._has_book:
            return [None] * len(refs)
        user_ids = list(dict.fromkeys(r.user_id for r in refs if r.user_id))
        digits = list(dict.fromkeys(r.wa_id.lstrip("+") for r in refs if r.wa_id))
        by_user: dict[str, ClientProfile] = {}
        by_wa: dict[str, ClientProfile] = {}
        by_phone: dict[str, ClientProfile] = {}
        columns = (_C.id, _C.first_name, _C.language, _C.time_zone, _C.user_id, _C.wa_id, _C.phone)
        async with self.engine.connect() as conn:
            for start in range(0, max(len(user_ids), len(digits)), chunk):
                users = user_ids[start:start + chunk]
                numbers = digits[start:start + chunk]
                conditions = []
                if users:
                    conditions.append(_C.user_id.in_(users))
                if numbers:
                    conditions.extend([_C.wa_id.in_(numbers), _C.phone.in_([f"+{d}" for d in numbers])])
                for row in (await conn.execute(select(*columns).where(or_(*conditions)))).all():
                    profile = ClientProfile(row.id, row.first_name, row.language, row.time_zone)
                    if row.user_id:
                        by_user.setdefault(row.user_id, profile)
                    if row.wa_id:
                        by_wa.setdefault(row.wa_id, profile)
                    if row.phone:
                        by_phone.setdefault(row.phone, profile)
        out: list[ClientProfile | None] = []
        for ref in refs:
            found = by_user.get(ref.user_id) if ref.user_id else None
            if found is None and ref.wa_id:
                number = ref.wa_id.lstrip("+")
                found = by_wa.get(number) or by_phone.get(f"+{number}")
            out.append(found)
        return out

    async def marketing_stopped_many(self, refs: Sequence[ClientRef], chunk: int = 400) -> list[bool]:
        """:meth:`marketing_stopped` for many clients (one query per ``chunk`` ids)."""
        latest: dict[tuple[str, str], tuple[int, int, str]] = {}
        pairs = list(dict.fromkeys((r.phone_number_id, a) for r in refs for a in r.aliases))
        by_number: dict[str, list[str]] = {}
        for pnid, alias in pairs:
            by_number.setdefault(pnid, []).append(alias)
        async with self.engine.connect() as conn:
            for pnid, aliases in by_number.items():
                for start in range(0, len(aliases), chunk):
                    query = select(_P.client_id, _P.value, _P.at_us, _P.id).where(
                        _P.phone_number_id == pnid, _P.client_id.in_(aliases[start:start + chunk]),
                        _P.category == "marketing_messages")
                    for client_id, value, at_us, row_id in (await conn.execute(query)).all():
                        key = (pnid, client_id)
                        if key not in latest or (at_us, row_id) > latest[key][:2]:
                            latest[key] = (at_us, row_id, value)
        out: list[bool] = []
        for ref in refs:
            rows = [latest[(ref.phone_number_id, a)] for a in ref.aliases if (ref.phone_number_id, a) in latest]
            out.append(bool(rows) and max(rows)[2] == "stop")
        return out

    def subjects(self, ref: ClientRef, profile: ClientProfile | None) -> list[str]:
        return subjects_for(ref.aliases, profile.client_id if profile is not None else None)

    # ------------------------------------------------------------------ the client's words
    async def record_keyword(self, ref: ClientRef, keyword: str, text: str, at: datetime) -> None:
        """Record a STOP or START the client wrote (``keyword`` from
        :func:`~salon.consent.keywords.keyword_of`), with the confirmation she is shown.
        """
        profile = await self.profile(ref)
        _, shown = confirmation(keyword, text, profile.language if profile else None)
        await self.ledger.record(
            self.subjects(ref, profile), keyword_categories(keyword), keyword == "start",
            source="whatsapp_keyword", at=at, actor="client", text_shown=shown,
        )

    async def record_understood_opt_out(self, ref: ClientRef, utter_action: str | None,
                                        text_shown: str, at: datetime) -> bool:
        """When the assistant confirms an opt-out it understood in the client's own sentence
        (``utter_opt_out``), record the withdrawal before she reads the confirmation; True
        when one was recorded. Only a withdrawal: an agreement is never inferred from a
        sentence. The caller passes only responses to the client's own turn.
        """
        if CONSENT_UTTERANCES.get(str(utter_action)) is not False:
            return False
        profile = await self.profile(ref)
        await self.ledger.record(
            self.subjects(ref, profile), STOP_CATEGORIES, False, source="whatsapp_message",
            at=at, actor="client", text_shown=text_shown,
        )
        return True

    # ------------------------------------------------------------------ preferences
    async def record_preference(
        self,
        ref: ClientRef,
        value: str,
        at: datetime,
        *,
        category: str = "marketing_messages",
        source: str = "user_preferences",
        detail: str | None = None,
    ) -> None:
        if value not in ("stop", "resume"):
            raise ValueError(f"preference must be stop or resume, got {value!r}")
        rows = [
            {"phone_number_id": ref.phone_number_id, "client_id": alias, "category": category,
             "value": value, "at_us": to_us(at, "at"), "source": source, "detail": detail}
            for alias in ref.aliases
        ]
        async with self.engine.begin() as conn:
            await conn.execute(preferences_table.insert(), rows)
        if category != "marketing_messages":
            return
        # The ledger keeps the same decision: a stop withdraws marketing; a resume only
        # lifts WhatsApp's stop, back to what the client had agreed elsewhere.
        profile = await self.profile(ref)
        if value == "stop":
            granted = False
        else:
            before = await self.decisions(ref, profile, exclude_sources=("user_preferences", "error_131050"))
            granted = before.get("marketing", (False, at))[0]
        shown = ("WhatsApp: the client stopped marketing messages" if value == "stop"
                 else "WhatsApp: the client resumed marketing messages")
        await self.ledger.record(
            self.subjects(ref, profile), ["marketing"], granted, source=source, at=at,
            actor="whatsapp" if source == "user_preferences" else "meta",
            text_shown=shown + (f" ({detail})" if detail and source == "error_131050" else ""),
        )

    async def marketing_stopped(self, ref: ClientRef) -> bool:
        query = (
            select(_P.value, _P.at_us)
            .where(
                _P.phone_number_id == ref.phone_number_id,
                _P.client_id.in_(list(ref.aliases)),
                _P.category == "marketing_messages",
            )
            .order_by(_P.at_us.desc(), _P.id.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return row is not None and row.value == "stop"

    async def preference_history(self, ref: ClientRef) -> list[tuple[str, datetime, str]]:
        query = (
            select(_P.value, _P.at_us, _P.source)
            .where(_P.phone_number_id == ref.phone_number_id, _P.client_id.in_(list(ref.aliases)))
            .order_by(_P.at_us, _P.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        seen: set[tuple[int, str]] = set()
        out: list[tuple[str, datetime, str]] = []
        for value, at_us, source in rows:
            if (at_us, value) in seen:
                continue
            seen.add((at_us, value))
            out.append((value, from_us(at_us), source))  # type: ignore[arg-type]
        return out
