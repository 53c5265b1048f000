"""Drills in parallel: how many at once (`drill --workers`), and one load-driven drill at a
time on a machine (the load slot), whichever process runs it."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from runbook_checks.cli import AUTO_WORKERS, drill_workers
from runbook_checks.drill.slots import load_slot
from runbook_checks.errors import UsageError
from runbook_checks.faults.base import AllOf
from runbook_checks.faults.network import NetworkLatency
from runbook_checks.faults.traffic import LoadIncrease

LOAD = AllOf((LoadIncrease(users=2, duration_s=1), NetworkLatency("postgres", latency_ms=1)))
QUIET = NetworkLatency("postgres", latency_ms=1)


def test_workers_auto_runs_several_locally_and_one_on_an_external_environment() -> None:
    assert drill_workers("auto", "local") == AUTO_WORKERS > 1
    assert drill_workers("auto", "docker") == AUTO_WORKERS
    assert drill_workers("auto", "external") == 1
    assert drill_workers("3", "local") == 3
    assert drill_workers("1", "external") == 1


@pytest.mark.parametrize("value", ["0", "-2", "many", ""])
def test_a_bad_worker_count_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="--workers"):
        drill_workers(value, "local")


def test_drills_on_an_external_environment_are_never_parallel() -> None:
    with pytest.raises(UsageError, match="share its data"):
        drill_workers("2", "external")


def test_only_traffic_drives_load() -> None:
    assert LOAD.drives_load()
    assert LoadIncrease().drives_load()
    assert not QUIET.drives_load()
    assert not AllOf((QUIET,)).drives_load()


def _hold_the_slot(root: str, held: object, release: object, done: str) -> None:
    import os

    os.environ["RUNBOOK_CHECKS_WORK_ROOT"] = root
    with load_slot(LOAD):
        held.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]
        Path(done).write_text("released")


def test_a_load_drill_waits_for_another_process_s_load_drill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_CHECKS_WORK_ROOT", str(tmp_path))
    done = tmp_path / "done"
    spawn = multiprocessing.get_context("spawn")
    held, release = spawn.Event(), spawn.Event()
    other = spawn.Process(target=_hold_the_slot, args=(str(tmp_path), held, release, str(done)))
    other.start()
    try:
        assert held.wait(60), "the other process never took the slot"
        with load_slot(QUIET) as waited:  # a drill without load does not wait
            assert waited == 0.0
            assert not done.exists()
        seen: list[bool] = []

        def take() -> None:
            with load_slot(LOAD):  # only once the other drill let go
                seen.append(done.exists())

        taker = threading.Thread(target=take)
        taker.start()
        taker.join(1.0)  # still waiting (a slot that did not hold would be taken by now)
        release.set()
        taker.join(30)
        assert seen == [True]
    finally:
        release.set()
        other.join(30)
    assert other.exitcode == 0
