"""The runbook's own post-mortem: "Database connection pool exhausted due to: 1. Recent
traffic increase (50% more users) 2. Pool size not scaled with traffic (still at default
20)" — "Fix: Increased pool size from 20 to 50 connections."

Drilled to scale on a 2-core machine: the same ratios with a pool of 4 (for 20) and a fix
of 10 (for 50), 100 ms between the API and its database (a managed database's distance),
and a 1 s pool timeout. The load is well past what the small pool carries, so the
verdict does not hang on the machine's speed: measured here, 60 users downloading get
~40% of their requests refused with the pool of 4 and none with the pool of 10, whereas
30-40 users sit at the pool's edge (0-15% refused, depending on what else the machine
does). Two questions: does the runbook's own option A (restart) recover
this incident? (it cannot: the load comes straight back), and does the post-mortem's fix,
which the runbook mentions only inside a status-page template, recover it?
"""

from __future__ import annotations

import pytest

from runbook_checks.drill.detect import any_of, log_matches
from runbook_checks.drill.fixture import DrillFixture
from runbook_checks.drill.load_checks import load_served, overloaded
from runbook_checks.drill.runner import DrillContext
from runbook_checks.drill.spec import Scenario
from runbook_checks.faults.base import AllOf
from runbook_checks.faults.deploy import ApiSettings
from runbook_checks.faults.network import NetworkLatency
from runbook_checks.faults.traffic import LoadIncrease

SECTION = "SEV-1: API Server Down"
SMALL_POOL, FIXED_POOL = 4, 10  # 20 and 50, scaled by 1/5

POOL_EXHAUSTED = AllOf(
    (
        ApiSettings(
            (("DB_POOL_SIZE", str(SMALL_POOL)), ("DB_POOL_TIMEOUT_S", "1")),
            why=f"the default pool, scaled: {SMALL_POOL} for 20",
        ),
        # the virtual users sign up before the database moves 100 ms away (60 sign-ups
        # through a pool of 4 at that distance would only delay the drill)
        LoadIncrease(users=60, duration_s=120, pattern="download"),
        NetworkLatency("postgres", latency_ms=100),
    )
)

# the section's `tail -100 /var/log/api/error.log`: pool errors written since the fault
POOL_SHOWN = any_of(log_matches(r"^tail\b", r"pool exhausted"))


def _bigger_pool(ctx: DrillContext) -> str:
    ctx.stack.restart_api(DB_POOL_SIZE=str(FIXED_POOL))
    return f"restarted the API with DB_POOL_SIZE={FIXED_POOL} (the post-mortem's 50, scaled)"


RESTART_ONLY = Scenario(
    section=SECTION,
    option="A",
    title="the post-mortem's incident (traffic over the pool); the runbook restarts the API",
    fault=POOL_EXHAUSTED,
    confirm=overloaded,
    detect=POOL_SHOWN,
    recovered=load_served,
    recovery_wait_s=15,  # the post-mortem's fix recovers ~10 s after its restart
)

# The shipped runbook writes the fix only in a status-page template: the harness applies
# it (assisted, fix-not-documented). A runbook with an option for it (titled for the pool
# or connections) is drilled by that option; its `heroku config:set DB_POOL_SIZE=N` is
# applied at the drill's scale (N/5), so a pool that is still too small fails.
POST_MORTEM_FIX = Scenario(
    section=SECTION,
    option=None,
    title="the post-mortem's incident (traffic over the pool); the post-mortem's bigger pool",
    fault=POOL_EXHAUSTED,
    confirm=overloaded,
    detect=POOL_SHOWN,
    fix=_bigger_pool,
    fix_source="Fix: Increased pool size from 20 to 50 connections. (Resolution Update template)",
    mitigation=r"(?i)pool|connection",
    setting_scale={"DB_POOL_SIZE": SMALL_POOL / 20},
    recovered=load_served,
    recovery_wait_s=60,
)


@pytest.mark.runbook(SECTION, option="A")
def test_a_restart_does_not_fix_pool_exhaustion(drill: DrillFixture) -> None:
    drill.verify(RESTART_ONLY)


@pytest.mark.runbook(SECTION)
def test_the_post_mortems_pool_size_fixes_it(drill: DrillFixture) -> None:
    drill.verify(POST_MORTEM_FIX)
