"""Inline SVG charts for the reports: no JavaScript, no external requests.

The geometry is computed here, the markup is `templates/charts.svg` (one macro per
chart, autoescaped: every label and tooltip is text, never markup).

- `timeline`: one drill: the /health status of every sample as a coloured strip, the
  latency as a line, and the drill's events (injected, symptom, detected, mitigating,
  recovered, reverted) as labelled vertical marks, all on seconds since injection.
- `trend`: values per drill over time (time-to-detect and time-to-recover), one line
  per series, with an optional budget line.
- `budget_bar`: the share of its budget a time used.

Each `*_view` function returns the chart's view data (what a template draws); the
functions named after the charts (`timeline`, `trend`, `budget_bar`) take the same
arguments and return the SVG element as text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec

from runbook_checks.drill.result import Event
from runbook_checks.drill.sampler import Sample
from runbook_checks.evidence.templating import macro

P = ParamSpec("P")

EVENT_COLOURS = {
    "steady": "#6b7280",
    "injected": "#dc2626",
    "symptom": "#ea580c",
    "detected": "#2563eb",
    "mitigating": "#7c3aed",
    "resolved": "#0d9488",
    "recovered": "#16a34a",
    "reverted": "#475569",
}
OK_COLOUR, WARN_COLOUR, DOWN_COLOUR = "#22c55e", "#f59e0b", "#ef4444"
LATENCY_COLOUR = "#0ea5e9"
# the timeline's legend: colour, what it means
LEGEND = (
    (OK_COLOUR, "/health 200"),
    (WARN_COLOUR, "other answer"),
    (DOWN_COLOUR, "5xx or no answer"),
    (LATENCY_COLOUR, "latency"),
)
CHAR_W = 6.0  # approximate width of one character at font-size 10


def _f(value: float) -> str:
    return f"{value:.1f}"


def nice_ceiling(value: float) -> float:
    """1, 2, 5 x 10^n at or above `value` (axis maximum)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def ticks(low: float, high: float, count: int = 6) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    step = nice_ceiling(span / count)
    first = math.ceil(low / step) * step
    out: list[float] = []
    value = first
    while value <= high + 1e-9:
        out.append(round(value, 6))
        value += step
    return out


def status_colour(sample: Sample) -> str:
    if sample.status == 200:
        return OK_COLOUR
    if sample.status == 0 or sample.status >= 500:
        return DOWN_COLOUR
    return WARN_COLOUR


def duration_label(seconds: float) -> str:
    if abs(seconds) < 60:
        return f"{seconds:g}s"
    if abs(seconds) < 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"


@dataclass(frozen=True)
class _Label:
    x: float
    row: int
    text: str
    colour: str
    flipped: bool = False  # drawn to the left of its mark (near the right edge)

    def mark(self, name: str, tip: str) -> EventMark:
        """This label as a chart's vertical mark (`name`: its class; `tip`: its tooltip)."""
        return EventMark(
            name=name,
            tip=tip,
            x=_f(self.x),
            y_text=12 + self.row * 14,
            colour=self.colour,
            text_x=_f(self.x - 3 if self.flipped else self.x + 3),
            anchor="end" if self.flipped else "start",
            text=self.text,
        )


def _place_labels(
    marks: Sequence[tuple[float, str, str]], rows: int, right_edge: float = 1e9
) -> list[_Label]:
    """Put each label in the first row where it does not overlap the previous one; a
    label that would run past `right_edge` is drawn to the left of its mark."""
    ends = [-1e9] * rows
    placed: list[_Label] = []
    for x, text, colour in sorted(marks, key=lambda m: m[0]):
        width = len(text) * CHAR_W + 8
        flipped = x + width > right_edge
        start = x - width if flipped else x
        row = next((r for r in range(rows) if ends[r] <= start), None)
        if row is None:
            row = min(range(rows), key=lambda r: ends[r])
        ends[row] = x + 4 if flipped else x + width
        placed.append(_Label(x, row, text, colour, flipped))
    return placed


# Coordinates are strings already formatted for the markup (one decimal where computed).


@dataclass(frozen=True)
class Frame:
    """A chart's outer box and plot area."""

    width: int
    height: int
    title: str
    left: int
    top: int
    plot_w: int
    plot_h: int


@dataclass(frozen=True)
class Tick:
    """A grid line or axis tick at `at` (y for a value axis, x for a time axis), its
    label at `label_at` on the other axis where it differs."""

    at: str
    label: str
    label_at: str = ""


