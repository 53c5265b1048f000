"""Locust as subprocesses: one standalone process, or locust's own master and N workers.

Locust monkey-patches the interpreter with gevent on import, so it never runs in the
suite's process: the runner builds argv lists (pure, unit-tested) and supervises the
processes with `ManagedProcess` (own session, killed with the parent). The admin token
reaches locust through the environment, never the command line (`ps` shows argv).

Every run is bounded: the shape (or `--run-time`) ends the test, and `wait()` gives up
after the run time plus start and stop allowances, stopping what is left.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.errors import RunbookChecksError
from runbook_checks.stack.ports import free_port
from runbook_checks.stack.process import ManagedProcess

# The load shapes are the engine's (loaded by locust beside the service's locustfile).
SHAPES_FILE = Path(__file__).resolve().with_name("locust_shapes.py")
CSV_PREFIX = "locust"
START_ALLOWANCE_S = 30.0  # interpreter start, worker connection, user sign-ups
STOP_ALLOWANCE_S = 20.0  # final stats, CSV and HTML
REMOTE_WAIT_S = 300.0  # for workers on other machines, started by hand
REMOTE_MASTER_PORT = 5557  # locust's default, what a worker assumes
Role = Literal["standalone", "master", "worker"]


class LoadRunError(RunbookChecksError):
    """The load run itself could not be carried out (exit status 2)."""


@dataclass(frozen=True)
class LocustPlan:
    host: str
    users: int
    run_time_s: float
    work_dir: Path  # logs, CSV, HTML and the per-second records go here
    locustfile: Path  # the service's (the profile's `load`, or --locustfile)
    shape: str | None = None  # None: `users` at `spawn_rate`, held for `run_time_s`
    spawn_rate: float | None = None
    workers: int = 0  # 0: one standalone process; N: a master and N workers
    remote_workers: int = 0  # workers on other machines the master waits for
    master_bind: str = "127.0.0.1"  # where the master listens for workers
    master_port: int | None = None  # None: a free port (locust's default 5557 for remote)
    shapes_file: Path = SHAPES_FILE
    html: bool = True
    wait_s: tuple[float, float] | None = None  # think time between actions
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def csv_prefix(self) -> Path:
        return self.work_dir / CSV_PREFIX

    def csv(self, kind: str) -> Path:
        """One of locust's CSV files: stats, stats_history, failures, exceptions."""
        return self.work_dir / f"{CSV_PREFIX}_{kind}.csv"

    @property
    def html_path(self) -> Path:
        return self.work_dir / "locust.html"

    @property
    def timeline_dir(self) -> Path:
        return self.work_dir / "per-second"

    @property
    def deadline_s(self) -> float:
        return self.run_time_s + self.workers_wait_s + 5 * self.workers + STOP_ALLOWANCE_S

    @property
    def distributed(self) -> bool:
        return self.workers + self.remote_workers > 0

    @property
    def workers_wait_s(self) -> float:
        """How long the master waits for its workers (remote ones are started by hand)."""
        return REMOTE_WAIT_S if self.remote_workers else START_ALLOWANCE_S


def locust_argv(plan: LocustPlan, role: Role, master_port: int | None = None) -> list[str]:
    """The command line of one locust process (no secrets in it)."""
    argv = [sys.executable, "-m", "locust"]
    files = [plan.locustfile]
    if plan.shape is not None and role != "worker":
        files.append(plan.shapes_file)
    argv += ["-f", ",".join(str(f) for f in files)]
    if role == "worker":
        assert master_port is not None
        return [
            *argv,
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(master_port),
            "--loglevel",
            "INFO",
        ]
    run_time = max(1, round(plan.run_time_s))
    argv += [
        "--host",
        plan.host,
        "--headless",
        "--users",
        str(plan.users),
        "--run-time",
        f"{run_time}s",
        "--only-summary",
        "--loglevel",
        "INFO",
        "--exit-code-on-error",
        "1",
        "--csv",
        str(plan.csv_prefix),
        "--csv-full-history",
    ]
    if plan.html:
        argv += ["--html", str(plan.html_path)]
    if plan.shape is not None:
        argv += ["--shape", plan.shape]
    else:
        argv += ["--spawn-rate", f"{plan.spawn_rate or plan.users:g}"]
    if role == "master":
        assert master_port is not None
        argv += [
            "--master",
            "--master-bind-host",
            plan.master_bind,
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(plan.workers + plan.remote_workers),
            "--expect-workers-max-wait",
            f"{plan.workers_wait_s:g}",
        ]
    return argv


