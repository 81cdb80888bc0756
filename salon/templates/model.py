"""What a WhatsApp template is: its category, language, components and buttons, checked
against Meta's limits when it is defined; and which of its translations a client gets.

Language fallback (:func:`language_fallback`, the one place the rule lives): a client's
language code is normalised (``it-IT`` → ``it_IT``) and the translations are tried in
this order, each step tagged with a :class:`LanguageMatch`:

1. ``EXACT`` — the client's own code (``it``, ``en_GB``);
2. ``BASE`` — the same base language: the bare code (``en_GB`` → ``en``, ``it_IT`` →
   ``it``), then the other registered regional variants of it (``en`` → ``en_GB``);
3. ``DEFAULT`` — the file's ``default_language``, then its registered variants.

No other language is ever tried: an Italian client whose Italian translation is paused
gets the default language, never the French one. A client with no known language starts
at step 3. Which translations are *usable* is not decided here: the registry skips every
translation that is not APPROVED at any step (see :mod:`salon.templates.registry`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any, Final

from salon.purposes import CATEGORIES, PURPOSE_CATEGORY

__all__ = ["APPROVED", "Button", "Component", "LANGUAGE_FALLBACK", "LanguageMatch", "MAX_BODY", "MAX_BUTTONS", "MAX_BUTTON_TEXT", "MAX_FOOTER", "MAX_HEADER", "MAX_NAME", "MAX_PAYLOAD", "QUALITY_RANK", "Template", "TemplateDefinitionError", "language_chain", "language_fallback", "normalise_language", "validate_definition"]


APPROVED: Final = "APPROVED"


QUALITY_RANK: Final[dict[str, int]] = {"GREEN": 0, "YELLOW": 1, "UNKNOWN": 2, "RED": 3}


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


_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,4}))?$")


class TemplateDefinitionError(ValueError):
    """A template definition (YAML or Graph) breaks Meta's rules or ours."""


def normalise_language(code: str) -> str:
    """``fr-FR`` / ``fr_fr`` → ``fr_FR``; ``FR`` → ``fr``. Unparseable codes are returned
    stripped, unchanged.
    """
    text = code.strip()
    match = _LANGUAGE.match(text)
    if not match:
        return text
    base, region = match.group(1).lower(), match.group(2)
    if region is None:
        return base
    region = region.upper() if len(region) == 2 else region.capitalize()
    return f"{base}_{region}"


class LanguageMatch(str, Enum):
    """How a chosen translation's language relates to the client's (the fallback steps)."""

    EXACT = "exact"
    """The client's own language code."""
    BASE = "base"
    """The same base language: ``en_GB`` → ``en``, ``it_IT`` → ``it``, ``en`` → ``en_GB``."""
    DEFAULT = "default"
    """The registry's default language (or one of its variants): the client's language has
    no usable translation, or the client's language is unknown."""

    @property
    def fell_back(self) -> bool:
        """Whether the client got another language code than the one asked for."""
        return self is not LanguageMatch.EXACT


LANGUAGE_FALLBACK: Final[tuple[LanguageMatch, ...]] = (
    LanguageMatch.EXACT,
    LanguageMatch.BASE,
    LanguageMatch.DEFAULT,
)
"""The fallback steps, in the order :func:`language_fallback` tries them."""


def language_fallback(
    language: str | None, default: str = "en", available: Iterable[str] = ()
) -> list[tuple[str, LanguageMatch]]:
    """The language codes to try for a client speaking ``language``, in order, each with
    the :data:`LANGUAGE_FALLBACK` step it belongs to (see the module docstring).

    ``available`` are the codes registered for the template(s) at hand; only they add
    regional variants to the bare codes. ``language_fallback("it_IT", "en", ["en", "fr",
    "it"])`` → ``[("it_IT", EXACT), ("it", BASE), ("en", DEFAULT)]``. A code reached by
    two steps keeps the first (``language_fallback("en", "en")`` → ``[("en", EXACT)]``).
    """
    avail = sorted({normalise_language(code) for code in available})
    steps: list[tuple[str, LanguageMatch]] = []
    seen: set[str] = set()

    def add(code: str, match: LanguageMatch) -> None:
        if code and code not in seen:
            seen.add(code)
            steps.append((code, match))

    def add_language(code: str, first: LanguageMatch, rest: LanguageMatch) -> None:
        add(code, first)
        base = code.split("_", 1)[0]
        add(base, rest)
        for other in avail:
            if other.split("_", 1)[0] == base:
                add(other, rest)

    wanted = normalise_language(language) if language else ""
    if wanted:
        add_language(wanted, LanguageMatch.EXACT, LanguageMatch.BASE)
    add_language(normalise_language(default), LanguageMatch.DEFAULT, LanguageMatch.DEFAULT)
    return steps


def language_chain(
    language: str | None, default: str = "en", available: Iterable[str] = ()
) -> list[str]:
    """The codes of :func:`language_fallback`, in order: the exact code, its base language
    and that base's other registered variants, then the default language and its variants.

    ``language_chain("fr_FR", "en", ["en", "en_GB", "fr"])`` → ``["fr_FR", "fr", "en",
    "en_GB"]``.
    """
    return [code for code, _ in language_fallback(language, default, available)]


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
    placeholders in order of appearance (for named templates: the placeholder names).
    """

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
