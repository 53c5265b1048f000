"""The per-second timeline of a load run: requests, error rate and latency each second.

Each locust process (standalone, or each worker) writes `timeline-<pid>.jsonl` records
(`loadtests/per_second.py`); this module merges them: counts add up, latency
histograms merge, so each second's percentiles are exact to locust's rounding. This is
the evidence a fault drill wants: the error rate and p95 across injection and recovery.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ALL = "all"


@dataclass(frozen=True)
class Second:
    t: int  # epoch second
    offset_s: float  # seconds since the timeline's start
    users: int | None
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    latency_hist: Mapping[float, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "t": self.t,
            "offset_s": round(self.offset_s, 3),
            "users": self.users,
            "requests": self.requests,
            "failures": self.failures,
            "error_rate": round(self.error_rate, 4),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "max_ms": self.max_ms,
        }


@dataclass(frozen=True)
class Window:
    """A stretch of the timeline, summed up."""

    start_t: float
    end_t: float
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Mark:
    """Something that happened during the load (a fault injected, reverted ...)."""

    t: float  # epoch seconds
    label: str


@dataclass
class _Acc:
    n: int = 0
    fail: int = 0
    max_ms: float = 0.0
    hist: dict[float, int] = field(default_factory=lambda: defaultdict(int))


def percentile(hist: Mapping[float, int], q: float) -> float | None:
    """Nearest-rank percentile of a histogram {value: count}."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)


@dataclass(frozen=True)
class Timeline:
    start_t: float
    seconds: tuple[Second, ...]  # all endpoints together
    endpoints: Mapping[str, tuple[Second, ...]]  # "GET /health" -> seconds
    marks: tuple[Mark, ...] = ()

    def window(self, start_t: float, end_t: float) -> tuple[Second, ...]:
        return tuple(s for s in self.seconds if start_t <= s.t < end_t)

    def error_rate(self, start_t: float, end_t: float) -> float:
        """Failures / requests over [start_t, end_t) (whole seconds)."""
        seconds = self.window(start_t, end_t)
        total = sum(s.requests for s in seconds)
        return sum(s.failures for s in seconds) / total if total else 0.0

    def summary(self, start_t: float, end_t: float) -> Window:
        """Requests, error rate and exact (to locust's rounding) p50/p95 over [start_t,
        end_t): the seconds' latency histograms merged."""
        seconds = self.window(start_t, end_t)
        hist: dict[float, int] = defaultdict(int)
        for second in seconds:
            for value, count in second.latency_hist.items():
                hist[value] += count
        return Window(start_t, end_t, sum(s.requests for s in seconds),
                      sum(s.failures for s in seconds), percentile(hist, 0.5),
                      percentile(hist, 0.95))  # fmt: skip

    def with_marks(self, marks: Iterable[Mark]) -> Timeline:
        return Timeline(self.start_t, self.seconds, self.endpoints, (*self.marks, *marks))

    def to_json(self) -> dict[str, object]:
        return {
            "start_t": self.start_t,
            "marks": [
                {"t": m.t, "offset_s": round(m.t - self.start_t, 3), "label": m.label}
                for m in self.marks
            ],
            "seconds": [s.to_json() for s in self.seconds],
            "endpoints": {
                name: [s.to_json() for s in seconds]
                for name, seconds in sorted(self.endpoints.items())
            },
        }

    def write(self, folder: Path, stem: str = "timeline") -> tuple[Path, Path]:
        """`<stem>.json` (everything) and `<stem>.csv` (all endpoints, one row a second)."""
        folder.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = folder / f"{stem}.json", folder / f"{stem}.csv"
        json_path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        marks = defaultdict(list)
        for mark in self.marks:
            marks[int(mark.t)].append(mark.label)
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                [
                    "t",
                    "offset_s",
                    "users",
                    "requests",
                    "failures",
                    "error_rate",
                    "p50_ms",
                    "p95_ms",
                    "max_ms",
                    "marks",
                ]
            )
            for s in self.seconds:
                writer.writerow(
                    [
                        s.t,
                        f"{s.offset_s:.0f}",
                        "" if s.users is None else s.users,
                        s.requests,
                        s.failures,
                        f"{s.error_rate:.4f}",
                        _cell(s.p50_ms),
                        _cell(s.p95_ms),
                        _cell(s.max_ms),
                        " | ".join(marks.get(s.t, [])),
                    ]
                )
        return json_path, csv_path


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def read_timeline(folder: Path, marks: Iterable[Mark] = ()) -> Timeline:
    """Merge every `timeline-*.jsonl` in `folder` (missing or empty: an empty timeline)."""
    totals: dict[int, _Acc] = defaultdict(_Acc)
    per: dict[str, dict[int, _Acc]] = defaultdict(lambda: defaultdict(_Acc))
    users: dict[int, dict[int, int]] = defaultdict(dict)  # second -> pid -> users
    for path in sorted(folder.glob("timeline-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a killed process
            if record.get("kind") == "users":
                users[int(record["t"])][int(record.get("pid", 0))] = int(record["users"])
            elif record.get("kind") == "requests":
                t = int(record["t"])
                endpoint = f"{record['type']} {record['name']}"
                for acc in (totals[t], per[endpoint][t]):
                    acc.n += int(record["n"])
                    acc.fail += int(record["fail"])
                    acc.max_ms = max(acc.max_ms, float(record["max_ms"]))
                    for bucket, count in record["hist"].items():
                        acc.hist[float(bucket)] += int(count)
    seconds_with_data = set(totals) | set(users)
    if not seconds_with_data:
        return Timeline(0.0, (), {}, tuple(marks))
    first, last = min(seconds_with_data), max(seconds_with_data)
    user_counts = _user_counts(users, first, last)

    def series(accs: Mapping[int, _Acc]) -> tuple[Second, ...]:
        out = []
        for t in range(first, last + 1):
            acc = accs.get(t)
            out.append(
                Second(
                    t=t,
                    offset_s=float(t - first),
                    users=user_counts.get(t),
                    requests=acc.n if acc else 0,
                    failures=acc.fail if acc else 0,
                    p50_ms=percentile(acc.hist, 0.50) if acc else None,
                    p95_ms=percentile(acc.hist, 0.95) if acc else None,
                    max_ms=round(acc.max_ms, 1) if acc and acc.n else None,
                    latency_hist=dict(acc.hist) if acc else {},
                )
            )
        return tuple(out)

    return Timeline(
        float(first),
        series(totals),
        {name: series(accs) for name, accs in per.items()},
        tuple(marks),
    )


def _user_counts(users: Mapping[int, Mapping[int, int]], first: int, last: int) -> dict[int, int]:
    """Users each second, summed over processes (a process's last report carried over)."""
    latest: dict[int, int] = {}
    out: dict[int, int] = {}
    for t in range(first, last + 1):
        latest.update(users.get(t, {}))
        if latest:
            out[t] = sum(latest.values())
    return out
