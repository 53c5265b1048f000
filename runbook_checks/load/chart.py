"""The load run's timeline chart: requests/s, failures/s and users each second, with
the stages' starts and the timeline's marks (a fault injected, reverted ...).

Geometry only, as view data (coordinates formatted); the markup is the `load_timeline`
macro of evidence/templates/charts.svg, where every label and tooltip is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runbook_checks.evidence.svg import (
    Dot,
    EventMark,
    Frame,
    Tick,
    _place_labels,
    duration_label,
    nice_ceiling,
    ticks,
)
from runbook_checks.load.shapes import Stage
from runbook_checks.load.timeline import Timeline

REQUESTS_COLOUR, FAILURES_COLOUR, USERS_COLOUR = "#2563eb", "#dc2626", "#7c3aed"
STAGE_COLOUR, MARK_COLOUR = "#64748b", "#b45309"
# the chart's legend: colour, what it means
LEGEND = (
    (REQUESTS_COLOUR, "requests/s"),
    (FAILURES_COLOUR, "failures/s"),
    (USERS_COLOUR, "users (right axis)"),
    (STAGE_COLOUR, "stage starts"),
    (MARK_COLOUR, "marks"),
)


def _f(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class LoadTimelineView:
    frame: Frame
    grid: tuple[Tick, ...]  # requests/s grid lines (y), labelled on the left
    user_ticks: tuple[Tick, ...]  # users (y), labelled on the right
    x_ticks: tuple[Tick, ...]  # seconds since the start (x)
    axis_y: int
    right_x: int  # where the right axis' labels start
    centre_x: str
    requests: str  # polyline points ("" without seconds)
    failures: str
    users: str
    failed: tuple[Dot, ...]  # seconds with failures, with their tooltip
    marks: tuple[EventMark, ...]  # stage starts and the timeline's marks
    seconds: int


def load_timeline_view(
    timeline: Timeline, stages: Sequence[Stage], *, width: int = 1000
) -> LoadTimelineView:
    """The per-second timeline of a load run (seconds since its first second on x)."""
    left, right, rows = 58, 58, 3
    top = 14 * rows + 10
    plot_h = 170
    axis_y = top + plot_h
    plot_w = width - left - right
    seconds = timeline.seconds
    start = timeline.start_t
    end = max([1.0, *(s.offset_s + 1 for s in seconds), *(st.until_s for st in stages)])

    def x_of(offset: float) -> float:
        return left + max(0.0, min(offset, end)) / end * plot_w

    y_max = nice_ceiling(max([1.0, *(s.requests for s in seconds)]) * 1.1)
    u_max = nice_ceiling(
        max([1.0, *(s.users or 0 for s in seconds), *(st.users for st in stages)]) * 1.1
    )

    def y_of(value: float, top_value: float) -> float:
        return axis_y - min(value, top_value) / top_value * plot_h

    def line(values: Sequence[tuple[float, float]], top_value: float) -> str:
        return " ".join(f"{_f(x_of(t))},{_f(y_of(v, top_value))}" for t, v in values)

    # each second's count drawn across its second (a step line: a count is per second)
    requests = [(s.offset_s + d, float(s.requests)) for s in seconds for d in (0, 1)]
    failures = [(s.offset_s + d, float(s.failures)) for s in seconds for d in (0, 1)]
    users = [
        (s.offset_s + d, float(s.users)) for s in seconds if s.users is not None for d in (0, 1)
    ]
    marks: list[tuple[float, str, str, str, str]] = []
    begin = 0.0
    for stage in stages:
        marks.append(
            (
                begin,
                f"{stage.users} users",
                STAGE_COLOUR,
                "stage",
                f"stage from {begin:g}s to {stage.until_s:g}s: {stage.users} users",
            )
        )
        begin = stage.until_s
    for mark in timeline.marks:
        offset = mark.t - start
        marks.append((offset, mark.label, MARK_COLOUR, "mark", f"{mark.label} at {offset:.1f}s"))
    marks.sort(key=lambda m: m[0])
    placed = _place_labels([(x_of(m[0]), m[1], m[2]) for m in marks], rows, width - 4)
    return LoadTimelineView(
        frame=Frame(
            width,
            axis_y + 34,
            "requests, failures and users each second",
            left,
            top,
            plot_w,
            plot_h,
        ),
        grid=tuple(
            Tick(_f(y_of(v, y_max)), f"{v:g}/s", _f(y_of(v, y_max) + 3)) for v in ticks(0, y_max, 4)
        ),
        user_ticks=tuple(
            Tick(_f(y_of(v, u_max)), f"{v:g}", _f(y_of(v, u_max) + 3)) for v in ticks(0, u_max, 4)
        ),
        x_ticks=tuple(Tick(_f(x_of(t)), duration_label(t)) for t in ticks(0, end, 8)),
        axis_y=axis_y,
        right_x=left + plot_w + 6,
        centre_x=_f(left + plot_w / 2),
        requests=line(requests, y_max),
        failures=line(failures, y_max),
        users=line(users, u_max),
        failed=tuple(
            Dot(
                _f(x_of(s.offset_s + 0.5)),
                _f(y_of(s.failures, y_max)),
                FAILURES_COLOUR,
                f"{s.offset_s:g}s: {s.failures} of {s.requests} requests failed",
            )
            for s in seconds
            if s.failures
        ),
        marks=tuple(
            label.mark(kind, tip) for label, (*_, kind, tip) in zip(placed, marks, strict=True)
        ),
        seconds=len(seconds),
    )
