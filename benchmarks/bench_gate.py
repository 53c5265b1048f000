"""Wall time of `runbook-checks gate` on the shipped runbook, stack start included.

Runs the gate the way CI does (a fresh stack, every live check, the stack stopped at
the end) `--repeat` times and prints each run's wall time with its parts, then the
median against issue 14's 2.5 s target (issue 3's first target was 10 s). `--offline`
times the static checks alone.

    .venv/bin/python benchmarks/bench_gate.py [--repeat 3] [--offline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runbook_checks.gate.run import GateOptions, run_gate  # noqa: E402

TARGET_S = 2.5  # issue 14: the live gate, stack start included
FIRST_TARGET_S = 10.0  # issue 3, when the gate shipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--offline", action="store_true", help="static checks only")
    parser.add_argument("--runbook", default=str(ROOT / "runbooks/files-incident-response.md"))
    args = parser.parse_args()
    times: list[float] = []
    print(
        f"runbook-checks gate {args.runbook} ({'offline' if args.offline else 'live'}); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    for run in range(1, args.repeat + 1):
        began = time.perf_counter()
        report = run_gate(GateOptions(Path(args.runbook), offline=args.offline))
        wall = time.perf_counter() - began
        times.append(wall)
        parts = ", ".join(f"{c.name} {c.duration_s:.2f}s" for c in report.checks if c.ran)
        start = f"stack start {report.stack_start_s:.2f}s; " if report.stack_start_s else ""
        print(
            f"run {run}: {wall:.2f}s wall ({start}{parts}); exit {report.exit_code}, "
            f"{len(report.results)} findings"
        )
    median = statistics.median(times)
    verdict = "within" if median < TARGET_S else "OVER"
    print(
        f"median {median:.2f}s, min {min(times):.2f}s: {verdict} the {TARGET_S:g}s target "
        f"({'within' if median < FIRST_TARGET_S else 'OVER'} issue 3's {FIRST_TARGET_S:g}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
