"""Load shapes as plain data: a list of stages, and which stage holds at a given second.

Locust's `LoadTestShape` classes (`loadtests/shapes.py`) are thin adapters over these
functions, so the shapes are unit-tested here without importing locust (and gevent's
monkey-patching) into the suite's own process.

- ``baseline``: ramp to `users` over a short ramp, hold until the end.
- ``step``: the traffic increase the post-mortem describes ("50% more users"): four
  equal stages at 100%, 125%, 150% and 200% of `users`, each reached within ~2 s.
- ``spike``: `users` for 40% of the run, three times as many for 20%, back to `users`
  for the last 40% (recovery after the spike is part of the evidence).
- ``soak``: `users` held for a long time after a gentle ramp (leaks, slow drift).

Every shape is bounded: the last stage ends at `duration_s`, and the peak user count is
`peak_factor(shape) * users`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runbook_checks.errors import UsageError

SHAPES = ("baseline", "step", "spike", "soak")
STEP_FACTORS = (1.0, 1.25, 1.5, 2.0)  # +25%, +50%, +100%
SPIKE_FACTOR = 3.0
MAX_USERS = 5000  # peak users of one run, across all workers
MAX_DURATION_S = 24 * 3600.0
MIN_DURATION_S = {"baseline": 2.0, "step": 8.0, "spike": 5.0, "soak": 2.0}


@dataclass(frozen=True)
class Stage:
    """Hold `users` until `until_s` (seconds since the start), reaching it at `spawn_rate`
    users per second (also the rate at which users stop when the count goes down)."""

    until_s: float
    users: int
    spawn_rate: float


def peak_factor(shape: str) -> float:
    _check_name(shape)
    return {"step": STEP_FACTORS[-1], "spike": SPIKE_FACTOR}.get(shape, 1.0)


def plan(shape: str, users: int, duration_s: float) -> tuple[Stage, ...]:
    """The stages of `shape` for `users` (the baseline user count) over `duration_s`."""
    _check(shape, users, duration_s)
    if shape == "step":
        return _step(users, duration_s)
    if shape == "spike":
        return _spike(users, duration_s)
    ramp_s = min(10.0, duration_s * 0.1) if shape == "baseline" else min(60.0, duration_s * 0.1)
    return (Stage(duration_s, users, _rate(users, ramp_s)),)


def stage_at(stages: tuple[Stage, ...], run_time_s: float) -> Stage | None:
    """The stage in force at `run_time_s`; None once the last stage has ended (stop)."""
    for stage in stages:
        if run_time_s < stage.until_s:
            return stage
    return None


def tick(stages: tuple[Stage, ...], run_time_s: float) -> tuple[int, float] | None:
    """What `LoadTestShape.tick` returns: (users, spawn rate), or None to stop."""
    stage = stage_at(stages, run_time_s)
    return None if stage is None else (stage.users, stage.spawn_rate)


def describe(stages: tuple[Stage, ...]) -> str:
    parts, start = [], 0.0
    for stage in stages:
        parts.append(f"{stage.users} users {start:g}-{stage.until_s:g}s")
        start = stage.until_s
    return ", ".join(parts)


# ------------------------------------------------------------------ shapes


def _step(users: int, duration_s: float) -> tuple[Stage, ...]:
    stage_s = duration_s / len(STEP_FACTORS)
    stages: list[Stage] = []
    previous = 0
    for i, factor in enumerate(STEP_FACTORS):
        count = max(previous, round(users * factor))  # below 4 users steps can coincide
        ramp_s = min(5.0, stage_s / 4) if i == 0 else min(2.0, stage_s / 4)
        stages.append(Stage(stage_s * (i + 1), count, _rate(max(count - previous, 1), ramp_s)))
        previous = count
    return tuple(stages)


def _spike(users: int, duration_s: float) -> tuple[Stage, ...]:
    peak = max(users + 1, round(users * SPIKE_FACTOR))
    ramp_s = min(5.0, duration_s * 0.1)
    fast_s = min(1.0, duration_s * 0.05)
    return (
        Stage(duration_s * 0.4, users, _rate(users, ramp_s)),
        Stage(duration_s * 0.6, peak, _rate(peak - users, fast_s)),
        Stage(duration_s, users, _rate(peak - users, fast_s)),
    )


def _rate(delta: int, within_s: float) -> float:
    """Users per second that make a change of `delta` users within `within_s`."""
    return float(max(1, math.ceil(abs(delta) / max(within_s, 0.5))))


# ------------------------------------------------------------------ validation


def _check_name(shape: str) -> None:
    if shape not in SHAPES:
        raise UsageError(f"unknown load shape {shape!r}; expected one of {', '.join(SHAPES)}")


def _check(shape: str, users: int, duration_s: float) -> None:
    _check_name(shape)
    if users < 1:
        raise UsageError(f"--users {users}: expected at least 1 user")
    peak = math.ceil(users * peak_factor(shape))
    if peak > MAX_USERS:
        raise UsageError(
            f"--users {users} with the {shape} shape peaks at {peak} users, above the "
            f"bound of {MAX_USERS}",
            hint=f"lower --users to at most {int(MAX_USERS / peak_factor(shape))}",
        )
    low = MIN_DURATION_S[shape]
    if not math.isfinite(duration_s) or not low <= duration_s <= MAX_DURATION_S:
        raise UsageError(
            f"--duration {duration_s:g}: the {shape} shape needs {low:g}..{MAX_DURATION_S:g} "
            "seconds",
            hint="every load run is bounded in time; pass a duration in that range",
        )
