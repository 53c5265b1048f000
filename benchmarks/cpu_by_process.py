"""Where a command's CPU goes, by kind of process: run it, sample its process tree, print
CPU seconds per kind (pytest workers, the API twin, moto, PostgreSQL, Prometheus ...).
Prints figures; asserts nothing.

    .venv/bin/python benchmarks/cpu_by_process.py [--interval 0.2] -- make drill

Every `--interval` seconds it reads /proc: each process whose parent is the command or
one of its known descendants joins the tree, and its CPU (utime + stime) is kept as last
seen. When the command ends, the whole tree's CPU is the command's reaped children's
(`RUSAGE_CHILDREN`: every descendant its parent waited for); what sampling did not see
(processes shorter than the interval: psql, the AWS CLI, pg_ctl ...; the CPU of a
sampled process after its last sample) is printed as "unsampled". Kinds are told by the
command line (`kind_of`).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbook_checks.stack.leftovers import _stat  # noqa: E402  /proc/PID/stat's fields

TICK_S = 1 / os.sysconf("SC_CLK_TCK")

# (kind, what a command line contains); the first match wins
PYTHON_KINDS = (
    ("api twin (uvicorn)", "files_api"),
    ("aws control plane (moto)", "aws_control_plane"),
    ("object store (moto)", "object_store_server"),
    ("locust", "locust"),
    ("balancer", "balancer"),
    ("pytest worker (execnet)", "exec(eval(sys.stdin.readline()))"),
    ("pytest / drill controller", "pytest"),
    ("runbook-checks command", "runbook_checks"),
)


@dataclass
class Seen:
    kind: str
    cpu_s: float


def kind_of(argv: Sequence[str]) -> str:
    if not argv:
        return "unknown"
    name = Path(argv[0]).name
    text = " ".join(argv)
    if name.startswith("python") or name in {"pytest", "runbook-checks", "locust"}:
        return next((kind for kind, mark in PYTHON_KINDS if mark in text), f"python {name}")
    # a backend names itself by what it does ("postgres: files_app files ... idle")
    if (
        name in {"postgres", "postmaster"}
        or "/postgresql/" in argv[0]
        or name.startswith("postgres: ")
    ):
        return "postgresql"
    return name.split(" ")[0]  # redis-server names itself by its address too


def _ppid_and_cpu(pid: int) -> tuple[int, float] | None:
    """(ppid, CPU seconds: utime + stime) of a live process, None if it is gone."""
    fields = _stat(pid)
    if fields is None:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_S


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def sample(tree: set[int], seen: dict[int, Seen]) -> None:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _ppid_and_cpu(int(entry))) is not None:
            stats[int(entry)] = stat
    grew = True
    while grew:  # a child of a child joins in the same pass
        grew = False
        for pid, (ppid, _) in stats.items():
            if pid not in tree and ppid in tree:
                tree.add(pid)
                grew = True
    for pid in tree & stats.keys():
        cpu = stats[pid][1]
        if pid not in seen:
            seen[pid] = Seen(kind_of(_argv(pid)), cpu)
        seen[pid].cpu_s = max(seen[pid].cpu_s, cpu)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    began = time.monotonic()
    child = subprocess.Popen(command)
    tree: set[int] = {child.pid}
    seen: dict[int, Seen] = {}
    try:
        while child.poll() is None:
            sample(tree, seen)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        child.wait()
    wall = time.monotonic() - began
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    by_kind: dict[str, tuple[int, float]] = {}
    for record in seen.values():
        count, cpu = by_kind.get(record.kind, (0, 0.0))
        by_kind[record.kind] = (count + 1, cpu + record.cpu_s)
    sampled = sum(cpu for _, cpu in by_kind.values())
    print(
        f"\n{shlex.join(command)}: exit {child.returncode}, {wall:.1f} s wall, "
        f"{total:.1f} s CPU ({total / wall:.2f} cores on average)"
    )
    print(f"{'kind':34} {'processes':>9} {'CPU s':>8} {'share':>6}")
    rows = sorted(by_kind.items(), key=lambda item: -item[1][1])
    rows.append(("unsampled (short-lived, last moments)", (0, max(total - sampled, 0.0))))
    for kind, (count, cpu) in rows:
        share = cpu / total if total else 0.0
        print(f"{kind[:34]:34} {count or '':>9} {cpu:8.1f} {share:6.1%}")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
