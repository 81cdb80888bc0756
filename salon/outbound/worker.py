"""The outbound worker: claims due requests from the queue and sends each one through
the send-time guard, at the moment it leaves.

Per claimed request, in order:

1. past its deadline: ``expired``; a 2 h appointment reminder whose 24 h reminder the
   client already answered ("Confirm", or a reply quoting it): ``cancelled``
   (``acknowledged``, :class:`~salon.outbound.reminders.ReminderAcknowledgements`);
2. a previous claim that ran out without an outcome (its worker died mid-send): the
   outbound record is searched for that attempt's trace (the guard's own row, or a status
   webhook carrying the attempt's ``biz_opaque_callback_data``); found, the request takes
   that outcome and nothing is sent again;
3. quiet hours in the client's time zone for non-urgent purposes: back in the queue
   until they end;
4. marketing caps (:mod:`salon.outbound.caps`): a marketing request that would go as a
   marketing template within 24 h of a 131049 for the client, or within the maison's gap
   of the last marketing template she received, goes back in the queue until the hold
   ends (marketing that would go free-form in her open window is never held);
5. pacing: the client's bucket (a client waiting longer than ``max_hold`` goes back in
   the queue with that due time) and the business number's bucket;
6. ``trigger_intent`` requests are first checked as the guard would check a message the
   maison starts (the purpose's consent: marketing needs a marketing opt-in and no STOP,
   nothing goes to a client who said STOP for the purpose's category), and refused with
   the guard's reason otherwise; then Rasa is asked for a bot-initiated turn
   (``POST /conversations/{id}/trigger_intent?output_channel=whatsapp&purpose=…&origin=…``,
   authenticated with a short-lived JWT in the ``Authorization`` header: the secret never
   travels, and no URL, token or error text is ever logged or stored, only
   ``rasa: HTTP <status>``, ``rasa: timeout`` or ``rasa: unreachable``); the reply goes
   through the channel's guard with that purpose;
7. a request of a registered campaign reserves what the guard would send now costs
   (:meth:`~salon.guard.sender.GuardedSender.quote`) against the campaign's budget
   (:mod:`salon.outbound.budgets`); when it does not fit, the campaign pauses and the
   request goes back in the queue untouched. Once the outbound records are written, each
   reservation is corrected to the estimate the guard recorded for what actually left;
8. everything else goes to :class:`~salon.guard.sender.GuardedSender`: free-form if
   the window is open with margin, else the purpose's approved template, else parked
   with one nudge. Graph errors come back mapped by :mod:`salon.whatsapp.errors`: retryable ones
   (130429, 131056, 5xx, 131049 after 24 h) are put back in the queue after their
   policy's delay; the rest (131047 is re-decided inside the guard; 131050, 132xxx)
   end the request as ``failed`` with the code.

Requests of one client are handled one after the other, in due order; clients in
parallel (``concurrency``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import aiohttp
from sqlalchemy import select

from salon.access.rasa_auth import ENV_SECRET, rasa_headers
from salon.clock import Clock
from salon.config import Settings
from salon.consent.book import ClientProfile, ConsentBook
from salon.guard.sender import GuardedSender, SendOutcome
from salon.guard.sent import outbound_table
from salon.identity import ClientRef, conversation_id
from salon.metrics.serve import serve_worker_metrics
from salon.outbound.budgets import Ask, Budgets, Campaign, Reservation
from salon.outbound.caps import (
    CapHistory,
    CapHold,
    CapsConfig,
    ClientIds,
    MarketingCaps,
    cap_hold,
    client_ids,
)
from salon.outbound.pacing import Pacer, PacingConfig
from salon.outbound.queue import (
    CANCELLED,
    EXPIRED,
    FAILED,
    PARKED,
    REFUSED,
    SENT_FREE_FORM,
    SENT_TEMPLATE,
    TRIGGERED,
    Claimed,
    OutboundQueue,
    OutboundRequest,
    origin_of,
    outcome_of,
)
from salon.outbound.reminders import ReminderAcknowledgements, awaits_acknowledgement
from salon.pricing.card import MARKETING as MARKETING_CHARGE
from salon.pricing.charge import Charge
from salon.purposes import is_marketing
from salon.storage.batching import Coalescer
from salon.templates.sync import GraphTemplatePageFetcher, keep_in_sync
from salon.webhook.runtime import SenderParts, open_sender
from salon.whatsapp.errors import TRANSIENT_POLICY, EcosystemLimitError, NoResponseError
from salon.whatsapp.graph import DEFAULT_BASE_URL, DEFAULT_VERSION, GraphConfig
from salon.window.state import SessionState

logger = logging.getLogger(__name__)

__all__ = ["OutboundWorker", "RasaTrigger", "RasaUnavailable", "WorkerConfig", "graph_config_from_env",
           "parse_shard", "run_worker"]

Scan = Callable[[datetime], Awaitable[int]]
MAX_TRIGGER_ATTEMPTS: Final = 6


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker claims and dispatches: batch size, parallel clients, lease, polling,
    the longest pacing hold, how often the scans run and its shard.
    """

    batch: int = 200
    concurrency: int = 64
    lease: timedelta = timedelta(seconds=60)
    """Also how long a status webhook has to come back before an attempt whose worker
    died is considered never sent."""
    idle_poll_s: float = 0.25
    max_hold_s: float = 2.0
    """Longer client-pacing waits put the request back in the queue instead."""
    scan_every_s: float = 60.0
    shard: tuple[int, int] = (0, 1)
    """``(i, n)``: this is worker ``i`` of ``n`` sharing the queue; it takes only its
    clients' requests and ``1/n`` of the number's throughput."""

    def __post_init__(self) -> None:
        index, count = self.shard
        if not 0 <= index < count:
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {self.shard!r}")

    @classmethod
    def from_env(cls) -> WorkerConfig:
        env = os.environ
        return cls(
            shard=parse_shard(env.get("SALON_OUTBOUND_SHARD", "0/1")),
            batch=int(env.get("SALON_OUTBOUND_BATCH", "200")),
            concurrency=int(env.get("SALON_OUTBOUND_CONCURRENCY", "64")),
            lease=timedelta(seconds=float(env.get("SALON_OUTBOUND_LEASE", "60"))),
            idle_poll_s=float(env.get("SALON_OUTBOUND_POLL", "0.25")),
            scan_every_s=float(env.get("SALON_OUTBOUND_SCAN_EVERY", "60")),
        )


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/n"`` (worker ``i`` of ``n``, counted from 0) → ``(i, n)``."""
    index, sep, count = spec.strip().partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise ValueError(f"SALON_OUTBOUND_SHARD must look like 0/2, got {spec!r}") from None
    if not sep or not 0 <= shard[0] < shard[1]:
        raise ValueError(f"SALON_OUTBOUND_SHARD must be i/n with 0 <= i < n, got {spec!r}")
    return shard


