"""The gate end to end, offline: baseline matching and staleness, the JSON shape, the
table, and the command's exit codes (0 / 1 / 2)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from gate_samples import SCENARIO, SEVERITIES, compose

from runbook_checks.cli import main
from runbook_checks.clock import FakeClock
from runbook_checks.findings import Level
from runbook_checks.gate.baseline import render_entry
from runbook_checks.gate.report import print_report, report_json
from runbook_checks.gate.run import GateOptions, GateReport, run_gate

BROKEN = SCENARIO.replace(
    "curl https://api.rolerabbit.com/health", "curl https://api.rolerabbit.com/healthz"
)
MARKED = 'import pytest\n\n@pytest.mark.runbook("SEV-1: API Down", option="A")\ndef test_a(): ...\n'
DRILL_ENTRY = (
    '[[acknowledged]]\nsection = "sev-1-api-down"\nkind = "mitigation-step-failed"\n'
    'statement = "sudo systemctl restart rolerabbit-api"\nreason = "a drill finding"\n'
)


def clock_on(day: dt.date) -> FakeClock:
    midday = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)
    return FakeClock(epoch=midday.timestamp())


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_api.py").write_text(MARKED)
    (tmp_path / "runbooks").mkdir()
    # the runbooks' profile: its curl lines' host is the API (checked against its routes)
    (tmp_path / "runbooks" / "runbook-checks.toml").write_text(
        '[profile]\nscenarios = "../scenarios"\nkit = "files_profile"\n'
        '[hosts]\n"api.rolerabbit.com" = "api"\n',
        encoding="utf-8",
    )
    return tmp_path


def write_runbook(layout: Path, *parts: str) -> Path:
    path = layout / "runbooks" / "r.md"
    path.write_text(compose(*parts), encoding="utf-8")
    return path


def gate(path: Path, day: dt.date = dt.date(2029, 1, 1)) -> GateReport:
    return run_gate(GateOptions(path, offline=True, clock=clock_on(day)))


def test_a_clean_runbook_passes(layout: Path) -> None:
    report = gate(write_runbook(layout, SEVERITIES, SCENARIO))
    assert [r.finding.kind for r in report.results if r.finding.level is Level.ERROR] == []
    assert report.exit_code == 0
    assert report.mode == "offline"
    assert {c.name for c in report.checks if not c.ran} == {"sql-schema", "diagnostics"}


def test_without_a_service_kit_the_routes_are_not_checked(layout: Path) -> None:
    profile = layout / "runbooks" / "runbook-checks.toml"
    profile.write_text(profile.read_text().replace('kit = "files_profile"\n', ""))
    report = gate(write_runbook(layout, SEVERITIES, BROKEN))
    assert "curl-unknown-route" not in {r.finding.kind for r in report.results}
    (curl,) = [run for run in report.checks if run.name == "curl"]
    assert not curl.ran
    assert curl.note == "the runbook's profile names no service kit"


def test_a_new_error_fails_and_its_baseline_entry_acknowledges_it(layout: Path) -> None:
    path = write_runbook(layout, SEVERITIES, BROKEN)
    report = gate(path)
    (new,) = report.new_errors
    assert new.finding.kind == "curl-unknown-route"
    assert report.exit_code == 1
    baseline = path.with_name("r.baseline.toml")
    baseline.write_text(render_entry(new.finding, "known; fixed next sprint") + "\n" + DRILL_ENTRY)
    again = gate(path)
    assert again.exit_code == 0
    (acked,) = [r for r in again.results if r.acknowledged]
    assert acked.entry is not None
    assert acked.entry.reason == "known; fixed next sprint"
    assert again.stale == ()
    # drill findings are not the gate's: never reported stale by it
    assert [e.kind for e in again.unchecked] == ["mitigation-step-failed"]


def test_a_fixed_finding_leaves_a_stale_entry(layout: Path) -> None:
    path = write_runbook(layout, SEVERITIES, BROKEN)
    (new,) = gate(path).new_errors
    path.with_name("r.baseline.toml").write_text(render_entry(new.finding, "known"))
    write_runbook(layout, SEVERITIES, SCENARIO)  # fixed
    report = gate(path)
    assert report.exit_code == 0
    assert [e.statement for e in report.stale] == ["curl https://api.rolerabbit.com/healthz"]
    out = io.StringIO()
    print_report(report, out)
    assert "fixed: remove them" in out.getvalue()
    assert "[sev-1-api-down] curl-unknown-route" in out.getvalue()


def test_entries_survive_unrelated_edits_that_move_lines(layout: Path) -> None:
    path = write_runbook(layout, SEVERITIES, BROKEN)
    (new,) = gate(path).new_errors
    path.with_name("r.baseline.toml").write_text(render_entry(new.finding, "known"))
    write_runbook(layout, SEVERITIES, "## Notes\n\nline\n\nmore\n\n", BROKEN)
    report = gate(path)
    assert report.exit_code == 0
    assert report.results[0].finding.line > new.finding.line


def test_the_review_date_follows_the_injected_clock(layout: Path) -> None:
    path = write_runbook(layout, SEVERITIES, SCENARIO)  # Next Review: 2030-04-15
    assert gate(path, dt.date(2030, 4, 15)).exit_code == 0
    late = gate(path, dt.date(2030, 4, 16))
    assert [r.finding.kind for r in late.new_errors] == ["review-overdue"]


def test_the_json_shape(layout: Path) -> None:
    report = gate(write_runbook(layout, SEVERITIES, BROKEN))
    data = json.loads(json.dumps(report_json(report)))
    assert set(data) >= {
        "version", "runbook", "sha256", "mode", "today", "exit_code", "summary", "findings",
        "stale_baseline", "drift", "checks", "duration_s",
    }  # fmt: skip
    assert data["exit_code"] == 1
    assert data["today"] == "2029-01-01"
    assert data["summary"]["new_errors"] == 1
    finding = next(f for f in data["findings"] if f["kind"] == "curl-unknown-route")
    assert set(finding) >= {
        "key", "level", "section_id", "line", "kind", "message", "suggestion", "statement",
        "evidence", "acknowledged", "reason",
    }  # fmt: skip
    assert finding["acknowledged"] is False
    assert finding["level"] == "error"
    assert len(finding["key"]) == 12


def test_cli_exit_codes_and_json_file(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_runbook(layout, SEVERITIES, BROKEN)
    out = layout / "gate.json"
    assert main(["gate", str(path), "--offline", "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "curl-unknown-route" in printed
    assert "FAILED" in printed
    assert json.loads(out.read_text())["summary"]["new_errors"] == 1
    write_runbook(layout, SEVERITIES, SCENARIO)
    assert main(["gate", str(path), "--offline", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["exit_code"] == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x00\x01\x02 binary \xff\xfe" * 50, "binary content"),
        (b"just some words\nno headings here\n", "no Markdown headings"),
    ],
)
def test_garbage_exits_2_with_a_clear_message(
    layout: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    path = layout / "runbooks" / "garbage.md"
    path.write_bytes(content)
    out = layout / "gate.json"
    assert main(["gate", str(path), "--offline", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    assert json.loads(out.read_text())["exit_code"] == 2


def test_bad_path_bad_baseline_and_bad_revision_exit_2(
    layout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gate", str(layout / "missing.md"), "--offline"]) == 2
    assert "no such file" in capsys.readouterr().err
    path = write_runbook(layout, SEVERITIES, SCENARIO)
    bad = layout / "bad.toml"
    bad.write_text("[[acknowledged]\n")
    assert main(["gate", str(path), "--offline", "--baseline", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["gate", str(path), "--offline", "--base", "no-such-rev"]) == 2
    assert "--base no-such-rev" in capsys.readouterr().err
