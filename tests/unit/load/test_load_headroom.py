"""Pool headroom from synthetic samples and history: when the pool saturated, and what
pool the measured load needs (Little's law), without servers."""

from __future__ import annotations

import collections
import heapq
import itertools
import random

import pytest

from runbook_checks.load.headroom import Saturation, compute_headroom, poisson_quantile
from runbook_checks.load.locust_csv import HistoryPoint
from runbook_checks.load.pool import PoolSample

T0 = 1_700_000_000.0
STAGES = ((0, 10), (10, 20), (20, 40))  # (from second, users)


def users_at(second: float) -> int:
    return [u for start, u in STAGES if second >= start][-1]


def history(rps_per_user: float = 1.0, seconds: int = 30) -> list[HistoryPoint]:
    points, total = [], 0.0
    for s in range(seconds + 1):
        points.append(HistoryPoint(T0 + s, users_at(s), int(total), 0, None))
        total += users_at(s) * rps_per_user
    return points


def samples(pool_size: int, shape: dict[int, tuple[list[int], int, int]]) -> list[PoolSample]:
    """Four samples a second; per user count: (in_use cycle, waiting, timeouts per s)."""
    out = []
    timeouts = 0.0
    for i in range(30 * 4):
        second = i / 4 + 0.1
        cycle, waiting, timeouts_per_s = shape[users_at(second)]
        timeouts += timeouts_per_s / 4
        out.append(
            PoolSample(
                T0 + second,
                size=pool_size,
                in_use=cycle[i % len(cycle)],
                waiting=waiting,
                connections=pool_size,
                timeouts_total=float(int(timeouts)),
                activity={"active": 1, "idle": pool_size},
            )
        )
    return out


def test_poisson_quantile() -> None:
    assert [poisson_quantile(m) for m in (0, 0.1, 1, 2, 20, 100)] == [0, 1, 4, 6, 31, 124]
    with pytest.raises(ValueError, match="quantile"):
        poisson_quantile(3, 1.5)


