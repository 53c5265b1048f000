"""The runbook's update cadence and escalation rules, and the reminders they give."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_checks.monitor.cadence import (
    CommunicationRules,
    due_reminders,
    parse_rules,
    rules_for,
)
from runbook_checks.runbook.model import Runbook, Template
from runbook_checks.runbook.parser import parse_runbook, parse_text

RUNBOOK = Path(__file__).resolve().parents[3] / "runbooks" / "files-incident-response.md"

SMALL = """# Runbook

## Process
- Post status page update
- Update the incident channel every 20 minutes

```
not prose: update the channel every 5 minutes
```

## Escalation
### When to Escalate
- Incident lasting longer than 45 minutes
- More than 25% of requests failing
- Unable to identify root cause
- Legal asks for it

### Level 1
- Can escalate every 10 hours if needed
"""


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return parse_runbook(RUNBOOK)


def test_a_small_text_gives_its_cadence_and_escalation_rules_with_lines() -> None:
    rules = parse_rules(SMALL)
    [cadence] = rules.cadences
    assert (cadence.interval_s, cadence.line, cadence.every) == (1200.0, 5, "20 minutes")
    assert cadence.text == "Update the incident channel every 20 minutes"
    assert [(r.kind, r.line, r.threshold) for r in rules.escalations] == [
        ("duration", 13, 2700.0),
        ("affected-share", 14, 0.25),
        ("root-cause-unknown", 15, None),
        ("judgement", 16, None),
    ]
    assert rules.escalations[0].text == "Incident lasting longer than 45 minutes"


def test_the_shipped_runbook_says_every_30_minutes_and_when_to_escalate(
    runbook: Runbook,
) -> None:
    rules = rules_for(runbook, "sev-3-share-links-not-working")
    [cadence] = rules.cadences
    assert (cadence.interval_s, cadence.line) == (1800.0, 42)
    assert [(r.kind, r.line, r.text) for r in rules.escalations] == [
        ("duration", 544, "Incident duration > 1 hour"),
        ("root-cause-unknown", 545, "Unable to identify root cause"),
        ("judgement", 546, "Requires architectural changes"),
        ("affected-share", 547, "Affects > 50% of users"),
    ]
    assert not rules.empty
    assert [(p.stage, p.after_s, p.line) for p in rules.next_updates] == [
        ("investigating", 900.0, 563),
        ("identified", 1800.0, 574),
        ("monitoring", 3600.0, 584),
    ]


def test_two_literal_clock_times_promise_their_difference(runbook: Runbook) -> None:
    rules = rules_for(runbook, "sev-1-api-server-down")
    own = rules.next_updates[0]
    assert (own.stage, own.template_title, own.after_s, own.line) == (
        "investigating",
        "Status Page Update",
        900.0,  # Posted: 10:15 AM PST, Next update: 10:30 AM PST
        133,
    )
    midnight = Template("Update", "X\nPosted: 11:50 PM\nNext update: 12:10 AM", 1)
    assert parse_rules("", {"investigating": midnight}).next_updates[0].after_s == 1200.0
    noon = Template("Update", "X\nPosted: 12:50 PM\nNext update: 1:05 PM", 1)
    assert parse_rules("", {"investigating": noon}).next_updates[0].after_s == 900.0


def test_a_runbook_without_rules_has_empty_rules() -> None:
    runbook = parse_text("# R\n\n## SEV-2: Slow\n\n- slow\n", Path("bare.md"))
    rules = rules_for(runbook, "sev-2-slow", text="# R\n\n## SEV-2: Slow\n\n- slow\n")
    assert rules == CommunicationRules()
    assert rules.empty
    assert due_reminders(rules, 10_000.0, affected_share=1.0) == []


def test_cadence_reminders_come_once_per_due_time() -> None:
    rules = parse_rules(SMALL)
    assert [r.key for r in due_reminders(rules, 1199.0) if r.kind == "update"] == []
    due = [r for r in due_reminders(rules, 2500.0, root_cause_known=True) if r.kind == "update"]
    assert [(r.key, r.due_s) for r in due] == [("update:5:1", 1200.0), ("update:5:2", 2400.0)]
    assert due[0].message.startswith("update due: the runbook says every 20 minutes (line 5")


def test_escalation_reminders_by_duration_share_and_an_unknown_cause() -> None:
    rules = parse_rules(SMALL)
    early = due_reminders(rules, 600.0, affected_share=0.2)
    assert [r for r in early if r.kind == "escalate"] == []
    share = due_reminders(rules, 600.0, affected_share=0.3)
    [affected] = [r for r in share if r.kind == "escalate"]
    assert (affected.key, affected.line) == ("escalate:14", 14)
    assert "30% are affected" in affected.message
    late = due_reminders(rules, 2700.0)
    assert [r.key for r in late if r.kind == "escalate"] == ["escalate:15", "escalate:13"]
    assert "the runbook says to escalate when" in late[-1].message
    known = due_reminders(rules, 2700.0, root_cause_known=True)
    assert [r.key for r in known if r.kind == "escalate"] == ["escalate:13"]


def test_a_status_update_promise_is_due_unless_a_later_update_came_in_time(
    runbook: Runbook,
) -> None:
    rules = rules_for(runbook, "sev-3-share-links-not-working")
    kept = due_reminders(rules, 1000.0, posts=[("investigating", 60.0), ("identified", 900.0)])
    assert [r for r in kept if r.kind == "status-page"] == []
    [broken] = [
        r
        for r in due_reminders(rules, 1000.0, posts=[("investigating", 60.0)])
        if r.kind == "status-page"
    ]
    assert (broken.due_s, broken.line) == (960.0, 563)
    assert "posted at T+1m00s promised the next by T+16m00s" in broken.message
    final = Template("Resolved", "X\nNext update: [1 hour from now]", 1)
    after_resolution = parse_rules("", {"resolved": final})
    assert after_resolution.next_updates  # promised, but nothing follows a resolution
    assert due_reminders(after_resolution, 10_000.0, posts=[("resolved", 60.0)]) == []
