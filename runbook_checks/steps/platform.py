"""Platform commands carried out from their text: kubectl, heroku, npm scripts, git.

The stack has no Kubernetes cluster, Heroku app or deployment pipeline, but it has what
they act on: API instances behind a balancer, the API's settings, its releases. A step
such as `kubectl scale deployment api --replicas=5` or `heroku config:set
DATABASE_URL=postgresql://replica-01:5432/files` is parsed
(runbook_checks.runbook.platform), every value taken from the text, and handed to the
`Platform` the drill binds (`Bindings.platform`), which applies it to the stack. So a
wrong deployment name, replica count, URL host or script name fails the drill the way it
would fail on the real platform; a value the text does not give (a URL cut short with
"...") is refused, never guessed.
"""

from __future__ import annotations

from runbook_checks.errors import RunbookChecksError
from runbook_checks.runbook.model import Step
from runbook_checks.runbook.platform import Platform, PlatformCommand, parse_platform
from runbook_checks.steps.base import ExecContext, StepResult, StepStatus, unbound_result
from runbook_checks.steps.binding import bind

__all__ = ["Platform", "PlatformError", "apply", "run_platform"]


class PlatformError(RunbookChecksError):
    """The platform refuses the command (unknown deployment, missing script ...), in
    the platform's own words; `exit_code` as its CLI would exit."""

    def __init__(self, message: str, *, exit_code: int = 1, hint: str = "") -> None:
        super().__init__(message, hint=hint or None)
        self.exit_code = exit_code


def apply(command: PlatformCommand, platform: Platform) -> str:
    """Carry `command` out on `platform`; returns what was done."""
    if command.verb == "rollout-restart":
        return platform.restart_deployment(command.target)
    if command.verb == "scale":
        assert command.replicas is not None
        return platform.scale_deployment(command.target, command.replicas)
    if command.verb == "config-set":
        return platform.set_config(command.target or None, dict(command.settings))
    if command.verb == "restart":
        return platform.restart_app(command.target or None)
    if command.verb == "run-script":
        return platform.run_script(command.tool, command.target)
    if command.verb == "checkout":
        return platform.checkout(command.target)
    raise PlatformError(f"{command.tool}: {command.verb} is not understood")


def run_platform(step: Step, ctx: ExecContext) -> StepResult:
    """Carry `step` out on the platform the context binds (none bound: a manual step)."""
    platform = ctx.bindings.platform
    bound = bind(step.text, ctx.bindings)
    executed = ctx.redact(bound.text)
    if bound.unbound:
        return unbound_result(step, bound, executed)
    parsed = parse_platform(bound.text)
    if isinstance(parsed, str):
        return StepResult(step=step, status=StepStatus.FAILED, executed=executed, error=parsed)
    if platform is None:
        return StepResult(
            step=step,
            status=StepStatus.MANUAL,
            executed=executed,
            reason=f"{parsed.tool}: no platform is bound to this stack here",
        )
    try:
        done = apply(parsed, platform)
    except PlatformError as exc:
        return StepResult(
            step=step,
            status=StepStatus.FAILED,
            executed=executed,
            exit_code=exc.exit_code,
            error=ctx.redact(str(exc)),
            stderr=ctx.redact(str(exc)),
            suggestion=exc.hint or "",
        )
    return StepResult(
        step=step,
        status=StepStatus.OK,
        executed=executed,
        exit_code=0,
        output=ctx.redact(done),
        bound_placeholders=bound.bound,
        notes=(f"carried out on the stack: {ctx.redact(done)}",),
    )
