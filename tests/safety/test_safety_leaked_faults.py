"""A fault that a test or a crashed fixture leaves injected is reverted when that test
ends (the next test must not run against it), and the summary says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LEAKY = """
import pytest
from runbook_checks.faults.base import ACTIVE, Fault

UNDONE = []


class Leak(Fault):
    kind = "leak"

    def _inject(self, stack, handle):
        handle.did("leaked", lambda: UNDONE.append("reverted"))


class Stack:
    backend = "fake"
    capabilities = frozenset()
    state = None

    def on_fault_event(self, event, fault, handle):
        pass


@pytest.fixture
def crashing_fixture():
    Leak().inject(Stack())
    raise RuntimeError("the fixture crashed after injecting")


def test_a_crashed_fixture(crashing_fixture):
    pass


def test_a_test_that_forgets_to_revert():
    Leak().inject(Stack())


def test_the_next_test_runs_without_them():
    assert not ACTIVE.handles
    assert UNDONE == ["reverted", "reverted"]
"""


def test_leaked_faults_are_reverted_after_their_test(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_leaky.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert "2 passed, 1 error" in out, out
    assert "test_a_crashed_fixture left leak() injected; reverted" in out, out
    assert "test_a_test_that_forgets_to_revert left leak() injected; reverted" in out, out
