"""report.html's parts for the stages before investigation: the alerts a drill fired,
its triage row, the measured severity, and the triage matrix of the whole run as a heat
map (fault x section: the share of a section's measurable symptoms the fault showed).

This module computes the view data; `templates/report_incident.html` (one scenario's
detect · triage · severity block) and `templates/report_triage.html` (the heat map)
render it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runbook_checks.drill.result import DrillResult
from runbook_checks.evidence.journal import ScenarioRecord
from runbook_checks.evidence.text import scenario_name, seconds
from runbook_checks.monitor.triage import Score, matrix

OBSERVED = {True: "seen", False: "not seen", None: "not measured"}


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


@dataclass(frozen=True)
class AlertRow:
    fired: str
    alertname: str
    section: str
    severity: str
    summary: str


@dataclass(frozen=True)
class Alerts:
    """What the alerting measured: time to alert, the window and rules, each alert."""

    time_to_alert: str
    window: str
    rules: str
    still_firing: str  # the alerts still firing after recovery, "" when none
    alerts: tuple[AlertRow, ...]


@dataclass(frozen=True)
class SymptomRow:
    line: int
    symptom: str
    probe: str
    observed: str  # seen, not seen, not measured
    detail: str


@dataclass(frozen=True)
class Impact:
    written: str
    measured: str
    why: str
    description: str


@dataclass(frozen=True)
class StatusUpdate:
    """A posted status update, as customers would read it."""

    stage: str
    at: str
    template: str
    line: str
    name: str
    body: str


@dataclass(frozen=True)
class IncidentView:
    """One scenario's detect / triage / severity block."""

    alerts_note: str  # why alerts were not measured ("" when they were, or not watched)
    alerts: Alerts | None  # None: not watched, or not measured
    acknowledged: str  # game days: time to acknowledge, "" when not recorded
    symptoms: tuple[SymptomRow, ...]  # the drilled section's own
    impact: Impact | None
    updates: tuple[StatusUpdate, ...]  # posted ones only


def incident_view(result: DrillResult) -> IncidentView | None:
    """One scenario's detect / triage / severity; None when the drill recorded none."""
    alerting = result.alerting
    alerts = None
    if alerting is not None and alerting.measured:
        alerts = Alerts(
            time_to_alert=alert_cell(result),
            window=seconds(alerting.window_s),
            rules=alerting.rules,
            still_firing=", ".join(alerting.still_firing),
            alerts=tuple(
                AlertRow(
                    seconds(a.fired_s),
                    a.alertname,
                    a.section_id or "-",
                    a.severity or "-",
                    a.summary,
                )
                for a in alerting.alerts
            ),
        )
    impact = result.impact
    view = IncidentView(
        alerts_note=alerting.note if alerting is not None and not alerting.measured else "",
        alerts=alerts,
        acknowledged=seconds(result.acknowledged_s) if result.acknowledged_s is not None else "",
        symptoms=tuple(
            SymptomRow(o.line, o.symptom, o.kind, OBSERVED[o.observed], o.detail)
            for o in result.triage
            if o.section_id == result.section_id
        ),
        impact=Impact(
            str(impact.get("written") or "-"),
            str(impact.get("measured") or "-"),
            str(impact.get("why", "")),
            str(impact.get("description", "")),
        )
        if impact
        else None,
        updates=tuple(
            StatusUpdate(
                stage=str(u.get("stage")),
                at=seconds(_number(u.get("at_s"))),
                template=str(u.get("template")),
                line=str(u.get("line")),
                name=str(u.get("name")),
                body=str(u.get("body")),
            )
            for u in result.communication
            if u.get("posted")
        ),
    )
    empty = alerting is None and not (
        view.acknowledged or view.symptoms or view.impact or view.updates
    )
    return None if empty else view


@dataclass(frozen=True)
class HeatCell:
    own: bool  # the drilled section's cell (outlined)
    lightness: int  # of the amber background: 97 (none seen) to 52 (all seen)
    tip: str
    text: str


@dataclass(frozen=True)
class HeatRow:
    name: str
    fault: str
    cells: tuple[HeatCell, ...]


@dataclass(frozen=True)
class TriageView:
    columns: tuple[str, ...]  # section titles
    rows: tuple[HeatRow, ...]


def _lightness(share: float) -> int:
    """A share of symptoms seen as the background's lightness: white (0) to amber (1)."""
    return round(97 - 45 * share)


def triage_view(
    records: Sequence[ScenarioRecord], section_titles: Mapping[str, str] | None = None
) -> TriageView | None:
    """Rows: the drills (faults); columns: the sections; a cell: observed / measurable
    symptoms of that section during that fault, shaded by the share. The drilled
    section's own cell is outlined: a darker cell elsewhere in its row is a likely
    wrong turn in triage. None when no drill evaluated the symptoms."""
    rows = {r.result.scenario: r.result.triage for r in records if r.result.triage}
    if not rows:
        return None
    columns, table = matrix(rows)
    titles: dict[str, str] = dict(section_titles or {})
    for record in records:
        titles.setdefault(record.result.section_id, record.result.section_title)
        for o in record.result.triage:
            titles.setdefault(o.section_id, o.section_id)
    body = []
    for record in records:
        r = record.result
        if r.scenario not in table:
            continue
        cells = []
        for column in columns:
            score = table[r.scenario].get(column, Score(0, 0, 0))
            cells.append(
                HeatCell(
                    own=column == r.section_id,
                    lightness=_lightness(score.share),
                    tip=f"{titles.get(column, column)}: {score.observed} of {score.measurable} "
                    f"measurable symptoms seen ({score.listed} listed)",
                    text=score.text(),
                )
            )
        body.append(HeatRow(scenario_name(r), r.fault, tuple(cells)))
    return TriageView(tuple(titles.get(c, c) for c in columns), tuple(body))
