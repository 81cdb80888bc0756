"""A template's life at Meta (status, quality, category), read from the Graph API and from
webhooks, and shared by every process through one SQL table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, or_, select, update

from salon.clock import to_us
from salon.storage.db import SqlTables, insert_on_conflict
from salon.templates.model import Template, _build_component, normalise_language

__all__ = ["FetchPage", "LifecycleChange", "STATE_TTL", "SyncReport", "TemplateStates", "template_from_graph", "template_state_table"]


STATE_TTL: Final = timedelta(seconds=5)
"""How old a registry's copy of the shared template state may be before a send reads it
again."""


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
    reported, with the time of the event that reported each; every process reads it.
    """

    metadata = _state_metadata

    async def load(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(select(template_state_table))).all()]

    async def save(self, template: Template, kinds: Iterable[str], at: datetime, *,
                   newer_only: bool = False) -> None:
        """Write ``kinds`` of ``template`` as of ``at``, unless an event at least as
        recent (``newer_only``: as recent or more) is recorded already.
        """
        at_us = to_us(at)
        key = (_TS.name == template.name, _TS.language == template.language)
        values: dict[str, dict[str, Any]] = {
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
