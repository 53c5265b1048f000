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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.drill.ledger import Ledger
from runbook_checks.drill.result import Actor, DrillResult, Event, Verdict
from runbook_checks.drill.runner import DrillContext, DrillSession, health_and_canary
from runbook_checks.drill.sampler import HealthSampler
from runbook_checks.errors import UsageError
from runbook_checks.evidence.bundle import new_journal, write_bundle
from runbook_checks.evidence.journal import ScenarioRecord, environment_for
from runbook_checks.evidence.redact import Redactor, stack_redactor
from runbook_checks.evidence.scenarios import Catalogue, CatalogueEntry, discover
from runbook_checks.evidence.text import seconds
from runbook_checks.faults.base import Fault, FaultHandle
from runbook_checks.gate.findings import Finding, Level
from runbook_checks.runbook.model import Runbook, Step

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from runbook_checks.config import ChecksConfig
    from runbook_checks.stack.base import Stack

DEFAULT_SLA_S = 15 * 60.0
COMMANDS = {
    "d": "detected", "detected": "detected", "detect": "detected",
    "m": "mitigating", "mitigating": "mitigating", "mitigate": "mitigating",
    "r": "resolved", "resolved": "resolved", "resolve": "resolved",
    "abort": "abort", "q": "abort", "quit": "abort",
    "s": "status", "status": "status", "?": "help", "h": "help", "help": "help",
}  # fmt: skip
HELP = (
    "d / detected · m / mitigating · r / resolved (recovery is then checked) · "
    "run LINE (a runbook command, by its line) · status · abort"
)


# -- the operator's side ------------------------------------------------------------------


@dataclass
class GameDayState:
    """What the live view shows."""

    scenario: str  # what the operator may see ("hidden" unless revealed)
    severity: str
    sla_s: float
    phase: str = "starting"
    injected_at: float | None = None  # monotonic
    stopped_at: float | None = None  # monotonic: the clock stops once recovery is verified
    marks: dict[str, float] = field(default_factory=dict)  # event -> seconds since injection
    health: str = "-"
    ledger: str = "-"
    last: str = ""  # the last thing that happened, in words


