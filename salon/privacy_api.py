"""The GDPR API: export and erase one client over HTTP, bearer token with scope ``gdpr``.

``salon gdpr-api`` serves it (``SALON_GDPR_API_HOST`` / ``SALON_GDPR_API_PORT``, default
127.0.0.1:5071); tokens come from ``SALON_API_TOKENS`` (:mod:`salon.access`).

- ``GET /gdpr/clients/{client}``: everything held about the client, as JSON;
- ``DELETE /gdpr/clients/{client}``: erase it everywhere; answers how many items each
  store removed.

``{client}`` is a maison client id, a phone number or a BSUID. Errors are short JSON
objects, never stack traces: 401 without a valid token, 403 without the scope, 404 for
an unknown client, 429 past the per-IP rate (``SALON_GDPR_API_RATE`` requests per
minute, 30 by default, counted before the token is checked, so guessing tokens is slow
too), 500 ``internal error`` for anything else (logged, masked).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from aiohttp import web

from salon.access import AccessDenied, TokenBook
from salon.clock import Clock, SystemClock
from salon.privacy import ClientNotFound, PrivacyRegistry

logger = logging.getLogger(__name__)

__all__ = ["IpRateLimit", "build_app", "serve"]

REGISTRY: web.AppKey[PrivacyRegistry] = web.AppKey("registry", PrivacyRegistry)
TOKENS: web.AppKey[TokenBook] = web.AppKey("tokens", TokenBook)
MAX_BODY = 16 * 1024


class IpRateLimit:
    """A token bucket per client IP: ``per_minute`` requests, refilled continuously."""

    def __init__(self, per_minute: int, clock: Clock, max_ips: int = 10_000) -> None:
        if per_minute < 1:
            raise ValueError("the rate must be at least one request per minute")
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.clock = clock
        self.max_ips = max_ips
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, ip: str) -> bool:
        now = self.clock.now().timestamp()
        tokens, last = self._buckets.get(ip, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.per_second)
        allowed = tokens >= 1.0
        self._buckets[ip] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.max_ips:  # forget the oldest entries
            for key in list(self._buckets)[: len(self._buckets) - self.max_ips]:
                del self._buckets[key]
        return allowed


LIMITER: web.AppKey[IpRateLimit] = web.AppKey("limiter", IpRateLimit)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.app[LIMITER].allow(request.remote or "unknown"):
        return _error(429, "too many requests")
    try:
        principal = request.app[TOKENS].check(request.headers.get("Authorization"), "gdpr")
    except AccessDenied as exc:
        return _error(exc.status, exc.reason)
    request["principal"] = principal
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except ClientNotFound:
        return _error(404, "unknown client")
    except Exception:
        logger.exception("GDPR request %s %s failed", request.method, request.path)
        return _error(500, "internal error")


async def _export(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    subject = await registry.resolve(request.match_info["client"])
    data = await registry.export(subject)
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), content_type="application/json")


async def _erase(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    subject = await registry.resolve(request.match_info["client"])
    removed = await registry.erase(subject, actor=f"api:{request['principal'].name}")
    return web.json_response({"erased": True, "removed": removed})


def build_app(registry: PrivacyRegistry, tokens: TokenBook, *, per_minute: int | None = None,
              clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=MAX_BODY)
    app[REGISTRY] = registry
    app[TOKENS] = tokens
    app[LIMITER] = IpRateLimit(per_minute or int(os.environ.get("SALON_GDPR_API_RATE", "30")),
                               clock or SystemClock())
    app.router.add_get("/gdpr/clients/{client}", _export)
    app.router.add_delete("/gdpr/clients/{client}", _erase)

    async def close(app: web.Application) -> None:
        await registry.close()

    app.on_cleanup.append(close)
    return app


def serve(registry: PrivacyRegistry, tokens: TokenBook, host: str | None = None, port: int | None = None) -> None:
    if not len(tokens):
        raise SystemExit("salon gdpr-api: SALON_API_TOKENS holds no token; refusing to serve")
    web.run_app(build_app(registry, tokens), host=host or os.environ.get("SALON_GDPR_API_HOST", "127.0.0.1"),
                port=port or int(os.environ.get("SALON_GDPR_API_PORT", "5071")), access_log=None)
