"""The quarterly review as HTML (inline SVG trend charts) and as Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from runbook_checks.evidence import svg
from runbook_checks.evidence.html_report import CSS, badge, table
from runbook_checks.evidence.md_report import md_table
from runbook_checks.evidence.review import Gap, Review, ScenarioTrend
from runbook_checks.evidence.text import seconds


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _option(gap: Gap) -> str:
    return gap.option_title or "(whole section)"


def trend_chart(trend: ScenarioTrend) -> str:
    labels = [f"{run.created:%m-%d}" for run in trend.runs]
    return svg.trend(
        [
            svg.Series(
                "time to detect",
                tuple(zip(labels, trend.times("time_to_detect_s"), strict=True)),
                "#2563eb",
            ),
            svg.Series(
                "time to recover",
                tuple(zip(labels, trend.times("time_to_recover_s"), strict=True)),
                "#16a34a",
            ),
            svg.Series(
                "time to alert",
                tuple(zip(labels, trend.times("time_to_alert_s"), strict=True)),
                "#d97706",
            ),
        ],
        budget_s=trend.budget_s,
        title=f"trend: {trend.scenario}",
    )


def _name(trend: ScenarioTrend) -> str:
    return trend.section_title + (f" / option {trend.option}" if trend.option else "")


def review_html(review: Review) -> str:
    cards = "".join(
        f"<div class='card'><b>{_e(value)}</b><span>{_e(label)}</span></div>"
        for label, value in (
            ("evidence bundles", len(review.bundles)),
            ("scenario runs", review.runs),
            ("pass rate", _pct(review.pass_rate)),
            ("findings opened", len(review.findings)),
            ("findings closed", sum(1 for f in review.findings if not f.is_open)),
            ("options never drilled", len(review.never_drilled)),
            ("drilled on outdated text", len(review.outdated)),
        )
    )
    rows = [
        (
            f"<a href='#t{i}'>{_e(_name(t))}</a><br><code>{_e(t.scenario)}</code>",
            _e(len(t.runs)),
            _e(t.passed),
            _e(_pct(t.pass_rate)),
            badge(t.last_verdict),
            _e(seconds(t.median("time_to_alert_s"))),
            _e(seconds(t.median("time_to_detect_s"))),
            _e(seconds(t.median("time_to_recover_s"))),
            _e(seconds(t.budget_s)),
        )
        for i, t in enumerate(review.scenarios)
    ]
    charts = "".join(
        f"<section class='scenario'><h3 id='t{i}'>{_e(_name(t))}</h3>"
        f"<p class='sub'><code>{_e(t.scenario)}</code> · {len(t.runs)} run(s), "
        f"{_pct(t.pass_rate)} passed</p>{trend_chart(t)}</section>"
        for i, t in enumerate(review.scenarios)
    )
    findings = [
        (
            badge("open", "failed") if h.is_open else badge("closed", "passed"),
            f"<b>{_e(h.finding.kind)}</b><br>{_e(h.finding.message)}"
            + (
                f"<br><span class='fix'>fix: {_e(h.finding.suggestion)}</span>"
                if h.finding.suggestion
                else ""
            ),
            _e(h.finding.section_id),
            _e(h.finding.line or "-"),
            f"<code>{_e(h.scenario.rpartition('::')[2] or h.scenario)}</code>",
            _e(f"{h.opened:%Y-%m-%d}"),
            _e(f"{h.closed:%Y-%m-%d}" if h.closed else "-"),
        )
        for h in review.findings
    ]
    never = [(_e(g.section_title), _e(_option(g))) for g in review.never_drilled]
    outdated = [
        (
            _e(g.section_title),
            _e(_option(g)),
            _e(f"{g.last_drilled:%Y-%m-%d}" if g.last_drilled else "-"),
            f"<code>{_e(g.drilled_hash[:12])}</code>",
            f"<code>{_e(g.current_hash[:12])}</code>",
        )
        for g in review.outdated
    ]
    bundles = [
        (
            f"<code>{_e(b.journal.id)}</code>",
            _e(b.journal.kind),
            _e(f"{b.journal.created:%Y-%m-%d %H:%M}"),
            _e(len(b.journal.scenarios)),
            _e(sum(1 for s in b.journal.scenarios if s.result.verdict.earned)),
            badge("verified", "passed")
            if b.manifest_ok
            else badge("ALTERED", "failed")
            + "<br>"
            + "<br>".join(_e(p) for p in b.manifest_problems[:5]),
        )
        for b in review.bundles
    ]
    note = f"<p class='sub'>{_e(review.runbook_note)}</p>" if review.runbook_note else ""
    problems = "".join(f"<p class='badge error'>{_e(p)}</p>" for p in review.problems)
    title = f"Runbook drill review — {review.period.describe()}"
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">",
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
            f"<h1>{_e(title)}</h1>",
            f"<p class='sub'>{len(review.bundles)} evidence bundle(s) from "
            f"<code>{_e(review.evidence_dir)}</code>; runbook "
            f"<code>{_e(review.runbook_path or '-')}</code>; made {_e(made)}</p>",
            problems,
            f"<div class='cards'>{cards}</div>",
            "<h2>Scenarios</h2>",
            table(
                (
                    "scenario",
                    "runs",
                    "passed",
                    "pass rate",
                    "last verdict",
                    "median alert",
                    "median detect",
                    "median recover",
                    "budget",
                ),
                rows,
                numeric=(1, 2, 3, 5, 6, 7, 8),
            )
            if rows
            else "<p class='sub'>no drills in this period</p>",
            "<h2>Trends: time to alert, to detect and to recover</h2>",
            charts,
            "<h2>Findings opened and closed</h2>",
            "<p class='sub'>opened: the first drill of the scenario in the period that had the "
            "finding; closed: the first later drill of it that no longer had it.</p>",
            table(
                ("status", "finding", "section", "line", "scenario", "opened", "closed"), findings
            )
            if findings
            else "<p class='sub'>no findings in the period</p>",
            "<h2>Symptoms never seen in their own drills</h2>",
            "<p class='sub'>a section lists these symptoms, its drills measured them, and "
            "none showed them: the runbook describes something its failure does not do.</p>",
            table(
                ("section", "line", "symptom", "drills", "measured instead"),
                [
                    (
                        _e(g.section_title),
                        _e(g.line),
                        _e(g.symptom),
                        _e(g.runs),
                        _e(g.last_detail),
                    )
                    for g in review.symptoms_never_seen
                ],
                numeric=(1, 3),
            )
            if review.symptoms_never_seen
            else "<p class='sub'>none: every measured symptom showed in its own drill.</p>",
            "<h2>Never drilled</h2>",
            note,
            table(("section", "option"), never)
            if never
            else "<p class='sub'>every scenario section and option was drilled.</p>",
            "<h2>Drilled only against an outdated text</h2>",
            "<p class='sub'>the runbook text of these changed since their last drill: the "
            "section hash in the evidence differs from the current one.</p>",
            table(("section", "option", "last drilled", "drilled text", "current text"), outdated)
            if outdated
            else "<p class='sub'>none.</p>",
            "<h2>Evidence bundles</h2>",
            table(
                ("bundle", "kind", "created", "scenarios", "passed", "manifest"),
                bundles,
                numeric=(3, 4),
            ),
            "<footer>Written by runbook-checks report. Self-contained: inline styles and charts, "
            "no scripts, no external requests.</footer></main></body></html>\n",
        ]
    )


def review_md(review: Review) -> str:
    out = [
        f"# Runbook drill review: {review.period.describe()}",
        "",
        f"{len(review.bundles)} evidence bundle(s), {review.runs} scenario run(s), pass "
        f"rate {_pct(review.pass_rate)}; {len(review.findings)} finding(s) opened, "
        f"{sum(1 for f in review.findings if not f.is_open)} closed; "
        f"{len(review.never_drilled)} option(s) never drilled; {len(review.outdated)} "
        "drilled only against an outdated text.",
        "",
    ]
    out += [f"> could not read: {p}" for p in review.problems]
    out += ["## Scenarios", ""]
    out += md_table(
        (
            "scenario",
            "runs",
            "passed",
            "pass rate",
            "last verdict",
            "median alert",
            "median detect",
            "median recover",
            "budget",
            "alert trend",
            "detect trend",
            "recover trend",
        ),
        (
            (
                _name(t),
                len(t.runs),
                t.passed,
                _pct(t.pass_rate),
                t.last_verdict,
                seconds(t.median("time_to_alert_s")),
                seconds(t.median("time_to_detect_s")),
                seconds(t.median("time_to_recover_s")),
                seconds(t.budget_s),
                _series(t.times("time_to_alert_s")),
                _series(t.times("time_to_detect_s")),
                _series(t.times("time_to_recover_s")),
            )
            for t in review.scenarios
        ),
    )
    out += ["", "## Findings opened and closed", ""]
    out += md_table(
        ("status", "kind", "section", "line", "message", "opened", "closed"),
        (
            (
                "open" if h.is_open else "closed",
                h.finding.kind,
                h.finding.section_id,
                h.finding.line or "-",
                h.finding.message,
                f"{h.opened:%Y-%m-%d}",
                f"{h.closed:%Y-%m-%d}" if h.closed else "-",
            )
            for h in review.findings
        ),
    )
    out += ["", "## Symptoms never seen in their own drills", ""]
    out += [
        f"- {g.section_title}, line {g.line}: {g.symptom!r} (measured in {g.runs} drill(s); "
        f"last: {g.last_detail})"
        for g in review.symptoms_never_seen
    ] or ["None."]
    out += ["", "## Never drilled", ""]
    if review.runbook_note:
        out += [review.runbook_note, ""]
    out += [f"- {g.section_title}: {_option(g)}" for g in review.never_drilled] or ["None."]
    out += ["", "## Drilled only against an outdated text", ""]
    out += [
        f"- {g.section_title}: {_option(g)} (last drilled "
        f"{g.last_drilled:%Y-%m-%d} on text `{g.drilled_hash[:12]}`, now "
        f"`{g.current_hash[:12]}`)"
        for g in review.outdated
        if g.last_drilled
    ] or ["None."]
    out += ["", "## Evidence bundles", ""]
    out += md_table(
        ("bundle", "kind", "created", "scenarios", "manifest"),
        (
            (
                b.journal.id,
                b.journal.kind,
                f"{b.journal.created:%Y-%m-%d %H:%M}",
                len(b.journal.scenarios),
                "verified" if b.manifest_ok else "ALTERED",
            )
            for b in review.bundles
        ),
    )
    return "\n".join(out).rstrip() + "\n"


def _series(values: Sequence[float | None]) -> str:
    return " → ".join(seconds(v) for v in values)


def write_review(review: Review, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out_dir / "review.html", out_dir / "review.md"
    html_path.write_text(review_html(review), encoding="utf-8")
    md_path.write_text(review_md(review), encoding="utf-8")
    return html_path, md_path
