"""The review across drills over synthetic evidence folders, and period parsing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runbook_checks.cli import main
from runbook_checks.drill.result import Verdict
from runbook_checks.errors import UsageError
from runbook_checks.evidence.bundle import write_bundle
from runbook_checks.evidence.journal import ScenarioRecord
from runbook_checks.evidence.review import aggregate, parse_period
from runbook_checks.evidence.review_report import review_html, review_md
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

if TYPE_CHECKING:
    from conftest import Builders

A = "scenarios/test_api.py::test_option_a"
B = "scenarios/test_api.py::test_option_b"


@pytest.fixture
def evidence(tmp_path: Path, build: Builders, runbook: Runbook) -> Path:
    """Four drills in 2026Q4 (recovery getting faster; a finding opened then closed), one
    in Q3, and one drill of option B against an older text of its section."""
    folder = tmp_path / "evidence"
    finding = build.finding()
    drills = [
        (datetime(2026, 7, 20, tzinfo=UTC), 9.0, Verdict.PASSED, ()),
        (datetime(2026, 10, 2, tzinfo=UTC), 8.0, Verdict.RUNBOOK_WRONG, (finding,)),
        (datetime(2026, 10, 30, tzinfo=UTC), 6.0, Verdict.RUNBOOK_WRONG, (finding,)),
        (datetime(2026, 11, 20, tzinfo=UTC), 4.0, Verdict.PASSED, ()),
        (datetime(2026, 12, 15, tzinfo=UTC), 2.0, Verdict.PASSED, ()),
    ]
    for when, ttr, verdict, findings in drills:
        records = [
            ScenarioRecord(build.result(ttr=ttr, verdict=verdict, findings=findings, scenario=A))
        ]
        if when.month == 11:
            records.append(
                ScenarioRecord(build.result(option="B", scenario=B, section_hash="0" * 64))
            )
        write_bundle(
            build.journal(records, when=when), folder, runbook=runbook, redactor=Redactor()
        )
    return folder


def test_quarter_and_date_periods() -> None:
    q4 = parse_period("2026Q4")
    assert (q4.start, q4.end) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    q1 = parse_period("2027-q1")
    assert (q1.start, q1.end, q1.label) == (
        datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2027, 4, 1, tzinfo=UTC),
        "2027Q1",
    )
    assert q4.contains(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert not q4.contains(datetime(2027, 1, 1, tzinfo=UTC))
    since = parse_period("2026-11-01")
    assert since.end is None
    assert since.contains(datetime(2030, 1, 1, tzinfo=UTC))
    assert not since.contains(datetime(2026, 10, 31, tzinfo=UTC))
    for bad in ("2026Q5", "Q4", "last quarter", "2026-13-01"):
        with pytest.raises(UsageError, match="expected a date"):
            parse_period(bad)


def test_quarter_review_shows_the_trend(evidence: Path, runbook: Runbook) -> None:
    review = aggregate(evidence, parse_period("2026Q4"), runbook)
    assert len(review.bundles) == 4  # the July drill is outside the quarter
    trend = next(t for t in review.scenarios if t.scenario == A)
    assert trend.times("time_to_recover_s") == [8.0, 6.0, 4.0, 2.0]
    assert trend.pass_rate == pytest.approx(0.5)
    html = review_html(review)
    chart = re.search(r"<svg[^>]*class='chart trend'.*?</svg>", html, re.S)
    assert chart is not None
    svg = ET.fromstring(chart.group(0))
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert {p.get("data-series") for p in lines} == {"time to detect", "time to recover"}
    recover = next(p for p in lines if p.get("data-series") == "time to recover")
    ys = [float(pt.split(",")[1]) for pt in (recover.get("points") or "").split()]
    assert len(ys) == 4
    assert ys == sorted(ys)
    assert "8.0s → 6.0s → 4.0s → 2.0s" in review_md(review)


def test_findings_opened_and_closed_across_drills(evidence: Path, runbook: Runbook) -> None:
    review = aggregate(evidence, parse_period("2026Q4"), runbook)
    [history] = review.findings
    assert history.opened == datetime(2026, 10, 2, tzinfo=UTC)
    assert history.closed == datetime(2026, 11, 20, tzinfo=UTC)
    assert not history.is_open
    assert "| closed | mitigation-step-failed |" in review_md(review)


def test_sections_never_drilled_and_drilled_on_outdated_text(
    evidence: Path, runbook: Runbook
) -> None:
    review = aggregate(evidence, parse_period("2026Q4"), runbook)
    never = {(g.section_id, g.option) for g in review.never_drilled}
    assert ("sev-1-database-failure", "A") in never
    assert ("sev-3-share-links-not-working", "1") in never
    assert ("sev-1-api-server-down", "A") not in never
    assert [(g.section_id, g.option) for g in review.outdated] == [("sev-1-api-server-down", "B")]
    md = review_md(review)
    assert "SEV-1: Database Failure: Option A: Kill Long-Running Queries" in md
    assert "Option B: Failover to Standby (last drilled 2026-11-20 on text `000000000000`" in md


def test_an_altered_bundle_is_refused_naming_the_file(evidence: Path, runbook: Runbook) -> None:
    victim = sorted(p for p in evidence.iterdir() if p.name.startswith("20261120"))[0]
    (victim / "report.md").write_text("rewritten")
    review = aggregate(evidence, parse_period("2026Q4"), runbook)
    assert len(review.bundles) == 3  # none of the altered bundle is used
    assert victim.name not in {b.journal.id for b in review.bundles}
    [refused] = review.refused
    assert refused.message() == (
        f"bundle {victim.name} refused: altered: report.md (sha256 differs from the manifest)"
    )
    trend = next(t for t in review.scenarios if t.scenario == A)
    assert trend.times("time_to_recover_s") == [8.0, 6.0, 2.0]
    html = review_html(review)
    assert f"evidence refused: bundle {victim.name}" in html
    assert "altered: report.md (sha256 differs from the manifest)" in html
    assert f"**evidence refused**: bundle {victim.name} refused: altered: report.md" in (
        review_md(review)
    )


def test_report_command_writes_html_and_markdown(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "review"
    assert (
        main(["report", "--since", "2026Q4", "--evidence-dir", str(evidence), "--out", str(out)])
        == 0
    )
    assert (out / "review.html").read_text().startswith("<!DOCTYPE html>")
    assert "# Runbook drill review: 2026Q4" in (out / "review.md").read_text()
    assert "4 evidence bundle(s) 2026Q4" in capsys.readouterr().out


def test_report_command_exits_1_naming_an_altered_bundle(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report` is `review` over the evidence folder: a refused bundle fails it too."""
    victim = sorted(p for p in evidence.iterdir() if p.name.startswith("20261120"))[0]
    (victim / "report.md").write_text("rewritten")
    argv = ["report", "--since", "2026Q4", "--evidence-dir", str(evidence)]
    assert main([*argv, "--out", str(tmp_path / "review")]) == 1
    captured = capsys.readouterr()
    assert f"REFUSED bundle {victim.name} refused: altered: report.md" in captured.err
    assert "3 evidence bundle(s) 2026Q4" in captured.out


def test_report_command_refuses_a_bad_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--since", "someday", "--evidence-dir", str(tmp_path)]) == 2
    assert "expected a date (2026-10-01) or a quarter (2026Q4)" in capsys.readouterr().err
