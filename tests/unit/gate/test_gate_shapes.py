"""The gate on runbooks of other shapes: structure findings that fit the shape, SQL
validated against a stock PostgreSQL's catalogs (no twin), every step listed with what
checked it. No stack is started: the fixtures have no profile naming one."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook_checks.gate import structure
from runbook_checks.gate.findings import Finding, Level
from runbook_checks.runbook import Runbook, parse_runbook

MakeRunbook = Callable[..., Runbook]
PUBLIC = Path(__file__).resolve().parents[2] / "fixtures" / "runbooks" / "public"
FIXTURES = sorted(p.name for p in PUBLIC.glob("*.md"))


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(tmp_path: Path, text: str, name: str = "runbook.md") -> Runbook:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return parse_runbook(path)


def levels(findings: list[Finding]) -> list[tuple[str, Level]]:
    return [(f.kind, f.level) for f in findings]


# -- structure -------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_no_structure_noise_on_the_public_shapes(name: str) -> None:
    runbook = parse_runbook(PUBLIC / name)
    assert structure.check_structure(runbook) == []
    assert structure.check_parse_warnings(runbook) == []


def test_an_alert_page_without_a_way_out_is_a_warning(tmp_path: Path) -> None:
    runbook = write(
        tmp_path,
        """
        # HighErrorRate
        ## Impact
        Users see errors.
        ## Diagnosis
        ```shell
        kubectl -n shop logs deploy/api --since=10m
        ```
        """,
    )
    assert runbook.shape == "alert"
    (finding,) = structure.check_structure(runbook)
    assert (finding.kind, finding.level) == (structure.MISSING_MITIGATION, Level.WARNING)
    assert finding.section_id == "higherrorrate"
    assert "no Mitigation" in finding.message


def test_a_page_severity_is_checked_only_against_a_table(tmp_path: Path) -> None:
    page = """
        ---
        severity: critical
        ---
        # Queue backlog
        ## Diagnosis
        ```bash
        df -h
        ```
        ## Mitigation
        ```bash
        sudo systemctl restart worker
        ```
        """
    assert structure.check_structure(write(tmp_path, page)) == []
    table = """
        ## Severity levels
        | Level | Response time |
        |-------|---------------|
        | SEV-1 | 15 minutes    |
        """
    runbook = write(tmp_path, page + table)
    assert levels(structure.check_structure(runbook)) == [
        (structure.UNKNOWN_SEVERITY, Level.WARNING)
    ]


def test_a_sev_heading_without_a_severity_table_is_at_most_an_info(tmp_path: Path) -> None:
    runbook = write(
        tmp_path,
        """
        # Runbook
        ## SEV-1: API down
        ### Symptoms
        - 502s
        ### Investigation
        ```bash
        curl http://localhost:5000/health
        ```
        ### Mitigation
        **Option A: Restart**
        ```bash
        sudo systemctl restart api
        ```
        """,
    )
    assert levels(structure.check_structure(runbook)) == [(structure.UNKNOWN_SEVERITY, Level.INFO)]


def test_no_scenario_section(tmp_path: Path) -> None:
    # a procedure: commands, no problem sections; nothing to say
    assert structure.check_structure(parse_runbook(PUBLIC / "procedure-rds-restore.md")) == []
    # nothing at all to check: a warning
    empty = write(tmp_path, "# Contacts\n\n- Alice\n")
    assert levels(structure.check_structure(empty)) == [(structure.NO_SCENARIOS, Level.WARNING)]
    # severity levels defined, no section names one: the SEV sections are missing
    sev = write(
        tmp_path,
        """
        # Runbook
        | Level | Response time |
        |-------|---------------|
        | SEV-1 | 15 minutes    |
        ## Contacts
        - Alice
        """,
    )
    assert levels(structure.check_structure(sev)) == [(structure.NO_SCENARIOS, Level.ERROR)]
