"""One drill, every time the same shape:

steady state proven -> fault injected -> symptom confirmed by an independent check ->
the runbook's diagnostics run (time to detect) -> the option's mitigation steps run, the
manual ones performed on the runbook's behalf and recorded so -> recovery awaited
against the budget (time to recover) -> fault reverted -> ledger verified. The sequence
is drill/phases.py's, which game days walk too; a drill's own steps are its
`AutomaticOperator`'s.

Wherever the runbook's own text fails (a diagnostic that does not show the fault, a step
that errors, a mitigation that does not recover), a finding is recorded with evidence;
the verdict says whether the runbook, the service or the drill itself is at fault.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import secrets
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.drill.incident import (
    ALERT_STILL_FIRING,
    IncidentPlan,
    IncidentWatch,
    alert_issue,
)
from runbook_checks.drill.ledger import Ledger
from runbook_checks.drill.phases import walk
from runbook_checks.drill.platform import StackPlatform
from runbook_checks.drill.result import (
    Actor,
    Alerting,
    DrillResult,
    Event,
    StepRecord,
    Verdict,
)
from runbook_checks.drill.sampler import HealthSampler
from runbook_checks.drill.slots import load_slot
from runbook_checks.drill.spec import Action, Scenario
from runbook_checks.faults.base import Fault, FaultHandle
from runbook_checks.findings import Finding, Level, cause_class
from runbook_checks.monitor.communicate import (
    IncidentFacts,
    communicate,
    feature_for,
    post_time,
    template_findings,
)
from runbook_checks.monitor.severity import (
    SEVERITY_MISMATCH,
    MeasuredImpact,
    judge,
    mismatch,
)
from runbook_checks.monitor.statuspage import StatusPageClient, StatusPageServer
from runbook_checks.monitor.triage import triage_issues
from runbook_checks.profile import EMPTY, Profile, find_profile
from runbook_checks.runbook.model import Option, Phase, Runbook, Section, Step, StepKind
from runbook_checks.service import ServiceClient, User
from runbook_checks.stack.base import Stack
from runbook_checks.steps.base import Bindings, ExecContext, StepResult
from runbook_checks.steps.run import run_step

DEFAULT_MAX_WAIT_S = 60.0  # how long a drill waits for recovery before calling it failed

# While a drill waits (for the steady state, a recovery), it looks this often whether a
# server of the stack ended unasked (`Stack.servers_ended_unasked`): then it stops waiting
STACK_LOOK_S = 1.0


class StackBroke(Exception):
    """A server of the stack ended under the drill and no fault or step ended it."""

    def __init__(self, ended: list[str]) -> None:
        super().__init__("; ".join(ended))
        self.ended = ended


def _live_servers(ctx: DrillContext | None) -> frozenset[str]:
    """The servers the drill's fault acts on, once it is injected (none before)."""
    handle = ctx.handle if ctx is not None else None
    return handle.fault.servers() if handle is not None else frozenset()


def _traceback_tail(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-1500:]


# Finding kinds of the harness's own work: the runbook's text did not do it
HARNESS_ASSISTED = "harness-assisted"
FIX_NOT_DOCUMENTED = "fix-not-documented"
WRITES_LOST = "acknowledged-writes-lost"
DATA_LOSS_WARNED = "data-loss-measured"
# how a runbook warns that an option can lose data ("LAST RESORT - Data loss possible!")
_WARNS_OF_LOSS = re.compile(
    r"data[ -]loss|los(?:e|es|ing) (?:data|writes|the last|recent)|may lose", re.IGNORECASE
)


