"""The AWS control plane refuses what AWS refuses: the stack's control plane process
(`python -m runbook_checks.stack.aws_control_plane`, moto behind aws_rules.py) and the
real AWS CLI, as the runbook's aws steps run it (runbook_checks/steps/aws.py). For each
of the runbook's operations: refused while the precondition does not hold, accepted once
it does. The preconditions moto itself enforces (aws_rules.LEFT_TO_MOTO) are checked too,
so a moto upgrade that drops one shows here.

Only the control plane runs (no database, no API): the executor reads nothing of a stack
but its endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from runbook_checks.clock import wait_until
from runbook_checks.runbook.model import Phase, Runbook, Step, StepKind
from runbook_checks.stack.balancer import TargetGroups, register, seed_target_groups
from runbook_checks.stack.base import DUMMY_KEY, Endpoints
from runbook_checks.stack.servers import AwsControlPlane
from runbook_checks.steps.base import ExecContext, StepResult, StepStatus
from runbook_checks.steps.binding import Bindings
from runbook_checks.steps.run import run_step
from tests.fake_stack import NoStackExtras
from tests.profiles import FILES

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@dataclass
class ControlPlaneOnly(NoStackExtras):
    """All the aws executor reads of a stack: where the control plane is, and its keys."""

    endpoints: Endpoints
    backend: str = "control-plane-only"


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsControlPlane]:
    server = AwsControlPlane(tmp_path_factory.mktemp("aws"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def plane(control_plane: AwsControlPlane, tmp_path: Path) -> ControlPlaneOnly:
    control_plane.reset_state()  # moto's /moto-api/reset, through the launcher
    unused = "http://127.0.0.1:9"
    return ControlPlaneOnly(
        Endpoints(
            api_url=unused,
            database_url="postgresql://nobody@127.0.0.1:9/none",
            app_database_url="postgresql://nobody@127.0.0.1:9/none",
            s3_endpoint=unused,
            s3_bucket="files",
            redis_url="redis://127.0.0.1:9/0",
            aws_endpoint=control_plane.url,
            aws_region=REGION,
            admin_token="unused",
            log_dir=tmp_path,
        )
    )


def client(plane: ControlPlaneOnly, service: str) -> Any:
    """boto3, for the set-up the runbook does not do itself."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=plane.endpoints.aws_endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_KEY,
    )


def aws(plane: ControlPlaneOnly, text: str | Step, tmp_path: Path, **values: str) -> StepResult:
    """An aws line run by the step executor: the real CLI against the control plane."""
    step = text if isinstance(text, Step) else adhoc(text)
    ctx = ExecContext(
        plane,  # type: ignore[arg-type]
        # the runbook's example names stand for themselves, as on a stack
        Bindings(
            values={**{n: n for n in FILES.identity_placeholders}, **values}, work_dir=tmp_path
        ),
        timeout_s=30.0,
    )
    return run_step(step, ctx)


def adhoc(text: str) -> Step:
    return Step(
        text=text, raw=text, line=0, language="bash", kind=StepKind.AWS, phase=Phase.MITIGATION
    )


def runbook_step(runbook: Runbook, starts: str) -> Step:
    for section in runbook.sections:
        for step in (*section.steps, *section.other_steps):
            if step.text.startswith(starts):
                return step
    raise LookupError(f"no runbook step starts with {starts!r}")


def accepted(result: StepResult) -> None:
    assert result.status is StepStatus.OK, result.summary()


def refused(result: StepResult, code: str, message: str = "") -> None:
    """Refused by the control plane (not by the offline check) with AWS's code."""
    assert result.status is StepStatus.FAILED, result.summary()
    assert result.exit_code not in (0, None), result.summary()
    assert f"An error occurred ({code})" in result.error, result.summary()
    assert message in result.error, result.summary()


# -- EC2: aws ec2 modify-instance-attribute --instance-id i-xxx --instance-type t3.xlarge ----


def _instance_type(ec2: Any, instance_id: str) -> tuple[str, str]:
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return str(found["State"]["Name"]), str(found["InstanceType"])


