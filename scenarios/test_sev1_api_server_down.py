"""SEV-1: API Server Down — the runbook's options A (restart), B (failover), C (rollback)."""

from __future__ import annotations

import pytest

from runbook_checks.drill.detect import any_of, http_failing, output_matches, process_missing
from runbook_checks.drill.fixture import DrillFixture
from runbook_checks.drill.runner import DrillContext
from runbook_checks.drill.spec import Scenario
from runbook_checks.faults.process import ProcessKill

SECTION = "SEV-1: API Server Down"


def api_unreachable(ctx: DrillContext) -> str | None:
    status = ctx.health_status(timeout_s=1.0)
    return None if status == 0 or status >= 500 else f"/health still answers {status}"


API_DOWN_SHOWN = any_of(
    process_missing(r"files_api"),
    http_failing("/health"),
    output_matches(r"tail", r"ECONNREFUSED|error"),
)


API_KILLED = Scenario(
    title="API process killed (kill -9); the runbook restarts the service",
    fault=ProcessKill("api"),
    confirm=api_unreachable,
    detect=API_DOWN_SHOWN,
)


@pytest.mark.runbook(SECTION, option="A")
def test_option_a_restart_recovers_a_killed_api(drill: DrillFixture) -> None:
    drill.verify(API_KILLED)
