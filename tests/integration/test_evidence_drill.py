"""A real drill (the API-down scenario, option A) leaves a complete evidence folder whose
manifest verifies, in which no secret appears, and whose report.html renders in a real
browser (headless Chromium)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runbook_checks.cli import main
from runbook_checks.evidence.bundle import FILES
from runbook_checks.evidence.manifest import verify_manifest
from tests.integration.chromium import screenshot

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "scenarios/test_sev1_api_server_down.py::test_option_a_restart_recovers_a_killed_api"
# scheme://user:password@ with a password that is not the redaction mark
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.\-]*://[^:/@\s'\"]*:(?!\*\*\*@)[^@\s/'\"]+@")


@pytest.fixture(scope="module")
def drill_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    evidence = tmp_path_factory.mktemp("evidence")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            SCENARIO,
            "-q",
            "-p",
            "no:cacheprovider",
            "--evidence-dir",
            str(evidence),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    folders = [p for p in evidence.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0], done.stdout


def test_the_drill_leaves_a_complete_folder_whose_manifest_verifies(
    drill_run: tuple[Path, str],
) -> None:
    folder, stdout = drill_run
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert verify_manifest(folder).ok
    assert main(["verify-evidence", str(folder)]) == 0
    assert f"report:   {(folder / 'report.html').as_uri()}" in stdout  # the link is printed


def test_the_journal_holds_the_measured_drill(drill_run: tuple[Path, str]) -> None:
    folder, _ = drill_run
    journal = json.loads((folder / "journal.json").read_text())
    env = journal["environment"]
    assert env["backend"] == "local"
    assert {"postgres", "redis", "api"} <= set(env["versions"])
    assert len(env["runbook"]["sections"]) > 10
    [scenario] = journal["scenarios"]
    # the restart recovers by the runbook's own text; what keeps it from `passed` is the
    # shipped runbook's mis-encoded status templates (acknowledged in the baseline)
    assert scenario["verdict"] == "runbook-wrong"
    assert scenario["outcome"] == "xfailed"
    errors = {f["kind"] for f in scenario["findings"] if f["level"] == "error"}
    assert errors == {"status-update-unreadable"}
    assert scenario["recovered_by"] == "runbook"
    # the stages before investigation: the alert, every section's symptoms, the updates
    assert scenario["alerting"]["measured"] is True
    assert scenario["time_to_alert_s"] is not None
    assert {o["section_id"] for o in scenario["triage"]} >= {"sev-1-api-server-down"}
    assert [u["stage"] for u in scenario["communication"] if u["posted"]] == [
        "investigating",
        "resolved",
    ]
    names = [e["name"] for e in scenario["events"]]
    for name in ("injected", "symptom", "detected", "mitigating", "recovered", "reverted"):
        assert name in names
    assert scenario["samples"]
    assert any(s["status"] != 200 for s in scenario["samples"])  # the outage was sampled
    assert scenario["ledger"]["lost"] == []
    restart = [s for s in scenario["steps"] if "systemctl restart" in s["written"]]
    assert restart
    assert restart[0]["status"] == "ok"
    junit = ET.parse(folder / "junit.xml").getroot()
    assert [c.get("name") for c in junit.iter("testcase")] == [SCENARIO]


def test_no_secret_appears_in_the_folder(drill_run: tuple[Path, str]) -> None:
    folder, _ = drill_run
    for path in folder.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not URL_PASSWORD.search(text), f"a password in a URL in {path.name}"
        assert not re.search(r"Bearer (?!\*\*\*)[A-Za-z0-9_\-]{12,}", text), path.name
        assert not re.search(r"\"ADMIN_TOKEN\": \"(?!\*\*\*)", text), path.name


def test_report_renders_in_headless_chromium(drill_run: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = drill_run
    data = screenshot(folder / "report.html", tmp_path)
    # a blank page of this size compresses to a few kilobytes; text, tables and charts don't
    assert len(data) > 60_000, len(data)
