"""The runbook's communication templates, filled with a drill's facts and posted.

A runbook's status-page templates are what customers read during an incident. This
module picks the template for each stage (`templates_for`: the section's own "Status Page
Update" / "Resolution Update" when it has them, else the Communication Guidelines'
Investigating / Identified / Monitoring / Resolved), fills its `[placeholders]` with what
a drill measured (`fill`), posts the investigating update at detection and the resolved
one at recovery to a status page (`communicate`), and says where the text fails the
reader (`template_findings`):

- mis-encoded characters ("ðŸ”´" for "🔴") are kept as written, never repaired: the
  status page would show them so (`status-update-unreadable`);
- a placeholder no fact fills stays as written (`status-update-unfilled`);
- a literal fact cannot describe this incident: a clock time ("10:15 AM PST"), a date, a
  duration ("23 minutes"), a root cause or fix that shares no word with the fault's
  (`status-update-stale`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runbook_checks.findings import Finding, Level
from runbook_checks.monitor.statuspage import PostedUpdate, StatusPageClient
from runbook_checks.runbook import mojibake
from runbook_checks.runbook.model import Runbook, Section, Template
from runbook_checks.vocabulary import Vocabulary

STAGES = ("investigating", "identified", "monitoring", "resolved")
UNREADABLE = "status-update-unreadable"
UNFILLED = "status-update-unfilled"
STALE = "status-update-stale"

# Statuspage's impact levels for the runbook's severities
IMPACT_BY_SEVERITY = {"SEV-1": "critical", "SEV-2": "major", "SEV-3": "minor", "SEV-4": "none"}

_STAGE_OF_TITLE = (
    ("resolved", re.compile(r"resol", re.IGNORECASE)),
    ("monitoring", re.compile(r"monitor", re.IGNORECASE)),
    ("identified", re.compile(r"identif", re.IGNORECASE)),
    ("investigating", re.compile(r"investigat|status page update|initial", re.IGNORECASE)),
)
_NOT_STATUS = re.compile(r"post-?mortem", re.IGNORECASE)

# what customers call the part of the service a section's title names

PLACEHOLDER = re.compile(r"\[([^\[\]\n]{1,60})\]")
FROM_NOW = re.compile(r"(\d+|an?|one)\s+(minutes?|mins?|hours?)\s+from\s+now", re.IGNORECASE)
_CLOCK = re.compile(
    r"\b\d{1,2}:\d{2}(?:\s?[AaPp]\.?[Mm]\.?)?(?:\s?(?:UTC|GMT|[A-Z][SD]T|[A-Z]{3,4})\b)?"
)
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_DURATION = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:minutes?|mins?|hours?|hrs?|seconds?|secs?|days?)\b", re.IGNORECASE
)
_CAUSE_LINE = re.compile(r"^\s*(root cause|cause|fix|resolution)\s*:\s*(.+?)\s*$", re.IGNORECASE)
_WORD = re.compile(r"[a-z]{4,}")
_COMMON = frozenset(  # words that say nothing about which fault it was
    {"this", "that", "with", "from", "have", "been", "were", "will", "your", "their"}
    | {"there", "into", "about", "after", "issue", "problem", "users", "service", "incident"}
)


@dataclass(frozen=True)
class IncidentFacts:
    """What is known about one incident, in the words a status page needs."""

    section_id: str
    section_title: str
    severity: str | None  # "SEV-1"
    feature: str  # the affected feature, in the words customers use ("Uploads" ...)
    issue: str  # what failed, in plain words (the fault's description)
    impact: str  # what users experience, measured ("uploads fail (100% of 12 requests)")
    started_wall: float
    detected_wall: float | None
    recovered_wall: float | None
    root_cause: str | None
    fix: str | None
    timezone: str = "UTC"


@dataclass(frozen=True)
class FilledTemplate:
    stage: str  # investigating | identified | monitoring | resolved
    template_title: str
    template_line: int
    name: str  # the incident name: the template's first line, filled
    body: str  # the rest, filled: what customers read under the name
    unfilled: tuple[str, ...]  # [placeholders] no fact could fill, as written
    mis_encoded: tuple[str, ...]  # mojibake in the text, kept as written
    stale: tuple[str, ...]  # literal facts that cannot describe this incident
    section_id: str = ""  # where the template is written (a scenario section, or its own)
    # the runbook line of each unfilled / mis-encoded / stale text (the template's line
    # when the text came from the facts)
    lines: tuple[tuple[str, int], ...] = ()

    @property
    def text(self) -> str:
        """What customers would read: the name, a blank line, the body."""
        return f"{self.name}\n\n{self.body}" if self.body else self.name

    def line_of(self, text: str) -> int:
        return next((line for t, line in self.lines if t == text), self.template_line)


@dataclass(frozen=True)
class CommunicationRecord:
    facts: IncidentFacts
    filled: tuple[FilledTemplate, ...]  # one per stage the runbook has a template for
    posted: tuple[PostedUpdate, ...] = ()  # what the status page received

    @property
    def due_stages(self) -> tuple[str, ...]:
        """The stages posted, or due to be (without a status page): investigating once
        detected, resolved once recovered."""
        due = [u.status for u in self.posted]
        if self.facts.detected_wall is not None:
            due.append("investigating")
        if self.facts.recovered_wall is not None:
            due.append("resolved")
        return tuple(s for s in STAGES if s in due)

    def stage(self, stage: str) -> FilledTemplate | None:
        return next((f for f in self.filled if f.stage == stage), None)


# -- which template ---------------------------------------------------------------------


def feature_for(section_title: str, vocabulary: Vocabulary) -> str:
    """The customer-facing feature a section's title names, in the service's words
    (`vocabulary.customer_features`: "SEV-3: Uploads Failing" -> "Uploads");
    what customers call the whole service when it names an internal part."""
    for pattern, feature in vocabulary.customer_features:
        if re.search(pattern, section_title, re.IGNORECASE):
            return feature
    return vocabulary.customer_name


def stage_of(template: Template) -> str | None:
    """The status stage a template is written for, by its title; None for others."""
    if _NOT_STATUS.search(template.title):
        return None
    return next((stage for stage, p in _STAGE_OF_TITLE if p.search(template.title)), None)


def _within(template: Template, section: Section) -> bool:
    return section.line <= template.line <= section.end_line


def templates_for(runbook: Runbook, section_id: str | None) -> dict[str, Template]:
    """Stage -> the template to use for `section_id`: the section's own where it has one
    for the stage, else the runbook's general one (outside every scenario section).
    `section_id` None: the general ones only."""
    section = runbook.section(section_id) if section_id is not None else None
    chosen: dict[str, Template] = {}
    general: dict[str, Template] = {}
    for template in runbook.templates:
        stage = stage_of(template)
        if stage is None:
            continue
        if section is not None and _within(template, section):
            chosen.setdefault(stage, template)
        elif not any(_within(template, s) for s in runbook.scenarios):
            general.setdefault(stage, template)
    return {s: chosen.get(s) or general[s] for s in STAGES if s in chosen or s in general}


def template_section(runbook: Runbook, template: Template) -> str:
    """The scenario section a template is written in, else the heading it is under."""
    owner = next((s for s in runbook.scenarios if _within(template, s)), None)
    return owner.id if owner is not None else template.section


# -- filling ------------------------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clock_text(wall: float, timezone: str = "UTC") -> str:
    """A wall time as a status page shows it: "2:05 PM UTC"."""
    moment = datetime.fromtimestamp(wall, _zone(timezone))
    return moment.strftime("%I:%M %p %Z").lstrip("0")


def from_now_s(match: re.Match[str]) -> float:
    count = match.group(1).lower()
    number = 1.0 if count in ("a", "an", "one") else float(count)
    return number * (3600.0 if match.group(2).lower().startswith("h") else 60.0)


def _duration_minutes(facts: IncidentFacts, now_wall: float) -> int:
    end = facts.recovered_wall if facts.recovered_wall is not None else now_wall
    return max(1, math.ceil((end - facts.started_wall) / 60.0))


def _value(key: str, after: str, facts: IncidentFacts, now_wall: float) -> str | None:
    word = " ".join(key.lower().split())
    simple = {
        "feature": facts.feature,
        "affected feature": facts.feature,
        "service": facts.feature,
        "specific issue": facts.issue,
        "issue": facts.issue,
        "impact": facts.impact,
        "user impact": facts.impact,
        "time": clock_text(now_wall, facts.timezone),
        "current time": clock_text(now_wall, facts.timezone),
        "severity": facts.severity,
        "brief explanation": facts.root_cause or facts.issue,
        "root cause": facts.root_cause,
        "fix": facts.fix,
    }
    if word in simple:
        return simple[word]
    match = FROM_NOW.fullmatch(word)
    if match:
        return clock_text(now_wall + from_now_s(match), facts.timezone)
    if word in ("x", "n", "duration") and after.lstrip().lower().startswith("min"):
        return str(_duration_minutes(facts, now_wall))  # until recovery, else until now
    return None


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _COMMON}


def _stale(text: str, facts: IncidentFacts) -> list[tuple[str, int]]:
    """Literal facts in a template's text (placeholders aside), with their line index."""
    known = _stems(" ".join(filter(None, (facts.root_cause, facts.fix, facts.issue))))
    found: list[tuple[str, int]] = []
    for index, raw in enumerate(text.split("\n")):
        line = PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), raw)
        for pattern in (_CLOCK, _DATE, _DURATION):
            found.extend((m.group(0).strip(), index) for m in pattern.finditer(line))
        cause = _CAUSE_LINE.match(line)
        if cause and cause.group(2).strip() and not (_stems(cause.group(2)) & known):
            found.append((cause.group(2).rstrip("."), index))
    return found


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _runbook_line(template: Template, text: str, index: int | None = None) -> int:
    """The file line of `text` in the template (its fence is on `template.line`)."""
    if index is None:
        index = next((i for i, t in enumerate(template.text.split("\n")) if text in t), -1)
    return template.line + 1 + index if index >= 0 else template.line


