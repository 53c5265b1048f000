"""One phase sequence (drill/phases.py): the drill's automatic operator and the game day's
human one walk the same phases, in the same order, with the same shared events (no
servers: a fake stack, client, ledger and sampler, a fake clock)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from runbook_checks.clock import FakeClock
from runbook_checks.drill import phases, runner
from runbook_checks.drill.ledger import LedgerResult
from runbook_checks.drill.phases import PHASES, walk
from runbook_checks.drill.result import DrillResult, Verdict
from runbook_checks.drill.runner import Drill, DrillContext
from runbook_checks.drill.spec import Detector, Scenario
from runbook_checks.gameday import game
from runbook_checks.gameday.catalogue import CatalogueEntry
from runbook_checks.gameday.game import GameDay, GameDayState
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.service import Upload
from runbook_checks.stack.base import Stack
from tests.fake_stack import offline_stack as _stack

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")
SECTION = "sev-1-api-server-down"
SHARED = ("steady", "injected", "symptom", "reverted")  # the sequence's and both operators'


# -- fakes --------------------------------------------------------------------------------


@dataclass
class FakeHandle:
    log: list[str]
    active: bool = True

    def revert(self) -> None:
        self.log.append("revert")
        self.active = False


@dataclass
class FakeFault:
    """A client fault: its own requests happen inside inject() (the clock moves)."""

    clock: FakeClock
    log: list[str]
    handle: FakeHandle | None = None

    def describe(self) -> str:
        return "fake(kill)"

    def drives_load(self) -> bool:
        return False

    def inject(self, stack: object, *, clock: object) -> FakeHandle:
        self.clock.advance(1.0)
        self.log.append("inject")
        self.handle = FakeHandle(self.log)
        return self.handle


@dataclass
class FakeLedger:
    log: list[str]
    phase: str = "steady"
    entries: list[object] = field(default_factory=list)

    def write(self) -> None:
        self.log.append(f"write:{self.phase}")

    def start(self, interval_s: float = 0.25) -> None:
        self.log.append(f"start:{self.phase}:{interval_s}")

    def verify(self) -> LedgerResult:
        self.log.append("verify")
        return LedgerResult(attempted=6, acknowledged=6, stable=6, lost=(), unacknowledged=0)


@dataclass
class FakeSampler:
    log: list[str]
    started: float = 0.0
    samples: list[object] = field(default_factory=list)

    def start(self) -> None:
        self.log.append("sampler")


@dataclass
class FakeIncident:
    result: DrillResult
    handle: Any = None
    injected_at: float | None = None
    injected_wall: float | None = None
    events: list[str] = field(default_factory=list)

    def event(self, name: str, detail: str = "") -> None:
        self.events.append(name)


@dataclass
class RecordingOperator:
    """Says what it was asked, in order; gives up while investigating when told to."""

    clock: FakeClock
    log: list[str]
    give_up: bool = False
    ledger_interval_s: float = 0.5
    fault_made: FakeFault | None = None

    def entering(self, phase: str) -> None:
        self.log.append(f"> {phase}")

    def __getattr__(self, name: str) -> Callable[..., object]:
        def hook(*args: object) -> object:
            self.log.append(name + "".join(f" {a}" for a in args if isinstance(a, str)))
            if name == "fault":
                self.fault_made = FakeFault(self.clock, self.log)
                return self.fault_made
            if name == "investigate":
                return not self.give_up
            return None

        return hook


def _result() -> DrillResult:
    return DrillResult(
        scenario="s",
        section_id=SECTION,
        section_title="t",
        option=None,
        section_hash="h",
        severity="SEV-1",
        fault="",
        budget_s=900,
    )


def _walk(*, give_up: bool) -> tuple[bool, list[str], FakeIncident, RecordingOperator]:
    clock = FakeClock()
    clock.advance(10.0)
    log: list[str] = []
    ctx = FakeIncident(_result())
    operator = RecordingOperator(clock, log, give_up=give_up)
    done = walk(
        cast("phases.Operator", operator),
        ctx,
        cast("Stack", object()),
        cast("Any", FakeSampler(log)),
        cast("Any", FakeLedger(log)),
        clock=clock,
    )
    return done, log, ctx, operator


def test_the_sequence_walks_every_phase_in_order_and_leaves_the_differences_to_the_operator() -> (
    None
):
    done, log, ctx, _ = _walk(give_up=False)
    assert done
    assert [e for e in log if e.startswith("> ")] == [f"> {p}" for p in PHASES]
    assert [e for e in log if not e.startswith("> ")] == [
        "arrange",
        "sampler",
        "write:steady",
        "write:steady",
        "write:steady",
        "steady",
        "fault",
        "start:fault:0.5",  # the ledger writes at the operator's pace once the fault is in
        "inject",
        "injected",
        "mark injected fake(kill)",
        "symptom",
        "investigate",
        "mitigate",
        "recovery",
        "revert",
        "mark reverted fault reverted",
        "steady_after",
        "write:after",
        "write:after",
        "write:after",
        "verify",
        "verdict",
    ]
    assert ctx.events == ["steady"]  # the others are the operator's marks
    # the wall clock is read before inject(): a client fault's own requests come after it
    assert ctx.injected_wall == ctx.result.injected_wall == FakeClock().epoch + 10.0
    assert ctx.injected_at == 11.0  # the clock starts once the fault is in
    assert ctx.result.fault == "fake(kill)"
    assert ctx.result.ledger is not None
    assert ctx.result.ledger.acknowledged == 6


def test_an_operator_who_gives_up_leaves_the_fault_in_for_the_caller() -> None:
    done, log, ctx, operator = _walk(give_up=True)
    assert not done
    assert [e for e in log if e.startswith("> ")][-1] == "> investigate"
    assert "revert" not in log
    assert "verify" not in log
    assert operator.fault_made is not None
    handle = operator.fault_made.handle
    assert handle is not None
    assert ctx.handle is handle
    assert handle.active  # still in: the caller reverts it


# -- the drill and the game day, each through its own operator ----------------------------


class FakeClient:
    """/health answers 200; an upload reads back byte for byte."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def health(self, timeout_s: float = 3.0) -> httpx.Response:
        return httpx.Response(200)

    def upload(self, user: object, name: str, payload: bytes, **kwargs: object) -> Upload:
        file_id = f"f{len(self.stored)}"
        self.stored[file_id] = payload
        digest = hashlib.sha256(payload).hexdigest()
        return Upload(201, file_id, name, digest, len(payload), "")

    def download(self, user: object, file_id: str) -> httpx.Response:
        return httpx.Response(200, content=self.stored[file_id])


