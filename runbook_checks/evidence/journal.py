"""The journal: what a bundle's journal.json holds, and the way back from it.

`Journal` is one session of drills (or one game day): the `Environment` it ran in and a
`ScenarioRecord` per scenario (the runner's `DrillResult` plus what pytest made of it).
`to_json` / `from_json` are exact inverses, so every report is rendered from the same
redacted data that journal.json holds, and `runbook-checks report` reads old bundles
with the same code.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Union, cast

from runbook_checks import __version__
from runbook_checks.drill.ledger import LedgerResult, LostWrite
from runbook_checks.drill.result import (
    Actor,
    Alerting,
    AlertSeen,
    DrillResult,
    Event,
    StepRecord,
    Verdict,
)
from runbook_checks.drill.sampler import Sample
from runbook_checks.findings import Finding, Level
from runbook_checks.monitor.triage import Observation
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook

Json = Union[None, bool, int, float, str, list["Json"], dict[str, "Json"]]  # noqa: UP007

SCHEMA = "runbook-checks/evidence-journal/1"


# -- environment --------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionText:
    """One section of the runbook as it stood when the drills ran."""

    id: str
    title: str
    content_hash: str
    severity: str | None = None
    line: int = 0


@dataclass(frozen=True)
class RunbookInfo:
    path: str
    title: str = ""
    sha256: str = ""
    commit: str = ""  # last commit that touched the file ("" when not in git)
    sections: tuple[SectionText, ...] = ()

    def section(self, section_id: str) -> SectionText | None:
        return next((s for s in self.sections if s.id == section_id), None)


@dataclass(frozen=True)
class Environment:
    backend: str
    versions: Mapping[str, str] = field(default_factory=dict)  # component -> version
    tool_version: str = __version__
    python: str = ""
    platform: str = ""
    project_commit: str = ""
    project_dirty: bool = False
    runbook: RunbookInfo = field(default_factory=lambda: RunbookInfo(path=""))


def git(args: Sequence[str], cwd: Path) -> str:
    """`git ARGS` in `cwd`, stripped; "" when git or the repository is not there."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def runbook_info(runbook: Runbook, project_root: Path | None = None) -> RunbookInfo:
    """The runbook as it stands: path (relative to the project when inside it), hashes,
    and the last commit that touched the file."""
    path = runbook.path.resolve()
    shown = str(runbook.path)
    if project_root is not None and path.is_relative_to(project_root.resolve()):
        shown = path.relative_to(project_root.resolve()).as_posix()
    return RunbookInfo(
        path=shown,
        title=runbook.title,
        sha256=runbook.sha256,
        commit=git(["log", "-1", "--format=%H", "--", path.name], path.parent),
        sections=tuple(
            SectionText(s.id, s.title, s.content_hash, s.severity, s.line) for s in runbook.sections
        ),
    )


def environment_for(
    runbook: Runbook, *, backend: str, versions: Mapping[str, str], project_root: Path
) -> Environment:
    commit = git(["rev-parse", "HEAD"], project_root)
    dirty = bool(commit) and bool(
        git(["status", "--porcelain", "--untracked-files=no"], project_root)
    )
    return Environment(
        backend=backend,
        versions=dict(versions),
        python=sys.version.split()[0],
        platform=platform.platform(),
        project_commit=commit,
        project_dirty=dirty,
        runbook=runbook_info(runbook, project_root),
    )


# -- scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioRecord:
    """One scenario's evidence: the drill's result and what the test run made of it."""

    result: DrillResult
    outcome: str = ""  # pytest's: passed, failed, xfailed ...; "gameday" for a game day
    outcome_reason: str = ""  # xfail reason, failure headline
    samples_aligned: bool = False  # sample times are seconds since injection, like events
    operator: str = ""  # game days: who worked the incident

    @property
    def slow(self) -> bool:
        ttr = self.result.time_to_recover_s
        return ttr is not None and ttr > self.result.budget_s

    @property
    def needs_postmortem(self) -> bool:
        return not self.result.verdict.earned or self.slow


@dataclass(frozen=True)
class SkippedScenario:
    """A scenario that did not run (a capability missing: root, docker, a replica): it
    is listed with its reason, and coverage never counts its row as drilled."""

    scenario: str  # test id
    section_title: str
    option: str | None
    reason: str


