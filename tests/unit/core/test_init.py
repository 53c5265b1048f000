"""`runbook-checks init`: a starting profile listing every name the runbook uses, and the
coverage table (no servers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runbook_checks.cli import main
from runbook_checks.errors import UsageError
from runbook_checks.init import coverage_rows, inventory, run_init
from runbook_checks.profile import TO_BE_MAPPED, load_profile
from runbook_checks.runbook.parser import parse_runbook
from tests.profiles import FILES, ROOT

RUNBOOK = ROOT / "runbooks" / "files-incident-response.md"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The Files runbook alone in a folder (no profile beside it)."""
    return Path(shutil.copy(RUNBOOK, tmp_path / RUNBOOK.name))


def test_every_name_the_runbook_uses_is_listed_with_its_first_line() -> None:
    found = inventory(parse_runbook(RUNBOOK))
    assert found.hosts == {
        "production-api-01": 77,
        "localhost:5000": 103,
        "api.rolerabbit.com": 113,
        "db-server": 179,
        "rolerabbit.com": 408,
    }
    assert found.status_pages == {"supabase": 92}
    assert found.services == {"rolerabbit-api": 100}
    assert found.processes == {"node": 78}
    assert list(found.paths) == ["/var/log/api", "/var/lib/postgresql"]
    # placeholders of executable steps only ("LAST RESORT", "DNS" in prose are words)
    assert set(found.placeholders) == {
        "PRIMARY", "STANDBY", "PID", "TOKEN", "USER_TOKEN", "xxx", "i-xxx", "abc123xyz",
        "FILE_ID",
    }  # fmt: skip


def test_the_written_profile_reads_back_with_what_is_left_to_map(copy: Path) -> None:
    target, summary = run_init(copy, out=None, force=False)
    assert target == copy.with_name("files-incident-response.runbook-checks.toml")
    profile = load_profile(target)
    assert profile.services == {"rolerabbit-api": TO_BE_MAPPED}
    assert profile.paths["/var/lib/postgresql"] == "postgres:data"  # plain: mapped
    assert profile.paths["/var/log/api"] == TO_BE_MAPPED
    assert profile.status_pages == {"supabase": "status.supabase.com"}
    assert "hosts.api.rolerabbit.com" in profile.unmapped()
    assert f"{len(profile.unmapped())} still to be mapped" in summary
    # every section and option without a drill is listed (this copy names no scenarios)
    assert "SEV-1: API Server Down" in summary
    assert summary.count("no drill") == 17
    assert "line 113" in target.read_text()


def test_an_existing_profile_is_never_overwritten_without_force(copy: Path) -> None:
    run_init(copy, out=None, force=False)
    with pytest.raises(UsageError, match="exists already"):
        run_init(copy, out=None, force=False)
    assert main(["init", str(copy)]) == 2


def test_force_keeps_what_the_owner_mapped(copy: Path) -> None:
    target, _ = run_init(copy, out=None, force=False)
    text = target.read_text().replace(
        '"api.rolerabbit.com" = "to be mapped"', '"api.rolerabbit.com" = "api"'
    )
    assert load_profile(target).kit == ""  # a new profile names no kit, only shows how
    text = text.replace('# kit = "my_service_kit"', 'kit = "files_profile"')
    (copy.parent / "load").mkdir()
    (copy.parent / "load" / "locustfile.py").write_text("# the user mix\n")
    assert '# load = "../loadtests"' in text  # offered, commented out
    target.write_text(text.replace('# load = "../loadtests"', 'load = "load"'))
    run_init(copy, out=None, force=True)
    kept = load_profile(target)
    assert kept.hosts["api.rolerabbit.com"] == "api"
    assert kept.load == copy.parent / "load" / "locustfile.py"
    assert kept.kit == "files_profile"


def test_force_keeps_the_staging_environment_and_address_hosts(copy: Path) -> None:
    target, _ = run_init(copy, out=None, force=False)
    (copy.parent / "staging.environment.toml").write_text(
        'name = "staging"\napi_url = "http://files.staging.invalid"\n'
        'database_url = "postgresql://ops@files.staging.invalid/files"\nadmin_token = "t"\n'
    )
    text = target.read_text().replace(
        'db-server = "to be mapped"', 'db-server = "files.staging.invalid:5432"'
    )
    text = text.replace("# environment = ", "environment = ")
    target.write_text(text)
    assert load_profile(target).environment == copy.parent / "staging.environment.toml"
    run_init(copy, out=None, force=True)
    again = load_profile(target)
    assert again.environment == copy.parent / "staging.environment.toml"
    assert again.hosts["db-server"] == "files.staging.invalid:5432"


def test_coverage_counts_the_drills_the_profile_names() -> None:
    rows = coverage_rows(parse_runbook(RUNBOOK), FILES.scenarios)
    by_option = {(s, o): c for s, o, c in rows}
    assert by_option[("SEV-1: API Server Down", "Option A: Restart API Server")].startswith(
        "drilled by"
    )
    assert all(c != "no drill" for c in by_option.values())
