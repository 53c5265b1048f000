"""Planning shell steps onto the stack (nothing runs), and the argv pipeline runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runbook_checks.runbook.model import Phase, Step, StepKind
from runbook_checks.steps.base import StepStatus
from runbook_checks.steps.binding import Bindings
from runbook_checks.steps.procs import run_pipeline, tool_env
from runbook_checks.steps.shell import (
    Delegate,
    NotRun,
    Pipeline,
    ServiceAction,
    matching_processes,
    plan_shell,
)

LOGS = Path("/tmp/stack/api/logs")
BINDINGS = Bindings(
    env={"DB_HOST": "127.0.0.1", "DB_PORT": "54321", "REDIS_URL": "redis://127.0.0.1:6390/0"},
    paths={"/var/log/api": LOGS, "/var/lib/postgresql": Path("/tmp/stack/pg")},
    services={"rolerabbit-api": "api"},
    processes={"node": "api@stack-1"},
)


def shell(text: str, *pipeline: str, host: str = "") -> Step:
    return Step(
        text=text,
        raw=text,
        line=1,
        language="bash",
        kind=StepKind.SHELL,
        phase=Phase.INVESTIGATION,
        pipeline=pipeline,
        host=host,
    )


def plan(text: str, *pipeline: str) -> object:
    return plan_shell(shell(text, *pipeline), BINDINGS).plan


def test_ps_grep_maps_the_process_name() -> None:
    result = plan("ps aux", "grep node")
    assert isinstance(result, Pipeline)
    assert result.stages == (("ps", "aux"), ("grep", "api@stack-1"))
    assert result.process_pattern == "api@stack-1"


def test_an_unsplit_pipe_is_split_and_paths_are_mapped() -> None:
    result = plan('grep "upload" /var/log/api/production.log | tail -100')
    assert isinstance(result, Pipeline)
    assert result.stages == (("grep", "upload", str(LOGS / "production.log")), ("tail", "-100"))
    assert f"/var/log/api/production.log -> {LOGS / 'production.log'}" in result.notes


def test_tail_of_the_error_log_and_follow_reduced() -> None:
    assert plan("tail -100 /var/log/api/error.log") == Pipeline(
        (("tail", "-100", str(LOGS / "error.log")),),
        (f"/var/log/api/error.log -> {LOGS / 'error.log'}",),
    )
    follow = plan("tail -f -n 5 /var/log/api/error.log")
    assert isinstance(follow, Pipeline)
    assert follow.stages[0] == ("tail", "-n", "5", str(LOGS / "error.log"))


def test_a_path_outside_the_stack_is_refused() -> None:
    result = plan("cat /etc/shadow")
    assert isinstance(result, NotRun)
    assert result.status is StepStatus.ERROR
    assert result.reason == "refused: path /etc/shadow is not part of the stack"


def test_df_on_the_data_dir_and_plain_readings() -> None:
    assert plan("df -h /var/lib/postgresql") == Pipeline(
        (("df", "-h", "/tmp/stack/pg"),), ("/var/lib/postgresql -> /tmp/stack/pg",)
    )
    assert plan("df -h") == Pipeline((("df", "-h"),))
    assert plan("free -m") == Pipeline((("free", "-m"),))


def test_pg_isready_gets_the_stack_port_and_a_bounded_timeout() -> None:
    result = plan("pg_isready -h 127.0.0.1 -p 5432")
    assert isinstance(result, Pipeline)
    assert result.stages == (("pg_isready", "-h", "127.0.0.1", "-p", "54321", "-t", "3"),)
    assert "port 5432 (as written) -> 54321 (the stack's PostgreSQL)" in result.notes
    short = plan_shell(shell("pg_isready -t 0"), BINDINGS, timeout_s=2).plan
    assert isinstance(short, Pipeline)
    assert short.stages[0][-2:] == ("-t", "2")


def test_pg_isready_with_an_env_host() -> None:
    step = shell("pg_isready -h $DB_HOST -p 5432")
    planned = plan_shell(step, BINDINGS)
    assert planned.bound == ("$DB_HOST",)
    assert isinstance(planned.plan, Pipeline)
    assert planned.plan.stages[0][:5] == ("pg_isready", "-h", "127.0.0.1", "-p", "54321")


def test_redis_cli_talks_to_the_stack_redis() -> None:
    result = plan("redis-cli -h cache.internal -p 6379 INFO stats", "grep keyspace")
    assert isinstance(result, Pipeline)
    assert result.stages == (
        ("redis-cli", "-h", "127.0.0.1", "-p", "6390", "-n", "0", "INFO", "stats"),
        ("grep", "keyspace"),
    )
    assert isinstance(plan("redis-cli MONITOR"), NotRun)
    # capitalised redis commands are commands, not placeholders
    planned = plan_shell(shell("redis-cli OBJECT ENCODING somekey"), BINDINGS)
    assert planned.unbound == ()
    assert isinstance(planned.plan, Pipeline)
    assert planned.plan.stages[0][-3:] == ("OBJECT", "ENCODING", "somekey")


def test_top_runs_once_in_batch_mode_htop_and_iotop_are_manual() -> None:
    assert plan("top") == Pipeline(
        (("top", "-b", "-n", "1"),), ("top is interactive: ran once in batch mode (top -b -n 1)",)
    )
    htop = plan("htop")
    assert isinstance(htop, NotRun)
    assert htop.status is StepStatus.MANUAL
    assert "top -b -n 1" in htop.reason
    if shutil.which("iotop") is None:
        iotop = plan("iotop")
        assert isinstance(iotop, NotRun)
        assert "not installed" in iotop.reason


@pytest.mark.parametrize(
    "line",
    [
        "sudo systemctl restart rolerabbit-api",
        "systemctl restart rolerabbit-api.service",
        "service rolerabbit-api restart",
        "systemctl reload rolerabbit-api",
    ],
)
def test_service_restarts_map_to_the_component(line: str) -> None:
    result = plan(line)
    assert isinstance(result, ServiceAction)
    assert (result.component, result.verb) == ("api", "restart")


def test_sudo_is_noted_and_unknown_services_refused() -> None:
    result = plan("sudo systemctl restart rolerabbit-api")
    assert isinstance(result, ServiceAction)
    assert result.notes[0].startswith("sudo dropped")
    refused = plan("systemctl restart nginx")
    assert isinstance(refused, NotRun)
    assert refused.reason == "refused: service 'nginx' is not part of the stack"
    assert isinstance(plan("systemctl daemon-reload"), NotRun)


def test_journalctl_reads_the_component_log() -> None:
    assert plan("journalctl -u rolerabbit-api -n 20") == ServiceAction(
        "rolerabbit-api",
        "api",
        "logs",
        ("journal of rolerabbit-api -> the last 20 lines of the api component's log",),
        20,
    )


def test_watch_delegates_its_command_to_its_executor_at_its_interval() -> None:
    result = plan("watch -n 5 'curl https://api.rolerabbit.com/health'")
    assert isinstance(result, Delegate)
    assert result.step.kind is StepKind.HTTP
    assert result.step.text == "curl https://api.rolerabbit.com/health"
    assert result.interval_s == 5.0
    assert result.notes[0].startswith(
        "watch -n 5: curl https://api.rolerabbit.com/health run every 5s until it answers"
    )
    piped = plan("watch 'redis-cli INFO stats | grep keyspace'")
    assert isinstance(piped, Delegate)
    assert piped.step.pipeline == ("grep keyspace",)


def test_shell_syntax_unknown_tools_and_unbound_placeholders() -> None:
    chained = plan("systemctl restart rolerabbit-api && curl http://h/")
    assert isinstance(chained, NotRun)
    assert "`&&`" in chained.reason
    assert isinstance(plan("tail -1 /var/log/api/error.log > /tmp/x"), NotRun)
    unknown = plan("frobnicate --now")
    assert isinstance(unknown, NotRun)
    assert unknown.status is StepStatus.MANUAL
    kubectl = plan("kubectl rollout restart deployment api")
    assert isinstance(kubectl, NotRun)
    assert "Kubernetes" in kubectl.reason
    planned = plan_shell(shell("kill -9 PID"), BINDINGS)
    assert planned.unbound == ("PID",)


def test_ssh_is_skipped() -> None:
    result = plan("ssh production-api-01")
    assert isinstance(result, NotRun)
    assert result.status is StepStatus.SKIPPED


def test_grep_matching_itself_is_told_apart() -> None:
    output = (
        "root 1 0.0 python -m files_api serve --instance api@stack-1\n"
        "root 2 0.0 /usr/bin/grep api@stack-1\n"
    )
    real, own = matching_processes(output, "api@stack-1")
    assert len(real) == 1
    assert len(own) == 1
    assert matching_processes("root 2 0.0 grep api@stack-1\n", "api@stack-1") == (
        [],
        ["root 2 0.0 grep api@stack-1"],
    )


# -- the runner (real, tiny subprocesses) ---------------------------------------------------


def test_pipeline_chains_stdout_to_stdin(tmp_path: Path) -> None:
    outcome = run_pipeline(
        [["printf", "a\\nkeyspace_hits:1\\nb\\n"], ["grep", "keyspace"]],
        timeout_s=5,
        env=tool_env(tmp_path),
        cwd=tmp_path,
    )
    assert outcome.text == "keyspace_hits:1\n"
    assert outcome.exit_codes == (0, 0)
    assert not outcome.timed_out


def test_pipeline_status_is_the_last_stage(tmp_path: Path) -> None:
    outcome = run_pipeline(
        [["grep", "x", "/nonexistent"], ["cat"]], timeout_s=5, env=tool_env(tmp_path), cwd=tmp_path
    )
    assert outcome.exit_codes == (2, 0)
    assert outcome.exit_code == 0
    assert "No such file" in outcome.stderr


def test_pipeline_is_killed_at_the_deadline(tmp_path: Path) -> None:
    outcome = run_pipeline([["sleep", "30"]], timeout_s=0.2, env=tool_env(tmp_path), cwd=tmp_path)
    assert outcome.timed_out
    assert outcome.exit_code is None


def test_stdin_reaches_the_first_stage(tmp_path: Path) -> None:
    outcome = run_pipeline(
        [["cat"], ["wc", "-c"]], timeout_s=5, env=tool_env(tmp_path), cwd=tmp_path, stdin=b"12345"
    )
    assert outcome.text.strip() == "5"
