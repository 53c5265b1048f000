"""The parallel drills' schedule: the load drills are one work unit, first, and nothing is
queued behind them on their worker until they are done (drill/schedule.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from runbook_checks.drill.schedule import LoadDrillsFirst, write_load_drills

pytest_plugins = ["pytester"]

TESTS = [f"scenarios/test_s.py::test_{name}" for name in ("a", "load1", "load2", "b", "c", "d")]


class Node:
    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.append(list(indexes))

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_load_drills_run_first_with_nothing_queued_behind_them(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    path = tmp_path / "load-drills.json"
    write_load_drills(path, [TESTS[1], TESTS[2]])
    config = pytester.parseconfig("--tx", "2*popen", "--dist", "loadgroup")
    scheduler = LoadDrillsFirst(config, None, path)
    first, second = Node("gw0"), Node("gw1")
    for node in (first, second):
        scheduler.add_node(node)
        scheduler.add_node_collection(node, TESTS)
    scheduler.schedule()
    assert first.sent == [[1, 2]]  # the load drills, as one unit, and nothing behind them
    assert second.sent
    assert all(1 not in s and 2 not in s for s in second.sent)
    scheduler.mark_test_complete(first, 1)
    assert first.sent == [[1, 2]]  # one load drill left: still nothing queued behind it
    scheduler.mark_test_complete(first, 2)
    assert len(first.sent) == 2  # done: it takes more work
