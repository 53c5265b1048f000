"""Stack figures (printed, never asserted): start (all components ready, template cluster
cached; a process's first start, which also starts the fork servers, apart), stop, and
the per-test reset, on the embedded (local) backend; and, side by side, each server
started alone (spawned and waited for, nothing else running, its fork server up): the
stack's start against its slowest part says what the parallel start costs on top.

    .venv/bin/python benchmarks/bench_stack.py [--starts 3] [--resets 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from files_profile import KIT
from runbook_checks.stack.forkserver import wait_warm
from runbook_checks.stack.leftovers import StateFile, release, work_root
from runbook_checks.stack.local import LocalStack
from runbook_checks.stack.postgres import ensure_template, find_postgres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--resets", type=int, default=20)
    args = parser.parse_args()
    begin = time.monotonic()
    ensure_template(find_postgres(), KIT.twin)
    print(f"template cluster ready (built or cached): {time.monotonic() - begin:.2f} s")
    # a process's first stack starts cold; the second too, and starts the fork servers
    # its API and moto servers are forked from from then on (stack/forkserver.py)
    first_start = 0.0
    for _ in range(2):
        cold = LocalStack(kit=KIT)
        begin = time.monotonic()
        cold.start()
        first_start = first_start or time.monotonic() - begin
        cold.stop()
    wait_warm()
    alone = parts_alone()  # the fork servers are up: each part as a stack starts it
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
    print(f"a process's first stack start (cold: nothing forked yet): {first_start:.2f} s")
    slowest = max(alone, key=lambda name: alone[name])
    print(
        "each server started alone: "
        + ", ".join(f"{name} {took:.2f} s" for name, took in alone.items())
    )
    print(
        f"stack start / its slowest part alone ({slowest}): "
        f"{statistics.median(starts) / alone[slowest]:.2f}x"
    )
    print(f"stack stop: median {statistics.median(stops):.2f} s (target < 0.2 s)")
    resets.sort()
    print(
        f"reset_data: median {statistics.median(resets) * 1000:.0f} ms, "
        f"p90 {resets[int(len(resets) * 0.9) - 1] * 1000:.0f} ms over {len(resets)} "
        "(target < 50 ms)"
    )


def parts_alone() -> dict[str, float]:
    """Each server of a stack spawned and waited for with nothing else running (the API
    without its dependencies: it answers /health, failing, once it serves)."""
    stack = LocalStack(kit=KIT, monitoring=False)
    stack.state = StateFile(stack._make_folder(work_root()))
    stack.state.write()
    folder = stack.folder
    assert folder is not None
    took: dict[str, float] = {}
    try:
        pg, cache, store, aws = stack._make_servers(folder)
        closed = "127.0.0.1:9"
        api = stack._make_api(
            folder,
            {
                "DATABASE_URL": f"postgresql://nobody:x@{closed}/none",
                "S3_ENDPOINT_URL": f"http://{closed}",
                "S3_BUCKET": "none",
                "REDIS_URL": f"redis://{closed}/0",
                "ADMIN_TOKEN": "x" * 24,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            },
        )
        for part in (pg, cache, store, aws, api):
            begin = time.monotonic()
            part.spawn()
            part.wait_ready(part.ready_timeout_s)
            took[part.name] = time.monotonic() - begin
            part.stop()
    finally:
        release(folder)
    return took


if __name__ == "__main__":
    main()
