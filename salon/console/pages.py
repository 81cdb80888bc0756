"""The console's pages: Jinja2 templates in ``templates/``, rendered with autoescaping on
(a client's ``<script>`` is shown as text), and the few words and figures they share.

Static files (``static/``: the stylesheet, the small script that keeps the page live, the
monogram) are served from a fixed list, never from a path a request names.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from salon.clock import require_aware

__all__ = ["STATIC_DIR", "STATIC_FILES", "countdown", "render", "said", "static_file", "waited"]

HERE: Final = Path(__file__).resolve().parent
STATIC_DIR: Final = HERE / "static"
STATIC_FILES: Final = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "monogram.svg": "image/svg+xml",
}

REASONS: Final = {
    "talk_to_advisor": "asked for her advisor", "human_request": "asked for a person",
    "complaint": "a complaint", "repeated_failure": "the assistant could not help",
    "sensitive": "a sensitive matter", "booking_request": "a booking to arrange",
    "bespoke": "a bespoke request", "purchase": "ready to buy", "advisor_takeover": "taken over from the assistant",
    "distress": "distress or bereavement", "health": "health, allergy or injury",
    "legal": "a legal matter", "fraud": "suspected fraud or security", "payment": "a payment problem",
    "data_protection": "a data-protection request", "urgency": "urgent", "discretion": "a discreet matter",
}


def countdown(closes_at: datetime | None, now: datetime) -> str:
    """"closes in 1 h 12", "closes in 8 min", "closed"."""
    require_aware(now)
    if closes_at is None or closes_at <= now:
        return "closed"
    minutes = int((closes_at - now).total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"closes in {hours} h {rest:02d}" if hours else f"closes in {rest} min"


def waited(since: datetime, now: datetime) -> str:
    """"waiting 3 min", "waiting 2 h 05", "waiting 1 day"."""
    span = max(now - since, timedelta(0))
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"waiting {minutes} min"
    if minutes < 24 * 60:
        return f"waiting {minutes // 60} h {minutes % 60:02d}"
    days = minutes // (24 * 60)
    return f"waiting {days} day{'s' if days > 1 else ''}"


def _clock(at: datetime | None, zone: str = "Europe/Paris") -> str:
    if at is None:
        return ""
    return at.astimezone(ZoneInfo(zone)).strftime("%d %b %H:%M")


def said(value: Any) -> str:
    """A preference as a person reads it: text as it is, a list joined, a wish-list entry
    by its piece and colour, never a Python repr.
    """
    if isinstance(value, str):
        return value.replace("_", " ") if value.isidentifier() else value
    if isinstance(value, dict):
        parts = [str(value[k]) for k in ("product_id", "colour", "size") if value.get(k)]
        return " · ".join(parts) if parts else ", ".join(f"{k}: {said(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        items = [said(v) for v in value]
        sentences = all(item.rstrip().endswith((".", "!", "?")) for item in items)
        return (" " if sentences else "; ").join(items)
    return str(value)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["clock"] = _clock
    env.filters["iso"] = lambda at: at.isoformat() if at else ""
    env.filters["said"] = said
    env.globals["REASONS"] = REASONS
    return env


_ENV: Final = _environment()


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file of ``templates/``) with ``context``."""
    return _ENV.get_template(template).render(**context)


def static_file(name: str) -> tuple[bytes, str] | None:
    """A static file's bytes and type, or None when ``name`` is not one of them."""
    kind = STATIC_FILES.get(name)
    if kind is None:
        return None
    return (STATIC_DIR / name).read_bytes(), kind
