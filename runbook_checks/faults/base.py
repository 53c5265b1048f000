"""The fault model: settings split from live state (Toxiproxy's toxic vs. stub).

A `Fault` is a frozen dataclass of settings with units in the names (`latency_ms`,
`size_mb`). `fault.inject(stack)` acts on the stack and returns a `FaultHandle`: a
context manager whose `revert()` undoes exactly what was done, at most once, in reverse
order, and keeps going when one undo step fails (then raises all the errors together).
Every live handle is in `ACTIVE`, so an interrupted drill can revert what is left.

Two members of the `Stack` protocol take part:
- `stack.state` (a `leftovers.StateFile`, or None): each fault is recorded there BEFORE it
  acts and removed once reverted, so `runbook-checks cleanup` knows what a killed drill left.
- `stack.on_fault_event(event, fault, handle)`: told "injecting" before a fault acts (it
  may refuse by raising `FaultError`: the external backend's policy and audit log),
  "reverting" before its undo steps and "reverted" after them.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import FaultError as FaultError  # faults' error, kept in errors
from runbook_checks.stack.base import Capability
from runbook_checks.stack.live import ACTIVE as ACTIVE  # the registry lives below the stacks

if TYPE_CHECKING:
    from runbook_checks.stack.base import Stack


_SERIAL = itertools.count(1)


class FaultHandle:
    """The live state of one injected fault."""

    def __init__(
        self, fault: Fault, *, clock: Clock = SYSTEM_CLOCK, stack: Stack | None = None
    ) -> None:
        self.fault = fault
        self.clock = clock
        self.stack = stack  # where it was injected (its state file and hooks)
        self.id = f"{os.getpid()}-{next(_SERIAL)}"
        self.injected_at = clock.monotonic()
        self.reverted_at: float | None = None
        self.notes: list[str] = []  # what was done, in words, for the journal
        self.scratch: dict[str, object] = {}  # live objects a fault keeps for its users
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self._lock = threading.Lock()
        ACTIVE.add(self)

    def did(self, what: str, undo: Callable[[], None] | None = None, undo_what: str = "") -> None:
        """Record an action and how to undo it (undo steps run in reverse order)."""
        self.notes.append(what)
        if undo is not None:
            self._undo.append((undo_what or f"undo: {what}", undo))

    @property
    def active(self) -> bool:
        return self.reverted_at is None

    def revert(self) -> None:
        with self._lock:
            if self.reverted_at is not None:
                return
            self.reverted_at = self.clock.monotonic()
            steps, self._undo = self._undo, []
        ACTIVE.discard(self)
        if self.stack is not None:
            self.stack.on_fault_event("reverting", self.fault, self)
        errors: list[str] = []
        pending = list(reversed(steps))
        while pending:
            what, undo = pending[0]
            try:
                undo()
            except Exception as exc:  # keep reverting the rest; report all at the end
                errors.append(f"{what}: {type(exc).__name__}: {exc}")
            except BaseException:  # interrupted (Ctrl-C, SIGTERM): keep what is left
                with self._lock:  # for ACTIVE.revert_all() (undo steps are idempotent)
                    self._undo = list(reversed(pending)) + self._undo
                    self.reverted_at = None
                ACTIVE.add(self)
                raise
            pending.pop(0)
        self._forget(errors)
        if errors:
            raise FaultError(
                f"reverting {self.fault.describe()} left problems: " + "; ".join(errors),
                hint="run `runbook-checks cleanup`; the stack may need a restart",
            )

    def abandon(self, why: str) -> None:
        """Mark reverted WITHOUT running the undo steps: the stack it lived in is being
        torn down (a local stack's processes, mounts and proxies go, and the fault with
        them), so undoing it there would only restart what is being stopped."""
        with self._lock:
            if self.reverted_at is not None:
                return
            self.reverted_at = self.clock.monotonic()
            self._undo = []
        ACTIVE.discard(self)
        self.notes.append(f"abandoned: {why}")
        self._forget([])

    def _forget(self, errors: list[str]) -> None:
        """Out of the state file (or marked there when its revert failed); hooks told."""
        state = self.stack.state if self.stack is not None else None
        try:
            if state is not None and errors:
                state.add_fault(self.id, {**_record(self), "revert_failed": "; ".join(errors)})
            elif state is not None:
                state.remove_fault(self.id)
        except OSError:  # the stack's folder is gone already (it was stopped)
            pass
        if self.stack is not None:
            self.stack.on_fault_event("reverted", self.fault, self)

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.revert()
            return
        try:
            self.revert()
        except FaultError as revert_error:  # never hide the real failure
            exc.add_note(str(revert_error))


@dataclass(frozen=True)
class Fault:
    """Base of every fault. Subclasses are frozen dataclasses and implement `_inject`."""

    kind: ClassVar[str] = "fault"
    requires: ClassVar[frozenset[Capability]] = frozenset()

    def describe(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{self.kind}({fields})"

    def drives_load(self) -> bool:
        """Whether the fault is traffic (virtual users): such drills measure throughput,
        so parallel drills run them one at a time (drill/slots.py)."""
        return False

    def servers(self) -> frozenset[str]:
        """The stack's servers (component names) this fault acts on: while it is live, a
        server of these that ends may be the fault's doing (a crash loop, an OOM kill
        under a memory limit, PostgreSQL's panic on a full disk). By default the
        fault's `target`, where it has one."""
        target = getattr(self, "target", None)
        return frozenset({target}) if isinstance(target, str) else frozenset()

    def unsupported_reason(self, stack: Stack) -> str | None:
        missing = sorted(c.value for c in self.requires - stack.capabilities)
        if missing:
            return (
                f"{self.kind} needs {', '.join(missing)}, which the {stack.backend} "
                "backend cannot do"
            )
        return None

    def inject(self, stack: Stack, *, clock: Clock = SYSTEM_CLOCK) -> FaultHandle:
        reason = self.unsupported_reason(stack)
        if reason:
            raise FaultError(reason, hint="run this scenario on the local or docker backend")
        stack.on_fault_event("injecting", self, None)  # may refuse (FaultError)
        handle = FaultHandle(self, clock=clock, stack=stack)
        try:
            if stack.state is not None:
                stack.state.add_fault(handle.id, _record(handle))
            self._inject(stack, handle)
        except BaseException as exc:
            try:
                handle.revert()
            except FaultError as revert_error:
                exc.add_note(str(revert_error))
            raise
        return handle

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        raise NotImplementedError


