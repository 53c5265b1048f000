"""The game-day catalogue: scenarios carry their runbook section and option."""

from __future__ import annotations

import textwrap
from pathlib import Path

from runbook_checks.gameday.catalogue import discover, runbook_catalogue
from tests.profiles import FILES_PROFILE_PATH, ROOT


def test_every_shipped_scenario_carries_the_section_and_option_its_test_is_marked_with() -> None:
    catalogue = runbook_catalogue(
        ROOT / "runbooks" / "files-incident-response.md", FILES_PROFILE_PATH
    )
    assert catalogue.problems == ()
    assert len(catalogue.entries) >= 20
    for entry in catalogue.entries:
        assert entry.scenario.section, f"{entry.name} does not say its section"
        assert (entry.section, entry.option) == (entry.scenario.section, entry.scenario.option)


def _module(folder: Path, name: str, body: str) -> None:
    header = """
        import pytest

        from runbook_checks.drill.spec import Scenario

    """
    (folder / name).write_text(textwrap.dedent(header) + textwrap.dedent(body))


def test_a_scenario_whose_test_is_marked_for_another_option_is_reported(tmp_path: Path) -> None:
    _module(
        tmp_path,
        "test_disagrees.py",
        """
        KILLED = Scenario(fault=None, confirm=None, detect=None, section="SEV-1: Down", option="A")


        @pytest.mark.runbook("SEV-1: Down", option="B")
        def test_killed(drill):
            drill.verify(KILLED)
        """,
    )
    catalogue = discover(tmp_path)
    assert catalogue.problems == (
        "test_disagrees.py: KILLED drills 'SEV-1: Down' option 'A', but a test that runs it "
        "is marked 'SEV-1: Down' option 'B'",
    )
    (entry,) = catalogue.entries
    assert (entry.section, entry.option) == ("SEV-1: Down", "A")  # the scenario's own


def test_a_scenario_that_says_nothing_takes_its_tests_mark(tmp_path: Path) -> None:
    _module(
        tmp_path,
        "test_silent.py",
        """
        FROZEN = Scenario(fault=None, confirm=None, detect=None)


        @pytest.mark.runbook("SEV-2: Slow", option="2")
        def test_frozen(drill):
            drill.verify(FROZEN)
        """,
    )
    catalogue = discover(tmp_path)
    assert catalogue.problems == ()
    (entry,) = catalogue.entries
    assert (entry.section, entry.option) == ("SEV-2: Slow", "2")
