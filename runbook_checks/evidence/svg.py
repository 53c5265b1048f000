"""Inline SVG charts for the reports: no JavaScript, no external requests.

- `timeline`: one drill: the /health status of every sample as a coloured strip, the
  latency as a line, and the drill's events (injected, symptom, detected, mitigating,
  recovered, reverted) as labelled vertical marks, all on seconds since injection.
- `trend`: values per drill over time (time-to-detect and time-to-recover), one line
  per series, with an optional budget line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from runbook_checks.drill.result import Event
from runbook_checks.drill.sampler import Sample

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
FONT = "font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif'"
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


def timeline(
    events: Sequence[Event],
    samples: Sequence[Sample],
    *,
    width: int = 1000,
    title: str = "",
    aligned: bool = True,
) -> str:
    """The drill's timeline as an SVG element (seconds since injection on x)."""
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

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart timeline' role='img' "
        f"width='{width}' height='{height}' viewBox='0 0 {width} {height}' {FONT} "
        f"font-size='10'>"
    ]
    out.append(f"<title>{escape(title or 'drill timeline')}</title>")
    out.append(
        f"<rect x='{left}' y='{plot_y}' width='{plot_w}' height='{plot_h}' "
        "fill='#f8fafc' stroke='#cbd5e1'/>"
    )
    # grid and axes
    for ms in ticks(0, y_max, 4):
        y = y_of(ms)
        out.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{_f(y)}' y2='{_f(y)}' stroke='#e2e8f0'/>"
        )
        out.append(
            f"<text x='{left - 6}' y='{_f(y + 3)}' text-anchor='end' fill='#475569'>"
            f"{ms:g} ms</text>"
        )
    for t in ticks(low, high, 8):
        x = x_of(t)
        out.append(
            f"<line x1='{_f(x)}' x2='{_f(x)}' y1='{axis_y}' y2='{axis_y + 4}' stroke='#64748b'/>"
        )
        out.append(
            f"<text x='{_f(x)}' y='{axis_y + 15}' text-anchor='middle' "
            f"fill='#475569'>{escape(duration_label(t))}</text>"
        )
    axis_note = "seconds since the fault was injected"
    if not aligned:
        axis_note += " (health samples: seconds since sampling began; offset not recorded)"
    out.append(
        f"<text x='{left + plot_w / 2}' y='{axis_y + 29}' text-anchor='middle' "
        f"fill='#334155'>{escape(axis_note)}</text>"
    )
    out.append(
        f"<text x='{left - 6}' y='{strip_y + 10}' text-anchor='end' fill='#475569'>/health</text>"
    )
    # status strip: one rect per sample, reaching to the next sample
    ordered = sorted(samples, key=lambda s: s.at_s)
    for index, sample in enumerate(ordered):
        end = ordered[index + 1].at_s if index + 1 < len(ordered) else sample.at_s + 0.2
        x0, x1 = x_of(sample.at_s), x_of(min(end, high))
        tip = f"{sample.at_s:.2f}s: {sample.status or 'no answer'} {sample.error}".strip()
        out.append(
            f"<rect class='sample' x='{_f(x0)}' y='{strip_y}' "
            f"width='{_f(max(x1 - x0, 0.8))}' height='{strip_h}' "
            f"fill='{status_colour(sample)}'><title>{escape(tip)}</title></rect>"
        )
    if not ordered:
        out.append(
            f"<text x='{left + 4}' y='{strip_y + 10}' fill='#64748b'>"
            "no health samples recorded</text>"
        )
    # latency line, failed samples as red dots
    if ordered:
        points = " ".join(f"{_f(x_of(s.at_s))},{_f(y_of(s.latency_ms))}" for s in ordered)
        out.append(
            f"<polyline class='latency' points='{points}' fill='none' "
            "stroke='#0ea5e9' stroke-width='1.5'/>"
        )
        for s in ordered:
            if s.status != 200:
                out.append(
                    f"<circle cx='{_f(x_of(s.at_s))}' cy='{_f(y_of(s.latency_ms))}' "
                    f"r='2.2' fill='{status_colour(s)}'/>"
                )
    # events
    marks = [
        (
            x_of(e.at_s),
            f"{e.name} {duration_label(round(e.at_s, 2))}",
            EVENT_COLOURS.get(e.name, "#334155"),
        )
        for e in events
    ]
    for label, event in zip(
        _place_labels(marks, rows, width - 4), sorted(events, key=lambda e: e.at_s), strict=True
    ):
        y_text = 12 + label.row * 14
        out.append(
            f"<g class='event' data-event='{escape(event.name)}'>"
            f"<title>{escape(f'{event.name} at {event.at_s:.2f}s: {event.detail}')}"
            "</title>"
            f"<line x1='{_f(label.x)}' x2='{_f(label.x)}' y1='{y_text + 3}' "
            f"y2='{axis_y}' stroke='{label.colour}' stroke-width='1.4' "
            "stroke-dasharray='4 3'/>"
            f"<text x='{_f(label.x - 3 if label.flipped else label.x + 3)}' y='{y_text}' "
            f"text-anchor='{'end' if label.flipped else 'start'}' fill='{label.colour}' "
            f"font-weight='600'>{escape(label.text)}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[str, float | None], ...]  # (x label, value or None = no value)
    colour: str = "#2563eb"


def trend(
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 220,
    budget_s: float | None = None,
    title: str = "",
    unit: str = "s",
) -> str:
    """A line chart over drills (x: one slot per drill, labelled by date)."""
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

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart trend' role='img' "
        f"width='{width}' height='{height}' viewBox='0 0 {width} {height}' {FONT} "
        "font-size='10'>"
    ]
    out.append(f"<title>{escape(title or 'trend')}</title>")
    out.append(
        f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' "
        "fill='#f8fafc' stroke='#cbd5e1'/>"
    )
    for value in ticks(0, y_max, 4):
        y = y_of(value)
        out.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{_f(y)}' y2='{_f(y)}' stroke='#e2e8f0'/>"
        )
        out.append(
            f"<text x='{left - 6}' y='{_f(y + 3)}' text-anchor='end' fill='#475569'>"
            f"{value:g}{unit}</text>"
        )
    step = max(1, math.ceil(len(labels) / 8))
    for index, label in enumerate(labels):
        if index % step == 0 or index == len(labels) - 1:
            out.append(
                f"<text x='{_f(x_of(index))}' y='{top + plot_h + 14}' "
                f"text-anchor='middle' fill='#475569'>{escape(label)}</text>"
            )
    if show_budget and budget_s is not None:
        y = y_of(budget_s)
        out.append(
            f"<line class='budget' x1='{left}' x2='{left + plot_w}' y1='{_f(y)}' "
            f"y2='{_f(y)}' stroke='#dc2626' stroke-dasharray='6 4'/>"
            f"<text x='{left + plot_w - 4}' y='{_f(y - 4)}' text-anchor='end' "
            f"fill='#dc2626'>budget {duration_label(budget_s)}</text>"
        )
    for number, item in enumerate(series):
        coords = [(x_of(i), y_of(v)) for i, (_, v) in enumerate(item.points) if v is not None]
        if len(coords) > 1:
            points = " ".join(f"{_f(x)},{_f(y)}" for x, y in coords)
            out.append(
                f"<polyline class='series' data-series='{escape(item.name)}' "
                f"points='{points}' fill='none' stroke='{item.colour}' "
                "stroke-width='2'/>"
            )
        for (x, y), (label, v) in zip(
            coords, [p for p in item.points if p[1] is not None], strict=True
        ):
            out.append(
                f"<circle cx='{_f(x)}' cy='{_f(y)}' r='3' fill='{item.colour}'>"
                f"<title>{escape(f'{item.name} {label}: {v:g}{unit}')}</title></circle>"
            )
        legend_x = left + number * 150
        out.append(
            f"<rect x='{legend_x}' y='8' width='10' height='10' fill='{item.colour}'/>"
            f"<text x='{legend_x + 14}' y='17' fill='#334155'>{escape(item.name)}</text>"
        )
    out.append(
        f"<text x='{left + plot_w / 2}' y='{height - 8}' text-anchor='middle' "
        "fill='#334155'>drills, oldest first</text>"
    )
    out.append("</svg>")
    return "".join(out)


def budget_bar(value: float | None, budget: float, *, width: int = 120) -> str:
    """A small bar: the share of the budget a time used (log-scaled past 10 %)."""
    if value is None or budget <= 0:
        return ""
    share = value / budget
    # linear is unreadable for 2 s of 900 s: map [0.001, 1] logarithmically onto the bar
    filled = 0.0 if share <= 0 else min(1.0, max(0.02, 1 + math.log10(max(share, 1e-3)) / 3))
    colour = OK_COLOUR if share <= 1 else DOWN_COLOUR
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='budget-bar' width='{width}' "
        f"height='10' viewBox='0 0 {width} 10'><title>{share * 100:.1f}% of the budget "
        f"(log scale)</title><rect width='{width}' height='10' rx='2' fill='#e2e8f0'/>"
        f"<rect width='{_f(filled * width)}' height='10' rx='2' fill='{colour}'/></svg>"
    )
