"""Interrupt a drill at points Hypothesis picks, with SIGINT, SIGTERM or SIGKILL, and find
nothing left behind.

The drill is `tests/safety/interrupt_target.py` (a stack, faults injected one by one, held)
run under the CLI's own interrupt handling, in a work root of its own. Either it starts
a local stack (faults: a full tmpfs disk with its ballast, fault database sessions, a
latency toxic on the fault proxy, the API restarted with other settings) or it drives an
existing environment through the external backend (the session's stack plays the
environment; fault sessions that outlive a killed drill there). After the signal:

- SIGINT / SIGTERM: the drill cleans up itself. Nothing may remain, without any help.
- SIGKILL: nothing can run in the drill. Its processes must die with it (parent-death
  signal); `runbook-checks cleanup` must then remove its folder and mounts and end the
  fault sessions it left in the environment.

"Nothing" is checked five ways: the PIDs in the state files, every process whose command
line, working directory or environment mentions the work root, tmpfs mounts under it, the
stack folders, and `runbook-checks-fault:*` sessions in the surviving PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from runbook_checks.clock import WaitTimeout, wait_until
from runbook_checks.stack.base import Stack
from runbook_checks.stack.disk import can_mount

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "tests" / "safety" / "interrupt_target.py"
LOCAL_FAULTS = ("disk-full", "long-running-query", "network-latency", "api-settings")
EXTERNAL_FAULTS = ("long-running-query", "idle-in-transaction")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
EXAMPLES = 6  # plus the 4 explicit ones below: 10 drills, deterministic (derandomized)


@dataclass
class Tally:
    tried: Counter[str] = field(default_factory=Counter)
    leftovers: list[str] = field(default_factory=list)
    swept_after_kill: int = 0  # items `cleanup` removed after a SIGKILL (expected there)
    seconds: list[float] = field(default_factory=list)


TALLY = Tally()


def phases(faults: tuple[str, ...]) -> list[str]:
    points = ["starting", "started"]
    for kind in faults:
        points += [f"injecting:{kind}", f"injected:{kind}"]
    return [*points, "holding", "reverting"]


# ------------------------------------------------------------------------- leftovers


def _alive(pid: int, start: str | None) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return start is None or stat.rsplit(")", 1)[1].split()[19] == start


def _mentions(pid: int, needle: bytes) -> bool:
    for name in ("cmdline", "environ"):
        try:
            if needle in Path(f"/proc/{pid}/{name}").read_bytes():
                return True
        except OSError:
            pass
    try:
        return os.readlink(f"/proc/{pid}/cwd").encode().startswith(needle)
    except OSError:
        return False


def processes(root: Path) -> list[str]:
    found = []
    for state in (root / "runbook-checks").glob("*/state.json"):
        data = json.loads(state.read_text())
        for name, (pid, start) in data.get("pids", {}).items():
            if _alive(int(pid), start):
                found.append(f"process {name} (state file of {state.parent.name})")
    needle = str(root).encode()
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else 0
        if pid and pid != os.getpid() and _mentions(pid, needle):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120]
            found.append(f"process {entry.name}: {cmd.decode(errors='replace')}")
    return found


def mounts(root: Path) -> list[str]:
    return [
        f"mount {line.split()[1]}"
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(str(root) + "/")
    ]


def folders(root: Path) -> list[str]:
    base = root / "runbook-checks"
    return [f"folder {p.name}" for p in base.iterdir()] if base.exists() else []


def fault_sessions(database_url: str) -> list[str]:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT application_name, pid FROM pg_stat_activity "
            "WHERE application_name LIKE 'runbook-checks-fault:%'"
        ).fetchall()
    return [f"fault session {r[0]} (pid {r[1]})" for r in rows]


def everything(root: Path, database_url: str) -> list[str]:
    return processes(root) + mounts(root) + folders(root) + fault_sessions(database_url)


def wait_for_processes_gone(root: Path, timeout_s: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = processes(root)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


# ------------------------------------------------------------------------- the drill


class Target:
    """The drill in a subprocess; its `phase: NAME` lines read on a thread."""

    def __init__(
        self, faults: tuple[str, ...], root: Path, environment: Path | None, hold_s: float
    ) -> None:
        argv = [sys.executable, str(TARGET), "--faults", ",".join(faults), "--hold-s", str(hold_s)]
        if environment is not None:
            argv += ["--environment", str(environment)]
        self.log = root / "target.log"
        self.proc = subprocess.Popen(
            argv,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=self.log.open("wb"),
            text=True,
            env={
                **os.environ,
                "RUNBOOK_CHECKS_WORK_ROOT": str(root),
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT),
            },
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_for(self, point: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if line == f"phase: {point}":
                return
        self.proc.kill()
        raise AssertionError(
            f"the drill never reached {point!r}; it said {self.seen} and:\n"
            + self.log.read_text()[-3000:]
        )

    def stderr(self) -> str:
        return self.log.read_text()[-3000:]

    def where(self) -> str:
        """For a target that outlived its signal: the phases it said, and every thread's
        stack (faulthandler on SIGUSR1): did it take the signal and hang in its cleanup,
        or go on as if it never came?"""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGUSR1)
        with contextlib.suppress(WaitTimeout):  # its stacks written, or what there is
            wait_until(
                lambda: "most recent call first" in self.log.read_text(),
                what="the target's stacks",
                timeout_s=5,
            )
        said = list(self.seen)
        with contextlib.suppress(queue.Empty):
            while (line := self.lines.get_nowait()) is not None:
                said.append(line)
        return f"it said {said}; its stderr (stacks last):\n{self.log.read_text()[-6000:]}"


@pytest.fixture(scope="module")
def environment(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's stack as an existing environment (fault kinds opted in)."""
    ep = stack.endpoints
    path = tmp_path_factory.mktemp("environment") / "environment.toml"
    path.write_text(
        f'name = "interrupt-drills"\napi_url = "{ep.api_url}"\n'
        f'database_url = "{ep.database_url}"\nadmin_token = "{ep.admin_token}"\n'
        f"[safety]\ndestructive_faults = {json.dumps(list(EXTERNAL_FAULTS))}\n"
    )
    return path


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a real drill
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    external=st.booleans(),
    sig=st.sampled_from(SIGNALS),
    picks=st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True),
    point_index=st.integers(0, 20),
    delay_s=st.sampled_from([0.0, 0.05, 0.3]),
)
@example(external=False, sig=signal.SIGKILL, picks=[0, 3], point_index=6, delay_s=0.05)
@example(external=True, sig=signal.SIGKILL, picks=[0], point_index=3, delay_s=0.3)
@example(external=False, sig=signal.SIGTERM, picks=[1, 2], point_index=0, delay_s=0.3)
@example(external=True, sig=signal.SIGINT, picks=[0, 1], point_index=6, delay_s=0.0)
def test_an_interrupted_drill_leaves_nothing_behind(
    external: bool,
    sig: signal.Signals,
    picks: list[int],
    point_index: int,
    delay_s: float,
    stack: Stack,
    environment: Path,
) -> None:
    kinds = EXTERNAL_FAULTS if external else LOCAL_FAULTS
    faults = tuple(dict.fromkeys(kinds[i % len(kinds)] for i in picks))
    points = phases(faults)
    point = points[point_index % len(points)]
    # a work root of its own, that the postgres user can traverse (pytest's tmp is 0700)
    root = Path(tempfile.mkdtemp(prefix="runbook-checks-interrupt-"))
    root.chmod(0o755)
    started = time.monotonic()
    try:
        _interrupt(external, sig, faults, point, delay_s, root, stack, environment)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        TALLY.seconds.append(time.monotonic() - started)


