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
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import yaml
from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, or_, select, update

from salon.clock import Clock, from_unix, from_us, require_aware, to_us
from salon.config import PROJECT_ROOT
from salon.storage.db import SqlTables, insert_on_conflict
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.errors import PaginationCursorError, from_graph_error
from salon.whatsapp.versions import DEFAULT_API_VERSION

__all__ = [
    "APPROVED",
    "STATE_TTL",
    "TemplateStates",
    "keep_in_sync",
    "CATEGORIES",
    "PURPOSE_CATEGORY",
    "Button",
    "Component",
    "FetchPage",
    "GraphTemplatePageFetcher",
    "LifecycleChange",
    "NoTemplate",
    "NoTemplateReason",
    "ParamProblem",
    "SyncReport",
    "Template",
    "TemplateChoice",
    "TemplateDefinitionError",
    "TemplateRegistry",
    "check_params",
    "language_chain",
    "normalise_language",
    "sanitize_text_param",
]

logger = logging.getLogger(__name__)

UTC: Final = timezone.utc
STATE_TTL: Final = timedelta(seconds=5)
"""How old a registry's copy of the shared template state may be before a send reads it
again."""
SYNC_EVERY: Final = timedelta(minutes=15)
"""How often a long-running process reconciles its templates with the Graph API."""
MARKETING: Final = "MARKETING"
UTILITY: Final = "UTILITY"
AUTHENTICATION: Final = "AUTHENTICATION"
CATEGORIES: Final = frozenset({MARKETING, UTILITY, AUTHENTICATION})
APPROVED: Final = "APPROVED"
QUALITY_RANK: Final[dict[str, int]] = {"GREEN": 0, "YELLOW": 1, "UNKNOWN": 2, "RED": 3}

#: Our purpose tags and the template category each one calls for.
PURPOSE_CATEGORY: Final[dict[str, str]] = {
    "reengage_update": UTILITY,
    "reengage_marketing": MARKETING,
    "order_update": UTILITY,
    "order_shipped": UTILITY,
    "order_ready": UTILITY,
    "appointment_reminder": UTILITY,
    "appointment_confirmation": UTILITY,
    "restock_alert": UTILITY,
    "aftercare_update": UTILITY,
    "advisor_followup": UTILITY,
    "event_invitation": MARKETING,
    "new_collection": MARKETING,
}

# Component limits (platform reference §2.1, §2.4).
MAX_BODY: Final = 1024
MAX_HEADER: Final = 60
MAX_FOOTER: Final = 60
MAX_BUTTON_TEXT: Final = 25
MAX_BUTTONS: Final = 10
MAX_NAME: Final = 512
MAX_PAYLOAD: Final = 256

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_NAMED = re.compile(r"^[a-z][a-z0-9_]*$")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]+$")
_FORBIDDEN_WS = re.compile(r"[\n\r\t]")
_SPACES = re.compile(r" {5,}")
_BREAKS = re.compile(r"[ ]*[\n\r\t][\s]*")
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,4}))?$")


class TemplateDefinitionError(ValueError):
    """A template definition (YAML or Graph) breaks Meta's rules or ours."""


# --------------------------------------------------------------------------- languages


def normalise_language(code: str) -> str:
    """``fr-FR`` / ``fr_fr`` → ``fr_FR``; ``FR`` → ``fr``. Unparseable codes are returned
    stripped, unchanged."""
    text = code.strip()
    match = _LANGUAGE.match(text)
    if not match:
        return text
    base, region = match.group(1).lower(), match.group(2)
    if region is None:
        return base
    region = region.upper() if len(region) == 2 else region.capitalize()
    return f"{base}_{region}"


def language_chain(
    language: str | None, default: str = "en", available: Iterable[str] = ()
) -> list[str]:
    """The fallback chain for ``language``: the exact code, its base language, the other
    registered variants of that base, then the default language and its variants.

    ``language_chain("fr_FR", "en", ["en", "en_GB", "fr"])`` → ``["fr_FR", "fr", "en",
    "en_GB"]``.
    """
    avail = sorted({normalise_language(code) for code in available})
    chain: list[str] = []

    def add(code: str) -> None:
        if code not in chain:
            chain.append(code)

    for wanted in ([normalise_language(language)] if language else []) + [
        normalise_language(default)
    ]:
        add(wanted)
        base = wanted.split("_", 1)[0]
        add(base)
        for code in avail:
            if code.split("_", 1)[0] == base:
                add(code)
    return chain


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Button:
    """A template button: QUICK_REPLY, URL or PHONE_NUMBER."""

    type: str
    text: str
    payload: str | None = None
    payload_param: str | None = None
    url: str | None = None
    url_param: str | None = None
    phone_number: str | None = None


