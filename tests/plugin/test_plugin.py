"""The pytest plugin as users meet it: options, ini keys, markers, and how a drill's
verdict becomes the test's outcome (pytester runs a real pytest in a temp folder)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runbook_checks.drill.fixture import conclude
from runbook_checks.drill.result import DrillResult, Verdict
from runbook_checks.findings import Finding, Level
from runbook_checks.gate.baseline import Baseline, Entry

pytest_plugins = ["pytester"]


def test_options_and_markers_are_registered(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest("--help").stdout.str()
    for flag in ("--runbook", "--backend", "--evidence-dir", "--pool-size", "--drill-progress"):
        assert flag in help_text
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.runbook(section, option=None)" in markers


def test_strict_markers_catch_a_misspelt_marker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.runbok("SEV-1: API Server Down")
        def test_x():
            pass
    """)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*'runbok' not found in `markers`*"])


def test_a_bad_ini_value_names_the_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nrunbook_checks_backend = k8s\n")
    pytester.makepyfile("""
        def test_x(checks_config):
            pass
    """)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*--backend 'k8s' is not one of local, docker, external*"])


def test_the_flag_wins_over_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nrunbook_checks_pool_size = 7\n")
    pytester.makepyfile("""
        def test_x(checks_config):
            assert checks_config.pool_size == 9
    """)
    pytester.runpytest("--pool-size", "9").assert_outcomes(passed=1)


def _result(verdict: Verdict, *findings: Finding) -> DrillResult:
    return DrillResult(
        scenario="s",
        section_id="sev-1-x",
        section_title="SEV-1: X",
        option="A",
        section_hash="h",
        severity="SEV-1",
        fault="f",
        budget_s=900,
        findings=list(findings),
        verdict=verdict,
    )


DEFECT = Finding(
    Level.ERROR,
    "mitigation-step-failed",
    "sev-1-x",
    "fails",
    line=12,
    statement="aws elb register-targets",
)


def test_a_passed_drill_passes() -> None:
    conclude(_result(Verdict.PASSED), Baseline(None))


def test_an_acknowledged_runbook_defect_is_an_xfail_naming_the_reason() -> None:
    baseline = Baseline(
        Path("b.toml"),
        (
            Entry(
                "sev-1-x", "mitigation-step-failed", "aws elb  register-targets", "elb has none", 1
            ),
        ),
    )
    with pytest.raises(pytest.xfail.Exception, match="elb has none"):
        conclude(_result(Verdict.RUNBOOK_WRONG, DEFECT), baseline)


def test_a_new_runbook_defect_fails_with_the_finding() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"(?s)new finding.*line 12"):
        conclude(_result(Verdict.RUNBOOK_WRONG, DEFECT), Baseline(None))


def test_lost_data_fails_even_when_its_findings_are_acknowledged() -> None:
    baseline = Baseline(
        Path("b.toml"),
        (Entry("sev-1-x", "mitigation-step-failed", "aws elb register-targets", "known", 1),),
    )
    lost = _result(Verdict.FAILED, DEFECT)
    lost.error = "acknowledged uploads lost: 3"
    with pytest.raises(pytest.fail.Exception, match="uploads lost"):
        conclude(lost, baseline)


SESSION_CONFTEST = '''
from pathlib import Path

import pytest

import os

from runbook_checks.drill.result import DrillResult, Verdict
from runbook_checks.plugin import _report_result
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.stack.base import Endpoints

# each process's stack has secrets of its own (parallel workers: one stack each)
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


class FakeStack:
    backend = "fake"
    endpoints = Endpoints(
        "http://127.0.0.1:1", "postgresql://u:pw-123456@127.0.0.1:2/f", "", "", "b",
        "redis://127.0.0.1:3", "http://127.0.0.1:4", "us-east-1",
        f"adm-token-of-{WORKER}", Path(".")
    )

    def versions(self):
        return {"fake": WORKER}


@pytest.fixture
def drilled(request, checks_config):
    """What the drill fixture records, without a stack: a drill of the test's section
    that found nothing (its note names the stack's admin token: redacted in evidence)."""
    runbook = parse_runbook(checks_config.runbook)
    marker = request.node.get_closest_marker("runbook")
    section = runbook.section(marker.args[0])
    _report_result(request, FakeStack())(DrillResult(
        scenario=request.node.nodeid, section_id=section.id, section_title=section.title,
        option=marker.kwargs.get("option"), section_hash=section.content_hash,
        severity=section.severity, fault="f", budget_s=900, verdict=Verdict.PASSED,
        time_to_recover_s=1.0, note=f"ran with adm-token-of-{WORKER}",
    ))
'''

