"""Pacing of bot-initiated messages: token buckets and quiet hours.

- One bucket per business number (Meta's throughput: 80 messages/s by default, up to
  1,000 for numbers Meta has upgraded) and one per client (Meta's pair rate: about one
  message every 6 seconds sustained, with a small burst).
- Quiet hours in the client's own time zone for marketing and other non-urgent purposes:
  a message due at 23:00 for a client in Milan waits until the morning there.

The number's bucket holds a fifth of a second's throughput by default, not a whole
second: Meta's own bucket then keeps most of its burst in reserve, and the jitter of
sends on their way (two sends paced 1 ms apart may arrive together) never meets an empty
bucket there (130429). The sustained rate is the same.

Buckets live in the worker's memory: each worker process paces what it sends. With
several workers (``SALON_OUTBOUND_SHARD=i/n``), each takes ``rate / n`` of the number's
throughput (:meth:`PacingConfig.share`), and the queue gives all of a client's requests
to one worker (:func:`salon.outbound.queue.shard_of`), so a client's bucket lives in one place.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from salon.purposes import PURPOSE_CATEGORY

__all__ = ["PacingConfig", "Pacer", "QuietHours", "TokenBucket"]

MAX_BUSINESS_RATE: Final = 1000.0
BURST_SECONDS: Final = 0.2
"""The default burst of the number's bucket, in seconds of its rate."""
DEFAULT_QUIET_PURPOSES: Final = frozenset(
    {p for p, category in PURPOSE_CATEGORY.items() if category == "MARKETING"}
    | {"advisor_followup", "restock_alert"}
)
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. Times are seconds on any
    monotonic scale the caller chooses (the worker uses its clock's timestamps).
    """

    __slots__ = ("burst", "rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0: now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self, now: float) -> float:
        """Reserve one token; returns how long to wait before using it (the debt is
        carried, so concurrent callers queue in order).
        """
        self._refill(now)
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock hours (``start``-``end``, may cross midnight) when non-urgent
    purposes wait.
    """

    start: time
    end: time
    purposes: frozenset[str] = DEFAULT_QUIET_PURPOSES
    default_zone: str = "Europe/Paris"

    @classmethod
    def parse(cls, spec: str, purposes: frozenset[str] = DEFAULT_QUIET_PURPOSES,
              default_zone: str = "Europe/Paris") -> QuietHours | None:
        """``"21:00-09:00"``; ``""`` or ``"off"``: none."""
        spec = spec.strip()
        if spec in ("", "off"):
            return None
        match = _HOURS.match(spec)
        if not match:
            raise ValueError(f"quiet hours must look like 21:00-09:00, not {spec!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise ValueError("quiet hours must not start and end at the same minute")
        unknown = purposes - set(PURPOSE_CATEGORY)
        if unknown:
            raise ValueError(f"unknown purposes for quiet hours: {sorted(unknown)}")
        _zone(default_zone)
        return cls(time(h1, m1), time(h2, m2), purposes, default_zone)

    def applies(self, purpose: str) -> bool:
        return purpose in self.purposes

    def resume_at(self, now: datetime, zone_name: str | None) -> datetime | None:
        """When quiet hours end, if ``now`` is inside them in ``zone_name`` (the
        client's IANA zone; the default zone when unknown), else None.
        """
        try:
            zone = _zone(zone_name or self.default_zone)
        except ValueError:
            zone = _zone(self.default_zone)
        local = now.astimezone(zone)
        clock = local.time()
        if self.start < self.end:
            inside = self.start <= clock < self.end
        else:
            inside = clock >= self.start or clock < self.end
        if not inside:
            return None
        end_day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        resume = datetime.combine(end_day, self.end, tzinfo=zone)
        return resume.astimezone(now.tzinfo)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class PacingConfig:
    """How bot-initiated messages are paced: the number's rate and burst, each client's
    interval and burst, and the quiet hours (see the module docstring).
    """

    business_rate: float = 80.0
    business_burst: float = 80.0 * BURST_SECONDS
    client_interval_s: float = 6.0
    client_burst: float = 3.0
    quiet: QuietHours | None = field(default_factory=lambda: QuietHours.parse("21:00-09:00"))

    def __post_init__(self) -> None:
        if not 0 < self.business_rate <= MAX_BUSINESS_RATE:
            raise ValueError(f"business rate must be in (0, {MAX_BUSINESS_RATE:.0f}] messages/s")
        if self.business_burst < 1 or self.client_burst < 1 or self.client_interval_s <= 0:
            raise ValueError("bursts must be >= 1 and the client interval > 0")

    def share(self, workers: int) -> PacingConfig:
        """One worker's part when ``workers`` share the number's throughput."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if workers == 1:
            return self
        return replace(self, business_rate=self.business_rate / workers,
                       business_burst=max(1.0, self.business_burst / workers))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PacingConfig:
        env = os.environ if environ is None else environ
        rate = float(env.get("SALON_OUTBOUND_RATE", "80"))
        purposes_raw = env.get("SALON_OUTBOUND_QUIET_PURPOSES")
        purposes = (frozenset(p.strip() for p in purposes_raw.split(",") if p.strip())
                    if purposes_raw is not None else DEFAULT_QUIET_PURPOSES)
        quiet = QuietHours.parse(env.get("SALON_OUTBOUND_QUIET_HOURS", "21:00-09:00"), purposes,
                                 env.get("SALON_OUTBOUND_DEFAULT_TZ", "Europe/Paris"))
        return cls(
            business_rate=rate,
            business_burst=float(env.get("SALON_OUTBOUND_BURST", str(max(1.0, rate * BURST_SECONDS)))),
            client_interval_s=float(env.get("SALON_OUTBOUND_CLIENT_INTERVAL", "6")),
            client_burst=float(env.get("SALON_OUTBOUND_CLIENT_BURST", "3")),
            quiet=quiet,
        )


class Pacer:
    """The worker's buckets: one per business number, one per client (the least
    recently used client buckets are forgotten past ``max_clients``; a forgotten one
    comes back full, which is what a client silent that long has earned anyway).
    """

    def __init__(self, config: PacingConfig, max_clients: int = 100_000) -> None:
        self.config = config
        self._business: dict[str, TokenBucket] = {}
        self._clients: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max_clients = max_clients

    def client_wait(self, client_key: str, now: float) -> float:
        """Seconds before this client may receive another message (nothing reserved)."""
        bucket = self._clients.get(client_key)
        return 0.0 if bucket is None else bucket.wait(now)

    def take_client(self, client_key: str, now: float) -> None:
        bucket = self._clients.get(client_key)
        if bucket is None:
            bucket = TokenBucket(1 / self.config.client_interval_s, self.config.client_burst, now)
            self._clients[client_key] = bucket
            if len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client_key)
        bucket.take(now)

    def take_business(self, phone_number_id: str, now: float) -> float:
        """Reserve a slot of the number's throughput; seconds to wait before sending."""
        bucket = self._business.get(phone_number_id)
        if bucket is None:
            bucket = TokenBucket(self.config.business_rate, self.config.business_burst, now)
            self._business[phone_number_id] = bucket
        return bucket.take(now)
