"""`runbook-checks`: drill, gate, up, cleanup, alerts.

Errors the user can act on (`RunbookChecksError`) are printed without a traceback, with
what to do; exit status 2 means "could not run".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_checks import __version__
from runbook_checks.config import BACKENDS, OPTIONS, ChecksConfig
from runbook_checks.errors import RunbookChecksError, UsageError

if TYPE_CHECKING:
    from runbook_checks.evidence.review import Period
    from runbook_checks.evidence.review_report import FixPatch
    from runbook_checks.evidence.store import EvidenceStore

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2

# pytest plugins a test suite's tools install (hypothesis and schemathesis come with the
# project's dev extra) that no drill uses: a drill's pytest session and each of its
# workers would load them, ~0.5 s of CPU a process at the start, when the workers'
# stacks come up together
UNUSED_BY_DRILLS = ("schemathesis", "hypothesispytest")


def without_unused_plugins() -> list[str]:
    """pytest arguments that keep the plugins a drill never uses from loading (a plugin
    not installed is no error)."""
    return [arg for name in UNUSED_BY_DRILLS for arg in ("-p", f"no:{name}")]


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    for option in OPTIONS:
        kwargs: dict[str, object] = {"default": option.default, "help": option.help}
        if option.name == "backend":
            kwargs["choices"] = BACKENDS
        if option.default == "no":  # a yes/no switch: the bare flag says yes
            kwargs.update(nargs="?", const="yes", metavar="yes|no")
        parser.add_argument(f"--{option.name.replace('_', '-')}", **kwargs)  # type: ignore[arg-type]


def _config(args: argparse.Namespace) -> ChecksConfig:
    values = {o.name: str(getattr(args, o.name)) for o in OPTIONS}
    return ChecksConfig.from_values(values, root=Path.cwd())


def cmd_up(args: argparse.Namespace) -> int:
    from runbook_checks.clock import SYSTEM_CLOCK
    from runbook_checks.stack import create_stack, start_with_retry

    config = _config(args)
    host = args.host
    if host != "127.0.0.1":  # refused before anything starts: see stack/staging.py
        from runbook_checks.stack.staging import check_bind_host

        check_bind_host(host)
    started = SYSTEM_CLOCK.monotonic()
    with start_with_retry(lambda: create_stack(config)) as stack, contextlib.ExitStack() as on:
        stack.prepare("aws")  # whoever pokes at it may well start with an aws command
        ep = stack.endpoints
        if host != "127.0.0.1":
            from runbook_checks.stack.staging import publish

            published, ep = publish(ep, host)
            on.callback(published.stop_all)
        took = SYSTEM_CLOCK.monotonic() - started
        print(f"stack up ({stack.backend} backend) in {took:.1f}s. Ctrl-C stops it.\n")
        print(f"  API            {ep.api_url}   (docs: {ep.api_url}/docs)")
        print(f"  PostgreSQL     {ep.database_url}")
        print(f"  object store   {ep.s3_endpoint}  bucket {ep.s3_bucket}")
        print(f"  Redis          {ep.redis_url}")
        print(f"  AWS (moto)     {ep.aws_endpoint}")
        monitoring = stack.monitoring
        if monitoring is not None:
            print(f"  Prometheus     {monitoring.prometheus_url}")
            print(f"  Alertmanager   {monitoring.alertmanager_url}")
        else:
            print(f"  (no alerting: {stack.monitoring_missing})")
        print(f"  API logs       {ep.log_dir}\n")
        print("# paste into another shell to poke at it:")
        for key, value in ep.as_env().items():
            print(f"export {key}='{value}'")
        sys.stdout.flush()
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("\nstopping the stack ...")
    print("stopped; nothing left behind.")
    return EXIT_OK


def cmd_faults(args: argparse.Namespace) -> int:
    from runbook_checks.faults.catalogue import describe_catalogue

    print(describe_catalogue("markdown" if args.markdown else "text"))
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace) -> int:
    from runbook_checks.stack.docker.cleanup import sweep_engine
    from runbook_checks.stack.leftovers import sweep
    from runbook_checks.stack.staging import cannot_make_namespaces, sweep_namespaces

    report = sweep()
    containers = sweep_engine()  # the docker backend's containers of dead drills
    if containers:
        print(f"removed {len(containers)} container(s): {' '.join(containers)}")
    namespaces = sweep_namespaces() if cannot_make_namespaces() is None else []
    if namespaces:  # staging namespaces whose creator died (stack/staging.py)
        print(f"removed {len(namespaces)} network namespace(s): {' '.join(namespaces)}")
    if report.empty and not containers and not namespaces:
        print("nothing to clean up.")
    elif not report.empty:
        print(
            f"removed {len(report.folders)} folder(s), killed {len(report.killed)} "
            f"process(es), unmounted {len(report.unmounted)} mount(s), cleared "
            f"{len(report.faults)} fault(s) left injected."
        )
    for fault in report.faults:
        print(f"  fault left by a dead drill: {fault}")
    for problem in report.problems:
        print(f"  NOT cleaned (kept for the next cleanup): {problem}", file=sys.stderr)
    return EXIT_FAILED if report.problems else EXIT_OK


AUTO_WORKERS = 4  # a drill mostly waits (for a window of samples, for recovery)


def drill_workers(value: str, backend: str) -> int:
    """How many drills run at once (`--workers`): a number, or auto."""
    if value == "auto":
        return 1 if backend == "external" else AUTO_WORKERS
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise UsageError(
            f"--workers {value!r} is not a number of drills at once",
            hint="give a whole number from 1 (one drill after another), or auto",
        )
    if workers > 1 and backend == "external":
        raise UsageError(
            "--workers: the drills on an external environment share its data and run one at a time",
            hint="leave --workers out (auto) or give 1",
        )
    return workers


def cmd_drill(args: argparse.Namespace) -> int:
    import pytest

    from runbook_checks.profile import find_profile, scenarios_folder
    from runbook_checks.runbook.parser import parse_runbook

    config = _config(args)
    parse_runbook(config.runbook)  # an empty, binary or missing runbook: one error, here
    # the scenarios are the runbook's (its profile names them), never the engine's
    scenarios = scenarios_folder(config.runbook, find_profile(config.runbook, config.profile))
    argv = [str(scenarios), "-p", "no:cacheprovider", *without_unused_plugins()]
    argv += ["-q", "-rfEX", "--drill-progress"]
    for option in OPTIONS:
        argv += [f"--{option.name.replace('_', '-')}", str(getattr(args, option.name))]
    workers = drill_workers(args.workers, config.backend)
    if workers > 1:  # pytest-xdist: a stack per worker; the evidence is still one folder
        argv += ["-n", str(workers), "--dist", "loadgroup"]
    argv += list(args.pytest_args)
    with _storing(args.store, config.evidence_dir):  # the session's bundle, once written
        code = pytest.main(argv)
    if code == pytest.ExitCode.USAGE_ERROR:  # bad input (an option, a rules file): said once
        return EXIT_ERROR
    return EXIT_OK if code == 0 else EXIT_FAILED


def _store(url: str) -> EvidenceStore | None:
    """`--store URL`, checked before anything runs (None: no store named)."""
    from runbook_checks.evidence.store import open_store

    return open_store(url) if url else None


@contextlib.contextmanager
def _storing(url: str, evidence_dir: Path) -> Iterator[None]:
    """Upload the bundles written into `evidence_dir` inside the block to the store `url`
    names (checked first; nothing when `url` is empty). An interrupted run's bundle too."""
    store = _store(url)
    before = _bundles(evidence_dir)
    try:
        yield
    finally:
        if store is not None:
            for folder in sorted(_bundles(evidence_dir) - before):
                _upload(store, folder)


