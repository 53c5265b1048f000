"""report.md from templates (report.md and one included template per section)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

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


@pytest.mark.parametrize("variant", ["hostile", "passed", "failed-gameday"])
def test_report_md_from_templates_equals_the_string_code(
    build: Builders, runbook: Runbook, variant: str
) -> None:
    journal = _journal(build, variant)
    rows = coverage(runbook, journal.scenarios)
    old = md_report._old_report_md(journal, rows, runbook)
    new = md_report.report_md(journal, rows, runbook)
    assert new == old


def test_variants_reach_every_part(build: Builders, runbook: Runbook) -> None:
    text = md_report.report_md(
        j := _journal(build, "failed-gameday"), coverage(runbook, j.scenarios), runbook
    )
    for part in ("# Game day: ", "## Post-mortem drafts", "Alerts: no Prometheus.", ", document, "):
        assert part in text, part
