"""aws lines against botocore's models: wrong operations and parameters, with the fix."""

from __future__ import annotations

from collections.abc import Callable

from gate_samples import SEVERITIES

from runbook_checks.gate import aws_check
from runbook_checks.gate.locate import runbook_steps
from runbook_checks.runbook import Runbook
from runbook_checks.runbook.source import read_source

MakeRunbook = Callable[..., Runbook]


def scenario(*commands: str) -> str:
    block = "```bash\n" + "\n".join(commands) + "\n```\n"
    return (
        "## SEV-1: Replica\n\n### Symptoms\n- errors\n\n### Investigation\n\n"
        "```bash\npg_isready\n```\n\n### Mitigation\n\n**Option A: Promote**\n" + block
    )


def test_valid_lines_pass(make_runbook: MakeRunbook) -> None:
    runbook = make_runbook(
        SEVERITIES,
        scenario(
            "aws rds promote-read-replica --db-instance-identifier replica-01",
            "aws ec2 modify-instance-attribute \\",
            "  --instance-id i-xxx \\",
            "  --instance-type t3.xlarge",
        ),
    )
    assert aws_check.check_aws_steps(runbook_steps(runbook)) == []


def test_an_operation_of_another_service_gets_the_corrected_command(
    make_runbook: MakeRunbook,
) -> None:
    runbook = make_runbook(
        SEVERITIES, scenario("aws elb deregister-targets --target-group-arn PRIMARY")
    )
    (finding,) = aws_check.check_aws_steps(runbook_steps(runbook))
    assert finding.kind == aws_check.INVALID_OPERATION
    assert "no operation 'deregister-targets'" in finding.message
    assert "aws elbv2 deregister-targets --target-group-arn PRIMARY --targets" in finding.suggestion
    assert read_source(runbook.path).lines[finding.line - 1].startswith("aws elb deregister")


def test_a_renamed_operation_suggests_the_close_one(make_runbook: MakeRunbook) -> None:
    runbook = make_runbook(
        SEVERITIES, scenario("aws rds promote-replica --db-instance-identifier replica-01")
    )
    (finding,) = aws_check.check_aws_steps(runbook_steps(runbook))
    assert finding.kind == aws_check.INVALID_OPERATION
    assert "promote-read-replica" in finding.suggestion


def test_a_missing_required_parameter(make_runbook: MakeRunbook) -> None:
    runbook = make_runbook(SEVERITIES, scenario("aws rds promote-read-replica"))
    (finding,) = aws_check.check_aws_steps(runbook_steps(runbook))
    assert finding.kind == aws_check.INVALID_PARAMETERS
    assert "--db-instance-identifier" in finding.message
