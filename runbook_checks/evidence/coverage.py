"""The runbook coverage matrix: section x option x executable / manual / verified.

One row per scenario section's investigation and per mitigation option, computed from
the parsed runbook (how many steps, how many can run) and the drills' step records
(which of those steps ran, and ran clean, in a drill of that section and option).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runbook_checks.drill.result import Verdict
from runbook_checks.evidence.journal import ScenarioRecord
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

    @property
    def status(self) -> str:
        if not self.drills:
            return "not drilled"
        if Verdict.PASSED.value in self.verdicts:
            # a game day passes with the steps done by people, outside the tool
            return "verified" if self.verified or not self.executable else "passed by hand"
        return self.verdicts[-1]


def _lines(steps: Sequence[Step]) -> set[int]:
    return {s.line for s in steps}


def _row(
    section: Section,
    key: str,
    title: str,
    steps: Sequence[Step],
    records: Sequence[ScenarioRecord],
    phases: tuple[str, ...],
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
    for record in drills:
        for step in record.result.steps:
            if step.line not in lines or step.phase not in phases:
                continue
            if step.status == "ok":
                verified.add(step.line)
            elif step.status in ("failed", "error"):
                failed.add(step.line)
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
    )


def coverage(runbook: Runbook, records: Sequence[ScenarioRecord]) -> list[CoverageRow]:
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
                )
            )
    return rows
