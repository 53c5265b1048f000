"""Alerts, triage, severity and status updates in the evidence: the journal keeps them,
report.html shows time-to-alert, the triage heat map and the posted updates, report.md
and the review carry them (no servers)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_checks.drill.result import Alerting, AlertSeen, DrillResult
from runbook_checks.evidence.bundle import render, write_bundle
from runbook_checks.evidence.journal import ScenarioRecord, from_json, to_json
from runbook_checks.evidence.review import aggregate, parse_period
from runbook_checks.evidence.review_report import review_html, review_md
from runbook_checks.monitor.triage import Observation
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

if TYPE_CHECKING:
    from conftest import Builders

API = "sev-1-api-server-down"
DB = "sev-1-database-failure"


def _with_stages(
    result: DrillResult, *, tta: float | None, api_seen: bool, db_seen: bool = True
) -> DrillResult:
    alerts = [AlertSeen("FilesHealthFailing", API, "sev-1", tta, "health")] if tta else []
    return replace(
        result,
        alerting=Alerting(
            measured=True, rules="6 rules derived", window_s=10.0, time_to_alert_s=tta,
            alerts=alerts,
        ),
        triage=[
            Observation(API, 69, "/health returns 500", "http", api_seen, "answered 503"),
            Observation(API, 71, "0 req/s", "promql", False, "returned nothing"),
            Observation(API, 70, "Sentry spike", "manual", None, "people"),
            Observation(DB, 155, "Database connections = 0", "promql", db_seen, "pg_up"),
        ],
        impact={"written": "SEV-1", "measured": "SEV-1", "why": "outage", "description": "x"},
        communication=[
            {
                "stage": "investigating",
                "name": "Major Outage - Files API <Unavailable>",
                "body": "We are investigating.",
                "template": "Status Page Update",
                "line": 126,
                "posted": True,
                "at_s": 1.5,
            },
            {
                "stage": "identified",
                "name": "never posted",
                "body": "",
                "template": "Identified",
                "line": 567,
                "posted": False,
                "at_s": 2.0,
            },
        ],
    )  # fmt: skip


def test_the_journal_keeps_every_stage_and_reads_it_back(build: Builders) -> None:
    result = _with_stages(build.result(), tta=0.8, api_seen=True)
    result.acknowledged_s = 42.0
    journal = build.journal([ScenarioRecord(result, outcome="passed")])
    data: Any = json.loads(json.dumps(to_json(journal)))
    first = data["scenarios"][0]
    assert first["time_to_alert_s"] == 0.8
    assert first["alerting"]["alerts"][0]["section_id"] == API
    assert first["triage"][3]["observed"] is True
    assert first["communication"][0]["posted"] is True
    assert first["acknowledged_s"] == 42.0
    again = from_json(data)
    assert again == journal


def test_report_html_shows_alerts_heat_map_and_what_customers_read(
    build: Builders, runbook: Runbook
) -> None:
    db = build.result(
        section="SEV-1: Database Failure", scenario="scenarios/test_db.py::test_option_a"
    )
    records = [
        ScenarioRecord(_with_stages(build.result(), tta=0.8, api_seen=True), outcome="passed"),
        ScenarioRecord(_with_stages(db, tta=None, api_seen=True), outcome="failed"),
    ]
    html = render(build.journal(records), runbook)["report.html"]
    assert "<h2>Triage matrix</h2>" in html
    assert "class='heat'" in html
    # the drilled section's own cell is outlined; shares are counted over measurable ones
    assert "class='cell own'" in html
    assert ">1/2<" in html  # API: /health seen, 0 req/s not, Sentry not measurable
    assert ">1/1<" in html
    # the summary has a time-to-alert column: 0.8 s for one, none for the other
    assert "<th class='num'>alert</th>" in html
    assert ">none<" in html
    # the posted update, escaped, as customers would read it; the unposted one is not shown
    assert "Major Outage - Files API &lt;Unavailable&gt;" in html
    assert "never posted" not in html
    md = render(build.journal(records), runbook)["report.md"]
    assert "## Triage matrix" in md
    assert "| **1/2** |" in md
    assert "> Major Outage - Files API <Unavailable>" in md


def test_the_review_trends_time_to_alert_and_lists_symptoms_never_seen(
    build: Builders, runbook: Runbook, tmp_path: Path, redactor: Redactor
) -> None:
    day = datetime(2026, 11, 3, tzinfo=UTC)
    for n, (tta, seen) in enumerate([(1.0, False), (2.0, False), (3.0, True)]):
        result = _with_stages(
            build.result(started_wall=(day + timedelta(days=n)).timestamp()),
            tta=tta,
            api_seen=seen,
            db_seen=False,
        )
        journal = build.journal([ScenarioRecord(result)], when=day + timedelta(days=n))
        write_bundle(journal, tmp_path, runbook=runbook, redactor=redactor)
    review = aggregate(tmp_path, parse_period("2026Q4"), runbook)
    (trend,) = review.scenarios
    assert trend.times("time_to_alert_s") == [1.0, 2.0, 3.0]
    assert trend.median("time_to_alert_s") == 2.0
    # line 69 showed in the last drill; line 71 never did; the manual one is not measured;
    # the database section's symptom is not the drilled section's own
    assert [(g.section_id, g.line, g.runs) for g in review.symptoms_never_seen] == [(API, 71, 3)]
    assert "Symptoms never seen in their own drills" in review_html(review)
    assert "0 req/s" in review_md(review)
    assert "median alert" in review_md(review)
