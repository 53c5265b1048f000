"""The pytest plugin (registered through the `pytest11` entry point).

Options (flags and ini keys from `runbook_checks.config.OPTIONS`), markers, and the
fixtures scenarios use: `checks_config`, `runbook`, `stack` (session scope) and
`fresh_stack` (per test: the same stack with its data reset). Imports of heavy modules
(servers, drivers) happen inside fixtures, so loading the plugin stays cheap.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runbook_checks.config import OPTIONS, ChecksConfig, from_pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from runbook_checks.drill.fixture import DrillFixture, SessionResults
    from runbook_checks.drill.incident import IncidentPlan
    from runbook_checks.drill.result import DrillResult, Event
    from runbook_checks.evidence.session import SessionEvidence, StackFacts
    from runbook_checks.gate.baseline import Baseline, Entry
    from runbook_checks.profile import Profile
    from runbook_checks.runbook.model import Runbook
    from runbook_checks.stack.base import Stack

_JOURNAL_KEY = pytest.StashKey["SessionResults"]()
_EVIDENCE_KEY = pytest.StashKey["SessionEvidence"]()
_FIGURES_KEY = pytest.StashKey[list[str]]()
# nodeid -> (section title, option) of every collected scenario, deselected ones too
_SCENARIOS_KEY = pytest.StashKey[dict[str, tuple[str, "str | None"]]]()
_FACTS_KEY: pytest.StashKey[StackFacts] = pytest.StashKey()
_RUNBOOK_KEY = pytest.StashKey["Runbook"]()
_SCHEDULE_KEY = pytest.StashKey[Path]()  # the file workers name load drills in
# scenarios -k/-m left out, and those a Ctrl-C or SIGTERM cut short (for the journal)
_DESELECTED_KEY = pytest.StashKey[set[str]]()
_INTERRUPTED_KEY = pytest.StashKey[list[str]]()
# Drills in parallel (pytest-xdist, `runbook-checks drill --workers N`): each worker runs
# its own stack; a drill's result rides to the controlling process on its test report,
# a worker's collected scenarios on its final output (see evidence/session.py)
DRILL_PROPERTY = "runbook-checks-drill"
SCENARIO_PROPERTY = "runbook-checks-scenario"
COLLECTED_OUTPUT = "runbook_checks_scenarios"
DESELECTED_OUTPUT = "runbook_checks_deselected"

MARKERS = (
    "runbook(section, option=None): the runbook section (and mitigation option) a scenario "
    "verifies; coverage is computed from these",
    "needs(*capabilities): stack capabilities the test requires (skipped where missing)",
    "integration: needs real servers",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runbook-checks")
    for option in OPTIONS:
        switch = {"nargs": "?", "const": "yes"} if option.default == "no" else {}
        group.addoption(
            f"--{option.name.replace('_', '-')}",
            dest=f"runbook_checks_{option.name}",
            default=None,
            help=f"{option.help} (default: {option.default})",
            **switch,
        )
        parser.addini(f"runbook_checks_{option.name}", help=option.help, default=None)
    group.addoption(
        "--drill-progress",
        action="store_true",
        default=False,
        help="print each drill phase (injected, detected, recovered ...) live",
    )


def is_worker(config: pytest.Config) -> bool:
    """Whether this session is a pytest-xdist worker (its controller reports and writes
    the evidence)."""
    return hasattr(config, "workerinput")


def _progress_printer(config: pytest.Config) -> Callable[[DrillResult, Event], None] | None:
    """Each drill phase as it happens (`--drill-progress`; `runbook-checks drill` sets it;
    not from parallel workers, whose output nobody sees: their tests' progress shows)."""
    if not config.getoption("drill_progress") or is_worker(config):
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None

    capture = config.pluginmanager.get_plugin("capturemanager")

    def show(result: DrillResult, event: Event) -> None:
        option = f" / {result.option}" if result.option else ""
        detail = f"  {event.detail[:90]}" if event.detail else ""
        line = f"  [{result.section_title}{option}] {event.at_s:7.1f}s  {event.name:<10}{detail}"
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():  # live, not into the test's capture
            reporter.write_line(line)

    return show


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    recorder = _OutcomeRecorder(config)
    config.pluginmanager.register(recorder, "runbook-checks-outcomes")
    config.pluginmanager.register(_WorkersProgress(recorder), "runbook-checks-workers-progress")
    config.stash[_FIGURES_KEY] = []
    # SIGTERM unwinds like Ctrl-C (fixtures torn down: faults reverted, stacks stopped),
    # unless someone else handles it already; an interrupt Python drops (raised inside a
    # finalizer) is delivered again until pytest takes it (runbook_checks.interrupts)
    from runbook_checks.interrupts import install

    install(only_if_default=True, persistent=True)
    _check_alert_rules(config)
    if not is_worker(config) and config.getoption("dist", "no") == "loadgroup":
        folder = Path(tempfile.mkdtemp(prefix="runbook-checks-schedule-"))
        config.stash[_SCHEDULE_KEY] = folder / "load-drills.json"
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """A parallel worker is being set up: where it names its load-driven drills."""
    from runbook_checks.drill.schedule import WORKERINPUT_KEY

    path = node.config.stash.get(_SCHEDULE_KEY, None)
    if path is not None:
        node.workerinput[WORKERINPUT_KEY] = str(path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` of drills: the load-driven ones first, back to back on one
    worker (drill/schedule.py)."""
    path = config.stash.get(_SCHEDULE_KEY, None)
    if path is None:
        return None
    from runbook_checks.drill.schedule import LoadDrillsFirst

    return LoadDrillsFirst(config, log, path)


def _check_alert_rules(config: pytest.Config) -> None:
    """A user's --alert-rules file is read once, up front: a bad one is one clear error
    (file, line, field), not one per scenario."""
    from runbook_checks.errors import RunbookChecksError

    try:
        checks = from_pytest(config)
    except RunbookChecksError:
        return  # the options' own errors are reported where they are used
    if checks.alert_rules is None:
        return
    from runbook_checks.monitor.rules import load_rules

    try:
        load_rules(checks.alert_rules, _session_runbook(config))
    except RunbookChecksError as exc:
        raise pytest.UsageError(f"--alert-rules: {exc}") from None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Remember which items are scenarios (and of which section), so the summary can say
    which did not run and why, and judge baseline entries only where all of a section ran;
    each scenario's report says so too (the controller of parallel drills collects
    nothing itself).

    A worker of parallel drills (`--dist loadgroup`) names its load-driven drills to the
    controller's scheduler and puts them first (drill/schedule.py)."""
    scenarios = config.stash.setdefault(_SCENARIOS_KEY, {})
    load_driven: set[str] = set()
    for item in items:
        marker = item.get_closest_marker("runbook")
        if marker is not None and marker.args:
            scenarios[item.nodeid] = (str(marker.args[0]), marker.kwargs.get("option"))
            item.user_properties.append((SCENARIO_PROPERTY, scenarios[item.nodeid]))
            if _drives_load(item):
                load_driven.add(item.nodeid)
    workerinput: dict[str, object] = getattr(config, "workerinput", {})
    named = workerinput.get("runbook_checks_load_drills")  # schedule.WORKERINPUT_KEY
    if isinstance(named, str):
        from runbook_checks.drill.schedule import write_load_drills

        write_load_drills(Path(named), sorted(load_driven))
        items.sort(key=lambda item: item.nodeid not in load_driven)  # stable: order kept


def _drives_load(item: pytest.Item) -> bool:
    """Does the test verify a scenario whose fault is traffic? Read from the scenarios the
    test function names (`drill.verify(SCALE_UP)`: module-level Scenario objects). A test
    that builds its scenario as it runs is not seen here: the load slot still keeps its
    drill apart from other load drills, only the scheduling is not arranged for it."""
    from runbook_checks.drill.spec import Scenario
    from runbook_checks.faults.base import Fault

    code = getattr(getattr(item, "function", None), "__code__", None)
    module = getattr(item, "module", None)
    if code is None or module is None:
        return False
    named = (vars(module).get(name) for name in code.co_names)
    return any(
        isinstance(value, Scenario) and isinstance(value.fault, Fault) and value.fault.drives_load()
        for value in named
    )


def pytest_deselected(items: list[pytest.Item]) -> None:
    if not items:
        return
    config = items[0].config
    scenarios = config.stash.setdefault(_SCENARIOS_KEY, {})
    deselected = config.stash.setdefault(_DESELECTED_KEY, set())
    for item in items:
        marker = item.get_closest_marker("runbook")
        if marker is not None and marker.args:
            scenarios[item.nodeid] = (str(marker.args[0]), marker.kwargs.get("option"))
            deselected.add(item.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A fault a test (or a crashed fixture) left injected is reverted when the test ends,
    and said so in the summary: the next test must not run against it."""
    from runbook_checks.faults.base import ACTIVE

    before = set(ACTIVE.handles)
    try:
        return (yield)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: this drill was cut short
        from runbook_checks.interrupts import acknowledge

        acknowledge()  # taken: not delivered again while its result is kept below
        item.config.stash.setdefault(_INTERRUPTED_KEY, []).append(item.nodeid)
        if not is_worker(item.config):  # no report carries its result: take it from here
            packed = [v for k, v in item.user_properties if k == DRILL_PROPERTY]
            _record_drill_results(item.config, packed)
        raise
    finally:
        for handle in set(ACTIVE.handles) - before:
            what = f"{item.nodeid} left {handle.fault.describe()} injected; reverted"
            try:
                handle.revert()
            except Exception as exc:
                what += f" with problems: {exc}"
            item.config.stash.get(_FIGURES_KEY, []).append(f"WARNING: {what}")


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """An interrupt leaving the test loop is taken here, at once: on an xdist controller
    nothing else takes it before pytest's report of it, which on a busy machine can
    outlast the redelivery's wait, and a second KeyboardInterrupt then cuts the
    controller's teardown short (workers never told to finish)."""
    try:
        return (yield)
    except KeyboardInterrupt:
        from runbook_checks.interrupts import acknowledge

        acknowledge()
        raise


@pytest.hookimpl(tryfirst=True)  # before the terminal's report of it (it can be slow)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    from runbook_checks.interrupts import acknowledge

    acknowledge()


def pytest_unconfigure(config: pytest.Config) -> None:
    """After an interrupted session: revert what is still live, release our stack folders
    (a second Ctrl-C may have cut a fixture's teardown short). After any session: release
    what a parallel worker that died (crashed, or killed by xdist) left."""
    from runbook_checks.interrupts import (
        CleanupReport,
        acknowledge,
        final_cleanup,
        install,
        received,
        release_own,
    )

    acknowledge()
    install(only_if_default=True, persistent=False)
    if config.stash.get(_FIGURES_KEY, None) is None:
        return
    report = final_cleanup() if received() else CleanupReport((), release_own(own=False))
    for line in report.lines():
        print(f"runbook-checks: {line}")


@pytest.fixture(scope="session")
def checks_config(pytestconfig: pytest.Config) -> ChecksConfig:
    return from_pytest(pytestconfig)


@pytest.fixture(scope="session")
def runbook(pytestconfig: pytest.Config) -> Runbook:
    return _session_runbook(pytestconfig)


@pytest.fixture(scope="session")
def stack(checks_config: ChecksConfig) -> Iterator[Stack]:
    from runbook_checks.stack import create_stack, start_with_retry

    running = start_with_retry(lambda: create_stack(checks_config))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def profile(checks_config: ChecksConfig) -> Profile:
    """The runbook's profile (--profile, else the one beside the runbook, else empty)."""
    from runbook_checks.profile import find_profile

    return find_profile(checks_config.runbook, checks_config.profile)


@pytest.fixture(scope="session")
def incident_plan(
    stack: Stack,
    runbook: Runbook,
    checks_config: ChecksConfig,
    tmp_path_factory: pytest.TempPathFactory,
    profile: Profile,
) -> IncidentPlan:
    """The runbook's symptom probes, and the alert rules the stack's Prometheus evaluates
    (the --alert-rules file, or rules derived from the runbook's symptoms)."""
    from runbook_checks.drill.incident import make_plan

    return make_plan(
        runbook,
        stack,
        rules_file=checks_config.alert_rules,
        window_s=checks_config.alert_window_s,
        alert_wait_s=checks_config.alert_wait_s,
        work_dir=tmp_path_factory.mktemp("alerts"),
        profile=profile,
    )


@pytest.fixture
def fresh_stack(stack: Stack, request: pytest.FixtureRequest) -> Stack:
    for marker in request.node.iter_markers("needs"):
        missing = [c for c in marker.args if c not in stack.capabilities]
        if missing:
            from runbook_checks.stack.base import Capability

            abilities = ", ".join(Capability(c).ability for c in missing)
            pytest.skip(f"the {stack.backend} backend cannot {abilities}")
    stack.reset_data()
    return stack


@pytest.fixture(scope="session")
def baseline(checks_config: ChecksConfig) -> Baseline:
    from runbook_checks.gate.baseline import load_baseline

    return load_baseline(None, runbook=checks_config.runbook)


@pytest.fixture(scope="session")
def journal(pytestconfig: pytest.Config) -> SessionResults:
    return pytestconfig.stash.setdefault(_JOURNAL_KEY, _new_results())


def _new_results() -> SessionResults:
    from runbook_checks.drill.fixture import SessionResults

    return SessionResults()


@pytest.fixture
def drill(
    fresh_stack: Stack,
    runbook: Runbook,
    baseline: Baseline,
    journal: SessionResults,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    checks_config: ChecksConfig,
    incident_plan: IncidentPlan,
    profile: Profile,
) -> DrillFixture:
    from runbook_checks.drill.fixture import DrillFixture

    marker = request.node.get_closest_marker("runbook")
    if marker is None or not marker.args:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the drill fixture needs @pytest.mark.runbook(section, "
            "option=...) naming the runbook section the scenario verifies"
        )
    return DrillFixture(
        stack=fresh_stack,
        runbook=runbook,
        section=str(marker.args[0]),
        option=marker.kwargs.get("option"),
        scenario_id=request.node.nodeid,
        work_dir=tmp_path_factory.mktemp("drill"),
        baseline=baseline,
        on_result=_report_result(request, fresh_stack),
        on_event=_progress_printer(request.config),
        max_wait_s=checks_config.max_recovery_wait_s,
        incident=incident_plan,
        profile=profile,
    )


def _report_result(request: pytest.FixtureRequest, stack: Stack) -> Callable[[DrillResult], None]:
    """A drill's result goes on its test's report, with the facts of the stack it ran on:
    the process that writes the evidence (this one, or parallel workers' controller)
    takes it from there (`_OutcomeRecorder`)."""
    from runbook_checks.evidence.session import StackFacts, pack

    config = request.config
    if _FACTS_KEY not in config.stash:  # one stack per session: read once, while it runs
        config.stash[_FACTS_KEY] = StackFacts.of(stack)
    facts = config.stash[_FACTS_KEY]

    def report(result: DrillResult) -> None:
        request.node.user_properties.append((DRILL_PROPERTY, pack(result, facts)))

    return report


def _session_runbook(config: pytest.Config) -> Runbook:
    """The runbook under test, parsed once a session (the `runbook` fixture's, and the
    evidence's in a parallel drills' controller, which runs no fixture)."""
    from runbook_checks.runbook.parser import parse_runbook

    if _RUNBOOK_KEY not in config.stash:
        config.stash[_RUNBOOK_KEY] = parse_runbook(from_pytest(config).runbook)
    return config.stash[_RUNBOOK_KEY]


def _session_evidence(config: pytest.Config) -> SessionEvidence:
    from runbook_checks.evidence.session import SessionEvidence

    if _EVIDENCE_KEY not in config.stash:
        config.stash[_EVIDENCE_KEY] = SessionEvidence()
    return config.stash[_EVIDENCE_KEY]


def _record_drill_results(config: pytest.Config, packed: list[object]) -> list[DrillResult]:
    """Packed drill results (from a test's report or, interrupted, its item) join the
    session's journal; the facts of their stacks join the evidence."""
    from runbook_checks.evidence.session import unpack

    if not packed:
        return []
    checks = from_pytest(config)
    evidence = _session_evidence(config)
    journal = config.stash.setdefault(_JOURNAL_KEY, _new_results())
    results = []
    for data in packed:
        result, facts = unpack(data if isinstance(data, bytes) else b"")
        evidence.saw(facts, _session_runbook(config), checks.evidence_dir)
        journal.add(result)
        results.append(result)
    return results


class _OutcomeRecorder:
    """Remembers pytest's outcome of each test for the evidence (junit, journal)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.finished: list[DrillResult] = []  # parallel workers' drills, to show

    def _skipped(self, report: pytest.TestReport, section: str, option: str | None) -> None:
        from runbook_checks.evidence.journal import SkippedScenario

        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr or "")
        reason = reason.removeprefix("Skipped: ")
        _session_evidence(self.config).skipped.append(
            SkippedScenario(report.nodeid, section, option, reason)
        )

    def _drill_results(self, report: pytest.TestReport) -> None:
        """The drill results on the report go into the session's journal (and off the
        report: they are bytes, not properties for a junit file)."""
        packed = [v for k, v in report.user_properties if k == DRILL_PROPERTY]
        if not packed or is_worker(self.config):  # a worker's go to its controller
            return
        report.user_properties = [p for p in report.user_properties if p[0] != DRILL_PROPERTY]
        if report.when != "call":  # every phase's report carries the test's properties
            return
        results = _record_drill_results(self.config, packed)
        if getattr(report, "node", None) is not None:  # a parallel worker's
            self.finished += results

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._drill_results(report)
        if report.when == "call":  # record_property("figure", ...): a line for the summary
            figures = self.config.stash.get(_FIGURES_KEY, [])
            figures += [str(v) for k, v in report.user_properties if k == "figure"]
        scenario = next((v for k, v in report.user_properties if k == SCENARIO_PROPERTY), None)
        if (
            isinstance(scenario, tuple | list)
            and report.skipped
            and not hasattr(report, "wasxfail")
        ):
            title, option = scenario
            self._skipped(report, str(title), None if option is None else str(option))
        evidence = self.config.stash.get(_EVIDENCE_KEY, None)
        if evidence is None:
            return
        if hasattr(report, "wasxfail"):
            evidence.outcome(
                report.nodeid,
                "xfailed" if report.skipped else "xpassed",
                str(report.wasxfail),
            )
        elif report.when == "call" or report.outcome != "passed":
            outcome = (
                report.outcome
                if report.when == "call"
                else ("error" if report.failed else report.outcome)
            )
            lines = report.longreprtext.strip().splitlines() if report.failed else []
            evidence.outcome(report.nodeid, outcome, lines[-1][:300] if lines else "")


class _WorkersProgress:
    """With --drill-progress, a parallel worker's drill shows as it ends, after its test's
    progress mark (its phases are not shown live: a worker's output is not the
    terminal)."""

    def __init__(self, recorder: _OutcomeRecorder) -> None:
        self.recorder = recorder

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        finished, self.recorder.finished = self.recorder.finished, []
        config = self.recorder.config
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if not finished or reporter is None or not config.getoption("drill_progress"):
            return
        reporter.write("\n")  # after the progress marks on the current line
        for result in finished:
            option = f" / {result.option}" if result.option else ""
            reporter.write_line(f"  [{result.section_title}{option}] {result.summary_line()}")


def _worker_pid(node: Any) -> int | None:
    """A parallel worker's process id (execnet's remote info, which xdist itself reads
    when it sets a worker up), or None."""
    try:
        return int(node.gateway._rinfo().pid)
    except Exception:
        return None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodeready(node: Any) -> None:
    """A parallel worker is up: a SIGTERM to this process reaches it at once (it unwinds
    its own drill and stack; xdist alone would wait seconds before it interrupts it), and
    what it leaves if it is cut short is released by this process (`adopt`)."""
    from runbook_checks.interrupts import adopt, forward_to

    pid = _worker_pid(node)
    if pid is not None:
        forward_to(pid)
        adopt(pid)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """A parallel worker is done: the scenarios it collected (deselected ones too) join
    the session's, to judge the baseline where every scenario of a section ran."""
    from runbook_checks.interrupts import forward_to

    pid = _worker_pid(node)
    if pid is not None:
        forward_to(pid, stop=True)
    output = getattr(node, "workeroutput", None) or {}
    scenarios = node.config.stash.setdefault(_SCENARIOS_KEY, {})
    for nodeid, (title, option) in dict(output.get(COLLECTED_OUTPUT, {})).items():
        scenarios[str(nodeid)] = (str(title), None if option is None else str(option))
    deselected = node.config.stash.setdefault(_DESELECTED_KEY, set())
    deselected.update(str(n) for n in output.get(DESELECTED_OUTPUT, ()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every session that ran drills leaves an evidence bundle (see runbook_checks.evidence);
    a parallel worker hands what it collected to its controller, which writes it."""
    config = session.config
    if is_worker(config):
        workeroutput: dict[str, object] = getattr(config, "workeroutput")  # noqa: B009
        workeroutput[COLLECTED_OUTPUT] = {
            nodeid: list(pair) for nodeid, pair in config.stash.get(_SCENARIOS_KEY, {}).items()
        }
        left_out: set[str] = config.stash.setdefault(_DESELECTED_KEY, set())
        workeroutput[DESELECTED_OUTPUT] = sorted(left_out)
        return
    journal = config.stash.get(_JOURNAL_KEY, None)
    evidence = config.stash.get(_EVIDENCE_KEY, None)
    if journal is None or not journal.results or evidence is None:
        return
    from runbook_checks.errors import RunbookChecksError

    evidence.stale_baseline = [e.describe() for e in _stale_entries(config, journal)]
    _record_session_shape(session, evidence)
    strict = from_pytest(config).strict_baseline
    if evidence.stale_baseline and strict and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

    try:
        evidence.write(journal.results, config.rootpath)
    except RunbookChecksError as exc:
        evidence.error = str(exc)
        if session.exitstatus == pytest.ExitCode.OK:  # a drill without evidence did not happen
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _record_session_shape(session: pytest.Session, evidence: SessionEvidence) -> None:
    """What the journal says of the session itself: cut short by a signal (and which
    drills it cut), and which of the collected scenarios it was asked to run."""
    from runbook_checks.evidence.journal import Selection
    from runbook_checks.interrupts import received

    config = session.config
    signals = received()
    if signals or session.exitstatus == pytest.ExitCode.INTERRUPTED:
        import signal

        evidence.interrupted = signal.Signals(signals[0]).name if signals else "KeyboardInterrupt"
        cut: list[str] = config.stash.setdefault(_INTERRUPTED_KEY, [])
        evidence.interrupted_scenarios = list(cut)
    deselected = config.stash.setdefault(_DESELECTED_KEY, set())
    evidence.selection = Selection(
        keyword=str(config.getoption("keyword", "") or ""),
        markexpr=str(config.getoption("markexpr", "") or ""),
        collected=len(config.stash.get(_SCENARIOS_KEY, {})),
        deselected=tuple(sorted(deselected)),
    )


def _stale_entries(config: pytest.Config, journal: SessionResults) -> list[Entry]:
    """Baseline entries of drill findings (with a cause) that no finding of this session
    matched, judged only for sections whose every collected scenario ran here (a `-k`
    subset or a skipped scenario leaves its section unjudged)."""
    from runbook_checks.gate.baseline import load_baseline
    from runbook_checks.runbook.parser import parse_runbook

    checks = from_pytest(config)
    baseline = load_baseline(None, runbook=checks.runbook)
    if not baseline.drill_entries():
        return []
    runbook = parse_runbook(checks.runbook)
    ran = {r.scenario for r in journal.results}
    scenarios = config.stash.get(_SCENARIOS_KEY, {})
    incomplete: set[str] = set()
    for nodeid, (title, _option) in scenarios.items():
        if nodeid not in ran:
            try:
                incomplete.add(runbook.section(title).id)
            except KeyError:
                continue
    findings = [f for r in journal.results for f in r.findings]
    drilled = {r.section_id for r in journal.results}
    return [
        entry
        for entry in baseline.stale(findings)
        if entry.cause and entry.section in drilled and entry.section not in incomplete
    ]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    figures = config.stash.get(_FIGURES_KEY, [])
    if figures:  # what the safety and security tests measured (record_property("figure"))
        terminalreporter.section("runbook-checks figures")
        for line in figures:
            terminalreporter.write_line(line)
    journal = config.stash.get(_JOURNAL_KEY, None)
    if journal is None or not journal.results:
        return
    terminalreporter.section("runbook drills")
    for result in journal.results:
        option = f" / {result.option}" if result.option else ""
        terminalreporter.write_line(f"{result.section_title}{option}")
        terminalreporter.write_line(f"    {result.summary_line()}")
        if result.note:
            terminalreporter.write_line(f"    {result.note[:300]}")
        for finding in result.runbook_errors:
            terminalreporter.write_line(f"    - line {finding.line}: {finding.message[:150]}")
    evidence = config.stash.get(_EVIDENCE_KEY, None)
    if evidence is not None and evidence.skipped:
        terminalreporter.write_line(f"{len(evidence.skipped)} scenario(s) did not run:")
        for skipped in evidence.skipped:
            option = f" / {skipped.option}" if skipped.option else ""
            terminalreporter.write_line(
                f"    {skipped.section_title}{option}: {skipped.reason}", yellow=True
            )
    if evidence is not None and evidence.stale_baseline:
        strict = " (--strict-baseline: this fails the session)"
        terminalreporter.write_line(
            f"{len(evidence.stale_baseline)} baseline entr"
            f"{'y matches' if len(evidence.stale_baseline) == 1 else 'ies match'} nothing any "
            "more (fixed: remove them)" + (strict if from_pytest(config).strict_baseline else ""),
            yellow=True,
        )
        for line in evidence.stale_baseline:
            terminalreporter.write_line(f"    {line}")
    elif evidence is not None:
        terminalreporter.write_line("baseline: 0 stale entries")
    if evidence is not None and evidence.folder is not None:
        terminalreporter.write_line(f"evidence: {evidence.folder}")
        terminalreporter.write_line(
            f"report:   {(evidence.folder / 'report.html').resolve().as_uri()}", bold=True
        )
    elif evidence is not None and evidence.error:
        terminalreporter.write_line(f"evidence NOT written: {evidence.error}", red=True)