def _interrupt(
    external: bool,
    sig: signal.Signals,
    faults: tuple[str, ...],
    point: str,
    delay_s: float,
    root: Path,
    stack: Stack,
    environment: Path,
) -> None:
    database = stack.endpoints.database_url
    what = (
        f"{'external' if external else 'local'} drill with {', '.join(faults)}, "
        f"{sig.name} {delay_s:g}s after {point!r}"
    )
    TALLY.tried[sig.name] += 1

    target = Target(
        faults,
        root,
        environment if external else None,
        hold_s=0.2 if point == "reverting" else 60.0,
    )
    target.wait_for(point)
    time.sleep(delay_s)
    target.proc.send_signal(sig)
    try:
        code = target.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        where = target.where()
        target.proc.kill()
        target.proc.wait()
        pytest.fail(f"{what}: still running 60 s after the signal; {where}")

    left = wait_for_processes_gone(root)
    if sig is signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert not left, f"{what}: processes outlived the drill: {left}"
        before = mounts(root) + folders(root) + fault_sessions(database)
        cleanup = subprocess.run(
            [sys.executable, "-m", "runbook_checks.cli", "cleanup"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "RUNBOOK_CHECKS_WORK_ROOT": str(root), "PYTHONPATH": str(ROOT)},
        )
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
        TALLY.swept_after_kill += len(before)
    else:
        assert code in (0, 130), f"{what}: exit {code}\n{target.stderr()}"
    found = everything(root, database)
    TALLY.leftovers += [f"{what}: {item}" for item in found]
    assert not found, f"{what}: left behind {found}\n{target.stderr()}"


