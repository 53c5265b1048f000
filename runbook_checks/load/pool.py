"""Samples the database pool while load runs: the API's /metrics and the runbook's own
pg_stat_activity query, on a thread, a few times a second.

The two views differ on purpose: /metrics says how many of the API's pooled connections
are lent out, how many requests wait for one and how many gave up (the service kit's
`PoolMetrics` name those series); pg_stat_activity (the query an on-call
engineer runs, SEV-1 Database Failure step 2) says what the server sees. A connection
held by a request that waits on the network or on the application is `idle` to the
server while it is `in use` to the pool; the report shows both.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import httpx
import psycopg

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.runbook.model import Runbook
from runbook_checks.tls import tls_context
from runbook_checks.vocabulary import PoolMetrics

RUNBOOK_ACTIVITY_QUERY = "SELECT count(*), state FROM pg_stat_activity GROUP BY state;"
NO_STATE = "(no state)"  # background processes: state is NULL
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


@dataclass(frozen=True)
class PoolSample:
    t: float  # epoch seconds
    size: int | None = None
    in_use: int | None = None
    waiting: int | None = None
    connections: int | None = None
    timeouts_total: float | None = None
    activity: Mapping[str, int] = field(default_factory=dict)  # pg_stat_activity state -> n
    errors: tuple[str, ...] = ()

    @property
    def demand(self) -> int | None:
        """Requests that want a connection right now: lent out plus waiting."""
        if self.in_use is None:
            return None
        return self.in_use + (self.waiting or 0)

    def to_json(self) -> dict[str, object]:
        return {
            "t": round(self.t, 3),
            "size": self.size,
            "in_use": self.in_use,
            "waiting": self.waiting,
            "connections": self.connections,
            "timeouts_total": self.timeouts_total,
            "activity": dict(self.activity),
            "errors": list(self.errors),
        }


def parse_metrics(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text exposition: name -> value."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match[2]:
            continue
        try:
            values[match[1]] = float(match[3])
        except ValueError:
            continue
    return values


def activity_query(runbook: Runbook | None) -> tuple[str, str]:
    """(query, where it comes from): the runbook's own pg_stat_activity-by-state query."""
    if runbook is not None:
        for section in runbook.sections:
            for step in section.steps:
                text = " ".join(step.text.split())
                if "pg_stat_activity" in text and "group by state" in text.lower():
                    return text, f"runbook line {step.line} ('{section.title}')"
    return RUNBOOK_ACTIVITY_QUERY, "built in (the runbook's query was not found)"


def _int(values: Mapping[str, float], name: str) -> int | None:
    value = values.get(name)
    return None if value is None else int(value)


class PoolSampler:
    """Samples every `interval_s` on a daemon thread until `stop()`; bounded in count."""

    def __init__(
        self,
        api_url: str | None,
        database_url: str | None,
        *,
        query: str = RUNBOOK_ACTIVITY_QUERY,
        metrics: PoolMetrics | None = None,
        interval_s: float = 0.25,
        timeout_s: float = 2.0,
        max_samples: int = 50_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.metrics_url = f"{api_url.rstrip('/')}/metrics" if api_url else None
        self.database_url = database_url
        self.query = query
        # the pool's metric names (the service kit's vocabulary); None: /metrics unread
        self.metrics = metrics or PoolMetrics()
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_samples = max_samples
        self.clock = clock
        self.samples: list[PoolSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: psycopg.Connection[tuple[object, ...]] | None = None
        self._db_retry_at = 0.0

    def __enter__(self) -> PoolSampler:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        def loop() -> None:
            with httpx.Client(timeout=self.timeout_s, verify=tls_context()) as http:
                try:
                    while not self._stop.is_set() and len(self.samples) < self.max_samples:
                        self.samples.append(self.sample(http))
                        self._stop.wait(self.interval_s)
                finally:
                    self._close_db()

        self._thread = threading.Thread(target=loop, name="pool-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[PoolSample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s * 2 + 2)
        return list(self.samples)

    # ------------------------------------------------------------------ one sample

    def sample(self, http: httpx.Client) -> PoolSample:
        at = self.clock.wall()
        errors: list[str] = []
        values: dict[str, float] = {}
        names = self.metrics
        if self.metrics_url is not None and names != PoolMetrics():
            try:
                response = http.get(self.metrics_url)
                response.raise_for_status()
                values = parse_metrics(response.text)
            except httpx.HTTPError as exc:
                errors.append(f"/metrics: {type(exc).__name__}: {exc}")
        activity: dict[str, int] = {}
        if self.database_url is not None:
            try:
                activity = self._activity()
            except psycopg.Error as exc:
                errors.append(f"pg_stat_activity: {type(exc).__name__}: {exc}".strip())
                self._close_db()
        return PoolSample(
            t=at,
            size=_int(values, names.size),
            in_use=_int(values, names.in_use),
            waiting=_int(values, names.waiting),
            connections=_int(values, names.connections),
            timeouts_total=values.get(names.timeouts_total),
            activity=activity,
            errors=tuple(errors),
        )

    def _activity(self) -> dict[str, int]:
        if self._db is None:
            now = self.clock.monotonic()
            if now < self._db_retry_at:
                raise psycopg.OperationalError("not connected (next attempt in under 1 s)")
            self._db_retry_at = now + 1.0
            statement_ms = int(self.timeout_s * 1000)
            self._db = psycopg.connect(
                self.database_url or "",
                autocommit=True,
                connect_timeout=max(1, round(self.timeout_s)),
                application_name="runbook-checks-load-sampler",
                options=f"-c statement_timeout={statement_ms}",
            )
        rows = self._db.execute(self.query.encode()).fetchall()
        return {
            str(state) if state is not None else NO_STATE: int(str(count)) for count, state in rows
        }

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None
