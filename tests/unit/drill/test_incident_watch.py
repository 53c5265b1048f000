"""A drill's detect / triage / severity watch, against a fake Prometheus (no servers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runbook_checks.clock import FakeClock
from runbook_checks.drill.incident import (
    ALERT_MISSING,
    ALERT_WRONG_SECTION,
    IncidentPlan,
    IncidentWatch,
    LogFollower,
    alert_issue,
)
from runbook_checks.drill.result import Alerting, AlertSeen
from runbook_checks.monitor.probes import HttpProbe, Probe, ProbeKind
from runbook_checks.monitor.rules import AlertRule, RuleSet
from runbook_checks.monitor.severity import FeatureLoad, MeasuredImpact
from runbook_checks.runbook.parser import parse_runbook
from runbook_checks.stack.monitoring import Notification, PromAlert, Sample

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = parse_runbook(ROOT / "runbooks" / "files-incident-response.md")
API = "sev-1-api-server-down"
DB = "sev-1-database-failure"
EPOCH = 1_700_000_000.0


def _iso(wall: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def note(
    name: str, section: str | None, at: float, *, started: float | None = None
) -> Notification:
    labels = {"alertname": name, **({"runbook_section": section} if section else {})}
    return Notification(
        received_wall=EPOCH + at,
        received_mono=at,
        status="firing",
        alertname=name,
        labels=labels,
        annotations={"summary": f"{name} summary"},
        starts_at=_iso(EPOCH + (at if started is None else started)),
        ends_at="0001-01-01T00:00:00Z",
        fingerprint=name,
    )


@dataclass
class FakeInbox:
    received: list[Notification] = field(default_factory=list)

    def since(self, mono: float) -> list[Notification]:
        return [n for n in self.received if n.received_mono >= mono]


@dataclass
class FakeMonitoring:
    inbox: FakeInbox = field(default_factory=FakeInbox)
    answers: dict[str, list[Sample]] = field(default_factory=dict)
    alerts: list[PromAlert] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    def query(self, promql: str) -> list[Sample]:
        self.queries.append(promql)
        return self.answers.get(promql, [])

    def firing(self) -> list[PromAlert]:
        return list(self.alerts)


@dataclass
class FakeCtx:
    stack: Any = None
    edges: dict[str, httpx.BaseTransport] = field(default_factory=dict)
    injected_wall: float | None = EPOCH


def probe(section: str, line: int, kind: ProbeKind, **extra: Any) -> Probe:
    return Probe(section, section, "SEV-1", f"symptom {line}", line, kind, **extra)


def rule(name: str, section: str | None) -> AlertRule:
    return AlertRule(name, "up == 0", 0.0, {}, {}, section, "test")


PROBES = (
    probe(API, 69, ProbeKind.PROMQL, expr="up == 0"),
    probe(API, 70, ProbeKind.PROMQL, expr="errors > 0"),
    probe(API, 71, ProbeKind.MANUAL, reason="people"),
    probe(DB, 153, ProbeKind.PROMQL, expr="pg_up == 0"),
)
PLAN = IncidentPlan(
    PROBES,
    RuleSet((rule("ApiDown", API), rule("Unlabelled", DB)), "derived"),
    window_s=5.0,
    alert_wait_s=10.0,
)


def watch(monitoring: FakeMonitoring | None, clock: FakeClock, **plan: Any) -> IncidentWatch:
    chosen = IncidentPlan(**{**PLAN.__dict__, **plan}) if plan else PLAN
    w = IncidentWatch(chosen, FakeCtx(), monitoring, section_id=API, clock=clock)  # type: ignore[arg-type]
    w.injected_mono = 0.0
    return w


def test_time_to_alert_is_the_first_alert_after_the_injection() -> None:
    monitoring = FakeMonitoring()
    monitoring.inbox.received = [
        note("Old", API, -3.0),  # before the injection
        note("Late", API, 0.4, started=-20.0),  # a late notice of an earlier alert
        note("ApiDown", API, 1.5),
        note("Unlabelled", None, 2.5),  # no label: the rule's section
    ]
    alerting = watch(monitoring, FakeClock(epoch=EPOCH)).alerting()
    assert alerting.measured
    assert alerting.time_to_alert_s == 1.5
    assert [(a.alertname, a.section_id) for a in alerting.alerts] == [
        ("ApiDown", API),
        ("Unlabelled", DB),
    ]


def test_alerts_firing_before_the_fault_are_preexisting() -> None:
    monitoring = FakeMonitoring(alerts=[PromAlert("Noise", "firing", {}, {}, "", "1")])
    clock = FakeClock(epoch=EPOCH)
    w = watch(monitoring, clock)
    w.settle(timeout_s=3.0)
    assert w.preexisting == {"Noise"}
    assert clock.now >= 3.0  # it waited for them to clear first
    monitoring.inbox.received = [note("Noise", API, 1.0)]
    assert w.alerting().alerts == []


def test_finish_stops_once_the_window_passed_and_the_own_alert_came() -> None:
    monitoring = FakeMonitoring()
    monitoring.inbox.received = [note("ApiDown", API, 0.5)]
    clock = FakeClock(epoch=EPOCH)
    w = watch(monitoring, clock)
    w.finish()
    assert 5.0 <= clock.now < 6.0  # the window, not the whole alert wait


def test_finish_waits_the_alert_wait_when_no_alert_of_the_section_comes() -> None:
    monitoring = FakeMonitoring()
    monitoring.inbox.received = [note("Unlabelled", None, 0.5)]  # another section's
    clock = FakeClock(epoch=EPOCH)
    watch(monitoring, clock).finish()
    assert clock.now >= 10.0


def test_the_alert_wait_counts_from_when_the_fault_took_effect() -> None:
    """A disk that takes 6 s to fill on a busy machine: its alert still gets the whole
    wait after the failure began, not the 4 s left of it."""
    monitoring = FakeMonitoring()
    clock = FakeClock(epoch=EPOCH)
    w = watch(monitoring, clock)
    w.took_effect(6.0)
    w.finish()
    assert clock.now >= 16.0
    assert w.alerting().window_s >= 16.0  # what was watched, counted from the injection


def test_without_prometheus_alerts_and_promql_are_not_measured() -> None:
    clock = FakeClock(epoch=EPOCH)
    w = watch(None, clock, not_measured="prometheus is not installed")
    with httpx.Client() as http:
        w.evaluate_once(http)
    alerting = w.alerting()
    assert not alerting.measured
    assert "prometheus is not installed" in alerting.note
    seen = {o.line: o for o in w.observations()}
    assert seen[69].observed is None
    assert "not measured" in seen[69].detail
    assert seen[71].observed is None
    assert seen[71].detail == "people"
    w.finish()
    assert clock.now >= 5.0  # still watches the window (the symptoms' other probes)


def test_a_symptom_seen_once_stays_seen() -> None:
    monitoring = FakeMonitoring(answers={"up == 0": [Sample({"instance": "a"}, 0.0)]})
    w = watch(monitoring, FakeClock(epoch=EPOCH))
    with httpx.Client() as http:
        w.evaluate_once(http)
        monitoring.answers.clear()  # the symptom went away
        w.evaluate_once(http)
    seen = {o.line: o for o in w.observations()}
    assert seen[69].observed is True
    assert "up == 0" in seen[69].detail
    assert seen[70].observed is False
    assert seen[153].observed is False
    assert monitoring.queries.count("up == 0") == 1  # seen: not asked again
    assert monitoring.queries.count("errors > 0") == 2


def _log(path: Path, *lines: str, partial: str = "") -> None:
    with path.open("a") as handle:
        handle.write("".join(f"{line}\n" for line in lines) + partial)


def _line(at: float, message: str) -> str:
    return f'{{"ts": "{_iso(at)}", "msg": "{message}"}}'


def test_a_log_probe_reads_each_line_once_and_only_lines_since_the_fault(
    tmp_path: Path,
) -> None:
    log = tmp_path / "api.log"
    _log(log, _line(EPOCH - 5, "pool exhausted (before the fault)"), _line(EPOCH + 1, "ok"))
    follower = LogFollower()
    assert [line for _, line in follower.new_lines(tmp_path)] == [
        _line(EPOCH - 5, "pool exhausted (before the fault)"),
        _line(EPOCH + 1, "ok"),
    ]
    _log(log, _line(EPOCH + 2, "still ok"), partial='{"ts": "half a line')
    assert follower.new_lines(tmp_path) == [("api.log", _line(EPOCH + 2, "still ok"))]
    _log(log, '"}')  # the line completed
    assert follower.new_lines(tmp_path) == [("api.log", '{"ts": "half a line"}')]
    log.write_text(_line(EPOCH + 3, "written anew") + "\n")  # shrank: from its start
    assert follower.new_lines(tmp_path) == [("api.log", _line(EPOCH + 3, "written anew"))]

    log_probe = probe(API, 81, ProbeKind.LOG, log_pattern="pool exhausted")
    w = watch(FakeMonitoring(), FakeClock(epoch=EPOCH), probes=(log_probe,))

    class Endpoints:
        log_dir = tmp_path

    class Stack:
        endpoints = Endpoints()

    w.ctx.stack = Stack()  # type: ignore[assignment]
    _log(log, _line(EPOCH - 1, "pool exhausted (before the fault)"))
    with httpx.Client() as http:
        w.evaluate_once(http)
        assert w.observations()[0].observed is False  # written before the fault
        _log(log, _line(EPOCH + 4, "pool exhausted"))
        w.evaluate_once(http)
    (seen,) = w.observations()
    assert seen.observed is True
    assert seen.detail == f"api.log: {_line(EPOCH + 4, 'pool exhausted')}"


def test_an_http_probe_asks_the_front_door(monkeypatch: Any) -> None:
    front = httpx.MockTransport(lambda request: httpx.Response(503))
    http_probe = probe(API, 69, ProbeKind.HTTP, http=HttpProbe("GET", "/health", "5xx-or-timeout"))
    w = watch(FakeMonitoring(), FakeClock(epoch=EPOCH), probes=(http_probe,))

    class Endpoints:
        api_url = "http://front.test"

    class Stack:
        endpoints = Endpoints()

    w.ctx.stack = Stack()  # type: ignore[assignment]
    with httpx.Client(transport=front) as http:
        w.evaluate_once(http)
    (seen,) = w.observations()
    assert seen.observed is True
    assert "answered 503" in seen.detail


def test_still_firing_waits_then_names_what_did_not_resolve() -> None:
    monitoring = FakeMonitoring(alerts=[PromAlert("ApiDown", "firing", {}, {}, "", "1")])
    clock = FakeClock(epoch=EPOCH)
    w = watch(monitoring, clock)
    assert w.still_firing(["ApiDown", "Gone"], timeout_s=4.0) == ["ApiDown"]
    assert clock.now >= 4.0
    monitoring.alerts.clear()
    assert w.still_firing(["ApiDown"], timeout_s=4.0) == []


def test_feature_loads_come_from_the_api_counters() -> None:
    query = "sum by (route, status) (increase(orders_requests_total[10s]))"
    monitoring = FakeMonitoring(
        answers={
            query: [
                Sample({"route": "/upload", "status": "503"}, 7.2),
                Sample({"route": "/upload", "status": "200"}, 2.9),
                Sample({"route": "/share", "status": "404"}, 3.0),
                Sample({"route": "/share", "status": "401"}, 9.0),  # the caller's error
                Sample({"route": "/admin", "status": "500"}, 4.0),  # not user-facing
            ]
        }
    )
    clock = FakeClock(epoch=EPOCH)
    features = {"/upload": "uploads", "/share": "share links"}
    w = watch(monitoring, clock, features=features, requests_total="orders_requests_total")
    clock.advance(10.0)
    w.stop()
    impact = w.impact(lost_writes=0)
    assert impact.features == {"uploads": FeatureLoad(7, 10), "share links": FeatureLoad(3, 3)}
    assert impact.down() == ["share links", "uploads"]


SEV1 = RUNBOOK.severity("SEV-1")


def test_no_alert_while_users_were_hurt_is_an_error() -> None:
    issue = alert_issue(
        Alerting(measured=True, rules="6 rules", window_s=10),
        DB,
        SEV1,
        MeasuredImpact(health_failing_share=1.0),
    )
    assert issue is not None
    assert (issue.kind, issue.level) == (ALERT_MISSING, "error")
    assert "15 minutes" in issue.message
    assert "nobody would be paged" in issue.message


def test_no_alert_and_no_measured_impact_is_a_warning() -> None:
    issue = alert_issue(
        Alerting(measured=True, window_s=10), DB, SEV1, MeasuredImpact(health_failing_share=0.0)
    )
    assert issue is not None
    assert (issue.kind, issue.level) == (ALERT_MISSING, "warning")
    assert "no impact" in issue.message


def test_alerts_for_other_sections_only_send_the_engineer_elsewhere() -> None:
    other = AlertSeen("ApiDown", API, "sev-1", 1.0)
    issue = alert_issue(Alerting(measured=True, alerts=[other]), DB, SEV1, None)
    assert issue is not None
    assert issue.kind == ALERT_WRONG_SECTION
    assert f"ApiDown -> {API}" in issue.message
    own = AlertSeen("DbDown", DB, "sev-1", 2.0)
    assert alert_issue(Alerting(measured=True, alerts=[other, own]), DB, SEV1, None) is None
    assert alert_issue(Alerting(measured=False), DB, SEV1, None) is None


def test_a_section_no_rule_names_is_watched_for_the_window_only() -> None:
    clock = FakeClock(epoch=EPOCH)
    w = watch(FakeMonitoring(), clock, rules=RuleSet((rule("DbDown", DB),), "derived"))
    assert w.rules_for_section() == 0
    w.finish()
    assert 5.0 <= clock.now < 6.0
    alerting = w.alerting()
    issue = alert_issue(alerting, API, SEV1, MeasuredImpact(health_failing_share=1.0))
    assert issue is not None
    assert "no rule points to this section" in issue.message
