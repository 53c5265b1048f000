"""Shell tools from the runbook, each mapped onto the stack and run without a shell.

`plan_shell(step, bindings)` decides what a shell step means on the stack (and runs
nothing, so it can be checked on its own); `run_shell` carries the plan out.

- `pg_isready -h $DB_HOST -p 5432`: the real pg_isready against the stack's PostgreSQL
  (the runbook's literal port becomes the stack's); its exit code is kept (0 accepting,
  1 rejecting, 2 no response).
- readings: `df -h PATH` (path mapped), `free -m`, `top` (as `top -b -n 1`), `uptime`;
  `htop`/`iotop` are interactive: manual, with the one-shot equivalent named.
- `redis-cli ...`: the real redis-cli with -h/-p of the stack's Redis.
- `tail`, `head`, `cat`, `grep`: real commands on mapped paths (`/var/log/api` -> the
  API's log folder); a path outside the mapped ones is refused.
- pipelines (`ps aux | grep node`, `redis-cli INFO stats | grep keyspace`): chained
  subprocesses; `node` in a `ps | grep` maps through `bindings.processes`.
- `systemctl restart X`, `sudo systemctl restart X`, `service X restart`: the stack's
  component for X is restarted and awaited.
- `watch -n N 'cmd'`: cmd is run once (bounded) by its own executor.
- anything else: manual, with the reason.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from runbook_checks.runbook.model import Phase, Step, StepKind
from runbook_checks.steps.base import (
    ExecContext,
    Refused,
    StepResult,
    StepRunner,
    StepStatus,
    excerpt,
    unbound_result,
)
from runbook_checks.steps.binding import Bindings, Bound, bind
from runbook_checks.steps.procs import find_tool, run_pipeline, tool_env

__all__ = [
    "Delegate",
    "NotRun",
    "Pipeline",
    "ServiceAction",
    "ShellPlan",
    "command_kind",
    "plan_shell",
    "run_shell",
    "split_stages",
]

# tools that read files: which of their words are paths
FILE_TOOLS = frozenset({"tail", "head", "cat", "grep", "egrep", "wc", "less", "more"})
FILTERS = frozenset({"grep", "egrep", "tail", "head", "wc", "sort", "uniq", "cut", "tr"})
# tools whose arguments are capitalised commands, not placeholders
CAPS_COMMAND_TOOLS = frozenset({"redis-cli"})
READINGS = frozenset({"free", "uptime", "ps", "df", "du", "vmstat", "nproc"})
SERVICE_VERBS = frozenset(
    {"restart", "start", "stop", "status", "reload", "is-active", "try-restart", "force-reload"}
)
_SHELL_SYNTAX = (
    ("&&", "`&&`"),
    ("||", "`||`"),
    (";", "`;`"),
    ("$(", "`$(...)`"),
    ("`", "backticks"),
    (">", "a `>` redirection"),
    ("<", "a `<` redirection"),
    ("&", "`&`"),
)
_GREP_VALUE_OPTIONS = frozenset(
    {
        "-e",
        "-f",
        "-m",
        "-A",
        "-B",
        "-C",
        "--regexp",
        "--file",
        "--max-count",
        "--include",
        "--exclude",
        "--color",
    }
)
_TAIL_VALUE_OPTIONS = frozenset({"-n", "-c", "--lines", "--bytes", "-s", "--pid"})
_PG_VALUE_OPTIONS = {
    "-h": "host",
    "--host": "host",
    "-p": "port",
    "--port": "port",
    "-d": "dbname",
    "--dbname": "dbname",
    "-U": "user",
    "--username": "user",
    "-t": "timeout",
    "--timeout": "timeout",
}
_REDIS_VALUE_OPTIONS = frozenset({"-h", "-p", "-a", "-n", "-u", "--user", "--pass"})
_REDIS_CONTINUOUS = frozenset(
    {
        "monitor",
        "subscribe",
        "psubscribe",
        "--stat",
        "--bigkeys",
        "--latency",
        "--latency-history",
        "-r",
    }
)
_DEFAULT_PG_TIMEOUT_S = 3  # pg_isready's own default


# -- plans -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pipeline:
    """Run these argv lists chained by pipes (one stage: a plain command)."""

    stages: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    process_pattern: str | None = None  # set for `ps ... | grep PATTERN`


@dataclass(frozen=True)
class ServiceAction:
    """A service manager command, done on the stack's component."""

    service: str  # as written ("example-api")
    component: str  # "api"
    verb: str  # restart, start, stop, status, logs
    notes: tuple[str, ...] = ()
    lines: int = 40  # for logs


