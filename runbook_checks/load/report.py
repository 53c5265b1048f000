"""The verdict of a load run as JSON, Markdown and an HTML page, next to locust's own CSV and HTML.

Files written into the run's folder:
    verdict.json        everything below, machine-readable
    verdict.md          the same for people: the verdict line, per-endpoint table,
                        the pool's headroom (the stage table, the needed pool size)
    report.html         the run's page: the same, the thresholds and where they come
                        from, and the timeline as an inline SVG chart (self-contained)
    pool-samples.jsonl  every pool sample (/metrics and pg_stat_activity)
    timeline.json/.csv  requests, error rate and latency each second
    manifest.json       the sha256 of every file (`runbook-checks verify-evidence`)
No secret (admin token, database passwords) is written: each file is checked for the
run's secrets before it is kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_checks.errors import RunbookChecksError
from runbook_checks.evidence.templating import render
from runbook_checks.load import shapes
from runbook_checks.load.chart import LEGEND, load_timeline_view
from runbook_checks.load.headroom import Headroom
from runbook_checks.load.locust_csv import EndpointStats
from runbook_checks.load.thresholds import ALL_ENDPOINTS, ThresholdResult, Thresholds
from runbook_checks.load.timeline import Timeline, Window

if TYPE_CHECKING:
    from runbook_checks.load.runner import _Run

CPU_WARNING_SHARE = 0.9  # locust's own warning level


def _num(value: float | None, fmt: str = ".0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _nan_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def thresholds_json(thresholds: Thresholds) -> dict[str, object]:
    return {
        "default": {
            "p95_ms": thresholds.default.p95_ms,
            "error_rate": thresholds.default.error_rate,
        },
        "per_endpoint": {
            k: {"p95_ms": v.p95_ms, "error_rate": v.error_rate}
            for k, v in thresholds.per_endpoint.items()
        },
        "min_requests": thresholds.min_requests,
        "sources": list(thresholds.sources),
    }


def headroom_json(h: Headroom) -> dict[str, object]:
    return {
        "pool_size": h.pool_size,
        "samples": h.samples,
        "saturated": None
        if h.saturation is None
        else {
            "users": h.saturation.users,
            "users_from": h.saturation.users_from,
            "at_s": round(h.saturation.at_s, 2),
            "reason": h.saturation.reason,
        },
        "hold_ms_per_request": _round(h.hold_ms_per_request, 2),
        "rps_per_user": _round(h.rps_per_user, 4),
        "peak_users": h.peak_users,
        "observed_peak_demand": h.observed_peak_demand,
        "needed": h.needed,
        "recommended": h.recommended,
        "enough": h.enough,
        "margin": h.margin,
        "basis": h.basis,
        "projections": [
            {
                "users": p.users,
                "busy_connections": round(p.busy_connections, 2),
                "needed": p.needed,
                "recommended": p.recommended,
            }
            for p in h.projections
        ],
        "stages": [
            {
                "users": s.users,
                "seconds": round(s.end_t - s.start_t, 1),
                "samples": s.samples,
                "rps": _round(s.rps, 2),
                "mean_in_use": round(s.mean_in_use, 2),
                "mean_waiting": round(s.mean_waiting, 2),
                "peak_in_use": s.peak_in_use,
                "peak_waiting": s.peak_waiting,
                "pool_timeouts": s.timeouts,
                "saturated_share": round(s.saturated_share, 3),
                "peak_active_pg": s.peak_active,
            }
            for s in h.stages
        ],
        "notes": list(h.notes),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def stats_json(row: EndpointStats) -> dict[str, object]:
    return {
        "endpoint": ALL_ENDPOINTS if row.aggregated else row.endpoint,
        "requests": row.requests,
        "failures": row.failures,
        "error_rate": round(row.error_rate, 4),
        "rps": _nan_none(round(row.rps, 2)),
        "median_ms": _nan_none(row.median_ms),
        "p95_ms": _nan_none(row.p95_ms),
        "p99_ms": _nan_none(row.p99_ms),
        "max_ms": _nan_none(round(row.max_ms, 1)),
    }


def stage_windows(run: _Run, timeline: Timeline) -> list[tuple[int, Window]]:
    """(users, what users saw) per stage of the shape, from the per-second timeline."""
    if not timeline.seconds:
        return []
    out, start = [], 0.0
    for stage in run.stages:
        window = timeline.summary(timeline.start_t + start, timeline.start_t + stage.until_s)
        out.append((stage.users, window))
        start = stage.until_s
    return out


def drift(timeline: Timeline) -> tuple[Window, Window] | None:
    """The first and last tenth of the run (a soak's slow drift, a spike's recovery)."""
    if len(timeline.seconds) < 20:
        return None
    tenth = max(2, len(timeline.seconds) // 10)
    first, last = timeline.seconds[1], timeline.seconds[-1]  # second 0 is start-up
    return (
        timeline.summary(first.t, first.t + tenth),
        timeline.summary(last.t + 1 - tenth, last.t + 1),
    )


def _window_json(users: int | None, w: Window) -> dict[str, object]:
    return {
        "users": users,
        "requests": w.requests,
        "failures": w.failures,
        "error_rate": round(w.error_rate, 4),
        "p50_ms": w.p50_ms,
        "p95_ms": w.p95_ms,
    }


def verdict_json(
    run: _Run,
    stats: list[EndpointStats],
    verdict: ThresholdResult,
    headroom: Headroom,
    timeline: Timeline,
) -> dict[str, object]:
    spec = run.spec
    return {
        "run": {
            "id": run.run_id,
            "folder": run.folder.name,
            "target": run.target,
            "api_url": run.api_url if not spec.embedded else "embedded (127.0.0.1)",
            "locustfile": str(spec.locustfile),  # the service's user mix that ran
            "shape": spec.shape,
            "users": spec.users,
            "duration_s": spec.duration_s,
            "stages": [
                {"until_s": s.until_s, "users": s.users, "spawn_rate": s.spawn_rate}
                for s in run.stages
            ],
            "peak_users": max(s.users for s in run.stages),
            "workers": spec.workers,
            "remote_workers": spec.remote_workers,
            "pool_size": run.pool_size,
            "db_latency_ms": spec.db_latency_ms or None,
            "started": run.started.isoformat(),
            "finished": run.finished.isoformat() if run.finished else None,
            "locust_exit_code": run.locust_exit,
            "locust_cpu": None
            if run.cpu is None
            else {
                "seconds": {k: round(v, 2) for k, v in run.cpu.seconds.items()},
                "total_s": round(run.cpu.total_s, 2),
                "peak_core_share": round(run.cpu.peak_core_share, 3),
            },
            "versions": run.versions,
            "pg_stat_activity_query": run.activity_source,
        },
        "passed": verdict.passed,
        "summary": verdict.summary(),
        "thresholds": thresholds_json(spec.thresholds),
        "breaches": [
            {
                "endpoint": c.endpoint,
                "metric": c.metric,
                "observed": c.observed,
                "limit": c.limit,
                "requests": c.requests,
                "message": c.describe(),
            }
            for c in verdict.breaches
        ],
        "not_judged": list(verdict.not_judged),
        "endpoints": [stats_json(row) for row in stats],
        "failures": [
            {
                "endpoint": f"{f.method} {f.name}".strip(),
                "error": f.error,
                "occurrences": f.occurrences,
            }
            for f in run.failures
        ],
        "stages_seen": [_window_json(users, w) for users, w in stage_windows(run, timeline)],
        "drift": None
        if (d := drift(timeline)) is None
        else {"first_tenth": _window_json(None, d[0]), "last_tenth": _window_json(None, d[1])},
        "headroom": headroom_json(headroom),
        "timeline": {"seconds": len(timeline.seconds), "files": ["timeline.json", "timeline.csv"]},
    }


# The pages' view data: every number formatted here, the markup and the Markdown are the
# templates' (evidence/templates/load_verdict.md, load_report.html).


@dataclass(frozen=True)
class EndpointRow:
    name: str
    requests: int
    failures: int
    error_rate: str
    p50_ms: str
    p95_ms: str
    p99_ms: str
    rps: str
    verdict: str  # "ok", "FAIL: p95, error rate", "(shown, not judged)"
    state: str  # ok, failed, aggregate (the page's badge)


@dataclass(frozen=True)
class FailureRow:
    method: str
    name: str
    error: str  # as locust recorded it (the Markdown escapes `|` and cuts it short)
    occurrences: int


@dataclass(frozen=True)
class LimitRow:
    """One line of the thresholds: the default or an endpoint's own."""

    applies_to: str
    p95_ms: str
    error_rate: str
    source: str


