"""The AWS precondition rules, decision by decision, against a fake control plane; the
request reading, the error documents (parsed by botocore as the CLI parses them) and the
gate, without a server; and the moto reader against moto's in-process backends."""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import botocore.session
import pytest
from botocore import parsers

from runbook_checks.stack.aws_control_plane import (
    MotoControlPlane,
    PreconditionGate,
    error_document,
    read_query,
    signing_scope,
)
from runbook_checks.stack.aws_rules import (
    LEFT_TO_MOTO,
    RULES,
    ControlPlane,
    DbInstance,
    DbSnapshot,
    Ec2Instance,
    QueryRequest,
    Refusal,
    TargetGroup,
    decide,
    guarded,
)

VPC = "vpc-0a1b2c3d"
SUBNET = ipaddress.ip_network("10.9.0.0/24")


@dataclass
class FakeControlPlane:
    instances: dict[str, Ec2Instance] = field(default_factory=dict)
    db_instances: dict[str, DbInstance] = field(default_factory=dict)
    snapshots: dict[str, DbSnapshot] = field(default_factory=dict)
    groups: dict[str, TargetGroup] = field(default_factory=dict)
    types: frozenset[str] = frozenset({"t3.medium", "t3.xlarge"})

    def instance(self, instance_id: str) -> Ec2Instance | None:
        return self.instances.get(instance_id)

    def instance_type_exists(self, name: str) -> bool:
        return name in self.types

    def db_instance(self, identifier: str) -> DbInstance | None:
        return self.db_instances.get(identifier)

    def db_snapshot(self, identifier: str) -> DbSnapshot | None:
        return self.snapshots.get(identifier)

    def target_group(self, arn: str) -> TargetGroup | None:
        return self.groups.get(arn)


def request(service: str, action: str, **params: str) -> QueryRequest:
    return QueryRequest(service, action, {"Action": action, **params})


def refusal(req: QueryRequest, state: ControlPlane) -> Refusal:
    found = decide(req, state)
    assert found is not None, f"{req.action} {dict(req.params)} was accepted"
    return found


# -- EC2: ModifyInstanceAttribute -------------------------------------------------------------

RUNNING = Ec2Instance("i-0123456789abcdef0", "running", VPC)
STOPPED = Ec2Instance("i-0fedcba9876543210", "stopped", VPC)
EC2 = FakeControlPlane(instances={i.id: i for i in (RUNNING, STOPPED)})


def resize(instance: str, new_type: str = "t3.xlarge", **extra: str) -> QueryRequest:
    params = {"InstanceId": instance, "InstanceType.Value": new_type, **extra}
    return request("ec2", "ModifyInstanceAttribute", **params)


def test_changing_a_running_instances_type_is_refused_as_aws_does() -> None:
    found = refusal(resize(RUNNING.id), EC2)
    assert (found.code, found.status) == ("IncorrectInstanceState", 400)
    assert found.message == f"The instance '{RUNNING.id}' is not in the 'stopped' state."
    assert found.rule == "ec2-stopped-to-change-type-userdata-kernel-ramdisk"


def test_a_stopped_instances_type_may_change() -> None:
    assert decide(resize(STOPPED.id), EC2) is None


@pytest.mark.parametrize("state", ["pending", "stopping", "shutting-down", "terminated"])
def test_only_stopped_will_do(state: str) -> None:
    instance = Ec2Instance("i-0aaaaaaaaaaaaaaaa", state, VPC)
    assert refusal(resize(instance.id), FakeControlPlane(instances={instance.id: instance}))


@pytest.mark.parametrize(
    ("attribute", "param"),
    [("instanceType", "InstanceType"), ("userData", "UserData"), ("kernel", "Kernel"),
     ("ramdisk", "Ramdisk")],
)  # fmt: skip
def test_every_stopped_only_attribute_in_either_form(attribute: str, param: str) -> None:
    value = "t3.xlarge" if attribute == "instanceType" else "aGVsbG8="
    dotted = request("ec2", "ModifyInstanceAttribute", InstanceId=RUNNING.id)
    dotted = QueryRequest("ec2", dotted.action, {**dotted.params, f"{param}.Value": value})
    named = request(
        "ec2", "ModifyInstanceAttribute", InstanceId=RUNNING.id, Attribute=attribute, Value=value
    )
    assert refusal(dotted, EC2).code == "IncorrectInstanceState"
    assert refusal(named, EC2).code == "IncorrectInstanceState"


