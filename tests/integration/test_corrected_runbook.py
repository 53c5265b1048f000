"""A pass is possible, and earned: the corrected runbook passes by its own text.

`tests/fixtures/runbooks/files-incident-response.corrected.md` is the shipped runbook
with every defect the gate and the drills report fixed the way the findings suggest,
plus real mitigations where the shipped one has none (a full disk, pool exhaustion).
Drilled with an EMPTY baseline (none lies beside it), every scenario is earned
(`passed`, or `recovered-by-waiting` for the provider's outage) with nothing done by
the harness, except two scenarios no text can pass by nature, named below. That one
wrong line of it fails: test_corrected_runbook_mutations.py (a module of its own, so the
two long drills run on different workers of the suite).
"""

from __future__ import annotations

import pytest

from runbook_checks.drill.result import Actor, Verdict
from runbook_checks.evidence.journal import Journal
from tests.integration.corrected import (
    CORRECTED,
    NOT_FIXABLE_BY_THIS_OPTION,
    WAITED,
    drill,
    mutation_wait_s,
    name_of,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def corrected_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Journal, str]:
    runbook = tmp_path_factory.mktemp("corrected") / CORRECTED.name
    runbook.write_bytes(CORRECTED.read_bytes())  # no baseline beside it: empty
    return drill(runbook, runbook.parent)


# the whole drill of the corrected runbook runs in the first test's setup
@pytest.mark.timeout(900)
def test_every_scenario_ran_against_the_corrected_runbook(
    corrected_run: tuple[Journal, str],
) -> None:
    journal, output = corrected_run
    assert len(journal.scenarios) >= 23, output[-2000:]
    assert not journal.skipped, journal.skipped


def test_the_corrected_runbook_passes_by_its_own_text(corrected_run: tuple[Journal, str]) -> None:
    journal, _ = corrected_run
    wrong = []
    for record in journal.scenarios:
        result, name = record.result, name_of(record.result.scenario)
        if name in NOT_FIXABLE_BY_THIS_OPTION:
            continue
        expected = Verdict.RECOVERED_BY_WAITING if name in WAITED else Verdict.PASSED
        harness = [f"line {s.line}: {s.detail}" for s in result.harness_steps]
        errors = [f.headline() for f in result.runbook_errors]
        if result.verdict is not expected or harness or errors:
            wrong.append(f"{name}: {result.verdict.value}; harness did {harness}; {errors}")
    assert not wrong, "\n".join(wrong)


def test_only_people_and_the_provider_act_besides_the_text(
    corrected_run: tuple[Journal, str],
) -> None:
    """No step of an earned verdict was done by the harness; the only other actors are
    people (manual steps) and the provider ending its own outage."""
    journal, _ = corrected_run
    for record in journal.scenarios:
        if not record.result.verdict.earned:
            continue
        actors = {s.by for s in record.result.steps}
        assert actors <= {Actor.RUNBOOK, Actor.PERSON, Actor.CHECK, Actor.PROVIDER}, (
            record.result.scenario
        )
    waited = [r for r in journal.scenarios if name_of(r.result.scenario) in WAITED]
    assert waited
    assert any(s.by is Actor.PROVIDER for s in waited[0].result.steps)


def test_the_scenarios_no_text_can_pass_fail_for_that_reason(
    corrected_run: tuple[Journal, str],
) -> None:
    journal, _ = corrected_run
    for record in journal.scenarios:
        if name_of(record.result.scenario) not in NOT_FIXABLE_BY_THIS_OPTION:
            continue
        assert record.result.verdict is Verdict.RUNBOOK_WRONG
        assert [f.kind for f in record.result.runbook_errors] == ["mitigation-did-not-recover"]


def test_every_earned_recovery_comes_within_its_mutations_wait(
    corrected_run: tuple[Journal, str],
) -> None:
    """A mutation's drill waits `mutation_wait_s` after the option's steps for a recovery
    that should not come: the earned one must come within it, or a mutation that changed
    nothing would not recover in time either and its test could not fail."""
    journal, _ = corrected_run
    slow = []
    for record in journal.scenarios:
        result, name = record.result, name_of(record.result.scenario)
        if not result.verdict.earned:
            continue
        recovered = result.time_to_recover_s
        assert recovered is not None, name
        # the wait begins when the last step before the recovery has ended
        ends = [s.started_s + s.duration_s for s in result.steps if s.started_s < recovered]
        waited = recovered - max(ends, default=0.0)
        if waited >= mutation_wait_s(name):
            slow.append(
                f"{name}: recovered {waited:.1f}s after its steps; its mutation's drill "
                f"waits {mutation_wait_s(name):.0f}s"
            )
    assert not slow, "\n".join(slow)
