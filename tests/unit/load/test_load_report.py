"""The load run's pages: verdict.md from its template, report.html extending base.html."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runbook_checks.load import report
from runbook_checks.load.timeline import Timeline
from tests.unit.load.load_inputs import Inputs, inputs


def _bare(folder: Path) -> Inputs:
    """No CPU figures, no timeline, a pool of unknown size, no failures."""
    run, stats, verdict, headroom, _ = inputs(folder, saturated=False)
    run.cpu = None
    run.failures = []
    run.samples = []
    headroom = dataclasses.replace(headroom, pool_size=None, notes=(), projections=(), stages=())
    return run, stats, verdict, headroom, Timeline(0.0, (), {})


EXPECTED = Path(__file__).with_name("verdict_expected.md")


def test_verdict_md_says_the_verdict_endpoints_stages_and_pool(tmp_path: Path) -> None:
    # verdict_expected.md is what the string code wrote for these inputs before the
    # template replaced it (the comparison ran on three variants, commit 8d7055e)
    assert report.verdict_markdown(*inputs(tmp_path)) == EXPECTED.read_text(encoding="utf-8")


def test_verdict_md_without_cpu_timeline_or_failures(tmp_path: Path) -> None:
    text = report.verdict_markdown(*_bare(tmp_path))
    assert "- saturated: never (no connection shortage seen)\n" in text
    assert "recommended with 25% margin: **5**\n" in text  # pool size unknown: no judgement
    for absent in ("locust CPU", "### Failures", "stage by stage", "Drift:", "busy connections"):
        assert absent not in text
    assert text.endswith("locust*.log\n")