def test_attributes_a_running_instance_may_change_pass() -> None:
    check = request(
        "ec2", "ModifyInstanceAttribute", InstanceId=RUNNING.id, **{"SourceDestCheck.Value": "f"}
    )
    assert decide(check, EC2) is None


def test_an_unknown_instance_and_a_dry_run_are_left_to_moto() -> None:
    assert decide(resize("i-0bbbbbbbbbbbbbbbb"), EC2) is None  # InvalidInstanceID.NotFound
    assert decide(resize(RUNNING.id, DryRun="true"), EC2) is None  # permissions only


def test_an_unknown_instance_type_is_refused_first() -> None:
    found = refusal(resize(STOPPED.id, "t3.bogus"), EC2)
    assert (found.code, found.status) == ("InvalidInstanceAttributeValue", 400)
    assert found.message == "Value (t3.bogus) for parameter instanceType is invalid."
    assert refusal(resize(RUNNING.id, "t3.bogus"), EC2).code == "InvalidInstanceAttributeValue"


# -- RDS: PromoteReadReplica ------------------------------------------------------------------

PRIMARY = DbInstance("files-db", "available", None)
REPLICA = DbInstance("replica-01", "available", "files-db")
RDS = FakeControlPlane(db_instances={d.id: d for d in (PRIMARY, REPLICA)})


def promote(identifier: str) -> QueryRequest:
    return request("rds", "PromoteReadReplica", DBInstanceIdentifier=identifier)


def test_promoting_a_missing_instance_is_db_instance_not_found() -> None:
    found = refusal(promote("replica-02"), RDS)
    assert (found.code, found.status) == ("DBInstanceNotFound", 404)
    assert found.message == "DBInstance replica-02 not found."


def test_promoting_an_instance_that_is_no_read_replica_is_refused() -> None:
    found = refusal(promote("files-db"), RDS)
    assert (found.code, found.status) == ("InvalidDBInstanceState", 400)
    assert "is not a read replica" in found.message


@pytest.mark.parametrize("status", ["backing-up", "modifying", "creating", "rebooting"])
def test_a_replica_is_promoted_only_when_available(status: str) -> None:
    busy = DbInstance("replica-01", status, "files-db")
    found = refusal(promote("replica-01"), FakeControlPlane(db_instances={busy.id: busy}))
    assert found.code == "InvalidDBInstanceState"
    assert found.rule == "rds-promote-replica-must-be-available"
    assert status in found.message


def test_an_available_read_replica_is_promoted() -> None:
    assert decide(promote("replica-01"), RDS) is None


# -- RDS: RestoreDBInstanceFromDBSnapshot -----------------------------------------------------


def restore(snapshot: str, target: str = "restored-db") -> QueryRequest:
    return request(
        "rds",
        "RestoreDBInstanceFromDBSnapshot",
        DBInstanceIdentifier=target,
        DBSnapshotIdentifier=snapshot,
    )


@pytest.mark.parametrize("status", ["creating", "copying", "deleting", "failed"])
def test_a_snapshot_that_is_not_available_cannot_be_restored(status: str) -> None:
    state = FakeControlPlane(
        snapshots={"snapshot-20240115": DbSnapshot("snapshot-20240115", status)}
    )
    found = refusal(restore("snapshot-20240115"), state)
    assert (found.code, found.status) == ("InvalidDBSnapshotState", 400)
    arn = "arn:aws:rds:us-east-1:123456789012:snapshot:snapshot-20240115"
    assert refusal(restore(arn), state).code == "InvalidDBSnapshotState"


def test_an_available_snapshot_restores_and_a_missing_one_is_left_to_moto() -> None:
    ready = FakeControlPlane(snapshots={"s1": DbSnapshot("s1", "available")})
    assert decide(restore("s1"), ready) is None
    assert decide(restore("missing"), ready) is None  # moto: DBSnapshotNotFound (404)


