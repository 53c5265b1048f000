"""The record of one drill: phases with times, every step run, the ledger, findings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from runbook_checks.drill.ledger import LedgerResult
from runbook_checks.drill.sampler import Sample
from runbook_checks.gate.findings import Finding, Level


class Verdict(enum.StrEnum):
    PASSED = "passed"  # detected, recovered within budget, nothing acknowledged lost
    RUNBOOK_WRONG = "runbook-wrong"  # the runbook's own steps failed to detect or recover
    FAILED = "failed"  # the service lost acknowledged data, or recovery never came
    ERROR = "error"  # the drill itself could not run (stack, fault injection)


@dataclass(frozen=True)
class Event:
    at_s: float  # seconds since the fault was injected (negative: before)
    name: str  # "steady", "injected", "symptom", "detected", "mitigating", "recovered" ...
    detail: str = ""


@dataclass(frozen=True)
class StepRecord:
    phase: str  # investigation | mitigation | on-behalf
    line: int
    written: str  # as in the runbook
    executed: str  # after binding (redacted)
    status: str  # ok | failed | error | manual | skipped | performed
    started_s: float  # offset from injection
    duration_s: float
    output: str = ""
    detail: str = ""  # detector verdict, error, or what was done on the runbook's behalf


@dataclass
class DrillResult:
    scenario: str  # test id
    section_id: str
    section_title: str
    option: str | None
    section_hash: str
    severity: str | None
    fault: str
    budget_s: float
    title: str = ""  # the scenario's own words (what fails, what the runbook does)
    events: list[Event] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    samples_aligned: bool = False  # sample times are seconds since injection, like events
    ledger: LedgerResult | None = None
    time_to_detect_s: float | None = None
    time_to_recover_s: float | None = None
    verdict: Verdict = Verdict.ERROR
    error: str = ""
    started_wall: float = 0.0

    @property
    def runbook_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.ERROR]

    def event(self, name: str) -> Event | None:
        return next((e for e in self.events if e.name == name), None)

    def summary_line(self) -> str:
        ttd = "-" if self.time_to_detect_s is None else f"{self.time_to_detect_s:.1f}s"
        ttr = "-" if self.time_to_recover_s is None else f"{self.time_to_recover_s:.1f}s"
        lost = "-" if self.ledger is None else str(len(self.ledger.lost))
        return (
            f"{self.verdict.value:13} detect {ttd:>7}  recover {ttr:>7} / "
            f"{self.budget_s:.0f}s  lost {lost:>3}  findings {len(self.findings)}"
        )
