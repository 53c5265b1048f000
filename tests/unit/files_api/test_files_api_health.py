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
