"""One styling turn, from the client's words to an answer that may be sent.

1. A message a person must answer (complaint, distress, legal, medical, VIC-sensitive)
   is handed over: no model, no catalog.
2. The client is read (only them; their profile only with personalisation consent),
   her words are read for what a suggestion must respect (:mod:`salon.llm.constraints`:
   budget, for whom, occasion, season, size, colour, kind of piece; place names are no
   reason to rank a piece), and the catalog is ranked for the question among the pieces
   that respect all of it and that she does not already own or have on order
   (:meth:`salon.llm.retrieval.CatalogIndex.rank_fitting`). When none does, the answer
   says so plainly in her language and offers her advisor: no model, no other piece.
3. The model drafts the answer only when one is configured, the client's latest ``llm``
   consent is granted, and the message is not an obvious injection attempt. The draft is
   checked by the guardrails; a failing draft is regenerated once with its problems
   named; a second failure, an error, or the turn's deadline (8 s by default, for the
   whole model part) gives the grounded offline answer instead. The model sees only the
   fitting pieces and the constraints, and the guardrails reject a draft that names a
   piece outside her budget, not made for whom it is meant, or one she already has.
4. Otherwise the offline responder answers from the retrieved facts.

The turn is held in the conversation's language (English, French or Italian: the
``language`` slot, passed in by the action), else the client record's: the model is told
to answer in it, the offline responder writes in it, and the yes/no buttons are in it.

Every turn is written to the audit. The reply carries the purpose ``service_reply``: the
WhatsApp channel's send-time guard sends it free-form while the window is open and parks
it behind a re-engagement template when the turn ended after the window closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from salon.advisors.screen import person_needed
from salon.clock import Clock
from salon.conversation.language import supported
from salon.integrations.catalog import ProductFacts, SqlCatalog
from salon.llm.audit import AuditEntry, LlmAudit, mask, sender_key
from salon.llm.client import LlmClient, LlmUnavailable
from salon.llm.config import LlmSettings
from salon.llm.constraints import Fit, parse_constraints
from salon.llm.context import ClientContext, load_client_context
from salon.llm.guardrails import Verdict, check, named_products
from salon.llm.offline import nothing_fits_answer, safe_answer
from salon.llm.prompt import build_messages, repair_messages, system_rules
from salon.llm.retrieval import CatalogIndex, Ranked
from salon.llm.sensitivity import looks_like_injection
from salon.purposes import SERVICE_REPLY

logger = logging.getLogger(__name__)

__all__ = ["BUTTONS", "REPLY_BUTTONS", "StylingAdvisor", "StylingReply"]

BUTTONS: dict[str, tuple[dict[str, str], ...]] = {
    "en": ({"title": "Yes, please", "payload": "/affirm"}, {"title": "No, thank you", "payload": "/deny"}),
    "fr": ({"title": "Oui, volontiers", "payload": "/affirm"}, {"title": "Non, merci", "payload": "/deny"}),
    "it": ({"title": "Sì, grazie", "payload": "/affirm"}, {"title": "No, grazie", "payload": "/deny"}),
}
"""The yes/no buttons under an answer, by language."""
REPLY_BUTTONS = BUTTONS["en"]


@dataclass(frozen=True, slots=True)
class StylingReply:
    """What the turn produced.

    ``mode``: ``llm`` (a model's checked draft), ``offline`` (the offline responder, also
    after a model failure), ``handoff`` (a person must answer: ``handoff`` names why),
    ``nothing_fits`` (no piece respects what the client said: the answer says so and
    offers her advisor) or ``vague`` (nothing in the catalog matched: ask what the
    occasion is).
    ``verdict``: ``pass``, ``repaired``, ``replaced`` (drafts failed the guardrails),
    ``unavailable`` / ``timeout`` (the model failed), ``offline`` (no model configured),
    ``no_consent``, ``injection``, ``handoff``, ``nothing_fits`` or ``vague``.
    ``product_ids``: the pieces the answer suggests.
    ``language``: the language the turn was held in (en, fr, it).
    """

    mode: str
    verdict: str
    text: str | None = None
    product_ids: tuple[str, ...] = ()
    product_names: tuple[str, ...] = ()
    """The suggested pieces' names, in the order of ``product_ids``."""
    handoff: str | None = None
    problems: tuple[str, ...] = ()
    language: str = "en"

    def response(self) -> dict[str, Any]:
        """The bot message for the output channel (text, yes/no buttons in the turn's
        language, purpose).
        """
        if self.text is None:
            raise ValueError(f"a {self.mode} reply has no text of its own")
        return {"text": self.text, "buttons": [dict(b) for b in BUTTONS[supported(self.language)]],
                "metadata": {"purpose": SERVICE_REPLY}}