def fill(
    template: Template,
    stage: str,
    facts: IncidentFacts,
    *,
    now_wall: float,
    section_id: str = "",
) -> FilledTemplate:
    """The template with every placeholder a fact fills replaced; the rest as written.

    `now_wall` is when the update is posted: `[Time]` and `[15 minutes from now]` are
    computed from it, in `facts.timezone`. Mis-encoded characters stay as written."""
    unfilled: list[str] = []
    unfilled_at: list[tuple[str, int]] = []

    def substitute(match: re.Match[str]) -> str:
        after = match.string[match.end() :]
        value = _value(match.group(1), after, facts, now_wall)
        if value is None:
            unfilled.append(match.group(0))
            return match.group(0)
        return value

    lines: list[str] = []
    for index, raw in enumerate(template.text.split("\n")):
        before = len(unfilled)
        lines.append(PLACEHOLDER.sub(substitute, raw).rstrip())
        unfilled_at.extend(
            (text, _runbook_line(template, text, index)) for text in unfilled[before:]
        )
    while lines and not lines[0].strip():
        lines.pop(0)
    name = lines[0].strip() if lines else ""
    body = "\n".join(lines[1:]).strip("\n")
    mis_encoded = _unique(m.text for m in mojibake.find([name, *body.split("\n")]))
    stale = _stale(template.text, facts)
    where = [
        *unfilled_at,
        *((text, _runbook_line(template, text)) for text in mis_encoded),
        *((text, _runbook_line(template, text, index)) for text, index in stale),
    ]
    return FilledTemplate(
        stage=stage,
        template_title=template.title,
        template_line=template.line,
        name=name,
        body=body,
        unfilled=_unique(unfilled),
        mis_encoded=mis_encoded,
        stale=_unique(text for text, _ in stale),
        section_id=section_id or template.section,
        lines=tuple(dict.fromkeys(where)),
    )