def graph_config_from_env(*, max_attempts: int = 1) -> GraphConfig:
    """The Graph API settings the channel uses (``WA_*``), for a sender that retries
    through the queue rather than inside the call (``max_attempts=1``).
    """
    env = os.environ
    return GraphConfig(
        access_token=env.get("WA_ACCESS_TOKEN", ""), phone_number_id=env.get("WA_PHONE_NUMBER_ID", ""),
        base_url=env.get("WA_API_BASE_URL", DEFAULT_BASE_URL),
        api_version=env.get("WA_API_VERSION", DEFAULT_VERSION),
        auth_mode=env.get("WA_AUTH_MODE", "bearer"), max_attempts=max_attempts,
    )


class RasaUnavailable(Exception):
    """Rasa did not take a trigger. Its text is the reason the queue records: the
    status or the kind of failure, never a URL, a header or Rasa's own words.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RasaTrigger:
    """Rasa's HTTP API: ``trigger_intent`` with the WhatsApp output channel, the request's
    purpose and origin, authenticated with a JWT signed with ``jwt_secret``
    (:mod:`salon.access.rasa_auth`; the secret itself never leaves this process).
    """

    def __init__(self, base_url: str, jwt_secret: str, *, timeout_s: float = 30.0) -> None:
        if not jwt_secret:
            raise ValueError(f"{ENV_SECRET} is empty: Rasa's API is only called with a signed token")
        self.base_url = base_url.rstrip("/")
        self._secret = jwt_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"RasaTrigger({self.base_url!r})"

    async def trigger(self, conversation_id: str, intent: str, entities: dict[str, Any], *,
                      purpose: str, origin: str) -> None:
        """Raises :class:`RasaUnavailable` when Rasa did not take it."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self.base_url}/conversations/{quote(conversation_id, safe='')}/trigger_intent"
        try:
            async with self._session.post(
                url, params={"output_channel": "whatsapp", "purpose": purpose, "origin": origin},
                json={"name": intent, "entities": entities}, headers=rasa_headers(self._secret),
            ) as response:
                status = response.status
                await response.read()
        except asyncio.TimeoutError:
            raise RasaUnavailable("rasa: timeout") from None
        except aiohttp.ClientError as exc:
            # Its text names the URL: only its kind is kept.
            raise RasaUnavailable(f"rasa: unreachable ({type(exc).__name__})") from None
        if status >= 400:
            raise RasaUnavailable(f"rasa: HTTP {status}")

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class ClientZones:
    """The client's IANA time zone from the maison's book (None when unknown); the
    lookups of clients dispatched at the same moment share one query
    (:meth:`ConsentBook.profiles_many`).
    """

    def __init__(self, consents: ConsentBook) -> None:
        self._cache: dict[str, str | None] = {}
        self._lookups: Coalescer[ClientRef, ClientProfile | None] = Coalescer(
            consents.profiles_many, identity=_client_key)

    async def zone(self, ref: ClientRef) -> str | None:
        key = _client_key(ref)
        if key in self._cache:
            return self._cache[key]
        profile = await self._lookups.get(ref)
        zone = profile.time_zone if profile is not None else None
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = zone
        return zone


