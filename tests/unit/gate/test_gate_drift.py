"""Drift against a revision of a temporary git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from gate_samples import SCENARIO, SEVERITIES, compose

from runbook_checks.errors import UsageError
from runbook_checks.gate import coverage
from runbook_checks.gate.drift import Drift, drift_since, read_at
from runbook_checks.runbook import parse_runbook
from runbook_checks.runbook.source import read_source

SLOW = (
    "## SEV-2: Slow\n\n### Symptoms\n- slow\n\n### Investigation\n\n```bash\n"
    "redis-cli INFO stats\n```\n\n### Mitigation\n\n**1. Warm Up Cache**\n```bash\n"
    "curl -X POST https://api.rolerabbit.com/admin/cache/warm\n```\n"
)
CONTACTS = "## Emergency Contacts\n\n- Alice\n"
SCENARIOS = {
    "test_api.py": 'import pytest\n\n@pytest.mark.runbook("SEV-1: API Down", option="A")\n'
    "def test_restart(drill): ...\n",
    "test_slow.py": 'import pytest\n\nS = "SEV-2: Slow"\n\n@pytest.mark.runbook(S, option="1")\n'
    "def test_warm(drill): ...\n",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "runbooks").mkdir(parents=True)
    (root / "scenarios").mkdir()
    for name, text in SCENARIOS.items():
        (root / "scenarios" / name).write_text(text)
    (root / "runbooks" / "r.md").write_text(compose(SEVERITIES, SCENARIO, SLOW, CONTACTS))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    return root


def drift(root: Path, base: str = "HEAD") -> Drift:
    path = root / "runbooks" / "r.md"
    runbook = parse_runbook(path)
    scan = coverage.scan_scenarios(root / "scenarios")
    return drift_since(base, path, runbook, read_source(path).lines, scan)


def test_nothing_changed(repo: Path) -> None:
    result = drift(repo)
    assert result.changes == ()
    assert result.tests == ()
    assert result.k_expression == ""


def test_a_changed_scenario_names_its_tests(repo: Path) -> None:
    path = repo / "runbooks" / "r.md"
    path.write_text(path.read_text().replace("redis-cli INFO stats", "redis-cli INFO memory"))
    result = drift(repo)
    assert [(c.id, c.change, c.scenario) for c in result.changes] == [
        ("sev-2-slow", "changed", True)
    ]
    assert result.tests == ("test_slow.py::test_warm",)
    assert result.k_expression == "test_warm"
    data = result.to_json()
    assert data["k_expression"] == "test_warm"
    assert data["base"] == "HEAD"


def test_a_changed_plain_section_is_reported_once_and_runs_nothing(repo: Path) -> None:
    path = repo / "runbooks" / "r.md"
    path.write_text(path.read_text().replace("- Alice", "- Alice\n- Bob"))
    git(repo, "commit", "-qam", "contacts")
    result = drift(repo, "HEAD~1")
    assert [(c.id, c.change) for c in result.changes] == [("emergency-contacts", "changed")]
    assert result.tests == ()


def test_added_and_removed_sections(repo: Path) -> None:
    path = repo / "runbooks" / "r.md"
    text = path.read_text().replace(SLOW, SLOW.replace("SEV-2: Slow", "SEV-2: Sluggish"))
    path.write_text(text)
    result = drift(repo)
    assert {(c.id, c.change) for c in result.changes} == {
        ("sev-2-sluggish", "added"),
        ("sev-2-slow", "removed"),
    }
    # the scenario still names the old title: it must run again (and will fail)
    assert result.tests == ("test_slow.py::test_warm",)


def test_a_runbook_new_since_the_revision(repo: Path) -> None:
    new = repo / "runbooks" / "new.md"
    new.write_text(compose(SEVERITIES, SCENARIO))
    assert read_at("HEAD", new) is None
    runbook = parse_runbook(new)
    scan = coverage.scan_scenarios(repo / "scenarios")
    result = drift_since("HEAD", new, runbook, read_source(new).lines, scan)
    assert "did not exist" in result.note
    assert result.tests == ("test_api.py::test_restart",)


def test_an_unknown_revision_or_no_repository(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such revision"):
        drift(repo, "does-not-exist")
    outside = tmp_path / "outside.md"
    outside.write_text(compose(SEVERITIES, SCENARIO))
    with pytest.raises(UsageError, match="not inside a git repository"):
        read_at("HEAD", outside)
