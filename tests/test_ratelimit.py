"""Per-IP rate limits: the limiter itself (burst, Retry-After, other IPs, recovery,
bounded memory), which IP a request counts for, and the limits on the real servers: the
outbound API (aiohttp) and the advisor API on the WhatsApp channel's Sanic blueprint,
whose Meta webhook is never limited. Distinct clients are real distinct peers on the
loopback network (127.0.0.1, 127.0.0.2 ...)."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from connectors.advisor_api import SanicRateLimit
from salon.access.ratelimit import (
    ClientIp,
    IpRateLimit,
    RateLimitConfigError,
    RateLimitSettings,
    parse_networks,
)
from salon.access.tokens import TokenBook
from salon.clock import ManualClock
from salon.config import Settings
from salon.outbound.api import create_app
from salon.outbound.queue import OutboundQueue
from tests.whatsapp_support import (
    PNID,
    VERIFY_TOKEN,
    contact,
    envelope,
    free_port,
    messages_change,
    running_channel,
    text_message,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


class FakeTime:
    """Seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- the limiter


def test_a_burst_beyond_the_limit_is_refused_with_the_wait_and_other_ips_are_unaffected() -> None:
    clock = FakeTime()
    limiter = IpRateLimit(60, clock, burst=5)
    assert [limiter.hit("198.51.100.7") for _ in range(5)] == [0.0] * 5
    assert limiter.hit("198.51.100.7") == pytest.approx(1.0)  # one token a second
    assert not limiter.allow("198.51.100.7")
    assert limiter.refused == 2
    assert all(limiter.allow("198.51.100.8") for _ in range(5))  # its own bucket
    assert limiter.hit("198.51.100.8") > 0


def test_requests_are_allowed_again_after_the_wait() -> None:
    clock = FakeTime()
    limiter = IpRateLimit(30, clock)  # a burst of 30, one request every 2 s
    for _ in range(30):
        assert limiter.allow("203.0.113.9")
    wait = limiter.hit("203.0.113.9")
    assert wait == pytest.approx(2.0)
    clock.now += wait - 0.01
    assert not limiter.allow("203.0.113.9")  # refused requests spend nothing, but time has not come
    clock.now += 0.02
    assert limiter.allow("203.0.113.9")
    assert not limiter.allow("203.0.113.9")
    clock.now += 60  # a full minute: the whole burst is back
    assert sum(limiter.allow("203.0.113.9") for _ in range(40)) == 30


def test_a_clock_going_backwards_refills_nothing() -> None:
    clock = FakeTime()
    limiter = IpRateLimit(60, clock, burst=1)
    assert limiter.allow("192.0.2.1")
    clock.now -= 3600
    assert not limiter.allow("192.0.2.1")


