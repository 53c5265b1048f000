"""Which hosts the executors may reach: loopback, and what the runbook's profile allows
(its staging environment's addresses, `[hosts]` values that are addresses). Nothing here
connects anywhere: the staging hosts are `.invalid` names (they never resolve), and every
allowed case is checked where the executor plans, before it sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.clock import FakeClock
from runbook_checks.errors import UsageError
from runbook_checks.profile import Profile, load_profile
from runbook_checks.runbook.model import Phase, Step, StepKind
from runbook_checks.steps.base import ExecContext, Refused, StepStatus
from runbook_checks.steps.binding import Bindings
from runbook_checks.steps.http import resolve_url
from runbook_checks.steps.reach import Reach
from runbook_checks.steps.run import run_step
from runbook_checks.steps.shell import NotRun, Pipeline, plan_shell
from runbook_checks.steps.sql import _database_url
from tests.unit.steps.test_steps_base import OfflineStack

STAGING = "files.staging.invalid"  # the environment's one host
OTHER = "other.staging.invalid"  # a host nobody allowed


def write_profile(folder: Path, body: str, environment: str = "") -> Profile:
    if environment:
        (folder / "staging.environment.toml").write_text(environment)
    path = folder / "files.runbook-checks.toml"
    path.write_text(body)
    return load_profile(path)


ENVIRONMENT = f"""
name = "staging-eu"
api_url = "http://{STAGING}:8000"
database_url = "postgresql://ops:pw@{STAGING}:5432/files"
admin_token = "admin-token-123"
redis_url = "redis://{STAGING}:6379/0"
aws_endpoint = "http://{STAGING}:5000"
"""
PROFILE = """
[profile]
name = "files"
environment = "staging.environment.toml"

