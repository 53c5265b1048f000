"""Across drills: the quarterly review of a period's evidence bundles.

`parse_period("2026Q4")` or `parse_period("2026-10-01")` says which bundles count;
`aggregate` reads them and computes, per scenario, the trend of time-to-detect and
time-to-recover and the pass rate, the findings opened and closed from one drill of a
scenario to the next, the runbook's scenario sections and options never drilled, and
those drilled only against a text that has changed since (the section hash in the
bundle differs from the current runbook's).

Bundles from several machines and runbook versions merge by section hash: a run counts
toward the current text's pass rate only when its section's hash is the current one.
Runs that do not describe the runbook's health are set apart (`SetApart`), never in a
pass rate: drills an interrupt cut short, drills of another runbook file than the one
reviewed (a branch's or a test's copy), drills of an older text of their section, and
sessions that ran a `-k`/`-m` subset. A bundle whose files differ from its manifest is
refused (`Refused`: which bundle, which file) and none of it is used.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbook_checks.drill.result import Verdict
from runbook_checks.errors import UsageError
from runbook_checks.evidence.bundle import bundle_time
from runbook_checks.evidence.journal import (
    Journal,
    JournalError,
    ScenarioRecord,
    finding_from_json,
    load_journal,
)
from runbook_checks.evidence.manifest import verify_manifest
from runbook_checks.findings import Finding, Level
from runbook_checks.gate.baseline import Baseline, load_baseline
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


def parse_period(text: str, flag: str = "--since") -> Period:
    """A quarter ("2026Q4", "2026-q4") or a start date ("2026-10-01", ISO date-time);
    `flag` names the option it came from, for the error."""
    value = text.strip()
    match = _QUARTER.match(value)
    if match:
        return quarter(int(match.group(1)), int(match.group(2)))
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: expected a date (2026-10-01) or a quarter (2026Q4)"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return Period(moment, None, f"since-{moment:%Y-%m-%d}")


# -- reading the bundles ------------------------------------------------------------------


@dataclass(frozen=True)
class BundleInfo:
    folder: Path
    journal: Journal


@dataclass(frozen=True)
class Refused:
    """A bundle left out of the review: its files differ from its manifest (or it has
    none): it can no longer be shown to be what its run wrote."""

    bundle: str
    folder: Path
    problems: tuple[str, ...]

    def message(self) -> str:
        return f"bundle {self.bundle} refused: " + "; ".join(self.problems)


def _bundle_moment(folder: Path) -> datetime | None:
    """When a bundle was made, from its journal (a folder not named by its id)."""
    try:
        return load_journal(folder).created
    except JournalError:
        return None


def find_bundles(
    evidence_dir: Path, period: Period
) -> tuple[list[BundleInfo], list[str], list[Refused]]:
    """The period's bundles, oldest first; what could not be read (folder: reason); and
    the bundles refused because they differ from their manifest."""
    bundles: list[BundleInfo] = []
    problems: list[str] = []
    refused: list[Refused] = []
    if not evidence_dir.is_dir():
        return bundles, [f"{evidence_dir}: no such folder"], refused
    for folder in sorted(evidence_dir.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        named = bundle_time(folder.name)  # a bundle's folder is named by its id
        if named is None and not (folder / "journal.json").exists():
            continue  # not a bundle (a review pack, another folder)
        moment = named or _bundle_moment(folder)
        if moment is not None and not period.contains(moment):
            continue
        check = verify_manifest(folder)
        if not check.ok:
            refused.append(Refused(folder.name, folder, tuple(check.lines())))
            continue
        try:
            journal = load_journal(folder)
        except JournalError as exc:
            problems.append(str(exc))
            continue
        if not period.contains(journal.created):
            continue
        bundles.append(BundleInfo(folder, journal))
    bundles.sort(key=lambda b: (b.journal.created, b.journal.id))
    return bundles, problems, refused


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
    refused: list[Refused] = field(default_factory=list)
    apart: list[SetApart] = field(default_factory=list)
    open_findings: list[OpenFinding] = field(default_factory=list)
    gamedays: list[GameDayHeld] = field(default_factory=list)

    def by_owner(self) -> list[tuple[str, list[tuple[str, list[OpenFinding]]]]]:
        """The open findings by owner (unowned last), then by level (errors first)."""
        owners: dict[str, dict[str, list[OpenFinding]]] = {}
        for item in self.open_findings:
            owners.setdefault(item.owner, {}).setdefault(item.finding.level.value, []).append(item)
        order = {level.value: i for i, level in enumerate(Level)}
        return [
            (owner, sorted(levels.items(), key=lambda kv: order.get(kv[0], 9)))
            for owner, levels in sorted(owners.items(), key=lambda kv: (kv[0] == UNOWNED, kv[0]))
        ]

    @property
    def runs(self) -> int:
        return sum(len(s.runs) for s in self.scenarios)

    @property
    def pass_rate(self) -> float:
        return (sum(s.passed for s in self.scenarios) / self.runs) if self.runs else 0.0


def _scenario_trends(runs: Sequence[Run]) -> list[ScenarioTrend]:
    trends: dict[str, ScenarioTrend] = {}
    for run in runs:
        r = run.record.result
        trend = trends.setdefault(
            r.scenario, ScenarioTrend(r.scenario, r.section_id, r.section_title, r.option)
        )
        trend.runs.append(run)
    return sorted(trends.values(), key=lambda t: (t.section_title, t.option or "", t.scenario))


# -- runs that do not describe the runbook's health ---------------------------------------

INTERRUPTED = "interrupted"
OTHER_TEXT = "another text"
OUTDATED = "outdated text"
SUBSET = "subset"


@dataclass(frozen=True)
class SetApart:
    """A run kept out of the pass rates, and why (`kind`: one of the four above)."""

    run: Run
    kind: str
    detail: str


def _same_file(recorded: str, reviewed: Path) -> bool:
    """Whether a journal's runbook path (relative to its project, or absolute) names the
    reviewed file: compared from the end, folder by folder (another machine's checkout
    is elsewhere)."""
    if not recorded:
        return True  # an old journal without a path: assume the same file
    theirs = Path(recorded).parts
    ours = reviewed.resolve().parts
    return ours[-len(theirs) :] == theirs if len(theirs) <= len(ours) else False


def classify(
    bundle: BundleInfo, record: ScenarioRecord, runbook: Runbook | None
) -> SetApart | None:
    """None when the run describes the reviewed runbook's health, else why it does not."""
    journal = bundle.journal
    run = Run(journal.id, journal.created, record)
    result = record.result
    # a parallel worker's cut drill is not named (its worker saw the interrupt, not the
    # controller that writes the journal): in an interrupted session, an error is one
    cut = result.scenario in journal.interrupted_scenarios or (
        journal.interrupted != ""
        and not journal.interrupted_scenarios
        and result.verdict is Verdict.ERROR
    )
    if cut:
        return SetApart(run, INTERRUPTED, f"cut short by {journal.interrupted or 'an interrupt'}")
    book = journal.environment.runbook
    if runbook is not None and not _same_file(book.path, runbook.path):
        return SetApart(run, OTHER_TEXT, f"drilled {book.path} (sha256 {book.sha256[:12]})")
    if runbook is not None:
        section = next((s for s in runbook.sections if s.id == result.section_id), None)
        if section is None:
            return SetApart(run, OUTDATED, "its section is no longer in the runbook")
        if result.section_hash != section.content_hash:
            return SetApart(
                run,
                OUTDATED,
                f"section text {result.section_hash[:12]}, now {section.content_hash[:12]}",
            )
    if journal.selection.subset:
        return SetApart(run, SUBSET, journal.selection.describe())
    return None