@dataclass
class DrillContext:
    """What scenario callbacks see: the stack, the API client, values found on the way."""

    stack: Stack
    runbook: Runbook
    section: Section
    option: Option | None
    client: ServiceClient
    user: User
    work_dir: Path
    clock: Clock
    result: DrillResult
    values: dict[str, str] = field(default_factory=dict)  # placeholder -> value
    # hosts outside the stack answered in-process (Bindings.edges), e.g. a status page
    edges: dict[str, httpx.BaseTransport] = field(default_factory=dict)
    scratch: dict[str, object] = field(default_factory=dict)  # scenario-private state
    handle: FaultHandle | None = None
    injected_at: float | None = None
    injected_wall: float | None = None  # wall clock at injection (log lines are timed so)
    diagnostics: list[StepResult] = field(default_factory=list)
    current_step: Step | None = None  # the option's step an Action is performed for
    platform: StackPlatform | None = None  # what kubectl / heroku / npm / git lines act on
    on_event: Callable[[DrillResult, Event], None] | None = None  # live progress
    profile: Profile = EMPTY  # what the runbook's hosts, paths and names mean here

    def since_inject(self) -> float:
        if self.injected_at is None:
            return 0.0
        return self.clock.monotonic() - self.injected_at

    def health_status(self, timeout_s: float = 3.0) -> int:
        try:
            return self.client.health(timeout_s).status_code
        except httpx.HTTPError:
            return 0

    def bindings(self, extra: Mapping[str, str] | None = None) -> Bindings:
        values = dict(self.values)
        if extra:
            values.update(extra)
        bindings = Bindings.from_stack(
            self.stack, self.work_dir, self.profile, values=values, edges=self.edges
        )
        return dataclasses.replace(bindings, platform=self.platform)

    def run_step(
        self,
        step: Step,
        phase: str,
        extra: Mapping[str, str] | None = None,
        *,
        by: Actor = Actor.RUNBOOK,
    ) -> StepResult:
        context = ExecContext(
            stack=self.stack,
            bindings=self.bindings(extra),
            clock=self.clock,
            work_dir=self.work_dir,
        )
        begin = self.since_inject()
        outcome = run_step(step, context)
        self.result.steps.append(
            StepRecord(
                phase=phase,
                line=step.line,
                written=step.text,
                executed=outcome.executed,
                status=outcome.status,
                started_s=begin,
                duration_s=outcome.duration_s,
                output=outcome.output[:2000],
                detail=outcome.error,
                by=by,
            )
        )
        return outcome

    def run_command(
        self, text: str, kind: StepKind, *, line: int = 0, phase: str = "on-behalf"
    ) -> StepResult:
        """Run a command the runbook does not contain as written (a corrected form of one
        of its steps), through the same executors, recorded under `phase` as the
        harness's work."""
        step = Step(
            text=text, raw=text, line=line, language="bash", kind=kind, phase=Phase.MITIGATION
        )
        return self.run_step(step, phase, by=Actor.HARNESS)

    def record(
        self,
        phase: str,
        written: str,
        status: str,
        detail: str,
        line: int = 0,
        *,
        by: Actor = Actor.RUNBOOK,
    ) -> None:
        self.result.steps.append(
            StepRecord(
                phase=phase,
                line=line,
                written=written,
                executed="",
                status=status,
                started_s=self.since_inject(),
                duration_s=0.0,
                detail=detail,
                by=by,
            )
        )

    def _scenario_statement(self) -> str:
        """What a finding not tied to one step is about: the option and the scenario, so
        a baseline entry for one scenario never covers another of the same option."""
        parts = [p for p in (self.option.title if self.option else "", self.result.title) if p]
        return " :: ".join(parts)

    def event(self, name: str, detail: str = "") -> None:
        event = Event(round(self.since_inject(), 3), name, detail)
        self.result.events.append(event)
        if self.on_event is not None:
            self.on_event(self.result, event)

    def finding(
        self,
        level: Level,
        kind: str,
        message: str,
        *,
        step: Step | None = None,
        suggestion: str = "",
        evidence: str = "",
        per_scenario: bool = False,
        cause: str = "",
        statement: str = "",
        line: int = 0,
    ) -> None:
        """Record a finding. Tied to a `step`, it is about that text wherever it runs;
        with `per_scenario` (or no step) it is about what happened in this scenario, so
        its baseline entry never covers another scenario. `cause` is its fingerprint
        (which check failed, the class of what was observed); by default the class of
        the message."""
        if statement:  # about a text of the runbook that is not a step (a symptom line)
            pass
        elif step is None:
            statement = self._scenario_statement()
        elif per_scenario:
            statement = f"{step.text} :: {self.result.title or self.result.fault}"
        else:
            statement = step.text
        self.result.findings.append(
            Finding(
                level=level,
                kind=kind,
                section_id=self.section.id,
                message=message,
                line=line or (step.line if step else self.section.line),
                statement=statement,
                suggestion=suggestion,
                evidence=evidence[:1500],
                source=f"drill:{self.result.scenario}",
                cause=cause or cause_class(message),
            )
        )


def outcome_cause(outcome: StepResult) -> str:
    """The class of how a step ended: HTTP status, SQLSTATE, exit status or status."""
    if outcome.http_status is not None:
        return f"http-{outcome.http_status}"
    if outcome.sqlstate:
        return f"sqlstate-{outcome.sqlstate}"
    if outcome.status.value == "error":
        return f"not-run: {cause_class(outcome.error)}"
    if outcome.exit_code not in (None, 0):
        return f"exit-{outcome.exit_code}"
    return outcome.status.value


def warns_of_data_loss(option: Option | None) -> bool:
    """Does the option's own text warn that it can lose data?"""
    if option is None:
        return False
    text = "\n".join([option.title, option.prose, *(b.text for b in option.blocks)])
    return _WARNS_OF_LOSS.search(text) is not None


def _succeeded(outcome: StepResult) -> bool:
    """Ran, and did what it asked: a curl answered 4xx/5xx did not (curl itself exits 0)."""
    return outcome.ok and (outcome.http_status is None or outcome.http_status < 400)


def _sees_the_failure(outcome: StepResult) -> bool:
    """The command ran as written and reports the service failing (5xx, or no answer
    from a service of the stack): evidence about the system, not a defect of the text."""
    if outcome.http_status is not None:
        return outcome.http_status >= 500
    return outcome.step.kind.value == "http" and outcome.exit_code in (7, 28, 52, 56)


