"""One phase sequence for drills and game days.

arrange -> steady state (the ledger's first writes, the health sampler, the operator's
check) -> inject (the wall clock read before: a client fault's own requests happen
inside inject()) -> symptom -> investigate -> mitigate -> recovery -> revert -> steady
state after -> ledger verified -> verdict.

What the sequence does itself is the same for both: the health sampler and the ledger,
the fault going in and the clock starting, the events `steady`, `injected`,
`reverted`. The steps that differ are the `Operator`'s:

- the automatic operator (`drill/runner.py`, a drill) investigates by running the
  section's own diagnostics, mitigates by running the option's steps (or the harness's
  recorded fix) and awaits recovery within the budget;
- the human operator (`gameday/game.py`, a game day): the person works the incident
  from the panel or another terminal; investigation and mitigation end when they say
  "resolved" and the check confirms it, or when they abort (`investigate` returns False:
  the sequence stops there and the caller reverts the fault).
"""

from __future__ import annotations

from typing import Protocol

from runbook_checks.clock import Clock
from runbook_checks.drill.ledger import Ledger
from runbook_checks.drill.result import DrillResult
from runbook_checks.drill.sampler import HealthSampler
from runbook_checks.faults.base import Fault, FaultHandle
from runbook_checks.stack.base import Stack

# the phases in the order every drill and game day walks them
PHASES = (
    "arrange",
    "steady",
    "inject",
    "symptom",
    "investigate",
    "mitigate",
    "recovery",
    "revert",
    "steady-after",
    "ledger",
    "verdict",
)
STEADY_WRITES = 3  # acknowledged writes before the fault and after it, for the ledger


class Incident(Protocol):
    """What the sequence reads and sets of a run's context (`DrillContext`)."""

    result: DrillResult
    handle: FaultHandle | None
    injected_at: float | None  # monotonic: the clock starts once the fault is in
    injected_wall: float | None

    def event(self, name: str, detail: str = "") -> None: ...


class Operator(Protocol):
    """Who works the incident: the steps where a drill and a game day differ."""

    @property
    def ledger_interval_s(self) -> float:
        """How often the ledger writes while the fault is in."""
        ...

    def entering(self, phase: str) -> None:
        """A phase of `PHASES` begins (what a game day's panel shows)."""
        ...

    def arrange(self) -> None:
        """What the scenario sets up before anything is measured."""
        ...

    def steady(self) -> None:
        """Prove the steady state before the fault; raise when it does not hold."""
        ...

    def fault(self) -> Fault:
        """The fault to inject (the scenario's, made now if it depends on the run)."""
        ...

    def mark(self, name: str, detail: str) -> None:
        """An event of the timeline the operator keeps too (`injected`, `reverted`)."""
        ...

    def injected(self, fault: Fault) -> None:
        """The fault is in and the clock runs (the `injected` mark follows)."""
        ...

    def symptom(self) -> None:
        """The independent check that the fault took effect."""
        ...

    def investigate(self) -> bool:
        """Find the failure; False when the operator gave up (the sequence stops)."""
        ...

    def mitigate(self) -> None: ...

    def recovery(self) -> None:
        """The service recovered, or a finding says it did not."""
        ...

    def steady_after(self) -> None:
        """The service's steady state once the fault is reverted."""
        ...

    def verdict(self) -> None: ...


def walk(
    operator: Operator,
    ctx: Incident,
    stack: Stack,
    sampler: HealthSampler,
    ledger: Ledger | None,
    *,
    clock: Clock,
) -> bool:
    """Walk `PHASES` with `operator`; False when it gave up while investigating (the
    fault is then still in: `ctx.handle`, for the caller to revert)."""
    result = ctx.result
    operator.entering("arrange")
    operator.arrange()

    operator.entering("steady")
    sampler.start()
    if ledger is not None:
        for _ in range(STEADY_WRITES):
            ledger.write()
    operator.steady()
    ctx.event("steady", "steady state holds")

    operator.entering("inject")
    fault = operator.fault()
    result.fault = fault.describe()
    if ledger is not None:
        ledger.phase = "fault"
        ledger.start(interval_s=operator.ledger_interval_s)
    # output judged as detection must be written after this (a client fault's own
    # requests happen inside inject(), so the wall clock is read before it)
    ctx.injected_wall = result.injected_wall = clock.wall()
    ctx.handle = fault.inject(stack, clock=clock)
    ctx.injected_at = clock.monotonic()  # the clock starts once the fault is in
    operator.injected(fault)
    operator.mark("injected", fault.describe())

    operator.entering("symptom")
    operator.symptom()
    operator.entering("investigate")
    if not operator.investigate():
        return False
    operator.entering("mitigate")
    operator.mitigate()
    operator.entering("recovery")
    operator.recovery()

    operator.entering("revert")
    assert ctx.handle is not None
    ctx.handle.revert()
    operator.mark("reverted", "fault reverted")
    operator.entering("steady-after")
    operator.steady_after()

    operator.entering("ledger")
    if ledger is not None:
        ledger.phase = "after"
        for _ in range(STEADY_WRITES):
            ledger.write()
        result.ledger = ledger.verify()
    operator.entering("verdict")
    operator.verdict()
    return True
