"""junit.xml: one testcase per scenario, so any CI shows the drills.

A passed drill is a passing testcase; a runbook defect the reviewed baseline already
acknowledges (pytest xfailed it) is skipped with that reason; any other verdict is a
failure (runbook wrong, data lost) or an error (the drill could not run) whose text
carries the findings.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from runbook_checks.drill.result import Verdict
from runbook_checks.evidence.journal import Journal, ScenarioRecord


def _findings_text(record: ScenarioRecord) -> str:
    r = record.result
    lines = [f"{r.section_title} / option {r.option or '-'}: {r.summary_line()}"]
    if r.error:
        lines.append(f"error: {r.error}")
    for finding in r.findings:
        lines.append(finding.headline())
        if finding.suggestion:
            lines.append(f"    fix: {finding.suggestion}")
        if finding.evidence:
            lines.append("    evidence: " + finding.evidence[:400].replace("\n", "\n    "))
    return "\n".join(lines)


def _duration(record: ScenarioRecord) -> float:
    r = record.result
    ends = [e.at_s for e in r.events] + [s.at_s for s in r.samples]
    return max([0.0, *ends])


def junit_xml(journal: Journal) -> str:
    records = journal.scenarios
    failures = sum(1 for r in records if _kind(r) == "failure")
    errors = sum(1 for r in records if _kind(r) == "error")
    skipped = sum(1 for r in records if _kind(r) == "skipped")
    suites = ET.Element("testsuites", name="runbook-checks")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"runbook-checks {journal.kind}",
        tests=str(len(records)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{sum(_duration(r) for r in records):.3f}",
        timestamp=journal.created.strftime("%Y-%m-%dT%H:%M:%S"),
        id=journal.id,
    )
    props = ET.SubElement(suite, "properties")
    env = journal.environment
    for name, value in (
        ("backend", env.backend),
        ("tool_version", env.tool_version),
        ("project_commit", env.project_commit),
        ("runbook", env.runbook.path),
        ("runbook_sha256", env.runbook.sha256),
        ("runbook_commit", env.runbook.commit),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for record in records:
        r = record.result
        case = ET.SubElement(
            suite,
            "testcase",
            classname=r.section_title or r.section_id,
            name=r.scenario,
            time=f"{_duration(record):.3f}",
        )
        kind = _kind(record)
        text = _findings_text(record)
        headline = (
            r.error or (r.runbook_errors[0].message if r.runbook_errors else "") or r.verdict.value
        )
        if kind == "skipped":
            ET.SubElement(
                case,
                "skipped",
                message=record.outcome_reason or "runbook defect acknowledged in the baseline",
            ).text = text
        elif kind in ("failure", "error"):
            ET.SubElement(case, kind, message=headline[:300], type=r.verdict.value).text = text
        ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _kind(record: ScenarioRecord) -> str:
    verdict = record.result.verdict
    if verdict.earned:
        return "passed"
    if record.outcome == "xfailed":
        return "skipped"
    if verdict is Verdict.ERROR:
        return "error"
    return "failure"
