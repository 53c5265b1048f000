"""report.html: one self-contained file a reviewer opens in a browser.

Inline CSS and inline SVG only: no script, no font, no image or style sheet from
anywhere (the page makes no request at all). Sections: environment, summary table
(verdicts, times against budgets), one block per scenario (timeline chart, events,
steps, ledger), the runbook coverage matrix, and the findings with suggested fixes.

This module computes the page's view data (small frozen dataclasses of text and
numbers); the templates render it, escaping every value: `report.html` (the page,
extending `base.html`) includes one template per section (`report_summary.html`,
`report_scenario.html` with `report_incident.html`, `report_triage.html`,
`report_skipped.html`, `report_coverage.html`, `report_findings.html`,
`report_environment.html`); `macros.html` holds the shared badge and table, and
`charts.svg` the charts (svg.py computes their geometry).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runbook_checks.drill.result import DrillResult
from runbook_checks.evidence import incident_html, svg
from runbook_checks.evidence.coverage import CoverageRow
from runbook_checks.evidence.journal import Environment, Journal, ScenarioRecord
from runbook_checks.evidence.templating import Markup, macro, render, stylesheet
from runbook_checks.evidence.text import (
    VERDICT_LABEL,
    lost,
    scenario_name,
    seconds,
    share,
    short_commit,
    sorted_findings,
)

CSS = stylesheet()  # the shared stylesheet (templates/style.css)


def badge(text: str, css: str | None = None) -> str:
    """A badge's HTML (the `badge` macro of macros.html), for pages still built as text."""
    return str(macro("macros.html", "badge")(text, css or ""))


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    css: str = "",
) -> str:
    """A table's HTML (the `grid` macro of macros.html), for pages still built as text.
    Cells are HTML already (escape text before passing it)."""
    cells = [[Markup(cell) for cell in row] for row in rows]
    return str(macro("macros.html", "grid")(header, cells, tuple(numeric), css))


@dataclass(frozen=True)
class SummaryRow:
    index: int
    name: str
    scenario: str
    fault: str
    verdict: str
    verdict_css: str
    outcome: str
    note: str
    alert: str
    detect: str
    recover: str
    budget: str
    share: str
    bar: svg.BudgetBarView | None
    lost: str
    findings: int


def _summary_row(index: int, record: ScenarioRecord) -> SummaryRow:
    r = record.result
    return SummaryRow(
        index=index,
        name=scenario_name(r),
        scenario=r.scenario,
        fault=r.fault or "-",
        verdict=VERDICT_LABEL[r.verdict],
        verdict_css=r.verdict.value,
        outcome=record.outcome,
        note=r.note,
        alert=incident_html.alert_cell(r),
        detect=seconds(r.time_to_detect_s),
        recover=seconds(r.time_to_recover_s),
        budget=seconds(r.budget_s),
        share=share(r.time_to_recover_s, r.budget_s),
        bar=svg.budget_bar_view(r.time_to_recover_s, r.budget_s),
        lost=lost(r),
        findings=len(r.findings),
    )


def summary_rows(records: Sequence[ScenarioRecord]) -> tuple[SummaryRow, ...]:
    """The summary table: one row per scenario, linking to its block."""
    return tuple(_summary_row(index, record) for index, record in enumerate(records))


@dataclass(frozen=True)
class StepRow:
    line: str
    phase: str
    by: str  # runbook, person, harness, check, provider
    written: str
    executed: str  # "" when run as written
    status: str
    start: str
    took: str
    detail: str
    output: str


@dataclass(frozen=True)
class EventRow:
    at: str
    name: str
    detail: str


@dataclass(frozen=True)
class LedgerView:
    summary: str
    refused: int
    phases: tuple[tuple[str, int, int], ...]  # phase, acknowledged, lost
    lost: tuple[tuple[str, str, str], ...]  # the first 30 lost writes: name, phase, reason


@dataclass(frozen=True)
class ScenarioView:
    index: int
    name: str
    scenario: str
    verdict: str
    verdict_css: str
    severity: str
    fault: str
    detect: str
    recover: str
    budget: str
    section_hash: str
    operator: str
    error: str
    timeline: svg.TimelineView
    events: tuple[EventRow, ...]
    incident: incident_html.IncidentView | None
    steps: tuple[StepRow, ...]
    ledger: LedgerView | None


def _steps(result: DrillResult) -> tuple[StepRow, ...]:
    return tuple(
        StepRow(
            line=str(step.line or "-"),
            phase=step.phase,
            by=step.by.value,
            written=step.written,
            executed=step.executed if step.executed and step.executed != step.written else "",
            status=step.status,
            start=f"{step.started_s:+.2f}s",
            took=f"{step.duration_s:.2f}s",
            detail=step.detail,
            output=step.output,
        )
        for step in result.steps
    )


