"""`runbook-checks fix RUNBOOK [--out PATCH] [--write] [--no-verify | --verify MODE]`.

Writes the unified diff (default `<runbook stem>.fix.patch` beside the runbook) and
fix.json beside it (`<patch stem>.json`); with --write, the patched runbook in place.
Exit 0: the patch made nothing worse; 1: a fix made something worse (nothing written in
place); 2: it could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_checks.config import OPTIONS, ChecksConfig
from runbook_checks.gate.command import add_stack_arguments

if TYPE_CHECKING:
    from runbook_checks.fix.api import FixPlan

EXIT_OK, EXIT_WORSE = 0, 1


def add_fix_command(sub: Any) -> None:
    fix = sub.add_parser(
        "fix",
        help="turn the findings that have a mechanical fix into a verified patch",
        description="Gate the runbook, turn every finding that has a mechanical fix "
        "(mis-encoded text, aws operations and required parameters from botocore's model, "
        "curl auth headers from the profile, column names from the schema, idempotent DDL, "
        "expiry arithmetic) into a minimal edit of its line, and write them as a unified "
        "diff whose header lists what needs the owner. Then verify it: the gate on the "
        "patched text and the drills of every section it touched, before and after.",
    )
    fix.add_argument("runbook", metavar="RUNBOOK", help="the runbook (Markdown)")
    fix.add_argument(
        "--out",
        metavar="PATCH",
        default=None,
        help="where to write the patch (default: <runbook stem>.fix.patch beside the "
        "runbook); fix.json goes beside it as <patch stem>.json",
    )
    fix.add_argument("--write", action="store_true", help="also patch the runbook in place")
    fix.add_argument(
        "--verify",
        choices=("all", "gate", "none"),
        default="all",
        help="all: the gate on the patched text and the touched sections' drills (before "
        "and after); gate: the gate only; none: no verification (default: all)",
    )
    fix.add_argument(
        "--no-verify", dest="verify", action="store_const", const="none", help="--verify none"
    )
    fix.add_argument(
        "-k",
        dest="select",
        metavar="EXPR",
        default=None,
        help="drill only the touched sections' scenarios this pytest -k expression selects",
    )
    fix.add_argument(
        "--findings",
        metavar="JSON",
        action="append",
        default=[],
        help="a drill's findings.json (evidence/<run>/findings.json) to fix as well "
        "(repeatable); the baseline's acknowledged drill findings are always read",
    )
    fix.add_argument(
        "--baseline",
        metavar="FILE",
        default=None,
        help="the reviewed baseline (default: <runbook>.baseline.toml beside the runbook)",
    )
    fix.add_argument(
        "--offline",
        action="store_true",
        help="no stack: static gate checks only (no schema: column names are not fixed)",
    )
    add_stack_arguments(fix)
    fix.add_argument("--workers", type=int, default=2, help="drills at once (default 2)")
    fix.set_defaults(func=cmd_fix)


def default_patch(runbook: Path) -> Path:
    return runbook.with_name(f"{runbook.stem}.fix.patch")


def cmd_fix(args: argparse.Namespace) -> int:
    from runbook_checks.fix.api import propose

    runbook = Path(args.runbook)
    config = ChecksConfig.from_values(
        {o.name: o.default for o in OPTIONS}
        | {"runbook": str(runbook), "backend": args.backend, "pool_size": str(args.pool_size)},
        root=Path.cwd(),
    )
    plan = propose(
        runbook,
        profile=Path(args.profile) if args.profile else None,
        baseline=Path(args.baseline) if args.baseline else None,
        findings=[Path(p) for p in args.findings],
        verify=args.verify,
        select=args.select,
        offline=args.offline,
        config=config,
        workers=args.workers,
        on_progress=lambda message: print(f"fix: {message}", file=sys.stderr, flush=True),
    )
    patch = Path(args.out) if args.out else default_patch(runbook)
    patch.write_bytes(plan.patch_bytes())
    report = patch.with_suffix(".json")
    report.write_text(json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n")
    _print(plan)
    print(f"wrote {patch} and {report}")
    if plan.worse:
        print("not applied: a fix made something worse (see above)")
        return EXIT_WORSE
    if args.write and plan.fixes:
        runbook.write_bytes(plan.patched)
        print(f"patched {runbook} in place")
    return EXIT_OK


def _print(plan: FixPlan) -> None:
    checks = {c.line: c for c in plan.verification.checks} if plan.verification else {}
    print(f"{plan.name}: {len(plan.fixes)} fix(es)")
    for fix in plan.fixes:
        edit = fix.edit
        check = checks.get(edit.line)
        status = check.status if check else "not verified"
        if check and check.scenarios:
            status += f" ({', '.join(check.scenarios)})"
        print(f"  line {edit.line} {edit.kind}: {status}")
        print(f"    - {edit.old.strip()}")
        print(f"    + {edit.new.strip()}")
        for worse in check.worse if check else ():
            print(f"    WORSE: {worse}")
    if plan.verification is not None:
        for finding in plan.verification.new_findings:
            print(f"  WORSE: new finding {finding.headline()}")
        for note in plan.verification.notes:
            print(f"  note: {note}")
        if plan.verification.broken:
            print(f"  WORSE: {plan.verification.broken}")
        print(f"verified ({plan.verification.mode}): {plan.verdict()}")
    if plan.owner_items:
        print(f"for the owner ({len(plan.owner_items)}):")
        for item in plan.owner_items:
            print(f"  - {item.checklist_line()}")
