"""report.html's parts for the stages before investigation: the alerts a drill fired,
its triage row, the measured severity, and the triage matrix of the whole run as a heat
map (fault x section: the share of a section's measurable symptoms the fault showed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from runbook_checks.drill.result import DrillResult
from runbook_checks.evidence.journal import ScenarioRecord
from runbook_checks.evidence.text import scenario_name, seconds
from runbook_checks.monitor.triage import Score, matrix


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def alert_cell(result: DrillResult) -> str:
    """The summary table's time-to-alert: seconds, "none" when nothing fired, "-" when
    the stack had no alerting."""
    alerting = result.alerting
    if alerting is None or not alerting.measured:
        return "-"
    if alerting.time_to_alert_s is None:
        return "none"
    return seconds(alerting.time_to_alert_s)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _heat(share: float) -> str:
    """Background for a share of symptoms seen: white (0) to a strong amber (1)."""
    light = round(97 - 45 * share)
    return f"background: hsl(35, 95%, {light}%)"


def incident_block(result: DrillResult) -> str:
    """One scenario's detect / triage / severity, as the scenario block shows them."""
    parts: list[str] = []
    alerting = result.alerting
    if alerting is not None:
        if not alerting.measured:
            parts.append(f"<p class='sub'>alerts: {_e(alerting.note)}</p>")
        else:
            rows = "".join(
                f"<tr><td class='num'>{_e(seconds(a.fired_s))}</td><td><code>{_e(a.alertname)}"
                f"</code></td><td>{_e(a.section_id or '-')}</td><td>{_e(a.severity or '-')}</td>"
                f"<td>{_e(a.summary)}</td></tr>"
                for a in alerting.alerts
            )
            still = (
                f" · still firing after recovery: {_e(', '.join(alerting.still_firing))}"
                if alerting.still_firing
                else ""
            )
            parts.append(
                f"<p class='sub'>time to alert <b>{_e(alert_cell(result))}</b> (waited up to "
                f"{_e(seconds(alerting.window_s))}; {_e(alerting.rules)}){still}</p>"
                + (
                    "<table><thead><tr><th class='num'>fired</th><th>alert</th>"
                    f"<th>section</th><th>severity</th><th>summary</th></tr></thead><tbody>{rows}"
                    "</tbody></table>"
                    if rows
                    else ""
                )
            )
    if result.acknowledged_s is not None:
        parts.append(
            f"<p class='sub'>acknowledged by the on-call engineer "
            f"{_e(seconds(result.acknowledged_s))} after the first alert (or the fault)</p>"
        )
    own = [o for o in result.triage if o.section_id == result.section_id]
    if own:
        rows = "".join(
            f"<tr><td class='num'>{o.line}</td><td>{_e(o.symptom)}</td><td>{_e(o.kind)}</td>"
            f"<td>{_e({True: 'seen', False: 'not seen', None: 'not measured'}[o.observed])}</td>"
            f"<td>{_e(o.detail)}</td></tr>"
            for o in own
        )
        parts.append(
            "<table><thead><tr><th class='num'>line</th><th>symptom (this section)</th>"
            f"<th>probe</th><th>during the fault</th><th>evidence</th></tr></thead><tbody>{rows}"
            "</tbody></table>"
        )
    if result.impact:
        impact = result.impact
        parts.append(
            f"<p class='sub'>severity: written {_e(impact.get('written') or '-')}, measured "
            f"{_e(impact.get('measured') or '-')} ({_e(impact.get('why', ''))}); impact: "
            f"{_e(impact.get('description', ''))}</p>"
        )
    posted = [u for u in result.communication if u.get("posted")]
    if posted:
        parts.append(
            "<p class='sub'>status updates posted, as customers would read them:</p>"
            + "".join(
                f"<div class='update'><small>{_e(u.get('stage'))} · "
                f"{_e(seconds(_number(u.get('at_s'))))} after the fault · from the template "
                f"{_e(u.get('template'))!s} (line {_e(u.get('line'))})</small>"
                f"<b>{_e(u.get('name'))}</b><p>{_e(u.get('body'))}</p></div>"
                for u in posted
            )
        )
    if not parts:
        return ""
    return (
        "<details open><summary>detect · triage · severity</summary>"
        + "".join(parts)
        + ("</details>")
    )


def triage_matrix_html(
    records: Sequence[ScenarioRecord], section_titles: Mapping[str, str] | None = None
) -> str:
    """Rows: the drills (faults); columns: the sections; a cell: observed / measurable
    symptoms of that section during that fault, shaded by the share. The drilled
    section's own cell is outlined: a darker cell elsewhere in its row is a likely
    wrong turn in triage."""
    rows = {r.result.scenario: r.result.triage for r in records if r.result.triage}
    if not rows:
        return "<p class='sub'>no drill evaluated the runbook's symptoms</p>"
    columns, table = matrix(rows)
    titles: dict[str, str] = dict(section_titles or {})
    for record in records:
        titles.setdefault(record.result.section_id, record.result.section_title)
        for o in record.result.triage:
            titles.setdefault(o.section_id, o.section_id)
    head = "".join(f"<th class='col'>{_e(titles.get(c, c))}</th>" for c in columns)
    body = []
    for record in records:
        r = record.result
        if r.scenario not in table:
            continue
        cells = []
        for column in columns:
            score = table[r.scenario].get(column, Score(0, 0, 0))
            own = " own" if column == r.section_id else ""
            cells.append(
                f"<td class='cell{own}' style='{_heat(score.share)}' title='"
                f"{_e(titles.get(column, column))}: {score.observed} of {score.measurable} "
                f"measurable symptoms seen ({score.listed} listed)'>{_e(score.text())}</td>"
            )
        body.append(
            f"<tr><td>{_e(scenario_name(r))}<br><small>{_e(r.fault)}</small></td>"
            + "".join(cells)
            + "</tr>"
        )
    return (
        "<table class='heat'><thead><tr><th>drill (fault)</th>"
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