def _bundles(evidence_dir: Path) -> set[Path]:
    """The complete bundles in `evidence_dir` (a manifest is written last)."""
    if not evidence_dir.is_dir():
        return set()
    return {p for p in evidence_dir.iterdir() if (p / "manifest.json").is_file()}


def _upload(store: EvidenceStore, folder: Path) -> None:
    done = store.upload(folder)
    said = "stored" if done.sent else "already stored"
    print(f"evidence {done.bundle} {said}: {done.location}")


def cmd_gate_stored(args: argparse.Namespace) -> int:
    """`gate --store URL`: the gate's JSON report, with a journal saying which runbook, as
    a bundle of its own (kind "gate") in the store."""
    import tempfile

    from runbook_checks.gate.command import cmd_gate

    store = _store(args.store)
    if store is None:
        return cmd_gate(args)
    with tempfile.TemporaryDirectory(prefix="runbook-checks-gate-") as scratch:
        report = Path(args.json) if args.json else Path(scratch) / "gate.json"
        args.json = str(report)
        try:
            code = cmd_gate(args)
        finally:
            if report.is_file():
                _upload(store, _gate_bundle(args, report, Path(scratch)))
    return code


def _gate_bundle(args: argparse.Namespace, report: Path, into: Path) -> Path:
    from runbook_checks.evidence.bundle import new_journal, write_record_bundle
    from runbook_checks.evidence.journal import Environment, RunbookInfo, environment_for
    from runbook_checks.runbook.parser import parse_runbook

    backend = "offline" if args.offline else args.backend
    try:
        env = environment_for(
            parse_runbook(Path(args.paths[0])),
            backend=backend,
            versions={},
            project_root=Path.cwd(),
        )
    except RunbookChecksError:  # the gate said why; the bundle still names the file
        env = Environment(backend=backend, runbook=RunbookInfo(path=args.paths[0]))
    journal = new_journal(env, [], kind="gate")
    return write_record_bundle(journal, {"gate.json": report.read_text(encoding="utf-8")}, into)


