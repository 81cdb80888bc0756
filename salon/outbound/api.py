"""The outbound HTTP API (aiohttp, its own process: ``salon outbound api``).

Every route needs ``Authorization: Bearer <token>`` with the ``outbound`` scope
(``SALON_API_TOKENS``, see :mod:`salon.access.tokens`): 401 without a known token, 403 without
the scope. ``GET /outbound/metrics`` also accepts the ``metrics`` scope.

- ``POST /outbound``: one request (see :func:`salon.outbound.queue.parse_request`); 201 with
  the request when stored, 200 with the first one when its idempotency key was known,
  400 with ``problems`` when invalid. Stored before the answer.
- ``GET /outbound/{id}``: the request, its state, delivery and history; 404 if unknown.
- ``POST /outbound/campaigns``: ``{"campaign_id", "purpose", "clients": [{client...,
  params...}], "content", "params", "not_before", "deadline", "language", "budget"}`` — one
  request per client (idempotency key ``campaign:<campaign_id>:<client>``), all stored in
  one transaction or none, with the campaign's row (:mod:`salon.outbound.budgets`); 400
  lists the problems per client. ``budget`` is ``{"amount": "250.00", "currency": "USD"}``
  (a decimal string, in the rate card's currency): the campaign pauses before a message
  that would take its estimated spend past it.
- ``POST /outbound/campaigns/plan``: the same body, nothing stored: for each client the
  route the guard would take now, summed by market and category (count and estimated
  cost), the total, the clients nothing would go to (with the reason) and those a
  marketing cap would hold back for now.
- ``GET /outbound/campaigns/{id}``: budget, spent, remaining, state (and why it is
  paused), and its requests by state; 404 if unknown.
- ``POST /outbound/campaigns/{id}/resume``: a paused campaign goes on, optionally with a
  new ``budget`` (not below what is spent already).
- ``GET /outbound/metrics``: counts per state and delivery, fallback, park, 131047 and
  delivery rates.
- ``GET /health``: 200 (no token).

Idempotency keys belong to the principal that gives them: each is stored under the
caller's own namespace (``api:<principal>:<key>``), so one caller's keys never meet
another's, nor those Salon's own scans use (``appt:<id>:24h:<start>`` …): a key cannot be
taken in advance to suppress somebody else's message. Answers show the caller's key.

Every route, ``/health`` and the metrics included, is limited per client IP before the
token is checked (``SALON_OUTBOUND_API_RATE`` requests a minute, 600 by default, burst
``SALON_OUTBOUND_API_BURST``; see :mod:`salon.access.ratelimit`): past it, 429 with
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from salon.access.ratelimit import ClientIp, IpRateLimit, RateLimitSettings, aiohttp_rate_limit
from salon.access.tokens import AccessDenied, Principal, TokenBook
from salon.clock import Clock
from salon.guard.sender import GuardedSender
from salon.outbound.budgets import BudgetError, Budgets, money, parse_budget
from salon.outbound.caps import MarketingCaps, cap_hold, client_ids
from salon.outbound.queue import (
    MAX_KEY,
    InvalidRequest,
    OutboundQueue,
    OutboundRequest,
    RequestSpec,
    parse_request,
)
from salon.pricing.card import MARKETING as MARKETING_CHARGE
from salon.pricing.card import RateCard
from salon.pricing.charge import Charge, default_card

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_RATE", "MAX_BODY", "MAX_CAMPAIGN", "CampaignSpec", "create_app", "parse_campaign",
           "plan_campaign"]

MAX_BODY: Final = 5 * 1024 * 1024
MAX_CAMPAIGN: Final = 10_000
DEFAULT_RATE: Final = 600
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
QUEUE: web.AppKey[OutboundQueue] = web.AppKey("queue", OutboundQueue)
TOKENS: web.AppKey[TokenBook] = web.AppKey("tokens", TokenBook)
CLOCK: web.AppKey[Any] = web.AppKey("clock", object)
PNID: web.AppKey[str] = web.AppKey("pnid", str)
BUDGETS: web.AppKey[Budgets] = web.AppKey("budgets", Budgets)
CARD: web.AppKey[RateCard] = web.AppKey("card", RateCard)
PLANNER: web.AppKey[Any] = web.AppKey("planner", object)
"""The guard a plan asks (:class:`~salon.guard.sender.GuardedSender`), or None."""
CAPS: web.AppKey[Any] = web.AppKey("caps", object)
PLAN_CONCURRENCY: Final = 64
"""Clients a plan weighs at once (their reads are coalesced by the guard)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _requester(principal: Principal) -> str:
    if principal.advisor_id:
        return f"advisor:{principal.advisor_id}"
    return f"system:{principal.name}"


