"""The evidence bundle from hand-made drill results: journal fields, junit, manifest,
redaction, post-mortem drafts (no servers)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runbook_checks.cli import main
from runbook_checks.drill.result import Verdict
from runbook_checks.evidence.bundle import FILES, EvidenceError, render, write_bundle
from runbook_checks.evidence.journal import ScenarioRecord, from_json, load_journal, to_json
from runbook_checks.evidence.manifest import verify_manifest
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

if TYPE_CHECKING:
    from conftest import Builders


@pytest.fixture
def records(build: Builders) -> list[ScenarioRecord]:
    passed = ScenarioRecord(build.result(), outcome="passed", samples_aligned=True)
    wrong = ScenarioRecord(
        build.result(
            option="B",
            verdict=Verdict.RUNBOOK_WRONG,
            ttd=None,
            ttr=3.3,
            findings=(build.finding(),),
            scenario="scenarios/test_api.py::test_option_b",
        ),
        outcome="failed",
        outcome_reason="the runbook is wrong here",
    )
    slow = ScenarioRecord(
        build.result(
            section="SEV-1: Database Failure",
            option="A",
            ttr=1200.0,
            scenario="scenarios/test_db.py::test_option_a",
        ),
        outcome="passed",
    )
    return [passed, wrong, slow]


@pytest.fixture
def bundle(
    tmp_path: Path,
    build: Builders,
    records: list[ScenarioRecord],
    runbook: Runbook,
    redactor: Redactor,
) -> Path:
    return write_bundle(build.journal(records), tmp_path, runbook=runbook, redactor=redactor)


def test_the_bundle_has_every_file_and_a_timestamped_name(bundle: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == sorted(FILES)
    stamp, _, short = bundle.name.partition("-")
    assert stamp == "20261103T000000Z"
    assert len(short) == 6
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".")]  # no partial


def test_journal_holds_environment_and_every_drill_field(bundle: Path, runbook: Runbook) -> None:
    data = json.loads((bundle / "journal.json").read_text())
    env = data["environment"]
    assert env["backend"] == "local"
    assert env["versions"]["postgres"] == "16.4"
    assert env["tool_version"]
    assert env["project_commit"] == "a" * 40
    book = env["runbook"]
    assert book["sha256"] == runbook.sha256
    assert "commit" in book
    hashes = {s["id"]: s["content_hash"] for s in book["sections"]}
    assert hashes["sev-1-api-server-down"] == runbook.section("sev-1-api-server-down").content_hash
    first = data["scenarios"][0]
    for key in (
        "fault",
        "budget_s",
        "verdict",
        "time_to_detect_s",
        "time_to_recover_s",
        "section_hash",
        "events",
        "steps",
        "samples",
        "ledger",
        "findings",
        "outcome",
    ):
        assert key in first, key
    step = first["steps"][2]
    assert step["written"] == "sudo systemctl restart rolerabbit-api"
    assert step["executed"] == "stack.component('api').restart()"
    assert {"started_s", "duration_s", "status", "output"} <= set(step)
    assert first["ledger"]["acknowledged"] == 12
    assert first["ledger"]["lost"][0]["phase"] == "fault"
    assert [e["name"] for e in first["events"]][:3] == ["steady", "injected", "symptom"]
    assert data["summary"]["scenarios"] == 3
    assert data["summary"]["runbook-wrong"] == 1


def test_journal_reads_back_to_the_same_journal(
    build: Builders, records: list[ScenarioRecord]
) -> None:
    journal = build.journal(records)
    again = from_json(json.loads(json.dumps(to_json(journal))))
    assert again == journal


def test_findings_json_lists_every_finding_with_its_scenario(bundle: Path) -> None:
    data = json.loads((bundle / "findings.json").read_text())
    assert [f["kind"] for f in data["findings"]] == ["mitigation-step-failed"]
    assert data["findings"][0]["scenario"].endswith("test_option_b")
    assert data["findings"][0]["suggestion"]


def test_junit_has_one_testcase_per_scenario_and_failures_carry_findings(bundle: Path) -> None:
    root = ET.parse(bundle / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 3
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "1"
    passed, wrong, _slow = cases
    assert passed.find("failure") is None
    failure = wrong.find("failure")
    assert failure is not None
    assert failure.text is not None
    assert "mitigation-step-failed" in failure.text
    assert "aws elbv2" in failure.text


def test_junit_skips_a_scenario_pytest_xfailed(build: Builders, runbook: Runbook) -> None:
    record = ScenarioRecord(
        build.result(verdict=Verdict.RUNBOOK_WRONG, findings=(build.finding(),)),
        outcome="xfailed",
        outcome_reason="acknowledged in the baseline",
    )
    xml = render(build.journal([record]), runbook)["junit.xml"]
    case = ET.fromstring(xml).find("testsuite/testcase")
    assert case is not None
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "acknowledged in the baseline"


def test_manifest_verifies_and_names_a_changed_byte(bundle: Path) -> None:
    assert verify_manifest(bundle).ok
    report = bundle / "report.md"
    data = bytearray(report.read_bytes())
    data[10] ^= 0x01
    report.write_bytes(bytes(data))
    check = verify_manifest(bundle)
    assert not check.ok
    assert check.altered == ("report.md",)


def test_manifest_names_missing_and_extra_files(bundle: Path) -> None:
    (bundle / "junit.xml").unlink()
    (bundle / "notes.txt").write_text("added later")
    check = verify_manifest(bundle)
    assert check.missing == ("junit.xml",)
    assert check.extra == ("notes.txt",)


def test_verify_evidence_command_exit_codes(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify-evidence", str(bundle)]) == 0
    (bundle / "journal.json").write_text("{}")
    assert main(["verify-evidence", str(bundle)]) == 1
    assert "altered: journal.json" in capsys.readouterr().out


def test_no_planted_secret_reaches_any_file(bundle: Path, build: Builders) -> None:
    for path in bundle.iterdir():
        text = path.read_text(encoding="utf-8")
        for secret in build.secrets:
            assert secret not in text, f"{secret} in {path.name}"
    journal = (bundle / "journal.json").read_text()
    assert "postgresql://ops:***@127.0.0.1" in journal  # redacted, still readable
    assert "Bearer ***" in journal


def test_shape_redaction_covers_secrets_nobody_declared(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    """An unknown URL password or bearer token is redacted by its shape alone."""
    result = build.result()
    write = write_bundle(
        build.journal([ScenarioRecord(result)]), tmp_path, runbook=runbook, redactor=Redactor()
    )
    for path in write.iterdir():
        text = path.read_text()
        assert build.db_password not in text
        assert build.bearer not in text


def test_a_known_secret_that_survives_stops_the_write(
    tmp_path: Path, build: Builders, runbook: Runbook
) -> None:
    class Leaky(Redactor):
        def text(self, text: str) -> str:
            return text

    with pytest.raises(EvidenceError, match="survived redaction"):
        write_bundle(
            build.journal([ScenarioRecord(build.result())]),
            tmp_path,
            runbook=runbook,
            redactor=Leaky(frozenset({build.admin_token})),
        )
    assert list(tmp_path.iterdir()) == []


def test_postmortem_drafts_follow_the_runbooks_template(bundle: Path) -> None:
    md = (bundle / "report.md").read_text()
    drafts = md.split("## Post-mortem drafts", 1)[1]
    assert drafts.count("### Incident Post-Mortem: Drill:") == 2  # the wrong and the slow one
    wrong = drafts.split("### Incident Post-Mortem:")[1]
    order = [
        "Incident Details",
        "Timeline",
        "Root Cause",
        "Impact",
        "What Went Well",
        "What Went Wrong",
        "Action Items",
    ]
    positions = [wrong.index(f"#### {heading}") for heading in order]
    assert positions == sorted(positions)
    assert "[P0] use `aws elbv2 register-targets`" in wrong
    assert "T+0.00s: injected" in wrong
    slow = drafts.split("### Incident Post-Mortem:")[2]
    assert "over the 900s budget" in slow


def test_report_html_is_self_contained(bundle: Path) -> None:
    html = (bundle / "report.html").read_text()
    for forbidden in ("<script", "src=", "@import", "url(", "<link", "http://www.w3.org/1999"):
        assert forbidden not in html, forbidden
    assert html.count("<svg") >= 4  # three timelines and the budget bars
    for event in ("injected", "detected", "mitigating", "recovered", "reverted"):
        assert f"data-event='{event}'" in html
    assert "Runbook coverage" in html
    assert "Suggested fix" in html


def test_load_journal_of_the_bundle(bundle: Path) -> None:
    journal = load_journal(bundle)
    assert len(journal.scenarios) == 3
    assert journal.kind == "drill"
    assert journal.scenarios[1].result.findings[0].evidence == "Authorization: Bearer ***"