def cmd_verify_evidence(args: argparse.Namespace) -> int:
    from runbook_checks.evidence.manifest import verify_manifest

    check = verify_manifest(Path(args.folder))
    if check.ok:
        print(f"{args.folder}: {len(check.verified)} file(s) match manifest.json; unaltered.")
        return EXIT_OK
    print(f"{args.folder}: does NOT match its manifest:")
    for line in check.lines():
        print(f"  {line}")
    return EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    """`runbook-checks report --since P`: the review pack of the evidence folder's bundles
    since P, beside them (`review` with the folder as its store)."""
    from runbook_checks.evidence.review import parse_period

    config = _config(args)
    period = parse_period(args.since)
    out = Path(args.out) if args.out else config.evidence_dir / f"review-{period.label}"
    return _review_pack(
        period,
        folder=config.evidence_dir,
        source=str(config.evidence_dir),
        runbook_path=config.runbook,
        out=out,
        patch=None,
    )


def _fix_patch(given: str, runbook: Path) -> FixPatch | None:
    """--fix-patch, else the patch `runbook-checks fix` leaves beside the runbook when
    there is one; judged against the runbook's current text."""
    from runbook_checks.evidence.review_report import FixPatch
    from runbook_checks.fix.command import default_patch

    path = Path(given) if given else default_patch(runbook)
    if not given and not path.is_file():
        return None
    try:
        text: bytes | None = runbook.read_bytes()
    except OSError:
        text = None
    return FixPatch.read(path, text)


def cmd_review(args: argparse.Namespace) -> int:
    """`runbook-checks review --quarter 2026Q4`: the quarterly review pack."""
    from runbook_checks.config import default_runbook
    from runbook_checks.evidence.review import parse_period
    from runbook_checks.evidence.store import default_cache, open_store

    period = parse_period(args.quarter, "--quarter")
    store = open_store(args.store)
    runbook_path = Path(args.runbook) if args.runbook else default_runbook(Path.cwd())
    patch = _fix_patch(args.fix_patch, runbook_path)
    cache = Path(args.cache) if args.cache else default_cache()
    return _review_pack(
        period,
        folder=store.fetch(period, cache),
        source=store.describe(),
        runbook_path=runbook_path,
        out=Path(args.out) if args.out else Path(f"review-{period.label}"),
        patch=patch,
    )


