"""Triage: do the symptoms a runbook lists lead the on-call engineer to the right section?

During a drill every section's symptom probes are evaluated (not only the drilled
section's), while the fault is in. One drill gives one row of the triage matrix (fault x
section: symptoms observed / measurable); the findings compare the drilled section's row
with the others':

- `symptom-not-observed`: the section lists a symptom that its own failure does not show;
- `triage-ambiguous`: another section's symptoms match as well or better, so an on-call
  engineer reading symptoms would likely open the wrong section;
- `symptom-unmeasurable`: a symptom no signal can show (people's reports), listed once
  per section with the reason, so the gap is visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

SYMPTOM_NOT_OBSERVED = "symptom-not-observed"
TRIAGE_AMBIGUOUS = "triage-ambiguous"
SYMPTOM_UNMEASURABLE = "symptom-unmeasurable"


@dataclass(frozen=True)
class Observation:
    """One symptom probe's outcome during one drill's fault window."""

    section_id: str
    line: int
    symptom: str
    kind: str  # the probe's kind: promql, http, log, status-page, manual
    observed: bool | None  # None: not measured (a person's report, a tool missing)
    detail: str = ""  # the value that decided it, or why it was not measured

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Score:
    """One cell of the triage matrix: a section's measurable symptoms seen in one drill."""

    observed: int
    measurable: int
    listed: int  # every symptom bullet, measurable or not

    @property
    def share(self) -> float:
        return self.observed / self.measurable if self.measurable else 0.0

    def text(self) -> str:
        return f"{self.observed}/{self.measurable}" if self.measurable else "-"


def scores(observations: Iterable[Observation]) -> dict[str, Score]:
    """Section id -> its cell of the matrix, in the order sections first appear."""
    cells: dict[str, list[int]] = {}
    for o in observations:
        cell = cells.setdefault(o.section_id, [0, 0, 0])
        cell[2] += 1
        if o.observed is not None:
            cell[1] += 1
            cell[0] += int(o.observed)
    return {k: Score(*v) for k, v in cells.items()}


@dataclass(frozen=True)
class TriageIssue:
    kind: str
    level: str  # "warning" | "info"
    message: str
    line: int  # the symptom's line (0: the section's)
    statement: str  # the symptom as written, or the sections confused with
    suggestion: str
    cause: str


def triage_issues(
    own: str, observations: Sequence[Observation], titles: Mapping[str, str]
) -> list[TriageIssue]:
    """What the drill of section `own` says about the runbook's symptoms."""
    issues: list[TriageIssue] = []
    mine = [o for o in observations if o.section_id == own]
    for o in mine:
        if o.observed is False:
            issues.append(
                TriageIssue(
                    SYMPTOM_NOT_OBSERVED,
                    "warning",
                    f"the section lists {o.symptom!r}, but its own failure did not show it "
                    f"({o.detail})",
                    o.line,
                    o.symptom,
                    "describe what this failure does show, or name the condition that "
                    "makes this symptom appear",
                    f"{o.kind}: not observed",
                )
            )
    unmeasurable = [o for o in mine if o.observed is None]
    if unmeasurable:
        listed = "; ".join(f"line {o.line} {o.symptom!r} ({o.detail})" for o in unmeasurable)
        issues.append(
            TriageIssue(
                SYMPTOM_UNMEASURABLE,
                "info",
                f"{len(unmeasurable)} of the section's symptoms cannot be measured: {listed}",
                unmeasurable[0].line,
                " | ".join(o.symptom for o in unmeasurable),
                "pair each with a signal the on-call engineer can check (a metric, a log "
                "line, a status code)",
                "unmeasurable",
            )
        )
    cells = scores(observations)
    mine_score = cells.get(own, Score(0, 0, 0))
    rivals = [
        (section, score)
        for section, score in cells.items()
        if section != own and score.observed and score.share >= mine_score.share
    ]
    if rivals:
        rivals.sort(key=lambda item: (-item[1].share, -item[1].observed))
        named = ", ".join(f"{titles.get(s, s)} ({score.text()})" for s, score in rivals)
        where = (
            f"its own symptoms matched {mine_score.text()}"
            if mine_score.measurable
            else "its own section lists no measurable symptom"
        )
        issues.append(
            TriageIssue(
                TRIAGE_AMBIGUOUS,
                "warning",
                f"the symptoms this failure showed match {named} as well or better; {where}: "
                "an on-call engineer going by symptoms would likely open the wrong section",
                0,
                " | ".join(s for s, _ in rivals),
                "list symptoms that tell this failure apart (what only it shows), and say "
                "in the other sections how to rule it out",
                "ambiguous: " + ",".join(sorted(s for s, _ in rivals)),
            )
        )
    return issues


def matrix(
    rows: Mapping[str, Sequence[Observation]],
) -> tuple[list[str], dict[str, dict[str, Score]]]:
    """Columns (sections, in first-seen order) and drill -> section -> cell."""
    columns: list[str] = []
    table: dict[str, dict[str, Score]] = {}
    for drill, observations in rows.items():
        cells = scores(observations)
        table[drill] = cells
        for section in cells:
            if section not in columns:
                columns.append(section)
    return columns, table
