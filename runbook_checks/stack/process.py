"""A supervised local server process: spawn, signal, wait, read its log.

Every process runs in a session of its own (so a signal reaches the whole process
group: PostgreSQL's backends die with their postmaster) and, on Linux, with a parent
death signal, so a drill killed with SIGKILL takes its servers with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.errors import ComponentFailed
from runbook_checks.stack.forkserver import die_with_parent, fork_server, warm


def tail(path: Path, lines: int = 40) -> str:
    """Last `lines` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - 64 * 1024, 0))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def exit_description(code: int) -> str:
    """How a process ended, from its exit status (Popen's convention: -N for signal N; a
    container's 128+N for signal N)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    if code > 128:
        with contextlib.suppress(ValueError):
            return f"exited with status {code} ({signal.Signals(code - 128).name})"
    return f"exited with status {code}"


class Child(Protocol):
    """What a ManagedProcess needs of its process: a `subprocess.Popen`, or a child of a
    fork server (forkserver.ForkedChild)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class ManagedProcess:
    """One child process with its log file. Not thread-safe: drive it from one thread."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        clock: Clock = SYSTEM_CLOCK,
        on_spawn: Callable[[int], None] | None = None,
        keeps_data: bool = False,
        teardown_signal: signal.Signals | None = None,
        preload: Sequence[str] = (),
        preload_reads_env: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.clock = clock
        self.on_spawn = on_spawn
        # a server with data on disk gets its whole graceful stop even when its stack is
        # being removed (a killed PostgreSQL leaves shared memory behind); the others
        # get a short grace then (`stop_together`)
        self.keeps_data = keeps_data
        # the stop signal when its data goes too (its stack is being removed): None, the
        # stop signal; PostgreSQL's immediate shutdown (no checkpoint of data about to go)
        self.teardown_signal = teardown_signal
        # `python -m MODULE ...` whose imports a fork server does once (forkserver.py):
        # the modules it imports before forking; () starts the process cold
        self.preload = tuple(preload)
        # those modules read settings from the environment as they are imported: the fork
        # server runs with this process's environment (one per distinct environment)
        self.preload_reads_env = preload_reads_env
        self._proc: Child | None = None
        self._paused = False
        # asked to end (a stop or a kill by the stack, a fault or a step) since its spawn
        self._end_asked = False

    # -- state -------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and not self._paused

    def is_alive(self) -> bool:
        """Exists (running or paused)."""
        return self._proc is not None and self._proc.poll() is None

    def ended_unasked(self) -> int | None:
        """The exit status of a process that ended although nobody here asked it to (no
        stop or kill since its spawn): it crashed, or something outside killed it. None
        while it runs, after an asked-for end, or before any spawn."""
        code = self.returncode
        return None if code is None or self._end_asked else code

    def how_it_ended(self) -> str:
        """How its process ended (ask once it has), for people: "(pid 123) was killed by
        SIGKILL", and why where known (`_end_note`)."""
        code = self.returncode
        assert code is not None, f"{self.name} has not ended"
        return f"({self._who()}) {exit_description(code)}{self._end_note()}"

    def _who(self) -> str:
        return f"pid {self._proc.pid}" if self._proc is not None else "no process"

    def _end_note(self) -> str:
        """A forked child that got no status from its fork server: that server ended."""
        if getattr(self._proc, "server_gone", False):
            return " (its fork server ended, and its children with it)"
        return ""

    # -- life cycle --------------------------------------------------------------------
    def spawn(self) -> None:
        if self.is_alive():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        proc = self._forked() or self._popen()
        self._proc = proc
        self._paused = False
        self._end_asked = False
        if self.on_spawn is not None:
            self.on_spawn(proc.pid)

    def _forked(self) -> Child | None:
        """The process forked from a warm fork server (its imports done), or None: no
        preload, another user, not `python -m`, or no fork server (yet) for it: then it
        starts cold."""
        if not self._forkable():
            return None
        server = fork_server(self.preload, self._fork_env(), module=self.argv[2])
        if server is None:
            return None
        try:
            return server.spawn(
                self.argv,
                env=self.env if self.env is not None else os.environ,
                cwd=self.cwd,
                log_path=self.log_path,
            )
        except (OSError, ValueError):
            return None

    def _fork_env(self) -> Mapping[str, str] | None:
        """The environment its fork server runs with (None: this process's)."""
        if not self.preload_reads_env:
            return None
        return self.env if self.env is not None else dict(os.environ)

    def warm(self) -> None:
        """Start the fork server this process will be forked from, if any, in the
        background (`spawn` then waits for it, not for a cold start)."""
        if self._forkable():
            warm(self.preload, self._fork_env())

    def _forkable(self) -> bool:
        """A preload, this user, and `python -m MODULE ...` with this interpreter."""
        return (
            bool(self.preload)
            and self.user is None
            and len(self.argv) >= 3
            and self.argv[:2] == [sys.executable, "-m"]
        )

    def _popen(self) -> Child:
        log = self.log_path.open("ab")
        try:
            return subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                start_new_session=True,
                preexec_fn=die_with_parent,  # runs in the child between fork and exec
            )
        except OSError as exc:
            raise ComponentFailed(
                self.name,
                f"could not start {self.argv[0]}: {exc}",
                hint="check that the program is installed (make setup installs it)",
            ) from exc
        finally:
            log.close()

    def signal_group(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Graceful stop (the configured signal), then SIGKILL after `timeout_s`."""
        self.send_stop()
        self.await_stop(timeout_s)

    def send_stop(self, *, teardown: bool = False) -> None:
        """The stop signal (`teardown`: the one for a server whose data goes with it),
        without waiting for the process to end."""
        self._end_asked = True
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        if self._paused:
            self.signal_group(signal.SIGCONT)
        self.signal_group((teardown and self.teardown_signal) or self.stop_signal)

    def await_stop(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the process to end, then SIGKILL; reap its group."""
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout=max(timeout_s, 0.0))
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap_group(proc.pid)
        self._paused = False

    def kill(self) -> None:
        self._end_asked = True
        proc = self._proc
        if proc is None:
            return
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self._reap_group(proc.pid)
        self._paused = False

    def pause(self) -> None:
        if self.is_alive():
            self.signal_group(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        if self.is_alive():
            self.signal_group(signal.SIGCONT)
        self._paused = False

    def _reap_group(self, pgid: int) -> None:
        """Wait until no process of the group is left (PostgreSQL backends linger)."""

        def gone() -> bool:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False

        try:
            wait_until(
                gone,
                what=f"{self.name} process group {pgid} to exit",
                timeout_s=5.0,
                interval_s=0.02,
                clock=self.clock,
            )
        except WaitTimeout:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def failure(self, message: str, hint: str | None = None) -> ComponentFailed:
        code = self.returncode
        if code is not None:
            message += f" (process exited with status {code})"
        return ComponentFailed(self.name, message, log_tail=self.log_tail(), hint=hint)


DATA_GRACE_S = 10.0  # what a server with data on disk gets to stop when its stack goes


def stop_together(processes: Sequence[ManagedProcess], clock: Clock = SYSTEM_CLOCK) -> None:
    """Stop several processes at once, as a stack being removed does: one signal to all
    now. Those that keep data on disk get their teardown signal (PostgreSQL: immediate
    shutdown, which releases its shared memory) and up to `DATA_GRACE_S` to end; the
    others are killed at once (SIGKILL): what an in-memory server holds goes with the
    stack, and a graceful stop would only wait for its clients' keep-alive connections
    (moto's servers took 0.4-0.5 s, the API 0.13 s)."""
    for process in processes:
        if process.keeps_data:
            process.send_stop(teardown=True)
        else:
            process.signal_group(signal.SIGKILL)
    start = clock.monotonic()
    for process in sorted(processes, key=lambda p: p.keeps_data):
        grace = DATA_GRACE_S if process.keeps_data else 0.0
        process.await_stop(grace - (clock.monotonic() - start))
