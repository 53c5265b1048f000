"""run_step without servers: manual steps, unbound placeholders, refusals, bad aws lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from files_profile import KIT
from runbook_checks.clock import FakeClock
from runbook_checks.runbook.model import Phase, Step, StepKind
from runbook_checks.stack.base import Capability, Component, Endpoints
from runbook_checks.steps.base import (
    ExecContext,
    Refused,
    StepResult,
    StepStatus,
    excerpt,
)
from runbook_checks.steps.binding import Bindings
from runbook_checks.steps.http import resolve_url
from runbook_checks.steps.run import run_step
from tests.fake_stack import NoStackExtras
from tests.profiles import FILES


class OfflineStack(NoStackExtras):
    """A stack that is never reached: its endpoints are closed ports (on `host`: a name
    that never resolves for a remote one), it has no components."""

    backend = "offline"
    capabilities: frozenset[Capability] = frozenset()
    kit = KIT

    def __init__(self, tmp: Path, host: str = "127.0.0.1") -> None:
        self.endpoints = Endpoints(
            api_url=f"http://{host}:9",
            database_url=f"postgresql://u:pw@{host}:9/db",
            app_database_url="",
            s3_endpoint=f"http://{host}:9",
            s3_bucket="b",
            redis_url=f"redis://{host}:9/0",
            aws_endpoint=f"http://{host}:9",
            aws_region="us-east-1",
            admin_token="admin-token-123",
            log_dir=tmp,
        )

    def component(self, name: str) -> Component:
        raise AssertionError(f"component {name} must not be touched")

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def reset_data(self) -> None: ...
    def restart_api(self, **env: str) -> None: ...
    def versions(self) -> dict[str, str]:
        return {}


@pytest.fixture
def ctx(tmp_path: Path) -> ExecContext:
    stack = OfflineStack(tmp_path)
    bindings = Bindings.from_stack(stack, tmp_path / "work", FILES)
    return ExecContext(stack, bindings, clock=FakeClock())


def step(text: str, kind: StepKind, reason: str = "") -> Step:
    return Step(
        text=text,
        raw=text,
        line=42,
        language="bash",
        kind=kind,
        phase=Phase.INVESTIGATION,
        manual_reason=reason,
    )


def test_manual_and_note_steps_carry_their_reason(ctx: ExecContext) -> None:
    result = run_step(
        step(
            "kubectl scale deployment api --replicas=5",
            StepKind.MANUAL,
            "kubectl: no Kubernetes cluster in the stack",
        ),
        ctx,
    )
    assert result.status is StepStatus.MANUAL
    assert result.reason == "kubectl: no Kubernetes cluster in the stack"
    note = run_step(step("1. Post status update", StepKind.NOTE, "instruction for a person"), ctx)
    assert (note.status, note.reason) == (StepStatus.MANUAL, "instruction for a person")
    assert note.started_at == FakeClock().wall()


@pytest.mark.parametrize(
    ("text", "kind", "unbound"),
    [
        (
            "curl -X POST https://api.rolerabbit.com/api/storage/files/upload "
            '-H "Authorization: Bearer TOKEN" -F "file=@test.txt"',
            StepKind.HTTP,
            ("TOKEN",),
        ),
        ("SELECT pg_terminate_backend(PID);", StepKind.SQL, ("PID",)),
        (
            "aws elbv2 deregister-targets --target-group-arn PRIMARY --targets Id=i-1",
            StepKind.AWS,
            ("PRIMARY",),
        ),
        ("kill -9 PID", StepKind.SHELL, ("PID",)),
    ],
)
def test_unbound_placeholders_are_reported_and_nothing_runs(
    ctx: ExecContext, text: str, kind: StepKind, unbound: tuple[str, ...]
) -> None:
    result = run_step(step(text, kind), ctx)
    assert result.status is StepStatus.ERROR
    assert result.unbound == unbound
    assert "not run (a value is never guessed)" in result.error
    assert result.exit_code is None


def test_a_host_outside_the_stack_is_refused_before_any_traffic(ctx: ExecContext) -> None:
    result = run_step(
        step("curl https://status.supabase.com/api/v2/status.json", StepKind.HTTP), ctx
    )
    assert result.status is StepStatus.ERROR
    assert result.error.startswith(
        "refused: curl host status.supabase.com is not one the profile allows "
        "(allowed: 127.0.0.1); to reach it, add it to [hosts] in "
    )
    assert result.http_status is None
    assert result.exit_code is None


def test_host_mapping(ctx: ExecContext) -> None:
    bindings = ctx.bindings.merged(hosts={"status.supabase.com": "http://127.0.0.1:7000/fake"})
    assert resolve_url("https://api.rolerabbit.com/health?x=1", bindings) == (
        "http://127.0.0.1:9/health?x=1",
        "https://api.rolerabbit.com -> http://127.0.0.1:9",
    )
    assert resolve_url("http://localhost:5000/health", bindings)[0] == "http://127.0.0.1:9/health"
    assert resolve_url("https://status.supabase.com/api/v2/status.json", bindings)[0] == (
        "http://127.0.0.1:7000/fake/api/v2/status.json"
    )
    assert resolve_url("http://127.0.0.1:9/x", bindings, ["http://127.0.0.1:9"]) == (
        "http://127.0.0.1:9/x",
        "",
    )
    with pytest.raises(Refused, match="localhost:5001 is not part of the stack"):
        resolve_url("http://localhost:5001/", bindings)
    remote = bindings.merged(hosts={"api.rolerabbit.com": "https://api.rolerabbit.com"})
    with pytest.raises(Refused, match=r"host api\.rolerabbit\.com is not one the profile allows"):
        resolve_url("https://api.rolerabbit.com/health", remote)


def test_a_wrong_aws_line_fails_with_the_fix_and_is_not_run(ctx: ExecContext) -> None:
    result = run_step(
        step("aws elb deregister-targets --target-group-arn PRIMARY", StepKind.AWS), ctx
    )
    assert result.status is StepStatus.FAILED
    assert "has no operation 'deregister-targets'" in result.error
    assert "aws elbv2 deregister-targets" in result.suggestion
    assert result.exit_code is None


def test_from_stack_defaults(ctx: ExecContext, tmp_path: Path) -> None:
    bindings = ctx.bindings
    assert bindings.env["DATABASE_URL"] == "postgresql://u:pw@127.0.0.1:9/db"
    assert bindings.hosts["api.rolerabbit.com"] == "http://127.0.0.1:9"
    assert "status.supabase.com" not in bindings.hosts  # the scenario provides it
    assert bindings.paths["/var/log/api"] == tmp_path
    assert bindings.services["rolerabbit-api"] == "api"
    for name in ("test.txt", "test.pdf", "curl-format.txt"):
        assert bindings.files[name].is_file()
    assert bindings.files["test.pdf"].read_bytes().startswith(b"%PDF-")
    assert {"admin-token-123", "pw"} & bindings.secret_values() == {"admin-token-123"}


def test_excerpt_keeps_head_and_tail() -> None:
    text = "".join(f"{i:05d}\n" for i in range(5000))
    short = excerpt(text, limit=600)
    assert short.startswith("00000\n")
    assert short.endswith("04999\n")
    assert "characters omitted" in short
    assert excerpt("small") == "small"


def test_summary_names_status_exit_and_error() -> None:
    result = StepResult(
        step=step("pg_isready", StepKind.SHELL),
        status=StepStatus.FAILED,
        executed="pg_isready -h 127.0.0.1 -p 1",
        exit_code=2,
        error="no response",
    )
    assert result.summary() == (
        "line 42: failed (exit 2): pg_isready -h 127.0.0.1 -p 1\n  error: no response"
    )


def test_an_auditing_environment_hears_of_each_command_before_it_runs(tmp_path: Path) -> None:
    """The external backend audits every runbook command before it runs (`on_step`);
    manual steps are not actions, so they are not audited."""
    heard: list[tuple[int, str]] = []

    class AuditingStack(OfflineStack):
        def on_step(self, line: int, text: str) -> None:
            heard.append((line, text))

    stack = AuditingStack(tmp_path)
    context = ExecContext(
        stack, Bindings.from_stack(stack, tmp_path / "work", FILES), clock=FakeClock()
    )
    run_step(step("ssh production-api-01", StepKind.MANUAL, "logs into a host"), context)
    sql = step("SELECT 1;", StepKind.SQL)
    run_step(sql, context)  # fails to connect (the offline stack): audited all the same
    assert heard == [(sql.line, "SELECT 1;")]
