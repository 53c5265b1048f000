"""report.html: one self-contained file a reviewer opens in a browser.

Inline CSS and inline SVG only: no script, no font, no image or style sheet from
anywhere (the page makes no request at all). Sections: environment, summary table
(verdicts, times against budgets), one block per scenario (timeline chart, events,
steps, ledger), the runbook coverage matrix, and the findings with suggested fixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from runbook_checks.drill.result import DrillResult
from runbook_checks.evidence import incident_html, svg
from runbook_checks.evidence.coverage import CoverageRow
from runbook_checks.evidence.journal import Environment, Journal, ScenarioRecord
from runbook_checks.evidence.templating import Markup, render, stylesheet
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


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def badge(text: str, css: str | None = None) -> str:
    return f"<span class='badge {_e(css or text.replace(' ', '-'))}'>{_e(text)}</span>"


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    css: str = "",
) -> str:
    """Cells are HTML already (escape text before passing it)."""
    head = "".join(
        f"<th class='{'num' if i in numeric else ''}'>{_e(h)}</th>" for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='{'num' if i in numeric else ''}'>{c}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table class='{css}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def environment_html(env: Environment) -> str:
    rows = [
        ("backend", _e(env.backend)),
        ("tool version", _e(env.tool_version)),
        (
            "project commit",
            f"<code>{_e(short_commit(env.project_commit))}</code>"
            + (" (uncommitted changes)" if env.project_dirty else ""),
        ),
        ("runbook", f"<code>{_e(env.runbook.path)}</code>"),
        ("runbook commit", f"<code>{_e(short_commit(env.runbook.commit))}</code>"),
        ("runbook sha256", f"<code>{_e(env.runbook.sha256[:16])}</code>"),
        ("python / platform", _e(f"{env.python} / {env.platform}")),
    ]
    rows += [(f"version: {name}", _e(value)) for name, value in sorted(env.versions.items())]
    return table(("what", "value"), rows, css="kv")


def summary_html(records: Sequence[ScenarioRecord]) -> str:
    rows = []
    for index, record in enumerate(records):
        r = record.result
        rows.append(
            (
                f"<a href='#s{index}'>{_e(scenario_name(r))}</a><br><code>{_e(r.scenario)}</code>",
                _e(r.fault or "-"),
                badge(VERDICT_LABEL[r.verdict], r.verdict.value)
                + (f" <small>({_e(record.outcome)})</small>" if record.outcome else "")
                + (f"<br><small>{_e(r.note)}</small>" if r.note else ""),
                _e(incident_html.alert_cell(r)),
                _e(seconds(r.time_to_detect_s)),
                _e(seconds(r.time_to_recover_s)),
                _e(seconds(r.budget_s)),
                f"{_e(share(r.time_to_recover_s, r.budget_s))}<br>"
                f"{svg.budget_bar(r.time_to_recover_s, r.budget_s)}",
                _e(lost(r)),
                _e(len(r.findings)),
            )
        )
    return table(
        (
            "scenario",
            "fault",
            "verdict",
            "alert",
            "detect",
            "recover",
            "budget",
            "of budget",
            "lost",
            "findings",
        ),
        rows,
        numeric=(3, 4, 5, 6, 8, 9),
    )


def _steps_html(result: DrillResult) -> str:
    if not result.steps:
        return "<p class='sub'>no steps recorded</p>"
    rows = []
    for step in result.steps:
        executed = (
            f"<code>{_e(step.executed)}</code>"
            if step.executed and step.executed != step.written
            else ""
        )
        output = (
            f"<details><summary>output</summary><pre>{_e(step.output)}</pre></details>"
            if step.output
            else ""
        )
        rows.append(
            (
                _e(step.line or "-"),
                _e(step.phase) + " " + badge(f"by {step.by.value}", f"by-{step.by.value}"),
                f"<code>{_e(step.written)}</code>",
                executed,
                badge(step.status),
                _e(f"{step.started_s:+.2f}s"),
                _e(f"{step.duration_s:.2f}s"),
                _e(step.detail) + output,
            )
        )
    return table(
        (
            "line",
            "phase",
            "as written",
            "as executed",
            "status",
            "start",
            "took",
            "detail / output",
        ),
        rows,
        numeric=(0, 5, 6),
    )


def _ledger_html(result: DrillResult) -> str:
    ledger = result.ledger
    if ledger is None:
        return ""
    rows = [
        (_e(phase), _e(acked), _e(lost_n)) for phase, (acked, lost_n) in ledger.by_phase.items()
    ]
    text = f"<p><b>Ledger</b>: {_e(ledger.summary())}; {ledger.unacknowledged} refused.</p>"
    lost_rows = [(_e(w.name), _e(w.phase), _e(w.reason)) for w in ledger.lost[:30]]
    return (
        text
        + table(("phase", "acknowledged", "lost"), rows, numeric=(1, 2))
        + (table(("lost write", "phase", "reason"), lost_rows) if lost_rows else "")
    )


LEGEND = (
    "<p class='legend'>"
    f"<span><i style='background:{svg.OK_COLOUR}'></i>/health 200</span>"
    f"<span><i style='background:{svg.WARN_COLOUR}'></i>other answer</span>"
    f"<span><i style='background:{svg.DOWN_COLOUR}'></i>5xx or no answer</span>"
    "<span><i style='background:#0ea5e9'></i>latency</span></p>"
)


def scenario_html(index: int, record: ScenarioRecord) -> str:
    r = record.result
    events = [(_e(f"{e.at_s:+.2f}s"), badge(e.name, "lvl-info"), _e(e.detail)) for e in r.events]
    operator = f" · operator {_e(record.operator)}" if record.operator else ""
    verdict = badge(VERDICT_LABEL[r.verdict], r.verdict.value)
    head = (
        f"<h3 id='s{index}'>{_e(scenario_name(r))} {verdict}</h3>"
        f"<p class='sub'><code>{_e(r.scenario)}</code> · severity {_e(r.severity or '-')}"
        f" · fault: {_e(r.fault or '-')} · detect {_e(seconds(r.time_to_detect_s))}"
        f" · recover {_e(seconds(r.time_to_recover_s))} of {_e(seconds(r.budget_s))}"
        f" budget · section text <code>{_e(r.section_hash[:12])}</code>{operator}</p>"
    )
    error = f"<p class='badge error'>{_e(r.error)}</p>" if r.error else ""
    chart = svg.timeline(
        r.events, r.samples, title=f"timeline: {scenario_name(r)}", aligned=record.samples_aligned
    )
    return (
        f"<section class='scenario'>{head}{error}{chart}{LEGEND}"
        + table(("at", "event", "detail"), events, numeric=(0,))
        + incident_html.incident_block(r)
        + f"<details><summary>{len(r.steps)} step(s) run</summary>"
        + _steps_html(r)
        + "</details>"
        + _ledger_html(r)
        + "</section>"
    )


def coverage_html(rows: Sequence[CoverageRow]) -> str:
    if not rows:
        return "<p class='sub'>the runbook could not be read: no coverage computed</p>"
    body = []
    for row in rows:
        body.append(
            (
                _e(row.section_title)
                + (f" <small>({_e(row.severity)})</small>" if row.severity else ""),
                _e(row.option_title),
                _e(row.steps),
                _e(row.executable),
                _e(row.manual),
                _e(row.verified),
                _e(row.failed),
                badge(row.status, row.status.split(" (")[0].replace(" ", "-")),
                "<br>".join(
                    f"<code title='{_e(d)}'>{_e(d.rpartition('::')[2] or d)}</code>"
                    for d in row.drills
                )
                or "-",
            )
        )
    return table(
        (
            "section",
            "option",
            "steps",
            "executable",
            "manual",
            "verified",
            "failed",
            "status",
            "drilled by",
        ),
        body,
        numeric=(2, 3, 4, 5, 6),
    )


def skipped_html(journal: Journal) -> str:
    """Scenarios that did not run, with why, and stale baseline entries."""
    out = []
    if journal.skipped:
        out.append(
            "<p><b>Did not run here</b> (coverage does not count them as drilled):</p>"
            + table(
                ("scenario", "section", "option", "reason"),
                [
                    (
                        f"<code>{_e(s.scenario)}</code>",
                        _e(s.section_title),
                        _e(s.option or "-"),
                        _e(s.reason),
                    )
                    for s in journal.skipped
                ],
            )
        )
    if journal.stale_baseline:
        out.append(
            "<p><b>Stale baseline entries</b> (acknowledged, matched nothing although their "
            "section was drilled in full: remove them):</p><ul>"
            + "".join(f"<li><code>{_e(line)}</code></li>" for line in journal.stale_baseline)
            + "</ul>"
        )
    return "".join(out)


def findings_html(records: Sequence[ScenarioRecord]) -> str:
    findings = [f for r in records for f in r.result.findings]
    if not findings:
        return (
            "<p class='sub'>no findings: every step the drills ran did what the runbook says.</p>"
        )
    out = []
    for finding in sorted_findings(findings):
        where = f"line {finding.line}" if finding.line else "document"
        out.append(
            f"<div class='finding lvl-{_e(finding.level.value)}'>"
            f"<p>{badge(finding.level.value, 'lvl-' + finding.level.value)} "
            f"<b>{_e(finding.kind)}</b> · {_e(finding.section_id or '-')} · {_e(where)} · "
            f"<code>{_e(finding.key)}</code></p>"
            f"<p>{_e(finding.message)}</p>"
            + (f"<p><code>{_e(finding.statement)}</code></p>" if finding.statement else "")
            + (
                f"<p class='fix'><b>Suggested fix:</b> {_e(finding.suggestion)}</p>"
                if finding.suggestion
                else ""
            )
            + (
                f"<details><summary>evidence</summary><pre>{_e(finding.evidence)}</pre></details>"
                if finding.evidence
                else ""
            )
            + "</div>"
        )
    return "".join(out)


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
        summary=Markup(summary_html(records)),
        scenarios=[Markup(scenario_html(i, r)) for i, r in enumerate(records)],
        triage=Markup(
            incident_html.triage_matrix_html(
                records, {t.id: t.title for t in journal.environment.runbook.sections}
            )
        ),
        skipped=Markup(skipped_html(journal)),
        coverage=Markup(coverage_html(coverage_rows)),
        findings=Markup(findings_html(records)),
        environment=Markup(environment_html(journal.environment)),
    )
