"""The webhook pipeline, independent of Rasa: verify, parse, deduplicate, record, ack,
then hand each client's messages to the assistant in order, in tracked background tasks.

Before answering 200 to Meta, everything that must not be lost is stored: each new
message in the inbox (its wamid row is the deduplication), each client's window in the
session store with Meta's timestamp, status changes on the outbound record, template
lifecycle changes in the registry and marketing preferences in the consent book. If a
store is down the answer is 503 and nothing is claimed, so Meta's retry finds everything
as it was. After the 200, turns run per client in timestamp order.

Every inbox row a channel works on is held under its name with a lease (renewed while it
works on it). A row nobody works on any more is taken over, by one channel only: a pending
row whose holder died (another process of this host, or a lease that ran out: another
host) by the sweep that runs at start and then every :data:`SWEEP_EVERY`; a pending row
whose claim could not be released after a failed acknowledgement by Meta's retry of it
(the retry is then processed as new). A turn that failed is tried again after
:data:`TURN_RETRY_DELAYS`, then given up: recorded ``abandoned`` in the inbox, logged, and
handed to an advisor (a ``repeated_failure`` handoff).

What an advisor types in the WhatsApp Business app on the same number (coexistence,
``smb_message_echoes``) is claimed in the inbox like a message (a redelivery is recorded
once) but is the maison's message: it records no window, and its "turn" only writes it
into the client's conversation (in order with her messages), never asks the assistant.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from salon.clock import Clock
from salon.consent.book import ConsentBook
from salon.consent.keywords import confirmation, keyword_of
from salon.guard.sender import GuardedSender
from salon.guard.sent import SentLog
from salon.identity import ClientRef, conversation_id
from salon.logmask import remember
from salon.pricing.ledger import DELIVERED_STATUSES, Ledger
from salon.purposes import SERVICE_REPLY
from salon.templates.registry import TemplateRegistry
from salon.templates.sync import GraphTemplatePageFetcher, keep_in_sync
from salon.webhook.identity_changes import follow_identity
from salon.webhook.inbox import INBOX_RETENTION, Inbox, InboxClaim, InboxItem
from salon.whatsapp.addressing import is_bsuid
from salon.whatsapp.messages import OutgoingMessage
from salon.whatsapp.signature import SignatureCheck, check_signature
from salon.whatsapp.updates import (
    ECHO_MARK,
    InboundMessage,
    MessageEcho,
    StatusUpdate,
    TemplateEvent,
    WebhookBatch,
    WebhookFormatError,
    parse_body,
    parse_webhook,
)
from salon.window.state import InboundRecord, SessionState, SessionStore

logger = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "Reply", "Turn", "TurnInterrupted", "WebhookService", "verify_handshake"]

MAX_BODY_BYTES: Final = 3 * 1024 * 1024
DEFAULT_CONCURRENT_TURNS: Final = 4
INBOX_LEASE: Final = timedelta(minutes=2)
"""How long a channel holds an inbox row without renewing it (renewed every sweep)."""
SWEEP_EVERY: Final = timedelta(seconds=30)
"""How often a channel renews what it holds and takes over what nobody works on."""
TURN_RETRY_DELAYS: Final = (timedelta(minutes=1), timedelta(minutes=5))
"""After a turn failed: when to try it again; after the last, it is given up."""
MAX_TURN_ATTEMPTS: Final = len(TURN_RETRY_DELAYS) + 1
ORDER_WAIT_S: Final = 150.0
"""How long a client's message waits (seconds of wall time) for an earlier one of hers that
another replica holds: past a lease and a renewal, that replica is stuck, and waiting
longer would only keep her without an answer."""
HOST: Final = socket.gethostname()
_LIVE_OWNERS: set[str] = set()
"""The inbox owner names of the channels running in this process (a name of this
process not listed belongs to a channel that stopped)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The HTTP answer to a webhook request: status code and plain-text body."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class Turn:
    """One client message for the assistant."""

    item: InboxItem
    client: ClientRef
    parked_count: int | None = None
    """Messages parked for the client when this one arrived (None: not known)."""
    new_window: bool = False
    """This message reopened the client's window after it had closed: for the assistant,
    a new session (the window decides it, whatever the clocks of other processes say)."""
    conversation_id: str | None = None
    """The client's conversation (:func:`salon.identity.conversation_id`), when known."""
    replayed: bool = False
    """Taken over from a channel that left it pending (it died, or let its lease run
    out): its answer may have left already."""

    @property
    def text(self) -> str:
        return self.item.text

    @property
    def sender_id(self) -> str:
        """The assistant's conversation id: stable across the ids the client writes from."""
        return self.conversation_id or self.item.sender_id

    @property
    def metadata(self) -> dict[str, Any]:
        return self.item.metadata

    @property
    def is_echo(self) -> bool:
        """An advisor's message from the WhatsApp Business app (coexistence): the turn
        records it in the client's conversation; the assistant is not asked anything.
        """
        return self.item.metadata.get(ECHO_MARK) is True


TurnHandler = Callable[[Turn], Awaitable[None]]


@dataclass(slots=True)
class _Windows:
    """What recording the claimed messages' windows told, by wamid."""

    parked: dict[str, int] = field(default_factory=dict)
    """How many messages were parked for the client when this one arrived."""
    reopened: set[str] = field(default_factory=set)
    """The messages that reopened their client's window after it had closed."""
    known: dict[str, tuple[ClientRef, str]] = field(default_factory=dict)
    """The client with every id her session knows, and her conversation id."""


