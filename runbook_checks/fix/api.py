"""What other commands call: `propose(runbook)` -> the verified `FixPlan`.

The review pack includes "the current verified fix patch" from here: `plan.patch_text()`
(the unified diff, owner checklist in its header), `plan.owner_items`, and
`plan.to_json()` (what `runbook-checks fix` writes as fix.json beside the patch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.findings import Finding
from runbook_checks.fix.edit import Edit, patched_bytes, unified_diff
from runbook_checks.fix.fixers import Models, Schema, StockSchema
from runbook_checks.fix.plan import (
    Fix,
    OwnerItem,
    Proposal,
    baseline_findings,
    drill_findings,
    plan_fixes,
)
from runbook_checks.fix.verify import (
    GateComparison,
    Verification,
    check_fixes,
    compare_gate,
    copy_with_baseline,
    run_drill,
    scan_markers,
    scenarios_of,
    select_expression,
)
from runbook_checks.gate.baseline import default_path
from runbook_checks.gate.locate import runbook_steps
from runbook_checks.gate.run import GateOptions, GateReport, run_gate, start_stack
from runbook_checks.profile import find_profile
from runbook_checks.runbook.model import Runbook
from runbook_checks.runbook.source import read_source

if TYPE_CHECKING:
    from runbook_checks.config import ChecksConfig
    from runbook_checks.stack.base import Stack

VERIFY_MODES = ("all", "gate", "none")


@dataclass(frozen=True)
class FixPlan:
    runbook: Path
    name: str  # the runbook's path in the patch (a/NAME, b/NAME)
    encoding: str
    original: bytes
    patched: bytes
    fixes: tuple[Fix, ...]
    owner_items: tuple[OwnerItem, ...]
    verification: Verification | None = None
    gate_mode: str = ""

    @property
    def worse(self) -> bool:
        return self.verification is not None and self.verification.worse

    def header(self) -> list[str]:
        lines = [
            f"runbook-checks fix {self.name}: {len(self.fixes)} fix(es); apply with "
            "`patch -p1` from the folder the path below is relative to",
        ]
        if self.verification is not None:
            lines.append(f"verified ({self.verification.mode}): " + self.verdict())
        if self.owner_items:
            lines += ["", "For the owner (not a program's to decide):"]
            lines += [f"- {item.checklist_line()}" for item in self.owner_items]
        return lines

    def verdict(self) -> str:
        if self.verification is None:
            return "not verified"
        if self.verification.worse:
            return "WORSE: a fix made something worse"
        counts = {s: 0 for s in ("drill", "gate", "not proved")}
        for check in self.verification.checks:
            counts[check.status] = counts.get(check.status, 0) + 1
        return (
            f"{counts['drill']} proved by a drill, {counts['gate']} by the gate only, "
            f"{counts['not proved']} not proved; nothing worse"
        )

    def patch_bytes(self) -> bytes:
        return unified_diff(self.original, self.patched, self.name, self.header())

    def patch_text(self) -> str:
        return self.patch_bytes().decode(self.encoding, errors="replace")

    def to_json(self) -> dict[str, object]:
        return {
            "runbook": str(self.runbook),
            # which text the patch was made for, and what it makes of it: the review pack
            # tells a current patch from an applied or outdated one by these
            "runbook_sha256": hashlib.sha256(self.original).hexdigest(),
            "patched_sha256": hashlib.sha256(self.patched).hexdigest(),
            "verdict": self.verdict(),
            "encoding": self.encoding,
            "gate_mode": self.gate_mode,
            "fixes": [f.to_json() for f in self.fixes],
            "owner_items": [o.to_json() for o in self.owner_items],
            "verification": self.verification.to_json() if self.verification else None,
            "worse": self.worse,
        }


def _name_in_patch(runbook: Path) -> str:
    try:
        return runbook.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return runbook.name


def _writable(proposal: Proposal, original: Sequence[str], encoding: str) -> Proposal:
    """The proposal without the edits of lines the file's encoding cannot hold (a
    repaired emoji in a cp1252 file): those are the owner's (save the file as UTF-8)."""
    changed = proposal.changed(original)
    bad = set()
    for number, (_, new) in changed.items():
        try:
            new.encode(encoding)
        except UnicodeEncodeError:
            bad.add(number)
    if not bad:
        return proposal
    lines = list(proposal.lines)
    for number in bad:
        lines[number - 1] = original[number - 1]
    owner = [
        OwnerItem(
            dataclasses.replace(f, line=fix.edit.line),
            f"the fixed line cannot be written in the file's encoding ({encoding}): save "
            "the runbook as UTF-8, then run runbook-checks fix again",
        )
        for fix in proposal.fixes
        if fix.edit.line in bad
        for f in fix.findings[:1]
    ]
    return Proposal(
        tuple(f for f in proposal.fixes if f.edit.line not in bad),
        (*proposal.owner_items, *owner),
        tuple(lines),
    )


