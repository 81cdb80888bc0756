"""The advisor API on the WhatsApp channel's blueprint (so under
``/webhooks/whatsapp/advisor/``), a thin adapter over :mod:`salon.advisors.desk`.

Routes (``Authorization: Bearer <token>``, scope ``advisor``; see ``SALON_API_TOKENS``):

- ``GET  /advisor/conversations[?all=true]``: conversations handed over, with the window;
- ``GET  /advisor/conversations/<id>``: the handoff, the window and the transcript;
- ``POST /advisor/conversations/<id>/reply`` ``{"text": "..."}``: through the send-time guard;
- ``POST /advisor/conversations/<id>/resume``: back to the assistant;
- ``POST /advisor/conversations/<id>/take``: the advisor takes it up (from the assistant too);
- ``POST /advisor/conversations/<id>/reassign`` ``{"advisor_id": "..."}``: a manager's;
- ``POST /advisor/conversations/<id>/template`` ``{"template": "<name>"}``: an approved
  template, through the guard;
- ``POST /advisor/conversations/<id>/follow-up`` ``{"at": "<her local time>", "text": "..."}``:
  through the outbound engine;
- ``GET  /advisor/repairs[?all=true]``: the repair requests of the advisor's clients, with
  each client's window (closed ones with ``all``);
- ``GET  /advisor/repairs/<id>``: one request with its history;
- ``POST /advisor/repairs/<id>/status`` ``{"status": "ready", "note": "..."}``: the new
  status, told to the client through the send-time guard.

The Rasa server's metrics are served beside them (``GET /metrics``, so
``/webhooks/whatsapp/metrics``): this process's, the channel's companion process's and,
unless ``SALON_METRICS_BUSINESS`` names another process, the business metrics read from
the database (:mod:`salon.metrics`). Loopback callers only, or ``Authorization: Bearer``
with ``SALON_METRICS_TOKEN``; the advisor tokens do not open it.

The transcript, the advisor's messages and the resume live in the agent's tracker
store, updated under the agent's lock store like any turn. The advisor console
(:mod:`connectors.console`) is mounted beside these routes, over the same desk.

Every route is limited per client IP before the token is checked (``SALON_ADVISOR_API_RATE``
requests a minute, 300 by default, burst ``SALON_ADVISOR_API_BURST``; see
:mod:`salon.access.ratelimit`): past it, 429 with ``Retry-After``. The same limit covers the
channel's health route; Meta's webhook route is never limited.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timezone
from typing import Any, TypeVar

from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    SessionStarted,
    UserUttered,
)
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from connectors.console import ConsoleContext, add_console_routes
from salon.access.ratelimit import ClientIp, IpRateLimit, RateLimitSettings, too_many_requests
from salon.access.tokens import TokenBook
from salon.advisors.audit import AdvisorAudit
from salon.advisors.desk import AdvisorDesk, DeskAnswer
from salon.advisors.handoff import HandoffBook
from salon.advisors.repairs import RepairBook
from salon.consent.book import ConsentBook
from salon.console.sessions import ConsoleSessions, session_hours
from salon.integrations.bookings import SqlBookings
from salon.integrations.crm import SqlCrm
from salon.integrations.schema import advisors as advisors_table
from salon.metrics.business import BusinessMetrics, ttl_from_env
from salon.metrics.registry import RASA, IoMetrics, ProcessMetrics, StatsCollector, reads_business
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import OutboundQueue
from salon.storage.db import make_async_engine
from salon.templates.lifecycle import TemplateStates
from salon.templates.registry import TemplateRegistry
from salon.webhook.companion import IoProcessRuntime
from salon.webhook.echoes import PAUSE_KEY
from salon.webhook.runtime import WhatsAppRuntime

logger = logging.getLogger(__name__)

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], Awaitable[T]]
Route = Callable[..., Awaitable[HTTPResponse]]
DEFAULT_RATE = 300


class SanicRateLimit:
    """A per-IP limit for Sanic routes: ``@limit`` on a handler answers 429 (with
    ``Retry-After`` and a JSON error) before the handler runs.
    """

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float] | None = None,
                 *, name: str = "advisor API") -> None:
        self.limiter = IpRateLimit.from_settings(settings, clock, name=name)
        self.clients = ClientIp(settings.trusted_proxies)

    @classmethod
    def from_env(cls) -> SanicRateLimit:
        return cls(RateLimitSettings.from_env("ADVISOR_API", DEFAULT_RATE))

    def __call__(self, handler: Route) -> Route:
        @functools.wraps(handler)
        async def limited(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            # request.ip is the connection's peer; X-Forwarded-For counts only from a
            # trusted proxy (ClientIp).
            key = self.clients.resolve(request.ip, request.headers.getall("x-forwarded-for", []))
            wait = self.limiter.hit(key)
            if wait:
                body, headers = too_many_requests(wait)
                return response.json(body, status=429, headers=headers)
            return await handler(request, *args, **kwargs)

        return limited


def _json_body(request: Request) -> Any:
    """The request's JSON body, or None when it is missing or not JSON (the desk answers
    400 for a body it cannot use).
    """
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


def _at(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat() if timestamp else None


class RasaTranscripts:
    """:class:`salon.advisors.desk.Transcripts` over a Rasa agent's stores."""

    def __init__(self, agent: Callable[[], Any], run: Runner[Any]) -> None:
        self._agent = agent
        self._run = run

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            tracker = await self._agent().tracker_store.retrieve_full_tracker(conversation_id)
            lines: list[dict[str, Any]] = []
            for event in tracker.events if tracker is not None else ():
                if isinstance(event, UserUttered):
                    lines.append({"at": _at(event.timestamp), "from": "client", "text": event.text})
                elif isinstance(event, BotUttered):
                    advisor = (event.metadata or {}).get("advisor")
                    text = event.text or json.dumps(event.data.get("custom") or event.data)
                    lines.append({"at": _at(event.timestamp), "from": "advisor" if advisor else "assistant",
                                  "text": text, **({"advisor": advisor} if advisor else {})})
                elif isinstance(event, ConversationPaused):
                    text = ("an advisor writes from the phone; the assistant is paused"
                            if (event.metadata or {}).get(PAUSE_KEY) is True else "handed to an advisor")
                    lines.append({"at": _at(event.timestamp), "from": "system", "text": text})
                elif isinstance(event, ConversationResumed):
                    lines.append({"at": _at(event.timestamp), "from": "system", "text": "back with the assistant"})
                elif isinstance(event, SessionStarted):
                    lines.append({"at": _at(event.timestamp), "from": "system", "text": "new session"})
            return lines

        return await self._run(read())

    async def _append(self, conversation_id: str, event: Any, *, then_listen: bool = False) -> None:
        async def write() -> None:
            agent = self._agent()
            async with agent.lock_store.lock(conversation_id):
                tracker = await agent.tracker_store.get_or_create_tracker(conversation_id)
                tracker.update(event)
                if then_listen and tracker.latest_action_name != ACTION_LISTEN_NAME:
                    # While paused Rasa logged the client's messages without listening
                    # turns; the next message must find the assistant listening, as the
                    # rules expect.
                    tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
                await agent.tracker_store.save(tracker)

        await self._run(write())

    async def record_advisor_message(self, conversation_id: str, text: str, advisor: str) -> None:
        await self._append(conversation_id, BotUttered(text, metadata={"advisor": advisor}))

    async def resume(self, conversation_id: str) -> None:
        await self._append(conversation_id, ConversationResumed(), then_listen=True)

    async def pause(self, conversation_id: str) -> None:
        await self._append(conversation_id, ConversationPaused())


