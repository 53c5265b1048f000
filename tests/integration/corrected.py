"""What the corrected runbook's drills share: the runbook, the drill command, and the
scenarios no text can pass (test_corrected_runbook.py, test_corrected_runbook_mutations.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runbook_checks.cli import AUTO_WORKERS, without_unused_plugins
from runbook_checks.evidence.journal import Journal, load_journal
from runbook_checks.stack.monitoring import MONITORING_ENV
from tests.profiles import FILES_PROFILE_PATH

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

# How long a mutation's drill waits for a recovery that should not come (its
# `--max-recovery-wait-s`, counted from the end of the option's steps): longer than its
# scenario's earned recovery takes, so a mutation that changed nothing would recover
# within it and its test would fail (test_corrected_runbook.py checks the earned
# recoveries against these). Measured on a quiet 2-core machine, the load-driven fixes
# recover 7-14 s after their steps (the load's error rate over its window must fall),
# every other scenario within ~2.5 s.
SLOW_RECOVERY = {"test_fix_3_scale_out_under_load", "test_the_post_mortems_pool_size_fixes_it"}
SLOW_RECOVERY_WAIT_S = 20.0
RECOVERY_WAIT_S = 10.0


def mutation_wait_s(scenario: str) -> float:
    """The recovery wait of a mutation of `scenario` (a test function's name)."""
    return SLOW_RECOVERY_WAIT_S if scenario in SLOW_RECOVERY else RECOVERY_WAIT_S


def drill(
    runbook: Path,
    folder: Path,
    *select: str,
    max_wait_s: float = 60,
    workers: int = AUTO_WORKERS,
    monitoring: bool = True,
) -> tuple[Journal, str]:
    """Run the scenarios (`-k` expression from `select`) against `runbook`; its journal.
    Without `monitoring`, the stacks start without Prometheus and Alertmanager (no alerts
    measured: a drill of the text's steps only)."""
    evidence = folder / "evidence"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "scenarios",
        "-q",
        "-p",
        "no:cacheprovider",
        *without_unused_plugins(),  # as `runbook-checks drill` runs them
        "--runbook",
        str(runbook),
        "--evidence-dir",
        str(evidence),
        "--max-recovery-wait-s",
        str(max_wait_s),
        # the copy is the Files runbook: its names mean what the Files profile says
        "--profile",
        str(FILES_PROFILE_PATH),
    ]
    if workers > 1:  # in parallel, a stack per worker, as `runbook-checks drill` runs them
        argv += ["-n", str(workers), "--dist", "loadgroup"]
    if select:
        argv += ["-k", " or ".join(select)]
    env = {**os.environ, **({} if monitoring else {MONITORING_ENV: "off"})}
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False, env=env
    )
    folders = [p for p in evidence.iterdir() if p.is_dir()] if evidence.exists() else []
    assert len(folders) == 1, done.stdout[-3000:] + done.stderr[-2000:]
    return load_journal(folders[0]), done.stdout


def name_of(scenario: str) -> str:
    return scenario.rpartition("::")[2]