@dataclass(frozen=True)
class Component:
    """HEADER / BODY / FOOTER / BUTTONS. ``params`` are the sender-side names of the
    placeholders in order of appearance (for named templates: the placeholder names)."""

    type: str
    text: str | None = None
    format: str = "TEXT"
    params: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Template:
    """One template in one language."""

    name: str
    language: str
    category: str
    status: str
    quality: str = "UNKNOWN"
    parameter_format: str = "named"
    components: tuple[Component, ...] = ()
    purposes: frozenset[str] = frozenset()
    template_id: str | None = None
    priority: int = 0
    rejected_reason: str | None = None
    pending_category: str | None = None
    pending_category_at: datetime | None = None
    remote_mismatch: bool = False
    source: str = "yaml"

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.language)

    def component(self, kind: str) -> Component | None:
        for comp in self.components:
            if comp.type == kind:
                return comp
        return None

    @cached_property
    def required_params(self) -> tuple[str, ...]:
        """Parameter names the sender must provide (header, body, URL buttons)."""
        names: list[str] = []
        for comp in self.components:
            if comp.type in ("HEADER", "BODY"):
                for name in comp.params:
                    if name not in names:
                        names.append(name)
            for button in comp.buttons:
                if button.url_param and button.url_param not in names:
                    names.append(button.url_param)
        return tuple(names)

    @cached_property
    def optional_params(self) -> tuple[str, ...]:
        return tuple(
            button.payload_param
            for comp in self.components
            for button in comp.buttons
            if button.payload_param
        )

    def effective_category(self, now: datetime | None = None) -> str:
        """The category, taking an announced change into account once it is due."""
        if (
            self.pending_category is not None
            and self.pending_category_at is not None
            and now is not None
            and now >= self.pending_category_at
        ):
            return self.pending_category
        return self.category

    @property
    def selectable(self) -> bool:
        return self.status == APPROVED and not self.remote_mismatch and bool(self.components)


def _placeholders(text: str | None) -> list[str]:
    return _PLACEHOLDER.findall(text or "")


def _build_component(
    raw: Mapping[str, Any], parameter_format: str, where: str
) -> Component:
    kind = str(raw.get("type", "")).upper()
    if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
        raise TemplateDefinitionError(f"{where}: unknown component type {raw.get('type')!r}")
    text = raw.get("text")
    fmt = str(raw.get("format", "TEXT")).upper()
    found = _placeholders(text)
    params: tuple[str, ...]
    if kind in ("HEADER", "BODY") and fmt == "TEXT":
        if parameter_format == "named":
            for name in found:
                if not _NAMED.match(name):
                    raise TemplateDefinitionError(f"{where}: bad named parameter {name!r}")
            declared = raw.get("params")
            params = tuple(dict.fromkeys(found))
            if declared is not None and tuple(declared) != params:
                raise TemplateDefinitionError(
                    f"{where}: params {declared!r} differ from placeholders {params!r}"
                )
        else:
            expected = [str(i) for i in range(1, len(found) + 1)]
            if found != expected:
                raise TemplateDefinitionError(
                    f"{where}: positional placeholders must be {{{{1}}}}…{{{{n}}}} in order, got {found}"
                )
            declared = raw.get("params")
            if declared is None:
                params = tuple(found)
            else:
                params = tuple(str(p) for p in declared)
                if len(params) != len(found):
                    raise TemplateDefinitionError(
                        f"{where}: {len(found)} placeholders but params {list(params)}"
                    )
    elif kind == "HEADER":
        # media header: the sender provides the media id or link under this name
        params = (f"header_{fmt.lower()}",)
    else:
        if found:
            raise TemplateDefinitionError(f"{where}: {kind} cannot have parameters")
        params = ()
    buttons: list[Button] = []
    if kind == "BUTTONS":
        for index, item in enumerate(raw.get("buttons") or []):
            btype = str(item.get("type", "")).upper()
            url = item.get("url")
            url_param = item.get("url_param")
            url_placeholders = _placeholders(url)
            if btype == "URL" and url_placeholders and not url_param:
                first = url_placeholders[0]
                url_param = f"button_{index}_url" if first.isdigit() else first
            buttons.append(
                Button(
                    type=btype,
                    text=str(item.get("text", "")),
                    payload=item.get("payload"),
                    payload_param=item.get("payload_param"),
                    url=url,
                    url_param=url_param if btype == "URL" and url_placeholders else None,
                    phone_number=item.get("phone_number"),
                )
            )
    return Component(type=kind, text=text, format=fmt, params=params, buttons=tuple(buttons))


