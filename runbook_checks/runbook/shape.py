"""How a runbook is organised, and the severity a page gives itself.

Runbooks come in a few common shapes, and what a reader (or the gate) may expect of one
depends on it: a "## SEV-1: ..." section should list symptoms, investigation and
mitigation, while an alert page describes one alert and a procedure is a list of steps.

- SEVERITY_SECTIONS: scenario sections whose titles name a severity ("SEV-1: Database
  Failure", "P2 - Slow refunds"), usually defined by a severity table.
- ALERT: one alert per page or per section (Overview/Meaning/Impact, Diagnosis,
  Mitigation), as alerting runbooks are written.
- TROUBLESHOOTING: sections that each describe a problem (Symptoms, Troubleshooting/
  Investigation, Resolution/Mitigation), without severities in their titles.
- PROCEDURE: numbered steps with commands ("1. Stop the app", "2. Restore ..."), no
  problem sections.
- REFERENCE: anything else (commands under plain headings, or none).

A page's own severity (`page_severity`) is `severity: critical` in its front matter, a
"**Severity**: warning" line, or a field table's "Severity | warning" row; it applies to
the page's scenario-like units that name none.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence

from runbook_checks.runbook.model import Section, Table
from runbook_checks.runbook.severity import is_severity_table, plain


class Shape(enum.StrEnum):
    SEVERITY_SECTIONS = "severity-sections"
    ALERT = "alert"
    TROUBLESHOOTING = "troubleshooting"
    PROCEDURE = "procedure"
    REFERENCE = "reference"


# the headings an alert page describes its alert under
_ALERT_PARTS = re.compile(
    r"^(?:overview|meaning|impact|summary|description|alert(?: details| description)?"
    r"|about this alert|what (?:this|the) alert means)$",
    re.IGNORECASE,
)
_TROUBLESHOOTING = re.compile(r"troubleshoot", re.IGNORECASE)
_SEVERITY_KEY = re.compile(r"^severity$", re.IGNORECASE)


def detect(sections: Sequence[Section], numbered_blocks: int, blocks: int) -> Shape:
    """The shape of a runbook from its sections, and how many of its `blocks` of code
    stand in numbered list items."""
    if any(s.severity_source == "title" for s in sections):
        return Shape.SEVERITY_SECTIONS
    units = [s for s in sections if s.unit]
    if any(_ALERT_PARTS.match(plain(title).rstrip(":")) for u in units for title in u.subsections):
        return Shape.ALERT
    if units or any(_TROUBLESHOOTING.search(s.title) for s in sections):
        return Shape.TROUBLESHOOTING
    if numbered_blocks >= 2 and numbered_blocks * 2 >= blocks:
        return Shape.PROCEDURE
    return Shape.REFERENCE


def page_severity(
    front_matter: Iterable[tuple[str, str, int]], tables: Iterable[Table]
) -> tuple[str, int] | None:
    """The page's own severity and its line: from the front matter's `severity` key, else
    from a field table (a "Severity" row of a two-column table, or a one-row table with
    a "Severity" column that is not the severity levels' definition)."""
    for key, value, line in front_matter:
        if _SEVERITY_KEY.match(key.strip()) and value.strip():
            return value.strip().strip("'\""), line
    for table in tables:
        if is_severity_table(table):
            continue  # the levels' definitions, not this page's level
        found = _from_table(table)
        if found is not None:
            return found
    return None


def _from_table(table: Table) -> tuple[str, int] | None:
    header = [plain(cell) for cell in table.header]
    if len(header) == 2:
        if _SEVERITY_KEY.match(header[0]) and header[1]:
            return header[1], table.line
        for row in table.rows:
            cells = [plain(cell) for cell in row.cells]
            if len(cells) == 2 and _SEVERITY_KEY.match(cells[0]) and cells[1]:
                return cells[1], row.line
    column = next((i for i, cell in enumerate(header) if _SEVERITY_KEY.match(cell)), None)
    if column is not None and len(table.rows) == 1 and column < len(table.rows[0].cells):
        value = plain(table.rows[0].cells[column])
        if value:
            return value, table.rows[0].line
    return None