[hosts]
"api.rolerabbit.com" = "api"
"db.rolerabbit.com" = "10.213.0.9:5432"
"""


def step(text: str, kind: StepKind) -> Step:
    return Step(text=text, raw=text, line=7, language="bash", kind=kind, phase=Phase.INVESTIGATION)


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    return write_profile(tmp_path, PROFILE, ENVIRONMENT)


def test_the_profile_allows_its_environment_and_its_address_hosts(profile: Profile) -> None:
    reach = Reach.of(profile)
    assert dict(reach.hosts) == {
        STAGING: "profile.environment",
        "10.213.0.9": "hosts.db.rolerabbit.com",
    }
    assert reach.refusal(STAGING, "curl") is None
    assert reach.refusal("10.213.0.9", "database") is None
    assert reach.refusal("127.0.0.1", "curl") is None  # the local stack, as before
    assert reach.refusal("localhost", "curl") is None


def test_every_other_host_is_refused_naming_it_and_the_field_to_change(
    profile: Profile,
) -> None:
    refused = Reach.of(profile).refusal(OTHER, "database")
    assert refused is not None
    assert refused.startswith(f"refused: database host {OTHER} is not one the profile allows")
    assert f"allowed: 127.0.0.1, 10.213.0.9, {STAGING}" in refused
    assert f"add it to [hosts] in {profile.source}" in refused
    assert "[profile] environment" in refused
    # no profile at all: loopback only
    assert Reach().refusal(STAGING, "curl") is not None


def test_a_production_looking_host_is_refused_when_the_profile_is_read(tmp_path: Path) -> None:
    prod = write_profile(
        tmp_path, '[hosts]\n"api.rolerabbit.com" = "https://files-prod.corp.invalid"\n'
    )
    with pytest.raises(UsageError, match=r"hosts\.api\.rolerabbit\.com: the hosts\.api"):
        Reach.of(prod)
    public = write_profile(tmp_path, '[hosts]\n"api.rolerabbit.com" = "8.8.8.8:443"\n')
    with pytest.raises(UsageError, match=r"8\.8\.8\.8 is a public address"):
        Reach.of(public)


def test_an_environment_that_overrides_by_name_may_look_like_production(tmp_path: Path) -> None:
    body = PROFILE.replace("10.213.0.9:5432", "files-prod.invalid:5432")
    refused_one = write_profile(tmp_path, body, ENVIRONMENT)
    with pytest.raises(UsageError, match="says 'prod'"):
        Reach.of(refused_one)
    allowed = ENVIRONMENT + '\n[safety]\nproduction_override = "staging-eu"\n'
    overridden = write_profile(tmp_path, body, allowed)
    assert Reach.of(overridden).refusal("files-prod.invalid", "database") is None


def test_what_the_profile_names_must_be_there(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[hosts]\n"api.rolerabbit.com" = "apii"\n')
    with pytest.raises(UsageError, match="or an address of the environment"):
        load_profile(bad)
    missing = tmp_path / "missing.toml"
    missing.write_text('[profile]\nenvironment = "nowhere.toml"\n')
    with pytest.raises(UsageError, match=r"profile\.environment: .*nowhere\.toml is not a file"):
        load_profile(missing)


def test_curl_reaches_allowed_hosts_and_refuses_others(tmp_path: Path, profile: Profile) -> None:
    stack = OfflineStack(tmp_path, STAGING)
    bindings = Bindings.from_stack(stack, tmp_path / "work", profile)
    # a runbook host mapped to the environment's API
    assert resolve_url("https://api.rolerabbit.com/health", bindings)[0] == (
        f"http://{STAGING}:9/health"
    )
    # a runbook host mapped to an address
    assert resolve_url("http://db.rolerabbit.com/x", bindings)[0] == "http://10.213.0.9:5432/x"
    # the environment's address written directly
    assert resolve_url(f"http://{STAGING}:8000/health", bindings)[0] == (
        f"http://{STAGING}:8000/health"
    )
    with pytest.raises(Refused, match=f"curl host {OTHER} is not one the profile allows"):
        resolve_url(f"http://{OTHER}:8000/health", bindings)
    mapped_away = bindings.merged(hosts={"api.rolerabbit.com": f"http://{OTHER}:1"})
    with pytest.raises(Refused, match=f"host {OTHER} is not one the profile allows"):
        resolve_url("https://api.rolerabbit.com/health", mapped_away)


def test_psql_reaches_the_allowed_database_and_refuses_others(
    tmp_path: Path, profile: Profile
) -> None:
    stack = OfflineStack(tmp_path, STAGING)
    ctx = ExecContext(stack, Bindings.from_stack(stack, tmp_path / "w", profile), clock=FakeClock())
    url, _, refused = _database_url(None, ctx)
    assert (url, refused) == (stack.endpoints.database_url, "")
    result = run_step(
        step(f'psql "postgresql://ops@{OTHER}:5432/files" -c "SELECT 1"', StepKind.SQL), ctx
    )
    assert result.status is StepStatus.ERROR
    assert f"database host {OTHER} is not one the profile allows" in result.error
    # the stack's own database, where the profile does not allow its host
    bare = ExecContext(stack, Bindings.from_stack(stack, tmp_path / "w"), clock=FakeClock())
    assert f"database host {STAGING} is not one" in _database_url(None, bare)[2]


def test_aws_refuses_an_endpoint_the_profile_does_not_allow(
    tmp_path: Path, profile: Profile
) -> None:
    stack = OfflineStack(tmp_path, OTHER)
    ctx = ExecContext(stack, Bindings.from_stack(stack, tmp_path / "w", profile), clock=FakeClock())
    result = run_step(step("aws s3api list-buckets", StepKind.AWS), ctx)
    assert result.status is StepStatus.ERROR
    assert result.error.startswith(f"refused: AWS host {OTHER} is not one the profile allows")


def test_pg_isready_and_redis_cli_reach_only_allowed_hosts(
    tmp_path: Path, profile: Profile
) -> None:
    allowed = Bindings.from_stack(OfflineStack(tmp_path, STAGING), tmp_path / "w", profile)
    other = Bindings.from_stack(OfflineStack(tmp_path, OTHER), tmp_path / "w", profile)
    pg = step("pg_isready -h $DB_HOST -p 5432", StepKind.SHELL)
    redis = step("redis-cli PING", StepKind.SHELL)
    for tool, name in ((pg, "pg_isready"), (redis, "redis-cli")):
        planned = plan_shell(tool, allowed).plan
        assert isinstance(planned, Pipeline)
        assert planned.stages[0][:3] == (name, "-h", STAGING)
    for tool, what in ((pg, "database"), (redis, "Redis")):
        refused = plan_shell(tool, other).plan
        assert isinstance(refused, NotRun)
        assert refused.status is StepStatus.ERROR
        assert refused.reason.startswith(f"refused: {what} host {OTHER} is not one the profile")