def health_and_canary(ctx: DrillContext) -> str | None:
    """Default steady state: /health is 200 and a fresh upload reads back byte for byte."""
    status = ctx.health_status()
    if status != 200:
        return f"/health answered {status or 'nothing'}"
    payload = secrets.token_bytes(64)
    try:
        upload = ctx.client.upload(ctx.user, "canary.bin", payload, timeout_s=5)
        if upload.status_code != 201 or upload.file_id is None:
            return f"canary upload answered {upload.status_code}: {upload.body[:120]}"
        back = ctx.client.download(ctx.user, upload.file_id)
    except httpx.HTTPError as exc:
        return f"canary failed: {type(exc).__name__}"
    if back.status_code != 200 or hashlib.sha256(back.content).hexdigest() != upload.checksum:
        return f"canary read back answered {back.status_code}"
    return None


@dataclass
class DrillSession:
    """What one drill or game day works with: the API client, the health sampler, and,
    once `begin` made its user, the context and the ledger of acknowledged writes. The
    drill runner and game days set up and close a run the same way through this."""

    stack: Stack
    result: DrillResult
    client: ServiceClient
    sampler: HealthSampler
    ctx: DrillContext | None = None
    ledger: Ledger | None = None

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, stack: Stack, result: DrillResult, *, clock: Clock, sample_interval_s: float = 0.2
    ) -> Iterator[DrillSession]:
        """A session whose ledger stops, whose health samples land in `result` on the
        fault's time axis (0 = the fault went in) and whose client closes, however the
        run ends. Revert the fault inside the block: the ledger still writes meanwhile."""
        endpoints = stack.endpoints
        session = cls(
            stack,
            result,
            stack.kit.client(endpoints.api_url, endpoints.admin_token),
            HealthSampler(endpoints.api_url, clock=clock, interval_s=sample_interval_s),
        )
        try:
            yield session
        finally:
            if session.ledger is not None:
                session.ledger.stop()
            injected_at = session.ctx.injected_at if session.ctx is not None else None
            result.samples = session.sampler.stop_on_axis(injected_at)
            result.samples_aligned = injected_at is not None
            session.client.close()

    def begin(
        self,
        runbook: Runbook,
        section: Section,
        option: Option | None,
        work_dir: Path,
        clock: Clock,
        *,
        who: str,
        ledger: Mapping[str, int] | None,
        on_event: Callable[[DrillResult, Event], None] | None = None,
        profile: Profile | None = None,
    ) -> DrillContext:
        """Make the run's own user (`who`-<random>@drill.test, pro plan), its context, and
        (unless `ledger` is None; it holds the Ledger's options) its ledger."""
        user = self.client.create_user(f"{who}-{secrets.token_hex(4)}@drill.test", "pro")
        self.ctx = DrillContext(
            self.stack,
            runbook,
            section,
            option,
            self.client,
            user,
            work_dir,
            clock,
            self.result,
            on_event=on_event,
            profile=profile if profile is not None else find_profile(runbook.path),
        )
        if ledger is not None:
            self.ledger = Ledger(self.client, user, clock=clock, **ledger)
        return self.ctx