# -- open findings: who owns them ---------------------------------------------------------

UNOWNED = "unowned"
_OWNER = re.compile(r"\bowner\s*(?::|\()\s*([^,;)]+)", re.IGNORECASE)


@dataclass(frozen=True)
class OpenFinding:
    finding: Finding
    scenario: str
    since: datetime
    owner: str
    owner_source: str  # where the owner is named: "baseline entry 3", "runbook line 629"


def owner_of(finding: Finding, runbook: Runbook | None, baseline: Baseline) -> tuple[str, str]:
    """Who owns a finding: the owner its baseline entry names ("(owner: DevOps)"), else
    the runbook's own **Owner** line, else "unowned"."""
    entry = baseline.entry_for(finding)
    match = _OWNER.search(entry.reason) if entry is not None else None
    if entry is not None and match is not None:
        return match.group(1).strip(), f"baseline entry {entry.index}"
    if runbook is not None and runbook.metadata.owner:
        line = runbook.metadata.lines.get("owner", 0)
        return runbook.metadata.owner, f"runbook line {line}" if line else "runbook"
    return UNOWNED, ""


GATE = "gate"
GAMEDAY = "gameday"


def _gate_findings(
    bundles: Sequence[BundleInfo], runbook: Runbook | None, problems: list[str]
) -> list[tuple[Finding, datetime]]:
    """The errors and warnings of the period's last gate run of the reviewed text (a
    `gate --store` bundle), each with the first gate run of the period that had it."""
    runs = [
        b
        for b in bundles
        if b.journal.kind == GATE
        and runbook is not None
        and _same_file(b.journal.environment.runbook.path, runbook.path)
        and b.journal.environment.runbook.sha256 == runbook.sha256
    ]
    first: dict[str, datetime] = {}
    found: list[Finding] = []
    for bundle in runs:  # oldest first
        try:
            report = json.loads((bundle.folder / "gate.json").read_text(encoding="utf-8"))
            found = [
                finding_from_json(item)
                for item in report.get("findings", [])
                if isinstance(item, dict) and item.get("level") in ("error", "warning")
            ]
        except (OSError, ValueError, AttributeError) as exc:
            problems.append(f"{bundle.folder / 'gate.json'}: cannot read the gate's report: {exc}")
            continue
        for finding in found:
            first.setdefault(finding.key, bundle.journal.created)
    return [(f, first[f.key]) for f in found]


