"""`kubectl scale` brings its instances up at once (`LocalStack.add_registered_apis`): they
share the cores while they start, so they share one readiness budget, as long as starting
them one after another would have had. On a busy machine (CI, with other drills beside),
four instances sharing two cores become ready together, later than one alone would; one
instance's timeout for each would fail a scale-out that one after another would pass."""

from __future__ import annotations

import pytest

from files_profile import KIT
from runbook_checks.clock import FakeClock, WaitTimeout
from runbook_checks.stack.local import LocalStack

READY_TIMEOUT_S = 20.0


class _Instance:
    """An instance that becomes ready at `ready_at` on the fake clock (all of them at the
    same moment: they share the cores)."""

    ready_timeout_s = READY_TIMEOUT_S

    def __init__(self, name: str, clock: FakeClock, ready_at: float) -> None:
        self.name, self.clock, self.ready_at = name, clock, ready_at
        self.spawned = False

    def spawn(self) -> None:
        self.spawned = True

    def wait_ready(self, timeout_s: float) -> None:
        assert self.spawned, f"{self.name} waited for before it was spawned"
        if self.clock.now + timeout_s < self.ready_at:
            self.clock.now += timeout_s
            raise WaitTimeout(f"{self.name} ready", timeout_s, "not ready", 1)
        self.clock.now = max(self.clock.now, self.ready_at)


def _scale(ready_at: float, count: int) -> list[str]:
    clock = FakeClock()
    stack = LocalStack(kit=KIT, clock=clock, monitoring=False)
    registered: list[str] = []
    stack._new_api_instance = lambda name: _Instance(name, clock, ready_at)  # type: ignore[method-assign,assignment,misc]
    stack._instances_added = lambda: None  # type: ignore[method-assign]
    stack.register_api = lambda instance, refresh=True: registered.append(instance.name)  # type: ignore[method-assign,assignment,misc]
    stack.add_registered_apis([f"api-{n}" for n in range(2, 2 + count)])
    return registered


def test_instances_started_together_share_the_budget_of_starting_them_in_turn() -> None:
    # four instances, each 9 s of one core's start when alone, ready together at 36 s:
    # one after another they would have been given 4 x 20 s
    assert _scale(ready_at=36.0, count=4) == ["api-2", "api-3", "api-4", "api-5"]


def test_an_instance_that_never_becomes_ready_still_fails_the_scale() -> None:
    with pytest.raises(WaitTimeout):
        _scale(ready_at=4 * READY_TIMEOUT_S + 5.0, count=4)
