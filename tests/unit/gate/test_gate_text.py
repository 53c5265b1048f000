"""Text: mis-encoded characters, contact placeholders, the Next Review date (fake clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from gate_samples import SCENARIO, SEVERITIES

from runbook_checks.findings import Level
from runbook_checks.gate import text
from runbook_checks.runbook import Runbook, parse_runbook
from runbook_checks.runbook.source import read_source

MakeRunbook = Callable[..., Runbook]

CONTACTS = """\
## Emergency Contacts

| Role | Primary | Secondary |
|------|---------|-----------|
| On-Call Engineer | [Name] | Alice (+1-555-0100) |
| CTO | Carol | - |

**Emergency Phone**: `+1-XXX-ONCALL`
**Emergency Email**: `oncall@example.net`
"""


def lines_of(runbook: Runbook) -> list[str]:
    return read_source(runbook.path).lines


def test_one_finding_per_mis_encoded_line_with_the_repaired_text(
    make_runbook: MakeRunbook,
) -> None:
    garbled = "```\n1. DETECT â†’ 2. TRIAGE â†’ 3. FIX\n```\n\n- â¬œ Write the report\n"
    runbook = make_runbook(SEVERITIES, "## Process\n\n" + garbled, SCENARIO)
    found = text.check_mis_encoded(runbook, lines_of(runbook))
    assert [f.kind for f in found] == [text.MIS_ENCODED, text.MIS_ENCODED]
    first, second = found
    assert first.line == lines_of(runbook).index("1. DETECT â†’ 2. TRIAGE â†’ 3. FIX") + 1
    assert first.suggestion == "write the line as: 1. DETECT → 2. TRIAGE → 3. FIX"
    assert first.statement == "1. DETECT â†’ 2. TRIAGE â†’ 3. FIX"
    assert first.section_id == "process"
    assert "⬜ Write the report" in second.suggestion


def test_clean_text_has_no_finding(make_runbook: MakeRunbook) -> None:
    runbook = make_runbook()
    assert text.check_mis_encoded(runbook, lines_of(runbook)) == []


def test_contact_placeholders_per_row_and_per_line(make_runbook: MakeRunbook) -> None:
    runbook = make_runbook(SEVERITIES, SCENARIO, CONTACTS)
    found = text.check_contacts(runbook)
    assert [f.kind for f in found] == [text.CONTACT_PLACEHOLDER] * 2
    row, phone = found
    assert "On-Call Engineer" in row.message
    assert "'[Name]'" in row.message
    assert row.statement.startswith("| On-Call Engineer | [Name]")
    assert lines_of(runbook)[row.line - 1].startswith("| On-Call Engineer")
    assert phone.statement == "Emergency Phone: `+1-XXX-ONCALL`"
    assert all(f.level is Level.ERROR and f.section_id == "emergency-contacts" for f in found)


def test_filled_contacts_and_links_are_fine(make_runbook: MakeRunbook) -> None:
    filled = CONTACTS.replace("[Name]", "[Bob](https://people/bob)").replace("XXX", "555")
    assert text.check_contacts(make_runbook(SEVERITIES, SCENARIO, filled)) == []


def test_placeholders_outside_contacts_are_not_contact_findings(
    make_runbook: MakeRunbook,
) -> None:
    template = "## Status Updates\n\n```\nPosted: [Time]\nNext update: [30 minutes from now]\n```\n"
    assert text.check_contacts(make_runbook(SEVERITIES, SCENARIO, template)) == []


def test_review_overdue_from_the_injected_date(make_runbook: MakeRunbook) -> None:
    runbook = make_runbook()  # Next Review: 2030-04-15
    assert text.check_review(runbook, dt.date(2030, 4, 15)) == []
    (late,) = text.check_review(runbook, dt.date(2030, 4, 25))
    assert late.kind == text.REVIEW_OVERDUE
    assert late.statement == "Next Review: 2030-04-15"
    assert "10 days" in late.message
    assert lines_of(runbook)[late.line - 1] == "**Next Review**: 2030-04-15"


def test_a_review_date_that_is_not_a_date(make_runbook: MakeRunbook) -> None:
    path = make_runbook().path
    path.write_text(path.read_text().replace("2030-04-15", "next spring"))
    (finding,) = text.check_review(parse_runbook(path), dt.date(2030, 1, 1))
    assert finding.kind == text.REVIEW_DATE_INVALID
    assert finding.level is Level.WARNING


def test_dates_in_templates_are_not_checked(make_runbook: MakeRunbook) -> None:
    template = "## Post-Mortem Template\n\n```markdown\n- **Date**: 2001-01-01\n```\n"
    runbook = make_runbook(SEVERITIES, SCENARIO, template)
    assert text.check_text(runbook, lines_of(runbook), dt.date(2029, 1, 1)) == []


def test_date_formats() -> None:
    assert text.parse_date("2024-04-15") == dt.date(2024, 4, 15)
    assert text.parse_date("April 15, 2024") == dt.date(2024, 4, 15)
    assert text.parse_date("15 Apr 2024") == dt.date(2024, 4, 15)
    assert text.parse_date("soon") is None