def test_resize_is_refused_on_a_running_instance_and_accepted_once_stopped(
    plane: ControlPlaneOnly, runbook: Runbook, tmp_path: Path
) -> None:
    ec2 = client(plane, "ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium")
    instance = made["Instances"][0]["InstanceId"]
    resize = runbook_step(runbook, "aws ec2 modify-instance-attribute")  # the runbook's own

    refused(
        aws(plane, resize, tmp_path, **{"i-xxx": instance}),
        "IncorrectInstanceState",
        f"The instance '{instance}' is not in the 'stopped' state.",
    )
    refused(
        aws(
            plane,
            f"aws ec2 modify-instance-attribute --instance-id {instance} "
            "--attribute instanceType --value t3.xlarge",
            tmp_path,
        ),
        "IncorrectInstanceState",
    )
    assert _instance_type(ec2, instance) == ("running", "t3.medium")

    accepted(aws(plane, f"aws ec2 stop-instances --instance-ids {instance}", tmp_path))
    wait_until(
        lambda: _instance_type(ec2, instance)[0] == "stopped" or None,
        what=f"{instance} to be stopped",
        timeout_s=10,
    )
    refused(
        aws(
            plane,
            f"aws ec2 modify-instance-attribute --instance-id {instance} --instance-type t3.bogus",
            tmp_path,
        ),
        "InvalidInstanceAttributeValue",
        "Value (t3.bogus) for parameter instanceType is invalid.",
    )
    accepted(aws(plane, resize, tmp_path, **{"i-xxx": instance}))
    assert _instance_type(ec2, instance) == ("stopped", "t3.xlarge")
    # left to moto (LEFT_TO_MOTO): an instance that does not exist
    refused(
        aws(plane, resize, tmp_path, **{"i-xxx": "i-0123456789abcdef0"}),
        "InvalidInstanceID.NotFound",
    )


# -- RDS: aws rds promote-read-replica --db-instance-identifier replica-01 -------------------


def _source_db(plane: ControlPlaneOnly) -> Any:
    rds = client(plane, "rds")
    rds.create_db_instance(
        DBInstanceIdentifier="files-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="files",
        MasterUserPassword="not-a-secret-1",
    )
    return rds


def test_promote_is_refused_unless_the_instance_is_a_read_replica(
    plane: ControlPlaneOnly, runbook: Runbook, tmp_path: Path
) -> None:
    promote = runbook_step(runbook, "aws rds promote-read-replica")  # replica-01, as written
    # moto answers a 500 (a KeyError) here; AWS answers DBInstanceNotFound
    refused(aws(plane, promote, tmp_path), "DBInstanceNotFound", "DBInstance replica-01 not found.")
    _source_db(plane)
    refused(
        aws(plane, "aws rds promote-read-replica --db-instance-identifier files-db", tmp_path),
        "InvalidDBInstanceState",
        "DB instance files-db is not a read replica.",
    )
    accepted(
        aws(
            plane,
            "aws rds create-db-instance-read-replica --db-instance-identifier replica-01 "
            "--source-db-instance-identifier files-db",
            tmp_path,
        )
    )
    promoted = aws(plane, promote, tmp_path)
    accepted(promoted)
    assert isinstance(promoted.data, dict)
    assert promoted.data["DBInstance"]["DBInstanceIdentifier"] == "replica-01"  # type: ignore[index,call-overload]
    # promoted: a standalone instance now, no longer a replica to promote
    refused(aws(plane, promote, tmp_path), "InvalidDBInstanceState", "is not a read replica")


# -- RDS: aws rds restore-db-instance-from-db-snapshot (the runbook's line, corrected) -------

RESTORE = (
    "aws rds restore-db-instance-from-db-snapshot --db-instance-identifier {target} "
    "--db-snapshot-identifier snapshot-20240115"
)


def test_restore_needs_the_snapshot_and_a_free_identifier(
    plane: ControlPlaneOnly, tmp_path: Path
) -> None:
    # as written the runbook's operation does not exist (restore-db-instance-from-snapshot)
    restore = RESTORE.format(target="restored-db")
    refused(aws(plane, restore, tmp_path), "DBSnapshotNotFound")  # moto's
    rds = _source_db(plane)
    rds.create_db_snapshot(
        DBSnapshotIdentifier="snapshot-20240115", DBInstanceIdentifier="files-db"
    )
    refused(aws(plane, RESTORE.format(target="files-db"), tmp_path), "DBInstanceAlreadyExists")
    accepted(aws(plane, restore, tmp_path))
    refused(aws(plane, restore, tmp_path), "DBInstanceAlreadyExists")  # moto's
    # (a snapshot that is not 'available': see test_states_moto_never_shows_are_refused_too)


