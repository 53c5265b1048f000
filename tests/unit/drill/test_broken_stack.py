"""A drill's wait stops at a server of the stack that ended unasked (the harness's
environment broke: nothing comes back), but not at a server the live fault acts on (a
crash loop, an OOM kill, a panic on a full disk are the fault's doing); what each fault
acts on. No servers: a fake stack and a fake clock."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runbook_checks.clock import FakeClock, WaitTimeout
from runbook_checks.drill import runner
from runbook_checks.drill.runner import Drill, StackBroke
from runbook_checks.drill.spec import Scenario
from runbook_checks.faults.base import AllOf
from runbook_checks.faults.cache import ColdCache, RedisDown
from runbook_checks.faults.disk import DiskFull
from runbook_checks.faults.network import NetworkLatency
from runbook_checks.faults.process import CrashLoop, ProcessKill
from runbook_checks.faults.storage import StorageOutage
from runbook_checks.faults.traffic import LoadIncrease
from runbook_checks.runbook.parser import parse_runbook
from tests.fake_stack import offline_stack

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")
ENDED = {"redis": "redis (pid 7) was killed by SIGKILL and nobody stopped it"}


def _drill(tmp_path: Path, clock: FakeClock) -> Drill:
    def ended(besides: Any = ()) -> list[str]:
        return [line for name, line in ENDED.items() if name not in besides]

    stack = offline_stack(tmp_path, servers_ended_unasked=ended)
    return Drill(
        stack,
        RUNBOOK,
        "sev-1-api-server-down",
        "A",
        scenario_id="s",
        work_dir=tmp_path,
        clock=clock,
    )


def test_a_wait_stops_at_a_server_that_ended_unasked(tmp_path: Path) -> None:
    clock = FakeClock()
    drill = _drill(tmp_path, clock)
    ctx: Any = SimpleNamespace(handle=SimpleNamespace(fault=ProcessKill("api")))
    began = clock.monotonic()
    with pytest.raises(StackBroke) as broke:
        drill._await(lambda c: "still 503", ctx, "recovery", 60.0)
    assert broke.value.ended == [ENDED["redis"]]
    assert clock.monotonic() - began < 3.0  # within a look or two, not the 60 s


def test_a_wait_goes_on_past_the_live_faults_own_server(tmp_path: Path) -> None:
    clock = FakeClock()
    drill = _drill(tmp_path, clock)
    ctx: Any = SimpleNamespace(handle=SimpleNamespace(fault=CrashLoop("redis")))
    with pytest.raises(WaitTimeout):  # the whole wait: the fault may have done it
        drill._await(lambda c: "still 503", ctx, "recovery", 10.0)


def test_what_each_fault_acts_on() -> None:
    assert ProcessKill("postgres").servers() == {"postgres"}
    assert DiskFull().servers() == {"postgres"}
    assert RedisDown("network").servers() == {"redis"}
    assert StorageOutage("kill").servers() == {"object_store"}
    assert ColdCache().servers() == frozenset()
    assert LoadIncrease(users=2).servers() == frozenset()
    both = AllOf((NetworkLatency("postgres", latency_ms=10), StorageOutage("down")))
    assert both.servers() == {"postgres", "object_store"}


def test_a_drill_that_errs_under_its_fault_says_its_own_error_not_the_faults_doing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception while the fault is live, its own server ended by its doing (a crash
    loop's): the drill's error is the exception, not a broken stack."""
    ctx: Any = SimpleNamespace(
        handle=SimpleNamespace(fault=CrashLoop("redis"), revert=lambda: None)
    )

    class Session:
        def __init__(self, result: Any) -> None:
            self.result, self.ctx, self.sampler, self.ledger = result, None, None, None

        def begin(self, *args: Any, **kwargs: Any) -> Any:
            self.ctx = ctx
            return ctx

    @contextlib.contextmanager
    def opened(stack: Any, result: Any, **kwargs: Any) -> Any:
        yield Session(result)

    def phases(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(runner.DrillSession, "open", opened)
    monkeypatch.setattr(runner.Drill, "_phases", phases)
    drill = _drill(tmp_path, FakeClock())
    scenario = Scenario(
        section="sev-1-api-server-down",
        option="A",
        title="t",
        fault=CrashLoop("redis"),
        confirm=lambda c: None,
        detect=lambda r, c: None,
    )
    result = drill.run(scenario)
    assert result.error == "RuntimeError: boom"