def add_advisor_routes(bp: Blueprint, runtime: IoProcessRuntime | WhatsAppRuntime,
                       run: Runner[Any], limit: SanicRateLimit) -> Callable[[Any], Awaitable[None]]:
    """Mount the advisor API on the channel's blueprint, every route under ``limit``.
    Returns the coroutine function the channel calls once its runtime has started.
    """
    state: dict[str, Any] = {}
    metrics = _process_metrics(runtime)  # an unusable SALON_METRICS_TOKEN stops the server here

    async def start_desk(app: Any) -> None:
        tokens = TokenBook.from_env()  # a malformed SALON_API_TOKENS stops the server here
        if runtime.sender is None or runtime.sessions is None or runtime.engine is None:
            raise RuntimeError("the advisor API starts after the WhatsApp channel")
        if reads_business(RASA) and "business" not in state:
            # A pool of its own: the reads never wait for, nor hold up, the channel's.
            state["business_engine"] = make_async_engine(runtime.settings.effective_database_url)
            state["business"] = BusinessMetrics(state["business_engine"], runtime.clock,
                                                windows=not runtime.settings.redis_url)
            metrics.add(state["business"])
        handoffs = HandoffBook(engine=runtime.engine)
        await handoffs.initialize()
        repairs = RepairBook(engine=runtime.engine)
        await repairs.initialize()
        audit = AdvisorAudit(engine=runtime.engine, clock=runtime.clock)
        await audit.initialize()
        advisors = await _advisors(runtime.engine)
        outbound = OutboundQueue(engine=runtime.engine)
        await outbound.initialize()
        desk = AdvisorDesk(
            tokens=tokens, handoffs=handoffs, sessions=runtime.sessions, sender=runtime.sender,
            transcripts=RasaTranscripts(lambda: app.ctx.agent, run), clock=runtime.clock,
            phone_number_id=runtime.config.phone_number_id, repairs=repairs,
            crm=SqlCrm(runtime.engine), bookings=SqlBookings(runtime.engine, runtime.clock), audit=audit,
            advisor_ids=frozenset(a for a, _ in advisors) or None, outbound=outbound)
        sessions = ConsoleSessions(engine=runtime.engine)
        await sessions.initialize()
        consents = ConsentBook(engine=runtime.engine)
        await consents.initialize()
        registry = TemplateRegistry.load_default()
        registry.attach(TemplateStates(engine=runtime.engine), runtime.clock)
        state["console"] = ConsoleContext(
            desk=desk, tokens=tokens, sessions=sessions, engine=runtime.engine, windows=runtime.sessions,
            handoffs=handoffs, repairs=repairs, consents=consents, registry=registry, audit=audit,
            clock=runtime.clock, phone_number_id=runtime.config.phone_number_id, advisors=advisors,
            hours=session_hours(), quiet=PacingConfig.from_env().quiet)
        state["desk"] = desk
        logger.info("advisor API and console ready: %d token(s)", len(tokens))

    def desk() -> AdvisorDesk | None:
        return state.get("desk")

    starting = response.json({"error": "starting"}, status=503)
    _add_conversation_routes(bp, limit, desk, starting)
    _add_act_routes(bp, limit, desk, starting)
    _add_repair_routes(bp, limit, desk, starting)
    add_console_routes(bp, limit, lambda: state.get("console"))
    _add_metrics_route(bp, limit, metrics)

    @bp.listener("after_server_stop")
    async def close_business_pool(app: Any, loop: Any) -> None:
        engine = state.pop("business_engine", None)
        if engine is not None:
            await engine.dispose()

    return start_desk