# -- ELBv2: aws elbv2 register-targets / deregister-targets (the runbook's elb, corrected) ----


def _vpc_with_subnet(plane: ControlPlaneOnly, cidr: str = "10.9.0.0/16") -> tuple[str, str]:
    ec2 = client(plane, "ec2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet = cidr.replace("0.0/16", "0.0/24")
    return vpc, ec2.create_subnet(VpcId=vpc, CidrBlock=subnet)["Subnet"]["SubnetId"]


def _group(plane: ControlPlaneOnly, name: str, vpc: str, target_type: str = "ip") -> str:
    made = client(plane, "elbv2").create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType=target_type
    )
    return str(made["TargetGroups"][0]["TargetGroupArn"])


def _registered(plane: ControlPlaneOnly, arn: str) -> list[tuple[str, int]]:
    health = client(plane, "elbv2").describe_target_health(TargetGroupArn=arn)
    return sorted(
        (d["Target"]["Id"], d["Target"]["Port"]) for d in health["TargetHealthDescriptions"]
    )


def test_ip_targets_must_be_valid_for_the_group_and_its_vpc(
    plane: ControlPlaneOnly, tmp_path: Path
) -> None:
    vpc, _subnet = _vpc_with_subnet(plane)
    standby = _group(plane, "files-standby", vpc)
    reg = "aws elbv2 register-targets --target-group-arn STANDBY --targets {}"

    def register_(targets: str) -> StepResult:
        return aws(plane, reg.format(targets), tmp_path, STANDBY=standby)

    refused(register_("Id=8.8.8.8,Port=8080,AvailabilityZone=all"), "InvalidTarget", "8.8.8.8")
    refused(
        register_("Id=api.internal,Port=8080"),
        "ValidationError",
        "The IP address 'api.internal' is not a valid IPv4 address",
    )
    refused(
        register_("Id=10.9.0.5,Port=70000"),
        "ValidationError",
        "Member must have value less than or equal to 65535",
    )
    refused(
        register_("Id=10.200.0.5,Port=8080"),
        "ValidationError",
        "The Availability Zone is required for IP address '10.200.0.5'",
    )
    assert _registered(plane, standby) == []
    accepted(register_("Id=10.200.0.5,Port=8080,AvailabilityZone=all"))
    accepted(register_("Id=10.9.0.5,Port=8080"))  # in the VPC's subnet: no zone needed
    assert _registered(plane, standby) == [("10.200.0.5", 8080), ("10.9.0.5", 8080)]

    dereg = "aws elbv2 deregister-targets --target-group-arn STANDBY --targets {}"
    refused(aws(plane, dereg.format("Id=10.9.0.99,Port=8080"), tmp_path, STANDBY=standby),
            "InvalidTarget")  # moto's: never registered  # fmt: skip
    accepted(aws(plane, dereg.format("Id=10.9.0.5,Port=8080"), tmp_path, STANDBY=standby))
    assert _registered(plane, standby) == [("10.200.0.5", 8080)]
    gone = standby.rsplit("/", 1)[0] + "/0123456789abcdef"
    refused(aws(plane, reg.format("Id=10.9.0.5"), tmp_path, STANDBY=gone), "TargetGroupNotFound")
    refused(aws(plane, dereg.format("Id=10.9.0.5"), tmp_path, STANDBY=gone), "TargetGroupNotFound")


def test_instance_targets_must_be_instances_of_the_groups_vpc(
    plane: ControlPlaneOnly, tmp_path: Path
) -> None:
    vpc, subnet = _vpc_with_subnet(plane)
    other_vpc, other_subnet = _vpc_with_subnet(plane, "10.8.0.0/16")
    group = _group(plane, "files-instances", vpc, target_type="instance")
    ec2 = client(plane, "ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(where: str) -> str:
        made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=where)
        return str(made["Instances"][0]["InstanceId"])

    inside, outside = launch(subnet), launch(other_subnet)
    reg = f"aws elbv2 register-targets --target-group-arn {group} --targets Id={{}}"
    refused(aws(plane, reg.format("10.9.0.5"), tmp_path), "ValidationError",
            "Instance ID '10.9.0.5' is not valid")  # fmt: skip
    refused(aws(plane, reg.format("i-0123456789abcdef0"), tmp_path), "InvalidTarget")
    refused(aws(plane, reg.format(outside), tmp_path), "InvalidTarget", outside)
    ec2.stop_instances(InstanceIds=[inside])
    refused(aws(plane, reg.format(inside), tmp_path), "InvalidTarget", "not in a running state")
    ec2.start_instances(InstanceIds=[inside])
    accepted(aws(plane, reg.format(inside), tmp_path))
    assert [i for i, _ in _registered(plane, group)] == [inside]
    assert other_vpc != vpc


