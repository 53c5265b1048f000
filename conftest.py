"""Repo-local wiring only: the product's fixtures live in runbook_checks.plugin (pytest11)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
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
_STATE_FILE = pytest.StashKey[Path]()

settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _suite_controller(config: pytest.Config) -> bool:
    """This process is the controller of `pytest tests -n N --dist loadfile`."""
    return (
        config.getoption("dist", "no") == "loadfile"
        and bool(config.getoption("numprocesses", None))
        and not hasattr(config, "workerinput")
    )


def pytest_configure(config: pytest.Config) -> None:
    """The suite's controller names the state file of its background engine preparation
    (tests/suite_schedule.py) before its workers start: they inherit the variable, and
    their docker modules wait on what the file says."""
    from runbook_checks.stack.docker.testing import BACKGROUND_ENV

    if not _suite_controller(config) or os.environ.get(BACKGROUND_ENV) == "off":
        return
    handle, path = tempfile.mkstemp(prefix="suite-engine-", suffix=".state")
    os.close(handle)
    os.environ[BACKGROUND_ENV] = path
    config.stash[_STATE_FILE] = Path(path)


@pytest.hookimpl(trylast=True)  # after xdist's own: every worker has ended
def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.suite_schedule import BACKGROUND_KEY

    background = session.config.stash.get(BACKGROUND_KEY, None)
    if background is not None:
        took = f" in {background.took:.0f} s" if background.took is not None else ""
        print(f"\nthe engine and images, readied in the background{took}: {background.finish()}")


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_STATE_FILE, None)
    if path is not None:
        path.unlink(missing_ok=True)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest tests -n N --dist loadfile` (`make test`): the suite's own schedule
    (tests/suite_schedule.py); the drills' `loadgroup` is left to runbook_checks.plugin."""
    if config.getoption("dist", "no") != "loadfile":
        return None
    from tests.suite_schedule import SuiteScheduling

    return SuiteScheduling(config, log)
