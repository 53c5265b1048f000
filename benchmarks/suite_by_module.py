"""Where the test suite's time goes, by module: each module's wall time on its worker and
the CPU it cost, with the suite's own wall and CPU. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/suite_by_module.py [--top 25] [-- PYTEST ARGS]

The pytest arguments default to what `make test` runs first (`tests -n 3 --dist
loadfile`). This file is also the pytest plugin that measures (`-p suite_by_module`, with
this folder on the path): around each test, from its setup to its teardown, the worker's
own CPU (every thread) and its reaped children's (the drills' processes, psql, the AWS
CLI, servers it stopped). A server forked by a worker's fork server is reaped by the
fork server, which is reaped at the session's end: its CPU is in the suite's figure, not
in its module's. The suite is bound by its CPU when it averages close to the machine's
cores; a module's wall time then shrinks only with the CPU it (or what runs beside it)
costs, not by waiting less in parallel.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT_ENV = "SUITE_BY_MODULE_DIR"  # the folder the plugin writes its records to
DEFAULT_ARGS = ("tests", "-n", "3", "--dist", "loadfile")

# -- the plugin (in each pytest process: the controller and every worker) -----------------
_started: dict[str, tuple[float, float, float]] = {}
_measuring = [True]  # False in an xdist controller: its workers run (and measure) the tests


def pytest_configure(config: Any) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER") is not None
    distributed = getattr(config.option, "dist", "no") != "no"
    _measuring[0] = worker or not distributed


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _measuring[0]:
        _started[nodeid] = (time.monotonic(), *_cpu())


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    folder = os.environ.get(OUT_ENV)
    began = _started.pop(nodeid, None)
    if folder is None or began is None:
        return
    own, children = _cpu()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    record = {
        "id": nodeid,
        "worker": worker,
        "wall": time.monotonic() - began[0],
        "own": own - began[1],
        "children": children - began[2],
    }
    with (Path(folder) / f"{worker}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


# -- the runner -----------------------------------------------------------------------
def _records(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def report(records: list[dict[str, Any]], wall_s: float, cpu_s: float, top: int) -> None:
    cores = os.cpu_count() or 1
    print(
        f"suite: {wall_s:.1f} s wall, {cpu_s:.1f} s CPU ({cpu_s / wall_s:.2f} of {cores} "
        f"cores on average)"
    )
    busy: collections.Counter[str] = collections.Counter()
    modules: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    worker_of: dict[str, str] = {}
    for r in records:
        busy[r["worker"]] += r["wall"]
        module = r["id"].split("::", 1)[0]
        row = modules[module]
        row[0] += r["wall"]
        row[1] += r["own"]
        row[2] += r["children"]
        worker_of[module] = r["worker"]
    for worker, seconds in sorted(busy.items()):
        print(f"  {worker}: busy {seconds:.1f} s")
    measured = sum(row[1] + row[2] for row in modules.values())
    print(
        f"CPU measured per test: {measured:.1f} s "
        "(the rest: start-up, collection, fork servers' children)"
    )
    print(f"\n{'module':<62} {'wall s':>7} {'CPU s':>7}  worker")
    ranked = sorted(modules.items(), key=lambda item: -item[1][0])
    for module, (wall, own, children) in ranked[:top]:
        print(f"{module[-62:]:<62} {wall:7.1f} {own + children:7.1f}  {worker_of[module]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--top", type=int, default=25, help="modules listed (longest first)")
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest's arguments")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="suite-by-module-") as folder:
        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, OUT_ENV: folder, "PYTHONPATH": path}
        command = [
            sys.executable,
            "-m",
            "pytest",
            *(args.pytest_args or DEFAULT_ARGS),
            "-p",
            "suite_by_module",
            "-q",
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        wall = time.monotonic() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        print(f"\npytest exited {done.returncode}")
        report(_records(Path(folder)), wall, cpu, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