def locust_env(plan: LocustPlan, admin_token: str, run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        {
            "NO_PROXY": "127.0.0.1,localhost",
            "ADMIN_TOKEN": admin_token,
            "LOAD_RUN_ID": run_id,
            "LOAD_TIMELINE_DIR": str(plan.timeline_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if plan.wait_s is not None:
        env["LOAD_WAIT_S"] = f"{plan.wait_s[0]:g},{plan.wait_s[1]:g}"
    env.update(plan.env)
    return env


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class LocustCpu:
    """CPU locust itself used: seconds per process, and the busiest process's peak share
    of one core (locust warns above 90%: then it measures itself, not the API)."""

    seconds: Mapping[str, float]
    peak_core_share: float

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())


class LocustRun:
    """Start, wait for and stop the locust processes of one plan."""

    def __init__(
        self, plan: LocustPlan, admin_token: str, *, run_id: str, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.env = locust_env(plan, admin_token, run_id)
        self.processes: dict[str, ManagedProcess] = {}
        self.started_at: float | None = None
        self._cpu: dict[str, float] = {}
        self._peak_share = 0.0
        self._watch_stop = threading.Event()
        self._watch: threading.Thread | None = None

    @property
    def main(self) -> ManagedProcess:
        return self.processes["locust-master" if self.plan.distributed else "locust"]

    def start(self) -> None:
        plan = self.plan
        plan.work_dir.mkdir(parents=True, exist_ok=True)
        plan.timeline_dir.mkdir(parents=True, exist_ok=True)
        if plan.distributed:
            port = self.master_port
            self._add("locust-master", locust_argv(plan, "master", port))
            for i in range(1, plan.workers + 1):
                self._add(f"locust-worker-{i}", locust_argv(plan, "worker", port))
        else:
            self._add("locust", locust_argv(plan, "standalone"))
        self.started_at = self.clock.monotonic()
        try:
            for process in self.processes.values():
                process.spawn()
        except BaseException:
            self.stop()
            raise
        self._watch = threading.Thread(target=self._watch_cpu, name="locust-cpu", daemon=True)
        self._watch.start()

    def _add(self, name: str, argv: list[str]) -> None:
        self.processes[name] = ManagedProcess(
            name,
            argv,
            log_path=self.plan.work_dir / f"{name}.log",
            env=self.env,
            cwd=self.plan.locustfile.parent,
            clock=self.clock,
        )

    @functools.cached_property
    def master_port(self) -> int:
        if self.plan.master_port is not None:
            return self.plan.master_port
        return REMOTE_MASTER_PORT if self.plan.remote_workers else free_port()

    def worker_command(self) -> str:
        """What to run on another machine for it to join as a worker (token elided)."""
        host = self.plan.master_bind
        return (f"ADMIN_TOKEN=... locust -f {self.plan.locustfile} --worker "
                f"--master-host {host} --master-port {self.master_port}")  # fmt: skip

    def running(self) -> bool:
        return self.main.is_alive()

    def wait(self) -> int:
        """Until the main process exits; its exit status. Bounded by the plan's deadline:
        past it, everything is stopped and `LoadRunError` raised."""
        assert self.started_at is not None, "start() first"
        remaining = self.plan.deadline_s - (self.clock.monotonic() - self.started_at)
        try:
            wait_until(
                lambda: self.main.returncode is not None,
                what="locust to finish the run",
                timeout_s=max(remaining, 0.0),
                interval_s=0.2,
                clock=self.clock,
            )
        except WaitTimeout:
            self.stop()
            raise LoadRunError(
                f"locust did not finish within {self.plan.deadline_s:.0f}s "
                f"(run time {self.plan.run_time_s:g}s plus start and stop allowances); "
                "it was stopped",
                hint=f"see {self.main.log_path}",
            ) from None
        self._stop_workers()
        code = self.main.returncode
        assert code is not None
        return code

    def stop(self) -> None:
        """Graceful stop (SIGTERM: locust writes its final stats), then SIGKILL. Idempotent."""
        main = self.processes.get("locust-master") or self.processes.get("locust")
        if main is not None:
            main.stop(timeout_s=STOP_ALLOWANCE_S)
        self._stop_workers()

    def _stop_workers(self) -> None:
        for name, process in self.processes.items():
            if name.startswith("locust-worker"):
                process.stop(timeout_s=10.0)
        self._watch_stop.set()
        if self._watch is not None:
            self._watch.join(timeout=2)

    def failure(self, message: str) -> LoadRunError:
        error = LoadRunError(message, hint=f"see {self.main.log_path}")
        error.add_note(f"--- last lines of {self.main.log_path.name} ---\n{self.main.log_tail(25)}")
        return error

    # ------------------------------------------------------------------ locust's CPU

    def _watch_cpu(self) -> None:
        previous: dict[str, tuple[float, float]] = {}
        while not self._watch_stop.wait(0.5):
            now = self.clock.monotonic()
            for name, process in self.processes.items():
                pid = process.pid
                used = cpu_seconds(pid) if pid is not None else None
                if used is None:
                    continue
                self._cpu[name] = used
                if name not in previous:
                    previous[name] = (now, used)
                elif now - previous[name][0] >= 2.0:  # shares over 2 s windows
                    share = (used - previous[name][1]) / (now - previous[name][0])
                    self._peak_share = max(self._peak_share, share)
                    previous[name] = (now, used)

    def cpu(self) -> LocustCpu:
        return LocustCpu(dict(self._cpu), self._peak_share)
