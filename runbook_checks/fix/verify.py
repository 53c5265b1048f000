"""The fix checks its own patch: the gate on the patched text, and the drills of every
section the patch touched, before and after.

The gate runs on a temporary copy with the original's profile and baseline. A fix is
proved by the gate when the gate findings it answers are gone; by a drill when a
scenario of its section went from a failing verdict to `passed` (or
`recovered-by-waiting`). Anything worse (a finding the original did not have, a verdict
that got worse) makes the plan fail.

Drills run as `runbook-checks drill` would run them, in a subprocess (`--workers 2`,
`-k` for the scenarios of the touched sections), once on a copy of the original and
once on the patched copy; their verdicts are read from each run's journal.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runbook_checks.findings import Finding, Level
from runbook_checks.fix.edit import Edit
from runbook_checks.fix.plan import Fix
from runbook_checks.gate.coverage import Marker, option_for, scan_scenarios, section_for
from runbook_checks.runbook.model import Runbook

# how far a verdict is from earned: a higher rank is worse
_RANK = {
    "passed": 0,
    "recovered-by-waiting": 0,
    "assisted": 1,
    "runbook-wrong": 2,
    "failed": 3,
    "error": 4,
}
EARNED = frozenset({"passed", "recovered-by-waiting"})


def _same(a: Finding, b: Finding) -> bool:
    """The same finding before and after: same key, or the same kind at the same line
    (an edit changes a line's statement, never the line numbers)."""
    return a.key == b.key or (bool(a.line) and a.kind == b.kind and a.line == b.line)


@dataclass(frozen=True)
class GateComparison:
    gone: tuple[Finding, ...]  # before, not after
    new: tuple[Finding, ...]  # after, not before (errors and warnings)
    after: tuple[Finding, ...]


def compare_gate(before: Sequence[Finding], after: Sequence[Finding]) -> GateComparison:
    gone = tuple(b for b in before if not any(_same(b, a) for a in after))
    new = tuple(
        a for a in after if a.level is not Level.INFO and not any(_same(b, a) for b in before)
    )
    return GateComparison(gone, new, tuple(after))


@dataclass(frozen=True)
class DrillRun:
    """One `runbook-checks drill` of a copy: each scenario's verdict."""

    verdicts: Mapping[str, str]  # test function -> verdict
    exit_code: int
    output: str  # the tail of its output, for a failure's message


@dataclass(frozen=True)
class FixCheck:
    """How one fix was verified."""

    line: int
    kind: str
    proved_by: str  # "drill", "gate", "" (neither)
    worse: tuple[str, ...] = ()  # what got worse, said
    scenarios: tuple[str, ...] = ()  # the scenarios that went from failing to passed

    @property
    def status(self) -> str:
        if self.worse:
            return "worse"
        return self.proved_by or "not proved"

    def to_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "kind": self.kind,
            "status": self.status,
            "proved_by": self.proved_by,
            "worse": list(self.worse),
            "scenarios": list(self.scenarios),
        }


@dataclass(frozen=True)
class Verification:
    mode: str  # "gate" or "all"
    checks: tuple[FixCheck, ...]
    new_findings: tuple[Finding, ...] = ()
    before: DrillRun | None = None
    after: DrillRun | None = None
    notes: tuple[str, ...] = field(default=())
    broken: str = ""  # the patched copy's drill gave no verdicts where the original's did

    @property
    def worse(self) -> bool:
        return bool(self.new_findings or self.broken) or any(c.worse for c in self.checks)

    def to_json(self) -> dict[str, object]:
        def run(r: DrillRun | None) -> object:
            return None if r is None else {"verdicts": dict(r.verdicts), "exit_code": r.exit_code}

        return {
            "mode": self.mode,
            "worse": self.worse,
            "fixes": [c.to_json() for c in self.checks],
            "new_findings": [f.to_json() for f in self.new_findings],
            "drills": {"before": run(self.before), "after": run(self.after)},
            "notes": list(self.notes),
            "broken": self.broken,
        }


