"""Stop conditions, as AWS FIS has them: a metric polled during a drill; when it crosses
its limit, every live fault is reverted at once and the drill is aborted.

A `StopCondition` names a metric over the last `window` samples of one URL (the
environment's /health by default): `health_error_rate` (the share of samples that did
not answer 200 in time, 0..1) or `p95_latency_ms` (a sample that failed counts as its
timeout). A `Guard` samples on a thread of its own while faults are live and calls
`on_trip` once, with the `Trip`; `abort_thread()` raises `DrillAborted` in the drill's
thread (at its next Python instruction), which `except Exception` cannot swallow.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import UsageError
from runbook_checks.tls import tls_context

METRICS = ("health_error_rate", "p95_latency_ms")


class DrillAborted(BaseException):
    """A stop condition tripped: the drill's faults were reverted and the drill stops."""

    reason: str = "a stop condition tripped"

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class StopCondition:
    metric: str
    limit: float
    window: int = 10  # samples the metric is computed over
    interval_s: float = 0.5
    path: str = "/health"
    timeout_s: float = 2.0
    min_samples: int = 3  # no verdict on fewer samples than this

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise UsageError(
                f"stop condition: unknown metric {self.metric!r}",
                hint=f"use one of {', '.join(METRICS)}",
            )
        if self.window < 1 or self.interval_s <= 0 or self.timeout_s <= 0:
            raise UsageError(
                f"stop condition {self.metric}: window >= 1, interval_s > 0 and "
                f"timeout_s > 0 expected (got {self.window}, {self.interval_s}, {self.timeout_s})"
            )

    def describe(self) -> str:
        return f"{self.metric} of GET {self.path} over {self.window} samples > {self.limit:g}"


@dataclass(frozen=True)
class Sample:
    ok: bool
    latency_ms: float


def metric_value(condition: StopCondition, samples: Sequence[Sample]) -> float | None:
    """The metric over the samples (None: too few samples for a verdict)."""
    recent = list(samples)[-condition.window :]
    if len(recent) < min(condition.min_samples, condition.window):
        return None
    if condition.metric == "health_error_rate":
        return sum(1 for s in recent if not s.ok) / len(recent)
    latencies = sorted(s.latency_ms if s.ok else condition.timeout_s * 1000 for s in recent)
    return latencies[max(math.ceil(0.95 * len(latencies)) - 1, 0)]


@dataclass(frozen=True)
class Trip:
    condition: StopCondition
    value: float
    samples: int

    def describe(self) -> str:
        return (
            f"stop condition tripped: {self.condition.metric} = {self.value:.3g} crossed its "
            f"limit {self.condition.limit:g} (GET {self.condition.path}, last "
            f"{min(self.samples, self.condition.window)} samples)"
        )


def evaluate(
    conditions: Sequence[StopCondition], samples: Mapping[str, Sequence[Sample]]
) -> Trip | None:
    for condition in conditions:
        series = samples.get(condition.path, ())
        value = metric_value(condition, series)
        if value is not None and value > condition.limit:
            return Trip(condition, value, len(series))
    return None


# One thread for reverts ordered by guards, alive for the whole process: a server a revert
# restarts gets the parent-death signal of the thread that forked it, so that thread must
# not end before the process does.
_REVERTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runbook-checks-revert")


def run_revert(action: Callable[[], None]) -> None:
    """Run `action` on the process-long revert thread and wait for it."""
    _REVERTER.submit(action).result()


def abort_thread(ident: int, reason: str) -> bool:
    """Raise `DrillAborted(reason)` in thread `ident`; False when no such thread."""
    aborted = type("DrillAborted", (DrillAborted,), {"reason": reason})
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(aborted)
    )
    return int(done) == 1


class Guard:
    """Samples the stop conditions' URLs until stopped or tripped (then calls `on_trip`)."""

    def __init__(
        self,
        base_url: str,
        conditions: Sequence[StopCondition],
        on_trip: Callable[[Trip], None],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.conditions = tuple(conditions)
        self.on_trip = on_trip
        self.clock = clock
        self.tripped: Trip | None = None
        self.samples_taken = 0
        self._samples: dict[str, deque[Sample]] = {
            c.path: deque(maxlen=max(x.window for x in self.conditions if x.path == c.path))
            for c in self.conditions
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running or not self.conditions:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="stop-conditions")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self._thread = None

    def _sample(self, http: httpx.Client, path: str, timeout_s: float) -> Sample:
        started = self.clock.monotonic()
        try:
            ok = http.get(self.base_url + path, timeout=timeout_s).status_code == 200
        except Exception:  # no answer at all is a failed sample: a guard
            ok = False  # thread that died on an odd error would leave the faults unguarded
        return Sample(ok, (self.clock.monotonic() - started) * 1000)

    def _run(self) -> None:
        interval = min(c.interval_s for c in self.conditions)
        timeouts = {c.path: c.timeout_s for c in self.conditions}
        with httpx.Client(verify=tls_context()) as http:
            while not self._stop.is_set():
                for path, series in self._samples.items():
                    series.append(self._sample(http, path, timeouts[path]))
                    self.samples_taken += 1
                trip = evaluate(self.conditions, self._samples)
                if trip is not None:
                    self.tripped = trip
                    self.on_trip(trip)
                    return
                self._stop.wait(interval)
