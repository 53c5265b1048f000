"""The quarterly review pack: review.html (inline SVG trend charts) and review.md.

Both are templates (templates/review.html, extending base.html; templates/review.md);
this module only computes what they print. `write_review` writes a pack: the two pages,
the fix patch when one is given (copied as fix.patch), and a manifest.json of the pack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import UsageError
from runbook_checks.evidence import svg
from runbook_checks.evidence.manifest import write_manifest
from runbook_checks.evidence.md_report import md_table
from runbook_checks.evidence.review import BundleInfo, Gap, Review, ScenarioTrend
from runbook_checks.evidence.templating import Markup, render
from runbook_checks.evidence.text import seconds


@dataclass(frozen=True)
class FixPatch:
    """The current fix patch (`runbook-checks fix` writes it), as the pack shows it: with
    what its verification said and whether it was made for the reviewed text (from the
    fix's JSON report beside it, `<patch stem>.json`)."""

    name: str
    text: str
    sha256: str
    verified: str = ""  # the fix's own verdict ("3 proved by a drill, ..."), when known
    status: str = ""  # for the reviewed text, already applied to it, or another text's

    @classmethod
    def read(cls, path: Path, runbook: bytes | None = None) -> FixPatch:
        """`path`, judged against the reviewed runbook's bytes `runbook` when given."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"--fix-patch {path}: cannot read it: {exc.strerror or exc}",
                hint="give the patch `runbook-checks fix` wrote (<runbook stem>.fix.patch)",
            ) from None
        report = _fix_report(path.with_suffix(".json"))
        verified = str(report.get("verdict", "")) if report else ""
        status = ""
        if report and runbook is not None:
            digest = hashlib.sha256(runbook).hexdigest()
            if report.get("runbook_sha256") == digest:
                status = "made for the reviewed text of the runbook"
            elif report.get("patched_sha256") == digest:
                status = "already applied: the reviewed text is the patched one"
            else:
                status = (
                    "made for another text of the runbook: run `runbook-checks fix` again "
                    "for a patch of the reviewed one"
                )
        return cls(
            path.name,
            data.decode("utf-8", "replace"),
            hashlib.sha256(data).hexdigest(),
            verified,
            status,
        )


def _fix_report(path: Path) -> dict[str, object]:
    """The fix's JSON report, or nothing when it is absent or unreadable (the patch is
    shown all the same, without its verification)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _option(gap: Gap) -> str:
    return gap.option_title or "(whole section)"


def _name(trend: ScenarioTrend) -> str:
    return trend.section_title + (f" / option {trend.option}" if trend.option else "")


def _earned(bundle: BundleInfo) -> int:
    return sum(1 for s in bundle.journal.scenarios if s.result.verdict.earned)


def trend_chart(trend: ScenarioTrend) -> str:
    labels = [f"{run.created:%m-%d}" for run in trend.runs]
    return svg.trend(
        [
            svg.Series(
                "time to detect",
                tuple(zip(labels, trend.times("time_to_detect_s"), strict=True)),
                "#2563eb",
            ),
            svg.Series(
                "time to recover",
                tuple(zip(labels, trend.times("time_to_recover_s"), strict=True)),
                "#16a34a",
            ),
            svg.Series(
                "time to alert",
                tuple(zip(labels, trend.times("time_to_alert_s"), strict=True)),
                "#d97706",
            ),
        ],
        budget_s=trend.budget_s,
        title=f"trend: {trend.scenario}",
    )


def _title(review: Review) -> str:
    return f"Runbook drill review — {review.period.describe()}"


def _context(review: Review, store: str, patch: FixPatch | None) -> dict[str, Any]:
    closed = sum(1 for f in review.findings if not f.is_open)
    return {
        "review": review,
        "store": store or str(review.evidence_dir),
        "patch": patch,
        "closed": closed,
        "pct": _pct,
        "seconds": seconds,
        "option": _option,
        "name": _name,
        "earned": _earned,
    }


