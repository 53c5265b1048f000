"""Who did the work decides the verdict: the pytest outcome, the baseline's cause
fingerprint and max_lost bound, the coverage cells, the data-loss warning (no servers)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from runbook_checks.drill.detect import any_of, log_lines_since_injection, process_missing
from runbook_checks.drill.fixture import conclude
from runbook_checks.drill.ledger import LedgerResult, LostWrite
from runbook_checks.drill.result import Actor, DrillResult, StepRecord, Verdict
from runbook_checks.drill.runner import WRITES_LOST, warns_of_data_loss
from runbook_checks.evidence.coverage import coverage
from runbook_checks.evidence.journal import ScenarioRecord, SkippedScenario
from runbook_checks.findings import Finding, Level, cause_class
from runbook_checks.gate.baseline import Baseline, Entry, load_baseline
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Phase, Step, StepKind
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.steps.base import StepResult, StepStatus

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")
SECTION = "sev-1-api-server-down"


def _result(
    verdict: Verdict, *findings: Finding, steps: tuple[StepRecord, ...] = ()
) -> DrillResult:
    return DrillResult(
        scenario="scenarios/test_x.py::test_y",
        section_id=SECTION,
        section_title="SEV-1: API Server Down",
        option="B",
        section_hash="h",
        severity="SEV-1",
        fault="kill",
        budget_s=900,
        findings=list(findings),
        steps=list(steps),
        verdict=verdict,
        time_to_recover_s=3.0,
    )


def _finding(kind: str, cause: str, statement: str = "aws elb register-targets") -> Finding:
    return Finding(
        Level.ERROR,
        kind,
        SECTION,
        "m",
        line=110,
        statement=statement,
        source="drill:x",
        cause=cause,
    )


def _entry(kind: str, cause: str, statement: str = "aws elb register-targets") -> Entry:
    return Entry(SECTION, kind, statement, "known", 1, cause)


def test_earned_verdicts_pass_and_assisted_is_never_a_pass() -> None:
    conclude(_result(Verdict.PASSED), Baseline(None))
    conclude(_result(Verdict.RECOVERED_BY_WAITING), Baseline(None))
    harness = _finding("harness-assisted", "harness: move_target")
    with pytest.raises(pytest.fail.Exception, match="assisted: new finding"):
        conclude(_result(Verdict.ASSISTED, harness), Baseline(None))
    acknowledged = Baseline(None, (_entry("harness-assisted", "harness: move_target"),))
    with pytest.raises(pytest.xfail.Exception, match="assisted, acknowledged") as xfailed:
        conclude(_result(Verdict.ASSISTED, harness), acknowledged)
    assert not xfailed.value.pytrace  # its reason is reported, no traceback is formatted


def test_a_failed_drills_message_names_no_secret_of_its_stack() -> None:
    """The failure's text reaches the console and pytest's reports, where the evidence's
    redaction does not: the stack's secrets are taken out of it too."""
    token = "Q7xyzZm2Uszu87HthmHVrEjJEUGMaM1I"
    stack_secrets = Redactor(frozenset({token}))
    result = replace(
        _result(Verdict.ERROR),
        error=f"RuntimeError: the warm-up failed: placeholder(s) without a value: {token}",
    )
    new = replace(
        _result(Verdict.RUNBOOK_WRONG, replace(_finding("k", "c"), message=f"sent {token}")),
        error="",
    )
    for failed in (result, new):
        with pytest.raises(pytest.fail.Exception) as caught:
            conclude(failed, Baseline(None), stack_secrets)
        assert token not in str(caught.value)
        assert "***" in str(caught.value)
    with pytest.raises(pytest.fail.Exception) as caught:
        conclude(result, Baseline(None))  # a stack's secrets are not known here
    assert token in str(caught.value)


def test_a_new_cause_of_an_acknowledged_kind_fails() -> None:
    baseline = Baseline(None, (_entry("mitigation-did-not-recover", "link: http-404"),))
    same = _finding("mitigation-did-not-recover", "link: http-404")
    other = _finding("mitigation-did-not-recover", "link: unreachable")
    with pytest.raises(pytest.xfail.Exception):
        conclude(_result(Verdict.RUNBOOK_WRONG, same), baseline)
    with pytest.raises(pytest.fail.Exception, match="not in the baseline"):
        conclude(_result(Verdict.RUNBOOK_WRONG, other), baseline)


def test_a_drill_finding_never_matches_an_entry_without_its_cause() -> None:
    entry = _entry("curl-missing-auth", "")
    gate = replace(_finding("curl-missing-auth", ""), source="gate")
    assert entry.matches(gate)
    assert not entry.matches(_finding("curl-missing-auth", "http-401"))
    assert Baseline(None, (entry,)).gate_entries() == (entry,)


def _lost(n: int) -> LedgerResult:
    lost = tuple(LostWrite(f"w{i}", f"id{i}", "fault", "404") for i in range(n))
    return LedgerResult(attempted=9, acknowledged=9, stable=9 - n, lost=lost, unacknowledged=0)


def test_lost_writes_hold_in_the_baseline_only_within_max_lost() -> None:
    finding = _finding(WRITES_LOST, "ledger: lost", statement="Option B :: failover")
    result = replace(_result(Verdict.FAILED, finding), ledger=_lost(2))
    bounded = Baseline(
        None, (replace(_entry(WRITES_LOST, "ledger: lost", "Option B :: failover"), max_lost=2),)
    )
    with pytest.raises(pytest.xfail.Exception):
        conclude(result, bounded)
    with pytest.raises(pytest.fail.Exception):
        conclude(replace(result, ledger=_lost(3)), bounded)
    unbounded = Baseline(None, (_entry(WRITES_LOST, "ledger: lost", "Option B :: failover"),))
    with pytest.raises(pytest.fail.Exception):
        conclude(result, unbounded)


