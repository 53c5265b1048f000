"""`runbook-checks load`: the argparse side of a load run (kept light: nothing heavy is
imported until the command runs).

Exit status: 0 every threshold held, 1 a threshold broke (the message names the endpoint
and the threshold), 2 the run could not be carried out.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_checks.load.shapes import SHAPES

if TYPE_CHECKING:
    from runbook_checks.profile import Profile
    from runbook_checks.service import ServiceKit

DEFAULT_DURATION_S = {"baseline": 60.0, "step": 120.0, "spike": 90.0, "soak": 1800.0}

HELP = "load test the service with its locustfile; judge it by the runbook's thresholds"
DESCRIPTION = """\
Run locust (headless, bounded in users and time) against the embedded stack, or an
existing environment with --host, with the service's user mix (its locustfile: the
runbook's profile names it, [profile] load = "FILE", or --locustfile) and one of the
load shapes; sample the database pool meanwhile; judge p95 latency and error rate per endpoint
against the runbook's SEV-2 lines; report the pool's headroom. Evidence (locust's CSV
and HTML, verdict.json, verdict.md, the run's page report.html, per-second timeline,
pool samples) goes to EVIDENCE_DIR/<UTC time>-load-<shape>-<id>/.
Exit status: 0 pass, 1 a threshold broke, 2 could not run."""


def add_load_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_config_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    load = sub.add_parser(
        "load",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_options(load)
    load.set_defaults(func=cmd_load)
    load.add_argument(
        "--locustfile",
        default=None,
        metavar="FILE",
        help="the service's locustfile (default: the runbook's profile's [profile] load)",
    )
    load.add_argument(
        "--shape",
        choices=SHAPES,
        default="step",
        help="baseline: hold --users; step: +25%%, +50%%, +100%% users in four "
        "equal stages; spike: 3x users for the middle 20%%; soak: hold for long "
        "(default step)",
    )
    load.add_argument(
        "--users",
        type=int,
        default=20,
        help="baseline user count; the step shape peaks at 2x, spike at 3x (default 20)",
    )
    load.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="seconds of load (default: baseline 60, step 120, spike 90, soak 1800)",
    )
    load.add_argument(
        "--db-latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="embedded stack: add MS to each database round trip of the API "
        "(the fault proxy), e.g. the network distance of a managed database",
    )
    load.add_argument(
        "--host",
        default=None,
        metavar="URL",
        help="load an existing environment at URL instead of the embedded stack",
    )
    load.add_argument(
        "--admin-token",
        default=None,
        metavar="T",
        help="with --host: its admin token (default: $ADMIN_TOKEN), handed to the "
        "locustfile (the simulated users sign up with it)",
    )
    load.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="with --host: where to run the runbook's pg_stat_activity query "
        "(default: $DATABASE_URL; none: /metrics only)",
    )
    load.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run locust's master plus N worker processes on 127.0.0.1 (default 0: one process)",
    )
    load.add_argument(
        "--remote-workers",
        type=int,
        default=0,
        metavar="M",
        help="also wait for M workers started by hand on other machines (they connect to "
        "--master-bind:--master-port; the command to run there is printed)",
    )
    load.add_argument(
        "--master-bind",
        default="127.0.0.1",
        metavar="ADDR",
        help="address the locust master listens on for workers (default 127.0.0.1; with "
        "--remote-workers an address those machines reach, on a private network: locust's "
        "master protocol has no authentication)",
    )
    load.add_argument(
        "--master-port",
        type=int,
        default=None,
        metavar="PORT",
        help="the master's port (default: a free one; 5557 with --remote-workers)",
    )
    load.add_argument(
        "--p95-ms",
        type=float,
        default=None,
        metavar="MS",
        help="p95 limit per endpoint (default: the runbook's, 2000)",
    )
    load.add_argument(
        "--max-error-rate",
        type=float,
        default=None,
        metavar="PCT",
        help="error-rate limit per endpoint, in percent (default: the runbook's, 5)",
    )
    load.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="ENDPOINT:LIMIT",
        help="per-endpoint limit, ENDPOINT as locust names it in its stats ('METHOD "
        "NAME'), e.g. 'POST /upload:p95_ms=5000' or '... :error_rate=0.1' (repeatable)",
    )
    load.add_argument(
        "--min-requests",
        type=int,
        default=1,
        metavar="N",
        help="endpoints with fewer requests are listed, not judged (default 1)",
    )
    load.add_argument(
        "--margin",
        type=float,
        default=25.0,
        metavar="PCT",
        help="headroom added to the pool size the load needs (default 25)",
    )
    load.add_argument(
        "--wait",
        default=None,
        metavar="MIN,MAX",
        help="think time of a user between two actions, seconds (default 0.5,2.5)",
    )


def _wait(raw: str | None) -> tuple[float, float] | None:
    from runbook_checks.errors import UsageError

    if raw is None:
        return None
    try:
        low, high = (float(x) for x in raw.split(","))
    except ValueError:
        raise UsageError(f"--wait {raw!r}: expected MIN,MAX seconds, e.g. 0.5,2.5") from None
    if not 0 <= low <= high:
        raise UsageError(f"--wait {raw!r}: expected 0 <= MIN <= MAX")
    return low, high


def cmd_load(args: argparse.Namespace) -> int:
    from runbook_checks.config import OPTIONS, ChecksConfig
    from runbook_checks.errors import UsageError
    from runbook_checks.load.runner import LoadSpec, run_load
    from runbook_checks.load.thresholds import from_runbook
    from runbook_checks.profile import find_profile
    from runbook_checks.profile import locustfile as find_locustfile
    from runbook_checks.runbook.parser import parse_runbook

    config = ChecksConfig.from_values(
        {o.name: str(getattr(args, o.name)) for o in OPTIONS}, root=Path.cwd()
    )
    if args.host is None and config.backend != "local":
        raise UsageError(
            f"load runs on the embedded (local) stack or on --host; the "
            f"{config.backend!r} backend is not supported here"
        )
    runbook = parse_runbook(config.runbook) if config.runbook.exists() else None
    explicit = Path(args.locustfile) if args.locustfile else None
    profile = find_profile(config.runbook, config.profile)
    locustfile = find_locustfile(config.runbook, profile, explicit)
    error_rate = None if args.max_error_rate is None else args.max_error_rate / 100
    thresholds = from_runbook(
        runbook, p95_ms=args.p95_ms, error_rate=error_rate, min_requests=args.min_requests
    ).with_overrides(args.threshold)
    admin_token = args.admin_token or os.environ.get("ADMIN_TOKEN")
    database_url = args.database_url or (os.environ.get("DATABASE_URL") if args.host else None)
    spec = LoadSpec(
        locustfile=locustfile,
        shape=args.shape,
        users=args.users,
        duration_s=args.duration or DEFAULT_DURATION_S[args.shape],
        pool_size=config.pool_size,
        db_latency_ms=args.db_latency_ms,
        host=args.host,
        admin_token=admin_token if args.host else None,
        database_url=database_url,
        workers=args.workers,
        remote_workers=args.remote_workers,
        master_bind=args.master_bind,
        master_port=args.master_port,
        thresholds=thresholds,
        margin=args.margin / 100,
        evidence_dir=config.evidence_dir,
        wait_s=_wait(args.wait),
        kit=_kit(profile, embedded=args.host is None),
    )
    outcome = run_load(spec, runbook=runbook, log=lambda line: print(line, flush=True))
    headroom = outcome.headroom
    print()
    print(outcome.message)
    if headroom.saturation is not None:
        saturation = headroom.saturation
        print(f"pool saturated at {saturation.describe_users()}: {saturation.reason}")
    if headroom.recommended is not None:
        print(
            f"pool: {headroom.pool_size} configured; the peak ({headroom.peak_users} users) "
            f"needs {headroom.needed}, recommended {headroom.recommended} "
            f"({headroom.margin:.0%} margin)"
        )
    print(f"evidence: {outcome.folder}/verdict.md, {outcome.folder}/report.html")
    return outcome.exit_code


def _kit(profile: Profile, *, embedded: bool) -> ServiceKit | None:
    """The profile's service kit: the embedded stack needs it (a UsageError without);
    an existing environment (--host) uses it for the pool's metric names, if named."""
    return profile.service_kit() if embedded or profile.kit else None