def validate_definition(template: Template) -> None:
    """Raise :class:`TemplateDefinitionError` when a definition breaks Meta's limits."""
    where = f"template {template.name}/{template.language}"
    if not _TEMPLATE_NAME.match(template.name) or len(template.name) > MAX_NAME:
        raise TemplateDefinitionError(f"{where}: name must be lowercase a-z, 0-9, _")
    if template.category not in CATEGORIES:
        raise TemplateDefinitionError(f"{where}: unknown category {template.category!r}")
    if template.parameter_format not in ("named", "positional"):
        raise TemplateDefinitionError(f"{where}: parameter_format must be named/positional")
    for purpose in template.purposes:
        if purpose not in PURPOSE_CATEGORY:
            raise TemplateDefinitionError(f"{where}: unknown purpose {purpose!r}")
    kinds = [comp.type for comp in template.components]
    if template.source == "yaml" and kinds.count("BODY") != 1:
        raise TemplateDefinitionError(f"{where}: exactly one BODY component is required")
    for comp in template.components:
        if comp.type == "BODY" and len(comp.text or "") > MAX_BODY:
            raise TemplateDefinitionError(f"{where}: body longer than {MAX_BODY}")
        if comp.type == "FOOTER" and len(comp.text or "") > MAX_FOOTER:
            raise TemplateDefinitionError(f"{where}: footer longer than {MAX_FOOTER}")
        if comp.type == "HEADER" and comp.format == "TEXT" and len(comp.text or "") > MAX_HEADER:
            raise TemplateDefinitionError(f"{where}: header longer than {MAX_HEADER}")
        if len(comp.buttons) > MAX_BUTTONS:
            raise TemplateDefinitionError(f"{where}: more than {MAX_BUTTONS} buttons")
        for button in comp.buttons:
            if not button.text or len(button.text) > MAX_BUTTON_TEXT:
                raise TemplateDefinitionError(
                    f"{where}: button label {button.text!r} must be 1–{MAX_BUTTON_TEXT} chars"
                )
            if button.type not in ("QUICK_REPLY", "URL", "PHONE_NUMBER"):
                raise TemplateDefinitionError(f"{where}: unsupported button {button.type!r}")


# --------------------------------------------------------------------------- params


@dataclass(frozen=True)
class ParamProblem:
    """Why a parameter (or the rendered template) cannot be sent."""

    param: str
    problem: str  # missing | empty | newline_or_tab | too_many_spaces | too_long | not_text
    detail: str = ""


def sanitize_text_param(value: str) -> str:
    """Make a text parameter sendable: a newline or tab (with the blanks around it)
    becomes one space, runs of more than four spaces collapse to one, and the ends are
    stripped."""
    text = _BREAKS.sub(" ", value)
    text = _SPACES.sub(" ", text)
    return text.strip()


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def _render(text: str, params: Sequence[str], values: Mapping[str, str], positional: bool) -> str:
    if positional:
        mapping = {str(i + 1): values[name] for i, name in enumerate(params)}
    else:
        mapping = {name: values[name] for name in params}
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(1), m.group(0)), text)


