"""A stack whose component lost its port to another process is started again, on new
ports; any other start failure is raised at once (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.errors import ComponentFailed
from runbook_checks.stack import start_with_retry

RACE = "bind: Address already in use"


class FakeStack:
    def __init__(self, failure: Exception | None) -> None:
        self.failure = failure
        self.started = False

    def start(self) -> None:
        if self.failure is not None:
            raise self.failure
        self.started = True


def _maker(*failures: Exception | None) -> tuple[list[FakeStack], object]:
    made: list[FakeStack] = []
    pending = list(failures)

    def make() -> FakeStack:
        made.append(FakeStack(pending.pop(0) if pending else None))
        return made[-1]

    return made, make


def test_a_port_lost_to_another_process_is_retried_on_a_new_stack() -> None:
    made, make = _maker(ComponentFailed("redis", "exited", log_tail=RACE))
    stack = start_with_retry(make)  # type: ignore[arg-type]
    assert len(made) == 2
    assert stack is made[1]
    assert made[1].started


def test_other_failures_and_the_last_attempt_are_raised() -> None:
    made, make = _maker(ComponentFailed("postgres", "exited", log_tail="FATAL: bad config"))
    with pytest.raises(ComponentFailed, match="bad config"):
        start_with_retry(make)  # type: ignore[arg-type]
    assert len(made) == 1
    race = ComponentFailed("redis", "exited", log_tail=RACE)
    made, make = _maker(race, race, race)
    with pytest.raises(ComponentFailed, match="Address already in use"):
        start_with_retry(make, attempts=3)  # type: ignore[arg-type]
    assert len(made) == 3


def test_each_user_has_a_work_root_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runbook_checks.stack.leftovers import work_root

    monkeypatch.setenv("RUNBOOK_CHECKS_WORK_ROOT", str(tmp_path))
    monkeypatch.setattr("os.getuid", lambda: 0)
    assert work_root() == tmp_path / "runbook-checks"
    monkeypatch.setattr("os.getuid", lambda: 1000)
    assert work_root() == tmp_path / "runbook-checks-1000"


def test_every_capability_says_what_a_backend_without_it_cannot_do() -> None:
    from runbook_checks.stack.base import Capability

    for capability in Capability:
        assert capability.ability, capability
    assert "root" in Capability.DISK.ability  # why a non-root run skips the disk-full drill
