"""What a stack started, on disk as it goes, so nothing outlives an interrupted drill.

Every local stack lives in a folder under `work_root()` with a `state.json` naming the
owning process, the PIDs it spawned (with their start times, so a recycled PID is never
killed) and the mounts it made. `sweep()` (run by `runbook-checks cleanup` and at the
start of every stack) removes what belongs to owners that are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "state.json"


def work_root() -> Path:
    root = Path(os.environ.get("RUNBOOK_CHECKS_WORK_ROOT", tempfile.gettempdir())) / "runbook-checks"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # the postgres user must traverse it
    return root


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: distinguishes a process from a later one with its PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    current = _start_time(pid)
    return current is not None and (start is None or current == start)


@dataclass
class StateFile:
    """The live record of one stack's resources; every change is written at once."""

    folder: Path
    owner_pid: int = field(default_factory=os.getpid)
    pids: dict[str, list[int | str | None]] = field(default_factory=dict)
    mounts: list[str] = field(default_factory=list)
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


@dataclass(frozen=True)
class SweepReport:
    folders: tuple[str, ...]
    killed: tuple[int, ...]
    unmounted: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.folders or self.killed or self.unmounted)


def release(folder: Path, *, force: bool = True) -> SweepReport:
    """Kill the recorded processes, unmount the recorded mounts, remove the folder."""
    killed: list[int] = []
    unmounted: list[str] = []
    try:
        data = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        data = {"pids": {}, "mounts": []}
    for pid, start in data.get("pids", {}).values():
        if isinstance(pid, int) and _alive(pid, start if isinstance(start, str) else None):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    for mount in reversed(data.get("mounts", [])):
        if os.path.ismount(mount):
            subprocess.run(["umount", "-l", mount], capture_output=True, timeout=10, check=False)
            unmounted.append(mount)
    # mounts we did not record (a crash between mount and write) under the folder
    for line in Path("/proc/self/mounts").read_text().splitlines() if force else []:
        target = line.split()[1]
        if target.startswith(str(folder) + "/"):
            subprocess.run(["umount", "-l", target], capture_output=True, timeout=10, check=False)
            unmounted.append(target)
    shutil.rmtree(folder, ignore_errors=True)
    return SweepReport((str(folder),), tuple(killed), tuple(unmounted))


def sweep() -> SweepReport:
    """Release every stack folder whose owner process is gone."""
    folders: list[str] = []
    killed: list[int] = []
    unmounted: list[str] = []
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
    return SweepReport(tuple(folders), tuple(killed), tuple(unmounted))
