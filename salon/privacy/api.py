"""The GDPR API: export and erase one client over HTTP, bearer token with scope ``gdpr``.

``salon gdpr-api`` serves it (``SALON_GDPR_API_HOST`` / ``SALON_GDPR_API_PORT``, default
127.0.0.1:5071); tokens come from ``SALON_API_TOKENS`` (:mod:`salon.access.tokens`).

- ``GET /gdpr/clients/{client}``: everything held about the client, as JSON;
- ``DELETE /gdpr/clients/{client}``: erase it everywhere; answers how many items each
  store removed (``removed``) and the erasure report (``report``: per store ``erased``,
  ``absent``, ``failed`` or ``kept``, and the copies Salon cannot erase).

``{client}`` is a maison client id, a phone number, a BSUID or a conversation id. Errors
are short JSON objects, never stack traces: 401 without a valid token, 403 without the
scope, 404 for an unknown client, 409 when the client's ids lead to several clients of the
book, 503 (``stores``: which and why) when a store that may hold the client's data cannot
be reached or erased (nothing was done), 500 with ``"erased": false`` and the report when
the erasure was partial (run it again), 429 with ``Retry-After`` past the per-IP rate
(``SALON_GDPR_API_RATE`` requests a minute, 30 by default, burst
``SALON_GDPR_API_BURST``; counted before the token is checked, so guessing tokens is slow
too; see :mod:`salon.access.ratelimit`), 500 ``internal error`` for anything else (logged, masked).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web

from salon.access.ratelimit import (
    ClientIp,
    IpRateLimit,
    RateLimitConfigError,
    RateLimitSettings,
    aiohttp_rate_limit,
)
from salon.access.tokens import AccessDenied, TokenBook
from salon.privacy.rights import (
    AmbiguousSubject,
    ClientNotFound,
    ErasureIncomplete,
    PrivacyRegistry,
    StoreUnavailable,
)

logger = logging.getLogger(__name__)

__all__ = ["build_app", "serve"]

REGISTRY: web.AppKey[PrivacyRegistry] = web.AppKey("registry", PrivacyRegistry)
TOKENS: web.AppKey[TokenBook] = web.AppKey("tokens", TokenBook)
MAX_BODY = 16 * 1024
DEFAULT_RATE = 30


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
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
    except AmbiguousSubject as exc:
        return _error(409, str(exc))
    except StoreUnavailable as exc:
        logger.error("GDPR request %s refused: %s", request.method, exc)
        return web.json_response({"error": "stores unavailable: nothing was done", "stores": exc.stores},
                                 status=503)
    except ErasureIncomplete as exc:
        logger.error("GDPR erasure incomplete: %s", exc)
        report = exc.report.as_dict() if exc.report is not None else None
        return web.json_response({"erased": False, "error": str(exc), "report": report}, status=500)
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
    report = await registry.erase(subject, actor=f"api:{request['principal'].name}")
    return web.json_response({"erased": True, "removed": dict(report), "report": report.as_dict()})


def build_app(registry: PrivacyRegistry, tokens: TokenBook, *, rate_limit: RateLimitSettings | None = None,
              rate_clock: Callable[[], float] | None = None) -> web.Application:
    """The API; ``rate_limit`` defaults to the environment's (``SALON_GDPR_API_RATE`` …),
    ``rate_clock`` to the monotonic clock.
    """
    limit = rate_limit or RateLimitSettings.from_env("GDPR_API", DEFAULT_RATE)
    limiter = IpRateLimit.from_settings(limit, rate_clock, name="GDPR API")
    # The limit comes first: counted before the token is checked.
    app = web.Application(middlewares=[aiohttp_rate_limit(limiter, ClientIp(limit.trusted_proxies)), _guard],
                          client_max_size=MAX_BODY)
    app[REGISTRY] = registry
    app[TOKENS] = tokens
    app.router.add_get("/gdpr/clients/{client}", _export)
    app.router.add_delete("/gdpr/clients/{client}", _erase)

    async def close(app: web.Application) -> None:
        await registry.close()

    # aiohttp 3.9 types its signals for aiosignal < 1.4, whose Signal took the callback type
    app.on_cleanup.append(close)  # type: ignore[arg-type]
    return app


def serve(registry: PrivacyRegistry, tokens: TokenBook, host: str | None = None, port: int | None = None) -> None:
    """Serve the GDPR API on ``host``/``port`` (else ``SALON_GDPR_API_HOST`` and
    ``SALON_GDPR_API_PORT``, else 127.0.0.1:5071); refuses to start without a token or
    with a malformed rate limit.
    """
    if not len(tokens):
        raise SystemExit("salon gdpr-api: SALON_API_TOKENS holds no token; refusing to serve")
    try:
        limit = RateLimitSettings.from_env("GDPR_API", DEFAULT_RATE)
    except RateLimitConfigError as exc:
        raise SystemExit(f"salon gdpr-api: {exc}") from None
    from salon.metrics.access import MetricsConfigError
    from salon.metrics.registry import GDPR_API
    from salon.metrics.serve import install_metrics

    app = build_app(registry, tokens, rate_limit=limit)
    try:
        # GET /metrics for Prometheus (loopback, or SALON_METRICS_TOKEN).
        install_metrics(app, GDPR_API)
    except MetricsConfigError as exc:
        raise SystemExit(f"salon gdpr-api: {exc}") from None
    web.run_app(app, host=host or os.environ.get("SALON_GDPR_API_HOST", "127.0.0.1"),
                port=port or int(os.environ.get("SALON_GDPR_API_PORT", "5071")), access_log=None)
