"""`runbook-checks load` end to end: the post-mortem's pool decision made by the command,
locust's master and workers on loopback, and load kept running through a fault.

Every locust run here is bounded to about 20 s (CI has two cores); the CLI runs as a
subprocess, as a user runs it, and starts its own embedded stack.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook_checks.clock import wait_until
from runbook_checks.faults.network import NetworkDown
from runbook_checks.load.background import background_load
from runbook_checks.load.timeline import Timeline
from runbook_checks.stack.base import Stack
from tests.integration.chromium import screenshot

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"  # the Files user mix
# The post-mortem's traffic increase (+25%, +50%, +100% users: 30 -> 60) with 50 ms per
# database round trip (a managed database across a network): pool size decides the
# outcome. Uploads get a looser p95 line in both runs: each upload takes a global quota
# lock for four round trips (records.insert_file_within_quota), which caps uploads near
# 5/s at 50 ms whatever the pool; that limit is real (the upload p95 in
# the evidence shows it), but it is not what these two tests are about.
STEP = (
    "--shape", "step", "--users", "30", "--duration", "20", "--db-latency-ms", "50",
    "--threshold", "POST /api/storage/files/upload:p95_ms=10000",
)  # fmt: skip


def run_load(evidence: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Any, Path]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_checks.cli",
            "load",
            "--evidence-dir",
            str(evidence),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    folders = list(evidence.glob("*-load-*"))
    assert len(folders) == 1, result.stdout + result.stderr
    verdict_path = folders[0] / "verdict.json"
    assert verdict_path.exists(), result.stdout + result.stderr
    return result, json.loads(verdict_path.read_text()), folders[0]


Run = tuple[subprocess.CompletedProcess[str], Any, Path]  # the CLI, verdict.json, the folder


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_load(tmp_path_factory.mktemp("pool-2"), *STEP, "--pool-size", "2")


@pytest.fixture(scope="module")
def ample_pool(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_load(tmp_path_factory.mktemp("pool-50"), *STEP, "--pool-size", "50")


def test_a_small_pool_breaks_the_runbooks_threshold_under_the_traffic_increase(
    small_pool: Run,
) -> None:
    result, verdict, _ = small_pool
    assert result.returncode == 1, result.stdout + result.stderr
    fail_line = next(line for line in result.stdout.splitlines() if line.startswith("FAIL: "))
    assert verdict["breaches"]
    for breach in verdict["breaches"]:
        assert breach["message"] in fail_line  # names the endpoint and the threshold
        assert breach["metric"] in ("p95_ms", "error_rate")
    broken = {b["endpoint"] for b in verdict["breaches"]}
    assert broken - {"POST /api/storage/files/upload"}  # the reads break: it is the pool
    headroom = verdict["headroom"]
    assert headroom["pool_size"] == 2
    assert headroom["saturated"] is not None
    assert headroom["enough"] is False
    assert headroom["recommended"] > 2
    assert "pool saturated at" in result.stdout


def test_the_post_mortem_pool_size_carries_the_same_load(ample_pool: Run) -> None:
    result, verdict, _ = ample_pool
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdict["passed"] is True
    assert verdict["breaches"] == []
    assert verdict["run"]["peak_users"] == 60
    headroom = verdict["headroom"]
    assert headroom["saturated"] is None
    assert headroom["enough"] is True
    assert headroom["recommended"] <= 50
    endpoints = {e["endpoint"] for e in verdict["endpoints"]}
    assert {"POST /api/storage/files/upload", "GET /share/[token]", "GET /health"} <= endpoints


def test_the_runs_page_says_what_verdict_json_says_and_renders_in_chromium(
    small_pool: Run, tmp_path: Path
) -> None:
    _, verdict, folder = small_pool
    page = folder / "report.html"
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert verdict["summary"] in text  # FAIL: the endpoints and thresholds that broke
    for endpoint in verdict["endpoints"]:
        assert f"<code>{endpoint['endpoint']}</code>" in text
    saturated = verdict["headroom"]["saturated"]
    users = f"{saturated['users']} users"
    if saturated["users_from"] not in (None, saturated["users"]):
        users = f"{saturated['users_from']}-{saturated['users']} users (while ramping)"
    assert f"at {users}, " in text  # (verdict.json's at_s is rounded otherwise)
    assert f" s in: {saturated['reason']}" in text
    assert "NOT enough" in text
    assert text.count("<g class='stage'>") == len(verdict["run"]["stages"])
    assert "<polyline class='requests'" in text  # the per-second timeline was drawn
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "report.html" in manifest["files"]
    data = screenshot(page, tmp_path)
    # a blank page of this size compresses to a few kilobytes; text, tables and charts don't
    assert len(data) > 60_000, len(data)


def test_the_needed_pool_does_not_depend_on_the_pool_it_was_measured_with(
    small_pool: Run, ample_pool: Run
) -> None:
    # Sized from what a request holds a connection for, the same load needs about the
    # same pool whether it ran on 2 connections (saturated throughout) or on 50 (never).
    # Sized from response times under saturation it said 34 against 13 (2.6x). The bound
    # leaves room for a busy machine: when the API's own CPU is short (the suite's other
    # workers), 50 lent-out connections wait for it while held, 2 barely do, so the hold
    # time measured on the ample pool grows (seen in a fresh-clone run: 479 ms against
    # 184 ms, needed 25 against 15, 1.67x; on a quiet machine 20 against 15, 1.33x).
    small, ample = small_pool[1]["headroom"], ample_pool[1]["headroom"]
    assert "Little's law" in small["basis"], small["basis"]
    assert "Little's law" in ample["basis"], ample["basis"]
    needed = sorted((small["needed"], ample["needed"]))
    assert needed[1] / needed[0] < 2.0, (small, ample)


def test_one_master_and_two_workers_on_loopback(tmp_path: Path) -> None:
    result, verdict, folder = run_load(
        tmp_path, "--shape", "baseline", "--users", "6", "--duration", "10", "--workers", "2"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdict["run"]["workers"] == 2
    worker_files = sorted((folder / "per-second").glob("timeline-*.jsonl"))
    assert len(worker_files) == 2  # one per worker: both did requests
    assert all('"kind":"requests"' in f.read_text() for f in worker_files)
    total = next(e for e in verdict["endpoints"] if e["endpoint"].startswith("all endpoints"))
    timeline = json.loads((folder / "timeline.json").read_text())
    assert sum(s["requests"] for s in timeline["seconds"]) == total["requests"]
    assert (folder / "locust.html").exists()
    assert (folder / "manifest.json").exists()  # runbook-checks verify-evidence FOLDER


def _failed_since(timeline: Timeline, t: float) -> bool:
    return any(s.failures for s in timeline.seconds if s.t >= int(t))


def _clean_second_after(timeline: Timeline, t: float) -> bool:
    return any(s.requests and not s.failures for s in timeline.seconds if s.t > int(t) + 1)


def test_load_runs_through_a_fault_and_the_timeline_shows_it(
    fresh_stack: Stack, tmp_path: Path
) -> None:
    with background_load(
        fresh_stack, LOCUSTFILE, users=8, duration_s=60, work_dir=tmp_path
    ) as load:
        assert load.ready_after_s is not None
        wait_until(
            lambda: any(s.requests for s in load.snapshot().seconds),
            what="a second of answered requests",
            timeout_s=10,
        )
        handle = NetworkDown("postgres").inject(fresh_stack)
        try:
            load.mark("postgres path down")
            injected = load.marks[-1].t
            wait_until(
                lambda: _failed_since(load.snapshot(), injected),
                what="failed requests after the cut",
                timeout_s=15,
                interval_s=0.2,
            )
        finally:
            handle.revert()
        load.mark("postgres path restored")
        restored = load.marks[-1].t
        wait_until(
            lambda: _clean_second_after(load.snapshot(), restored),
            what="a second without failures after the repair",
            timeout_s=20,
            interval_s=0.2,
        )
    timeline = load.timeline
    assert timeline.error_rate(timeline.start_t, int(injected)) == 0  # steady before
    assert timeline.error_rate(int(injected) + 1, int(restored)) > 0.05  # the fault, seen
    assert [m.label for m in timeline.marks][1:3] == [
        "postgres path down",
        "postgres path restored",
    ]
    assert load.stats  # locust's own totals, per endpoint
    _, csv_path = timeline.write(tmp_path, "load-timeline")
    assert "postgres path down" in csv_path.read_text()


def test_an_unreachable_host_is_could_not_run_not_a_verdict(tmp_path: Path) -> None:
    from runbook_checks.stack.ports import free_port

    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "runbook_checks.cli", "load", "--evidence-dir", str(tmp_path),
         "--host", host, "--admin-token", "not-a-real-token", "--duration", "10"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot reach the API at {host}" in result.stderr
    (folder,) = tmp_path.glob("*-load-*")
    assert "cannot reach" in (folder / "error.txt").read_text()
