"""Game-day mode: a real incident on the stack, worked by people, timed against the SLA.

`runbook-checks gameday [SCENARIO]` brings the stack up, injects a scenario's fault
without saying which (unless `--reveal`), starts the clock and prints how to reach the
stack, so the on-call engineer can work through the runbook from another terminal. At
the prompt they mark `detected`, `mitigating`, `resolved` (or d / m / r), can run any
runbook command against the stack with `run LINE` (systemctl, ssh hosts and log paths
mean the stack's stand-ins there, as in the drills), and `abort`. "resolved" is checked
for real (the scenario's recovery check, or /health plus a canary write); then the fault
is reverted and the same evidence as a drill is written, with the human times against
the severity's response time. Ctrl-C reverts the fault and stops everything.

The panel shows what an on-call engineer sees: the alerts firing in the stack's
Prometheus (name, summary, since when), never the hidden scenario's severity or SLA
(they give the answer away; they are shown once resolved, or with `--reveal`). `ack`
records the time to acknowledge (from the first alert's arrival, or from the injection
when none fired). `post STAGE [words]` fills the runbook's status template for that
stage with the game day's facts (the words: what was found), shows what customers will
read, and posts it to a local status page (a Statuspage-shaped stand-in the game day
starts). The runbook's update cadence and escalation rules come due against the clock
and are said once each. Alerts, the acknowledgement, the posts and the reminders are
events of the evidence; the posts are steps done by a person, with the text posted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import random
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.drill.ledger import Ledger, LedgerEntry
from runbook_checks.drill.phases import walk
from runbook_checks.drill.result import (
    Actor,
    Alerting,
    AlertSeen,
    DrillResult,
    Event,
    StepRecord,
    Verdict,
)
from runbook_checks.drill.runner import DrillContext, DrillSession, health_and_canary
from runbook_checks.drill.sampler import HealthSampler, Sample
from runbook_checks.errors import UsageError
from runbook_checks.evidence.bundle import new_journal, write_bundle
from runbook_checks.evidence.journal import ScenarioRecord, environment_for
from runbook_checks.evidence.text import seconds
from runbook_checks.faults.base import Fault
from runbook_checks.findings import Finding, Level
from runbook_checks.gameday.catalogue import Catalogue, CatalogueEntry, runbook_catalogue
from runbook_checks.monitor.cadence import CommunicationRules, due_reminders, rules_for
from runbook_checks.monitor.communicate import (
    STAGES,
    CommunicationRecord,
    FilledTemplate,
    IncidentFacts,
    feature_for,
    fill,
    impact_for,
    template_findings,
    template_section,
    templates_for,
)
from runbook_checks.monitor.statuspage import (
    PostedUpdate,
    StatusPageClient,
    StatusPageError,
    StatusPageServer,
)
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook, Section, Step
from runbook_checks.stack.base import stack_redactor
from runbook_checks.vocabulary import Vocabulary

if TYPE_CHECKING:
    from rich.console import Console as RichConsole
    from rich.console import RenderableType

    from runbook_checks.config import ChecksConfig
    from runbook_checks.stack.base import Stack

DEFAULT_SLA_S = 15 * 60.0
COMMANDS = {
    "d": "detected", "detected": "detected", "detect": "detected",
    "m": "mitigating", "mitigating": "mitigating", "mitigate": "mitigating",
    "r": "resolved", "resolved": "resolved", "resolve": "resolved",
    "abort": "abort", "q": "abort", "quit": "abort",
    "s": "status", "status": "status", "?": "help", "h": "help", "help": "help",
    "a": "ack", "ack": "ack", "acknowledge": "ack",
}  # fmt: skip
HELP = (
    "d / detected · m / mitigating · r / resolved (recovery is then checked) · "
    "a / ack · post STAGE [what you know] (investigating|identified|monitoring|resolved) · "
    "run LINE (a runbook command, by its line) · status · abort"
)
NO_ALERTING = "no alerting in this stack (time-to-alert not measured)"
ALERT_POLL_S = 2.0  # how often Prometheus' active alerts are read for the panel


# -- the operator's side ------------------------------------------------------------------


@dataclass
class GameDayState:
    """What the live view shows: only what the operator may see."""

    scenario: str  # "hidden" unless revealed
    severity: str  # "hidden" unless revealed (or resolved)
    sla_s: float | None  # None while hidden: the SLA would name the severity
    phase: str = "starting"
    injected_at: float | None = None  # monotonic
    stopped_at: float | None = None  # monotonic: the clock stops once recovery is verified
    marks: dict[str, float] = field(default_factory=dict)  # event -> seconds since injection
    health: str = "-"
    ledger: str = "-"
    alerts: list[str] = field(default_factory=list)  # as the panel lists them
    last: str = ""  # the last thing that happened, in words


class Console(Protocol):
    """The terminal of the person at the prompt: shows state, reads one command at a
    time (the game day's operator, drill/phases.py, works the incident through it)."""

    def show(self, state: GameDayState) -> None: ...

    def say(self, text: str) -> None: ...

    def command(self, timeout_s: float) -> str | None:
        """The next line typed, or None when nothing was typed within `timeout_s`."""
        ...


# -- what the on-call engineer sees and says ----------------------------------------------


class AlertView(Protocol):
    """An active alert as Prometheus lists it (`stack.monitoring.firing()`)."""

    @property
    def alertname(self) -> str: ...
    @property
    def state(self) -> str: ...  # "pending" | "firing"
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def active_at(self) -> object: ...  # RFC 3339 text (or a wall time)


class NotificationView(Protocol):
    """An alert Alertmanager delivered to the stack's inbox."""

    @property
    def received_mono(self) -> float: ...  # on the clock the game day's T+ is read on
    @property
    def status(self) -> str: ...  # "firing" | "resolved"
    @property
    def alertname(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...  # severity, runbook_section (derived rules)
    @property
    def annotations(self) -> Mapping[str, str]: ...

    def began_after(self, wall: float) -> bool: ...  # the alert began firing since `wall`


class InboxView(Protocol):
    def notifications(self) -> Sequence[NotificationView]: ...


class MonitoringView(Protocol):
    """What a game day reads of `stack.monitoring` (runbook_checks.stack.monitoring)."""

    @property
    def inbox(self) -> InboxView: ...

    def firing(self) -> Sequence[AlertView]: ...


def _wall(value: object) -> float | None:
    """A wall time from a number, a datetime or RFC 3339 text (Prometheus' activeAt;
    its nine digits of fraction are read to the microsecond)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def measured_impact(
    entries: Sequence[LedgerEntry], samples: Sequence[Sample], since_s: float
) -> tuple[str, float | None]:
    """What users experience since the injection, in words, and the share failing:
    the ledger's uploads during the fault, else the health checks after `since_s` (on
    the sampler's axis)."""
    uploads = [e for e in entries if e.phase == "fault"]
    checks = [s for s in samples if s.at_s >= since_s]
    parts: list[str] = []
    share: float | None = None
    if uploads:
        failed = sum(1 for e in uploads if not e.upload.acknowledged)
        share = failed / len(uploads)
        if failed:
            parts.append(f"uploads fail ({share:.0%} of {len(uploads)} uploads)")
    if checks:
        down = sum(1 for s in checks if not s.ok)
        if share is None:
            share = down / len(checks)
        if down:
            parts.append(f"the service does not answer ({down / len(checks):.0%} of checks)")
    return ("; ".join(parts) or "no failures measured so far"), share


class OnCall:
    """The on-call engineer's side of a game day: alerts, acknowledgement, status updates,
    the runbook's reminders. Everything said goes through `say`; everything done is
    recorded in `result` (events; posts as steps done by a person)."""

    def __init__(
        self,
        runbook: Runbook,
        section: Section,
        result: DrillResult,
        *,
        say: Callable[[str], None],
        clock: Clock,
        monitoring: MonitoringView | None,
        no_monitoring: str = "",
        reveal: bool = False,
        revealed_issue: str = "",
        source: str = "gameday",
        alert_poll_s: float = ALERT_POLL_S,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.runbook = runbook
        self.vocabulary = vocabulary  # the service's words for its parts (status updates)
        self.section = section
        self.result = result
        self.say = say
        self.clock = clock
        self.monitoring = monitoring
        self.no_monitoring = no_monitoring
        self.revealed = reveal
        self.revealed_issue = revealed_issue
        self.source = source
        self.alert_poll_s = alert_poll_s
        self.page: StatusPageClient | None = None
        self.injected_mono: float | None = None
        self.injected_wall: float | None = None  # taken before the fault acted
        self.t0_wall: float | None = None  # T+0 (the monotonic mark, after it acted)
        self.alerts_seen: dict[str, AlertSeen] = {}  # by alertname, the first arrival
        self.active: list[str] = []  # the panel's lines for the active alerts
        self._polled: float | None = None
        self.issue: str | None = None  # the operator's words: what users report
        self.root_cause: str | None = None  # the operator's words: what was found
        self.filled: list[FilledTemplate] = []
        self.posted: list[PostedUpdate] = []
        self.posts: list[tuple[str, float]] = []  # (stage, seconds since injection)
        self.reminded: dict[str, float] = {}  # reminder key -> when it was said
        self.rules = self._rules()

    # -- what the runbook says ------------------------------------------------------------
    def _section_id(self) -> str | None:
        """The section whose templates are used: the scenario's once revealed; while
        hidden, the general ones only (the section's own would name the scenario)."""
        return self.section.id if self.revealed else None

    def _rules(self) -> CommunicationRules:
        try:
            return rules_for(self.runbook, self._section_id())
        except (OSError, UsageError):
            return CommunicationRules()  # a runbook not read from a file: none to remind

    def reveal(self) -> None:
        self.revealed = True
        self.rules = self._rules()

    # -- the clock ------------------------------------------------------------------------
    def start(self, injected_mono: float, injected_wall: float) -> None:
        """`injected_wall` is taken before the fault acts (an alert that began since then
        is the incident's); every T+ counts from `injected_mono`, taken after it acted,
        whose wall time is kept as `t0_wall` for converting wall times to T+ and back."""
        self.injected_mono, self.injected_wall = injected_mono, injected_wall
        self.t0_wall = self.clock.wall() - (self.clock.monotonic() - injected_mono)

    def since(self) -> float:
        return 0.0 if self.injected_mono is None else self.clock.monotonic() - self.injected_mono

    # -- alerts ---------------------------------------------------------------------------
    def watch(self, affected_share: float | None = None) -> None:
        """Alerts that arrived, the panel's active alerts, reminders now due."""
        if self.injected_wall is None:
            return
        self._arrivals(self.injected_wall)
        self._poll_active()
        self._remind(affected_share)

    def _arrivals(self, injected_wall: float) -> None:
        if self.monitoring is None:
            return
        for note in self.monitoring.inbox.notifications():
            if note.status != "firing" or not note.began_after(injected_wall):
                continue  # resolved, or firing since before the fault (not this incident)
            if note.alertname in self.alerts_seen:
                continue
            # T+ on the monotonic clock, as the acknowledgement and every other mark: the
            # wall mark is taken before the fault acts and the monotonic one after, so
            # the wall difference would run ahead by the injection's duration (an alert
            # acknowledged within that time was "not arrived yet")
            assert self.injected_mono is not None
            at = round(max(0.0, note.received_mono - self.injected_mono), 3)
            summary = note.annotations.get("summary", "")
            self.alerts_seen[note.alertname] = AlertSeen(
                alertname=note.alertname,
                section_id=note.labels.get("runbook_section"),
                severity=note.labels.get("severity"),
                fired_s=at,
                summary=summary,
            )
            self.result.events.append(
                Event(at, "alert", f"{note.alertname}" + (f": {summary}" if summary else ""))
            )
            self.say(f"ALERT {note.alertname} firing" + (f": {summary}" if summary else ""))

    def _poll_active(self) -> None:
        now = self.clock.monotonic()
        if self.monitoring is None or (
            self._polled is not None and now - self._polled < self.alert_poll_s
        ):
            return
        self._polled = now
        try:
            active = self.monitoring.firing()
        except Exception as exc:  # Prometheus not answering: say so, keep going
            self.active = [f"(alerts unknown: {type(exc).__name__}: {str(exc)[:120]})"]
            return
        self.active = [self._line(alert) for alert in active]

    def _line(self, alert: AlertView) -> str:
        summary = alert.annotations.get("summary", "")
        since = _wall(alert.active_at)
        when = ""
        if since is not None and self.t0_wall is not None:
            offset = since - self.t0_wall
            when = f" since T{'+' if offset >= 0 else '-'}{seconds(abs(offset))}"
        state = "" if alert.state == "firing" else f" ({alert.state})"
        return f"{alert.alertname}{state}" + (f": {summary}" if summary else "") + when

    @property
    def first_alert(self) -> AlertSeen | None:
        return min(self.alerts_seen.values(), key=lambda a: a.fired_s, default=None)

    def alerting(self, rules: str = "") -> Alerting:
        """The detect stage as drills record it: the alerts that arrived, time-to-alert."""
        if self.monitoring is None:
            why = self.no_monitoring or "no Prometheus"
            return Alerting(measured=False, note=f"time-to-alert not measured: {why}")
        first = self.first_alert
        return Alerting(
            measured=True,
            rules=rules,
            time_to_alert_s=first.fired_s if first is not None else None,
            alerts=sorted(self.alerts_seen.values(), key=lambda a: a.fired_s),
        )

    def alert_lines(self) -> list[str]:
        if self.monitoring is None:
            return [NO_ALERTING + (f": {self.no_monitoring}" if self.no_monitoring else "")]
        return self.active or ["none firing"]

    # -- acknowledge ----------------------------------------------------------------------
    def ack(self) -> None:
        at = self.since()
        if self.result.acknowledged_s is not None:
            took = self.result.acknowledged_s
            self.say(f"already acknowledged ({seconds(took)} to acknowledge)")
            return
        first = self.first_alert
        if first is not None and first.fired_s <= at:
            took = at - first.fired_s
            detail = (
                f"{seconds(took)} after the first alert "
                f"({first.alertname} at T+{seconds(first.fired_s)})"
            )
        else:
            took = at
            detail = f"{seconds(took)} after the injection (no alert had arrived)"
        self.result.acknowledged_s = round(took, 3)
        self.result.events.append(Event(round(at, 3), "acknowledged", detail))
        self.say(f"acknowledged at T+{seconds(at)}: {detail}")

    # -- status updates -------------------------------------------------------------------
    def _feature(self) -> str:
        """What customers call the part that failed (the whole service until revealed)."""
        if self.vocabulary is None:
            return "the service"
        if not self.revealed:
            return self.vocabulary.customer_name
        return feature_for(self.section.title, self.vocabulary)

    def facts(self, impact: str, marks: Mapping[str, float]) -> IncidentFacts:
        start = self.injected_wall if self.injected_wall is not None else self.clock.wall()
        t0 = self.t0_wall if self.t0_wall is not None else start

        def wall(mark: str) -> float | None:
            return t0 + marks[mark] if mark in marks else None

        first = self.first_alert
        hidden_issue = "errors" if first is None else f"{first.alertname} alerts"
        return IncidentFacts(
            section_id=self.section.id,
            section_title=self.section.title if self.revealed else "",
            severity=self.section.severity if self.revealed else None,
            feature=self._feature(),
            issue=self.issue or (self.revealed_issue if self.revealed else hidden_issue),
            impact=impact,
            started_wall=start,
            detected_wall=wall("detected"),
            recovered_wall=wall("recovered"),
            root_cause=self.root_cause,
            fix=None,
        )

    def post(self, words: str, impact: str, marks: Mapping[str, float]) -> None:
        stage_word, _, what = words.strip().partition(" ")
        stages = [s for s in STAGES if stage_word and s.startswith(stage_word.lower())]
        if len(stages) != 1:
            self.say(f"post what? post STAGE [what you know], STAGE one of {', '.join(STAGES)}")
            return
        stage, what = stages[0], " ".join(what.split())
        template = templates_for(self.runbook, self._section_id()).get(stage)
        if template is None:
            self.say(
                f"the runbook has no {stage} template"
                + ("" if self.revealed else " for any incident (a section's own would name it)")
            )
            return
        if what and stage == "investigating":
            self.issue = what
        elif what:
            self.root_cause = what
        at, now = self.since(), self.clock.wall()
        text = fill(
            template,
            stage,
            self.facts(impact, marks),
            now_wall=now,
            section_id=template_section(self.runbook, template),
        )
        self.say(
            f"customers will read (the runbook's {template.title!r} template, line "
            f"{template.line}):\n" + "\n".join(f"    {line}" for line in text.text.split("\n"))
        )
        for label, items in (
            ("mis-encoded, as the runbook has it", text.mis_encoded),
            ("not filled by any fact", text.unfilled),
            ("written for another incident", text.stale),
        ):
            if items:
                self.say(f"  note: {label}: " + ", ".join(f"'{i}'" for i in items))
        status, detail = "ok", "posted to the status page"
        if self.page is None:
            status, detail = "manual", "no status page in this game day: shown only"
        else:
            try:
                # while hidden the impact is left to the page: the severity would name it
                impact_level = impact_for(self.section.severity) if self.revealed else ""
                self.posted.append(self.page.post(stage, text.name, text.body, impact_level))
            except StatusPageError as exc:
                status, detail = "failed", exc.message
        self.filled.append(text)
        self.posts.append((stage, at))
        self.result.communication.append(  # as drills keep it (DrillResult.communication)
            {
                "stage": stage,
                "name": text.name,
                "body": text.body,
                "template": template.title,
                "line": template.line,
                "posted": status == "ok",
                "at_s": round(at, 3),
            }
        )
        self.result.steps.append(
            StepRecord(
                phase="communication",
                line=template.line,
                written=f"{template.title} ({stage})",
                executed=text.text,
                status=status,
                started_s=round(at, 3),
                duration_s=round(self.since() - at, 3),
                output=text.text,
                detail=detail,
                by=Actor.PERSON,
            )
        )
        self.result.events.append(Event(round(at, 3), "posted", f"{stage}: {text.name}"))
        self.say(f"{stage} update: {detail} at T+{seconds(at)}")

    def has_posted(self, stage: str) -> bool:
        return any(posted == stage for posted, _ in self.posts)

    # -- reminders ------------------------------------------------------------------------
    def _remind(self, affected_share: float | None) -> None:
        at = self.since()
        for reminder in due_reminders(
            self.rules,
            at,
            affected_share=affected_share,
            root_cause_known=self.root_cause is not None,
            posts=self.posts,
        ):
            if reminder.key in self.reminded:
                continue
            self.reminded[reminder.key] = at
            self.result.events.append(Event(round(at, 3), "reminder", reminder.message))
            self.say(reminder.message)

    # -- the runbook's text, judged by what was posted --------------------------------------
    def findings(self, impact: str, marks: Mapping[str, float]) -> list[Finding]:
        if not self.filled:
            return []
        record = CommunicationRecord(
            self.facts(impact, marks), tuple(self.filled), tuple(self.posted)
        )
        return template_findings(record, source=self.source)


# -- one game day -------------------------------------------------------------------------


def sla_for(runbook: Runbook, severity: str | None) -> float:
    level = runbook.severity(severity or "")
    if level is not None and level.response_seconds:
        return level.response_seconds
    return DEFAULT_SLA_S


def find_step(runbook: Runbook, ref: str) -> Step:
    """A runbook command by its line ("100") or its text (whole, else a unique part)."""
    steps = [
        s
        for section in runbook.sections
        for s in (
            *section.investigation,
            *(st for o in section.options for st in o.steps),
            *section.other_steps,
        )
    ]
    unique = {(s.line, s.text): s for s in steps}.values()
    if ref.strip().isdigit():
        line = int(ref)
        found = [s for s in unique if s.line == line]
        if found:
            return found[0]
        raise UsageError(
            f"no runbook command starts on line {line}",
            hint="give the line a command starts on (as your editor shows it)",
        )
    text = " ".join(ref.split())
    exact = [s for s in unique if " ".join(s.text.split()) == text]
    partial = exact or [s for s in unique if text in " ".join(s.text.split())]
    if len(partial) == 1:
        return partial[0]
    raise UsageError(
        f"{'several' if partial else 'no'} runbook commands match {ref!r}"
        + (": lines " + ", ".join(str(s.line) for s in partial) if partial else ""),
        hint="give its line number instead",
    )


class GameDay:
    """Runs one game day on a running stack; `run()` returns the scenario's record."""

    def __init__(
        self,
        entry: CatalogueEntry,
        stack: Stack,
        runbook: Runbook,
        operator: Console,
        *,
        work_dir: Path,
        reveal: bool = False,
        operator_name: str = "",
        clock: Clock = SYSTEM_CLOCK,
        poll_s: float = 0.25,
        alert_rules: str = "",
    ) -> None:
        """`alert_rules`: where the stack's Prometheus got its rules, for the evidence."""
        self.entry = entry
        self.stack = stack
        self.runbook = runbook
        self.operator = operator
        self.work_dir = work_dir
        self.reveal = reveal
        self.operator_name = operator_name
        self.clock = clock
        self.poll_s = poll_s
        self.alert_rules = alert_rules
        self._symptom_done = False
        self.section = runbook.section(entry.section)
        self.option = self.section.option(entry.option) if entry.option else None
        self.sla_s = sla_for(runbook, self.section.severity)
        self.redactor = stack_redactor(stack.endpoints)
        self.state = GameDayState(
            scenario=(entry.title if reveal else "hidden (the fault is for you to find)"),
            severity=(self.section.severity or "-") if reveal else "hidden",
            sla_s=self.sla_s if reveal else None,
        )
        self.result = DrillResult(
            scenario=f"gameday:{entry.name}",
            section_id=self.section.id,
            section_title=self.section.title,
            option=self.option.key if self.option else None,
            section_hash=self.section.content_hash,
            severity=self.section.severity,
            fault="",
            budget_s=self.sla_s,
            started_wall=clock.wall(),
        )
        self.oncall = OnCall(
            runbook,
            self.section,
            self.result,
            say=operator.say,
            clock=clock,
            monitoring=stack.monitoring,
            no_monitoring=stack.monitoring_missing,
            reveal=reveal,
            revealed_issue=entry.title.split(";")[0].strip(),
            source=f"gameday:{entry.name}",
            vocabulary=stack.kit.vocabulary,
        )
        self.status_page: StatusPageServer | None = None

    # -- helpers --------------------------------------------------------------------------
    def _event(self, ctx: DrillContext, name: str, detail: str = "") -> None:
        ctx.event(name, detail)
        self.state.marks[name] = ctx.since_inject()

    def _refresh(self, ctx: DrillContext, sampler: HealthSampler, ledger: Ledger) -> None:
        if sampler.samples:
            last = sampler.samples[-1]
            self.state.health = f"{last.status or 'no answer'} ({last.latency_ms:.0f} ms)" + (
                f" {last.error}" if last.error else ""
            )
        acked = sum(1 for e in list(ledger.entries) if e.upload.acknowledged)
        self.state.ledger = f"{acked} of {len(ledger.entries)} writes acknowledged"
        self.state.alerts = self.oncall.alert_lines()
        self.operator.show(self.state)

    def _impact(
        self, ctx: DrillContext, sampler: HealthSampler, ledger: Ledger
    ) -> tuple[str, float | None]:
        """What users experience since the injection (uploads, health checks)."""
        injected = ctx.injected_at if ctx.injected_at is not None else self.clock.monotonic()
        since = injected - sampler.started
        return measured_impact(list(ledger.entries), list(sampler.samples), since)

    def _reveal(self) -> None:
        """Once resolved (or aborted): what was hidden may be shown."""
        self.state.scenario = self.entry.title
        self.state.severity = self.section.severity or "-"
        self.state.sla_s = self.sla_s
        self.oncall.reveal()

    def _check(self, ctx: DrillContext) -> str | None:
        check = self.entry.scenario.recovered or health_and_canary
        return check(ctx)

    # -- the run --------------------------------------------------------------------------
    def run(self) -> ScenarioRecord:
        # a person may run any of the runbook's aws commands: the control plane is up by
        # then, not started by their first one inside the incident's clock
        self.stack.prepare("aws")
        with (
            StatusPageServer(clock=self.clock) as page,
            page.client() as client,
            DrillSession.open(
                self.stack, self.result, clock=self.clock, sample_interval_s=0.5
            ) as session,
        ):
            self.status_page, self.oncall.page = page, client
            self.operator.say(
                f"status page (a local stand-in): {page.url}/v1/pages/{page.page_id}/incidents"
            )
            self._run_in(session)
            self.oncall.page = None
        return ScenarioRecord(
            result=self.result,
            outcome="gameday",
            outcome_reason=self.result.error,
            samples_aligned=True,
            operator=self.operator_name,
        )

    def _run_in(self, session: DrillSession) -> None:
        result = self.result
        ctx: DrillContext | None = None
        try:
            ctx = session.begin(
                self.runbook,
                self.section,
                self.option,
                self.work_dir,
                self.clock,
                who="gameday",
                ledger={"max_writes": 1200},
            )
            self.redactor = self.redactor.merged(Redactor(frozenset({ctx.user.token})))
            assert session.ledger is not None
            operator = HumanOperator(self, ctx, session.sampler, session.ledger)
            walk(operator, ctx, self.stack, session.sampler, session.ledger, clock=self.clock)
            impact, _ = self._impact(ctx, session.sampler, session.ledger)
            result.findings.extend(self.oncall.findings(impact, self.state.marks))
            result.alerting = self.oncall.alerting(self.alert_rules)
        except Exception as exc:
            result.verdict = Verdict.ERROR
            result.error = f"{type(exc).__name__}: {exc}"
            self.operator.say(f"the game day could not go on: {result.error}")
        finally:
            # an abort leaves the fault in for this, and so does Ctrl-C
            handle = ctx.handle if ctx is not None else None
            if handle is not None and handle.active:
                self.operator.say("reverting the fault ...")
                try:
                    handle.revert()
                    if ctx is not None:
                        self._event(ctx, "reverted", "fault reverted")
                except Exception as exc:  # say so: the stack is stopped next anyway
                    self.operator.say(f"reverting the fault failed: {exc}")

    def _epilogue(self, ctx: DrillContext, sampler: HealthSampler, ledger: Ledger) -> None:
        """After the verified recovery: the resolved update, if not posted yet."""
        if self.oncall.has_posted("resolved"):
            return
        self.state.phase = "resolved: post the resolved update, or press Enter to finish"
        self.operator.say(
            "post the resolved update (post resolved [root cause]), or press Enter to finish"
        )
        while True:
            self._refresh(ctx, sampler, ledger)
            line = self.operator.command(self.poll_s)
            if line is None:
                continue
            words = line.strip().split(maxsplit=1)
            if not words or COMMANDS.get(words[0].lower()) == "abort" or words[0] == "done":
                return
            if words[0].lower() != "post":
                self.operator.say("post STAGE [words], or Enter to finish")
                continue
            self._post(ctx, sampler, ledger, words)
            if self.oncall.has_posted("resolved"):
                return

    def _post(
        self, ctx: DrillContext, sampler: HealthSampler, ledger: Ledger, words: list[str]
    ) -> None:
        impact, _ = self._impact(ctx, sampler, ledger)
        self.oncall.post(words[1] if len(words) > 1 else "", impact, self.state.marks)

    def _watch_symptom(self, ctx: DrillContext) -> None:
        """The scenario's own proof that the fault took effect, checked quietly while the
        operator works (an event in the evidence; not shown unless revealed)."""
        if self._symptom_done:
            return
        scenario = self.entry.scenario
        if scenario.confirm(ctx) is None:  # None: the fault is in effect
            self._symptom_done = True
            ctx.event("symptom", "fault in effect (independent check)")
            if self.reveal:
                self.operator.say("the fault is in effect (independent check)")
        elif ctx.since_inject() > scenario.confirm_timeout_s:
            self._symptom_done = True
            ctx.event("symptom", "the fault's effect was not confirmed in time")

    def _prompt(self, ctx: DrillContext, sampler: HealthSampler, ledger: Ledger) -> bool:
        """The operator's loop; True once "resolved" is confirmed by a real check."""
        self.operator.say(HELP)
        while True:
            self._watch_symptom(ctx)
            self.oncall.watch(self._impact(ctx, sampler, ledger)[1])
            self._refresh(ctx, sampler, ledger)
            line = self.operator.command(self.poll_s)
            if line is None:
                continue
            words = line.strip().split(maxsplit=1)
            if not words:
                continue
            if words[0].lower() == "run":
                self._run(ctx, words[1] if len(words) > 1 else "")
                continue
            if words[0].lower() == "post":
                self._post(ctx, sampler, ledger, words)
                continue
            command = COMMANDS.get(words[0].lower())
            at = ctx.since_inject()
            if command is None:
                self.operator.say(f"unknown command {line.strip()!r}; {HELP}")
            elif command == "help":
                self.operator.say(HELP)
            elif command == "status":
                self.operator.say(
                    f"T+{seconds(at)}: /health {self.state.health}; {self.state.ledger}; "
                    f"alerts: {'; '.join(self.oncall.alert_lines())}"
                )
            elif command == "ack":
                self.oncall.ack()
            elif command == "abort":
                self._event(ctx, "aborted", f"by {self.operator_name or 'the operator'}")
                return False
            elif command in ("detected", "mitigating"):
                if command in self.state.marks:
                    self.operator.say(
                        f"{command} was already marked at T+{seconds(self.state.marks[command])}"
                    )
                    continue
                self._event(ctx, command, f"marked by {self.operator_name or 'the operator'}")
                if command == "detected":
                    self.result.time_to_detect_s = round(at, 3)
                self.operator.say(f"{command} at T+{seconds(at)}")
            elif self._resolved(ctx, at):
                return True

    def _resolved(self, ctx: DrillContext, at: float) -> bool:
        self.state.phase = "checking recovery"
        self.state.last = "checking recovery for real ..."
        self.operator.show(self.state)
        began = ctx.since_inject()
        try:
            wait_until(
                lambda: self._check(ctx) is None or None,
                what="recovery",
                timeout_s=10,
                interval_s=0.25,
                clock=self.clock,
            )
        except WaitTimeout as exc:
            detail = f"not recovered: {exc.last}"
            ctx.record("verification", "resolved?", "failed", detail, by=Actor.CHECK)
            self.operator.say(f"T+{seconds(at)}: {detail}. The incident stays open.")
            self.state.phase = "incident open: work it through the runbook"
            return False
        now = ctx.since_inject()
        ctx.record(
            "verification",
            "resolved?",
            "ok",
            by=Actor.CHECK,
            detail="recovery confirmed ("
            + (
                "the scenario's check"
                if self.entry.scenario.recovered
                else "/health 200 and a canary write read back"
            )
            + ")",
        )
        self.result.steps[-1] = replace(
            self.result.steps[-1], started_s=began, duration_s=round(now - began, 3)
        )
        if "detected" not in self.state.marks:
            self.result.time_to_detect_s = round(at, 3)
            self._event(ctx, "detected", "implied by resolved")
        self.result.events.append(
            Event(round(at, 3), "resolved", f"marked by {self.operator_name or 'the operator'}")
        )
        self.state.marks["resolved"] = at
        self.state.stopped_at = self.clock.monotonic()
        self.result.time_to_recover_s = round(now, 3)
        self._event(ctx, "recovered", "verified")
        self.operator.say(
            f"resolved at T+{seconds(at)}; recovery verified at "
            f"T+{seconds(now)} (SLA {seconds(self.sla_s)})"
        )
        return True

    def _run(self, ctx: DrillContext, ref: str) -> None:
        try:
            step = find_step(self.runbook, ref)
        except UsageError as exc:
            self.operator.say(f"run: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
            return
        if not step.executable:
            self.operator.say(f"line {step.line} is a manual step here: {step.manual_reason}")
            ctx.record(
                "operator", step.text, "manual", step.manual_reason, step.line, by=Actor.PERSON
            )
            return
        self.operator.say(f"running line {step.line}: {step.text}")
        outcome = ctx.run_step(step, "operator")
        text = self.redactor.text(outcome.output or outcome.error or "")
        self.operator.say(
            f"line {step.line}: {outcome.status.value}" + (f"\n{text[-1200:]}" if text else "")
        )

    def _verdict(self, ctx: DrillContext) -> None:
        result = self.result
        ledger = result.ledger
        if ledger is not None and ledger.lost:
            result.verdict = Verdict.FAILED
            result.error = f"acknowledged uploads lost: {ledger.summary()}"
            return
        ttr = result.time_to_recover_s
        if ttr is not None and ttr > self.sla_s:
            result.verdict = Verdict.FAILED
            result.error = (
                f"resolved after {seconds(ttr)}, over the {result.severity} "
                f"response time of {seconds(self.sla_s)}"
            )
            result.findings.append(
                Finding(
                    Level.ERROR,
                    "recovery-over-sla",
                    self.section.id,
                    result.error,
                    suggestion="find the step that took longest in the timeline and make the "
                    "runbook say it sooner or more plainly",
                    source=f"gameday:{self.entry.name}",
                )
            )
            return
        result.verdict = Verdict.PASSED


# what the panel says while the sequence walks a phase the person does not work
_SHOWN = {"arrange": "proving the steady state", "revert": "reverting the fault"}


@dataclass
class HumanOperator:
    """The game day's operator (drill/phases.py): the person works the incident from the
    panel or another terminal; investigation and mitigation end when they say "resolved"
    and the check confirms it (`GameDay._prompt`, `_resolved`), or when they abort. The
    symptom is watched quietly meanwhile, never awaited."""

    day: GameDay
    ctx: DrillContext
    sampler: HealthSampler
    ledger: Ledger
    ledger_interval_s: float = 1.0

    def entering(self, phase: str) -> None:
        shown = _SHOWN.get(phase)
        if shown is not None:
            self.day.state.phase = shown
            self.day.operator.show(self.day.state)

    def arrange(self) -> None:
        if self.day.entry.scenario.arrange is not None:
            self.day.entry.scenario.arrange(self.ctx)

    def _steady(self, what: str, timeout_s: float) -> None:
        wait_until(
            lambda: self.day._check(self.ctx) is None or None,
            what=what,
            timeout_s=timeout_s,
            interval_s=0.2,
            clock=self.day.clock,
        )

    def steady(self) -> None:
        self._steady("the steady state before the fault", 30)

    def fault(self) -> Fault:
        fault = self.day.entry.scenario.fault
        return fault if isinstance(fault, Fault) else fault(self.ctx)

    def mark(self, name: str, detail: str) -> None:
        self.day._event(self.ctx, name, detail)

    def injected(self, fault: Fault) -> None:
        day, ctx = self.day, self.ctx
        assert ctx.injected_at is not None
        assert ctx.injected_wall is not None
        day.result.started_wall = ctx.injected_wall
        day.state.injected_at = ctx.injected_at
        day.oncall.start(ctx.injected_at, ctx.injected_wall)
        day.state.phase = "incident open: work it through the runbook"
        day.operator.say(
            "the fault is in; the clock runs."
            + (f" Injected: {fault.describe()}" if day.reveal else "")
        )

    def symptom(self) -> None:
        return None  # checked quietly while the person works (GameDay._watch_symptom)

    def investigate(self) -> bool:
        day, ctx = self.day, self.ctx
        resolved = day._prompt(ctx, self.sampler, self.ledger)
        day._reveal()
        if resolved:
            return True
        result = day.result
        result.verdict = Verdict.FAILED
        result.error = f"aborted by the operator after {seconds(ctx.since_inject())}"
        result.findings.append(
            Finding(
                Level.ERROR,
                "gameday-aborted",
                day.section.id,
                result.error,
                suggestion="review the timeline: where did the runbook stop helping?",
                source=f"gameday:{day.entry.name}",
            )
        )
        return False

    def mitigate(self) -> None:
        return None  # the person mitigated before saying "resolved" (their `mitigating` mark)

    def recovery(self) -> None:
        return None  # "resolved" was confirmed by the recovery check (GameDay._resolved)

    def steady_after(self) -> None:
        self._steady("the steady state after reverting the fault", 60)

    def verdict(self) -> None:
        self.day._verdict(self.ctx)
        self.day._epilogue(self.ctx, self.sampler, self.ledger)


# -- the terminal -------------------------------------------------------------------------


class TerminalOperator:
    """rich live view with the prompt inside it (the terminal in cbreak mode, our own
    echo), or plain lines when stdin is not a terminal."""

    def __init__(
        self, console: RichConsole, stream: TextIO = sys.stdin, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.console = console
        self.stream = stream
        self.clock = clock
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.buffer = ""
        self.state: GameDayState | None = None
        self.interactive = stream.isatty() and console.is_terminal
        self._live: object | None = None
        self._saved: list[Any] | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[TerminalOperator]:
        from rich.live import Live

        reader = threading.Thread(target=self._read, name="gameday-input", daemon=True)
        if self.interactive:
            import termios
            import tty

            fd = self.stream.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            try:
                with Live(
                    self._render(),
                    console=self.console,
                    refresh_per_second=2,
                    get_renderable=self._render,
                    transient=False,
                ) as live:
                    self._live = live
                    reader.start()
                    yield self
            finally:
                self._live = None
                termios.tcsetattr(fd, termios.TCSADRAIN, self._saved)
        else:
            reader.start()
            yield self

    def _read(self) -> None:
        if not self.interactive:
            for line in self.stream:
                self.lines.put(line.rstrip("\n"))
            self.lines.put(None)
            return
        fd = self.stream.fileno()
        while True:
            try:
                data = os.read(fd, 1)
            except OSError:
                self.lines.put(None)
                return
            if not data:
                self.lines.put(None)
                return
            char = data.decode(errors="replace")
            if char in "\r\n":
                line, self.buffer = self.buffer, ""
                self.lines.put(line)
            elif char in "\x7f\b":
                self.buffer = self.buffer[:-1]
            elif char == "\x04":  # Ctrl-D
                self.lines.put(None)
                return
            elif char.isprintable():
                self.buffer += char

    def _render(self) -> RenderableType:
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        state = self.state
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        if state is None:
            grid.add_row("game day", "starting ...")
        else:
            now = state.stopped_at if state.stopped_at is not None else self.clock.monotonic()
            elapsed = now - state.injected_at if state.injected_at is not None else 0.0
            clock_text = Text(f"{seconds(elapsed)}", style="bold")
            if state.sla_s is not None:  # hidden until revealed: it would name the severity
                left = state.sla_s - elapsed
                clock_text.append(
                    f"   SLA {seconds(state.sla_s)} ({state.severity}): ", style="dim"
                )
                clock_text.append(
                    f"{seconds(abs(left))} {'left' if left >= 0 else 'OVER'}",
                    style="green"
                    if left > state.sla_s * 0.25
                    else "yellow"
                    if left >= 0
                    else "bold red",
                )
            grid.add_row("scenario", state.scenario)
            grid.add_row("phase", state.phase)
            grid.add_row("elapsed", clock_text)
            grid.add_row("alerts", Text("\n".join(state.alerts) or "-", style="bold yellow"))
            marks = (
                "  ".join(
                    f"{name} T+{seconds(at)}"
                    for name, at in state.marks.items()
                    if name not in ("steady",)
                )
                or "-"
            )
            grid.add_row("marks", marks)
            grid.add_row("/health", state.health)
            grid.add_row("ledger", state.ledger)
        grid.add_row("", Text(HELP, style="dim"))
        grid.add_row("you", Text(f"> {self.buffer}", style="bold cyan"))
        return Panel(grid, title="runbook-checks game day", border_style="magenta")

    # -- Console --------------------------------------------------------------------------
    def show(self, state: GameDayState) -> None:
        self.state = state
        if self._live is None and not self.interactive and state.last:
            self.console.print(state.last)
            state.last = ""

    def say(self, text: str) -> None:
        stamp = ""
        if self.state is not None and self.state.injected_at is not None:
            stamp = f"[T+{seconds(self.clock.monotonic() - self.state.injected_at)}] "
        self.console.print(f"{stamp}{text}", markup=False, highlight=False)
        if not self.interactive:
            self.console.print("> ", end="")

    def command(self, timeout_s: float) -> str | None:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if line is None:  # input closed: nobody is left to resolve the incident
            return "abort"
        return line


# -- the command --------------------------------------------------------------------------


def list_scenarios(
    catalogue: Catalogue, runbook: Runbook | None, write: Callable[[str], None]
) -> None:
    write("scenarios for a game day (runbook-checks gameday NAME):")
    for entry in catalogue.entries:
        sla = ""
        if runbook is not None:
            with contextlib.suppress(KeyError):
                section = runbook.section(entry.section)
                sla = f" [{section.severity}, SLA {seconds(sla_for(runbook, section.severity))}]"
        option = f" / option {entry.option}" if entry.option else ""
        write(f"  {entry.name:45} {entry.section}{option}{sla}")
        write(f"  {'':45} {entry.title}")
    for problem in catalogue.problems:
        write(f"  (not loaded: {problem})")


def run_gameday_command(args: argparse.Namespace, config: ChecksConfig) -> int:
    from rich.console import Console as RichConsole

    from runbook_checks.runbook.parser import parse_runbook
    from runbook_checks.stack import create_stack, start_with_retry

    console = RichConsole(highlight=False)
    # the fault proxy logs every refused upstream connection: noise on the operator's screen
    logging.getLogger("runbook_checks.stack").addHandler(logging.NullHandler())
    logging.getLogger("runbook_checks.stack").propagate = False
    runbook = parse_runbook(config.runbook)
    catalogue = runbook_catalogue(config.runbook, config.profile)
    if args.list:
        list_scenarios(catalogue, runbook, print)
        return 0
    if not catalogue.entries:
        raise UsageError(
            "no scenario to play: the scenario modules define no Scenario",
            hint="\n".join(catalogue.problems) or None,
        )
    entry = (
        catalogue.find(args.scenario)
        if args.scenario
        else random.SystemRandom().choice(catalogue.entries)
    )
    console.print(
        f"game day on [bold]{runbook.title}[/] ({config.runbook}); starting the "
        f"{config.backend} stack ..."
    )
    import tempfile

    with (
        start_with_retry(lambda: create_stack(config)) as local,
        tempfile.TemporaryDirectory(prefix="gameday-") as work,
    ):
        stack = cast("Stack", local)
        reason = (
            entry.scenario.fault.unsupported_reason(stack)
            if isinstance(entry.scenario.fault, Fault)
            else None
        )
        if reason:
            raise UsageError(f"{entry.name}: {reason}")
        from runbook_checks.drill.incident import make_plan

        # the alert rules (--alert-rules, else derived from the runbook) into the stack's
        # Prometheus, so the panel shows what would page the on-call engineer
        plan = make_plan(
            runbook,
            stack,
            rules_file=config.alert_rules,
            window_s=config.alert_window_s,
            alert_wait_s=config.alert_wait_s,
            work_dir=Path(work) / "alerts",
        )
        rules = "" if plan.rules is None else f"{len(plan.rules.rules)} rules ({plan.rules.origin})"
        _print_stack(console, stack)
        operator = TerminalOperator(console)
        day = GameDay(
            entry,
            stack,
            runbook,
            operator,
            work_dir=Path(work),
            reveal=args.reveal,
            operator_name=args.operator,
            alert_rules=rules,
        )
        try:
            with operator.session():
                record = day.run()
        except KeyboardInterrupt:
            console.print("\ninterrupted: the fault was reverted; stopping the stack ...")
            raise
        versions = dict(stack.versions())
        env = environment_for(
            runbook, backend=stack.backend, versions=versions, project_root=Path.cwd()
        )
        journal = new_journal(env, [record], kind="gameday")
        folder = write_bundle(journal, config.evidence_dir, runbook=runbook, redactor=day.redactor)
    r = record.result
    console.print(
        f"\n[bold]{entry.title}[/] ({entry.section}"
        + (f" / option {entry.option}" if entry.option else "")
        + ")"
    )
    console.print(
        f"verdict: {r.verdict.value}; detected {seconds(r.time_to_detect_s)}, "
        f"recovered {seconds(r.time_to_recover_s)} of the {seconds(r.budget_s)} "
        f"{r.severity or ''} SLA" + (f"; {r.error}" if r.error else "")
    )
    console.print(f"evidence: {folder}")
    console.print(f"report:   {(folder / 'report.html').resolve().as_uri()}")
    return 0 if r.verdict is Verdict.PASSED else 1


def _print_stack(console: RichConsole, stack: Stack) -> None:
    ep = stack.endpoints
    console.print("\nthe stack is up. Work the incident from another terminal:")
    console.print(f"  API            {ep.api_url}", markup=False)
    console.print(f"  PostgreSQL     {ep.database_url}", markup=False)
    console.print(f"  object store   {ep.s3_endpoint}  bucket {ep.s3_bucket}", markup=False)
    console.print(f"  Redis          {ep.redis_url}", markup=False)
    console.print(f"  AWS (moto)     {ep.aws_endpoint}", markup=False)
    console.print(f"  API logs       {ep.log_dir}", markup=False)
    console.print("# paste into the other shell:")
    for key, value in ep.as_env().items():
        console.print(f"export {key}='{value}'", markup=False)
    console.print(
        "Commands that need the stack's stand-ins (systemctl, ssh hosts, "
        "/var/log/api): `run LINE` at the prompt below. Ctrl-C reverts and stops.\n"
    )


__all__ = [
    "Console",
    "GameDay",
    "GameDayState",
    "HumanOperator",
    "TerminalOperator",
    "find_step",
    "run_gameday_command",
    "sla_for",
]
