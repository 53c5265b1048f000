"""One load run, start to verdict: environment, locust, pool samples, thresholds, headroom.

    environment   the embedded stack (its API with --pool-size, optionally with latency on
                  the API's database path), or an existing one (--host, --admin-token)
    locust        headless subprocess(es), bounded by the shape and the run time, writing
                  its CSV and HTML into the evidence folder
    samples       /metrics and the runbook's pg_stat_activity query, on a thread
    verdict       the runbook's thresholds per endpoint, from locust's stats CSV
    headroom      when the pool saturated, and what pool the measured load needs

Everything lands in `evidence/<UTC timestamp>-load-<shape>-<hex>/`. The outcome's
`exit_code` is 0 (every threshold held) or 1 (one broke; the message names the
endpoint and the threshold); when the run itself cannot be carried out, a
`RunbookChecksError` is raised (the CLI exits 2), evidence written so far kept.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import RunbookChecksError, UsageError
from runbook_checks.load import shapes
from runbook_checks.load.headroom import DEFAULT_MARGIN, Headroom, compute_headroom
from runbook_checks.load.locust_csv import (
    EndpointStats,
    Failure,
    read_failures,
    read_history,
    read_stats,
)
from runbook_checks.load.locust_process import LoadRunError, LocustCpu, LocustPlan, LocustRun
from runbook_checks.load.pool import PoolSample, PoolSampler, activity_query
from runbook_checks.load.thresholds import ThresholdResult, Thresholds, evaluate
from runbook_checks.load.timeline import Timeline, read_timeline
from runbook_checks.runbook.model import Runbook
from runbook_checks.service import ServiceKit
from runbook_checks.tls import tls_context

MAX_WORKERS = 16
# The embedded stack's global storage quota for a load run: uploads of a long run must
# not turn into 507s that are an artefact of the twin's 1 GiB default.
LOAD_QUOTA_BYTES = 64 * 1024**3

Log = Callable[[str], None]


@dataclass(frozen=True)
class LoadSpec:
    locustfile: Path | None = None  # the service's user mix (required: see `check`)
    shape: str = "step"
    users: int = 20  # the baseline user count (the step shape peaks at twice this)
    duration_s: float = 60.0
    pool_size: int = 20  # the database pool of the embedded stack's API
    db_latency_ms: float = 0.0  # added to the embedded API's database path (fault proxy)
    host: str | None = None  # an existing environment instead of the embedded stack
    admin_token: str | None = None
    database_url: str | None = None  # for pg_stat_activity on an existing environment
    workers: int = 0
    remote_workers: int = 0  # workers on other machines (started by hand) the master awaits
    master_bind: str = "127.0.0.1"  # the master's address for workers
    master_port: int | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    margin: float = DEFAULT_MARGIN
    evidence_dir: Path = Path("evidence")
    wait_s: tuple[float, float] | None = None
    sample_interval_s: float = 0.25
    # the service (the profile's kit): the embedded stack runs its twin; its pool metrics
    kit: ServiceKit | None = None

    @property
    def embedded(self) -> bool:
        return self.host is None

    def check(self) -> tuple[shapes.Stage, ...]:
        stages = shapes.plan(self.shape, self.users, self.duration_s)
        if not 0 <= self.remote_workers <= 1000:
            raise UsageError(f"--remote-workers {self.remote_workers}: expected 0..1000")
        if self.remote_workers and self.master_bind in ("127.0.0.1", "localhost"):
            raise UsageError(
                "--remote-workers: workers on other machines cannot reach a master on 127.0.0.1",
                hint="pass --master-bind with an address of this machine they can reach",
            )
        if not 0 <= self.workers <= MAX_WORKERS:
            raise UsageError(
                f"--workers {self.workers}: expected 0..{MAX_WORKERS}",
                hint="for more, run workers on other machines (see the README)",
            )
        if self.embedded:
            if self.pool_size < 1:
                raise UsageError(f"--pool-size {self.pool_size}: expected at least 1")
            if self.db_latency_ms < 0:
                raise UsageError(f"--db-latency-ms {self.db_latency_ms:g}: expected >= 0")
        else:
            if urlsplit(self.host or "").scheme not in ("http", "https"):
                raise UsageError(f"--host {self.host!r}: expected an http(s):// URL")
            if not self.admin_token:
                raise UsageError(
                    "--host needs --admin-token (or ADMIN_TOKEN in the "
                    "environment): the locustfile gets it as ADMIN_TOKEN (the "
                    "service's users sign up with it)"
                )
            if self.db_latency_ms:
                raise UsageError(
                    "--db-latency-ms acts on the embedded stack's fault proxy; "
                    "it cannot be applied to --host"
                )
        if self.locustfile is None or not self.locustfile.is_file():
            raise UsageError(
                f"no locustfile{f' at {self.locustfile}' if self.locustfile else ''}",
                hint="pass --locustfile FILE, or name it in the runbook's profile: "
                '[profile] load = "FILE"',
            )
        return stages


@dataclass(frozen=True)
class LoadOutcome:
    folder: Path
    verdict: ThresholdResult
    headroom: Headroom
    stats: tuple[EndpointStats, ...]
    timeline: Timeline
    exit_code: int  # 0 pass, 1 a threshold broke
    message: str


@dataclass
class _Run:
    """What one run gathered, for the report."""

    spec: LoadSpec
    run_id: str
    folder: Path
    stages: tuple[shapes.Stage, ...]
    started: datetime
    api_url: str = ""
    target: str = ""
    pool_size: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    activity_source: str = ""
    samples: list[PoolSample] = field(default_factory=list)
    locust_exit: int | None = None
    cpu: LocustCpu | None = None
    finished: datetime | None = None
    failures: list[Failure] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)


def new_run_folder(evidence_dir: Path, shape: str, now: datetime | None = None) -> Path:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return evidence_dir / f"{moment:%Y%m%dT%H%M%SZ}-load-{shape}-{secrets.token_hex(3)}"


def run_load(
    spec: LoadSpec, *, runbook: Runbook | None = None, log: Log = print, clock: Clock = SYSTEM_CLOCK
) -> LoadOutcome:
    from runbook_checks.load.report import error_file

    stages = spec.check()
    folder = new_run_folder(spec.evidence_dir, spec.shape)
    folder.mkdir(parents=True)
    run = _Run(spec, folder.name.split("-load-", 1)[1], folder, stages, datetime.now(UTC))
    try:
        return _run(run, runbook, log, clock)
    except RunbookChecksError as exc:
        error_file(folder, exc)
        exc.add_note(f"evidence so far: {folder}")
        raise


def _run(run: _Run, runbook: Runbook | None, log: Log, clock: Clock) -> LoadOutcome:
    from runbook_checks.load.report import write_report

    spec, folder, stages = run.spec, run.folder, run.stages
    query, run.activity_source = activity_query(runbook)
    assert spec.locustfile is not None  # spec.check() refused a run without one
    with _environment(spec, run, log, clock) as (api_url, admin_token, database_url):
        run.api_url = api_url
        _preflight(api_url, admin_token)
        plan = LocustPlan(
            host=api_url,
            users=spec.users,
            run_time_s=spec.duration_s,
            work_dir=folder,
            locustfile=spec.locustfile,
            shape=spec.shape,
            workers=spec.workers,
            remote_workers=spec.remote_workers,
            master_bind=spec.master_bind,
            master_port=spec.master_port,
            wait_s=spec.wait_s,
        )
        locust = LocustRun(plan, admin_token, run_id=run.run_id, clock=clock)
        sampler = PoolSampler(
            api_url,
            database_url,
            query=query,
            metrics=spec.kit.vocabulary.pool if spec.kit is not None else None,
            interval_s=spec.sample_interval_s,
            clock=clock,
        )
        peak = max(s.users for s in stages)
        log(
            f"locust: {spec.shape} shape ({shapes.describe(stages)}), peak {peak} users, "
            f"{spec.duration_s:g}s, {_workers(spec.workers, spec.remote_workers)}"
        )
        if spec.remote_workers:
            log(f"waiting up to {plan.workers_wait_s:g}s for {spec.remote_workers} remote "
                f"worker(s); on each machine run (the same locustfile at that path):\n  "
                f"LOAD_RUN_ID={run.run_id} {locust.worker_command()}")  # fmt: skip
        sampler.start()
        try:
            locust.start()
            run.locust_exit = locust.wait()
        finally:
            locust.stop()
            run.samples = sampler.stop()
            run.cpu = locust.cpu()
            run.finished = datetime.now(UTC)
    if run.locust_exit not in (0, 1):
        raise locust.failure(f"locust exited with status {run.locust_exit}")
    try:
        stats = read_stats(plan.csv("stats"))
        history = read_history(plan.csv("stats_history"))
    except UsageError as exc:
        raise locust.failure(exc.message) from None
    run.failures = read_failures(plan.csv("failures"))
    if not any(s.aggregated and s.requests > 0 for s in stats):
        raise locust.failure("locust recorded no requests at all, so nothing can be judged")
    verdict = evaluate(stats, spec.thresholds)
    headroom = compute_headroom(run.samples, history, margin=spec.margin)
    timeline = read_timeline(plan.timeline_dir)
    message = verdict.summary()
    write_report(run, stats, verdict, headroom, timeline)
    return LoadOutcome(
        folder, verdict, headroom, tuple(stats), timeline, 0 if verdict.passed else 1, message
    )


@contextlib.contextmanager
def _environment(
    spec: LoadSpec, run: _Run, log: Log, clock: Clock
) -> Iterator[tuple[str, str, str | None]]:
    """(API URL, admin token, database URL for pg_stat_activity) of the system under load."""
    if not spec.embedded:
        assert spec.host is not None
        assert spec.admin_token is not None
        run.target = f"existing environment {spec.host}"
        run.secrets += [spec.admin_token, *_password(spec.database_url)]
        yield spec.host.rstrip("/"), spec.admin_token, spec.database_url
        return
    from runbook_checks.stack import start_with_retry
    from runbook_checks.stack.local import LocalStack
    from runbook_checks.stack.proxy import Latency

    started = clock.monotonic()
    if spec.kit is None:
        raise UsageError(
            "load on the embedded stack needs the service's kit",
            hint="name it in the runbook's profile ([profile] kit), or pass --host",
        )
    kit = spec.kit
    twin = kit.twin
    pool = f"{twin.pool_size_setting}={spec.pool_size}"
    settings = {
        twin.pool_size_setting: str(spec.pool_size),
        twin.quota_setting: str(LOAD_QUOTA_BYTES),
    }
    # a load test's own connections churn the ephemeral ports: a lost port starts again
    with start_with_retry(lambda: LocalStack(kit=kit, api_settings=settings, clock=clock)) as stack:
        ep = stack.endpoints
        run.pool_size = spec.pool_size
        run.versions = stack.versions()
        run.secrets += [
            ep.admin_token,
            *_password(ep.database_url),
            *_password(ep.admin_database_url),
        ]
        run.target = f"embedded stack, {pool}"
        log(f"stack up in {clock.monotonic() - started:.1f}s: API {ep.api_url}, {pool}")
        proxy = stack.proxies.get("postgres")
        if spec.db_latency_ms:
            # Half each way: a round trip (query out, rows back) costs the full latency.
            for stream in ("upstream", "downstream"):
                proxy.add_toxic(
                    Latency(
                        latency_ms=spec.db_latency_ms / 2,
                        stream=stream,
                        name=f"load-db-latency-{stream}",
                    )
                )
            run.target += f", +{spec.db_latency_ms:g} ms per round trip on the API's database path"
            log(f"fault proxy: +{spec.db_latency_ms:g} ms per database round trip of the API")
        try:
            yield ep.api_url, ep.admin_token, ep.database_url
        finally:
            proxy.clear_toxics()


def _preflight(api_url: str, admin_token: str) -> None:
    """The API answers and takes the admin token, or the run cannot be carried out (the
    users would only record connection errors or 401s, which is no load test)."""
    import httpx

    try:
        health = httpx.get(f"{api_url}/health", timeout=10, verify=tls_context())
        admin = httpx.get(
            f"{api_url}/admin/storage/stats",
            timeout=10,
            headers={"Authorization": f"Bearer {admin_token}"},
            verify=tls_context(),
        )
    except httpx.HTTPError as exc:
        raise LoadRunError(
            f"cannot reach the API at {api_url}: {type(exc).__name__}: {exc}",
            hint="check --host (and that the environment is up)",
        ) from None
    if admin.status_code in (401, 403):
        raise LoadRunError(
            f"the API at {api_url} refused the admin token ({admin.status_code})",
            hint="pass its ADMIN_TOKEN with --admin-token (or in the environment)",
        )
    if health.status_code not in (200, 503):
        raise LoadRunError(f"GET {api_url}/health answered {health.status_code}: is this the "
                           "service under test?")  # fmt: skip


def _password(url: str | None) -> list[str]:
    if not url:
        return []
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


def _workers(workers: int, remote: int = 0) -> str:
    if not workers and not remote:
        return "one locust process"
    where = f"{workers} local" + (f" + {remote} remote" if remote else "")
    return f"locust master + {where} worker(s)"


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


__all__ = ["LoadOutcome", "LoadRunError", "LoadSpec", "new_run_folder", "run_load"]
