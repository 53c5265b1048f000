"""Load shapes as data: stages, bounds, and what locust's tick() would return."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_checks.errors import UsageError
from runbook_checks.load import shapes


def test_step_is_the_traffic_increase_of_the_post_mortem() -> None:
    stages = shapes.plan("step", 20, 120)
    assert [s.users for s in stages] == [20, 25, 30, 40]  # +25%, +50%, +100%
    assert [s.until_s for s in stages] == [30, 60, 90, 120]
    assert shapes.tick(stages, 0) == (20, stages[0].spawn_rate)
    assert shapes.tick(stages, 65)[0] == 30  # type: ignore[index]
    assert shapes.tick(stages, 120) is None  # the shape ends the run


def test_tiny_counts_round_and_never_exceed_the_peak() -> None:
    assert [s.users for s in shapes.plan("step", 4, 8)] == [4, 5, 6, 8]
    assert [s.users for s in shapes.plan("step", 1, 8)] == [1, 1, 2, 2]


def test_spike_returns_to_the_baseline_for_recovery() -> None:
    stages = shapes.plan("spike", 10, 100)
    assert [(s.until_s, s.users) for s in stages] == [(40, 10), (60, 30), (100, 10)]
    assert stages[1].spawn_rate >= 20  # the spike arrives within about a second


def test_baseline_and_soak_hold_one_count() -> None:
    for name in ("baseline", "soak"):
        (stage,) = shapes.plan(name, 50, 600)
        assert (stage.users, stage.until_s) == (50, 600)
    assert (
        shapes.plan("soak", 50, 3600)[0].spawn_rate
        < shapes.plan("baseline", 50, 3600)[0].spawn_rate
    )  # the soak ramps gently


@pytest.mark.parametrize(
    ("shape", "users", "duration", "message"),
    [
        ("ramp", 10, 60, "unknown load shape 'ramp'"),
        ("step", 0, 60, "--users 0"),
        ("spike", 2000, 60, "peaks at 6000 users"),
        ("step", 10, 4, "the step shape needs 8"),
        ("soak", 10, 200000, "needs 2..86400"),
        ("baseline", 10, float("nan"), "--duration nan"),
    ],
)
def test_unbounded_or_unknown_runs_are_refused(
    shape: str, users: int, duration: float, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        shapes.plan(shape, users, duration)


@given(
    shape=st.sampled_from(shapes.SHAPES),
    users=st.integers(1, 1000),
    duration=st.floats(8, 7200),
    at=st.floats(0, 8000),
)
def test_every_plan_is_bounded_and_ends(shape: str, users: int, duration: float, at: float) -> None:
    stages = shapes.plan(shape, users, duration)
    assert stages[-1].until_s == duration
    assert all(a.until_s < b.until_s for a, b in itertools.pairwise(stages))
    assert max(s.users for s in stages) <= round(users * shapes.peak_factor(shape))
    assert all(s.spawn_rate >= 1 for s in stages)
    result = shapes.tick(stages, at)
    assert (result is None) == (at >= duration)
