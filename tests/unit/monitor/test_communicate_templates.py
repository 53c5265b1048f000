"""The runbook's status-page templates filled with a drill's facts, posted, judged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from files_profile.vocabulary import VOCABULARY
from runbook_checks.clock import FakeClock
from runbook_checks.findings import Level
from runbook_checks.monitor.communicate import (
    STALE,
    UNFILLED,
    UNREADABLE,
    CommunicationRecord,
    IncidentFacts,
    communicate,
    feature_for,
    fill,
    template_findings,
    templates_for,
)
from runbook_checks.monitor.statuspage import PostedUpdate, StatusPageServer
from runbook_checks.runbook.model import Runbook, Template
from runbook_checks.runbook.parser import parse_runbook, parse_text

RUNBOOK = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return parse_runbook(RUNBOOK)


@pytest.fixture
def page() -> Iterator[StatusPageServer]:
    with StatusPageServer(clock=FakeClock()) as server:
        yield server


def facts(section: str = "sev-1-api-server-down", **changes: object) -> IncidentFacts:
    base = IncidentFacts(
        section_id=section,
        section_title="SEV-1: API Server Down",
        severity="SEV-1",
        feature="Files API",
        issue="the API process was killed",
        impact="requests fail (100% of 12 requests)",
        started_wall=T0,
        detected_wall=T0 + 60,
        recovered_wall=T0 + 610,
        root_cause=None,
        fix=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def guideline(runbook: Runbook, title: str) -> Template:
    return next(t for t in runbook.templates if t.title == title)


def test_a_section_uses_its_own_templates_and_the_guidelines_for_the_rest(
    runbook: Runbook,
) -> None:
    own = templates_for(runbook, "sev-1-api-server-down")
    assert {stage: t.title for stage, t in own.items()} == {
        "investigating": "Status Page Update",
        "identified": "Identified",
        "monitoring": "Monitoring",
        "resolved": "Resolution Update",
    }
    general = templates_for(runbook, "sev-3-share-links-not-working")
    assert [t.title for t in general.values()] == [
        "Investigating",
        "Identified",
        "Monitoring",
        "Resolved",
    ]
    assert templates_for(runbook, None) == general  # no section: the guidelines only


@pytest.mark.parametrize(
    ("title", "feature"),
    [
        ("SEV-1: API Server Down", "Files API"),
        ("SEV-1: Database Failure", "Files API"),
        ("SEV-1: Storage System Failure", "File storage"),
        ("SEV-2: File Upload Failures", "File uploads"),
        ("SEV-3: Share Links Not Working", "Share links"),
    ],
)
def test_the_feature_is_what_customers_call_the_part_that_failed(title: str, feature: str) -> None:
    assert feature_for(title, VOCABULARY) == feature


def test_placeholders_are_filled_from_the_facts(runbook: Runbook) -> None:
    investigating = fill(
        guideline(runbook, "Investigating"), "investigating", facts(), now_wall=T0 + 60
    )
    assert investigating.name.endswith("Investigating - Files API Issues")
    assert "We're investigating reports of the API process was killed." in investigating.body
    assert "Users may experience requests fail (100% of 12 requests)." in investigating.body
    assert "Posted: 10:14 PM UTC" in investigating.body
    assert "Next update: 10:29 PM UTC" in investigating.body  # 15 minutes from now
    assert investigating.unfilled == ()
    assert "[" not in investigating.text
    resolved = fill(
        guideline(runbook, "Resolved"),
        "resolved",
        facts(root_cause="a killed API process"),
        now_wall=T0 + 610,
    )
    assert "Root cause: a killed API process" in resolved.body
    assert "Duration: 11 minutes" in resolved.body  # 610 s, counted up
    monitoring = fill(guideline(runbook, "Monitoring"), "monitoring", facts(), now_wall=T0)
    assert "Next update: 11:13 PM UTC" in monitoring.body  # 1 hour from now


def test_the_brief_explanation_is_the_issue_until_a_cause_is_known(runbook: Runbook) -> None:
    identified = guideline(runbook, "Identified")
    unknown = fill(identified, "identified", facts(), now_wall=T0)
    assert "We've identified the issue: the API process was killed." in unknown.body
    known = fill(identified, "identified", facts(root_cause="a bad release"), now_wall=T0)
    assert "We've identified the issue: a bad release." in known.body


def test_times_follow_the_facts_timezone() -> None:
    template = Template("Investigating", "X\n\nPosted: [Time]", 10)
    filled = fill(template, "investigating", facts(timezone="America/Los_Angeles"), now_wall=T0)
    assert filled.body == "Posted: 2:13 PM PST"


def test_a_placeholder_no_fact_fills_stays_and_is_listed() -> None:
    template = Template(
        "Investigating", "[Feature] Issues\n\nContact [Name] for [impact].\nETA [ETA]", 20
    )
    filled = fill(template, "investigating", facts(), now_wall=T0)
    assert filled.name == "Files API Issues"
    assert filled.body == "Contact [Name] for requests fail (100% of 12 requests).\nETA [ETA]"
    assert filled.unfilled == ("[Name]", "[ETA]")
    assert filled.line_of("[ETA]") == 24  # fence on 20, the text from 21


def test_mojibake_is_found_and_not_repaired(runbook: Runbook) -> None:
    own = templates_for(runbook, "sev-1-api-server-down")["investigating"]
    filled = fill(own, "investigating", facts(), now_wall=T0 + 60)
    assert filled.name == "ðŸ”´ Major Outage - Files API Unavailable"  # as customers read it
    assert filled.mis_encoded == ("ðŸ”´",)
    assert "🔴" not in filled.text
    assert filled.line_of("ðŸ”´") == 127


def test_fixed_times_durations_and_a_foreign_cause_are_stale(runbook: Runbook) -> None:
    own = templates_for(runbook, "sev-1-api-server-down")
    investigating = fill(own["investigating"], "investigating", facts(), now_wall=T0)
    assert investigating.stale == ("10:15 AM PST", "10:30 AM PST")
    assert investigating.line_of("10:15 AM PST") == 132
    resolved = fill(own["resolved"], "resolved", facts(), now_wall=T0)
    assert resolved.stale == (
        "Database connection pool exhaustion",
        "Increased pool size from 20 to 50 connections",
        "23 minutes",
        "10:38 AM PST",
    )
    pool = facts(issue="the database connection pool is exhausted", fix="a bigger pool")
    matching = fill(own["resolved"], "resolved", pool, now_wall=T0)
    assert matching.stale == ("23 minutes", "10:38 AM PST")  # the cause describes this one
    general = fill(guideline(runbook, "Resolved"), "resolved", facts(), now_wall=T0)
    assert general.stale == ()


def test_communicate_posts_at_detection_and_recovery(
    runbook: Runbook, page: StatusPageServer
) -> None:
    with page.client() as client:
        record = communicate(runbook, facts(), client, now_wall=T0 + 900)
    assert [f.stage for f in record.filled] == [
        "investigating",
        "identified",
        "monitoring",
        "resolved",
    ]
    updates = page.updates()
    assert [(u.status, u.impact) for u in updates] == [
        ("investigating", "critical"),
        ("resolved", "critical"),
    ]
    assert updates[0].name == "ðŸ”´ Major Outage - Files API Unavailable"
    assert updates[0].body == record.filled[0].body
    assert record.posted == tuple(updates)
    identified = record.stage("identified")
    assert identified is not None
    assert "Posted: 10:28 PM UTC" in identified.body  # now_wall: not posted, not at detection


def test_updates_are_timed_at_detection_and_recovery(runbook: Runbook) -> None:
    share = facts("sev-3-share-links-not-working", section_title="SEV-3: Share Links Not Working")
    record = communicate(runbook, share, None, now_wall=T0 + 900)
    investigating, resolved = record.stage("investigating"), record.stage("resolved")
    assert investigating is not None
    assert resolved is not None
    assert "Posted: 10:14 PM UTC" in investigating.body  # detected at T0 + 60
    assert "Posted: 10:23 PM UTC" in resolved.body  # recovered at T0 + 610


def test_nothing_is_posted_before_detection(runbook: Runbook, page: StatusPageServer) -> None:
    with page.client() as client:
        record = communicate(
            runbook, facts(detected_wall=None, recovered_wall=None), client, now_wall=T0
        )
    assert page.updates() == []
    assert record.posted == ()
    assert len(record.filled) == 4


def test_findings_one_per_template_and_kind_across_repeats(runbook: Runbook) -> None:
    record = communicate(runbook, facts(), None, now_wall=T0 + 900)
    findings = template_findings(record, record, source="drill:x")
    by = {(f.kind, f.line): f for f in findings}
    assert len(by) == len(findings)  # not one per repeat
    unreadable = by[(UNREADABLE, 127)]
    assert unreadable.level is Level.ERROR
    assert "'ðŸ”´'" in unreadable.message
    assert "'Status Page Update' template (line 126)" in unreadable.message
    assert "'ðŸ”´' -> '🔴'" in unreadable.suggestion
    assert unreadable.section_id == "sev-1-api-server-down"
    stale = by[(STALE, 132)]
    assert stale.level is Level.WARNING
    assert "'10:15 AM PST', '10:30 AM PST'" in stale.message
    guideline_lines = {f.line for f in findings if f.section_id == "status-page-updates"}
    assert guideline_lines == {568, 579}  # Identified, Monitoring: mis-encoded too
    assert not [f for f in findings if f.kind == UNFILLED]


def test_a_placeholder_left_in_a_posted_update_is_an_error() -> None:
    text = (
        "# R\n\n## SEV-2: Uploads\n\n### Symptoms\n- slow\n\n"
        "## Communication Guidelines\n\n**Investigating:**\n```\n"
        "[Feature] Issues\n\nWe're looking at [specific issue] for [Customer].\n```\n"
        "\n**Resolved:**\n```\n[Feature] OK\n\nFixed for [Customer].\n```\n"
    )
    runbook = parse_text(text, Path("small.md"))
    posted = communicate(runbook, facts("sev-2-uploads", recovered_wall=None), None, now_wall=T0)
    [finding] = template_findings(posted)
    assert posted.due_stages == ("investigating",)
    assert (finding.kind, finding.level, finding.line) == (UNFILLED, Level.ERROR, 14)
    assert "'[Customer]'" in finding.message
    assert "investigating" in finding.message
    # the resolved update is not due before recovery: its placeholder is not yet judged
    assert [f.stage for f in posted.filled] == ["investigating", "resolved"]


def test_a_stage_posted_by_hand_is_judged_like_one_posted_at_detection() -> None:
    open_incident = facts(detected_wall=None, recovered_wall=None)
    update = PostedUpdate("i1", "identified", "Files API Issues", "", "none", T0, 0.0)
    assert CommunicationRecord(open_incident, ()).due_stages == ()
    assert CommunicationRecord(open_incident, (), (update,)).due_stages == ("identified",)
