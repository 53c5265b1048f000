"""The gate on the real runbook and on copies with one defect each, against the real stack.

Each copy keeps the committed baseline beside it (so only the planted defect is new),
and the repository's scenarios for coverage. The gate must exit 1 and name the line of
the change; a garbage file must exit 2 with a clear message; and a fresh clone of the
repository must pass against its committed baseline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_checks.cli import main
from runbook_checks.findings import Level
from runbook_checks.gate.run import GateOptions, GateReport, Result, run_gate
from runbook_checks.stack.base import Stack
from tests.profiles import FILES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "runbooks" / "files-incident-response.md"
BASELINE = RUNBOOK.with_name("files-incident-response.baseline.toml")
SCENARIOS = REPO / "scenarios"


def copy_with(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """A copy of the runbook with `old` replaced once; the 1-based line of the change."""
    text = RUNBOOK.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"the runbook no longer contains {old!r}"
    at = text.index(old)
    changed = text[:at] + new + text[at + len(old) :]
    path = tmp_path / RUNBOOK.name
    path.write_text(changed, encoding="utf-8")
    shutil.copy(BASELINE, tmp_path / BASELINE.name)
    return path, changed.count("\n", 0, at) + 1


def gate(path: Path, stack: Stack) -> GateReport:
    return run_gate(GateOptions(path, scenarios=SCENARIOS, profile=FILES), stack=stack)


def new_errors(report: GateReport, kind: str) -> list[Result]:
    return [r for r in report.new_errors if r.finding.kind == kind]


def test_the_real_runbook_passes_against_its_baseline(stack: Stack) -> None:
    report = gate(RUNBOOK, stack)
    assert report.new_errors == (), [r.finding.headline() for r in report.new_errors]
    assert report.exit_code == 0
    assert report.mode == "live"
    assert all(check.ran for check in report.checks if check.name != "drift")
    errors = [r.finding for r in report.results if r.finding.level is Level.ERROR]
    assert errors, "the shipped runbook has known defects; the gate must list them"
    assert all(f.suggestion for f in errors if not f.kind.startswith("coverage"))
    # found by executing: the schema's SQLSTATE and the API's 401 are the evidence
    sql = [f for f in errors if f.kind == "sql-undefined-column"]
    assert sql
    assert all("42703" in f.evidence for f in sql)
    auth = [f for f in errors if f.kind == "curl-missing-auth" and f.evidence]
    assert any("HTTP 401" in f.evidence for f in auth)


def test_a_renamed_sql_column(stack: Stack, tmp_path: Path) -> None:
    path, line = copy_with(tmp_path, "expires_at, max_downloads", "expiry_at, max_downloads")
    report = gate(path, stack)
    assert report.exit_code == 1
    (result,) = new_errors(report, "sql-undefined-column")
    assert result.finding.line == line
    assert "expiry_at" in result.finding.message
    assert "expires_at" in result.finding.suggestion


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        # a value in capitals is a column the schema does not have, not a placeholder
        ("WHERE state = 'active'", "WHERE state = ACTIVE", "sql-undefined-column"),
        # parses as written; with PID bound to a value, it does not
        ("pg_terminate_backend(PID);", "pg_terminate_backend(PID[1]);", "sql-syntax-error"),
    ],
)
def test_a_capitalised_sql_typo(
    stack: Stack, tmp_path: Path, old: str, new: str, kind: str
) -> None:
    path, line = copy_with(tmp_path, old, new)
    report = gate(path, stack)
    assert report.exit_code == 1
    (result,) = new_errors(report, kind)
    assert result.finding.line == line


def test_a_changed_curl_route(stack: Stack, tmp_path: Path) -> None:
    path, line = copy_with(tmp_path, "/admin/storage/stats", "/admin/storage/statistics")
    report = gate(path, stack)
    assert report.exit_code == 1
    (result,) = new_errors(report, "curl-unknown-route")
    assert result.finding.line == line
    assert "/admin/storage/stats" in result.finding.suggestion
    # the entry for the old line's missing token no longer matches anything
    assert any(e.kind == "curl-missing-auth" for e in report.stale)


def test_a_changed_aws_operation(stack: Stack, tmp_path: Path) -> None:
    path, line = copy_with(tmp_path, "aws rds promote-read-replica", "aws rds promote-replica")
    report = gate(path, stack)
    assert report.exit_code == 1
    (result,) = new_errors(report, "aws-invalid-operation")
    assert result.finding.line == line
    assert "promote-read-replica" in result.finding.suggestion


def test_a_deleted_mitigation(stack: Stack, tmp_path: Path) -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index("## SEV-1: Database Failure")
    mitigation = text.index("### Mitigation", start)
    end = text.index("\n---", mitigation)
    path, _ = copy_with(tmp_path, text[mitigation:end], "")
    heading = text.count("\n", 0, start) + 1
    report = gate(path, stack)
    assert report.exit_code == 1
    (result,) = new_errors(report, "structure-missing-mitigation")
    assert result.finding.line == heading
    assert result.finding.section_id == "sev-1-database-failure"


def test_garbage_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.md"
    garbage.write_bytes(os.urandom(2048) + b"\x00")
    assert main(["gate", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert "binary content" in err
    assert "Traceback" not in err


def test_a_fresh_clone_passes_against_its_committed_baseline(tmp_path: Path) -> None:
    """The CLI in a new process, in a clone of the committed tree, with its own stack."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    out = tmp_path / "gate.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_checks.cli",
            "gate",
            "runbooks/files-incident-response.md",
            "--json",
            str(out),
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(clone)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    data = json.loads(out.read_text())
    assert data["mode"] == "live"
    assert data["summary"]["new_errors"] == 0
    assert data["summary"]["acknowledged"] > 0
    assert all("acknowledged" in f for f in data["findings"])
