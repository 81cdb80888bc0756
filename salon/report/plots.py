"""The report's pictures: one PNG per figure, drawn with matplotlib's Agg canvas in the
maison's colours (ivory paper, ink, gold).

Figures are made without ``pyplot``: its global state is not safe when the console
generates a report in a worker thread while another is being drawn. An empty period draws
a picture that says so, never an empty frame that looks like a broken one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Final

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from salon.pricing.charge import format_money
from salon.report.figures import Figures

__all__ = ["PLOTS", "Plot", "as_money", "draw_all"]

INK: Final = "#1f1c18"
INK_SOFT: Final = "#5b554c"
PAPER: Final = "#fbf9f5"
WALL: Final = "#ede6d9"
GOLD: Final = "#b7955b"
GOLD_INK: Final = "#7d5f2e"
GREEN: Final = "#2d5227"
BLUE: Final = "#1f7fc4"
DANGER: Final = "#a4271f"

CATEGORY_COLOURS: Final = {
    "marketing": GOLD,
    "utility": GREEN,
    "authentication": BLUE,
    "authentication_international": "#6fa6cf",
    "service": INK_SOFT,
    "referral_conversion": "#a89f8f",
    "unpriced": "#d9d2c3",
}
WIDTH_IN: Final = 11.0
HEIGHT_IN: Final = 5.0
DPI: Final = 100
"""1,100 × 500 pixels: legible in the page and in the README at its width."""


class Plot:
    """One picture of the report: its file name, title and a sentence for those who cannot see it."""

    def __init__(self, name: str, title: str, alt: str, draw: Callable[[Figures, Figure], None],
                 height: float = HEIGHT_IN) -> None:
        self.name = name
        self.title = title
        self.alt = alt
        self.draw = draw
        self.height = height

    @property
    def pixels(self) -> tuple[int, int]:
        """Its width and height in pixels."""
        return round(WIDTH_IN * DPI), round(self.height * DPI)


def _figure(height: float) -> Figure:
    figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI, facecolor=PAPER)
    FigureCanvasAgg(figure)
    return figure


def _style(ax: Any, title: str | None = None) -> None:
    ax.set_facecolor(PAPER)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(INK_SOFT)
    ax.tick_params(colors=INK_SOFT, labelsize=9)
    ax.grid(axis="y", color=WALL, linewidth=0.8)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, loc="left", fontsize=12, color=INK, family="serif")


def _dates(ax: Any) -> None:
    locator = AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))


def _nothing(figure: Figure, title: str) -> None:
    ax = figure.add_subplot()
    _style(ax, title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.text(0.5, 0.5, "No traffic in this period", ha="center", va="center", fontsize=16, color=INK_SOFT,
            family="serif", transform=ax.transAxes)


def _x(days: Sequence[date]) -> list[float]:
    """Each day's bar at its noon (matplotlib's axis is in UTC: the day keeps its date)."""
    return [float(date2num(datetime(d.year, d.month, d.day, 12, tzinfo=timezone.utc))) for d in days]


def as_money(micros: int, currency: str) -> str:
    """An amount as the page says it: to the cent from a cent up ("$33.85"), else to four
    decimals ("$0.0300"), as Meta's rates are written.
    """
    if abs(micros) >= 10_000:
        micros = round(micros / 10_000) * 10_000
    return format_money(micros, currency)


def _money_axis(axis: Any, currency: str) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _: as_money(round(v * 1_000_000), currency)))


def _cost(figures: Figures, figure: Figure) -> None:
    title = "Messages and cost per day, by billing category"
    categories = figures.categories
    if not figures.totals.messages:
        _nothing(figure, title)
        return
    days = [d.day for d in figures.cost_days]
    x = _x(days)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (1, 1), "hspace": 0.12})
    _style(top, title)
    _style(bottom)
    below_n = [0.0] * len(days)
    below_c = [0.0] * len(days)
    for category in categories:
        counts = [float(d.messages.get(category, 0)) for d in figures.cost_days]
        money = [d.cost.get(category, 0) / 1_000_000 for d in figures.cost_days]
        colour = CATEGORY_COLOURS.get(category, GOLD_INK)
        top.bar(x, counts, width=0.8, bottom=below_n, color=colour, label=category.replace("_", " "))
        bottom.bar(x, money, width=0.8, bottom=below_c, color=colour)
        below_n = [a + b for a, b in zip(below_n, counts, strict=True)]
        below_c = [a + b for a, b in zip(below_c, money, strict=True)]
    top.set_ylabel("messages", color=INK_SOFT, fontsize=9)
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    currency = figures.currency or ""
    bottom.set_ylabel(f"cost ({currency})" if currency else "cost", color=INK_SOFT, fontsize=9)
    if currency:
        _money_axis(bottom.yaxis, currency)
    t = figures.totals
    bottom.annotate(f"Meta's price for {t.meta_priced} message(s), our estimate for {t.estimated}"
                    + (f", {t.unpriced} unpriced" if t.unpriced else ""),
                    xy=(0, -0.3), xycoords="axes fraction", fontsize=8, color=INK_SOFT)
    _dates(bottom)
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    figure.subplots_adjust(left=0.08, right=0.83, top=0.92, bottom=0.16)


def _windows(figures: Figures, figure: Figure) -> None:
    title = "Clients with an open window, on the hour"
    if not any(n for _, n in figures.window_hours):
        _nothing(figure, title)
        return
    ax = figure.add_subplot()
    _style(ax, title)
    # The report's wall-clock hours, placed on matplotlib's UTC axis as they read.
    x = [float(date2num(at.astimezone(figures.period.zone).replace(tzinfo=timezone.utc)))
         for at, _ in figures.window_hours]
    y = [n for _, n in figures.window_hours]
    ax.fill_between(x, y, step="post", color=GREEN, alpha=0.18, linewidth=0)
    ax.step(x, y, where="post", color=GREEN, linewidth=1.2)
    ax.set_ylabel("open windows", color=INK_SOFT, fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    _dates(ax)
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.12)


def _fallback(figures: Figures, figure: Figure) -> None:
    title = "Fallback rate and 131047 rate per day"
    if not figures.totals.decided:
        _nothing(figure, title)
        return
    ax = figure.add_subplot()
    _style(ax, title)
    days = [d for d in figures.fallback_days if d.decided]
    x = _x([d.day for d in days])
    ax.plot(x, [(d.fallback_rate or 0.0) * 100 for d in days], color=GOLD, marker="o", markersize=3.5,
            linewidth=1.4, label="templates and parks among sends decided")
    ax.plot(x, [(d.failure_rate or 0.0) * 100 for d in days], color=DANGER, marker="s", markersize=3.5,
            linewidth=1.2, label="131047 among free-form sends (goal: none)")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    _dates(ax)
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.12)


def _containment(figures: Figures, figure: Figure) -> None:
    title = "Client-days answered without a person, per day"
    if not figures.totals.client_days:
        _nothing(figure, title)
        return
    ax = figure.add_subplot()
    _style(ax, title)
    x = _x([d.day for d in figures.containment_days])
    contained = [d.contained for d in figures.containment_days]
    handed = [d.handed for d in figures.containment_days]
    ax.bar(x, contained, width=0.8, color=GREEN, label="the assistant alone")
    ax.bar(x, handed, width=0.8, bottom=contained, color=GOLD, label="handed to a person")
    ax.set_ylabel("client-days", color=INK_SOFT, fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    _dates(ax)
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.12)


def _waits(figures: Figures, figure: Figure) -> None:
    title = "How long handoffs waited for a person"
    if not figures.waits.handoffs:
        _nothing(figure, title)
        return
    ax = figure.add_subplot()
    _style(ax, title)
    buckets = figures.waits.buckets()
    labels = [label for label, _ in buckets]
    counts = [n for _, n in buckets]
    colours = [GOLD] * (len(buckets) - 1) + [DANGER]
    bars = ax.bar(range(len(buckets)), counts, color=colours, width=0.7)
    ax.bar_label(bars, fontsize=8, color=INK_SOFT)
    ax.set_xticks(range(len(buckets)))
    ax.set_xticklabels(labels)
    ax.set_ylabel("handoffs", color=INK_SOFT, fontsize=9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.12)


def _purposes(figures: Figures, figure: Figure) -> None:
    title = "Top purposes by cost"
    if not figures.purposes:
        _nothing(figure, title)
        return
    ax = figure.add_subplot()
    _style(ax, title)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color=WALL, linewidth=0.8)
    rows = list(reversed(figures.purposes))
    values = [p.cost / 1_000_000 for p in rows]
    bars = ax.barh(range(len(rows)), values, color=GOLD, height=0.6)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([p.purpose.replace("_", " ") for p in rows], fontsize=9)
    currency = figures.currency
    if currency:
        _money_axis(ax.xaxis, currency)
        ax.set_xlabel(f"cost ({currency})", color=INK_SOFT, fontsize=9)
        ax.bar_label(bars, labels=[f"{as_money(p.cost, currency)} · {p.messages} msg" for p in rows],
                     fontsize=8, color=INK_SOFT, padding=3)
    ax.margins(x=0.25)
    figure.subplots_adjust(left=0.24, right=0.97, top=0.9, bottom=0.12)


PLOTS: Final[tuple[Plot, ...]] = (
    Plot("report-cost.png", "Messages and cost per day",
         "Stacked bars per day: messages by billing category, and what they cost.", _cost, height=6.0),
    Plot("report-windows.png", "Open windows",
         "How many clients had an open 24-hour window, hour by hour.", _windows),
    Plot("report-fallback.png", "Fallback and 131047",
         "Per day, the share of sends that became a template or were parked, and the share of "
         "free-form sends Meta refused with 131047.", _fallback),
    Plot("report-containment.png", "Containment",
         "Per day, clients who wrote and were answered by the assistant alone, and those handed to a person.",
         _containment),
    Plot("report-handoff-wait.png", "Handoff wait",
         "How many handoffs were taken up within 5 minutes, 15 minutes, an hour, 4 hours, a day, "
         "later, or not yet.", _waits),
    Plot("report-purposes.png", "Purposes by cost",
         "The purposes whose messages cost the most, with their cost and number of messages.", _purposes),
)
"""Every picture of the report, in the order the page shows them."""


def draw_all(figures: Figures, directory: Path) -> list[Path]:
    """Draw every plot of :data:`PLOTS` into ``directory`` (written whole, then moved in
    place, so a reader never sees half a picture); the paths written.
    """
    written: list[Path] = []
    for plot in PLOTS:
        figure = _figure(plot.height)
        plot.draw(figures, figure)
        target = directory / plot.name
        partial = directory / f".{plot.name}.partial"
        figure.savefig(partial, format="png", dpi=DPI, facecolor=PAPER)
        partial.replace(target)
        written.append(target)
    return written
