"""The reviewed baseline: known findings acknowledged, each with a reason.

A TOML file next to the runbook (`<runbook>.baseline.toml`), one `[[acknowledged]]` table
per finding, identified by section, kind and statement (never by line, so unrelated
edits keep it valid) and, for a drill's finding, its cause fingerprint (`cause`: which
check failed and the class of what was observed), so a new cause of an acknowledged kind
still fails. A lost-writes entry may bound the loss it accepts (`max_lost`). The gate and
the drills fail only on findings it does not list, and report entries that match nothing
any more (fixed: remove them).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runbook_checks.errors import UsageError
from runbook_checks.findings import Finding, normalise_statement

REQUIRED = ("section", "kind", "statement", "reason")


@dataclass(frozen=True)
class Entry:
    section: str
    kind: str
    statement: str
    reason: str
    index: int  # position in the file (1-based), for messages
    cause: str = ""  # a drill finding's cause fingerprint; must equal the finding's
    max_lost: int | None = None  # for lost acknowledged writes: the measured bound accepted

    def matches(self, finding: Finding) -> bool:
        return (
            finding.section_id == self.section
            and finding.kind == self.kind
            and normalise_statement(finding.statement) == normalise_statement(self.statement)
            and (finding.cause == self.cause or (not finding.from_drill and not self.cause))
        )

    def describe(self) -> str:
        cause = f" [{self.cause}]" if self.cause else ""
        return f"entry {self.index}: {self.section or '-'} / {self.kind}{cause}: {self.statement}"


@dataclass(frozen=True)
class Baseline:
    path: Path | None
    entries: tuple[Entry, ...] = ()

    def entry_for(self, finding: Finding) -> Entry | None:
        return next((e for e in self.entries if e.matches(finding)), None)

    def stale(self, findings: Iterable[Finding]) -> tuple[Entry, ...]:
        seen = list(findings)
        return tuple(e for e in self.entries if not any(e.matches(f) for f in seen))

    def drill_entries(self) -> tuple[Entry, ...]:
        """Entries only a drill can match (they carry a cause fingerprint)."""
        return tuple(e for e in self.entries if e.cause)

    def gate_entries(self) -> tuple[Entry, ...]:
        """Entries the gate checks (no cause fingerprint: a static finding)."""
        return tuple(e for e in self.entries if not e.cause)


def default_path(runbook: Path) -> Path:
    return runbook.with_name(f"{runbook.stem}.baseline.toml")


def load_baseline(path: Path | None, *, runbook: Path | None = None) -> Baseline:
    """Load `path`, or the default next to `runbook` when it exists; else empty."""
    if path is None:
        if runbook is None or not default_path(runbook).exists():
            return Baseline(None)
        path = default_path(runbook)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"{path}: baseline file not found",
            hint="give an existing file with --baseline, or omit it",
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path}: not valid TOML: {exc}",
            hint="fix the file; each entry is an [[acknowledged]] table",
        ) from None
    raw = data.get("acknowledged", [])
    if not isinstance(raw, list):
        raise UsageError(f"{path}: `acknowledged` must be an array of tables ([[acknowledged]])")
    entries = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise UsageError(f"{path}: entry {index} is not a table")
        # statement and section may be empty: a finding about a whole section, or about
        # the whole document (section "")
        optional = ("statement", "section")
        missing = [k for k in REQUIRED if not str(item.get(k, "")).strip() and k not in optional]
        missing += [] if "section" in item else ["section"]
        if missing:
            raise UsageError(
                f"{path}: entry {index} lacks {', '.join(missing)}",
                hint="every entry needs section, kind, statement and a reason",
            )
        max_lost = item.get("max_lost")
        if max_lost is not None and (not isinstance(max_lost, int) or max_lost < 0):
            raise UsageError(
                f"{path}: entry {index}: max_lost must be a whole number >= 0, not {max_lost!r}",
                hint="the most acknowledged writes the entry accepts losing, as measured",
            )
        entries.append(
            Entry(
                str(item["section"]),
                str(item["kind"]),
                str(item.get("statement", "")),
                str(item["reason"]),
                index,
                str(item.get("cause", "")),
                max_lost,
            )
        )
    return Baseline(path, tuple(entries))


def render_entry(finding: Finding, reason: str) -> str:
    """A TOML entry for `finding` (to paste into the baseline after review)."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    cause = f"cause = {q(finding.cause)}\n" if finding.cause else ""
    return (
        f"[[acknowledged]]\nsection = {q(finding.section_id)}\nkind = {q(finding.kind)}\n"
        f"statement = {q(normalise_statement(finding.statement))}\n{cause}reason = {q(reason)}\n"
    )