def _process_metrics(runtime: IoProcessRuntime | WhatsAppRuntime) -> ProcessMetrics:
    """The Rasa server's metrics: its process, and the webhook pipeline's counters (asked
    of the companion process, with its CPU and memory, or read here with ``io_process:
    false``). The business metrics join once the channel has started (``start_desk``).
    """
    metrics = ProcessMetrics(RASA)
    if reads_business(RASA):  # a malformed SALON_METRICS_BUSINESS(_TTL) stops the server now
        ttl_from_env()
    if isinstance(runtime, IoProcessRuntime):
        metrics.add(IoMetrics(runtime))
    else:
        metrics.add(StatsCollector("salon_webhook_events",
                                   lambda: runtime.service.stats if runtime.service is not None else None))
    return metrics


def _add_metrics_route(bp: Blueprint, limit: SanicRateLimit, metrics: ProcessMetrics) -> None:
    """``GET /metrics``: the text exposition, to loopback callers or the metrics token's holders."""

    @bp.route("/metrics", methods=["GET"])
    @limit
    async def serve_metrics(request: Request) -> HTTPResponse:
        # request.ip is the connection's peer, never a forwarded address.
        answer = await metrics.answer(request.ip, request.headers)
        headers = dict(answer.headers)
        content_type = headers.pop("Content-Type")
        return response.raw(answer.body, status=answer.status, headers=headers, content_type=content_type)


