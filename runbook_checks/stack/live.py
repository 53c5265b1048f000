"""Live faults, whichever stack they were injected on.

Faults (`runbook_checks.faults`, a layer above the stacks) register every live handle in
`ACTIVE`; a stopping stack abandons its own, the external backend reverts its own, and an
interrupt (`runbook_checks.interrupts`) reverts them all. The stacks see a fault only
through the two small protocols here, so they never import the faults package.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol


class FaultView(Protocol):
    """What a stack sees of a fault: its kind and its settings in words."""

    @property
    def kind(self) -> str: ...

    def describe(self) -> str: ...


class LiveFault(Protocol):
    """What a stack sees of a live fault's handle (`faults.base.FaultHandle`)."""

    @property
    def fault(self) -> FaultView: ...

    @property
    def stack(self) -> object | None: ...

    def revert(self) -> None: ...

    def abandon(self, why: str) -> None: ...


@dataclass
class LiveFaults:
    handles: set[LiveFault] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, handle: LiveFault) -> None:
        with self.lock:
            self.handles.add(handle)

    def discard(self, handle: LiveFault) -> None:
        with self.lock:
            self.handles.discard(handle)

    def on(self, stack: object) -> list[LiveFault]:
        """The live faults injected on `stack`."""
        with self.lock:
            return [h for h in self.handles if h.stack is stack]

    def abandon_stack(self, stack: object, why: str = "its stack was stopped") -> int:
        """Abandon (see `FaultHandle.abandon`) every live fault injected on `stack`."""
        handles = self.on(stack)
        for handle in handles:
            handle.abandon(why)
        return len(handles)

    def revert_all(self) -> list[str]:
        """Revert every live fault; return the errors (an interrupt path: never raises)."""
        with self.lock:
            handles = list(self.handles)
        errors = []
        for handle in handles:
            try:
                handle.revert()
            except Exception as exc:
                errors.append(str(exc))
        return errors


ACTIVE = LiveFaults()
