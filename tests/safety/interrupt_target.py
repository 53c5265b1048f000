"""A drill in miniature, for the interrupt tests: start a stack, inject faults, hold them.

    python tests/safety/interrupt_target.py --faults disk-full,long-running-query
    python tests/safety/interrupt_target.py --environment env.toml --faults idle-in-transaction

It prints `phase: NAME` lines (flushed) as it goes (starting, started, injecting:KIND,
injected:KIND, holding, reverting, stopping, done), so a test can signal it at a chosen
point. It runs under the CLI's own interrupt handling
(`runbook_checks.interrupts.run_guarded`),
so what it leaves behind is what an interrupted `runbook-checks drill` would leave.
"""

from __future__ import annotations

import argparse
import faulthandler
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from files_profile import KIT
from runbook_checks.faults.base import Fault
from runbook_checks.faults.database import IdleInTransaction, LongRunningQuery
from runbook_checks.faults.deploy import ApiSettings
from runbook_checks.faults.disk import DiskFull
from runbook_checks.faults.network import NetworkLatency
from runbook_checks.interrupts import run_guarded
from runbook_checks.stack.external import ExternalStack
from runbook_checks.stack.local import LocalStack

FAULTS: dict[str, Callable[[], Fault]] = {
    "disk-full": lambda: DiskFull(headroom_mb=2),
    "long-running-query": lambda: LongRunningQuery(duration_s=600),
    "idle-in-transaction": lambda: IdleInTransaction(count=2, table="upload_failures"),
    "network-latency": lambda: NetworkLatency("postgres", latency_ms=300),
    "api-settings": lambda: ApiSettings((("DB_POOL_SIZE", "3"),), "interrupt test"),
}


def phase(name: str) -> None:
    print(f"phase: {name}", flush=True)


def drill(faults: list[str], environment: Path | None, hold_s: float) -> int:
    stack = (
        ExternalStack.from_file(environment, kit=KIT)
        if environment is not None
        else LocalStack(kit=KIT)
    )
    phase("starting")
    stack.start()
    try:
        phase("started")
        handles = []
        for kind in faults:
            phase(f"injecting:{kind}")
            handles.append(FAULTS[kind]().inject(stack))
            phase(f"injected:{kind}")
        phase("holding")
        deadline = time.monotonic() + hold_s
        while time.monotonic() < deadline:
            time.sleep(0.05)
        phase("reverting")
        for handle in reversed(handles):
            handle.revert()
    finally:
        phase("stopping")
        stack.stop()
    phase("done")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faults", default="", help=f"comma-separated: {', '.join(FAULTS)}")
    parser.add_argument(
        "--environment",
        type=Path,
        default=None,
        help="an external environment's config file (default: a local stack)",
    )
    parser.add_argument("--hold-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    faults = [f for f in args.faults.split(",") if f]
    # a test that finds it still running long after its signal asks where it is
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return run_guarded(lambda: drill(faults, args.environment, args.hold_s))


if __name__ == "__main__":
    sys.exit(main())
