"""Text a reader would trip over: mis-encoded characters, unfilled contact placeholders,
and a Next Review date in the past."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from runbook_checks.findings import Finding, Level
from runbook_checks.runbook.model import Runbook, Section

MIS_ENCODED = "text-mis-encoded"
CONTACT_PLACEHOLDER = "contact-placeholder"
REVIEW_OVERDUE = "review-overdue"
REVIEW_DATE_INVALID = "review-date-invalid"
KINDS = (MIS_ENCODED, CONTACT_PLACEHOLDER, REVIEW_OVERDUE, REVIEW_DATE_INVALID)

# "[Name]" (not a link "[x](url)"), "+1-XXX-ONCALL", "<name>", TBD/TODO, "???", example.com
_PLACEHOLDERS = (
    re.compile(r"\[[^\]\n]{1,40}\](?!\()"),
    re.compile(r"X{3,}"),
    re.compile(r"<[A-Za-z][^<>\n]{0,30}>"),
    re.compile(r"\b(?:TBD|TODO|FIXME|N/A yet)\b"),
    re.compile(r"\?{3,}"),
    re.compile(r"\bexample\.(?:com|org)\b", re.IGNORECASE),
)
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y")


def innermost_section(runbook: Runbook, line: int) -> Section | None:
    best: Section | None = None
    for section in runbook.sections:
        if section.line <= line <= section.end_line and (best is None or section.line > best.line):
            best = section
    return best


def placeholders_in(text: str) -> list[str]:
    found: list[str] = []
    for pattern in _PLACEHOLDERS:
        found += [m.group(0) for m in pattern.finditer(text) if m.group(0) not in found]
    return found


def check_mis_encoded(runbook: Runbook, lines: Sequence[str]) -> list[Finding]:
    """One finding per line with mis-encoded characters; the repaired line as the fix."""
    by_line: dict[int, list[tuple[str, str]]] = {}
    for item in runbook.mis_encoded:
        by_line.setdefault(item.line, []).append((item.text, item.repaired))
    findings: list[Finding] = []
    for line, pairs in sorted(by_line.items()):
        written = lines[line - 1] if 0 < line <= len(lines) else ""
        repaired = written
        for text, fixed in sorted(set(pairs), key=lambda p: -len(p[0])):
            repaired = repaired.replace(text, fixed)
        distinct = list(dict.fromkeys(pairs))
        shown = ", ".join(f"{t!r} for {r!r}" for t, r in distinct)
        section = innermost_section(runbook, line)
        findings.append(
            Finding(
                Level.ERROR,
                MIS_ENCODED,
                section.id if section else "",
                f"mis-encoded characters (UTF-8 read as cp1252 and saved again): {shown}",
                line=line,
                statement=written.strip() or shown,
                suggestion=f"write the line as: {repaired.strip()}",
            )
        )
    return findings


def _contact_sections(runbook: Runbook) -> list[Section]:
    return [s for s in runbook.sections if "contact" in s.title.lower()]


def check_contacts(runbook: Runbook) -> list[Finding]:
    findings: list[Finding] = []
    for section in _contact_sections(runbook):

        def inside(line: int, s: Section = section) -> bool:
            return s.line <= line <= s.end_line

        for table in runbook.tables:
            if not inside(table.line):
                continue
            for row in table.rows:
                holes = [
                    (table.header[i] if i < len(table.header) else f"column {i + 1}", cell)
                    for i, cell in enumerate(row.cells)
                    if placeholders_in(cell)
                ]
                if not holes:
                    continue
                who = row.cells[0] if row.cells else "row"
                columns = ", ".join(f"{col} {cell!r}" for col, cell in holes)
                findings.append(
                    Finding(
                        Level.ERROR,
                        CONTACT_PLACEHOLDER,
                        section.id,
                        f"contact {who!r} is not filled in: {columns}",
                        line=row.line,
                        statement="| " + " | ".join(row.cells) + " |",
                        suggestion=f"write the real name and reachable number for {who} "
                        "(or link the on-call schedule that has them)",
                    )
                )
        for label, value in runbook.metadata.extra.items():
            line = runbook.metadata.lines.get(label, 0)
            holes_text = placeholders_in(value)
            if not line or not inside(line) or not holes_text:
                continue
            findings.append(
                Finding(
                    Level.ERROR,
                    CONTACT_PLACEHOLDER,
                    section.id,
                    f"{label} is a placeholder: {value} ({', '.join(holes_text)})",
                    line=line,
                    statement=f"{label}: {value}",
                    suggestion=f"write the real {label.lower()}",
                )
            )
    return findings


def parse_date(text: str) -> dt.date | None:
    cleaned = text.strip().strip("*_` ").strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    return None


def check_review(runbook: Runbook, today: dt.date) -> list[Finding]:
    value = runbook.metadata.next_review
    if not value:
        return []
    line = runbook.metadata.lines.get("next_review", 0)
    statement = f"Next Review: {value}"
    when = parse_date(value)
    if when is None:
        return [
            Finding(
                Level.WARNING,
                REVIEW_DATE_INVALID,
                "",
                f"Next Review {value!r} is not a date",
                line=line,
                statement=statement,
                suggestion="write it as YYYY-MM-DD",
            )
        ]
    if when >= today:
        return []
    late = (today - when).days
    return [
        Finding(
            Level.ERROR,
            REVIEW_OVERDUE,
            "",
            f"the review was due on {when.isoformat()}, {late} days before today "
            f"({today.isoformat()}): the runbook may describe a system that has changed",
            line=line,
            statement=statement,
            suggestion="review the runbook with its owner, then set Last Updated to today "
            "and Next Review to the next date of the review cycle",
        )
    ]


def check_text(runbook: Runbook, lines: Sequence[str], today: dt.date) -> list[Finding]:
    return [
        *check_mis_encoded(runbook, lines),
        *check_contacts(runbook),
        *check_review(runbook, today),
    ]