def check_params(
    template: Template,
    params: Mapping[str, Any],
    *,
    sanitize: bool = False,
    strict: bool = False,
) -> tuple[list[ParamProblem], dict[str, str], dict[str, str]]:
    """Check ``params`` against ``template`` before any send.

    Returns ``(problems, values, rendered)``: the problems (empty when sendable), the
    (sanitised) text values used, and the rendered header/body/footer texts. Checks: every
    required name present, text values non-empty, no newline/tab, no more than four
    consecutive spaces, header ≤ 60 and body ≤ 1,024 characters after substitution, quick
    reply payloads ≤ 256. With ``strict=True`` names the template does not use are
    reported too (``unexpected``).
    """
    problems: list[ParamProblem] = []
    values: dict[str, str] = {}
    used = set(template.required_params) | set(template.optional_params)
    for name in template.required_params:
        if name not in params or params[name] is None:
            problems.append(ParamProblem(name, "missing"))
            continue
        raw = params[name]
        if name.startswith("header_") and name != "header_text":
            # media header: id or link, no text rules
            text = _as_text(raw)
            if not text:
                problems.append(ParamProblem(name, "empty"))
            else:
                values[name] = text
            continue
        text = _as_text(raw)
        if text is None:
            problems.append(ParamProblem(name, "not_text", type(raw).__name__))
            continue
        if sanitize:
            text = sanitize_text_param(text)
        if not text.strip():
            problems.append(ParamProblem(name, "empty"))
        elif _FORBIDDEN_WS.search(text):
            problems.append(ParamProblem(name, "newline_or_tab"))
        elif _SPACES.search(text):
            problems.append(ParamProblem(name, "too_many_spaces"))
        values[name] = text
    for name in template.optional_params:
        if name in params and params[name] is not None:
            text = _as_text(params[name])
            if text is None:
                problems.append(ParamProblem(name, "not_text", type(params[name]).__name__))
                continue
            if sanitize:
                text = sanitize_text_param(text)
            if not text or len(text) > MAX_PAYLOAD:
                problems.append(ParamProblem(name, "too_long" if text else "empty"))
            values[name] = text
    if strict:
        for name in params:
            if name not in used:
                problems.append(ParamProblem(name, "unexpected"))
    rendered: dict[str, str] = {}
    if all(name in values for name in template.required_params):
        positional = template.parameter_format == "positional"
        for comp in template.components:
            if comp.text is None or comp.format != "TEXT":
                continue
            text = _render(comp.text, comp.params, values, positional)
            rendered[comp.type.lower()] = text
            limit = {"HEADER": MAX_HEADER, "BODY": MAX_BODY, "FOOTER": MAX_FOOTER}.get(comp.type)
            if limit is not None and len(text) > limit:
                problems.append(
                    ParamProblem(comp.type.lower(), "too_long", f"{len(text)} > {limit}")
                )
    return problems, values, rendered


def _text_parameter(name: str, value: str, named: bool) -> dict[str, Any]:
    if named:
        return {"type": "text", "parameter_name": name, "text": value}
    return {"type": "text", "text": value}


def build_template_payload(template: Template, values: Mapping[str, str]) -> dict[str, Any]:
    """The Cloud API ``template`` object (§2.4) for already-checked ``values``."""
    named = template.parameter_format == "named"
    components: list[dict[str, Any]] = []
    for comp in template.components:
        if comp.type == "HEADER" and comp.params:
            if comp.format == "TEXT":
                parameters = [_text_parameter(n, values[n], named) for n in comp.params]
            else:
                media = values[comp.params[0]]
                kind = comp.format.lower()
                ref = {"link": media} if media.startswith(("http://", "https://")) else {"id": media}
                parameters = [{"type": kind, kind: ref}]
            components.append({"type": "header", "parameters": parameters})
        elif comp.type == "BODY" and comp.params:
            components.append(
                {
                    "type": "body",
                    "parameters": [_text_parameter(n, values[n], named) for n in comp.params],
                }
            )
        elif comp.type == "BUTTONS":
            for index, button in enumerate(comp.buttons):
                if button.type == "QUICK_REPLY":
                    payload = (
                        values.get(button.payload_param) if button.payload_param else None
                    ) or button.payload
                    if payload:
                        components.append(
                            {
                                "type": "button",
                                "sub_type": "quick_reply",
                                "index": index,
                                "parameters": [{"type": "payload", "payload": payload}],
                            }
                        )
                elif button.type == "URL" and button.url_param:
                    components.append(
                        {
                            "type": "button",
                            "sub_type": "url",
                            "index": index,
                            "parameters": [{"type": "text", "text": values[button.url_param]}],
                        }
                    )
    payload: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        payload["components"] = components
    return payload


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
    """The chosen template and its Cloud API ``template`` object."""

    template: Template
    payload: dict[str, Any]
    rendered: dict[str, str]
    ok: bool = field(default=True, init=False)

    @property
    def name(self) -> str:
        return self.template.name

    @property
    def language(self) -> str:
        return self.template.language

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


# --------------------------------------------------------------------------- lifecycle


@dataclass(frozen=True)
class LifecycleChange:
    """One change applied (or ignored) from a template webhook or a sync."""

    field: str  # status | quality | category | pending_category | added
    name: str
    language: str
    old: str | None
    new: str | None
    applied: bool = True
    note: str = ""


