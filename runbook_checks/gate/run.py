"""The gate: run every check on a runbook and weigh the findings against the baseline.

Static checks (structure, text, SQL syntax, aws lines, coverage, drift) need no
servers. Live checks need the stack: the API's OpenAPI document for the curl lines, the
database for the SQL schema, and the whole stack, healthy, for the investigation steps.
With `offline`, curl lines are checked against the document built in-process and the
live checks are skipped. The static checks run on a worker thread while the stack
starts on this one (the stack's processes die with the thread that spawned them).

A runbook whose profile names no stack (another team's, with no twin of its service)
is checked without one: its SQL is resolved against a stock PostgreSQL's system catalogs
(`sql_check.check_stock`: pg_stat_activity, pg_locks, settings ... and "no schema for
table X" for its own tables), its aws lines against botocore, everything else classified
and reported; no stack is started for it (mode "static").
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.findings import Finding, Level
from runbook_checks.gate import (
    aws_check,
    coverage,
    curl_check,
    diagnostics,
    sql_check,
    structure,
    text,
)
from runbook_checks.gate.baseline import Baseline, Entry, load_baseline
from runbook_checks.gate.drift import Drift, drift_since
from runbook_checks.gate.locate import Located, runbook_steps
from runbook_checks.profile import Profile, find_profile
from runbook_checks.runbook.model import Runbook
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.runbook.source import read_source

if TYPE_CHECKING:
    from runbook_checks.config import ChecksConfig
    from runbook_checks.gate.openapi import ApiRoutes
    from runbook_checks.stack.base import Stack

_LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


@dataclass(frozen=True)
class GateOptions:
    runbook: Path
    base: str | None = None  # git revision for drift
    baseline: Path | None = None  # default: <runbook>.baseline.toml when it exists
    offline: bool = False
    scenarios: Path | None = None  # default: found from the runbook's folder
    clock: Clock = SYSTEM_CLOCK
    config: ChecksConfig | None = None  # for starting the stack (backend, pool size)
    timeout_s: float = 10.0  # per live step
    profile: Profile | None = None  # default: the runbook's own (runbook_checks/profile.py)


@dataclass(frozen=True)
class CheckRun:
    name: str
    kinds: tuple[str, ...]
    ran: bool
    duration_s: float = 0.0
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ran": self.ran,
            "duration_s": round(self.duration_s, 3),
            "note": self.note,
        }


@dataclass(frozen=True)
class Result:
    finding: Finding
    entry: Entry | None  # the baseline entry that acknowledges it

    @property
    def acknowledged(self) -> bool:
        return self.entry is not None

    @property
    def new_error(self) -> bool:
        return self.finding.level is Level.ERROR and self.entry is None


@dataclass(frozen=True)
class GateReport:
    runbook: Runbook
    results: tuple[Result, ...]
    baseline: Baseline
    stale: tuple[Entry, ...]  # entries of checks that ran, matching nothing
    unchecked: tuple[Entry, ...]  # entries of kinds this run does not produce (drills ...)
    checks: tuple[CheckRun, ...]
    mode: str  # "live", "offline", or "static" (no stack: the profile names none)
    today: dt.date
    drift: Drift | None = None
    duration_s: float = 0.0
    stack_start_s: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(r.finding for r in self.results)

    @property
    def new_errors(self) -> tuple[Result, ...]:
        return tuple(r for r in self.results if r.new_error)

    @property
    def exit_code(self) -> int:
        return 1 if self.new_errors else 0

    def count(self, level: Level, *, acknowledged: bool | None = None) -> int:
        return sum(
            1
            for r in self.results
            if r.finding.level is level and (acknowledged is None or r.acknowledged == acknowledged)
        )


class _Timer:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.runs: list[CheckRun] = []

    @contextlib.contextmanager
    def check(self, name: str, kinds: Sequence[str], note: str = "") -> Iterator[None]:
        start = self.clock.monotonic()
        yield
        self.runs.append(CheckRun(name, tuple(kinds), True, self.clock.monotonic() - start, note))

    def skipped(self, name: str, kinds: Sequence[str], note: str) -> None:
        self.runs.append(CheckRun(name, tuple(kinds), False, 0.0, note))


@dataclass
class _Static:
    findings: list[Finding]
    drift: Drift | None


def _static(
    options: GateOptions,
    runbook: Runbook,
    lines: list[str],
    steps: list[Located],
    scan: coverage.Scan,
    timer: _Timer,
    today: dt.date,
    stock: bool = False,
) -> _Static:
    findings: list[Finding] = []
    with timer.check("structure", structure.KINDS):
        findings += structure.check_structure(runbook)
        findings += structure.check_parse_warnings(runbook)
    with timer.check("text", text.KINDS):
        findings += text.check_text(runbook, lines, today)
    with timer.check("sql-syntax", sql_check.STATIC_KINDS):
        findings += sql_check.check_sql_syntax(steps, "\n".join(lines))
    if stock:
        from runbook_checks.gate.stock_catalog import VERSION

        note = f"PostgreSQL {VERSION}'s system catalogs: the profile names no stack"
        with timer.check("sql-stock", sql_check.STOCK_KINDS, note):
            findings += sql_check.validate_stock(steps, "\n".join(lines))
    with timer.check("aws", aws_check.KINDS):
        findings += aws_check.check_aws_steps(steps)
    where = str(scan.folder) if scan.folder else "no scenarios folder"
    with timer.check("coverage", coverage.KINDS, f"{len(scan.markers)} marker(s) in {where}"):
        findings += coverage.check_coverage(runbook, scan)
    drift: Drift | None = None
    if options.base:
        with timer.check("drift", ()):
            drift = drift_since(options.base, options.runbook, runbook, lines, scan)
    return _Static(findings, drift)


def _curl(
    steps: list[Located], routes: ApiRoutes, hosts: Sequence[str], timer: _Timer
) -> list[Finding]:
    with timer.check("curl", curl_check.KINDS, f"routes from {routes.source}"):
        return curl_check.check_curl(steps, routes, hosts)


def run_gate(
    options: GateOptions,
    *,
    stack: Stack | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Run the gate. A given `stack` is used as it is (and left running); otherwise the
    gate starts one (unless offline) and stops it. Raises `RunbookChecksError` when it
    cannot run (bad path, unreadable runbook or baseline, unknown --base, no stack)."""
    say = on_progress or (lambda _message: None)
    clock = options.clock
    started = clock.monotonic()
    today = dt.datetime.fromtimestamp(clock.wall(), tz=dt.UTC).date()
    runbook = parse_runbook(options.runbook)
    lines = read_source(options.runbook).lines
    baseline = load_baseline(options.baseline, runbook=options.runbook)
    steps = runbook_steps(runbook)
    # the runbook's profile, read once: everything below uses options.profile
    profile = options.profile if options.profile is not None else find_profile(options.runbook)
    options = dataclasses.replace(options, profile=profile)
    # the scenarios that drill this runbook: named on the command line, else by its
    # profile; a runbook without a profile has none (never another runbook's)
    folder = options.scenarios or profile.scenarios
    scan = coverage.scan_scenarios(folder) if folder else coverage.Scan()
    timer = _Timer(clock)
    findings: list[Finding] = []
    stack_start_s: float | None = None
    # SQL is validated on the stack's live schema only where the profile names the stack
    # that stands in for the service; else against a stock catalog, and with no stack
    stock = not profile.stack
    static_only = options.offline or (stock and stack is None)

    live_checks = (
        ("sql-schema", sql_check.LIVE_KINDS),
        ("diagnostics", diagnostics.KINDS),
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gate-static") as pool:
        static = pool.submit(_static, options, runbook, lines, steps, scan, timer, today, stock)
        if static_only:
            from runbook_checks.gate.openapi import offline_document

            why = "--offline" if options.offline else "the runbook's profile names no stack"
            say(f"{why}: static checks only")
            hosts = profile.hosts_to("api", "api-instance")
            if profile.kit:
                findings += _curl(steps, offline_document(profile.service_kit()), hosts, timer)
            else:
                timer.skipped(
                    "curl", curl_check.KINDS, "the runbook's profile names no service kit"
                )
            for name, kinds in live_checks:
                timer.skipped(name, kinds, f"{why}: no stack" if options.offline else why)
            result = static.result()
        else:
            with contextlib.ExitStack() as cleanup:
                if stack is None:
                    stack, stack_start_s = _start_stack(options, clock, say, cleanup)
                result = static.result()
                findings += _live(
                    steps,
                    stack,
                    options,
                    timer,
                    say,
                    findings + result.findings,
                    "\n".join(lines),
                    stock,
                )
    findings = result.findings + findings
    findings = _dedupe(findings)
    findings.sort(key=lambda f: (f.line or 10**9, _LEVEL_ORDER[f.level], f.kind))
    results = tuple(Result(f, baseline.entry_for(f)) for f in findings)
    produced = {k for run in timer.runs if run.ran for k in run.kinds}
    # entries with a cause fingerprint are a drill's findings: only a drill checks them
    stale = tuple(e for e in baseline.stale(findings) if e.kind in produced and not e.cause)
    unchecked = tuple(e for e in baseline.entries if e.kind not in produced or e.cause)
    order = [
        "structure",
        "text",
        "sql-syntax",
        "sql-stock",
        "aws",
        "coverage",
        "drift",
        "curl",
        "sql-schema",
        "diagnostics",
    ]
    checks = tuple(sorted(timer.runs, key=lambda r: order.index(r.name)))
    return GateReport(
        runbook=runbook,
        results=results,
        baseline=baseline,
        stale=stale,
        unchecked=unchecked,
        checks=checks,
        mode="offline" if options.offline else "static" if static_only else "live",
        today=today,
        drift=result.drift,
        duration_s=clock.monotonic() - started,
        stack_start_s=stack_start_s,
    )


def _profile(options: GateOptions) -> Profile:
    """The profile `run_gate` resolved (it puts it in the options it passes on)."""
    assert options.profile is not None, "run_gate resolves the profile first"
    return options.profile


def start_stack(
    options: GateOptions, say: Callable[[str], None], cleanup: contextlib.ExitStack
) -> Stack:
    """The stack the gate would start for `options`, stopped when `cleanup` closes (for
    a caller that gates more than once on one stack: `runbook-checks fix`)."""
    return _start_stack(options, options.clock, say, cleanup)[0]


def _start_stack(
    options: GateOptions, clock: Clock, say: Callable[[str], None], cleanup: contextlib.ExitStack
) -> tuple[Stack, float]:
    from runbook_checks.config import OPTIONS, ChecksConfig
    from runbook_checks.stack import create_stack, start_with_retry

    config = options.config or ChecksConfig.from_values(
        {o.name: o.default for o in OPTIONS} | {"runbook": str(options.runbook)}, root=Path.cwd()
    )
    source = options.profile.source if options.profile is not None else None
    if config.profile is None and source is not None:
        # the stack runs the service of the profile the gate was given, wherever it is
        config = dataclasses.replace(config, profile=source)
    say(f"starting the stack ({config.backend}) ...")
    began = clock.monotonic()
    # no Prometheus: no check of the gate reads it (a runbook's PromQL is a manual step)
    stack = start_with_retry(lambda: create_stack(config, monitoring=False))
    cleanup.callback(stack.stop)
    took = clock.monotonic() - began
    say(f"stack up in {took:.1f}s")
    # LocalStack's `endpoints` is a read-only property where the protocol declares an
    # attribute: the same object, typed as the protocol the checks use
    return cast("Stack", stack), took


def _live(
    steps: list[Located],
    stack: Stack,
    options: GateOptions,
    timer: _Timer,
    say: Callable[[str], None],
    so_far: list[Finding],
    source: str,
    stock: bool = False,
) -> list[Finding]:
    from runbook_checks.gate.openapi import from_stack

    endpoints = stack.endpoints
    if any(item.step.may_call_aws for item in diagnostics.investigation_steps(steps)):
        stack.prepare("aws")  # comes up while the checks before the diagnostics run
    hosts = _profile(options).hosts_to("api", "api-instance")
    found = _curl(steps, from_stack(endpoints.api_url), hosts, timer)
    if stock:  # the stack is not the runbook's service: its schema says nothing
        timer.skipped("sql-schema", sql_check.LIVE_KINDS, "the profile names no stack")
    else:
        say("validating SQL against the live schema ...")
        with (
            timer.check("sql-schema", sql_check.LIVE_KINDS, "each statement rolled back"),
            sql_check.SchemaValidator(endpoints.database_url, timeout_s=5.0) as db,
        ):
            found += sql_check.validate_sql(steps, db, source)
    say("running the investigation steps on the healthy stack ...")
    with (
        timer.check("diagnostics", diagnostics.KINDS),
        tempfile.TemporaryDirectory(prefix="runbook-checks-gate-") as work,
    ):
        roles = diagnostics.seed(stack, timeout_s=options.timeout_s)
        results = diagnostics.run_diagnostics(
            steps,
            stack,
            roles,
            Path(work),
            clock=options.clock,
            timeout_s=options.timeout_s,
            profile=_profile(options),
        )
        merged = diagnostics.diagnostic_findings(results, [*so_far, *found])
    # what is new, and earlier findings that now carry live evidence (`_dedupe` keeps
    # those over their evidence-less originals)
    return [f for f in merged if f not in so_far]


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Keep one finding per (key, line); prefer the one carrying evidence."""
    best: dict[tuple[str, int], Finding] = {}
    for f in findings:
        key = (f.key, f.line)
        if key not in best or (f.evidence and not best[key].evidence):
            best[key] = f
    return list(best.values())
