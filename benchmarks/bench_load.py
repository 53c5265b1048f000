"""What the Files API twin sustains on this machine, per endpoint, and what the same
queries cost the database alone. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_load.py [--seconds 10] [--users 16] [--pool-size 20]

For each endpoint: locust (one process, FastHttpUser, no think time: a closed loop of
`--users` users) runs only that endpoint's task against the embedded stack; printed are
requests/s, p50/p95, and the CPU seconds of locust, the API and PostgreSQL during the run
(on a small machine they share the cores: who is busy says who limits).

Then pgbench (a custom script of the same SQL the API runs for that endpoint, with
`-M prepared` as psycopg prepares repeated statements) against the stack's database,
once directly and once through the fault proxy the API uses; the ratio API req/s to
pgbench tps says how much of the cost is the API layer (HTTP, FastAPI, pydantic, the
pool) rather than the database. The pgbench scripts look their keys up in a small
`bench_keys` table first (one primary-key read per transaction that the API does not
do), so the database figure is, if anything, understated.

Also printed: how long `background_load` takes to have every user signed up and
answered (the cost of running locust in a subprocess for drills).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"  # the Files user mix
sys.path.insert(0, str(ROOT))

from files_profile import KIT  # noqa: E402
from runbook_checks.load.background import background_load  # noqa: E402
from runbook_checks.load.locust_csv import read_stats  # noqa: E402
from runbook_checks.load.locust_process import LocustPlan, LocustRun, cpu_seconds  # noqa: E402
from runbook_checks.stack.local import LocalStack  # noqa: E402

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
KEYS = 200  # users (each with a file and a share) the scripts pick from

FILE_COLUMNS = (
    "id, user_id, name, content_type, size_bytes, checksum_sha256, object_key, status, "
    "is_deleted, deleted_at, created_at, updated_at"
)
SHARE_COLUMNS = (
    "id, file_id, token, permission, expires_at, max_downloads, download_count, created_by, "
    "created_at"
)
PICK = (
    "\\set n random(1, {keys})\n"
    "SELECT token_hash, user_id, file_id, share_token FROM bench_keys WHERE n = :n \\gset\n"
)
AUTH = (
    "SELECT id, email, subscription_tier, created_at FROM users "
    "WHERE api_token_hash = :token_hash;\n"
)
SCRIPTS = {
    # GET /health: the database probe (storage and cache are probed too, not in SQL)
    "health": "SELECT 1;\n",
    # GET /api/storage/files: auth, then the listing (a cache miss; hits skip it)
    "list": AUTH
    + f"SELECT {FILE_COLUMNS} FROM storage_files WHERE user_id = :user_id AND NOT is_deleted "
    "ORDER BY created_at DESC, id;\n",
    # GET /api/storage/files/{id}/download: the caller and the row in one query (then the
    # bytes from storage)
    "download": "SELECT u.id, u.email, u.subscription_tier, u.created_at, "
    + ", ".join("f." + c for c in FILE_COLUMNS.split(", "))
    + " FROM users AS u LEFT JOIN storage_files AS f ON f.id = :file_id AND f.user_id = u.id "
    "AND NOT f.is_deleted WHERE u.api_token_hash = :token_hash;\n",
    # GET /share/{token} (a view share): the share joined with its file
    "open_share": "SELECT "
    + ", ".join("s." + c for c in SHARE_COLUMNS.split(", "))
    + ", "
    + ", ".join("f." + c for c in FILE_COLUMNS.split(", "))
    + ", now() FROM file_shares AS s JOIN storage_files AS f ON f.id = s.file_id "
    "WHERE s.token = :share_token;\n",
    # POST /api/storage/files/{id}/shares: auth, the file, the insert
    "share": AUTH
    + f"SELECT {FILE_COLUMNS} FROM storage_files WHERE id = :file_id AND user_id = :user_id "
    "AND NOT is_deleted;\n"
    "INSERT INTO file_shares (file_id, token, permission, created_by) VALUES "
    "(:file_id, md5(random()::text), 'view', :user_id) RETURNING id;\n",
    # POST /api/storage/files/upload: auth, the flag, the quota, then the guarded insert
    "upload": AUTH + "SELECT enabled, value FROM feature_flags WHERE name = 'uploads_disabled';\n"
    "SELECT coalesce(sum(size_bytes), 0)::bigint FROM storage_files;\n"
    "BEGIN;\n"
    "SELECT pg_advisory_xact_lock(7379548647406399861);\n"
    "SELECT coalesce(sum(size_bytes), 0)::bigint FROM storage_files;\n"
    "INSERT INTO storage_files (user_id, name, content_type, size_bytes, checksum_sha256, "
    "object_key, status) VALUES (:user_id, 'bench.bin', 'application/octet-stream', 51200, "
    "md5(random()::text), md5(random()::text) || clock_timestamp(), 'stored') RETURNING id;\n"
    "END;\n",
}
ENDPOINT = {
    "health": "GET /health",
    "list": "GET /api/storage/files",
    "download": "GET /api/storage/files/[id]/download",
    "open_share": "GET /share/[token]",
    "share": "POST /api/storage/files/[id]/shares",
    "upload": "POST /api/storage/files/upload",
}


@dataclass
class Row:
    task: str
    rps: float
    p50: float
    p95: float
    failures: int
    locust_cpu: float
    locust_peak: float
    api_cpu: float
    pg_cpu: float
    seconds: float
    tps_direct: float | None = None
    tps_proxy: float | None = None


def server_cpu(pid: int) -> float:
    """CPU seconds of a server and its live children (postgres: the postmaster and its
    backends, which put themselves in groups of their own)."""
    total = cpu_seconds(pid) or 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += cpu_seconds(int(entry.name)) or 0.0
    return total


def seed(stack: LocalStack) -> None:
    """KEYS users, each with one file and one view share, and the bench_keys table."""
    ep = stack.endpoints
    admin = {"Authorization": f"Bearer {ep.admin_token}"}
    rows = []
    with httpx.Client(base_url=ep.api_url, timeout=30) as http:
        for n in range(1, KEYS + 1):
            user = http.post(
                "/admin/users", headers=admin, json={"email": f"bench-{n}@bench.invalid"}
            ).json()
            auth = {"Authorization": f"Bearer {user['token']}"}
            up = http.post(
                "/api/storage/files/upload",
                headers=auth,
                files={"file": ("seed.txt", os.urandom(2048), "text/plain")},
            ).json()
            share = http.post(
                f"/api/storage/files/{up['id']}/shares", headers=auth, json={"permission": "view"}
            ).json()
            rows.append((n, user["token"], user["id"], up["id"], share["token"]))
    with psycopg.connect(ep.admin_database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_keys (n int PRIMARY KEY, token_hash text, user_id uuid, "
            "file_id uuid, share_token text)"
        )
        conn.execute("GRANT SELECT ON bench_keys TO PUBLIC")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_keys VALUES (%s, encode(sha256(%s::bytea), 'hex'), %s, %s, %s)",
                rows,
            )


def run_locust(stack: LocalStack, task: str, users: int, seconds: float, work: Path) -> Row:
    plan = LocustPlan(
        host=stack.endpoints.api_url,
        users=users,
        run_time_s=seconds,
        work_dir=work / task,
        locustfile=LOCUSTFILE,
        spawn_rate=float(users),
        wait_s=(0.0, 0.0),
        html=False,
        env={"LOAD_ONLY": task},
    )
    run = LocustRun(plan, stack.endpoints.admin_token, run_id=f"bench-{task}")
    api_pid, pg_pid = stack.api.pid or 0, stack.postgres.pid or 0
    api_before, pg_before = cpu_seconds(api_pid) or 0, server_cpu(pg_pid)
    started = time.monotonic()
    run.start()
    code = run.wait()
    took = time.monotonic() - started
    api_cpu = (cpu_seconds(api_pid) or 0) - api_before
    pg_cpu = server_cpu(pg_pid) - pg_before
    if code not in (0, 1):
        raise SystemExit(f"locust failed for {task}: see {plan.work_dir}")
    stats = {s.endpoint: s for s in read_stats(plan.csv("stats"))}
    row = stats[ENDPOINT[task]]
    cpu = run.cpu()
    return Row(task, row.rps, row.median_ms, row.p95_ms, row.failures, cpu.total_s,
               cpu.peak_core_share, api_cpu, pg_cpu, took)  # fmt: skip


def run_pgbench(url: str, port: int, task: str, clients: int, seconds: float, work: Path) -> float:
    parts = urlsplit(url)
    script = work / f"{task}.sql"
    script.write_text(PICK.format(keys=KEYS) + SCRIPTS[task])
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    argv = [PGBENCH, "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T",
            str(int(seconds)), "-f", str(script), "-h", "127.0.0.1", "-p", str(port),
            "-U", parts.username or "", parts.path.lstrip("/")]  # fmt: skip
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise SystemExit(f"pgbench {task}: {out.stdout}\n{out.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--tasks", default="health,list,download,open_share,share,upload")
    args = parser.parse_args()
    if not Path(PGBENCH).exists():
        raise SystemExit(f"{PGBENCH} not found (apt-get install postgresql-15)")
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    print(f"machine: {os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.2f} at start")
    try:
        with LocalStack(api_settings={"DB_POOL_SIZE": str(args.pool_size)}, kit=KIT) as stack:
            ep = stack.endpoints
            proxy_port = stack.proxies.get("postgres").listen_port
            seed(stack)

            started = time.monotonic()
            with background_load(stack, LOCUSTFILE, users=10, duration_s=30) as load:
                ready = load.ready_after_s
            whole = time.monotonic() - started
            print(f"background_load: 10 users signed up and answered after {ready:.2f} s "
                  f"(whole context, start to stop: {whole:.2f} s)")  # fmt: skip

            rows = []
            for task in args.tasks.split(","):
                row = run_locust(stack, task, args.users, args.seconds, work)
                row.tps_direct = run_pgbench(
                    ep.database_url, ep.database_port, task, args.pool_size, args.seconds, work
                )
                row.tps_proxy = run_pgbench(
                    ep.database_url, proxy_port, task, args.pool_size, args.seconds, work
                )
                rows.append(row)
                print(f"  measured {task}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nAPI (one uvicorn process, DB_POOL_SIZE={args.pool_size}) under {args.users} locust "
        f"users without think time, {args.seconds:g} s per endpoint; pgbench with "
        f"{args.pool_size} clients (= the pool), same SQL:\n"
    )
    head = (
        f"{'endpoint':40} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'fail':>5} "
        f"{'locust cpu':>11} {'api cpu':>11} {'pg cpu':>11} {'pgbench tps':>12} "
        f"{'via proxy':>10} {'API/DB':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:

        def share(cpu: float, r: Row = r) -> str:
            return f"{cpu:5.1f}s/{cpu / r.seconds:4.0%}"

        ratio = r.rps / r.tps_direct if r.tps_direct else float("nan")
        print(
            f"{ENDPOINT[r.task]:40} {r.rps:7.1f} {r.p50:7.0f} {r.p95:7.0f} {r.failures:5d} "
            f"{share(r.locust_cpu):>11} {share(r.api_cpu):>11} {share(r.pg_cpu):>11} "
            f"{r.tps_direct or 0:12.0f} {r.tps_proxy or 0:10.0f} {ratio:7.3f}"
        )
    print(
        "\ncpu columns: CPU seconds over the locust run (start to stop, about "
        f"{rows[0].seconds:.0f} s) and the average share of one core, for the locust process "
        f"(its busiest moment: {max(r.locust_peak for r in rows):.0%} of a core), the API "
        "process and the stack's postgres (server and backends). API/DB: API requests/s "
        "divided by pgbench transactions/s of the same queries, direct."
    )


if __name__ == "__main__":
    main()
