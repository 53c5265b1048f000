"""Disk full: the component's own filesystem (a size-limited tmpfs) filled to ENOSPC."""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from typing import ClassVar

from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.stack.base import Capability, Stack
from runbook_checks.stack.disk import resize_tmpfs, usage

CHUNK = 1 << 20


@dataclass(frozen=True)
class DiskFull(Fault):
    """Shrink the disk to what is used plus `headroom_mb`, then fill that with a ballast
    file until the kernel answers ENOSPC. Revert removes the ballast and restores the size."""

    target: str = "postgres"
    headroom_mb: int = 4
    kind: ClassVar[str] = "disk-full"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DISK})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        root = stack.disk(self.target)
        component = stack.component(self.target)

        def ensure_running() -> None:  # the server may have crashed on ENOSPC meanwhile
            if not component.is_ready():
                with contextlib.suppress(Exception):
                    component.stop()
                component.start()

        # registered first, so it runs last: after the ballast is gone and the size is back
        handle.did("watching the server", ensure_running, f"make sure {self.target} runs")
        used, total = usage(root)
        ballast = root / "ballast.fill"
        resize_tmpfs(root, used + self.headroom_mb * CHUNK)
        handle.did(
            f"{self.target} disk shrunk to {used // CHUNK + self.headroom_mb} MB",
            lambda: resize_tmpfs(root, total),
            f"restore the disk to {total // CHUNK} MB",
        )

        def remove_ballast() -> None:
            with contextlib.suppress(FileNotFoundError):
                ballast.unlink()

        handle.did("ballast file written", remove_ballast, "remove the ballast file")
        written = 0
        block = b"\0" * CHUNK
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                try:
                    written += os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    # the last partial megabyte, page by page
                    with contextlib.suppress(OSError):
                        while os.write(fd, b"\0" * 4096):
                            written += 4096
                    break
                if written > (total + CHUNK):
                    raise FaultError(f"wrote {written} bytes without filling {root}")
        finally:
            os.close(fd)
        handle.did(f"{self.target} disk full: {written // 1024} KiB ballast, ENOSPC reached")
