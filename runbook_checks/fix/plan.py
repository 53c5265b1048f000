"""From findings to a plan: the edits the fixers make, and what is left to the owner.

The findings are the gate's (run on the runbook as it is), the drill findings the
reviewed baseline acknowledges (each with its section, kind and statement: the drills'
known defects, without running them), and those of a drill's findings.json when given.
A finding without a line (a baseline entry) is placed by its statement: the step that
says it, or the option a drill finding names (`OPTION :: scenario`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from runbook_checks.errors import UsageError
from runbook_checks.findings import Finding, Level, normalise_statement
from runbook_checks.fix.edit import Edit
from runbook_checks.fix.fixers import FIXERS, Models
from runbook_checks.gate.baseline import Baseline
from runbook_checks.runbook import mojibake
from runbook_checks.runbook.model import Runbook

# drill findings of a step that failed as written: the edit of that step's line is
# their fix too (the drill proves it or not)
STEP_KINDS = frozenset(
    {
        "mitigation-step-failed",
        "harness-assisted",
        "curl-missing-auth",
        "sql-undefined-column",
        "detection-missed",
    }
)


@dataclass(frozen=True)
class Fix:
    """One edit and the findings it answers (the first is the one the fixer read)."""

    edit: Edit
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, object]:
        return {
            **self.edit.to_json(),
            "findings": [
                {"kind": f.kind, "key": f.key, "source": f.source, "line": f.line}
                for f in self.findings
            ],
        }


@dataclass(frozen=True)
class OwnerItem:
    """What needs the runbook's owner, not a program."""

    finding: Finding
    why: str  # why no program can fix it

    def checklist_line(self) -> str:
        f = self.finding
        where = f"line {f.line}" if f.line else "document"
        todo = f" -> {f.suggestion}" if f.suggestion else ""
        return f"[ ] {where} ({f.section_id or '-'}) {f.kind}: {f.message}{todo}"

    def to_json(self) -> dict[str, object]:
        return {**self.finding.to_json(), "why": self.why}


@dataclass(frozen=True)
class Proposal:
    fixes: tuple[Fix, ...]
    owner_items: tuple[OwnerItem, ...]
    lines: tuple[str, ...]  # the runbook's lines after the edits

    def changed(self, original: Sequence[str]) -> dict[int, tuple[str, str]]:
        """line -> (as written, as fixed), for the lines the edits changed."""
        return {
            n: (original[n - 1], self.lines[n - 1])
            for n in sorted({f.edit.line for f in self.fixes})
            if original[n - 1] != self.lines[n - 1]
        }


def baseline_findings(baseline: Baseline) -> list[Finding]:
    """The drill findings the baseline acknowledges (entries with a cause)."""
    return [
        Finding(
            Level.ERROR,
            e.kind,
            e.section,
            e.reason,
            statement=e.statement,
            source=f"baseline:{baseline.path.name if baseline.path else ''}#{e.index}",
            cause=e.cause,
        )
        for e in baseline.entries
        if e.cause
    ]


def drill_findings(path: Path) -> list[Finding]:
    """The findings of a drill's findings.json (`evidence/<run>/findings.json`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["findings"] if isinstance(data, dict) else data
        return [
            Finding(
                Level(item["level"]),
                str(item["kind"]),
                str(item.get("section_id", "")),
                str(item.get("message", "")),
                line=int(item.get("line", 0)),
                statement=str(item.get("statement", "")),
                suggestion=str(item.get("suggestion", "")),
                source=str(item.get("source", "drill")),
                cause=str(item.get("cause", "")),
            )
            for item in items
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path}: not a drill's findings.json ({type(exc).__name__}: {exc})",
            hint="give the findings.json of a drill's evidence folder (evidence/<run>/)",
        ) from exc


def locate(finding: Finding, runbook: Runbook, lines: Sequence[str]) -> Finding:
    """`finding` with a line, when it has none and its statement says where it is."""
    if finding.line:
        return finding
    section = next((s for s in runbook.sections if s.id == finding.section_id), None)
    if section is None:
        return finding
    head = finding.statement.split(" :: ", 1)
    if len(head) == 2:
        option = next((o for o in section.options if o.title.strip() == head[0].strip()), None)
        return replace(finding, line=option.line) if option else finding
    wanted = normalise_statement(finding.statement)
    steps = [*section.investigation, *(s for o in section.options for s in o.steps)]
    steps += section.other_steps
    for step in steps:
        if normalise_statement(step.text) == wanted:
            return replace(finding, line=step.line)
    # a template quoted by its label ("Investigating: ðŸŸ¡"): the line holding the text
    quoted = finding.statement.split(": ", 1)[-1]
    if mojibake.find([quoted]):
        for number in range(section.line, min(section.end_line, len(lines)) + 1):
            if quoted in lines[number - 1]:
                return replace(finding, line=number)
    return finding


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, int]] = set()
    kept: list[Finding] = []
    for f in findings:
        if (f.key, f.line) not in seen:
            seen.add((f.key, f.line))
            kept.append(f)
    return kept


def plan_fixes(findings: Sequence[Finding], lines: Sequence[str], models: Models) -> Proposal:
    """Run the fixer of each finding's kind on the lines as the earlier edits left them;
    errors and warnings no fixer answers are the owner's (info findings are notes)."""
    current = list(lines)
    fixes: list[Fix] = []
    owner: list[OwnerItem] = []
    leftover: list[Finding] = []
    placed = [locate(f, models.runbook, lines) for f in _dedupe(findings)]
    order = sorted(placed, key=lambda f: (f.source != "gate", f.line or 10**9))
    for finding in order:
        if finding.level is Level.INFO:
            continue
        fixer = FIXERS.get(finding.kind)
        done = [i for i, fix in enumerate(fixes) if fix.edit.line == finding.line]
        # the same fix already made at this line (a drill's finding of a gate's defect)
        same = [i for i in done if fixer is not None and FIXERS.get(fixes[i].edit.kind) is fixer]
        edit = fixer(finding, current, models) if fixer and not same else None
        if edit is None:
            leftover.append(finding)
            continue
        current[edit.line - 1] = edit.new
        fixes.append(Fix(edit, (finding,)))
    for finding in leftover:
        fixer = FIXERS.get(finding.kind)
        at = [i for i, fix in enumerate(fixes) if fix.edit.line == finding.line and finding.line]
        same = [i for i in at if fixer is not None and FIXERS.get(fixes[i].edit.kind) is fixer]
        if same or (at and finding.kind in STEP_KINDS):
            i = (same or at)[0]
            fixes[i] = Fix(fixes[i].edit, (*fixes[i].findings, finding))
            continue
        if FIXERS.get(finding.kind) is None:
            why = "no mechanical fix for this kind of finding"
        else:
            why = "the fix is not mechanical here (a value or a choice only the owner has)"
        owner.append(OwnerItem(finding, why))
    owner += _placeholder_items(fixes)
    return Proposal(tuple(fixes), tuple(owner), tuple(current))


def _placeholder_items(fixes: Sequence[Fix]) -> list[OwnerItem]:
    """What an edit leaves to the owner (a placeholder value an aws edit added): to write,
    or to name in the profile's [placeholders] so drills bind it."""
    return [
        OwnerItem(
            Finding(
                Level.ERROR,
                "fix-placeholder",
                fix.edit.section_id,
                fix.edit.todo,
                line=fix.edit.line,
                statement=fix.edit.new.strip(),
                suggestion="or name the placeholder in the profile's [placeholders] so "
                "drills bind it",
                source="fix",
            ),
            "only the owner knows the value",
        )
        for fix in fixes
        if fix.edit.todo
    ]
