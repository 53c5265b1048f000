"""What the pytest plugin collects through a session for the evidence bundle.

Each drill's result arrives with the facts of the stack it ran on (`StackFacts`: its
backend, component versions and secrets, read while it runs: by session end it is
stopped), each test report adds pytest's outcome, and at session end the journal's
results become one bundle. Drills in parallel (pytest-xdist workers, a stack each) send
both to the controlling process on their test reports (`pack`/`unpack`): the bundle
redacts every worker's secrets and is written once, by the controller.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runbook_checks.drill.result import DrillResult
from runbook_checks.evidence.bundle import new_journal, write_bundle
from runbook_checks.evidence.journal import (
    ScenarioRecord,
    Selection,
    SkippedScenario,
    environment_for,
)
from runbook_checks.redact import Redactor
from runbook_checks.runbook.model import Runbook
from runbook_checks.stack.base import Stack, stack_redactor


@dataclass(frozen=True)
class StackFacts:
    """What the evidence says of the stack a drill ran on."""

    backend: str
    versions: Mapping[str, str]
    redactor: Redactor

    @classmethod
    def of(cls, stack: Stack) -> StackFacts:
        try:
            versions = dict(stack.versions())
        except Exception as exc:  # versions are evidence, not a reason to fail a drill
            versions = {"error": f"{type(exc).__name__}: {exc}"}
        return cls(stack.backend, versions, stack_redactor(stack.endpoints))


def pack(result: DrillResult, facts: StackFacts) -> bytes:
    """A drill's result and its stack's facts, for the process that writes the evidence
    (both ends are this package, in one session: pickle)."""
    return pickle.dumps((result, facts), protocol=pickle.HIGHEST_PROTOCOL)


def unpack(data: bytes) -> tuple[DrillResult, StackFacts]:
    result, facts = pickle.loads(data)
    if not isinstance(result, DrillResult) or not isinstance(facts, StackFacts):
        raise TypeError(f"not a packed drill result: {type(result).__name__}")
    return result, facts


@dataclass
class SessionEvidence:
    backend: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    redactor: Redactor = field(default_factory=Redactor)
    runbook: Runbook | None = None
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)  # nodeid -> (o, why)
    evidence_dir: Path = Path("evidence")
    folder: Path | None = None
    error: str = ""
    skipped: list[SkippedScenario] = field(default_factory=list)
    stale_baseline: list[str] = field(default_factory=list)
    interrupted: str = ""  # the signal that cut the session short ("" if none)
    interrupted_scenarios: list[str] = field(default_factory=list)
    selection: Selection = field(default_factory=Selection)

    def saw(self, facts: StackFacts, runbook: Runbook, evidence_dir: Path) -> None:
        """A drill ran on a stack with these facts (workers' stacks: one each; every
        stack's secrets are redacted, the first one's backend and versions reported)."""
        self.runbook = runbook
        self.evidence_dir = evidence_dir
        self.redactor = self.redactor.merged(facts.redactor)
        if not self.backend:
            self.backend = facts.backend
            self.versions = dict(facts.versions)

    def outcome(self, nodeid: str, outcome: str, reason: str = "") -> None:
        # the call phase decides, unless setup or teardown already failed
        previous = self.outcomes.get(nodeid)
        if previous is not None and previous[0] in ("failed", "error"):
            return
        self.outcomes[nodeid] = (outcome, reason)

    def records(self, results: Sequence[DrillResult]) -> list[ScenarioRecord]:
        out = []
        for result in results:
            outcome, reason = self.outcomes.get(result.scenario, ("", ""))
            out.append(
                ScenarioRecord(
                    result=result,
                    outcome=outcome,
                    outcome_reason=reason,
                    samples_aligned=_aligned(result),
                )
            )
        return out

    def write(self, results: Sequence[DrillResult], project_root: Path) -> Path:
        assert self.runbook is not None, "saw() was never called"
        env = environment_for(
            self.runbook, backend=self.backend, versions=self.versions, project_root=project_root
        )
        journal = new_journal(
            env,
            self.records(results),
            kind="drill",
            skipped=self.skipped,
            stale_baseline=self.stale_baseline,
            interrupted=self.interrupted,
            interrupted_scenarios=self.interrupted_scenarios,
            selection=self.selection,
        )
        self.folder = write_bundle(
            journal, self.evidence_dir, runbook=self.runbook, redactor=self.redactor
        )
        return self.folder


def _aligned(result: DrillResult) -> bool:
    """Whether the result's samples are on the events' axis (seconds since injection).

    The runner's sampler counts from its own start, a little before the injection; a
    runner that shifts the samples says so with `samples_aligned` on the result."""
    flags: Mapping[str, object] = vars(result)
    return bool(flags.get("samples_aligned", False))
