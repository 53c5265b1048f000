"""A pass is possible, and earned: the corrected runbook passes by its own text, and one
wrong line of it fails.

`tests/fixtures/runbooks/files-incident-response.corrected.md` is the shipped runbook
with every defect the gate and the drills report fixed the way the findings suggest,
plus real mitigations where the shipped one has none (a full disk, pool exhaustion).
Drilled with an EMPTY baseline (none lies beside it), every scenario is earned
(`passed`, or `recovered-by-waiting` for the provider's outage) with nothing done by
the harness, except two scenarios no text can pass by nature, named below.

Then, per scenario, a one-line mutation of that runbook's detection or mitigation (a
wrong value, column, host, service name, URL) turns the earned verdict into a
non-passing one whose findings name the mutated line.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook_checks.cli import AUTO_WORKERS
from runbook_checks.drill.result import Actor, Verdict
from runbook_checks.evidence.journal import Journal, load_journal
from runbook_checks.runbook.parser import parse_runbook
from tests.profiles import FILES_PROFILE_PATH

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CORRECTED = ROOT / "tests" / "fixtures" / "runbooks" / "files-incident-response.corrected.md"

# Scenarios that drill an option against a failure it cannot fix by nature: their verdict
# is about the failure, not about the text (the corrected runbook has the right option
# for each, drilled by another scenario).
NOT_FIXABLE_BY_THIS_OPTION = {
    "test_a_restart_does_not_fix_pool_exhaustion": "option A restarts the API; the "
    "traffic comes straight back to the same pool (option D, the bigger pool, fixes it: "
    "test_the_post_mortems_pool_size_fixes_it)",
    "test_cause_3_a_purged_file_cannot_be_restored_by_the_update": "a purged file's row "
    "and bytes are gone; the corrected text says so and sends the owner to re-upload, "
    "which no drill can do for them",
}
WAITED = {"test_supabase_outage_queues_uploads_and_drains_them"}


def drill(
    runbook: Path, folder: Path, *select: str, max_wait_s: float = 60, workers: int = AUTO_WORKERS
) -> tuple[Journal, str]:
    """Run the scenarios (`-k` expression from `select`) against `runbook`; its journal."""
    evidence = folder / "evidence"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "scenarios",
        "-q",
        "-p",
        "no:cacheprovider",
        "--runbook",
        str(runbook),
        "--evidence-dir",
        str(evidence),
        "--max-recovery-wait-s",
        str(max_wait_s),
        # the copy is the Files runbook: its names mean what the Files profile says
        "--profile",
        str(FILES_PROFILE_PATH),
        # in parallel, a stack per worker, as `runbook-checks drill` runs them
        "-n",
        str(workers),
        "--dist",
        "loadgroup",
    ]
    if select:
        argv += ["-k", " or ".join(select)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    folders = [p for p in evidence.iterdir() if p.is_dir()] if evidence.exists() else []
    assert len(folders) == 1, done.stdout[-3000:] + done.stderr[-2000:]
    return load_journal(folders[0]), done.stdout


def _name(scenario: str) -> str:
    return scenario.rpartition("::")[2]


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
        result, name = record.result, _name(record.result.scenario)
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
    waited = [r for r in journal.scenarios if _name(r.result.scenario) in WAITED]
    assert waited
    assert any(s.by is Actor.PROVIDER for s in waited[0].result.steps)


def test_the_scenarios_no_text_can_pass_fail_for_that_reason(
    corrected_run: tuple[Journal, str],
) -> None:
    journal, _ = corrected_run
    for record in journal.scenarios:
        if _name(record.result.scenario) not in NOT_FIXABLE_BY_THIS_OPTION:
            continue
        assert record.result.verdict is Verdict.RUNBOOK_WRONG
        assert [f.kind for f in record.result.runbook_errors] == ["mitigation-did-not-recover"]


@dataclass(frozen=True)
class Mutation:
    scenario: str  # the test function drilled
    written: str  # a line (or part of one) of the corrected runbook, unique in it
    wrong: str  # what it becomes

    def apply(self, text: str) -> tuple[str, int]:
        """The mutated text and the 1-based line of the change."""
        assert text.count(self.written) == 1, f"{self.written!r} is not unique"
        at = text.index(self.written)
        return text.replace(self.written, self.wrong), text.count("\n", 0, at) + 1


MUTATIONS = (
    Mutation(
        "test_option_a_restart_recovers_a_killed_api",
        "sudo systemctl restart rolerabbit-api",
        "sudo systemctl restart rolerabbit-web",
    ),
    Mutation(
        "test_option_b_failover_to_the_standby",
        "--target-group-arn STANDBY --targets STANDBY_TARGET",
        "--target-group-arn STANDBY --targets PRIMARY_TARGET",
    ),
    Mutation(
        "test_option_c_rollback_of_a_bad_release",
        "npm run deploy:rollback",
        "npm run deploy:rolback",
    ),
    Mutation(
        "test_option_a_kills_a_long_running_query",
        "WHERE state = 'active'",
        "WHERE state = 'idle'",
    ),
    Mutation(
        "test_option_a_misses_transactions_left_idle",
        "WHERE state = 'idle in transaction'",
        "WHERE state = 'idle in transactions'",
    ),
    Mutation(
        "test_option_b_fails_over_to_the_read_replica",
        "postgresql://replica-01:5432/files",
        "postgresql://replica-02:5432/files",
    ),
    Mutation(
        "test_option_c_restores_the_backup_and_measures_the_loss",
        "--db-snapshot-identifier snapshot-20240115",
        "--db-snapshot-identifier snapshot-20240114",
    ),
    Mutation(
        "test_disk_full_is_detected_but_has_no_mitigation",
        "--allocated-storage 40",
        "--allocated-storage 10",
    ),
    Mutation(
        "test_supabase_outage_queues_uploads_and_drains_them",
        """-d '{"disabled": false}'""",
        """-d '{"disabled": true}'""",
    ),
    Mutation(
        "test_storage_quota_exceeded_cleanup_frees_room",
        "/admin/cleanup/deleted",
        "/admin/cleanup/delete",
    ),
    Mutation(
        "test_cause_1_file_size_limit_is_stated_clearly",
        "Upgrade to Pro for 50MB files.",
        "Upgrade to Pro for 100MB files.",
    ),
    Mutation(
        "test_cause_2_every_file_type_is_accepted_and_served_safely",
        'grep "upload" /var/log/api/production.log',
        'grep "uplaod" /var/log/api/production.log',
    ),
    Mutation(
        "test_cause_3_a_longer_timeout_lets_slow_large_uploads_through",
        "fastify.server.timeout = 300000;",
        "fastify.server.timeout = 1000;",
    ),
    Mutation(
        "test_fix_1_warm_up_a_cold_cache",
        "/admin/cache/warm",
        "/admin/cache/warmup",
    ),
    Mutation(
        "test_fix_2_add_the_missing_index",
        "ON storage_files(user_id);",
        "ON storage_files(name);",
    ),
    Mutation(
        "test_fix_3_scale_out_under_load",
        "kubectl scale deployment api --replicas=5",
        "kubectl scale deployment api --replicas=1",
    ),
    Mutation(
        "test_cause_1_a_recently_expired_share_is_extended",
        "GREATEST(expires_at, NOW()) + INTERVAL '7 days'",
        "GREATEST(expires_at, NOW()) - INTERVAL '7 days'",
    ),
    Mutation(
        "test_cause_1_a_share_expired_long_ago_stays_expired",
        "GREATEST(expires_at, NOW()) + INTERVAL '7 days'",
        "expires_at + INTERVAL '7 days'",
    ),
    Mutation(
        "test_cause_2_a_used_up_share_gets_more_downloads",
        "max_downloads + 10",
        "max_downloads - 10",
    ),
    Mutation(
        "test_cause_3_a_soft_deleted_file_is_restored",
        "SET is_deleted = false, deleted_at = NULL",
        "SET is_deleted = true, deleted_at = NULL",
    ),
    Mutation(
        "test_the_post_mortems_pool_size_fixes_it",
        "heroku config:set DB_POOL_SIZE=50",
        "heroku config:set DB_POOL_SIZE=20",
    ),
)


def _lines_of_the_step_at(runbook: Path, line: int) -> set[int]:
    """`line`, and the first line of the step (command or statement) it is part of."""
    for section in parse_runbook(runbook).sections:
        for step in (*section.investigation, *(s for o in section.options for s in o.steps)):
            if step.line <= line < step.line + step.raw.count("\n") + 1:
                return {line, step.line}
    return {line}


def test_every_earned_scenario_has_a_mutation() -> None:
    scenarios = {
        line.split("def ", 1)[1].split("(", 1)[0]
        for path in (ROOT / "scenarios").glob("test_*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("def test_")
    }
    mutated = {m.scenario for m in MUTATIONS}
    assert mutated <= scenarios
    assert scenarios - mutated == set(NOT_FIXABLE_BY_THIS_OPTION)


@dataclass(frozen=True)
class MutatedRun:
    runbook: Path  # the mutated copy
    line: int  # the line changed
    journal: Journal | None  # None: the drill left no evidence
    output: str


@pytest.fixture(scope="module")
def mutated_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MutatedRun]:
    """Every mutation drilled at once (AUTO_WORKERS at a time), each in a process of its
    own on a stack of its own, as `runbook-checks drill` would drill it: the mutated
    runbook, no baseline. A mutation is expected not to recover: 20 s tells it from the
    slowest earned recovery (the load drills recover within ~12 s of their mitigation)."""

    def run(mutation: Mutation) -> MutatedRun:
        folder = tmp_path_factory.mktemp(mutation.scenario[5:40])
        text, line = mutation.apply(CORRECTED.read_text(encoding="utf-8"))
        path = folder / CORRECTED.name
        path.write_text(text, encoding="utf-8")
        try:
            journal, output = drill(path, folder, mutation.scenario, max_wait_s=20, workers=1)
        except AssertionError as exc:  # no evidence folder: the test says so
            return MutatedRun(path, line, None, str(exc))
        return MutatedRun(path, line, journal, output)

    with ThreadPoolExecutor(AUTO_WORKERS) as pool:
        return dict(zip((m.scenario for m in MUTATIONS), pool.map(run, MUTATIONS), strict=True))


# the mutations are all drilled in the first one's setup
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.scenario[5:] for m in MUTATIONS])
def test_a_one_line_mutation_of_the_text_fails_the_drill_naming_the_line(
    mutation: Mutation, mutated_runs: dict[str, MutatedRun]
) -> None:
    run = mutated_runs[mutation.scenario]
    assert run.journal is not None, run.output[-3000:]
    if run.journal.skipped:  # a capability this machine's backend lacks
        pytest.skip(run.journal.skipped[0].reason)
    (record,) = run.journal.scenarios
    result, path, line = record.result, run.runbook, run.line
    assert _name(result.scenario) == mutation.scenario
    assert not result.verdict.earned, f"line {line} mutated, still {result.verdict.value}"
    assert result.verdict is not Verdict.ERROR, result.error
    lines = _lines_of_the_step_at(path, line)
    named = [
        f
        for f in result.runbook_errors
        if f.line in lines or any(f"line {n} " in f.message for n in lines)
    ]
    assert named, f"no finding names line {line}: " + "; ".join(
        f"{f.kind} line {f.line}: {f.message[:200]}" for f in result.runbook_errors
    )
