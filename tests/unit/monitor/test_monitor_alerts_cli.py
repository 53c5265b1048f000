"""`runbook-checks alerts`: the derived rules printed or written, their promtool tests,
--check's verdict (0 / 1), and one clear error with exit 2 on bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from runbook_checks.cli import main
from runbook_checks.monitor import promtool, rules

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = str(ROOT / "runbooks" / "files-incident-response.md")
needs_promtool = pytest.mark.skipif(
    promtool.find_promtool() is None,
    reason="promtool is not installed (scripts/setup.sh installs it; or set PROMTOOL)",
)


def test_prints_the_rules_with_production_sized_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["alerts", SHIPPED]) == 0
    out, err = capsys.readouterr()
    group = yaml.safe_load(out)["groups"][0]
    assert len(group["rules"]) == 6
    assert all(r["for"] == "2m" for r in group["rules"])
    assert all("[5m]" in r["expr"] for r in group["rules"] if "pg_up" not in r["expr"])
    assert group["rules"][0]["annotations"]["runbook"] == f"{SHIPPED}#sev-1-api-server-down"
    assert "6 alert rule(s) from 17 symptom(s)" in err
    assert "3 manual" in err


def test_window_and_for_change_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", SHIPPED, "--window", "10s", "--for", "0s"]) == 0
    first = yaml.safe_load(capsys.readouterr().out)["groups"][0]["rules"][0]
    assert "for" not in first
    assert "[10s]" in first["expr"]


@needs_promtool
def test_out_tests_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, tests = tmp_path / "rules" / "alerts.yml", tmp_path / "tests" / "alerts.test.yml"
    assert main(["alerts", SHIPPED, "--out", str(out), "--tests", str(tests), "--check"]) == 0
    printed, err = capsys.readouterr()
    assert printed == ""
    assert f"wrote {out}" in err
    assert f"wrote {tests}" in err
    assert "promtool: 6 rule(s) valid" in err
    assert yaml.safe_load(tests.read_text())["rule_files"] == ["../rules/alerts.yml"]
    assert promtool.test_rules(tests).ok


@needs_promtool
def test_check_without_out_uses_a_scratch_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", SHIPPED, "--check"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# Alert rules derived")
    assert "promtool: 6 rule(s) valid" in err


@needs_promtool
def test_check_exits_1_when_promtool_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    derive = rules.derive_rules

    def broken(*args: object, **kwargs: object) -> rules.RuleSet:
        derived = derive(*args, **kwargs)  # type: ignore[arg-type]
        bad = dataclasses.replace(derived.rules[0], expr="sum(rate(up[5m]) >")
        return dataclasses.replace(derived, rules=(bad, *derived.rules[1:]))

    monkeypatch.setattr(rules, "derive_rules", broken)
    assert main(["alerts", SHIPPED, "--check"]) == 1
    err = capsys.readouterr().err
    assert "promtool refuses" in err
    assert "rule 'FilesHealthFailing' (group 'runbook-checks', rule 1), field `expr`" in err

    def quiet_never(*args: object, **kwargs: object) -> rules.RuleSet:
        derived = derive(*args, **kwargs)  # type: ignore[arg-type]
        bad = dataclasses.replace(derived.rules[1], expr="vector(1)")
        return dataclasses.replace(derived, rules=(derived.rules[0], bad, *derived.rules[2:]))

    monkeypatch.setattr(rules, "derive_rules", quiet_never)
    assert main(["alerts", SHIPPED, "--check"]) == 1
    err = capsys.readouterr().err
    assert "promtool test rules fails" in err
    assert "FilesNoTraffic stays quiet on healthy series" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["missing.md"], "no such file"),
        ([SHIPPED, "--window", "5x"], "--window 5x: '5x' is not a Prometheus duration"),
        ([SHIPPED, "--for", "two minutes"], "--for two minutes:"),
        ([SHIPPED, "--window", "0s"], "must be longer than 0s"),
        ([SHIPPED, "--tests", "t.yml"], "--tests needs --out"),
        ([SHIPPED, "--out", "/proc/no/such/alerts.yml"], "cannot write it"),
    ],
)
def test_bad_input_is_one_error_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["alerts", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("runbook-checks: error: ")
    assert expected in err
    assert "Traceback" not in err


def test_binary_runbook_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "garbage.md"
    path.write_bytes(b"\x00\x01\x02 binary \xff\xfe" * 50)
    assert main(["alerts", str(path)]) == 2
    err = capsys.readouterr().err
    assert "binary content" in err
    assert "Traceback" not in err
