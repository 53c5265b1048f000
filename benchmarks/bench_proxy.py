"""The fault proxy's cost with no toxic: pgbench against PostgreSQL directly and through
a `FaultProxy`, side by side in one run, and the ratio. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_proxy.py [--seconds 5] [--clients 20] [--rounds 3]

Select-only pgbench (`-S -M prepared`: one small query and answer per transaction, the
shape of the API's reads) with `--clients` connections; the rounds alternate direct and
proxied runs so that a neighbour's load on a small machine hits both alike. Also printed:
the same through the proxy with a 0 ms latency toxic (the slow path every toxic takes)
and a bulk copy (COPY of ~16 MB out) for streaming throughput.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from files_profile import KIT  # noqa: E402
from runbook_checks.stack.local import LocalStack  # noqa: E402
from runbook_checks.stack.proxy import FaultProxy, Latency  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pgbench(url: str, port: int, clients: int, seconds: float, *extra: str) -> float:
    parts = urlsplit(url)
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    argv = [str(PG_BIN / "pgbench"), "-n", "-c", str(clients), "-j", "2",
            "-T", str(int(seconds)), "-h", "127.0.0.1", "-p", str(port),
            "-U", parts.username or "", *extra, parts.path.lstrip("/")]  # fmt: skip
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise SystemExit(f"pgbench: {out.stdout}\n{out.stderr}")


def copy_out_s(url: str, port: int) -> float:
    parts = urlsplit(url)
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    argv = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port),
            "-U", parts.username or "", "-d", parts.path.lstrip("/"), "-q", "-c",
            "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 16000)) TO STDOUT"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True, timeout=60)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.2f} at start")
    with LocalStack(kit=KIT, monitoring=False) as stack:
        ep = stack.endpoints
        url = ep.admin_database_url or ep.database_url
        parts = urlsplit(url)
        init = [str(PG_BIN / "pgbench"), "-i", "-q", "-s", "1", "-h", "127.0.0.1",
                "-p", str(ep.database_port), "-U", parts.username or "",
                parts.path.lstrip("/")]  # fmt: skip
        subprocess.run(init, env={**os.environ, "PGPASSWORD": parts.password or ""},
                       capture_output=True, check=True, timeout=120)  # fmt: skip
        with FaultProxy("bench-pg", ("127.0.0.1", ep.database_port)) as proxy:
            port = proxy.listen_port
            direct, proxied, slow = [], [], []
            for _ in range(args.rounds):
                direct.append(pgbench(url, ep.database_port, args.clients, args.seconds, "-S"))
                proxied.append(pgbench(url, port, args.clients, args.seconds, "-S"))
            proxy.add_toxic(Latency(name="zero", latency_ms=0))
            slow.append(pgbench(url, port, args.clients, args.seconds, "-S"))
            proxy.clear_toxics()
            copy_direct = min(copy_out_s(url, ep.database_port) for _ in range(3))
            copy_proxy = min(copy_out_s(url, port) for _ in range(3))
    d, p = statistics.median(direct), statistics.median(proxied)
    print(f"pgbench -S, {args.clients} clients, {args.seconds:g} s x {args.rounds} rounds "
          f"(median tps):")  # fmt: skip
    print(f"  direct                  {d:10.0f}   {[round(x) for x in direct]}")
    print(f"  through the proxy       {p:10.0f}   {[round(x) for x in proxied]}")
    print(f"  proxy / direct          {p / d:10.0%}")
    print(f"  with a 0 ms latency toxic (the toxic path): {slow[0]:.0f} tps ({slow[0] / d:.0%})")
    print(f"COPY 16 MB out: direct {copy_direct * 1000:.0f} ms, through the proxy "
          f"{copy_proxy * 1000:.0f} ms ({16 / copy_proxy:.0f} MB/s)")  # fmt: skip


if __name__ == "__main__":
    main()
