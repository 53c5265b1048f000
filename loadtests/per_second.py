"""Per-second request records, written by each locust process as JSON lines; no locust here.

Locust's own history CSV smooths requests/s and percentiles over ~10 s windows; a fault
drill needs the error rate and latency of each second across injection and recovery, so
every request is also counted here, by the second it completed in and by endpoint,
with a latency histogram (locust's rounding: 2 significant digits) so that seconds from
several processes can be merged and their percentiles computed afterwards
(`runbook_checks.load.timeline`).

Lines:
    {"kind": "requests", "t": 1700000000, "type": "GET", "name": "/health",
     "n": 12, "fail": 1, "sum_ms": 85.2, "max_ms": 20.1, "hist": {"7": 10, "20": 2}}
    {"kind": "users", "t": 1700000000, "users": 20, "ready": 20, "pid": 1234}
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def bucket_ms(ms: float) -> int:
    """Locust's rounding of a response time: exact below 100 ms, then 2 significant digits."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return round(ms, -1)
    if ms < 10000:
        return round(ms, -2)
    return round(ms, -3)


@dataclass
class _Second:
    n: int = 0
    fail: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    hist: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class PerSecondWriter:
    """Counts requests by (second, type, name); `flush(before)` writes finished seconds."""

    def __init__(self, path: Path, pid: int | None = None) -> None:
        self.path = path
        self.pid = os.getpid() if pid is None else pid
        self._open: dict[tuple[int, str, str], _Second] = {}
        self._file: IO[str] | None = None

    def record(
        self, at_s: float, request_type: str, name: str, response_ms: float, failed: bool
    ) -> None:
        key = (int(at_s), request_type, name)
        second = self._open.get(key)
        if second is None:
            second = self._open[key] = _Second()
        second.n += 1
        second.fail += int(failed)
        second.sum_ms += response_ms
        second.max_ms = max(second.max_ms, response_ms)
        second.hist[bucket_ms(response_ms)] += 1

    def users(self, at_s: float, users: int, ready: int) -> None:
        self._write(
            {"kind": "users", "t": int(at_s), "users": users, "ready": ready, "pid": self.pid}
        )

    def flush(self, before_s: float | None = None) -> None:
        """Write (and forget) every second earlier than `before_s` (all when None)."""
        done = [k for k in self._open if before_s is None or k[0] < int(before_s)]
        for key in sorted(done):
            second = self._open.pop(key)
            self._write(
                {
                    "kind": "requests",
                    "t": key[0],
                    "type": key[1],
                    "name": key[2],
                    "n": second.n,
                    "fail": second.fail,
                    "sum_ms": round(second.sum_ms, 3),
                    "max_ms": round(second.max_ms, 3),
                    "hist": {str(k): v for k, v in sorted(second.hist.items())},
                }
            )
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, record: dict[str, object]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