async def _advisors(engine: Any) -> tuple[tuple[str, str], ...]:
    """The maison's advisors (id, "First Last · boutique"), for reassigning."""
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(advisors_table.c.id, advisors_table.c.first_name,
                                              advisors_table.c.last_name, advisors_table.c.boutique_id)
                                       .order_by(advisors_table.c.boutique_id, advisors_table.c.first_name))).all()
    except SQLAlchemyError:
        logger.warning("advisor API: the maison's advisors could not be read; reassigning accepts any id")
        return ()
    return tuple((r.id, f"{r.first_name} {r.last_name} · {r.boutique_id.capitalize()}") for r in rows)


def _answer(result: DeskAnswer) -> HTTPResponse:
    return response.json(result.body, status=result.status)


def _wants_all(request: Request) -> bool:
    """``?all=true`` (or ``1``, ``yes``): the closed items too."""
    return request.args.get("all", "").lower() in ("1", "true", "yes")


def _add_conversation_routes(bp: Blueprint, limit: SanicRateLimit,
                             desk: Callable[[], AdvisorDesk | None], starting: HTTPResponse) -> None:
    """The handed-over conversations: list, read, reply, resume (``starting`` until the
    desk is up).
    """

    @bp.route("/advisor/conversations", methods=["GET"])
    @limit
    async def list_conversations(request: Request) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.conversations(request.headers.get("Authorization"),
                                                   include_resolved=_wants_all(request)))

    @bp.route("/advisor/conversations/<conversation_id>", methods=["GET"])
    @limit
    async def read_conversation(request: Request, conversation_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.conversation(request.headers.get("Authorization"), conversation_id))

    @bp.route("/advisor/conversations/<conversation_id>/reply", methods=["POST"])
    @limit
    async def reply(request: Request, conversation_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        body = _json_body(request)
        return _answer(await current.reply(request.headers.get("Authorization"), conversation_id, body))

    @bp.route("/advisor/conversations/<conversation_id>/resume", methods=["POST"])
    @limit
    async def resume(request: Request, conversation_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.resume(request.headers.get("Authorization"), conversation_id))


def _add_act_routes(bp: Blueprint, limit: SanicRateLimit,
                    desk: Callable[[], AdvisorDesk | None], starting: HTTPResponse) -> None:
    """Taking a conversation, reassigning it (a manager), a template by name, a follow-up
    (``starting`` until the desk is up).
    """

    @bp.route("/advisor/conversations/<conversation_id>/take", methods=["POST"])
    @limit
    async def take(request: Request, conversation_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.take(request.headers.get("Authorization"), conversation_id))

    @bp.route("/advisor/conversations/<conversation_id>/reassign", methods=["POST"])
    @limit
    async def reassign(request: Request, conversation_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.reassign(request.headers.get("Authorization"), conversation_id,
                                              _json_body(request)))

    @bp.route("/advisor/conversations/<conversation_id>/follow-up", methods=["POST"])
    @limit
    async def follow_up(request: Request, conversation_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.schedule_follow_up(request.headers.get("Authorization"), conversation_id,
                                                        _json_body(request)))

    @bp.route("/advisor/conversations/<conversation_id>/template", methods=["POST"])
    @limit
    async def send_template(request: Request, conversation_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.send_template(request.headers.get("Authorization"), conversation_id,
                                                   _json_body(request)))


def _add_repair_routes(bp: Blueprint, limit: SanicRateLimit,
                       desk: Callable[[], AdvisorDesk | None], starting: HTTPResponse) -> None:
    """The repair requests of the advisor's clients: list, read, update the status
    (``starting`` until the desk is up).
    """

    @bp.route("/advisor/repairs", methods=["GET"])
    @limit
    async def list_repairs(request: Request) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.repair_requests(request.headers.get("Authorization"),
                                                     include_closed=_wants_all(request)))

    @bp.route("/advisor/repairs/<request_id>", methods=["GET"])
    @limit
    async def read_repair(request: Request, request_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        return _answer(await current.repair_request(request.headers.get("Authorization"), request_id))

    @bp.route("/advisor/repairs/<request_id>/status", methods=["POST"])
    @limit
    async def repair_status(request: Request, request_id: str) -> HTTPResponse:
        current = desk()
        if current is None:
            return starting
        body = _json_body(request)
        return _answer(await current.update_repair(request.headers.get("Authorization"), request_id, body))
