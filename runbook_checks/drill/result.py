"""The record of one drill: phases with times, every step run, the ledger, findings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from runbook_checks.drill.ledger import LedgerResult
from runbook_checks.drill.sampler import Sample
from runbook_checks.findings import Finding, Level
from runbook_checks.monitor.triage import Observation


class Verdict(enum.StrEnum):
    """Who did the work decides the verdict: `passed` only when the runbook's own text,
    run as written, detected the failure and recovered the service."""

    PASSED = "passed"  # detected and recovered by steps run as written, nothing lost
    # the failure was external and ended by itself (a provider's outage): the runbook's
    # steps ran as written and kept data safe while it lasted, but did not end it
    RECOVERED_BY_WAITING = "recovered-by-waiting"
    ASSISTED = "assisted"  # recovery depended on the harness doing what the text could not
    RUNBOOK_WRONG = "runbook-wrong"  # the runbook's own steps failed to detect or recover
    FAILED = "failed"  # the service lost acknowledged data, or recovery never came
    ERROR = "error"  # the drill itself could not run (stack, fault injection, a drill defect)

    @property
    def earned(self) -> bool:
        """The runbook's text did the work (nothing done in its place)."""
        return self in (Verdict.PASSED, Verdict.RECOVERED_BY_WAITING)


class Actor(enum.StrEnum):
    """Who did a step of a drill."""

    RUNBOOK = "runbook"  # the runbook's text, run as written (values parsed from it)
    PERSON = "person"  # only a person can do it (post an update, tell users): recorded
    HARNESS = "harness"  # the harness did it in the runbook's place (never credited to it)
    CHECK = "check"  # the harness only looked (read back data, checked a queue)
    PROVIDER = "provider"  # an outside party ended the fault (a provider's outage ended)


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
    by: Actor = Actor.RUNBOOK  # who did it


@dataclass(frozen=True)
class AlertSeen:
    """An alert that reached the drill's webhook inbox after the injection."""

    alertname: str
    section_id: str | None  # the runbook section it points to (its runbook_section label)
    severity: str | None
    fired_s: float  # seconds from the injection to its arrival
    summary: str = ""


@dataclass
class Alerting:
    """The detect stage of one drill: which alerts fired, when, pointing where."""

    measured: bool  # False: no Prometheus/Alertmanager in the stack (note says why)
    note: str = ""
    rules: str = ""  # where the rules came from: "derived from <runbook>" or a file
    window_s: float = 0.0  # how long after the injection the drill watched for its alert
    rules_for_section: int = 0  # rules that can point to the drilled section
    time_to_alert_s: float | None = None  # injection -> the first firing alert received
    alerts: list[AlertSeen] = field(default_factory=list)
    preexisting: list[str] = field(default_factory=list)  # firing before the fault: ignored
    still_firing: list[str] = field(default_factory=list)  # after recovery and revert

    def pointing_at(self, section_id: str) -> list[AlertSeen]:
        return [a for a in self.alerts if a.section_id == section_id]


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
    injected_wall: float | None = None  # wall clock when the fault went in
    note: str = ""  # what the verdict rests on, when it is not plain (recovered by waiting)
    alerting: Alerting | None = None  # detect: None when the drill did not watch alerts
    triage: list[Observation] = field(default_factory=list)  # every section's symptoms
    # severity: the measured impact (MeasuredImpact.as_json) and the level it fits
    impact: dict[str, object] | None = None
    # communicate: each stage's status update as customers would read it (stage, name,
    # body, template and its line, posted, at_s since the injection)
    communication: list[dict[str, object]] = field(default_factory=list)
    # game day: the first alert's arrival (else the injection) -> the operator's `ack`
    acknowledged_s: float | None = None

    @property
    def time_to_alert_s(self) -> float | None:
        """Injection -> the first firing alert received (None: none, or not measured)."""
        return self.alerting.time_to_alert_s if self.alerting is not None else None

    @property
    def harness_steps(self) -> list[StepRecord]:
        """What the harness did in the runbook's place (never credited to the runbook)."""
        return [s for s in self.steps if s.by is Actor.HARNESS]

    @property
    def recovered_by(self) -> str:
        """Who ended the failure: runbook, harness, waiting (a provider), or "" (not)."""
        if self.time_to_recover_s is None:
            return ""
        if self.harness_steps:
            return "harness"
        if any(s.by is Actor.PROVIDER for s in self.steps):
            return "waiting"
        return "runbook"

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