# -- posting ------------------------------------------------------------------------------


def impact_for(severity: str | None) -> str:
    """The status page's impact level for a runbook severity ("SEV-1" -> "critical")."""
    return IMPACT_BY_SEVERITY.get((severity or "").upper(), "none")


def post_time(stage: str, facts: IncidentFacts, now_wall: float) -> float:
    """When a stage's update is posted: investigating at detection, resolved at
    recovery (when the facts have them), the others at `now_wall`."""
    if stage == "investigating" and facts.detected_wall is not None:
        return facts.detected_wall
    if stage == "resolved" and facts.recovered_wall is not None:
        return facts.recovered_wall
    return now_wall


def communicate(
    runbook: Runbook,
    facts: IncidentFacts,
    client: StatusPageClient | None,
    *,
    now_wall: float,
) -> CommunicationRecord:
    """Fill every stage's template; post investigating at detection and resolved at
    recovery (when the facts have them and there is a status page)."""
    filled: list[FilledTemplate] = []
    posted: list[PostedUpdate] = []
    due = CommunicationRecord(facts, ()).due_stages
    for stage, template in templates_for(runbook, facts.section_id).items():
        text = fill(
            template,
            stage,
            facts,
            now_wall=post_time(stage, facts, now_wall),
            section_id=template_section(runbook, template),
        )
        filled.append(text)
        if client is not None and stage in due:
            posted.append(client.post(stage, text.name, text.body, impact_for(facts.severity)))
    return CommunicationRecord(facts, tuple(filled), tuple(posted))