@dataclass(frozen=True)
class StageSeen:
    users: int
    requests: int
    error_rate: str
    p50_ms: str
    p95_ms: str
    over: str  # "" or "over the line: p95, errors"


@dataclass(frozen=True)
class Drift:
    first_p95_ms: str
    first_error_rate: str
    last_p95_ms: str
    last_error_rate: str


@dataclass(frozen=True)
class ProjectionRow:
    users: int
    busy: str
    needed: int
    recommended: int


@dataclass(frozen=True)
class PoolStageRow:
    users: int
    seconds: str
    rps: str
    mean_in_use: str
    mean_waiting: str
    peak_in_use: int
    peak_waiting: int
    timeouts: int
    saturated: str
    peak_active: str
    was_saturated: bool


@dataclass(frozen=True)
class PoolView:
    size: str
    samples: int
    with_activity: bool  # pg_stat_activity was sampled too
    saturated_at: str  # "" when never
    saturated_after_s: str
    saturated_why: str
    peak_users: str
    needed: int | None
    recommended: int | None
    margin: str
    enough: bool | None
    basis: str
    notes: tuple[str, ...]
    projections: tuple[ProjectionRow, ...]
    stages: tuple[PoolStageRow, ...]


@dataclass(frozen=True)
class LoadPage:
    run_id: str
    passed: bool
    summary: str
    started: str
    target: str
    locustfile: str
    shape: str
    stages: str
    processes: str
    locust_exit: int | None
    cpu_total_s: str  # "" when not measured
    cpu_peak: str
    cpu_warning: bool
    sources: tuple[str, ...]
    limits: tuple[LimitRow, ...]
    min_requests: int
    endpoints: tuple[EndpointRow, ...]
    not_judged: tuple[str, ...]
    failures: tuple[FailureRow, ...]  # the 15 most frequent
    stages_seen: tuple[StageSeen, ...]
    drift: Drift | None
    pool: PoolView