@dataclass(frozen=True)
class Selection:
    """Which of the collected scenarios a session was asked to run: all, or a subset
    (`-k` / `-m`): a subset's runs do not describe the whole runbook's health."""

    keyword: str = ""  # the -k expression
    markexpr: str = ""  # the -m expression
    collected: int = 0  # scenarios collected, deselected ones included
    deselected: tuple[str, ...] = ()  # the scenarios' test ids left out

    @property
    def subset(self) -> bool:
        return bool(self.deselected)

    def describe(self) -> str:
        asked = " ".join(
            f"{flag} {value!r}"
            for flag, value in (("-k", self.keyword), ("-m", self.markexpr))
            if value
        )
        ran = self.collected - len(self.deselected)
        return f"{asked or 'a selection'}: {ran} of {self.collected} scenario(s) ran"


@dataclass(frozen=True)
class Journal:
    id: str  # "<UTC timestamp>-<short id>", the folder's name
    created: datetime  # UTC
    kind: str  # "drill" or "gameday"
    environment: Environment
    scenarios: tuple[ScenarioRecord, ...]
    skipped: tuple[SkippedScenario, ...] = ()
    # baseline entries of drill findings that matched nothing although every scenario of
    # their section ran (fixed: remove them), as `Entry.describe()` says them
    stale_baseline: tuple[str, ...] = ()
    # the session was cut short ("SIGINT", "SIGTERM", "KeyboardInterrupt"; "" if not),
    # and the scenarios running when it was: their verdict says nothing of the runbook
    interrupted: str = ""
    interrupted_scenarios: tuple[str, ...] = ()
    selection: Selection = field(default_factory=Selection)

    def redacted(self, redactor: Redactor) -> Journal:
        """The same journal with every string passed through `redactor`."""
        return from_json(redactor.tree(to_json(self)))


def _result_json(result: DrillResult) -> dict[str, Json]:
    ledger: Json = None
    if result.ledger is not None:
        ledger = {
            "attempted": result.ledger.attempted,
            "acknowledged": result.ledger.acknowledged,
            "stable": result.ledger.stable,
            "unacknowledged": result.ledger.unacknowledged,
            "lost": [asdict(w) for w in result.ledger.lost],
            "by_phase": {k: list(v) for k, v in result.ledger.by_phase.items()},
        }
    return {
        "scenario": result.scenario,
        "section_id": result.section_id,
        "section_title": result.section_title,
        "option": result.option,
        "section_hash": result.section_hash,
        "severity": result.severity,
        "fault": result.fault,
        "budget_s": result.budget_s,
        "started": iso(result.started_wall) if result.started_wall else None,
        "started_wall": result.started_wall,
        "injected_wall": result.injected_wall,
        "recovered_by": result.recovered_by,
        "note": result.note,
        "verdict": result.verdict.value,
        "error": result.error,
        "time_to_detect_s": result.time_to_detect_s,
        "time_to_recover_s": result.time_to_recover_s,
        "within_budget": (
            result.time_to_recover_s is not None and result.time_to_recover_s <= result.budget_s
        ),
        "events": [asdict(e) for e in result.events],
        "steps": [asdict(s) for s in result.steps],
        "samples": [asdict(s) for s in result.samples],
        "ledger": ledger,
        "findings": [cast(Json, f.to_json()) for f in result.findings],
        "alerting": cast(Json, asdict(result.alerting)) if result.alerting else None,
        "time_to_alert_s": result.alerting.time_to_alert_s if result.alerting else None,
        "triage": [cast(Json, o.as_json()) for o in result.triage],
        "impact": cast(Json, result.impact),
        "communication": cast(Json, result.communication),
        "acknowledged_s": result.acknowledged_s,
    }


def to_json(journal: Journal) -> dict[str, Json]:
    env = journal.environment
    records = journal.scenarios
    verdicts = [r.result.verdict.value for r in records]
    return {
        "schema": SCHEMA,
        "id": journal.id,
        "created": journal.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kind": journal.kind,
        "environment": {
            "backend": env.backend,
            "versions": dict(env.versions),
            "tool_version": env.tool_version,
            "python": env.python,
            "platform": env.platform,
            "project_commit": env.project_commit,
            "project_dirty": env.project_dirty,
            "runbook": {
                "path": env.runbook.path,
                "title": env.runbook.title,
                "sha256": env.runbook.sha256,
                "commit": env.runbook.commit,
                "sections": [asdict(s) for s in env.runbook.sections],
            },
        },
        "summary": {
            "scenarios": len(records),
            **{v.value: verdicts.count(v.value) for v in Verdict},
            "findings": sum(len(r.result.findings) for r in records),
        },
        "scenarios": [
            {
                **_result_json(r.result),
                "outcome": r.outcome,
                "outcome_reason": r.outcome_reason,
                "samples_aligned": r.samples_aligned,
                "operator": r.operator,
            }
            for r in records
        ],
        "skipped": [asdict(s) for s in journal.skipped],
        "stale_baseline": list(journal.stale_baseline),
        "interrupted": journal.interrupted,
        "interrupted_scenarios": list(journal.interrupted_scenarios),
        "selection": {
            "keyword": journal.selection.keyword,
            "markexpr": journal.selection.markexpr,
            "collected": journal.selection.collected,
            "deselected": list(journal.selection.deselected),
        },
    }


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# -- reading back -------------------------------------------------------------------------


