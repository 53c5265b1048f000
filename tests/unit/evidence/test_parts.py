"""Charts, coverage matrix, scenario catalogue and game-day helpers (no servers)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runbook_checks.drill.result import Event
from runbook_checks.drill.sampler import Sample
from runbook_checks.errors import UsageError
from runbook_checks.evidence import svg
from runbook_checks.evidence.coverage import coverage
from runbook_checks.evidence.journal import ScenarioRecord
from runbook_checks.gameday.catalogue import discover
from runbook_checks.gameday.game import find_step, sla_for
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

if TYPE_CHECKING:
    from conftest import Builders

SVG = "{http://www.w3.org/2000/svg}"


def test_timeline_marks_every_event_over_the_samples() -> None:
    events = [
        Event(0.0, "injected"),
        Event(0.3, "detected"),
        Event(1.0, "mitigating"),
        Event(2.5, "recovered"),
        Event(2.7, "reverted"),
    ]
    samples = [Sample(t / 4, 0 if 0 < t < 10 else 200, 10.0 + t) for t in range(14)]
    root = ET.fromstring(svg.timeline(events, samples, title="t"))
    groups = [g.get("data-event") for g in root.iter(f"{SVG}g")]
    assert groups == ["injected", "detected", "mitigating", "recovered", "reverted"]
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "sample"]
    assert len(rects) == 14
    assert {r.get("fill") for r in rects} == {svg.OK_COLOUR, svg.DOWN_COLOUR}
    assert root.find(f"{SVG}polyline") is not None


def test_timeline_labels_do_not_overlap_in_a_row() -> None:
    marks = [
        (100.0, "injected 0s", "r"),
        (101.0, "symptom 0.01s", "o"),
        (102.0, "detected 0.1s", "b"),
        (300.0, "recovered 2s", "g"),
    ]
    placed = svg._place_labels(marks, 4)
    assert [p.row for p in placed] == [0, 1, 2, 0]


def test_trend_without_values_still_renders() -> None:
    chart = svg.trend([svg.Series("time to detect", (("10-01", None), ("10-02", None)))])
    assert ET.fromstring(chart).tag == f"{SVG}svg"


def test_coverage_counts_steps_and_what_a_drill_verified(build: Builders, runbook: Runbook) -> None:
    rows = coverage(runbook, [ScenarioRecord(build.result())])
    by_key = {(r.section_id, r.option): r for r in rows}
    option_a = by_key[("sev-1-api-server-down", "A")]
    assert (option_a.steps, option_a.executable, option_a.verified) == (2, 2, 2)
    assert option_a.status == "verified"
    investigation = by_key[("sev-1-api-server-down", "investigation")]
    assert investigation.verified == 2
    assert investigation.manual >= 1
    option_c = by_key[("sev-1-api-server-down", "C")]
    assert option_c.status == "not drilled"
    assert (option_c.executable, option_c.manual) == (2, 0)  # git checkout, npm run
    assert {r.section_id for r in rows} == {s.id for s in runbook.scenarios}


def test_redactor_finds_secrets_in_an_environment() -> None:
    redactor = Redactor.for_values(
        {
            "DATABASE_URL": "postgresql://u:pw-123456@h/db",
            "ADMIN_TOKEN": "tok-abcdef",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    assert redactor.secrets == {"pw-123456", "tok-abcdef"}
    text = redactor.text("tok-abcdef and postgresql://u:pw-123456@h/db and testing")
    assert text == "*** and postgresql://u:***@h/db and testing"
    assert redactor.tree({"k": ["tok-abcdef", 3]}) == {"k": ["***", 3]}


def test_catalogue_reads_module_level_scenarios(tmp_path: Path) -> None:
    (tmp_path / "test_demo.py").write_text(
        "import pytest\n"
        "from runbook_checks.drill.spec import Scenario\n"
        "from runbook_checks.faults.process import ProcessKill\n"
        "SECTION = 'SEV-1: API Server Down'\n"
        "KILLED = Scenario(fault=ProcessKill('api'), confirm=lambda c: None,\n"
        "                  detect=lambda r, c: None, title='killed')\n"
        "FROZEN = Scenario(fault=ProcessKill('api'), confirm=lambda c: None,\n"
        "                  detect=lambda r, c: None)\n"
        "@pytest.mark.runbook(SECTION, option='C')\n"
        "def test_other(drill):\n    drill.verify(FROZEN)\n"
        "@pytest.mark.runbook(SECTION, option='A')\n"
        "def test_killed(drill):\n    drill.verify(KILLED)\n"
    )
    (tmp_path / "test_broken.py").write_text("raise RuntimeError('half written')\n")
    catalogue = discover(tmp_path)
    assert [(e.name, e.option) for e in catalogue.entries] == [
        ("demo:killed", "A"),
        ("demo:frozen", "C"),
    ]
    assert catalogue.find("KILLED").title == "killed"
    assert catalogue.find("demo:frozen").title == "frozen"
    assert "test_broken.py: RuntimeError: half written" in catalogue.problems
    with pytest.raises(UsageError, match="matches several"):
        catalogue.find("demo")
    with pytest.raises(UsageError, match="matches no"):
        catalogue.find("nothing")


def test_find_step_by_line_or_text(runbook: Runbook) -> None:
    restart = find_step(runbook, "sudo systemctl restart rolerabbit-api")
    assert find_step(runbook, str(restart.line)) == restart
    assert find_step(runbook, "systemctl restart") == restart
    with pytest.raises(UsageError, match="no runbook command starts on line 1"):
        find_step(runbook, "1")
    with pytest.raises(UsageError, match="several"):
        find_step(runbook, "curl")


def test_sla_comes_from_the_severity_table(runbook: Runbook) -> None:
    assert sla_for(runbook, "SEV-1") == 15 * 60
    assert sla_for(runbook, "SEV-3") == 4 * 3600
    assert sla_for(runbook, "SEV-4") == 15 * 60  # "Next business day": no duration


def test_timeline_labels_near_the_right_edge_are_drawn_to_the_left() -> None:
    placed = svg._place_labels(
        [(10.0, "injected 0s", "r"), (990.0, "reverted 34s", "g")], 4, right_edge=996.0
    )
    assert [(p.row, p.flipped) for p in placed] == [(0, False), (0, True)]
