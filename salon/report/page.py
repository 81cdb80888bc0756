"""The report's page: one HTML file (Jinja2, autoescaped) that shows every picture with its
figures in a table beside it, in the maison's look. It loads nothing from outside its
folder: its stylesheet and monogram are copied next to it, the pictures are there too, and
it has no script (the console serves it under its strict content policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape

from salon.report.figures import Figures
from salon.report.plots import PLOTS, as_money

__all__ = ["ASSETS", "as_percent", "as_span", "render_page", "summary"]

HERE: Final = Path(__file__).resolve().parent
ASSETS: Final = {
    "report.css": HERE / "static" / "report.css",
    "monogram.svg": HERE.parent / "console" / "static" / "monogram.svg",
}
"""Files the page needs beside it, and where they come from."""


def as_percent(rate: float | None) -> str:
    """0.1234 → "12.3 %"; no rate (nothing to divide by) → "—"."""
    return "—" if rate is None else f"{rate * 100:.1f} %"


def as_span(span: timedelta | None) -> str:
    """A wait as a person says it: "4 min", "2 h 05", "3 d 4 h"; none → "—"."""
    if span is None:
        return "—"
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60:02d}"
    return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"


def _money(micros: int | None, currency: str | None) -> str:
    if micros is None or currency is None:
        return "—"
    return as_money(micros, currency)


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def summary(figures: Figures) -> list[tuple[str, str]]:
    """The period's totals as (label, value) lines: the page's first table and the console's."""
    t = figures.totals
    cost = _money(t.cost, figures.currency)
    source = f"Meta's price for {t.meta_priced}, our estimate for {t.estimated}"
    if t.unpriced:
        source += f", {t.unpriced} unpriced"
    waits = figures.waits
    return [
        ("Messages sent", f"{t.messages}"),
        ("Cost", f"{cost} ({source})"),
        ("Priced otherwise by Meta than estimated", f"{t.mismatches}"),
        ("Clients who wrote", f"{t.clients} ({t.inbound} messages)"),
        ("Fallback rate", f"{as_percent(t.fallback_rate)} ({t.fallbacks} of {t.decided} sends decided; "
                          f"{t.nudges} nudges, {t.refused} refused)"),
        ("131047 rate", f"{as_percent(t.failure_rate)} ({t.window_closed_failures} of {t.free_form} free-form sends)"),
        ("Containment", f"{as_percent(t.containment)} ({t.contained} of {t.client_days} client-days)"),
        ("Handoffs", f"{t.handoffs} ({t.answered} answered; median wait {as_span(waits.median)}, "
                     f"90th percentile {as_span(waits.p90)})"),
    ]


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = as_percent
    env.filters["span"] = as_span
    env.filters["day"] = _day
    return env


_ENV: Final = _environment()


def render_page(figures: Figures, *, generated_at: datetime, images: Sequence[str] | None = None) -> str:
    """The page for ``figures``; ``images``: the picture files it shows (default every one
    of :data:`~salon.report.plots.PLOTS`, by name, beside the page).
    """
    plots = {p.name: p for p in PLOTS}
    names = list(images) if images is not None else list(plots)
    context: dict[str, Any] = {
        "f": figures, "t": figures.totals, "period": figures.period.describe(),
        "zone": figures.period.zone_name,
        "generated": generated_at.astimezone(figures.period.zone).strftime("%d %b %Y %H:%M"),
        "summary": summary(figures), "plots": plots, "images": names,
        "money": lambda micros: _money(micros, figures.currency),
        "categories": figures.categories,
        "by_category": {c: (sum(d.messages.get(c, 0) for d in figures.cost_days),
                            sum(d.cost.get(c, 0) for d in figures.cost_days)) for c in figures.categories},
    }
    return _ENV.get_template("report.html").render(**context)
