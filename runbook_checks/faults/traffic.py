"""Traffic faults: more users than usual, for a bounded time.

`LoadIncrease` starts `users` virtual users, each a real API user on a thread of its own
with its own HTTP connection, hitting the API through `ServiceClient` with one of three
patterns (uploads, listings, or a mix of upload / list / list / download) until
`duration_s` has passed or the fault is reverted. The handle (`LoadHandle`) counts the
answers by status (0 = no HTTP answer: refused, reset, timed out) and keeps every
latency, so a scenario can read p50/p95 while the runbook's diagnostics run.

With `db_pool_size` set, the API is restarted with that pool size first (the kit's
`twin.pool_size_setting`; restored on
revert): the runbook's post-mortem, "pool exhaustion under a +50% traffic increase".

Revert stops the users (each finishes its request in flight, bounded by the request
timeout), removes them with everything they uploaded, then restores the pool size.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock, wait_until
from runbook_checks.errors import UsageError
from runbook_checks.faults.base import Fault, FaultHandle
from runbook_checks.faults.client import LiveHandle, adopt, drill_client, sign_up
from runbook_checks.faults.data import remove_users, unsupported_without
from runbook_checks.faults.deploy import change_api_settings
from runbook_checks.service import ServiceClient, User
from runbook_checks.stack.base import Capability, Stack

__all__ = ["PATTERNS", "LoadHandle", "LoadIncrease", "LoadStats", "percentile"]

Pattern = Literal["upload", "list", "mixed", "download"]
PATTERNS: Mapping[str, tuple[str, ...]] = {
    "upload": ("upload",),
    "list": ("list",),
    "mixed": ("upload", "list", "list", "download"),
    # one upload each, then reads: database- and storage-bound, no write lock shared
    "download": ("upload", *("download",) * 999),
}
MAX_USERS = 500
MAX_DURATION_S = 3600.0
NO_ANSWER = 0  # the status counted when a request got no HTTP answer


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LoadStats:
    """The load so far."""

    requests: int
    by_status: Mapping[int, int]  # HTTP status -> count; 0 = no HTTP answer
    errors: Mapping[str, int]  # transport error type -> count (the 0s above)
    by_operation: Mapping[str, int]
    p50_ms: float | None
    p95_ms: float | None
    elapsed_s: float
    users_running: int

    def count(self, *statuses: int) -> int:
        return sum(self.by_status.get(s, 0) for s in statuses)

    @property
    def error_rate(self) -> float:
        """Share of requests answered 5xx or not at all."""
        if not self.requests:
            return 0.0
        failed = sum(n for s, n in self.by_status.items() if s == NO_ANSWER or s >= 500)
        return failed / self.requests

    def summary(self) -> str:
        statuses = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(self.by_status.items()))
        p50 = "-" if self.p50_ms is None else f"{self.p50_ms:.0f} ms"
        p95 = "-" if self.p95_ms is None else f"{self.p95_ms:.0f} ms"
        return (
            f"{self.requests} requests in {self.elapsed_s:.1f} s ({statuses}); p50 {p50}, p95 {p95}"
        )


class LoadHandle(LiveHandle):
    """A LoadIncrease in progress: thread-safe counters of what the users got."""

    def _init_live_state(self) -> None:
        self._stats_lock = threading.Lock()
        self._status: Counter[int] = Counter()
        self._errors: Counter[str] = Counter()
        self._operations: Counter[str] = Counter()
        self._latencies_ms: list[float] = []
        self._threads: list[threading.Thread] = []
        self.load_started_at: float | None = None

    def record(
        self, operation: str, status: int, latency_ms: float, error: str | None = None
    ) -> None:
        with self._stats_lock:
            self._status[status] += 1
            self._operations[operation] += 1
            self._latencies_ms.append(latency_ms)
            if error is not None:
                self._errors[error] += 1

    def stats(self) -> LoadStats:
        with self._stats_lock:
            latencies = list(self._latencies_ms)
            by_status, errors = dict(self._status), dict(self._errors)
            operations = dict(self._operations)
        started = self.load_started_at
        return LoadStats(
            requests=len(latencies),
            by_status=by_status,
            errors=errors,
            by_operation=operations,
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            elapsed_s=0.0 if started is None else self.clock.monotonic() - started,
            users_running=sum(t.is_alive() for t in self._threads),
        )

    def start_user(self, thread: threading.Thread) -> None:
        self._threads.append(thread)
        thread.start()

    @property
    def finished(self) -> bool:
        """Every virtual user has stopped (duration over, or reverted)."""
        return bool(self._threads) and not any(t.is_alive() for t in self._threads)

    def wait_for_requests(self, count: int, timeout_s: float = 60.0) -> LoadStats:
        """Until at least `count` requests have been answered (or failed)."""
        return wait_until(
            lambda: s if (s := self.stats()).requests >= count else None,
            what=f"{count} requests of {self.fault.describe()}",
            timeout_s=timeout_s,
            clock=self.clock,
            interval_s=0.05,
        )

    def wait_finished(self, timeout_s: float) -> LoadStats:
        wait_until(
            lambda: self.finished,
            what=f"{self.fault.describe()} to finish",
            timeout_s=timeout_s,
            clock=self.clock,
            interval_s=0.05,
        )
        return self.stats()


@dataclass(frozen=True)
class LoadIncrease(Fault):
    """`users` concurrent virtual users hit the API (`pattern`: upload, list or mixed)
    for `duration_s`, optionally against a database pool of `db_pool_size`."""

    kind: ClassVar[str] = "load-increase"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})
    requires_if_set: ClassVar[Mapping[str, frozenset[Capability]]] = {
        "db_pool_size": frozenset({Capability.RECONFIGURE})
    }

    users: int = 20
    duration_s: float = 60.0
    pattern: Pattern = "mixed"
    file_kb: int = 16
    think_ms: float = 0.0  # pause between one user's requests
    db_pool_size: int | None = None  # restart the API with this pool size first
    request_timeout_s: float = 10.0
    keepalive: bool = True  # False: a new connection per request (many distinct clients)

    def __post_init__(self) -> None:
        if not 1 <= self.users <= MAX_USERS:
            raise UsageError(f"{self.kind}: users must be in 1..{MAX_USERS}, got {self.users!r}")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise UsageError(
                f"{self.kind}: duration_s must be in (0, {MAX_DURATION_S:g}], "
                f"got {self.duration_s!r}"
            )
        if self.pattern not in PATTERNS:
            raise UsageError(
                f"{self.kind}: unknown pattern {self.pattern!r}; expected one of "
                f"{', '.join(PATTERNS)}"
            )
        if self.file_kb < 0 or self.think_ms < 0 or not self.request_timeout_s > 0:
            raise UsageError(
                f"{self.kind}: file_kb and think_ms must be >= 0, request_timeout_s > 0"
            )
        if self.db_pool_size is not None and self.db_pool_size < 1:
            raise UsageError(
                f"{self.kind}: db_pool_size must be >= 1 or None, got {self.db_pool_size!r}"
            )

    def unsupported_reason(self, stack: Stack) -> str | None:
        return unsupported_without(self, stack)

    def drives_load(self) -> bool:
        return True

    def describe(self) -> str:
        pool = f", database pool {self.db_pool_size}" if self.db_pool_size is not None else ""
        return f"{self.users} extra users ({self.pattern}) for {self.duration_s:g} s{pool}"

    def inject(self, stack: Stack, *, clock: Clock = SYSTEM_CLOCK) -> LoadHandle:
        return adopt(super().inject(stack, clock=clock), LoadHandle)

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        handle = adopt(handle, LoadHandle)
        if self.db_pool_size is not None:
            change_api_settings(
                stack,
                handle,
                {stack.kit.twin.pool_size_setting: str(self.db_pool_size)},
                why="a small pool for the load drill",
            )
        users: list[User] = []
        handle.did(
            "virtual users get API accounts",
            lambda: handle.notes.append(remove_users(stack, [u.id for u in users])),
            "remove the virtual users and their files",
        )
        with drill_client(stack) as admin:
            for index in range(self.users):
                label = f"load-{index:03d}"
                users.append(
                    sign_up(admin, label, "pro", injecting=self.describe(), clock=handle.clock)
                )
        stop = threading.Event()
        clients: list[ServiceClient] = []

        def stop_users() -> None:
            stop.set()
            with contextlib.suppress(Exception):
                handle.wait_finished(self.request_timeout_s + 10)
            for client in clients:
                client.close()
            handle.notes.append(f"load stopped: {handle.stats().summary()}")

        handle.did(f"{self.users} virtual users created", stop_users, "stop the virtual users")
        deadline = handle.clock.monotonic() + self.duration_s
        handle.load_started_at = handle.clock.monotonic()
        for user in users:
            client = drill_client(stack, timeout_s=self.request_timeout_s, keepalive=self.keepalive)
            clients.append(client)
            thread = threading.Thread(
                target=self._user_loop,
                args=(client, user, handle, stop, deadline),
                name=f"{self.kind}-{user.email}",
                daemon=True,
            )
            handle.start_user(thread)
        handle.did(
            f"{self.users} virtual users started ({self.pattern}, until "
            f"{self.duration_s:g} s have passed or revert)"
        )

    def _user_loop(
        self,
        client: ServiceClient,
        user: User,
        handle: LoadHandle,
        stop: threading.Event,
        deadline: float,
    ) -> None:
        clock = handle.clock
        content = b"L" * (self.file_kb * 1024)
        steps = PATTERNS[self.pattern]
        last_file: str | None = None
        serial = 0
        while not stop.is_set() and clock.monotonic() < deadline:
            operation = steps[serial % len(steps)]
            serial += 1
            if operation == "download" and last_file is None:
                operation = "list"
            started = clock.monotonic()
            try:
                status = self._do(operation, client, user, content, serial, last_file)
            except httpx.HTTPError as exc:
                handle.record(
                    operation, NO_ANSWER, (clock.monotonic() - started) * 1000, type(exc).__name__
                )
            else:
                handle.record(operation, status[0], (clock.monotonic() - started) * 1000)
                last_file = status[1] or last_file
            if self.think_ms:
                clock.sleep(self.think_ms / 1000)

    @staticmethod
    def _do(
        operation: str,
        client: ServiceClient,
        user: User,
        content: bytes,
        serial: int,
        last_file: str | None,
    ) -> tuple[int, str | None]:
        """One request; returns its status and the id of a file it created."""
        actions: dict[str, Callable[[], tuple[int, str | None]]] = {
            "upload": lambda: _upload(client, user, content, serial),
            "list": lambda: (client.list_files(user).status_code, None),
            "download": lambda: (client.download(user, str(last_file)).status_code, None),
        }
        return actions[operation]()


def _upload(
    client: ServiceClient, user: User, content: bytes, serial: int
) -> tuple[int, str | None]:
    upload = client.upload(user, f"load-{serial:06d}.bin", content)
    return upload.status_code, upload.file_id
