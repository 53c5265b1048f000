"""Stack figures (printed, never asserted): cold start (all components ready, template
cluster cached), stop, and the per-test reset, on the embedded (local) backend.

    .venv/bin/python benchmarks/bench_stack.py [--starts 3] [--resets 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from files_profile import KIT
from runbook_checks.stack.local import LocalStack
from runbook_checks.stack.postgres import ensure_template, find_postgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--resets", type=int, default=20)
    args = parser.parse_args()
    begin = time.monotonic()
    ensure_template(find_postgres())
    print(f"template cluster ready (built or cached): {time.monotonic() - begin:.2f} s")
    starts, stops, resets = [], [], []
    for _ in range(args.starts):
        stack = LocalStack(kit=KIT)
        begin = time.monotonic()
        stack.start()
        starts.append(time.monotonic() - begin)
        try:
            for _ in range(args.resets):
                begin = time.monotonic()
                stack.reset_data()
                resets.append(time.monotonic() - begin)
        finally:
            begin = time.monotonic()
            stack.stop()
            stops.append(time.monotonic() - begin)
    print(
        f"stack start (all ready, /health 200): median {statistics.median(starts):.2f} s "
        f"(min {min(starts):.2f}, max {max(starts):.2f}; target < 1 s)"
    )
    print(f"stack stop: median {statistics.median(stops):.2f} s (target < 0.2 s)")
    resets.sort()
    print(
        f"reset_data: median {statistics.median(resets) * 1000:.0f} ms, "
        f"p90 {resets[int(len(resets) * 0.9) - 1] * 1000:.0f} ms over {len(resets)} "
        "(target < 50 ms)"
    )


if __name__ == "__main__":
    main()
