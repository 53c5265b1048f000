"""The load timeline chart's geometry (load/chart.py): what its macro draws."""

from __future__ import annotations

from runbook_checks.load.chart import load_timeline_view
from runbook_checks.load.shapes import Stage
from runbook_checks.load.timeline import Mark, Second, Timeline

T0 = 1_700_000_000


def _timeline(failing: int = 7) -> Timeline:
    seconds = tuple(
        Second(
            T0 + i, float(i), 10 if i < 5 else 20, 100, 50 if i == failing else 0, 10.0, 20.0, 30.0
        )
        for i in range(10)
    )
    return Timeline(float(T0), seconds, {}, (Mark(T0 + 5.0, "fault injected"),))


def test_seconds_marks_and_stages_share_one_time_axis() -> None:
    stages = (Stage(5, 10, 10.0), Stage(10, 20, 10.0))
    view = load_timeline_view(_timeline(), stages, width=1000)
    left, plot_w = view.frame.left, view.frame.plot_w
    assert (left, plot_w) == (58, 884)
    by_text = {m.text: m for m in view.marks}
    assert by_text["fault injected"].x == "500.0"  # 5 s of 10: the middle
    assert by_text["20 users"].x == "500.0"  # the second stage starts at 5 s
    assert by_text["10 users"].x == "58.0"
    assert {m.name for m in view.marks} == {"stage", "mark"}
    # 100 requests/s on a 200/s axis: half the plot's height above the axis
    half = f"{view.axis_y - view.frame.plot_h / 2:.1f}"
    assert view.requests.split()[0] == f"58.0,{half}"
    # one failing second, drawn across it, and a dot with its count in the middle of it
    (dot,) = view.failed
    assert (dot.x, dot.tip) == ("721.0", "7s: 50 of 100 requests failed")
    quarter = f"{view.axis_y - view.frame.plot_h / 4:.1f}"
    assert f"676.8,{quarter} 765.2,{quarter}" in view.failures
    # users on their own axis: 20 users of 50 (the axis is labelled to 40)
    assert view.users.split()[-1] == f"942.0,{view.axis_y - view.frame.plot_h * 0.4:.1f}"
    assert [t.label for t in view.user_ticks] == ["0", "20", "40"]


def test_an_empty_timeline_draws_no_lines_but_the_stages() -> None:
    view = load_timeline_view(Timeline(0.0, (), {}), (Stage(20, 5, 1.0),))
    assert (view.requests, view.failures, view.users, view.seconds) == ("", "", "", 0)
    assert [m.text for m in view.marks] == ["5 users"]
