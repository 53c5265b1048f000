"""SEV-2: Performance Degradation — the runbook's fixes 1 (warm cache), 2 (missing index)
and 3 (scale up)."""

from __future__ import annotations

import contextlib
import re

import psycopg
import pytest
import redis

from runbook_checks.drill.fixture import DrillFixture
from runbook_checks.drill.load_checks import load_served, overloaded
from runbook_checks.drill.runner import DrillContext, health_and_canary
from runbook_checks.drill.spec import Action, Scenario, reads
from runbook_checks.faults.base import AllOf
from runbook_checks.faults.cache import ColdCache
from runbook_checks.faults.database import MissingIndex
from runbook_checks.faults.deploy import ApiSettings
from runbook_checks.faults.network import NetworkLatency
from runbook_checks.faults.traffic import LoadIncrease
from runbook_checks.findings import Level
from runbook_checks.runbook.model import StepKind
from runbook_checks.stack.accounts import admin_connect
from runbook_checks.steps.base import StepResult

SECTION = "SEV-2: Performance Degradation"
KEYSPACE = re.compile(r"keyspace_(hits|misses):(\d+)")
LISTING = "SELECT * FROM storage_files WHERE user_id = %s"


def _explain(
    ctx: DrillContext, options: str = "", *, index_if_any: bool = False, runs: int = 1
) -> list[tuple[object, ...]]:
    """EXPLAIN the listing query for the drill's user, out of sight of the runbook's
    pg_stat_statements diagnostic (the drill's own probes are not part of the incident).
    `index_if_any`: plan as if a sequential scan were the last resort, so the plan shows
    whether an index can serve the listing whatever the table's size (a handful of rows
    plans a sequential scan once autovacuum has analysed the table). `runs`: EXPLAINed
    that many times on the one connection, each run's rows after the other's."""
    with admin_connect(ctx.stack) as conn:
        with contextlib.suppress(psycopg.Error):  # a role that may not: its probes show
            conn.execute("SET pg_stat_statements.track = 'none'")
        if index_if_any:
            conn.execute("SET enable_seqscan = off")
        return [
            row
            for _ in range(runs)
            for row in conn.execute(f"EXPLAIN {options} {LISTING}", (ctx.user.id,)).fetchall()
        ]


def _plan(ctx: DrillContext, *, index_if_any: bool = False) -> str:
    return "\n".join(str(r[0]) for r in _explain(ctx, index_if_any=index_if_any))


# Times the scan is measured: its fastest run is what the scan costs here. One run on a
# busy machine (the drill's four workers share two cores in CI) can take twice as long
# as the next, and the statement it is compared with is a mean over several listings.
SCAN_RUNS = 3


def _scan_ms(ctx: DrillContext) -> float:
    """How long the listing query takes on this machine, as planned: the fastest of
    SCAN_RUNS runs (ms)."""
    plans = _explain(ctx, "(ANALYZE, FORMAT JSON)", runs=SCAN_RUNS)  # one row a run
    return min(float(plan[0]["Execution Time"]) for (plan,) in plans)  # type: ignore[index]


def _users_with_files(ctx: DrillContext) -> None:
    """A few users who list their files (each listing a cache miss: a real query)."""
    users = []
    for n in range(6):
        user = ctx.client.create_user(f"perf-{n}@drill.test", "free")
        ctx.client.upload(user, f"report-{n}.pdf", b"%PDF-1.4 drill\n" * 64, "application/pdf")
        users.append(user)
    ctx.scratch["users"] = users
    ctx.values["xxx"] = users[0].id  # the runbook's EXPLAIN names user 'xxx'


def listing_scans_the_table(ctx: DrillContext) -> str | None:
    plan = _plan(ctx)
    if "Seq Scan on storage_files" not in plan:
        return f"the listing query still uses: {plan.splitlines()[0] if plan else '?'}"
    ctx.scratch["scan_ms"] = _scan_ms(ctx)
    for user in ctx.scratch.get("users", []):  # type: ignore[attr-defined]
        ctx.client.list_files(user)  # each one a cache miss -> a sequential scan
    return None


def listing_uses_the_index(ctx: DrillContext) -> str | None:
    plan = _plan(ctx, index_if_any=True)
    if "Index" not in plan:
        return f"the listing query still plans: {plan.splitlines()[0] if plan else '?'}"
    return health_and_canary(ctx)


# A statement "shows" the missing index when it costs what the table scan costs here:
# at least half the scan's measured time (machines differ tenfold; an indexed listing is
# hundreds of times cheaper than the scan), and never less than a floor no healthy
# statement of the twin reaches.
SCAN_SHARE = 0.5
FLOOR_MS = 5.0


