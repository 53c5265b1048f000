"""Size-limited tmpfs mounts: real ENOSPC for disk-full faults (needs root).

The mounts are made with the mount(2) and umount2(2) system calls (through libc), not
the mount(8) and umount(8) programs: a program costs a fork and exec (~50 ms on a small
machine) at every stack start, stop and disk fault; the call costs microseconds. The
effect is the same: the kernel's mount table (/proc/self/mounts) is the only record.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

from runbook_checks.errors import StackError

MS_REMOUNT = 32  # <linux/mount.h>
MNT_DETACH = 2  # lazy unmount: detached now, gone when no longer busy (umount -l)


def can_mount() -> bool:
    return os.geteuid() == 0 and Path("/proc/self/mounts").exists()


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise StackError(
            f"{what} failed: {os.strerror(errno)}",
            hint="disk faults need root and a kernel that allows tmpfs mounts",
        )


def mount_tmpfs(path: Path, size_mb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_mb}m,mode=0755"
    result = _libc().mount(b"tmpfs", os.fsencode(path), b"tmpfs", 0, options.encode())
    _check(result, f"mount -t tmpfs -o {options} tmpfs {path}")


def resize_tmpfs(path: Path, size_bytes: int) -> None:
    kib = max(size_bytes // 1024, 64)
    options = f"size={kib}k"
    result = _libc().mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_REMOUNT, options.encode())
    _check(result, f"mount -o remount,{options} {path}")


def umount(path: Path) -> None:
    if os.path.ismount(path):
        _check(_libc().umount2(os.fsencode(path), MNT_DETACH), f"umount -l {path}")


def usage(path: Path) -> tuple[int, int]:
    """(used bytes, total bytes) of the filesystem holding `path`."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    return total - st.f_bfree * st.f_frsize, total