STALE_ENTRY = """
[[acknowledged]]
section = "sev-1-api-server-down"
kind = "mitigation-did-not-recover"
statement = "Option A: Restart API Server :: killed"
cause = "health_and_canary: http-503"
reason = "fixed since"

[[acknowledged]]
section = "sev-1-database-failure"
kind = "no-mitigation"
statement = "the database server's disk is full"
cause = "no-option"
reason = "its section did not run in full: not judged"
"""


def _session(pytester: pytest.Pytester) -> None:
    shipped = Path(__file__).resolve().parents[2] / "runbooks" / "files-incident-response.md"
    (pytester.path / "rb.md").write_bytes(shipped.read_bytes())
    (pytester.path / "rb.baseline.toml").write_text(STALE_ENTRY)
    pytester.makeconftest(SESSION_CONFTEST)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.runbook("SEV-1: API Server Down", option="A")
        def test_api(drilled):
            pass

        @pytest.mark.runbook("SEV-1: Database Failure", option="B")
        def test_replica():
            pytest.skip("the fake backend cannot replica")

        @pytest.mark.runbook("SEV-1: Database Failure", option="A")
        def test_db(drilled):
            pass
    """)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "parallel"])
def test_a_drill_session_lists_skipped_scenarios_and_stale_entries(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    """In one process or in parallel workers (a stack each): one evidence folder, each
    drill once, every stack's secrets redacted, the baseline judged as one session."""
    _session(pytester)
    result = pytester.runpytest(
        "--runbook", "rb.md", "--evidence-dir", "ev", "--drill-progress", *workers
    )
    result.assert_outcomes(passed=2, skipped=1)
    # a worker's drill shows as it ends (in one process, its phases show live instead)
    shown = "  [SEV-1: API Server Down / A] passed" in result.stdout.str()
    assert shown == bool(workers), result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*1 scenario(s) did not run:*",
            "*SEV-1: Database Failure / B: the fake backend cannot replica*",
            "*1 baseline entry matches nothing any more*",
            "*entry 1: sev-1-api-server-down / mitigation-did-not-recover*",
        ]
    )
    assert "entry 2:" not in result.stdout.str()  # its section did not run in full
    (folder,) = (pytester.path / "ev").iterdir()
    journal = (folder / "journal.json").read_text()
    assert "the fake backend cannot replica" in journal
    assert "entry 1: sev-1-api-server-down" in journal
    scenarios = json.loads(journal)["scenarios"]
    assert sorted(s["scenario"].rsplit("::")[-1] for s in scenarios) == ["test_api", "test_db"]
    assert "adm-token-of" not in journal
    assert [s["outcome"] for s in scenarios] == ["passed", "passed"]


