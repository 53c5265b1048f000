"""Small formatting helpers shared by the HTML and Markdown renderers."""

from __future__ import annotations

from runbook_checks.drill.result import DrillResult, Verdict
from runbook_checks.findings import Finding, Level

VERDICT_LABEL = {
    Verdict.PASSED: "passed",
    Verdict.RECOVERED_BY_WAITING: "recovered by waiting",
    Verdict.ASSISTED: "assisted",
    Verdict.RUNBOOK_WRONG: "runbook wrong",
    Verdict.FAILED: "failed",
    Verdict.ERROR: "error",
}
LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(value, 60)
    if minutes < 60:
        return f"{int(minutes)}m{rest:02.0f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m"


def share(value: float | None, budget: float) -> str:
    if value is None or budget <= 0:
        return "-"
    return f"{value / budget * 100:.1f}%"


def scenario_name(result: DrillResult) -> str:
    option = f" / option {result.option}" if result.option else ""
    return f"{result.section_title}{option}"


def lost(result: DrillResult) -> str:
    return "-" if result.ledger is None else str(len(result.ledger.lost))


def sorted_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (LEVEL_ORDER[f.level], f.section_id, f.line))


def short_commit(commit: str) -> str:
    return commit[:12] if commit else "(not in git)"


def one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