def test_the_stacks_own_seed_registers_its_api_on_loopback(
    plane: ControlPlaneOnly, tmp_path: Path
) -> None:
    """The API instances are IP targets on 127.0.0.1: a public-looking address that AWS
    takes only from a subnet of the group's VPC; the seed gives its VPC that subnet."""
    url = plane.endpoints.aws_endpoint
    arns = seed_target_groups(url, TargetGroups(("files-primary", "files-standby")))
    register(url, arns["files-primary"], 8080)
    assert _registered(plane, arns["files-primary"]) == [("127.0.0.1", 8080)]
    accepted(
        aws(
            plane,
            "aws elbv2 register-targets --target-group-arn STANDBY "
            "--targets Id=127.0.0.1,Port=8081",
            tmp_path,
            STANDBY=arns["files-standby"],
        )
    )
    # without the subnet, AWS (and now the control plane) refuses the same target
    bare_vpc = client(plane, "ec2").create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
    bare = _group(plane, "no-subnet", bare_vpc)
    refused(
        aws(plane, f"aws elbv2 register-targets --target-group-arn {bare} "
            "--targets Id=127.0.0.1,Port=8080", tmp_path),
        "InvalidTarget",
    )  # fmt: skip


# -- states moto's API never produces ----------------------------------------------------------


@pytest.fixture
def in_process_plane(tmp_path: Path) -> Iterator[ControlPlaneOnly]:
    """The launcher's application (`build_app()`, as the process runs it) served from a
    thread of this process, so a test can put moto's state where its API never goes (a
    snapshot still being created, a replica backing up); the CLI still talks HTTP to it."""
    import threading

    import httpx
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from runbook_checks.stack.aws_control_plane import build_app

    server = make_server(
        "127.0.0.1", 0, build_app(), threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="aws-in-process", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        httpx.post(f"{url}/moto-api/reset", timeout=5).raise_for_status()
        unused = "http://127.0.0.1:9"
        yield ControlPlaneOnly(
            Endpoints(
                api_url=unused,
                database_url="postgresql://nobody@127.0.0.1:9/none",
                app_database_url="postgresql://nobody@127.0.0.1:9/none",
                s3_endpoint=unused,
                s3_bucket="files",
                redis_url="redis://127.0.0.1:9/0",
                aws_endpoint=url,
                aws_region=REGION,
                admin_token="unused",
                log_dir=tmp_path,
            )
        )
        httpx.post(f"{url}/moto-api/reset", timeout=5).raise_for_status()
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_states_moto_never_shows_are_refused_too(
    in_process_plane: ControlPlaneOnly, runbook: Runbook, tmp_path: Path
) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.rds.models import rds_backends

    plane = in_process_plane
    rds = _source_db(plane)
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="replica-01", SourceDBInstanceIdentifier="files-db"
    )
    rds.create_db_snapshot(
        DBSnapshotIdentifier="snapshot-20240115", DBInstanceIdentifier="files-db"
    )
    backend = rds_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.databases["replica-01"].status = "backing-up"
    backend.database_snapshots["snapshot-20240115"].status = "creating"

    promote = runbook_step(runbook, "aws rds promote-read-replica")
    refused(aws(plane, promote, tmp_path), "InvalidDBInstanceState", "not in the available state")
    restore = RESTORE.format(target="restored-db")
    refused(aws(plane, restore, tmp_path), "InvalidDBSnapshotState", "not in the available state")

    backend.databases["replica-01"].status = "available"
    backend.database_snapshots["snapshot-20240115"].status = "available"
    accepted(aws(plane, promote, tmp_path))
    accepted(aws(plane, restore, tmp_path))