@dataclass
class SyncReport:
    """What :meth:`TemplateRegistry.sync` found."""

    pages: int = 0
    seen: int = 0
    changes: list[LifecycleChange] = field(default_factory=list)
    added: list[tuple[str, str]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    mismatched: list[tuple[str, str]] = field(default_factory=list)
    restarted: bool = False


FetchPage = Callable[[str | None], Awaitable[Mapping[str, Any]]]
"""``await fetch_page(after_cursor)`` → one page of ``GET /{waba_id}/message_templates``."""


def _param_shape(template: Template) -> tuple[tuple[str, int], ...]:
    shape = []
    for comp in template.components:
        if comp.type in ("HEADER", "BODY"):
            shape.append((comp.type, len(comp.params)))
        if comp.type == "BUTTONS":
            shape.append(("BUTTONS", len(comp.buttons)))
    return tuple(shape)


def template_from_graph(item: Mapping[str, Any], purposes: Iterable[str] = ()) -> Template:
    """A :class:`Template` from one ``message_templates`` list item."""
    fmt = str(item.get("parameter_format") or "positional").lower()
    name = str(item.get("name", ""))
    language = normalise_language(str(item.get("language", "")))
    components = tuple(
        _build_component(_graph_component(raw), fmt, f"graph {name}/{language}")
        for raw in item.get("components") or []
        if isinstance(raw, Mapping)
    )
    quality = item.get("quality_score")
    score = quality.get("score") if isinstance(quality, Mapping) else None
    return Template(
        name=name,
        language=language,
        category=str(item.get("category", "")).upper(),
        status=str(item.get("status", "")).upper(),
        quality=str(score or "UNKNOWN").upper(),
        parameter_format=fmt,
        components=components,
        purposes=frozenset(purposes),
        template_id=str(item["id"]) if item.get("id") is not None else None,
        source="graph",
    )


def _graph_component(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    if str(raw.get("type", "")).upper() == "BUTTONS":
        out["buttons"] = [
            {
                "type": b.get("type"),
                "text": b.get("text"),
                "url": b.get("url"),
                "phone_number": b.get("phone_number"),
            }
            for b in raw.get("buttons") or []
            if isinstance(b, Mapping)
        ]
    return out


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
        self._rank_cache: dict[tuple[str, str | None, bool, int], list[Template]] = {}
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
    ) -> list[Template] | NoTemplate:
        wanted = PURPOSE_CATEGORY[purpose]
        has_pending = self._pending > 0
        cache_key = (purpose, language, marketing_allowed, self._version)
        if not has_pending and cache_key in self._rank_cache:
            return self._rank_cache[cache_key]
        tagged = [t for t in self._templates.values() if purpose in t.purposes]
        if not tagged:
            return NoTemplate(NoTemplateReason.NO_TEMPLATE_FOR_PURPOSE, purpose)
        chain = language_chain(language, self.default_language, (t.language for t in tagged))
        rank = {code: i for i, code in enumerate(chain)}
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
        if not has_pending:
            self._rank_cache[cache_key] = allowed
        return allowed

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

        Ranking: language fallback chain first (``fr_FR`` → ``fr`` → other ``fr``
        variants → ``en`` …), then a template of the purpose's own category, then quality
        (GREEN > YELLOW > UNKNOWN > RED), then the YAML ``priority``. A MARKETING template
        (including one Meta re-categorised) needs ``marketing_allowed``. The first ranked
        template whose parameters pass :func:`check_params` wins.
        """
        if purpose not in PURPOSE_CATEGORY:
            return NoTemplate(NoTemplateReason.UNKNOWN_PURPOSE, purpose)
        if now is not None:
            require_aware(now, "now")
        ranked = self._ranked(purpose, language, marketing_allowed, now)
        if isinstance(ranked, NoTemplate):
            return ranked
        first_failure: tuple[Template, list[ParamProblem]] | None = None
        for template in ranked:
            problems, values, rendered = check_params(template, params, sanitize=sanitize)
            if not problems:
                return TemplateChoice(template, build_template_payload(template, values), rendered)
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
        return TemplateChoice(template, build_template_payload(template, values), rendered)

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
        no purposes, no components) so that their status can still be answered."""
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
        ignored."""
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
        recent event of the same kind itself."""
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
        (each as of its entry's time), so that every process learns them."""
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
        (disabled): it is not selected again until Meta says otherwise."""
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
        event stamped with the same second (which may have followed the listing) wins too."""
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


# --------------------------------------------------------------------------- shared state

_state_metadata = MetaData()

template_state_table = Table(
    "wa_template_state",
    _state_metadata,
    Column("name", String(512), primary_key=True),
    Column("language", String(16), primary_key=True),
    Column("template_id", String(64)),
    Column("status", String(32)),
    Column("rejected_reason", Text),
    Column("status_us", BigInteger),
    Column("quality", String(16)),
    Column("quality_us", BigInteger),
    Column("category", String(32)),
    Column("pending_category", String(32)),
    Column("pending_category_at_us", BigInteger),
    Column("category_us", BigInteger),
)
_TS = template_state_table.c
_ENSURE_STATE = insert_on_conflict(template_state_table, ["name", "language", "template_id"], ["name", "language"])
_KINDS: Final = ("status", "quality", "category")
_CHANGE_KIND: Final = {"status": "status", "quality": "quality", "category": "category",
                       "pending_category": "category", "added": "status"}


class TemplateStates(SqlTables):
    """``wa_template_state``: each template's status, quality and category as last
    reported, with the time of the event that reported each; every process reads it."""

    metadata = _state_metadata

    async def load(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(select(template_state_table))).all()]

    async def save(self, template: Template, kinds: Iterable[str], at: datetime, *,
                   newer_only: bool = False) -> None:
        """Write ``kinds`` of ``template`` as of ``at``, unless an event at least as
        recent (``newer_only``: as recent or more) is recorded already."""
        at_us = to_us(at)
        key = (_TS.name == template.name, _TS.language == template.language)
        values = {
            "status": {"status": template.status, "rejected_reason": template.rejected_reason},
            "quality": {"quality": template.quality},
            "category": {"category": template.category, "pending_category": template.pending_category,
                         "pending_category_at_us": (to_us(template.pending_category_at)
                                                    if template.pending_category_at else None)},
        }
        async with self.engine.begin() as conn:
            await conn.execute(_ENSURE_STATE, {"name": template.name, "language": template.language,
                                               "template_id": template.template_id})
            for kind in dict.fromkeys(kinds):
                stamp = _TS[f"{kind}_us"]
                older = stamp < at_us if newer_only else stamp <= at_us
                await conn.execute(update(template_state_table).where(*key, or_(stamp.is_(None), older))
                                   .values(**values[kind], **{f"{kind}_us": at_us}))


async def keep_in_sync(registry: TemplateRegistry, fetch_page: FetchPage, stop: asyncio.Event, *,
                       every: timedelta = SYNC_EVERY) -> None:
    """Reconcile ``registry`` with the Graph API now, then every ``every``, until ``stop``
    is set; a failed reconciliation is logged and tried again at the next turn."""
    while not stop.is_set():
        try:
            report = await registry.sync_durably(fetch_page)
            for change in report.changes:
                logger.info("template sync: %s", change)
        except Exception as exc:
            logger.warning("template sync with the Graph API failed (%s); trying again in %s",
                           type(exc).__name__, every)
        try:
            await asyncio.wait_for(stop.wait(), every.total_seconds())
        except asyncio.TimeoutError:
            pass


# --------------------------------------------------------------------------- fetcher


class GraphTemplatePageFetcher:
    """``FetchPage`` over httpx: ``GET {base}/{version}/{waba_id}/message_templates``.

    Works against graph.facebook.com, a BSP with the same API, or the local emulator.
    Non-2xx answers raise the typed :class:`salon.whatsapp.errors.WhatsAppError`.
    """

    FIELDS = "name,language,status,category,id,components,quality_score,parameter_format"

    def __init__(
        self,
        waba_id: str,
        access_token: str,
        *,
        base_url: str = "https://graph.facebook.com",
        api_version: str = DEFAULT_API_VERSION,
        limit: int = 100,
        client: Any = None,
        timeout: float = 10.0,
    ) -> None:
        import httpx

        self.url = f"{base_url.rstrip('/')}/{api_version}/{waba_id}/message_templates"
        self.limit = limit
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._own_client = client is None
        self._client: httpx.AsyncClient = client or httpx.AsyncClient(timeout=timeout)

    async def __call__(self, after: str | None) -> Mapping[str, Any]:
        params: dict[str, str | int] = {"fields": self.FIELDS, "limit": self.limit}
        if after:
            params["after"] = after
        response = await self._client.get(self.url, params=params, headers=self._headers)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400 or (isinstance(body, Mapping) and "error" in body):
            raise from_graph_error(body, http_status=response.status_code)
        if not isinstance(body, Mapping):
            raise from_graph_error(body, http_status=response.status_code)
        return body

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> GraphTemplatePageFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
