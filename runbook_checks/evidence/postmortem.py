"""Post-mortem drafts in the shape of the runbook's own "Post-Mortem Template".

The template's headings are kept, in its order; each is filled from what the drill
measured (times, samples, ledger, steps, findings). Headings the drill cannot speak to
are left for people, saying so. Without a template in the runbook, the usual headings
are used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from runbook_checks.drill.result import DrillResult, Verdict
from runbook_checks.evidence.journal import ScenarioRecord
from runbook_checks.findings import Level
from runbook_checks.runbook.model import Runbook, Template

DEFAULT_HEADINGS = (
    "Incident Details",
    "Timeline",
    "Root Cause",
    "Impact",
    "What Went Well",
    "What Went Wrong",
    "Action Items",
)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
PRIORITY = {Level.ERROR: "P0", Level.WARNING: "P1", Level.INFO: "P2"}


def find_template(runbook: Runbook | None) -> Template | None:
    if runbook is None:
        return None
    return next(
        (t for t in runbook.templates if re.search(r"post-?mortem", t.title, re.IGNORECASE)), None
    )


def template_headings(template: Template | None) -> tuple[str, list[str]]:
    """The template's title line ("# Incident Post-Mortem: [Title]") and its headings."""
    if template is None:
        return "# Incident Post-Mortem: [Title]", list(DEFAULT_HEADINGS)
    title = "# Incident Post-Mortem: [Title]"
    headings: list[str] = []
    for line in template.text.splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        if len(match.group(1)) == 1 and not headings:
            title = line.strip()
        else:
            headings.append(match.group(2))
    return title, headings or list(DEFAULT_HEADINGS)


