"""The send-time guard: every message to a client goes through :class:`GuardedSender`.

Right before each HTTP call it reads the client's session, asks
:func:`salon.guard.decision.decide` with the clock's *now*, and acts on the answer:

- free-form while the window is open (with the safety margin);
- an approved template for the message's purpose when it has closed;
- otherwise the content is parked and one branded re-engagement template is sent (only
  one while it waits for the client's answer); the parked content is delivered when the
  client writes again;
- or nothing, with the reason recorded (consent, invalid content, no template).

A synchronous 131047 (our clock and Meta's disagreed) closes the window in the session
store and the same message is decided again, so it becomes a template or is parked; the
asynchronous 131047 (a ``failed`` status webhook) comes back here through
:meth:`GuardedSender.reroute`. A synchronous 132015/132016 (Meta paused or disabled the
template) marks the template unusable for every process and the message is decided
again (another template, or parked). Every outcome is kept in the outbound record.

Template lifecycle state is read from the shared store (:class:`salon.templates.lifecycle.TemplateStates`)
before each decision, at most a few seconds old (:data:`salon.templates.lifecycle.STATE_TTL`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from salon.clock import Clock
from salon.consent.book import ClientProfile, ConsentBook
from salon.guard.decision import (
    Consent,
    Content,
    Decision,
    ParkAndNudge,
    Refuse,
    SendFreeForm,
    SendTemplate,
    decide,
    template_refusal,
)
from salon.guard.sent import OutboundRecord, OutboundWriteBuffer, SentLog
from salon.identity import ClientRef
from salon.pricing.card import RateCard
from salon.pricing.charge import Charge, charge_for, default_card
from salon.pricing.markets import market_of
from salon.purposes import AUTHENTICATION, MARKETING, SERVICE_REPLY
from salon.storage.batching import Coalescer
from salon.templates.lifecycle import TemplateStates
from salon.templates.registry import NoTemplate, TemplateChoice, TemplateRegistry
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.errors import NoResponseError, TemplatePausedError, WhatsAppError
from salon.whatsapp.graph import GraphClient
from salon.whatsapp.merging import MergeConfig, joined_message, merge_messages
from salon.whatsapp.messages import OutgoingMessage
from salon.window.rules import DEFAULT_MARGIN, WindowState
from salon.window.state import ParkedMessage, SessionState, SessionStore

logger = logging.getLogger(__name__)

__all__ = ["GATHER_S", "FollowUp", "GuardedSender", "SendOutcome"]

GATHER_S: Final = 0.01
"""With ``many_clients``: how long the first read of a round waits for others to join
(the window is still read within about this long of each send)."""
MAX_PAUSED_RETRIES: Final = 5
"""Templates found paused by Meta's answer (132015/132016) for one message before it
gives up on templates."""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What became of one message: the action taken, with the wamid, record, template and
    reason that go with it.
    """

    action: str
    """``free_form``, ``template``, ``parked`` (with or without a nudge), ``refused`` or
    ``failed``."""
    wamid: str | None = None
    record_id: int | None = None
    template: str | None = None
    nudge_wamid: str | None = None
    reason: str = ""
    error: WhatsAppError | None = None
    extra: dict[str, Any] = field(default_factory=dict)


FollowUp = Callable[[str, "SendOutcome", str], Awaitable[None]]
"""Told ``(origin, outcome, cause)`` when a message that carries an origin is sent
later than asked, without its sender waiting: parked content delivered when the client
wrote again (``parked_delivered``), or content re-routed after a 131047
(``rerouted_131047``)."""