def _endpoint_rows(stats: list[EndpointStats], verdict: ThresholdResult) -> tuple[EndpointRow, ...]:
    broken: dict[str, list[str]] = {}
    for check in verdict.breaches:
        broken.setdefault(check.endpoint, []).append(
            "p95" if check.metric == "p95_ms" else "error rate"
        )
    rows = []
    for row in stats:
        name = ALL_ENDPOINTS if row.aggregated else row.endpoint
        mark, state = (
            ("FAIL: " + ", ".join(broken[name]), "failed") if name in broken else ("ok", "ok")
        )
        if row.aggregated:
            mark, state = "(shown, not judged)", "aggregate"
        rows.append(
            EndpointRow(
                name,
                row.requests,
                row.failures,
                f"{row.error_rate:.1%}",
                _num(row.median_ms),
                _num(row.p95_ms),
                _num(row.p99_ms),
                _num(row.rps, ".1f"),
                mark,
                state,
            )
        )
    return tuple(rows)


def _limits(thresholds: Thresholds) -> tuple[LimitRow, ...]:
    default = thresholds.default
    rows = [
        LimitRow(
            "every endpoint",
            f"{default.p95_ms:g}",
            f"{default.error_rate:.1%}",
            "; ".join(thresholds.sources) or "the defaults",
        )
    ]
    rows += [
        LimitRow(name, f"{limit.p95_ms:g}", f"{limit.error_rate:.1%}", "--threshold")
        for name, limit in sorted(thresholds.per_endpoint.items())
    ]
    return tuple(rows)


def _stages_seen(run: _Run, timeline: Timeline) -> tuple[StageSeen, ...]:
    limit = run.spec.thresholds.default
    rows = []
    for users, w in stage_windows(run, timeline):
        over = [] if w.p95_ms is None or w.p95_ms <= limit.p95_ms else ["p95"]
        over += ["errors"] if w.error_rate > limit.error_rate else []
        rows.append(
            StageSeen(
                users,
                w.requests,
                f"{w.error_rate:.1%}",
                _num(w.p50_ms),
                _num(w.p95_ms),
                "over the line: " + ", ".join(over) if over else "",
            )
        )
    return tuple(rows)


def _pool(run: _Run, h: Headroom) -> PoolView:
    s = h.saturation
    return PoolView(
        size=_num(h.pool_size),
        samples=h.samples,
        with_activity=any(sample.activity for sample in run.samples),
        saturated_at="" if s is None else s.describe_users(),
        saturated_after_s="" if s is None else f"{s.at_s:.1f}",
        saturated_why="" if s is None else s.reason,
        peak_users=_num(h.peak_users),
        needed=h.needed,
        recommended=h.recommended,
        margin=f"{h.margin:.0%}",
        enough=h.enough,
        basis=h.basis,
        notes=h.notes,
        projections=tuple(
            ProjectionRow(p.users, f"{p.busy_connections:.1f}", p.needed, p.recommended)
            for p in h.projections
        ),
        stages=tuple(
            PoolStageRow(
                st.users,
                f"{st.end_t - st.start_t:.0f}",
                _num(st.rps, ".1f"),
                f"{st.mean_in_use:.1f}",
                f"{st.mean_waiting:.1f}",
                st.peak_in_use,
                st.peak_waiting,
                st.timeouts,
                f"{st.saturated_share:.0%}",
                _num(st.peak_active),
                st.saturated,
            )
            for st in h.stages
        ),
    )