@dataclass(frozen=True)
class Delegate:
    """A command to run with another executor (the inner command of `watch`): once, or
    every `interval_s` until it looks healthy, like an operator watching it."""

    step: Step
    notes: tuple[str, ...] = ()
    interval_s: float | None = None  # repeat until healthy (bounded by the watch budget)


@dataclass(frozen=True)
class NotRun:
    status: StepStatus  # MANUAL, ERROR or SKIPPED
    reason: str
    suggestion: str = ""


ShellPlan = Pipeline | ServiceAction | Delegate | NotRun


@dataclass(frozen=True)
class PlannedShell:
    plan: ShellPlan
    display: str  # the command after binding, as a command line
    bound: tuple[str, ...] = ()
    unbound: tuple[str, ...] = ()


def split_stages(step: Step) -> list[str]:
    """The stages of a step: `text` plus `pipeline`, or `text` split at unquoted pipes."""
    from runbook_checks.runbook.shell import split_pipeline

    if step.pipeline:
        return [step.text, *step.pipeline]
    return split_pipeline(step.text)


def command_kind(text: str) -> StepKind:
    """Which executor runs a command line (used for the inner command of `watch`)."""
    from runbook_checks.runbook.classify import classify
    from runbook_checks.runbook.shell import words

    return classify(words(text)).kind


def _tool_of(stage: str) -> str:
    from runbook_checks.runbook.shell import words
    from runbook_checks.runbook.words import command_words

    argv = command_words(words(stage))
    return PurePosixPath(argv[0]).name if argv else ""


def _shell_syntax(stage: str) -> str | None:
    from runbook_checks.runbook.shell import mask

    masked = mask(stage)
    for token, name in _SHELL_SYNTAX:
        if token in masked:
            return name
    return None


def plan_shell(step: Step, bindings: Bindings, *, timeout_s: float = 10.0) -> PlannedShell:
    """What `step` means on the stack; nothing is run."""
    stages = split_stages(step)
    for stage in stages:
        syntax = _shell_syntax(stage)
        if syntax:
            return PlannedShell(
                NotRun(StepStatus.MANUAL, f"uses {syntax}: commands run without a shell here"),
                " | ".join(stages),
            )
    bound = [
        bind(stage, bindings, caps=_tool_of(stage) not in CAPS_COMMAND_TOOLS) for stage in stages
    ]
    names_bound = tuple(dict.fromkeys(n for b in bound for n in b.bound))
    names_unbound = tuple(dict.fromkeys(n for b in bound for n in b.unbound))
    display = " | ".join(b.text for b in bound)
    if names_unbound:
        return PlannedShell(
            NotRun(StepStatus.ERROR, "unbound placeholders"), display, names_bound, names_unbound
        )
    try:
        argvs = [shlex.split(b.text) for b in bound]
    except ValueError as exc:
        return PlannedShell(
            NotRun(StepStatus.ERROR, f"cannot split the command: {exc}"), display, names_bound
        )
    try:
        plan = _plan(argvs, bound, bindings, timeout_s)
    except Refused as exc:
        plan = NotRun(StepStatus.ERROR, exc.message, exc.hint or "")
    return PlannedShell(plan, display, names_bound)


