from __future__ import annotations

import pytest

from runbook_checks.clock import FakeClock, WaitTimeout, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    clock = FakeClock()
    values = iter([None, 0, "", "ready"])
    assert wait_until(lambda: next(values), what="x", timeout_s=5, clock=clock) == "ready"
    assert clock.sleeps == [0.05, 0.05, 0.05]


def test_wait_until_times_out_with_what_and_last_value() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as info:
        wait_until(
            lambda: False, what="the API to answer", timeout_s=1.0, interval_s=0.25, clock=clock
        )
    assert "the API to answer" in str(info.value)
    assert info.value.attempts == 5
    assert clock.now == pytest.approx(1.0)


def test_transient_errors_are_retried_and_reported() -> None:
    clock = FakeClock()
    calls = {"n": 0}

    def flaky() -> bool:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionRefusedError("ECONNREFUSED")
        return True

    assert wait_until(flaky, what="db", timeout_s=1, transient=(OSError,), clock=clock)
    with pytest.raises(WaitTimeout) as info:
        wait_until(
            lambda: (_ for _ in ()).throw(ConnectionRefusedError("no")),
            what="db",
            timeout_s=0.1,
            transient=(OSError,),
            clock=clock,
        )
    assert isinstance(info.value.last, ConnectionRefusedError)


def test_other_errors_propagate_at_once() -> None:
    clock = FakeClock()
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, what="x", timeout_s=10, transient=(OSError,), clock=clock)
    assert clock.sleeps == []
