"""`aws ...` steps: checked against botocore's service model, then run with the real CLI.

The check works offline: the service (CLI name -> botocore name), the operation (from
its kebab-case name), unknown parameters and missing required ones. A wrong line
(`aws elb deregister-targets`: classic ELB has no such operation, elbv2 has it and
requires --targets) is `failed` with a precise message and a suggestion, and is not run.

A line that passes is run by the real AWS CLI (`aws` next to the interpreter, else on
PATH) as a subprocess, against the stack's AWS endpoint (moto) with `--endpoint-url`,
the stack's region, dummy credentials, `--output json`, and a timeout.
"""

from __future__ import annotations

import difflib
import json
import shlex
import sys
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runbook_checks.runbook.model import Step
from runbook_checks.steps.base import (
    ExecContext,
    JsonValue,
    StepResult,
    StepStatus,
    excerpt,
    unbound_result,
)
from runbook_checks.steps.binding import bind
from runbook_checks.steps.procs import find_tool, run_pipeline, tool_env

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel, Shape

__all__ = [
    "AwsCheck",
    "AwsCommand",
    "AwsCorrection",
    "check_aws",
    "correct_aws",
    "parse_aws",
    "run_aws",
    "validate_aws",
]


# CLI command name -> botocore service name, where they differ
CLI_SERVICES = {"s3api": "s3", "deploy": "codedeploy", "configservice": "config"}
# commands of the CLI that are not service models
CUSTOM_TOP_LEVEL = frozenset({"configure", "history", "help"})
S3_COMMANDS = frozenset({"ls", "cp", "mv", "rm", "sync", "mb", "rb", "presign", "website"})
GLOBAL_VALUE_OPTIONS = frozenset(
    {"--region", "--profile", "--output", "--endpoint-url", "--query", "--color",
     "--ca-bundle", "--cli-read-timeout", "--cli-connect-timeout", "--cli-binary-format"}
)  # fmt: skip
GLOBAL_FLAGS = frozenset(
    {"--debug", "--no-verify-ssl", "--no-paginate", "--no-sign-request", "--version"}
)
CLI_PARAMETERS = frozenset({"cli-input-json", "cli-input-yaml", "generate-cli-skeleton"})
PAGINATION_PARAMETERS = frozenset({"max-items", "starting-token", "page-size"})
# options the executor sets itself
OWN_OPTIONS = frozenset({"--endpoint-url", "--region", "--output", "--profile"})


@dataclass(frozen=True)
class AwsCommand:
    """An `aws` command line, split into its parts (nothing looked up yet)."""

    service: str  # as written ("elb", "s3api")
    operation: str  # as written ("deregister-targets")
    params: tuple[tuple[str, tuple[str, ...]], ...]  # ("target-group-arn", ("PRIMARY",))
    global_options: tuple[tuple[str, str | None], ...] = ()
    argv: tuple[str, ...] = ()  # everything after `aws`
    extra: tuple[str, ...] = ()  # words after the operation that are no parameter's value

    def param(self, name: str) -> tuple[str, ...] | None:
        for key, values in self.params:
            if key == name:
                return values
        return None


@dataclass(frozen=True)
class AwsCheck:
    command: AwsCommand | None
    problems: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    service: str = ""  # botocore's service name
    operation: str = ""  # botocore's operation name ("DeregisterTargets"), "" if none
    custom: bool = False  # a CLI customisation (not checked parameter by parameter)

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_aws(text: str) -> AwsCommand:
    """Split an `aws` line. Raises ValueError when it is not one."""
    from runbook_checks.runbook.words import command_words

    argv = command_words(shlex.split(text.replace("\\\n", " ")))
    if not argv or Path(argv[0]).name != "aws":
        raise ValueError(f"not an aws command: {text[:80]!r}")
    rest = argv[1:]
    global_options: list[tuple[str, str | None]] = []
    positional: list[str] = []
    params: list[tuple[str, tuple[str, ...]]] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        name, eq, inline = word.partition("=")
        if word.startswith("--") and name in GLOBAL_VALUE_OPTIONS:
            value = inline if eq else (rest[i + 1] if i + 1 < len(rest) else None)
            global_options.append((name, value))
            i += 1 if eq else 2
            continue
        if word in GLOBAL_FLAGS:
            global_options.append((word, None))
            i += 1
            continue
        if word.startswith("--") and len(positional) >= 2:
            values: list[str] = [inline] if eq else []
            i += 1
            while not eq and i < len(rest) and not rest[i].startswith("--"):
                values.append(rest[i])
                i += 1
            params.append((name[2:], tuple(values)))
            continue
        positional.append(word)
        i += 1
    service = positional[0] if positional else ""
    operation = positional[1] if len(positional) > 1 else ""
    return AwsCommand(
        service, operation, tuple(params), tuple(global_options), tuple(rest), tuple(positional[2:])
    )


