"""A template's parameters: checked against Meta's rules before a send (no line breaks, tabs
or long runs of spaces in text, lengths within limits) and rendered into the Cloud API's
``template`` object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from salon.templates.model import (
    _PLACEHOLDER,
    MAX_BODY,
    MAX_FOOTER,
    MAX_HEADER,
    MAX_PAYLOAD,
    Template,
)

__all__ = ["ParamProblem", "build_template_payload", "check_params", "sanitize_text_param"]


_FORBIDDEN_WS = re.compile(r"[\n\r\t]")


_SPACES = re.compile(r" {5,}")


_BREAKS = re.compile(r"[ ]*[\n\r\t][\s]*")


@dataclass(frozen=True)
class ParamProblem:
    """Why a parameter (or the rendered template) cannot be sent."""

    param: str
    problem: str  # missing | empty | newline_or_tab | too_many_spaces | too_long | not_text
    detail: str = ""


def sanitize_text_param(value: str) -> str:
    """Make a text parameter sendable: a newline or tab (with the blanks around it)
    becomes one space, runs of more than four spaces collapse to one, and the ends are
    stripped.
    """
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


def _check_required(
    template: Template,
    params: Mapping[str, Any],
    sanitize: bool,
    problems: list[ParamProblem],
    values: dict[str, str],
) -> None:
    """Check the template's required parameters, noting problems and the text values kept."""
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


def _check_optional(
    template: Template,
    params: Mapping[str, Any],
    sanitize: bool,
    problems: list[ParamProblem],
    values: dict[str, str],
) -> None:
    """Check the optional parameters given (quick reply payloads), noting problems and
    the text values kept.
    """
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


def _render_checked(
    template: Template, values: Mapping[str, str], problems: list[ParamProblem]
) -> dict[str, str]:
    """The header/body/footer texts rendered with ``values``, noting any over its limit."""
    rendered: dict[str, str] = {}
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
    return rendered


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
    _check_required(template, params, sanitize, problems, values)
    _check_optional(template, params, sanitize, problems, values)
    if strict:
        for name in params:
            if name not in used:
                problems.append(ParamProblem(name, "unexpected"))
    rendered: dict[str, str] = {}
    if all(name in values for name in template.required_params):
        rendered = _render_checked(template, values, problems)
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
                    reply = (
                        values.get(button.payload_param) if button.payload_param else None
                    ) or button.payload
                    if reply:
                        components.append(
                            {
                                "type": "button",
                                "sub_type": "quick_reply",
                                "index": index,
                                "parameters": [{"type": "payload", "payload": reply}],
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
