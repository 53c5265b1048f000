"""Per-second records from several locust processes, merged into one timeline."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

from runbook_checks.load.timeline import Mark, percentile, read_timeline

T = 1_700_000_000


def test_bucketing_follows_locusts_rounding(per_second: ModuleType) -> None:
    assert [per_second.bucket_ms(x) for x in (7.4, 99.6, 123, 1234, 12345)] == [
        7,
        100,
        120,
        1200,
        12000,
    ]


def test_percentile_is_nearest_rank() -> None:
    hist = {10.0: 90, 500.0: 9, 3000.0: 1}
    assert percentile(hist, 0.5) == 10
    assert percentile(hist, 0.95) == 500
    assert percentile(hist, 0.999) == 3000
    assert percentile({}, 0.95) is None


def test_two_processes_merge_into_one_timeline(per_second: ModuleType, tmp_path: Path) -> None:
    a = per_second.PerSecondWriter(tmp_path / "timeline-1.jsonl", pid=1)
    b = per_second.PerSecondWriter(tmp_path / "timeline-2.jsonl", pid=2)
    for writer, pid_users in ((a, 3), (b, 2)):
        writer.users(T + 0.2, pid_users, pid_users)
    for i in range(10):
        a.record(T + 0.5, "GET", "/health", 10.0 + i, failed=False)
        b.record(T + 0.7, "GET", "/health", 20.0, failed=False)
    b.record(T + 2.1, "POST", "/api/storage/files/upload", 2500.0, failed=True)
    a.record(T + 2.4, "GET", "/health", 12.0, failed=False)
    a.flush(before_s=T + 1)  # only second T is finished
    assert json.loads((tmp_path / "timeline-1.jsonl").read_text().splitlines()[-1])["t"] == T
    a.close()
    b.close()
    (tmp_path / "timeline-2.jsonl").open("a").write('{"kind": "requests", "t": ')  # cut short

    marks = [Mark(T + 2.0, "fault injected")]
    timeline = read_timeline(tmp_path, marks)
    assert [s.offset_s for s in timeline.seconds] == [0, 1, 2]
    first, empty, last = timeline.seconds
    assert (first.users, first.requests, first.failures) == (5, 20, 0)
    assert (first.p50_ms, first.p95_ms, first.max_ms) == (19, 20, 20)  # 10..19 and 20 x10
    assert (empty.requests, empty.p95_ms, empty.users) == (0, None, 5)  # carried over
    assert (last.requests, last.failures, last.error_rate) == (2, 1, 0.5)
    assert last.p95_ms == 2500
    upload = timeline.endpoints["POST /api/storage/files/upload"]
    assert [s.failures for s in upload] == [0, 0, 1]
    assert timeline.error_rate(T, T + 2) == 0
    assert timeline.error_rate(T + 2, T + 3) == 0.5

    json_path, csv_path = timeline.write(tmp_path / "out")
    rows = list(csv.DictReader(csv_path.open()))
    assert rows[2]["marks"] == "fault injected"
    assert json.loads(json_path.read_text())["marks"][0]["offset_s"] == 2.0


def test_no_records_is_an_empty_timeline(tmp_path: Path) -> None:
    timeline = read_timeline(tmp_path)
    assert timeline.seconds == ()
    assert timeline.error_rate(0, 10) == 0


def test_a_window_merges_the_seconds_histograms(per_second: ModuleType, tmp_path: Path) -> None:
    writer = per_second.PerSecondWriter(tmp_path / "timeline-1.jsonl", pid=1)
    for second, latency, count in ((0, 10.0, 95), (1, 3000.0, 5), (2, 40.0, 50)):
        for _ in range(count):
            writer.record(T + second + 0.5, "GET", "/health", latency, failed=latency > 1000)
    writer.close()
    timeline = read_timeline(tmp_path)
    first_two = timeline.summary(T, T + 2)
    assert (first_two.requests, first_two.failures) == (100, 5)
    assert (first_two.p50_ms, first_two.p95_ms) == (10, 10)  # 95 of 100 at 10 ms
    assert timeline.summary(T, T + 3).p95_ms == 40  # the 5 slow ones are the top 3.3%
    assert timeline.summary(T + 5, T + 9).requests == 0
