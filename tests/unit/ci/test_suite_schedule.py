"""The suite's own parallel schedule (tests/suite_schedule.py, `make test`): a module is a
unit, the modules sharing a machine-wide resource are one unit, the long units go first,
and a worker is not handed a unit while it has more than its last test to run."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import pytest_xdist_make_scheduler
from tests.profiles import ROOT
from tests.suite_schedule import (
    CORRECTED_DRILLS,
    CORRECTED_DRILLS_UNIT,
    LONGEST_FIRST,
    MACHINE_WIDE,
    MACHINE_WIDE_UNIT,
    SuiteScheduling,
    unit_of,
)

pytest_plugins = ["pytester"]

# what starts the project's docker engine, or makes or sweeps network namespaces
MACHINE_WIDE_USE = re.compile(
    r"stack\.docker\.testing import prepare|stack\.docker\.netns import"
    r"|cannot_make_namespaces|sweep_namespaces"
)

DOCKER = "tests/integration/test_docker_backend.py"
NETNS = "tests/integration/test_staging_netns.py"
MUTATIONS = "tests/integration/test_corrected_runbook_mutations.py"
CORRECTED = "tests/integration/test_corrected_runbook.py"
SMALL = "tests/unit/test_small.py"
MANY = "tests/unit/test_many.py"
TESTS = [
    f"{SMALL}::test_a",
    *(f"{MANY}::test_{n}" for n in range(4)),
    f"{DOCKER}::test_d1",
    f"{MUTATIONS}::test_m1",
    f"{MUTATIONS}::test_m2",
    f"{MUTATIONS}::test_m3",
    f"{NETNS}::test_n1",
    f"{CORRECTED}::test_c1",
]


class Node:
    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[list[str]] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.append([TESTS[i] for i in indexes])

    def shutdown(self) -> None:
        self.shutting_down = True


def scheduler_of(pytester: pytest.Pytester, workers: int) -> tuple[SuiteScheduling, list[Node]]:
    config = pytester.parseconfig("--tx", f"{workers}*popen", "--dist", "loadfile")
    scheduler = SuiteScheduling(config)
    nodes = [Node(f"gw{n}") for n in range(workers)]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, TESTS)
    scheduler.schedule()
    return scheduler, nodes


def test_a_unit_is_a_module_and_the_machine_wide_modules_are_one() -> None:
    assert unit_of(f"{MANY}::test_1") == unit_of(f"{MANY}::test_2") == MANY
    assert unit_of(f"{MANY}::TestClass::test_1") == MANY  # a class does not split its module
    assert unit_of(f"{DOCKER}::test_d1") == unit_of(f"{NETNS}::test_n1") == MACHINE_WIDE_UNIT
    # the corrected runbook's two drill modules, each two cores busy: never side by side
    assert unit_of(f"{CORRECTED}::test_c1") == unit_of(f"{MUTATIONS}::test_m1")
    assert unit_of(f"{MUTATIONS}::test_m1") == CORRECTED_DRILLS_UNIT


def test_the_long_units_go_first_and_no_unit_waits_behind_another(
    pytester: pytest.Pytester,
) -> None:
    scheduler, (first, second) = scheduler_of(pytester, 2)
    # the two longest units first, one per worker: the docker engine's and namespaces'
    # modules together on one worker, the corrected runbook's two drill modules together
    # on the other; nothing queued behind
    corrected = [*(f"{MUTATIONS}::test_m{n}" for n in (1, 2, 3)), f"{CORRECTED}::test_c1"]
    assert first.sent == [[f"{DOCKER}::test_d1", f"{NETNS}::test_n1"]]
    assert second.sent == [corrected]
    for test in corrected[:2]:
        scheduler.mark_test_complete(second, TESTS.index(test))
        assert len(second.sent) == 1  # more than its last test left: no second unit yet
    scheduler.mark_test_complete(second, TESTS.index(corrected[2]))
    # at its last test: the next unit, the module with more tests before the smaller one
    assert second.sent[1] == [f"{MANY}::test_{n}" for n in range(4)]
    scheduler.mark_test_complete(first, TESTS.index(f"{DOCKER}::test_d1"))
    assert first.sent[1] == [f"{SMALL}::test_a"]


def test_the_suite_hook_takes_loadfile_and_leaves_the_drills_loadgroup_alone(
    pytester: pytest.Pytester,
) -> None:
    suite = pytester.parseconfig("--tx", "2*popen", "--dist", "loadfile")
    assert isinstance(pytest_xdist_make_scheduler(suite, None), SuiteScheduling)
    drills = pytester.parseconfig("--tx", "2*popen", "--dist", "loadgroup")
    assert pytest_xdist_make_scheduler(drills, None) is None


def test_every_module_using_a_machine_wide_resource_is_in_the_machine_wide_unit() -> None:
    using = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if path != Path(__file__) and MACHINE_WIDE_USE.search(path.read_text(encoding="utf-8"))
    }
    assert using == MACHINE_WIDE


def test_every_module_the_schedule_names_exists() -> None:
    named = (set(LONGEST_FIRST) - {MACHINE_WIDE_UNIT, CORRECTED_DRILLS_UNIT}) | MACHINE_WIDE
    named |= CORRECTED_DRILLS
    assert not {name for name in named if not (ROOT / name).is_file()}