def _scenario(fault: FakeFault) -> Scenario:
    return Scenario(
        fault=cast("Any", lambda ctx: fault),
        confirm=lambda ctx: None,  # the fault is in effect at once
        detect=Detector(("^never$",), lambda result, ctx: None, "nothing"),
        detect_steps="option",  # no option: no diagnostic to run
        recovered=lambda ctx: None,
        ledger=False,
        title="fake kill",
    )


def _context(stack: Stack, tmp_path: Path, clock: FakeClock, result: DrillResult) -> DrillContext:
    user = SimpleNamespace(id="u1", email="u@drill.test", token="user-token-456")
    section = RUNBOOK.section(SECTION)
    return DrillContext(
        stack, RUNBOOK, section, None, cast("Any", FakeClient()), user, tmp_path, clock, result
    )


@pytest.fixture
def entered(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The phases each caller's operator was walked through, by the module that walked."""
    seen: dict[str, list[str]] = {}

    def spying(module: str) -> Callable[..., bool]:
        def spy(operator: Any, *args: Any, **kwargs: Any) -> bool:
            class Spy:
                def __getattr__(self, name: str) -> Any:
                    return getattr(operator, name)

                def entering(self, phase: str) -> None:
                    seen.setdefault(module, []).append(phase)
                    operator.entering(phase)

            return walk(cast("phases.Operator", Spy()), *args, **kwargs)

        return spy

    monkeypatch.setattr(runner, "walk", spying("drill"), raising=False)
    monkeypatch.setattr(game, "walk", spying("gameday"), raising=False)
    return seen


@dataclass
class ScriptedConsole:
    """The person at the prompt: says "resolved", then Enter past the epilogue."""

    lines: list[str]
    said: list[str] = field(default_factory=list)

    def show(self, state: GameDayState) -> None:
        pass

    def say(self, text: str) -> None:
        self.said.append(text)

    def command(self, timeout_s: float) -> str | None:
        return self.lines.pop(0) if self.lines else ""


def test_the_drill_and_the_game_day_walk_the_same_phases(
    tmp_path: Path, entered: dict[str, list[str]]
) -> None:
    clock = FakeClock()
    log: list[str] = []
    stack = _stack(tmp_path)

    drill_fault = FakeFault(clock, log)
    drill = Drill(stack, RUNBOOK, SECTION, None, scenario_id="s", work_dir=tmp_path, clock=clock)
    drill_ctx = _context(stack, tmp_path, clock, _result())
    drill._phases(_scenario(drill_fault), drill_ctx, cast("Any", FakeSampler(log)), None)
    drill_events = [e.name for e in drill_ctx.result.events]

    game_fault = FakeFault(clock, log)
    entry = CatalogueEntry("fake:kill", "KILL", "test_fake", SECTION, None, _scenario(game_fault))
    console = ScriptedConsole(["resolved"])
    day = GameDay(entry, stack, RUNBOOK, console, work_dir=tmp_path, clock=clock, poll_s=0.1)
    game_ctx = _context(stack, tmp_path, clock, day.result)
    session = SimpleNamespace(
        begin=lambda *args, **kwargs: game_ctx,
        sampler=FakeSampler(log),
        ledger=FakeLedger(log),
    )
    day._run_in(cast("Any", session))
    game_events = [e.name for e in day.result.events]

    assert entered == {"drill": list(PHASES), "gameday": list(PHASES)}
    assert [e for e in drill_events if e in SHARED] == list(SHARED)
    assert [e for e in game_events if e in SHARED] == list(SHARED)
    # what each operator did its own way
    assert drill_events == [
        "steady",
        "injected",
        "symptom",
        "detector-unread",  # the fake detector reads no step of the section
        "mitigating",
        "reverted",
    ]
    assert drill_ctx.result.verdict is Verdict.RUNBOOK_WRONG  # no option: no-mitigation
    assert game_events == [
        "steady",
        "injected",
        "symptom",
        "detected",
        "resolved",
        "recovered",
        "reverted",
    ]
    assert day.result.verdict is Verdict.PASSED
    assert day.state.marks["reverted"] == pytest.approx(game_ctx.since_inject())
    for fault in (drill_fault, game_fault):  # each reverted by the sequence
        assert fault.handle is not None
        assert not fault.handle.active