@reads(r"pg_stat_statements")
def _slow_query_on_top(result: StepResult, ctx: DrillContext) -> str | None:
    """The runbook's pg_stat_statements query ranks a slow statement first. If its own
    truncation (substring(query, 1, 50)) hides which table that statement reads, the
    diagnostic still detects, but cannot lead to the index fix: that is a finding."""
    if not result.ok or not result.rows:
        return None
    top = dict(zip(result.columns, result.rows[0], strict=False))
    try:
        mean_ms = float(str(top.get("mean_exec_time", 0)))
    except ValueError:
        return None
    scan_ms = float(ctx.scratch.get("scan_ms", 0.0))  # type: ignore[arg-type]
    if mean_ms < max(FLOOR_MS, SCAN_SHARE * scan_ms):
        return None
    text = str(top.get("query", ""))
    if " from " not in f" {text.lower()} ":
        ctx.finding(
            Level.WARNING,
            "diagnostic-truncates-evidence",
            f"the slowest statement ({mean_ms:.0f} ms mean) is shown as {text!r}: "
            "substring(query, 1, 50) cuts it before its FROM clause, so the output does not "
            "say which table needs the index",
            step=result.step,
            evidence=result.output[:800],
            suggestion="show more of the statement, e.g. left(query, 200), or add "
            "pg_stat_statements' queryid and look the full text up",
        )
    return (
        f"pg_stat_statements ranks a {mean_ms:.0f} ms statement first (the table scan "
        f"takes {scan_ms:.0f} ms here, fastest of {SCAN_RUNS}): {text!r}"
    )


MISSING_INDEX = Scenario(
    section=SECTION,
    option="2",
    title="300k files and the user_id index gone: every listing scans the table",
    arrange=_users_with_files,
    fault=MissingIndex(rows=300_000, users=2_000),
    confirm=listing_scans_the_table,
    detect=_slow_query_on_top,
    recovered=listing_uses_the_index,
)


# -- 1. Warm up cache -------------------------------------------------------------------


def _redis(ctx: DrillContext) -> redis.Redis:
    return redis.Redis.from_url(ctx.stack.endpoints.redis_url, socket_timeout=2)


def _keyspace(ctx: DrillContext) -> dict[str, int]:
    with _redis(ctx) as client:
        info = client.info("stats")
    return {"hits": int(info["keyspace_hits"]), "misses": int(info["keyspace_misses"])}


def _cached_users(ctx: DrillContext) -> set[str]:
    """The users whose file listing is in the cache right now (files:list:<user>:<gen>)."""
    with _redis(ctx) as client:
        keys = [k.decode() for k in client.scan_iter(match="files:list:*", count=500)]
    return {key.split(":")[2] for key in keys}


def _warm_users_with_files(ctx: DrillContext) -> None:
    _users_with_files(ctx)
    for user in ctx.scratch["users"]:  # type: ignore[attr-defined]
        assert ctx.client.list_files(user).status_code == 200  # fills their listing
    ctx.scratch["keyspace"] = _keyspace(ctx)


def cache_is_cold(ctx: DrillContext) -> str | None:
    users = {u.id for u in ctx.scratch["users"]}  # type: ignore[attr-defined]
    warm = users & _cached_users(ctx)
    if warm:
        return f"{len(warm)} of {len(users)} listings still cached"
    first = ctx.scratch["users"][0]  # type: ignore[index]
    ctx.client.list_files(first)  # one user complains: a miss, served from the database
    return None


def cache_is_warm(ctx: DrillContext) -> str | None:
    users = {u.id for u in ctx.scratch["users"]}  # type: ignore[attr-defined]
    cold = users - _cached_users(ctx)
    if cold:
        return f"{len(cold)} of {len(users)} users' listings are not cached"
    return health_and_canary(ctx)


@reads(r"^redis-cli\b")
def _misses_outrun_hits(result: StepResult, ctx: DrillContext) -> str | None:
    """`redis-cli INFO stats | grep keyspace`, read against the figures before the fault:
    since then the cache has missed more than it hit."""
    if not result.ok:
        return None
    now = {k: int(v) for k, v in KEYSPACE.findall(result.output)}
    before = ctx.scratch["keyspace"]
    if set(now) != {"hits", "misses"} or not isinstance(before, dict):
        return None
    hits, misses = now["hits"] - before["hits"], now["misses"] - before["misses"]
    if misses > hits:
        return f"since the fault the cache missed {misses} times and hit {hits} times"
    return None