class Drill:
    """Runs `Scenario`s for one runbook section (and option) against a stack."""

    def __init__(
        self,
        stack: Stack,
        runbook: Runbook,
        section: str,
        option: str | None,
        *,
        scenario_id: str,
        work_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        on_result: Callable[[DrillResult], None] | None = None,
        on_event: Callable[[DrillResult, Event], None] | None = None,
        incident: IncidentPlan | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.stack = stack
        self.incident = incident
        self.profile = profile if profile is not None else find_profile(runbook.path)
        self.runbook = runbook
        self.section = runbook.section(section)
        self.option = self.section.option(option) if option is not None else None
        self.scenario_id = scenario_id
        self.work_dir = work_dir
        self.clock = clock
        self.max_wait_s = max_wait_s
        self.on_result = on_result
        self.on_event = on_event
        # what the drill holds until it ends: the load slot of a load-driven fault
        self.slots = contextlib.ExitStack()

    def budget_for(self, scenario: Scenario) -> float:
        if scenario.budget_s is not None:
            return scenario.budget_s
        severity = self.runbook.severity(self.section.severity or "")
        if severity is not None and severity.response_seconds:
            return severity.response_seconds
        return 15 * 60.0

    def run(self, scenario: Scenario) -> DrillResult:
        if self.option is None and scenario.mitigation:
            self.option = next(
                (o for o in self.section.options if re.search(scenario.mitigation, o.title)),
                None,
            )
        result = DrillResult(
            scenario=self.scenario_id,
            section_id=self.section.id,
            section_title=self.section.title,
            option=self.option.key if self.option else None,
            section_hash=self.section.content_hash,
            severity=self.section.severity,
            fault="",
            budget_s=self.budget_for(scenario),
            started_wall=self.clock.wall(),
            title=scenario.title,
        )
        if self._reaches_aws():  # comes up during the arrange, not in the drill's timeline
            self.stack.prepare("aws")
        try:
            with self.slots, DrillSession.open(self.stack, result, clock=self.clock) as session:
                if isinstance(scenario.fault, Fault):  # known now: the slot from the start
                    self.slots.enter_context(load_slot(scenario.fault, clock=self.clock))
                self._run_in(session, scenario)
        finally:  # also on Ctrl-C: what was measured so far is evidence too
            if self.on_result is not None:
                self.on_result(result)
        return result

    def _reaches_aws(self) -> bool:
        """Whether the steps this drill runs may call the AWS control plane."""
        steps = (*self.section.investigation, *(self.option.steps if self.option else ()))
        return any(step.may_call_aws for step in steps)

    def _run_in(self, session: DrillSession, scenario: Scenario) -> None:
        result = session.result
        try:
            ctx = session.begin(
                self.runbook,
                self.section,
                self.option,
                self.work_dir,
                self.clock,
                who="ledger",
                ledger={} if scenario.ledger else None,
                on_event=self.on_event,
                profile=self.profile,
            )
            self._phases(scenario, ctx, session.sampler, session.ledger)
        except StackBroke as exc:
            self._stack_broke(result, exc.ended)
        except Exception as exc:
            # (the fault is still live here: what it acts on may have ended by its doing)
            ended = self.stack.servers_ended_unasked(_live_servers(session.ctx))
            if ended:  # what explains the exception
                self._stack_broke(result, ended, evidence=_traceback_tail(exc))
            else:
                error = f"{type(exc).__name__}: {exc}"
                self._drill_error(result, error, "the drill could not complete: " + error, exc)
        finally:
            if session.ctx is not None and session.ctx.handle is not None:
                with contextlib.suppress(Exception):
                    session.ctx.handle.revert()

    # -- the phases (drill/phases.py), worked by the automatic operator --------------------
    def _phases(
        self, scenario: Scenario, ctx: DrillContext, sampler: HealthSampler, ledger: Ledger | None
    ) -> None:
        operator = AutomaticOperator(self, scenario, ctx, sampler, ledger)
        walk(operator, ctx, self.stack, sampler, ledger, clock=self.clock)

    # -- detect, triage, severity (drill/incident.py) ------------------------------------
    def _watch(self, ctx: DrillContext, sampler: HealthSampler) -> IncidentWatch | None:
        if self.incident is None:
            return None
        watch = IncidentWatch(
            self.incident,
            ctx,
            self.stack.monitoring,
            section_id=self.section.id,
            clock=self.clock,
            sampler=sampler,
        )
        watch.settle(self.incident.window_s + 5.0)
        return watch

    def _detect_and_triage(self, watch: IncidentWatch, ctx: DrillContext) -> None:
        result = ctx.result
        alerting = result.alerting = watch.alerting()
        result.triage = watch.observations()
        measured = watch.measure()
        if alerting.measured:
            ctx.event(
                "alerted" if alerting.alerts else "no-alert",
                ", ".join(
                    f"{a.alertname} -> {a.section_id or '?'} at {a.fired_s:.1f}s"
                    for a in alerting.alerts
                ),
            )
            self._alert_findings(alerting, ctx, measured)
        titles = {s.id: s.title for s in self.runbook.sections}
        for issue in triage_issues(self.section.id, result.triage, titles):
            ctx.finding(
                Level.INFO if issue.level == "info" else Level.WARNING,
                issue.kind,
                issue.message,
                suggestion=issue.suggestion,
                cause=issue.cause,
                statement=issue.statement,
                line=issue.line,
            )

    def _alert_findings(
        self, alerting: Alerting, ctx: DrillContext, measured: MeasuredImpact
    ) -> None:
        issue = alert_issue(
            alerting, self.section.id, self.runbook.severity(self.section.severity or ""), measured
        )
        if issue is not None:
            ctx.finding(
                Level.ERROR if issue.level == "error" else Level.WARNING,
                issue.kind,
                issue.message,
                suggestion=issue.suggestion,
                cause=issue.cause,
            )

    def _after_recovery(self, watch: IncidentWatch, ctx: DrillContext) -> None:
        result = ctx.result
        alerting = result.alerting
        if alerting is not None and alerting.measured and alerting.alerts:
            names = sorted({a.alertname for a in alerting.alerts})
            # a rate over the window resolves one window after the errors stopped: the
            # grace counts from the recovery (the revert and the ledger ran meanwhile)
            grace = watch.plan.window_s + 3.0
            recovered = (
                None
                if result.time_to_recover_s is None or ctx.injected_at is None
                else ctx.injected_at + result.time_to_recover_s
            )
            left = watch.still_firing(names, grace, since_mono=recovered)
            alerting.still_firing = left
            if left:
                ctx.finding(
                    Level.WARNING,
                    ALERT_STILL_FIRING,
                    f"{', '.join(left)} still firing {grace:.0f}s after the service "
                    "recovered (the fault reverted meanwhile)",
                    suggestion="make the rule's expression describe the current state "
                    "(a rate over a short window), so it resolves with the service",
                    cause="alert: " + ",".join(left),
                )
        measured = watch.measured
        if measured is None:
            return
        lost = len(result.ledger.lost) if result.ledger is not None else 0
        measured = dataclasses.replace(measured, lost_writes=lost)
        judgement = judge(self.section.severity, self.runbook.severities, measured)
        result.impact = {
            **measured.as_json(),
            "written": judgement.written,
            "measured": judgement.measured,
            "why": judgement.why,
        }
        self._communicate(ctx, measured)
        wrong = mismatch(judgement)
        if wrong is not None:
            ctx.finding(
                Level.WARNING,
                SEVERITY_MISMATCH,
                wrong.message,
                suggestion=wrong.suggestion,
                cause=wrong.cause,
                statement=f"severity of {self.section.title}",
            )

    def _communicate(self, ctx: DrillContext, measured: MeasuredImpact) -> None:
        """Fill the runbook's status-page templates with this drill's facts and post
        the investigating and resolved updates to a status page stand-in (on 127.0.0.1):
        what customers would read is kept; unreadable text is a finding."""
        result = ctx.result
        began = result.injected_wall
        if began is None:
            return
        first = result.time_to_alert_s
        if first is None:
            first = result.time_to_detect_s
        facts = IncidentFacts(
            section_id=self.section.id,
            section_title=self.section.title,
            severity=self.section.severity,
            feature=feature_for(self.section.title, self.stack.kit.vocabulary),
            issue=result.title or result.fault,
            impact=measured.describe(),
            started_wall=began,
            detected_wall=None if first is None else began + first,
            recovered_wall=(
                None if result.time_to_recover_s is None else began + result.time_to_recover_s
            ),
            root_cause=result.title or result.fault or None,
            fix=self.option.title if self.option else None,
        )
        with (
            StatusPageServer(clock=self.clock) as page,
            StatusPageClient(page.url, page.page_id, page.api_key, clock=self.clock) as client,
        ):
            record = communicate(self.runbook, facts, client, now_wall=self.clock.wall())
        posted = {(u.status, u.name) for u in record.posted}
        result.communication = [
            {
                "stage": f.stage,
                "name": f.name,
                "body": f.body,
                "template": f.template_title,
                "line": f.template_line,
                "posted": (f.stage, f.name) in posted,
                "at_s": round(post_time(f.stage, facts, self.clock.wall()) - began, 3),
            }
            for f in record.filled
        ]
        for finding in template_findings(record, source=f"drill:{result.scenario}"):
            result.findings.append(finding)

    def _await_recovery(
        self, recovered: Callable[[DrillContext], str | None], ctx: DrillContext, scenario: Scenario
    ) -> None:
        result = ctx.result
        wait = min(result.budget_s, self.max_wait_s)
        if scenario.recovery_wait_s is not None:
            wait = min(wait, scenario.recovery_wait_s)
        check = getattr(recovered, "__name__", "recovered").strip("_")
        try:
            self._await(recovered, ctx, "recovery after the runbook's mitigation", wait)
            result.time_to_recover_s = round(ctx.since_inject(), 3)
            ctx.event("recovered")
            # the severity's response time counts from the failure; a scenario's own
            # budget is what its option may take once applied (alerting and triage
            # come before anyone acts, and are timed on their own)
            began = result.event("mitigating") if scenario.budget_s is not None else None
            took = result.time_to_recover_s - (began.at_s if began is not None else 0.0)
            if took > result.budget_s:
                since = "after the mitigation began" if began is not None else ""
                ctx.finding(
                    Level.ERROR,
                    "recovery-over-budget",
                    f"recovered {took:.1f}s {since or 'after the failure'}, over the "
                    f"{result.budget_s:.0f}s budget",
                    cause=f"{check}: over-budget",
                )
        except WaitTimeout as exc:
            ran = "; ".join(
                f"line {r.line} `{r.written[:60]}` ({r.status}, by {r.by.value})"
                for r in result.steps
                if r.phase not in ("investigation",) and r.line
            )
            ctx.finding(
                Level.ERROR,
                "mitigation-did-not-recover",
                f"after the runbook's mitigation the service did not recover within "
                f"{wait:.0f}s: {exc.last}" + (f"; the option's steps: {ran}" if ran else ""),
                suggestion="the option's steps do not fix this failure; see the "
                "steps and their output in the journal",
                cause=f"{check}: {cause_class(str(exc.last or ''))}",
            )

    def _no_mitigation(self, ctx: DrillContext) -> None:
        """A scenario marked with the section but no option: the runbook documents no
        mitigation for this failure, so there is nothing to run and no recovery to await."""
        options = "; ".join(f"{o.key}: {o.title}" for o in self.section.options) or "none"
        ctx.finding(
            Level.ERROR,
            "no-mitigation",
            f"the section gives no mitigation for this failure ({ctx.result.fault}); "
            f"its options ({options}) are not meant for it",
            suggestion="add a mitigation for this failure to the section",
            cause="no-option",
        )

    def _await(
        self,
        check: Callable[[DrillContext], str | None],
        ctx: DrillContext,
        what: str,
        timeout_s: float,
    ) -> None:
        last: list[str] = []
        look_at = self.clock.monotonic() + STACK_LOOK_S

        def holds() -> bool:
            nonlocal look_at
            reason = check(ctx)
            if reason is None:
                return True
            last[:] = [reason]
            # a server that ended unasked comes back for no one: the wait would be in vain
            if self.clock.monotonic() >= look_at:
                look_at = self.clock.monotonic() + STACK_LOOK_S
                # a server the fault acts on may end by its doing
                ended = self.stack.servers_ended_unasked(_live_servers(ctx))
                if ended:
                    raise StackBroke(ended)
            return False

        try:
            wait_until(holds, what=what, timeout_s=timeout_s, interval_s=0.1, clock=self.clock)
        except WaitTimeout as exc:
            raise WaitTimeout(what, timeout_s, last[0] if last else None, exc.attempts) from None

    def _await_symptom(self, scenario: Scenario, ctx: DrillContext) -> str:
        last: list[str] = []

        def shows() -> str | None:
            reason = scenario.confirm(ctx)
            if reason is not None:
                last[:] = [reason]
                return None
            return "fault in effect"

        try:
            return wait_until(
                shows,
                what="the fault to take effect",
                timeout_s=scenario.confirm_timeout_s,
                interval_s=0.1,
                clock=self.clock,
            )
        except WaitTimeout as exc:
            raise RuntimeError(
                f"the fault did not take effect within {scenario.confirm_timeout_s:.0f}s "
                f"(independent check: {last[0] if last else exc.last})"
            ) from exc

    def _diagnose(self, scenario: Scenario, ctx: DrillContext) -> None:
        steps = (
            self.section.investigation
            if scenario.detect_steps == "investigation"
            else (self.option.steps if self.option else ())
        )
        result = ctx.result
        executable = [s for s in steps if s.executable]
        # a detector part that reads none of these steps can never match: the drill's
        # defect, not the runbook's (the suite's tests prove none exists for the shipped
        # runbook); recorded so a changed runbook's drill says why it saw nothing
        for leaf in scenario.detect.unread(steps):
            ctx.event("detector-unread", f"{leaf.name}: no step of the section reads it")
        for step in steps:
            if not step.executable:
                ctx.record(
                    "investigation",
                    step.text,
                    "manual",
                    step.manual_reason,
                    step.line,
                    by=Actor.PERSON,
                )
                continue
            outcome = ctx.run_step(step, "investigation")
            ctx.diagnostics.append(outcome)
            shown = scenario.detect(outcome, ctx)
            if shown and result.time_to_detect_s is None:
                result.time_to_detect_s = round(ctx.since_inject(), 3)
                ctx.event("detected", f"line {step.line}: {shown}")
                record = result.steps[-1]
                result.steps[-1] = StepRecord(**{**record.__dict__, "detail": f"DETECTED: {shown}"})
        if result.time_to_detect_s is None:
            ran = "; ".join(f"line {s.line} `{s.text[:60]}`" for s in executable) or "none"
            ctx.finding(
                Level.ERROR,
                "detection-missed",
                f"none of the section's {len(executable)} executable diagnostics shows "
                f"the failure ({ctx.result.fault}); ran: {ran}",
                suggestion="add a diagnostic that shows this failure directly",
                cause=f"{scenario.detect.name}: not shown",
            )

    def _mitigate(self, scenario: Scenario, ctx: DrillContext) -> None:
        if self.option is None:
            return
        extra = dict(scenario.bind(ctx)) if scenario.bind is not None else {}
        for step in self.option.steps:
            if scenario.step_filter is not None and not scenario.step_filter(step.text):
                ctx.record(
                    "mitigation", step.text, "skipped", "not part of this scenario", step.line
                )
                continue
            ctx.current_step = step
            actions = [a for a in scenario.actions if a.applies_to(step.text)]
            if step.executable:
                outcome = ctx.run_step(step, "mitigation", extra)
                if not _succeeded(outcome):
                    why = outcome.error or (
                        f"HTTP {outcome.http_status}: {outcome.output[:160]}"
                        if outcome.http_status
                        else outcome.status
                    )
                    if _sees_the_failure(outcome):  # ran fine; the service is still down
                        # evidence of one sample, not a defect of the text: whether the
                        # option recovers is judged by the recovery wait that follows
                        ctx.finding(
                            Level.WARNING,
                            "mitigation-still-failing",
                            f"after the option's earlier steps this step still sees the "
                            f"failure: {why}",
                            step=step,
                            evidence=outcome.output,
                            per_scenario=True,
                            suggestion="the option's steps do not fix this failure",
                            cause=outcome_cause(outcome),
                        )
                    else:
                        ctx.finding(
                            Level.ERROR,
                            "mitigation-step-failed",
                            f"the mitigation step fails as written: {why}",
                            step=step,
                            evidence=outcome.output,
                            suggestion=outcome.suggestion
                            or "fix the command so it runs as written",
                            cause=outcome_cause(outcome),
                        )
                    self._perform(ctx, actions, step, failed_as_written=True)
                else:
                    self._perform(ctx, [a for a in actions if a.also_after_success], step)
            elif actions:
                self._perform(ctx, actions, step)
            else:
                ctx.record(
                    "mitigation",
                    step.text,
                    "manual",
                    step.manual_reason,
                    step.line,
                    by=Actor.PERSON,
                )
        ctx.current_step = None

    def _perform(
        self,
        ctx: DrillContext,
        actions: list[Action],
        step: Step,
        *,
        failed_as_written: bool = False,
    ) -> None:
        """Carry out `actions` for `step`, each recorded as who did it. What the text did
        not do (a prose step, a value the text lacks, a step that failed as written) is
        the harness's, with an ERROR finding naming it: the verdict is not `passed`."""
        for action in actions:
            # an effect taken from the text counts as the runbook's only when the step
            # did not fail as written (else the harness made up for it)
            by = Actor.HARNESS if action.by is Actor.RUNBOOK and failed_as_written else action.by
            try:
                done = action.do(ctx)
            except Exception as exc:
                if by not in (Actor.RUNBOOK, Actor.CHECK):
                    raise  # the harness itself could not do its part: the drill errs
                # what the text says cannot be carried out, or the check of what it
                # promises fails: a defect of the text at its line
                ctx.record(by.value, step.text, "failed", f"{exc}", step.line, by=by)
                ctx.finding(
                    Level.ERROR,
                    "mitigation-step-failed",
                    f"the stack cannot carry out what the step says, or it does not hold: {exc}",
                    step=step,
                    suggestion=action.why or "correct the step's values",
                    cause=f"{by.value}: {action.name}",
                )
                continue
            ctx.record(
                "on-behalf" if by is Actor.HARNESS else by.value,
                step.text,
                "performed" if by is not Actor.CHECK else "checked",
                f"{done}" + (f" ({action.why})" if action.why else ""),
                step.line,
                by=by,
            )
            if by is Actor.HARNESS:
                reason = (
                    "the step failed as written"
                    if failed_as_written
                    else "the text gives no command or value the stack could carry out"
                )
                ctx.finding(
                    Level.ERROR,
                    HARNESS_ASSISTED,
                    f"the harness did this in the runbook's place ({reason}): {done}"
                    + (f" ({action.why})" if action.why else ""),
                    step=step,
                    suggestion="write the command that does it, with its values, into the "
                    "option, so the runbook's own text recovers the service",
                    cause=f"harness: {action.name}",
                )

    def _stack_broke(self, result: DrillResult, ended: list[str], evidence: str = "") -> None:
        """A server of the stack ended under the drill and no fault or step ended it (it
        crashed, or something outside killed it): the drill measured the harness's broken
        environment. Its verdict is an error, whatever the runbook's steps seemed to do;
        nothing is blamed on, or credited to, the text."""
        error = f"the stack broke under the drill: {'; '.join(ended)}"
        said = (
            f"{error}. No fault or step of this drill ends it, so what the drill measured "
            "since says nothing of the runbook; drill it again"
        )
        self._drill_error(result, error, said, evidence)

    def _drill_error(
        self, result: DrillResult, error: str, said: str, evidence: BaseException | str
    ) -> None:
        """The drill could not measure the runbook: verdict `error`, and a finding saying why."""
        result.verdict = Verdict.ERROR
        result.error = error
        if isinstance(evidence, BaseException):
            evidence = _traceback_tail(evidence)
        result.findings.append(
            Finding(
                Level.INFO,
                "drill-error",
                self.section.id,
                said,
                evidence=evidence,
                source=f"drill:{self.scenario_id}",
            )
        )

    def _verdict(self, scenario: Scenario, ctx: DrillContext) -> None:
        """`passed` only when the runbook's own text detected and recovered; `assisted`
        when the harness did part of the work; `failed` when acknowledged writes were
        lost and the option's text does not warn of it."""
        result = ctx.result
        ended = self.stack.servers_ended_unasked()
        if ended:
            self._stack_broke(result, ended)
            return
        ledger = result.ledger
        lost_unwarned = False
        if ledger is not None and ledger.lost:
            warned = warns_of_data_loss(self.option)
            note = scenario.loss_note or (
                "the option warns of data loss" if warned else "the option does not warn of it"
            )
            ctx.finding(
                Level.WARNING if warned else Level.ERROR,
                DATA_LOSS_WARNED if warned else WRITES_LOST,
                f"{len(ledger.lost)} of {ledger.acknowledged} acknowledged uploads were lost "
                f"by this option: {note}",
                evidence=", ".join(w.name for w in ledger.lost[:20]),
                suggestion=""
                if warned
                else 'say in the option that writes can be lost ("Data loss possible") and '
                "how to check before acting, so the on-call engineer chooses it knowingly",
                cause="ledger: lost",
            )
            if not warned:
                lost_unwarned = True
                result.error = f"acknowledged uploads lost: {ledger.summary()}"
        own = [
            f
            for f in result.runbook_errors
            if f.kind not in (HARNESS_ASSISTED, FIX_NOT_DOCUMENTED, WRITES_LOST)
        ]
        if lost_unwarned:
            result.verdict = Verdict.FAILED
        elif own:
            result.verdict = Verdict.RUNBOOK_WRONG
        elif result.harness_steps:
            result.verdict = Verdict.ASSISTED
        elif result.recovered_by == "waiting":
            result.verdict = Verdict.RECOVERED_BY_WAITING
            checked = "; ".join(s.detail for s in result.steps if s.by is Actor.CHECK)
            kept = (
                f"{ledger.acknowledged} uploads acknowledged, {len(ledger.lost)} lost"
                if ledger is not None
                else "no ledger"
            )
            result.note = (
                "recovered by waiting: the provider ended its outage; meanwhile the "
                f"runbook's steps ran as written and kept data safe ({kept}"
                + (f"; {checked}" if checked else "")
                + ")"
            )
        else:
            result.verdict = Verdict.PASSED


@dataclass
class AutomaticOperator:
    """The drill's operator (drill/phases.py): investigates by running the section's own
    diagnostics, mitigates by running the option's steps (or the harness's recorded
    fix), awaits recovery within the budget; alerts and triage through the incident
    watch, from the steady state until the investigation ends."""

    drill: Drill
    scenario: Scenario
    ctx: DrillContext
    sampler: HealthSampler
    ledger: Ledger | None
    watch: IncidentWatch | None = None
    ledger_interval_s: float = 0.25

    @property
    def recovered(self) -> Callable[[DrillContext], str | None]:
        return self.scenario.recovered or health_and_canary

    def entering(self, phase: str) -> None:
        return None  # nobody watches a drill's phases but its events

    def arrange(self) -> None:
        self.ctx.platform = StackPlatform(
            self.drill.stack,
            database_hosts=self.scenario.database_hosts,
            setting_scale=self.scenario.setting_scale,
        )
        if self.scenario.arrange is not None:
            self.scenario.arrange(self.ctx)

    def steady(self) -> None:
        self.drill._await(self.recovered, self.ctx, "steady state before the fault", 30.0)
        self.watch = self.drill._watch(self.ctx, self.sampler)

    def fault(self) -> Fault:
        fault = self.scenario.fault
        if isinstance(fault, Fault):
            return fault
        built = fault(self.ctx)  # a fault built at run time takes its slot now
        self.drill.slots.enter_context(load_slot(built, clock=self.drill.clock))
        return built

    def mark(self, name: str, detail: str) -> None:
        self.ctx.event(name, detail)

    def injected(self, fault: Fault) -> None:
        if self.watch is not None:
            assert self.ctx.injected_at is not None
            self.watch.start(self.ctx.injected_at)

    def symptom(self) -> None:
        try:
            self.ctx.event("symptom", self.drill._await_symptom(self.scenario, self.ctx))
            if self.watch is not None:
                self.watch.took_effect(self.drill.clock.monotonic())
        except BaseException:
            if self.watch is not None:
                self.watch.stop()
            raise

    def investigate(self) -> bool:
        watch = self.watch
        try:
            self.drill._diagnose(self.scenario, self.ctx)
            if watch is not None:  # alerts and every section's symptoms, before anyone acts
                watch.finish()
        finally:
            if watch is not None:
                watch.stop()
        if watch is not None:
            self.drill._detect_and_triage(watch, self.ctx)
        return True

    def mitigate(self) -> None:
        ctx, scenario, option = self.ctx, self.scenario, self.drill.option
        if self.ledger is not None:
            self.ledger.phase = "mitigation"
        ctx.event("mitigating", option.title if option else "")
        self.drill._mitigate(scenario, ctx)
        if scenario.fix is not None and option is None:
            done = scenario.fix(ctx)
            ctx.record(
                "fix",
                scenario.fix_source or "fix outside the runbook's options",
                "performed",
                done,
                by=Actor.HARNESS,
            )
            ctx.finding(
                Level.ERROR,
                FIX_NOT_DOCUMENTED,
                "the harness applied a fix the section's options do not contain ("
                f"{done}); the runbook only mentions it as: {scenario.fix_source!r}",
                suggestion="document it as a mitigation option with its command",
                cause=f"fix: {getattr(scenario.fix, '__name__', 'fix').strip('_')}",
            )

    def recovery(self) -> None:
        if self.drill.option is None and self.scenario.fix is None:
            self.drill._no_mitigation(self.ctx)
        else:
            self.drill._await_recovery(self.recovered, self.ctx, self.scenario)

    def steady_after(self) -> None:
        """The service's own steady state (a scenario's recovery check may name something
        only the mitigation brings, like a warmed cache)."""
        ctx = self.ctx
        try:
            self.drill._await(
                health_and_canary, ctx, "steady state after reverting the fault", 60.0
            )
        except WaitTimeout as exc:
            if not ctx.result.runbook_errors:
                raise  # nothing the runbook did explains it: the drill cannot go on
            # the runbook's own steps left the service broken even without the fault
            # (uploads left disabled, a deployment left at 0 replicas ...)
            ctx.finding(
                Level.ERROR,
                "service-left-broken",
                f"with the fault reverted the service is still not healthy: {exc.last}; "
                "the option's steps left it so",
                suggestion="end the option with steps that restore normal service, and a "
                "check that they did",
                cause=f"health_and_canary: {cause_class(str(exc.last or ''))}",
            )

    def verdict(self) -> None:
        if self.watch is not None:
            self.drill._after_recovery(self.watch, self.ctx)
        self.drill._verdict(self.scenario, self.ctx)