# -- ELBv2: RegisterTargets / DeregisterTargets -----------------------------------------------

IP_GROUP = TargetGroup("arn:tg/ip", "ip", VPC, "ipv4", (SUBNET,))
V6_GROUP = TargetGroup("arn:tg/v6", "ip", VPC, "ipv6", (ipaddress.ip_network("2600:1f18::/64"),))
INSTANCE_GROUP = TargetGroup("arn:tg/instance", "instance", VPC, "ipv4", (SUBNET,))
ELSEWHERE = Ec2Instance("i-0cccccccccccccccc", "running", "vpc-other")
ELB = FakeControlPlane(
    instances={i.id: i for i in (RUNNING, ELSEWHERE)},
    groups={g.arn: g for g in (IP_GROUP, V6_GROUP, INSTANCE_GROUP)},
)


def targets(
    group: TargetGroup, *described: tuple[str, ...], action: str = "RegisterTargets"
) -> QueryRequest:
    """described: (Id,), (Id, Port) or (Id, Port, AvailabilityZone); Port "" = none."""
    params = {"TargetGroupArn": group.arn}
    for n, target in enumerate(described, start=1):
        for key, value in zip(("Id", "Port", "AvailabilityZone"), target, strict=False):
            if value:
                params[f"Targets.member.{n}.{key}"] = value
    return request("elbv2", action, **params)


@pytest.mark.parametrize("action", ["RegisterTargets", "DeregisterTargets"])
def test_ports_outside_1_to_65535_are_a_validation_error(action: str) -> None:
    high = refusal(targets(IP_GROUP, ("10.9.0.5", "80"), ("10.9.0.6", "70000"), action=action), ELB)
    assert (high.code, high.status) == ("ValidationError", 400)
    assert high.message == (
        "1 validation error detected: Value '70000' at 'targets.2.member.port' failed to "
        "satisfy constraint: Member must have value less than or equal to 65535"
    )
    low = refusal(targets(IP_GROUP, ("10.9.0.5", "0"), action=action), ELB)
    assert "greater than or equal to 1" in low.message
    assert decide(targets(IP_GROUP, ("10.9.0.5", "65535"), action=action), ELB) is None


def test_an_instance_group_takes_instance_ids() -> None:
    found = refusal(targets(INSTANCE_GROUP, ("10.9.0.5",)), ELB)
    assert (found.code, found.message) == ("ValidationError", "Instance ID '10.9.0.5' is not valid")


def test_an_instance_target_must_exist_in_the_groups_vpc() -> None:
    missing = refusal(targets(INSTANCE_GROUP, ("i-0dddddddddddddddd",)), ELB)
    assert (missing.code, missing.status) == ("InvalidTarget", 400)
    assert refusal(targets(INSTANCE_GROUP, (ELSEWHERE.id,)), ELB).code == "InvalidTarget"
    assert decide(targets(INSTANCE_GROUP, (RUNNING.id,)), ELB) is None


def test_an_ip_group_takes_ip_addresses_of_its_version() -> None:
    named = refusal(targets(IP_GROUP, ("api.internal", "8080")), ELB)
    assert (named.code, named.message) == (
        "ValidationError",
        "The IP address 'api.internal' is not a valid IPv4 address",
    )
    assert refusal(targets(IP_GROUP, ("2600:1f18::5",)), ELB).code == "ValidationError"
    assert refusal(targets(V6_GROUP, ("10.9.0.5",)), ELB).message.endswith("valid IPv6 address")
    assert decide(targets(V6_GROUP, ("2600:1f18::5",)), ELB) is None


@pytest.mark.parametrize("address", ["8.8.8.8", "127.0.0.1", "172.32.0.1", "100.128.0.1"])
def test_public_and_other_non_private_addresses_outside_the_vpc_are_invalid(address: str) -> None:
    found = refusal(targets(IP_GROUP, (address, "8080", "all")), ELB)
    assert (found.code, found.status) == ("InvalidTarget", 400)
    assert found.rule == "elbv2-ip-target-in-vpc-subnets-or-private-ranges"