def scenarios_of(
    runbook: Runbook, markers: Sequence[Marker], section_id: str, line: int
) -> list[str]:
    """The test functions that drill what `line` of `section_id` says: the scenarios of
    the option whose steps hold it, else (investigation, templates) every scenario of
    the section."""
    section = next((s for s in runbook.sections if s.id == section_id), None)
    if section is None:
        return []
    option = next(
        (
            o
            for o in section.options
            for s in o.steps
            if s.line <= line <= s.line + (s.raw or s.text).rstrip("\n").count("\n")
        ),
        None,
    )
    found: list[str] = []
    for marker in markers:
        if section_for(runbook, marker.section) is not section or marker.function in found:
            continue
        if option is not None and marker.option is not None:
            marked = option_for(section, marker.option)
            if marked is None or marked.key != option.key:
                continue
        found.append(marker.function)
    return found


def select_expression(functions: Sequence[str], narrow: str | None) -> str:
    expr = " or ".join(functions)
    return f"({expr}) and ({narrow})" if narrow else expr


def run_drill(
    runbook: Path,
    profile: Path | None,
    folder: Path,
    select: str,
    *,
    workers: int = 2,
    timeout_s: float = 3600.0,
) -> DrillRun:
    """`runbook-checks drill` of `runbook` for the scenarios `select` (-k) names, in a
    subprocess; the verdicts from its journal."""
    evidence = folder / "evidence"
    argv = [sys.executable, "-m", "runbook_checks.cli", "drill", "--runbook", str(runbook)]
    if profile is not None:
        argv += ["--profile", str(profile)]
    argv += ["--evidence-dir", str(evidence), "--workers", str(workers), "--", "-k", select]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=folder
        )
    except subprocess.TimeoutExpired:
        return DrillRun({}, -1, f"the drill did not end within {timeout_s:.0f} s: {select}")
    output = (done.stdout[-3000:] + done.stderr[-2000:]).strip()
    journals = sorted(evidence.glob("*/journal.json")) if evidence.exists() else []
    verdicts: dict[str, str] = {}
    if journals:
        data = json.loads(journals[-1].read_text(encoding="utf-8"))
        for record in data.get("scenarios", []):
            name = str(record.get("scenario", "")).rpartition("::")[2]
            verdicts[name] = str(record.get("verdict", "error"))
    return DrillRun(verdicts, done.returncode, output)


def copy_with_baseline(text: bytes, runbook: Path, baseline: Path | None, folder: Path) -> Path:
    """`text` as `folder/<runbook's name>`, the baseline beside it under its default
    name (so a drill of the copy weighs its findings as the original's are)."""
    from runbook_checks.gate.baseline import default_path

    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / runbook.name
    copy.write_bytes(text)
    if baseline is not None and baseline.is_file():
        shutil.copyfile(baseline, default_path(copy))
    return copy


def check_fixes(
    fixes: Sequence[Fix],
    gate: GateComparison,
    scenarios: Callable[[Edit], Sequence[str]],
    before: DrillRun | None,
    after: DrillRun | None,
) -> tuple[FixCheck, ...]:
    checks: list[FixCheck] = []
    for fix in fixes:
        edit = fix.edit
        worse = [
            f"gate: new {f.kind} at line {f.line}: {f.message}"
            for f in gate.new
            if f.line == edit.line
        ]
        gate_findings = [f for f in fix.findings if f.source == "gate"]
        gate_proved = bool(gate_findings) and all(
            any(_same(f, g) for g in gate.gone) for f in gate_findings
        )
        proved: list[str] = []
        if before is not None and after is not None:
            for name in scenarios(edit):
                was, now = before.verdicts.get(name), after.verdicts.get(name)
                if was is None or now is None:
                    continue
                if _RANK.get(now, 4) > _RANK.get(was, 4):
                    worse.append(f"drill: {name} went from {was} to {now}")
                elif was not in EARNED and now in EARNED:
                    proved.append(name)
        by = "drill" if proved else "gate" if gate_proved else ""
        checks.append(FixCheck(edit.line, edit.kind, by, tuple(worse), tuple(proved)))
    return tuple(checks)


def scan_markers(folder: Path | None) -> tuple[Marker, ...]:
    return scan_scenarios(folder).markers if folder is not None else ()
