"""Drift: which sections changed since a git revision, and which scenarios must run again.

The runbook at REV is read with `git show REV:path` and parsed like the current one.
A scenario section is compared by its content hash (its symptoms, investigation and
options included); other sections by their own text (child sections excluded), so a
changed sub-heading is reported once, not again for every enclosing heading. The tests
to run again are those whose `runbook` marker names a changed scenario section, as it is
now or as it was at REV (a renamed section's tests are listed too).
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runbook_checks.errors import UsageError
from runbook_checks.gate.coverage import Scan, section_for
from runbook_checks.runbook.model import Runbook, Section
from runbook_checks.runbook.parser import parse_text
from runbook_checks.runbook.source import decode, prepare

GIT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SectionChange:
    id: str
    title: str
    change: str  # "changed", "added", "removed"
    scenario: bool
    line: int  # in the current runbook (0 when removed)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "change": self.change,
            "scenario": self.scenario,
            "line": self.line,
        }


@dataclass(frozen=True)
class Drift:
    base: str
    changes: tuple[SectionChange, ...]
    tests: tuple[str, ...]  # node ids ("test_sev1_x.py::test_option_a")
    functions: tuple[str, ...]  # test function names, for `pytest -k`
    note: str = ""  # e.g. "the runbook did not exist at REV"

    @property
    def k_expression(self) -> str:
        return " or ".join(self.functions)

    def to_json(self) -> dict[str, object]:
        return {
            "base": self.base,
            "sections": [c.to_json() for c in self.changes],
            "tests": list(self.tests),
            "k_expression": self.k_expression,
            "note": self.note,
        }


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise UsageError("--base needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {' '.join(args)} did not answer in {GIT_TIMEOUT_S:.0f}s") from None


def read_at(rev: str, path: Path) -> bytes | None:
    """The runbook's bytes at `rev`; None when it did not exist there."""
    folder = path.resolve().parent
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if top.returncode != 0:
        raise UsageError(
            f"--base {rev}: {path} is not inside a git repository",
            hint="run the gate in a clone, or drop --base",
        )
    root = Path(top.stdout.decode().strip())
    known = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root)
    if known.returncode != 0:
        raise UsageError(
            f"--base {rev}: git knows no such revision",
            hint="fetch it first (in CI: actions/checkout with fetch-depth: 0), "
            "or give a commit, tag or branch that exists",
        )
    relative = path.resolve().relative_to(root.resolve()).as_posix()
    shown = _git(["show", f"{rev}:{relative}"], root)
    return shown.stdout if shown.returncode == 0 else None


def own_hash(section: Section, runbook: Runbook, lines: list[str]) -> str:
    """Hash of the section's lines, its child sections' lines left out."""
    children = [s for s in runbook.sections if s.parent == section.id]
    own: list[str] = []
    for number in range(section.line, min(section.end_line, len(lines)) + 1):
        if any(c.line <= number <= c.end_line for c in children):
            continue
        own.append(lines[number - 1].rstrip())
    return hashlib.sha256("\n".join(own).strip().encode()).hexdigest()


def _inside_scenario(section: Section, runbook: Runbook) -> bool:
    by_id = {s.id: s for s in runbook.sections}
    parent = section.parent
    while parent is not None:
        enclosing = by_id.get(parent)
        if enclosing is None:
            return False
        if enclosing.is_scenario:
            return True
        parent = enclosing.parent
    return False


def _fingerprints(runbook: Runbook, lines: list[str]) -> dict[str, tuple[Section, str]]:
    found: dict[str, tuple[Section, str]] = {}
    for section in runbook.sections:
        if _inside_scenario(section, runbook):
            continue
        digest = section.content_hash if section.is_scenario else own_hash(section, runbook, lines)
        found[section.id] = (section, digest)
    return found


def compute_drift(
    base: str,
    current: Runbook,
    current_lines: list[str],
    before: Runbook | None,
    before_lines: list[str],
    scan: Scan,
) -> Drift:
    now = _fingerprints(current, current_lines)
    then = _fingerprints(before, before_lines) if before is not None else {}
    changes: list[SectionChange] = []
    for sid, (section, digest) in now.items():
        if sid not in then:
            changes.append(
                SectionChange(sid, section.title, "added", section.is_scenario, section.line)
            )
        elif then[sid][1] != digest:
            changes.append(
                SectionChange(sid, section.title, "changed", section.is_scenario, section.line)
            )
    for sid, (section, _) in then.items():
        if sid not in now:
            changes.append(SectionChange(sid, section.title, "removed", section.is_scenario, 0))
    touched = {c.id for c in changes if c.scenario}
    tests: list[str] = []
    functions: list[str] = []
    for marker in scan.markers:
        hits = [section_for(current, marker.section)]
        if before is not None:
            hits.append(section_for(before, marker.section))
        if any(s is not None and s.id in touched for s in hits):
            if marker.nodeid not in tests:
                tests.append(marker.nodeid)
            if marker.function not in functions:
                functions.append(marker.function)
    note = "" if before is not None else f"the runbook did not exist at {base}: all of it is new"
    return Drift(base, tuple(changes), tuple(tests), tuple(functions), note)


def drift_since(
    base: str, path: Path, current: Runbook, current_lines: list[str], scan: Scan
) -> Drift:
    data = read_at(base, path)
    if data is None:
        return compute_drift(base, current, current_lines, None, [], scan)
    text, encoding, _ = decode(data, path)
    try:
        before = parse_text(text, path, encoding)
    except UsageError as exc:
        drift = compute_drift(base, current, current_lines, None, [], scan)
        return Drift(
            drift.base,
            drift.changes,
            drift.tests,
            drift.functions,
            f"the runbook at {base} could not be parsed ({exc.message}): "
            "every section counts as changed",
        )
    lines = prepare(text, path, encoding, "").lines
    return compute_drift(base, current, current_lines, before, lines, scan)
