"""Detectors: does one diagnostic's result show the anomaly? (None = it does not.)

Small, composable `Detector`s over a `StepResult`; scenarios combine them with `any_of`.
Each names the commands it reads (so a drill can prove it is derived from the section's
own steps) and judges only what the command printed or returned, as an engineer would,
and only what was produced after the fault went in: a log line written before the
injection, or the command's own error message, is never detection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime

from runbook_checks.drill.runner import DrillContext
from runbook_checks.drill.spec import Detector, reads
from runbook_checks.steps.base import StepResult, StepStatus

__all__ = [
    "Detector",
    "any_of",
    "disk_full",
    "exit_code_not_zero",
    "http_failing",
    "http_status",
    "log_lines_since_injection",
    "log_matches",
    "output_matches",
    "process_missing",
    "reads",
    "rows_where",
    "sql_error",
]


def any_of(*detectors: Detector) -> Detector:
    """The first of `detectors` that shows the anomaly."""

    def judge(result: StepResult, ctx: DrillContext) -> str | None:
        for detector in detectors:
            shown = detector(result, ctx)
            if shown:
                return shown
        return None

    patterns = tuple(p for d in detectors for p in d.reads)
    names = " | ".join(d.name for d in detectors)
    return Detector(patterns, judge, f"any_of({names})", parts=detectors)


def _cmd(result: StepResult) -> str:
    return result.step.text.strip()


def http_failing(path_part: str = "/health") -> Detector:
    """A curl of `path_part` that got no answer or a 5xx."""

    @reads(rf"^curl\b.*{re.escape(path_part)}", name=f"http_failing({path_part})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if result.http_status is None and result.status is not StepStatus.OK:
            return f"`{_cmd(result)[:60]}` got no answer: {result.error[:100]}"
        if result.http_status is not None and result.http_status >= 500:
            return f"`{_cmd(result)[:60]}` answered {result.http_status}"
        return None

    return detect


def http_status(path_part: str, statuses: set[int]) -> Detector:
    @reads(rf"^curl\b.*{re.escape(path_part)}", name=f"http_status({path_part})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if result.http_status in statuses:
            return f"`{_cmd(result)[:60]}` answered {result.http_status}: {result.output[:120]}"
        return None

    return detect


def output_matches(command: str, pattern: str, flags: int = re.IGNORECASE) -> Detector:
    """The command's output (not its own error) contains `pattern`."""
    regex = re.compile(pattern, flags)

    @reads(command, name=f"output_matches({command}, {pattern})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        match = regex.search(result.output)
        return f"`{_cmd(result)[:50]}` shows {match.group(0)[:120]!r}" if match else None

    return detect


def log_lines_since_injection(result: StepResult, ctx: DrillContext) -> Iterator[dict[str, object]]:
    """The JSON log records a `tail`/`grep` of the API's logs printed that were written
    after the fault went in (the log files outlive drills and earlier phases)."""
    if not result.ok:
        return
    since = ctx.injected_wall
    for line in result.output.splitlines():
        try:
            record = json.loads(line)
            written = datetime.fromisoformat(str(record["ts"])).timestamp()
        except (ValueError, KeyError, TypeError):
            continue  # an excerpt's cut line, or not a JSON line
        if isinstance(record, dict) and (since is None or written >= since):
            yield record


def log_matches(command: str, pattern: str, flags: int = re.IGNORECASE) -> Detector:
    """A log line printed by `command` (tail/grep of the API's logs), written after the
    injection, contains `pattern`."""
    regex = re.compile(pattern, flags)

    @reads(command, name=f"log_matches({command}, {pattern})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        for record in log_lines_since_injection(result, ctx):
            text = json.dumps(record)
            match = regex.search(text)
            if match:
                return f"`{_cmd(result)[:50]}` shows a new log line: {str(record.get('msg'))[:120]}"
        return None

    return detect


def exit_code_not_zero(command: str) -> Detector:
    @reads(command, name=f"exit_code_not_zero({command})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if result.exit_code not in (None, 0):
            return f"`{_cmd(result)[:50]}` exited {result.exit_code}: {result.output[:100]}"
        return None

    return detect


def sql_error(pattern: str = r"connection|refused|terminat|timeout") -> Detector:
    regex = re.compile(pattern, re.IGNORECASE)

    def judge(result: StepResult, ctx: DrillContext) -> str | None:
        if (
            result.step.kind.value == "sql"
            and result.status is not StepStatus.OK
            and regex.search(result.error)
        ):
            return f"SQL at line {result.step.line} failed: {result.error[:120]}"
        return None

    # psql lines (`psql $DATABASE_URL -c ...`) and statements of sql blocks
    return Detector((r"(?i)^psql\b", r"(?i)^\s*(select|with|show)\b"), judge, "sql_error")


def rows_where(
    predicate: Callable[[dict[str, object]], bool], what: str, command_contains: str = ""
) -> Detector:
    """A SQL diagnostic returned a row for which `predicate(row as dict)` holds."""
    pattern = f"(?i){re.escape(command_contains)}" if command_contains else r"(?i)\bselect\b"

    @reads(pattern, name=f"rows_where({what})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if result.step.kind.value != "sql" or not result.ok:
            return None
        for row in result.rows:
            record = dict(zip(result.columns, row, strict=False))
            if predicate(record):
                return f"{what}: {record}"[:200]
        return None

    return detect


def process_missing(pattern: str) -> Detector:
    """`ps aux | grep X` printed no process matching `pattern` (ignoring grep itself)."""
    regex = re.compile(pattern)

    @reads(r"^ps\b", name=f"process_missing({pattern})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if result.status is StepStatus.ERROR:  # it did not run: it shows nothing
            return None
        lines = [
            ln
            for ln in result.output.splitlines()
            if regex.search(ln) and " grep " not in f" {ln} "
        ]
        return None if lines else f"`ps` lists no process matching {pattern!r}"

    return detect


def disk_full(threshold_pct: int = 95) -> Detector:
    regex = re.compile(r"(\d{1,3})%")

    @reads(r"^df\b", name="disk_full")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        for line in result.output.splitlines()[1:]:
            match = regex.search(line)
            if match and int(match.group(1)) >= threshold_pct:
                return f"`df` shows {match.group(1)}% used: {line.strip()[:100]}"
        return None

    return detect
