"""Fixtures for the gate's unit tests (no servers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gate_samples import SCENARIO, SEVERITIES, compose

from runbook_checks.runbook import Runbook, parse_runbook

MakeRunbook = Callable[..., Runbook]


@pytest.fixture
def make_runbook(tmp_path: Path) -> MakeRunbook:
    """Write Markdown to a file and parse it; parts default to severities + one scenario."""

    def make(*parts: str, name: str = "runbook.md") -> Runbook:
        path = tmp_path / name
        path.write_text(compose(*(parts or (SEVERITIES, SCENARIO))), encoding="utf-8")
        return parse_runbook(path)

    return make
