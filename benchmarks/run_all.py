"""`make bench`: every benchmark in turn, each printing its own figures."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# each benchmark with the arguments that keep `make bench` under five minutes
ORDER = (
    ("bench_stack.py",),
    ("bench_proxy.py", "--seconds", "3"),
    ("bench_twin.py",),
    ("bench_monitoring.py", "--servers", "1", "--starts", "2", "--idle-s", "3"),
    ("bench_gate.py",),
    # parallel vs serial side by side on four of the share-link section's scenarios (the
    # whole drill with one worker alone takes five minutes), then the whole drill
    ("bench_drill.py", "--compare", "test_sev3_share_links and not long_ago"),
)


def main() -> int:
    began = time.monotonic()
    for name, *args in ORDER:
        print(f"\n== {shlex.join((name, *args))} ==", flush=True)
        started = time.monotonic()
        subprocess.run([sys.executable, str(HERE / name), *args], check=False)
        print(f"({name}: {time.monotonic() - started:.0f} s)", flush=True)
    print(f"\nmake bench: {time.monotonic() - began:.0f} s in all (target < 300 s)")
    print(
        "\nMore: benchmarks/bench_load.py (throughput per endpoint, API vs raw database)"
        + (
            ", benchmarks/bench_backends.py (local vs docker start)"
            if (HERE / "bench_backends.py").exists()
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
