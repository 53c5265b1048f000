"""Platform lines (kubectl, heroku, npm run, git checkout) parsed and carried out from
their text; what the platform would refuse is refused in its own words (no servers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runbook_checks.drill.platform import StackPlatform
from runbook_checks.runbook.model import Phase, Step, StepKind
from runbook_checks.runbook.platform import PlatformCommand, cut_short, parse_platform
from runbook_checks.steps.base import Bindings, ExecContext, StepStatus
from runbook_checks.steps.platform import PlatformError
from runbook_checks.steps.run import run_step
from tests.fake_stack import NoStackExtras


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kubectl rollout restart deployment api",
            PlatformCommand("kubectl", "rollout-restart", "api"),
        ),
        (
            "kubectl rollout restart deploy/api",
            PlatformCommand("kubectl", "rollout-restart", "api"),
        ),
        (
            "kubectl scale deployment api --replicas=5",
            PlatformCommand("kubectl", "scale", "api", replicas=5),
        ),
        (
            "sudo kubectl scale --replicas 0 deployment/api",
            PlatformCommand("kubectl", "scale", "api", replicas=0),
        ),
        (
            'heroku config:set DATABASE_URL="postgresql://replica-01:5432/files" -a files',
            PlatformCommand(
                "heroku",
                "config-set",
                "files",
                settings=(("DATABASE_URL", "postgresql://replica-01:5432/files"),),
            ),
        ),
        ("heroku restart", PlatformCommand("heroku", "restart", "")),
        ("npm run deploy:rollback", PlatformCommand("npm", "run-script", "deploy:rollback")),
        ("yarn deploy:rollback", PlatformCommand("yarn", "run-script", "deploy:rollback")),
        ("git checkout main@{1}", PlatformCommand("git", "checkout", "main@{1}")),
    ],
)
def test_understood_platform_lines_keep_every_value(text: str, expected: PlatformCommand) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("kubectl get pods", "not carried out"),
        ("kubectl scale deployment api", "--replicas needs a whole number"),
        ("kubectl scale deployment api --replicas=many", "--replicas needs a whole number"),
        ("heroku config:set DATABASE_URL", "is not KEY=VALUE"),
        ("npm install", "not carried out"),
        ("git log", "not carried out"),
    ],
)
def test_lines_the_stack_cannot_carry_out_say_why(text: str, why: str) -> None:
    parsed = parse_platform(text)
    assert isinstance(parsed, str)
    assert why in parsed


def test_a_value_cut_short_is_never_used() -> None:
    assert cut_short("postgresql://replica-01...")
    assert cut_short("postgresql://<host>:5432/files")
    assert cut_short("postgresql://replica-01:5432/files") is None


@dataclass
class _Component:
    running: bool = True

    def is_running(self) -> bool:
        return self.running


@dataclass
class _Stack(NoStackExtras):
    """Not a LocalStack: what any backend's platform can or cannot do."""

    backend: str = "external"
    restarts: list[Mapping[str, str]] = field(default_factory=list)

    def restart_api(self, **env: str) -> None:
        self.restarts.append(env)

    def component(self, name: str) -> _Component:
        return _Component()


def _platform(**kwargs: object) -> tuple[StackPlatform, _Stack]:
    stack = _Stack()
    return StackPlatform(stack, **kwargs), stack  # type: ignore[arg-type]


def test_kubectl_refuses_a_deployment_the_stack_does_not_run() -> None:
    platform, stack = _platform()
    with pytest.raises(PlatformError, match=r'deployments\.apps "web" not found'):
        platform.restart_deployment("web")
    assert platform.restart_deployment("api") == "deployment.apps/api restarted"
    assert stack.restarts == [{}]


def test_heroku_refuses_an_unknown_app_and_a_value_cut_short() -> None:
    platform, stack = _platform()
    with pytest.raises(PlatformError, match="Couldn't find that app"):
        platform.set_config("billing", {"X": "1"})
    with pytest.raises(PlatformError, match="not complete in the text"):
        platform.set_config(None, {"DATABASE_URL": "postgresql://replica-01..."})
    assert stack.restarts == []


def test_heroku_applies_a_setting_at_the_drills_scale() -> None:
    platform, stack = _platform(setting_scale={"DB_POOL_SIZE": 0.2})
    done = platform.set_config(None, {"DB_POOL_SIZE": "50"})
    assert stack.restarts == [{"DB_POOL_SIZE": "10"}]
    assert "applied as 10" in done
    with pytest.raises(PlatformError, match="not a number"):
        platform.set_config(None, {"DB_POOL_SIZE": "lots"})


def test_npm_refuses_a_script_the_pipeline_does_not_have() -> None:
    platform, _ = _platform()
    with pytest.raises(PlatformError, match='Missing script: "deploy:rolback"'):
        platform.run_script("npm", "deploy:rolback")


def test_git_checkout_follows_the_deployment_history(monkeypatch: pytest.MonkeyPatch) -> None:
    import runbook_checks.drill.platform as module

    monkeypatch.setattr(module, "deployed_releases", lambda stack: ["v41", "v42-bad"])
    platform, _ = _platform()
    assert platform.checkout("main@{1}") == "checked out main@{1} = release v41"
    assert platform.checkout("main@{0}").endswith("v42-bad")
    with pytest.raises(PlatformError, match="only has 2 entries"):
        platform.checkout("main@{2}")
    with pytest.raises(PlatformError, match="did not match"):
        platform.checkout("v40")


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def restart_deployment(self, name: str) -> str:
        return f"restarted {name}"

    def scale_deployment(self, name: str, replicas: int) -> str:
        self.calls.append((name, replicas))
        if replicas > 10:
            raise PlatformError("quota exceeded", exit_code=1)
        return f"scaled {name} to {replicas}"

    def set_config(self, app: str | None, settings: Mapping[str, str]) -> str:
        return "set"

    def restart_app(self, app: str | None) -> str:
        return "restarted"

    def run_script(self, tool: str, script: str) -> str:
        return script

    def checkout(self, revision: str) -> str:
        return revision


def _step(text: str) -> Step:
    return Step(text, text, 7, "bash", StepKind.PLATFORM, Phase.MITIGATION)


def test_a_platform_step_runs_on_the_bound_platform_and_fails_as_the_platform_would(
    tmp_path: Path,
) -> None:
    recorder = _Recorder()
    context = ExecContext(
        stack=NoStackExtras(), bindings=Bindings(platform=recorder, work_dir=tmp_path)
    )  # type: ignore[arg-type]
    ok = run_step(_step("kubectl scale deployment api --replicas=5"), context)
    assert (ok.status, ok.output, recorder.calls) == (
        StepStatus.OK,
        "scaled api to 5",
        [("api", 5)],
    )
    refused = run_step(_step("kubectl scale deployment api --replicas=50"), context)
    assert (refused.status, refused.exit_code, refused.error) == (
        StepStatus.FAILED,
        1,
        "quota exceeded",
    )
    unbound = ExecContext(stack=NoStackExtras(), bindings=Bindings(work_dir=tmp_path))  # type: ignore[arg-type]
    assert run_step(_step("kubectl scale deployment api --replicas=5"), unbound).status is (
        StepStatus.MANUAL
    )
