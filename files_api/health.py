"""/health: the dependencies checked concurrently, answered within the check timeout.

A check that does not finish in time is reported as ETIMEDOUT and left to finish in the
background (psycopg and boto3 may need seconds to unwind a call to a frozen server);
while it runs, the next /health reports it again instead of piling up another probe.

With HEALTH_MAX_AGE_S set (default 0: off), a probe's ok answer is reused while the probe
started at most `max_age_s` ago (at most 0.5 s): under load /health costs one probe of
each dependency per window instead of one per request (a HeadBucket to the object store
costs more than the rest of the request), and an outage still shows within the window.
A failure any request meets drops that dependency's answer (`forget`), so an outage the
service has already seen is red on the next /health, not at the end of the window. A
failed answer is never reused: recovery shows on the next /health, as without the window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from files_api.errors import ServiceError, errno_name, one_line

Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    error: str | None
    errno: str | None = None


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """(errno-style name, one-line description naming it) of a failed probe."""
    if isinstance(exc, ServiceError):
        return exc.errno or "error", exc.summary
    name = errno_name(exc)
    return name, f"{name}: {one_line(exc)}"


class HealthChecker:
    def __init__(
        self,
        probes: dict[str, Probe],
        timeout_s: float,
        *,
        max_age_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probes = probes
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self.clock = clock
        self._running: dict[str, tuple[asyncio.Task[None], float]] = {}
        self._latency_ms: dict[str, float] = {}

    def _task_for(self, name: str) -> tuple[asyncio.Task[None], float]:
        current = self._running.get(name)
        if current is not None and (
            not current[0].done()
            or (
                self.max_age_s > 0
                and self.clock() - current[1] <= self.max_age_s
                and _succeeded(current[0])
            )
        ):
            return current  # still running, or an ok answer fresh enough
        probe = self.probes[name]

        started = self.clock()

        async def run() -> None:
            try:
                await probe()
            finally:
                self._latency_ms[name] = round((self.clock() - started) * 1000, 1)

        task = asyncio.get_running_loop().create_task(run(), name=f"health-{name}")
        task.add_done_callback(_consume_exception)
        entry = (task, started)
        self._running[name] = entry
        return entry

    def forget(self, name: str) -> None:
        """A request just saw `name` fail: the next /health probes it again instead of
        reusing an earlier answer (a probe still running is kept: no pile-up)."""
        current = self._running.get(name)
        if current is not None and current[0].done():
            del self._running[name]

    async def run(self) -> dict[str, CheckResult]:
        entries = {name: self._task_for(name) for name in self.probes}
        pending = [task for task, _ in entries.values() if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=self.timeout_s)
        now = self.clock()
        results: dict[str, CheckResult] = {}
        for name, (task, started) in entries.items():
            if not task.done():
                results[name] = CheckResult(
                    False,
                    round((now - started) * 1000, 1),
                    f"ETIMEDOUT: no answer within {self.timeout_s:g}s "
                    f"(probe running for {now - started:.1f}s)",
                    "ETIMEDOUT",
                )
                continue
            exc = task.exception() if not task.cancelled() else asyncio.CancelledError()
            latency = self._latency_ms.get(name, round((now - started) * 1000, 1))
            if exc is None:
                results[name] = CheckResult(True, latency, None)
            else:
                errno, text = describe_failure(exc)
                results[name] = CheckResult(False, latency, text, errno)
        return results


def _succeeded(task: asyncio.Task[None]) -> bool:
    return not task.cancelled() and task.exception() is None


def _consume_exception(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
