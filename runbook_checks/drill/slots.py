"""One load-driven drill at a time on a machine.

A drill whose fault is traffic (`Fault.drives_load()`: virtual users against the API)
judges throughput, error rates and pool figures: two of them at once would share the
cores and each measure the other. Drills in parallel (`runbook-checks drill --workers`)
therefore take the load slot, an exclusive lock on a file in this user's work root, for
the whole drill; every other drill runs beside them freely. The lock is the kernel's
(flock): a drill that dies, even by SIGKILL, releases it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.faults.base import Fault
from runbook_checks.stack.leftovers import work_root
from runbook_checks.stack.locks import exclusive

LOAD_SLOT = "load-drills.lock"


@contextlib.contextmanager
def load_slot(fault: Fault, *, clock: Clock = SYSTEM_CLOCK) -> Iterator[float]:
    """Hold the load slot while the block runs if `fault` drives load (else nothing);
    yields the seconds spent waiting for it."""
    if not fault.drives_load():
        yield 0.0
        return
    started = clock.monotonic()
    with exclusive(work_root() / LOAD_SLOT):
        yield clock.monotonic() - started
