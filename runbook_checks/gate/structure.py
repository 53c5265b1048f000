"""Structure, as the runbook's shape asks for it (`Runbook.shape`).

A section whose title names a severity ("## SEV-1: ...") has symptoms, investigation and
mitigation options, and its severity is in the severity table. A scenario-like unit
without one (an alert page's Diagnosis/Mitigation, a troubleshooting entry) is only
asked for what a reader cannot do without: a way out once the diagnosis is done (a
warning). Severity levels are checked against a severity table only where there is one:
without a table, a named severity is an INFO. A runbook without any scenario section is
an error only when it defines severity levels (it was meant to have SEV sections); one
with commands but no problem sections (a procedure, a reference page) is fine, and one
with neither gets a warning: nothing in it can be checked."""

from __future__ import annotations

import re

from runbook_checks.findings import Finding, Level
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
        findings += _no_scenarios(runbook)
    for section in runbook.scenarios:
        if section.severity_source == "title":
            findings += _severity_section(runbook, section)
        else:
            findings += _unit(runbook, section)
    return findings


def _known(runbook: Runbook) -> str:
    return ", ".join(s.level for s in runbook.severities) or "none (no severity table)"


def _at(
    section: Section, kind: str, message: str, suggestion: str, level: Level = Level.ERROR
) -> Finding:
    return Finding(
        level,
        kind,
        section.id,
        message,
        line=section.line,
        statement=section.title,
        suggestion=suggestion,
    )


def _unit(runbook: Runbook, section: Section) -> list[Finding]:
    """A scenario-like unit whose title names no severity (an alert page, a
    troubleshooting entry): a way out is expected once there is a diagnosis."""
    findings: list[Finding] = []
    if section.investigation and not section.options:
        findings.append(
            _at(
                section,
                MISSING_MITIGATION,
                f"{section.title!r} says how to diagnose the problem but not what to do "
                "about it: it has no Mitigation or Resolution part",
                f"under {section.title!r} add a 'Mitigation' heading with the commands that "
                "recover",
                Level.WARNING,
            )
        )
    if section.severity and runbook.severities and not runbook.severity(section.severity):
        known = _known(runbook)
        findings.append(
            _at(
                section,
                UNKNOWN_SEVERITY,
                f"the page's severity {section.severity!r} is not a level of the severity "
                f"table (it has: {known})",
                f"use one of: {known}",
                Level.WARNING,
            )
        )
    return findings


def _severity_section(runbook: Runbook, section: Section) -> list[Finding]:
    """A section whose title names a severity: symptoms, investigation, options, and a
    severity the table defines."""
    findings: list[Finding] = []
    heading = f"## {section.title}"
    if not section.symptoms:
        findings.append(
            _at(
                section,
                MISSING_SYMPTOMS,
                f"{section.title!r} lists no symptoms: the on-call engineer cannot tell "
                "whether this section applies",
                f"under {heading!r} add '### Symptoms' with a bullet per observable sign",
            )
        )
    if not section.investigation:
        where = (
            "its Investigation heading holds no command"
            if _has_heading(section, "investigat", "diagnos")
            else "it has no Investigation part"
        )
        findings.append(
            _at(
                section,
                MISSING_INVESTIGATION,
                f"{section.title!r} has no investigation steps: {where}",
                "add '### Investigation' with the commands that confirm the failure",
            )
        )
    if not section.options:
        where = (
            "its Mitigation heading holds no option"
            if _has_heading(section, "mitigat", "fix", "cause", "resolution")
            else "it has no Mitigation part"
        )
        findings.append(
            _at(
                section,
                MISSING_MITIGATION,
                f"{section.title!r} has no mitigation options: {where}",
                "add '### Mitigation' with '**Option A: ...**' and the commands that recover",
            )
        )
    if section.severity and runbook.severity(section.severity) is None:
        known = _known(runbook)
        findings.append(
            _at(
                section,
                UNKNOWN_SEVERITY,
                f"{section.title!r} names severity {section.severity}, which the severity "
                f"table does not define (it has: {known})",
                f"add a {section.severity} row to the severity table, or use one of: {known}",
                # without a table there is nothing it could contradict
                Level.ERROR if runbook.severities else Level.INFO,
            )
        )
    return findings


def _no_scenarios(runbook: Runbook) -> list[Finding]:
    """No scenario section: an error where severity levels are defined (the runbook was
    meant to have SEV sections), a warning where there is no command either."""
    if runbook.severities:
        message = (
            "no scenario section: the runbook defines severity levels, but no heading "
            "names one ('## SEV-1: <failure>') and none has Symptoms/Diagnosis/Mitigation parts"
        )
        level = Level.ERROR
    elif not any(s.blocks for s in runbook.sections):
        message = (
            f"nothing to check: no section describes a problem (Symptoms, Diagnosis, "
            f"Mitigation) and no code block holds a command (read as a {runbook.shape} page)"
        )
        level = Level.WARNING
    else:
        return []  # a procedure or a reference page: its commands are checked as they are
    return [
        Finding(
            level,
            NO_SCENARIOS,
            "",
            message,
            line=1,
            statement=runbook.title,
            suggestion="write one section per documented failure, with its symptoms, the "
            "commands that confirm it and those that recover ('## SEV-N: <failure>' where "
            "the runbook has severity levels)",
        )
    ]


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
