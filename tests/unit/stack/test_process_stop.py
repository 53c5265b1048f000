"""`stop_together`: one signal to every process at once; one that keeps data on disk gets
its teardown signal and its whole graceful stop, the others are killed at once."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from runbook_checks.clock import wait_until
from runbook_checks.stack.process import ManagedProcess, exit_description, stop_together

# ignores SIGTERM: only SIGKILL ends it
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
# takes a second to stop cleanly, then leaves a mark
SLOW_CLEAN = (
    "import signal, sys, time, pathlib\n"
    "def stop(*_):\n"
    "    time.sleep(1.0); pathlib.Path(sys.argv[1]).write_text('clean'); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "print('up', flush=True)\n"
    "time.sleep(60)\n"
)


def spawn(tmp_path: Path, name: str, code: str, *args: str, keeps_data: bool) -> ManagedProcess:
    process = ManagedProcess(
        name,
        [sys.executable, "-c", code, *args],
        log_path=tmp_path / f"{name}.log",
        keeps_data=keeps_data,
        stop_signal=signal.SIGTERM,
    )
    process.spawn()
    return process


def test_servers_without_data_are_killed_and_ones_with_data_get_their_whole_stop(
    tmp_path: Path,
) -> None:
    mark = tmp_path / "mark"
    stubborn = [spawn(tmp_path, f"s{i}", STUBBORN, keeps_data=False) for i in range(3)]
    careful = spawn(tmp_path, "db", SLOW_CLEAN, str(mark), keeps_data=True)
    deadline = time.monotonic() + 10
    while "up" not in (tmp_path / "db.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop_together([*stubborn, careful])
    assert not any(p.is_alive() for p in [*stubborn, careful])
    assert [p.returncode for p in stubborn] == [-signal.SIGKILL] * 3  # killed, no grace
    assert careful.returncode == 0
    assert mark.read_text() == "clean"  # the data-keeping one finished its own stop


# says which signal stopped it
TELLS = (
    "import signal, sys, time, pathlib\n"
    "def stop(signum, _):\n"
    "    pathlib.Path(sys.argv[1]).write_text(signal.Signals(signum).name); sys.exit(0)\n"
    "signal.signal(signal.SIGINT, stop)\n"
    "signal.signal(signal.SIGQUIT, stop)\n"
    "print('up', flush=True)\n"
    "time.sleep(60)\n"
)


def _telling(tmp_path: Path, name: str) -> tuple[ManagedProcess, Path]:
    mark = tmp_path / f"{name}.mark"
    process = ManagedProcess(
        name,
        [sys.executable, "-c", TELLS, str(mark)],
        log_path=tmp_path / f"{name}.log",
        keeps_data=True,
        stop_signal=signal.SIGINT,
        teardown_signal=signal.SIGQUIT,
    )
    process.spawn()
    deadline = time.monotonic() + 10
    while "up" not in (tmp_path / f"{name}.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    return process, mark


def test_a_stack_being_removed_sends_the_teardown_signal_and_a_stop_the_stop_signal(
    tmp_path: Path,
) -> None:
    """PostgreSQL: a stop keeps its data (fast shutdown, SIGINT); its stack going takes
    the data along, so no checkpoint is written (immediate shutdown, SIGQUIT)."""
    removed, removed_mark = _telling(tmp_path, "removed")
    stop_together([removed])
    assert removed_mark.read_text() == "SIGQUIT"
    stopped, stopped_mark = _telling(tmp_path, "stopped")
    stopped.stop()
    assert stopped_mark.read_text() == "SIGINT"


def test_a_process_that_ended_unasked_says_how_and_an_asked_end_says_nothing(
    tmp_path: Path,
) -> None:
    """A server killed from outside (or crashed) is told from one the stack, a fault or a
    step stopped: only the first means the harness's environment broke under a drill."""
    sleeper = "import time; time.sleep(60)"
    outside = spawn(tmp_path, "outside", sleeper, keeps_data=False)
    assert outside.ended_unasked() is None  # running
    assert outside.pid is not None
    pid = outside.pid
    os.kill(pid, signal.SIGKILL)  # not through ManagedProcess: someone else
    wait_until(lambda: not outside.is_alive(), what="the kill", timeout_s=10)
    assert outside.ended_unasked() == -signal.SIGKILL
    assert outside.how_it_ended() == f"(pid {pid}) was killed by SIGKILL"
    assert exit_description(-signal.SIGKILL) == "was killed by SIGKILL"
    outside.spawn()  # brought back: nothing to say any more
    assert outside.ended_unasked() is None
    outside.kill()  # asked
    assert outside.ended_unasked() is None
    crashed = spawn(tmp_path, "crashed", "raise SystemExit(3)", keeps_data=False)
    wait_until(lambda: not crashed.is_alive(), what="the crash", timeout_s=10)
    assert crashed.ended_unasked() == 3
    assert exit_description(3) == "exited with status 3"
    stopped = spawn(tmp_path, "stopped", sleeper, keeps_data=False)
    stopped.stop(timeout_s=5)
    assert stopped.returncode is not None
    assert stopped.ended_unasked() is None
    assert exit_description(137) == "exited with status 137 (SIGKILL)"  # a container's
