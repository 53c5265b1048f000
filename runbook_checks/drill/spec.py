"""What a scenario declares: the fault, how to see it, how the runbook should fix it.

A scenario module fills a `Scenario` and hands it to `Drill.run`; the phases, timing,
ledger, findings and evidence are the runner's business, so every scenario has the same
shape and none copies another's control flow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runbook_checks.drill.result import Actor

if TYPE_CHECKING:
    from runbook_checks.drill.runner import DrillContext
    from runbook_checks.faults.base import Fault
    from runbook_checks.runbook.model import Step
    from runbook_checks.steps.base import StepResult

# A check returns None when the condition holds, else a short reason why not
# (so a timeout can say what was last seen).
Check = Callable[["DrillContext"], "str | None"]
Judge = Callable[["StepResult", "DrillContext"], "str | None"]


@dataclass(frozen=True)
class Detector:
    """Does one diagnostic's result show the anomaly? (None = it does not.)

    A detector names the commands it reads (`reads`: regexes searched in a step's text,
    e.g. r"^ps\b"), so a drill can prove it is derived from the section's own steps: a
    detector part that reads no step of the section can never match, which is a defect of
    the drill, not of the runbook (`unread`). `parts` are the leaves of an `any_of`."""

    reads: tuple[str, ...]
    judge: Judge
    name: str = ""
    parts: tuple[Detector, ...] = ()

    def reads_step(self, step: Step) -> bool:
        return any(re.search(p, step.text) for p in self.reads)

    def __call__(self, result: StepResult, ctx: DrillContext) -> str | None:
        if not self.reads_step(result.step):
            return None
        return self.judge(result, ctx)

    def leaves(self) -> tuple[Detector, ...]:
        return tuple(leaf for part in self.parts for leaf in part.leaves()) or (self,)

    def unread(self, steps: Iterable[Step]) -> list[Detector]:
        """The leaves that read none of `steps` (the executable ones)."""
        runnable = [s for s in steps if s.executable]
        return [leaf for leaf in self.leaves() if not any(leaf.reads_step(s) for s in runnable)]


def reads(*patterns: str, name: str = "") -> Callable[[Judge], Detector]:
    """Make a `Detector` of a judging function that looks at the commands `patterns`."""

    def wrap(judge: Judge) -> Detector:
        return Detector(tuple(patterns), judge, name or judge.__name__)

    return wrap


@dataclass(frozen=True)
class Action:
    """What the stack does for a step of the option, and who that counts as (`by`):

    - `Actor.HARNESS` (default): the harness does it in the runbook's place, because the
      text has no usable command or value (a prose step, a truncated URL, a command that
      failed as written): the verdict becomes `assisted` with an ERROR finding naming it.
    - `Actor.RUNBOOK`: the stack carries out what the step's own text says, every value
      parsed from it (`ctx.current_step`), so a wrong value fails the drill; credited to
      the runbook only when the step itself did not fail as written.
    - `Actor.CHECK`: the harness only looks (reads data back, checks a queue).
    - `Actor.PROVIDER`: an outside party ends the fault (a provider's outage is over).

    `matches` is a regex searched in the step's text."""

    matches: str
    do: Callable[[DrillContext], str]  # returns what was done, for the journal
    why: str = ""
    also_after_success: bool = False  # run even when the executable step succeeded
    by: Actor = Actor.HARNESS

    @property
    def name(self) -> str:
        return getattr(self.do, "__name__", "action").strip("_<>")

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
    # default: the section severity's response time, counted from the injection; a
    # scenario's own budget counts from the start of the mitigation (what the option may
    # take once applied: the alert and triage stages before it are timed on their own)
    budget_s: float | None = None
    detect_steps: str = "investigation"  # or "option": diagnostics inside the option block
    step_filter: Callable[[str], bool] | None = None  # restrict which option steps run
    # lost acknowledged writes fail the drill unless the option's own text warns of data
    # loss ("Data loss possible!"); `loss_note` explains the measured loss either way
    loss_note: str = ""
    ledger: bool = True
    # A fix from outside the section's options (e.g. the post-mortem's "increased pool size
    # from 20 to 50"), applied by the harness after the option's steps: an ERROR finding
    # (fix-not-documented) and an `assisted` verdict; returns what was done.
    # `fix_source` quotes where the runbook mentions it.
    fix: Callable[[DrillContext], str] | None = None
    fix_source: str = ""
    # a scenario marked with its section but no option: the option of the section whose
    # title matches this regex is its mitigation when the runbook has one (else the
    # `fix`, or no mitigation at all); so a runbook that documents the fix is drilled by it
    mitigation: str = ""
    # what the runbook's platform lines act on (runbook_checks.drill.platform): database
    # host names a DATABASE_URL may name -> the stack's PostgreSQL components, and the
    # drill's scale for numeric settings ({"POOL_SIZE": 0.2}: 50 is applied as 10)
    database_hosts: Mapping[str, str] = field(default_factory=dict)
    setting_scale: Mapping[str, float] = field(default_factory=dict)
    confirm_timeout_s: float = 30.0
    recovery_wait_s: float | None = None  # cap on waiting for recovery (default: the drill's)
    extra: Mapping[str, object] = field(default_factory=dict)
    # the runbook section (title or id) and option this scenario drills ("" / None: not
    # said); game days draw it by them, and the test that runs it is marked with the same
    # (gameday/catalogue.py reports a scenario whose test's mark says otherwise)
    section: str = ""
    option: str | None = None