@dataclass
class _Trace:
    drafts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)


class StylingAdvisor:
    """The styling fallback: answers one styling turn as the module's docstring describes."""

    def __init__(self, engine: AsyncEngine, settings: LlmSettings, *, clock: Clock,
                 audit: LlmAudit, llm: LlmClient | None = None, salt: bytes | None = None) -> None:
        """``salt``: the privacy salt the audit keys unknown senders with (by default the
        installation's, ``SALON_PRIVACY_SALT`` or ``var/privacy.salt``, as the GDPR erasure
        reads it).
        """
        if llm is None and settings.enabled:
            llm = LlmClient(settings)
        self._salt = salt
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.audit = audit
        self.llm = llm
        self._index: CatalogIndex | None = None
        self._cities: dict[str, str] = {}
        self._ready = asyncio.Lock()

    async def initialize(self) -> None:
        async with self._ready:
            if self._index is not None:
                return
            catalog = SqlCatalog(self.engine)
            products = await catalog.all_products()
            self._cities = await catalog.boutique_names()
            self._index = CatalogIndex(products)
            await self.audit.initialize()
            await self.audit.purge()

    async def close(self) -> None:
        if self.llm is not None:
            await self.llm.close()
        await self.audit.close()

    @property
    def index(self) -> CatalogIndex:
        if self._index is None:
            raise RuntimeError("StylingAdvisor.initialize() has not run")
        return self._index

    # ------------------------------------------------------------------ the turn
    async def answer(self, text: str, *, wa_id: str | None, user_id: str | None,
                     language: str | None = None) -> StylingReply:
        """One styling turn. ``language``: the conversation's (en, fr or it); without it,
        the client record's, else English.
        """
        await self.initialize()
        # An obvious injection attempt is answered offline, whatever else it claims (the
        # NLU's screen has already handed over what a person must answer).
        reason = None if looks_like_injection(text) else person_needed(text)
        client = await load_client_context(self.engine, wa_id=wa_id, user_id=user_id)
        lang = supported(language or client.language)
        audit_id = client.client_id or await self._sender_key(wa_id, user_id)
        if reason is not None:
            await self.audit.record(AuditEntry(audit_id, "handoff", "none", "handoff",
                                               problems=[reason]))
            return StylingReply("handoff", "handoff", handoff=reason, language=lang)
        fit = Fit.of(parse_constraints(text, lang), client, self.index.products)
        ranked = self.index.rank_fitting(fit, 5)
        retrieved = [r.product for r in ranked]
        ids = [p.id for p in retrieved]
        if not ranked:
            return await self._nothing_ranked(fit, audit_id, lang)

        skip = self._why_not_model(client, text)
        if skip is not None:
            started = time.perf_counter()
            answer, named = safe_answer(ranked, client, self._cities, lang, fit.currency)
            await self.audit.record(AuditEntry(audit_id, "offline", "offline", skip, response=answer,
                                               retrieved_ids=ids, latency_ms=_ms(started)))
            return StylingReply("offline", skip, answer, tuple(named), language=lang,
                                product_names=_names(named, retrieved))
        return await self._with_model(text, client, ranked, retrieved, audit_id, lang, fit)

    async def _nothing_ranked(self, fit: Fit, audit_id: str | None, language: str) -> StylingReply:
        """No piece to suggest: a vague message gets the question about the occasion; one
        whose constraints nothing respects gets the plain answer and the advisor.
        """
        query = fit.constraints.query
        relevant = [r.product for r in self.index.rank(query, 10)]
        if not fit.constraints.restricts and not relevant:
            await self.audit.record(AuditEntry(audit_id, "offline", "offline", "vague", retrieved_ids=[]))
            return StylingReply("vague", "vague", language=language)
        owned = any(fit.reasons(p) == ("owned",) for p in relevant)
        answer = nothing_fits_answer(fit, language, of_kind=self.index.knows_words(query), owned=owned)
        await self.audit.record(AuditEntry(audit_id, "offline", "offline", "nothing_fits", response=answer,
                                           retrieved_ids=[]))
        return StylingReply("nothing_fits", "nothing_fits", answer, (), language=language)

    async def _sender_key(self, wa_id: str | None, user_id: str | None) -> str | None:
        """The audit's key for someone the book does not know (:func:`salon.llm.audit.sender_key`)."""
        if not wa_id and not user_id:
            return None
        if self._salt is None:
            from salon.config import load_settings
            from salon.privacy.salt import privacy_salt

            # Read (or created, once) off the event loop: a small file.
            self._salt = await asyncio.to_thread(privacy_salt, load_settings())
        return sender_key(self._salt, wa_id=wa_id, user_id=user_id)

    def _why_not_model(self, client: ClientContext, text: str) -> str | None:
        if self.llm is None:
            return "offline"
        if not client.llm_consent:
            return "no_consent"
        if looks_like_injection(text):
            return "injection"
        return None

    async def _with_model(self, text: str, client: ClientContext, ranked: Sequence[Ranked],
                          retrieved: list[ProductFacts], audit_id: str | None, language: str,
                          fit: Fit) -> StylingReply:
        assert self.llm is not None
        trace = _Trace(messages=build_messages(mask(text) or "", retrieved, client, self._cities, language, fit))
        started = time.perf_counter()
        try:
            final, verdict = await asyncio.wait_for(self._draft(trace, client, retrieved, language, fit),
                                                    timeout=self.settings.deadline_seconds)
        except asyncio.TimeoutError:
            final, verdict = None, "timeout"
            trace.problems.append(f"no answer within {self.settings.deadline_seconds:g} s")
        except LlmUnavailable as exc:
            final, verdict = None, "unavailable"
            trace.attempts = max(trace.attempts, exc.attempts)
            trace.problems.append(exc.reason)
        if final is None:
            answer, named = safe_answer(ranked, client, self._cities, language, fit.currency)
            mode = "offline"
        else:
            answer, named, mode = final, named_products(final, retrieved), "llm"
        await self.audit.record(AuditEntry(
            audit_id, "llm", trace.model or str(self.settings.model), verdict,
            prompt=trace.messages, response="\n---\n".join(trace.drafts) or None,
            retrieved_ids=[p.id for p in retrieved], problems=trace.problems,
            latency_ms=_ms(started), attempts=trace.attempts,
            prompt_tokens=trace.prompt_tokens, completion_tokens=trace.completion_tokens,
        ))
        if final is None:
            logger.info("styling answer from the offline responder (%s): %s", verdict, trace.problems)
        return StylingReply(mode, verdict, answer, tuple(named), problems=tuple(trace.problems),
                            language=language, product_names=_names(named, retrieved))

    async def _draft(self, trace: _Trace, client: ClientContext,
                     retrieved: list[ProductFacts], language: str, fit: Fit) -> tuple[str | None, str]:
        assert self.llm is not None
        messages = trace.messages
        for round_ in ("pass", "repaired"):
            completion = await self.llm.complete(messages)
            trace.attempts += completion.attempts
            trace.prompt_tokens += completion.prompt_tokens
            trace.completion_tokens += completion.completion_tokens
            trace.model = completion.model
            trace.drafts.append(completion.text)
            verdict: Verdict = check(completion.text, retrieved, self.index.products, self._cities,
                                     client, system_rules(language), fit)
            if verdict.ok:
                return completion.text, round_
            trace.problems.extend(verdict.details())
            messages = repair_messages(trace.messages, completion.text, verdict.details(), language)
        return None, "replaced"


def _ms(started: float) -> int:
    return int(round((time.perf_counter() - started) * 1000))


def _names(ids: Sequence[str], pieces: Sequence[ProductFacts]) -> tuple[str, ...]:
    """The names of the pieces ``ids`` names, in that order."""
    by_id = {piece.id: piece.name for piece in pieces}
    return tuple(by_id[i] for i in ids if i in by_id)
