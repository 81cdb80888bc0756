"""Per-IP rate limits for Salon's own HTTP APIs (outbound, advisor, GDPR).

Each API holds one :class:`IpRateLimit`: a token bucket per client IP, ``burst`` requests
at once, refilled at ``per_minute`` a minute. Past it the answer is 429 with
``Retry-After`` (whole seconds until the next request is allowed) and a short JSON
error, before any token is checked (so guessing tokens is as slow as anything else).
Meta's webhook is never limited: Meta retries and batches on its own terms, and a
refused webhook would only come back later.

Memory stays bounded: the buckets are kept in least-recently-used order, at most
``max_ips`` of them (``SALON_RATE_LIMIT_MAX_IPS``, 10,000 by default, a few MB); a new
IP past that forgets the one unseen for longest, and buckets that have refilled are
forgotten as the limiter goes (a full bucket is the same as no bucket). A flood of
addresses therefore costs a fixed amount of memory, and an IP that keeps calling stays
remembered (and limited) however many others arrive.

Which IP: the direct peer of the TCP connection, by default. Behind a reverse proxy or
load balancer, list it in ``SALON_TRUSTED_PROXIES`` (comma-separated addresses or
networks, ``10.0.0.0/8,127.0.0.1``): when the peer is one of them, ``X-Forwarded-For``
is read from the right, skipping trusted hops, and the first address that is not a
trusted proxy is the client (the entries further left were written by the client and
are ignored). Without that setting ``X-Forwarded-For`` is never read, so a client cannot
choose its own bucket. IPv6 clients are counted per /64 network (one subscriber's
usual allocation), IPv4-mapped IPv6 addresses as their IPv4 address.

Per API (``<API>`` is ``OUTBOUND_API``, ``ADVISOR_API`` or ``GDPR_API``):
``SALON_<API>_RATE`` requests a minute per IP and ``SALON_<API>_BURST`` (the rate by
default). A malformed value stops the server at start-up with the variable's name.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from salon.clock import Clock

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_IPS",
    "ClientIp",
    "IpRateLimit",
    "RateLimitConfigError",
    "RateLimitSettings",
    "aiohttp_rate_limit",
    "too_many_requests",
]

DEFAULT_MAX_IPS: Final = 10_000
ENV_MAX_IPS: Final = "SALON_RATE_LIMIT_MAX_IPS"
ENV_TRUSTED_PROXIES: Final = "SALON_TRUSTED_PROXIES"
_IDLE_SWEEP: Final = 2  # refilled buckets forgotten per request, at most

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RateLimitConfigError(ValueError):
    """A rate-limit variable is malformed (said at start-up)."""


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RateLimitConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise RateLimitConfigError(f"{name} must be at least 1, not {value}")
    return value


def parse_networks(raw: str, name: str = ENV_TRUSTED_PROXIES) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks; a malformed entry is an error."""
    networks: list[Network] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise RateLimitConfigError(f"{name}: {part!r} is not an IP address or network") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """One API's limit, and how its clients are told apart."""

    per_minute: int
    burst: int
    max_ips: int = DEFAULT_MAX_IPS
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls, api: str, default_per_minute: int,
                 environ: Mapping[str, str] | None = None) -> RateLimitSettings:
        """``api`` is the variables' middle part: ``"OUTBOUND_API"`` reads
        ``SALON_OUTBOUND_API_RATE`` and ``SALON_OUTBOUND_API_BURST``.
        """
        env = os.environ if environ is None else environ
        per_minute = _positive_int(env, f"SALON_{api}_RATE", default_per_minute)
        return cls(
            per_minute=per_minute,
            burst=_positive_int(env, f"SALON_{api}_BURST", per_minute),
            max_ips=_positive_int(env, ENV_MAX_IPS, DEFAULT_MAX_IPS),
            trusted_proxies=parse_networks(env.get(ENV_TRUSTED_PROXIES, "")),
        )


