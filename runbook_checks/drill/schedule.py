"""Parallel drills' schedule: the load-driven drills first, back to back on one worker.

A load-driven drill (its scenario's fault is traffic) holds the load slot (slots.py) for
its whole run, so two of them never share the cores. Left to pytest-xdist's plain load
scheduling, two workers may each start one and the second waits, idle, for the first:
the three load drills of the Files runbook then end the session late. Scheduled as one
unit, first, they run back to back on one worker from the start while the other workers
drill the rest.

pytest-xdist's own grouping (`xdist_group` marks under `--dist loadgroup`) rewrites node
ids, which pytest 9.2 no longer lets it do (pytest-xdist issue 1386: the marks are then
silently ignored). So the grouping here does not touch node ids: each worker writes the
node ids of the load-driven drills it collected into a file the controller named (its
`workerinput`), before it reports its collection; the controller's scheduler (the
`pytest_xdist_make_scheduler` hook: `--dist loadgroup`'s, with this one scope added)
reads it when it splits the collection into work units. Every other test is a unit of
its own, as under `--dist load`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xdist.scheduler import LoadGroupScheduling

LOAD_GROUP = "load-drills"  # the work unit of the load-driven drills
WORKERINPUT_KEY = "runbook_checks_load_drills"  # the file a worker names them in


def write_load_drills(path: Path, nodeids: list[str]) -> None:
    """A worker's list of load-driven node ids (atomically: several workers write it)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(sorted(nodeids)), encoding="utf-8")
    partial.replace(path)


def read_load_drills(path: Path) -> frozenset[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no worker wrote it (no load drill collected)
        return frozenset()
    return frozenset(str(n) for n in data) if isinstance(data, list) else frozenset()


class LoadDrillsFirst(LoadGroupScheduling):  # type: ignore[misc]  # xdist is untyped
    """`--dist loadgroup` with the load-driven drills as one work unit (its size puts it
    first: xdist orders units by their number of tests)."""

    def __init__(self, config: Any, log: Any, path: Path) -> None:
        super().__init__(config, log)
        self._path = path
        self._load: frozenset[str] | None = None

    def _reschedule(self, node: Any) -> None:
        """Nothing is queued behind the load drills on their worker while any is left: a
        drill queued there would start only after the chain, the session's longest. And
        once only the chain's last drill is left, that worker is told to finish: an xdist
        worker runs a test only when it knows the next one (or is told to finish), so
        the last drill would otherwise wait, idle, until the whole queue is handed out. A
        worker with no other worker beside it takes more work behind its last drill."""
        unit = self.assigned_work.get(node, {}).get(LOAD_GROUP)
        if unit is not None and not all(unit.values()) and self.workqueue:
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            if any(n is not node and not n.shutting_down for n in self.nodes):
                if not node.shutting_down:
                    node.shutdown()  # the others take the rest of the queue
                return
        super()._reschedule(node)

    def _split_scope(self, nodeid: str) -> str:
        if self._load is None:  # every worker has reported its collection by now
            self._load = read_load_drills(self._path)
        return LOAD_GROUP if nodeid in self._load else super()._split_scope(nodeid)