def _plan(
    argvs: list[list[str]], bound: list[Bound], bindings: Bindings, timeout_s: float
) -> ShellPlan:
    from runbook_checks.runbook.words import command_words

    notes: list[str] = []
    first = argvs[0]
    words = command_words(first)
    if not words:
        return NotRun(StepStatus.MANUAL, "no command")
    if words != first:
        dropped = first[: len(first) - len(words)]
        notes.append(f"{' '.join(dropped)} dropped: the stack's processes are ours to run")
    tool = PurePosixPath(words[0]).name
    if tool in ("systemctl", "service"):
        if len(argvs) > 1:
            return NotRun(StepStatus.MANUAL, f"{tool} in a pipeline is not emulated")
        return _plan_service(tool, words, bindings, notes)
    if tool == "journalctl":
        return _plan_journal(words, bindings, notes)
    if tool == "watch":
        if len(argvs) > 1:
            return NotRun(StepStatus.MANUAL, "watch in a pipeline is not emulated")
        return _plan_watch(words, bound[0].text, notes)
    if tool == "ssh":
        host = next((w for w in words[1:] if not w.startswith("-")), "")
        return NotRun(
            StepStatus.SKIPPED,
            f"ssh {host}: the stack's components stand in for "
            "the host; the commands after it run against them",
        )
    stages: list[tuple[str, ...]] = []
    stage = _plan_first(tool, words, bindings, timeout_s, notes)
    if isinstance(stage, NotRun):
        return stage
    stages.append(stage)
    pattern: str | None = None
    for later in argvs[1:]:
        name = PurePosixPath(later[0]).name if later else ""
        if name not in FILTERS:
            return NotRun(StepStatus.MANUAL, f"`{name}` after a pipe is not emulated")
        mapped, found = _plan_filter(name, later, bindings, after_ps=tool == "ps", notes=notes)
        pattern = pattern or found
        stages.append(mapped)
    return Pipeline(tuple(stages), tuple(notes), pattern)


def _plan_first(
    tool: str, words: list[str], bindings: Bindings, timeout_s: float, notes: list[str]
) -> tuple[str, ...] | NotRun:
    args = words[1:]
    if tool == "pg_isready":
        return _plan_pg_isready(args, bindings, timeout_s, notes)
    if tool == "redis-cli":
        return _plan_redis(args, bindings, notes)
    if tool == "top":
        notes.append("top is interactive: ran once in batch mode (top -b -n 1)")
        kept = [a for a in args if a not in ("-b",)]
        return ("top", "-b", "-n", "1", *_drop_option(kept, "-n"))
    if tool == "htop":
        return NotRun(
            StepStatus.MANUAL,
            "htop is an interactive full-screen tool with no "
            "batch mode; the same reading one-shot: `top -b -n 1`",
            suggestion="top -b -n 1",
        )
    if tool == "iotop":
        if find_tool("iotop") is None:
            return NotRun(
                StepStatus.MANUAL,
                "iotop is interactive and not installed here; "
                "one-shot where it is (as root): `iotop -b -n 1 -o`",
                suggestion="iotop -b -n 1 -o",
            )
        notes.append("iotop is interactive: ran once in batch mode (iotop -b -n 1 -o)")
        return ("iotop", "-b", "-n", "1", "-o")
    if tool in ("df", "du"):
        return (tool, *_map_paths(args, bindings, notes))
    if tool in READINGS:
        return (tool, *args)
    if tool in FILE_TOOLS:
        mapped, _ = _plan_filter(tool, words, bindings, after_ps=False, notes=notes)
        return mapped
    from runbook_checks.runbook.classify import NOT_IN_STACK

    if tool in NOT_IN_STACK:
        return NotRun(StepStatus.MANUAL, NOT_IN_STACK[tool])
    return NotRun(StepStatus.MANUAL, f"{tool}: no mapping of this tool onto the stack")


