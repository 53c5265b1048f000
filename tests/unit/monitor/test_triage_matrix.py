"""The triage matrix and what it says about a runbook's symptoms (no servers)."""

from __future__ import annotations

from runbook_checks.monitor.triage import (
    SYMPTOM_NOT_OBSERVED,
    SYMPTOM_UNMEASURABLE,
    TRIAGE_AMBIGUOUS,
    Observation,
    matrix,
    scores,
    triage_issues,
)

API = "sev-1-api-server-down"
DB = "sev-1-database-failure"
PERF = "sev-2-performance-degradation"
TITLES = {API: "SEV-1: API Server Down", DB: "SEV-1: Database Failure", PERF: "Perf"}


def obs(section: str, line: int, observed: bool | None, kind: str = "promql") -> Observation:
    return Observation(section, line, f"symptom {line}", kind, observed, f"detail {line}")


def test_scores_count_measurable_and_observed() -> None:
    cells = scores([obs(API, 1, True), obs(API, 2, False), obs(API, 3, None, "manual")])
    assert cells[API].observed == 1
    assert cells[API].measurable == 2
    assert cells[API].listed == 3
    assert cells[API].text() == "1/2"
    assert scores([obs(API, 3, None, "manual")])[API].text() == "-"


def test_a_listed_symptom_the_failure_does_not_show_is_reported() -> None:
    issues = triage_issues(DB, [obs(DB, 10, True), obs(DB, 11, False)], TITLES)
    kinds = [i.kind for i in issues]
    assert kinds == [SYMPTOM_NOT_OBSERVED]
    assert issues[0].line == 11
    assert "symptom 11" in issues[0].message


def test_unmeasurable_symptoms_are_listed_once_per_section() -> None:
    issues = triage_issues(
        API, [obs(API, 1, True), obs(API, 2, None, "manual"), obs(API, 3, None, "manual")], TITLES
    )
    unmeasurable = [i for i in issues if i.kind == SYMPTOM_UNMEASURABLE]
    assert len(unmeasurable) == 1
    assert unmeasurable[0].level == "info"
    assert "line 2" in unmeasurable[0].message
    assert "line 3" in unmeasurable[0].message


def test_another_section_matching_as_well_is_ambiguous() -> None:
    observations = [
        obs(DB, 10, True),
        obs(DB, 11, False),  # own: 1/2
        obs(API, 1, True),
        obs(API, 2, False),  # 1/2: as well
        obs(PERF, 20, False),
    ]
    issues = [i for i in triage_issues(DB, observations, TITLES) if i.kind == TRIAGE_AMBIGUOUS]
    assert len(issues) == 1
    assert "SEV-1: API Server Down (1/2)" in issues[0].message
    assert "Perf" not in issues[0].message
    assert issues[0].cause == f"ambiguous: {API}"


def test_own_symptoms_matching_best_is_not_ambiguous() -> None:
    observations = [obs(DB, 10, True), obs(DB, 11, True), obs(API, 1, True), obs(API, 2, False)]
    assert not [i for i in triage_issues(DB, observations, TITLES) if i.kind == TRIAGE_AMBIGUOUS]


def test_a_failure_whose_section_lists_no_symptoms_is_ambiguous_when_any_match() -> None:
    # the post-mortem's pool exhaustion: its section has no symptom list
    issues = triage_issues("post-mortem", [obs(API, 1, True), obs(API, 2, False)], TITLES)
    ambiguous = [i for i in issues if i.kind == TRIAGE_AMBIGUOUS]
    assert ambiguous
    assert "lists no measurable symptom" in ambiguous[0].message


def test_matrix_columns_keep_first_seen_order() -> None:
    columns, table = matrix(
        {"drill-a": [obs(API, 1, True), obs(DB, 10, False)], "drill-b": [obs(PERF, 20, True)]}
    )
    assert columns == [API, DB, PERF]
    assert table["drill-a"][API].observed == 1
    assert PERF not in table["drill-a"]
