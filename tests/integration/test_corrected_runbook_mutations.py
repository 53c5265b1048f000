"""One wrong line of the corrected runbook fails its drill, naming the line.

Per scenario, a one-line mutation of the corrected runbook's detection or mitigation (a
wrong value, column, host, service name, URL) turns the earned verdict
(test_corrected_runbook.py) into a non-passing one whose findings name the mutated line.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook_checks.drill.result import Verdict
from runbook_checks.evidence.journal import Journal
from runbook_checks.runbook.parser import parse_runbook
from tests.integration.corrected import (
    CORRECTED,
    NOT_FIXABLE_BY_THIS_OPTION,
    ROOT,
    drill,
    mutation_wait_s,
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


def _incident_of(runbook: Path) -> Callable[[int], str | None]:
    """The id of the incident section (one that scenarios drill) holding a line."""
    incidents = [s for s in parse_runbook(runbook).sections if s.is_scenario]
    return lambda line: next((s.id for s in incidents if s.line <= line <= s.end_line), None)


def batches(mutations: tuple[Mutation, ...], runbook: Path) -> list[list[Mutation]]:
    """The mutations in a few drills, at most one per incident section in each: a
    scenario reads its own section's text and the runbook's shared parts, so in a copy
    with one mutation per section each scenario meets only its own. A mutation outside
    every incident section (a shared part) is drilled alone. The largest sections are
    spread first, each section's mutations to the smallest batches, one to each."""
    text, incident_of = runbook.read_text(encoding="utf-8"), _incident_of(runbook)
    by_section: dict[str | None, list[Mutation]] = {}
    for mutation in mutations:
        by_section.setdefault(incident_of(mutation.apply(text)[1]), []).append(mutation)
    alone = [[m] for m in by_section.pop(None, [])]
    width = max(map(len, by_section.values()), default=0)
    shared: list[list[Mutation]] = [[] for _ in range(width)]
    for group in sorted(by_section.values(), key=len, reverse=True):
        # one to each of the smallest batches (a group is never wider than `shared`)
        for mutation, batch in zip(group, sorted(shared, key=len), strict=False):
            batch.append(mutation)
    return shared + alone


def test_a_batch_holds_every_mutation_once_and_one_per_incident_section() -> None:
    drilled = batches(MUTATIONS, CORRECTED)
    assert sorted(m.scenario for b in drilled for m in b) == sorted(m.scenario for m in MUTATIONS)
    text, incident_of = CORRECTED.read_text(encoding="utf-8"), _incident_of(CORRECTED)
    for batch in drilled:
        sections = [incident_of(m.apply(text)[1]) for m in batch]
        assert None not in sections or len(batch) == 1
        assert len(set(sections)) == len(sections), [m.scenario for m in batch]
    assert len(drilled) < len(MUTATIONS)  # the point of batching


@dataclass(frozen=True)
class MutatedRun:
    runbook: Path  # the mutated copy (with the other mutations of its batch)
    line: int  # the line changed
    journal: Journal | None  # None: the drill left no evidence
    output: str


@pytest.fixture(scope="module")
def mutated_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MutatedRun]:
    """Every mutation drilled, in batches (`batches`) drilled at once, each batch in a
    process of its own on a stack of its own, its scenarios one after another, as
    `runbook-checks drill --workers 1` would drill them: the mutated runbook, no baseline.
    (A process and a stack per mutation cost more CPU than the drills: 21 processes
    took ~300 s of CPU where 5 take ~half.) A mutation is expected not to recover; a
    batch's drills wait for it longer than the earned recovery of its slowest scenario
    takes (`mutation_wait_s`): 10 s, or 20 s for a batch with a load-driven fix. (Seven
    batches, the slow ones apart, drilled 172 -> 125 s alone but made the suite no
    faster, and its mutation drills erred twice in two runs on a starved machine.)"""
    original = CORRECTED.read_text(encoding="utf-8")

    def written(batch: list[Mutation]) -> tuple[Path, dict[str, int]]:
        folder = tmp_path_factory.mktemp(batch[0].scenario[5:40])
        text, lines = original, {}
        for mutation in batch:
            text, lines[mutation.scenario] = mutation.apply(text)
        assert text.count("\n") == original.count("\n")  # every line stays where it was
        path = folder / CORRECTED.name
        path.write_text(text, encoding="utf-8")
        return path, lines

    def run(batch: list[Mutation], path: Path, lines: dict[str, int]) -> dict[str, MutatedRun]:
        scenarios = [m.scenario for m in batch]
        wait = max(map(mutation_wait_s, scenarios))
        try:
            journal, output = drill(
                path, path.parent, *scenarios, max_wait_s=wait, workers=1, monitoring=False
            )
        except AssertionError as exc:  # no evidence folder: the tests say so
            journal, output = None, str(exc)
        return {s: MutatedRun(path, lines[s], journal, output) for s in scenarios}

    # the copies are written here, one after another: the first mktemp of a worker
    # makes its base folder (removing what is there), so two threads making it at once
    # can remove each other's copies
    copies = [(batch, *written(batch)) for batch in batches(MUTATIONS, CORRECTED)]
    with ThreadPoolExecutor(len(copies)) as pool:  # the drills mostly wait
        runs: dict[str, MutatedRun] = {}
        for done in pool.map(lambda copy: run(*copy), copies):
            runs.update(done)
        return runs


# the mutations are all drilled in the first one's setup
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.scenario[5:] for m in MUTATIONS])
def test_a_one_line_mutation_of_the_text_fails_the_drill_naming_the_line(
    mutation: Mutation, mutated_runs: dict[str, MutatedRun]
) -> None:
    run = mutated_runs[mutation.scenario]
    assert run.journal is not None, run.output[-3000:]
    for skipped in run.journal.skipped:  # a capability this machine's backend lacks
        if name_of(skipped.scenario) == mutation.scenario:
            pytest.skip(skipped.reason)
    (result,) = (
        r.result for r in run.journal.scenarios if name_of(r.result.scenario) == mutation.scenario
    )
    path, line = run.runbook, run.line
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