@lru_cache(maxsize=1)
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@lru_cache(maxsize=1)
def _services() -> frozenset[str]:
    return frozenset(_session().get_available_services())


@lru_cache(maxsize=64)
def _model(service: str) -> ServiceModel:
    model: ServiceModel = _session().get_service_model(service)
    return model


def _kebab(name: str) -> str:
    from botocore import xform_name

    return str(xform_name(name, "-"))


def _operations(service: str) -> dict[str, str]:
    """kebab-case -> operation name."""
    return {_kebab(op): op for op in _model(service).operation_names}


@lru_cache(maxsize=1)
def _argument_renames() -> dict[str, str]:
    try:
        from awscli.customizations.argrename import ARGUMENT_RENAMES
    except ImportError:
        return {}
    return {str(k): str(v) for k, v in ARGUMENT_RENAMES.items()}


def _renamed(cli_service: str, operation: str, param: str) -> str:
    renames = _argument_renames()
    for key in (f"{cli_service}.{operation}.{param}", f"{cli_service}.*.{param}", f"*.*.{param}"):
        if key in renames:
            return renames[key]
    return param


def _cli_has_command(cli_service: str, operation: str) -> bool:
    """Whether the CLI adds `operation` to `cli_service` by a customisation."""
    try:
        from awscli.clidriver import create_clidriver
    except ImportError:
        return False
    try:
        table = create_clidriver()._get_command_table()
        service = table.get(cli_service)
        return service is not None and operation in service._get_command_table()
    except Exception:
        return False


@dataclass(frozen=True)
class _Param:
    cli: str  # kebab-case name on the command line
    member: str
    shape: Shape
    required: bool


def _parameters(cli_service: str, operation: OperationModel) -> dict[str, _Param]:
    shape = operation.input_shape
    if shape is None:
        return {}
    required = set(shape.required_members)
    params: dict[str, _Param] = {}
    op = _kebab(operation.name)
    for member, member_shape in shape.members.items():
        base = _kebab(member)
        cli = _renamed(cli_service, op, base)
        params[cli] = _Param(cli, member, member_shape, member in required)
        if member_shape.type_name == "boolean":
            negative = _renamed(cli_service, op, f"no-{base}")
            params[negative] = _Param(negative, member, member_shape, False)
    return params


def describe_shape(shape: Shape) -> str:
    """A short reading of what a parameter takes ("list of TargetDescription: Id (required),
    Port, AvailabilityZone")."""
    if shape.type_name == "list":
        inner = getattr(shape, "member", None)
        return f"list of {describe_shape(inner)}" if inner is not None else "list"
    if shape.type_name == "structure":
        members = getattr(shape, "members", {})
        required = set(getattr(shape, "required_members", []))
        listed = ", ".join(f"{m} (required)" if m in required else m for m in members)
        return f"{shape.name} {{{listed}}}"
    return shape.type_name


def example_value(shape: Shape) -> str:
    """A placeholder value in the CLI's shorthand syntax."""
    if shape.type_name == "list":
        inner = getattr(shape, "member", None)
        return example_value(inner) if inner is not None else "<value>"
    if shape.type_name == "structure":
        required = (
            list(getattr(shape, "required_members", [])) or list(getattr(shape, "members", {}))[:1]
        )
        return ",".join(f"{m}=<{_kebab(m)}>" for m in required)
    return f"<{shape.name.lower() if shape.name else 'value'}>"


def _related_services(service: str) -> list[str]:
    """Services a writer may have meant instead (elb -> elbv2, elbv2 -> elb)."""
    related = [
        s
        for s in sorted(_services())
        if s != service and (s.startswith(service) or service.startswith(s))
    ]
    related += [
        s
        for s in difflib.get_close_matches(service, sorted(_services()), n=3)
        if s != service and s not in related
    ]
    return related


def _join(words: list[str]) -> str:
    """Like shlex.join, leaving <placeholders> readable."""
    return " ".join(w if "<" in w and ">" in w and " " not in w else shlex.quote(w) for w in words)


def _cli_name(service: str) -> str:
    for cli, boto in CLI_SERVICES.items():
        if boto == service:
            return cli
    return service


