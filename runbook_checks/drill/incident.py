"""The stages before investigation, measured during a drill: detect, triage, severity.

An `IncidentPlan` is made once per session (the runbook's symptom probes, the alert rules
Prometheus was given). For each drill an `IncidentWatch` runs from the injection to the
start of the mitigation:

- **detect**: the alerts Alertmanager delivers to the drill's own webhook inbox, timed
  from the injection (time-to-alert), with the section each names (`runbook_section`);
- **triage**: every section's symptom probes, evaluated about once a second on a thread
  while the drill's investigation runs (a symptom counts as observed when any evaluation
  showed it), giving the drill's row of the triage matrix;
- **severity**: the impact while nobody acted (failing requests per feature from the API's
  own counters, the front door's health samples, lost writes), judged against the
  severity table's words.

Nothing here acts on the stack: it only looks, as monitoring and an on-call engineer do.
Where Prometheus is missing the drill still runs and says what was not measured.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx

from runbook_checks.clock import Clock
from runbook_checks.drill.provider import ProviderStatusPage
from runbook_checks.drill.result import Alerting, AlertSeen
from runbook_checks.errors import StackError
from runbook_checks.monitor.probes import Probe, ProbeKind, symptom_probes
from runbook_checks.monitor.rules import derive_rules, load_rules
from runbook_checks.monitor.severity import FeatureLoad, Impact, MeasuredImpact
from runbook_checks.monitor.triage import Observation
from runbook_checks.tls import tls_context

if TYPE_CHECKING:
    from runbook_checks.drill.sampler import HealthSampler
    from runbook_checks.monitor.rules import RuleSet
    from runbook_checks.profile import Profile
    from runbook_checks.runbook.model import Runbook, SeverityLevel
    from runbook_checks.stack.base import Stack
    from runbook_checks.stack.monitoring import Monitoring, Notification

ALERT_MISSING = "alert-missing"
ALERT_WRONG_SECTION = "alert-wrong-section"
ALERT_STILL_FIRING = "alert-still-firing"

EVALUATE_EVERY_S = 1.0  # one evaluation of every probe per scrape
HTTP_PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class IncidentPlan:
    """What the session's drills watch for: the runbook's symptom probes, and the alert
    rules Prometheus evaluates (derived from the runbook, or the user's own file)."""

    probes: tuple[Probe, ...]
    rules: RuleSet | None  # None: no Prometheus in this stack (alerts not measured)
    window_s: float  # the rules' and probes' rate window; the least time a fault is watched
    alert_wait_s: float  # how long after the fault took effect a drill waits for its alert
    not_measured: str = ""  # why alerts are not measured, when they are not
    # route label -> user-facing feature (routes not listed are not user-facing)
    features: Mapping[str, str] = field(default_factory=dict)
    status_pages: Mapping[str, str] = field(default_factory=dict)  # provider -> host
    # the API's request counter and duration histogram (its kit's vocabulary); without
    # them the impact is judged from the health samples alone
    requests_total: str = ""
    duration_bucket: str = ""

    def rule_section(self, alertname: str) -> str | None:
        if self.rules is None:
            return None
        rule = next((r for r in self.rules.rules if r.name == alertname), None)
        return rule.section_id if rule is not None else None


def make_plan(
    runbook: Runbook,
    stack: Stack,
    *,
    rules_file: Path | None,
    window_s: float,
    alert_wait_s: float,
    work_dir: Path,
    profile: Profile | None = None,
) -> IncidentPlan:
    """The session's plan: the runbook's symptom probes, and the alert rules (the user's
    file, or derived from the runbook's symptoms) loaded into the stack's Prometheus.
    A rule file Prometheus refuses stops here with a UsageError naming it."""
    vocab = stack.kit.vocabulary
    probes = tuple(symptom_probes(runbook, vocab, window_s=window_s))

    def plan(rules: RuleSet | None, not_measured: str = "") -> IncidentPlan:
        return IncidentPlan(
            probes,
            rules,
            window_s,
            alert_wait_s,
            not_measured=not_measured,
            features=vocab.features,
            requests_total=vocab.requests_total,
            duration_bucket=vocab.duration_bucket,
            # the runbook's profile names its providers' status pages
            status_pages=(profile.status_pages if profile is not None else vocab.status_pages),
        )

    monitoring = stack.monitoring
    if monitoring is None:
        return plan(
            None,
            stack.monitoring_missing
            or f"the {stack.backend} backend has no Prometheus of the project's",
        )
    if rules_file is not None:
        rules = load_rules(rules_file, runbook)
        path = rules_file
    else:
        rules = derive_rules(runbook, str(runbook.path), vocab=vocab, window_s=window_s)
        work_dir.mkdir(parents=True, exist_ok=True)
        path = work_dir / "derived-alert-rules.yml"
        path.write_text(rules.yaml(), encoding="utf-8")
    monitoring.set_rules([path])
    # Prometheus hands new targets to its scrapers every 5 s: right after a stack start
    # the API is not scraped yet, and the first drill would see no alert for that
    # reason alone. A stack that never gets fresh says so at its first drill instead.
    with contextlib.suppress(StackError):
        monitoring.wait_fresh(time.time(), timeout_s=15.0)
    return plan(rules)


class ProbeContext(Protocol):
    """What evaluating a probe needs of the drill (a `DrillContext` is one)."""

    stack: Stack
    edges: dict[str, httpx.BaseTransport]
    injected_wall: float | None


@dataclass
class _Seen:
    observed: bool | None = None
    detail: str = ""


class IncidentWatch:
    """One drill's detect / triage / severity watch, from injection to mitigation."""

    def __init__(
        self,
        plan: IncidentPlan,
        ctx: ProbeContext,
        monitoring: Monitoring | None,
        *,
        section_id: str,
        clock: Clock,
        sampler: HealthSampler | None = None,
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.monitoring = monitoring if plan.rules is not None else None
        self.section_id = section_id
        self.clock = clock
        self.sampler = sampler
        self.injected_mono = 0.0
        # when the drill's independent check first saw the fault in effect (a disk that
        # fills, a lock that queues writers: later than the injection, and later still
        # on a busy machine)
        self.effect_mono: float | None = None
        self.preexisting: set[str] = set()
        self.seen: dict[tuple[str, int], _Seen] = {}
        self._logs: dict[tuple[str, int], LogFollower] = {}  # per log probe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.finished_mono: float | None = None
        # the impact while nobody acted: measured once the watch stops (a later query
        # would count what the mitigation did too)
        self.measured: MeasuredImpact | None = None

    # -- before the fault ----------------------------------------------------------------
    def settle(self, timeout_s: float) -> None:
        """Steady state for alerting: wait (bounded) until no alert fires; what still
        fires then is pre-existing and never counted as this drill's alert."""
        if self.monitoring is None:
            return
        deadline = self.clock.monotonic() + timeout_s
        while True:
            firing = {a.alertname for a in self.monitoring.firing() if a.state == "firing"}
            if not firing or self.clock.monotonic() >= deadline:
                self.preexisting = firing
                return
            self.clock.sleep(0.25)

    # -- during the fault ----------------------------------------------------------------
    def start(self, injected_mono: float) -> None:
        self.injected_mono = injected_mono
        self._thread = threading.Thread(target=self._loop, name="incident-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with httpx.Client(timeout=HTTP_PROBE_TIMEOUT_S, verify=tls_context()) as http:
            while not self._stop.is_set():
                began = self.clock.monotonic()
                self.evaluate_once(http)
                self._stop.wait(max(0.0, EVALUATE_EVERY_S - (self.clock.monotonic() - began)))

    def evaluate_once(self, http: httpx.Client) -> None:
        """Every probe once (a symptom seen once stays seen: not evaluated again)."""
        for probe in self.plan.probes:
            if self._stop.is_set():
                break
            with self._lock:
                seen = self.seen.get((probe.section_id, probe.line))
            if seen is not None and seen.observed:
                continue
            observed, detail = self._evaluate(probe, http)
            self._note(probe, observed, detail)

    def _note(self, probe: Probe, observed: bool | None, detail: str) -> None:
        with self._lock:
            seen = self.seen.setdefault((probe.section_id, probe.line), _Seen())
            if seen.observed:  # once seen, it was seen: keep what showed it
                return
            if observed is not None or seen.observed is None:
                seen.observed, seen.detail = observed, detail

    def _evaluate(self, probe: Probe, http: httpx.Client) -> tuple[bool | None, str]:
        try:
            return self._judge(probe, http)
        except Exception as exc:  # a probe that cannot run says so; the drill goes on
            return None, f"not measured: {type(exc).__name__}: {str(exc)[:160]}"

    def _judge(self, probe: Probe, http: httpx.Client) -> tuple[bool | None, str]:
        kind = probe.kind
        if kind is ProbeKind.MANUAL:
            return None, probe.reason or "a person's observation"
        if kind is ProbeKind.PROMQL:
            if self.monitoring is None:
                return None, f"not measured: {self.plan.not_measured or 'no Prometheus'}"
            samples = self.monitoring.query(probe.expr)
            if not samples:
                return False, f"`{probe.expr}` returned nothing"
            shown = ", ".join(f"{s.value:g}" for s in samples[:3])
            return True, f"`{probe.expr}` = {shown}"
        if kind is ProbeKind.HTTP and probe.http is not None:
            return _http_probe(http, self.ctx.stack.endpoints.api_url, probe)
        if kind is ProbeKind.LOG:
            follower = self._logs.setdefault((probe.section_id, probe.line), LogFollower())
            lines = follower.new_lines(self.ctx.stack.endpoints.log_dir)
            return _log_probe(lines, probe.log_pattern, self.ctx.injected_wall)
        if kind is ProbeKind.STATUS_PAGE:
            return self._status_page(probe)
        return None, f"no way to evaluate a {kind} probe"

    def _status_page(self, probe: Probe) -> tuple[bool | None, str]:
        host = self.plan.status_pages.get(probe.provider)
        if host is None:
            return None, f"not measured: no status page of {probe.provider or 'the provider'}"
        # the drill's own stand-in when the scenario installed one, else the provider's
        # page as it stands (measured from the object store's reachability)
        transport = (
            self.ctx.edges.get(host)
            or ProviderStatusPage(self.ctx.stack, host, probe.provider.title()).transport()
        )
        with httpx.Client(
            transport=transport, timeout=HTTP_PROBE_TIMEOUT_S, verify=tls_context()
        ) as client:
            answer = client.get(f"https://{host}/api/v2/status.json")
        status = answer.json().get("status", {}) if answer.status_code == 200 else {}
        indicator = status.get("indicator") if isinstance(status, dict) else None
        shown = indicator not in (None, "none")
        return shown, f"{host} reports {indicator or answer.status_code}"

    def took_effect(self, effect_mono: float) -> None:
        """The fault is in effect from `effect_mono` (the drill's own check saw it)."""
        self.effect_mono = effect_mono

    def finish(self, *, least_s: float | None = None) -> None:
        """Before the mitigation: keep watching until the window has passed and the
        drilled section's alert arrived (or the alert wait ran out); then stop. The alert
        wait counts from when the fault took effect: no rule can see a failure before
        there is one, and a fault that takes a while to bite (more so on a busy machine)
        would otherwise leave its alert less than the wait."""
        least = self.plan.window_s if least_s is None else least_s
        # an alert for this section can come only from a rule that names it
        wait = self.plan.alert_wait_s if self.rules_for_section() else least
        effect = self.injected_mono if self.effect_mono is None else self.effect_mono
        deadline = max(self.injected_mono + least, effect + wait)
        window_end = self.injected_mono + least
        while self.clock.monotonic() < deadline:
            now = self.clock.monotonic()
            if now >= window_end and (self.monitoring is None or self._own_alert() is not None):
                break
            self.clock.sleep(0.2)
        self.stop()

    def stop(self) -> None:
        """Stop evaluating (idempotent); the watch's end is the impact window's end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HTTP_PROBE_TIMEOUT_S * 3)
            self._thread = None
        if self.finished_mono is None:
            self.finished_mono = self.clock.monotonic()

    # -- what was seen -------------------------------------------------------------------
    def _fired(self) -> list[Notification]:
        if self.monitoring is None:
            return []
        began = self.ctx.injected_wall
        return [
            n
            for n in self.monitoring.inbox.since(self.injected_mono)
            if n.status == "firing"
            and n.alertname not in self.preexisting
            # an alert that started before the fault (a late notification of the last
            # test's, a repeat of one still firing) is not this fault's
            and (began is None or n.began_after(began))
        ]

    def _section_of(self, notification: Notification) -> str | None:
        return notification.labels.get("runbook_section") or self.plan.rule_section(
            notification.alertname
        )

    def rules_for_section(self) -> int:
        """How many of the plan's rules name the drilled section (a user's rule without
        a runbook_section label may name it at run time: counted as one)."""
        if self.plan.rules is None:
            return 0
        return sum(1 for r in self.plan.rules.rules if r.section_id in (self.section_id, None))

    def _own_alert(self) -> Notification | None:
        return next((n for n in self._fired() if self._section_of(n) == self.section_id), None)

    def observations(self) -> list[Observation]:
        with self._lock:
            out = []
            for probe in self.plan.probes:
                seen = self.seen.get((probe.section_id, probe.line), _Seen())
                observed = seen.observed
                detail = seen.detail or "not evaluated"
                if probe.kind is ProbeKind.MANUAL:
                    observed, detail = None, probe.reason or "a person's observation"
                out.append(
                    Observation(
                        probe.section_id, probe.line, probe.symptom, probe.kind.value,
                        observed, detail,
                    )
                )  # fmt: skip
            return out

    def alerting(self) -> Alerting:
        """The detect stage's record so far (time-to-alert, which alerts, which section)."""
        if self.monitoring is None:
            return Alerting(
                measured=False,
                note=f"time-to-alert not measured: {self.plan.not_measured or 'no Prometheus'}",
                rules=self._origin(),
                window_s=self.plan.alert_wait_s,
            )
        seen: dict[str, AlertSeen] = {}
        for n in self._fired():
            if n.alertname not in seen:
                seen[n.alertname] = AlertSeen(
                    alertname=n.alertname,
                    section_id=self._section_of(n),
                    severity=n.labels.get("severity"),
                    fired_s=round(n.received_mono - self.injected_mono, 3),
                    summary=n.annotations.get("summary", ""),
                )
        alerts = sorted(seen.values(), key=lambda a: a.fired_s)
        watched = (self.finished_mono or self.clock.monotonic()) - self.injected_mono
        return Alerting(
            measured=True,
            rules=self._origin(),
            window_s=round(watched, 1),
            rules_for_section=self.rules_for_section(),
            time_to_alert_s=alerts[0].fired_s if alerts else None,
            alerts=alerts,
            preexisting=sorted(self.preexisting),
        )

    def _origin(self) -> str:
        rules = self.plan.rules
        if rules is None:
            return ""
        if rules.origin == "derived":
            return f"{len(rules.rules)} rules derived from the runbook's symptoms"
        return f"{len(rules.rules)} rules from {rules.origin}"

    def still_firing(
        self, names: Sequence[str], timeout_s: float, *, since_mono: float | None = None
    ) -> list[str]:
        """Of `names` (this drill's alerts), those Prometheus still has firing `timeout_s`
        after `since_mono` (the recovery; default now), waiting until then for them to
        resolve."""
        if self.monitoring is None or not names:
            return []
        start = self.clock.monotonic() if since_mono is None else since_mono
        deadline = start + timeout_s
        while True:
            firing = {a.alertname for a in self.monitoring.firing()}
            left = [n for n in names if n in firing]
            if not left or self.clock.monotonic() >= deadline:
                return left
            self.clock.sleep(0.5)

    def measure(self) -> MeasuredImpact:
        """Measure the impact now (right after `finish`) and keep it in `measured`."""
        self.measured = self.impact(0)
        return self.measured

    def impact(self, lost_writes: int) -> MeasuredImpact:
        """What the failure did from the injection until the watch finished (nobody had
        acted yet): requests per feature from the API's own counters, the front door's
        health samples, the writes lost."""
        end = self.finished_mono or self.clock.monotonic()
        span = max(1.0, end - self.injected_mono)
        features: dict[str, FeatureLoad] = {}
        p95: float | None = None
        source = "health samples"
        if self.monitoring is not None and self.plan.requests_total:
            with contextlib.suppress(Exception):
                features = self._feature_loads(span)
                p95 = self._p95(span)
                source = "prometheus + health samples"
        return MeasuredImpact(
            features=features,
            health_failing_share=self._health_share(end),
            lost_writes=lost_writes,
            p95_s=p95,
            source=source,
        )

    def _feature_loads(self, span: float) -> dict[str, FeatureLoad]:
        assert self.monitoring is not None
        counts: dict[str, list[float]] = {}
        counter = self.plan.requests_total
        query = f"sum by (route, status) (increase({counter}[{span:.0f}s]))"
        for sample in self.monitoring.query(query):
            feature = self.plan.features.get(sample.labels.get("route", ""))
            status = sample.labels.get("status", "")
            if feature is None or status == "401":  # not user-facing; the caller's error
                continue
            cell = counts.setdefault(feature, [0.0, 0.0])
            cell[1] += sample.value
            if _failed(status, feature):
                cell[0] += sample.value
        return {k: FeatureLoad(round(v[0]), round(v[1])) for k, v in counts.items()}

    def _p95(self, span: float) -> float | None:
        assert self.monitoring is not None
        # a PromQL string literal holds the RE2 regex: its backslashes doubled
        routes = "|".join(re.escape(r).replace("\\", "\\\\") for r in self.plan.features)
        query = (
            "max(histogram_quantile(0.95, sum by (le, route) (rate("
            f'{self.plan.duration_bucket}{{route=~"{routes}"}}[{span:.0f}s]))))'
        )
        values = [s.value for s in self.monitoring.query(query) if s.value == s.value]
        return round(values[0], 3) if values else None

    def _health_share(self, end_mono: float) -> float | None:
        if self.sampler is None:
            return None
        begin = self.injected_mono - self.sampler.started
        stop = end_mono - self.sampler.started
        window = [s for s in list(self.sampler.samples) if begin <= s.at_s <= stop]
        if not window:
            return None
        return round(sum(not s.ok for s in window) / len(window), 3)


@dataclass(frozen=True)
class AlertIssue:
    kind: str
    level: str  # "error" | "warning"
    message: str
    suggestion: str
    cause: str


def alert_issue(
    alerting: Alerting,
    section_id: str,
    severity: SeverityLevel | None,
    measured: MeasuredImpact | None,
) -> AlertIssue | None:
    """What the detect stage says about the runbook: nothing when an alert pointed at
    the drilled section; `alert-missing` when none fired (an error when the drill
    measured users hurt: nobody paged; a warning when it measured no impact, as for one
    user's odd upload); `alert-wrong-section` when alerts fired for other sections only."""
    if not alerting.measured or alerting.pointing_at(section_id):
        return None
    allowed = (
        f"; the severity {severity.level} allows {severity.response_time} to respond"
        if severity is not None and severity.response_time
        else ""
    )
    if not alerting.alerts:
        hurt = measured is not None and measured.impact > Impact.NONE
        seen = f"measured: {measured.describe()}" if measured is not None else ""
        named = (
            "no rule points to this section"
            if not alerting.rules_for_section
            else f"{alerting.rules_for_section} rule(s) point to this section"
        )
        message = (
            f"no alert fired within {alerting.window_s:.0f}s of the injection "
            f"({alerting.rules or 'no rules'}; {named}){allowed}: nobody would be paged"
        )
        if hurt:
            message += f"; {seen}"
        else:
            message += " (the drill measured no impact on the service's requests" + (
                f"; {seen})" if seen else ")"
            )
        return AlertIssue(
            ALERT_MISSING,
            "error" if hurt else "warning",
            message,
            "give the section a symptom with a measurable threshold (an error rate, a "
            "latency, a count) so an alert rule can watch it",
            "alert: none" if hurt else "alert: none, no impact",
        )
    elsewhere = ", ".join(
        f"{a.alertname} -> {a.section_id or 'no section'}" for a in alerting.alerts
    )
    return AlertIssue(
        ALERT_WRONG_SECTION,
        "warning",
        f"alerts fired ({elsewhere}) but none points to this section: the on-call engineer "
        "would be sent elsewhere first",
        "label an alert that this failure fires with this section (runbook_section), or add "
        "a symptom this failure shows",
        "alert: " + ",".join(sorted({a.section_id or "-" for a in alerting.alerts})),
    )


def _failed(status: str, feature: str) -> bool:
    """A request the user saw fail: 5xx or no answer; for shared links any refusal too
    (an expired or deleted link is the feature not working for whoever holds it)."""
    if status.startswith("5") or status in ("0", ""):
        return True
    return feature == "share links" and status.startswith("4")


def _http_probe(http: httpx.Client, base: str, probe: Probe) -> tuple[bool, str]:
    assert probe.http is not None
    want = probe.http.observed_when
    try:
        answer = http.request(probe.http.method, f"{base}{probe.http.path}")
    except httpx.HTTPError as exc:
        return want == "5xx-or-timeout", f"{probe.http.path}: no answer ({type(exc).__name__})"
    code = answer.status_code
    shown = {
        "5xx-or-timeout": code >= 500,
        "2xx": 200 <= code < 300,
        "4xx": 400 <= code < 500,
    }.get(want, False)
    return shown, f"{probe.http.method} {probe.http.path} answered {code}"


def _log_probe(
    lines: Sequence[tuple[str, str]], pattern: str, since_wall: float | None
) -> tuple[bool, str]:
    """A log line of the API (file name, line) written after the injection matches
    `pattern`."""
    regex = re.compile(pattern, re.IGNORECASE)
    for name, line in lines:
        if not regex.search(line):
            continue
        written = _written(line)
        if since_wall is None or (written is not None and written >= since_wall):
            return True, f"{name}: {line.strip()[:160]}"
    return False, f"no line matching /{pattern}/ written since the fault"


TAIL_BYTES = 256 * 1024  # a log's first read starts at most this far from its end


class LogFollower:
    """The API's log lines, each read once: a log's first read takes its last TAIL_BYTES
    (the lines since the fault are there), each later one only the lines completed since;
    a log that shrank (written anew) is read from its start. Reading the whole tail every
    second cost a load drill's worker seconds of CPU (a busy API's log grows fast)."""

    def __init__(self) -> None:
        self._read: dict[Path, int] = {}  # a log -> the bytes of complete lines read

    def new_lines(self, log_dir: Path) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for path in sorted(Path(log_dir).glob("*.log")):
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                start = self._read.get(path)
                if start is None:
                    start = max(0, size - TAIL_BYTES)
                elif start > size:
                    start = 0
                handle.seek(start)
                data = handle.read(size - start)
            complete = data.rfind(b"\n") + 1  # a line still being written: next time
            self._read[path] = start + complete
            text = data[:complete].decode("utf-8", "replace")
            out += [(path.name, line) for line in text.splitlines()]
        return out


_TS = re.compile(r'"ts"\s*:\s*"([^"]+)"')


def _written(line: str) -> float | None:
    match = _TS.search(line)
    if match is None:
        return None
    try:
        return datetime.fromisoformat(match.group(1)).timestamp()
    except ValueError:
        return None
