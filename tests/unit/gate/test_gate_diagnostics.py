"""The gate's diagnostics: every investigation step runs, a few at a time, and the
results come back in the runbook's order."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gate_samples import SEVERITIES

import runbook_checks.gate.diagnostics as diagnostics
from conftest import MakeRunbook
from runbook_checks.gate.locate import runbook_steps
from runbook_checks.steps.base import ExecContext, StepResult, StepStatus

STEPS = 8
INVESTIGATION = "\n".join(f'psql $DATABASE_URL -c "SELECT {n};"' for n in range(STEPS))
SCENARIO = f"""\
## SEV-1: API Down

### Investigation

```bash
{INVESTIGATION}
```
"""


@pytest.mark.parametrize(
    ("backend", "at_once"),
    [
        ("local", diagnostics.DIAGNOSTIC_WORKERS),
        ("docker", diagnostics.DIAGNOSTIC_WORKERS),
        ("external", 1),
    ],
)
def test_steps_run_at_once_and_answer_in_the_runbooks_order(
    make_runbook: MakeRunbook,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    backend: str,
    at_once: int,
) -> None:
    """Several at once on the stacks the project runs; one at a time on someone's
    environment (the external backend), whose audit log a person reads."""
    located = runbook_steps(make_runbook(SEVERITIES, SCENARIO))
    lock = threading.Lock()
    running = 0
    most = 0
    full = threading.Event()  # as many steps running as the gate runs at once

    def run_step(step: Any, context: ExecContext) -> StepResult:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == at_once:
                full.set()
        full.wait(timeout=1.0)  # (with fewer at once than expected, nobody sets it)
        time.sleep(0.01 * (STEPS - step.line % STEPS))  # the first steps end last
        with lock:
            running -= 1
        return StepResult(step, StepStatus.OK, "")

    monkeypatch.setattr(diagnostics, "run_step", run_step)
    monkeypatch.setattr(diagnostics.Bindings, "from_stack", classmethod(lambda cls, *a, **k: cls()))
    stack = SimpleNamespace(backend=backend)
    results = diagnostics.run_diagnostics(located, stack, {}, tmp_path)  # type: ignore[arg-type]
    lines = [result.step.line for _, result in results]
    assert len(lines) == STEPS
    assert lines == sorted(lines)  # the runbook's order, whatever order they ended in
    assert [item.step.line for item, _ in results] == lines
    assert most == at_once  # several at once (never more), or one at a time