def test_a_vpc_subnet_holds_any_address_even_a_loopback_one() -> None:
    loopback = TargetGroup("arn:tg/lo", "ip", VPC, "ipv4", (ipaddress.ip_network("127.0.0.0/16"),))
    state = FakeControlPlane(groups={loopback.arn: loopback})
    assert decide(targets(loopback, ("127.0.0.1", "8080")), state) is None


@pytest.mark.parametrize(
    "address", ["10.200.0.5", "172.16.4.4", "192.168.1.1", "100.64.0.9"]
)  # the private ranges, outside the VPC's subnets
def test_a_private_address_outside_the_vpc_needs_its_zone(address: str) -> None:
    found = refusal(targets(IP_GROUP, (address, "8080")), ELB)
    assert (found.code, found.status) == ("ValidationError", 400)
    assert found.message == (
        f"The Availability Zone is required for IP address '{address}' because it is not in the VPC"
    )
    assert decide(targets(IP_GROUP, (address, "8080", "all")), ELB) is None


def test_an_address_in_a_vpc_subnet_needs_no_zone() -> None:
    assert decide(targets(IP_GROUP, ("10.9.0.5", "8080"), ("10.9.0.6",)), ELB) is None


def test_a_missing_group_is_left_to_moto() -> None:
    ghost = TargetGroup("arn:tg/ghost", "ip", VPC, "ipv4", ())
    assert decide(targets(ghost, ("8.8.8.8",)), ELB) is None  # moto: TargetGroupNotFound


# -- the rules as a set -------------------------------------------------------------------------


def test_every_rule_names_its_source_code_and_status() -> None:
    names = [r.name for r in RULES] + [p.name for p in LEFT_TO_MOTO]
    assert len(names) == len(set(names))
    for precondition in [r.precondition for r in RULES] + list(LEFT_TO_MOTO):
        assert precondition.source.url.startswith("https://docs.a"), precondition.name
        assert precondition.source.quote, precondition.name
        assert precondition.source.document, precondition.name
        assert precondition.status in (400, 404)
        assert precondition.service in ("ec2", "rds", "elbv2")


def test_every_runbook_operation_is_guarded_and_nothing_else() -> None:
    for service, action in [
        ("ec2", "ModifyInstanceAttribute"),
        ("rds", "PromoteReadReplica"),
        ("rds", "RestoreDBInstanceFromDBSnapshot"),
        ("elbv2", "RegisterTargets"),
        ("elbv2", "DeregisterTargets"),
    ]:
        assert guarded(service, action), action
    assert not guarded("ec2", "DescribeInstances")
    assert not guarded("ec2", "StopInstances")
    assert not guarded("elbv2", "ModifyInstanceAttribute")


def test_a_rule_of_another_operation_never_speaks() -> None:
    # a running instance, but the request is not a ModifyInstanceAttribute
    assert decide(request("ec2", "StopInstances", InstanceId=RUNNING.id), EC2) is None


# -- reading requests -------------------------------------------------------------------------

AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20240115/eu-west-1/{service}/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0f0f"
)


def environ(service: str, body: dict[str, str], query: str = "") -> dict[str, Any]:
    data = urlencode(body).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "QUERY_STRING": query,
        "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
        "CONTENT_LENGTH": str(len(data)),
        "HTTP_AUTHORIZATION": AUTH.format(service=service),
        "wsgi.input": io.BytesIO(data),
    }


def test_a_signed_query_request_is_read_and_its_body_left_for_moto() -> None:
    body = {
        "Action": "RegisterTargets",
        "Version": "2015-12-01",
        "TargetGroupArn": "arn:tg/ip",
        "Targets.member.1.Id": "10.9.0.5",
        "Targets.member.1.Port": "8080",
        "Targets.member.2.Id": "10.9.0.6",
        "Targets.member.2.AvailabilityZone": "all",
    }
    env = environ("elasticloadbalancing", body)
    read = read_query(env, account=lambda _environ, key: f"account-of-{key}")
    assert read is not None
    assert (read.service, read.action, read.region) == ("elbv2", "RegisterTargets", "eu-west-1")
    assert read.account == "account-of-testing"
    assert [(t.index, t.id, t.port, t.zone) for t in read.targets()] == [
        (1, "10.9.0.5", "8080", None),
        (2, "10.9.0.6", None, "all"),
    ]
    assert env["wsgi.input"].read() == urlencode(body).encode()


