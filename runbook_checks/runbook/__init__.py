"""The runbook as data: `parse_runbook(path)` reads a Markdown runbook into a `Runbook`."""

from runbook_checks.runbook.model import (
    CodeBlock,
    Metadata,
    MisEncoded,
    Option,
    Phase,
    Runbook,
    Section,
    SeverityLevel,
    Step,
    StepKind,
    Table,
    TableRow,
    Template,
)
from runbook_checks.runbook.parser import parse_runbook, parse_text, slugify

__all__ = [
    "CodeBlock",
    "Metadata",
    "MisEncoded",
    "Option",
    "Phase",
    "Runbook",
    "Section",
    "SeverityLevel",
    "Step",
    "StepKind",
    "Table",
    "TableRow",
    "Template",
    "parse_runbook",
    "parse_text",
    "slugify",
]