def _record(handle: FaultHandle) -> dict[str, str]:
    """What the state file says about a live fault."""
    return {
        "kind": handle.fault.kind,
        "what": handle.fault.describe(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pid": str(os.getpid()),
    }


@dataclass(frozen=True)
class AllOf(Fault):
    """Several faults at once (e.g. more traffic and a slower database path): injected in
    order, reverted in reverse. `handles` of the parts are reachable by position."""

    parts: tuple[Fault, ...] = ()
    kind: ClassVar[str] = "all-of"

    def describe(self) -> str:
        return " + ".join(part.describe() for part in self.parts)

    def servers(self) -> frozenset[str]:
        return frozenset().union(*(part.servers() for part in self.parts))

    def drives_load(self) -> bool:
        return any(part.drives_load() for part in self.parts)

    def unsupported_reason(self, stack: Stack) -> str | None:
        for part in self.parts:
            reason = part.unsupported_reason(stack)
            if reason:
                return reason
        return None

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        parts: list[FaultHandle] = []
        handle.scratch["parts"] = parts
        for part in self.parts:
            inner = part.inject(stack, clock=handle.clock)
            parts.append(inner)
            handle.did(part.describe(), inner.revert, f"revert {part.describe()}")


def part_handle(handle: FaultHandle, index: int) -> FaultHandle:
    """The handle of `AllOf.parts[index]` inside an AllOf's handle."""
    parts = handle.scratch.get("parts")
    if not isinstance(parts, list):
        raise FaultError(f"{handle.fault.describe()} is not an AllOf")
    part = parts[index]
    assert isinstance(part, FaultHandle)
    return part
