"""report.md from templates (report.md and one included template per section)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from runbook_checks.drill.result import Alerting, Verdict
from runbook_checks.evidence import md_report
from runbook_checks.evidence.coverage import coverage
from runbook_checks.evidence.journal import Journal, ScenarioRecord
from runbook_checks.runbook.model import Runbook
from tests.unit.evidence.test_report_templates import _hostile_journal

if TYPE_CHECKING:
    from conftest import Builders


def _journal(build: Builders, variant: str) -> Journal:
    if variant == "hostile":
        return _hostile_journal(build)
    if variant == "passed":
        return build.journal([ScenarioRecord(build.result())])
    # a game day whose drills failed and ran slow: post-mortem drafts, no alerting measured
    document = replace(build.finding(), line=None, suggestion="")  # no line, no fix
    wrong = build.result(verdict=Verdict.RUNBOOK_WRONG, findings=(document,), ttr=1200.0)
    slow = build.result(option="B", scenario="scenarios/test_api.py::test_option_b", ttr=950.0)
    slow = replace(slow, alerting=Alerting(measured=False, note="no Prometheus"))
    return build.journal([ScenarioRecord(wrong), ScenarioRecord(slow)], kind="gameday")


H = "<script>alert('x')</script> & \"quotes\""


def _report(build: Builders, runbook: Runbook, variant: str) -> str:
    journal = _journal(build, variant)
    return md_report.report_md(journal, coverage(runbook, journal.scenarios), runbook)


# What the string code wrote for the hostile journal (compared line for line with the
# templates before it was removed, commit 9774be7): the blocks a reader relies on.
HOSTILE_BLOCKS = (
    "# Runbook drills: Incident Response Runbook\n\nEvidence bundle `",
    "## Summary\n\n| scenario | fault | verdict | alert | detect | recover | budget | "
    "of budget | lost | findings |\n|---|---|---|---|---|---|---|---|---|---|\n"
    f"| {H} name / option A | {H} fault | error ({H} outcome) | 0.8s | 0.4s | 2.5s | "
    "15m00s | 0.3% | 1 | 1 |\n\n## Scenarios\n\n"
    f"### {H} name / option A: error\n\n",
    f"*{H} note*\n\n**Error:** {H} error\n\n| at | event | detail |\n|---|---|---|\n"
    "| +0.00s | steady | steady state holds |\n",
    f"| +1.50s | {H} mark | {H} event |\n\n| line | phase | by |",
    "\n\nHealth samples: 21, failed 13. Ledger: 12 acknowledged of 20 attempted, "
    "11 stable, 1 lost.\n\nTime to alert: 0.8s (",
    f"| 69 | {H} symptom | http | seen | {H} probe |\n\n"
    "Status update (investigating, from the template 'Status Page Update', line 126):\n\n"
    f"> {H} update\n>\n> {H} body\n\nSeverity: written SEV-1, measured SEV-1 ({H} why); "
    f"impact: {H} impact.\n\n## Triage matrix\n\n",
    "Each section's measurable symptoms that the drill's fault showed (observed / "
    "measurable); the drilled section in bold.\n\n"
    f"| drill | sev-1-api-server-down | {H} column |\n|---|---|---|\n"
    f"| {H} name / option A | **1/1** | 0/1 |\n\n## Runbook coverage\n\n",
    "| 0 | not drilled |\n\nDid not run here (not counted as drilled):\n\n"
    f"- `{H} skipped` ({H} section): {H} skip-reason\n\n"
    "Stale baseline entries (matched nothing; remove them):\n\n"
    f"- `{H} stale`\n\n## Findings\n\n- **[error] {H} kind** (sev-1-api-server-down, "
    f"line 110, `c8a17ea778fa`): {H} message\n  - Suggested fix: {H} suggestion\n\n"
    "## Environment\n\n| what | value |\n|---|---|\n",
    f"| version: {H} component | {H} version |\n\n## Post-mortem drafts\n\n"
    "One per failed or slow scenario, in the shape of the runbook's Post-Mortem Template, "
    f"filled from what was measured.\n\n### Incident Post-Mortem: Drill: {H} name / "
    "option A\n\n#### Incident Details\n",
)


def test_report_md_prints_every_part_of_the_session(build: Builders, runbook: Runbook) -> None:
    text = _report(build, runbook, "hostile")
    at = 0
    for block in HOSTILE_BLOCKS:  # each present, in this order
        found = text.find(block, at)
        assert found >= 0, block
        at = found + len(block)
    assert text.endswith("- (to be scheduled: date, attendees)\n")


def test_report_md_of_a_failed_game_day(build: Builders, runbook: Runbook) -> None:
    text = _report(build, runbook, "failed-gameday")
    assert text.startswith("# Game day: Incident Response Runbook\n")
    assert "option B: passed\n" in text
    assert "\n\nAlerts: no Prometheus.\n\n" in text
    assert "(sev-1-api-server-down, document, `" in text  # a finding without a line
    assert text.count("### Incident Post-Mortem: Drill: ") == 2  # wrong, and slow
    assert "## Triage matrix" not in text  # no drill measured symptoms
    assert "Did not run here" not in text


def test_report_md_of_a_passed_session(build: Builders, runbook: Runbook) -> None:
    text = _report(build, runbook, "passed")
    assert "\n## Findings\n\nNo findings.\n\n## Environment\n" in text
    assert "Post-mortem" not in text
