"""The parallel drills' schedule: the load drills are one work unit, first, and nothing is
queued behind them on their worker until they are done, and their last drill starts at
once (drill/schedule.py)."""

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


def _drained(scheduler: LoadDrillsFirst, node: Node) -> list[int]:
    """Complete every test the node is sent until it is told to finish; what it was sent."""
    done: set[int] = set()
    while not node.shutting_down:
        sent = [i for batch in node.sent for i in batch]
        waiting = [i for i in sent if i not in done and not _completed(scheduler, node, i)]
        assert waiting, "the node waits for work that never comes"
        scheduler.mark_test_complete(node, waiting[0])
        done.add(waiting[0])
    return sorted(i for batch in node.sent for i in batch)


def _completed(scheduler: LoadDrillsFirst, node: Node, index: int) -> bool:
    return any(unit.get(TESTS[index], False) for unit in scheduler.assigned_work[node].values())


def _scheduled(pytester: pytest.Pytester, tmp_path: Path, *nodes: Node) -> LoadDrillsFirst:
    """The schedule of TESTS (1 and 2 load-driven) on `nodes`, handed out."""
    path = tmp_path / "load-drills.json"
    write_load_drills(path, [TESTS[1], TESTS[2]])
    config = pytester.parseconfig("--tx", f"{len(nodes)}*popen", "--dist", "loadgroup")
    scheduler = LoadDrillsFirst(config, None, path)
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, TESTS)
    scheduler.schedule()
    return scheduler


def test_the_load_drills_run_first_with_nothing_queued_behind_them(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    first, second = Node("gw0"), Node("gw1")
    scheduler = _scheduled(pytester, tmp_path, first, second)
    assert first.sent == [[1, 2]]  # the load drills, as one unit, and nothing behind them
    assert second.sent == [[0], [3]]  # as xdist hands out: a unit, then one more (#277)
    assert all(1 not in s and 2 not in s for s in second.sent)
    assert not any(node.shutting_down for node in (first, second))
    scheduler.mark_test_complete(first, 1)
    assert first.sent == [[1, 2]]  # one load drill left: still nothing queued behind it,
    # and the worker is told to finish: an xdist worker runs its last queued test only
    # once it knows the next one or is told to finish (else it waits for the queue)
    assert first.shutting_down
    assert scheduler.workqueue  # the rest goes to the other worker
    assert _drained(scheduler, second) == [0, 3, 4, 5]
    scheduler.mark_test_complete(first, 2)
    assert first.sent == [[1, 2]]


def test_a_worker_whose_load_drills_are_done_takes_more_work(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """With one worker, the load drills come first and the rest follows them."""
    only = Node("gw0")
    scheduler = _scheduled(pytester, tmp_path, only)
    assert only.sent[0] == [1, 2]
    scheduler.mark_test_complete(only, 1)
    assert not only.shutting_down  # nobody else would run the rest
    assert _drained(scheduler, only) == [0, 1, 2, 3, 4, 5]
