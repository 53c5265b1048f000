"""Repo-local wiring only: the product's fixtures live in runbook_checks.plugin (pytest11)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Deterministic, bounded property tests in CI; a few more examples on a developer's machine.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest tests -n N --dist loadfile` (`make test`): the suite's own schedule
    (tests/suite_schedule.py); the drills' `loadgroup` is left to runbook_checks.plugin."""
    if config.getoption("dist", "no") != "loadfile":
        return None
    from tests.suite_schedule import SuiteScheduling

    return SuiteScheduling(config, log)