def key_namespace(requested_by: str) -> str:
    """The prefix of every idempotency key a principal gives through the API."""
    return f"api:{hashlib.sha256(requested_by.encode()).hexdigest()[:16]}:"


def namespaced_key(requested_by: str, key: str) -> str:
    """``key`` in the caller's own namespace (a long one by its digest, to fit)."""
    full = key_namespace(requested_by) + key
    if len(full) <= MAX_KEY:
        return full
    return f"{key_namespace(requested_by)}sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _own(spec: RequestSpec) -> RequestSpec:
    return replace(spec, idempotency_key=namespaced_key(spec.requested_by, spec.idempotency_key))


def _shown(found: OutboundRequest, requested_by: str, given: str | None = None) -> dict[str, Any]:
    """The request as the API answers it: the caller's own key without its namespace
    (``given``: the key as the caller just gave it).
    """
    out = found.as_dict()
    prefix = key_namespace(requested_by)
    if given is not None and found.idempotency_key == namespaced_key(requested_by, given):
        out["idempotency_key"] = given
    elif found.idempotency_key.startswith(prefix):
        out["idempotency_key"] = found.idempotency_key[len(prefix):]
    return out


def _auth(request: web.Request, *scopes: str) -> Principal:
    return request.app[TOKENS].check(request.headers.get("Authorization"), *scopes)


async def _json_body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise InvalidRequest([f"body larger than {MAX_BODY} bytes"])
    raw = await request.read()
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise InvalidRequest([f"body is not JSON: {exc}"]) from None


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AccessDenied as denied:
        logger.warning("outbound API %s %s refused: %s", request.method, request.path, denied)
        return _error(denied.status, str(denied))
    except InvalidRequest as invalid:
        logger.warning("outbound API %s %s rejected: %s", request.method, request.path, invalid)
        return _error(400, "invalid request", problems=invalid.problems)


async def post_outbound(request: web.Request) -> web.Response:
    principal = _auth(request, "outbound")
    body = await _json_body(request)
    clock: Clock = request.app[CLOCK]
    now = clock.now()
    given = parse_request(body, requested_by=_requester(principal), now=now,
                          default_phone_number_id=request.app[PNID] or None)
    spec = _own(given)
    stored, created = await request.app[QUEUE].enqueue(spec, now)
    logger.info("outbound %s %s by %s (%s)", stored.id, "queued" if created else "known",
                principal.name, spec.purpose)
    return web.json_response({**_shown(stored, spec.requested_by, given.idempotency_key), "created": created},
                             status=201 if created else 200)


