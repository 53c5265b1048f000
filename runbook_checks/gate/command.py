"""`runbook-checks gate PATH... [--base REV] [--json FILE] [--baseline FILE] [--offline]`.

Exit 0: no new error findings; 1: new errors; 2: the gate could not run (bad path,
unreadable runbook or baseline, unknown revision, a stack that would not start).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from runbook_checks.config import BACKENDS, OPTIONS, ChecksConfig
from runbook_checks.errors import RunbookChecksError

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def add_gate_command(sub: Any) -> None:
    gate = sub.add_parser(
        "gate",
        help="static and live checks of a runbook (what CI runs on runbook changes)",
        description="Check a runbook: structure, SQL (parsed, and validated against the "
        "twin's live schema), curl routes against the API's OpenAPI document, aws "
        "operations, investigation steps run on a healthy stack, text problems, scenario "
        "coverage, and drift since a git revision. Findings acknowledged in the baseline "
        "(<runbook>.baseline.toml) do not fail the gate.",
    )
    gate.add_argument("paths", nargs="+", metavar="PATH", help="the runbook(s) (Markdown)")
    gate.add_argument(
        "--base",
        metavar="REV",
        default=None,
        help="git revision to compare with: sections changed since, and the scenarios to run again",
    )
    gate.add_argument(
        "--json",
        metavar="FILE",
        default=None,
        help="write every finding (acknowledged ones marked) to FILE",
    )
    gate.add_argument(
        "--baseline",
        metavar="FILE",
        default=None,
        help="the reviewed baseline (default: <runbook>.baseline.toml beside "
        "the runbook, when it exists)",
    )
    gate.add_argument(
        "--offline",
        action="store_true",
        help="static checks only: no stack (no schema, no diagnostics)",
    )
    gate.add_argument(
        "--scenarios",
        metavar="DIR",
        default=None,
        help="the scenario modules, for coverage and drift (default: the "
        "scenarios/ folder found from the runbook's folder upwards)",
    )
    add_stack_arguments(gate)
    gate.set_defaults(func=cmd_gate)


def add_stack_arguments(parser: Any) -> None:
    """--profile, --backend and --pool-size: the stack a command gates on."""
    defaults = {o.name: o for o in OPTIONS}
    parser.add_argument("--profile", metavar="TOML", default=None, help=defaults["profile"].help)
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=defaults["backend"].default,
        help=defaults["backend"].help,
    )
    parser.add_argument(
        "--pool-size", default=defaults["pool_size"].default, help=defaults["pool_size"].help
    )


def cmd_gate(args: argparse.Namespace) -> int:
    from runbook_checks.gate.report import print_report, write_error_json, write_json
    from runbook_checks.gate.run import GateOptions, GateReport, run_gate
    from runbook_checks.profile import find_profile

    reports: list[GateReport] = []
    json_path = Path(args.json) if args.json else None
    try:
        for path in args.paths:
            runbook = Path(path)
            config = ChecksConfig.from_values(
                {o.name: o.default for o in OPTIONS}
                | {
                    "runbook": str(runbook),
                    "backend": args.backend,
                    "pool_size": str(args.pool_size),
                },
                root=Path.cwd(),
            )
            options = GateOptions(
                runbook=runbook,
                base=args.base,
                baseline=Path(args.baseline) if args.baseline else None,
                offline=args.offline,
                scenarios=Path(args.scenarios) if args.scenarios else None,
                config=config,
                profile=find_profile(runbook, Path(args.profile) if args.profile else None),
            )
            reports.append(run_gate(options, on_progress=_progress))
    except RunbookChecksError as exc:
        if json_path is not None:
            write_error_json(json_path, args.paths, str(exc))
        raise
    except Exception as exc:  # never a traceback: say what failed, exit 2
        message = f"the gate could not run: {type(exc).__name__}: {exc}"
        if json_path is not None:
            write_error_json(json_path, args.paths, message)
        print(f"runbook-checks: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    for report in reports:
        print_report(report)
    if json_path is not None:
        write_json(reports, json_path)
        print(f"wrote {json_path}")
    return max(r.exit_code for r in reports)


def _progress(message: str) -> None:
    print(f"gate: {message}", file=sys.stderr, flush=True)
