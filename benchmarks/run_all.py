"""`make bench`: every benchmark in turn, each printing its own figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = (
    "bench_stack.py",
    "bench_proxy.py",
    "bench_twin.py",
    "bench_monitoring.py",
    "bench_gate.py",
    "bench_drill.py",
)


def main() -> int:
    for name in ORDER:
        print(f"\n== {name} ==", flush=True)
        subprocess.run([sys.executable, str(HERE / name)], check=False)
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
