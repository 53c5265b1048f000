"""The Files twin's throughput beside a trivial FastAPI endpoint, measured side by side in
one run. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_twin.py [--seconds 4] [--users 16] [--rounds 1]

A LocalStack (no monitoring) with one user owning `--files` small files; a trivial
FastAPI app (benchmarks/twin/trivial_app.py: one endpoint, a small JSON) on uvicorn on
127.0.0.1, started by this benchmark. Then real locust (one headless process,
FastHttpUser, `--users` users without think time, `--seconds` each) drives one GET at a
time, the same locustfile for every target (benchmarks/twin/locustfile.py):

- the trivial endpoint (the ceiling),
- the API instance directly: GET /health, GET /api/storage/files (cached: X-Cache HIT),
  GET /api/storage/files/{id}/download (a 2 KiB file),
- the listing once more through the stack's balancer (its front door).

Printed per target: requests/s, p50/p95 (ms), failures, the CPU seconds during the run
of the answering process (and per request: steadier than requests/s where the machine's
speed varies), the object store, PostgreSQL, this process (the stack's fault
proxies and balancer) and locust (two cores are shared: who is busy says who limits), and
each twin figure as a share of the trivial endpoint's requests/s.
`--rounds N` repeats the sequence and prints medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "twin"
sys.path.insert(0, str(ROOT))

from bench_load import server_cpu as tree_cpu  # noqa: E402

from files_profile import KIT  # noqa: E402
from runbook_checks.clock import wait_until  # noqa: E402
from runbook_checks.load.locust_csv import read_stats  # noqa: E402
from runbook_checks.load.locust_process import LocustPlan, LocustRun, cpu_seconds  # noqa: E402
from runbook_checks.stack.local import LocalStack  # noqa: E402
from runbook_checks.stack.ports import free_port  # noqa: E402
from runbook_checks.stack.process import ManagedProcess  # noqa: E402

TRIVIAL = "trivial: GET /ping"


@dataclass(frozen=True)
class Target:
    label: str
    base_url: str
    path: str
    auth: str = ""
    name: str = ""  # locust's request name (the path where empty)


@dataclass(frozen=True)
class Figure:
    rps: float
    requests: int
    p50_ms: float
    p95_ms: float
    failures: int
    server_cpu_s: float
    store_cpu_s: float
    locust_cpu_s: float
    proxy_cpu_s: float  # this process: the stack's fault proxies and balancer run in it
    pg_cpu_s: float

    @property
    def server_us(self) -> float:
        """The answering process's CPU per request answered, in microseconds."""
        return self.server_cpu_s / max(self.requests, 1) * 1e6


def drive(
    target: Target,
    users: int,
    seconds: float,
    work: Path,
    server_pid: int,
    store_pid: int,
    pg_pid: int,
) -> Figure:
    """One bounded headless locust run against one target."""
    name = target.name or target.path
    plan = LocustPlan(
        host=target.base_url,
        users=users,
        run_time_s=seconds,
        work_dir=work,
        locustfile=HERE / "locustfile.py",
        spawn_rate=float(users),
        html=False,
        env={"BENCH_PATH": target.path, "BENCH_AUTH": target.auth, "BENCH_NAME": name},
    )
    run = LocustRun(plan, "unused", run_id="bench-twin")
    server_before, store_before = cpu_seconds(server_pid) or 0.0, cpu_seconds(store_pid) or 0.0
    own_before, pg_before = time.process_time(), tree_cpu(pg_pid)
    run.start()
    code = run.wait()
    if code not in (0, 1):
        raise SystemExit(f"locust failed against {target.label}: see {plan.work_dir}")
    server_cpu = (cpu_seconds(server_pid) or 0.0) - server_before
    store_cpu = (cpu_seconds(store_pid) or 0.0) - store_before
    own_cpu, pg_cpu = time.process_time() - own_before, tree_cpu(pg_pid) - pg_before
    stats = {s.endpoint: s for s in read_stats(plan.csv("stats"))}
    row = stats[f"GET {name}"]
    return Figure(row.rps, row.requests, row.median_ms, row.p95_ms, row.failures, server_cpu,
                  store_cpu, run.cpu().total_s, own_cpu, pg_cpu)  # fmt: skip


