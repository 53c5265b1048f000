"""The runbook coverage matrix: section x option x who did the work.

One row per scenario section's investigation and per mitigation option, computed from
the parsed runbook (how many steps, how many can run) and the drills' step records
(which of those steps ran, as written, and who did each). A row's cell (`status`):

- verified: every executable step of the row ran as written and succeeded, and nothing
  was done in its place;
- assisted: the harness did part of the row's work (a prose step, a value the text
  lacks, a command that failed as written, a fix the runbook lacks);
- recovered by waiting: the failure ended by itself (a provider's outage); the row's
  steps ran as written and kept data safe meanwhile;
- manual only: the row has no executable step; only people can carry it out;
- failed: a step of the row failed, or the row's drill did not detect or recover;
- partly verified: some executable steps of the row were run by no drill;
- skipped (reason): its scenarios did not run here (a capability missing);
- not drilled: no scenario exercises the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runbook_checks.drill.result import Actor, Verdict
from runbook_checks.evidence.journal import ScenarioRecord, SkippedScenario
from runbook_checks.runbook.model import Runbook, Section, Step

INVESTIGATION = "investigation"


@dataclass(frozen=True)
class CoverageRow:
    section_id: str
    section_title: str
    severity: str | None
    option: str  # option key, or "investigation"
    option_title: str
    steps: int
    executable: int
    manual: int
    verified: int  # steps of this row a drill ran with status ok
    failed: int  # steps of this row a drill ran and that failed or errored
    drills: tuple[str, ...] = ()  # scenario ids that exercised the row
    verdicts: tuple[str, ...] = ()
    assisted: int = 0  # steps of the row the harness did in the runbook's place
    skipped: tuple[str, ...] = ()  # why the row's scenarios did not run here
    by_hand: bool = False  # a game day: people did the steps, outside the tool

    @property
    def status(self) -> str:
        if not self.drills:
            if self.skipped:
                return f"skipped ({'; '.join(sorted(set(self.skipped)))})"
            return "not drilled"
        bad = {Verdict.RUNBOOK_WRONG.value, Verdict.FAILED.value, Verdict.ERROR.value}
        if self.failed or (self.option != INVESTIGATION and bad & set(self.verdicts)):
            return "failed"
        if self.assisted or (
            self.option != INVESTIGATION and Verdict.ASSISTED.value in self.verdicts
        ):
            return "assisted"
        if self.by_hand:
            return "passed by hand"
        if not self.executable:
            return "manual only"
        if self.verified < self.executable:
            return "partly verified"
        if self.option != INVESTIGATION and Verdict.RECOVERED_BY_WAITING.value in self.verdicts:
            return "recovered by waiting"
        return "verified"


def _lines(steps: Sequence[Step]) -> set[int]:
    return {s.line for s in steps}


def _row(
    section: Section,
    key: str,
    title: str,
    steps: Sequence[Step],
    records: Sequence[ScenarioRecord],
    phases: tuple[str, ...],
    skipped: Sequence[SkippedScenario],
) -> CoverageRow:
    lines = _lines(steps)
    if key == INVESTIGATION:
        drills = [r for r in records if r.result.section_id == section.id]
    else:
        drills = [
            r
            for r in records
            if r.result.section_id == section.id and (r.result.option or "").lower() == key.lower()
        ]
    verified: set[int] = set()
    failed: set[int] = set()
    assisted: set[int] = set()
    for record in drills:
        for step in record.result.steps:
            if step.line not in lines:
                continue
            if step.by is Actor.HARNESS and key != INVESTIGATION:
                assisted.add(step.line)
            if step.phase not in phases or step.by is not Actor.RUNBOOK:
                continue
            if step.status == "ok":
                verified.add(step.line)
            elif step.status in ("failed", "error"):
                failed.add(step.line)
    title_key = key.lower()
    why = tuple(
        s.reason
        for s in skipped
        if s.section_title == section.title
        and (key == INVESTIGATION or (s.option or "").lower() == title_key)
    )
    return CoverageRow(
        section_id=section.id,
        section_title=section.title,
        severity=section.severity,
        option=key,
        option_title=title,
        steps=len(steps),
        executable=sum(1 for s in steps if s.executable),
        manual=sum(1 for s in steps if not s.executable),
        verified=len(verified),
        failed=len(failed - verified),
        drills=tuple(r.result.scenario for r in drills),
        verdicts=tuple(r.result.verdict.value for r in drills),
        assisted=len(assisted),
        skipped=why,
        by_hand=any(r.outcome == "gameday" and r.result.verdict.earned for r in drills),
    )


def coverage(
    runbook: Runbook,
    records: Sequence[ScenarioRecord],
    skipped: Sequence[SkippedScenario] = (),
) -> list[CoverageRow]:
    rows: list[CoverageRow] = []
    for section in runbook.scenarios:
        if section.investigation:
            rows.append(
                _row(
                    section,
                    INVESTIGATION,
                    "Investigation",
                    section.investigation,
                    records,
                    (INVESTIGATION,),
                    skipped,
                )
            )
        for option in section.options:
            rows.append(
                _row(
                    section,
                    option.key,
                    option.title,
                    option.steps,
                    records,
                    ("mitigation", "investigation", "operator"),
                    skipped,
                )
            )
    return rows