def check_aws(text: str) -> AwsCheck:
    """Check an `aws` line against botocore's model (offline)."""
    try:
        command = parse_aws(text)
    except ValueError as exc:
        return AwsCheck(None, (str(exc),))
    cli_service, op = command.service, command.operation
    if not cli_service:
        return AwsCheck(command, ("aws: no command given (expected `aws <service> <operation>`)",))
    if cli_service in CUSTOM_TOP_LEVEL:
        return AwsCheck(command, custom=True)
    if cli_service == "s3":
        if op not in S3_COMMANDS:
            close = difflib.get_close_matches(op, sorted(S3_COMMANDS), n=1)
            hint = (
                f"did you mean `aws s3 {close[0]}`?"
                if close
                else "for the S3 API operations use `aws s3api ...`"
            )
            return AwsCheck(
                command,
                (f"aws s3 {op}: the s3 command has no subcommand {op!r}",),
                (hint,),
                service="s3",
                custom=True,
            )
        return AwsCheck(command, service="s3", custom=True)
    service = CLI_SERVICES.get(cli_service, cli_service)
    if service not in _services() or cli_service in CLI_SERVICES.values():
        close = difflib.get_close_matches(cli_service, sorted(_services() | set(CLI_SERVICES)), n=3)
        return AwsCheck(
            command,
            (f"aws {cli_service}: the AWS CLI has no service {cli_service!r}",),
            tuple(f"did you mean `aws {c}`?" for c in close),
        )
    model = _model(service)
    full_name = model.metadata.get("serviceFullName", service)
    if not op:
        return AwsCheck(command, (f"aws {cli_service}: no operation given",), service=service)
    if op == "wait":
        return _check_waiter(command, service)
    operations = _operations(service)
    if op not in operations:
        return _unknown_operation(command, service, full_name)
    operation = model.operation_model(operations[op])
    problems, suggestions = _check_parameters(command, cli_service, operation)
    return AwsCheck(command, tuple(problems), tuple(suggestions), service, operation.name)


def _check_waiter(command: AwsCommand, service: str) -> AwsCheck:
    name = command.extra[0] if command.extra else ""
    try:
        waiters = _session().get_waiter_model(service).waiter_names
    except Exception:
        waiters = []
    names = {_kebab(w): w for w in waiters}
    if name not in names:
        close = difflib.get_close_matches(name, sorted(names), n=3)
        return AwsCheck(
            command,
            (f"aws {command.service} wait {name}: no such waiter",),
            tuple(f"did you mean `aws {command.service} wait {c}`?" for c in close),
            service=service,
            custom=True,
        )
    return AwsCheck(command, service=service, custom=True)


def _unknown_operation(command: AwsCommand, service: str, full_name: str) -> AwsCheck:
    cli_service, op = command.service, command.operation
    if _cli_has_command(cli_service, op):
        return AwsCheck(command, service=service, custom=True)
    problems = [f"aws {cli_service} {op}: {full_name} ({cli_service}) has no operation {op!r}"]
    suggestions: list[str] = []
    for other in _related_services(service):
        try:
            other_ops = _operations(other)
        except Exception:
            continue
        if op in other_ops:
            other_cli = _cli_name(other)
            operation = _model(other).operation_model(other_ops[op])
            other_full = _model(other).metadata.get("serviceFullName", other)
            params = _parameters(other_cli, operation)
            given = {name for name, _ in command.params if name}
            missing = [p for p in params.values() if p.required and p.cli not in given]
            suggested = ["aws", other_cli, op]
            for name, values in command.params:
                if name in params:
                    suggested += [f"--{name}", *values]
            for p in missing:
                suggested += [f"--{p.cli}", example_value(p.shape)]
            needs = ", ".join(f"--{p.cli}" for p in params.values() if p.required)
            text = f"{other_full} ({other_cli}) has {op}"
            if needs:
                text += f" and requires {needs}"
            if missing:
                text += "; missing here: " + ", ".join(
                    f"--{p.cli} ({describe_shape(p.shape)})" for p in missing
                )
            suggestions.append(f"{text}: `{_join(suggested)}`")
    close = difflib.get_close_matches(op, sorted(_operations(service)), n=3, cutoff=0.5)
    if close:
        best = _model(service).operation_model(_operations(service)[close[0]])
        params = _parameters(cli_service, best)
        written = [name for name, _ in command.params]
        if written and all(name in params for name in written):
            suggested = ["aws", cli_service, close[0]]
            for name, values in command.params:
                suggested += [f"--{name}", *values]
            for p in params.values():
                if p.required and p.cli not in written:
                    suggested += [f"--{p.cli}", example_value(p.shape)]
            suggestions.append(f"did you mean `{_join(suggested)}`?")
        suggestions.append(f"{cli_service} operations with a similar name: " + ", ".join(close))
    return AwsCheck(command, tuple(problems), tuple(suggestions), service)


