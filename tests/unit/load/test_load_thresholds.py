"""Thresholds from the runbook, applied per endpoint to locust's stats CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.load.locust_csv import read_failures, read_history, read_stats
from runbook_checks.load.thresholds import (
    Limit,
    Thresholds,
    evaluate,
    from_runbook,
)
from runbook_checks.runbook.parser import parse_runbook

ROOT = Path(__file__).resolve().parents[3]
HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def stats_csv(tmp_path: Path, rows: list[tuple[str, str, int, int, int]]) -> Path:
    """rows: (method, name, requests, failures, p95 ms); an aggregated row is added."""
    lines = [HEADER]
    total = failures = 0
    worst = 0
    for method, name, n, fail, p95 in rows:
        total, failures, worst = total + n, failures + fail, max(worst, p95)
        lines.append(
            f"{method},{name},{n},{fail},{p95 // 2},{p95 / 2},1,{p95 * 1.2},100,{n / 10},"
            f"{fail / 10},{p95 // 2},1,1,1,1,{p95},1,{p95},1,1,{p95}"
        )
    lines.append(
        f",Aggregated,{total},{failures},1,1,1,{worst},1,1,1,1,1,1,1,1,{worst},1,{worst},1,1,1"
    )
    path = tmp_path / "locust_stats.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_run_within_the_lines_passes(tmp_path: Path) -> None:
    stats = read_stats(
        stats_csv(
            tmp_path, [("GET", "/api/storage/files", 500, 2, 180), ("GET", "/health", 40, 0, 20)]
        )
    )
    verdict = evaluate(stats, Thresholds())
    assert verdict.passed
    assert {c.endpoint for c in verdict.checks} == {"GET /api/storage/files", "GET /health"}
    assert verdict.summary().startswith("PASS")


def test_a_slow_endpoint_breaks_the_p95_line_and_is_named(tmp_path: Path) -> None:
    stats = read_stats(
        stats_csv(
            tmp_path,
            [("POST", "/api/storage/files/upload", 100, 0, 2400), ("GET", "/health", 50, 0, 30)],
        )
    )
    verdict = evaluate(stats, Thresholds())
    assert not verdict.passed
    (upload,) = verdict.breaches  # the aggregate is shown, not judged (implied by these)
    assert (upload.endpoint, upload.metric) == ("POST /api/storage/files/upload", "p95_ms")
    assert "POST /api/storage/files/upload: p95 2400 ms > 2000 ms" in verdict.summary()


def test_an_error_rate_above_five_percent_breaks_and_counts_the_failures(tmp_path: Path) -> None:
    stats = read_stats(stats_csv(tmp_path, [("GET", "/share/[token]", 200, 11, 50)]))
    verdict = evaluate(stats, Thresholds())
    messages = [c.describe() for c in verdict.breaches]
    assert "GET /share/[token]: error rate 5.5% > 5.0% (11 of 200 requests failed)" in messages


def test_exactly_on_the_line_is_not_a_breach(tmp_path: Path) -> None:
    stats = read_stats(stats_csv(tmp_path, [("GET", "/a", 100, 5, 2000)]))
    assert evaluate(stats, Thresholds()).passed  # the runbook's lines are "> 2s", "> 5%"


def test_per_endpoint_overrides_and_min_requests(tmp_path: Path) -> None:
    stats = read_stats(
        stats_csv(
            tmp_path,
            [("POST", "/api/storage/files/upload", 100, 0, 4000), ("GET", "/health", 3, 3, 10)],
        )
    )
    thresholds = Thresholds(Limit(5000, 0.05), min_requests=10).with_overrides(
        ["POST /api/storage/files/upload:p95_ms=3000", "GET /health:error_rate=50"]
    )
    assert thresholds.limit_for("GET /health") == Limit(5000, 0.5)
    verdict = evaluate(stats, thresholds)
    assert [c.endpoint for c in verdict.breaches] == ["POST /api/storage/files/upload"]
    assert verdict.not_judged == ("GET /health (3 requests)",)


def test_a_bad_override_says_how_to_write_it() -> None:
    with pytest.raises(UsageError, match="ENDPOINT:p95_ms=MS"):
        Thresholds().with_overrides(["GET /health p95 3000"])


def test_the_lines_come_from_the_runbooks_own_text() -> None:
    runbook = parse_runbook(ROOT / "runbooks/files-incident-response.md")
    thresholds = from_runbook(runbook)
    assert thresholds.default == Limit(2000.0, 0.05)
    p95_source, error_source = thresholds.sources
    assert "SEV-2: Performance Degradation" in p95_source
    assert "API response time > 2s (p95)" in p95_source
    assert "Error rate > 5%" in error_source


def test_flags_win_over_the_runbook_and_defaults_fill_gaps() -> None:
    thresholds = from_runbook(None, p95_ms=800)
    assert thresholds.default == Limit(800, 0.05)
    assert thresholds.sources[0] == "p95 <= 800 ms: --p95-ms"
    assert "default" in thresholds.sources[1]
    with pytest.raises(UsageError, match="out of range"):
        from_runbook(None, error_rate=5.0)


def test_history_and_failures_are_read(tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text(
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,"
        "99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response "
        "Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,"
        "Total Average Content Size\n"
        "100,0,,Aggregated,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0,0,0,0\n"
        "101,5,GET,/health,1,0,5,5,5,5,5,5,5,5,5,5,5,3,0,5,5,5,5,5\n"
        "101,5,,Aggregated,3,0,5,5,5,5,5,7,5,5,5,5,5,3,0,5,5,5,5,5\n"
    )
    points = read_history(history)
    assert [(p.t, p.users, p.requests_total, p.p95_ms) for p in points] == [
        (100, 0, 0, None),
        (101, 5, 3, 7),
    ]
    failures = tmp_path / "f.csv"
    failures.write_text(
        "Method,Name,Error,Occurrences\nGET,/health,\"HTTPError('503 Server Error')\",4\n"
    )
    assert read_failures(failures)[0].occurrences == 4
    assert read_failures(tmp_path / "missing.csv") == []
    with pytest.raises(UsageError, match="missing"):
        read_stats(tmp_path / "missing.csv")