def test_strict_baseline_fails_a_session_with_stale_entries(pytester: pytest.Pytester) -> None:
    _session(pytester)
    result = pytester.runpytest("--runbook", "rb.md", "--evidence-dir", "ev", "--strict-baseline")
    result.stdout.fnmatch_lines(["*--strict-baseline: this fails the session*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_bad_alert_rules_file_is_one_usage_error(pytester: pytest.Pytester) -> None:
    runbook = Path(__file__).resolve().parents[2] / "runbooks" / "files-incident-response.md"
    rules = pytester.makefile(
        ".yml", rules="groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: 'up =='\n"
    )
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--runbook", str(runbook), "--alert-rules", str(rules))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert err.count("--alert-rules") == 1
    assert "rules.yml" in err
    assert "expr" in err
    assert "passed" not in result.stdout.str()  # nothing ran


LOAD_SESSION = """
    import os

    import pytest

    from runbook_checks.drill.spec import Scenario
    from runbook_checks.faults.network import NetworkLatency
    from runbook_checks.faults.traffic import LoadIncrease

    TRAFFIC = Scenario(fault=LoadIncrease(users=1, duration_s=1), confirm=None, detect=None)
    QUIET = Scenario(fault=NetworkLatency("postgres", latency_ms=5), confirm=None, detect=None)

    def ran(name):
        with open("order.txt", "a") as out:
            out.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {name}\\n")
"""


def _load_session(pytester: pytest.Pytester) -> None:
    body = [LOAD_SESSION]
    for index in range(6):  # quiet drills first in the file, the load drills after them
        body.append(
            f"@pytest.mark.runbook('SEV-1: API Server Down', option='A')\n"
            f"def test_quiet_{index}():\n    QUIET\n    ran('quiet_{index}')\n"
        )
    for index in range(2):
        body.append(
            f"@pytest.mark.runbook('SEV-1: API Server Down', option='A')\n"
            f"def test_traffic_{index}():\n    TRAFFIC\n    ran('traffic_{index}')\n"
        )
    pytester.makepyfile(textwrap.dedent(body[0]) + "\n\n".join(body[1:]))


def test_load_drills_run_first_on_one_worker_under_loadgroup(pytester: pytest.Pytester) -> None:
    """The drills whose scenario's fault is traffic are one work unit, scheduled first:
    one worker drills them back to back from the start, the others drill the rest (and
    no node id changes: the evidence names each test as in every other mode)."""
    _load_session(pytester)
    result = pytester.runpytest("-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=8)
    assert "@" not in result.stdout.str().split("PASSED", 1)[1].split()[0], result.stdout
    lines = [line.split() for line in (pytester.path / "order.txt").read_text().splitlines()]
    workers = {worker for worker, name in lines if name.startswith("traffic")}
    assert len(workers) == 1, lines
    (worker,) = workers
    assert [name for w, name in lines if w == worker][:2] == ["traffic_0", "traffic_1"], lines


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "parallel"])
def test_a_k_subset_is_recorded_in_the_journal(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    """-k leaves scenarios out: the journal names the expression and which ones (parallel
    workers deselect, their controller writes), so the review keeps the session's runs
    apart from the pass rates."""
    _session(pytester)
    result = pytester.runpytest(
        "--runbook", "rb.md", "--evidence-dir", "ev", "-k", "test_api", *workers
    )
    result.assert_outcomes(passed=1, deselected=0 if workers else 2)  # xdist counts none
    (folder,) = (pytester.path / "ev").iterdir()
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["selection"]["keyword"] == "test_api"
    assert journal["selection"]["collected"] == 3
    assert sorted(n.rsplit("::")[-1] for n in journal["selection"]["deselected"]) == [
        "test_db",
        "test_replica",
    ]
    assert journal["interrupted"] == ""


def test_a_whole_session_has_no_subset(pytester: pytest.Pytester) -> None:
    _session(pytester)
    pytester.runpytest("--runbook", "rb.md", "--evidence-dir", "ev").assert_outcomes(
        passed=2, skipped=1
    )
    (folder,) = (pytester.path / "ev").iterdir()
    selection = json.loads((folder / "journal.json").read_text())["selection"]
    assert selection == {"keyword": "", "markexpr": "", "collected": 3, "deselected": []}


@pytest.mark.parametrize(
    ("cut", "said"),
    [
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)", "SIGTERM"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_drill_is_recorded_as_interrupted(
    pytester: pytest.Pytester, cut: str, said: str
) -> None:
    """Ctrl-C or SIGTERM in the middle of a drill: the drill's result (what it measured
    so far) is still evidence, and the journal says the session and that drill were cut
    short, and by what."""
    _session(pytester)
    pytester.makepyfile(
        test_cut=f"""
        import os, signal, time
        import pytest

        @pytest.mark.runbook("SEV-1: API Server Down", option="A")
        def test_a_first(drilled):
            pass

        @pytest.mark.runbook("SEV-1: Database Failure", option="A")
        def test_b_cut(drilled):
            {cut}
        """
    )
    result = pytester.runpytest_subprocess(
        "--runbook", "rb.md", "--evidence-dir", "ev", "test_cut.py"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    (folder,) = (pytester.path / "ev").iterdir()
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["interrupted"] == said
    assert [n.rsplit("::")[-1] for n in journal["interrupted_scenarios"]] == ["test_b_cut"]
    assert sorted(s["scenario"].rsplit("::")[-1] for s in journal["scenarios"]) == [
        "test_a_first",
        "test_b_cut",
    ]


def test_a_parallel_sessions_interrupt_is_taken_once_however_slow_its_report(
    pytester: pytest.Pytester,
) -> None:
    """An xdist controller SIGTERMed takes the interrupt as it leaves the test loop. A slow
    report of it afterwards (a busy machine: the terminal builds the traceback) must not
    have it delivered again: a second KeyboardInterrupt cut the controller's teardown
    short (no summary; workers never told to finish, cut off later with their stacks
    half stopped: a fresh-clone run's leftover)."""
    pytester.makeconftest(
        """
        import time

        def pytest_keyboard_interrupt(excinfo):
            time.sleep(2.5)  # longer than runbook_checks.interrupts.REDELIVER_AFTER_S
        """
    )
    pytester.makepyfile(
        test_cut="""
        import os, signal, time

        def test_cut():
            os.kill(os.getppid(), signal.SIGTERM)  # the controller
            time.sleep(30)
        """
    )
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:randomly", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    result.stdout.fnmatch_lines(["*KeyboardInterrupt: SIGTERM*", "*= * in *s =*"])
