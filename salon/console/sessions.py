"""Signed-in advisors of the console: a token exchanged for a session cookie.

An advisor signs in once with their own credential (a ``SALON_API_TOKENS`` token with scope
``advisor`` or ``manager``, :mod:`salon.access.tokens`); the console answers with a session
cookie and never sees the token again. The cookie holds a random 256-bit session key; the
table ``salon_console_sessions`` keeps only its SHA-256 digest, so a copy of the database
does not let anyone in. Each session has:

- the principal it was opened for (name, scopes, advisor id), read back without the token:
  revoking a token in ``SALON_API_TOKENS`` ends its sessions at their next request, because
  every request checks that the principal still holds a token (:meth:`ConsoleSessions.find`
  takes the current :class:`~salon.access.tokens.TokenBook`);
- a CSRF key, sent back in every form and compared in constant time before any write;
- an expiry (``SALON_CONSOLE_SESSION_HOURS``, 8 by default: an advisor's day), after which the
  session is gone and the advisor signs in again. It is counted on the wall clock, as the
  browser counts the cookie's age: the business clock (which the demo's "+24 h" moves)
  decides the window, not how long an advisor stays signed in.

The table lives in ``DATABASE_URL`` like Salon's other tables, so any replica of the Rasa
server can serve any signed-in advisor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Column, Index, MetaData, String, Table, Text, delete, select

from salon.access.tokens import Principal, TokenBook
from salon.clock import require_aware
from salon.integrations.schema import AwareDateTime
from salon.storage.db import SqlTables

__all__ = ["COOKIE", "ConsoleSession", "ConsoleSessions", "session_hours"]

COOKIE: Final = "salon_console"
"""The session cookie's name."""
DEFAULT_HOURS: Final = 8
ENV_HOURS: Final = "SALON_CONSOLE_SESSION_HOURS"

metadata = MetaData()
sessions_table = Table(
    "salon_console_sessions",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("principal", String(100), nullable=False),
    Column("scopes", Text, nullable=False),  # JSON list
    Column("advisor_id", String(64)),
    Column("csrf", String(64), nullable=False),
    Column("created_at", AwareDateTime, nullable=False),
    Column("expires_at", AwareDateTime, nullable=False),
    Index("ix_salon_console_sessions_expiry", "expires_at"),
)
_S = sessions_table.c


def session_hours(environ: dict[str, str] | None = None) -> float:
    """``SALON_CONSOLE_SESSION_HOURS`` (8 by default); a value that is not a positive
    number is refused at start-up.
    """
    raw = (environ if environ is not None else dict(os.environ)).get(ENV_HOURS, "").strip()
    if not raw:
        return float(DEFAULT_HOURS)
    try:
        hours = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_HOURS} must be a number of hours, got {raw!r}") from None
    if not 0 < hours <= 24 * 14:
        raise ValueError(f"{ENV_HOURS} must be between 0 and 336 hours, got {raw!r}")
    return hours


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in advisor: who, the CSRF key of their forms, until when."""

    principal: Principal
    csrf: str
    expires_at: datetime

    def __repr__(self) -> str:  # the CSRF key stays out of logs
        return f"ConsoleSession({self.principal.name!r}, until {self.expires_at.isoformat()})"

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form's CSRF field is this session's (compared in constant time)."""
        return bool(presented) and hmac.compare_digest(self.csrf.encode(), str(presented).encode())


class ConsoleSessions(SqlTables):
    """``salon_console_sessions`` (see the module docstring)."""

    metadata = metadata

    async def open(self, principal: Principal, *, now: datetime, hours: float) -> tuple[str, ConsoleSession]:
        """A new session for ``principal``: (the cookie's key, the session). Expired
        sessions are swept on the way.
        """
        require_aware(now)
        key = secrets.token_urlsafe(32)
        session = ConsoleSession(principal, secrets.token_urlsafe(24), now + timedelta(hours=hours))
        async with self.engine.begin() as conn:
            await conn.execute(delete(sessions_table).where(_S.expires_at <= now))
            await conn.execute(sessions_table.insert().values(
                key_hash=_digest(key), principal=principal.name,
                scopes=json.dumps(sorted(principal.scopes)), advisor_id=principal.advisor_id,
                csrf=session.csrf, created_at=now, expires_at=session.expires_at))
        return key, session

    async def find(self, key: str | None, *, now: datetime, tokens: TokenBook) -> ConsoleSession | None:
        """The live session behind a cookie's key, or None (no key, unknown, expired, or
        its principal no longer holds a token with the advisor or manager scope).
        """
        require_aware(now)
        if not key or len(key) > 100:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(sessions_table).where(_S.key_hash == _digest(key)))).first()
        if row is None or row.expires_at <= now:
            return None
        principal = tokens.principal_named(row.principal)
        if principal is None or not (principal.scopes & {"advisor", "manager"}):
            return None
        return ConsoleSession(principal, row.csrf, row.expires_at)

    async def end(self, key: str | None) -> None:
        """Sign out: the session is deleted."""
        if not key:
            return
        async with self.engine.begin() as conn:
            await conn.execute(delete(sessions_table).where(_S.key_hash == _digest(key)))
