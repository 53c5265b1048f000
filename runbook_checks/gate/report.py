"""The gate's output: a readable table (rich) and the JSON document CI keeps.

Beside the findings, the JSON lists every step the parser found (`steps`): its line,
kind, tool, text, and what checked it, read from the checks that ran and the findings
they made at the step's lines: "sql: stock catalog", "sql: the stack's live schema",
"sql: not validated: no schema for table orders", "aws: botocore", "curl: the API's
routes", "diagnostics: run on the stack", "classified only: kubectl", "manual: <why>".
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from runbook_checks.findings import Finding, Level
from runbook_checks.gate import curl_check, sql_check
from runbook_checks.gate.baseline import render_entry
from runbook_checks.gate.locate import Located, runbook_steps
from runbook_checks.gate.run import GateReport, Result
from runbook_checks.runbook import classify
from runbook_checks.runbook.model import Phase, StepKind

JSON_VERSION = 1
_STYLE = {Level.ERROR: "bold red", Level.WARNING: "yellow", Level.INFO: "dim"}


def report_json(report: GateReport) -> dict[str, object]:
    findings = []
    for result in report.results:
        data = result.finding.to_json()
        data["acknowledged"] = result.acknowledged
        data["reason"] = result.entry.reason if result.entry else None
        data["new"] = result.new_error
        findings.append(data)
    return {
        "version": JSON_VERSION,
        "runbook": str(report.runbook.path),
        "sha256": report.runbook.sha256,
        "mode": report.mode,
        "today": report.today.isoformat(),
        "exit_code": report.exit_code,
        "summary": {
            "findings": len(report.results),
            "errors": report.count(Level.ERROR),
            "new_errors": len(report.new_errors),
            "acknowledged": sum(1 for r in report.results if r.acknowledged),
            "warnings": report.count(Level.WARNING),
            "info": report.count(Level.INFO),
        },
        "findings": findings,
        "stale_baseline": [
            {"section": e.section, "kind": e.kind, "statement": e.statement, "reason": e.reason}
            for e in report.stale
        ],
        "unchecked_baseline": [
            {"section": e.section, "kind": e.kind, "statement": e.statement, "cause": e.cause}
            for e in report.unchecked
        ],
        "baseline": str(report.baseline.path) if report.baseline.path else None,
        "drift": report.drift.to_json() if report.drift else None,
        "checks": [c.to_json() for c in report.checks],
        "shape": report.runbook.shape,
        "steps": step_list(report),
        "duration_s": round(report.duration_s, 3),
        "stack_start_s": round(report.stack_start_s, 3) if report.stack_start_s else None,
    }


def step_list(report: GateReport) -> list[dict[str, object]]:
    """Every step of the runbook, in order, with what checked it."""
    ran = {c.name for c in report.checks if c.ran}
    findings = [r.finding for r in report.results]
    out: list[dict[str, object]] = []
    for item in runbook_steps(report.runbook):
        step = item.step
        at = [f for f in findings if f.line and step.line <= f.line <= item.end_line]
        out.append(
            {
                "line": step.line,
                "kind": step.kind.value,
                "tool": step.tool,
                "text": step.text,
                "section": item.section.id,
                "phase": step.phase.value,
                "checked": checked_by(item, at, ran),
                "reason": step.manual_reason,
                "findings": [f.kind for f in at],
            }
        )
    return out


def checked_by(item: Located, findings: Sequence[Finding], ran: set[str]) -> str:
    """What checked the step, given the checks that ran and the findings at its lines."""
    step = item.step
    if step.kind is StepKind.SQL:
        from runbook_checks.steps.sql import sql_source

        source = sql_source(step)
        if source.manual_reason:
            return f"manual: {source.manual_reason}"
        skipped = next((f for f in findings if f.kind == sql_check.NOT_VALIDATED), None)
        if skipped is not None and ("sql-stock" in ran or "sql-schema" in ran):
            why = skipped.message.split(": ", 1)[-1]
            return f"sql: not validated: {why}"
        if "sql-stock" in ran:
            return f"sql: {sql_check.STOCK}"
        if "sql-schema" in ran:
            return "sql: the stack's live schema"
        return "sql: syntax only (pglast)"
    if step.kind is StepKind.AWS:
        return "aws: botocore"
    if step.kind is StepKind.HTTP:
        if any(f.kind == curl_check.EXTERNAL for f in findings) or "curl" not in ran:
            return "classified only: curl (not the service's API)"
        return "curl: the API's routes"
    if step.kind in (StepKind.SHELL, StepKind.PLATFORM):
        investigated = item.section.is_scenario and step.phase is Phase.INVESTIGATION
        if "diagnostics" in ran and investigated:
            return "diagnostics: run on the stack"
        return f"classified only: {step.tool or step.kind.value}"
    unknown = step.manual_reason.startswith(classify.UNKNOWN_REASON.format(name=""))
    if step.tool and step.kind is StepKind.MANUAL and not unknown:
        return f"classified only: {step.tool}"
    return f"manual: {step.manual_reason}"


def write_json(reports: Sequence[GateReport], path: Path) -> None:
    data: object = (
        report_json(reports[0])
        if len(reports) == 1
        else {"version": JSON_VERSION, "reports": [report_json(r) for r in reports]}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_error_json(path: Path, runbooks: Sequence[str], message: str) -> None:
    data = {"version": JSON_VERSION, "runbooks": list(runbooks), "exit_code": 2, "error": message}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _console(stream: TextIO) -> object:
    from rich.console import Console

    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 160
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def _cell(result: Result) -> str:
    from rich.markup import escape

    f = result.finding
    text = escape(f.message)
    if f.suggestion:
        text += f"\n[green]fix:[/green] {escape(f.suggestion)}"
    if result.entry is not None:
        text += f"\n[cyan]baseline:[/cyan] {escape(result.entry.reason)}"
    return text


def print_report(report: GateReport, stream: TextIO | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = stream or sys.stdout
    console = _console(out)
    assert isinstance(console, Console)
    where = report.mode
    if report.stack_start_s is not None:
        where += f", stack up in {report.stack_start_s:.1f}s"
    console.print(f"[bold]runbook-checks gate[/bold] {escape(str(report.runbook.path))} ({where})")
    if report.baseline.path:
        console.print(
            f"baseline: {escape(str(report.baseline.path))} "
            f"({len(report.baseline.entries)} entries)"
        )
    table = Table(show_lines=False, expand=False, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("level", no_wrap=True)
    table.add_column("line", justify="right", no_wrap=True)
    table.add_column("section", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("finding / suggested fix", overflow="fold", ratio=1)
    for result in report.results:
        f = result.finding
        mark = "ack" if result.acknowledged else ("NEW" if result.new_error else "")
        style = "dim" if result.acknowledged and f.level is not Level.ERROR else None
        level = f"[{_STYLE[f.level]}]{f.level.value}[/]"
        if result.acknowledged:
            level = f"[dim]{f.level.value}[/dim]"
        table.add_row(
            mark,
            level,
            str(f.line or ""),
            escape(f.section_id or "-"),
            f.kind,
            _cell(result),
            style=style,
        )
    if report.results:
        console.print(table)
    else:
        console.print("no findings.")
    for check in report.checks:
        if not check.ran:
            console.print(f"[dim]skipped {check.name}: {escape(check.note)}[/dim]")
    if report.stale:
        console.print(
            f"\n[yellow]{len(report.stale)} baseline entr"
            f"{'y matches' if len(report.stale) == 1 else 'ies match'} nothing any "
            "more (fixed: remove them):[/yellow]"
        )
        for entry in report.stale:
            where = escape(f"[{entry.section or 'document'}]")
            console.print(f"  entry {entry.index}: {where} {entry.kind}: {escape(entry.statement)}")
    if report.unchecked:
        console.print(
            f"\n[dim]{len(report.unchecked)} baseline entr"
            f"{'y is' if len(report.unchecked) == 1 else 'ies are'} not checked by the gate "
            "(drill findings: `runbook-checks drill` reports them stale when they match "
            "nothing):[/dim]"
        )
        for entry in report.unchecked:
            console.print(f"  [dim]{escape(entry.describe())}[/dim]")
    if report.drift is not None:
        drift = report.drift
        console.print(
            f"\n[bold]drift since {escape(drift.base)}[/bold]"
            + (f" ({escape(drift.note)})" if drift.note else "")
        )
        if not drift.changes:
            console.print("  no section changed")
        for change in drift.changes:
            kind = "scenario" if change.scenario else "section"
            console.print(
                f"  {change.change:8} {kind:8} {escape(change.title)}"
                + (f" (line {change.line})" if change.line else "")
            )
        if drift.tests:
            console.print("  scenarios to run again: " + ", ".join(drift.tests))
            console.print(f"  runbook-checks drill -- -k {escape(repr(drift.k_expression))}")
        else:
            console.print("  no scenario needs to run again")
    new = report.new_errors
    if new:
        console.print(
            "\nto acknowledge a reviewed finding, add its entry to the baseline "
            "(with the real reason):"
        )
        for result in new[:5]:
            console.print(
                escape(render_entry(result.finding, "<why this is acceptable for now>")), end=""
            )
        if len(new) > 5:
            console.print(f"... and {len(new) - 5} more (see --json)")
    errors = report.count(Level.ERROR)
    acked = report.count(Level.ERROR, acknowledged=True)
    summary = (
        f"\n{len(report.results)} finding(s): {errors} error(s) ({acked} acknowledged, "
        f"{len(new)} new), {report.count(Level.WARNING)} warning(s), "
        f"{report.count(Level.INFO)} info; {report.duration_s:.1f}s"
    )
    console.print(summary)
    if new:
        console.print(f"[bold red]FAILED[/bold red]: {len(new)} new error(s) (exit 1)")
    else:
        console.print("[bold green]PASSED[/bold green]: no new errors (exit 0)")
