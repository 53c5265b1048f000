"""A drill whose steps may call the AWS control plane has the stack bring it up as the
drill begins (the local stack starts it only when first needed: inside the drill's
timeline, its start would count against the runbook's step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.clock import FakeClock
from runbook_checks.drill import runner
from runbook_checks.drill.runner import Drill
from runbook_checks.drill.spec import Scenario
from runbook_checks.runbook.parser import parse_runbook
from tests.fake_stack import offline_stack

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")


class Opened(Exception):
    """The drill got as far as opening its session."""


@pytest.mark.parametrize(
    ("section", "option", "prepared"),
    [
        ("sev-1-api-server-down", "B", ["aws"]),  # aws elb deregister/register-targets
        ("sev-2-performance-degradation", "3", ["aws"]),  # kubectl scale, aws rds
        ("sev-1-api-server-down", "A", []),  # a restart: no AWS
        ("sev-2-file-upload-failures", "1", []),
    ],
)
def test_a_drill_prepares_the_control_plane_only_when_its_steps_reach_aws(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    section: str,
    option: str,
    prepared: list[str],
) -> None:
    asked: list[str] = []
    stack = offline_stack(tmp_path, prepare=asked.append)

    def opened(*args: object, **kwargs: object) -> None:
        assert asked == prepared  # asked before the session (and its clock) begins
        raise Opened

    monkeypatch.setattr(runner.DrillSession, "open", opened)
    drill = Drill(
        stack, RUNBOOK, section, option, scenario_id="s", work_dir=tmp_path, clock=FakeClock()
    )
    with pytest.raises(Opened):
        drill.run(
            Scenario(
                section=section,
                option=option,
                title="t",
                fault=object(),  # type: ignore[arg-type]
                confirm=lambda ctx: None,
                detect=lambda result, ctx: None,
            )
        )
    assert asked == prepared


class SilentConsole:
    def show(self, state: object) -> None:
        pass

    def say(self, text: str) -> None:
        pass

    def command(self, timeout_s: float) -> str | None:
        return ""


def test_a_game_day_prepares_the_control_plane_before_its_incident_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person may run any of the runbook's aws commands, whatever the scenario."""
    from runbook_checks.gameday import game
    from runbook_checks.gameday.catalogue import CatalogueEntry

    asked: list[str] = []
    stack = offline_stack(tmp_path, prepare=asked.append)

    def opened(*args: object, **kwargs: object) -> None:
        assert asked == ["aws"]
        raise Opened

    monkeypatch.setattr(game.DrillSession, "open", opened)
    scenario = Scenario(
        section="sev-1-api-server-down",
        option="A",
        title="t",
        fault=object(),  # type: ignore[arg-type]
        confirm=lambda ctx: None,
        detect=lambda result, ctx: None,
    )
    entry = CatalogueEntry("x:y", "Y", "test_x", "sev-1-api-server-down", "A", scenario)
    day = game.GameDay(entry, stack, RUNBOOK, SilentConsole(), work_dir=tmp_path, clock=FakeClock())
    with pytest.raises(Opened):
        day.run()
    assert asked == ["aws"]
