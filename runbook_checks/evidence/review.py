"""Across drills: the quarterly review of a period's evidence bundles.

`parse_period("2026Q4")` or `parse_period("2026-10-01")` says which bundles count;
`aggregate` reads them and computes, per scenario, the trend of time-to-detect and
time-to-recover and the pass rate, the findings opened and closed from one drill of a
scenario to the next, the runbook's scenario sections and options never drilled, and
those drilled only against a text that has changed since (the section hash in the
bundle differs from the current runbook's).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbook_checks.errors import UsageError
from runbook_checks.evidence.journal import Journal, JournalError, ScenarioRecord, load_journal
from runbook_checks.evidence.manifest import verify_manifest
from runbook_checks.findings import Finding
from runbook_checks.runbook.model import Runbook

_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, UTC
    end: datetime | None  # exclusive; None: up to now
    label: str  # "2026Q4", "since-2026-10-01"

    def contains(self, moment: datetime) -> bool:
        return moment >= self.start and (self.end is None or moment < self.end)

    def describe(self) -> str:
        if self.end is None:
            return f"since {self.start:%Y-%m-%d}"
        last = self.end - timedelta(days=1)
        return f"{self.label} ({self.start:%Y-%m-%d} to {last:%Y-%m-%d})"


def quarter(year: int, number: int) -> Period:
    start = datetime(year, 3 * (number - 1) + 1, 1, tzinfo=UTC)
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC)
        if number == 4
        else datetime(year, 3 * number + 1, 1, tzinfo=UTC)
    )
    return Period(start, end, f"{year}Q{number}")


def parse_period(text: str) -> Period:
    """A quarter ("2026Q4", "2026-q4") or a start date ("2026-10-01", ISO date-time)."""
    value = text.strip()
    match = _QUARTER.match(value)
    if match:
        return quarter(int(match.group(1)), int(match.group(2)))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a date (2026-10-01) or a quarter (2026Q4)"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return Period(moment, None, f"since-{moment:%Y-%m-%d}")


# -- reading the bundles ------------------------------------------------------------------


@dataclass(frozen=True)
class BundleInfo:
    folder: Path
    journal: Journal
    manifest_ok: bool
    manifest_problems: tuple[str, ...] = ()


def find_bundles(evidence_dir: Path, period: Period) -> tuple[list[BundleInfo], list[str]]:
    """The period's bundles, oldest first, and what could not be read (folder: reason)."""
    bundles: list[BundleInfo] = []
    problems: list[str] = []
    if not evidence_dir.is_dir():
        return bundles, [f"{evidence_dir}: no such folder"]
    for folder in sorted(evidence_dir.iterdir()):
        if (
            not folder.is_dir()
            or folder.name.startswith(".")
            or not (folder / "journal.json").exists()
        ):
            continue
        try:
            journal = load_journal(folder)
        except JournalError as exc:
            problems.append(str(exc))
            continue
        if not period.contains(journal.created):
            continue
        check = verify_manifest(folder)
        bundles.append(BundleInfo(folder, journal, check.ok, tuple(check.lines())))
    bundles.sort(key=lambda b: (b.journal.created, b.journal.id))
    return bundles, problems


# -- aggregation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One scenario in one bundle."""

    bundle: str
    created: datetime
    record: ScenarioRecord


@dataclass
class ScenarioTrend:
    scenario: str
    section_id: str
    section_title: str
    option: str | None
    runs: list[Run] = field(default_factory=list)

    @property
    def passed(self) -> int:
        # earned only: an assisted run is the harness's pass, not the runbook's
        return sum(1 for r in self.runs if r.record.result.verdict.earned)

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.runs) if self.runs else 0.0

    @property
    def budget_s(self) -> float:
        return self.runs[-1].record.result.budget_s if self.runs else 0.0

    def times(self, which: str) -> list[float | None]:
        return [getattr(r.record.result, which) for r in self.runs]

    def median(self, which: str) -> float | None:
        values = [v for v in self.times(which) if v is not None]
        return statistics.median(values) if values else None

    @property
    def last_verdict(self) -> str:
        return self.runs[-1].record.result.verdict.value if self.runs else "-"


@dataclass(frozen=True)
class FindingHistory:
    scenario: str
    finding: Finding  # as last seen
    opened: datetime  # first drill of the scenario in the period that had it
    opened_in: str
    closed: datetime | None  # first later drill of the scenario without it
    closed_in: str = ""

    @property
    def is_open(self) -> bool:
        return self.closed is None


@dataclass(frozen=True)
class Gap:
    """A section (and option) of the current runbook without a drill of its current text."""

    section_id: str
    section_title: str
    option: str  # option key, "" for the section as a whole
    option_title: str
    last_drilled: datetime | None = None  # None: never drilled in the period
    drilled_hash: str = ""
    current_hash: str = ""
    scenario: str = ""


@dataclass(frozen=True)
class SymptomGap:
    """A measurable symptom a section lists that no drill of that section showed."""

    section_id: str
    section_title: str
    line: int
    symptom: str
    runs: int  # drills of the section that measured it
    last_detail: str  # what the last of them measured instead


