"""Load increase without servers: settings, percentiles, the handle's statistics, and one
virtual user's loop against a fake client on a fake clock (every request "takes" 125 ms)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import cast

import httpx
import pytest

from files_profile import FilesClient, Upload, User
from runbook_checks.clock import FakeClock, WaitTimeout
from runbook_checks.errors import UsageError
from runbook_checks.faults.traffic import (
    NO_ANSWER,
    LoadHandle,
    LoadIncrease,
    LoadStats,
    percentile,
)
from runbook_checks.stack.base import Capability, Stack

USER = User("u-1", "load@drill.test", "pro", "token")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LoadIncrease(users=0), "users must be in 1..500"),
        (lambda: LoadIncrease(users=501), "users must be in 1..500"),
        (lambda: LoadIncrease(duration_s=0), "duration_s must be in"),
        (lambda: LoadIncrease(duration_s=7200), "duration_s must be in"),
        (lambda: LoadIncrease(pattern="delete"), "unknown pattern 'delete'"),  # type: ignore[arg-type]
        (lambda: LoadIncrease(think_ms=-1), "think_ms must be >= 0"),
        (lambda: LoadIncrease(db_pool_size=0), "db_pool_size must be >= 1"),
    ],
)
def test_settings_are_bounded(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(UsageError, match=message):
        build()


def test_describe_and_needs() -> None:
    assert LoadIncrease(30, 60, "list").describe() == "30 extra users (list) for 60 s"
    assert LoadIncrease(db_pool_size=5).describe().endswith(", database pool 5")

    @dataclass
    class DataOnly:
        backend: str = "fake"
        capabilities: frozenset[Capability] = frozenset({Capability.DATA})

    stack = cast(Stack, DataOnly())
    assert LoadIncrease().unsupported_reason(stack) is None
    reason = LoadIncrease(db_pool_size=5).unsupported_reason(stack)
    assert reason is not None
    assert "needs reconfigure" in reason


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(list(reversed(values)), 95) == 95.0


def test_stats_count_by_status_and_say_what_failed() -> None:
    clock = FakeClock()
    handle = LoadHandle(LoadIncrease(), clock=clock)
    handle.load_started_at = clock.monotonic()
    for status in (200, 200, 201, 503):
        handle.record("list", status, 10.0)
    handle.record("upload", NO_ANSWER, 5000.0, "ReadTimeout")
    clock.advance(2.0)
    stats = handle.stats()
    assert stats.requests == 5
    assert stats.by_status == {200: 2, 201: 1, 503: 1, NO_ANSWER: 1}
    assert stats.count(200, 201) == 3
    assert stats.errors == {"ReadTimeout": 1}
    assert stats.by_operation == {"list": 4, "upload": 1}
    assert stats.error_rate == pytest.approx(0.4)
    assert (stats.p50_ms, stats.p95_ms) == (10.0, 5000.0)
    assert stats.elapsed_s == 2.0
    assert stats.summary() == (
        "5 requests in 2.0 s (no answer: 1, 200: 2, 201: 1, 503: 1); p50 10 ms, p95 5000 ms"
    )
    handle.revert()


def test_empty_stats_and_waiting_for_requests() -> None:
    handle = LoadHandle(LoadIncrease(), clock=FakeClock())
    stats = handle.stats()
    assert (stats.requests, stats.error_rate, stats.p50_ms) == (0, 0.0, None)
    assert not handle.finished  # no user started yet
    with pytest.raises(WaitTimeout, match="3 requests of"):
        handle.wait_for_requests(3, timeout_s=1)
    handle.revert()


@dataclass
class FakeClient:
    clock: FakeClock
    calls: list[str] = field(default_factory=list)
    fail_lists: bool = False

    def _took(self, what: str) -> None:
        self.calls.append(what)
        self.clock.advance(0.125)  # exact in binary: no drift

    def upload(self, user: User, name: str, content: bytes) -> Upload:
        self._took("upload")
        return Upload(201, f"f-{len(self.calls)}", name, "", len(content), "")

    def list_files(self, user: User) -> httpx.Response:
        self._took("list")
        if self.fail_lists:
            raise httpx.ReadTimeout("slow")
        return httpx.Response(200)

    def download(self, user: User, file_id: str) -> httpx.Response:
        self._took(f"download {file_id}")
        return httpx.Response(200)


def run_user(
    fault: LoadIncrease, client: FakeClient, handle: LoadHandle, duration_s: float
) -> None:
    deadline = client.clock.monotonic() + duration_s
    fault._user_loop(cast(FilesClient, client), USER, handle, threading.Event(), deadline)


def test_a_mixed_user_cycles_upload_list_list_download_until_the_deadline() -> None:
    clock = FakeClock()
    fault = LoadIncrease(users=1, pattern="mixed")
    client = FakeClient(clock)
    handle = LoadHandle(fault, clock=clock)
    run_user(fault, client, handle, duration_s=1.0)
    assert client.calls == [
        "upload",
        "list",
        "list",
        "download f-1",
        "upload",
        "list",
        "list",
        "download f-5",
    ]
    stats = handle.stats()
    assert stats.by_status == {201: 2, 200: 6}
    assert stats.p50_ms == pytest.approx(125.0)
    handle.revert()


def test_transport_errors_count_as_no_answer_and_the_user_goes_on() -> None:
    clock = FakeClock()
    fault = LoadIncrease(users=1, pattern="list", think_ms=125)
    client = FakeClient(clock, fail_lists=True)
    handle = LoadHandle(fault, clock=clock)
    run_user(fault, client, handle, duration_s=1.0)
    stats = handle.stats()
    assert stats.by_status == {NO_ANSWER: 4}  # 125 ms request + 125 ms think, for 1 s
    assert stats.errors == {"ReadTimeout": 4}
    assert clock.sleeps == [0.125] * 4
    handle.revert()


def test_a_stopped_user_sends_nothing_more() -> None:
    clock = FakeClock()
    fault = LoadIncrease(users=1, pattern="upload")
    client = FakeClient(clock)
    handle = LoadHandle(fault, clock=clock)
    stop = threading.Event()
    stop.set()
    fault._user_loop(cast(FilesClient, client), USER, handle, stop, deadline=60.0)
    assert client.calls == []
    assert isinstance(handle.stats(), LoadStats)
    handle.revert()