def _drill_until_its_fault(root: Path, *drill_args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`runbook-checks drill [drill_args] -- -k option_a_restart` in `root`, returned as
    soon as a state file shows the fault injected: the process and the state file."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_checks.cli",
            "drill",
            "--evidence-dir",
            str(root / "evidence"),
            *drill_args,
            "--",
            "-k",
            "option_a_restart",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        stdout=(root / "drill.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUNBOOK_CHECKS_WORK_ROOT": str(root)},
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        for state in (root / "runbook-checks").glob("*/state.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(state.read_text() or "{}").get("faults"):
                    return proc, state
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    pytest.fail(f"the drill ended before its fault:\n{(root / 'drill.log').read_text()}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_real_drill_command_interrupted_mid_fault_leaves_nothing(
    sig: signal.Signals, stack: Stack
) -> None:
    """`runbook-checks drill -- -k option_a_restart`, signalled as soon as its state file
    shows the fault injected: the CLI's own path (pytest inside, fixtures torn down)."""
    root = Path(tempfile.mkdtemp(prefix="runbook-checks-interrupt-"))
    root.chmod(0o755)
    try:
        proc, _ = _drill_until_its_fault(root)
        proc.send_signal(sig)
        code = proc.wait(timeout=90)
        TALLY.tried[f"{sig.name} (drill command)"] += 1
        left = wait_for_processes_gone(root) + mounts(root) + folders(root)
        left += fault_sessions(stack.endpoints.database_url)
        TALLY.leftovers += [f"drill command, {sig.name}: {item}" for item in left]
        output = (root / "drill.log").read_text()
        assert code == 130, output[-3000:]
        assert "interrupted" in output
        assert not left, f"left behind {left}\n{output[-3000:]}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_parallel_drills_worker_killed_mid_fault_leaves_nothing_once_the_drill_ends() -> None:
    """xdist kills a worker that does not unwind within seconds of an interrupt (and a
    worker may crash): what the worker's stack held, its mount and folder, is gone when the
    drill ends (released by the drill's own process, which adopted the worker, or by the
    sweep of a worker xdist starts in its place), not left for the next drill."""
    root = Path(tempfile.mkdtemp(prefix="runbook-checks-interrupt-"))
    root.chmod(0o755)
    try:
        proc, state = _drill_until_its_fault(root, "--workers", "2")
        worker = json.loads(state.read_text())["owner_pid"]
        assert worker != proc.pid  # the stack is a worker's
        if can_mount():
            assert mounts(root), "the worker's stack has its disk mounted"
        os.kill(worker, signal.SIGKILL)
        proc.wait(timeout=120)
        output = (root / "drill.log").read_text()
        left = wait_for_processes_gone(root) + mounts(root) + folders(root)
        assert not left, f"left behind {left}\n{output[-3000:]}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_interrupt_figures(record_property: Callable[[str, object], None]) -> None:
    """The figure for the summary (runs after the property test in this module)."""
    tried = sum(TALLY.tried.values())
    if not tried:
        pytest.skip("the interrupt property test did not run")
    by_signal = ", ".join(f"{n} {c}" for n, c in sorted(TALLY.tried.items()))
    record_property(
        "figure",
        f"interrupts: {tried} tried ({by_signal}), {len(TALLY.leftovers)} leftovers found; "
        f"{TALLY.swept_after_kill} item(s) swept by `cleanup` after SIGKILL; "
        f"{sum(TALLY.seconds):.0f}s (slowest example {max(TALLY.seconds, default=0):.1f}s)",
    )
    assert not TALLY.leftovers