def _symptoms_never_seen(trends: Sequence[ScenarioTrend]) -> list[SymptomGap]:
    """Per section and symptom line: measured in the section's own drills, never seen."""
    runs: dict[tuple[str, int], int] = {}
    ever: dict[tuple[str, int], bool] = {}
    last: dict[tuple[str, int], tuple[str, str]] = {}  # symptom, detail
    titles: dict[str, str] = {}
    for trend in trends:
        titles[trend.section_id] = trend.section_title
        for run in sorted(trend.runs, key=lambda r: r.created):
            for o in run.record.result.triage:
                if o.section_id != trend.section_id or o.observed is None:
                    continue
                key = (o.section_id, o.line)
                runs[key] = runs.get(key, 0) + 1
                ever[key] = ever.get(key, False) or o.observed
                last[key] = (o.symptom, o.detail)
    gaps = []
    for key in sorted(runs):
        if not ever[key]:
            (section, line), (symptom, detail) = key, last[key]
            gaps.append(
                SymptomGap(section, titles.get(section, section), line, symptom, runs[key], detail)
            )
    return gaps


@dataclass
class Review:
    period: Period
    evidence_dir: Path
    bundles: list[BundleInfo]
    problems: list[str]
    scenarios: list[ScenarioTrend]
    findings: list[FindingHistory]
    never_drilled: list[Gap]
    outdated: list[Gap]
    runbook_path: str = ""
    runbook_note: str = ""  # why never-drilled/outdated could not be computed
    symptoms_never_seen: list[SymptomGap] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return sum(len(s.runs) for s in self.scenarios)

    @property
    def pass_rate(self) -> float:
        return (sum(s.passed for s in self.scenarios) / self.runs) if self.runs else 0.0


def _scenario_trends(bundles: Sequence[BundleInfo]) -> list[ScenarioTrend]:
    trends: dict[str, ScenarioTrend] = {}
    for bundle in bundles:
        for record in bundle.journal.scenarios:
            r = record.result
            trend = trends.setdefault(
                r.scenario, ScenarioTrend(r.scenario, r.section_id, r.section_title, r.option)
            )
            trend.runs.append(Run(bundle.journal.id, bundle.journal.created, record))
    return sorted(trends.values(), key=lambda t: (t.section_title, t.option or "", t.scenario))


def _finding_history(trends: Sequence[ScenarioTrend]) -> list[FindingHistory]:
    out: list[FindingHistory] = []
    for trend in trends:
        open_now: dict[str, tuple[Finding, Run]] = {}
        for run in trend.runs:
            present = {f.key: f for f in run.record.result.findings}
            for key in list(open_now):
                if key not in present:
                    finding, opened = open_now.pop(key)
                    out.append(
                        FindingHistory(
                            trend.scenario,
                            finding,
                            opened.created,
                            opened.bundle,
                            run.created,
                            run.bundle,
                        )
                    )
            for key, finding in present.items():
                if key in open_now:
                    open_now[key] = (finding, open_now[key][1])
                else:
                    open_now[key] = (finding, run)
        for finding, opened in open_now.values():
            out.append(FindingHistory(trend.scenario, finding, opened.created, opened.bundle, None))
    return sorted(out, key=lambda h: (h.is_open is False, h.opened, h.finding.section_id))


def _gaps(runbook: Runbook, trends: Sequence[ScenarioTrend]) -> tuple[list[Gap], list[Gap]]:
    never: list[Gap] = []
    outdated: list[Gap] = []
    for section in runbook.scenarios:
        keys: list[tuple[str, str]] = [(o.key, o.title) for o in section.options] or [("", "")]
        for key, title in keys:
            runs = [
                run
                for t in trends
                for run in t.runs
                if t.section_id == section.id
                and (not key or (t.option or "").lower() == key.lower())
            ]
            if not runs:
                never.append(
                    Gap(section.id, section.title, key, title, current_hash=section.content_hash)
                )
                continue
            if any(r.record.result.section_hash == section.content_hash for r in runs):
                continue
            last = max(runs, key=lambda r: r.created)
            outdated.append(
                Gap(
                    section.id,
                    section.title,
                    key,
                    title,
                    last.created,
                    last.record.result.section_hash,
                    section.content_hash,
                    last.record.result.scenario,
                )
            )
    return never, outdated


def aggregate(
    evidence_dir: Path, period: Period, runbook: Runbook | None, runbook_note: str = ""
) -> Review:
    bundles, problems = find_bundles(evidence_dir, period)
    trends = _scenario_trends(bundles)
    never, outdated = _gaps(runbook, trends) if runbook is not None else ([], [])
    return Review(
        period=period,
        evidence_dir=evidence_dir,
        bundles=bundles,
        problems=problems,
        scenarios=trends,
        findings=_finding_history(trends),
        never_drilled=never,
        outdated=outdated,
        runbook_path=str(runbook.path) if runbook else "",
        runbook_note=runbook_note,
        symptoms_never_seen=_symptoms_never_seen(trends),
    )
