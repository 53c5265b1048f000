"""Size-limited tmpfs mounts through mount(2)/umount2(2): real ENOSPC, resize, lazy
unmount, and a refusal that names what failed. Needs root (skipped otherwise)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runbook_checks.errors import StackError
from runbook_checks.stack.disk import can_mount, mount_tmpfs, resize_tmpfs, umount, usage

pytestmark = pytest.mark.skipif(not can_mount(), reason="tmpfs mounts need root")


def fill(path: Path, size: int) -> int:
    """Bytes written before the filesystem said ENOSPC (or all of them)."""
    written = 0
    with (path / "fill.bin").open("wb", buffering=0) as out:
        try:
            while written < size:
                written += out.write(b"\0" * 65536)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return written


def test_a_mount_is_full_at_its_size_grows_when_resized_and_goes(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    mount_tmpfs(disk, 1)
    try:
        assert os.path.ismount(disk)
        assert usage(disk)[1] == 1024 * 1024
        assert fill(disk, 4 * 1024 * 1024) <= 1024 * 1024  # ENOSPC at 1 MB
        resize_tmpfs(disk, 8 * 1024 * 1024)
        assert usage(disk)[1] == 8 * 1024 * 1024
        assert fill(disk, 4 * 1024 * 1024) == 4 * 1024 * 1024
    finally:
        umount(disk)
    assert not os.path.ismount(disk)
    umount(disk)  # not mounted: nothing to do


def test_a_refused_mount_names_the_command_and_the_reason(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"remount.*failed: Invalid argument"):
        resize_tmpfs(tmp_path, 1024 * 1024)  # not a mount point