class GuardedSender:
    """The send-time guard (see the module docstring): each message is decided right
    before its HTTP call, sent, parked or refused, and kept in the outbound record.
    """

    def __init__(
        self,
        *,
        graph: GraphClient,
        sessions: SessionStore,
        sent: SentLog,
        profile_name: Callable[[ClientRef], Awaitable[str | None]],
        consents: ConsentBook,
        registry: TemplateRegistry,
        clock: Clock,
        margin: timedelta = DEFAULT_MARGIN,
        on_follow_up: FollowUp | None = None,
        many_clients: bool = False,
        share_templates: bool = True,
        card: RateCard | None = None,
        merge: MergeConfig | None = None,
    ) -> None:
        self.on_follow_up = on_follow_up
        self.merge = merge if merge is not None else MergeConfig.from_env()
        """Whether waiting content that reads as one leaves as one message."""
        self.card = card if card is not None else default_card()
        """The rate card each send's charge is estimated with (kept in the outbound record)."""
        if share_templates and not registry.shared:
            # Template lifecycle state shared with every other process on these tables.
            registry.attach(TemplateStates(engine=sent.engine), clock)
        self.graph = graph
        self.sessions = sessions
        self.sent = sent
        self.profile_name = profile_name
        """The name the client gave WhatsApp, when the maison's CRM has none (the inbox keeps it)."""
        self.consents = consents
        self.registry = registry
        self.clock = clock
        self.margin = margin
        self.write_buffer: OutboundWriteBuffer | None = None
        """With ``many_clients``: outbound records wait here for :meth:`flush_records`."""
        self._states: Coalescer[ClientRef, SessionState | None] | None = None
        self._contexts: Coalescer[ClientRef, tuple[ClientProfile | None, Consent]] | None = None
        if many_clients:
            # For a sender with many sends in flight (the outbound worker): each send
            # still reads the window, profile and consents right before its own HTTP
            # call, but the reads of concurrent sends share one query, and outbound
            # records are written in batches by the owner's flush.
            self._states = Coalescer(self.sessions.get_many, identity=_ref_identity, gather_s=GATHER_S)
            self._contexts = Coalescer(self.consents.contexts_many, identity=_ref_identity, gather_s=GATHER_S)
            self.write_buffer = OutboundWriteBuffer(sent)

    async def flush_records(self) -> int:
        """Write the outbound records held back (``many_clients``); returns how many."""
        return await self.write_buffer.flush() if self.write_buffer is not None else 0

    async def _state(self, ref: ClientRef) -> SessionState | None:
        if self._states is not None:
            return await self._states.get(ref)
        return await self.sessions.get(ref)

    async def _record(self, **fields: Any) -> int | None:
        if self.write_buffer is not None:
            self.write_buffer.add(**fields)
            return None
        return await self.sent.record_outbound(**fields)

    # ------------------------------------------------------------------ public
    async def send_all(self, ref: ClientRef, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Send in order; each message is decided at its own moment."""
        return [await self.send(ref, message) for message in messages]

    async def send(self, ref: ClientRef, out: OutgoingMessage, *, _retried: bool = False) -> SendOutcome:
        outcome = await self._decide_and_send(ref, out, _retried)
        for _ in range(MAX_PAUSED_RETRIES):
            if not (outcome.action == "failed" and isinstance(outcome.error, TemplatePausedError)
                    and outcome.template):
                break
            # Meta paused or disabled it since we last heard: never selected again until
            # Meta says otherwise, and this message is decided again without it.
            await self.registry.mark_unusable(outcome.template, str(outcome.extra.get("language") or ""),
                                              outcome.error.code)
            logger.warning("template %s refused by Meta (%s); deciding again", outcome.template,
                           outcome.error.code)
            outcome = await self._decide_and_send(ref, out, _retried)
        if logger.isEnabledFor(logging.DEBUG):  # the worker's hot path: nothing built otherwise
            logger.debug("send to %s (%s): %s%s%s", ref.user_id or ref.wa_id, out.purpose, outcome.action,
                         f" {outcome.template}" if outcome.template else "",
                         f" {outcome.wamid}" if outcome.wamid else "")
        return outcome

    async def may_initiate(self, ref: ClientRef, purpose: str) -> Refuse | None:
        """Whether the maison may start a conversation turn with this purpose, as
        :func:`salon.guard.decision.decide` checks it for any message it would send: the
        purpose is known, the client did not say STOP for its category, marketing has
        her marketing opt-in. The refusal, or None.
        """
        state = await self._state(ref)
        consent, _, _ = await self._context(ref, OutgoingMessage({}, purpose=purpose), state)
        decision = decide(None, purpose, Content(text="-"), consent, self.clock.now(),
                          registry=self.registry, margin=self.margin)
        return decision if isinstance(decision, Refuse) else None

    async def _refresh_templates(self) -> None:
        try:
            await self.registry.refresh()
        except Exception as exc:
            logger.warning("template state not read (%s); deciding with the copy in hand", type(exc).__name__)

    async def _decide_and_send(self, ref: ClientRef, out: OutgoingMessage, _retried: bool) -> SendOutcome:
        await self._refresh_templates()
        state = await self._state(ref)
        recipient = Recipient.of(ref, state)
        if out.template is not None:
            return await self._explicit_template(ref, out, state, recipient)
        if out.message.get("type") == "template":
            # A template travels only by name ({"wa_template": …}): the registry checks
            # its status, parameters and category against the client's consent.
            return await self._refuse(ref, out, recipient, "raw_template",
                                      "templates are sent by name (wa_template), never as raw content")
        decision = await self._decision(ref, out, state, recipient)
        if isinstance(decision, SendFreeForm):
            return await self._send_free_form(ref, out, recipient, _retried, state)
        if isinstance(decision, SendTemplate):
            return await self._send_template(ref, out, recipient, decision.choice, kind="template",
                                             state=state)
        if isinstance(decision, ParkAndNudge):
            return await self._park(ref, out, recipient, decision)
        assert isinstance(decision, Refuse)
        return await self._refuse(ref, out, recipient, decision.reason, decision.detail)

    async def _decision(self, ref: ClientRef, out: OutgoingMessage, state: SessionState | None,
                        recipient: Recipient) -> Decision:
        """The guard's decision for ``out`` now, with its charge."""
        now = self.clock.now()
        # No message object: template parameters only (an outbound request may carry
        # nothing else), so only a template can carry it.
        content = Content(raw=out.message) if out.message else None
        market = market_of(recipient.id, self.card)
        if out.purpose == SERVICE_REPLY and state is not None and state.window(now, self.margin).can_send_free_form:
            # A reply in the open window: no consent or profile lookup needed.
            return decide(state, SERVICE_REPLY, content, Consent(), now, registry=self.registry,
                          margin=self.margin, card=self.card, market=market)
        consent, params, language = await self._context(ref, out, state)
        return decide(state, out.purpose, content, consent, now, registry=self.registry, params=params,
                      language=language, margin=self.margin, card=self.card, market=market)

    async def quote(self, ref: ClientRef, out: OutgoingMessage) -> Charge | None:
        """The charge of what the guard would send for ``out`` now (the free-form message,
        the template, or the nudge of a park), sending nothing; None when it would send
        nothing (a refusal, or a park without a nudge).
        """
        await self._refresh_templates()
        state = await self._state(ref)
        recipient = Recipient.of(ref, state)
        now = self.clock.now()
        window = state.window(now, self.margin) if state is not None else None
        if out.template is not None:
            consent, params, language = await self._context(ref, out, state)
            choice = self.registry.build_in_language(out.template, language, params)
            if isinstance(choice, NoTemplate):
                return None
            if template_refusal(choice.category, consent, window_open=window is not None and window.is_open,
                                purpose=out.purpose) is not None:
                return None
            return self._charge(recipient, choice.category, window)
        if out.message.get("type") == "template":
            return None
        decision = await self._decision(ref, out, state, recipient)
        return decision.charge if not isinstance(decision, Refuse) else None

    def _charge(self, recipient: Recipient, template_category: str | None, window: WindowState | None) -> Charge:
        return charge_for(template_category=template_category, window=window,
                          market=market_of(recipient.id, self.card), at=self.clock.now(), card=self.card)

    async def reroute(self, record: OutboundRecord, ref: ClientRef) -> SendOutcome | None:
        """A free-form message failed asynchronously because the window had closed:
        decide again for its content (template or park + nudge). Once per message: the
        first caller marks its outbound record (any process, any number of deliveries of
        the failure); every later one gets None.
        """
        payload = record.payload if isinstance(record.payload, Mapping) else None
        if record.kind != "free_form" or payload is None or "message" not in payload:
            return None
        if not await self.sent.claim_reroute(record.id, self.clock.now()):
            logger.info("message %s was re-routed already; not again", record.wamid)
            return None
        out = OutgoingMessage(
            dict(payload["message"]),
            purpose=record.purpose or SERVICE_REPLY,
            utter_action=record.utter_action,
            params=dict(payload.get("params") or {}),
            origin=payload.get("origin"),
        )
        outcome = await self.send(ref, out, _retried=True)
        await self._follow_up(out, outcome, "rerouted_131047")
        return outcome

    async def deliver_parked(self, ref: ClientRef) -> list[SendOutcome]:
        """The client wrote again: send what was parked while the window was closed.

        Consecutive items for the same purpose that read as one (texts, a reply-button
        message last) leave as one message (:func:`salon.whatsapp.merging.merge_messages`;
        ``SALON_MERGE_REPLIES=off``: one message each). Each item is held (not taken)
        while it is sent, and forgotten once its send has an outcome. One whose send
        failed stays parked, with those after it (their order is kept), for the client's
        next message; so does everything if this raises. A send without an answer (in
        doubt) is not sent again: it may have gone out.
        """
        claim = await self.sessions.claim_parked(ref)
        outcomes: list[SendOutcome] = []
        try:
            items: list[tuple[ParkedMessage, OutgoingMessage]] = []
            for item in claim.items:
                payload = item.payload if isinstance(item.payload, Mapping) else {}
                message = payload.get("message")
                if not isinstance(message, Mapping):
                    logger.error("parked item %s has no message; dropped: %r", item.id, item.payload)
                    await self.sessions.remove_parked(ref, item.id)
                    continue
                items.append((item, OutgoingMessage(
                    dict(message),
                    purpose=str(payload.get("purpose") or SERVICE_REPLY),
                    utter_action=payload.get("utter_action"),
                    params=dict(payload.get("params") or {}),
                    origin=payload.get("origin"),
                    parked_id=item.id,
                )))
            for group in self._parked_groups(items):
                out = group[0][1] if len(group) == 1 else self._joined(group)
                outcome = await self.send(ref, out)
                outcomes.append(outcome)
                if outcome.action == "failed" and not isinstance(outcome.error, NoResponseError):
                    left = len(items) - items.index(group[0])
                    logger.warning("parked item(s) %s for %s not delivered (%s); kept with those after them "
                                   "(%d in all)", ",".join(item.id for item, _ in group),
                                   ref.user_id or ref.wa_id, outcome.reason, left)
                    break
                for item, original in group:
                    await self.sessions.remove_parked(ref, item.id)
                    await self._follow_up(original, outcome, "parked_delivered")
        finally:
            try:
                await self.sessions.release_parked(ref, claim)
            except Exception:
                logger.exception("giving back the parked items of %s failed; they wait for the lease",
                                 ref.user_id or ref.wa_id)
        return outcomes

    def _parked_groups(self, items: Sequence[tuple[ParkedMessage, OutgoingMessage]]
                       ) -> list[list[tuple[ParkedMessage, OutgoingMessage]]]:
        """The waiting items as the messages they leave in: runs of one purpose, merged
        where they read as one.
        """
        groups: list[list[tuple[ParkedMessage, OutgoingMessage]]] = []
        run: list[tuple[ParkedMessage, OutgoingMessage]] = []

        def close() -> None:
            for positions in merge_messages([out.message for _, out in run], self.merge):
                groups.append([run[position] for position in positions])
            run.clear()

        for entry in items:
            if run and entry[1].purpose != run[0][1].purpose:
                close()
            run.append(entry)
        close()
        return groups

    @staticmethod
    def _joined(group: Sequence[tuple[ParkedMessage, OutgoingMessage]]) -> OutgoingMessage:
        """One message for several waiting items of one purpose."""
        first = group[0][1]
        names = [out.utter_action for _, out in group if out.utter_action]
        params: dict[str, Any] = {}
        for _, out in group:
            params.update(out.params)
        return OutgoingMessage(
            joined_message([out.message for _, out in group]), purpose=first.purpose,
            utter_action="+".join(names)[:200] if names else None, params=params,
            origin=first.origin, parked_id=first.parked_id,
            parked_ids=tuple(item.id for item, _ in group))

    async def _follow_up(self, out: OutgoingMessage, outcome: SendOutcome, cause: str) -> None:
        if self.on_follow_up is None or not out.origin:
            return
        try:
            await self.on_follow_up(out.origin, outcome, cause)
        except Exception:
            logger.exception("recording the follow-up of %s (%s) failed", out.origin, cause)

    async def mark_read(self, wamid: str, *, typing: bool = True) -> None:
        try:
            await self.graph.mark_read(wamid, typing=typing)
        except WhatsAppError as error:
            logger.warning("mark-as-read for %s failed: %s", wamid, error)

    # ------------------------------------------------------------------ steps
    async def _context(
        self, ref: ClientRef, out: OutgoingMessage, state: SessionState | None
    ) -> tuple[Consent, dict[str, Any], str | None]:
        if self._contexts is not None:
            profile, consent = await self._contexts.get(ref)
        else:
            profile = await self.consents.profile(ref)
            consent = await self.consents.consent_for(ref, profile)
        params: dict[str, Any] = {}
        if profile is not None:
            params["first_name"] = profile.first_name
        else:
            name = await self.profile_name(ref)
            if name:
                params["first_name"] = name.split()[0]
        params.update(out.params)
        language = out.language or (profile.language if profile is not None else None)
        return consent, params, language

    async def _send_free_form(
        self, ref: ClientRef, out: OutgoingMessage, recipient: Recipient, retried: bool,
        state: SessionState | None = None,
    ) -> SendOutcome:
        now = self.clock.now()
        payload: dict[str, Any] = {"message": out.message, "params": dict(out.params)}
        if out.parked_id:
            payload["parked_id"] = out.parked_id
        if out.parked_ids:
            payload["parked_ids"] = list(out.parked_ids)
        body: dict[str, Any] = {**out.message, **recipient.fields()}
        if out.origin:
            payload["origin"] = out.origin
            body["biz_opaque_callback_data"] = f"{out.origin}#free_form"
        try:
            result = await self.graph.send(body)
        except WhatsAppError as error:
            record_id = await self._record(
                phone_number_id=ref.phone_number_id, recipient=recipient.id, kind="free_form",
                status="failed", at=self.clock.now(), purpose=out.purpose,
                utter_action=out.utter_action, payload=payload, error=error.to_dict(), reply_to=out.reply_to,
            )
            if error.closes_window and not retried:
                logger.info("send to %s: window closed per Meta (%s); deciding again", recipient.id, error.code)
                await self._window_closed(ref, error, state)
                return await self.send(ref, out, _retried=True)
            logger.error("send to %s failed: %s", recipient.id, error)
            return SendOutcome("failed", record_id=record_id, error=error, reason=str(error))
        record_id = await self._record(
            phone_number_id=ref.phone_number_id, recipient=result.recipient_id or recipient.id,
            kind="free_form", status=_accepted(result.message_status), at=self.clock.now(),
            wamid=result.wamid, purpose=out.purpose, utter_action=out.utter_action, payload=payload,
            charge=self._charge(recipient, None, state.window(now, self.margin) if state is not None else None),
            reply_to=out.reply_to,
        )
        await self._replied(ref, state, now, out)
        return SendOutcome("free_form", wamid=result.wamid, record_id=record_id)

    async def _window_closed(self, ref: ClientRef, error: WhatsAppError, decided_on: SessionState | None) -> None:
        """A synchronous 131047: Meta says the window the send was decided on is closed.
        Recorded as of the client's last message at that decision (Meta's timestamp, not
        our clock, which may run ahead of Meta's), so any message she wrote since then
        reopens it; and not at all if one already has.
        """
        seen = decided_on.last_inbound_at if decided_on is not None else None
        if seen is not None:
            current = await self.sessions.get(ref)
            latest = current.last_inbound_at if current is not None else None
            if latest is not None and latest > seen:
                logger.info("131047 for %s, but the client wrote since the decision: her window stands",
                            ref.user_id or ref.wa_id)
                return
        await self.sessions.record_failure(ref, error, seen if seen is not None else self.clock.now())

    async def _replied(self, ref: ClientRef, state: SessionState | None, at: datetime,
                       out: OutgoingMessage | None = None) -> None:
        """Our reply may start a free entry point (first reply after an ad referral);
        otherwise there is nothing to record. A bot-initiated message (it carries an
        origin) to a client who never wrote answers nothing: no session is created.
        """
        if state is None and out is not None and out.origin:
            return
        if state is None or (state.referral_at is not None and state.first_reply_at is None):
            await self.sessions.record_reply(ref, at)

    async def _send_template(
        self, ref: ClientRef, out: OutgoingMessage | None, recipient: Recipient, choice: TemplateChoice,
        *, kind: str, purpose: str | None = None, state: SessionState | None = None,
        window: WindowState | None = None,
    ) -> SendOutcome:
        now = self.clock.now()
        if window is None and state is not None:
            window = state.window(now, self.margin)
        if choice.fell_back:
            logger.info("template %s sent in %s: %s", choice.name, choice.language, choice.language_log)
        origin = out.origin if out is not None else None
        message = choice.message(recipient, biz_opaque_callback_data=f"{origin}#{kind}" if origin else None)
        message.pop("messaging_product", None)
        fields = {
            "phone_number_id": ref.phone_number_id, "recipient": recipient.id, "kind": kind,
            "purpose": purpose or (out.purpose if out else None),
            "utter_action": out.utter_action if out else None, "template": choice.name,
            "reply_to": out.reply_to if out else None,
            "payload": {"message": message, "rendered": choice.rendered,
                        "original": out.message if out else None, "origin": origin,
                        **({"parked_id": out.parked_id} if out is not None and out.parked_id else {})},
        }
        if choice.category == AUTHENTICATION and recipient.wa_id is None:
            # Meta refuses authentication templates to a BSUID (131062): not even tried.
            reason, detail = "authentication_to_bsuid", "an authentication template needs a phone number"
            record_id = await self._record(status="refused", at=now,
                                           error={"reason": reason, "detail": detail}, **fields)
            logger.warning("not sending template %s to %s: %s", choice.name, recipient.id, reason)
            return SendOutcome("refused", record_id=record_id, template=choice.name, reason=reason,
                               extra={"detail": detail})
        try:
            result = await self.graph.send(message)
        except WhatsAppError as error:
            record_id = await self._record(
                status="failed", at=self.clock.now(), error=error.to_dict(), **fields)
            logger.error("template %s to %s failed: %s", choice.name, recipient.id, error)
            return SendOutcome("failed", record_id=record_id, template=choice.name, error=error,
                               reason=str(error), extra={"language": choice.language})
        fields["recipient"] = result.recipient_id or recipient.id
        record_id = await self._record(
            status=_accepted(result.message_status), at=self.clock.now(), wamid=result.wamid,
            charge=self._charge(recipient, choice.category, window), **fields)
        await self._replied(ref, state, now, out)
        return SendOutcome("template", wamid=result.wamid, record_id=record_id, template=choice.name)

    async def _explicit_template(
        self, ref: ClientRef, out: OutgoingMessage, state: SessionState | None, recipient: Recipient
    ) -> SendOutcome:
        consent, params, language = await self._context(ref, out, state)
        assert out.template is not None
        # The client's language, else its base language, else the file's default: the
        # registry's one fallback rule (salon/templates/model.py, language_fallback).
        choice = self.registry.build_in_language(out.template, language, params)
        if isinstance(choice, NoTemplate):
            return await self._refuse(ref, out, recipient, f"no_template:{choice.reason.value}", choice.detail)
        window_open = state is not None and state.window(self.clock.now(), self.margin).is_open
        refusal = template_refusal(choice.category, consent, window_open=window_open, purpose=out.purpose)
        if refusal is not None:
            return await self._refuse(ref, out, recipient, refusal, out.template)
        return await self._send_template(ref, out, recipient, choice, kind="template", state=state)

    async def _park(
        self, ref: ClientRef, out: OutgoingMessage, recipient: Recipient, decision: ParkAndNudge
    ) -> SendOutcome:
        now = self.clock.now()
        item_id = uuid.uuid4().hex[:16]
        payload = {"message": out.message, "purpose": out.purpose, "utter_action": out.utter_action,
                   "params": dict(out.params), "origin": out.origin}
        await self.sessions.park(ref, payload, item_id=item_id, at=now)
        record_id = await self._record(
            phone_number_id=ref.phone_number_id, recipient=recipient.id, kind="free_form",
            status="parked", at=now, purpose=out.purpose, utter_action=out.utter_action,
            payload={"message": out.message, "params": dict(out.params), "parked_id": item_id,
                     "reason": decision.reason, "origin": out.origin},
            reply_to=out.reply_to,
        )
        if decision.nudge is None:
            logger.info("parked %s for %s (%s); no nudge", item_id, recipient.id, decision.reason)
            return SendOutcome("parked", record_id=record_id, reason=decision.reason,
                               extra={"parked_id": item_id})
        nudge = decision.nudge
        # The nudge's quick reply carries the parked item's id, so the tap finds it.
        params = {**(await self._context(ref, out, None))[1], "nudge_ref": item_id}
        rebuilt = self.registry.build(nudge.name, nudge.language, params)
        choice = rebuilt if isinstance(rebuilt, TemplateChoice) else nudge
        purpose = min(nudge.template.purposes, default=None)
        sent = await self._send_template(ref, None, recipient, choice, kind="nudge", purpose=purpose,
                                         window=decision.window)
        for _ in range(MAX_PAUSED_RETRIES):
            if not (sent.action == "failed" and isinstance(sent.error, TemplatePausedError) and purpose):
                break
            await self.registry.mark_unusable(choice.name, choice.language, sent.error.code)
            other = self.registry.select(purpose, choice.language, params,
                                         marketing_allowed=choice.category == MARKETING, now=self.clock.now())
            if not isinstance(other, TemplateChoice):
                logger.warning("no other nudge template than the paused %s; %s waits without one",
                               choice.name, item_id)
                break
            choice = other
            sent = await self._send_template(ref, None, recipient, choice, kind="nudge", purpose=purpose,
                                             window=decision.window)
        if sent.action == "template":
            await self.sessions.record_nudge(ref, now)
        return SendOutcome("parked", record_id=record_id, template=choice.name,
                           nudge_wamid=sent.wamid, reason=decision.reason,
                           error=sent.error, extra={"parked_id": item_id})

    async def _refuse(
        self, ref: ClientRef, out: OutgoingMessage, recipient: Recipient, reason: str, detail: str
    ) -> SendOutcome:
        record_id = await self._record(
            phone_number_id=ref.phone_number_id, recipient=recipient.id, kind="free_form",
            status="refused", at=self.clock.now(), purpose=out.purpose,
            utter_action=out.utter_action, template=out.template,
            payload={"message": out.message, "reason": reason, "detail": detail, "origin": out.origin},
            error={"reason": reason, "detail": detail},
        )
        logger.warning("not sending to %s: %s %s", recipient.id, reason, detail)
        return SendOutcome("refused", record_id=record_id, reason=reason, extra={"detail": detail})


def _ref_identity(ref: ClientRef) -> tuple[str, str | None, str | None]:
    return (ref.phone_number_id, ref.user_id, ref.wa_id)


def _accepted(message_status: str | None) -> str:
    """The record status of an accepted send (template pacing may hold it)."""
    return "held_for_quality_assessment" if message_status == "held_for_quality_assessment" else "accepted"
