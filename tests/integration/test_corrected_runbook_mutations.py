"""One wrong line of the corrected runbook fails its drill, naming the line.

Per scenario, a one-line mutation of the corrected runbook's detection or mitigation (a
wrong value, column, host, service name, URL) turns the earned verdict
(test_corrected_runbook.py) into a non-passing one whose findings name the mutated line.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook_checks.cli import AUTO_WORKERS
from runbook_checks.drill.result import Verdict
from runbook_checks.evidence.journal import Journal
from runbook_checks.runbook.parser import parse_runbook
from tests.integration.corrected import (
    CORRECTED,
    NOT_FIXABLE_BY_THIS_OPTION,
    ROOT,
    drill,
    name_of,
)

pytestmark = pytest.mark.integration


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

    def written(mutation: Mutation) -> tuple[Path, int]:
        folder = tmp_path_factory.mktemp(mutation.scenario[5:40])
        text, line = mutation.apply(CORRECTED.read_text(encoding="utf-8"))
        path = folder / CORRECTED.name
        path.write_text(text, encoding="utf-8")
        return path, line

    def run(mutation: Mutation, path: Path, line: int) -> MutatedRun:
        try:
            journal, output = drill(path, path.parent, mutation.scenario, max_wait_s=20, workers=1)
        except AssertionError as exc:  # no evidence folder: the test says so
            return MutatedRun(path, line, None, str(exc))
        return MutatedRun(path, line, journal, output)

    # the copies are written here, one after another: the first mktemp of a worker
    # makes its base folder (removing what is there), so two threads making it at once
    # can remove each other's copies
    copies = [(mutation, *written(mutation)) for mutation in MUTATIONS]
    with ThreadPoolExecutor(AUTO_WORKERS) as pool:
        runs = pool.map(lambda copy: run(*copy), copies)
        return dict(zip((m.scenario for m in MUTATIONS), runs, strict=True))


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
    assert name_of(result.scenario) == mutation.scenario
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