def test_an_adequate_pool_never_saturates_and_littles_law_sizes_it() -> None:
    # W = 50 ms per request, 1 request/s per user: mean in_use = users * 0.05
    pool = samples(20, {10: ([0, 1], 0, 0), 20: ([1], 0, 0), 40: ([2], 0, 0)})
    result = compute_headroom(pool, history())
    assert result.saturation is None
    assert result.pool_size == 20
    assert [s.users for s in result.stages] == [10, 20, 40]
    assert result.hold_ms_per_request == pytest.approx(50, rel=0.1)
    assert result.rps_per_user == pytest.approx(1.0, rel=0.1)
    assert result.peak_users == 40
    (at_peak, *growth) = result.projections
    assert at_peak.users == 40
    assert at_peak.busy_connections == pytest.approx(2.0, rel=0.15)
    assert result.needed == poisson_quantile(at_peak.busy_connections)
    assert result.recommended == -(-result.needed * 5 // 4)  # +25%, rounded up
    assert [p.users for p in growth] == [50, 60, 80]  # +25%, +50%, +100%
    assert growth[-1].needed > at_peak.needed
    assert result.enough is True
    assert "Little's law" in result.basis
    assert not any("recommended pool" in note for note in result.notes)  # nothing queued


def test_a_small_pool_saturates_at_the_step_that_breaks_it() -> None:
    pool = samples(2, {10: ([0, 1], 0, 0), 20: ([1], 0, 0), 40: ([2], 5, 2)})
    result = compute_headroom(pool, history())
    assert result.saturation is not None
    assert result.saturation.users == 40
    assert "all 2 connections in use" in result.saturation.reason
    assert "5 request(s) waiting" in result.saturation.reason
    saturated = {s.users: s.saturated_share for s in result.stages}
    assert saturated[10] == saturated[20] == 0
    assert saturated[40] >= 0.75
    assert result.stages[-1].timeouts > 0
    # every stage counts: at 40 users 5 of them wait, so 2 / 35 connections per user
    # not waiting; with an ample pool all 40 would hold them at that share
    weights = {10: 36, 20: 40, 40: 40}  # samples per stage (the first begins at 0.1 s)
    in_use = {10: 0.5, 20: 1.0, 40: 2.0}
    free = {10: 10, 20: 20, 40: 35}
    share = sum(in_use[u] * w for u, w in weights.items()) / sum(
        free[u] * w for u, w in weights.items()
    )
    assert result.projections[0].busy_connections == pytest.approx(40 * share, rel=0.05)
    assert result.needed is not None
    assert result.needed > 2
    assert result.enough is False
    assert "1 of the stages queued" in result.basis
    assert any("gave up waiting" in note for note in result.notes)
    assert any("confirm with a run on the recommended pool" in n for n in result.notes)


def test_timeouts_alone_count_as_saturation() -> None:
    pool = samples(10, {10: ([1], 0, 0), 20: ([1], 0, 4), 40: ([1], 0, 0)})
    result = compute_headroom(pool, history())
    assert result.saturation is not None
    assert result.saturation.users == 20
    assert "gave up waiting" in result.saturation.reason


def test_saturated_everywhere_still_sizes_from_the_users_not_waiting() -> None:
    pool = samples(2, {10: ([2], 3, 0), 20: ([2], 9, 0), 40: ([2], 17, 0)})
    result = compute_headroom(pool, history())
    assert "Little's law" in result.basis
    assert "3 of the stages queued" in result.basis
    # 2 busy per 7, 11 and 23 users not waiting (weighted by samples), times 40 users
    stages = result.stages
    share = sum(s.mean_in_use * s.samples for s in stages) / sum(
        (s.users - s.mean_waiting) * s.samples for s in stages
    )
    assert 2 / 23 < share < 2 / 7
    assert result.projections[0].busy_connections == pytest.approx(40 * share, rel=0.01)


def test_everyone_waiting_falls_back_to_the_observed_peak() -> None:
    # more requests queued than users run (other clients share the pool)
    pool = samples(2, {10: ([2], 25, 0), 20: ([2], 25, 0), 40: ([2], 45, 0)})
    result = compute_headroom([p for p in pool if p.t < T0 + 20], history())
    assert result.needed == 27  # max(in_use + waiting)
    assert result.recommended == 34
    assert "upper bound" in result.basis
    assert result.projections == ()


def test_a_server_view_that_hides_the_pressure_is_noted() -> None:
    pool = samples(20, {10: ([8], 0, 0), 20: ([8], 0, 0), 40: ([8], 0, 0)})
    result = compute_headroom(pool, history())
    assert any("pg_stat_activity" in note and "understates" in note for note in result.notes)


def test_no_metrics_means_no_headroom_and_says_why() -> None:
    result = compute_headroom([PoolSample(T0, errors=("/metrics: ConnectError",))], history())
    assert result.needed is None
    assert result.samples == 0
    assert "not reachable" in result.notes[0]


def test_saturation_during_a_ramp_names_both_counts() -> None:
    ramp = [HistoryPoint(T0, 0, 0, 0, None), HistoryPoint(T0 + 1, 30, 10, 0, None)]
    pool = [PoolSample(T0 + 0.5, size=2, in_use=2, waiting=4, timeouts_total=0.0)]
    result = compute_headroom(pool, ramp)
    assert result.saturation is not None
    assert result.saturation.describe_users() == "0-30 users (while ramping)"
    assert Saturation(12, 1.0, "x", 12).describe_users() == "12 users"


def closed_workload(
    pool_size: int, *, hold_s: float = 0.1, think_s: float = 1.0, seed: int = 7
) -> tuple[list[PoolSample], list[HistoryPoint]]:
    """A simulated closed workload, as locust's users make one: each user thinks
    (exponential, mean `think_s`), then sends a request that holds one of `pool_size`
    connections for `hold_s` (first come, first served), over the STAGES of users. Pool
    samples four times a second, history once a second, as the load runner takes them."""
    rng = random.Random(seed)
    end = 30.0
    events: list[tuple[float, int, str, int]] = []  # (time, order, kind, user)
    order = itertools.count()
    started: set[int] = set()
    in_use, queue, done = 0, collections.deque[int](), 0
    marks = [(i / 4 + 0.1, "pool") for i in range(30 * 4)] + [(s, "hist") for s in range(31)]
    for t, kind in marks:
        heapq.heappush(events, (t, next(order), kind, -1))
    pool_out: list[PoolSample] = []
    hist_out: list[HistoryPoint] = []

    def think(user: int, now: float) -> None:
        heapq.heappush(events, (now + rng.expovariate(1 / think_s), next(order), "arrive", user))

    def arrive(user: int, now: float) -> None:
        nonlocal in_use
        if in_use < pool_size:
            in_use += 1
            heapq.heappush(events, (now + hold_s, next(order), "release", user))
        else:
            queue.append(user)

    while events:
        now, _, kind, user = heapq.heappop(events)
        if now > end:
            break
        for u in range(users_at(now)):  # users started at a stage's beginning
            if u not in started:
                started.add(u)
                think(u, now)
        if kind == "arrive":
            arrive(user, now)
        elif kind == "release":
            done += 1
            in_use -= 1
            think(user, now)
            if queue:
                arrive(queue.popleft(), now)
        elif kind == "pool":
            pool_out.append(PoolSample(T0 + now, size=pool_size, in_use=in_use,
                                       waiting=len(queue), timeouts_total=0.0))  # fmt: skip
        elif kind == "hist":
            hist_out.append(HistoryPoint(T0 + now, users_at(now), done, 0, None))
    return pool_out, hist_out


def test_the_needed_pool_is_the_same_whatever_pool_it_was_measured_with() -> None:
    # 40 users, 1 s think time, 100 ms per connection: L = 40 * 0.1 / 1.1 = 3.6 busy
    truth = 40 * 0.1 / 1.1
    estimates = {}
    for size in (2, 4, 50):
        result = compute_headroom(*closed_workload(size))
        assert result.hold_ms_per_request == pytest.approx(100, rel=0.1)
        estimates[size] = result.projections[0].busy_connections
    saturated_run = compute_headroom(*closed_workload(2))
    assert saturated_run.saturation is not None
    assert compute_headroom(*closed_workload(50)).saturation is None
    for size, busy in estimates.items():
        assert busy == pytest.approx(truth, rel=0.2), (size, estimates)
    assert max(estimates.values()) / min(estimates.values()) < 1.25, estimates
