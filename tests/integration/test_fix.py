"""`runbook-checks fix` on a copy of the shipped runbook, end to end: the patch it writes
applies with `patch -p1` to the same bytes `--write` leaves, the gate on the patched
text has no error left but the owner's items, and the drills it ran (two touched
scenarios, before and after) prove the fixes of their options.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_checks.findings import Level
from runbook_checks.gate.run import GateOptions, run_gate
from runbook_checks.profile import load_profile
from tests.profiles import FILES_PROFILE_PATH

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "runbooks" / "files-incident-response.md"
BASELINE = ROOT / "runbooks" / "files-incident-response.baseline.toml"
# one option the gate's fixes touch (auth on the cache warm-up), one only a drill's
# finding names (the expiry arithmetic of a long-expired share)
DRILLED = ("test_fix_1_warm_up_a_cold_cache", "test_cause_1_a_share_expired_long_ago_stays_expired")


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], str]:
    """`runbook-checks fix --write` on a copy (its baseline beside it); the folder, the
    fix.json, and what it printed. The original bytes are kept as `original.md`."""
    folder = tmp_path_factory.mktemp("fix")
    shutil.copyfile(SHIPPED, folder / SHIPPED.name)
    shutil.copyfile(SHIPPED, folder / "original.md")
    shutil.copyfile(BASELINE, folder / BASELINE.name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_checks.cli",
            "fix",
            SHIPPED.name,
            "--profile",
            str(FILES_PROFILE_PATH),
            "--write",
            "-k",
            " or ".join(DRILLED),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    report = json.loads((folder / "files-incident-response.fix.json").read_text("utf-8"))
    return folder, report, output


@pytest.mark.timeout(600)
def test_the_patch_applies_to_a_copy_as_write_patched_the_file(
    fixed: tuple[Path, dict[str, object], str], tmp_path: Path
) -> None:
    folder, report, _ = fixed
    shutil.copyfile(folder / "original.md", tmp_path / SHIPPED.name)
    patch = folder / "files-incident-response.fix.patch"
    assert patch.read_text("utf-8").startswith("# runbook-checks fix files-incident-response.md")
    subprocess.run(["patch", "-p1", "--quiet", "-i", str(patch)], cwd=tmp_path, check=True)
    written = (folder / SHIPPED.name).read_bytes()
    assert (tmp_path / SHIPPED.name).read_bytes() == written
    assert written != SHIPPED.read_bytes()
    # only the fixed lines changed, each in place
    fixed_lines = {int(str(f["line"])) for f in report["fixes"]}  # type: ignore[attr-defined]
    before, after = SHIPPED.read_bytes().split(b"\n"), written.split(b"\n")
    assert len(before) == len(after)
    assert {n for n, (a, b) in enumerate(zip(before, after, strict=True), 1) if a != b} == (
        fixed_lines
    )


def test_the_gate_on_the_patched_text_finds_only_the_owners_items(
    fixed: tuple[Path, dict[str, object], str],
) -> None:
    folder, report, _ = fixed
    empty = folder / "empty.baseline.toml"
    empty.write_text("")
    gated = run_gate(
        GateOptions(
            runbook=folder / SHIPPED.name,
            baseline=empty,  # nothing acknowledged: every remaining defect shows
            profile=load_profile(FILES_PROFILE_PATH),
        )
    )
    owner = {(o["kind"], o["line"]) for o in report["owner_items"]}  # type: ignore[attr-defined]
    errors = [r.finding for r in gated.results if r.finding.level is Level.ERROR]
    assert errors, "the shipped runbook's placeholder contacts are the owner's"
    assert [f.headline() for f in errors if (f.kind, f.line) not in owner] == []
    assert {f.kind for f in errors} <= {"contact-placeholder", "review-overdue"}
    assert report["worse"] is False


def test_the_touched_drills_went_from_failing_to_passed(
    fixed: tuple[Path, dict[str, object], str],
) -> None:
    _, report, output = fixed
    verification = report["verification"]
    assert isinstance(verification, dict)
    drills = verification["drills"]
    for name in DRILLED:
        assert drills["before"]["verdicts"][name] != "passed", output[-3000:]
        assert drills["after"]["verdicts"][name] == "passed", output[-3000:]
    by_kind = {(f["kind"], f["status"]) for f in verification["fixes"]}
    # the expiry fix: found by a drill, proved by a drill (the gate cannot see it)
    assert ("mitigation-did-not-recover", "drill") in by_kind
    assert ("curl-missing-auth", "drill") in by_kind
    assert "proved by a drill" in output