def _drop_option(args: list[str], option: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = True
            continue
        out.append(arg)
    return out


def map_path(path: str, bindings: Bindings) -> tuple[str, str | None]:
    """A path as written -> the path on the stack, and a note. Relative paths stay
    (they are relative to the work folder); an absolute path outside `bindings.paths`
    raises `Refused`."""
    if not path.startswith("/") or path == "/dev/null":
        return path, None
    best = ""
    for prefix in bindings.paths:
        clean = prefix.rstrip("/")
        if (path == clean or path.startswith(clean + "/")) and len(clean) > len(best):
            best = clean
    if not best:
        raise Refused(
            f"refused: path {path} is not part of the stack",
            hint="map it in bindings.paths (mapped: "
            + (", ".join(sorted(bindings.paths)) or "none")
            + ")",
        )
    target = Path(bindings.paths[best] if best in bindings.paths else bindings.paths[best + "/"])
    rest = path[len(best) :].lstrip("/")
    mapped = str(target / rest) if rest else str(target)
    return mapped, f"{path} -> {mapped}"


def _map_paths(args: list[str], bindings: Bindings, notes: list[str]) -> list[str]:
    out: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            out.append(arg)
            continue
        mapped, note = map_path(arg, bindings)
        if note:
            notes.append(note)
        out.append(mapped)
    return out


def _plan_filter(
    tool: str, argv: list[str], bindings: Bindings, *, after_ps: bool, notes: list[str]
) -> tuple[tuple[str, ...], str | None]:
    """A file tool or pipe filter with its paths (and, after ps, its pattern) mapped."""
    out = [tool]
    pattern: str | None = None
    args = argv[1:]
    i = 0
    need_pattern = tool in ("grep", "egrep")
    value_options = _GREP_VALUE_OPTIONS if need_pattern else _TAIL_VALUE_OPTIONS
    while i < len(args):
        arg = args[i]
        if arg in ("-f", "-F", "--follow") and tool == "tail":
            notes.append("tail follow mode reduced to a snapshot")
            i += 1
            continue
        if arg in value_options and i + 1 < len(args):
            if need_pattern and arg in ("-e", "--regexp"):
                need_pattern = False
                pattern = args[i + 1]
            out += [arg, args[i + 1]]
            i += 2
            continue
        if arg.startswith("-") and arg != "-":
            out.append(arg)
            i += 1
            continue
        if need_pattern:
            need_pattern = False
            pattern = arg
            if after_ps and arg in bindings.processes:
                mapped = bindings.processes[arg]
                notes.append(f"process name {arg!r} -> {mapped!r} (the stack's process)")
                pattern = mapped
                out.append(mapped)
            else:
                out.append(arg)
            i += 1
            continue
        mapped_path, note = map_path(arg, bindings)
        if note:
            notes.append(note)
        out.append(mapped_path)
        i += 1
    return tuple(out), pattern if after_ps else None


def _plan_pg_isready(
    args: list[str], bindings: Bindings, timeout_s: float, notes: list[str]
) -> tuple[str, ...] | NotRun:
    given: dict[str, str] = {}
    flags: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _PG_VALUE_OPTIONS and i + 1 < len(args):
            given[_PG_VALUE_OPTIONS[arg]] = args[i + 1]
            i += 2
            continue
        if arg.startswith("--") and "=" in arg:
            key, _, value = arg.partition("=")
            if key in _PG_VALUE_OPTIONS:
                given[_PG_VALUE_OPTIONS[key]] = value
                i += 1
                continue
        flags.append(arg)
        i += 1
    host = bindings.env.get("DB_HOST")
    port = bindings.env.get("DB_PORT")
    if not host or not port:
        return NotRun(StepStatus.ERROR, "no database host/port bound (env DB_HOST, DB_PORT)")
    refused = bindings.reach.refusal(host, "database")
    if refused is not None:
        return NotRun(StepStatus.ERROR, refused)
    if given.get("host", host) != host:
        notes.append(f"host {given['host']} -> {host} (the stack's PostgreSQL)")
    if given.get("port", port) != port:
        notes.append(f"port {given['port']} (as written) -> {port} (the stack's PostgreSQL)")
    argv = ["pg_isready", "-h", host, "-p", port]
    if "dbname" in given:
        argv += ["-d", given["dbname"]]
    if "user" in given:
        argv += ["-U", given["user"]]
    wanted = int(given.get("timeout", _DEFAULT_PG_TIMEOUT_S) or 0)
    limit = max(1, math.floor(timeout_s))
    if wanted == 0 or wanted > limit:
        notes.append(f"pg_isready -t capped to {limit}s (the step timeout)")
        wanted = limit
    argv += ["-t", str(wanted), *flags]
    return tuple(argv)


def _plan_redis(args: list[str], bindings: Bindings, notes: list[str]) -> tuple[str, ...] | NotRun:
    url = bindings.env.get("REDIS_URL")
    if not url:
        return NotRun(StepStatus.ERROR, "no Redis bound (env REDIS_URL)")
    parts = urlsplit(url)
    refused = bindings.reach.refusal(parts.hostname or "127.0.0.1", "Redis")
    if refused is not None:
        return NotRun(StepStatus.ERROR, refused)
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _REDIS_VALUE_OPTIONS and i + 1 < len(args):
            if arg in ("-h", "-p", "-u"):
                notes.append(f"redis-cli {arg} {args[i + 1]} -> the stack's Redis")
            elif arg == "-n":
                rest += [arg, args[i + 1]]
            i += 2
            continue
        rest.append(arg)
        i += 1
    continuous = [a for a in rest if a.lower() in _REDIS_CONTINUOUS]
    if continuous:
        return NotRun(
            StepStatus.MANUAL, f"redis-cli {continuous[0]} runs until interrupted; not emulated"
        )
    argv = ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.password:
        argv += ["-a", parts.password, "--no-auth-warning"]
    database = parts.path.lstrip("/")
    if database and "-n" not in rest:
        argv += ["-n", database]
    return (*argv, *rest)


def _plan_service(tool: str, words: list[str], bindings: Bindings, notes: list[str]) -> ShellPlan:
    args = [w for w in words[1:] if not w.startswith("-")]
    if tool == "systemctl":
        verb, unit = (args[0], args[1]) if len(args) >= 2 else (args[0] if args else "", "")
    else:  # service NAME VERB
        unit, verb = (args[0], args[1]) if len(args) >= 2 else (args[0] if args else "", "")
    name = unit.removesuffix(".service")
    if verb not in SERVICE_VERBS:
        return NotRun(
            StepStatus.MANUAL,
            f"{tool} {verb or '(no verb)'}: not emulated "
            f"(emulated: {', '.join(sorted(SERVICE_VERBS))})",
        )
    if name not in bindings.services:
        raise Refused(
            f"refused: service {name!r} is not part of the stack",
            hint="map it in bindings.services (mapped: "
            + (", ".join(sorted(bindings.services)) or "none")
            + ")",
        )
    component = bindings.services[name]
    canonical = {
        "reload": "restart",
        "try-restart": "restart",
        "force-reload": "restart",
        "is-active": "status",
    }.get(verb, verb)
    if canonical != verb:
        notes.append(f"{tool} {verb} done as {canonical}")
    notes.append(f"service {name} -> stack component {component!r}")
    return ServiceAction(name, component, canonical, tuple(notes))


def _plan_journal(words: list[str], bindings: Bindings, notes: list[str]) -> ShellPlan:
    unit = ""
    lines = 40
    args = words[1:]
    for i, arg in enumerate(args):
        if arg in ("-u", "--unit") and i + 1 < len(args):
            unit = args[i + 1].removesuffix(".service")
        elif arg in ("-n", "--lines") and i + 1 < len(args) and args[i + 1].isdigit():
            lines = int(args[i + 1])
        elif arg in ("-f", "--follow"):
            notes.append("journalctl follow mode reduced to a snapshot")
    if not unit:
        return NotRun(StepStatus.MANUAL, "journalctl without -u UNIT: the stack has no journal")
    if unit not in bindings.services:
        raise Refused(f"refused: service {unit!r} is not part of the stack")
    notes.append(
        f"journal of {unit} -> the last {lines} lines of the "
        f"{bindings.services[unit]} component's log"
    )
    return ServiceAction(unit, bindings.services[unit], "logs", tuple(notes), lines)


WATCH_BUDGET_S = 30.0  # how long a `watch` step is watched before it is judged


def _plan_watch(words: list[str], text: str, notes: list[str]) -> ShellPlan:
    args = words[1:]
    interval = "2"
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        if arg in ("-n", "--interval") and i + 1 < len(args):
            interval = args[i + 1]
            i += 2
            continue
        if arg.startswith("-n") and len(arg) > 2:
            interval = arg[2:]
        i += 1
    inner = " ".join(args[i:])
    if not inner:
        return NotRun(StepStatus.ERROR, "watch without a command")
    try:
        every = max(float(interval), 0.1)
    except ValueError:
        return NotRun(StepStatus.ERROR, f"watch -n {interval!r}: not a number of seconds")
    notes.append(
        f"watch -n {interval}: {inner} run every {every:g}s until it answers healthy "
        f"(at most {WATCH_BUDGET_S:.0f}s), as an operator watching it would"
    )
    stages = _split(inner)
    step = Step(
        text=stages[0],
        raw=inner,
        line=0,
        language="bash",
        kind=command_kind(inner),
        phase=Phase.OTHER,
        pipeline=tuple(stages[1:]),
    )
    return Delegate(step, tuple(notes), every)


def _split(text: str) -> list[str]:
    from runbook_checks.runbook.shell import split_pipeline

    return split_pipeline(text)


# -- running -----------------------------------------------------------------------------


def run_shell(step: Step, ctx: ExecContext, run_step: StepRunner) -> StepResult:
    """Carry a shell line out; a line that runs another command (`watch CMD`) runs it
    with `run_step` (steps.run's, whatever its kind)."""
    planned = plan_shell(step, ctx.bindings, timeout_s=ctx.timeout_s)
    executed = ctx.redact(planned.display)
    plan = planned.plan
    host_note = (
        (f"ran against the stack (the runbook runs it on {step.host})",) if step.host else ()
    )
    if planned.unbound:
        bound = Bound("", "", planned.bound, planned.unbound)
        return unbound_result(step, bound, executed)
    base = StepResult(
        step=step,
        status=StepStatus.ERROR,
        executed=executed,
        bound_placeholders=planned.bound,
        notes=host_note,
    )
    if isinstance(plan, NotRun):
        if plan.status is StepStatus.ERROR:
            return replace(base, error=plan.reason, suggestion=plan.suggestion)
        return replace(base, status=plan.status, reason=plan.reason, suggestion=plan.suggestion)
    if isinstance(plan, Delegate):
        return _run_delegate(step, plan, ctx, base, run_step)
    if isinstance(plan, ServiceAction):
        return _run_service(plan, ctx, replace(base, notes=host_note + plan.notes))
    return _run_pipeline(plan, ctx, replace(base, notes=host_note + plan.notes))


def _run_delegate(
    step: Step, plan: Delegate, ctx: ExecContext, base: StepResult, run_step: StepRunner
) -> StepResult:
    inner = replace(plan.step, line=step.line, host=step.host)
    deadline = ctx.clock.monotonic() + WATCH_BUDGET_S
    runs = 0
    while True:
        result = run_step(inner, ctx)
        runs += 1
        healthy = result.ok and (result.http_status is None or result.http_status < 400)
        left = deadline - ctx.clock.monotonic()
        if plan.interval_s is None or healthy or left <= plan.interval_s:
            break
        ctx.clock.sleep(plan.interval_s)
    note = f"watch ran the command {runs} time(s); " + (
        "it answered healthy" if healthy else "it never answered healthy"
    )
    return replace(result, step=step, notes=(*plan.notes, note, *result.notes))


def _run_service(plan: ServiceAction, ctx: ExecContext, base: StepResult) -> StepResult:
    executed = f"stack.component({plan.component!r}).{plan.verb}()  # {base.executed}"
    base = replace(base, executed=ctx.redact(executed))
    try:
        component = ctx.stack.component(plan.component)
        before = component.pid
        if plan.verb == "status":
            ready = component.is_ready()
            text = (
                "active (running)"
                if ready
                else "activating"
                if component.is_running()
                else "inactive (dead)"
            )
            return replace(
                base,
                status=StepStatus.OK if ready else StepStatus.FAILED,
                exit_code=0 if ready else 3,
                output=f"{plan.service}: {text}",
            )
        if plan.verb == "logs":
            return replace(
                base,
                status=StepStatus.OK,
                exit_code=0,
                output=ctx.redact(excerpt(component.log_tail(plan.lines))),
            )
        if plan.verb == "stop":
            component.stop()
            return replace(
                base,
                status=StepStatus.OK,
                exit_code=0,
                output=f"stopped {plan.component} (pid {before})",
            )
        if plan.verb == "start":
            component.start()
        else:
            component.restart()
        component.wait_ready(ctx.timeout_s)
        return replace(
            base,
            status=StepStatus.OK,
            exit_code=0,
            output=f"{plan.verb}ed {plan.component}: pid {before} -> {component.pid}, ready",
        )
    except Exception as exc:
        return replace(
            base,
            status=StepStatus.FAILED,
            exit_code=1,
            error=ctx.redact(f"{plan.verb} {plan.component} failed: {exc}"),
        )


def _run_pipeline(plan: Pipeline, ctx: ExecContext, base: StepResult) -> StepResult:
    stages: list[list[str]] = []
    for stage in plan.stages:
        binary = find_tool(stage[0])
        if binary is None:
            return replace(base, error=f"{stage[0]} is not installed on this machine")
        stages.append([binary, *stage[1:]])
    executed = " | ".join(shlex.join(stage) for stage in plan.stages)
    # a second of grace: tools with a timeout of their own (pg_isready -t) report first
    outcome = run_pipeline(
        stages, timeout_s=ctx.timeout_s + 1.0, env=tool_env(ctx.folder), cwd=ctx.folder
    )
    notes = list(base.notes)
    if len(stages) > 1:
        codes = ", ".join(
            f"{s[0]}={c}" for s, c in zip(plan.stages, outcome.exit_codes, strict=True)
        )
        notes.append(f"pipeline exit codes: {codes}")
    text = outcome.text
    if plan.process_pattern is not None:
        notes.append(_process_note(text, plan.process_pattern))
    error = ""
    if outcome.timed_out:
        error = f"did not finish within {ctx.timeout_s:g}s (killed)"
    elif outcome.exit_code != 0:
        said = (outcome.stderr.strip() or text.strip()).splitlines()
        error = f"exit {outcome.exit_code}" + (f": {said[-1]}" if said else "")
    ok = outcome.exit_code == 0 and not outcome.timed_out
    return replace(
        base,
        status=StepStatus.OK if ok else StepStatus.FAILED,
        executed=ctx.redact(executed),
        exit_code=outcome.exit_code,
        output=ctx.redact(excerpt(text)),
        stderr=ctx.redact(excerpt(outcome.stderr)),
        error=ctx.redact(error),
        notes=tuple(notes),
    )


def matching_processes(ps_output: str, pattern: str) -> tuple[list[str], list[str]]:
    """Lines of `ps | grep pattern` output: (real matches, grep's own command line)."""
    own = re.compile(rf"\bgrep\b.*{re.escape(pattern)}")
    real: list[str] = []
    grep: list[str] = []
    for line in ps_output.splitlines():
        if not line.strip():
            continue
        (grep if own.search(line) else real).append(line)
    return real, grep


def _process_note(ps_output: str, pattern: str) -> str:
    real, grep = matching_processes(ps_output, pattern)
    if grep and not real:
        return (
            f"no process matches {pattern!r}: the only line is grep's own command line, "
            "so the pipeline exits 0 although the process is not running "
            f"(use `pgrep -af {pattern}` or `grep [{pattern[0]}]{pattern[1:]}`)"
        )
    text = f"{len(real)} process line(s) match {pattern!r}"
    if grep:
        text += "; grep's own command line matched too (the pipeline would exit 0 without them)"
    return text
