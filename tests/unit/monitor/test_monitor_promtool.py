"""The derived rules as Prometheus reads them: `promtool check rules` accepts them and
`promtool test rules` proves each fires in its firing case(s) and stays quiet on healthy
series, for the drill's short windows and the deployed defaults alike. A broken rule
fails its own test (shown by breaking each rule's expression in turn)."""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from files_profile import VOCABULARY
from runbook_checks.errors import UsageError
from runbook_checks.monitor import promtool
from runbook_checks.monitor.rules import RuleSet, derive_rules, rule_tests
from runbook_checks.runbook import parse_runbook

ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS = {
    "shipped": ROOT / "runbooks" / "files-incident-response.md",
    "corrected": ROOT / "tests" / "fixtures" / "runbooks" / "files-incident-response.corrected.md",
}
SIZES = {"drill": (10.0, 0.0), "deployed": (300.0, 120.0)}

needs_promtool = pytest.mark.skipif(
    promtool.find_promtool() is None,
    reason="promtool is not installed (scripts/setup.sh installs it; or set PROMTOOL)",
)


def derived(which: str, size: str) -> RuleSet:
    window_s, for_s = SIZES[size]
    path = RUNBOOKS[which]
    return derive_rules(
        parse_runbook(path), path.name, window_s=window_s, for_s=for_s, vocab=VOCABULARY
    )


def write(folder: Path, rules: RuleSet) -> Path:
    (folder / "alerts.yml").write_text(rules.yaml(), encoding="utf-8")
    tests = folder / "alerts.test.yml"
    tests.write_text(rule_tests(rules, "alerts.yml"), encoding="utf-8")
    return tests


@needs_promtool
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("which", list(RUNBOOKS))
def test_derived_rules_pass_promtool(tmp_path: Path, which: str, size: str) -> None:
    rules = derived(which, size)
    assert len(rules.rules) == 6
    tests = write(tmp_path, rules)
    promtool.check_rules(tmp_path / "alerts.yml")
    result = promtool.test_rules(tests)
    assert result.ok, result.output
    assert "SUCCESS" in result.output


@needs_promtool
@pytest.mark.parametrize(
    ("broken", "fails"),
    [
        ("vector(1) == 2", "fires"),  # never fires: every firing case fails
        ("vector(1)", "stays quiet"),  # always fires: the quiet case fails
    ],
)
def test_each_rule_fails_its_own_test_when_its_expression_is_broken(
    tmp_path: Path, broken: str, fails: str
) -> None:
    rules = derived("shipped", "drill")

    def run_broken(index: int) -> promtool.PromtoolResult:
        bad = list(rules.rules)
        bad[index] = dataclasses.replace(bad[index], expr=broken)
        folder = tmp_path / bad[index].name
        folder.mkdir()
        return promtool.test_rules(write(folder, dataclasses.replace(rules, rules=tuple(bad))))

    with ThreadPoolExecutor(max_workers=len(rules.rules)) as pool:
        results = list(pool.map(run_broken, range(len(rules.rules))))
    for rule, result in zip(rules.rules, results, strict=True):
        assert not result.ok, rule.name
        failed = set(re.findall(r"^\s*name: (\w+) ", result.output, re.M))
        assert failed == {rule.name}, result.output
        assert f"name: {rule.name} {fails}" in result.output


@needs_promtool
def test_a_tighter_threshold_is_caught(tmp_path: Path) -> None:
    """A rule whose number drifts from the runbook's (5% -> 500%) no longer fires."""
    rules = derived("shipped", "drill")
    bad = tuple(dataclasses.replace(r, expr=r.expr.replace("> 0.05", "> 5")) for r in rules.rules)
    result = promtool.test_rules(write(tmp_path, dataclasses.replace(rules, rules=bad)))
    assert not result.ok
    assert set(re.findall(r"^\s*name: (\w+) ", result.output, re.M)) == {"FilesUploadErrorRateHigh"}


@needs_promtool
def test_check_rules_names_the_file_the_line_the_rule_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yml"
    path.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n", encoding="utf-8"
    )
    with pytest.raises(promtool.PromtoolRefused) as caught:
        promtool.check_rules(path)
    assert str(caught.value).startswith(f"promtool refuses {path}:")
    assert f"{path}:5: rule 'A' (group 'g', rule 1), field `expr`: " in str(caught.value)
    assert "parse error" in caught.value.output


def test_a_missing_promtool_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PROMTOOL", raising=False)
    assert promtool.find_promtool() is None
    with pytest.raises(UsageError, match="promtool is not installed") as caught:
        promtool.check_rules(tmp_path / "alerts.yml")
    assert "PROMTOOL" in (caught.value.hint or "")
