"""Another team's runbook, written in a different style, parses into the same model."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.runbook import Runbook, StepKind, parse_runbook

FIXTURE = Path(__file__).parent / "fixtures" / "payments-runbook.md"


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return parse_runbook(FIXTURE)


def test_front_matter_title_and_metadata(runbook: Runbook) -> None:
    assert runbook.title == "Payments On-Call Runbook"
    assert runbook.metadata.owner == "Payments SRE"
    assert runbook.metadata.last_updated == "2024-06-02"
    assert runbook.section("payments-on-call-runbook").line == 7


def test_priority_table(runbook: Runbook) -> None:
    assert [(s.level, s.response_seconds) for s in runbook.severities] == [
        ("P1", 600.0),
        ("P2", 7200.0),
        ("P3", 259200.0),
    ]
    assert runbook.severities[0].impact == "Payments failing for everyone"
    assert runbook.process == ("Page", "Acknowledge", "Fix", "Review")


def test_scenarios(runbook: Runbook) -> None:
    assert [(s.title, s.severity) for s in runbook.scenarios] == [
        ("Card processor unreachable", "P1"),
        ("P2 - Slow refunds", "P2"),
    ]


def test_nested_scenario_with_heading_options(runbook: Runbook) -> None:
    card = runbook.section("card-processor-unreachable")
    assert card.symptoms == ("`POST /charges` returns 502", "Processor dashboard is red")
    assert [(s.line, s.kind) for s in card.investigation] == [
        (29, StepKind.HTTP),
        (31, StepKind.SHELL),
    ]
    assert [o.key for o in card.options] == ["A", "B"]
    assert [s.kind for s in card.option("A").steps] == [StepKind.AWS, StepKind.SHELL]
    queue = card.option("B").steps
    assert [(s.line, s.comment) for s in queue] == [
        (48, "Hold new charges until the processor is back"),
        (49, ""),
    ]
    assert "$fn$ LANGUAGE plpgsql;" in queue[1].text


def test_bold_labels_and_a_list_item_code_block(runbook: Runbook) -> None:
    refunds = runbook.section("p2-slow-refunds")
    assert refunds.symptoms == ("refunds take minutes",)
    assert [(s.line, s.kind, s.text) for s in refunds.investigation] == [
        (63, StepKind.SHELL, "redis-cli LLEN refunds"),
        (64, StepKind.SQL, "SELECT count(*) FROM refunds WHERE state = 'pending';"),
    ]
    (option,) = refunds.options
    assert option.key == "resolution"
    assert [(s.line, s.kind) for s in option.steps] == [(72, StepKind.HTTP)]
    assert "Tell finance." in option.prose
