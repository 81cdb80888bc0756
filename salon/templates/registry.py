"""The maison's approved WhatsApp templates: registry, selection, parameter checks,
lifecycle (template webhooks) and reconciliation with the Graph API.

A template is identified by ``(name, language)``, as Meta does. The registry is loaded
from ``templates.yml``; status, quality and category then follow what Meta reports
through ``message_template_status_update``, ``message_template_quality_update`` and
``template_category_update`` webhooks and :meth:`TemplateRegistry.sync`. Only
``APPROVED`` templates are ever selected.

Lifecycle state is shared by every process: with a :class:`TemplateStates` store attached
(:meth:`TemplateRegistry.attach`), each status, quality and category change (webhook,
sync, or a send Meta refused with 132015/132016) is written to ``wa_template_state`` with
the time of the event, and every registry reads that table back at most
:data:`STATE_TTL` after its last read (:meth:`TemplateRegistry.refresh`): a template the
channel saw PAUSED is avoided by the outbound worker in another process a few seconds
later, and by every process after a restart. :meth:`TemplateRegistry.sync_durably`
reconciles with the Graph API (at start and then periodically, see :func:`keep_in_sync`).

Selection (:meth:`TemplateRegistry.select`) takes a purpose (our own tag), the client's
language, whether marketing is allowed for this client, and the parameters at hand, and
returns either a :class:`TemplateChoice` (the template and the Cloud API ``template``
object, §2.4 of the platform reference) or a :class:`NoTemplate` with a typed reason.

Language: the translations are tried in the order of
:func:`salon.templates.model.language_fallback` — the client's exact code (``it``), then
the same base language (``en_GB`` → ``en``, ``it_IT`` → ``it``, then that base's other
regional variants), then the file's ``default_language`` — and language comes first in
the ranking. A translation that is not APPROVED is skipped at every step, so a paused
Italian translation falls back to the default language, never to another one; when no
translation in those languages is approved the result is :class:`NoTemplate` with
``NOT_APPROVED``. A :class:`TemplateChoice` says which language was asked for
(``requested_language``), which was used (``language``), at which step
(``language_match``) and whether it fell back (``fell_back``); ``language_log`` puts
them in one mapping for the sender's log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Final

import yaml

from salon.clock import Clock, from_unix, from_us, require_aware
from salon.config import PROJECT_ROOT
from salon.purposes import AUTHENTICATION, MARKETING, PURPOSE_CATEGORY, UTILITY
from salon.templates.lifecycle import (
    _CHANGE_KIND,
    _KINDS,
    STATE_TTL,
    FetchPage,
    LifecycleChange,
    SyncReport,
    TemplateStates,
    _param_shape,
    template_from_graph,
)
from salon.templates.model import (
    QUALITY_RANK,
    LanguageMatch,
    Template,
    TemplateDefinitionError,
    _build_component,
    language_fallback,
    normalise_language,
    validate_definition,
)
from salon.templates.params import (
    ParamProblem,
    build_template_payload,
    check_params,
)
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.errors import PaginationCursorError

__all__ = ["LanguageMatch", "NoTemplate", "NoTemplateReason", "TemplateChoice", "TemplateRegistry"]

logger = logging.getLogger(__name__)

UTC: Final = timezone.utc


# --------------------------------------------------------------------------- selection


class NoTemplateReason(str, Enum):
    """Why no template fits (checked in this order)."""

    UNKNOWN_PURPOSE = "unknown_purpose"
    NO_TEMPLATE_FOR_PURPOSE = "no_template_for_purpose"
    NOT_APPROVED = "not_approved"
    NO_LANGUAGE = "no_language"
    CONSENT_REQUIRED = "marketing_consent_required"
    MISSING_PARAMS = "missing_params"
    INVALID_PARAMS = "invalid_params"
    TOO_LONG = "too_long"


@dataclass(frozen=True)
class NoTemplate:
    """No template can carry this message; ``reason`` says why."""

    reason: NoTemplateReason
    detail: str = ""
    problems: tuple[ParamProblem, ...] = ()
    ok: bool = field(default=False, init=False)


@dataclass(frozen=True)
class TemplateChoice:
    """The chosen template and its Cloud API ``template`` object.

    ``requested_language`` is the client's language as asked for (normalised; ``None``
    when unknown), ``language_match`` the fallback step the chosen translation came from
    (see the module docstring).
    """

    template: Template
    payload: dict[str, Any]
    rendered: dict[str, str]
    requested_language: str | None = None
    language_match: LanguageMatch = LanguageMatch.EXACT
    ok: bool = field(default=True, init=False)

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def language(self) -> str:
        """The language code of the translation chosen (what is sent to Meta)."""
        return self.template.language

    @property
    def fell_back(self) -> bool:
        """Whether the translation is not in the exact language asked for (or none was)."""
        return self.language_match.fell_back

    @property
    def language_log(self) -> dict[str, Any]:
        """The language decision, for the sender's log and send record."""
        return {
            "language": self.language,
            "requested_language": self.requested_language,
            "language_match": self.language_match.value,
            "language_fell_back": self.fell_back,
        }

    @property
    def category(self) -> str:
        return self.template.category

    def message(
        self,
        recipient: Recipient,
        *,
        biz_opaque_callback_data: str | None = None,
    ) -> dict[str, Any]:
        """The full ``POST /{phone-number-id}/messages`` body."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            **recipient.fields(),
            "type": "template",
            "template": self.payload,
        }
        if biz_opaque_callback_data is not None:
            body["biz_opaque_callback_data"] = biz_opaque_callback_data
        return body


def _classify(problems: Sequence[ParamProblem]) -> NoTemplateReason:
    kinds = {p.problem for p in problems}
    if "missing" in kinds:
        return NoTemplateReason.MISSING_PARAMS
    if kinds <= {"too_long"}:
        return NoTemplateReason.TOO_LONG
    return NoTemplateReason.INVALID_PARAMS


# --------------------------------------------------------------------------- registry


class TemplateRegistry:
    """The maison's templates in memory, with selection and lifecycle."""

    def __init__(self, templates: Iterable[Template] = (), *, default_language: str = "en") -> None:
        self.default_language = normalise_language(default_language)
        self._templates: dict[tuple[str, str], Template] = {}
        self._by_id: dict[str, tuple[str, str]] = {}
        self._event_times: dict[tuple[str, str, str], datetime] = {}
        self._store: TemplateStates | None = None
        self._clock: Clock | None = None
        self._ttl = STATE_TTL
        self._read_at: datetime | None = None
        self._reading: asyncio.Lock | None = None
        self._initialized = False
        self._version = 0
        self._rank_cache: dict[
            tuple[str, str | None, bool, int], list[tuple[Template, LanguageMatch]]
        ] = {}
        self._pending = 0
        for template in templates:
            validate_definition(template)
            self._put(template)

    # -- loading
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TemplateRegistry:
        templates: list[Template] = []
        for entry in data.get("templates") or []:
            name = str(entry["name"])
            fmt = str(entry.get("parameter_format", "named")).lower()
            translations = entry.get("translations") or {}
            if not translations:
                raise TemplateDefinitionError(f"template {name}: no translations")
            for language, spec in translations.items():
                lang = normalise_language(str(language))
                where = f"template {name}/{lang}"
                components = tuple(
                    _build_component(raw, fmt, where) for raw in spec.get("components") or []
                )
                templates.append(
                    Template(
                        name=name,
                        language=lang,
                        category=str(spec.get("category", entry.get("category", ""))).upper(),
                        status=str(spec.get("status", entry.get("status", "PENDING"))).upper(),
                        quality=str(spec.get("quality", entry.get("quality", "UNKNOWN"))).upper(),
                        parameter_format=fmt,
                        components=components,
                        purposes=frozenset(entry.get("purposes") or ()),
                        template_id=str(spec["id"]) if spec.get("id") is not None else None,
                        priority=int(entry.get("priority", 0)),
                    )
                )
        return cls(templates, default_language=str(data.get("default_language", "en")))

    @classmethod
    def from_yaml(cls, path: str | Path) -> TemplateRegistry:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        return cls.from_mapping(data)

    @classmethod
    def load_default(cls) -> TemplateRegistry:
        """The project's ``templates.yml``."""
        return cls.from_yaml(PROJECT_ROOT / "templates.yml")

    # -- access
    def _put(self, template: Template) -> None:
        old = self._templates.get(template.key)
        if old is not None and old.template_id and old.template_id != template.template_id:
            self._by_id.pop(old.template_id, None)
        self._templates[template.key] = template
        self._pending = sum(1 for t in self._templates.values() if t.pending_category)
        if template.template_id:
            self._by_id[template.template_id] = template.key
        self._version += 1
        self._rank_cache.clear()

    def get(self, name: str, language: str) -> Template | None:
        return self._templates.get((name, normalise_language(language)))

    def by_id(self, template_id: str | int) -> Template | None:
        key = self._by_id.get(str(template_id))
        return self._templates.get(key) if key else None

    def all(self) -> list[Template]:
        return list(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    @property
    def languages(self) -> set[str]:
        return {t.language for t in self._templates.values()}

    # -- selection
    def _ranked(
        self, purpose: str, language: str | None, marketing_allowed: bool, now: datetime | None
    ) -> list[tuple[Template, LanguageMatch]] | NoTemplate:
        wanted = PURPOSE_CATEGORY[purpose]
        has_pending = self._pending > 0
        cache_key = (purpose, language, marketing_allowed, self._version)
        if not has_pending and cache_key in self._rank_cache:
            return self._rank_cache[cache_key]
        tagged = [t for t in self._templates.values() if purpose in t.purposes]
        if not tagged:
            return NoTemplate(NoTemplateReason.NO_TEMPLATE_FOR_PURPOSE, purpose)
        steps = language_fallback(language, self.default_language, (t.language for t in tagged))
        chain = [code for code, _ in steps]
        rank = {code: i for i, code in enumerate(chain)}
        match = dict(steps)
        in_language = [t for t in tagged if t.language in rank]
        if not in_language:
            return NoTemplate(
                NoTemplateReason.NO_LANGUAGE,
                f"{purpose}: none of {chain} among {sorted({t.language for t in tagged})}",
            )
        approved = [t for t in in_language if t.selectable]
        if not approved:
            statuses = ", ".join(
                sorted(f"{t.name}/{t.language}={t.status}" for t in in_language)
            )
            return NoTemplate(NoTemplateReason.NOT_APPROVED, statuses)
        allowed = []
        for t in approved:
            category = t.effective_category(now)
            if category == AUTHENTICATION:
                continue
            if category == MARKETING and not marketing_allowed:
                continue
            if wanted == MARKETING and category != MARKETING:
                # marketing content may not travel in a utility template
                continue
            allowed.append(t)
        if not allowed:
            return NoTemplate(
                NoTemplateReason.CONSENT_REQUIRED,
                f"{purpose}: only marketing templates fit and marketing is not allowed",
            )
        allowed.sort(
            key=lambda t: (
                rank[t.language],
                0 if t.effective_category(now) == wanted else 1,
                QUALITY_RANK.get(t.quality, 2),
                -t.priority,
                t.name,
            )
        )
        ranked = [(t, match[t.language]) for t in allowed]
        if not has_pending:
            self._rank_cache[cache_key] = ranked
        return ranked

    def select(
        self,
        purpose: str,
        language: str | None,
        params: Mapping[str, Any],
        *,
        marketing_allowed: bool = False,
        now: datetime | None = None,
        sanitize: bool = True,
    ) -> TemplateChoice | NoTemplate:
        """The best APPROVED template for ``purpose`` in the client's language.

        Ranking: the language fallback first (:func:`~salon.templates.model.language_fallback`:
        ``it_IT`` → ``it`` → other ``it`` variants → the default language …), then a
        template of the purpose's own category, then quality (GREEN > YELLOW > UNKNOWN >
        RED), then the YAML ``priority``. A MARKETING template (including one Meta
        re-categorised) needs ``marketing_allowed``. The first ranked template whose
        parameters pass :func:`check_params` wins; the choice says which language it is in
        and whether that is a fallback.
        """
        if purpose not in PURPOSE_CATEGORY:
            return NoTemplate(NoTemplateReason.UNKNOWN_PURPOSE, purpose)
        if now is not None:
            require_aware(now, "now")
        ranked = self._ranked(purpose, language, marketing_allowed, now)
        if isinstance(ranked, NoTemplate):
            return ranked
        return self._first_fitting(ranked, params, language, sanitize)

    @staticmethod
    def _first_fitting(
        ranked: Sequence[tuple[Template, LanguageMatch]],
        params: Mapping[str, Any],
        language: str | None,
        sanitize: bool,
    ) -> TemplateChoice | NoTemplate:
        """The first ranked template whose parameters pass, else the first one's problems."""
        requested = normalise_language(language) if language else None
        first_failure: tuple[Template, list[ParamProblem]] | None = None
        for template, match in ranked:
            problems, values, rendered = check_params(template, params, sanitize=sanitize)
            if not problems:
                return TemplateChoice(template, build_template_payload(template, values), rendered,
                                      requested_language=requested, language_match=match)
            if first_failure is None:
                first_failure = (template, problems)
        assert first_failure is not None
        template, problems = first_failure
        detail = f"{template.name}/{template.language}: " + ", ".join(
            f"{p.param} {p.problem}" for p in problems
        )
        return NoTemplate(_classify(problems), detail, tuple(problems))

    def build(
        self, name: str, language: str, params: Mapping[str, Any], *, sanitize: bool = True
    ) -> TemplateChoice | NoTemplate:
        """Build a specific template (no fallback), with the same checks."""
        template = self.get(name, language)
        if template is None:
            return NoTemplate(NoTemplateReason.NO_TEMPLATE_FOR_PURPOSE, f"{name}/{language}")
        if not template.selectable:
            return NoTemplate(NoTemplateReason.NOT_APPROVED, f"{name}/{language}={template.status}")
        problems, values, rendered = check_params(template, params, sanitize=sanitize)
        if problems:
            return NoTemplate(_classify(problems), f"{name}/{language}", tuple(problems))
        return TemplateChoice(template, build_template_payload(template, values), rendered,
                              requested_language=template.language)

    def build_in_language(
        self, name: str, language: str | None, params: Mapping[str, Any], *, sanitize: bool = True
    ) -> TemplateChoice | NoTemplate:
        """Build template ``name`` in the client's language by the same fallback as
        :meth:`select` (exact code, same base language, default language), skipping
        translations that are not APPROVED; the choice says which language was used.
        """
        translations = {t.language: t for t in self._templates.values() if t.name == name}
        if not translations:
            return NoTemplate(NoTemplateReason.NO_TEMPLATE_FOR_PURPOSE, name)
        steps = language_fallback(language, self.default_language, translations)
        candidates = [(translations[code], match) for code, match in steps if code in translations]
        if not candidates:
            return NoTemplate(
                NoTemplateReason.NO_LANGUAGE,
                f"{name}: none of {[code for code, _ in steps]} among {sorted(translations)}",
            )
        usable = [(t, match) for t, match in candidates if t.selectable]
        if not usable:
            statuses = ", ".join(f"{t.name}/{t.language}={t.status}" for t, _ in candidates)
            return NoTemplate(NoTemplateReason.NOT_APPROVED, statuses)
        return self._first_fitting(usable, params, language, sanitize)

    # -- lifecycle
    def _find(self, value: Mapping[str, Any]) -> Template | None:
        template_id = value.get("message_template_id")
        if template_id is not None:
            found = self.by_id(template_id)
            if found is not None:
                return found
        name = value.get("message_template_name")
        language = value.get("message_template_language")
        if name is None or language is None:
            return None
        return self.get(str(name), str(language))

    def _ensure(self, value: Mapping[str, Any], category: str | None) -> Template | None:
        """The template the event is about; unknown ones are recorded (never selectable:
        no purposes, no components) so that their status can still be answered.
        """
        found = self._find(value)
        if found is not None:
            if found.template_id is None and value.get("message_template_id") is not None:
                found = replace(found, template_id=str(value["message_template_id"]))
                self._put(found)
            return found
        name = value.get("message_template_name")
        language = value.get("message_template_language")
        if name is None or language is None:
            return None
        template = Template(
            name=str(name),
            language=normalise_language(str(language)),
            category=(category or "UTILITY").upper(),
            status="UNKNOWN",
            template_id=(
                str(value["message_template_id"])
                if value.get("message_template_id") is not None
                else None
            ),
            source="webhook",
        )
        self._put(template)
        return template

    def _fresh(self, template: Template, kind: str, at: datetime | None) -> bool:
        """False when an event of this kind newer than ``at`` was already applied."""
        if at is None:
            return True
        key = (template.name, template.language, kind)
        last = self._event_times.get(key)
        if last is not None and at < last:
            return False
        self._event_times[key] = at
        return True

    def apply_status_update(
        self, value: Mapping[str, Any], at: datetime | None = None
    ) -> list[LifecycleChange]:
        """Apply one ``message_template_status_update`` ``value``."""
        event = str(value.get("event", "")).upper() or "UNKNOWN"
        category = value.get("message_template_category")
        template = self._ensure(value, str(category) if category else None)
        if template is None:
            return []
        if not self._fresh(template, "status", at):
            return [
                LifecycleChange("status", template.name, template.language, template.status,
                                event, applied=False, note="older than the last applied event")
            ]
        changes = [LifecycleChange("status", template.name, template.language, template.status, event)]
        reason = value.get("reason")
        updated = replace(
            template,
            status=event,
            rejected_reason=(str(reason) if event == "REJECTED" and reason else None),
        )
        if category and str(category).upper() != template.category:
            changes.append(
                LifecycleChange("category", template.name, template.language,
                                template.category, str(category).upper())
            )
            updated = replace(updated, category=str(category).upper())
        self._put(updated)
        return changes

    def apply_quality_update(
        self, value: Mapping[str, Any], at: datetime | None = None
    ) -> list[LifecycleChange]:
        """Apply one ``message_template_quality_update`` ``value``."""
        template = self._ensure(value, None)
        if template is None:
            return []
        new = str(value.get("new_quality_score", "UNKNOWN")).upper()
        if not self._fresh(template, "quality", at):
            return [LifecycleChange("quality", template.name, template.language, template.quality,
                                    new, applied=False, note="older than the last applied event")]
        change = LifecycleChange("quality", template.name, template.language, template.quality, new)
        self._put(replace(template, quality=new))
        return [change]

    def apply_category_update(
        self, value: Mapping[str, Any], at: datetime | None = None
    ) -> list[LifecycleChange]:
        """Apply one ``template_category_update`` ``value`` (impending or completed)."""
        new_category = str(value.get("new_category", "")).upper() or None
        template = self._ensure(value, new_category)
        if template is None:
            return []
        if not self._fresh(template, "category", at):
            return [LifecycleChange("category", template.name, template.language,
                                    template.category, new_category, applied=False,
                                    note="older than the last applied event")]
        correct = value.get("correct_category")
        if correct:
            # impending: ``new_category`` is the current one, ``correct_category`` applies
            # at ``category_update_timestamp`` (≈ 24 h later)
            when = value.get("category_update_timestamp")
            due = from_unix(when) if when is not None else None
            updated = replace(
                template,
                category=new_category or template.category,
                pending_category=str(correct).upper(),
                pending_category_at=due,
            )
            self._put(updated)
            return [LifecycleChange("pending_category", template.name, template.language,
                                    template.category, str(correct).upper(),
                                    note=f"due {due.isoformat() if due else 'unknown'}")]
        change = LifecycleChange("category", template.name, template.language,
                                 template.category, new_category)
        self._put(replace(template, category=new_category or template.category,
                          pending_category=None, pending_category_at=None))
        return [change]

    def apply_webhook(self, payload: Mapping[str, Any]) -> list[LifecycleChange]:
        """Apply every template lifecycle change in a webhook payload; other fields are
        ignored.
        """
        changes: list[LifecycleChange] = []
        for entry in payload.get("entry") or []:
            if not isinstance(entry, Mapping):
                continue
            at = from_unix(entry["time"]) if entry.get("time") is not None else None
            for change in entry.get("changes") or []:
                if not isinstance(change, Mapping) or not isinstance(change.get("value"), Mapping):
                    continue
                value = change["value"]
                kind = change.get("field")
                if kind == "message_template_status_update":
                    changes += self.apply_status_update(value, at)
                elif kind == "message_template_quality_update":
                    changes += self.apply_quality_update(value, at)
                elif kind == "template_category_update":
                    changes += self.apply_category_update(value, at)
        return changes

    # -- shared state
    def attach(self, store: TemplateStates, clock: Clock, *, ttl: timedelta = STATE_TTL) -> None:
        """Share lifecycle state through ``store`` (see the module docstring)."""
        self._store, self._clock, self._ttl = store, clock, ttl
        self._read_at = None

    @property
    def shared(self) -> bool:
        return self._store is not None

    async def refresh(self, *, force: bool = False) -> None:
        """Read the shared state again if the copy here is older than the TTL."""
        if self._store is None or self._clock is None:
            return
        now = self._clock.now()
        if not force and self._read_at is not None and self._read_at <= now < self._read_at + self._ttl:
            return
        if self._reading is None:
            self._reading = asyncio.Lock()
        async with self._reading:
            if not force and self._read_at is not None and self._read_at <= now < self._read_at + self._ttl:
                return  # read by a concurrent caller meanwhile
            if not self._initialized:
                await self._store.initialize()
                self._initialized = True
            rows = await self._store.load()
            self._overlay(rows)
            self._read_at = now

    def _overlay(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Take the shared state's values, except where this registry applied a more
        recent event of the same kind itself.
        """
        for row in rows:
            template = self.get(str(row["name"]), str(row["language"]))
            if template is None:
                if row["status"] is None:
                    continue
                template = Template(name=str(row["name"]), language=normalise_language(str(row["language"])),
                                    category=str(row["category"] or UTILITY), status=str(row["status"]),
                                    template_id=row["template_id"], source="webhook")
            updated = template
            for kind in _KINDS:
                at = from_us(row[f"{kind}_us"])
                if at is None:
                    continue
                key = (template.name, template.language, kind)
                mine = self._event_times.get(key)
                if mine is not None and mine > at:
                    continue
                self._event_times[key] = at
                if kind == "status":
                    updated = replace(updated, status=str(row["status"]), rejected_reason=row["rejected_reason"])
                elif kind == "quality":
                    updated = replace(updated, quality=str(row["quality"]))
                else:
                    updated = replace(updated, category=str(row["category"]),
                                      pending_category=row["pending_category"],
                                      pending_category_at=from_us(row["pending_category_at_us"]))
            if row["template_id"] and not updated.template_id:
                updated = replace(updated, template_id=str(row["template_id"]))
            if updated != self.get(template.name, template.language):
                self._put(updated)

    async def _persist(self, changes: Iterable[LifecycleChange], at: datetime, *, newer_only: bool = False) -> None:
        if self._store is None:
            return
        if not self._initialized:
            await self._store.initialize()
            self._initialized = True
        kinds: dict[tuple[str, str], list[str]] = {}
        for change in changes:
            if change.applied and change.field in _CHANGE_KIND:
                kinds.setdefault((change.name, change.language), []).append(_CHANGE_KIND[change.field])
        for (name, language), which in kinds.items():
            template = self.get(name, language)
            if template is not None:
                await self._store.save(template, which, at, newer_only=newer_only)

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    async def record_webhook(self, payload: Mapping[str, Any]) -> list[LifecycleChange]:
        """:meth:`apply_webhook`, then the changes it applied written to the shared state
        (each as of its entry's time), so that every process learns them.
        """
        changes: list[LifecycleChange] = []
        for entry in payload.get("entry") or []:
            if not isinstance(entry, Mapping):
                continue
            applied = self.apply_webhook({"entry": [entry]})
            at = from_unix(entry["time"]) if entry.get("time") is not None else self._now()
            await self._persist(applied, at)
            changes += applied
        return changes

    async def mark_unusable(self, name: str, language: str, code: int) -> LifecycleChange | None:
        """Meta refused a send of this template with 132015 (paused) or 132016
        (disabled): it is not selected again until Meta says otherwise.
        """
        template = self.get(name, language)
        if template is None:
            return None
        status = "DISABLED" if code == 132016 else "PAUSED"
        at = self._now()
        change = LifecycleChange("status", name, template.language, template.status, status,
                                 note=f"send refused with {code}")
        self._event_times[(template.name, template.language, "status")] = at
        self._put(replace(template, status=status))
        await self._persist([change], at)
        return change

    async def sync_durably(self, fetch_page: FetchPage, *, max_pages: int = 200) -> SyncReport:
        """:meth:`sync` from the shared state, its changes written back as of the moment
        the listing was asked for (an event the webhooks reported since wins). Meta stamps
        its webhooks to the second: that moment is taken at the start of its second, so an
        event stamped with the same second (which may have followed the listing) wins too.
        """
        started = self._now().replace(microsecond=0)
        await self.refresh(force=True)
        report = await self.sync(fetch_page, max_pages=max_pages)
        await self._persist(report.changes, started, newer_only=True)
        await self.refresh(force=True)
        return report

    # -- reconciliation
    async def sync(self, fetch_page: FetchPage, *, max_pages: int = 200) -> SyncReport:
        """Reconcile with ``GET /{waba_id}/message_templates`` (all pages).

        Remote status/category/quality win. A local template whose placeholders or buttons
        differ from the approved remote one is marked ``remote_mismatch`` (never selected:
        sending it would fail with 132000/132012). Remote templates we do not know are
        added without purposes (never selected). After a complete listing, local templates
        Meta does not have are marked ``MISSING``. An invalid cursor (131059) restarts the
        listing once from the beginning.
        """
        report = SyncReport()
        items: list[Mapping[str, Any]] = []
        after: str | None = None
        seen_cursors: set[str] = set()
        while True:
            if report.pages >= max_pages:
                raise RuntimeError(f"template listing exceeded {max_pages} pages")
            try:
                page = await fetch_page(after)
            except PaginationCursorError:
                if report.restarted or after is None:
                    raise
                report.restarted = True
                items, after, seen_cursors = [], None, set()
                continue
            report.pages += 1
            data = page.get("data") or []
            items.extend(item for item in data if isinstance(item, Mapping))
            paging = page.get("paging") or {}
            cursors = paging.get("cursors") or {}
            nxt = cursors.get("after") if paging.get("next") else None
            if not nxt or nxt in seen_cursors:
                break
            seen_cursors.add(nxt)
            after = nxt
        report.seen = len(items)
        remote_keys: set[tuple[str, str]] = set()
        for item in items:
            remote = template_from_graph(item)
            remote_keys.add(remote.key)
            local = self.get(remote.name, remote.language)
            if local is None:
                self._put(remote)
                report.added.append(remote.key)
                report.changes.append(
                    LifecycleChange("added", remote.name, remote.language, None, remote.status)
                )
                continue
            updated = local
            for attr in ("status", "category", "quality"):
                old, new = getattr(local, attr), getattr(remote, attr)
                if new and old != new:
                    report.changes.append(LifecycleChange(attr, local.name, local.language, old, new))
                    updated = replace(updated, **{attr: new})
            mismatch = bool(remote.components) and _param_shape(remote) != _param_shape(local)
            if mismatch:
                report.mismatched.append(local.key)
            updated = replace(
                updated,
                template_id=remote.template_id or local.template_id,
                remote_mismatch=mismatch,
            )
            if updated != local:
                self._put(updated)
        for key, local in list(self._templates.items()):
            if key not in remote_keys and local.source != "webhook" and local.status != "MISSING":
                report.missing.append(key)
                report.changes.append(
                    LifecycleChange("status", local.name, local.language, local.status, "MISSING")
                )
                self._put(replace(local, status="MISSING"))
        return report
