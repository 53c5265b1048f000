"""aws lines against botocore's service models (offline): the service and operation
exist, parameters are known and the required ones are given; with the corrected command
as the suggestion when one is known."""

from __future__ import annotations

from collections.abc import Sequence

from runbook_checks.findings import Finding, Level
from runbook_checks.gate.locate import Located
from runbook_checks.runbook.model import StepKind

INVALID_OPERATION = "aws-invalid-operation"
INVALID_PARAMETERS = "aws-invalid-parameters"
KINDS = (INVALID_OPERATION, INVALID_PARAMETERS)


def check_aws_steps(steps: Sequence[Located]) -> list[Finding]:
    from runbook_checks.steps.aws import check_aws

    findings: list[Finding] = []
    for item in steps:
        step = item.step
        if step.kind is not StepKind.AWS:
            continue
        check = check_aws(step.text)
        if check.ok:
            continue
        # parameter problems come with the operation found; otherwise the service,
        # operation, s3 subcommand or waiter named does not exist
        kind = INVALID_PARAMETERS if check.operation else INVALID_OPERATION
        first = check.problems[0]
        more = f" (and {len(check.problems) - 1} more)" if len(check.problems) > 1 else ""
        findings.append(
            Finding(
                Level.ERROR,
                kind,
                item.section.id,
                first + more,
                line=step.line,
                statement=step.text,
                suggestion="; ".join(_best(check.suggestions)),
                evidence="\n".join(check.problems),
            )
        )
    return findings


def _best(suggestions: tuple[str, ...]) -> tuple[str, ...]:
    """The suggestions that give a whole corrected command, when there are such."""
    commands = tuple(s for s in suggestions if "`aws " in s)
    return commands or suggestions
