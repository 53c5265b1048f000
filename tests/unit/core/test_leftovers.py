"""The state file and the sweep, with real (harmless) child processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_checks.stack import leftovers


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNBOOK_CHECKS_WORK_ROOT", str(tmp_path))
    return leftovers.work_root()


def test_sweep_releases_folders_of_dead_owners_and_kills_their_processes(root: Path) -> None:
    folder = root / "stack-dead"
    folder.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    owner = subprocess.Popen([sys.executable, "-c", "pass"])
    owner.wait()
    state = leftovers.StateFile(folder, owner_pid=owner.pid)
    state.add_pid("sleeper", child.pid)
    report = leftovers.sweep()
    assert child.wait(timeout=5) != 0
    assert report.killed == (child.pid,)
    assert not folder.exists()


def test_sweep_leaves_live_owners_alone(root: Path) -> None:
    folder = root / "stack-live"
    folder.mkdir()
    leftovers.StateFile(folder).write()  # owned by this test process
    assert leftovers.sweep().empty
    assert folder.exists()


def test_a_recycled_pid_is_never_killed(root: Path) -> None:
    folder = root / "stack-old"
    folder.mkdir()
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        (folder / "state.json").write_text(
            json.dumps({"owner_pid": 999_999_99, "pids": {"x": [bystander.pid, "1"]}, "mounts": []})
        )
        report = leftovers.sweep()
        assert report.killed == ()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