def _open_findings(
    history: Sequence[FindingHistory],
    gate: Sequence[tuple[Finding, datetime]],
    runbook: Runbook | None,
    baseline: Baseline,
) -> list[OpenFinding]:
    """Open drill findings, then the last gate run's that no drill finding repeats."""
    out = []
    for item in history:
        if item.is_open:
            owner, source = owner_of(item.finding, runbook, baseline)
            out.append(OpenFinding(item.finding, item.scenario, item.opened, owner, source))
    seen = {o.finding.key for o in out}
    for finding, since in gate:
        if finding.key not in seen:
            seen.add(finding.key)
            owner, source = owner_of(finding, runbook, baseline)
            out.append(OpenFinding(finding, GATE, since, owner, source))
    return out


# -- game days ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GameDayHeld:
    bundle: str
    created: datetime
    record: ScenarioRecord

    @property
    def posted(self) -> list[tuple[str, float | None]]:
        """The status-update stages posted, with when (seconds after the fault)."""
        out = []
        for update in self.record.result.communication:
            if update.get("posted"):
                at = update.get("at_s")
                out.append(
                    (str(update.get("stage", "")), at if isinstance(at, int | float) else None)
                )
        return out


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
    evidence_dir: Path,
    period: Period,
    runbook: Runbook | None,
    runbook_note: str = "",
    baseline: Baseline | None = None,
) -> Review:
    bundles, problems, refused = find_bundles(evidence_dir, period)
    counted: list[Run] = []
    drilled: list[Run] = []  # what says a section was drilled: counted, outdated, subsets
    apart: list[SetApart] = []
    gamedays: list[GameDayHeld] = []
    for bundle in bundles:
        journal = bundle.journal
        for record in journal.scenarios:
            run = Run(journal.id, journal.created, record)
            why = classify(bundle, record, runbook)
            if journal.kind == GAMEDAY:  # people's times: listed on their own, in no rate
                gamedays.append(GameDayHeld(journal.id, journal.created, record))
            elif why is None:
                counted.append(run)
            else:
                apart.append(why)
            if why is None or why.kind in (OUTDATED, SUBSET):
                drilled.append(run)
    trends = _scenario_trends(counted)
    never, outdated = _gaps(runbook, _scenario_trends(drilled)) if runbook is not None else ([], [])
    if baseline is None:
        baseline = load_baseline(None, runbook=runbook.path) if runbook is not None else None
    history = _finding_history(trends)
    return Review(
        period=period,
        evidence_dir=evidence_dir,
        bundles=bundles,
        problems=problems,
        scenarios=trends,
        findings=history,
        never_drilled=never,
        outdated=outdated,
        runbook_path=str(runbook.path) if runbook else "",
        runbook_note=runbook_note,
        symptoms_never_seen=_symptoms_never_seen(trends),
        refused=refused,
        apart=apart,
        open_findings=_open_findings(
            history, _gate_findings(bundles, runbook, problems), runbook, baseline or Baseline(None)
        ),
        gamedays=gamedays,
    )