def _review_pack(
    period: Period,
    *,
    folder: Path,
    source: str,
    runbook_path: Path,
    out: Path,
    patch: FixPatch | None,
) -> int:
    """The review pack of `folder`'s bundles in `period` (report and review); exit 1 when
    a bundle was refused."""
    from runbook_checks.evidence.review import aggregate
    from runbook_checks.evidence.review_report import write_review
    from runbook_checks.runbook.model import Runbook
    from runbook_checks.runbook.parser import parse_runbook

    runbook: Runbook | None = None
    note = ""
    try:
        runbook = parse_runbook(runbook_path)
    except RunbookChecksError as exc:
        note = (
            f"the runbook could not be read ({exc}); never-drilled and outdated sections "
            "are not computed and every run counts"
        )
    review = aggregate(folder, period, runbook, note)
    html_path, md_path = write_review(review, out, store=source, patch=patch)
    print(
        f"{len(review.bundles)} evidence bundle(s) {period.describe()} from "
        f"{source}: {review.runs} scenario run(s) of the reviewed text, pass rate "
        f"{review.pass_rate * 100:.0f}%, {len(review.apart)} run(s) set apart, "
        f"{len(review.open_findings)} open finding(s), {len(review.gamedays)} game day(s), "
        f"{len(review.never_drilled)} option(s) never drilled, {len(review.outdated)} "
        "drilled only against an outdated text."
    )
    for refused in review.refused:
        print(f"  REFUSED {refused.message()}", file=sys.stderr)
    for problem in review.problems:
        print(f"  could not read: {problem}", file=sys.stderr)
    print(f"review: {html_path.resolve().as_uri()}")
    print(f"        {md_path}")
    return EXIT_FAILED if review.refused else EXIT_OK


def cmd_gameday(args: argparse.Namespace) -> int:
    from runbook_checks.gameday.game import run_gameday_command

    config = _config(args)
    with _storing(args.store, config.evidence_dir):
        return run_gameday_command(args, config)


def cmd_alerts(args: argparse.Namespace) -> int:
    import tempfile

    from runbook_checks.monitor import promtool
    from runbook_checks.monitor.probes import symptom_probes
    from runbook_checks.monitor.rules import derive_rules, parse_duration, rule_tests
    from runbook_checks.profile import find_profile
    from runbook_checks.runbook.parser import parse_runbook

    durations: dict[str, float] = {}
    for flag, text in (("--window", args.window), ("--for", args.for_)):
        try:
            durations[flag] = parse_duration(text)
        except ValueError as exc:
            raise UsageError(f"{flag} {text}: {exc}") from None
    if durations["--window"] <= 0:
        raise UsageError(f"--window {args.window}: the rate window must be longer than 0s")
    if args.tests and not args.out:
        raise UsageError(
            "--tests needs --out: the unit tests name the rule file they test",
            hint="runbook-checks alerts RUNBOOK --out alerts.yml --tests alerts.test.yml",
        )
    runbook = parse_runbook(Path(args.runbook))
    # the service's metric and route names: the kit its profile names
    vocab = find_profile(runbook.path).service_kit().vocabulary
    rules = derive_rules(
        runbook,
        args.runbook,
        vocab=vocab,
        window_s=durations["--window"],
        for_s=durations["--for"],
    )
    with tempfile.TemporaryDirectory(prefix="runbook-checks-alerts-") as scratch:
        out = Path(args.out) if args.out else Path(scratch) / "alerts.yml"
        tests = Path(args.tests) if args.tests else Path(scratch) / "alerts.test.yml"
        if not args.out:
            print(rules.yaml(), end="")
        if args.out or args.check:
            _write(out, rules.yaml(), "--out" if args.out else "")
        if args.tests or args.check:
            relative = os.path.relpath(out.resolve(), tests.resolve().parent)
            _write(tests, rule_tests(rules, relative), "--tests" if args.tests else "")
        probes = symptom_probes(runbook, vocab, window_s=durations["--window"])
        manual = sum(not p.measurable for p in probes)
        print(
            f"{len(rules.rules)} alert rule(s) from {len(probes)} symptom(s) of "
            f"{args.runbook}: {len(probes) - manual - len(rules.rules)} measurable without "
            f"a rule, {manual} manual (people, a browser)",
            file=sys.stderr,
        )
        if not args.check:
            return EXIT_OK
        try:
            promtool.check_rules(out)
        except promtool.PromtoolRefused as exc:
            print(f"runbook-checks: {exc}", file=sys.stderr)
            return EXIT_FAILED
        result = promtool.test_rules(tests)
        if not result.ok:
            print(f"runbook-checks: promtool test rules fails:\n{result.output}", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"promtool: {len(rules.rules)} rule(s) valid; each fires in its firing case(s) "
            "and stays quiet on healthy series",
            file=sys.stderr,
        )
    return EXIT_OK


