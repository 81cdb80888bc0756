"""The emulated WABA's message templates: lookup by (name, language) as Meta does,
status changes, creation, and the Graph ``message_templates`` representation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from salon.emulator.graph_errors import GraphError
from salon.emulator.ids import new_numeric_id
from salon.purposes import CATEGORIES
from salon.templates.lifecycle import template_from_graph
from salon.templates.model import Template, TemplateDefinitionError
from salon.templates.registry import TemplateRegistry

__all__ = ["TEMPLATE_STATUSES", "TemplateStore", "graph_template"]

#: Template status values (platform reference §2.2).
TEMPLATE_STATUSES: Final = frozenset(
    {
        "APPROVED",
        "PENDING",
        "REJECTED",
        "PAUSED",
        "DISABLED",
        "IN_APPEAL",
        "FLAGGED",
        "REINSTATED",
        "LIMIT_EXCEEDED",
        "LOCKED",
        "ARCHIVED",
        "DELETED",
        "PENDING_DELETION",
    }
)
_NAME: Final = re.compile(r"^[a-z0-9_]{1,512}$")
_LANGUAGE: Final = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z0-9]{2,4})?$")
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def _load(path: Path | None) -> list[Template]:
    registry = TemplateRegistry.from_yaml(path) if path else TemplateRegistry.load_default()
    return registry.all()


class TemplateStore:
    """Templates keyed by ``(name, language)``; the language must match exactly."""

    def __init__(self, templates: Iterable[Template] = (), *, source: Path | None = None) -> None:
        self._source = source
        self._initial = [self._with_id(t) for t in templates]
        self._templates: dict[tuple[str, str], Template] = {}
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> TemplateStore:
        """The given YAML file, or the project's ``templates.yml``."""
        source = Path(path) if path else None
        return cls(_load(source), source=source)

    @staticmethod
    def _with_id(template: Template) -> Template:
        return template if template.template_id else replace(template, template_id=new_numeric_id())

    def reset(self) -> None:
        """Back to the state the store was created with."""
        self._templates = {t.key: t for t in self._initial}

    def get(self, name: str, language: str) -> Template | None:
        return self._templates.get((name, language))

    def by_name(self, name: str) -> list[Template]:
        return [t for t in self._templates.values() if t.name == name]

    def all(self) -> list[Template]:
        return sorted(self._templates.values(), key=lambda t: (t.name, t.language))

    def set_status(self, name: str, language: str, status: str) -> Template:
        template = self._templates[(name, language)]
        updated = replace(template, status=status)
        self._templates[updated.key] = updated
        return updated

    def create(self, body: Mapping[str, Any]) -> Template:
        """``POST /{waba_id}/message_templates``: validate and store as PENDING."""
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise GraphError(
                100,
                "Param name must be 1-512 characters of lowercase letters, digits and underscores.",
            )
        category = str(body.get("category") or "").upper()
        if category not in CATEGORIES:
            raise GraphError(
                100,
                f"Param category must be one of {sorted(CATEGORIES)}, got {body.get('category')!r}.",
            )
        language = body.get("language")
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            raise GraphError(
                100, f"Param language must be a language code such as en_US, got {language!r}."
            )
        if (name, language) in self._templates:
            raise GraphError(100, f"Content in this language already exists: {name} ({language}).")
        components = body.get("components")
        if not isinstance(components, list) or not all(isinstance(c, Mapping) for c in components):
            raise GraphError(100, "Param components must be a list of objects.")
        if sum(1 for c in components if str(c.get("type", "")).upper() == "BODY") != 1:
            raise GraphError(100, "A template needs exactly one BODY component.")
        fmt = str(body.get("parameter_format") or "positional").lower()
        if fmt not in ("named", "positional"):
            raise GraphError(100, "Param parameter_format must be 'named' or 'positional'.")
        problem = _check_components(components)
        if problem:
            raise GraphError(100, problem)
        item = {
            "name": name,
            "language": language,
            "category": category,
            "status": "PENDING",
            "parameter_format": fmt,
            "components": components,
            "id": new_numeric_id(),
        }
        try:
            template = template_from_graph(item)
        except TemplateDefinitionError as exc:
            raise GraphError(100, str(exc)) from None
        template = replace(template, language=language, source="graph")
        self._templates[(name, language)] = template
        return template


def _check_components(components: list[Mapping[str, Any]]) -> str | None:
    limits = {"HEADER": 60, "BODY": 1024, "FOOTER": 60}
    for comp in components:
        kind = str(comp.get("type", "")).upper()
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            return f"Unknown component type {comp.get('type')!r}."
        text = comp.get("text")
        fmt = str(comp.get("format", "TEXT")).upper()
        if kind in limits and (kind != "HEADER" or fmt == "TEXT"):
            if not isinstance(text, str) or not text:
                return f"{kind} component needs text."
            if len(text) > limits[kind]:
                return f"{kind} text is longer than {limits[kind]} characters."
        if kind == "BUTTONS":
            buttons = comp.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 10:
                return "BUTTONS component needs 1 to 10 buttons."
            for button in buttons:
                label = button.get("text") if isinstance(button, Mapping) else None
                if not isinstance(label, str) or not 1 <= len(label) <= 25:
                    return "Button text must be 1-25 characters."
    return None


def _example(text: str, named: bool, kind: str) -> dict[str, Any] | None:
    found = list(dict.fromkeys(_PLACEHOLDER.findall(text)))
    if not found:
        return None
    key = "header_text" if kind == "HEADER" else "body_text"
    if named:
        return {
            f"{key}_named_params": [
                {"param_name": n, "example": n.replace("_", " ")} for n in found
            ]
        }
    samples = [f"example {n}" for n in found]
    return {key: samples if kind == "HEADER" else [samples]}


def graph_template(template: Template) -> dict[str, Any]:
    """One item of ``GET /{waba_id}/message_templates``."""
    named = template.parameter_format == "named"
    components: list[dict[str, Any]] = []
    for comp in template.components:
        if comp.type == "BUTTONS":
            buttons = []
            for button in comp.buttons:
                item: dict[str, Any] = {"type": button.type, "text": button.text}
                if button.type == "URL" and button.url:
                    item["url"] = button.url
                    if _PLACEHOLDER.search(button.url):
                        item["example"] = [_PLACEHOLDER.sub("example", button.url)]
                if button.type == "PHONE_NUMBER" and button.phone_number:
                    item["phone_number"] = button.phone_number
                buttons.append(item)
            components.append({"type": "BUTTONS", "buttons": buttons})
            continue
        out: dict[str, Any] = {"type": comp.type}
        if comp.type == "HEADER":
            out["format"] = comp.format
        if comp.text is not None:
            out["text"] = comp.text
            example = _example(comp.text, named, comp.type)
            if example:
                out["example"] = example
        elif comp.type == "HEADER":
            out["example"] = {"header_handle": ["https://scontent.whatsapp.net/example"]}
        components.append(out)
    return {
        "name": template.name,
        "parameter_format": template.parameter_format.upper(),
        "components": components,
        "language": template.language,
        "status": template.status,
        "category": template.category,
        "quality_score": {"score": template.quality or "UNKNOWN"},
        "id": template.template_id,
    }
