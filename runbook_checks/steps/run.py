"""`run_step(step, ctx)`: one runbook step run by the executor for its kind.

The one module that knows every executor (steps.sql, http, aws, platform, shell); they
know only steps.base, so nothing here is imported in a circle. A shell line that runs
another command (`watch CMD`) is handed `run_step` to run it with.
"""

from __future__ import annotations

from dataclasses import replace

from runbook_checks.runbook.model import Step, StepKind
from runbook_checks.steps.aws import run_aws
from runbook_checks.steps.base import ExecContext, StepResult, StepStatus
from runbook_checks.steps.http import run_http
from runbook_checks.steps.platform import run_platform
from runbook_checks.steps.shell import run_shell
from runbook_checks.steps.sql import run_sql


def run_step(step: Step, ctx: ExecContext) -> StepResult:
    """Run `step` on `ctx.stack` with the executor for its kind; never raises for the
    command's own failures."""
    started_at = ctx.clock.wall()
    start = ctx.clock.monotonic()
    if step.executable:
        ctx.stack.on_step(step.line, step.text)  # an environment audits it before it runs
    try:
        result = _dispatch(step, ctx)
    except Exception as exc:  # an executor bug or an unexpected environment problem
        result = StepResult(
            step=step,
            status=StepStatus.ERROR,
            error=ctx.redact(f"{type(exc).__name__}: {exc}"),
        )
    result = replace(
        result,
        started_at=started_at,
        duration_s=max(ctx.clock.monotonic() - start, 0.0),
    )
    if step.executable:
        ctx.stack.on_step_done(step.line, result)  # ... and records what it reached
    return result


def _dispatch(step: Step, ctx: ExecContext) -> StepResult:
    if not step.executable:
        reason = step.manual_reason or f"{step.kind.value} step: needs a person"
        return StepResult(step=step, status=StepStatus.MANUAL, reason=reason)
    if step.kind is StepKind.SQL:
        return run_sql(step, ctx)
    if step.kind is StepKind.HTTP:
        return run_http(step, ctx)
    if step.kind is StepKind.AWS:
        return run_aws(step, ctx)
    if step.kind is StepKind.PLATFORM:
        return run_platform(step, ctx)
    return run_shell(step, ctx, run_step)