class OutboundWorker:
    """Claims due requests and dispatches each through the guard (see the module docstring)."""

    def __init__(
        self,
        queue: OutboundQueue,
        sender: GuardedSender,
        clock: Clock,
        *,
        pacing: PacingConfig | None = None,
        config: WorkerConfig | None = None,
        rasa: RasaTrigger | None = None,
        scans: Sequence[Scan] = (),
        worker_id: str | None = None,
        budgets: Budgets | None = None,
        caps: MarketingCaps | None = None,
    ) -> None:
        self.queue = queue
        self.sender = sender
        self.clock = clock
        self.config = config or WorkerConfig()
        # ``pacing`` is the number's whole throughput; one of n workers takes 1/n.
        self.pacing = (pacing or PacingConfig()).share(self.config.shard[1])
        self.pacer = Pacer(self.pacing)
        self.rasa = rasa
        self.scans = list(scans)
        self.worker_id = worker_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.zones = ClientZones(sender.consents)
        self.budgets = budgets or Budgets(engine=queue.engine)
        self.caps = caps or MarketingCaps(queue.engine, CapsConfig.from_env())
        self.acknowledgements = ReminderAcknowledgements(queue.engine)
        # The ids a client is known by (her session links them), and her marketing cap
        # history: the lookups of requests dispatched at the same moment share one query.
        self._sessions: Coalescer[ClientRef, SessionState | None] = Coalescer(sender.sessions.get_many, identity=_client_key)
        self._histories: Coalescer[ClientIds, CapHistory] = Coalescer(
            lambda keys: self.caps.histories(keys, self.clock.now()))
        # The campaigns and the reservations of sends made at the same moment: one query,
        # one transaction.
        self._campaigns: Coalescer[str, Campaign | None] = Coalescer(self.budgets.get_many)
        self._reservations: Coalescer[Ask, Reservation] = Coalescer(
            lambda asks: self.budgets.reserve_many(asks, self.clock.now()), identity=lambda ask: ask.request_id)
        self._settlements: list[tuple[str, int, str | None, int]] = []
        """``(request id, attempt, wamid of what left, quoted micros)``: reservations to
        correct once the outbound records are written."""
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._held: set[str] = set()
        self._outcomes: list[tuple[str, str, dict[str, Any]]] = []
        self._lease_valid_until: datetime | None = None
        self.stats: dict[str, int] = {"claimed": 0, "finished": 0, "retried": 0, "deferred": 0,
                                      "recovered": 0, "lost_lease": 0, "capped": 0, "budget_paused": 0}

    # ------------------------------------------------------------------ loop
    async def run(self, stop: asyncio.Event) -> None:
        """Claim and dispatch until ``stop`` is set (the current batch is finished)."""
        loop = asyncio.get_running_loop()
        next_scan = 0.0
        logger.info("outbound worker %s started", self.worker_id)
        while not stop.is_set():
            if self.scans and loop.time() >= next_scan:
                await self.scan()
                next_scan = loop.time() + self.config.scan_every_s
            try:
                handled = await self.run_once()
            except Exception:
                logger.exception("outbound worker %s: batch failed; retrying shortly", self.worker_id)
                handled = 0
            if handled == 0:
                await _wait(stop, self.config.idle_poll_s)
        logger.info("outbound worker %s stopped: %s", self.worker_id, self.stats)

    async def scan(self) -> int:
        """Run the enqueueing scans (appointment reminders, restocks) once."""
        total = 0
        for scan in self.scans:
            try:
                total += await scan(self.clock.now())
            except Exception:
                logger.exception("outbound scan %s failed; will try again", getattr(scan, "__name__", scan))
        return total

    async def run_once(self) -> int:
        """Claim one batch and dispatch it; returns how many requests it held."""
        claimed = await self.queue.claim(self.worker_id, self.clock.now(), limit=self.config.batch,
                                         lease=self.config.lease, shard=self.config.shard)
        if not claimed:
            return 0
        self.stats["claimed"] += len(claimed)
        ids = [item.request.id for item in claimed]
        self._held.update(ids)
        self._lease_valid_until = self.clock.now() + self.config.lease
        # Background loops are stopped by an event, never cancelled: a cancelled
        # database call could leave the pooled connection in the middle of a transaction.
        done = asyncio.Event()
        heartbeat = asyncio.ensure_future(self._heartbeat(done))
        flusher = asyncio.ensure_future(self._flush_loop(done))
        by_client: dict[str, list[Claimed]] = {}
        for item in claimed:
            by_client.setdefault(_client_key(item.request.client), []).append(item)
        try:
            await asyncio.gather(*(self._client_run(items) for items in by_client.values()))
        finally:
            done.set()
            await flusher
            try:
                await self.flush()
            finally:
                await heartbeat
                self._held.difference_update(ids)
        return len(claimed)

    async def flush(self) -> None:
        """Record the outcomes gathered so far in one transaction. Until then the leases
        are held (and renewed); a crash before it leaves the attempts' traces, which the
        next claim adopts.
        """
        # The outbound records (the attempts' traces) first, then the outcomes, then the
        # budgets' corrections of the sends whose records were written here.
        settling, self._settlements = self._settlements, []
        try:
            await self.sender.flush_records()
        except BaseException:
            self._settlements[:0] = settling
            raise
        try:
            if self._outcomes:
                await self._finish_outcomes()
        finally:
            await self._settle(settling)

    async def _finish_outcomes(self) -> None:
        batch, self._outcomes = self._outcomes, []
        applied = await self.queue.finish_many(batch, self.clock.now(), worker=self.worker_id)
        for (request_id, state, _), ok in zip(batch, applied, strict=True):
            if ok:
                self.stats["finished"] += 1
            else:
                self.stats["lost_lease"] += 1
                logger.warning("outbound %s: lease lost before recording %s; the next claim adopts it",
                               request_id, state)

    async def _flush_loop(self, done: asyncio.Event, every: float = 0.05) -> None:
        while not await _wait(done, every):
            try:
                await self.flush()
            except Exception:
                logger.exception("outbound worker %s: recording outcomes failed; retrying", self.worker_id)

    async def _heartbeat(self, done: asyncio.Event) -> None:
        """Renew the batch's leases every third of the lease while it is being sent, so
        no other worker takes over a request this one is about to send.
        """
        every = max(self.config.lease.total_seconds() / 3, 0.05)
        while not await _wait(done, every):
            now = self.clock.now()
            try:
                await self.queue.renew(list(self._held), self.worker_id, now, self.config.lease)
                self._lease_valid_until = now + self.config.lease
            except Exception:
                logger.exception("outbound worker %s: renewing leases failed", self.worker_id)

    def _lease_safe(self) -> bool:
        """Enough of the lease is left to send (a third of it as a margin)."""
        until = self._lease_valid_until
        return until is not None and self.clock.now() < until - self.config.lease / 3

    async def _client_run(self, items: list[Claimed]) -> None:
        async with self._slots:
            for item in items:
                try:
                    await self.dispatch(item)
                except Exception:
                    # Left leased: once the lease runs out the request is claimed again
                    # and its trace looked up first, so nothing is lost or doubled.
                    logger.exception("dispatching outbound request %s failed", item.request.id)

    # ------------------------------------------------------------------ one request
    async def dispatch(self, item: Claimed) -> None:
        request, attempt = item.request, item.attempt
        if item.previous_attempt_unfinished and await self._recover(item):
            return
        if await self._kept_back(request, attempt):
            return
        now = self.clock.now()
        loop = asyncio.get_running_loop()
        key = _client_key(request.client)
        wait = self.pacer.client_wait(key, loop.time())
        if wait > self.config.max_hold_s:
            await self._defer(request, now + timedelta(seconds=wait), "client_pacing")
            return
        self.pacer.take_client(key, loop.time())
        if wait > 0:
            await asyncio.sleep(wait)
        business_wait = self.pacer.take_business(request.client.phone_number_id, loop.time())
        if business_wait > 0:
            await asyncio.sleep(business_wait)
        if not self._lease_safe():
            # The leases could not be renewed: another worker may take this request
            # over, so it must not be sent from here.
            logger.warning("outbound %s: lease not renewed in time; left for the next claim", request.id)
            return
        if request.trigger is not None:
            await self._trigger(request, attempt)
            return
        await self._send(request, attempt)

    async def _kept_back(self, request: OutboundRequest, attempt: int) -> bool:
        """Settle or defer ``request`` when it must not go now: past its deadline, an
        acknowledged reminder, quiet hours, a marketing cap. True when it was.
        """
        now = self.clock.now()
        if request.deadline is not None and now >= request.deadline:
            await self._finish(request, EXPIRED, reason="deadline_passed")
            return True
        if awaits_acknowledgement(request) and await self.acknowledgements.acknowledged(
                request, (await self._ids(request.client))[1]):
            logger.info("outbound %s: the client answered the day-before reminder; not sent", request.id)
            await self._finish(request, CANCELLED, reason="acknowledged")
            return True
        until, reason = await self._not_before(request, attempt, now)
        if until is None:
            return False
        if request.deadline is not None and until >= request.deadline:
            await self._finish(request, EXPIRED, reason=f"{reason}_until_deadline")
        else:
            await self._defer(request, until, reason)
        return True

    async def _not_before(self, request: OutboundRequest, attempt: int,
                          now: datetime) -> tuple[datetime | None, str]:
        """When the quiet hours in the client's zone end, or a marketing cap on her does
        (with the reason); None when neither holds ``request`` now.
        """
        quiet = self.pacing.quiet
        if quiet is not None and quiet.applies(request.purpose):
            resume = quiet.resume_at(now, await self.zones.zone(request.client))
            if resume is not None:
                return resume, "quiet_hours"
        if is_marketing(request.purpose):
            hold = await self._cap_hold(request, attempt)
            if hold is not None:
                self.stats["capped"] += 1
                return hold.until, hold.reason
        return None, ""

    async def _send(self, request: OutboundRequest, attempt: int) -> None:
        """Reserve its cost against its campaign's budget, send it through the guard and
        record what became of it (retryable Graph errors back in the queue).
        """
        quoted: Charge | None = None
        campaign = await self._campaigns.get(request.campaign_id) if request.campaign_id is not None else None
        tracked = campaign is not None
        if campaign is not None:
            # Against a budget, what the guard would send now is reserved first; without
            # one, only what the guard records is counted (no quote needed).
            if campaign.budget_micros is not None:
                quoted = await self.sender.quote(request.client, request.outgoing(attempt))
            reservation = await self._reservations.get(Ask(campaign.campaign_id, request.id, attempt, quoted))
            if not reservation.allowed:
                await self._paused(request, reservation)
                return
        outcome = await self.sender.send(request.client, request.outgoing(attempt))
        await self._note_caps(request, outcome)
        if tracked:
            self._settle_later(request, attempt, outcome, quoted)
        if outcome.action == "failed" and outcome.error is not None:
            error = outcome.error
            if isinstance(error, NoResponseError):
                # It may have reached Meta: look for its trace before sending again.
                await self._retry(request, self.clock.now() + self.config.lease, error.code, "in_doubt")
                return
            delay = error.retry_delay(attempt - 1) if error.retryable else None
            due = self.clock.now() + delay if delay is not None else None
            if due is not None and (request.deadline is None or due < request.deadline):
                await self._retry(request, due, error.code, f"{type(error).__name__}: {error.code}")
                return
        result = outcome_of(outcome)
        await self._finish(request, result.state, template=result.template, wamid=result.wamid,
                           nudge_wamid=result.nudge_wamid, parked_id=result.parked_id,
                           error_code=result.error_code, reason=result.reason)

    # ------------------------------------------------------------------ caps and budgets
    async def _ids(self, ref: ClientRef) -> ClientIds:
        """Every id the client is known by: the request's and those her session links."""
        state = await self._sessions.get(ref)
        linked = (state.wa_id, state.user_id) if state is not None else ()
        return client_ids(ref.phone_number_id, (ref.wa_id, ref.user_id, *linked))

    async def _cap_hold(self, request: OutboundRequest, attempt: int) -> CapHold | None:
        """The marketing cap that holds ``request`` now, if it would go as a marketing
        template (free-form marketing in her open window is never held).
        """
        now = self.clock.now()
        hold = cap_hold(await self._histories.get(await self._ids(request.client)), now, self.caps.config)
        if hold is None:
            return None
        if request.trigger is not None:
            # The turn's words are not known yet: a template unless her window is open.
            state = await self._sessions.get(request.client)
            free = state is not None and state.window(now, self.sender.margin).can_send_free_form
            return None if free else hold
        charge = await self.sender.quote(request.client, request.outgoing(attempt))
        return hold if charge is not None and charge.category == MARKETING_CHARGE else None

    async def _note_caps(self, request: OutboundRequest, outcome: SendOutcome) -> None:
        """Keep in mind what this send means for the caps until its record is written: a
        marketing template (or a nudge of marketing content) that left, or a 131049.
        """
        refused = outcome.action == "failed" and isinstance(outcome.error, EcosystemLimitError)
        left = is_marketing(request.purpose) and (
            outcome.action == "template" or (outcome.action == "parked" and outcome.nudge_wamid is not None))
        if refused or left:
            ids = await self._ids(request.client)
            if refused:
                self.caps.note_refused(ids, self.clock.now())
            else:
                self.caps.note_sent(ids, self.clock.now())

    async def _paused(self, request: OutboundRequest, reservation: Reservation) -> None:
        """Its campaign is paused: back in the queue untouched (the claim skips it until
        the campaign is resumed).
        """
        self.stats["budget_paused"] += 1
        logger.info("outbound %s: campaign %s paused (%s); left queued", request.id, request.campaign_id,
                    reservation.reason)
        await self._defer(request, self.clock.now(), "campaign_paused")

    def _settle_later(self, request: OutboundRequest, attempt: int, outcome: SendOutcome,
                      quoted: Charge | None) -> None:
        """Correct the reservation once the records are written: to the estimate the guard
        recorded with what left (the message, or the nudge of a park), to nothing when
        nothing did. A send without an answer keeps its reservation: it may have left.
        """
        if outcome.action == "failed" and isinstance(outcome.error, NoResponseError):
            return
        if outcome.action in ("free_form", "template"):
            wamid = outcome.wamid
        elif outcome.action == "parked":
            wamid = outcome.nudge_wamid
        else:
            wamid = None
        self._settlements.append((request.id, attempt, wamid, quoted.cost_micros if quoted is not None else 0))

    async def _settle(self, batch: list[tuple[str, int, str | None, int]]) -> None:
        """Correct the reservations of sends whose records are written. A failure keeps
        them for the next flush (the queue's own records never wait on it).
        """
        if not batch:
            return
        try:
            wamids = sorted({wamid for _, _, wamid, _ in batch if wamid})
            recorded: dict[str, int | None] = {}
            if wamids:
                o = outbound_table.c
                async with self.queue.engine.connect() as conn:
                    recorded = dict((await conn.execute(
                        select(o.wamid, o.cost_micros).where(o.wamid.in_(wamids)))).all())
            actuals: list[tuple[str, int, int]] = []
            for request_id, attempt, wamid, quoted in batch:
                if wamid is None:
                    actuals.append((request_id, attempt, 0))
                else:
                    cost = recorded.get(wamid)
                    # A record without its estimate (not written yet): the quote stands.
                    actuals.append((request_id, attempt, int(cost) if cost is not None else quoted))
            await self.budgets.settle_many(actuals, self.clock.now())
        except Exception:
            self._settlements[:0] = batch
            logger.exception("outbound worker %s: correcting %d reservation(s) failed; retrying",
                             self.worker_id, len(batch))

    async def _recover(self, item: Claimed) -> bool:
        """The previous claim never finished: adopt its outcome if any of it reached
        Meta (or was parked). Returns True when the request is settled that way.
        """
        previous = item.attempt - 1
        trace = await self.queue.attempt_trace(item.request.id, previous)
        if trace is None:
            logger.info("outbound %s: attempt %d left no trace; sending it now", item.request.id, previous)
            return False
        if not trace["accepted"] and trace["status"] in ("failed", "in_doubt"):
            # Refused by Meta; or sent without an answer and, a whole lease later, still
            # no status webhook nor any other sign that Meta took it.
            logger.info("outbound %s: attempt %d %s; sending it now", item.request.id, previous,
                        "was refused" if trace["status"] == "failed" else "left no sign of reaching Meta")
            return False
        state = {"template": SENT_TEMPLATE, "parked": PARKED, "refused": REFUSED}.get(
            trace["status"] if not trace["accepted"] else trace["kind"], SENT_FREE_FORM)
        self.stats["recovered"] += 1
        await self._finish(item.request, state, template=trace["template"], wamid=trace["wamid"],
                           reason=f"recovered attempt {previous}", error_code=trace["error_code"])
        return True

    async def _trigger(self, request: OutboundRequest, attempt: int) -> None:
        if self.rasa is None:
            await self._finish(request, FAILED, reason="rasa_not_configured")
            return
        assert request.trigger is not None
        # The turn will speak for the maison: the same consent the guard would ask of a
        # message with this purpose, checked before Rasa is asked for anything.
        refusal = await self.sender.may_initiate(request.client, request.purpose)
        if refusal is not None:
            logger.info("outbound %s: trigger_intent %s refused (%s)", request.id, request.trigger["name"],
                        refusal.reason)
            await self._finish(request, REFUSED, reason=refusal.reason)
            return
        # The client's conversation when she has written before (it stays the same
        # whichever of her ids the request names), else the id the request names.
        state = await self.sender.sessions.get(request.client)
        conversation = (conversation_id(state.client_key) if state is not None
                        else request.client.user_id or request.client.wa_id or "")
        try:
            await self.rasa.trigger(conversation, request.trigger["name"],
                                    dict(request.trigger.get("entities") or {}),
                                    purpose=request.purpose, origin=origin_of(request.id, attempt))
        except RasaUnavailable as exc:
            delay = TRANSIENT_POLICY.delay(attempt - 1) if attempt < MAX_TRIGGER_ATTEMPTS else None
            due = self.clock.now() + delay if delay is not None else None
            if due is not None and (request.deadline is None or due < request.deadline):
                await self._retry(request, due, None, exc.reason)
            else:
                logger.warning("outbound %s: trigger_intent failed for good (%s)", request.id, exc.reason)
                await self._finish(request, FAILED, reason=exc.reason)
            return
        await self._finish(request, TRIGGERED, reason=f"trigger_intent {request.trigger['name']}")

    # ------------------------------------------------------------------ queue writes
    async def _finish(self, request: OutboundRequest, state: str, **fields: Any) -> None:
        """Queue the outcome for the next :meth:`flush` (one transaction for many)."""
        self._outcomes.append((request.id, state, fields))

    async def _retry(self, request: OutboundRequest, due: datetime, code: int | None, reason: str) -> None:
        self.stats["retried"] += 1
        logger.info("outbound %s: retry at %s (%s)", request.id, due.isoformat(), reason)
        await self.queue.retry(request.id, due, self.clock.now(), worker=self.worker_id,
                               error_code=code, reason=reason)

    async def _defer(self, request: OutboundRequest, due: datetime, reason: str) -> None:
        self.stats["deferred"] += 1
        await self.queue.retry(request.id, due, self.clock.now(), worker=self.worker_id,
                               reason=reason, count_attempt=False)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; True once it is set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True


