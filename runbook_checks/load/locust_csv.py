"""Locust's CSV output (`--csv PREFIX`), read into typed rows.

- ``PREFIX_stats.csv``: one row per endpoint (Type, Name) plus "Aggregated", totals of the
  whole run: request and failure counts, percentiles (ms, locust's 2-significant-digit
  rounding), requests/s.
- ``PREFIX_stats_history.csv``: one row per second (per endpoint with
  `--csv-full-history`): the user count and the cumulative request/failure totals, which
  is what ties pool samples to a user count.
- ``PREFIX_failures.csv``: distinct errors and their occurrences.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from runbook_checks.errors import UsageError

AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class EndpointStats:
    method: str  # "GET"; "" for the aggregated row
    name: str  # the request's name in the locustfile ("/files/[id]"); "Aggregated"
    requests: int
    failures: int
    median_ms: float
    average_ms: float
    max_ms: float
    rps: float
    p95_ms: float
    p99_ms: float

    @property
    def endpoint(self) -> str:
        return self.name if self.method == "" else f"{self.method} {self.name}"

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def aggregated(self) -> bool:
        return self.name == AGGREGATED and self.method == ""


@dataclass(frozen=True)
class HistoryPoint:
    """One second of locust's history (the aggregated row)."""

    t: float  # epoch seconds
    users: int
    requests_total: int
    failures_total: int
    p95_ms: float | None  # locust's current (~10 s window) p95; None before any request


@dataclass(frozen=True)
class Failure:
    method: str
    name: str
    error: str
    occurrences: int


def _number(raw: str | None) -> float:
    if raw is None or raw.strip() in ("", "N/A"):
        return math.nan
    return float(raw)


def _count(raw: str | None) -> int:
    value = _number(raw)
    return 0 if math.isnan(value) else int(value)


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        raise UsageError(
            f"locust's CSV {path} is missing",
            hint="locust did not run to the end; see its log in the same folder",
        ) from None


def read_stats(path: Path) -> list[EndpointStats]:
    """Rows of PREFIX_stats.csv, the aggregated row last."""
    stats = []
    for row in _rows(path):
        stats.append(
            EndpointStats(
                method=row.get("Type") or "",
                name=row.get("Name") or "",
                requests=_count(row.get("Request Count")),
                failures=_count(row.get("Failure Count")),
                median_ms=_number(row.get("Median Response Time")),
                average_ms=_number(row.get("Average Response Time")),
                max_ms=_number(row.get("Max Response Time")),
                rps=_number(row.get("Requests/s")),
                p95_ms=_number(row.get("95%")),
                p99_ms=_number(row.get("99%")),
            )
        )
    return sorted(stats, key=lambda s: (s.aggregated, s.endpoint))


def read_history(path: Path) -> list[HistoryPoint]:
    """The aggregated rows of PREFIX_stats_history.csv, in time order."""
    points = []
    for row in _rows(path):
        if row.get("Name") != AGGREGATED or row.get("Type"):
            continue
        p95 = _number(row.get("95%"))
        points.append(
            HistoryPoint(
                t=float(row["Timestamp"]),
                users=int(row["User Count"]),
                requests_total=int(row["Total Request Count"]),
                failures_total=int(row["Total Failure Count"]),
                p95_ms=None if math.isnan(p95) else p95,
            )
        )
    return sorted(points, key=lambda p: p.t)


def read_failures(path: Path) -> list[Failure]:
    if not path.exists():
        return []
    return [
        Failure(
            row.get("Method") or "",
            row.get("Name") or "",
            row.get("Error") or "",
            _count(row.get("Occurrences")),
        )
        for row in _rows(path)
    ]