def test_memory_is_bounded_under_a_flood_of_addresses_and_a_busy_ip_stays_limited() -> None:
    clock = FakeTime()
    limiter = IpRateLimit(60, clock, burst=3, max_ips=1000)
    attacker = "192.0.2.66"
    for _ in range(3):
        assert limiter.allow(attacker)
    tracemalloc.start()
    try:
        filled = 0
        for i in range(30_000):  # the table fills up, then 29,000 more addresses arrive
            limiter.hit(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
            if i % 500 == 0:
                assert not limiter.allow(attacker), i  # seen often: remembered, still limited
            if i == 1000:
                filled, _ = tracemalloc.get_traced_memory()
        flooded, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(limiter) <= 1000
    assert flooded - filled < 64 * 1024, (filled, flooded)  # 29 times more addresses, no more memory


def test_buckets_that_refilled_are_forgotten() -> None:
    clock = FakeTime()
    limiter = IpRateLimit(60, clock, burst=2)
    for i in range(50):
        limiter.hit(f"198.51.100.{i}")
    assert len(limiter) == 50
    clock.now += 10  # every bucket is full again
    for i in range(30):
        limiter.hit(f"203.0.113.{i}")
    assert len(limiter) == 30  # two idle buckets dropped per request: the 50 are gone, the 30 kept


def test_settings_from_the_environment() -> None:
    default = RateLimitSettings.from_env("OUTBOUND_API", 600, {})
    assert (default.per_minute, default.burst, default.max_ips, default.trusted_proxies) == (600, 600, 10_000, ())
    custom = RateLimitSettings.from_env("ADVISOR_API", 300, {
        "SALON_ADVISOR_API_RATE": "120", "SALON_ADVISOR_API_BURST": "20", "SALON_RATE_LIMIT_MAX_IPS": "500",
        "SALON_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,2001:db8::/32"})
    assert (custom.per_minute, custom.burst, custom.max_ips) == (120, 20, 500)
    assert [str(n) for n in custom.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"]
    with pytest.raises(RateLimitConfigError, match="SALON_GDPR_API_RATE"):
        RateLimitSettings.from_env("GDPR_API", 30, {"SALON_GDPR_API_RATE": "lots"})
    with pytest.raises(RateLimitConfigError, match="SALON_GDPR_API_BURST"):
        RateLimitSettings.from_env("GDPR_API", 30, {"SALON_GDPR_API_BURST": "0"})
    with pytest.raises(RateLimitConfigError, match="not an IP"):
        parse_networks("10.0.0.0/8,proxy.internal")


# --------------------------------------------------------------------------- which IP


def test_the_direct_peer_counts_unless_it_is_a_trusted_proxy() -> None:
    direct = ClientIp()
    assert direct.resolve("198.51.100.7", ["203.0.113.1"]) == "198.51.100.7"  # the header is not read
    assert direct.resolve(None) == "unknown"
    behind = ClientIp(parse_networks("10.0.0.0/8,127.0.0.1"))
    # the proxy appends the real peer; what the client wrote further left is ignored
    assert behind.resolve("127.0.0.1", ["1.1.1.1, 203.0.113.5"]) == "203.0.113.5"
    assert behind.resolve("127.0.0.1", ["1.1.1.1, 203.0.113.5, 10.1.2.3"]) == "203.0.113.5"  # two proxies
    assert behind.resolve("127.0.0.1", ["1.1.1.1", "203.0.113.5"]) == "203.0.113.5"  # several headers
    assert behind.resolve("198.51.100.7", ["203.0.113.5"]) == "198.51.100.7"  # not from a proxy
    assert behind.resolve("127.0.0.1", []) == "127.0.0.1"
    assert behind.resolve("127.0.0.1", ["garbage"]) == "127.0.0.1"
    assert behind.resolve("127.0.0.1", ["203.0.113.5:51234"]) == "203.0.113.5"
    assert behind.resolve("127.0.0.1", ["[2001:db8:1:2::7]:443"]) == "2001:db8:1:2::/64"


def test_ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() -> None:
    ips = ClientIp()
    assert ips.resolve("2001:db8:aa:bb:1::1") == ips.resolve("2001:db8:aa:bb:ffff::2") == "2001:db8:aa:bb::/64"
    assert ips.resolve("2001:db8:aa:bc::1") != ips.resolve("2001:db8:aa:bb::1")
    assert ips.resolve("::ffff:198.51.100.7") == "198.51.100.7"


# --------------------------------------------------------------------------- the outbound API


@asynccontextmanager
async def outbound_api(sqlite_url: str, limit: RateLimitSettings, clock: Callable[[], float]) -> AsyncIterator[str]:
    queue = OutboundQueue(sqlite_url)
    await queue.initialize()
    tokens = TokenBook.from_config([{"name": "crm", "token": "crm-token-0123456789", "scopes": ["outbound"]},
                                    {"name": "prom", "token": "prom-token-0123456789", "scopes": ["metrics"]}])
    app = create_app(queue, tokens, ManualClock(T0), phone_number_id=PNID, rate_limit=limit, rate_clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await queue.close()


def from_ip(ip: str) -> aiohttp.ClientSession:
    """A client whose connections come from ``ip`` (any 127.x.y.z is a loopback peer)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(ip, 0), force_close=True))


async def test_outbound_api_limits_each_peer_on_every_route(sqlite_url: str) -> None:
    clock = FakeTime()
    crm = {"Authorization": "Bearer crm-token-0123456789"}
    async with outbound_api(sqlite_url, RateLimitSettings(per_minute=6, burst=4), clock) as base:
        async with from_ip("127.0.0.2") as one, from_ip("127.0.0.3") as other:
            codes = []
            for path, headers in (("/health", {}), ("/outbound/metrics", crm),
                                  ("/outbound/metrics", {"Authorization": "Bearer prom-token-0123456789"}),
                                  (f"/outbound/{'0' * 32}", crm)):
                async with one.get(base + path, headers=headers) as r:
                    codes.append(r.status)
            assert codes == [200, 200, 200, 404]
            # past the burst: refused before the token is looked at, whatever the route
            for method, path in (("GET", "/health"), ("GET", "/outbound/metrics"), ("POST", "/outbound"),
                                 ("POST", "/outbound/campaigns")):
                async with one.request(method, base + path, headers=crm, json={}) as r:
                    assert r.status == 429, (method, path)
                    assert r.headers["Retry-After"] == "10"  # 6 a minute: one every 10 s
                    assert await r.json() == {"error": "too many requests", "retry_after": 10}
            # another peer, and a spoofed X-Forwarded-For changes nothing for the first
            async with other.get(base + "/outbound/metrics", headers=crm) as r:
                assert r.status == 200
            async with one.get(base + "/health", headers={"X-Forwarded-For": "203.0.113.99"}) as r:
                assert r.status == 429
            clock.now += 10
            async with one.get(base + "/outbound/metrics", headers=crm) as r:
                assert r.status == 200
            async with one.get(base + "/health") as r:
                assert r.status == 429 and int(r.headers["Retry-After"]) == 10


async def test_outbound_api_behind_a_trusted_proxy_limits_each_forwarded_client(sqlite_url: str) -> None:
    clock = FakeTime()
    limit = RateLimitSettings(per_minute=60, burst=2, trusted_proxies=parse_networks("127.0.0.1"))
    async with outbound_api(sqlite_url, limit, clock) as base, from_ip("127.0.0.1") as proxy:
        def via(client: str) -> dict[str, str]:
            return {"X-Forwarded-For": f"10.9.9.9, {client}"}  # the leftmost entry is the client's own claim

        assert [await status(proxy, base + "/health", via("203.0.113.1")) for _ in range(3)] == [200, 200, 429]
        assert await status(proxy, base + "/health", via("203.0.113.2")) == 200
        assert await status(proxy, base + "/health", {"X-Forwarded-For": "203.0.113.2, 203.0.113.1"}) == 429


async def status(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with http.get(url, headers=headers) as r:
        return r.status


# --------------------------------------------------------------------------- the channel's blueprint


async def test_advisor_api_and_health_are_limited_but_the_meta_webhook_never(sqlite_url: str,
                                                                             tmp_path: Path) -> None:
    clock = FakeTime()
    limit = SanicRateLimit(RateLimitSettings(per_minute=30, burst=3), clock)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=sqlite_url, redis_url=None)
    ts = int(T0.timestamp())
    async with running_channel(settings, rate_limit=limit) as ch, from_ip("127.0.0.4") as one, \
            from_ip("127.0.0.5") as other:
        advisor = f"{ch.url}/webhooks/whatsapp/advisor/conversations"
        assert [await status(one, advisor, {}) for _ in range(3)] == [401, 401, 401]
        async with one.get(advisor) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "2"
            assert await r.json() == {"error": "too many requests", "retry_after": 2}
        async with one.post(f"{advisor}/33600000001/reply", json={"text": "x"}) as r:
            assert r.status == 429
        assert await status(one, f"{ch.url}/webhooks/whatsapp/", {}) == 429  # the channel's health too
        repairs = f"{ch.url}/webhooks/whatsapp/advisor/repairs"
        for url in (repairs, f"{repairs}/R-1"):
            assert await status(one, url, {}) == 429  # the repair requests too
        async with one.post(f"{repairs}/R-1/status", json={"status": "ready"}) as r:
            assert r.status == 429
        assert await status(other, advisor, {}) == 401  # another client: its own bucket

        # Meta's webhook from the same, limited, peer: handshakes and signed posts all pass.
        handshake = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"}
        for _ in range(20):
            async with one.get(ch.webhook, params=handshake) as r:
                assert r.status == 200 and await r.text() == "42"
        assert ch.http is not None
        ch.http = one
        for i in range(20):
            payload = envelope(messages_change([text_message("33600000001", f"Bonjour {i}", ts + i)],
                                               [contact("33600000001")]))
            assert (await ch.post(payload))[0] == 200, i
        async with one.get(advisor) as r:
            assert r.status == 429  # still limited: the webhook did not count either way

        clock.now += 2
        assert await status(one, advisor, {}) == 401  # allowed again (and refused for want of a token)
        assert await status(one, advisor, {}) == 429