# -- findings -----------------------------------------------------------------------------


def _quoted(texts: Iterable[str]) -> str:
    return ", ".join(f"'{t}'" for t in texts)


def template_findings(*records: CommunicationRecord, source: str = "communicate") -> list[Finding]:
    """One finding per template and kind over all `records` (a drill repeated gives the
    same template's problems once), each naming the template's line and the text."""
    grouped: dict[tuple[str, int, str], tuple[FilledTemplate, dict[str, None]]] = {}
    for record in records:
        for filled in record.filled:
            kinds: Mapping[str, tuple[str, ...]] = {
                UNREADABLE: filled.mis_encoded,
                UNFILLED: filled.unfilled if filled.stage in record.due_stages else (),
                STALE: filled.stale,
            }
            for kind, texts in kinds.items():
                if texts:
                    key = (filled.section_id, filled.template_line, kind)
                    _, seen = grouped.setdefault(key, (filled, {}))
                    seen.update(dict.fromkeys(texts))
    return [
        _finding(kind, filled, tuple(texts), source)
        for (_, _, kind), (filled, texts) in grouped.items()
    ]


def _finding(kind: str, filled: FilledTemplate, texts: tuple[str, ...], source: str) -> Finding:
    where = f"the {filled.template_title!r} template (line {filled.template_line})"
    if kind == UNREADABLE:
        repaired = ", ".join(f"'{t}' -> '{mojibake.repair(t) or t}'" for t in texts)
        level = Level.ERROR
        message = (
            f"{where} shows customers mis-encoded characters {_quoted(texts)} in the "
            f"{filled.stage} update"
        )
        suggestion = f"save the runbook as UTF-8 with the characters repaired: {repaired}"
    elif kind == UNFILLED:
        level = Level.ERROR
        message = (
            f"{where} leaves {_quoted(texts)} in the posted {filled.stage} update: no fact "
            "of the incident fills it"
        )
        suggestion = "name the placeholder after a fact the responder has, or remove it"
    else:
        level = Level.WARNING
        message = f"{where} states {_quoted(texts)} as fact; it cannot describe this incident"
        suggestion = (
            "write placeholders ([Time], [X] minutes, [brief explanation]) where the "
            "template gives one incident's times, duration or cause"
        )
    return Finding(
        level,
        kind,
        filled.section_id,
        message,
        line=filled.line_of(texts[0]),
        statement=f"{filled.template_title}: {' | '.join(texts)}",
        suggestion=suggestion,
        evidence=filled.text,
        source=source,
        cause=f"{filled.template_title}: {kind}",
    )


__all__ = [
    "FROM_NOW",
    "IMPACT_BY_SEVERITY",
    "STAGES",
    "STALE",
    "UNFILLED",
    "UNREADABLE",
    "CommunicationRecord",
    "FilledTemplate",
    "IncidentFacts",
    "clock_text",
    "communicate",
    "feature_for",
    "fill",
    "from_now_s",
    "impact_for",
    "post_time",
    "stage_of",
    "template_findings",
    "template_section",
    "templates_for",
]
