"""A runbook's profile: where it is found, what it maps, and bad input named (no servers)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.profile import (
    EMPTY,
    TO_BE_MAPPED,
    find_profile,
    load_profile,
    locustfile,
    scenarios_folder,
)
from runbook_checks.steps.binding import Bindings, bind
from tests.profiles import FILES, FILES_PROFILE_PATH, ROOT

RUNBOOK = ROOT / "runbooks" / "files-incident-response.md"


def test_the_files_runbooks_profile_is_found_beside_it() -> None:
    profile = find_profile(RUNBOOK)
    assert profile.source == FILES_PROFILE_PATH
    assert profile.scenarios == ROOT / "scenarios"
    assert profile.load == ROOT / "loadtests" / "locustfile.py"
    assert profile.hosts["api.rolerabbit.com"] == "api"
    assert profile.hosts_to("api-instance") == ("localhost:5000", "production-api-01")
    assert profile.identity_placeholders == ("replica-01", "snapshot-20240115")
    assert "PID" in profile.known_placeholders
    assert profile.paths["/var/log/api"] == "api:logs"
    assert profile.unmapped() == []


def test_the_first_candidate_found_wins(tmp_path: Path) -> None:
    runbook = tmp_path / "db.md"
    runbook.write_text("# db\n", encoding="utf-8")
    assert find_profile(runbook) is EMPTY
    (tmp_path / "pyproject.toml").write_text('[tool.runbook-checks.hosts]\n"db" = "postgres"\n')
    assert find_profile(runbook).hosts == {"db": "postgres"}
    (tmp_path / "runbook-checks.toml").write_text('[hosts]\n"db" = "redis"\n')
    assert find_profile(runbook).hosts == {"db": "redis"}
    (tmp_path / "db.runbook-checks.toml").write_text('[hosts]\n"db" = "api"\n')
    assert find_profile(runbook).hosts == {"db": "api"}
    assert find_profile(runbook, FILES_PROFILE_PATH).name == "files"  # --profile wins


def test_a_pyproject_without_the_table_is_not_a_profile(tmp_path: Path) -> None:
    runbook = tmp_path / "db.md"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_profile(runbook) is EMPTY


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[hosts\n", "not valid TOML"),
        ("[servers]\n", "servers: not a profile table"),
        ('[hosts]\n"db" = "mysql"\n', "hosts.db: 'mysql' is not something the stack has"),
        ("[hosts]\ndb = 3\n", "hosts.db: expected a string"),
        ('[placeholders]\nPID = "guess"\n', "placeholders.PID"),
        ('[paths]\n"/var/log/x" = "api:cache"\n', "paths./var/log/x"),
        ('[profile]\nscenarios = "nowhere"\n', "profile.scenarios"),
        ('[profile]\nload = "nowhere.py"\n', "profile.load: "),
        ('[profile]\nload = "."\n', "locustfile.py is not a file"),  # a folder without one
        ("[profile]\nload = 3\n", "profile.load: expected a locustfile"),
        ("hosts = 1\n", "hosts: expected a table"),
        ("[profile]\nkit = 3\n", "profile.kit: expected a module name"),
    ],
)
def test_bad_input_names_the_file_and_the_field(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "runbook-checks.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as raised:
        load_profile(path)
    assert str(path) in str(raised.value)
    assert named in str(raised.value)


def test_names_to_be_mapped_are_listed_and_stay_unbound(tmp_path: Path) -> None:
    path = tmp_path / "runbook-checks.toml"
    path.write_text(
        f'[hosts]\n"db.internal" = "{TO_BE_MAPPED}"\n"api.example.com" = "api"\n'
        f'[placeholders]\nNODE = "{TO_BE_MAPPED}"\n',
        encoding="utf-8",
    )
    profile = load_profile(path)
    assert profile.unmapped() == ["hosts.db.internal", "placeholders.NODE"]
    assert profile.hosts_to("api") == ("api.example.com",)


class _Endpoints:
    api_url = "http://127.0.0.1:9000"
    api_instance_url = "http://127.0.0.1:9001"
    log_dir = Path("/tmp/stack/api/logs")
    data_dirs: ClassVar[dict[str, Path]] = {"postgres": Path("/tmp/stack/pg")}
    admin_token = "admin-token-value"
    api_process = "files_api serve --instance api@stack-1"

    def as_env(self) -> dict[str, str]:
        return {"DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/files"}


class _Stack:
    endpoints = _Endpoints()


def test_bindings_come_from_the_profile(tmp_path: Path) -> None:
    bindings = Bindings.from_stack(_Stack(), tmp_path, FILES)  # type: ignore[arg-type]
    assert bindings.hosts["api.rolerabbit.com"] == "http://127.0.0.1:9000"
    assert bindings.hosts["localhost:5000"] == "http://127.0.0.1:9001"
    assert bindings.paths["/var/log/api"] == Path("/tmp/stack/api/logs")
    assert bindings.paths["/var/lib/postgresql"] == Path("/tmp/stack/pg")
    assert "/var/lib/redis" not in bindings.paths  # this stack has no redis folder
    assert bindings.services["rolerabbit-api"] == "api"
    assert bindings.processes["node"] == _Endpoints.api_process
    assert bindings.values["replica-01"] == "replica-01"
    assert "TOKEN" in bindings.placeholders


def test_an_empty_profile_maps_nothing(tmp_path: Path) -> None:
    bindings = Bindings.from_stack(_Stack(), tmp_path, EMPTY)  # type: ignore[arg-type]
    assert bindings.hosts == {}
    assert bindings.paths == {}
    assert bindings.services == {}
    # a placeholder only the profile knows is then text, not a placeholder
    bound = bind("aws elbv2 register-targets --target-group-arn STANDBY", bindings)
    assert "STANDBY" in bound.unbound  # ALL-CAPS words are still found generically
    assert "snapshot-20240115" not in bind("x snapshot-20240115", bindings).unbound


def test_the_locustfile_is_the_flag_s_else_the_profile_s(tmp_path: Path) -> None:
    (tmp_path / "load").mkdir()
    (tmp_path / "load" / "locustfile.py").write_text("# the service's user mix\n")
    (tmp_path / "other.py").write_text("# another\n")
    runbook = tmp_path / "db.md"
    (tmp_path / "db.runbook-checks.toml").write_text('[profile]\nload = "load"\n')
    profile = find_profile(runbook)
    assert profile.load == tmp_path / "load" / "locustfile.py"  # a folder: its locustfile.py
    assert locustfile(runbook, profile) == profile.load
    assert locustfile(runbook, profile, tmp_path / "other.py") == tmp_path / "other.py"
    with pytest.raises(UsageError, match=r"--locustfile .*missing\.py: no such file"):
        locustfile(runbook, profile, tmp_path / "missing.py")


@pytest.mark.parametrize("has_profile", [False, True])
def test_no_locustfile_or_scenarios_is_one_error_saying_how_to_name_them(
    tmp_path: Path, has_profile: bool
) -> None:
    runbook = tmp_path / "db.md"
    if has_profile:
        (tmp_path / "db.runbook-checks.toml").write_text('[hosts]\n"db" = "postgres"\n')
    profile = find_profile(runbook)
    with pytest.raises(UsageError) as raised:
        locustfile(runbook, profile)
    said = f"{raised.value} {raised.value.hint}"
    assert f"{runbook}: no locustfile" in said
    assert "--locustfile" in said
    assert "[profile] load" in said
    assert ("names none" in said) == has_profile
    with pytest.raises(UsageError) as raised:
        scenarios_folder(runbook, profile)
    said = f"{raised.value} {raised.value.hint}"
    assert f"{runbook}: no scenarios" in said
    assert "[profile] scenarios" in said


def test_the_files_profile_names_the_files_kit() -> None:
    from files_profile import KIT

    assert FILES.kit == "files_profile"
    assert FILES.service_kit() is KIT


@pytest.mark.parametrize(
    ("kit", "named"),
    [
        ("", "profile.kit: not set"),
        ("not a module", "'not a module' is not a module name"),
        ("no_such_kit_module", "cannot import 'no_such_kit_module'"),
        ("json", "'json' has no KIT describing a service"),
    ],
)
def test_a_kit_that_is_not_one_names_the_profile_and_the_field(
    tmp_path: Path, kit: str, named: str
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[tool.runbook-checks.profile]\nkit = "{kit}"\n', encoding="utf-8")
    profile = load_profile(path)
    with pytest.raises(UsageError) as raised:
        profile.service_kit()
    assert f"{path}: tool.runbook-checks.profile.kit" in str(raised.value)
    assert named in str(raised.value)


def test_a_runbook_without_a_profile_has_no_kit() -> None:
    with pytest.raises(UsageError, match="the runbook has no profile"):
        EMPTY.service_kit()