class TurnInterrupted(Exception):
    """The assistant went away in the middle of a turn (its process stopped): the message
    stays pending in the inbox and is replayed when the channel starts again.
    """


def verify_handshake(verify_token: str, mode: str | None, token: str | None,
                     challenge: str | None) -> Reply:
    """Meta's GET handshake: the challenge back when the token matches (constant time)."""
    if mode == "subscribe" and token is not None and challenge is not None:
        if hmac.compare_digest(token.encode(), verify_token.encode()):
            return Reply(200, challenge)
    logger.warning("webhook verification refused (mode=%r)", mode)
    return Reply(403, "verification failed")


def client_of_item(item: InboxItem) -> ClientRef:
    meta = item.metadata
    return ClientRef(item.phone_number_id, meta.get("user_id") or None, meta.get("wa_id") or None)


class WebhookService:
    """Meta's webhook for one phone number: checks, stores and acknowledges each POST,
    then runs the clients' turns in the background (see the module docstring).
    """

    def __init__(
        self,
        *,
        app_secret: str,
        verify_token: str,
        phone_number_id: str,
        sessions: SessionStore,
        inbox: Inbox,
        sent: SentLog,
        consents: ConsentBook,
        registry: TemplateRegistry,
        sender: GuardedSender,
        clock: Clock,
        on_turn: TurnHandler,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_concurrent_turns: int = DEFAULT_CONCURRENT_TURNS,
        waba_id: str | None = None,
    ) -> None:
        if not app_secret:
            raise ValueError("app_secret is required: webhooks are never accepted unsigned")
        if not verify_token:
            raise ValueError("verify_token is required for the webhook handshake")
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.sessions = sessions
        self.inbox = inbox
        self.sent = sent
        self.consents = consents
        self.registry = registry
        self.sender = sender
        self.clock = clock
        self.on_turn = on_turn
        self.max_body_bytes = max_body_bytes
        self.waba_id = waba_id if waba_id is not None else os.environ.get("WA_WABA_ID", "").strip()
        """The business account whose templates are reconciled with the Graph API (none:
        no reconciliation; the webhooks still keep the shared state)."""
        self._housekeeping: asyncio.Future[None] | None = None
        self._template_sync: asyncio.Future[None] | None = None
        self._handoffs: Any = None
        self._ledger: Ledger | None = None
        self._queues: dict[str, list[Turn]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting: list[tuple[WebhookBatch, asyncio.Future[None]]] = []
        self._committer: asyncio.Future[None] | None = None
        # Turns of different clients overlap up to this many: enough to keep the Rasa
        # interpreter busy while a turn waits on the action server or a send (2 left it
        # idle: ratio 0.92 against REST), few enough not to queue CPU-bound predictions
        # in front of the webhook acknowledgements.
        self._turn_slots = asyncio.Semaphore(max_concurrent_turns)
        # Inbox rows are held as "<host>:<pid>:<channel>:<n>", a fresh n for each claim
        # (a compare-and-set on the name tells two takers apart).
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._claims = itertools.count()
        _LIVE_OWNERS.add(self.owner)
        self._held: set[str] = set()
        """The wamids this channel works on (claimed, queued or in a turn)."""
        self._stopping: asyncio.Event | None = None
        self.stats: dict[str, int] = {
            "posts": 0, "messages": 0, "duplicates": 0, "statuses": 0, "rejected": 0,
            "turns": 0, "turn_errors": 0, "unavailable": 0, "commits": 0, "foreign": 0,
            "abandoned": 0, "taken_over": 0, "echoes": 0, "held_for_order": 0,
        }

    # ------------------------------------------------------------------ handshake
    def verify(self, mode: str | None, token: str | None, challenge: str | None) -> Reply:
        return verify_handshake(self.verify_token, mode, token, challenge)

    # ------------------------------------------------------------------ POST
    async def handle(self, body: bytes, signature: str | None) -> Reply:
        self.stats["posts"] += 1
        if len(body) > self.max_body_bytes:
            logger.warning("webhook refused: body of %d bytes is over %d", len(body), self.max_body_bytes)
            return Reply(400, "body too large")
        check = check_signature(body, signature, self.app_secret)
        if check is SignatureCheck.MISSING:
            logger.warning("webhook refused: no X-Hub-Signature-256 header")
            return Reply(401, "signature missing")
        if check is SignatureCheck.INVALID:
            logger.warning("webhook refused: X-Hub-Signature-256 does not match")
            return Reply(403, "signature invalid")
        try:
            payload = parse_body(body)
        except WebhookFormatError as exc:
            logger.warning("webhook refused: %s", exc)
            return Reply(400, str(exc))
        try:
            batch = parse_webhook(payload)
        except Exception:  # a shape no check foresaw: refused, never a 500 with a trace
            logger.exception("webhook refused: its content could not be read")
            return Reply(400, "content not understood")
        self._keep_ours(batch)
        for message in batch.messages:
            # Whatever logs these later (here or in Rasa) masks them.
            remember(message.text, message.profile_name)
        for echo in batch.echoes:
            remember(echo.text)
        for where, why in batch.rejected:
            self.stats["rejected"] += 1
            logger.error("webhook item %s rejected: %s", where, why)
        try:
            await self._commit(batch)
        except Exception as exc:
            self.stats["unavailable"] += 1
            logger.error("webhook not stored (%s: %s); answering 503 so Meta retries",
                         type(exc).__name__, exc)
            return Reply(503, "store unavailable")
        return Reply(200, "ok")

    def _keep_ours(self, batch: WebhookBatch) -> None:
        """Meta posts the webhooks of every number of the business account to one
        callback URL: messages and statuses of another number are not ours to answer
        or record (our replies would leave from our number). Dropped here, logged; the
        webhook is still acknowledged.
        """
        foreign = {m.phone_number_id for m in batch.messages if m.phone_number_id != self.phone_number_id}
        foreign |= {s.phone_number_id for s in batch.statuses if s.phone_number_id != self.phone_number_id}
        foreign |= {e.phone_number_id for e in batch.echoes if e.phone_number_id != self.phone_number_id}
        if not foreign:
            return
        kept = [m for m in batch.messages if m.phone_number_id == self.phone_number_id]
        kept_statuses = [s for s in batch.statuses if s.phone_number_id == self.phone_number_id]
        kept_echoes = [e for e in batch.echoes if e.phone_number_id == self.phone_number_id]
        dropped = (len(batch.messages) - len(kept) + len(batch.statuses) - len(kept_statuses)
                   + len(batch.echoes) - len(kept_echoes))
        self.stats["foreign"] += dropped
        logger.warning("webhook: %d message(s)/status(es) for phone number id(s) %s, not ours (%s); ignored",
                       dropped, ", ".join(sorted(foreign)), self.phone_number_id)
        batch.messages[:] = kept
        batch.statuses[:] = kept_statuses
        batch.echoes[:] = kept_echoes

    # ------------------------------------------------------------------ group commit
    async def _commit(self, batch: WebhookBatch) -> None:
        """Store ``batch`` together with the webhooks that arrived with it.

        Webhooks come in bursts (a client's first message, a campaign's statuses, Meta's
        retries after an outage). The first of a burst starts a commit in a task of its
        own, which runs once the webhooks already read have been parsed and joined it;
        webhooks arriving while it runs wait for the next one. Each commit is a few
        transactions for all of them instead of a few for each, which is what keeps
        the acknowledgements of a burst short. A failure answers 503 to every webhook
        of its group: nothing of them is kept, and Meta retries each.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((batch, future))
        if self._committer is None:
            self._committer = asyncio.ensure_future(self._commit_waiting())
        # The commit stores the group and schedules its turns itself: a webhook whose
        # caller went away is handled all the same (Meta's retry finds a duplicate).
        await future

    async def _commit_waiting(self) -> None:
        group: list[tuple[WebhookBatch, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                batches = [batch for batch, _ in group]
                self.stats["commits"] += 1
                try:
                    turns, failures = await self._store(batches)
                except Exception as exc:
                    logger.exception("%d webhook(s) not stored", len(group))
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for turn in turns:
                    logger.debug("%s %s %s %s%s", "echo" if turn.is_echo else "message", turn.item.wamid,
                                 "to" if turn.is_echo else "from", turn.sender_id,
                                 " (window reopened)" if turn.new_window else "")
                # The acknowledgements first, then the turns.
                for _, future in group:
                    if not future.done():
                        future.set_result(None)
                # Only the failures this commit applied: a redelivered one re-routes nothing.
                self._schedule(turns, failures)
        finally:
            self._committer = None
            # Stopped midway (the service is closing): nobody is left waiting forever.
            stranded, self._waiting = group + self._waiting, []
            for _, future in stranded:
                if not future.done():
                    future.set_exception(ConnectionAbortedError("the channel is stopping"))

    async def _store(self, batches: list[WebhookBatch]) -> tuple[list[Turn], list[StatusUpdate]]:
        """Everything of ``batches`` that must not be lost, before any is acknowledged;
        returns the turns to run, in timestamp order, and the ``failed`` statuses this
        call applied (each transition is applied once, whatever the deliveries).
        """
        now = self.clock.now()
        messages = sorted((m for batch in batches for m in batch.messages), key=lambda m: m.timestamp)
        echoes = sorted((e for batch in batches for e in batch.echoes), key=lambda e: e.timestamp)
        _note_consent_keywords(messages)
        items = [_inbox_item(m) for m in messages]
        echo_items = [_echo_item(e) for e in echoes]
        # One claim for both: an echo's row is its dedup and keeps it until it is recorded.
        fresh_all = await self._claim([_Claimed(m.wamid, m.starts_turn) for m in messages]
                                      + [_Claimed(e.wamid, True) for e in echoes], items + echo_items, now)
        fresh, echo_fresh = fresh_all[:len(messages)], fresh_all[len(messages):]
        claimed = [m for m, ok in zip(messages, fresh, strict=True) if ok]
        claimed_echoes = [e for e, ok in zip(echoes, echo_fresh, strict=True) if ok]
        self.stats["duplicates"] += len(messages) - len(claimed) + len(echoes) - len(claimed_echoes)
        try:
            recorded = await self._record_claimed(claimed)
            echo_clients = await self._echo_clients(claimed_echoes)
            failures = await self._record_updates(batches)
        except Exception:
            await self._release([m.wamid for m in claimed] + [e.wamid for e in claimed_echoes])
            raise
        self.stats["messages"] += len(claimed)
        self.stats["statuses"] += sum(len(batch.statuses) for batch in batches)
        turns = []
        for message, item, ok in zip(messages, items, fresh, strict=True):
            if not (ok and message.starts_turn):
                continue
            client, conversation = recorded.known.get(message.wamid, (message.client, None))
            _note_ids(item, client)
            turns.append(Turn(item, client, recorded.parked.get(message.wamid),
                              message.wamid in recorded.reopened, conversation))
        if claimed_echoes:
            for echo, item, ok in zip(echoes, echo_items, echo_fresh, strict=True):
                if not ok:
                    continue
                client, conversation = echo_clients.get(echo.wamid, (echo.client, None))
                _note_ids(item, client)
                turns.append(Turn(item, client, conversation_id=conversation))
            # The advisor's messages and the client's, in the order they were written.
            turns.sort(key=lambda turn: turn.item.sent_at)
        return turns, failures

    async def _echo_clients(self, echoes: list[MessageEcho]) -> dict[str, tuple[ClientRef, str]]:
        """The client each echo went to, with every id her session knows and her
        conversation id (read only: an echo records no window). A client who never wrote
        has no session yet: her echo goes to the conversation her id names.
        """
        if not echoes:
            return {}
        states = await self.sessions.get_many([echo.client for echo in echoes])
        return {echo.wamid: _known_client(echo.client, state)
                for echo, state in zip(echoes, states, strict=True) if state is not None}

    async def _claim(self, messages: Sequence[_Claimed], items: list[InboxItem],
                     now: datetime) -> list[bool]:
        """Claim the inbox rows of ``messages`` (taking over those nobody works on any
        more); per message, True when it is this commit's. From then on the claimed
        messages that start a turn are held until their turn ends.
        """
        # Held before the claim: the sweep never takes a row this commit is claiming.
        mine = [w for w in dict.fromkeys(m.wamid for m in messages) if w not in self._held]
        self._held.update(mine)
        try:
            fresh = await self.inbox.claim_inbound(items, now, owner=self._claim_name(), lease=INBOX_LEASE)
            fresh = await self._take_over_duplicates(messages, fresh, set(mine), now)
        except BaseException:
            self._held.difference_update(mine)
            raise
        # Held from here on: the claimed messages that start a turn, until it ends.
        starting = {m.wamid for m, ok in zip(messages, fresh, strict=True) if ok and m.starts_turn}
        self._held.difference_update(set(mine) - starting)
        return fresh

    async def _record_claimed(self, claimed: list[InboundMessage]) -> _Windows:
        """Record what the claimed messages change: identities, then windows, then
        consent keywords.
        """
        for message in claimed:
            if message.identity_change is not None:
                # Before the windows: a message from the new id, in the same batch,
                # then finds her session.
                await self._follow_identity(message)
        recorded = _Windows()
        windows = [m for m in claimed if m.extends_window]
        results = await self.sessions.record_inbound_many([
            InboundRecord(m.client, m.timestamp, m.wamid, m.entry_point) for m in windows
        ])
        for message, result in zip(windows, results, strict=True):
            recorded.parked[message.wamid] = result.state.parked_count
            if result.new_session and result.state.session_count > 1:
                recorded.reopened.add(message.wamid)
            recorded.known[message.wamid] = _known_client(message.client, result.state)
        for message in claimed:
            if message.metadata.get("consent_keyword"):
                await self._consent_keyword(message)
        return recorded

    async def _record_updates(self, batches: list[WebhookBatch]) -> list[StatusUpdate]:
        """Record the preferences, statuses and template events of ``batches``; returns
        the ``failed`` statuses applied now.
        """
        failures: list[StatusUpdate] = []
        for batch in batches:
            for update in batch.preferences:
                await self.consents.record_preference(
                    update.client, update.value, update.timestamp, category=update.category,
                    detail=update.detail,
                )
            for status in batch.statuses:
                logger.debug("status %s for %s: %s", status.status, status.recipient_id, status.wamid)
                if await self._record_status(status):
                    failures.append(status)
        for event in (event for batch in batches for event in batch.template_events):
            await self._template_event(event)
        return failures

    async def _release(self, claimed: list[str]) -> None:
        """Give up the claims (wamids) of a commit that failed: Meta's retry finds them as
        they were.
        """
        self._held.difference_update(claimed)
        try:
            await self.inbox.release_inbound(claimed)
        except Exception as exc:
            # Still pending under our name: Meta's retry takes it over (or, if it
            # never comes, the sweep once the lease has run out).
            logger.error("releasing %d claim(s) failed too (%s); Meta's retry will take them over",
                         len(claimed), type(exc).__name__)

    async def _template_event(self, event: TemplateEvent) -> None:
        """A template's lifecycle change, kept in the shared template state before the
        acknowledgement: every sender of every process learns it.
        """
        try:
            changes = await self.registry.record_webhook(event.as_webhook())
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            self.stats["rejected"] += 1
            logger.error("webhook template update %s rejected: %s", event.field, exc)
            return
        for change in changes:
            logger.info("template lifecycle: %s", change)

    def _claim_name(self) -> str:
        return f"{self.owner}:{next(self._claims)}"

    def _owner_gone(self, owner: str | None) -> bool:
        """Whether nobody works under ``owner`` any more, as far as this host can tell:
        a channel of this process that stopped, or a process of this host that exited.
        """
        if owner is None:
            return True
        parts = owner.split(":")
        if len(parts) < 4 or parts[0] != HOST or not parts[1].isdigit():
            return False  # another host: its lease decides
        pid = int(parts[1])
        if pid == os.getpid():
            return ":".join(parts[:3]) not in _LIVE_OWNERS
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _mine(self, owner: str | None) -> bool:
        return owner is not None and owner.startswith(self.owner + ":")

    async def _take(self, claims: Sequence[InboxClaim], now: datetime, *, claiming: bool = False) -> list[InboxItem]:
        """Take over each row of ``claims`` (held here from then on); returns those taken.
        ``claiming``: the rows are those of the commit in hand (held for it already).
        """
        taken: list[InboxItem] = []
        for claim in claims:
            wamid = claim.item.wamid
            if wamid in self._held and not claiming:
                continue
            self._held.add(wamid)
            try:
                ok = await self.inbox.take_inbound(claim, self._claim_name(), now, INBOX_LEASE)
            except BaseException:
                self._held.discard(wamid)
                raise
            if ok:
                taken.append(claim.item)
            elif not claiming:
                self._held.discard(wamid)
        return taken

    async def _take_over_duplicates(self, messages: Sequence[_Claimed], fresh: list[bool],
                                    mine: set[str], now: datetime) -> list[bool]:
        """Meta's retry of a message whose row is still pending but worked on by nobody
        (the release of its claim failed when its acknowledgement failed, or its channel
        is gone) is processed as new.
        """
        stale = [m.wamid for m, ok in zip(messages, fresh, strict=True)
                 if not ok and m.starts_turn and m.wamid in mine]
        if not stale:
            return fresh
        claims = await self.inbox.claimable_inbound(now, wamids=stale)
        lapsed = [c for c in claims if c.item.state == "pending" and (
            self._mine(c.owner) or self._owner_gone(c.owner)
            or c.lease_until is None or c.lease_until < now)]
        taken = {item.wamid for item in await self._take(lapsed, now, claiming=True)}
        if taken:
            logger.warning("%d message(s) left pending by a failed acknowledgement taken over", len(taken))
        out, seen = [], set()
        for message, ok in zip(messages, fresh, strict=True):
            again = message.wamid in taken and message.wamid not in seen
            seen.add(message.wamid)
            out.append(ok or again)
        return out

    async def _follow_identity(self, message: InboundMessage) -> None:
        change = message.identity_change
        assert change is not None
        moved = await follow_identity(self.inbox.engine, self.sessions, change.before, change.after)
        logger.info("%s (%s): %s", change.kind, message.wamid, moved)

    async def _consent_keyword(self, message: InboundMessage) -> None:
        """STOP / START, recognised before any model sees the message: the ledger is
        written before the acknowledgement, the confirmation is the message's turn.
        """
        keyword = str(message.metadata["consent_keyword"])
        await self.consents.record_keyword(message.client, keyword, message.text, message.timestamp)
        logger.info("consent keyword %s from %s recorded", keyword.upper(), message.sender_id)

    async def _confirm_keyword(self, turn: Turn) -> None:
        """The one confirmation, a reply to the client's own message (allowed though they
        just opted out); the assistant does not argue.
        """
        keyword = str(turn.metadata["consent_keyword"])
        profile = await self.consents.profile(turn.client)
        language, text = confirmation(keyword, turn.text, profile.language if profile else None)
        out = OutgoingMessage({"type": "text", "text": {"body": text}}, purpose=SERVICE_REPLY,
                              utter_action="utter_opt_out" if keyword == "stop" else "utter_opt_in",
                              language=language)
        outcome = await self.sender.send(turn.client, out)
        logger.info("consent keyword %s confirmed: %s", keyword.upper(), outcome.action)

    async def _record_status(self, status: StatusUpdate) -> bool:
        """Apply one status; True when it is a ``failed`` transition applied now (not a
        redelivery), i.e. one whose consequences (re-route) are this call's to run.
        """
        error = status.errors[0] if status.errors else None
        change = await self.sent.apply_status(
            wamid=status.wamid, status=status.status, at=status.timestamp,
            phone_number_id=status.phone_number_id, recipient=status.recipient_id,
            error=error.to_dict() if error else None,
            callback=_callback_data(status),
        )
        if status.pricing or status.status in DELIVERED_STATUSES:
            await self._price(status)
        if not change.applied or status.status != "failed" or error is None:
            return False
        client = status.client
        logger.warning("message %s to %s failed: %s", status.wamid, status.recipient_id, error)
        if client is None:
            return True
        if error.closes_window:
            await self.sessions.record_failure(client, error, status.timestamp)
        if error.code == 131050:
            await self.consents.record_preference(client, "stop", status.timestamp,
                                                  source="error_131050", detail=str(error))
        return True

    async def _price(self, status: StatusUpdate) -> None:
        """Meta's pricing of one of our messages into the ledger, reconciled with the
        guard's estimate (a redelivered status changes nothing). A ledger that cannot be
        written is logged and does not hold up the status itself.
        """
        try:
            if self._ledger is None:
                ledger = Ledger(engine=self.sent.engine, card=self.sender.card)
                await ledger.initialize()
                self._ledger = ledger
            await self._ledger.record(
                wamid=status.wamid, status=status.status, at=status.timestamp,
                phone_number_id=status.phone_number_id,
                recipient=status.recipient_id or status.recipient_user_id, pricing=status.pricing)
        except Exception as exc:
            logger.error("pricing of %s not kept in the ledger (%s)", status.wamid, type(exc).__name__)

    # ------------------------------------------------------------------ after the ack
    def _schedule(self, turns: list[Turn], statuses: list[StatusUpdate]) -> None:
        for turn in turns:
            self._queues.setdefault(turn.sender_id, []).append(turn)
            if turn.sender_id not in self._workers:
                self._workers[turn.sender_id] = self._spawn(self._drain(turn.sender_id))
        for status in statuses:
            if status.status == "failed" and any(e.closes_window for e in status.errors):
                self._spawn(self._reroute(status))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _drain(self, sender_id: str) -> None:
        try:
            while self._queues.get(sender_id):
                queue = self._queues[sender_id]
                turn = queue.pop(0)
                if not await self._in_order(turn):
                    # Earlier messages of hers joined this queue: they go first.
                    queue.append(turn)
                    queue.sort(key=lambda t: t.item.sent_at)
                    continue
                async with self._turn_slots:
                    await self._run_turn(turn)
        finally:
            self._queues.pop(sender_id, None)
            self._workers.pop(sender_id, None)

    async def _in_order(self, turn: Turn) -> bool:
        """Whether ``turn`` may run now: none of the client's earlier messages is still
        pending. One held by another replica is waited for (outside the turn slots, so
        waiting replicas never hold each other up); one nobody works on any more (its
        replica died, its lease ran out) is taken over here. False when earlier turns were
        queued before this one (run them first).
        """
        began = time.monotonic()
        delay = 0.02
        waited = False
        while True:
            earlier = await self.inbox.earlier_pending(turn.item)
            if not earlier:
                return True
            queued = {t.item.wamid for t in self._queues.get(turn.sender_id, [])}
            if any(c.item.wamid in queued for c in earlier):
                return False
            now = self.clock.now()
            # Nobody works on it: no holder, a lease run out, a holder gone, or this channel
            # itself without it in hand (a turn interrupted by the assistant's restart).
            free = [c for c in earlier if c.item.wamid not in self._held and (
                c.owner is None or c.lease_until is None or c.lease_until < now or self._mine(c.owner)
                or self._owner_gone(c.owner))]
            if free:
                turns = await self._turns_for(await self._take(free, now))
                if turns:
                    self.stats["taken_over"] += len(turns)
                    logger.info("taking over %d earlier message(s) of %s before its next: %s", len(turns),
                                turn.sender_id, ", ".join(t.item.wamid for t in turns))
                    self._schedule(turns, [])
                    if any(t.sender_id == turn.sender_id for t in turns):
                        return False
            if not waited:
                waited = True
                self.stats["held_for_order"] += 1
            if time.monotonic() - began > ORDER_WAIT_S:
                logger.warning("%s's message %s answered before %d earlier one(s) still held elsewhere",
                               turn.sender_id, turn.item.wamid, len(earlier))
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _turns_for(self, items: Sequence[InboxItem]) -> list[Turn]:
        """Turns for inbox rows taken over (the client as the window store knows her)."""
        turns = []
        for item in items:
            client, conversation = client_of_item(item), None
            state = await self.sessions.get(client)
            if state is not None:
                client, conversation = _known_client(client, state)
                _note_ids(item, client)
            turns.append(Turn(item, client, conversation_id=conversation, replayed=item.state == "pending"))
        return turns

    async def _run_turn(self, turn: Turn) -> None:
        meta = turn.metadata
        try:
            if turn.is_echo:
                await self._record_echo(turn)
                return
            if turn.replayed and await self.sent.answered(turn.client.phone_number_id, turn.item.wamid):
                # Its channel died after the answer left, before it could say so: running
                # the turn again would answer her twice.
                logger.info("message %s of %s was answered before its channel stopped; not asked again",
                            turn.item.wamid, turn.sender_id)
                await self.inbox.finish_inbound(turn.item.wamid, self.clock.now(), state="done")
                return
            skip_turn = False
            parked = turn.parked_count
            if parked is None:
                state = await self.sessions.get(turn.client)
                parked = state.parked_count if state is not None else 0
            if parked:
                found = meta.get("context")
                context: dict[str, Any] = found if isinstance(found, dict) else {}
                nudge = None
                if context.get("id"):
                    nudge = await self.sent.recent_nudge(turn.client.phone_number_id, context["id"])
                await self.sender.deliver_parked(turn.client)
                # Tapping the nudge's button asks for the parked content, nothing more.
                skip_turn = nudge is not None
            if not skip_turn:
                # Blue ticks and the typing indicator while the assistant thinks.
                self._spawn(self.sender.mark_read(turn.item.wamid, typing=True))
                if meta.get("consent_keyword") in ("stop", "start"):
                    await self._confirm_keyword(turn)
                else:
                    await self.on_turn(turn)
                self.stats["turns"] += 1
            await self.inbox.finish_inbound(turn.item.wamid, self.clock.now(),
                                              state="done" if not skip_turn else "skipped")
        except TurnInterrupted as exc:
            logger.warning("turn for %s (%s) interrupted (%s); left pending for replay",
                           turn.sender_id, turn.item.wamid, exc)
        except Exception as exc:
            self.stats["turn_errors"] += 1
            await self._turn_failed(turn, exc)
        finally:
            self._held.discard(turn.item.wamid)

    async def _record_echo(self, turn: Turn) -> None:
        """An advisor's message from the phone, written into the client's conversation by
        the channel. No parked delivery, no read receipt, no typing indicator: the client
        did nothing. A message the Cloud API sent for Salon is already there.
        """
        wamid = turn.item.wamid
        ours = await self.sent.outbound_by_wamid(wamid)
        if ours is not None and ours.kind != "status_only":
            logger.info("echo %s is a message Salon sent itself; not recorded again", wamid)
            await self.inbox.finish_inbound(wamid, self.clock.now(), state="skipped")
            return
        await self.on_turn(turn)
        self.stats["echoes"] += 1
        await self.inbox.finish_inbound(wamid, self.clock.now(), state="done")

    async def _turn_failed(self, turn: Turn, exc: Exception) -> None:
        """Record a failed turn: due again after its backoff, or given up after the last
        attempt (recorded, logged, handed to an advisor).
        """
        attempt = turn.item.attempts + 1
        error = f"{type(exc).__name__}: {exc}"
        now = self.clock.now()
        try:
            if attempt < MAX_TURN_ATTEMPTS:
                due = now + TURN_RETRY_DELAYS[attempt - 1]
                logger.exception("turn for %s (%s) failed (attempt %d of %d); tried again at %s",
                                 turn.sender_id, turn.item.wamid, attempt, MAX_TURN_ATTEMPTS, due.isoformat())
                await self.inbox.finish_inbound(turn.item.wamid, now, state="failed", error=error, retry_at=due)
                return
            logger.error("turn for %s (%s) failed %d times; given up and handed to an advisor",
                         turn.sender_id, turn.item.wamid, attempt, exc_info=exc)
            self.stats["abandoned"] += 1
            await self.inbox.finish_inbound(turn.item.wamid, now, state="abandoned",
                                              error=f"given up after {attempt} attempts: {error}")
        except Exception:
            logger.exception("could not record the failure of %s", turn.item.wamid)
            return
        if turn.is_echo:
            return  # the advisor wrote it: nothing for anyone to answer
        try:
            await self._hand_over(turn, attempt, type(exc).__name__)
        except Exception:
            logger.exception("could not open a handoff for %s after its failed turns", turn.item.wamid)

    async def _hand_over(self, turn: Turn, attempts: int, error: str) -> None:
        from salon.advisors.handoff import HandoffBook

        if self._handoffs is None:
            book = HandoffBook(engine=self.inbox.engine)
            await book.initialize()
            self._handoffs = book
        profile = await self.consents.profile(turn.client)
        handoff, created = await self._handoffs.open(
            conversation_id=turn.sender_id, reason="repeated_failure",
            note=(f"The assistant could not answer the client's WhatsApp message of "
                  f"{turn.item.sent_at.isoformat()} ({attempts} attempts, {error}); please answer it."),
            language=(profile.language if profile is not None and profile.language else "en"),
            now=self.clock.now(), phone_number_id=turn.client.phone_number_id,
            wa_id=turn.client.wa_id, user_id=turn.client.user_id,
        )
        logger.warning("handoff %s %s for %s after %d failed turns", handoff.id,
                       "opened" if created else "already open", turn.sender_id, attempts)

    async def _reroute(self, status: StatusUpdate) -> None:
        try:
            record = await self.sent.outbound_by_wamid(status.wamid)
            for _ in range(20):
                # The failure may have overtaken our own record of the send: give the
                # sender a moment to merge its content into the row.
                if record is None or record.kind != "status_only":
                    break
                await asyncio.sleep(0.1)
                record = await self.sent.outbound_by_wamid(status.wamid)
            client = status.client
            if record is None or client is None:
                logger.warning("131047 for %s: no record of the content; nothing to re-route", status.wamid)
                return
            outcome = await self.sender.reroute(record, client)
            logger.info("re-routed %s after 131047: %s", status.wamid, outcome)
        except Exception:
            logger.exception("re-routing %s failed", status.wamid)

    # ------------------------------------------------------------------ lifecycle
    async def replay_pending(self) -> int:
        """Queue messages acknowledged earlier but never answered (oldest first) that no
        live channel works on, and failed turns due again: the start's sweep.
        """
        return await self.sweep()

    async def sweep(self) -> int:
        """Renew the leases of what this channel works on, and take over (one channel
        only, whatever the replicas) the pending rows nobody works on any more and the
        failed turns due again; their turns are queued. Returns how many were taken.
        """
        now = self.clock.now()
        if self._held:
            await self.inbox.renew_inbound(list(self._held), self.owner, now + INBOX_LEASE)
        claims = await self.inbox.claimable_inbound(
            now, local_prefix=f"{HOST}:", retry_below=MAX_TURN_ATTEMPTS)
        free = [c for c in claims if c.item.wamid not in self._held and (
            c.item.state == "failed" or c.owner is None or c.lease_until is None
            or c.lease_until < now or self._owner_gone(c.owner))]
        items = await self._take(free, now)
        turns = await self._turns_for(items)
        self._schedule(turns, [])
        if turns:
            self.stats["taken_over"] += len(turns)
            retries = sum(1 for item in items if item.state == "failed")
            logger.info("replaying %d pending WhatsApp message(s)%s: %s", len(turns),
                        f" ({retries} failed turn(s) tried again)" if retries else "",
                        ", ".join(t.item.wamid for t in turns))
        return len(turns)

    async def prune(self) -> int:
        """Forget handled inbox rows older than the dedup window (Meta retries for 7 days)."""
        removed = await self.inbox.prune_inbound(self.clock.now() - INBOX_RETENTION)
        if removed:
            logger.info("pruned %d handled WhatsApp message(s) from the inbox", removed)
        return removed

    def start_housekeeping(self, every: timedelta = timedelta(hours=6),
                           sweep_every: timedelta = SWEEP_EVERY) -> None:
        """In a tracked background task: prune now and then every ``every``; sweep the
        inbox every ``sweep_every``.
        """
        stopping = self._stopping = asyncio.Event()

        async def loop() -> None:
            loop_ = asyncio.get_running_loop()
            next_prune = loop_.time()
            while not stopping.is_set():
                if loop_.time() >= next_prune:
                    try:
                        await self.prune()
                    except Exception:
                        logger.exception("pruning the WhatsApp inbox failed; will try again")
                    next_prune = loop_.time() + every.total_seconds()
                try:
                    await asyncio.wait_for(stopping.wait(), sweep_every.total_seconds())
                    return
                except asyncio.TimeoutError:
                    pass
                try:
                    await self.sweep()
                except Exception:
                    logger.exception("sweeping the WhatsApp inbox failed; will try again")

        self._housekeeping = asyncio.ensure_future(loop())
        self._start_template_sync(stopping)

    def _start_template_sync(self, stopping: asyncio.Event) -> None:
        """Reconcile the templates with the Graph API now and every
        :data:`salon.templates.sync.SYNC_EVERY`, in the background (the webhooks keep the
        state between two).
        """
        graph = getattr(self.sender.graph, "config", None)
        if not self.waba_id or graph is None or graph.auth_mode != "bearer":
            return
        fetcher = GraphTemplatePageFetcher(self.waba_id, graph.access_token, base_url=graph.base_url,
                                           api_version=graph.api_version)

        async def run() -> None:
            try:
                await keep_in_sync(self.registry, fetcher, stopping)
            finally:
                await fetcher.aclose()

        self._template_sync = asyncio.ensure_future(run())

    async def stop_housekeeping(self, timeout: float = 10.0) -> None:
        """Stop the background loop (never cancelled mid-statement), let the turns in
        hand finish (up to ``timeout``), then give up the inbox rows this channel holds
        but no longer works on, so the next channel takes them at once.
        """
        task, self._housekeeping = self._housekeeping, None
        sync, self._template_sync = self._template_sync, None
        if self._stopping is not None:
            self._stopping.set()
        for running in (task, sync):
            if running is not None:
                await running
        await self.drain(timeout)
        try:
            released = await self.inbox.let_go_inbound(self.owner, keep=list(self._held))
            if released:
                logger.info("%d pending WhatsApp message(s) left for the next start", released)
        except Exception:
            logger.exception("giving up the inbox rows of %s failed; their leases run out", self.owner)
        finally:
            _LIVE_OWNERS.discard(self.owner)

    def waiting(self, sender_id: str) -> int:
        """How many of this client's messages are queued behind the turn running now
        (she wrote again before the assistant answered).
        """
        return len(self._queues.get(sender_id) or ())

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait for background work (tests, shutdown); False if it did not finish."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True


def _callback_data(status: StatusUpdate) -> str | None:
    value = status.raw.get("biz_opaque_callback_data") if isinstance(status.raw, dict) else None
    return value if isinstance(value, str) and value else None


def _note_consent_keywords(messages: Sequence[InboundMessage]) -> None:
    """Mark, in its metadata, each typed message that is a consent keyword (STOP or START)."""
    for message in messages:
        keyword = keyword_of(message.text) if message.type == "text" and message.starts_turn else None
        if keyword is not None:
            message.metadata["consent_keyword"] = keyword


def _inbox_item(message: InboundMessage) -> InboxItem:
    return InboxItem(
        wamid=message.wamid,
        phone_number_id=message.phone_number_id,
        sender_id=message.sender_id,
        sent_at=message.timestamp,
        text=message.text,
        metadata=message.metadata,
        state="pending" if message.starts_turn else "skipped",
        attempts=0,
    )


@dataclass(frozen=True, slots=True)
class _Claimed:
    """What claiming an inbox row needs of a message or an echo: its wamid, and whether
    work remains once it is acknowledged (a turn, or recording an echo).
    """

    wamid: str
    starts_turn: bool


def _echo_item(echo: MessageEcho) -> InboxItem:
    """An echo as the inbox keeps it: under the client's id (her data, found and erased
    with hers), pending until it is in her conversation.
    """
    return InboxItem(
        wamid=echo.wamid,
        phone_number_id=echo.phone_number_id,
        sender_id=echo.sender_id,
        sent_at=echo.timestamp,
        text=echo.text,
        metadata=echo.metadata,
        state="pending",
        attempts=0,
    )


def _known_client(client: ClientRef, state: SessionState) -> tuple[ClientRef, str]:
    """The client with every id her session knows (a username-only message still names the
    phone she wrote from before), and her conversation id.
    """
    known = ClientRef(client.phone_number_id, client.user_id or state.user_id,
                      client.wa_id or state.wa_id)
    return known, conversation_id(state.client_key)


def _note_ids(item: InboxItem, client: ClientRef) -> None:
    """The ids the assistant's actions read from the turn's metadata."""
    item.metadata["wa_id"] = client.wa_id
    item.metadata["user_id"] = client.user_id


def client_ref_for_recipient(phone_number_id: str, recipient_id: str) -> ClientRef:
    """The client a conversation id names (BSUID or wa_id)."""
    if is_bsuid(recipient_id):
        return ClientRef(phone_number_id, user_id=recipient_id)
    return ClientRef(phone_number_id, wa_id=recipient_id)