def _warm_with_admin_token(ctx: DrillContext) -> str:
    """The runbook's warm-up, with the admin token it lacks (as the storage section's
    cleanup: `$ADMIN_TOKEN`, bound from the stack, so the journal shows what was added)."""
    command = (
        "curl -X POST https://api.rolerabbit.com/admin/cache/warm "
        '-H "Authorization: Bearer $ADMIN_TOKEN"'
    )
    result = ctx.run_command(command, StepKind.HTTP)
    if result.http_status != 200:
        why = result.error or result.output
        raise RuntimeError(f"the warm-up with the admin token failed too: {why[:200]}")
    return "ran the warm-up with the admin token: " + result.output[:120]


COLD_CACHE = Scenario(
    section=SECTION,
    option="1",
    title="the cache restarted empty: every listing goes to the database until warmed",
    arrange=_warm_users_with_files,
    fault=ColdCache(),
    confirm=cache_is_cold,
    detect=_misses_outrun_hits,
    actions=(
        Action(
            r"^curl -X POST \S+/admin/cache/warm",
            _warm_with_admin_token,
            why="the runbook's request carries no admin token",
        ),
    ),
    recovered=cache_is_warm,
)


@pytest.mark.runbook(SECTION, option="1")
def test_fix_1_warm_up_a_cold_cache(drill: DrillFixture) -> None:
    drill.verify(COLD_CACHE)


# -- 2. Add missing indexes ---------------------------------------------------------------


@pytest.mark.runbook(SECTION, option="2")
def test_fix_2_add_the_missing_index(drill: DrillFixture) -> None:
    drill.verify(MISSING_INDEX)


# -- 3. Scale up resources ---------------------------------------------------------------


def _an_instance_to_resize(ctx: DrillContext) -> None:
    """The control plane holds the API server instance the runbook resizes (i-xxx); the
    listing the section times is a real user's (TOKEN)."""
    ctx.values["TOKEN"] = ctx.user.token
    ec2 = ctx.stack.endpoints.boto3_client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium")
    ctx.values["i-xxx"] = made["Instances"][0]["InstanceId"]


SLOW_S = 2.0  # the section's own symptom: "API response time > 2s (p95)"
_TIME_TOTAL = re.compile(r"time_total:\s*([0-9.]+)s")


@reads(r"^curl\b.*(?:/api/storage/files|/metrics)")
def api_overload_shown(result: StepResult, ctx: DrillContext) -> str | None:
    """What the section's curl lines show of an overload: the file listing answers 5xx
    or takes longer than the section's own threshold (2 s); or the API's /metrics count
    requests that waited for a database connection in vain (pool timeouts since the
    API started with the fault) or wait right now."""
    if result.http_status is not None and result.http_status >= 500:
        return f"`{result.step.text[:50]}` answered {result.http_status}: {result.output[:120]}"
    if result.http_status != 200:
        return None
    series = result.data if isinstance(result.data, dict) else {}
    for name in ("db_pool_timeouts_total", "db_pool_waiting"):
        value = series.get(name)
        if isinstance(value, float) and value > 0:
            return f"/metrics: {name} {value:g} (requests waiting for a database connection)"
    match = _TIME_TOTAL.search(result.output)
    if match and float(match.group(1)) > SLOW_S:
        return f"the listing took {match.group(1)} s (over the section's {SLOW_S:g} s)"
    return None


# Calibrated so that the instances, not time, decide (measured on this 2-core machine,
# twice each): 12 users, 300 ms to the database and a pool of 2 keep one instance at
# 64-73% errors 20 s after its "scale-out" to 1 replica, while 5 replicas serve them
# within ~25 s. (16 users at 100 ms, the earlier load, recovered by itself with 1
# replica as fast as with 5: that drill could not tell whether scaling fixed anything.)
SCALE_UP = Scenario(
    section=SECTION,
    option="3",
    title="traffic outgrows one API instance (its pool of 2, 300 ms to the database): "
    "errors; the runbook adds instances",
    arrange=_an_instance_to_resize,
    fault=AllOf(
        (
            ApiSettings(
                (("DB_POOL_SIZE", "2"), ("DB_POOL_TIMEOUT_S", "1")),
                why="one instance's share of the database",
            ),
            # sign-ups first, then the distance (as in the post-mortem drill)
            LoadIncrease(users=12, duration_s=90, pattern="download", keepalive=False),
            NetworkLatency("postgres", latency_ms=300),
        )
    ),
    confirm=overloaded,
    # what the section's own investigation can show: its curl lines (the listing's 5xx
    # or over 2 s; the pool's figures on /metrics); query times, cache hits and CPU do not
    detect=api_overload_shown,
    # `kubectl scale deployment api --replicas=5` is carried out from its text: that many
    # instances of the same release behind the balancer
    recovered=load_served,
    recovery_wait_s=60,
)


@pytest.mark.runbook(SECTION, option="3")
def test_fix_3_scale_out_under_load(drill: DrillFixture) -> None:
    drill.verify(SCALE_UP)
