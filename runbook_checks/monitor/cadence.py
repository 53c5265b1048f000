"""When the runbook says to speak up: update cadences and escalation rules, as reminders.

Parsed from the runbook's own text, each with its line:

- update cadences: a line outside code that says how often to update
  ("Update incident channel every 30 minutes");
- next-update promises: a status template's "Next update: [15 minutes from now]" (or two
  literal clock times, "Posted: 10:15 AM PST" / "Next update: 10:30 AM PST": 15 minutes);
- escalation rules: the bullets under a "When to Escalate" heading. "Incident duration >
  1 hour" and "Affects > 50% of users" are measured; "Unable to identify root cause"
  comes due when the root cause is still unknown at the first update the cadence asks
  for (the runbook gives no time of its own; by then the update has to say something);
  anything else ("Requires architectural changes") is a judgement no clock can make and
  never comes due by itself.

`due_reminders` says which of them are due at a moment of the incident; each reminder
has a `key`, so a caller that shows them prints each one once. A runbook without such
text has empty rules (no error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runbook_checks.monitor.communicate import FROM_NOW, from_now_s, templates_for
from runbook_checks.runbook.model import Runbook, Template
from runbook_checks.runbook.source import read_source

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*\S)")
_ESCALATION_HEADING = re.compile(
    r"when to escalate|escalat\w* (?:criteria|triggers|rules|when)", re.IGNORECASE
)
_UPDATE_WORDS = re.compile(r"updat|communicat|status|channel|notify|post\b", re.IGNORECASE)
_AMOUNT = r"(\d+(?:\.\d+)?|an?|one)\s*(minutes?|mins?|hours?|hrs?|h)\b"
_EVERY = re.compile(r"\bevery\s+" + _AMOUNT, re.IGNORECASE)
_DURATION_RULE = re.compile(
    r"(?:duration|lasts?|lasting|open|ongoing|longer)\b.*?" + _AMOUNT, re.IGNORECASE
)
_SHARE_RULE = re.compile(r"(\d+(?:\.\d+)?)\s*%", re.IGNORECASE)
_ROOT_CAUSE_RULE = re.compile(
    r"(?:unable|cannot|can't|can not|fail\w*|no)\b.*root cause|root cause\b.*unknown",
    re.IGNORECASE,
)
_NEXT_UPDATE = re.compile(r"next update\s*:\s*(.+?)\s*$", re.IGNORECASE)
_POSTED = re.compile(r"posted\s*:\s*(.+?)\s*$", re.IGNORECASE)
_CLOCK_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\s*([AaPp])?\.?[Mm]?\b")


@dataclass(frozen=True)
class UpdateCadence:
    interval_s: float
    line: int
    text: str  # as written: "Update incident channel every 30 minutes"
    every: str  # the interval as written: "30 minutes"


@dataclass(frozen=True)
class NextUpdate:
    """A status template's promise of the next update, `after_s` after it is posted."""

    stage: str
    after_s: float
    line: int
    template_title: str
    text: str  # "Next update: [15 minutes from now]"


@dataclass(frozen=True)
class EscalationRule:
    kind: str  # "duration" | "affected-share" | "root-cause-unknown" | "judgement"
    line: int
    text: str  # as written: "Incident duration > 1 hour"
    threshold: float | None = None  # seconds (duration) or a share 0..1 (affected-share)


@dataclass(frozen=True)
class CommunicationRules:
    cadences: tuple[UpdateCadence, ...] = ()
    next_updates: tuple[NextUpdate, ...] = ()
    escalations: tuple[EscalationRule, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.cadences or self.next_updates or self.escalations)


@dataclass(frozen=True)
class Reminder:
    key: str  # the same due time of the same rule has the same key: show it once
    kind: str  # "update" | "status-page" | "escalate"
    due_s: float  # seconds since the incident began
    line: int
    message: str


def _seconds(number: str, unit: str) -> float:
    count = 1.0 if number.lower() in ("a", "an", "one") else float(number)
    return count * (3600.0 if unit.lower().startswith("h") else 60.0)


def _t(at_s: float) -> str:
    minutes, rest = divmod(round(at_s), 60)
    return f"T+{minutes}m{rest:02d}s"