def _ledger(result: DrillResult) -> LedgerView | None:
    ledger = result.ledger
    if ledger is None:
        return None
    return LedgerView(
        summary=ledger.summary(),
        refused=ledger.unacknowledged,
        phases=tuple((phase, acked, n) for phase, (acked, n) in ledger.by_phase.items()),
        lost=tuple((w.name, w.phase, w.reason) for w in ledger.lost[:30]),
    )


def scenario_view(index: int, record: ScenarioRecord) -> ScenarioView:
    r = record.result
    return ScenarioView(
        index=index,
        name=scenario_name(r),
        scenario=r.scenario,
        verdict=VERDICT_LABEL[r.verdict],
        verdict_css=r.verdict.value,
        severity=r.severity or "-",
        fault=r.fault or "-",
        detect=seconds(r.time_to_detect_s),
        recover=seconds(r.time_to_recover_s),
        budget=seconds(r.budget_s),
        section_hash=r.section_hash[:12],
        operator=record.operator,
        error=r.error,
        timeline=svg.timeline_view(
            r.events,
            r.samples,
            title=f"timeline: {scenario_name(r)}",
            aligned=record.samples_aligned,
        ),
        events=tuple(EventRow(f"{e.at_s:+.2f}s", e.name, e.detail) for e in r.events),
        incident=incident_html.incident_view(r),
        steps=_steps(r),
        ledger=_ledger(r),
    )


@dataclass(frozen=True)
class CoverageLine:
    row: CoverageRow
    status_css: str
    drills: tuple[tuple[str, str], ...]  # scenario id, its test's name


def coverage_lines(rows: Sequence[CoverageRow]) -> tuple[CoverageLine, ...]:
    return tuple(
        CoverageLine(
            row,
            row.status.split(" (")[0].replace(" ", "-"),
            tuple((d, d.rpartition("::")[2] or d) for d in row.drills),
        )
        for row in rows
    )


@dataclass(frozen=True)
class FindingView:
    level: str
    kind: str
    section: str
    where: str
    key: str
    message: str
    statement: str
    suggestion: str
    evidence: str


def finding_views(records: Sequence[ScenarioRecord]) -> tuple[FindingView, ...]:
    findings = [f for r in records for f in r.result.findings]
    return tuple(
        FindingView(
            level=f.level.value,
            kind=f.kind,
            section=f.section_id or "-",
            where=f"line {f.line}" if f.line else "document",
            key=f.key,
            message=f.message,
            statement=f.statement,
            suggestion=f.suggestion,
            evidence=f.evidence,
        )
        for f in sorted_findings(findings)
    )


@dataclass(frozen=True)
class EnvironmentView:
    backend: str
    tool_version: str
    project_commit: str
    project_dirty: bool
    runbook: str
    runbook_commit: str
    runbook_sha256: str
    python_platform: str
    versions: tuple[tuple[str, str], ...]


def environment_view(env: Environment) -> EnvironmentView:
    return EnvironmentView(
        backend=env.backend,
        tool_version=env.tool_version,
        project_commit=short_commit(env.project_commit),
        project_dirty=env.project_dirty,
        runbook=env.runbook.path,
        runbook_commit=short_commit(env.runbook.commit),
        runbook_sha256=env.runbook.sha256[:16],
        python_platform=f"{env.python} / {env.platform}",
        versions=tuple(sorted(env.versions.items())),
    )


def report_html(journal: Journal, coverage_rows: Sequence[CoverageRow]) -> str:
    records = journal.scenarios
    counts = {v: sum(1 for r in records if r.result.verdict is v) for v in VERDICT_LABEL}
    cards = [
        ("scenarios", len(records)),
        *((VERDICT_LABEL[v], counts[v]) for v in VERDICT_LABEL),
        ("findings", sum(len(r.result.findings) for r in records)),
    ]
    title = (
        "Game day" if journal.kind == "gameday" else "Runbook drills"
    ) + f" — {journal.environment.runbook.title or journal.environment.runbook.path}"
    return render(
        "report.html",
        title=title,
        journal=journal,
        created=journal.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
        cards=cards,
        summary=summary_rows(records),
        scenarios=[scenario_view(i, r) for i, r in enumerate(records)],
        legend=svg.LEGEND,
        triage=incident_html.triage_view(
            records, {t.id: t.title for t in journal.environment.runbook.sections}
        ),
        skipped=journal.skipped,
        stale_baseline=journal.stale_baseline,
        coverage=coverage_lines(coverage_rows),
        findings=finding_views(records),
        environment=environment_view(journal.environment),
    )