async def get_outbound(request: web.Request) -> web.Response:
    principal = _auth(request, "outbound")
    request_id = request.match_info["request_id"]
    if not re.match(r"^[0-9a-f]{32}$", request_id):
        return _error(404, "no such request")
    queue = request.app[QUEUE]
    found = await queue.get(request_id)
    if found is None:
        return _error(404, "no such request")
    return web.json_response({**_shown(found, _requester(principal)), "events": await queue.events(request_id)})


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A validated campaign body: one request per client, and its budget (micros)."""

    campaign_id: str
    specs: list[RequestSpec]
    budget_micros: int | None


def parse_campaign(body: Any, *, requested_by: str, now: datetime, phone_number_id: str | None,
                   currency: str) -> CampaignSpec:
    """Validate a campaign body (the API's and ``salon outbound plan``'s), or raise
    :class:`InvalidRequest` listing every problem. Idempotency keys are the caller's
    (``campaign:<campaign_id>:<client>``), not namespaced yet.
    """
    if not isinstance(body, dict):
        raise InvalidRequest(["the body must be a JSON object"])
    problems: list[str] = []
    campaign_id = body.get("campaign_id")
    if not isinstance(campaign_id, str) or not _CAMPAIGN_ID.match(campaign_id):
        problems.append("campaign_id: 1-64 letters, digits and ._-")
    clients = body.get("clients")
    if not isinstance(clients, list) or not clients:
        problems.append("clients: a non-empty list of {wa_id or user_id, params}")
        clients = []
    elif len(clients) > MAX_CAMPAIGN:
        problems.append(f"clients: at most {MAX_CAMPAIGN} per campaign")
        clients = []
    unknown = set(body) - {"campaign_id", "clients", "purpose", "content", "params", "language",
                           "not_before", "deadline", "budget"}
    if unknown:
        problems.append(f"unknown field(s) {sorted(unknown)}")
    budget_micros: int | None = None
    if body.get("budget") is not None:
        try:
            budget_micros = parse_budget(body["budget"], currency)
        except BudgetError as invalid:
            problems.extend(invalid.problems)
    if problems:
        raise InvalidRequest(problems)
    assert isinstance(campaign_id, str)
    specs = _campaign_requests(body, clients, campaign_id, requested_by=requested_by, now=now,
                               phone_number_id=phone_number_id)
    return CampaignSpec(campaign_id, specs, budget_micros)


def _campaign_requests(body: dict[str, Any], clients: list[Any], campaign_id: str, *, requested_by: str,
                       now: datetime, phone_number_id: str | None) -> list[RequestSpec]:
    """One request per client of a campaign body (the shared fields and her own params)."""
    problems: list[str] = []
    shared: dict[str, Any] = {k: body[k] for k in ("purpose", "content", "language", "not_before", "deadline")
                              if k in body}
    specs: list[RequestSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(clients):
        if not isinstance(entry, dict):
            problems.append(f"clients[{index}]: an object")
            continue
        client = {k: entry[k] for k in ("wa_id", "user_id", "phone_number_id") if k in entry}
        extra = set(entry) - {"wa_id", "user_id", "phone_number_id", "params"}
        if extra:
            problems.append(f"clients[{index}]: unknown field(s) {sorted(extra)}")
            continue
        who = str(client.get("user_id") or client.get("wa_id") or "")
        if who in seen:
            problems.append(f"clients[{index}]: {who} is listed twice")
            continue
        seen.add(who)
        shared_params, own_params = body.get("params") or {}, entry.get("params") or {}
        if not isinstance(shared_params, dict) or not isinstance(own_params, dict):
            problems.append(f"clients[{index}]: params must be objects")
            continue
        params = {**shared_params, **own_params}
        one: dict[str, Any] = {**shared, "client": client, "params": params,
               "idempotency_key": f"campaign:{campaign_id}:{who}"}
        try:
            specs.append(parse_request(one, requested_by=requested_by, now=now,
                                       default_phone_number_id=phone_number_id, campaign_id=campaign_id))
        except InvalidRequest as invalid:
            problems.extend(f"clients[{index}]: {p}" for p in invalid.problems)
    if problems:
        raise InvalidRequest(problems)
    return specs


def _who(spec: RequestSpec) -> str:
    return spec.client.user_id or spec.client.wa_id or ""


async def plan_campaign(campaign: CampaignSpec, sender: GuardedSender, now: datetime, *,
                        caps: MarketingCaps | None = None) -> dict[str, Any]:
    """What the campaign would send if it started now, nothing stored or sent: for each
    client the guard's route (:meth:`~salon.guard.sender.GuardedSender.quote`), summed
    by market × category with the estimated cost; the total; the clients nothing would
    go to, with the reason; and, for marketing, those a cap would hold back for now
    (still counted: they go, and cost, later).
    """
    card = sender.card
    slots = asyncio.Semaphore(PLAN_CONCURRENCY)

    async def weigh(spec: RequestSpec) -> tuple[Charge | None, str | None]:
        async with slots:
            charge = await sender.quote(spec.client, spec.outgoing())
            if charge is not None:
                return charge, None
            refusal = await sender.may_initiate(spec.client, spec.purpose)
            return None, refusal.reason if refusal is not None else "no_message_now"

    weighed = await asyncio.gather(*(weigh(spec) for spec in campaign.specs))
    lines: dict[tuple[str, str], list[int]] = {}
    refused: list[dict[str, str]] = []
    for spec, (charge, reason) in zip(campaign.specs, weighed, strict=True):
        if charge is None:
            refused.append({"client": _who(spec), "reason": reason or "no_message_now"})
            continue
        line = lines.setdefault((charge.market, charge.category), [0, 0])
        line[0] += 1
        line[1] += charge.cost_micros
    currency = card.currency
    total = sum(cost for _, cost in lines.values())
    held: list[dict[str, str]] = []
    if caps is not None:
        marketing = [(spec, charge) for spec, (charge, _) in zip(campaign.specs, weighed, strict=True)
                     if charge is not None and charge.category == MARKETING_CHARGE]
        states = await sender.sessions.get_many([spec.client for spec, _ in marketing])
        keys = [client_ids(spec.client.phone_number_id,
                           (spec.client.wa_id, spec.client.user_id,
                            *((state.wa_id, state.user_id) if state is not None else ())))
                for (spec, _), state in zip(marketing, states, strict=True)]
        for (spec, _), history in zip(marketing, await caps.histories(keys, now), strict=True):
            hold = cap_hold(history, now, caps.config)
            if hold is not None:
                held.append({"client": _who(spec), "until": hold.until.isoformat(), "rule": hold.rule})
    plan: dict[str, Any] = {
        "campaign_id": campaign.campaign_id,
        "at": now.isoformat(),
        "card": card.at(now).effective_from.isoformat(),
        "clients": len(campaign.specs),
        "routes": [
            {"market": market, "category": category, "count": count, "cost": money(cost, currency)}
            for (market, category), (count, cost) in sorted(lines.items())
        ],
        "total": {"count": sum(count for count, _ in lines.values()), "cost": money(total, currency)},
        "refused": refused,
        "held_by_caps": held,
    }
    if campaign.budget_micros is not None:
        plan["budget"] = money(campaign.budget_micros, currency)
        plan["within_budget"] = total <= campaign.budget_micros
    return plan


async def post_campaign(request: web.Request) -> web.Response:
    principal = _auth(request, "outbound")
    body = await _json_body(request)
    clock: Clock = request.app[CLOCK]
    now = clock.now()
    currency = request.app[CARD].currency
    campaign = parse_campaign(body, requested_by=_requester(principal), now=now,
                              phone_number_id=request.app[PNID] or None, currency=currency)
    specs = [_own(spec) for spec in campaign.specs]
    budgets = request.app[BUDGETS]

    async def register(conn: Any) -> None:
        await budgets.register(conn, campaign.campaign_id, currency, now, campaign.budget_micros)

    results = await request.app[QUEUE].enqueue_many(specs, now, within=register)
    created = sum(1 for _, new in results if new)
    logger.info("campaign %s by %s: %d request(s), %d new", campaign.campaign_id, principal.name, len(results),
                created)
    stored = await budgets.get(campaign.campaign_id)
    return web.json_response(
        {"campaign_id": campaign.campaign_id, "requests": len(results), "created": created,
         "ids": [r.id for r, _ in results], "campaign": stored.as_dict() if stored is not None else None},
        status=201 if created else 200,
    )


async def post_plan(request: web.Request) -> web.Response:
    principal = _auth(request, "outbound")
    planner: GuardedSender | None = request.app[PLANNER]
    if planner is None:
        return _error(503, "planning is not available: this server has no send-time guard")
    body = await _json_body(request)
    now = request.app[CLOCK].now()
    campaign = parse_campaign(body, requested_by=_requester(principal), now=now,
                              phone_number_id=request.app[PNID] or None, currency=request.app[CARD].currency)
    plan = await plan_campaign(campaign, planner, now, caps=request.app[CAPS])
    logger.info("campaign %s planned by %s: %d client(s), %d message(s), %s", campaign.campaign_id,
                principal.name, plan["clients"], plan["total"]["count"], plan["total"]["cost"]["text"])
    return web.json_response(plan)


async def get_campaign(request: web.Request) -> web.Response:
    _auth(request, "outbound")
    campaign_id = request.match_info["campaign_id"]
    found = await request.app[BUDGETS].get(campaign_id) if _CAMPAIGN_ID.match(campaign_id) else None
    if found is None:
        return _error(404, "no such campaign")
    return web.json_response({**found.as_dict(),
                              "requests": await request.app[QUEUE].campaign_counts(campaign_id)})


async def resume_campaign(request: web.Request) -> web.Response:
    principal = _auth(request, "outbound")
    campaign_id = request.match_info["campaign_id"]
    if not _CAMPAIGN_ID.match(campaign_id):
        return _error(404, "no such campaign")
    body = await _json_body(request) if request.can_read_body else None
    if body is not None and (not isinstance(body, dict) or set(body) - {"budget"}):
        raise InvalidRequest(["the body is empty or {\"budget\": {\"amount\": …, \"currency\": …}}"])
    budgets = request.app[BUDGETS]
    budget_micros: int | None = None
    try:
        if body and body.get("budget") is not None:
            budget_micros = parse_budget(body["budget"], request.app[CARD].currency)
        resumed = await budgets.resume(campaign_id, request.app[CLOCK].now(), budget_micros=budget_micros)
    except BudgetError as invalid:
        raise InvalidRequest(invalid.problems) from None
    if resumed is None:
        return _error(404, "no such campaign")
    logger.info("campaign %s resumed by %s", campaign_id, principal.name)
    return web.json_response({**resumed.as_dict(),
                              "requests": await request.app[QUEUE].campaign_counts(campaign_id)})


async def get_metrics(request: web.Request) -> web.Response:
    _auth(request, "outbound", "metrics")
    return web.json_response(await request.app[QUEUE].metrics())


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def create_app(queue: OutboundQueue, tokens: TokenBook, clock: Clock, *, phone_number_id: str = "",
               rate_limit: RateLimitSettings | None = None,
               rate_clock: Callable[[], float] | None = None,
               planner: GuardedSender | None = None, caps: MarketingCaps | None = None) -> web.Application:
    """The API over an initialised ``queue``; ``rate_limit`` defaults to the
    environment's (``SALON_OUTBOUND_API_RATE`` …), ``rate_clock`` to the monotonic clock.
    ``planner`` is the send-time guard plans ask (without it, plans answer 503), with the
    marketing ``caps`` they report.
    """
    limit = rate_limit or RateLimitSettings.from_env("OUTBOUND_API", DEFAULT_RATE)
    limiter = IpRateLimit.from_settings(limit, rate_clock, name="outbound API")
    app = web.Application(middlewares=[aiohttp_rate_limit(limiter, ClientIp(limit.trusted_proxies)), _errors],
                          client_max_size=MAX_BODY)
    app[QUEUE] = queue
    app[TOKENS] = tokens
    app[CLOCK] = clock
    app[PNID] = phone_number_id
    app[BUDGETS] = Budgets(engine=queue.engine)
    app[CARD] = planner.card if planner is not None else default_card()
    app[PLANNER] = planner
    app[CAPS] = caps
    app.router.add_post("/outbound", post_outbound)
    app.router.add_get("/outbound/metrics", get_metrics)
    app.router.add_post("/outbound/campaigns", post_campaign)
    app.router.add_post("/outbound/campaigns/plan", post_plan)
    app.router.add_get("/outbound/campaigns/{campaign_id}", get_campaign)
    app.router.add_post("/outbound/campaigns/{campaign_id}/resume", resume_campaign)
    app.router.add_get("/outbound/{request_id}", get_outbound)
    app.router.add_get("/health", health)
    return app
