"""Each step executor on the runbook's own lines, against the real stack.

Steps come from the parsed runbook (found by their text, not their line number), are
bound with `Bindings.from_stack` plus what each test creates (a user token, a share
token, target group ARNs), and run with `run_step`. Tests that break a component bring
it back before they end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import httpx
import pytest

from runbook_checks.runbook.model import Phase, Runbook, Step, StepKind
from runbook_checks.stack.base import Stack
from runbook_checks.steps.base import ExecContext, StepResult, StepStatus
from runbook_checks.steps.binding import Bindings
from runbook_checks.steps.run import run_step
from tests.profiles import FILES

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------- helpers


def runbook_step(runbook: Runbook, starts: str, *, section: str | None = None) -> Step:
    """The first step whose text (or raw text) starts with `starts`."""
    for candidate in runbook.sections:
        if section is not None and candidate.title != section:
            continue
        for step in (*candidate.steps, *candidate.other_steps):
            if step.text.startswith(starts) or step.raw.lstrip().startswith(starts):
                return step
    raise LookupError(f"no runbook step starts with {starts!r}")


def adhoc(text: str, kind: StepKind, line: int = 0) -> Step:
    return Step(text=text, raw=text, line=line, language="bash", kind=kind, phase=Phase.MITIGATION)


def context(stack: Stack, work: Path, timeout_s: float = 10.0, **bindings: object) -> ExecContext:
    return ExecContext(
        stack,
        Bindings.from_stack(stack, work, FILES, **bindings),  # type: ignore[arg-type]
        timeout_s=timeout_s,
    )


def create_user(stack: Stack, email: str, tier: str = "free") -> str:
    ep = stack.endpoints
    response = httpx.post(
        f"{ep.api_url}/admin/users",
        timeout=5,
        headers={"Authorization": f"Bearer {ep.admin_token}"},
        json={"email": email, "subscription_tier": tier},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def assert_ok(result: StepResult) -> None:
    assert result.status is StepStatus.OK, result.summary()


@pytest.fixture
def ctx(fresh_stack: Stack, tmp_path: Path) -> ExecContext:
    return context(fresh_stack, tmp_path)


# ---------------------------------------------------------------------------- SQL


def test_psql_connections_by_state(runbook: Runbook, ctx: ExecContext) -> None:
    step = runbook_step(runbook, "SELECT count(*), state")
    result = run_step(step, ctx)
    assert_ok(result)
    assert result.columns == ("count", "state")
    assert sum(int(str(row[0])) for row in result.rows) >= 1
    assert result.exit_code == 0
    assert result.bound_placeholders == ("$DATABASE_URL",)
    assert result.executed.startswith("psql postgresql://")
    password = ctx.stack.endpoints.database_url.split(":")[2].split("@")[0]
    assert password not in result.executed
    assert result.output.endswith("rows)")


def test_a_column_the_schema_does_not_have_fails_with_sqlstate_and_line(
    runbook: Runbook, ctx: ExecContext
) -> None:
    step = runbook_step(runbook, "SELECT user_id, subscription_tier")
    result = run_step(step, ctx)
    assert result.status is StepStatus.FAILED
    assert result.sqlstate == "42703"
    assert result.exit_code == 1  # psql's status for an SQL error
    assert 'column "user_id" does not exist' in result.error
    assert result.error_line == step.line + 1  # the SELECT is on the line after `psql -c "`


def test_statement_timeout_is_the_step_timeout(fresh_stack: Stack, tmp_path: Path) -> None:
    ctx = context(fresh_stack, tmp_path, timeout_s=1.0)
    result = run_step(adhoc("SELECT pg_sleep(5);", StepKind.SQL), ctx)
    assert result.status is StepStatus.FAILED
    assert result.sqlstate == "57014"  # query_canceled: statement timeout
    assert result.duration_s < 4.0


def test_long_running_queries_then_kill_one_by_pid(runbook: Runbook, ctx: ExecContext) -> None:
    listing = run_step(runbook_step(runbook, "SELECT pid, now() - query_start"), ctx)
    assert_ok(listing)
    assert listing.columns == ("pid", "duration", "query")
    import psycopg

    with psycopg.connect(ctx.stack.endpoints.database_url, autocommit=True) as victim:
        pid = victim.info.backend_pid
        kill = run_step(
            runbook_step(runbook, "SELECT pg_terminate_backend(PID)"),
            replace(ctx, bindings=ctx.bindings.with_values({"PID": str(pid)})),
        )
        assert_ok(kill)
        assert kill.bound_placeholders == ("PID",)
        assert kill.rows == ((True,),)
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")


# ---------------------------------------------------------------------------- HTTP


def test_curl_health_on_the_api_host(runbook: Runbook, ctx: ExecContext) -> None:
    result = run_step(runbook_step(runbook, "curl http://localhost:5000/health"), ctx)
    assert_ok(result)
    assert result.http_status == 200
    assert isinstance(result.data, dict)
    assert result.data["status"] == "ok"
    assert result.exit_code == 0
    assert any(note.startswith("host mapped: http://localhost:5000 -> ") for note in result.notes)


def test_curl_upload_with_a_bound_token_and_a_real_file(
    runbook: Runbook, fresh_stack: Stack, tmp_path: Path
) -> None:
    token = create_user(fresh_stack, "uploader@example.com")
    ctx = context(fresh_stack, tmp_path, values={"TOKEN": token})
    result = run_step(
        runbook_step(
            runbook,
            "curl -X POST https://api.rolerabbit.com/api/storage/files/upload",
            section="SEV-1: Storage System Failure",
        ),
        ctx,
    )
    assert_ok(result)
    assert result.http_status == 201
    assert isinstance(result.data, dict)
    assert result.data["name"] == "test.txt"
    assert result.data["size_bytes"] == (tmp_path / "test.txt").stat().st_size
    assert result.bound_placeholders == ("TOKEN",)
    assert token not in result.executed
    assert "Bearer ***" in result.executed


def test_verbose_upload_as_user_shows_the_exchange(
    runbook: Runbook, fresh_stack: Stack, tmp_path: Path
) -> None:
    token = create_user(fresh_stack, "pdf@example.com")
    ctx = context(fresh_stack, tmp_path, values={"USER_TOKEN": token})
    result = run_step(
        runbook_step(
            runbook,
            "curl -X POST https://api.rolerabbit.com/api/storage/files/upload",
            section="SEV-2: File Upload Failures",
        ),
        ctx,
    )
    assert_ok(result)
    assert result.http_status == 201
    assert "> POST /api/storage/files/upload HTTP/1.1" in result.stderr
    assert "< HTTP/1.1 201" in result.stderr
    assert token not in result.stderr


def test_curl_write_out_with_the_format_file(
    runbook: Runbook, fresh_stack: Stack, tmp_path: Path
) -> None:
    step = runbook_step(runbook, 'curl -w "@curl-format.txt"')
    result = run_step(step, context(fresh_stack, tmp_path))
    assert_ok(result)
    assert "time_total:" in result.output
    assert result.http_status == 401  # the runbook's line sends no token: it times a refusal
    no_file = context(fresh_stack, tmp_path, files={"curl-format.txt": tmp_path / "nope.txt"})
    gone = run_step(step, no_file)
    assert gone.status is StepStatus.FAILED
    assert gone.exit_code == 26
    assert gone.stderr.startswith("curl: Failed to open curl-format.txt")
    assert gone.http_status is None  # nothing was sent


def test_share_link_and_its_rows(runbook: Runbook, fresh_stack: Stack, tmp_path: Path) -> None:
    token = create_user(fresh_stack, "sharer@example.com")
    api = fresh_stack.endpoints.api_url
    auth = {"Authorization": f"Bearer {token}"}
    uploaded = httpx.post(
        f"{api}/api/storage/files/upload",
        headers=auth,
        timeout=10,
        files={"file": ("a.txt", b"shared", "text/plain")},
    ).json()
    share = httpx.post(
        f"{api}/api/storage/files/{uploaded['id']}/shares",
        headers=auth,
        json={"max_downloads": 1},
        timeout=5,
    ).json()
    ctx = context(
        fresh_stack, tmp_path, values={"abc123xyz": share["token"], "FILE_ID": uploaded["id"]}
    )
    link = run_step(runbook_step(runbook, "curl https://rolerabbit.com/share/abc123xyz"), ctx)
    assert_ok(link)
    assert link.http_status == 200
    rows = run_step(runbook_step(runbook, "SELECT\n    id, file_id, token"), ctx)
    assert_ok(rows)
    assert len(rows.rows) == 1
    assert rows.rows[0][rows.columns.index("file_id")] is not None
    restore = run_step(runbook_step(runbook, "UPDATE storage_files"), ctx)
    assert_ok(restore)
    assert restore.output == "UPDATE 1"


# ---------------------------------------------------------------------------- AWS


@pytest.fixture
def target_groups(fresh_stack: Stack) -> Iterator[dict[str, str]]:
    """Two target groups of our own (the stack's groups carry its traffic)."""
    ep = fresh_stack.endpoints
    kwargs = {
        "endpoint_url": ep.aws_endpoint,
        "region_name": ep.aws_region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    ec2 = boto3.client("ec2", **kwargs)  # type: ignore[call-overload]
    elb = boto3.client("elbv2", **kwargs)  # type: ignore[call-overload]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    # AWS takes an IP target from a subnet of the group's VPC (else it wants its zone)
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")
    arns = {}
    for name in ("exec-primary", "exec-standby"):
        group = elb.create_target_group(
            Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
        )
        arns[name] = group["TargetGroups"][0]["TargetGroupArn"]
    yield arns
    for arn in arns.values():
        elb.delete_target_group(TargetGroupArn=arn)


def _targets(stack: Stack, arn: str) -> list[str]:
    ep = stack.endpoints
    elb = boto3.client(
        "elbv2",
        endpoint_url=ep.aws_endpoint,
        region_name=ep.aws_region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return [d["Target"]["Id"] for d in health]


def test_the_runbooks_elb_lines_fail_with_the_elbv2_fix(runbook: Runbook, ctx: ExecContext) -> None:
    result = run_step(runbook_step(runbook, "aws elb deregister-targets"), ctx)
    assert result.status is StepStatus.FAILED
    assert "has no operation 'deregister-targets'" in result.error
    assert (
        "aws elbv2 deregister-targets --target-group-arn PRIMARY --targets Id=<id>"
        in result.suggestion
    )


def test_elbv2_register_and_deregister_on_the_control_plane(
    fresh_stack: Stack, tmp_path: Path, target_groups: dict[str, str]
) -> None:
    ctx = context(
        fresh_stack,
        tmp_path,
        values={"PRIMARY": target_groups["exec-primary"], "STANDBY": target_groups["exec-standby"]},
    )
    register = run_step(
        adhoc(
            "aws elbv2 register-targets --target-group-arn STANDBY --targets Id=10.9.0.5,Port=8080",
            StepKind.AWS,
        ),
        ctx,
    )
    assert_ok(register)
    assert register.bound_placeholders == ("STANDBY",)
    assert "--endpoint-url http://127.0.0.1:" in register.executed
    assert _targets(fresh_stack, target_groups["exec-standby"]) == ["10.9.0.5"]
    deregister = run_step(
        adhoc(
            "aws elbv2 deregister-targets --target-group-arn STANDBY "
            "--targets Id=10.9.0.5,Port=8080",
            StepKind.AWS,
        ),
        ctx,
    )
    assert_ok(deregister)
    assert _targets(fresh_stack, target_groups["exec-standby"]) == []
    described = run_step(
        adhoc("aws elbv2 describe-target-groups --names exec-primary", StepKind.AWS), ctx
    )
    assert_ok(described)
    assert isinstance(described.data, dict)
    groups = described.data["TargetGroups"]
    assert isinstance(groups, list)
    assert len(groups) == 1


def test_promote_replica_and_resize_on_the_runbooks_own_lines(
    runbook: Runbook, fresh_stack: Stack, tmp_path: Path
) -> None:
    ep = fresh_stack.endpoints
    kwargs = {
        "endpoint_url": ep.aws_endpoint,
        "region_name": ep.aws_region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    rds = boto3.client("rds", **kwargs)  # type: ignore[call-overload]
    ec2 = boto3.client("ec2", **kwargs)  # type: ignore[call-overload]
    rds.create_db_instance(
        DBInstanceIdentifier="exec-files-db",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="files",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    # the runbook's example name, which Bindings.from_stack binds to itself
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="replica-01", SourceDBInstanceIdentifier="exec-files-db"
    )
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.large")[
        "Instances"
    ][0]["InstanceId"]
    try:
        ctx = context(fresh_stack, tmp_path, timeout_s=20.0, values={"i-xxx": instance})
        promote = run_step(runbook_step(runbook, "aws rds promote-read-replica"), ctx)
        assert_ok(promote)
        assert isinstance(promote.data, dict)
        db = promote.data["DBInstance"]
        assert isinstance(db, dict)
        assert db["DBInstanceIdentifier"] == "replica-01"
        resize_step = runbook_step(runbook, "aws ec2 modify-instance-attribute")
        running = run_step(resize_step, ctx)  # as on AWS: only a stopped instance is resized
        assert running.status is StepStatus.FAILED
        assert "IncorrectInstanceState" in running.error
        ec2.stop_instances(InstanceIds=[instance])
        resize = run_step(resize_step, ctx)
        assert_ok(resize)
        assert resize.bound_placeholders == ("i-xxx",)
        described = ec2.describe_instances(InstanceIds=[instance])
        assert described["Reservations"][0]["Instances"][0]["InstanceType"] == "t3.xlarge"
    finally:
        ec2.terminate_instances(InstanceIds=[instance])
        for name in ("replica-01", "exec-files-db"):
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)


def test_an_aws_error_from_the_control_plane_is_a_failed_step(ctx: ExecContext) -> None:
    result = run_step(
        adhoc("aws elbv2 describe-target-groups --names no-such-group", StepKind.AWS), ctx
    )
    assert result.status is StepStatus.FAILED
    assert result.exit_code not in (0, None)
    assert "TargetGroupNotFound" in result.error


# ---------------------------------------------------------------------------- shell


def test_pg_isready_accepting_then_no_response_after_a_kill(
    runbook: Runbook, fresh_stack: Stack, tmp_path: Path
) -> None:
    step = runbook_step(runbook, "pg_isready")
    ctx = context(fresh_stack, tmp_path, timeout_s=5.0)
    up = run_step(step, ctx)
    assert_ok(up)
    assert up.exit_code == 0
    assert "accepting connections" in up.output
    port = fresh_stack.endpoints.database_port
    assert f"port 5432 (as written) -> {port} (the stack's PostgreSQL)" in up.notes
    postgres = fresh_stack.component("postgres")
    postgres.kill()
    try:
        down = run_step(step, ctx)
        assert down.status is StepStatus.FAILED
        assert down.exit_code == 2  # no response
        assert "no response" in down.output
        sql = run_step(runbook_step(runbook, "SELECT 1;"), ctx)
        assert sql.status is StepStatus.FAILED
        assert sql.exit_code == 2  # psql: no connection
    finally:
        postgres.start()
        postgres.wait_ready()
    assert run_step(step, ctx).exit_code == 0


def test_df_on_the_postgres_data_dir(runbook: Runbook, ctx: ExecContext) -> None:
    step = runbook_step(runbook, "df -h /var/lib/postgresql")
    result = run_step(step, ctx)
    assert_ok(result)
    assert result.output.splitlines()[0].startswith("Filesystem")
    data_dir = ctx.stack.endpoints.data_dirs["postgres"]
    assert f"/var/lib/postgresql -> {data_dir}" in result.notes
    assert "ran against the stack (the runbook runs it on db-server)" in result.notes


def test_redis_keyspace_stats(runbook: Runbook, ctx: ExecContext) -> None:
    result = run_step(runbook_step(runbook, "redis-cli INFO stats"), ctx)
    assert_ok(result)
    lines = result.output.split()
    assert any(line.startswith("keyspace_hits:") for line in lines)
    assert any(line.startswith("keyspace_misses:") for line in lines)


def test_tail_of_the_error_log_and_grep_of_the_production_log(
    runbook: Runbook, fresh_stack: Stack, tmp_path: Path
) -> None:
    log_dir = fresh_stack.endpoints.log_dir
    ctx = context(fresh_stack, tmp_path)
    token = create_user(fresh_stack, "logs@example.com")
    httpx.post(
        f"{fresh_stack.endpoints.api_url}/api/storage/files/upload",
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("log.txt", b"x", "text/plain")},
    )
    tail = run_step(runbook_step(runbook, "tail -100 /var/log/api/error.log"), ctx)
    assert tail.exit_code == 0, tail.summary()
    assert f"/var/log/api/error.log -> {log_dir / 'error.log'}" in tail.notes
    grep = run_step(runbook_step(runbook, 'grep "upload"'), ctx)
    assert_ok(grep)
    assert "upload" in grep.output


def test_ps_grep_finds_the_api_process(runbook: Runbook, ctx: ExecContext) -> None:
    result = run_step(runbook_step(runbook, "ps aux"), ctx)
    assert_ok(result)
    pattern = ctx.stack.endpoints.api_process or "files_api"
    assert any(
        "files_api" in line and pattern in line and "grep" not in line
        for line in result.output.splitlines()
    )


def test_readings_top_free_and_the_interactive_tools(runbook: Runbook, ctx: ExecContext) -> None:
    top = run_step(runbook_step(runbook, "top", section="SEV-2: Performance Degradation"), ctx)
    assert_ok(top)
    assert top.output.startswith("top - ")
    assert_ok(run_step(runbook_step(runbook, "free -m"), ctx))
    htop = run_step(runbook_step(runbook, "htop"), ctx)
    assert htop.status is StepStatus.MANUAL
    assert "top -b -n 1" in htop.reason


def test_watch_runs_its_curl_until_healthy(runbook: Runbook, ctx: ExecContext) -> None:
    result = run_step(runbook_step(runbook, "watch -n 5"), ctx)
    assert_ok(result)
    assert result.http_status == 200
    assert "ran the command 1 time(s); it answered healthy" in result.notes[1]


def test_systemctl_restart_of_the_api(runbook: Runbook, fresh_stack: Stack, tmp_path: Path) -> None:
    api = fresh_stack.component("api")
    before = api.pid
    ctx = context(fresh_stack, tmp_path, timeout_s=30.0)
    result = run_step(runbook_step(runbook, "sudo systemctl restart rolerabbit-api"), ctx)
    assert_ok(result)
    assert api.pid != before
    assert api.is_ready()
    assert "service rolerabbit-api -> stack component 'api'" in result.notes
    health = run_step(runbook_step(runbook, "curl http://localhost:5000/health"), ctx)
    assert health.http_status == 200