class Operator(Protocol):
    """The person at the prompt: shows state, reads one command at a time."""

    def show(self, state: GameDayState) -> None: ...

    def say(self, text: str) -> None: ...

    def command(self, timeout_s: float) -> str | None:
        """The next line typed, or None when nothing was typed within `timeout_s`."""
        ...


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
        operator: Operator,
        *,
        work_dir: Path,
        reveal: bool = False,
        operator_name: str = "",
        clock: Clock = SYSTEM_CLOCK,
        poll_s: float = 0.25,
    ) -> None:
        self.entry = entry
        self.stack = stack
        self.runbook = runbook
        self.operator = operator
        self.work_dir = work_dir
        self.reveal = reveal
        self.operator_name = operator_name
        self.clock = clock
        self.poll_s = poll_s
        self._symptom_done = False
        self.section = runbook.section(entry.section)
        self.option = self.section.option(entry.option) if entry.option else None
        self.sla_s = sla_for(runbook, self.section.severity)
        self.redactor = stack_redactor(stack.endpoints)
        self.state = GameDayState(
            scenario=(entry.title if reveal else "hidden (the fault is for you to find)"),
            severity=self.section.severity or "-",
            sla_s=self.sla_s,
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
        self.operator.show(self.state)

    def _check(self, ctx: DrillContext) -> str | None:
        check = self.entry.scenario.recovered or health_and_canary
        return check(ctx)

    # -- the run --------------------------------------------------------------------------
    def run(self) -> ScenarioRecord:
        with DrillSession.open(
            self.stack, self.result, clock=self.clock, sample_interval_s=0.5
        ) as session:
            self._run_in(session)
        return ScenarioRecord(
            result=self.result,
            outcome="gameday",
            outcome_reason=self.result.error,
            samples_aligned=True,
            operator=self.operator_name,
        )

    def _run_in(self, session: DrillSession) -> None:
        result = self.result
        handle: FaultHandle | None = None
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
            handle = self._play(ctx, session.sampler, session.ledger)
        except Exception as exc:
            result.verdict = Verdict.ERROR
            result.error = f"{type(exc).__name__}: {exc}"
            self.operator.say(f"the game day could not go on: {result.error}")
        finally:
            # also on Ctrl-C, which leaves `_play` before it returns the handle
            handle = handle or (ctx.handle if ctx is not None else None)
            if handle is not None and handle.active:
                self.operator.say("reverting the fault ...")
                try:
                    handle.revert()
                    if ctx is not None:
                        self._event(ctx, "reverted", "fault reverted")
                except Exception as exc:  # say so: the stack is stopped next anyway
                    self.operator.say(f"reverting the fault failed: {exc}")

    def _play(
        self, ctx: DrillContext, sampler: HealthSampler, ledger: Ledger
    ) -> FaultHandle | None:
        scenario = self.entry.scenario
        result = self.result
        self.state.phase = "proving the steady state"
        self.operator.show(self.state)
        if scenario.arrange is not None:
            scenario.arrange(ctx)
        sampler.start()
        for _ in range(3):
            ledger.write()
        wait_until(
            lambda: self._check(ctx) is None or None,
            what="the steady state before the fault",
            timeout_s=30,
            interval_s=0.2,
            clock=self.clock,
        )
        ctx.event("steady", "steady state holds")
        fault = scenario.fault if isinstance(scenario.fault, Fault) else scenario.fault(ctx)
        result.fault = fault.describe()
        ledger.phase = "fault"
        ledger.start(interval_s=1.0)
        handle = fault.inject(self.stack, clock=self.clock)
        ctx.handle = handle
        ctx.injected_at = self.clock.monotonic()
        result.started_wall = self.clock.wall()
        self.state.injected_at = ctx.injected_at
        self._event(ctx, "injected", fault.describe())
        self.state.phase = "incident open: work it through the runbook"
        self.operator.say(
            "the fault is in; the clock runs."
            + (f" Injected: {fault.describe()}" if self.reveal else "")
        )
        resolved = self._prompt(ctx, sampler, ledger)
        if not resolved:
            result.verdict = Verdict.FAILED
            result.error = f"aborted by the operator after {seconds(ctx.since_inject())}"
            result.findings.append(
                Finding(
                    Level.ERROR,
                    "gameday-aborted",
                    self.section.id,
                    result.error,
                    suggestion="review the timeline: where did the runbook stop helping?",
                    source=f"gameday:{self.entry.name}",
                )
            )
            return handle
        self.state.phase = "reverting the fault"
        self.operator.show(self.state)
        handle.revert()
        self._event(ctx, "reverted", "fault reverted")
        wait_until(
            lambda: self._check(ctx) is None or None,
            what="the steady state after reverting the fault",
            timeout_s=60,
            interval_s=0.2,
            clock=self.clock,
        )
        ledger.phase = "after"
        for _ in range(3):
            ledger.write()
        result.ledger = ledger.verify()
        self._verdict(ctx)
        return handle

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
            command = COMMANDS.get(words[0].lower())
            at = ctx.since_inject()
            if command is None:
                self.operator.say(f"unknown command {line.strip()!r}; {HELP}")
            elif command == "help":
                self.operator.say(HELP)
            elif command == "status":
                self.operator.say(
                    f"T+{seconds(at)}: /health {self.state.health}; {self.state.ledger}"
                )
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


# -- the terminal -------------------------------------------------------------------------


class TerminalOperator:
    """rich live view with the prompt inside it (the terminal in cbreak mode, our own
    echo), or plain lines when stdin is not a terminal."""

    def __init__(
        self, console: Console, stream: TextIO = sys.stdin, clock: Clock = SYSTEM_CLOCK
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
            left = state.sla_s - elapsed
            clock_text = Text(f"{seconds(elapsed)}", style="bold")
            clock_text.append(f"   SLA {seconds(state.sla_s)} ({state.severity}): ", style="dim")
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

    # -- Operator -------------------------------------------------------------------------
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
    from rich.console import Console

    from runbook_checks.runbook.parser import parse_runbook
    from runbook_checks.stack import create_stack

    console = Console(highlight=False)
    # the fault proxy logs every refused upstream connection: noise on the operator's screen
    logging.getLogger("runbook_checks.stack").addHandler(logging.NullHandler())
    logging.getLogger("runbook_checks.stack").propagate = False
    runbook = parse_runbook(config.runbook)
    catalogue = discover()
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

    with create_stack(config) as local, tempfile.TemporaryDirectory(prefix="gameday-") as work:
        stack = cast("Stack", local)
        reason = (
            entry.scenario.fault.unsupported_reason(stack)
            if isinstance(entry.scenario.fault, Fault)
            else None
        )
        if reason:
            raise UsageError(f"{entry.name}: {reason}")
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


def _print_stack(console: Console, stack: Stack) -> None:
    ep = stack.endpoints
    console.print("\nthe stack is up. Work the incident from another terminal:")
    console.print(f"  Files API      {ep.api_url}", markup=False)
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
    "GameDay",
    "GameDayState",
    "Operator",
    "TerminalOperator",
    "find_step",
    "run_gameday_command",
    "sla_for",
]
