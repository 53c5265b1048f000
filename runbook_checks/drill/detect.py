"""Detectors: does one diagnostic's result show the anomaly? (None = it does not.)

Small, composable predicates over a `StepResult`; scenarios combine them with `any_of`.
They read what the runbook's command printed or returned, as an engineer would.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from runbook_checks.drill.runner import DrillContext
from runbook_checks.drill.spec import Detector
from runbook_checks.steps.base import StepResult, StepStatus


def any_of(*detectors: Detector) -> Detector:
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        for detector in detectors:
            shown = detector(result, ctx)
            if shown:
                return shown
        return None

    return detect


def _cmd(result: StepResult) -> str:
    return result.step.text.strip()


def when(command: str, detector: Detector) -> Detector:
    """Apply `detector` only to steps whose command starts with `command` (regex)."""
    pattern = re.compile(command)

    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        return detector(result, ctx) if pattern.match(_cmd(result)) else None

    return detect


def http_failing(path_part: str = "/health") -> Detector:
    """A curl of `path_part` that got no answer or a 5xx."""

    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if not _cmd(result).startswith("curl") or path_part not in _cmd(result):
            return None
        if result.http_status is None and result.status is not StepStatus.OK:
            return f"`{_cmd(result)[:60]}` got no answer: {result.error[:100]}"
        if result.http_status is not None and result.http_status >= 500:
            return f"`{_cmd(result)[:60]}` answered {result.http_status}"
        return None

    return detect


def http_status(path_part: str, statuses: set[int]) -> Detector:
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if (
            _cmd(result).startswith("curl")
            and path_part in _cmd(result)
            and result.http_status in statuses
        ):
            return f"`{_cmd(result)[:60]}` answered {result.http_status}: {result.output[:120]}"
        return None

    return detect


def output_matches(command: str, pattern: str, flags: int = re.IGNORECASE) -> Detector:
    """The command's output (or error) contains `pattern`."""
    regex = re.compile(pattern, flags)

    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if not re.match(command, _cmd(result)):
            return None
        text = "\n".join((result.output, result.stderr, result.error))
        match = regex.search(text)
        return f"`{_cmd(result)[:50]}` shows {match.group(0)[:120]!r}" if match else None

    return detect


def exit_code_not_zero(command: str) -> Detector:
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if re.match(command, _cmd(result)) and result.exit_code not in (None, 0):
            return f"`{_cmd(result)[:50]}` exited {result.exit_code}: {result.output[:100]}"
        return None

    return detect


def sql_error(pattern: str = r"connection|refused|terminat|timeout") -> Detector:
    regex = re.compile(pattern, re.IGNORECASE)

    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if (
            result.step.kind.value == "sql"
            and result.status is not StepStatus.OK
            and regex.search(result.error)
        ):
            return f"SQL at line {result.step.line} failed: {result.error[:120]}"
        return None

    return detect


def rows_where(
    predicate: Callable[[dict[str, object]], bool], what: str, command_contains: str = ""
) -> Detector:
    """A SQL diagnostic returned a row for which `predicate(row as dict)` holds."""

    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if result.step.kind.value != "sql" or not result.ok:
            return None
        if command_contains and command_contains.lower() not in _cmd(result).lower():
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

    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if not _cmd(result).startswith("ps"):
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

    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if not _cmd(result).startswith("df"):
            return None
        for line in result.output.splitlines()[1:]:
            match = regex.search(line)
            if match and int(match.group(1)) >= threshold_pct:
                return f"`df` shows {match.group(1)}% used: {line.strip()[:100]}"
        return None

    return detect