def _check_parameters(
    command: AwsCommand, cli_service: str, operation: OperationModel
) -> tuple[list[str], list[str]]:
    params = _parameters(cli_service, operation)
    op = command.operation
    known = set(params) | CLI_PARAMETERS
    if _model_paginated(operation):
        known |= PAGINATION_PARAMETERS
    problems: list[str] = []
    suggestions: list[str] = []
    given: set[str] = set()
    if command.extra:
        problems.append(
            f"aws {cli_service} {op}: unexpected word(s) {' '.join(command.extra)!r}"
            " (values belong after a --parameter)"
        )
    for name, values in command.params:
        given.add(name)
        if name not in known:
            problems.append(f"aws {cli_service} {op}: unknown parameter --{name}")
            close = difflib.get_close_matches(name, sorted(known), n=2)
            if close:
                suggestions.append(
                    f"--{name}: did you mean " + " or ".join(f"--{c}" for c in close) + "?"
                )
            continue
        param = params.get(name)
        if param is not None and param.shape.type_name != "boolean" and not values:
            problems.append(
                f"aws {cli_service} {op}: --{name} needs a value ({describe_shape(param.shape)})"
            )
    if not given & {"cli-input-json", "cli-input-yaml", "generate-cli-skeleton"}:
        for param in params.values():
            if param.required and param.cli not in given:
                problems.append(
                    f"aws {cli_service} {op}: missing required parameter "
                    f"--{param.cli} ({param.member}: {describe_shape(param.shape)})"
                )
                suggestions.append(f"add `--{param.cli} {example_value(param.shape)}`")
    return problems, suggestions


def _model_paginated(operation: OperationModel) -> bool:
    try:
        paginator = _session().get_paginator_model(operation.service_model.service_name)
        paginator.get_paginator(operation.name)
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class AwsCorrection:
    """What botocore's model says an `aws` line should name: the CLI service and
    operation (as written when they were right), parameters renamed, and the required
    parameters it lacks (CLI name, the shape of its value)."""

    service: str
    operation: str
    renamed: tuple[tuple[str, str], ...] = ()  # (as written, the model's), without "--"
    missing: tuple[tuple[str, Shape], ...] = ()
    why: str = ""


def correct_aws(text: str) -> AwsCorrection | None:
    """The one correction of a wrong `aws` line botocore's model supports, or None when
    the line is right, cannot be read, or the model allows more than one reading (two
    services or operations that would both fit: the owner's choice, not a program's)."""
    check = check_aws(text)
    command = check.command
    if check.ok or command is None or check.custom or not check.service:
        return None
    written = [name for name, _ in command.params if name]
    if check.operation:  # the operation exists: parameters only
        operation = _model(check.service).operation_model(check.operation)
        return _corrected(command.service, operation, command, "")
    fits: list[tuple[str, str, OperationModel]] = []
    for other in _related_services(check.service):
        try:
            other_ops = _operations(other)
        except Exception:
            continue
        if command.operation in other_ops:
            operation = _model(other).operation_model(other_ops[command.operation])
            fits.append((_cli_name(other), command.operation, operation))
    if not fits:
        ops = _operations(check.service)
        for name in difflib.get_close_matches(command.operation, sorted(ops), n=3, cutoff=0.5):
            operation = _model(check.service).operation_model(ops[name])
            if all(p in _parameters(command.service, operation) for p in written):
                fits.append((command.service, name, operation))
    if len(fits) != 1:
        return None
    service, name, operation = fits[0]
    full = _model(operation.service_model.service_name).metadata.get("serviceFullName", service)
    why = f"{full} ({service}) has {name}"
    return _corrected(service, operation, command, why)


def _corrected(
    service: str, operation: OperationModel, command: AwsCommand, why: str
) -> AwsCorrection | None:
    params = _parameters(service, operation)
    known = set(params) | CLI_PARAMETERS | PAGINATION_PARAMETERS
    renamed: list[tuple[str, str]] = []
    for name, _ in command.params:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=2)
        if len(close) != 1:
            return None  # unknown, or two readings
        renamed.append((name, close[0]))
    given = {new for _, new in renamed} | {name for name, _ in command.params}
    missing: list[tuple[str, Shape]] = []
    if not given & {"cli-input-json", "cli-input-yaml", "generate-cli-skeleton"}:
        missing = [(p.cli, p.shape) for p in params.values() if p.required and p.cli not in given]
    if not why and not renamed and not missing:
        return None
    op = _kebab(operation.name)
    reasons = [why] if why else []
    reasons += [f"--{old} is --{new}" for old, new in renamed]
    if missing:
        reasons.append(f"aws {service} {op} requires " + ", ".join(f"--{m}" for m, _ in missing))
    return AwsCorrection(service, op, tuple(renamed), tuple(missing), "; ".join(reasons))