def _client_key(ref: ClientRef) -> str:
    return f"{ref.phone_number_id}:{ref.user_id or ''}:{ref.wa_id or ''}"


# --------------------------------------------------------------------------- process


async def run_worker(
    settings: Settings,
    clock: Clock,
    *,
    stop: asyncio.Event | None = None,
    config: WorkerConfig | None = None,
    pacing: PacingConfig | None = None,
    graph: GraphConfig | None = None,
    scans: bool = True,
) -> dict[str, int]:
    """The worker process: the guard wired as the channel wires it, the scans, the loop.
    Stops on SIGTERM/SIGINT (the batch in hand is finished first).
    """
    from salon.outbound.reminders import AppointmentReminders
    from salon.outbound.restock import RestockBook

    graph_config = graph or graph_config_from_env()
    parts: SenderParts = await open_sender(settings, graph_config, clock, many_clients=True)
    rasa_url = os.environ.get("SALON_RASA_URL", "").strip()
    rasa_secret = os.environ.get(ENV_SECRET, "")
    rasa: RasaTrigger | None = None
    if rasa_url and rasa_secret:
        rasa = RasaTrigger(rasa_url, rasa_secret)
    elif rasa_url:
        logger.error("SALON_RASA_URL is set but %s is not: trigger_intent requests fail "
                     "(rasa_not_configured) until it is", ENV_SECRET)
    scanners: list[Scan] = []
    restock: RestockBook | None = None
    if scans:
        reminders = AppointmentReminders(parts.outbound, parts.inbox.engine,
                                         os.environ.get("WA_PHONE_NUMBER_ID", ""))
        restock = RestockBook(engine=parts.inbox.engine, queue=parts.outbound,
                              phone_number_id=os.environ.get("WA_PHONE_NUMBER_ID", ""))
        await restock.initialize()
        scanners = [reminders.scan, restock.scan_stock]
    worker = OutboundWorker(parts.outbound, parts.sender, clock, pacing=pacing or PacingConfig.from_env(),
                            config=config or WorkerConfig.from_env(), rasa=rasa, scans=scanners)
    stop = stop or asyncio.Event()
    # The templates' lifecycle: the channel's webhooks reach this process through the
    # shared template state; a reconciliation with the Graph API now and periodically
    # covers what no webhook said (or a webhook missed while nothing ran).
    waba_id = os.environ.get("WA_WABA_ID", "").strip()
    template_sync: asyncio.Future[None] | None = None
    fetcher: GraphTemplatePageFetcher | None = None
    if waba_id and graph_config.auth_mode == "bearer":
        fetcher = GraphTemplatePageFetcher(waba_id, graph_config.access_token, base_url=graph_config.base_url,
                                           api_version=graph_config.api_version)
        template_sync = asyncio.ensure_future(keep_in_sync(parts.registry, fetcher, stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        # GET /metrics on SALON_OUTBOUND_METRICS_PORT (+ the shard), when it is set.
        async with serve_worker_metrics(worker, database_url=settings.effective_database_url,
                                        windows=not settings.redis_url):
            await worker.run(stop)
    finally:
        stop.set()
        if template_sync is not None:
            await template_sync
        if fetcher is not None:
            await fetcher.aclose()
        if rasa is not None:
            await rasa.close()
        await parts.close()
    return worker.stats