def test_what_is_not_a_signed_query_request_of_ec2_rds_or_elbv2_is_not_read() -> None:
    s3 = environ("s3", {"Action": "PutObject"})
    assert read_query(s3) is None
    unsigned = environ("ec2", {"Action": "DescribeInstances"})
    del unsigned["HTTP_AUTHORIZATION"]
    assert read_query(unsigned) is None
    assert signing_scope({"HTTP_AUTHORIZATION": "AWS AKID:sig"}) is None


def test_a_query_string_request_is_read_too() -> None:
    env = environ("rds", {}, query="Action=PromoteReadReplica&DBInstanceIdentifier=replica-01")
    read = read_query(env, account=lambda _e, _k: "1")
    assert read is not None
    assert read.get("DBInstanceIdentifier") == "replica-01"


# -- answering --------------------------------------------------------------------------------


def parsed_error(service: str, operation: str, refused: Refusal) -> dict[str, Any]:
    """The error as the AWS CLI sees it (botocore's parser for the service's protocol)."""
    model = botocore.session.get_session().get_service_model(service)
    parser = parsers.create_parser(model.protocol)
    response = {
        "status_code": refused.status,
        "headers": {"x-amzn-requestid": "req-1"},
        "body": error_document(refused, "req-1"),
    }
    result: dict[str, Any] = parser.parse(response, model.operation_model(operation).output_shape)
    return result


@pytest.mark.parametrize(
    ("service", "operation", "code", "status"),
    [
        ("ec2", "ModifyInstanceAttribute", "IncorrectInstanceState", 400),
        ("rds", "PromoteReadReplica", "DBInstanceNotFound", 404),
        ("elbv2", "RegisterTargets", "InvalidTarget", 400),
    ],
)
def test_the_error_document_parses_to_aws_code_and_message(
    service: str, operation: str, code: str, status: int
) -> None:
    refused = Refusal("rule", service, code, "it's <not> & never 'so'", status)
    error = parsed_error(service, operation, refused)["Error"]
    assert (error["Code"], error["Message"]) == (code, "it's <not> & never 'so'")


@dataclass
class Recorder:
    """A stand-in for moto's WSGI app: records what reaches it."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.calls.append(environ["wsgi.input"].read().decode())
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [b"<ok/>"]


def run(gate: PreconditionGate, env: dict[str, Any]) -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: object = None) -> Any:
        seen.append(status)

    body = b"".join(gate(env, start_response))  # type: ignore[arg-type]
    return seen[0], body


def test_the_gate_answers_a_refusal_and_passes_the_rest_to_moto() -> None:
    moto = Recorder()
    gate = PreconditionGate(moto, state=lambda account, region: EC2)  # type: ignore[arg-type]
    status, body = run(
        gate,
        environ("ec2", {"Action": "ModifyInstanceAttribute", "InstanceId": RUNNING.id,
                        "InstanceType.Value": "t3.xlarge"}),
    )  # fmt: skip
    assert status == "400 Bad Request"
    assert b"<Code>IncorrectInstanceState</Code>" in body
    assert moto.calls == []
    status, _ = run(
        gate,
        environ("ec2", {"Action": "ModifyInstanceAttribute", "InstanceId": STOPPED.id,
                        "InstanceType.Value": "t3.xlarge"}),
    )  # fmt: skip
    assert status == "200 OK"
    assert moto.calls == [f"Action=ModifyInstanceAttribute&InstanceId={STOPPED.id}"
                          "&InstanceType.Value=t3.xlarge"]  # fmt: skip


def test_the_gate_reads_no_state_for_operations_no_rule_guards() -> None:
    def no_state(account: str, region: str) -> ControlPlane:
        raise AssertionError("state read for an unguarded operation")

    moto = Recorder()
    gate = PreconditionGate(moto, state=no_state)  # type: ignore[arg-type]
    status, _ = run(gate, environ("ec2", {"Action": "StopInstances", "InstanceId.1": RUNNING.id}))
    assert status == "200 OK"
    reset = {"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/reset", "wsgi.input": io.BytesIO()}
    assert run(gate, reset)[0] == "200 OK"
    assert len(moto.calls) == 2


# -- moto's state, read -----------------------------------------------------------------------


@pytest.fixture
def moto_backends() -> Iterator[dict[str, Any]]:
    """moto's in-process backends (no server), with boto3 clients writing to them."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        kwargs: Any = {
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        yield {name: boto3.client(name, **kwargs) for name in ("ec2", "rds", "elbv2")}


