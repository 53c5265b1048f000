"""Structure: symptoms, investigation, mitigation options, severities in the table."""

from __future__ import annotations

from collections.abc import Callable

from gate_samples import SCENARIO, SEVERITIES

from runbook_checks.findings import Finding, Level
from runbook_checks.gate import structure
from runbook_checks.runbook import Runbook

MakeRunbook = Callable[..., Runbook]


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def test_a_complete_section_has_no_finding(make_runbook: MakeRunbook) -> None:
    assert structure.check_structure(make_runbook()) == []


def test_a_deleted_mitigation_is_an_error_on_the_section_heading(
    make_runbook: MakeRunbook,
) -> None:
    text = SCENARIO[: SCENARIO.index("### Mitigation")]
    runbook = make_runbook(SEVERITIES, text)
    (finding,) = structure.check_structure(runbook)
    assert finding.kind == structure.MISSING_MITIGATION
    assert finding.level is Level.ERROR
    assert finding.section_id == "sev-1-api-down"
    assert finding.line == runbook.section("sev-1-api-down").line
    assert "Option A" in finding.suggestion


def test_a_mitigation_heading_without_options_is_named(make_runbook: MakeRunbook) -> None:
    text = SCENARIO[: SCENARIO.index("**Option A")] + "Call someone.\n"
    (finding,) = structure.check_structure(make_runbook(SEVERITIES, text))
    assert finding.kind == structure.MISSING_MITIGATION
    assert "Mitigation heading holds no option" in finding.message


def test_missing_symptoms_and_investigation(make_runbook: MakeRunbook) -> None:
    text = (
        "## SEV-2: Slow\n\nSomething is slow.\n\n### Mitigation\n\n"
        "**Option A: Scale**\n```bash\nkubectl scale deployment api --replicas=5\n```\n"
    )
    found = kinds(structure.check_structure(make_runbook(SEVERITIES, text)))
    assert found == [structure.MISSING_SYMPTOMS, structure.MISSING_INVESTIGATION]


def test_a_severity_missing_from_the_table(make_runbook: MakeRunbook) -> None:
    text = SCENARIO.replace("SEV-1: API Down", "SEV-5: API Down")
    (finding,) = structure.check_structure(make_runbook(SEVERITIES, text))
    assert finding.kind == structure.UNKNOWN_SEVERITY
    assert "SEV-5" in finding.message
    assert "SEV-1, SEV-2" in finding.message


def test_no_severity_table_at_all(make_runbook: MakeRunbook) -> None:
    (finding,) = structure.check_structure(make_runbook(SCENARIO))
    assert finding.kind == structure.UNKNOWN_SEVERITY
    assert "no severity table" in finding.message


def test_a_runbook_without_scenarios(make_runbook: MakeRunbook) -> None:
    (finding,) = structure.check_structure(make_runbook(SEVERITIES, "## Contacts\n\n- Bob\n"))
    assert finding.kind == structure.NO_SCENARIOS