def validate_aws(text: str) -> list[str]:
    """Problems with an `aws` line (empty when it is valid), each with its suggestion."""
    check = check_aws(text)
    problems = list(check.problems)
    if problems and check.suggestions:
        problems[-1] += " -> " + "; ".join(check.suggestions)
    return problems


# -- running -----------------------------------------------------------------------------


def aws_cli() -> str | None:
    """The AWS CLI: next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "aws"
    if beside.is_file():
        return str(beside)
    return find_tool("aws")


def run_aws(step: Step, ctx: ExecContext) -> StepResult:
    check = check_aws(step.text)
    if check.problems:
        return StepResult(
            step=step,
            status=StepStatus.FAILED,
            executed=ctx.redact(step.text),
            error="; ".join(check.problems),
            suggestion="\n".join(check.suggestions),
            notes=("not run: the AWS CLI would reject this command",),
        )
    bound = bind(step.text, ctx.bindings)
    if bound.unbound:
        return unbound_result(step, bound, ctx.redact(bound.text))
    base = StepResult(
        step=step,
        status=StepStatus.ERROR,
        executed=ctx.redact(bound.text),
        bound_placeholders=bound.bound,
    )
    if step.pipeline:
        return replace(
            base, error="a pipe after aws (| " + " | ".join(step.pipeline) + ") is not emulated"
        )
    endpoints = ctx.stack.endpoints
    refused = ctx.bindings.reach.refusal(urlsplit(endpoints.aws_endpoint).hostname or "", "AWS")
    if refused is not None:
        return replace(base, error=refused)
    binary = aws_cli()
    if binary is None:
        return replace(base, error="the AWS CLI is not installed (pip install awscli)")
    command = parse_aws(bound.text)
    notes: list[str] = []
    args: list[str] = []
    skip = 0
    for index, word in enumerate(command.argv):
        if skip:
            skip -= 1
            continue
        name = word.partition("=")[0]
        if name in OWN_OPTIONS:
            if "=" not in word and index + 1 < len(command.argv):
                skip = 1
            notes.append(f"{name} from the runbook replaced by the stack's")
            continue
        args.append(word)
    argv = [
        binary,
        *args,
        "--endpoint-url",
        endpoints.aws_endpoint,
        "--region",
        endpoints.aws_region,
        "--output",
        "json",
    ]
    env = tool_env(
        ctx.folder,
        {
            "AWS_ACCESS_KEY_ID": endpoints.aws_access_key,
            "AWS_SECRET_ACCESS_KEY": endpoints.aws_secret_key,
            "AWS_DEFAULT_REGION": endpoints.aws_region,
            "AWS_CONFIG_FILE": str(ctx.folder / ".aws-config-none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(ctx.folder / ".aws-credentials-none"),
            "AWS_PAGER": "",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "2",
            "AWS_RETRY_MODE": "standard",
        },
    )
    executed = ctx.redact(shlex.join(["aws", *argv[1:]]))
    outcome = run_pipeline([argv], timeout_s=ctx.timeout_s, env=env, cwd=ctx.folder)
    data: JsonValue = None
    if outcome.stdout.strip():
        try:
            data = json.loads(outcome.stdout)
        except ValueError:
            data = None
    error = ""
    if outcome.timed_out:
        error = f"the AWS CLI did not finish within {ctx.timeout_s:g}s (killed)"
    elif outcome.exit_code != 0:
        error = (
            outcome.stderr.strip().splitlines()[-1]
            if outcome.stderr.strip()
            else f"exit {outcome.exit_code}"
        )
    return replace(
        base,
        status=StepStatus.OK
        if outcome.exit_code == 0 and not outcome.timed_out
        else StepStatus.FAILED,
        executed=executed,
        exit_code=outcome.exit_code,
        output=ctx.redact(excerpt(outcome.text)),
        stderr=ctx.redact(excerpt(outcome.stderr)),
        data=data,
        error=ctx.redact(error),
        notes=tuple(notes),
    )
