"""The pytest plugin (registered through the `pytest11` entry point).

Options (flags and ini keys from `runbook_checks.config.OPTIONS`), markers, and the
fixtures scenarios use: `checks_config`, `runbook`, `stack` (session scope) and
`fresh_stack` (per test: the same stack with its data reset). Imports of heavy modules
(servers, drivers) happen inside fixtures, so loading the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from runbook_checks.config import OPTIONS, ChecksConfig, from_pytest

if TYPE_CHECKING:
    from runbook_checks.runbook.model import Runbook
    from runbook_checks.stack.base import Stack

MARKERS = (
    "runbook(section, option=None): the runbook section (and mitigation option) a scenario "
    "verifies; coverage is computed from these",
    "needs(*capabilities): stack capabilities the test requires (skipped where missing)",
    "integration: needs real servers",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runbook-checks")
    for option in OPTIONS:
        group.addoption(f"--{option.name.replace('_', '-')}", dest=f"runbook_checks_{option.name}",
                        default=None, help=f"{option.help} (default: {option.default})")
        parser.addini(f"runbook_checks_{option.name}", help=option.help, default=None)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)


@pytest.fixture(scope="session")
def checks_config(pytestconfig: pytest.Config) -> ChecksConfig:
    return from_pytest(pytestconfig)


@pytest.fixture(scope="session")
def runbook(checks_config: ChecksConfig) -> Runbook:
    from runbook_checks.runbook.parser import parse_runbook

    return parse_runbook(checks_config.runbook)


@pytest.fixture(scope="session")
def stack(checks_config: ChecksConfig) -> Iterator[Stack]:
    from runbook_checks.stack import create_stack

    with create_stack(checks_config) as running:
        yield running


@pytest.fixture
def fresh_stack(stack: Stack, request: pytest.FixtureRequest) -> Stack:
    for marker in request.node.iter_markers("needs"):
        missing = [c for c in marker.args if c not in stack.capabilities]
        if missing:
            pytest.skip(f"the {stack.backend} backend cannot {', '.join(map(str, missing))}")
    stack.reset_data()
    return stack
