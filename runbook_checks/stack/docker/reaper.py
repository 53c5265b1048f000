"""The reaper: a small process beside each docker stack that removes the stack's
containers and its bridge network, if it has one (and releases its folder) when the
process that owns the stack dies without stopping it (SIGKILL, a crash, an OOM kill).
testcontainers' Ryuk does this job with an image that would have to be pulled; this one
needs nothing but this package.

`python -m runbook_checks.stack.docker.reaper --stack ID --owner PID --owner-start T
--folder DIR` waits for the owner to exit (a pidfd: no polling where Linux has one), then
removes every container and network labelled with the stack's id and releases the folder
(its mounts and processes, as `runbook-checks cleanup` would). The stack stops it when it
stops normally. It runs in a session of its own, so a Ctrl-C aimed at the drill spares it.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from runbook_checks.stack.docker.labels import start_time


def _owner_gone(pid: int, start: str | None) -> bool:
    current = start_time(pid)
    return current is None or (start is not None and current != start)


def wait_for_exit(pid: int, start: str | None, poll_s: float = 0.2) -> None:
    """Until process `pid` (with start time `start`) is gone."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0 and not _owner_gone(pid, start):
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while not poller.poll(1000):
                if _owner_gone(pid, start):
                    break
        finally:
            os.close(fd)
        return
    while not _owner_gone(pid, start):
        time.sleep(poll_s)


def reap(stack_id: str, folder: Path | None) -> list[str]:
    from runbook_checks.stack.docker.engine import connect
    from runbook_checks.stack.docker.labels import remove_containers
    from runbook_checks.stack.leftovers import release

    removed: list[str] = []
    try:
        client = connect(timeout_s=30)
        done = remove_containers(client, stack_id)  # and the stack's bridge network
        removed = [*done.names, *(f"network {n}" for n in done.networks)]
        client.close()
    finally:
        if folder is not None and folder.exists():
            release(folder)
    return removed


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runbook_checks.stack.docker.reaper")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--owner-start", default="")
    parser.add_argument("--folder", default="")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_quietly)  # the stack stopped normally
    wait_for_exit(args.owner, args.owner_start or None)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # from here on, finish the job
    removed = reap(args.stack, Path(args.folder) if args.folder else None)
    print(
        f"reaper: owner {args.owner} gone; removed {len(removed)} container(s)/network(s) of "
        f"{args.stack}: {' '.join(removed)}",
        flush=True,
    )
    return 0


def spawn(
    stack_id: str, folder: Path, log_path: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """Start the reaper for this process's stack."""
    owner = os.getpid()
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runbook_checks.stack.docker.reaper",
                "--stack",
                stack_id,
                "--owner",
                str(owner),
                "--owner-start",
                start_time(owner) or "",
                "--folder",
                str(folder),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
            cwd="/",
        )


if __name__ == "__main__":
    sys.exit(main())