def propose(
    runbook: Path,
    *,
    profile: Path | None = None,
    baseline: Path | None = None,
    findings: Sequence[Path] = (),
    verify: str = "all",
    select: str | None = None,
    offline: bool = False,
    config: ChecksConfig | None = None,
    workers: int = 2,
    clock: Clock = SYSTEM_CLOCK,
    on_progress: Callable[[str], None] | None = None,
) -> FixPlan:
    """Gate `runbook`, fix what has a mechanical fix, and verify the patch (`verify`:
    "all" = gate and the touched sections' drills, `select` narrowing them with a -k
    expression; "gate"; "none"). Raises RunbookChecksError when it cannot run."""
    say = on_progress or (lambda _message: None)
    runbook = Path(runbook)
    source = read_source(runbook)
    original = runbook.read_bytes()
    prof = find_profile(runbook, profile)
    options = GateOptions(
        runbook=runbook,
        baseline=baseline,
        offline=offline,
        config=config,
        clock=clock,
        profile=prof,
    )
    with contextlib.ExitStack() as cleanup:
        stack: Stack | None = None
        if not offline and prof.stack:
            stack = start_stack(options, say, cleanup)
        say("gating the runbook as it is ...")
        before = run_gate(options, stack=stack, on_progress=say)
        schema: Schema | None = StockSchema() if before.mode == "static" else None
        if stack is not None:
            from runbook_checks.gate.sql_check import SchemaValidator

            schema = cleanup.enter_context(SchemaValidator(stack.endpoints.database_url))
        found: list[Finding] = [r.finding for r in before.results]
        found += baseline_findings(before.baseline)
        for path in findings:
            found += drill_findings(path)
        models = Models(
            before.runbook,
            runbook_steps(before.runbook),
            prof.curl_auth,
            tuple(prof.placeholders),
            schema,
        )
        proposal = plan_fixes(found, source.lines, models)
        proposal = _writable(proposal, source.lines, source.encoding)
        patched = patched_bytes(original, source.encoding, proposal.changed(source.lines))
        plan = FixPlan(
            runbook,
            _name_in_patch(runbook),
            source.encoding,
            original,
            patched,
            proposal.fixes,
            proposal.owner_items,
            gate_mode=before.mode,
        )
        if verify == "none" or not proposal.fixes:
            return plan
        gate = _gate_patched(plan, before, options, stack, say)
    # the gate's stack is stopped before the drills start theirs
    verification = _verify(plan, before.runbook, gate, options, verify, select, workers, say)
    return dataclasses.replace(plan, verification=verification)


def _gate_patched(
    plan: FixPlan,
    before: GateReport,
    options: GateOptions,
    stack: Stack | None,
    say: Callable[[str], None],
) -> GateComparison:
    """The gate on a patched copy (the original's profile and baseline), compared with
    the gate on the original."""
    baseline = before.baseline.path
    with tempfile.TemporaryDirectory(prefix="runbook-checks-fix-") as work:
        copy = copy_with_baseline(plan.patched, plan.runbook, baseline, Path(work))
        say("gating the patched copy ...")
        after = run_gate(
            dataclasses.replace(options, runbook=copy, baseline=baseline),
            stack=stack,
            on_progress=say,
        )
    return compare_gate(before.findings, after.findings)


def _verify(
    plan: FixPlan,
    runbook: Runbook,
    gate: GateComparison,
    options: GateOptions,
    mode: str,
    select: str | None,
    workers: int,
    say: Callable[[str], None],
) -> Verification:
    profile = options.profile
    markers = scan_markers(profile.scenarios if profile is not None else None)
    baseline = options.baseline or default_path(plan.runbook)

    def drills_of(edit: Edit) -> list[str]:
        return scenarios_of(runbook, markers, edit.section_id, edit.line)

    notes: list[str] = []
    drilled_before = drilled_after = None
    functions = list(dict.fromkeys(name for fix in plan.fixes for name in drills_of(fix.edit)))
    if mode == "all" and not functions:
        notes.append("no scenario drills the sections the patch touched")
    elif mode == "all":
        expr = select_expression(functions, select)
        source = profile.source if profile is not None else None
        with tempfile.TemporaryDirectory(prefix="runbook-checks-fix-") as work:
            folder = Path(work)
            runs = []
            for name, text in (("original", plan.original), ("patched", plan.patched)):
                copy = copy_with_baseline(text, plan.runbook, baseline, folder / name)
                narrowed = f" (-k {select})" if select else ""
                say(f"drilling the {name} text: the touched sections' scenarios{narrowed}")
                runs.append(run_drill(copy, source, copy.parent, expr, workers=workers))
        drilled_before, drilled_after = runs
    broken = ""
    if drilled_before is not None and drilled_after is not None and not drilled_after.verdicts:
        said = "the drill of the patched copy left no verdicts: " + drilled_after.output[-1000:]
        broken, notes = (said, notes) if drilled_before.verdicts else ("", [*notes, said])
    checks = check_fixes(plan.fixes, gate, drills_of, drilled_before, drilled_after)
    return Verification(mode, checks, gate.new, drilled_before, drilled_after, tuple(notes), broken)
