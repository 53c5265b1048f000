"""Every executable investigation step runs against a healthy stack.

The gate first gives the stack something to look at (a user with a token, an uploaded
file, a share link), binds the runbook's placeholders to those, then runs each
investigation step with the step executors. A diagnostic that fails on a healthy
system (an SQL error, a non-zero exit, an HTTP error status) cannot be trusted during
an incident: that is a finding, with the output as evidence. Where a static check has
already explained the same step (a missing column, a route that needs a token), the
output is attached to that finding instead of a second one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import StackError
from runbook_checks.findings import Finding, Level
from runbook_checks.gate.locate import Located
from runbook_checks.gate.placeholders import (
    IMPOSSIBLE_PID,
    Role,
    RoleValues,
    placeholder_values,
)
from runbook_checks.profile import EMPTY, Profile
from runbook_checks.runbook.model import Phase, StepKind
from runbook_checks.steps.base import ExecContext, StepResult, StepStatus, excerpt
from runbook_checks.steps.binding import Bindings
from runbook_checks.steps.run import run_step

if TYPE_CHECKING:
    from runbook_checks.stack.base import Stack

FAILS = "diagnostic-fails"
NOT_RUN = "diagnostic-not-run"
KINDS = (FAILS, NOT_RUN)
EVIDENCE_CHARS = 1500
DIAGNOSTIC_WORKERS = 4  # investigation steps run at once (each mostly waits)
_GREP_TOOLS = frozenset({"grep", "egrep", "fgrep", "zgrep", "rg"})


def seed(stack: Stack, *, timeout_s: float = 10.0) -> RoleValues:
    """Create a user, a file and a share link on the stack; their values by role."""
    import httpx

    endpoints = stack.endpoints
    try:
        with stack.kit.client(endpoints.api_url, endpoints.admin_token, timeout_s=timeout_s) as api:
            user = api.create_user(f"gate-{uuid.uuid4().hex[:12]}@runbook-checks.invalid")
            upload = api.upload(
                user, "gate-probe.txt", b"runbook-checks gate probe\n", "text/plain"
            )
            if not upload.acknowledged or upload.file_id is None:
                raise StackError(
                    f"the stack is not healthy: an upload answered {upload.status_code}: "
                    f"{upload.body[:200]}"
                )
            share = api.share(user, upload.file_id)
    except httpx.HTTPError as exc:
        raise StackError(
            f"the stack is not healthy: could not create test data: {exc}",
            hint="run `runbook-checks up` and look at the API's log",
        ) from exc
    return RoleValues(
        {
            Role.BACKEND_PID: str(IMPOSSIBLE_PID),
            Role.ADMIN_TOKEN: endpoints.admin_token,
            Role.USER_TOKEN: user.token,
            Role.SHARE_TOKEN: share,
            Role.FILE_ID: upload.file_id,
            Role.USER_ID: user.id,
            Role.UUID: str(uuid.uuid4()),
        }
    )


def investigation_steps(steps: Sequence[Located]) -> list[Located]:
    return [
        item
        for item in steps
        if item.section.is_scenario
        and item.step.phase is Phase.INVESTIGATION
        and item.step.executable
    ]


def run_diagnostics(
    steps: Sequence[Located],
    stack: Stack,
    roles: RoleValues,
    work_dir: Path,
    *,
    clock: Clock = SYSTEM_CLOCK,
    timeout_s: float = 10.0,
    profile: Profile = EMPTY,
) -> list[tuple[Located, StepResult]]:
    """Each investigation step's result, in the runbook's order. The steps run a few at a
    time: they only read a healthy stack, and most of their time is waiting (a `top`
    samples for ~0.16 s; run one after another, the shipped runbook's 26 took ~0.5 s).
    On an environment the project does not run (the external backend: someone's staging,
    whose audit log a person reads) they run one at a time, as its drills do."""
    base = Bindings.from_stack(stack, work_dir, profile)
    planned: list[tuple[Located, ExecContext]] = []
    for item in investigation_steps(steps):
        step = item.step
        text = f"{step.raw}\n{step.text}"
        values = placeholder_values(text, roles, base, sql=step.kind is StepKind.SQL)
        bindings = base.merged(values=values) if values else base
        context = ExecContext(stack, bindings, clock=clock, timeout_s=timeout_s, work_dir=work_dir)
        planned.append((item, context))
    if not planned:
        return []
    workers = 1 if stack.backend == "external" else DIAGNOSTIC_WORKERS
    with ThreadPoolExecutor(
        max_workers=min(workers, len(planned)), thread_name_prefix="diagnostic"
    ) as pool:
        outcomes = list(pool.map(lambda plan: run_step(plan[0].step, plan[1]), planned))
    return [(item, result) for (item, _), result in zip(planned, outcomes, strict=True)]


def _grep_found_nothing(result: StepResult) -> bool:
    step = result.step
    last = (step.pipeline[-1] if step.pipeline else step.text).split()
    tool = last[0].rsplit("/", 1)[-1] if last else ""
    return tool in _GREP_TOOLS and result.exit_code == 1 and not result.stderr.strip()


def _evidence(result: StepResult) -> str:
    parts = [result.summary()]
    if result.output.strip():
        parts.append(f"output:\n{result.output.strip()}")
    if result.stderr.strip():
        parts.append(f"stderr:\n{result.stderr.strip()}")
    return excerpt("\n".join(parts), EVIDENCE_CHARS)


def _problem(result: StepResult) -> tuple[Level, str, str] | None:
    """(level, kind, message) for a result that shows a problem, else None."""
    status = result.status
    if status is StepStatus.OK:
        if result.http_status is not None and result.http_status >= 400:
            return (Level.ERROR, FAILS, f"answers HTTP {result.http_status} on a healthy stack")
        return None
    if status is StepStatus.FAILED:
        if _grep_found_nothing(result):
            return None
        reason = (result.error or result.stderr or result.output).strip().splitlines()
        first = reason[0] if reason else f"exit {result.exit_code}"
        return Level.ERROR, FAILS, f"fails on a healthy stack: {first}"
    if status is StepStatus.ERROR:
        if result.unbound:
            return (
                Level.INFO,
                NOT_RUN,
                f"not run: placeholder(s) {', '.join(result.unbound)} have no value",
            )
        if result.error.startswith("refused"):
            return Level.INFO, NOT_RUN, f"not run: {result.error}"
        return Level.WARNING, NOT_RUN, f"could not be run: {result.error}"
    return None


def diagnostic_findings(
    results: Sequence[tuple[Located, StepResult]], existing: Sequence[Finding]
) -> list[Finding]:
    """New findings from `results`, and `existing` with live evidence attached.

    Returns the complete list: `existing` (some with evidence added) then new ones.
    """
    merged = list(existing)
    new: list[Finding] = []
    for item, result in results:
        problem = _problem(result)
        if problem is None:
            continue
        level, kind, message = problem
        same_step = [
            i
            for i, f in enumerate(merged)
            if f.section_id == item.section.id
            and item.step.line <= f.line <= item.end_line
            and f.level in (Level.ERROR, Level.WARNING, Level.INFO)
            and f.source == "gate"
        ]
        explained = [
            i for i in same_step if merged[i].level is not Level.INFO or level is Level.INFO
        ]
        if explained:
            for i in explained:
                if not merged[i].evidence:
                    merged[i] = replace(merged[i], evidence=_evidence(result))
            continue
        new.append(
            Finding(
                level,
                kind,
                item.section.id,
                f"investigation step {message}",
                line=item.step.line,
                statement=item.step.text,
                suggestion=result.suggestion
                or "correct the command so that it runs on a healthy system",
                evidence=_evidence(result),
            )
        )
    return merged + new
