"""Structure: each scenario section has symptoms, investigation and mitigation options,
and the severity its title names is in the severity table."""

from __future__ import annotations

import re

from runbook_checks.gate.findings import Finding, Level
from runbook_checks.runbook.model import Runbook, Section

MISSING_SYMPTOMS = "structure-missing-symptoms"
MISSING_INVESTIGATION = "structure-missing-investigation"
MISSING_MITIGATION = "structure-missing-mitigation"
UNKNOWN_SEVERITY = "structure-unknown-severity"
NO_SCENARIOS = "structure-no-scenarios"
UNCLOSED = "structure-unclosed"  # a fence or a quote that swallows what follows
SOURCE = "structure-source"  # how the file was read: encoding, BOM, front matter ...
KINDS = (
    MISSING_SYMPTOMS,
    MISSING_INVESTIGATION,
    MISSING_MITIGATION,
    UNKNOWN_SEVERITY,
    NO_SCENARIOS,
    UNCLOSED,
    SOURCE,
)
# the parser's warnings read "<path>:<line>: <what> ..."
_WARNING = re.compile(r"^(?P<path>.*?):(?P<line>\d+): (?P<message>.*)$", re.DOTALL)


def _has_heading(section: Section, *words: str) -> bool:
    return any(w in title.lower() for title in section.subsections for w in words)


def check_structure(runbook: Runbook) -> list[Finding]:
    findings: list[Finding] = []
    if not runbook.scenarios:
        findings.append(
            Finding(
                Level.ERROR,
                NO_SCENARIOS,
                "",
                "no scenario section: no heading names a severity ('## SEV-1: <failure>')",
                line=1,
                statement=runbook.title,
                suggestion="write one '## SEV-N: <failure>' section per documented failure",
            )
        )
    known = ", ".join(s.level for s in runbook.severities) or "none (no severity table)"
    for section in runbook.scenarios:
        heading = f"## {section.title}"

        def add(kind: str, message: str, suggestion: str, s: Section = section) -> None:
            findings.append(
                Finding(
                    Level.ERROR,
                    kind,
                    s.id,
                    message,
                    line=s.line,
                    statement=s.title,
                    suggestion=suggestion,
                )
            )

        if not section.symptoms:
            add(
                MISSING_SYMPTOMS,
                f"{section.title!r} lists no symptoms: the on-call engineer cannot tell "
                "whether this section applies",
                f"under {heading!r} add '### Symptoms' with a bullet per observable sign",
            )
        if not section.investigation:
            where = (
                "its Investigation heading holds no command"
                if _has_heading(section, "investigat", "diagnos")
                else "it has no Investigation part"
            )
            add(
                MISSING_INVESTIGATION,
                f"{section.title!r} has no investigation steps: {where}",
                "add '### Investigation' with the commands that confirm the failure",
            )
        if not section.options:
            where = (
                "its Mitigation heading holds no option"
                if _has_heading(section, "mitigat", "fix", "cause", "resolution")
                else "it has no Mitigation part"
            )
            add(
                MISSING_MITIGATION,
                f"{section.title!r} has no mitigation options: {where}",
                "add '### Mitigation' with '**Option A: ...**' and the commands that recover",
            )
        if section.severity and runbook.severity(section.severity) is None:
            add(
                UNKNOWN_SEVERITY,
                f"{section.title!r} names severity {section.severity}, which the severity "
                f"table does not define (it has: {known})",
                f"add a {section.severity} row to the severity table, or use one of: {known}",
            )
    return findings


def check_parse_warnings(runbook: Runbook) -> list[Finding]:
    """What the parser noticed while reading the file, each at its line: an unclosed code
    fence or quote (everything after it is read as code: an error), and oddities of the
    source (encoding, byte-order mark, front matter, code before the first heading)."""
    findings: list[Finding] = []
    for warning in runbook.warnings:
        match = _WARNING.match(warning)
        line = int(match["line"]) if match else 1
        message = match["message"] if match else warning
        if message.startswith("mis-encoded characters"):
            continue  # the text check reports these, one finding per line
        unclosed = "never closed" in message
        section = next((s.id for s in reversed(runbook.sections) if s.line <= line), "")
        findings.append(
            Finding(
                Level.ERROR if unclosed else Level.WARNING,
                UNCLOSED if unclosed else SOURCE,
                section,
                message,
                line=line,
                statement=message.split(";")[0].split(".")[0],
                suggestion="close it where the code ends (the message says which line)"
                if unclosed
                else "fix the file at this line so that it reads as intended",
            )
        )
    return findings