def _address(raw: str | None) -> Address | None:
    """An address as a peer or an ``X-Forwarded-For`` hop gives it (``[v6]:port`` and
    ``v4:port`` included); None when it is not one.
    """
    if not raw:
        return None
    text = raw.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class ClientIp:
    """Which client a request comes from: the peer, or (behind a trusted proxy) the
    nearest untrusted hop of ``X-Forwarded-For``.
    """

    def __init__(self, trusted_proxies: Iterable[Network] = ()) -> None:
        self.trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self.trusted)

    def resolve(self, peer: str | None, forwarded_for: Iterable[str] = ()) -> str:
        address = _address(peer)
        if address is None:
            return "unknown"  # e.g. a Unix socket: every caller shares one bucket
        if self.trusted and self._is_trusted(address):
            hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
            while hops and self._is_trusted(address):
                hop = _address(hops.pop())
                if hop is None:
                    break  # a malformed hop: count the proxy that passed it on
                address = hop
        return self.key(address)

    @staticmethod
    def key(address: Address) -> str:
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        return str(address)


class IpRateLimit:
    """A token bucket per client key: ``burst`` requests at once (``per_minute`` by
    default), refilled continuously at ``per_minute`` a minute; at most ``max_ips``
    buckets, least recently seen forgotten first.

    Time comes from ``clock`` (a :class:`~salon.clock.Clock` or a function returning
    seconds); by default the monotonic clock, since a limit is about real elapsed time,
    not the business time a test or the emulator may move. A clock going backwards
    refills nothing.
    """

    def __init__(self, per_minute: int, clock: Clock | Callable[[], float] | None = None, *,
                 burst: int | None = None, max_ips: int = DEFAULT_MAX_IPS, name: str = "API") -> None:
        if per_minute < 1:
            raise ValueError("the rate must be at least one request per minute")
        if burst is not None and burst < 1:
            raise ValueError("the burst must be at least one request")
        if max_ips < 1:
            raise ValueError("at least one IP must be tracked")
        self.per_minute = per_minute
        self.capacity = float(burst if burst is not None else per_minute)
        self.per_second = per_minute / 60.0
        self.max_ips = max_ips
        self.name = name
        self.refused = 0
        if clock is None:
            self._now: Callable[[], float] = time.monotonic
        elif callable(clock):
            self._now = clock
        else:
            self._now = lambda: clock.now().timestamp()
        # key -> (tokens, last update, refused since last allowed)
        self._buckets: OrderedDict[str, tuple[float, float, bool]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: RateLimitSettings, clock: Clock | Callable[[], float] | None = None,
                      *, name: str = "API") -> IpRateLimit:
        return cls(settings.per_minute, clock, burst=settings.burst, max_ips=settings.max_ips, name=name)

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, tokens: float, last: float, now: float) -> float:
        return min(self.capacity, tokens + max(0.0, now - last) * self.per_second)

    def hit(self, key: str) -> float:
        """Count one request from ``key``: 0.0 when allowed, else the seconds until the
        next one would be.
        """
        now = self._now()
        with self._lock:
            entry = self._buckets.pop(key, None)
            tokens = self.capacity if entry is None else self._refilled(entry[0], entry[1], now)
            was_refused = entry is not None and entry[2]
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now, False)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now, True)
                wait = (1.0 - tokens) / self.per_second
                self.refused += 1
            self._forget(now)
        if wait and not was_refused:  # once per episode, not once per request
            logger.warning("%s: %s is over %d request(s) a minute; answering 429", self.name, key,
                           self.per_minute)
        return wait

    def allow(self, key: str) -> bool:
        return self.hit(key) == 0.0

    def _forget(self, now: float) -> None:
        buckets = self._buckets
        while len(buckets) > self.max_ips:
            buckets.popitem(last=False)
        for _ in range(_IDLE_SWEEP):
            if not buckets:
                return
            oldest = next(iter(buckets))
            tokens, last, _refused = buckets[oldest]
            if self._refilled(tokens, last, now) < self.capacity:
                return
            del buckets[oldest]


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def too_many_requests(wait: float) -> tuple[dict[str, Any], dict[str, str]]:
    """The 429's JSON body and headers."""
    seconds = retry_after_seconds(wait)
    return {"error": "too many requests", "retry_after": seconds}, {"Retry-After": str(seconds)}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def aiohttp_rate_limit(limiter: IpRateLimit, clients: ClientIp) -> Any:
    """An aiohttp middleware answering 429 past ``limiter``, before any other work."""

    @web.middleware
    async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = clients.resolve(request.remote, request.headers.getall("X-Forwarded-For", ()))
        wait = limiter.hit(key)
        if wait:
            body, headers = too_many_requests(wait)
            return web.json_response(body, status=429, headers=headers)
        return await handler(request)

    return rate_limit
