"""The evidence bundle: `evidence/<UTC timestamp>-<short id>/` with everything in it.

journal.json, findings.json, junit.xml, report.html, report.md and manifest.json. The
journal is redacted once, every file is rendered from that redacted journal, and every
text passes the redactor again on its way to disk; a known secret still found in a
file stops the write. The folder is written under a hidden temporary name and renamed
when complete, so a reader never sees half a bundle.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from runbook_checks.errors import RunbookChecksError
from runbook_checks.evidence.coverage import CoverageRow, coverage
from runbook_checks.evidence.html_report import report_html
from runbook_checks.evidence.journal import (
    Environment,
    Journal,
    ScenarioRecord,
    Selection,
    SkippedScenario,
    to_json,
)
from runbook_checks.evidence.junit import junit_xml
from runbook_checks.evidence.manifest import write_manifest
from runbook_checks.evidence.md_report import report_md
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

FILES = ("journal.json", "findings.json", "junit.xml", "report.html", "report.md", "manifest.json")


class EvidenceError(RunbookChecksError):
    """The evidence bundle could not be written."""


def new_bundle_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def bundle_time(bundle_id: str) -> datetime | None:
    """When a bundle was made, read from its id (`new_bundle_id`'s); None if not an id."""
    try:
        return datetime.strptime(bundle_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def new_journal(
    environment: Environment,
    records: Sequence[ScenarioRecord],
    *,
    kind: str = "drill",
    now: datetime | None = None,
    skipped: Sequence[SkippedScenario] = (),
    stale_baseline: Sequence[str] = (),
    interrupted: str = "",
    interrupted_scenarios: Sequence[str] = (),
    selection: Selection | None = None,
) -> Journal:
    created = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return Journal(
        id=new_bundle_id(created),
        created=created,
        kind=kind,
        environment=environment,
        scenarios=tuple(records),
        skipped=tuple(skipped),
        stale_baseline=tuple(stale_baseline),
        interrupted=interrupted,
        interrupted_scenarios=tuple(interrupted_scenarios),
        selection=selection or Selection(),
    )


def findings_json(journal: Journal) -> str:
    findings = [
        {
            **finding.to_json(),
            "scenario": record.result.scenario,
            "verdict": record.result.verdict.value,
        }
        for record in journal.scenarios
        for finding in record.result.findings
    ]
    return json.dumps({"bundle": journal.id, "findings": findings}, indent=2) + "\n"


def render(journal: Journal, runbook: Runbook | None) -> dict[str, str]:
    """Every file of the bundle but the manifest, by name (from a redacted journal)."""
    rows: list[CoverageRow] = (
        coverage(runbook, journal.scenarios, journal.skipped) if runbook else []
    )
    return {
        "journal.json": json.dumps(to_json(journal), indent=2) + "\n",
        "findings.json": findings_json(journal),
        "junit.xml": junit_xml(journal),
        "report.html": report_html(journal, rows),
        "report.md": report_md(journal, rows, runbook),
    }


def write_bundle(
    journal: Journal, evidence_dir: Path, *, runbook: Runbook | None, redactor: Redactor
) -> Path:
    """Write the bundle of `journal` under `evidence_dir`; return its folder."""
    clean = journal.redacted(redactor)
    files = {name: redactor.text(text) for name, text in render(clean, runbook).items()}
    leaks = sorted({name for name, text in files.items() if redactor.leaks(text)})
    if leaks:  # the redactor missed a secret it knows: never write it
        raise EvidenceError(
            f"a secret survived redaction in {', '.join(leaks)}",
            hint="report this: the evidence was not written",
        )
    return _write_folder(evidence_dir, clean.id, files)


def _write_folder(evidence_dir: Path, bundle_id: str, files: dict[str, str]) -> Path:
    """`files` and their manifest as `evidence_dir/<bundle_id>/`, renamed into place when
    complete (a reader never sees half a bundle)."""
    folder = evidence_dir / bundle_id
    partial = evidence_dir / f".{bundle_id}.partial"
    try:
        partial.mkdir(parents=True)
        for name, text in files.items():
            (partial / name).write_text(text, encoding="utf-8")
        write_manifest(partial, bundle_id)
        partial.rename(folder)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise EvidenceError(
            f"cannot write the evidence bundle in {evidence_dir}: {exc}",
            hint="check --evidence-dir: it must be a writable folder",
        ) from exc
    return folder


def write_record_bundle(journal: Journal, files: dict[str, str], evidence_dir: Path) -> Path:
    """A bundle for a run that is not a drill session (a gate run): journal.json (which
    runbook, where; no scenarios), the run's own files as they are, and manifest.json."""
    journal_json = json.dumps(to_json(journal), indent=2) + "\n"
    return _write_folder(evidence_dir, journal.id, {"journal.json": journal_json, **files})
