"""What a stack started, on disk as it goes, so nothing outlives an interrupted drill.

Every local stack lives in a folder under `work_root()` with a `state.json` naming the
owning process, the PIDs it spawned (with their start times, so a recycled PID is never
killed), the mounts it made, and the faults injected and not yet reverted (recorded by
`faults.base` before each injection). `sweep()` (run by `runbook-checks cleanup` and at
the start of every stack) removes what belongs to owners that are gone; for an external
environment (`environment` names its config file) it also ends the faults' database
sessions there, since nothing of that environment dies with the drill.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from runbook_checks.errors import StackError
from runbook_checks.stack.disk import umount

STATE_FILE = "state.json"


def work_root() -> Path:
    """The folder of this user's stack folders: runbook-checks for root, and
    runbook-checks-UID for anyone else (one user's leftovers are never another's to
    sweep, and root's folder is not writable by others)."""
    uid = os.getuid()
    name = "runbook-checks" if uid == 0 else f"runbook-checks-{uid}"
    root = Path(os.environ.get("RUNBOOK_CHECKS_WORK_ROOT", tempfile.gettempdir())) / name
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # the postgres user must traverse it
    return root


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first), or None: no process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: distinguishes a process from a later one with its PID."""
    fields = _stat(pid)
    return None if fields is None else fields[19]


def _alive(pid: int, start: str | None) -> bool:
    """The process runs (a zombie, dead and not yet reaped by its parent, does not: a
    killed parallel worker stays one until its controller waits for it)."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return start is None or fields[19] == start


@dataclass
class StateFile:
    """The live record of one stack's resources; every change is written at once."""

    folder: Path
    owner_pid: int = field(default_factory=os.getpid)
    pids: dict[str, list[int | str | None]] = field(default_factory=dict)
    mounts: list[str] = field(default_factory=list)
    faults: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> kind, what, since
    environment: str = ""  # an external environment's config file (see stack.external)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def path(self) -> Path:
        return self.folder / STATE_FILE

    def write(self) -> None:
        data = {
            "owner_pid": self.owner_pid,
            "owner_start": _start_time(self.owner_pid),
            "pids": self.pids,
            "mounts": self.mounts,
            "faults": self.faults,
            "environment": self.environment,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)

    def add_pid(self, name: str, pid: int) -> None:
        with self._lock:
            self.pids[f"{name}:{pid}"] = [pid, _start_time(pid)]
            self.write()

    def add_mount(self, path: Path) -> None:
        with self._lock:
            self.mounts.append(str(path))
            self.write()

    def remove_mount(self, path: Path) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                self.mounts.remove(str(path))
            self.write()

    def add_fault(self, fault_id: str, record: dict[str, str]) -> None:
        """Written BEFORE the fault acts, so a drill killed half-way still names it."""
        with self._lock:
            self.faults[fault_id] = dict(record)
            self.write()

    def remove_fault(self, fault_id: str) -> None:
        with self._lock:
            if self.faults.pop(fault_id, None) is not None:
                self.write()


@dataclass(frozen=True)
class SweepReport:
    folders: tuple[str, ...]
    killed: tuple[int, ...]
    unmounted: tuple[str, ...]
    faults: tuple[str, ...] = ()  # faults still injected when their drill died, now reverted
    problems: tuple[str, ...] = ()  # what could not be cleaned (the folder is kept to retry)

    @property
    def empty(self) -> bool:
        return not (self.folders or self.killed or self.unmounted or self.faults or self.problems)


def _revert_faults(folder: Path, data: dict[str, object]) -> tuple[list[str], list[str]]:
    """Faults the state file still lists, and the problems reverting them. A local stack's
    faults (ballast on its tmpfs, its resized mounts, its proxies, its fault sessions, an
    API restarted with other settings) go with its processes and mounts; an external
    environment outlives the drill, so its fault sessions are terminated there."""
    faults = data.get("faults")
    environment = data.get("environment")
    if not isinstance(faults, dict) or not (faults or environment):
        return [], []
    records = [r for r in faults.values() if isinstance(r, dict)]
    names = [str(r.get("what") or r.get("kind")) for r in records]
    if not environment:
        return names, []
    from runbook_checks.stack.external import revert_leftover_faults

    kinds = sorted({str(r.get("kind")) for r in records})
    return names, revert_leftover_faults(folder, Path(str(environment)), kinds)


def release(folder: Path, *, force: bool = True) -> SweepReport:
    """Revert the recorded faults where they outlive the drill, kill the recorded
    processes, unmount the recorded mounts, remove the folder. A folder whose faults could
    not be reverted is kept (the next sweep retries) and the problem reported."""
    killed: list[int] = []
    unmounted: list[str] = []
    try:
        data = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        data = {"pids": {}, "mounts": []}
    faults, problems = _revert_faults(folder, data)
    for pid, start in data.get("pids", {}).values():
        if isinstance(pid, int) and _alive(pid, start if isinstance(start, str) else None):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    for mount in reversed(data.get("mounts", [])):
        if os.path.ismount(mount):
            with contextlib.suppress(StackError):
                umount(Path(mount))
            unmounted.append(mount)
    # mounts we did not record (a crash between mount and write) under the folder
    for line in Path("/proc/self/mounts").read_text().splitlines() if force else []:
        target = line.split()[1]
        if target.startswith(str(folder) + "/"):
            with contextlib.suppress(StackError):
                umount(Path(target))
            unmounted.append(target)
    if problems:  # keep the record: the faults are still out there
        return SweepReport((), tuple(killed), tuple(unmounted), tuple(faults), tuple(problems))
    shutil.rmtree(folder, ignore_errors=True)
    return SweepReport((str(folder),), tuple(killed), tuple(unmounted), tuple(faults))


def sweep() -> SweepReport:
    """Release every stack folder whose owner process is gone."""
    folders: list[str] = []
    killed: list[int] = []
    unmounted: list[str] = []
    faults: list[str] = []
    problems: list[str] = []
    for folder in sorted(work_root().iterdir()):
        if not folder.is_dir():
            continue
        try:
            data = json.loads((folder / STATE_FILE).read_text())
            owner, start = int(data["owner_pid"]), data.get("owner_start")
        except (OSError, ValueError, KeyError, TypeError):
            owner, start = -1, None
            with contextlib.suppress(OSError):
                if time.time() - folder.stat().st_mtime < 30:
                    continue  # being created right now by another stack
        if owner > 0 and _alive(owner, start):
            continue
        report = release(folder)
        folders += report.folders
        killed += report.killed
        unmounted += report.unmounted
        faults += report.faults
        problems += report.problems
    return SweepReport(
        tuple(folders), tuple(killed), tuple(unmounted), tuple(faults), tuple(problems)
    )
