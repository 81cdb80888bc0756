"""``GET /metrics`` on the aiohttp processes: the GDPR API, the outbound API, and the outbound
worker (which has no HTTP server of its own, so gets a small one).

- :func:`install_metrics` adds the route to an API's application. It answers before the
  API's own middlewares (its rule is the metrics rule of :mod:`salon.metrics.access`, not
  the API's scoped tokens) and, when this process is the one that reads the business
  metrics (``SALON_METRICS_BUSINESS``), opens its own pool on ``DATABASE_URL`` at start.
- :func:`serve_worker_metrics` runs the worker's server while the worker runs, on
  ``SALON_OUTBOUND_METRICS_HOST`` (127.0.0.1 by default) and ``SALON_OUTBOUND_METRICS_PORT``
  plus the worker's shard index (workers of one host, ``SALON_OUTBOUND_SHARD=i/n``, listen
  on consecutive ports); without a port, no server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import Clock, clock_from_env
from salon.config import Settings, load_settings
from salon.metrics.access import MetricsAccess
from salon.metrics.business import BusinessMetrics
from salon.metrics.registry import WORKER, ProcessMetrics, StatsCollector, reads_business
from salon.storage.db import make_async_engine

__all__ = ["ENV_WORKER_HOST", "ENV_WORKER_PORT", "METRICS", "METRICS_PATH", "install_metrics", "metrics_handler",
           "serve_worker_metrics"]

METRICS_PATH: Final = "/metrics"
ENV_WORKER_HOST: Final = "SALON_OUTBOUND_METRICS_HOST"
ENV_WORKER_PORT: Final = "SALON_OUTBOUND_METRICS_PORT"
METRICS: web.AppKey[ProcessMetrics] = web.AppKey("metrics", ProcessMetrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _peer(request: web.Request) -> str | None:
    """The TCP peer's address, as the socket reports it (never a forwarded one)."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, (tuple, list)) and peer else None


def metrics_handler(metrics: ProcessMetrics) -> Handler:
    """The aiohttp handler of ``GET /metrics`` for ``metrics``."""

    async def serve(request: web.Request) -> web.StreamResponse:
        answer = await metrics.answer(_peer(request), request.headers)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    return serve


def install_metrics(app: web.Application, process: str, *, settings: Settings | None = None,
                    clock: Clock | None = None) -> ProcessMetrics:
    """Serve ``process``'s metrics on ``app`` at ``/metrics`` (before the app's own
    middlewares; raises :class:`~salon.metrics.access.MetricsConfigError` for an unusable
    ``SALON_METRICS_TOKEN``). Call before the app starts.
    """
    metrics = ProcessMetrics(process)
    serve_metrics = metrics_handler(metrics)
    resource = app.router.add_resource(METRICS_PATH)
    resource.add_route("GET", serve_metrics)

    @web.middleware
    async def metrics_first(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route.resource is resource:
            return await serve_metrics(request)
        return await handler(request)

    app.middlewares.insert(0, metrics_first)
    app[METRICS] = metrics
    if reads_business(process):
        engines: list[AsyncEngine] = []

        async def open_business(_app: web.Application) -> None:
            chosen = settings or load_settings()
            engine = make_async_engine(chosen.effective_database_url)
            engines.append(engine)
            metrics.add(BusinessMetrics(engine, clock or clock_from_env(), windows=not chosen.redis_url))

        async def close_business(_app: web.Application) -> None:
            for engine in engines:
                await engine.dispose()

        # aiohttp 3.9 types its signals for aiosignal < 1.4, whose Signal took the callback type
        app.on_startup.append(open_business)  # type: ignore[arg-type]
        app.on_cleanup.append(close_business)  # type: ignore[arg-type]
    return metrics


@asynccontextmanager
async def serve_worker_metrics(worker: Any, *, database_url: str | None = None, windows: bool = True,
                               environ: Mapping[str, str] | None = None) -> AsyncIterator[str | None]:
    """While the block runs, serve ``worker``'s metrics (an
    :class:`~salon.outbound.worker.OutboundWorker`: its ``stats``, and the business
    metrics, on a pool of their own at ``database_url``, when the worker is the process
    that reads them). Yields the URL, or None when ``SALON_OUTBOUND_METRICS_PORT`` is not set.
    """
    env = environ if environ is not None else os.environ
    port_text = env.get(ENV_WORKER_PORT, "").strip()
    if not port_text:
        yield None
        return
    try:
        port = int(port_text) + int(worker.config.shard[0])
    except ValueError:
        raise ValueError(f"{ENV_WORKER_PORT} must be a port number, got {port_text!r}") from None
    host = env.get(ENV_WORKER_HOST, "").strip() or "127.0.0.1"
    metrics = ProcessMetrics(WORKER, MetricsAccess.from_env(env))
    metrics.add(StatsCollector("salon_outbound_worker_events", lambda: worker.stats))
    engine: AsyncEngine | None = None
    if database_url is not None and reads_business(WORKER, env):
        engine = make_async_engine(database_url)
        metrics.add(BusinessMetrics(engine, worker.clock, windows=windows))
    app = web.Application()
    app.router.add_get(METRICS_PATH, metrics_handler(metrics))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield f"http://{host}:{port}{METRICS_PATH}"
    finally:
        await runner.cleanup()
        if engine is not None:
            await engine.dispose()
