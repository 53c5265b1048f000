"""Pool headroom from synthetic samples and history: when the pool saturated, and what
pool the measured load needs (Little's law), without servers."""

from __future__ import annotations

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
    # sized from the unsaturated stages, extrapolated to 40 users: more than 2 needed
    assert result.needed is not None
    assert result.needed > 2
    assert result.enough is False
    assert any("extrapolated from 20 users" in note for note in result.notes)


def test_timeouts_alone_count_as_saturation() -> None:
    pool = samples(10, {10: ([1], 0, 0), 20: ([1], 0, 4), 40: ([1], 0, 0)})
    result = compute_headroom(pool, history())
    assert result.saturation is not None
    assert result.saturation.users == 20
    assert "gave up waiting" in result.saturation.reason


def test_saturated_everywhere_falls_back_to_the_observed_peak() -> None:
    pool = samples(2, {10: ([2], 3, 0), 20: ([2], 9, 0), 40: ([2], 17, 0)})
    result = compute_headroom(pool, history())
    assert result.needed == 19  # max(in_use + waiting)
    assert result.recommended == 24
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
