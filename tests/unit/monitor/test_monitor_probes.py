"""Symptom bullets -> probes: small shapes, the shipped runbook, the corrected one."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from files_api.errors import storage_unavailable
from files_profile import VOCABULARY
from runbook_checks.monitor.probes import (
    HttpProbe,
    Probe,
    ProbeKind,
    format_duration,
    symptom_probes,
)
from runbook_checks.runbook import parse_runbook, parse_text

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "runbooks" / "files-incident-response.md"
CORRECTED = ROOT / "tests" / "fixtures" / "runbooks" / "files-incident-response.corrected.md"
TWIN = ROOT / "files_api"
JOB = 'job="files-api"'


def probe_of(symptom: str, window_s: float = 10.0) -> Probe:
    text = textwrap.dedent(
        f"""\
        # Runbook
        ## SEV-2: Something wrong
        ### Symptoms
        - {symptom}
        ### Investigation
        ```bash
        pg_isready
        ```
        """
    )
    (probe,) = symptom_probes(parse_text(text, Path("small.md")), VOCABULARY, window_s=window_s)
    assert probe.line == 4
    assert probe.symptom == symptom
    assert probe.section_id == "sev-2-something-wrong"
    assert probe.severity == "SEV-2"
    return probe


# ------------------------------------------------------------------ threshold shapes


@pytest.mark.parametrize(
    ("symptom", "ratio"),
    [
        ("Error rate > 5% on `/api/storage/files/upload`", "0.05"),
        ("Error rate >5 % on /api/storage/files/upload", "0.05"),
        ("error rate above 12.5% on /api/storage/files/upload", "0.125"),
    ],
)
def test_error_rate_percentages(symptom: str, ratio: str) -> None:
    probe = probe_of(symptom)
    assert probe.kind is ProbeKind.PROMQL
    assert probe.alert
    failed = 'route="/api/storage/files/upload",status=~"[45].."}[10s]'
    assert failed in probe.expr
    assert probe.expr.endswith(f") > {ratio}")
    assert "4xx or 5xx" in probe.note  # the twin records refused uploads as failures


def test_error_rate_without_a_route_counts_server_errors_and_skips_the_scrape() -> None:
    probe = probe_of("Error rate > 1%")
    assert 'route!="/metrics",status=~"5.."' in probe.expr
    assert probe.expr.endswith("> 0.01")
    assert probe.rule is not None
    assert probe.rule.name == "ErrorRateHigh"


@pytest.mark.parametrize(
    ("symptom", "quantile", "seconds", "threshold"),
    [
        ("API response time > 2s (p95)", "0.95", "2", "> 2s (p95)"),
        ("p95 > 2s", "0.95", "2", "> 2s (p95)"),
        ("p99 latency over 500ms", "0.99", "0.5", "over 500ms (p99)"),
        ("Listing takes over 2 seconds", "0.5", "2", "over 2 seconds"),
        ("95th percentile response time above 1.5 s", "0.95", "1.5", "above 1.5 s"),
    ],
)
def test_latency_thresholds(symptom: str, quantile: str, seconds: str, threshold: str) -> None:
    probe = probe_of(symptom)
    assert probe.kind is ProbeKind.PROMQL
    assert probe.alert
    assert probe.expr.startswith(f"histogram_quantile({quantile}, sum by (route, le) (rate(")
    assert "http_request_duration_seconds_bucket" in probe.expr
    assert probe.expr.endswith(f"[10s]))) > {seconds}")
    assert probe.threshold.startswith(threshold.split(" (")[0])
    if quantile == "0.5":
        assert "median" in probe.note


def test_equals_zero_and_zero_req_per_second() -> None:
    connections = probe_of("Grafana: Database connections = 0")
    assert connections.expr == 'pg_up{job="postgres"} == 0'
    assert connections.threshold == "= 0"
    assert connections.alert
    assert "stays at 1" in connections.note  # why not the API's pool gauge

    traffic = probe_of("Grafana: 0 req/s on API dashboard")
    assert traffic.expr == (
        f'(sum(rate(http_requests_total{{{JOB},route!="/metrics"}}[10s])) or vector(0)) == 0'
    )
    assert traffic.alert
    assert traffic.threshold == "0 req/s"


def test_traffic_above_and_connections_above() -> None:
    busy = probe_of("More than 200 requests per second")
    assert busy.expr.endswith("[10s])) > 200")
    assert busy.rule is not None
    assert busy.rule.name == "TrafficHigh"
    many = probe_of("Database connections > 80")
    assert many.expr == 'sum(pg_stat_activity_count{job="postgres"}) > 80'
    assert many.alert


@pytest.mark.parametrize(
    ("symptom", "status"),
    [
        ("Uploads return 500", "5.."),
        ("Listing answers 5xx", "5.."),
        ("`GET /api/storage/files` returns 503", "503"),
        ("Share links answer 404", "404"),
    ],
)
def test_status_codes_are_rates_of_those_answers(symptom: str, status: str) -> None:
    probe = probe_of(symptom)
    assert probe.kind is ProbeKind.PROMQL
    assert probe.alert
    assert f'status=~"{status}"' in probe.expr
    assert probe.expr.endswith(" > 0")
    if "GET /api" in symptom:
        assert 'route="/api/storage/files",method="GET"' in probe.expr


def test_a_status_of_an_anonymous_path_is_an_http_probe_with_a_rule() -> None:
    probe = probe_of("`/health` endpoint returns 500 or times out")
    assert probe.kind is ProbeKind.HTTP
    assert probe.http == HttpProbe("GET", "/health", "5xx-or-timeout")
    assert probe.alert
    assert probe.expr.startswith(f"(up{{{JOB}}} == 0) or (")
    assert 'route="/health",status=~"5.."' in probe.expr
    plain = probe_of("/api/status returns 503")
    assert plain.http == HttpProbe("GET", "/api/status", "5xx")


def test_a_number_that_is_a_threshold_is_not_a_status() -> None:
    assert probe_of("More than 500 req/s").expr.endswith("> 500")
    queue = probe_of("Upload queue holds over 400 files")
    assert queue.kind is ProbeKind.MANUAL  # 400 is a count here, not a status
    assert probe_of("Upload queue holds 400 files").expr == ""
    assert probe_of("Listing answers with more than 400 files").expr == ""
    assert 'status=~"5.."' in probe_of("HTTP 500 on uploads").expr
    assert 'status=~"503"' in probe_of("Many 503 errors").expr


def test_all_requests_is_a_share_of_the_answers() -> None:
    probe = probe_of("All API requests return 500")
    assert probe.expr == (
        f'sum(rate(http_requests_total{{{JOB},route!="/metrics",status=~"5.."}}[10s])) / '
        f'sum(rate(http_requests_total{{{JOB},route!="/metrics"}}[10s])) >= 0.9'
    )
    assert "503" in probe.note


def test_shapes_without_a_number_have_no_rule() -> None:
    spike = probe_of("Sentry: Spike in errors")
    assert spike.kind is ProbeKind.PROMQL
    assert spike.expr.endswith('status=~"5.."}[10s])) > 0')
    assert not spike.alert
    assert spike.rule is None
    down = probe_of("API server is down")
    assert down.expr == f"up{{{JOB}}} == 0"
    assert down.alert


def test_people_pages_status_pages_negatives_and_unknown_text() -> None:
    people = probe_of("Multiple user reports of upload failures")
    assert people.kind is ProbeKind.MANUAL
    assert not people.measurable
    assert "people" in people.reason
    pages = probe_of("Slow page loads (> 3s)")
    assert pages.kind is ProbeKind.MANUAL
    assert "browser" in pages.reason
    assert pages.threshold == "> 3s"
    status = probe_of("Supabase status page shows outage")
    assert status.kind is ProbeKind.STATUS_PAGE
    assert status.provider == "supabase"
    assert probe_of("The status page is red").kind is ProbeKind.MANUAL
    negative = probe_of("No system-wide outage")
    assert negative.http == HttpProbe("GET", "/health", "2xx")
    assert not negative.alert
    odd = probe_of("The moon is in the seventh house")
    assert odd.kind is ProbeKind.MANUAL
    assert odd.reason == "no measurable signal recognised in: The moon is in the seventh house"


def test_quoted_messages_known_and_unknown() -> None:
    known = probe_of('Logs show "ECONNREFUSED" or "Connection timeout"')
    assert known.kind is ProbeKind.LOG
    assert known.log_pattern == "ECONNREFUSED|ETIMEDOUT|Connection timeout"
    unknown = probe_of('Error: "Quota (10GB) exceeded"')
    assert unknown.kind is ProbeKind.LOG
    assert re.search(unknown.log_pattern, 'level=error msg="Quota (10GB) exceeded"')
    assert not re.search(unknown.log_pattern, "Quota 10GB exceeded")
    assert "as written" in unknown.note
    slow = probe_of('User complaints about "slow" app')
    assert slow.kind is ProbeKind.MANUAL  # a word people use, not a message


def test_http_probe_refuses_an_unknown_condition() -> None:
    with pytest.raises(ValueError, match="observed_when 'sometimes'"):
        HttpProbe("GET", "/health", "sometimes")


def test_windows_are_prometheus_durations() -> None:
    assert [format_duration(s) for s in (10, 300, 150, 0.5, 3600, 90061)] == [
        "10s",
        "5m",
        "2m30s",
        "500ms",
        "1h",
        "1d1h1m1s",
    ]
    assert "[5m]" in probe_of("Error rate > 5%", window_s=300).expr


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=120
    ).filter(str.strip)
)
def test_never_raises_on_odd_text(symptom: str) -> None:
    runbook = parse_text(f"# R\n## SEV-1: X\n### Symptoms\n- {symptom}\n", Path("odd.md"))
    for probe in symptom_probes(runbook, VOCABULARY):
        assert probe.kind in ProbeKind
        if probe.kind is ProbeKind.MANUAL:
            assert probe.reason
        if probe.alert:
            assert probe.expr
            assert probe.rule is not None


# ------------------------------------------------------------------ the shipped runbook

SHARE_ROUTES = r'route=~"/share/\\{token\\}|/share/\\{token\\}/download",status=~"4.."'
# line -> (kind, expr fragment or log pattern or provider or reason fragment, alert)
SHIPPED_PROBES: dict[int, tuple[ProbeKind, str, bool]] = {
    69: (ProbeKind.HTTP, f"(up{{{JOB}}} == 0) or (sum by (instance)", True),
    70: (ProbeKind.PROMQL, 'route!="/metrics",status=~"5.."}[10s])) > 0', False),
    71: (ProbeKind.PROMQL, "or vector(0)) == 0", True),
    153: (ProbeKind.PROMQL, ">= 0.9", True),
    154: (ProbeKind.LOG, "ECONNREFUSED|ETIMEDOUT|Connection timeout", False),
    155: (ProbeKind.PROMQL, 'pg_up{job="postgres"} == 0', True),
    231: (ProbeKind.LOG, "object storage failed", False),
    232: (ProbeKind.LOG, "File not found", False),
    233: (ProbeKind.STATUS_PAGE, "supabase", False),
    280: (ProbeKind.MANUAL, "people, not a signal", False),
    281: (ProbeKind.PROMQL, 'route="/api/storage/files/upload",status=~"[45].."', True),
    282: (ProbeKind.HTTP, "", False),
    338: (ProbeKind.MANUAL, "the stack has no front end", False),
    339: (ProbeKind.PROMQL, "histogram_quantile(0.95, sum by (route, le)", True),
    340: (ProbeKind.MANUAL, "people, not a signal", False),
    401: (ProbeKind.PROMQL, SHARE_ROUTES, False),
    402: (ProbeKind.LOG, "Share link expired or invalid", False),
}


def _what(probe: Probe) -> str:
    return probe.expr or probe.log_pattern or probe.provider or probe.reason


def test_shipped_runbook_symptoms_become_these_probes() -> None:
    probes = symptom_probes(parse_runbook(SHIPPED), VOCABULARY)
    assert [p.line for p in probes] == list(SHIPPED_PROBES)
    for probe in probes:
        kind, fragment, alert = SHIPPED_PROBES[probe.line]
        assert (probe.kind, probe.alert) == (kind, alert), probe.symptom
        assert fragment in _what(probe), probe.symptom
        assert probe.alert == (probe.rule is not None)
    by_line = {p.line: p for p in probes}
    assert by_line[69].http == HttpProbe("GET", "/health", "5xx-or-timeout")
    assert by_line[282].http == HttpProbe("GET", "/health", "2xx")
    assert by_line[281].threshold == "> 5%"
    assert by_line[339].threshold == "> 2s (p95)"
    assert "Access denied" in by_line[401].note
    assert "people" in by_line[401].note
    assert [p.section_id for p in probes[:3]] == ["sev-1-api-server-down"] * 3
    assert sum(p.alert for p in probes) == 6
    assert sum(not p.measurable for p in probes) == 3


def test_corrected_runbook_has_the_same_probes_at_its_own_lines() -> None:
    shipped = symptom_probes(parse_runbook(SHIPPED), VOCABULARY)
    corrected = symptom_probes(parse_runbook(CORRECTED), VOCABULARY)
    lines = CORRECTED.read_text(encoding="utf-8").split("\n")
    assert len(corrected) == len(shipped)
    for before, after in zip(shipped, corrected, strict=True):
        assert lines[after.line - 1] == f"- {after.symptom}"
        assert (after.kind, after.expr, after.log_pattern, after.alert) == (
            before.kind,
            before.expr,
            before.log_pattern,
            before.alert,
        )


def test_the_twin_writes_the_words_the_log_probes_look_for() -> None:
    """Every alternative of a message's log pattern is text the twin's code writes, so
    a LOG probe can match a real line (the words follow the twin when it changes)."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in TWIN.glob("*.py"))
    # the details the twin composes at run time, made by its own functions
    source += storage_unavailable(OSError("refused"), "download the file").detail
    for quoted, message in VOCABULARY.messages.items():
        for alternative in filter(None, message.log_pattern.split("|")):
            assert alternative in source or alternative == "Connection timeout", quoted
        for route in message.routes:
            assert f'"{route}"' in source, route


def test_vocabulary_routes() -> None:
    assert VOCABULARY.route_of("/health") == "/health"
    assert VOCABULARY.route_of("/api/storage/files/upload") == "/api/storage/files/upload"
    assert VOCABULARY.route_of("/share/abc123xyz") == "/share/{token}"
    assert VOCABULARY.route_of("/share/abc123xyz/download?x=1") == "/share/{token}/download"
    assert VOCABULARY.route_of("/api/storage/files/123/download") == (
        "/api/storage/files/{file_id}/download"
    )
    assert VOCABULARY.route_of("/charges") is None
    assert VOCABULARY.failure_status("/api/storage/files/upload") == "[45].."
    assert VOCABULARY.failure_status("/health") == "5.."
