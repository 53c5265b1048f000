"""The health checker's contract: concurrent probes, a bounded answer, no probe pile-up."""

from __future__ import annotations

import asyncio
import errno

from files_api.errors import database_unavailable_error
from files_api.health import HealthChecker


async def _ok() -> None:
    return None


async def _refused() -> None:
    raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


def test_each_failure_is_reported_with_its_errno() -> None:
    async def pool() -> None:
        raise database_unavailable_error("ECONNREFUSED", "connection refused")

    checker = HealthChecker({"database": pool, "storage": _refused, "cache": _ok}, timeout_s=5)
    results = asyncio.run(checker.run())
    assert results["cache"].ok
    assert results["cache"].error is None
    assert not results["storage"].ok
    assert results["storage"].error == "ECONNREFUSED: [Errno 111] Connection refused"
    assert results["database"].error == "ECONNREFUSED: connection refused"
    assert results["database"].errno == "ECONNREFUSED"


def test_a_black_holed_probe_is_reported_and_not_started_twice() -> None:
    started: list[int] = []
    release = asyncio.Event()

    async def hangs() -> None:
        started.append(1)
        await release.wait()

    async def scenario() -> tuple[str | None, str | None, bool]:
        checker = HealthChecker({"database": hangs, "cache": _ok}, timeout_s=0.01)
        first = await checker.run()
        second = await checker.run()
        release.set()
        return first["database"].error, second["database"].error, second["cache"].ok

    first, second, cache_ok = asyncio.run(scenario())
    assert first is not None
    assert first.startswith("ETIMEDOUT: no answer within 0.01s")
    assert second is not None
    assert second.startswith("ETIMEDOUT")
    assert cache_ok
    assert len(started) == 1  # the second /health reused the probe still running


class _Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_only_while_its_probe_is_fresh() -> None:
    """Under load /health probes each dependency once per window, an outage that starts
    right after an ok probe shows as soon as the window ends, never later, and a failed
    answer is not reused: recovery shows on the next /health."""
    calls: list[str] = []
    storage_down = False

    async def storage() -> None:
        calls.append("storage")
        if storage_down:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    async def scenario() -> list[bool]:
        nonlocal storage_down
        clock = _Clock()
        checker = HealthChecker({"storage": storage}, timeout_s=1, max_age_s=0.5, clock=clock)
        seen = [(await checker.run())["storage"].ok]  # probes: ok
        storage_down = True  # the outage starts right after that probe
        clock.now += 0.3
        seen.append((await checker.run())["storage"].ok)  # within the window: reused
        clock.now += 0.2
        seen.append((await checker.run())["storage"].ok)  # 0.5 s: still the same answer
        clock.now += 0.01
        seen.append((await checker.run())["storage"].ok)  # past it: probes again, red
        seen.append((await checker.run())["storage"].ok)  # a failure is never reused
        storage_down = False
        clock.now += 0.1
        seen.append((await checker.run())["storage"].ok)  # back: green at once
        clock.now += 0.3
        seen.append((await checker.run())["storage"].ok)  # that answer is reused
        return seen

    assert asyncio.run(scenario()) == [True, True, True, False, False, True, True]
    assert len(calls) == 4


def test_without_a_window_every_request_probes() -> None:
    calls: list[str] = []

    async def cache() -> None:
        calls.append("cache")

    async def scenario() -> None:
        checker = HealthChecker({"cache": cache}, timeout_s=1, clock=_Clock())
        for _ in range(3):
            await checker.run()

    asyncio.run(scenario())
    assert len(calls) == 3


def test_a_failure_seen_by_a_request_ends_the_window_but_not_a_running_probe() -> None:
    calls: list[str] = []
    down = False
    release = asyncio.Event()

    async def storage() -> None:
        calls.append("storage")
        if down:
            await release.wait()  # a probe that hangs on the dead store
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    async def scenario() -> list[str | None]:
        nonlocal down
        checker = HealthChecker({"storage": storage}, timeout_s=0.01, max_age_s=0.5)
        seen = [(await checker.run())["storage"].errno]  # ok, fresh for 0.5 s
        down = True
        checker.forget("storage")  # an upload just failed to reach the store
        seen.append((await checker.run())["storage"].errno)  # probed again: hangs
        checker.forget("storage")  # another failure: the running probe is kept
        seen.append((await checker.run())["storage"].errno)
        release.set()
        await asyncio.sleep(0)
        return seen

    assert asyncio.run(scenario()) == [None, "ETIMEDOUT", "ETIMEDOUT"]
    assert len(calls) == 2
