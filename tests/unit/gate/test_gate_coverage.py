"""Coverage: scenario markers found with ast (never imported), sections and options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gate_samples import SCENARIO, SEVERITIES

from runbook_checks.findings import Level
from runbook_checks.gate import coverage
from runbook_checks.runbook import Runbook

MakeRunbook = Callable[..., Runbook]

TWO_OPTIONS = SCENARIO + "\n**Option B: Failover**\n```bash\nsudo systemctl restart api\n```\n"

MODULE = """\
import pytest

raise RuntimeError("scenario modules are read, never imported")

SECTION = "SEV-1: API Down"

pytestmark = pytest.mark.slow


@pytest.mark.runbook(SECTION, option="A")
def test_restart(drill):
    pass


@pytest.mark.runbook("sev-1-api-down")
def test_investigation(drill):
    pass


class TestMore:
    pytestmark = [pytest.mark.runbook(SECTION, option="B")]

    def test_failover(self):
        pass


@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.runbook(SECTION, option="a"))])
def test_param(x):
    pass


def test_without_marker():
    pass


def helper():
    pass
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_markers_are_found_statically(tmp_path: Path) -> None:
    write(tmp_path / "scenarios", "test_api.py", MODULE)
    scan = coverage.scan_scenarios(tmp_path / "scenarios")
    found = {(m.test, m.section, m.option) for m in scan.markers}
    assert found == {
        ("test_restart", "SEV-1: API Down", "A"),
        ("test_investigation", "sev-1-api-down", None),
        ("TestMore::test_failover", "SEV-1: API Down", "B"),
        ("test_param", "SEV-1: API Down", "a"),
    }
    assert scan.unmarked == ("test_api.py::test_without_marker",)
    assert scan.problems == ()
    assert {m.nodeid for m in scan.markers} >= {"test_api.py::TestMore::test_failover"}


def test_every_section_and_option_covered(tmp_path: Path, make_runbook: MakeRunbook) -> None:
    write(tmp_path / "scenarios", "test_api.py", MODULE)
    runbook = make_runbook(SEVERITIES, TWO_OPTIONS)
    assert coverage.check_coverage(runbook, coverage.scan_scenarios(tmp_path / "scenarios")) == []


def test_an_option_without_scenario_is_an_error(tmp_path: Path, make_runbook: MakeRunbook) -> None:
    only_a = MODULE.replace('option="B"', 'option="A"')
    write(tmp_path / "scenarios", "test_api.py", only_a)
    runbook = make_runbook(SEVERITIES, TWO_OPTIONS)
    (finding,) = coverage.check_coverage(runbook, coverage.scan_scenarios(tmp_path / "scenarios"))
    assert (finding.kind, finding.level) == (coverage.MISSING, Level.ERROR)
    assert finding.statement == "Option B: Failover"
    assert finding.line == runbook.section("sev-1-api-down").option("B").line
    assert "option='B'" in finding.suggestion


def test_a_section_nobody_drills(tmp_path: Path, make_runbook: MakeRunbook) -> None:
    (tmp_path / "scenarios").mkdir()
    runbook = make_runbook(SEVERITIES, SCENARIO)
    found = coverage.check_coverage(runbook, coverage.scan_scenarios(tmp_path / "scenarios"))
    assert [(f.kind, f.statement) for f in found] == [
        (coverage.MISSING, "SEV-1: API Down"),
        (coverage.MISSING, "Option A: Restart"),
    ]


def test_markers_naming_what_the_runbook_lacks(tmp_path: Path, make_runbook: MakeRunbook) -> None:
    text = MODULE.replace('option="B"', 'option="Z"').replace('"sev-1-api-down"', '"SEV-9: Gone"')
    write(tmp_path / "scenarios", "test_api.py", text)
    runbook = make_runbook(SEVERITIES, TWO_OPTIONS)
    found = coverage.check_coverage(runbook, coverage.scan_scenarios(tmp_path / "scenarios"))
    kinds = sorted(f.kind for f in found)
    assert kinds == [coverage.MISSING, coverage.UNKNOWN_OPTION, coverage.UNKNOWN_SECTION]


def test_unreadable_modules_and_dynamic_markers(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    write(folder, "test_broken.py", "def test_x(:\n")
    write(
        folder,
        "test_dynamic.py",
        "import pytest\n\n@pytest.mark.runbook(f'{1}')\ndef test_y(): ...\n",
    )
    scan = coverage.scan_scenarios(folder)
    assert scan.markers == ()
    assert len(scan.problems) == 2


def test_no_scenarios_folder(make_runbook: MakeRunbook) -> None:
    (finding,) = coverage.check_coverage(make_runbook(), coverage.Scan())
    assert finding.kind == coverage.NO_SCENARIOS


def test_a_runbook_is_covered_only_by_the_scenarios_its_profile_names(tmp_path: Path) -> None:
    """Another runbook in the same repository (no profile of its own) gets no coverage
    findings from the Files scenarios beside it."""
    from runbook_checks.gate.run import GateOptions, run_gate

    runbook = write(
        tmp_path / "runbooks",
        "alerts.md",
        "# Disk alerts\n\n## Disk filling\n\n### Mitigation\n\n```bash\ndf -h\n```\n",
    )
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_api.py").write_text(
        'import pytest\n\n@pytest.mark.runbook("SEV-1: API Down")\ndef test_a(): ...\n'
    )
    report = run_gate(GateOptions(runbook, offline=True))
    found = {r.finding.kind: r.finding for r in report.results}
    assert not {coverage.MISSING, coverage.UNKNOWN_SECTION, coverage.UNKNOWN_OPTION} & set(found)
    assert found[coverage.NO_SCENARIOS].level is Level.INFO