def load_page(
    run: _Run,
    stats: list[EndpointStats],
    verdict: ThresholdResult,
    headroom: Headroom,
    timeline: Timeline,
) -> LoadPage:
    """What verdict.md and report.html print, computed once."""
    spec = run.spec
    d = drift(timeline)
    return LoadPage(
        run_id=run.run_id,
        passed=verdict.passed,
        summary=verdict.summary(),
        started=f"{run.started:%Y-%m-%d %H:%M:%S} UTC",
        target=run.target,
        locustfile=str(spec.locustfile),
        shape=spec.shape,
        stages=shapes.describe(run.stages),
        processes="standalone" if not spec.workers else f"master + {spec.workers} workers",
        locust_exit=run.locust_exit,
        cpu_total_s="" if run.cpu is None else f"{run.cpu.total_s:.1f}",
        cpu_peak="" if run.cpu is None else f"{run.cpu.peak_core_share:.0%}",
        cpu_warning=run.cpu is not None and run.cpu.peak_core_share >= CPU_WARNING_SHARE,
        sources=spec.thresholds.sources,
        limits=_limits(spec.thresholds),
        min_requests=spec.thresholds.min_requests,
        endpoints=_endpoint_rows(stats, verdict),
        not_judged=verdict.not_judged,
        failures=tuple(
            FailureRow(f.method, f.name, f.error, f.occurrences)
            for f in sorted(run.failures, key=lambda f: -f.occurrences)[:15]
        ),
        stages_seen=_stages_seen(run, timeline),
        drift=None
        if d is None
        else Drift(
            _num(d[0].p95_ms), f"{d[0].error_rate:.1%}", _num(d[1].p95_ms), f"{d[1].error_rate:.1%}"
        ),
        pool=_pool(run, headroom),
    )


FILES = (
    "report.html (the run's page); verdict.json; locust.html, locust_stats.csv, "
    "locust_stats_history.csv, locust_failures.csv (locust's own); pool-samples.jsonl; "
    "timeline.json, timeline.csv (per second); locust*.log"
)


def verdict_markdown(
    run: _Run,
    stats: list[EndpointStats],
    verdict: ThresholdResult,
    headroom: Headroom,
    timeline: Timeline,
    *,
    page: LoadPage | None = None,
) -> str:
    """verdict.md: the verdict line, per-endpoint table, the pool's headroom (`page`:
    the inputs' LoadPage when the caller computed it already)."""
    page = page or load_page(run, stats, verdict, headroom, timeline)
    return render("load_verdict.md", page=page, files=FILES)


def report_html(
    run: _Run,
    stats: list[EndpointStats],
    verdict: ThresholdResult,
    headroom: Headroom,
    timeline: Timeline,
    *,
    page: LoadPage | None = None,
) -> str:
    """report.html: the run's own page (base.html's layout, the timeline as inline SVG)."""
    page = page or load_page(run, stats, verdict, headroom, timeline)
    total = next((row for row in stats if row.aggregated), None)
    cards = (
        ("requests", "-" if total is None else str(total.requests)),
        ("failed", "-" if total is None else f"{total.error_rate:.1%}"),
        ("peak users", str(max(s.users for s in run.stages))),
        ("pool size", page.pool.size),
        ("recommended pool", _num(headroom.recommended)),
    )
    return render(
        "load_report.html",
        title=f"Load run {run.run_id}: {'PASS' if verdict.passed else 'FAIL'}",
        page=page,
        cards=cards,
        chart=load_timeline_view(timeline, run.stages),
        legend=LEGEND,
        files=FILES,
    )


def write_report(
    run: _Run,
    stats: list[EndpointStats],
    verdict: ThresholdResult,
    headroom: Headroom,
    timeline: Timeline,
) -> None:
    folder = run.folder
    inputs = (run, stats, verdict, headroom, timeline)
    page = load_page(*inputs)  # verdict.md and report.html show the same figures
    files = {
        "verdict.json": json.dumps(verdict_json(*inputs), indent=2, default=str) + "\n",
        "verdict.md": verdict_markdown(*inputs, page=page),
        "report.html": report_html(*inputs, page=page),
        "pool-samples.jsonl": "".join(json.dumps(s.to_json()) + "\n" for s in run.samples),
    }
    check_no_secrets(files, run.secrets)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    timeline.write(folder)
    from runbook_checks.evidence.manifest import write_manifest

    write_manifest(folder, folder.name)  # `runbook-checks verify-evidence FOLDER` checks it


def check_no_secrets(files: dict[str, str], secrets: list[str]) -> None:
    leaked = sorted(
        name for name, text in files.items() if any(secret and secret in text for secret in secrets)
    )
    if leaked:
        raise RunbookChecksError(
            f"a secret of the run would be written to {', '.join(leaked)}",
            hint="report this: those files were not written",
        )


def error_file(folder: Path, error: BaseException) -> None:
    """Why a run could not be carried out, next to what it left."""
    text = f"{type(error).__name__}: {error}\n"
    for note in getattr(error, "__notes__", []):
        text += f"{note}\n"
    (folder / "error.txt").write_text(text, encoding="utf-8")
