"""The action server, as Salon runs it: rasa-sdk's app, on loopback unless told otherwise,
and closed to any caller without its credential.

    python -m actions.server --port 5055 [--host 127.0.0.1]

- **Where it listens**: ``--host`` (default ``SALON_ACTIONS_HOST``, else 127.0.0.1).
  rasa-sdk's own entry point listens on every interface.
- **Who may call it**: with ``SALON_ACTIONS_TOKEN`` set, every request but ``/health``
  must carry ``Authorization: Bearer <token>`` (compared in constant time); Rasa sends it
  from the ``headers`` of ``action_endpoint`` in ``endpoints.yml``. Listening anywhere but
  on loopback without a token is refused at start.
- **What it answers on a failure**: the error's type, never the request (rasa-sdk's
  handler echoes the whole tracker, with the client's messages, to the caller).
- **Metrics**: ``GET /metrics`` (:mod:`salon.metrics`): the process's, and each action
  run by name and outcome with its latency (``salon_action_duration_seconds``). Not behind
  the action server's credential but behind the metrics rule: loopback callers only, or
  ``Authorization: Bearer`` with ``SALON_METRICS_TOKEN``.

The actions themselves trust a client's ids only when the WhatsApp channel sealed them
(:mod:`salon.access.signed_identity`).
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import sys
import time
import zlib
from typing import Any

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from salon.advisors.person_model import warm
from salon.config import is_loopback_host, load_settings
from salon.logmask import install_log_masking
from salon.metrics.access import MetricsConfigError
from salon.metrics.registry import ACTIONS, ActionMetrics, ProcessMetrics, reads_business

logger = logging.getLogger(__name__)

ENV_TOKEN = "SALON_ACTIONS_TOKEN"
ENV_HOST = "SALON_ACTIONS_HOST"
SHUTDOWN_GRACE_S = 3.0


class ActionServerConfigError(ValueError):
    """The action server would be reachable by anyone."""


OPEN_PATHS = frozenset({"/health", "/metrics"})
"""Routes outside the action server's credential (the metrics route has its own rule)."""


def guarded_app(token: str | None, package: str = "actions", metrics: ProcessMetrics | None = None) -> Sanic:
    """rasa-sdk's app with the credential check, a failure answer that echoes nothing, and
    the metrics route (``metrics``: this process's, made here by default).
    """
    app = create_app(package, cors_origins=None)
    expected = f"Bearer {token}".encode() if token else None
    metrics = metrics if metrics is not None else ProcessMetrics(ACTIONS)

    @app.middleware("request")
    async def require_token(request: Request) -> HTTPResponse | None:
        if expected is None or request.path in OPEN_PATHS:
            return None
        given = (request.headers.get("Authorization") or "").encode()
        if not hmac.compare_digest(given, expected):
            return response.json({"error": "not authorised"}, status=401)
        return None

    _add_metrics(app, package, metrics)

    async def on_error(request: Request, exception: Exception) -> HTTPResponse:
        logger.error("action call failed: %s", type(exception).__name__, exc_info=exception)
        return response.json({"error": type(exception).__name__}, status=500)

    app.error_handler.add(Exception, on_error)
    # Rasa keeps its connection open between turns: on SIGTERM, Sanic would wait its
    # default 15 s for it before stopping. A call in progress has this long to finish.
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = SHUTDOWN_GRACE_S

    async def close_backends(_app: Sanic, _loop: object) -> None:
        # Its SQLite connections each hold a (non-daemon) thread that would keep the
        # process from exiting after SIGTERM.
        from actions import backends

        await backends.close()

    app.register_listener(close_backends, "after_server_stop")
    return app


def _add_metrics(app: Sanic, package: str, metrics: ProcessMetrics) -> None:
    """``GET /metrics``, and the timing of every call to ``/webhook`` that passed the
    credential check, by action (one of the package's) and outcome.
    """
    executor = ActionExecutor()
    executor.register_package(package)
    actions = ActionMetrics(metrics.registry, executor.actions)

    @app.middleware("request")
    async def start_timing(request: Request) -> None:
        if request.method == "POST" and request.path == "/webhook":
            request.ctx.action_started = time.perf_counter()
            request.ctx.action_name = _action_name(request)

    @app.middleware("response")
    async def stop_timing(request: Request, answer: HTTPResponse) -> None:
        started = getattr(request.ctx, "action_started", None)
        if started is not None:
            actions.observe(request.ctx.action_name, answer.status, time.perf_counter() - started)

    @app.get("/metrics")
    async def serve_metrics(request: Request) -> HTTPResponse:
        # request.ip is the connection's peer, never a forwarded address.
        answer = await metrics.answer(request.ip, request.headers)
        headers = dict(answer.headers)
        content_type = headers.pop("Content-Type")
        return response.raw(answer.body, status=answer.status, headers=headers, content_type=content_type)

    if reads_business(ACTIONS):
        from actions import backends
        from salon.metrics.business import BusinessMetrics
        from salon.storage.db import make_async_engine

        # A pool of its own: the reads never wait for, nor hold up, the actions'.
        settings = load_settings()
        engine = make_async_engine(settings.effective_database_url)
        metrics.add(BusinessMetrics(engine, backends.clock(), windows=not settings.redis_url))

        async def close_business_pool(_app: Sanic, _loop: object) -> None:
            await engine.dispose()

        app.register_listener(close_business_pool, "after_server_stop")


def _action_name(request: Request) -> str | None:
    """The action a call asks for (``next_action``), or None for a body that is not one
    (rasa-sdk answers it 400 itself). Sanic keeps the parsed body for rasa-sdk's handler.
    """
    try:
        if request.headers.get("Content-Encoding") == "deflate":
            call = json.loads(zlib.decompress(request.body))
        else:
            call = request.json
    except Exception:
        return None
    name = call.get("next_action") if isinstance(call, dict) else None
    return name if isinstance(name, str) else None


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a credential (:class:`ActionServerConfigError`)."""
    if not is_loopback_host(host) and not token:
        raise ActionServerConfigError(
            f"the action server would listen on {host} with no credential: set {ENV_TOKEN} "
            "(and the same token in endpoints.yml's action_endpoint headers)")


def main(argv: list[str] | None = None) -> int:
    """The ``python -m actions.server`` entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--host", default=os.environ.get(ENV_HOST, "127.0.0.1"))
    parser.add_argument("--debug", action="store_true", help="log at DEBUG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)-8s %(name)s - %(message)s")
    install_log_masking()
    token = os.environ.get(ENV_TOKEN, "").strip() or None
    try:
        check_exposure(args.host, token)
    except ActionServerConfigError as exc:
        print(f"actions.server: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        app = guarded_app(token)
    except MetricsConfigError as exc:
        print(f"actions.server: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    # The person screen's learned model, trained (or loaded) now rather than on a client's turn.
    warm()
    logger.info("action server on %s:%s (%s)", args.host, args.port,
                "credential required" if token else "loopback, no credential")
    run_kwargs: dict[str, Any] = {"host": args.host, "port": args.port, "workers": 1,
                                  "access_log": False}
    app.run(**run_kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
