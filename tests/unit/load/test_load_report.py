"""The load run's pages: verdict.md from its template, report.html extending base.html."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("variant", ["saturated", "never-saturated", "bare"])
def test_verdict_md_from_the_template_equals_the_string_code(tmp_path: Path, variant: str) -> None:
    args = (
        _bare(tmp_path) if variant == "bare" else inputs(tmp_path, saturated=variant == "saturated")
    )
    assert report.verdict_markdown(*args) == report._old_verdict_markdown(*args)
