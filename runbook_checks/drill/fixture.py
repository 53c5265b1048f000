"""What the `drill` fixture gives a scenario: `drill.verify(Scenario(...))`.

It runs the drill for the test's `@pytest.mark.runbook(section, option=...)` and turns
the verdict into the test's outcome: passed; runbook defects all acknowledged in the
reviewed baseline -> xfail naming them; any new runbook defect, lost data or a drill
that could not run -> failed, with the findings and evidence in the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.drill.result import DrillResult, Event, Verdict
from runbook_checks.drill.runner import Drill
from runbook_checks.drill.spec import Scenario
from runbook_checks.gate.baseline import Baseline
from runbook_checks.runbook.model import Runbook
from runbook_checks.stack.base import Stack


@dataclass
class Journal:
    """Every drill result of the session, in order (evidence writes it out)."""

    results: list[DrillResult] = field(default_factory=list)

    def add(self, result: DrillResult) -> None:
        self.results.append(result)


@dataclass
class DrillFixture:
    stack: Stack
    runbook: Runbook
    section: str
    option: str | None
    scenario_id: str
    work_dir: Path
    baseline: Baseline
    on_result: Callable[[DrillResult], None]
    clock: Clock = SYSTEM_CLOCK
    on_event: Callable[[DrillResult, Event], None] | None = None

    def run(self, scenario: Scenario) -> DrillResult:
        drill = Drill(
            self.stack,
            self.runbook,
            self.section,
            self.option,
            scenario_id=self.scenario_id,
            work_dir=self.work_dir,
            clock=self.clock,
            on_result=self.on_result,
            on_event=self.on_event,
        )
        return drill.run(scenario)

    def verify(self, scenario: Scenario) -> DrillResult:
        result = self.run(scenario)
        conclude(result, self.baseline)
        return result


def explain(result: DrillResult) -> str:
    lines = [f"{result.section_title} / option {result.option or '-'}: {result.summary_line()}"]
    if result.error:
        lines.append(f"  {result.error}")
    for finding in result.findings:
        lines.append(f"  {finding.headline()}")
        if finding.suggestion:
            lines.append(f"      fix: {finding.suggestion}")
    return "\n".join(lines)


def conclude(result: DrillResult, baseline: Baseline) -> None:
    """Raise the pytest outcome the verdict calls for (or return on a pass)."""
    if result.verdict is Verdict.PASSED:
        return
    if result.verdict is Verdict.RUNBOOK_WRONG:
        new = [f for f in result.runbook_errors if baseline.entry_for(f) is None]
        if not new:
            reasons = "; ".join(
                f"{f.kind} at line {f.line} ({entry.reason})"
                for f in result.runbook_errors
                if (entry := baseline.entry_for(f)) is not None
            )
            pytest.xfail(f"runbook defect acknowledged in the baseline: {reasons}")
        pytest.fail(
            "the runbook is wrong here (new finding, not in the baseline):\n" + explain(result),
            pytrace=False,
        )
    pytest.fail(explain(result), pytrace=False)
