"""The stack the gate starts: without Prometheus and Alertmanager (no check of the gate
reads them; a runbook's PromQL is a manual step), so their start does not slow the
gate's."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import pytest

import runbook_checks.stack as stack_module
from runbook_checks.gate.run import GateOptions, start_stack
from runbook_checks.profile import find_profile

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "runbooks" / "files-incident-response.md"


def test_the_gates_stack_runs_no_monitoring(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []

    def create(config: object, **kwargs: object) -> object:
        made.append(kwargs)
        return SimpleNamespace(stop=lambda: None)

    monkeypatch.setattr(stack_module, "create_stack", create)
    monkeypatch.setattr(stack_module, "start_with_retry", lambda make: make())
    options = GateOptions(RUNBOOK, profile=find_profile(RUNBOOK))
    with contextlib.ExitStack() as cleanup:
        start_stack(options, lambda message: None, cleanup)
    assert made == [{"monitoring": False}]