def _grid_line(y: float, label: str) -> Tick:
    return Tick(_f(y), label, _f(y + 3))


@dataclass(frozen=True)
class SampleMark:
    x: str
    width: str
    fill: str
    tip: str


@dataclass(frozen=True)
class Dot:
    x: str
    y: str
    fill: str
    tip: str = ""


@dataclass(frozen=True)
class EventMark:
    name: str
    tip: str
    x: str
    y_text: int
    colour: str
    text_x: str
    anchor: str
    text: str


@dataclass(frozen=True)
class TimelineView:
    frame: Frame
    grid: tuple[Tick, ...]  # latency grid lines (y)
    x_ticks: tuple[Tick, ...]  # seconds (x)
    axis_y: int
    axis_note: str
    centre_x: str
    strip_y: int
    strip_h: int
    samples: tuple[SampleMark, ...]
    latency: str  # polyline points, "" without samples
    dots: tuple[Dot, ...]  # failed samples
    events: tuple[EventMark, ...]


def timeline_view(
    events: Sequence[Event],
    samples: Sequence[Sample],
    *,
    width: int = 1000,
    title: str = "",
    aligned: bool = True,
) -> TimelineView:
    """The drill's timeline (seconds since injection on x), as view data."""
    left, right, rows = 58, 18, 4
    label_h = 14 * rows + 6
    strip_y = label_h + 4
    strip_h = 14
    plot_y = strip_y + strip_h + 8
    plot_h = 120
    axis_y = plot_y + plot_h
    height = axis_y + 34
    times = [e.at_s for e in events] + [s.at_s for s in samples]
    low = min([0.0, *times])
    high = max([1.0, *times])
    pad = (high - low) * 0.03
    low, high = low - pad, high + pad
    plot_w = width - left - right

    def x_of(t: float) -> float:
        return left + (t - low) / (high - low) * plot_w

    latencies = [s.latency_ms for s in samples]
    y_max = nice_ceiling(max(latencies, default=1.0) * 1.1)

    def y_of(ms: float) -> float:
        return axis_y - min(ms, y_max) / y_max * plot_h

    axis_note = "seconds since the fault was injected"
    if not aligned:
        axis_note += " (health samples: seconds since sampling began; offset not recorded)"
    # status strip: one rect per sample, reaching to the next sample
    ordered = sorted(samples, key=lambda s: s.at_s)
    strip = []
    for index, sample in enumerate(ordered):
        end = ordered[index + 1].at_s if index + 1 < len(ordered) else sample.at_s + 0.2
        x0, x1 = x_of(sample.at_s), x_of(min(end, high))
        tip = f"{sample.at_s:.2f}s: {sample.status or 'no answer'} {sample.error}".strip()
        strip.append(SampleMark(_f(x0), _f(max(x1 - x0, 0.8)), status_colour(sample), tip))
    marks = [
        (
            x_of(e.at_s),
            f"{e.name} {duration_label(round(e.at_s, 2))}",
            EVENT_COLOURS.get(e.name, "#334155"),
        )
        for e in events
    ]
    placed = zip(
        _place_labels(marks, rows, width - 4), sorted(events, key=lambda e: e.at_s), strict=True
    )
    return TimelineView(
        frame=Frame(width, height, title or "drill timeline", left, plot_y, plot_w, plot_h),
        grid=tuple(_grid_line(y_of(ms), f"{ms:g} ms") for ms in ticks(0, y_max, 4)),
        x_ticks=tuple(Tick(_f(x_of(t)), duration_label(t)) for t in ticks(low, high, 8)),
        axis_y=axis_y,
        axis_note=axis_note,
        centre_x=str(left + plot_w / 2),
        strip_y=strip_y,
        strip_h=strip_h,
        samples=tuple(strip),
        latency=" ".join(f"{_f(x_of(s.at_s))},{_f(y_of(s.latency_ms))}" for s in ordered),
        dots=tuple(
            Dot(_f(x_of(s.at_s)), _f(y_of(s.latency_ms)), status_colour(s))
            for s in ordered
            if s.status != 200
        ),
        events=tuple(
            label.mark(event.name, f"{event.name} at {event.at_s:.2f}s: {event.detail}")
            for label, event in placed
        ),
    )


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[str, float | None], ...]  # (x label, value or None = no value)
    colour: str = "#2563eb"