def review_html(
    review: Review, *, store: str = "", patch: FixPatch | None = None, clock: Clock = SYSTEM_CLOCK
) -> str:
    cards = (
        ("evidence bundles", len(review.bundles)),
        ("scenario runs", review.runs),
        ("pass rate", _pct(review.pass_rate)),
        ("runs set apart", len(review.apart)),
        ("bundles refused", len(review.refused)),
        ("findings open", len(review.open_findings)),
        ("findings closed", sum(1 for f in review.findings if not f.is_open)),
        ("options never drilled", len(review.never_drilled)),
        ("drilled on outdated text", len(review.outdated)),
        ("game days", len(review.gamedays)),
    )
    return render(
        "review.html",
        **_context(review, store, patch),
        title=_title(review),
        made=datetime.fromtimestamp(clock.wall(), UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cards=cards,
        # the charts are the shared SVG builder's (svg.py), markup already
        charts=[Markup(trend_chart(t)) for t in review.scenarios],
    )


def _series(values: Sequence[float | None]) -> str:
    return " → ".join(seconds(v) for v in values)


def review_md(review: Review, *, store: str = "", patch: FixPatch | None = None) -> str:
    scenarios = md_table(
        (
            "scenario",
            "runs",
            "passed",
            "pass rate",
            "last verdict",
            "median alert",
            "median detect",
            "median recover",
            "budget",
            "alert trend",
            "detect trend",
            "recover trend",
        ),
        (
            (
                _name(t),
                len(t.runs),
                t.passed,
                _pct(t.pass_rate),
                t.last_verdict,
                seconds(t.median("time_to_alert_s")),
                seconds(t.median("time_to_detect_s")),
                seconds(t.median("time_to_recover_s")),
                seconds(t.budget_s),
                _series(t.times("time_to_alert_s")),
                _series(t.times("time_to_detect_s")),
                _series(t.times("time_to_recover_s")),
            )
            for t in review.scenarios
        ),
    )
    findings = md_table(
        ("status", "kind", "section", "line", "message", "opened", "closed"),
        (
            (
                "open" if h.is_open else "closed",
                h.finding.kind,
                h.finding.section_id,
                h.finding.line or "-",
                h.finding.message,
                f"{h.opened:%Y-%m-%d}",
                f"{h.closed:%Y-%m-%d}" if h.closed else "-",
            )
            for h in review.findings
        ),
    )
    bundles = md_table(
        ("bundle", "kind", "created", "runbook", "scenarios", "manifest"),
        [
            (
                b.journal.id,
                b.journal.kind,
                f"{b.journal.created:%Y-%m-%d %H:%M}",
                f"{b.journal.environment.runbook.path} {b.journal.environment.runbook.sha256[:12]}",
                len(b.journal.scenarios),
                "verified",
            )
            for b in review.bundles
        ]
        + [(r.bundle, "-", "-", "-", "-", "REFUSED") for r in review.refused],
    )
    text = render(
        "review.md",
        **_context(review, store, patch),
        title=f"Runbook drill review: {review.period.describe()}",
        scenarios_table="\n".join(scenarios),
        findings_table="\n".join(findings),
        bundles_table="\n".join(bundles),
    )
    return text.rstrip() + "\n"


def write_review(
    review: Review,
    out_dir: Path,
    *,
    store: str = "",
    patch: FixPatch | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[Path, Path]:
    """Write the pack into `out_dir`: review.html, review.md, fix.patch (when given) and
    manifest.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out_dir / "review.html", out_dir / "review.md"
    html_path.write_text(
        review_html(review, store=store, patch=patch, clock=clock), encoding="utf-8"
    )
    md_path.write_text(review_md(review, store=store, patch=patch), encoding="utf-8")
    if patch is not None:
        (out_dir / "fix.patch").write_text(patch.text, encoding="utf-8")
    write_manifest(out_dir, f"review-{review.period.label}")
    return html_path, md_path
