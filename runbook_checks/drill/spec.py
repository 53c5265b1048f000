"""What a scenario declares: the fault, how to see it, how the runbook should fix it.

A scenario module fills a `Scenario` and hands it to `Drill.run`; the phases, timing,
ledger, findings and evidence are the runner's business, so every scenario has the same
shape and none copies another's control flow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runbook_checks.drill.runner import DrillContext
    from runbook_checks.faults.base import Fault
    from runbook_checks.steps.base import StepResult

# A check returns None when the condition holds, else a short reason why not
# (so a timeout can say what was last seen).
Check = Callable[["DrillContext"], "str | None"]
# A detector looks at one diagnostic's result and says what anomaly it shows (or None).
Detector = Callable[["StepResult", "DrillContext"], "str | None"]


@dataclass(frozen=True)
class Action:
    """Something the stack does on the runbook's behalf for a step it cannot run as
    written (a manual step, or an executable one that failed): "kubectl rollout restart"
    -> restart the API. `matches` is a regex searched in the step's text."""

    matches: str
    do: Callable[[DrillContext], str]  # returns what was done, for the journal
    why: str = ""
    also_after_success: bool = False  # run even when the executable step succeeded

    def applies_to(self, text: str) -> bool:
        return re.search(self.matches, text) is not None


@dataclass(frozen=True)
class Scenario:
    fault: Fault | Callable[[DrillContext], Fault]
    confirm: Check  # independent proof that the fault took effect (None = it did)
    detect: Detector  # does a diagnostic show it?
    title: str = ""
    arrange: Callable[[DrillContext], None] | None = None  # data set-up before steady state
    bind: Callable[[DrillContext], Mapping[str, str]] | None = None  # placeholders for steps
    actions: tuple[Action, ...] = ()
    recovered: Check | None = None  # default: /health 200 and a canary write/read
    budget_s: float | None = None  # default: the section severity's response time
    detect_steps: str = "investigation"  # or "option": diagnostics inside the option block
    step_filter: Callable[[str], bool] | None = None  # restrict which option steps run
    expect_data_loss: bool = False  # the option can lose data (restore; async failover)
    loss_note: str = ""  # why, for the data-loss-measured finding
    ledger: bool = True
    # A fix from outside the section's options (e.g. the post-mortem's "increased pool size
    # from 20 to 50"), applied after the option's steps and recorded as such; returns what
    # was done. `fix_source` quotes where the runbook mentions it.
    fix: Callable[[DrillContext], str] | None = None
    fix_source: str = ""
    confirm_timeout_s: float = 30.0
    recovery_wait_s: float | None = None  # cap on waiting for recovery (default: the drill's)
    extra: Mapping[str, object] = field(default_factory=dict)