def start_trivial(work: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        "trivial",
        [sys.executable, str(HERE / "trivial_app.py"), str(port)],
        log_path=work / "trivial.log",
    )
    process.spawn()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(url + "/ping", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, what="the trivial app to answer", timeout_s=20, interval_s=0.05)
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--files", type=int, default=20, help="files the user owns")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-twin-"))
    print(f"machine: {os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.2f} at start")
    figures: dict[str, list[Figure]] = {}
    try:
        with LocalStack(kit=KIT, monitoring=False) as stack:
            ep = stack.endpoints
            direct = ep.api_instance_url or stack.api.url
            with KIT.client(direct, ep.admin_token) as client:
                user = client.create_user("bench-twin@bench.invalid")
                uploads = [
                    client.upload(user, f"f{n}.bin", os.urandom(2048)) for n in range(args.files)
                ]
                file_id = uploads[0].file_id
                if not all(u.acknowledged for u in uploads):
                    raise SystemExit(f"seeding failed: {uploads}")
                client.list_files(user)  # a MISS that fills the cache
                hit = client.list_files(user)
            print(f"seeded {args.files} files; listing X-Cache {hit.headers.get('X-Cache')}")
            auth = f"Bearer {user.token}"
            trivial, trivial_url = start_trivial(work)
            targets = [
                Target(TRIVIAL, trivial_url, "/ping"),
                Target("twin: GET /health", direct, "/health"),
                Target("twin: GET /api/storage/files (cached)", direct, "/api/storage/files", auth),
                Target(
                    "twin: download (2 KiB)",
                    direct,
                    f"/api/storage/files/{file_id}/download",
                    auth,
                    "/api/storage/files/[id]/download",
                ),
                Target(
                    "twin via the balancer: GET /api/storage/files",
                    ep.api_url,
                    "/api/storage/files",
                    auth,
                ),
            ]
            api_pid = stack.api.pid or 0
            store_pid = stack.components["object_store"].pid or 0
            pg_pid = stack.postgres.pid or 0
            try:
                for n in range(args.rounds):
                    for i, target in enumerate(targets):
                        server = (trivial.pid or 0) if target.label == TRIVIAL else api_pid
                        figure = drive(
                            target,
                            args.users,
                            args.seconds,
                            work / f"{n}-{i}",
                            server,
                            store_pid,
                            pg_pid,
                        )
                        figures.setdefault(target.label, []).append(figure)
                        print(f"  measured {target.label}: {figure.rps:.0f} req/s", flush=True)
            finally:
                trivial.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(figures, args.users, args.seconds, args.rounds)


def report(figures: dict[str, list[Figure]], users: int, seconds: float, rounds: int) -> None:
    def median(label: str, field: str) -> float:
        return float(statistics.median(getattr(f, field) for f in figures[label]))

    ceiling = median(TRIVIAL, "rps")
    print(
        f"\nlocust, {users} FastHttpUsers without think time, {seconds:g} s per target, "
        f"{rounds} round(s) (medians):\n"
    )
    head = (
        f"{'target':48} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'fail':>5} "
        f"{'server':>7} {'us/req':>6} {'store':>6} {'pg':>6} {'proxies':>7} {'locust':>7} "
        f"{'/ trivial':>9}"
    )
    print(head)
    print("-" * len(head))
    for label in figures:
        rps = median(label, "rps")
        print(
            f"{label:48} {rps:7.0f} {median(label, 'p50_ms'):7.0f} "
            f"{median(label, 'p95_ms'):7.0f} {int(median(label, 'failures')):5d} "
            f"{median(label, 'server_cpu_s'):6.1f}s {median(label, 'server_us'):6.0f} "
            f"{median(label, 'store_cpu_s'):5.1f}s "
            f"{median(label, 'pg_cpu_s'):5.1f}s {median(label, 'proxy_cpu_s'):6.1f}s "
            f"{median(label, 'locust_cpu_s'):6.1f}s {rps / ceiling:9.0%}"
        )
    print(
        "\nCPU seconds over each run (locust's start and stop included) of: server, the "
        "process answering (the trivial app, or the API instance), and per request answered "
        "(us/req: steadier than req/s where the machine's speed varies); store, the object store "
        "(moto); pg, PostgreSQL and its backends; proxies, this process (the stack's fault "
        "proxies and balancer run in it); locust."
    )


if __name__ == "__main__":
    main()
