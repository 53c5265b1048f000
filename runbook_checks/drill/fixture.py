"""What the `drill` fixture gives a scenario: `drill.verify(Scenario(...))`.

It runs the drill for the test's `@pytest.mark.runbook(section, option=...)` and turns
the verdict into the test's outcome: an earned verdict (passed, recovered-by-waiting)
passes; assisted / runbook-wrong / lost writes whose findings are all acknowledged in the
reviewed baseline -> xfail naming them; anything new, or a drill that could not run ->
failed, with the findings and evidence in the message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.drill.incident import IncidentPlan
from runbook_checks.drill.result import DrillResult, Event, Verdict
from runbook_checks.drill.runner import DEFAULT_MAX_WAIT_S, WRITES_LOST, Drill
from runbook_checks.drill.spec import Scenario
from runbook_checks.findings import Finding
from runbook_checks.gate.baseline import Baseline, Entry
from runbook_checks.profile import Profile
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook
from runbook_checks.stack.base import Stack, stack_redactor

NO_SECRETS = Redactor()


@dataclass
class SessionResults:
    """Every drill result of the session, in order (evidence writes them out as its
    `evidence.journal.Journal`); the `journal` fixture."""

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
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    incident: IncidentPlan | None = None  # alerts, triage, severity (None: not watched)
    profile: Profile | None = None  # None: the runbook's own, found beside it

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
            max_wait_s=self.max_wait_s,
            incident=self.incident,
            profile=self.profile,
        )
        return drill.run(scenario)

    def verify(self, scenario: Scenario) -> DrillResult:
        result = self.run(scenario)
        # the outcome's text goes to the console and pytest's reports, past the evidence's
        # redaction: the stack's secrets are taken out of it as out of the evidence
        conclude(result, self.baseline, stack_redactor(self.stack.endpoints))
        return result


def explain(result: DrillResult, redactor: Redactor = NO_SECRETS) -> str:
    """The drill's verdict, error and findings as the test's failure message, with
    `redactor`'s secrets taken out (an error or a finding may quote a command's text or
    output, where a token or a password can stand)."""
    lines = [f"{result.section_title} / option {result.option or '-'}: {result.summary_line()}"]
    if result.error:
        lines.append(f"  {result.error}")
    for finding in result.findings:
        lines.append(f"  {finding.headline()}")
        if finding.suggestion:
            lines.append(f"      fix: {finding.suggestion}")
    return redactor.text("\n".join(lines))


def _acknowledged(result: DrillResult, baseline: Baseline) -> list[tuple[Finding, Entry | None]]:
    """Each ERROR finding with the baseline entry that acknowledges it (None: new). A
    lost-writes entry holds only up to its measured bound (`max_lost`)."""
    lost = len(result.ledger.lost) if result.ledger is not None else 0
    pairs: list[tuple[Finding, Entry | None]] = []
    for finding in result.runbook_errors:
        entry = baseline.entry_for(finding)
        if (
            entry is not None
            and finding.kind == WRITES_LOST
            and (entry.max_lost is None or lost > entry.max_lost)
        ):
            entry = None
        pairs.append((finding, entry))
    return pairs


def conclude(result: DrillResult, baseline: Baseline, redactor: Redactor = NO_SECRETS) -> None:
    """Raise the pytest outcome the verdict calls for (or return on an earned pass).

    `passed` and `recovered-by-waiting` pass; `assisted`, `runbook-wrong` and `failed`
    (lost writes) xfail when every ERROR finding is acknowledged in the baseline (its
    cause fingerprint too), else fail; a drill that could not run fails. The failure's
    text is `explain`ed without `redactor`'s secrets."""
    if result.verdict.earned:
        return
    if result.verdict in (Verdict.ASSISTED, Verdict.RUNBOOK_WRONG, Verdict.FAILED):
        pairs = _acknowledged(result, baseline)
        new = [f for f, entry in pairs if entry is None]
        # lost writes are accepted only by an entry for the loss itself, with its bound
        loss_accepted = any(f.kind == WRITES_LOST and entry for f, entry in pairs)
        if result.verdict is Verdict.FAILED and not loss_accepted:
            pytest.fail(explain(result, redactor), pytrace=False)
        if pairs and not new:
            reasons = "; ".join(
                f"{f.kind} at line {f.line} ({entry.reason})" for f, entry in pairs if entry
            )
            # pytrace=False, as the fails below: the xfail's reason is what the report
            # shows; a traceback would only be formatted (the source parsed) and dropped
            raise pytest.xfail.Exception(
                f"{result.verdict.value}, acknowledged in the baseline: {reasons}", pytrace=False
            )
        if pairs:
            pytest.fail(
                f"{result.verdict.value}: new finding(s), not in the baseline:\n"
                + explain(result, redactor),
                pytrace=False,
            )
    pytest.fail(explain(result, redactor), pytrace=False)
