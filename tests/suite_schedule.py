"""How `pytest tests -n N --dist loadfile` shares the suite among its workers.

The suite's time is in a few long integration modules (a drill of the corrected runbook
and its mutations, the docker backend, the installed wheel...) and their module-scoped
stacks: a module is one work unit (`loadfile`), so its fixtures are built once, on one
worker. On top of `loadfile` (pytest-xdist's LoadScopeScheduling, which groups by file):

- The modules that use what a machine has only one of (the project's Docker engine, which
  a module starts and stops; network namespaces and /run/netns) are one unit, run one
  after another on one worker. pytest-xdist's `xdist_group` marks would say this, but
  pytest 9.2 silently ignores them (pytest-xdist issue 1386; drill/schedule.py).
- The two drill modules of the corrected runbook (its 23 scenarios on 4 workers; its 21
  mutations in 5 batches at once) are one unit too, run one after the other: each keeps
  two cores busy, and side by side (measured on a cold machine, 2026-12-07) both took
  twice as long and the post-mortem's pool fix recovered 29-45 s after its steps, past
  its mutation's 20 s wait (`test_every_earned_recovery_comes_within_its_mutations_wait`
  failed). Before, only chance (a cold docker build holding a worker) kept them apart.
- The longest units go first (longest-processing-time-first: the session ends when its
  last unit does, so a long unit must not start late). How long a module takes is known
  only by running it; `LONGEST_FIRST` names the long ones as measured on CI, longest first.
  A module missing there only starts later than it could: it costs time, never a result.
- A worker is given its next unit only when it runs the last test of the one it has, not
  two units ahead (xdist's default): a long unit queued behind another on a busy worker
  would wait there while another worker idles.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadScopeScheduling

MACHINE_WIDE_UNIT = "machine-wide: docker engine, network namespaces"
MACHINE_WIDE = frozenset(
    {
        "tests/integration/test_docker_backend.py",
        "tests/integration/test_docker_bridged.py",
        "tests/integration/test_docker_monitoring.py",
        "tests/integration/test_staging_netns.py",
    }
)

CORRECTED_DRILLS_UNIT = "the corrected runbook's drills, one module after the other"
CORRECTED_DRILLS = frozenset(
    {
        "tests/integration/test_corrected_runbook.py",
        "tests/integration/test_corrected_runbook_mutations.py",
    }
)
UNITS = {MACHINE_WIDE_UNIT: MACHINE_WIDE, CORRECTED_DRILLS_UNIT: CORRECTED_DRILLS}

# measured with `-n 3` on a 2-core machine (2026-12-06/07), seconds of setup, call and
# teardown, longest first
LONGEST_FIRST = (
    MACHINE_WIDE_UNIT,  # ~520 on a fresh machine (the docker images' first build: ~260)
    CORRECTED_DRILLS_UNIT,  # ~275 (125 + 150)
    "tests/integration/test_installed_wheel.py",  # ~170
    "tests/integration/test_interrupts.py",  # ~135
    "tests/integration/test_load.py",  # ~110
    "tests/integration/test_fix.py",  # ~110
    "tests/security/test_security_secrets.py",  # ~95
    "tests/integration/test_incident_stages.py",  # ~75
)


def unit_of(nodeid: str) -> str:
    """The work unit a test belongs to: the unit of `UNITS` holding its file, or its file."""
    path = nodeid.split("::", 1)[0]
    return next((unit for unit, modules in UNITS.items() if path in modules), path)


def rank(unit: str, tests: int) -> tuple[int, int]:
    """Sort key: the measured long units in their order, then by number of tests."""
    if unit in LONGEST_FIRST:
        return (LONGEST_FIRST.index(unit), 0)
    return (len(LONGEST_FIRST), -tests)


class SuiteScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    """`--dist loadfile` with the modules of each of `UNITS` as one unit, longest first."""

    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self._ranked = False

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ranked:  # the queue is complete when the first unit is handed out
            ranked = sorted(self.workqueue.items(), key=lambda item: rank(item[0], len(item[1])))
            self.workqueue.clear()
            self.workqueue.update(ranked)
            self._ranked = True
        super()._assign_work_unit(node)

    def _reschedule(self, node: Any) -> None:
        """A unit more only for a worker at the last test of its units (a worker holds
        its last test until it knows the next one or is told to stop)."""
        if node.shutting_down or not self.workqueue:
            super()._reschedule(node)
            return
        if self._pending_of(self.assigned_work.get(node, {})) > 1:
            return
        self._assign_work_unit(node)
