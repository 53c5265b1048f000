"""Machine-wide mutual exclusion between the processes of this user (drills, test
workers): the kernel's lock on a file (flock), released when the holder's block ends or
the holder dies, even by SIGKILL. An interrupt (KeyboardInterrupt) ends a wait."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold the exclusive lock on `lock_path` (made if missing) while the block runs."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
