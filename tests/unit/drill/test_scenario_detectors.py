"""Every scenario's detector is derived from its section's own steps: each leaf of it
reads at least one executable diagnostic of the section (a detector that looks for a
command the section does not contain can never match: a defect of the drill)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from runbook_checks.drill.spec import Scenario
from runbook_checks.runbook.parser import parse_runbook

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "runbooks" / "files-incident-response.md"
CORRECTED = ROOT / "tests" / "fixtures" / "runbooks" / "files-incident-response.corrected.md"


def _modules() -> list[ModuleType]:
    found = []
    for path in sorted((ROOT / "scenarios").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_scenarios_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.append(module)
    return found


MODULES = _modules()
SCENARIOS = [
    (module, name, value)
    for module in MODULES
    for name, value in vars(module).items()
    if isinstance(value, Scenario)
]


def test_every_scenario_module_was_found() -> None:
    assert len(MODULES) >= 7
    assert len(SCENARIOS) >= 20


@pytest.mark.parametrize("runbook_path", [RUNBOOK, CORRECTED], ids=["shipped", "corrected"])
@pytest.mark.parametrize(
    ("module", "name", "scenario"),
    SCENARIOS,
    ids=[f"{m.__name__[11:]}.{n}" for m, n, _ in SCENARIOS],
)
def test_each_detector_leaf_reads_a_step_of_its_section(
    runbook_path: Path, module: ModuleType, name: str, scenario: Scenario
) -> None:
    if not runbook_path.exists():
        pytest.skip(f"{runbook_path.name} is not written yet")
    section = parse_runbook(runbook_path).section(module.SECTION)
    assert scenario.detect_steps == "investigation"
    unread = scenario.detect.unread(section.investigation)
    assert not unread, (
        f"{name}: detector part(s) {[d.name for d in unread]} read no executable step of "
        f"{section.title!r}: {[s.text for s in section.investigation if s.executable]}"
    )
