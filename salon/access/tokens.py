"""Bearer tokens with scopes for every non-webhook HTTP API (outbound, advisor, GDPR).

Tokens come from the environment, never from committed files:
``SALON_API_TOKENS`` holds a JSON list, one object per token::

    [{"name": "crm-sync", "token": "…", "scopes": ["outbound"]},
     {"name": "sophie", "token": "…", "scopes": ["advisor"], "advisor_id": "ADV-PAR-01"},
     {"name": "ops", "token": "…", "scopes": ["manager", "gdpr", "outbound"]}]

A token may also be given as ``"sha256": "<hex digest>"`` instead of ``"token"`` so the
plain secret need not sit in the environment of every process. Only digests are kept
in memory; a presented token is hashed and compared with each digest in constant time.

Scopes: ``outbound`` (queue messages), ``advisor`` (own clients' conversations),
``manager`` (every advisor's clients), ``gdpr`` (export and erasure), ``metrics``.
An advisor principal sees only the clients assigned to its ``advisor_id``; a manager
sees all of them (:meth:`Principal.may_see_advisor`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "SCOPES",
    "AccessDenied",
    "Forbidden",
    "Principal",
    "TokenBook",
    "TokenConfigError",
    "Unauthorized",
]

SCOPES: Final = frozenset({"outbound", "advisor", "manager", "gdpr", "metrics"})
ENV_VAR: Final = "SALON_API_TOKENS"
MIN_TOKEN_LENGTH: Final = 16


class TokenConfigError(ValueError):
    """``SALON_API_TOKENS`` is not a valid token list (said at start-up, not per request)."""


class AccessDenied(Exception):
    """Base of the two refusals; ``status`` is the HTTP status to answer with."""

    status: int = 403

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unauthorized(AccessDenied):
    """No token, a malformed header, or a token nobody holds: 401."""

    status = 401


class Forbidden(AccessDenied):
    """A known token without the scope or the client asked for: 403."""

    status = 403


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a service or an advisor, with its scopes."""

    name: str
    scopes: frozenset[str]
    advisor_id: str | None = None

    @property
    def is_manager(self) -> bool:
        return "manager" in self.scopes

    def require(self, *scopes: str) -> None:
        """Raise :class:`Forbidden` unless the principal holds one of ``scopes`` (a
        manager holds ``advisor`` too).
        """
        held = self.scopes | ({"advisor"} if self.is_manager else set())
        if not held.intersection(scopes):
            raise Forbidden(f"{self.name} lacks scope {' or '.join(scopes)}")

    def may_see_advisor(self, advisor_id: str | None) -> bool:
        """Whether this principal may act on a client assigned to ``advisor_id``."""
        if self.is_manager:
            return True
        return "advisor" in self.scopes and self.advisor_id is not None and self.advisor_id == advisor_id


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenBook:
    """The configured tokens, as digests."""

    def __init__(self, entries: Iterable[tuple[bytes, Principal]] = ()) -> None:
        self._entries: tuple[tuple[bytes, Principal], ...] = tuple(entries)
        names = [principal.name for _, principal in self._entries]
        if len(set(names)) != len(names):
            raise TokenConfigError("token names must be unique")
        digests = [digest for digest, _ in self._entries]
        if len(set(digests)) != len(digests):
            raise TokenConfigError("two entries share one token")

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_config(cls, items: Iterable[Mapping[str, Any]]) -> TokenBook:
        entries: list[tuple[bytes, Principal]] = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise TokenConfigError(f"entry {index} is not an object")
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise TokenConfigError(f"entry {index} has no name")
            scopes = item.get("scopes")
            if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
                raise TokenConfigError(f"{name}: scopes must be a non-empty list of strings")
            unknown = set(scopes) - SCOPES
            if unknown:
                raise TokenConfigError(f"{name}: unknown scopes {sorted(unknown)}")
            advisor_id = item.get("advisor_id")
            if advisor_id is not None and not isinstance(advisor_id, str):
                raise TokenConfigError(f"{name}: advisor_id must be a string")
            if "advisor" in scopes and "manager" not in scopes and not advisor_id:
                raise TokenConfigError(f"{name}: an advisor token needs its advisor_id")
            token, sha = item.get("token"), item.get("sha256")
            if (token is None) == (sha is None):
                raise TokenConfigError(f"{name}: give exactly one of token or sha256")
            if token is not None:
                if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
                    raise TokenConfigError(f"{name}: a token needs at least {MIN_TOKEN_LENGTH} characters")
                digest = _digest(token)
            else:
                try:
                    digest = bytes.fromhex(str(sha))
                except ValueError as exc:
                    raise TokenConfigError(f"{name}: sha256 is not hex") from exc
                if len(digest) != 32:
                    raise TokenConfigError(f"{name}: sha256 must be 64 hex characters")
            entries.append((digest, Principal(name.strip(), frozenset(scopes), advisor_id)))
        return cls(entries)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TokenBook:
        """Read ``SALON_API_TOKENS``; unset or empty means no token is accepted."""
        raw = (environ if environ is not None else os.environ).get(ENV_VAR, "").strip()
        if not raw:
            return cls()
        try:
            items = json.loads(raw)
        except ValueError as exc:
            raise TokenConfigError(f"{ENV_VAR} is not JSON: {exc}") from None
        if not isinstance(items, list):
            raise TokenConfigError(f"{ENV_VAR} must be a JSON list")
        return cls.from_config(items)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization: Bearer …`` header, or
        :class:`Unauthorized`. Every digest is compared, so the time taken does not tell
        which (or whether any) entry matched.
        """
        if not authorization:
            raise Unauthorized("missing bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("expected 'Authorization: Bearer <token>'")
        presented = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, presented):
                found = principal
        if found is None:
            raise Unauthorized("unknown token")
        return found

    def principal_named(self, name: str) -> Principal | None:
        """The principal of the token named ``name`` as configured now (None when no token
        has that name any more): a console session checks it on every request.
        """
        return next((p for _, p in self._entries if p.name == name), None)

    def check(self, authorization: str | None, *scopes: str) -> Principal:
        """Authenticate and require one of ``scopes``."""
        principal = self.authenticate(authorization)
        if scopes:
            principal.require(*scopes)
        return principal
