"""Severity levels: the table that defines them, and the names headings use.

The severity table is the one whose header has a level column ("Level", "Severity",
"Priority") and a response-time column. Its rows give the spelling every heading's
severity is normalised to: with "**SEV-1 (Critical)**" in the table, the headings
"SEV-1: ...", "SEV 1 - ...", "Sev1 ..." and "Severity 1 ..." all have severity "SEV-1".
Without a table, "SEV-n" and "Pn" are recognised and spelt that way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from runbook_checks.runbook.model import SeverityLevel, Table

# "SEV-1", "SEV 2", "Sev1", "sev_3", "Severity 1", "Severity-2"
_SEV = re.compile(r"(?<![\w-])sev(?:erity)?[\s_-]?(\d{1,2})(?![\w])", re.IGNORECASE)
# "P0", "P1" (a priority level, as PagerDuty and Opsgenie spell it)
_PRIORITY = re.compile(r"(?<![\w-])P([0-5])(?![\w-])")
_LEVEL_CELL = re.compile(
    r"^(?P<level>[^\s(:\u2013\u2014-]+(?:[\s_-]?\d+)?)"  # "SEV-1", "P1", "Critical", "SEV 1"
    r"\s*(?:\((?P<paren>[^)]*)\)|[:\u2013\u2014-]\s*(?P<dash>.+))?\s*$"
)
_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}
_DURATION = re.compile(
    r"(?P<low>\d+(?:\.\d+)?)(?:\s*(?:-|\u2013|to)\s*(?P<high>\d+(?:\.\d+)?))?\s*"
    r"(?P<unit>[a-z]+)\b",
    re.IGNORECASE,
)
_WORDS = {"an": 1.0, "a": 1.0, "one": 1.0, "two": 2.0, "half an": 0.5}
_WORD_DURATION = re.compile(r"\b(?P<n>an|a|one|two|half an)\s+(?P<unit>[a-z]+)\b", re.IGNORECASE)


def plain(cell: str) -> str:
    """Markdown emphasis and code marks removed: "**SEV-1 (Critical)**" -> "SEV-1 (Critical)"."""
    return re.sub(r"(\*\*|__|\*|`)", "", cell).strip()


def key(name: str) -> str:
    """Comparison key of a severity name: "SEV-1", "Sev 1", "severity1" -> "sev1"."""
    lowered = re.sub(r"[^a-z0-9]", "", plain(name).lower())
    return re.sub(r"^severity(?=\d)", "sev", lowered)


def response_seconds(text: str) -> float | None:
    """ "15 minutes" -> 900.0, "1 hour" -> 3600.0, "1-2 hours" -> 7200.0 (the upper
    bound: the budget), "Next business day" -> None (not a duration)."""
    cleaned = plain(text)
    match = _DURATION.search(cleaned)
    if match and match.group("unit").lower() in _UNITS:
        amount = float(match.group("high") or match.group("low"))
        return amount * _UNITS[match.group("unit").lower()]
    word = _WORD_DURATION.search(cleaned)
    if word and word.group("unit").lower() in _UNITS:
        return _WORDS[word.group("n").lower()] * _UNITS[word.group("unit").lower()]
    return None


def _column(header: Sequence[str], *names: str) -> int | None:
    for index, cell in enumerate(header):
        lowered = plain(cell).lower()
        if any(name in lowered for name in names):
            return index
    return None


def is_severity_table(table: Table) -> bool:
    header = table.header
    return (
        _column(header, "level", "severity", "priority", "sev") is not None
        and _column(header, "response") is not None
    )


def levels_from(table: Table) -> tuple[SeverityLevel, ...]:
    """The rows of a severity table as `SeverityLevel`s."""
    header = table.header
    level_col = _column(header, "level", "severity", "priority", "sev")
    response_col = _column(header, "response")
    if level_col is None or response_col is None:
        return ()
    label_col = _column(header, "label", "name")
    impact_col = _column(header, "impact", "description", "definition")
    examples_col = _column(header, "example")

    def cell(cells: Sequence[str], index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    levels: list[SeverityLevel] = []
    for row in table.rows:
        level_text = plain(cell(row.cells, level_col))
        if not level_text:
            continue
        match = _LEVEL_CELL.match(level_text)
        if match:
            level = match.group("level").strip()
            label = (match.group("paren") or match.group("dash") or "").strip()
        else:
            level, label = level_text, ""
        if not label:
            label = plain(cell(row.cells, label_col))
        response = plain(cell(row.cells, response_col))
        levels.append(
            SeverityLevel(
                level=level,
                label=label,
                impact=plain(cell(row.cells, impact_col)),
                response_time=response,
                response_seconds=response_seconds(response),
                examples=plain(cell(row.cells, examples_col)),
                line=row.line,
            )
        )
    return tuple(levels)


def severity_in(title: str, levels: Iterable[SeverityLevel]) -> str | None:
    """The severity a heading names, spelt as the table spells it; None when none."""
    known = {key(level.level): level.level for level in levels}
    text = plain(title)
    match = _SEV.search(text)
    if match:
        wanted = f"sev{int(match.group(1))}"
        return known.get(wanted, f"SEV-{int(match.group(1))}")
    match = _PRIORITY.search(text)
    if match:
        wanted = f"p{match.group(1)}"
        return known.get(wanted, f"P{match.group(1)}")
    for level_key, spelling in known.items():
        if level_key.startswith(("sev", "p")) and level_key[-1].isdigit():
            continue  # handled above, whatever the spelling
        if re.search(rf"(?<![\w-]){re.escape(spelling)}(?![\w-])", text, re.IGNORECASE):
            return spelling
    return None
