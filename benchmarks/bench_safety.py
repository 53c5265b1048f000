"""How long the safety net takes: a drill (local stack, four faults) interrupted with
SIGTERM until it has exited clean, and after SIGKILL until `runbook-checks cleanup` has
removed what was left. Prints the figures; asserts nothing (tests do that).

    .venv/bin/python benchmarks/bench_safety.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "tests" / "safety" / "interrupt_target.py"
FAULTS = "disk-full,long-running-query,network-latency,api-settings"


def one(sig: signal.Signals) -> tuple[float, float]:
    """(seconds from the signal to the drill's exit, seconds `cleanup` took)."""
    root = Path(tempfile.mkdtemp(prefix="runbook-checks-bench-"))
    root.chmod(0o755)
    env = {**os.environ, "RUNBOOK_CHECKS_WORK_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.Popen(
            [sys.executable, str(TARGET), "--faults", FAULTS],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "phase: holding":
                break
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=120)
        exited = time.monotonic() - sent
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "runbook_checks.cli", "cleanup"],
            cwd=root,
            env=env,
            capture_output=True,
            timeout=120,
            check=True,
        )
        return exited, time.monotonic() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        results = [one(sig) for _ in range(args.runs)]
        exits = [r[0] for r in results]
        cleanups = [r[1] for r in results]
        print(
            f"{sig.name:8} drill exit after the signal: median {statistics.median(exits):.2f}s"
            f" (max {max(exits):.2f}s); cleanup afterwards: median "
            f"{statistics.median(cleanups):.2f}s over {args.runs} run(s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
