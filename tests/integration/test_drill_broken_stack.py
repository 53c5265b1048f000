"""A server of the stack that ends under a drill although no fault or step ended it (it
crashed, or something outside killed it) makes the drill an error naming it: the drill
measured the harness's broken environment, and nothing is blamed on the runbook."""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest

from runbook_checks.drill.result import Verdict
from runbook_checks.drill.runner import Drill
from runbook_checks.faults.base import AllOf, Fault, FaultHandle
from runbook_checks.faults.process import ProcessKill
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.stack.base import Capability, Stack
from tests.integration.scenario_objects import ROOT, scenario_of

pytestmark = [pytest.mark.integration, pytest.mark.needs(Capability.KILL.value)]

RUNBOOK = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")


@dataclass(frozen=True)
class _KilledFromOutside(Fault):
    """SIGKILL to a server's process, sent the way nothing of the harness sends it (as the
    kernel's OOM killer or a stray `kill` would), and not undone. Its server is not
    among `servers()`: the harness does not know it acts on it."""

    victim: str
    kind: ClassVar[str] = "test-killed-from-outside"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.KILL})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        pid = stack.component(self.victim).pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        handle.did(f"{self.victim} killed from outside", lambda: None, "nothing")


def test_a_server_killed_from_outside_makes_the_drill_an_error_naming_it(
    fresh_stack: Stack, tmp_path: Path
) -> None:
    # the API-down drill, option A: the restart recovers the API, but the object store
    # dies beside it and nothing brings it back
    scenario, section, option, _ = scenario_of("test_option_a_restart_recovers_a_killed_api")
    broken = replace(
        scenario,
        fault=AllOf((ProcessKill("api"), _KilledFromOutside("object_store"))),
        recovery_wait_s=5,
    )
    result = Drill(
        fresh_stack,
        RUNBOOK,
        section,
        option,
        scenario_id="broken-stack",
        work_dir=tmp_path / "work",
        max_wait_s=5,
    ).run(broken)
    assert result.verdict is Verdict.ERROR, (result.verdict, result.error)
    assert result.error is not None
    assert re.search(
        r"object_store \(pid \d+\) was killed by SIGKILL and nobody stopped it", result.error
    )
    said = [f for f in result.findings if f.kind == "drill-error"]
    assert said, [f.message for f in result.findings]
    assert "says nothing of the runbook" in said[-1].message
    fresh_stack.reset_data()  # the next test's stack: the object store back, nothing to say
    assert fresh_stack.servers_ended_unasked() == []


def test_a_server_a_fault_killed_is_not_the_stacks_breakage(fresh_stack: Stack) -> None:
    store = fresh_stack.component("object_store")
    store.kill()
    assert fresh_stack.servers_ended_unasked() == []
    store.start()
    store.wait_ready(30)
    assert fresh_stack.servers_ended_unasked() == []
