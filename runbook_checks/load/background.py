"""Load kept running while a fault runs: what users saw across injection and recovery.

    with background_load(stack, locustfile, users=10, duration_s=120) as load:
        handle = fault.inject(stack)
        load.mark("fault injected")
        ...                               # the runbook's diagnostics and mitigation
        handle.revert()
        load.mark("fault reverted")
    load.timeline.write(evidence_folder, "load-timeline")   # per-second error rate, p95

Locust runs in a subprocess (standalone, the service's locustfile as `runbook-checks
load` runs it, no shape: `users` held for at most `duration_s`), so the fault proxy's
threads in this process do not compete with the load generator for the GIL, and locust's gevent
patching never reaches the caller. Entering blocks until every user has signed up and
requests flow (about 1.5-3 s: see benchmarks/bench_load.py), so the fault meets a
steady load; a failure to get there raises `LoadRunError` with locust's log.

The load ends when the block ends (or at `duration_s`, whichever comes first: the load
is bounded even if the caller hangs); `load.timeline` then holds one row per second
(requests, failures, error rate, p50/p95/max latency, users) plus the marks, and
`load.stats` locust's per-endpoint totals. `load.snapshot()` reads the timeline so far
while the block runs (for a detector that waits for the error rate to rise). Locust's
CSV and logs stay in `work_dir` when one is given; otherwise a temporary folder is used
and removed on exit.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.errors import UsageError
from runbook_checks.load.locust_csv import EndpointStats, read_stats
from runbook_checks.load.locust_process import LoadRunError, LocustPlan, LocustRun
from runbook_checks.load.shapes import MAX_DURATION_S, MAX_USERS
from runbook_checks.load.timeline import Mark, Timeline, read_timeline
from runbook_checks.stack.base import Stack

READY_TIMEOUT_S = 30.0


class BackgroundLoad:
    """The handle of a running background load (see the module's docstring)."""

    def __init__(self, run: LocustRun, *, clock: Clock) -> None:
        self.run = run
        self.clock = clock
        self.folder = run.plan.work_dir
        self.marks: list[Mark] = []
        self.ready_after_s: float | None = None  # from start to every user signed up
        self.ended_early = False  # the load had stopped (duration_s) before the block ended
        self.timeline: Timeline = Timeline(0.0, (), {})
        self.stats: tuple[EndpointStats, ...] = ()

    def mark(self, label: str) -> None:
        """Note a moment (fault injected, step run, recovered) on the timeline."""
        self.marks.append(Mark(self.clock.wall(), label))

    def snapshot(self) -> Timeline:
        """The timeline so far (each locust process writes the seconds it has finished)."""
        return read_timeline(self.run.plan.timeline_dir, self.marks)

    @property
    def running(self) -> bool:
        return self.run.running()

    def _ready_users(self) -> tuple[int, int]:
        """(users signed up, requests answered) so far, over every locust process."""
        timeline = self.snapshot()
        ready = _ready_total(self.run.plan.timeline_dir)
        return ready, sum(s.requests for s in timeline.seconds)


def _ready_total(folder: Path) -> int:
    import json

    latest: dict[int, int] = {}
    for path in folder.glob("timeline-*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError, KeyError, ValueError):
                record = json.loads(line)
                if record.get("kind") == "users":
                    latest[int(record.get("pid", 0))] = int(record["ready"])
    return sum(latest.values())


@contextlib.contextmanager
def background_load(
    stack: Stack,
    locustfile: Path,
    *,
    users: int = 10,
    duration_s: float = 120.0,
    work_dir: Path | None = None,
    wait_s: tuple[float, float] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    clock: Clock = SYSTEM_CLOCK,
) -> Iterator[BackgroundLoad]:
    """Run the service's user mix (`locustfile`) against `stack` while the block runs (bounded by
    `users` and `duration_s`); the handle's `timeline` is filled in on exit."""
    if not 1 <= users <= MAX_USERS:
        raise UsageError(f"background_load: users={users}, expected 1..{MAX_USERS}")
    if not 1 <= duration_s <= MAX_DURATION_S:
        raise UsageError(
            f"background_load: duration_s={duration_s:g}, expected 1..{MAX_DURATION_S:g}"
        )
    own_folder = work_dir is None
    folder = work_dir or Path(tempfile.mkdtemp(prefix="background-load-"))
    endpoints = stack.endpoints
    plan = LocustPlan(
        host=endpoints.api_url,
        users=users,
        run_time_s=duration_s,
        work_dir=folder,
        locustfile=locustfile,
        spawn_rate=float(users),  # everyone within a second: the fault meets a steady load
        wait_s=wait_s,
        html=False,
    )
    run = LocustRun(plan, endpoints.admin_token, run_id=f"bg-{secrets.token_hex(3)}", clock=clock)
    load = BackgroundLoad(run, clock=clock)
    started = clock.monotonic()
    run.start()
    try:
        _wait_ready(load, users, ready_timeout_s)
        load.ready_after_s = clock.monotonic() - started
        load.mark(f"load steady: {users} users")
        yield load
    finally:
        load.ended_early = not run.running()
        if load.ended_early:
            load.mark(f"load ended: duration_s={duration_s:g} reached")
        else:
            load.mark("load stopped")
        run.stop()
        load.timeline = read_timeline(plan.timeline_dir, load.marks)
        with contextlib.suppress(UsageError):
            load.stats = tuple(read_stats(plan.csv("stats")))
        if own_folder:  # the timeline and stats are in memory; pass work_dir to keep logs
            shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(load: BackgroundLoad, users: int, timeout_s: float) -> None:
    def ready() -> tuple[int, int] | None:
        if not load.run.running():
            raise load.run.failure("locust stopped before the load was steady")
        signed_up, answered = load._ready_users()
        return (signed_up, answered) if signed_up >= users and answered > 0 else None

    try:
        wait_until(
            ready,
            what=f"{users} locust users to sign up and get answers",
            timeout_s=timeout_s,
            interval_s=0.1,
            clock=load.clock,
        )
    except WaitTimeout as exc:
        load.run.stop()
        raise load.run.failure(
            f"the background load did not become steady within {timeout_s:g}s "
            f"(last seen: {exc.last!r} users signed up / requests answered)"
        ) from None
    except LoadRunError:
        load.run.stop()
        raise