class JournalError(ValueError):
    """journal.json is not a journal this version can read."""


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise JournalError(f"{where}: expected an object, found {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise JournalError(f"{where}: expected a list, found {type(value).__name__}")
    return value


def _str(data: Mapping[str, object], key: str, default: str = "") -> str:
    value = data.get(key, default)
    return default if value is None else str(value)


def _opt_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _num(data: Mapping[str, object], key: str, default: float = 0.0) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _opt_num(data: Mapping[str, object], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(data: Mapping[str, object], key: str) -> int:
    return int(_num(data, key))


def _finding(data: Mapping[str, object]) -> Finding:
    return Finding(
        level=Level(_str(data, "level", "info")),
        kind=_str(data, "kind"),
        section_id=_str(data, "section_id"),
        message=_str(data, "message"),
        line=_int(data, "line"),
        statement=_str(data, "statement"),
        suggestion=_str(data, "suggestion"),
        evidence=_str(data, "evidence"),
        source=_str(data, "source", "gate"),
        cause=_str(data, "cause"),
    )


def finding_from_json(data: Mapping[str, object]) -> Finding:
    """A finding as journal.json, findings.json and the gate's JSON report write it."""
    return _finding(data)


def _ledger(value: object) -> LedgerResult | None:
    if value is None:
        return None
    data = _obj(value, "ledger")
    lost = tuple(
        LostWrite(_str(w, "name"), _str(w, "file_id"), _str(w, "phase"), _str(w, "reason"))
        for w in (_obj(x, "ledger.lost[]") for x in _list(data.get("lost", []), "ledger.lost"))
    )
    by_phase: dict[str, tuple[int, int]] = {}
    for phase, pair in _obj(data.get("by_phase", {}), "ledger.by_phase").items():
        counts = _list(pair, "ledger.by_phase")
        by_phase[phase] = (int(str(counts[0])), int(str(counts[1])))
    return LedgerResult(
        attempted=_int(data, "attempted"),
        acknowledged=_int(data, "acknowledged"),
        stable=_int(data, "stable"),
        lost=lost,
        unacknowledged=_int(data, "unacknowledged"),
        by_phase=by_phase,
    )


def _result(data: Mapping[str, object]) -> DrillResult:
    return DrillResult(
        scenario=_str(data, "scenario"),
        section_id=_str(data, "section_id"),
        section_title=_str(data, "section_title"),
        option=_opt_str(data, "option"),
        section_hash=_str(data, "section_hash"),
        severity=_opt_str(data, "severity"),
        fault=_str(data, "fault"),
        budget_s=_num(data, "budget_s"),
        events=[
            Event(_num(e, "at_s"), _str(e, "name"), _str(e, "detail"))
            for e in (_obj(x, "events[]") for x in _list(data.get("events", []), "events"))
        ],
        steps=[
            StepRecord(
                phase=_str(s, "phase"),
                line=_int(s, "line"),
                written=_str(s, "written"),
                executed=_str(s, "executed"),
                status=_str(s, "status"),
                started_s=_num(s, "started_s"),
                duration_s=_num(s, "duration_s"),
                output=_str(s, "output"),
                detail=_str(s, "detail"),
                by=Actor(_str(s, "by", "runbook")),
            )
            for s in (_obj(x, "steps[]") for x in _list(data.get("steps", []), "steps"))
        ],
        findings=[
            _finding(_obj(x, "findings[]")) for x in _list(data.get("findings", []), "findings")
        ],
        samples=[
            Sample(_num(s, "at_s"), _int(s, "status"), _num(s, "latency_ms"), _str(s, "error"))
            for s in (_obj(x, "samples[]") for x in _list(data.get("samples", []), "samples"))
        ],
        ledger=_ledger(data.get("ledger")),
        time_to_detect_s=_opt_num(data, "time_to_detect_s"),
        time_to_recover_s=_opt_num(data, "time_to_recover_s"),
        verdict=Verdict(_str(data, "verdict", "error")),
        error=_str(data, "error"),
        started_wall=_num(data, "started_wall"),
        injected_wall=_opt_num(data, "injected_wall"),
        note=_str(data, "note"),
        alerting=_alerting(data.get("alerting")),
        triage=[
            Observation(
                section_id=_str(o, "section_id"),
                line=_int(o, "line"),
                symptom=_str(o, "symptom"),
                kind=_str(o, "kind"),
                observed=_opt_bool(o, "observed"),
                detail=_str(o, "detail"),
            )
            for o in (_obj(x, "triage[]") for x in _list(data.get("triage", []), "triage"))
        ],
        impact=dict(_obj(data["impact"], "impact")) if data.get("impact") else None,
        communication=[
            dict(_obj(x, "communication[]"))
            for x in _list(data.get("communication", []), "communication")
        ],
        acknowledged_s=_opt_num(data, "acknowledged_s"),
    )


def _opt_bool(data: Mapping[str, object], key: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise JournalError(f"{key}: expected true, false or null, got {value!r}")


def _alerting(value: object) -> Alerting | None:
    if value is None:
        return None
    data = _obj(value, "alerting")
    return Alerting(
        measured=bool(data.get("measured")),
        note=_str(data, "note"),
        rules=_str(data, "rules"),
        window_s=_num(data, "window_s"),
        rules_for_section=int(_num(data, "rules_for_section")),
        time_to_alert_s=_opt_num(data, "time_to_alert_s"),
        alerts=[
            AlertSeen(
                alertname=_str(a, "alertname"),
                section_id=_opt_str(a, "section_id"),
                severity=_opt_str(a, "severity"),
                fired_s=_num(a, "fired_s"),
                summary=_str(a, "summary"),
            )
            for a in (_obj(x, "alerts[]") for x in _list(data.get("alerts", []), "alerts"))
        ],
        preexisting=[str(x) for x in _list(data.get("preexisting", []), "preexisting")],
        still_firing=[str(x) for x in _list(data.get("still_firing", []), "still_firing")],
    )


def from_json(value: object) -> Journal:
    data = _obj(value, "journal")
    if data.get("schema") != SCHEMA:
        raise JournalError(f"unknown journal schema {data.get('schema')!r} (expected {SCHEMA})")
    env = _obj(data.get("environment", {}), "environment")
    book = _obj(env.get("runbook", {}), "environment.runbook")
    sections = tuple(
        SectionText(
            _str(s, "id"),
            _str(s, "title"),
            _str(s, "content_hash"),
            _opt_str(s, "severity"),
            _int(s, "line"),
        )
        for s in (_obj(x, "sections[]") for x in _list(book.get("sections", []), "sections"))
    )
    environment = Environment(
        backend=_str(env, "backend"),
        versions={str(k): str(v) for k, v in _obj(env.get("versions", {}), "versions").items()},
        tool_version=_str(env, "tool_version"),
        python=_str(env, "python"),
        platform=_str(env, "platform"),
        project_commit=_str(env, "project_commit"),
        project_dirty=bool(env.get("project_dirty", False)),
        runbook=RunbookInfo(
            path=_str(book, "path"),
            title=_str(book, "title"),
            sha256=_str(book, "sha256"),
            commit=_str(book, "commit"),
            sections=sections,
        ),
    )
    scenarios = tuple(
        ScenarioRecord(
            result=_result(s),
            outcome=_str(s, "outcome"),
            outcome_reason=_str(s, "outcome_reason"),
            samples_aligned=bool(s.get("samples_aligned", False)),
            operator=_str(s, "operator"),
        )
        for s in (_obj(x, "scenarios[]") for x in _list(data.get("scenarios", []), "scenarios"))
    )
    skipped = tuple(
        SkippedScenario(
            _str(s, "scenario"), _str(s, "section_title"), _opt_str(s, "option"), _str(s, "reason")
        )
        for s in (_obj(x, "skipped[]") for x in _list(data.get("skipped", []), "skipped"))
    )
    chosen = _obj(data.get("selection") or {}, "selection")
    selection = Selection(
        keyword=_str(chosen, "keyword"),
        markexpr=_str(chosen, "markexpr"),
        collected=_int(chosen, "collected"),
        deselected=tuple(str(x) for x in _list(chosen.get("deselected", []), "deselected")),
    )
    return Journal(
        id=_str(data, "id"),
        created=parse_iso(_str(data, "created")),
        kind=_str(data, "kind", "drill"),
        environment=environment,
        scenarios=scenarios,
        skipped=skipped,
        stale_baseline=tuple(str(x) for x in _list(data.get("stale_baseline", []), "stale")),
        interrupted=_str(data, "interrupted"),
        interrupted_scenarios=tuple(
            str(x) for x in _list(data.get("interrupted_scenarios", []), "interrupted_scenarios")
        ),
        selection=selection,
    )


def load_journal(path: Path) -> Journal:
    """Read a journal.json (the file itself, or the bundle folder holding it)."""
    file = path / "journal.json" if path.is_dir() else path
    try:
        return from_json(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as exc:
        raise JournalError(f"{file}: cannot read the journal: {exc}") from exc