def _write(path: Path, text: str, flag: str) -> None:
    """Write a file the user asked for (`flag` names the option; "" for a scratch file)."""
    from runbook_checks.errors import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"{flag or 'scratch file'} {path}: cannot write it: {exc.strerror or exc}",
            hint="choose a path in a folder you can write to",
        ) from None
    if flag:
        print(f"wrote {path}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook-checks",
        description="Prove that an incident runbook works: inject each failure it documents, "
        "run its own diagnostics and mitigations, and report where it is wrong.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the stack, print its URLs, stop it on Ctrl-C")
    _add_config_options(up)
    up.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address operators reach the stack on (default 127.0.0.1); another one "
        "only inside a network namespace runbook-checks made (stack/staging.py)",
    )
    up.set_defaults(func=cmd_up)

    drill = sub.add_parser("drill", help="run every runbook scenario against the stack")
    _add_config_options(drill)
    drill.add_argument(
        "--workers",
        default=os.environ.get("RUNBOOK_CHECKS_WORKERS", "auto"),
        help="drills at once, each on its own stack (1: one after another; auto: "
        f"{AUTO_WORKERS} on the local and docker backends, 1 on an external environment, "
        "whose data the drills would share); $RUNBOOK_CHECKS_WORKERS",
    )
    drill.add_argument(
        "--store",
        default="",
        help="after the drills, upload the session's evidence bundle to this store: a "
        "folder or s3://bucket/prefix (boto3's endpoint and credentials)",
    )
    drill.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    drill.set_defaults(func=cmd_drill)

    from runbook_checks.load.command import add_load_command

    add_load_command(sub, _add_config_options)

    from runbook_checks.gate.command import add_gate_command

    add_gate_command(sub)
    gate = sub.choices["gate"]  # the evidence store is above the gate's layer: wired here
    gate.add_argument(
        "--store",
        default="",
        help="upload the gate's report (gate.json, with a journal naming the runbook) as an "
        "evidence bundle to this store: a folder or s3://bucket/prefix",
    )
    gate.set_defaults(func=cmd_gate_stored)

    from runbook_checks.fix.command import add_fix_command

    add_fix_command(sub)

    from runbook_checks.init import add_init_command

    add_init_command(sub)

    faults = sub.add_parser("faults", help="list the fault catalogue (kind, settings, needs)")
    faults.add_argument("--markdown", action="store_true", help="as a Markdown table")
    faults.set_defaults(func=cmd_faults)

    cleanup = sub.add_parser("cleanup", help="remove what interrupted drills left behind")
    cleanup.set_defaults(func=cmd_cleanup)

    verify = sub.add_parser(
        "verify-evidence", help="check an evidence folder against its manifest.json"
    )
    verify.add_argument("folder", help="an evidence folder (evidence/<timestamp>-<id>)")
    verify.set_defaults(func=cmd_verify_evidence)

    report = sub.add_parser(
        "report",
        help="aggregate the evidence of a period (quarterly "
        "review): trends, pass rate, findings, sections never drilled",
    )
    _add_config_options(report)
    report.add_argument(
        "--since", required=True, help="a start date (2026-10-01) or a quarter (2026Q4)"
    )
    report.add_argument(
        "--out",
        default="",
        help="folder for review.html and review.md (default: <evidence-dir>/review-<period>)",
    )
    report.set_defaults(func=cmd_report)

    review = sub.add_parser(
        "review",
        help="the quarterly review pack: trends, pass rates, open findings by owner, game "
        "days, the fix patch (HTML and Markdown)",
        description="Read a period's evidence bundles from a store (a folder or "
        "s3://bucket/prefix), refuse any whose files differ from their manifest, keep "
        "runs that do not describe the runbook's health apart (interrupted, another "
        "runbook file, an older text of their section, -k subsets) and write one pack. "
        "Exit 1 when a bundle was refused.",
    )
    review.add_argument(
        "--quarter", required=True, help="the period: a quarter (2026Q4) or a start date"
    )
    review.add_argument(
        "--store",
        default="evidence",
        help="where the bundles are: a folder (default: evidence) or s3://bucket/prefix "
        "(boto3's endpoint and credentials: AWS_ENDPOINT_URL, AWS_PROFILE ...)",
    )
    review.add_argument(
        "--runbook",
        default="",
        help="the runbook under review (default: the one under runbooks/ with a profile)",
    )
    review.add_argument("--out", default="", help="the pack's folder (default: review-<period>)")
    review.add_argument(
        "--fix-patch",
        default="",
        metavar="PATH",
        help="the current fix patch (default: the one `runbook-checks fix` wrote beside "
        "the runbook, <runbook stem>.fix.patch, when there is one), shown in the pack with "
        "its verification (<patch stem>.json beside it)",
    )
    review.add_argument(
        "--cache",
        default="",
        help="where bundles of a remote store are downloaded (default: "
        "~/.cache/runbook-checks/store)",
    )
    review.set_defaults(func=cmd_review)

    gameday = sub.add_parser(
        "gameday",
        help="a game day for people: inject a fault without "
        "saying which, time the on-call engineer, write the evidence",
    )
    _add_config_options(gameday)
    gameday.add_argument(
        "scenario",
        nargs="?",
        default="",
        help="which scenario (see --list); default: one picked at random",
    )
    gameday.add_argument("--list", action="store_true", help="list the scenarios and exit")
    gameday.add_argument(
        "--store",
        default="",
        help="upload the game day's evidence bundle to this store: a folder or s3://bucket/prefix",
    )
    gameday.add_argument(
        "--reveal",
        action="store_true",
        help="say which fault was injected (default: keep it secret)",
    )
    gameday.add_argument(
        "--operator",
        default=os.environ.get("USER", ""),
        help="who works the incident (for the evidence)",
    )
    gameday.set_defaults(func=cmd_gameday)

    alerts = sub.add_parser(
        "alerts",
        help="Prometheus alert rules derived from the runbook's symptoms",
        description="Turn every symptom that carries a number or a measurable condition "
        "into a Prometheus alert rule naming its runbook section (labels severity and "
        "runbook_section; annotations summary, runbook, runbook_line). Prints the rule file "
        "(YAML) unless --out is given.",
    )
    alerts.add_argument("runbook", metavar="RUNBOOK", help="the runbook (Markdown)")
    alerts.add_argument("--out", metavar="FILE", default="", help="write the rules to FILE")
    alerts.add_argument(
        "--tests",
        metavar="FILE",
        default="",
        help="write promtool unit tests of the rules to FILE (needs --out): each rule "
        "fires in its firing case and stays quiet on healthy series",
    )
    alerts.add_argument(
        "--window",
        default="5m",
        help="the rate window of the rules' expressions (a Prometheus duration; default "
        "5m: a deployed rule should not page on one bad scrape)",
    )
    alerts.add_argument(
        "--for",
        dest="for_",
        default="2m",
        help="how long a condition holds before the alert fires (default 2m)",
    )
    alerts.add_argument(
        "--check",
        action="store_true",
        help="run promtool check rules and test rules on them; exit 1 if promtool refuses",
    )
    alerts.set_defaults(func=cmd_alerts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from runbook_checks.interrupts import run_guarded

    parser = build_parser()
    args = parser.parse_args(argv)

    def run() -> int:
        try:
            return int(args.func(args))
        except RunbookChecksError as exc:
            print(f"runbook-checks: error: {exc}", file=sys.stderr)
            for note in getattr(exc, "__notes__", []):
                print(f"  {note}", file=sys.stderr)
            return EXIT_ERROR
        except BrokenPipeError:  # `runbook-checks faults | head`: the reader went away
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush on a dead pipe
            return EXIT_OK

    # SIGTERM and Ctrl-C unwind (faults reverted, stacks stopped), then a final cleanup
    # that further signals cannot cut short (runbook_checks.interrupts).
    return run_guarded(run)


if __name__ == "__main__":
    sys.exit(main())
