"""aws lines checked against botocore's service model, offline."""

from __future__ import annotations

import pytest

from runbook_checks.steps.aws import check_aws, parse_aws, validate_aws


@pytest.mark.parametrize(
    "line",
    [
        "aws elbv2 register-targets --target-group-arn arn:x --targets Id=i-1 Id=i-2",
        "aws elbv2 deregister-targets --target-group-arn arn:x --targets Id=i-1,Port=80",
        "aws rds promote-read-replica --db-instance-identifier replica-01",
        "aws rds restore-db-instance-from-db-snapshot --db-instance-identifier restored-db "
        "--db-snapshot-identifier snapshot-20240115",
        "aws ec2 modify-instance-attribute --instance-id i-xxx --instance-type t3.xlarge",
        "aws ec2 describe-instances --no-dry-run --max-items 5 --region eu-west-1",
        "aws --region us-east-1 --output table rds describe-db-instances",
        "aws ec2 create-image --instance-id i-1 --name img --reboot",
        "aws s3api list-buckets",
        "aws s3 ls",
        "aws rds wait db-instance-available --db-instance-identifier replica-01",
        "aws elbv2 register-targets --cli-input-json file://t.json",
        "aws elbv2 describe-target-groups --names=primary",
    ],
)
def test_valid_commands_have_no_problems(line: str) -> None:
    assert validate_aws(line) == []


def test_classic_elb_has_no_deregister_targets_and_elbv2_needs_targets() -> None:
    check = check_aws("aws elb deregister-targets --target-group-arn PRIMARY")
    assert check.problems == (
        "aws elb deregister-targets: Elastic Load Balancing (elb) has no operation "
        "'deregister-targets'",
    )
    suggestion = check.suggestions[0]
    assert "(elbv2) has deregister-targets and requires --target-group-arn, --targets" in suggestion
    assert "missing here: --targets (list of TargetDescription" in suggestion
    assert (
        "`aws elbv2 deregister-targets --target-group-arn PRIMARY --targets Id=<id>`" in suggestion
    )
    assert any("deregister-instances-from-load-balancer" in s for s in check.suggestions)


def test_register_targets_on_elb_names_the_fix() -> None:
    [problem] = validate_aws("aws elb register-targets --target-group-arn STANDBY")
    assert "has no operation 'register-targets'" in problem
    assert "aws elbv2 register-targets --target-group-arn STANDBY --targets Id=<id>" in problem


def test_the_runbooks_restore_command_names_an_operation_rds_does_not_have() -> None:
    check = check_aws(
        "aws rds restore-db-instance-from-snapshot --db-instance-identifier restored-db "
        "--db-snapshot-identifier snapshot-20240115"
    )
    assert "has no operation 'restore-db-instance-from-snapshot'" in check.problems[0]
    assert check.suggestions[0] == (
        "did you mean `aws rds restore-db-instance-from-db-snapshot --db-instance-identifier "
        "restored-db --db-snapshot-identifier snapshot-20240115`?"
    )


def test_missing_required_and_unknown_parameters() -> None:
    check = check_aws("aws rds promote-read-replica --db-instance-id replica-01")
    assert "unknown parameter --db-instance-id" in check.problems[0]
    assert "missing required parameter --db-instance-identifier" in check.problems[1]
    assert "--db-instance-id: did you mean --db-instance-identifier?" in check.suggestions


def test_a_value_is_required_for_non_boolean_parameters() -> None:
    [problem, *_] = validate_aws("aws rds promote-read-replica --db-instance-identifier")
    assert "--db-instance-identifier needs a value" in problem


def test_stray_words_unknown_service_and_waiter() -> None:
    assert "unexpected word(s) 'extra'" in validate_aws("aws elbv2 describe-target-groups extra")[0]
    assert validate_aws("aws elbb describe-load-balancers")[0].startswith(
        "aws elbb: the AWS CLI has no service 'elbb'"
    )
    assert "no such waiter" in validate_aws("aws rds wait db-instance-availabel")[0]
    assert "no subcommand 'lss'" in validate_aws("aws s3 lss")[0]
    assert validate_aws("aws codedeploy list-applications")  # the CLI calls it `deploy`


def test_parse_keeps_multi_value_parameters_and_globals() -> None:
    command = parse_aws(
        "aws --debug elbv2 register-targets --target-group-arn a "
        "--targets Id=1 Id=2 --region=eu-west-1"
    )
    assert command.service == "elbv2"
    assert command.operation == "register-targets"
    assert command.param("targets") == ("Id=1", "Id=2")
    assert command.global_options == (("--debug", None), ("--region", "eu-west-1"))
    with pytest.raises(ValueError, match="not an aws command"):
        parse_aws("gcloud compute instances list")
