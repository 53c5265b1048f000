"""The stages before investigation on the real stack: a real alert fires under API down
and resolves after recovery; the pool exhaustion drill's triage row shows what it is
confused with; the drill posts its status updates as customers would read them.

Each drills a shipped scenario in this process, on the session's stack, with the
session's incident plan (rules derived from the runbook, loaded into the stack's
Prometheus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.drill.incident import IncidentPlan, make_plan
from runbook_checks.drill.result import DrillResult
from runbook_checks.drill.runner import Drill
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.stack.base import Stack
from tests.integration.scenario_objects import ROOT, scenario_of

pytestmark = pytest.mark.integration

RUNBOOK = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")
API = "sev-1-api-server-down"


@pytest.fixture
def plan(fresh_stack: Stack, tmp_path: Path) -> IncidentPlan:
    if getattr(fresh_stack, "monitoring", None) is None:
        pytest.skip(
            f"no Prometheus in this stack: {getattr(fresh_stack, 'monitoring_missing', '')}"
        )
    return make_plan(
        RUNBOOK, fresh_stack, rules_file=None, window_s=5.0, alert_wait_s=10.0, work_dir=tmp_path
    )


def _drill(test_name: str, stack: Stack, plan: IncidentPlan, tmp_path: Path) -> DrillResult:
    scenario, section, option, needs = scenario_of(test_name)
    missing = [c for c in needs if c not in stack.capabilities]
    if missing:
        pytest.skip(f"the {stack.backend} backend cannot {', '.join(missing)}")
    return Drill(
        stack,
        RUNBOOK,
        section,
        option,
        scenario_id=test_name,
        work_dir=tmp_path / "work",
        incident=plan,
    ).run(scenario)


def test_api_down_fires_its_sections_alert_which_resolves_after_recovery(
    fresh_stack: Stack, plan: IncidentPlan, tmp_path: Path
) -> None:
    result = _drill("test_option_a_restart_recovers_a_killed_api", fresh_stack, plan, tmp_path)
    alerting = result.alerting
    assert alerting is not None
    assert alerting.measured, alerting.note
    assert alerting.time_to_alert_s is not None
    assert 0 < alerting.time_to_alert_s < plan.alert_wait_s
    own = alerting.pointing_at(API)
    assert own, [(a.alertname, a.section_id) for a in alerting.alerts]
    assert result.time_to_recover_s is not None
    # resolved after recovery: Prometheus no longer has them firing
    assert alerting.still_firing == []
    monitoring = fresh_stack.monitoring
    assert monitoring is not None
    firing = {a.alertname for a in monitoring.firing() if a.state == "firing"}
    assert not firing & {a.alertname for a in own}
    assert not [f for f in result.findings if f.kind.startswith("alert-")]
    # the severity measured from the failure: the whole service was down
    assert result.impact is not None
    assert result.impact["measured"] == "SEV-1"
    # customers would read the section's own status update, as posted
    posted = [u for u in result.communication if u["posted"]]
    assert [u["stage"] for u in posted] == ["investigating", "resolved"]
    assert "Files API" in str(posted[0]["name"])


def test_pool_exhaustion_looks_like_another_section_in_the_triage_matrix(
    fresh_stack: Stack, plan: IncidentPlan, tmp_path: Path
) -> None:
    """The post-mortem's incident (drilled under API Server Down, as it was declared):
    the pool refuses and slows requests, so the performance section's p95 symptom shows
    as fully as the API section's own symptoms do: the matrix names the confusion."""
    result = _drill("test_a_restart_does_not_fix_pool_exhaustion", fresh_stack, plan, tmp_path)
    assert result.section_id == API
    # every section's probes were evaluated, not only the drilled one's
    evaluated = {o.section_id for o in result.triage}
    assert evaluated == {s.id for s in RUNBOOK.scenarios if s.symptoms}
    own = [o for o in result.triage if o.section_id == API and o.observed is not None]
    seen_own = [o for o in own if o.observed]
    assert seen_own, [(o.line, o.detail) for o in own]
    ambiguous = [f for f in result.findings if f.kind == "triage-ambiguous"]
    assert len(ambiguous) == 1, [f.message for f in result.findings]
    rivals = set(ambiguous[0].statement.split(" | "))
    assert "sev-2-performance-degradation" in rivals
    for rival in rivals:
        cells = [o for o in result.triage if o.section_id == rival and o.observed is not None]
        share = sum(bool(o.observed) for o in cells) / len(cells)
        assert share >= len(seen_own) / len(own)
