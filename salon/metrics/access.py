"""Who may read ``GET /metrics``: callers on this machine, or holders of the metrics token.

The metrics name no client, but they tell how many clients write, what the maison spends
and how its processes are doing: not for anyone who can reach a port.

- Without ``SALON_METRICS_TOKEN``: loopback callers only (a Prometheus on the same host, or
  an agent beside the process). A request a proxy relayed (it carries ``Forwarded``,
  ``X-Forwarded-For`` or ``X-Real-IP``) is not a loopback caller, whatever the proxy's own
  address: a reverse proxy on the same host would otherwise open the route to the world.
  Refused with 403.
- With ``SALON_METRICS_TOKEN`` (at least 16 characters): every caller, loopback included,
  must send ``Authorization: Bearer <token>``, compared in constant time (the SHA-256 of
  what is presented against the SHA-256 of the token, so neither the token's length nor
  its characters leak through timing). Refused with 401. The token is never accepted in a
  URL, never logged, and not kept in memory: only its digest is.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = ["ENV_TOKEN", "PROXY_HEADERS", "MetricsAccess", "MetricsConfigError", "is_loopback_peer"]

ENV_TOKEN: Final = "SALON_METRICS_TOKEN"
MIN_TOKEN_LENGTH: Final = 16
PROXY_HEADERS: Final = ("forwarded", "x-forwarded-for", "x-real-ip")
"""Headers a relaying proxy adds: their presence means the TCP peer is not the caller."""


class MetricsConfigError(ValueError):
    """``SALON_METRICS_TOKEN`` is unusable (said at start-up, never per request)."""


class Headers(Protocol):
    """Case-insensitive request headers (Sanic's and aiohttp's both are)."""

    def get(self, key: str, default: Any = None) -> Any: ...


def is_loopback_peer(peer: str | None) -> bool:
    """Whether the TCP peer ``peer`` (an IP address, as the server saw it) is this machine:
    127.0.0.0/8, ::1, or an IPv4-mapped loopback address. Unix sockets and unknown peers
    are not.
    """
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """The rule for one process's metrics route; :meth:`from_env` reads it."""

    digest: bytes | None = field(default=None, repr=False)
    """SHA-256 of the token, or None: loopback callers only."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MetricsAccess:
        """The rule ``SALON_METRICS_TOKEN`` sets (:class:`MetricsConfigError` when it is too
        short or holds whitespace).
        """
        token = (environ if environ is not None else os.environ).get(ENV_TOKEN, "").strip()
        if not token:
            return cls()
        return cls.with_token(token)

    @classmethod
    def with_token(cls, token: str) -> MetricsAccess:
        if len(token) < MIN_TOKEN_LENGTH or any(ch.isspace() for ch in token):
            raise MetricsConfigError(
                f"{ENV_TOKEN} must be at least {MIN_TOKEN_LENGTH} characters, without spaces")
        return cls(hashlib.sha256(token.encode()).digest())

    @property
    def token_required(self) -> bool:
        return self.digest is not None

    def refusal(self, peer: str | None, headers: Headers) -> int | None:
        """None when this caller may read the metrics, else the HTTP status to answer
        (401 without the right token, 403 for a caller that is not on this machine).
        """
        if self.digest is not None:
            scheme, _, given = str(headers.get("authorization") or "").partition(" ")
            presented = hashlib.sha256(given.strip().encode()).digest()
            matches = hmac.compare_digest(presented, self.digest)
            return None if scheme.lower() == "bearer" and matches else 401
        if not is_loopback_peer(peer):
            return 403
        if any(headers.get(name) is not None for name in PROXY_HEADERS):
            return 403
        return None
