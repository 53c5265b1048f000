"""SEV-1: API Server Down — the runbook's options A (restart), B (failover), C (rollback)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runbook_checks.drill.detect import any_of, log_matches, process_missing
from runbook_checks.drill.fixture import DrillFixture
from runbook_checks.drill.runner import DrillContext
from runbook_checks.drill.spec import Action, Scenario
from runbook_checks.faults.deploy import BadRelease
from runbook_checks.faults.process import ProcessKill
from runbook_checks.runbook.model import StepKind
from runbook_checks.stack.local import LocalStack
from runbook_checks.stack.servers import LocalApi

SECTION = "SEV-1: API Server Down"


def api_unreachable(ctx: DrillContext) -> str | None:
    status = ctx.health_status(timeout_s=1.0)
    return None if status == 0 or status >= 500 else f"/health still answers {status}"


# the section's own investigation: `ps aux | grep node` lists no API process, or the
# `tail` of its error log shows errors written since the fault went in
API_DOWN_SHOWN = any_of(
    process_missing(r"files_api"),
    log_matches(r"^tail\b", r"ECONNREFUSED|error"),
)


API_KILLED = Scenario(
    section=SECTION,
    option="A",
    title="API process killed (kill -9); the runbook restarts the service",
    fault=ProcessKill("api"),
    confirm=api_unreachable,
    detect=API_DOWN_SHOWN,
)


@pytest.mark.runbook(SECTION, option="A")
def test_option_a_restart_recovers_a_killed_api(drill: DrillFixture) -> None:
    drill.verify(API_KILLED)


# -- Option B: failover to the standby behind the load balancer ------------------------


def _start_standby(ctx: DrillContext) -> None:
    """A standby instance; the runbook's PRIMARY / STANDBY name the target groups, and
    PRIMARY_TARGET / STANDBY_TARGET the instances in them (as `describe-target-health`
    would list them for the on-call engineer)."""
    stack = ctx.stack
    assert isinstance(stack, LocalStack)
    standby = stack.add_api_instance("api-standby")
    ctx.values["PRIMARY"] = stack.target_groups["files-primary"]
    ctx.values["STANDBY"] = stack.target_groups["files-standby"]
    ctx.values["PRIMARY_TARGET"] = f"Id=127.0.0.1,Port={stack.api.port}"
    ctx.values["STANDBY_TARGET"] = f"Id=127.0.0.1,Port={standby.port}"


def _move_target(register: bool) -> Callable[[DrillContext], str]:
    """The corrected form of the runbook's target-group command, run with the AWS CLI."""

    def move_target(ctx: DrillContext) -> str:
        stack = ctx.stack
        assert isinstance(stack, LocalStack)
        instance = stack.components["api-standby" if register else "api"]
        assert isinstance(instance, LocalApi)
        verb = "register-targets" if register else "deregister-targets"
        group = ctx.values["STANDBY" if register else "PRIMARY"]
        command = (
            f"aws elbv2 {verb} --target-group-arn {group} "
            f"--targets Id=127.0.0.1,Port={instance.port}"
        )
        result = ctx.run_command(command, StepKind.AWS)
        if not result.ok:
            raise RuntimeError(f"the corrected command failed too: {result.error}")
        return f"ran the corrected command: {command}"

    return move_target


API_FAILOVER = Scenario(
    section=SECTION,
    option="B",
    title="primary API instance killed; the runbook moves the load balancer to the standby",
    arrange=_start_standby,
    fault=ProcessKill("api"),
    confirm=api_unreachable,
    detect=API_DOWN_SHOWN,
    actions=(
        Action(
            r"^aws elbv?2? deregister-targets",
            _move_target(register=False),
            why="the runbook's command cannot run as written",
        ),
        Action(
            r"^aws elbv?2? register-targets",
            _move_target(register=True),
            why="the runbook's command cannot run as written",
        ),
    ),
)


@pytest.mark.runbook(SECTION, option="B")
def test_option_b_failover_to_the_standby(drill: DrillFixture) -> None:
    drill.verify(API_FAILOVER)


# -- Option C: roll back a bad deployment ----------------------------------------------

# `git checkout main@{1}` and `npm run deploy:rollback` are carried out from their text
# (runbook_checks.drill.platform): the revision must exist in the deployment history and
# the script in the pipeline, or the step fails as it would for the on-call engineer.
BAD_DEPLOY = Scenario(
    section=SECTION,
    option="C",
    title="a release with a broken setting crash-loops at start; the runbook rolls it back",
    fault=BadRelease(release="2024.01.15-bad", breakage="crash"),
    confirm=api_unreachable,
    detect=API_DOWN_SHOWN,
)


@pytest.mark.runbook(SECTION, option="C")
def test_option_c_rollback_of_a_bad_release(drill: DrillFixture) -> None:
    drill.verify(BAD_DEPLOY)
