"""Deploy faults and the API-settings helpers, on a fake stack (no servers).

The fake API behaves like files_api at start: a setting it cannot parse makes it exit
with "files_api: bad configuration: NAME: ..." (the real behaviour is checked in the
integration tests); anything else starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import pytest

from files_profile import KIT
from runbook_checks.errors import ComponentFailed, UsageError
from runbook_checks.faults.base import ACTIVE, FaultError, FaultHandle
from runbook_checks.faults.deploy import (
    BREAKAGES,
    BadRelease,
    api_settings,
    change_api_settings,
    redact,
    restore_api_settings,
    rollback,
)
from runbook_checks.service import ServiceKit
from runbook_checks.stack.base import Capability, Stack
from tests.fake_stack import NoStackExtras

DB_URL = "postgresql://files_app:s3cret@127.0.0.1:5433/files"


@dataclass
class FakeApi:
    settings: dict[str, str]
    running: bool = True
    log: list[str] = field(default_factory=list)
    name: str = "api"

    def is_running(self) -> bool:
        return self.running

    def is_ready(self) -> bool:
        return self.running

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log[-lines:])


@dataclass
class FakeStack(NoStackExtras):
    api: FakeApi
    backend: str = "fake"
    kit: ServiceKit = KIT
    capabilities: frozenset[Capability] = frozenset(Capability)
    restarts: list[dict[str, str]] = field(default_factory=list)

    @property
    def api_env(self) -> dict[str, str]:
        return self.api.settings

    def component(self, name: str) -> FakeApi:
        assert name == "api"
        return self.api

    def restart_api(self, **env: str) -> None:
        self.restarts.append(dict(env))
        self.api.settings.update(env)
        endpoint = self.api.settings.get("S3_ENDPOINT_URL", "")
        if endpoint and "://" not in endpoint:
            self.api.running = False
            self.api.log.append(
                "files_api: bad configuration: S3_ENDPOINT_URL: expected an http(s)://HOST:PORT "
                f"URL, got {endpoint!r}"
            )
            raise ComponentFailed("api", "exited before it became ready")
        self.api.running = True


def fake_stack(**settings: str) -> FakeStack:
    base = {"DATABASE_URL": DB_URL, "S3_ENDPOINT_URL": "http://127.0.0.1:9000"}
    return FakeStack(FakeApi({**base, **settings}))


def as_stack(fake: FakeStack) -> Stack:
    return cast(Stack, fake)


# --------------------------------------------------------------------------- settings helpers


def test_redact_hides_url_passwords_only() -> None:
    assert redact(DB_URL) == "postgresql://files_app:***@127.0.0.1:5433/files"
    assert redact("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    assert redact("12") == "12"


def test_api_settings_refuses_a_stack_without_a_record_of_them() -> None:
    @dataclass
    class Bare(NoStackExtras):  # api_env None: the API is not started by the stack
        backend: str = "external"

    with pytest.raises(FaultError, match="cannot read the API's settings on the external"):
        api_settings(cast(Stack, Bare()))


def test_change_then_revert_restores_a_value_and_removes_an_unset_one() -> None:
    stack = fake_stack(DB_POOL_SIZE="20")
    handle = FaultHandle(BadRelease())
    previous = change_api_settings(
        as_stack(stack), handle, {"DB_POOL_SIZE": "2", "UPLOAD_TIMEOUT_S": "1"}, why="test"
    )
    assert previous == {"DB_POOL_SIZE": "20", "UPLOAD_TIMEOUT_S": None}
    assert stack.api.settings["DB_POOL_SIZE"] == "2"
    handle.revert()
    assert stack.api.settings["DB_POOL_SIZE"] == "20"
    assert "UPLOAD_TIMEOUT_S" not in stack.api.settings
    # the unset one went to the API as a blank (files_api reads blank as unset)
    assert stack.restarts[-1] == {"DB_POOL_SIZE": "20", "UPLOAD_TIMEOUT_S": ""}
    handle.revert()
    assert len(stack.restarts) == 2  # idempotent: no third restart


def test_restore_does_not_restart_when_nothing_differs_and_the_api_answers() -> None:
    stack = fake_stack(DB_POOL_SIZE="20")
    done = restore_api_settings(as_stack(stack), {"DB_POOL_SIZE": "20", "X": None})
    assert done.startswith("API settings already")
    assert stack.restarts == []


def test_restore_restarts_an_api_that_is_down_even_when_settings_match() -> None:
    stack = fake_stack()
    stack.api.running = False
    done = restore_api_settings(as_stack(stack), {"DB_POOL_SIZE": None})
    assert "restarted the API (it was down)" in done
    assert stack.restarts == [{}]
    assert stack.api.running


def test_notes_never_show_a_database_password() -> None:
    stack = fake_stack()
    with BadRelease(breakage="db-password").inject(as_stack(stack)) as handle:
        assert "s3cret" not in " ".join(handle.notes)
        assert "rotated-away-in-this-release" not in " ".join(handle.notes)


# --------------------------------------------------------------------------- bad release


def test_unknown_breakage_and_blank_release_are_refused() -> None:
    with pytest.raises(UsageError, match=r"unknown breakage 'oops'; expected one of crash"):
        BadRelease(breakage="oops")
    with pytest.raises(UsageError, match="needs a name"):
        BadRelease(release=" ")


def test_describe_names_the_release_and_the_breakage() -> None:
    text = BadRelease("2024.02.01-bad", "db-url").describe()
    assert "2024.02.01-bad" in text
    assert "db-url" in text
    assert BadRelease.requires == frozenset({Capability.RECONFIGURE})


def test_crash_release_leaves_the_api_down_with_the_reason_in_the_notes() -> None:
    stack = fake_stack()
    handle = BadRelease().inject(as_stack(stack))
    assert not stack.api.is_running()
    assert stack.api.settings["FILES_API_RELEASE"] == "2024.01.15-bad"
    assert any("bad configuration: S3_ENDPOINT_URL" in n for n in handle.notes)
    handle.revert()
    assert stack.api.is_running()
    assert "FILES_API_RELEASE" not in stack.api.settings
    assert stack.api.settings["S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"


def test_crash_release_that_starts_anyway_is_an_error_and_is_undone() -> None:
    stack = fake_stack()

    def lenient(**env: str) -> None:  # an API that accepts any endpoint
        stack.restarts.append(dict(env))
        stack.api.settings.update(env)
        stack.api.running = True

    stack.restart_api = lenient  # type: ignore[method-assign]
    with pytest.raises(FaultError, match="still running"):
        BadRelease().inject(as_stack(stack))
    assert stack.api.settings["S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert "FILES_API_RELEASE" not in stack.api.settings


@pytest.mark.parametrize("breakage", ["db-url", "db-password"])
def test_database_breakages_start_the_api_with_a_broken_url(breakage: str) -> None:
    stack = fake_stack(FILES_API_RELEASE="2024.01.14")
    with BadRelease(breakage=breakage).inject(as_stack(stack)):
        broken = stack.api.settings["DATABASE_URL"]
        assert broken != DB_URL
        assert broken.startswith("postgresql://files_app")
        assert stack.api.running  # starts, then fails every request
    assert stack.api.settings["DATABASE_URL"] == DB_URL
    assert stack.api.settings["FILES_API_RELEASE"] == "2024.01.14"


def test_db_url_breakage_points_at_a_closed_port() -> None:
    changes = BREAKAGES["db-url"].settings({"DATABASE_URL": DB_URL})
    assert changes == {"DATABASE_URL": "postgresql://files_app:s3cret@127.0.0.1:1/files"}


def test_rollback_restores_the_previous_release_then_revert_does_nothing() -> None:
    stack = fake_stack(FILES_API_RELEASE="2024.01.14")
    handle = BadRelease().inject(as_stack(stack))
    done = rollback(as_stack(stack))
    assert done.startswith("rolled back release 2024.01.15-bad to 2024.01.14")
    assert stack.api.running
    assert stack.api.settings["FILES_API_RELEASE"] == "2024.01.14"
    restarts = len(stack.restarts)
    handle.revert()
    assert len(stack.restarts) == restarts
    assert handle not in ACTIVE.handles
    with pytest.raises(FaultError, match="nothing to roll back"):
        rollback(as_stack(stack))


def test_rollback_only_acts_on_its_own_stack() -> None:
    mine, other = fake_stack(), fake_stack()
    with BadRelease().inject(as_stack(other)), pytest.raises(FaultError, match="nothing to roll"):
        rollback(as_stack(mine))


def test_rollback_after_revert_has_nothing_to_do() -> None:
    stack = fake_stack()
    BadRelease(breakage="db-url").inject(as_stack(stack)).revert()
    with pytest.raises(FaultError, match="nothing to roll back"):
        rollback(as_stack(stack))


def test_missing_capability_is_refused_before_anything_happens() -> None:
    stack = fake_stack()
    stack.capabilities = frozenset({Capability.KILL})
    with pytest.raises(FaultError, match="needs reconfigure"):
        BadRelease().inject(as_stack(stack))
    assert stack.restarts == []
