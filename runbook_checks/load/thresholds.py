"""Pass/fail lines for a load run, taken from the runbook, applied per endpoint.

The runbook's SEV-2 sections say when the service is in trouble: "API response time
> 2s (p95)" (Performance Degradation) and "Error rate > 5%" (File Upload Failures). A
load run passes when no endpoint crosses either line; the limits are read from the
runbook's own text (so they follow it when it changes), can be overridden, and can be
set per endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from runbook_checks.errors import UsageError
from runbook_checks.load.locust_csv import EndpointStats
from runbook_checks.runbook.model import Runbook

Metric = Literal["p95_ms", "error_rate"]
DEFAULT_P95_MS = 2000.0
DEFAULT_ERROR_RATE = 0.05
ALL_ENDPOINTS = "all endpoints (aggregated)"

_P95 = re.compile(r"response time\s*>\s*(\d+(?:\.\d+)?)\s*(ms|s)\b[^()]*\(p95\)", re.IGNORECASE)
_ERRORS = re.compile(r"error rate\s*>\s*(\d+(?:\.\d+)?)\s*%", re.IGNORECASE)
_OVERRIDE = re.compile(
    r"^(?P<endpoint>.+?)\s*:\s*(?P<metric>p95_ms|error_rate)\s*=\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*$"
)


@dataclass(frozen=True)
class Limit:
    p95_ms: float
    error_rate: float  # a fraction: 0.05 is 5%

    def value(self, metric: Metric) -> float:
        return self.p95_ms if metric == "p95_ms" else self.error_rate


@dataclass(frozen=True)
class Thresholds:
    default: Limit = Limit(DEFAULT_P95_MS, DEFAULT_ERROR_RATE)
    per_endpoint: Mapping[str, Limit] = field(default_factory=dict)
    min_requests: int = 1  # endpoints with fewer requests are listed, not judged
    sources: tuple[str, ...] = ()  # where each default came from (runbook line or flag)

    def limit_for(self, endpoint: str) -> Limit:
        return self.per_endpoint.get(endpoint, self.default)

    def with_overrides(self, overrides: Iterable[str]) -> Thresholds:
        """Apply `ENDPOINT:p95_ms=N` / `ENDPOINT:error_rate=F` overrides (error_rate as a
        fraction, or a percentage when > 1)."""
        per = dict(self.per_endpoint)
        for text in overrides:
            match = _OVERRIDE.match(text)
            if match is None:
                raise UsageError(
                    f"--threshold {text!r}: expected 'ENDPOINT:p95_ms=MS' or "
                    "'ENDPOINT:error_rate=FRACTION'",
                    hint="ENDPOINT as locust's stats name it ('METHOD NAME'), e.g. "
                    "--threshold 'POST /upload:p95_ms=5000'",
                )
            endpoint, metric = match["endpoint"], match["metric"]
            value = float(match["value"])
            base = per.get(endpoint, self.default)
            if metric == "p95_ms":
                per[endpoint] = Limit(value, base.error_rate)
            else:
                per[endpoint] = Limit(base.p95_ms, value / 100 if value > 1 else value)
        return Thresholds(self.default, per, self.min_requests, self.sources)


def from_runbook(
    runbook: Runbook | None,
    *,
    p95_ms: float | None = None,
    error_rate: float | None = None,
    min_requests: int = 1,
) -> Thresholds:
    """The runbook's SEV-2 lines (explicit values win); the defaults where it has none."""
    sources: list[str] = []
    found_p95, found_errors = _runbook_lines(runbook) if runbook is not None else (None, None)
    if p95_ms is not None:
        sources.append(f"p95 <= {p95_ms:g} ms: --p95-ms")
    elif found_p95 is not None:
        p95_ms = found_p95[0]
        sources.append(f"p95 <= {p95_ms:g} ms: runbook {found_p95[1]}")
    else:
        p95_ms = DEFAULT_P95_MS
        sources.append(f"p95 <= {p95_ms:g} ms: default (the runbook states no p95 line)")
    if error_rate is not None:
        sources.append(f"error rate <= {error_rate:.1%}: --max-error-rate")
    elif found_errors is not None:
        error_rate = found_errors[0]
        sources.append(f"error rate <= {error_rate:.1%}: runbook {found_errors[1]}")
    else:
        error_rate = DEFAULT_ERROR_RATE
        sources.append(f"error rate <= {error_rate:.1%}: default (the runbook states none)")
    if not (p95_ms > 0 and 0 <= error_rate <= 1):
        raise UsageError(
            f"thresholds out of range: p95 {p95_ms:g} ms, error rate {error_rate:g}",
            hint="p95 in milliseconds > 0; the error rate a fraction in 0..1",
        )
    return Thresholds(Limit(p95_ms, error_rate), {}, min_requests, tuple(sources))


def _runbook_lines(runbook: Runbook) -> tuple[tuple[float, str] | None, tuple[float, str] | None]:
    p95: tuple[float, str] | None = None
    errors: tuple[float, str] | None = None
    for section in runbook.sections:
        for symptom in section.symptoms:
            where = f"'{section.title}' (line {section.line}): \"{symptom}\""
            if p95 is None and (m := _P95.search(symptom)):
                p95 = (float(m[1]) * (1000 if m[2].lower() == "s" else 1), where)
            if errors is None and (m := _ERRORS.search(symptom)):
                errors = (float(m[1]) / 100, where)
    return p95, errors


# ---------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class Check:
    endpoint: str
    metric: Metric
    observed: float
    limit: float
    requests: int

    @property
    def passed(self) -> bool:
        return not self.observed > self.limit  # NaN (no data) never breaks a line

    def describe(self) -> str:
        if self.metric == "p95_ms":
            return f"{self.endpoint}: p95 {self.observed:.0f} ms > {self.limit:.0f} ms"
        return (
            f"{self.endpoint}: error rate {self.observed:.1%} > {self.limit:.1%} "
            f"({round(self.observed * self.requests)} of {self.requests} requests failed)"
        )


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]
    not_judged: tuple[str, ...]  # endpoints with fewer than min_requests requests

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def breaches(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        if self.passed:
            return f"PASS: {len(self.checks)} checks within the thresholds"
        return "FAIL: " + "; ".join(c.describe() for c in self.breaches)


def evaluate(stats: Iterable[EndpointStats], thresholds: Thresholds) -> Verdict:
    """Judge every endpoint against its limits.

    The aggregate is not judged: when every endpoint keeps at most 5% of its requests
    above the p95 line (and fails at most 5%), so does their union, so it would add
    nothing, except contradict a per-endpoint override (a looser line for uploads).
    """
    checks: list[Check] = []
    skipped: list[str] = []
    for row in stats:
        if row.aggregated:
            continue
        endpoint = row.endpoint
        if row.requests < max(1, thresholds.min_requests):
            skipped.append(f"{endpoint} ({row.requests} requests)")
            continue
        limit = thresholds.limit_for(endpoint)
        checks.append(Check(endpoint, "p95_ms", row.p95_ms, limit.p95_ms, row.requests))
        checks.append(Check(endpoint, "error_rate", row.error_rate, limit.error_rate, row.requests))
    return Verdict(tuple(checks), tuple(skipped))
