"""The pytest plugin as users meet it: options, ini keys, markers, and how a drill's
verdict becomes the test's outcome (pytester runs a real pytest in a temp folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.drill.fixture import conclude
from runbook_checks.drill.result import DrillResult, Verdict
from runbook_checks.gate.baseline import Baseline, Entry
from runbook_checks.gate.findings import Finding, Level

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