def test_the_moto_reader_sees_instances_replicas_snapshots_and_groups(
    moto_backends: dict[str, Any],
) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.rds.models import rds_backends

    ec2, rds, elb = moto_backends["ec2"], moto_backends["rds"], moto_backends["elbv2"]
    state = MotoControlPlane(DEFAULT_ACCOUNT_ID, "us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet)
    instance_id = made["Instances"][0]["InstanceId"]
    assert state.instance(instance_id) == Ec2Instance(instance_id, "running", vpc)
    ec2.stop_instances(InstanceIds=[instance_id])
    assert state.instance(instance_id) == Ec2Instance(instance_id, "stopped", vpc)
    assert state.instance("i-0123456789abcdef0") is None
    assert state.instance_type_exists("t3.xlarge")
    assert not state.instance_type_exists("t3.bogus")

    rds.create_db_instance(
        DBInstanceIdentifier="files-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="files",
        MasterUserPassword="not-a-secret-1",
    )
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="replica-01", SourceDBInstanceIdentifier="files-db"
    )
    assert state.db_instance("files-db") == DbInstance("files-db", "available", None)
    assert state.db_instance("replica-01") == DbInstance("replica-01", "available", "files-db")
    rds.promote_read_replica(DBInstanceIdentifier="replica-01")
    assert state.db_instance("replica-01") == DbInstance("replica-01", "available", None)
    assert state.db_instance("replica-02") is None
    rds.create_db_snapshot(
        DBSnapshotIdentifier="snapshot-20240115", DBInstanceIdentifier="files-db"
    )
    assert state.db_snapshot("snapshot-20240115") == DbSnapshot("snapshot-20240115", "available")
    # moto's API never leaves a snapshot anything but available: set it by hand
    backend = rds_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.database_snapshots["snapshot-20240115"].status = "creating"
    assert state.db_snapshot("snapshot-20240115") == DbSnapshot("snapshot-20240115", "creating")
    assert state.db_snapshot("missing") is None

    arn = elb.create_target_group(
        Name="files-standby", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    assert state.target_group(arn) == TargetGroup(arn, "ip", vpc, "ipv4", (SUBNET,))
    assert state.target_group(arn + "0") is None


def test_target_groups_keep_targets_apart_by_id_and_port() -> None:
    """AWS registers the same IP address on two ports as two targets (RegisterTargets);
    the control plane's moto does too once the launcher has corrected it."""
    import boto3
    from moto import mock_aws

    from runbook_checks.stack.aws_control_plane import targets_by_id_and_port

    targets_by_id_and_port()
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        elb = boto3.client("elbv2", region_name="us-east-1")
        group = elb.create_target_group(
            Name="apis", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(
            TargetGroupArn=group,
            Targets=[{"Id": "10.0.0.5", "Port": 8001}, {"Id": "10.0.0.5", "Port": 8002}],
        )

        def registered() -> list[tuple[str, int]]:
            health = elb.describe_target_health(TargetGroupArn=group)
            return sorted(
                (d["Target"]["Id"], d["Target"]["Port"]) for d in health["TargetHealthDescriptions"]
            )

        assert registered() == [("10.0.0.5", 8001), ("10.0.0.5", 8002)]
        elb.deregister_targets(TargetGroupArn=group, Targets=[{"Id": "10.0.0.5", "Port": 8001}])
        assert registered() == [("10.0.0.5", 8002)]
        one = elb.describe_target_health(
            TargetGroupArn=group, Targets=[{"Id": "10.0.0.5", "Port": 8001}]
        )["TargetHealthDescriptions"][0]["TargetHealth"]
        assert one["Reason"] == "Target.NotRegistered"
