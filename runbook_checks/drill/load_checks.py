"""Checks for drills that run under load: the error rate users see "now".

A drill whose fault includes a `LoadIncrease` (alone or inside `AllOf`) judges the
symptom and the recovery by the load's recent error rate (a sliding window), against the
runbook's SEV-2 line "Error rate > 5%".
"""

from __future__ import annotations

from runbook_checks.drill.runner import DrillContext, health_and_canary
from runbook_checks.faults.base import FaultHandle
from runbook_checks.faults.traffic import LoadHandle, LoadStats

# "now": the last seconds of load. Long enough for MIN_REQUESTS at the drills' loads (16
# users give ~60 requests in 3 s, 60 users ~90), short enough that a symptom or a
# recovery shows within seconds of happening.
WINDOW_S = 3.0
MAX_ERROR_RATE = 0.05  # the runbook's SEV-2 line: "Error rate > 5%"
MIN_REQUESTS = 20  # fewer requests in the window say nothing


def _failed(stats: LoadStats) -> int:
    return sum(n for status, n in stats.by_status.items() if status == 0 or status >= 500)


def load_handle(handle: FaultHandle) -> LoadHandle:
    """The LoadIncrease's handle: the fault's own, or the first among an AllOf's parts."""
    if isinstance(handle, LoadHandle):
        return handle
    for part in handle.scratch.get("parts", []):  # type: ignore[attr-defined]
        if isinstance(part, LoadHandle):
            return part
    raise LookupError(f"{handle.fault.describe()} runs no load")


def recent_error_rate(ctx: DrillContext) -> tuple[float, int]:
    """(error rate, requests) of the load over the last WINDOW_S seconds."""
    assert ctx.handle is not None
    stats = load_handle(ctx.handle).stats()
    now = ctx.clock.monotonic()
    history = ctx.scratch.setdefault("load-history", [])
    assert isinstance(history, list)
    history.append((now, stats.requests, _failed(stats)))
    older = [h for h in history if h[0] <= now - WINDOW_S]
    if not older:
        return 0.0, 0
    _, requests_then, failed_then = older[-1]
    requests = stats.requests - requests_then
    return ((_failed(stats) - failed_then) / requests if requests else 0.0), requests


def overloaded(ctx: DrillContext) -> str | None:
    """Symptom: more than 5% of the recent requests failed."""
    rate, requests = recent_error_rate(ctx)
    if requests < MIN_REQUESTS or rate <= MAX_ERROR_RATE:
        return f"error rate {rate:.0%} over {requests} recent requests"
    return None


def load_served(ctx: DrillContext) -> str | None:
    """Recovery: at most 5% of the recent requests failed, and the steady state holds.
    Before the load starts and after it stops, the steady state alone."""
    if ctx.handle is None or not ctx.handle.active:
        return health_and_canary(ctx)
    rate, requests = recent_error_rate(ctx)
    if requests < MIN_REQUESTS or rate > MAX_ERROR_RATE:
        return f"error rate {rate:.0%} over {requests} recent requests"
    return health_and_canary(ctx)