def _t(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def _outage(result: DrillResult) -> tuple[int, int, float]:
    """(failed samples, all samples, seconds of the longest failing run)."""
    samples = sorted(result.samples, key=lambda s: s.at_s)
    failed = sum(1 for s in samples if not s.ok)
    longest, start = 0.0, None
    for sample in samples:
        if not sample.ok and start is None:
            start = sample.at_s
        elif sample.ok and start is not None:
            longest, start = max(longest, sample.at_s - start), None
    if start is not None and samples:
        longest = max(longest, samples[-1].at_s - start)
    return failed, len(samples), longest


def _details(record: ScenarioRecord, bundle: str) -> list[str]:
    r = record.result
    when = (
        datetime.fromtimestamp(r.started_wall, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if r.started_wall
        else "-"
    )
    failed, total, longest = _outage(r)
    kind = "game day" if record.outcome == "gameday" else "drill"
    duration = (
        f"{_t(r.time_to_recover_s)} from injection to recovery"
        if r.time_to_recover_s is not None
        else "no recovery observed"
    )
    return [
        f"- **Date**: {when} ({kind}, evidence bundle `{bundle}`)",
        f"- **Duration**: {duration} (budget {r.budget_s:.0f}s)",
        f"- **Severity**: {r.severity or '-'}",
        f"- **Impact**: /health failed {failed} of {total} samples "
        f"(longest outage {longest:.1f}s)" + (f"; {r.ledger.summary()}" if r.ledger else ""),
        f"- **Scenario**: {r.section_title} / option {r.option or '-'}: `{r.scenario}`",
        f"- **Verdict**: {r.verdict.value}" + (f" ({r.error})" if r.error else ""),
    ]


def _timeline(record: ScenarioRecord, _bundle: str) -> list[str]:
    r = record.result
    entries: list[tuple[float, str]] = [
        (e.at_s, f"{e.name}" + (f": {e.detail}" if e.detail else "")) for e in r.events
    ]
    for step in r.steps:
        if step.phase in ("mitigation", "on-behalf", "operator") or "DETECTED" in step.detail:
            what = step.executed or step.written
            entries.append(
                (
                    step.started_s,
                    f"ran `{what[:100]}` ({step.status})"
                    + (f": {step.detail[:120]}" if step.detail else ""),
                )
            )
    entries.sort(key=lambda e: e[0])
    return [f"- T{at:+.2f}s: {text}" for at, text in entries] or ["- (no events recorded)"]


def _root_cause(record: ScenarioRecord, _bundle: str) -> list[str]:
    r = record.result
    lines = [
        f"Injected fault ({'game day' if record.outcome == 'gameday' else 'drill'}): "
        f"{r.fault or '-'}."
    ]
    errors = r.runbook_errors
    if errors:
        lines.append("")
        lines.append("The runbook's own steps fell short:")
        lines += [f"{n}. line {f.line}: {f.message}" for n, f in enumerate(errors, 1)]
    if r.error:
        lines += ["", f"The drill reported: {r.error}"]
    return lines


def _impact(record: ScenarioRecord, _bundle: str) -> list[str]:
    r = record.result
    failed, total, longest = _outage(r)
    lines = [f"- /health failed for {failed} of {total} samples; longest outage {longest:.1f}s"]
    if r.ledger is not None:
        lines.append(
            f"- Writes: {r.ledger.summary()}; {r.ledger.unacknowledged} refused "
            "(not acknowledged, so not lost)"
        )
        lines += [f"- Lost: `{w.name}` ({w.phase}): {w.reason}" for w in r.ledger.lost[:10]]
    return lines


def _went_well(record: ScenarioRecord, _bundle: str) -> list[str]:
    r = record.result
    lines: list[str] = []
    if r.time_to_detect_s is not None:
        lines.append(f"- Detected after {_t(r.time_to_detect_s)}")
    if r.time_to_recover_s is not None and r.time_to_recover_s <= r.budget_s:
        lines.append(
            f"- Recovered after {_t(r.time_to_recover_s)}, within the {r.budget_s:.0f}s budget"
        )
    if r.ledger is not None and r.ledger.ok:
        lines.append(f"- No acknowledged write lost ({r.ledger.acknowledged} checked)")
    ok = sum(
        1
        for s in r.steps
        if s.status == "ok" and s.phase in ("investigation", "mitigation", "operator")
    )
    if ok:
        lines.append(f"- {ok} runbook step(s) ran as written")
    return lines or ["- (nothing measured went well)"]


def _went_wrong(record: ScenarioRecord, _bundle: str) -> list[str]:
    r = record.result
    lines: list[str] = []
    if r.time_to_detect_s is None:
        lines.append("- The runbook's diagnostics did not show the failure")
    if r.time_to_recover_s is None:
        lines.append("- No recovery was observed")
    elif r.time_to_recover_s > r.budget_s:
        lines.append(
            f"- Recovery took {_t(r.time_to_recover_s)}, over the {r.budget_s:.0f}s budget"
        )
    if r.ledger is not None and r.ledger.lost:
        lines.append(f"- {len(r.ledger.lost)} acknowledged write(s) lost")
    lines += [f"- line {f.line}: {f.message}" for f in r.findings if f.level is not Level.INFO]
    if r.verdict is Verdict.ERROR and r.error:
        lines.append(f"- The drill could not complete: {r.error}")
    return lines or ["- (nothing measured went wrong)"]


def _actions(record: ScenarioRecord, _bundle: str, owner: str = "") -> list[str]:
    r = record.result
    who = f" (@{owner.replace(' ', '-').lower()})" if owner else ""
    items = [
        f"{n}. [{PRIORITY[f.level]}] {f.suggestion or 'fix: ' + f.message}"
        f" (runbook line {f.line}){who}"
        for n, f in enumerate(r.findings, 1)
    ]
    if record.slow:
        items.append(
            f"{len(items) + 1}. [P1] Make recovery fit the {r.budget_s:.0f}s budget "
            f"(took {_t(r.time_to_recover_s)}){who}"
        )
    return items or ["1. [P2] (no action measured; decide at the review)"]


def _to_fill(what: str) -> Callable[[ScenarioRecord, str], list[str]]:
    def fill(_record: ScenarioRecord, _bundle: str) -> list[str]:
        return [f"- ({what})"]

    return fill


def draft(record: ScenarioRecord, runbook: Runbook | None, bundle: str) -> str:
    """A Markdown post-mortem draft for one failed or slow scenario."""
    title_line, headings = template_headings(find_template(runbook))
    owner = runbook.metadata.owner or "" if runbook is not None else ""
    r = record.result
    name = f"{'Game day' if record.outcome == 'gameday' else 'Drill'}: {r.section_title}" + (
        f" / option {r.option}" if r.option else ""
    )
    title = (
        title_line.replace("[Title]", name) if "[Title]" in title_line else f"{title_line} ({name})"
    )
    fillers: list[tuple[str, Callable[[ScenarioRecord, str], list[str]]]] = [
        ("detail", _details),
        ("timeline", _timeline),
        ("root cause", _root_cause),
        ("impact", _impact),
        ("went well", _went_well),
        ("went wrong", _went_wrong),
        ("action", lambda rec, b: _actions(rec, b, owner)),
        ("lesson", _to_fill("to be written at the review")),
        ("follow", _to_fill("to be scheduled: date, attendees")),
    ]
    out = [title, ""]
    for heading in headings:
        fill = next(
            (f for key, f in fillers if key in heading.lower()), _to_fill("to be completed")
        )
        out += [f"## {heading}", *fill(record, bundle), ""]
    return "\n".join(out).rstrip() + "\n"