@dataclass(frozen=True)
class Line:
    """One series as drawn: its polyline ("" under two points), dots and legend entry."""

    name: str
    colour: str
    points: str
    dots: tuple[Dot, ...]
    legend_x: int


@dataclass(frozen=True)
class Budget:
    y: str
    label_y: str
    label: str


@dataclass(frozen=True)
class TrendView:
    frame: Frame
    grid: tuple[Tick, ...]  # value grid lines (y)
    x_labels: tuple[Tick, ...]  # drills (x)
    budget: Budget | None
    lines: tuple[Line, ...]
    centre_x: str


def trend_view(
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 220,
    budget_s: float | None = None,
    title: str = "",
    unit: str = "s",
) -> TrendView:
    """A line chart over drills (x: one slot per drill, labelled by date), as view data."""
    left, right, top, bottom = 58, 16, 26, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    labels = [label for label, _ in series[0].points] if series else []
    values = [v for s in series for _, v in s.points if v is not None]
    y_max = nice_ceiling(max(values, default=1.0) * 1.15)
    show_budget = budget_s is not None and budget_s <= y_max * 4
    if show_budget and budget_s is not None and budget_s > y_max:
        y_max = nice_ceiling(budget_s * 1.05)
    slots = max(len(labels), 1)

    def x_of(index: int) -> float:
        if slots == 1:
            return left + plot_w / 2
        return left + index / (slots - 1) * plot_w

    def y_of(value: float) -> float:
        return top + plot_h - min(value, y_max) / y_max * plot_h

    step = max(1, math.ceil(len(labels) / 8))
    lines = []
    for number, item in enumerate(series):
        drawn = [(i, label, v) for i, (label, v) in enumerate(item.points) if v is not None]
        coords = [(x_of(i), y_of(v)) for i, _, v in drawn]
        lines.append(
            Line(
                name=item.name,
                colour=item.colour,
                points=" ".join(f"{_f(x)},{_f(y)}" for x, y in coords) if len(coords) > 1 else "",
                dots=tuple(
                    Dot(_f(x), _f(y), item.colour, f"{item.name} {label}: {v:g}{unit}")
                    for (x, y), (_, label, v) in zip(coords, drawn, strict=True)
                ),
                legend_x=left + number * 150,
            )
        )
    budget = None
    if show_budget and budget_s is not None:
        y = y_of(budget_s)
        budget = Budget(_f(y), _f(y - 4), f"budget {duration_label(budget_s)}")
    return TrendView(
        frame=Frame(width, height, title or "trend", left, top, plot_w, plot_h),
        grid=tuple(_grid_line(y_of(v), f"{v:g}{unit}") for v in ticks(0, y_max, 4)),
        x_labels=tuple(
            Tick(_f(x_of(index)), label)
            for index, label in enumerate(labels)
            if index % step == 0 or index == len(labels) - 1
        ),
        budget=budget,
        lines=tuple(lines),
        centre_x=str(left + plot_w / 2),
    )


@dataclass(frozen=True)
class BudgetBarView:
    width: int
    tip: str
    filled: str  # the filled part's width
    colour: str


def budget_bar_view(
    value: float | None, budget: float, *, width: int = 120
) -> BudgetBarView | None:
    """A small bar: the share of the budget a time used (log-scaled past 10 %); None
    without a time or a budget."""
    if value is None or budget <= 0:
        return None
    share = value / budget
    # linear is unreadable for 2 s of 900 s: map [0.001, 1] logarithmically onto the bar
    filled = 0.0 if share <= 0 else min(1.0, max(0.02, 1 + math.log10(max(share, 1e-3)) / 3))
    return BudgetBarView(
        width=width,
        tip=f"{share * 100:.1f}% of the budget (log scale)",
        filled=_f(filled * width),
        colour=OK_COLOUR if share <= 1 else DOWN_COLOUR,
    )


def _drawn(view: Callable[P, object], chart: str) -> Callable[P, str]:
    """The chart `view` computes, drawn by its macro in charts.svg, as SVG text ("" where
    the view is None), for pages still assembled as text (review_report.py)."""

    def draw(*args: P.args, **kwargs: P.kwargs) -> str:
        data = view(*args, **kwargs)
        return "" if data is None else str(macro("charts.svg", chart)(data))

    draw.__doc__ = f"The SVG element of {view.__name__}: {view.__doc__}"
    return draw


timeline = _drawn(timeline_view, "timeline")
trend = _drawn(trend_view, "trend")
budget_bar = _drawn(budget_bar_view, "budget_bar")
