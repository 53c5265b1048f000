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
from runbook_checks.evidence.text import (
    VERDICT_LABEL,
    lost,
    scenario_name,
    seconds,
    share,
    short_commit,
    sorted_findings,
)

CSS = (
    """
:root { --fg:#0f172a; --muted:#475569; --line:#e2e8f0; --bg:#ffffff; --panel:#f8fafc;
  --ok:#15803d; --okbg:#dcfce7; --bad:#b91c1c; --badbg:#fee2e2; --warn:#b45309;
  --warnbg:#fef3c7; --info:#1d4ed8; --infobg:#dbeafe; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 34px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--panel); font-weight: 600; font-size: 12px; color: var(--muted);
  text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
td code { overflow-wrap: anywhere; }
table { table-layout: auto; }
pre { background: #0f172a; color: #e2e8f0; padding: 8px 10px; border-radius: 6px;
  overflow-x: auto; max-height: 260px; white-space: pre-wrap; word-break: break-word; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px;
  min-width: 120px; background: var(--panel); }
.card b { display: block; font-size: 24px; }
.card span { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.passed, .verified, .ok, .passed-by-hand { background: var(--okbg); color: var(--ok); }
.recovered-by-waiting, .checked { background: #e0f2fe; color: #075985; }
.runbook-wrong, .failed, .error, .lvl-error { background: var(--badbg); color: var(--bad); }
.lvl-warning, .manual, .skipped, .performed, .assisted, .manual-only, .partly-verified,
.by-harness { background: var(--warnbg); color: var(--warn); }
.lvl-info, .not-drilled { background: #f1f5f9; color: var(--muted); }
.scenario { border: 1px solid var(--line); border-radius: 10px; padding: 4px 16px 12px;
  margin: 16px 0; }
.chart { max-width: 100%; height: auto; display: block; margin: 8px 0; }
details summary { cursor: pointer; color: var(--info); margin: 6px 0; }
.kv td:first-child { color: var(--muted); width: 210px; }
.finding { border-left: 4px solid var(--line); padding: 4px 12px; margin: 10px 0; }
.finding.lvl-error { border-color: var(--bad); background: #fff; color: var(--fg); }
.finding.lvl-warning { border-color: var(--warn); background: #fff; color: var(--fg); }
.finding.lvl-info { border-color: var(--muted); background: #fff; color: var(--fg); }
.fix { color: var(--ok); }
.legend span { margin-right: 14px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px;
  border-radius: 2px; vertical-align: -1px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""
    + incident_html.CSS
)


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
    cards = "".join(
        f"<div class='card'><b>{n}</b><span>{_e(label)}</span></div>"
        for label, n in (
            ("scenarios", len(records)),
            *((VERDICT_LABEL[v], counts[v]) for v in VERDICT_LABEL),
            ("findings", sum(len(r.result.findings) for r in records)),
        )
    )
    title = (
        "Game day" if journal.kind == "gameday" else "Runbook drills"
    ) + f" — {journal.environment.runbook.title or journal.environment.runbook.path}"
    created = journal.created.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            # no request may leave this page: forbid every fetch, allow only inline styles
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">",
            f"<title>{_e(title)} ({_e(journal.id)})</title><style>{CSS}</style></head><body><main>",
            f"<h1>{_e(title)}</h1>",
            f"<p class='sub'>evidence bundle <code>{_e(journal.id)}</code> · {_e(created)} · "
            f"{_e(journal.environment.backend)} backend</p>",
            f"<div class='cards'>{cards}</div>",
            "<h2>Summary</h2>",
            summary_html(records),
            "<h2>Scenarios</h2>",
            *(scenario_html(i, r) for i, r in enumerate(records)),
            "<h2>Triage matrix</h2>",
            "<p class='sub'>for each drill, how many of each section's measurable symptoms "
            "the fault showed (darker: more). The drilled section's own cell is outlined; "
            "a cell as dark elsewhere in the row is where an on-call engineer going by "
            "symptoms would likely turn first.</p>",
            incident_html.triage_matrix_html(
                records, {t.id: t.title for t in journal.environment.runbook.sections}
            ),
            "<h2>Runbook coverage</h2>",
            "<p class='sub'>every scenario section's investigation and mitigation options: how "
            "many steps can run here, how many need a person, how many a drill ran clean as "
            "written, and who did the work: <b>verified</b> (every executable step ran as "
            "written), <b>assisted</b> (the harness did part of it in the runbook's place), "
            "<b>recovered by waiting</b> (the failure ended by itself), <b>manual only</b>, "
            "<b>failed</b>, <b>skipped</b> (with the reason), <b>not drilled</b>.</p>",
            skipped_html(journal),
            coverage_html(coverage_rows),
            "<h2>Findings</h2>",
            findings_html(records),
            "<h2>Environment</h2>",
            environment_html(journal.environment),
            "<footer>Written by runbook-checks. This file is self-contained: inline styles and "
            "charts, no scripts, no external requests. manifest.json beside it holds the "
            "sha256 of every file of the bundle; check with <code>runbook-checks "
            "verify-evidence</code>.</footer>",
            "</main></body></html>\n",
        ]
    )
