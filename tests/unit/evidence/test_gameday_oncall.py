"""Game days, the on-call engineer's side: what the panel shows (alerts, never the hidden
severity or SLA), acknowledging, posting status updates, the runbook's reminders."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from rich.console import Console

from files_profile import KIT
from runbook_checks.clock import FakeClock
from runbook_checks.drill.ledger import LedgerEntry
from runbook_checks.drill.result import Actor, DrillResult
from runbook_checks.drill.sampler import Sample
from runbook_checks.gameday.catalogue import discover
from runbook_checks.gameday.game import (
    NO_ALERTING,
    GameDay,
    GameDayState,
    OnCall,
    TerminalOperator,
    _wall,
    measured_impact,
)
from runbook_checks.monitor.statuspage import StatusPageServer
from runbook_checks.runbook.model import Runbook
from runbook_checks.stack.monitoring import START_SLACK_S
from tests.fake_stack import offline_stack as _stack
from tests.profiles import ROOT

INJECTED_WALL = 1_700_000_000.0  # the FakeClock's epoch: injected at monotonic 0


@dataclass(frozen=True)
class FakeAlert:
    alertname: str
    state: str
    annotations: dict[str, str]
    active_at: object


@dataclass(frozen=True)
class FakeNotification:
    received_wall: float
    status: str
    alertname: str
    annotations: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    started: float | None = None  # the alert's startsAt; default: when it arrived

    @property
    def received_mono(self) -> float:  # the FakeClock: monotonic 0 at INJECTED_WALL
        return self.received_wall - INJECTED_WALL

    def began_after(self, wall: float) -> bool:
        started = self.received_wall if self.started is None else self.started
        return started >= wall - START_SLACK_S


@dataclass
class FakeInbox:
    received: list[FakeNotification] = field(default_factory=list)

    def notifications(self) -> list[FakeNotification]:
        return list(self.received)


@dataclass
class FakeMonitoring:
    inbox: FakeInbox = field(default_factory=FakeInbox)
    active: list[FakeAlert] = field(default_factory=list)
    polls: int = 0

    def firing(self) -> Sequence[FakeAlert]:
        self.polls += 1
        return list(self.active)


@dataclass
class Screen:
    """The operator: what was said, what the panel was given."""

    said: list[str] = field(default_factory=list)
    state: GameDayState | None = None

    def show(self, state: GameDayState) -> None:
        self.state = state

    def say(self, text: str) -> None:
        self.said.append(text)

    def command(self, timeout_s: float) -> str | None:
        return None

    def text(self) -> str:
        return "\n".join(self.said)


def _panel(state: GameDayState, clock: FakeClock) -> str:
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    operator = TerminalOperator(console, stream=io.StringIO(), clock=clock)
    operator.state = state
    console.print(operator._render())
    return console.export_text()


def _result(runbook: Runbook, section: str = "SEV-1: API Server Down") -> DrillResult:
    sec = runbook.section(section)
    return DrillResult("gameday:x", sec.id, sec.title, None, "", sec.severity, "", 900.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def screen() -> Screen:
    return Screen()


@pytest.fixture
def page(clock: FakeClock) -> Iterator[StatusPageServer]:
    with StatusPageServer(clock=clock) as server:
        yield server


def _oncall(
    runbook: Runbook,
    screen: Screen,
    clock: FakeClock,
    monitoring: FakeMonitoring | None = None,
    *,
    reveal: bool = False,
    section: str = "SEV-1: API Server Down",
) -> OnCall:
    oncall = OnCall(
        runbook,
        runbook.section(section),
        _result(runbook, section),
        say=screen.say,
        clock=clock,
        monitoring=monitoring,
        no_monitoring="prometheus not installed",
        reveal=reveal,
        revealed_issue="API process killed (kill -9)",
        source="gameday:test",
        vocabulary=KIT.vocabulary,
    )
    oncall.start(clock.monotonic(), clock.wall())
    return oncall


# -- the panel ----------------------------------------------------------------------------


def test_the_panel_hides_the_severity_and_sla_until_revealed(
    runbook: Runbook, tmp_path: Path, clock: FakeClock, screen: Screen
) -> None:
    entry = discover(ROOT / "scenarios").find("sev1_api_server_down:api_killed")
    day = GameDay(entry, _stack(tmp_path), runbook, screen, work_dir=tmp_path, clock=clock)
    day.state.injected_at = 0.0
    clock.advance(75)
    hidden = _panel(day.state, clock)
    assert "1m15s" in hidden  # the clock runs
    for answer in ("SEV-1", "SLA", "15m00s", entry.title):
        assert answer not in hidden
    assert (day.state.severity, day.state.sla_s) == ("hidden", None)  # not even held
    assert day.result.severity == "SEV-1"  # the evidence keeps it
    assert day.result.budget_s == 900.0
    day._reveal()  # resolved (or aborted)
    shown = _panel(day.state, clock)
    assert "SLA 15m00s (SEV-1): 13m45s left" in shown
    assert entry.title in shown
    revealed = GameDay(
        entry, _stack(tmp_path), runbook, screen, work_dir=tmp_path, clock=clock, reveal=True
    )
    revealed.state.injected_at = 0.0
    assert "SLA 15m00s (SEV-1)" in _panel(revealed.state, clock)


def test_the_panel_lists_the_firing_alerts_with_summary_and_since(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    monitoring = FakeMonitoring(
        active=[
            FakeAlert(
                "FilesApiDown",
                "firing",
                {"summary": "The Files API does not answer"},
                "2023-11-14T22:13:55.123456789Z",  # 35 s after the injection
            ),
            FakeAlert("UploadErrors", "pending", {}, INJECTED_WALL + 50),
        ]
    )
    oncall = _oncall(runbook, screen, clock, monitoring)
    oncall.watch()
    lines = oncall.alert_lines()
    assert lines == [
        "FilesApiDown: The Files API does not answer since T+35.1s",
        "UploadErrors (pending) since T+50.0s",
    ]
    state = GameDayState("hidden", "hidden", None, injected_at=0.0, alerts=lines)
    assert "FilesApiDown: The Files API does not answer since T+35.1s" in _panel(state, clock)
    oncall.watch()
    assert monitoring.polls == 1  # Prometheus is asked every ALERT_POLL_S, not every loop
    clock.advance(2.0)
    monitoring.active = []
    oncall.watch()
    assert oncall.alert_lines() == ["none firing"]


def test_the_panels_since_counts_from_t0_although_the_injection_took_time(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    """T+0 is the monotonic mark taken once the fault acted (here 1.5 s after the wall
    mark): an alert Prometheus says became active 0.4 s after T+0 reads T+0.4s, as the
    alert lines and the acknowledgement count, not T+1.9s."""
    monitoring = FakeMonitoring()
    oncall = _oncall(runbook, screen, clock, monitoring)
    clock.advance(1.5)  # the injection's duration
    oncall.start(clock.monotonic(), INJECTED_WALL)
    monitoring.active = [FakeAlert("FilesApiDown", "firing", {}, INJECTED_WALL + 1.5 + 0.4)]
    oncall.watch()
    assert oncall.alert_lines() == ["FilesApiDown since T+0.4s"]
    facts = oncall.facts("impact", {"detected": 2.0})
    assert facts.started_wall == INJECTED_WALL  # the incident began with the injection
    assert facts.detected_wall == INJECTED_WALL + 1.5 + 2.0  # T+2.0s


def test_without_alerting_the_panel_says_time_to_alert_is_not_measured(
    runbook: Runbook, tmp_path: Path, clock: FakeClock, screen: Screen
) -> None:
    entry = discover(ROOT / "scenarios").find("sev1_api_server_down:api_killed")
    stack = _stack(tmp_path, monitoring=None, monitoring_missing="prometheus not installed")
    day = GameDay(entry, stack, runbook, screen, work_dir=tmp_path, clock=clock)
    assert day.oncall.alert_lines() == [f"{NO_ALERTING}: prometheus not installed"]
    bare = GameDay(entry, _stack(tmp_path), runbook, screen, work_dir=tmp_path, clock=clock)
    assert bare.oncall.alert_lines() == [NO_ALERTING]  # a stack without the attribute
    unmeasured = day.oncall.alerting()
    assert (unmeasured.measured, unmeasured.note) == (
        False,
        "time-to-alert not measured: prometheus not installed",
    )


def test_rfc3339_times_with_nanoseconds_are_read() -> None:
    assert _wall("2023-11-14T22:13:20.000000001Z") == INJECTED_WALL
    assert _wall("2023-11-14T23:13:20+01:00") == INJECTED_WALL
    assert _wall(12.5) == 12.5
    assert _wall("not a time") is None


# -- alerts and acknowledging ---------------------------------------------------------------


def test_alerts_that_arrive_are_said_and_kept_once(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    monitoring = FakeMonitoring()
    monitoring.inbox.received = [
        FakeNotification(INJECTED_WALL - 5, "firing", "Preexisting", {}),
        # Alertmanager repeats what still fires: firing since before the fault, not its
        FakeNotification(INJECTED_WALL + 3, "firing", "Preexisting", {}, started=INJECTED_WALL - 5),
        FakeNotification(INJECTED_WALL + 12, "resolved", "Gone", {}),
        FakeNotification(
            INJECTED_WALL + 12,
            "firing",
            "FilesApiDown",
            {"summary": "down"},
            {"runbook_section": "sev-1-api-server-down", "severity": "sev-1"},
        ),
        FakeNotification(INJECTED_WALL + 40, "firing", "FilesApiDown", {"summary": "down"}),
        FakeNotification(INJECTED_WALL + 45, "firing", "Later", {}),
    ]
    oncall = _oncall(runbook, screen, clock, monitoring)
    oncall.watch()
    oncall.watch()
    alerts = [(e.at_s, e.detail) for e in oncall.result.events if e.name == "alert"]
    assert alerts == [(12.0, "FilesApiDown: down"), (45.0, "Later")]
    assert screen.said == ["ALERT FilesApiDown firing: down", "ALERT Later firing"]
    alerting = oncall.alerting("12 rules (derived)")
    assert (alerting.measured, alerting.time_to_alert_s, alerting.rules) == (
        True,
        12.0,
        "12 rules (derived)",
    )
    first = alerting.alerts[0]
    assert (first.alertname, first.section_id, first.severity, first.fired_s) == (
        "FilesApiDown",
        "sev-1-api-server-down",
        "sev-1",
        12.0,
    )
    assert [a.alertname for a in alerting.alerts] == ["FilesApiDown", "Later"]


def _acknowledged(
    runbook: Runbook, screen: Screen, clock: FakeClock, arrivals: list[float], at_s: float
) -> OnCall:
    monitoring = FakeMonitoring()
    monitoring.inbox.received = [
        FakeNotification(INJECTED_WALL + s, "firing", "A", {}) for s in arrivals
    ]
    oncall = _oncall(runbook, screen, clock, monitoring)
    clock.advance(at_s)
    oncall.watch()
    oncall.ack()
    return oncall


def test_acknowledging_counts_from_the_first_alert(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    oncall = _acknowledged(runbook, screen, clock, [12.0], 50.0)
    assert oncall.result.acknowledged_s == 38.0
    [event] = [e for e in oncall.result.events if e.name == "acknowledged"]
    assert (event.at_s, event.detail) == (50.0, "38.0s after the first alert (A at T+12.0s)")
    clock.advance(10)
    oncall.ack()
    assert oncall.result.acknowledged_s == 38.0  # the first acknowledgement counts
    assert "already acknowledged" in screen.said[-1]


def test_an_alert_acknowledged_at_once_counts_although_the_injection_took_time(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    """The wall mark is taken before the fault acts, the monotonic one after (here the
    kill took 1.5 s): an alert that arrived 0.2 s after it, acknowledged 0.1 s later, is
    the first alert, not "no alert had arrived" (a scripted operator's game day saw it)."""
    monitoring = FakeMonitoring()
    oncall = _oncall(runbook, screen, clock, monitoring)
    clock.advance(1.5)  # the injection's duration
    oncall.start(clock.monotonic(), INJECTED_WALL)
    monitoring.inbox.received = [FakeNotification(INJECTED_WALL + 1.7, "firing", "A", {})]
    clock.advance(0.2)
    oncall.watch()
    clock.advance(0.1)
    oncall.ack()
    assert screen.said[-1].startswith("acknowledged at T+0.3s: 0.1s after the first alert")
    assert oncall.result.acknowledged_s == pytest.approx(0.1)
    assert oncall.alerting().time_to_alert_s == pytest.approx(0.2)


@pytest.mark.parametrize(
    "arrivals",
    [[], [30.0]],  # none; one stamped after the acknowledgement (its clock runs ahead)
    ids=["no-alert", "alert-stamped-later"],
)
def test_acknowledging_without_an_earlier_alert_counts_from_the_injection(
    runbook: Runbook, clock: FakeClock, screen: Screen, arrivals: list[float]
) -> None:
    oncall = _acknowledged(runbook, screen, clock, arrivals, 20.0)
    assert oncall.result.acknowledged_s == 20.0
    assert "after the injection (no alert had arrived)" in screen.said[-1]


# -- posting ------------------------------------------------------------------------------


def test_a_post_shows_what_customers_read_and_posts_it(
    runbook: Runbook, clock: FakeClock, screen: Screen, page: StatusPageServer
) -> None:
    oncall = _oncall(runbook, screen, clock)
    clock.advance(90)
    with page.client(clock) as client:
        oncall.page = client
        oncall.post("investigating uploads and downloads failing", "uploads fail (80%)", {})
    [update] = page.updates()
    # hidden: the guidelines' template (the section's own would name the scenario)
    assert update.name == "ðŸŸ¡ Investigating - Files API Issues"
    assert "We're investigating reports of uploads and downloads failing." in update.body
    assert "Users may experience uploads fail (80%)." in update.body
    assert "Posted: 10:14 PM UTC" in update.body  # 22:13:20 + 90 s
    assert update.impact == "none"  # left to the page: the severity would name it
    said = screen.text()
    assert "customers will read (the runbook's 'Investigating' template, line 556)" in said
    assert "    ðŸŸ¡ Investigating - Files API Issues" in said
    assert "note: mis-encoded, as the runbook has it: 'ðŸŸ¡'" in said
    [step] = oncall.result.steps
    assert (step.phase, step.by, step.status, step.line, step.started_s) == (
        "communication",
        Actor.PERSON,
        "ok",
        556,
        90.0,
    )
    assert step.output == f"{update.name}\n\n{update.body}"
    assert oncall.result.communication == [
        {
            "stage": "investigating",
            "name": update.name,
            "body": update.body,
            "template": "Investigating",
            "line": 556,
            "posted": True,
            "at_s": 90.0,
        }
    ]
    [event] = [e for e in oncall.result.events if e.name == "posted"]
    assert event.detail == "investigating: ðŸŸ¡ Investigating - Files API Issues"


def test_once_revealed_a_post_uses_the_sections_own_template_and_severity(
    runbook: Runbook, clock: FakeClock, screen: Screen, page: StatusPageServer
) -> None:
    oncall = _oncall(runbook, screen, clock)
    oncall.reveal()
    with page.client(clock) as client:
        oncall.page = client
        oncall.post("inv", "requests fail", {"detected": 30.0})
        oncall.post("resolved the API process had died", "requests fail", {"recovered": 400.0})
    first, last = page.updates()
    assert (first.name, first.impact) == ("ðŸ”´ Major Outage - Files API Unavailable", "critical")
    assert last.status == "resolved"
    assert oncall.root_cause == "the API process had died"
    assert oncall.has_posted("resolved")
    assert not oncall.has_posted("identified")
    findings = oncall.findings("requests fail", {"detected": 30.0, "recovered": 400.0})
    kinds = {(f.kind, f.line) for f in findings}
    assert ("status-update-unreadable", 127) in kinds
    assert ("status-update-stale", 132) in kinds  # 10:15 AM PST
    assert ("status-update-stale", 141) in kinds  # a pool exhaustion: not this incident
    assert {f.source for f in findings} == {"gameday:test"}


def test_a_post_without_a_known_stage_says_how(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    oncall = _oncall(runbook, screen, clock)
    oncall.post("fixed it", "-", {})
    oncall.post("", "-", {})
    oncall.post("i see errors", "-", {})  # investigating or identified?
    assert oncall.result.steps == []
    assert screen.said[-1].startswith("post what? post STAGE [what you know]")


def test_without_a_status_page_the_text_is_shown_only(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    oncall = _oncall(runbook, screen, clock)
    oncall.post("identified a full disk", "-", {})
    [step] = oncall.result.steps
    assert step.status == "manual"
    assert oncall.result.communication[0]["posted"] is False
    assert "We've identified the issue: a full disk." in step.output


# -- reminders ----------------------------------------------------------------------------


def test_reminders_come_once_when_the_runbook_says(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    oncall = _oncall(runbook, screen, clock)
    clock.advance(1799)
    oncall.watch()
    assert screen.said == []
    clock.advance(1)
    oncall.watch(affected_share=0.2)
    oncall.watch(affected_share=0.2)
    assert screen.said == [
        "update due: the runbook says every 30 minutes "
        "(line 42: Update incident channel every 30 minutes)",
        'escalate: the runbook says to escalate when "Unable to identify root cause" (line 545)',
    ]
    oncall.watch(affected_share=0.9)
    assert screen.said[-1].startswith('escalate: the runbook says to escalate when "Affects')
    reminders = [e for e in oncall.result.events if e.name == "reminder"]
    assert [e.at_s for e in reminders] == [1800.0, 1800.0, 1800.0]


def test_a_status_update_promise_is_reminded(
    runbook: Runbook, clock: FakeClock, screen: Screen
) -> None:
    oncall = _oncall(runbook, screen, clock)
    oncall.post("investigating", "-", {})
    clock.advance(900)
    oncall.watch()
    assert screen.said[-1].startswith(
        "status page update due: the investigating update posted at T+0m00s"
    )


# -- impact -------------------------------------------------------------------------------


def test_the_impact_is_measured_from_uploads_then_health_checks() -> None:
    def entry(phase: str, acknowledged: bool) -> LedgerEntry:
        upload = cast("object", SimpleNamespace(acknowledged=acknowledged))
        return cast("LedgerEntry", SimpleNamespace(phase=phase, at_s=0.0, upload=upload))

    entries = [entry("steady", True), *(entry("fault", i < 3) for i in range(12))]
    samples = [Sample(t, 200 if t < 5 else 0, 1.0) for t in range(10)]
    text, share = measured_impact(entries, samples, 5.0)
    assert text == "uploads fail (75% of 12 uploads); the service does not answer (100% of checks)"
    assert share == 0.75
    assert measured_impact([], samples, 5.0) == (
        "the service does not answer (100% of checks)",
        1.0,
    )
    assert measured_impact([], [], 0.0) == ("no failures measured so far", None)
