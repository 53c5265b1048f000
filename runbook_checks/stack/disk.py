"""Size-limited tmpfs mounts: real ENOSPC for disk-full faults (needs root)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runbook_checks.errors import StackError


def can_mount() -> bool:
    return os.geteuid() == 0 and Path("/proc/self/mounts").exists()


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise StackError(
            f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}",
            hint="disk faults need root and a kernel that allows tmpfs mounts",
        )


def mount_tmpfs(path: Path, size_mb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)])


def resize_tmpfs(path: Path, size_bytes: int) -> None:
    kib = max(size_bytes // 1024, 64)
    _run(["mount", "-o", f"remount,size={kib}k", str(path)])


def umount(path: Path) -> None:
    if os.path.ismount(path):
        _run(["umount", "-l", str(path)])


def usage(path: Path) -> tuple[int, int]:
    """(used bytes, total bytes) of the filesystem holding `path`."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    return total - st.f_bfree * st.f_frsize, total