def _prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every line outside fenced code."""
    out: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.split("\n"), start=1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def _escalation(line: int, text: str) -> EscalationRule:
    if _ROOT_CAUSE_RULE.search(text):
        return EscalationRule("root-cause-unknown", line, text)
    share = _SHARE_RULE.search(text)
    if share:
        return EscalationRule("affected-share", line, text, float(share.group(1)) / 100)
    duration = _DURATION_RULE.search(text)
    if duration:
        return EscalationRule("duration", line, text, _seconds(*duration.group(1, 2)))
    return EscalationRule("judgement", line, text)


def _minute_of_day(text: str) -> int | None:
    match = _CLOCK_TIME.search(text)
    if match is None:
        return None
    hour, minute, half = int(match.group(1)), int(match.group(2)), match.group(3)
    if half:  # 12-hour clock: 12 AM is 0, 12 PM is 12
        hour = hour % 12 + (12 if half.lower() == "p" else 0)
    return hour * 60 + minute


def _promise(stage: str, template: Template) -> NextUpdate | None:
    lines = template.text.split("\n")
    posted = next((m.group(1) for m in map(_POSTED.search, lines) if m), None)
    for index, line in enumerate(lines):
        match = _NEXT_UPDATE.search(line)
        if match is None:
            continue
        value = match.group(1)
        after: float | None = None
        relative = FROM_NOW.search(value)
        if relative:
            after = from_now_s(relative)
        elif posted is not None:
            start, end = _minute_of_day(posted), _minute_of_day(value)
            if start is not None and end is not None:
                after = ((end - start) % (24 * 60)) * 60.0
        if after:
            return NextUpdate(stage, after, template.line + 1 + index, template.title, line)
    return None


def parse_rules(text: str, templates: Mapping[str, Template] | None = None) -> CommunicationRules:
    """The cadences and escalation rules in a runbook's `text`; the next-update promises
    of `templates` (stage -> template, as `communicate.templates_for` gives them)."""
    cadences: list[UpdateCadence] = []
    escalations: list[EscalationRule] = []
    in_escalation = False
    for number, line in _prose(text):
        heading = _HEADING.match(line)
        if heading:
            in_escalation = bool(_ESCALATION_HEADING.search(heading.group(1)))
            continue
        every = _EVERY.search(line)
        if every and _UPDATE_WORDS.search(line):
            what = _BULLET.match(line)
            cadences.append(
                UpdateCadence(
                    _seconds(*every.group(1, 2)),
                    number,
                    (what.group(1) if what else line).strip(),
                    f"{every.group(1)} {every.group(2)}",
                )
            )
        bullet = _BULLET.match(line)
        if in_escalation and bullet:
            escalations.append(_escalation(number, bullet.group(1).strip()))
    promises = [_promise(stage, t) for stage, t in (templates or {}).items()]
    return CommunicationRules(
        tuple(cadences), tuple(p for p in promises if p is not None), tuple(escalations)
    )


def rules_for(
    runbook: Runbook, section_id: str | None = None, *, text: str | None = None
) -> CommunicationRules:
    """The runbook's rules, with the promises of the templates `section_id` uses (None:
    the general templates). `text` defaults to the runbook's file (pass it for a runbook
    parsed from text)."""
    source = text if text is not None else read_source(runbook.path).text
    templates = templates_for(runbook, section_id)
    return parse_rules(source, templates)


def due_reminders(
    rules: CommunicationRules,
    elapsed_s: float,
    *,
    affected_share: float | None = None,
    root_cause_known: bool = False,
    posts: Sequence[tuple[str, float]] = (),
) -> list[Reminder]:
    """Every reminder due by `elapsed_s` (seconds since the incident began), oldest first.

    `affected_share`: the measured share of users (requests) failing, when known;
    `posts`: the status updates posted so far, (stage, seconds since the start)."""
    due: list[Reminder] = []
    for cadence in rules.cadences:
        count = int(elapsed_s // cadence.interval_s) if cadence.interval_s > 0 else 0
        for k in range(1, count + 1):
            due.append(
                Reminder(
                    f"update:{cadence.line}:{k}",
                    "update",
                    k * cadence.interval_s,
                    cadence.line,
                    f"update due: the runbook says every {cadence.every} "
                    f"(line {cadence.line}: {cadence.text})",
                )
            )
    ordered = sorted(posts, key=lambda p: p[1])
    for index, (stage, at_s) in enumerate(ordered):
        promise = next((p for p in rules.next_updates if p.stage == stage), None)
        if promise is None or stage == "resolved":
            continue
        due_s = at_s + promise.after_s
        later = ordered[index + 1][1] if index + 1 < len(ordered) else None
        if elapsed_s >= due_s and (later is None or later > due_s):
            due.append(
                Reminder(
                    f"status-page:{index}",
                    "status-page",
                    due_s,
                    promise.line,
                    f"status page update due: the {stage} update posted at {_t(at_s)} "
                    f"promised the next by {_t(due_s)} (line {promise.line}: "
                    f"{promise.text.strip()})",
                )
            )
    first_update = min((c.interval_s for c in rules.cadences), default=None)
    for rule in rules.escalations:
        when: float | None = None
        if rule.kind == "duration" and rule.threshold is not None:
            when = rule.threshold if elapsed_s >= rule.threshold else None
        elif rule.kind == "affected-share" and rule.threshold is not None:
            measured = affected_share is not None and affected_share > rule.threshold
            when = elapsed_s if measured else None
        elif rule.kind == "root-cause-unknown" and first_update is not None:
            late = not root_cause_known and elapsed_s >= first_update
            when = first_update if late else None
        if when is not None:
            due.append(
                Reminder(
                    f"escalate:{rule.line}",
                    "escalate",
                    when,
                    rule.line,
                    f'escalate: the runbook says to escalate when "{rule.text}" (line {rule.line})'
                    + (
                        f"; {affected_share:.0%} are affected"
                        if rule.kind == "affected-share" and affected_share is not None
                        else ""
                    ),
                )
            )
    return sorted(due, key=lambda r: r.due_s)


__all__ = [
    "CommunicationRules",
    "EscalationRule",
    "NextUpdate",
    "Reminder",
    "UpdateCadence",
    "due_reminders",
    "parse_rules",
    "rules_for",
]