def test_max_lost_must_be_a_count(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(
        '[[acknowledged]]\nsection = "s"\nkind = "k"\nstatement = "x"\nreason = "r"\n'
        'cause = "c"\nmax_lost = "many"\n'
    )
    with pytest.raises(Exception, match="max_lost must be a whole number"):
        load_baseline(path)


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        ("the share link answers 404 (share expires_at=2026-01-01 10:00)", "http-404"),
        ("error rate 41% over 117 recent requests", "errors"),
        ("[Errno 111] ECONNREFUSED", "ECONNREFUSED"),
        ('ERROR: column "user_id" does not exist [SQLSTATE 42703]', "sqlstate-42703"),
        ("canary failed: ReadTimeout", "timeout"),
        ("3 upload(s) still queued", "still-pending"),
    ],
)
def test_a_cause_is_classed_without_the_figures_that_change(observed: str, expected: str) -> None:
    assert cause_class(observed) == expected


def test_only_an_option_that_warns_of_data_loss_accepts_it() -> None:
    database = RUNBOOK.section("sev-1-database-failure")
    assert warns_of_data_loss(database.option("C"))  # "LAST RESORT - Data loss possible!"
    assert not warns_of_data_loss(database.option("B"))
    assert not warns_of_data_loss(None)


def _record(verdict: Verdict, option: str, *steps: StepRecord) -> ScenarioRecord:
    result = replace(_result(verdict), option=option, steps=list(steps))
    return ScenarioRecord(result, outcome="passed")


def _step(line: int, status: str = "ok", by: Actor = Actor.RUNBOOK) -> StepRecord:
    return StepRecord("mitigation", line, "cmd", "cmd", status, 1.0, 0.1, by=by)


def test_coverage_cells_say_who_did_the_work() -> None:
    section = RUNBOOK.section(SECTION)
    a_lines = [s.line for s in section.option("A").steps]
    b_lines = [s.line for s in section.option("B").steps]
    c_lines = [s.line for s in section.option("C").steps]
    records = [
        _record(Verdict.PASSED, "A", *(_step(n) for n in a_lines)),
        _record(
            Verdict.ASSISTED,
            "B",
            *(_step(n) for n in b_lines),
            _step(b_lines[0], "performed", Actor.HARNESS),
        ),
        _record(Verdict.PASSED, "C", _step(c_lines[0])),
    ]
    skipped = [SkippedScenario("x::y", "SEV-1: Database Failure", "B", "needs root")]
    rows = {(r.section_id, r.option): r.status for r in coverage(RUNBOOK, records, skipped)}
    assert rows[(SECTION, "A")] == "verified"
    assert rows[(SECTION, "B")] == "assisted"
    assert rows[(SECTION, "C")] == "partly verified"
    assert rows[("sev-1-database-failure", "B")] == "skipped (needs root)"
    assert rows[("sev-1-database-failure", "A")] == "not drilled"
    waited = _record(Verdict.RECOVERED_BY_WAITING, "A", *(_step(n) for n in a_lines))
    rows = {(r.section_id, r.option): r.status for r in coverage(RUNBOOK, [waited])}
    assert rows[(SECTION, "A")] == "recovered by waiting"


def test_recovered_by_says_who_ended_the_failure() -> None:
    assert _result(Verdict.PASSED).recovered_by == "runbook"
    provider = _step(1, "performed", Actor.PROVIDER)
    assert _result(Verdict.PASSED, steps=(provider,)).recovered_by == "waiting"
    harness = _step(1, "performed", Actor.HARNESS)
    assert _result(Verdict.PASSED, steps=(provider, harness)).recovered_by == "harness"


def _outcome(text: str, output: str = "", status: StepStatus = StepStatus.OK) -> StepResult:
    step = Step(text, text, 1, "bash", StepKind.SHELL, Phase.INVESTIGATION)
    return StepResult(step, status, output=output)


def test_a_detector_names_what_it_reads_and_what_it_cannot() -> None:
    section = RUNBOOK.section(SECTION)
    detector = any_of(process_missing("files_api"), process_missing("x"))
    assert detector.unread(section.investigation) == []
    from runbook_checks.drill.detect import http_failing

    unread = any_of(process_missing("files_api"), http_failing("/health")).unread(
        section.investigation
    )
    assert [d.name for d in unread] == ["http_failing(/health)"]
    # a command it does not read is never judged
    assert process_missing("files_api")(_outcome("df -h", ""), None) is None  # type: ignore[arg-type]
    assert process_missing("files_api")(_outcome("ps aux", "root 1 init"), None)  # type: ignore[arg-type]


class _Ctx:
    injected_wall = 1_800_000_000.0


def test_log_lines_before_the_injection_are_not_detection() -> None:
    old = '{"ts": "2027-01-15T07:59:59+00:00", "msg": "pool exhausted"}'
    new = '{"ts": "2027-01-15T08:00:01+00:00", "msg": "pool exhausted"}'
    outcome = _outcome("tail -100 /var/log/api/error.log", f"{old}\n{new}\nnot json")
    lines = list(log_lines_since_injection(outcome, _Ctx()))  # type: ignore[arg-type]
    assert [line["ts"] for line in lines] == ["2027-01-15T08:00:01+00:00"]
