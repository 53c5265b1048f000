"""A load run's report inputs built by hand (no locust, no stack): what the report
tests render."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from runbook_checks.load import shapes
from runbook_checks.load.headroom import Headroom, Projection, Saturation, StageLoad
from runbook_checks.load.locust_csv import EndpointStats, Failure
from runbook_checks.load.locust_process import LocustCpu
from runbook_checks.load.pool import PoolSample
from runbook_checks.load.runner import LoadSpec, _Run
from runbook_checks.load.thresholds import Limit, ThresholdResult, Thresholds, evaluate
from runbook_checks.load.timeline import Mark, Second, Timeline

T0 = 1_700_000_000
Inputs = tuple[_Run, list[EndpointStats], ThresholdResult, Headroom, Timeline]


def stats_row(method: str, name: str, requests: int, failures: int, p95: float) -> EndpointStats:
    return EndpointStats(
        method, name, requests, failures, p95 / 3, p95 / 2, p95 * 2, requests / 20, p95, p95 * 1.5
    )


def inputs(
    folder: Path,
    *,
    endpoint: str = "/api/files/[id]",
    mark: str = "fault injected",
    error: str = "HTTPError('503 | Service Unavailable')",
    saturated: bool = True,
) -> Inputs:
    stages = shapes.plan("step", 10, 20)
    spec = LoadSpec(
        locustfile=Path("loadtests/locustfile.py"),
        shape="step",
        users=10,
        duration_s=20,
        thresholds=Thresholds(
            Limit(800.0, 0.01),
            {"POST /api/storage/files/upload": Limit(10000.0, 0.01)},
            min_requests=5,
            sources=("p95 800 ms: runbook line 42", "error rate 1%: --error-rate"),
        ),
    )
    run = _Run(spec, "abc123", folder, stages, datetime(2026, 12, 6, 5, 0, tzinfo=UTC))
    run.target = "embedded stack, DB_POOL_SIZE=2"
    run.pool_size = 2
    run.locust_exit = 1
    run.cpu = LocustCpu({"master": 3.5, "worker-1": 1.25}, 0.95)
    run.samples = [PoolSample(T0 + 1, 2, 2, 3, 5, 0.0, {"active": 2})]
    run.failures = [
        Failure("GET", endpoint, error, 7),
        Failure("POST", "/api/storage/files/upload", "ConnectionError()", 2),
    ]
    stats = [
        stats_row("GET", endpoint, 200, 10, 1200.0),
        stats_row("POST", "/api/storage/files/upload", 50, 0, 900.0),
        stats_row("GET", "/health", 3, 0, 5.0),
        stats_row("", "Aggregated", 253, 10, 1100.0),
    ]
    verdict = evaluate(stats, spec.thresholds)
    headroom = Headroom(
        pool_size=2,
        samples=80,
        stages=(
            StageLoad(10, T0, T0 + 10, 40, 9.5, 1.8, 0.4, 2, 3, 0, 0.25, 2),
            StageLoad(20, T0 + 10, T0 + 20, 40, None, 2.0, 5.2, 2, 9, 3, 0.9, None),
        ),
        saturation=Saturation(20, 10.5, "3 requests waiting for a connection", 10)
        if saturated
        else None,
        hold_ms_per_request=48.0,
        rps_per_user=0.95,
        peak_users=20,
        observed_peak_demand=11,
        needed=4,
        recommended=5,
        basis="Little's law over the unsaturated stage",
        margin=0.25,
        projections=(Projection(20, 1.9, 4, 5), Projection(40, 3.8, 7, 9)),
        notes=("the pool was saturated in the last stage",),
    )
    seconds = tuple(
        Second(
            T0 + i,
            float(i),
            10 if i < 10 else 20,
            10 + i,
            3 if i in (12, 13) else 0,
            40.0 + i,
            90.0 + 3 * i,
            200.0,
            {40.0 + i: 8, 90.0 + 3 * i: 2 + i},
        )
        for i in range(22)
    )
    timeline = Timeline(float(T0), seconds, {}, (Mark(T0 + 12.5, mark),))
    return run, stats, verdict, headroom, timeline
