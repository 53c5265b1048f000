"""report.md: the bundle's report in Markdown (for review documents and tickets), with a
post-mortem draft for every failed or slow scenario.

The Markdown is `templates/report.md` and the section templates it includes (as
report.html's); this module computes what they print. `md_table` serves pages still
assembled as lines (review_report.py's tables)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runbook_checks.drill.result import DrillResult
from runbook_checks.evidence import postmortem
from runbook_checks.evidence.coverage import CoverageRow
from runbook_checks.evidence.incident_html import alert_cell
from runbook_checks.evidence.journal import Journal, ScenarioRecord
from runbook_checks.evidence.templating import render
from runbook_checks.evidence.text import (
    VERDICT_LABEL,
    lost,
    one_line,
    scenario_name,
    seconds,
    share,
    short_commit,
    sorted_findings,
)
from runbook_checks.monitor.triage import Score, matrix
from runbook_checks.runbook.model import Runbook


def cell(text: object) -> str:
    return one_line(str(text), 200).replace("|", "\\|") or "-"


def md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in md_rows(rows)]
    return out


def demote(markdown: str, levels: int) -> str:
    """Headings pushed `levels` deeper, so a draft nests under a report heading."""
    out = []
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("#"):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)


# report.md is templates/report.md (one included template per section, as report.html);
# what follows computes what they print: table cells already made Markdown-safe
# (`cell`), the lines of a quoted status update, a draft's demoted headings.

Rows = list[list[str]]


def md_rows(rows: Iterable[Sequence[object]]) -> Rows:
    """Table rows as the templates' `table` macro prints them: each value one line, `|`
    escaped, "-" when empty."""
    return [[cell(c) for c in row] for row in rows]


@dataclass(frozen=True)
class UpdateMd:
    """A posted status update, quoted."""

    stage: str
    template: str  # repr'd, as the text names it
    line: str
    quote: tuple[str, ...]  # its name and body as quoted lines ("> ..." or ">")


@dataclass(frozen=True)
class ScenarioMd:
    name: str
    verdict: str
    result: DrillResult
    events: Rows
    steps: Rows
    failed_samples: int
    alert_line: str  # "" when the drill had no incident watch
    triage: Rows  # the drilled section's own symptoms
    updates: tuple[UpdateMd, ...]
    severity_line: str


def _quoted(text: object) -> tuple[str, ...]:
    return tuple(f"> {line}" if line else ">" for line in str(text).splitlines())


def _alert_line(r: DrillResult) -> str:
    alerting = r.alerting
    if alerting is None:
        return ""
    if not alerting.measured:
        return f"Alerts: {alerting.note}."
    fired = "; ".join(
        f"`{a.alertname}` at {seconds(a.fired_s)} -> {a.section_id or 'no section'}"
        for a in alerting.alerts
    )
    still = alerting.still_firing
    return (
        f"Time to alert: {alert_cell(r)} ({alerting.rules}); fired: {fired or 'nothing'}"
        + (f"; still firing after recovery: {', '.join(still)}" if still else "")
        + "."
    )


def _severity_line(r: DrillResult) -> str:
    if not r.impact:
        return ""
    return (
        f"Severity: written {r.impact.get('written') or '-'}, measured "
        f"{r.impact.get('measured') or '-'} ({r.impact.get('why', '')}); impact: "
        f"{r.impact.get('description', '')}."
    )


def scenario_md(record: ScenarioRecord) -> ScenarioMd:
    r = record.result
    observed = {True: "seen", False: "not seen", None: "not measured"}
    return ScenarioMd(
        name=scenario_name(r),
        verdict=VERDICT_LABEL[r.verdict],
        result=r,
        events=md_rows((f"{e.at_s:+.2f}s", e.name, e.detail) for e in r.events),
        steps=md_rows(
            (
                s.line or "-",
                s.phase,
                s.by.value,
                f"`{one_line(s.written, 80)}`",
                f"`{one_line(s.executed, 80)}`" if s.executed else "-",
                s.status,
                f"{s.started_s:+.2f}s",
                f"{s.duration_s:.2f}s",
                s.detail,
            )
            for s in r.steps
        ),
        failed_samples=sum(1 for s in r.samples if not s.ok),
        alert_line=_alert_line(r),
        triage=md_rows(
            (o.line, o.symptom, o.kind, observed[o.observed], o.detail)
            for o in r.triage
            if o.section_id == r.section_id
        ),
        updates=tuple(
            UpdateMd(
                str(u.get("stage")),
                repr(u.get("template")),
                str(u.get("line")),
                (*_quoted(u.get("name")), ">", *_quoted(u.get("body"))),
            )
            for u in r.communication
            if u.get("posted")
        ),
        severity_line=_severity_line(r),
    )


def triage_rows(records: Sequence[ScenarioRecord]) -> tuple[list[str], Rows]:
    """The triage matrix (drill x section: observed / measurable), the drilled section's
    own cell in bold; no columns when no drill measured symptoms."""
    rows = {r.result.scenario: r.result.triage for r in records if r.result.triage}
    if not rows:
        return [], []
    columns, table = matrix(rows)
    return ["drill", *columns], md_rows(
        (
            scenario_name(r.result),
            *(
                (f"**{text}**" if c == r.result.section_id else text)
                for c in columns
                for text in [table[r.result.scenario].get(c, Score(0, 0, 0)).text()]
            ),
        )
        for r in records
        if r.result.scenario in table
    )


def report_md(
    journal: Journal, coverage_rows: Sequence[CoverageRow], runbook: Runbook | None
) -> str:
    env = journal.environment
    records = journal.scenarios
    triage_header, triage = triage_rows(records)
    text = render(
        "report.md",
        kind="Game day" if journal.kind == "gameday" else "Runbook drills",
        journal=journal,
        env=env,
        created=f"{journal.created:%Y-%m-%d %H:%M:%S}",
        commit=short_commit(env.runbook.commit),
        project_commit=short_commit(env.project_commit),
        summary=md_rows(
            (
                scenario_name(r.result),
                r.result.fault,
                VERDICT_LABEL[r.result.verdict] + (f" ({r.outcome})" if r.outcome else ""),
                alert_cell(r.result),
                seconds(r.result.time_to_detect_s),
                seconds(r.result.time_to_recover_s),
                seconds(r.result.budget_s),
                share(r.result.time_to_recover_s, r.result.budget_s),
                lost(r.result),
                len(r.result.findings),
            )
            for r in records
        ),
        scenarios=[scenario_md(r) for r in records],
        triage_header=triage_header,
        triage=triage,
        coverage=md_rows(
            (
                row.section_title,
                row.option_title,
                row.steps,
                row.executable,
                row.manual,
                row.verified,
                row.failed,
                row.status,
            )
            for row in coverage_rows
        ),
        findings=sorted_findings([f for r in records for f in r.result.findings]),
        environment=md_rows(
            [
                ("backend", env.backend),
                ("tool version", env.tool_version),
                ("python / platform", f"{env.python} / {env.platform}"),
                *((f"version: {k}", v) for k, v in sorted(env.versions.items())),
            ]
        ),
        drafts=[
            demote(postmortem.draft(r, runbook, journal.id), 2)
            for r in records
            if r.needs_postmortem
        ],
    )
    return text.rstrip() + "\n"
