"""Samples the API's health through a drill (the timeline's error rate and latency)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.tls import tls_context


@dataclass(frozen=True)
class Sample:
    at_s: float  # offset from the sampler's start
    status: int  # HTTP status, 0 when no answer
    latency_ms: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


class HealthSampler:
    """GET /health every `interval_s` on a thread, bounded by `max_samples`."""

    def __init__(
        self,
        api_url: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        interval_s: float = 0.2,
        timeout_s: float = 2.0,
        max_samples: int = 3000,
    ) -> None:
        self.api_url = api_url
        self.clock = clock
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_samples = max_samples
        self.samples: list[Sample] = []
        self.started = clock.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.started = self.clock.monotonic()

        def loop() -> None:
            with httpx.Client(timeout=self.timeout_s, verify=tls_context()) as http:
                while not self._stop.is_set() and len(self.samples) < self.max_samples:
                    self.samples.append(self._sample(http))
                    self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=loop, name="health-sampler", daemon=True)
        self._thread.start()

    def _sample(self, http: httpx.Client) -> Sample:
        begin = self.clock.monotonic()
        try:
            status, error = http.get(f"{self.api_url}/health").status_code, ""
        except httpx.HTTPError as exc:
            status, error = 0, type(exc).__name__
        end = self.clock.monotonic()
        return Sample(begin - self.started, status, (end - begin) * 1000, error)

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 2)
        return list(self.samples)

    def stop_on_axis(self, injected_at: float | None) -> list[Sample]:
        """Stop; the samples with their times in seconds since `injected_at` (the events'
        axis, 0 = the fault went in), or as sampled when nothing was injected."""
        samples = self.stop()
        if injected_at is None:
            return samples
        shift = injected_at - self.started
        return [replace(s, at_s=round(s.at_s - shift, 3)) for s in samples]
