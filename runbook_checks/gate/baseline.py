"""The reviewed baseline: known findings acknowledged, each with a reason.

A TOML file next to the runbook (`<runbook>.baseline.toml`), one `[[acknowledged]]` table
per finding, identified by section, kind and statement (never by line, so unrelated
edits keep it valid). The gate and the drills fail only on findings it does not list,
and report entries that match nothing any more (fixed: remove them).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runbook_checks.errors import UsageError
from runbook_checks.gate.findings import Finding, normalise_statement

REQUIRED = ("section", "kind", "statement", "reason")


@dataclass(frozen=True)
class Entry:
    section: str
    kind: str
    statement: str
    reason: str
    index: int  # position in the file (1-based), for messages

    def matches(self, finding: Finding) -> bool:
        return (
            finding.section_id == self.section
            and finding.kind == self.kind
            and normalise_statement(finding.statement) == normalise_statement(self.statement)
        )


@dataclass(frozen=True)
class Baseline:
    path: Path | None
    entries: tuple[Entry, ...] = ()

    def entry_for(self, finding: Finding) -> Entry | None:
        return next((e for e in self.entries if e.matches(finding)), None)

    def stale(self, findings: Iterable[Finding]) -> tuple[Entry, ...]:
        seen = list(findings)
        return tuple(e for e in self.entries if not any(e.matches(f) for f in seen))


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
        entries.append(
            Entry(
                str(item["section"]),
                str(item["kind"]),
                str(item.get("statement", "")),
                str(item["reason"]),
                index,
            )
        )
    return Baseline(path, tuple(entries))


def render_entry(finding: Finding, reason: str) -> str:
    """A TOML entry for `finding` (to paste into the baseline after review)."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return (
        f"[[acknowledged]]\nsection = {q(finding.section_id)}\nkind = {q(finding.kind)}\n"
        f"statement = {q(normalise_statement(finding.statement))}\nreason = {q(reason)}\n"
    )
