"""The stack's real alerting: Prometheus scrapes the API directly, a rule fires when the
API is killed, Alertmanager delivers it (and its resolution) to the drill's inbox; rule
files Prometheus refuses are the user's error; the servers listen on loopback only and
leave nothing behind; a stack without the binaries says why it has no monitoring."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from files_profile import KIT
from runbook_checks.errors import UsageError
from runbook_checks.stack import local as local_module
from runbook_checks.stack.base import Stack
from runbook_checks.stack.local import LocalStack
from runbook_checks.stack.monitoring import Monitoring, Notification, find_monitoring

pytestmark = pytest.mark.integration

SECTION = "sev-1-api-server-down"
API_DOWN_RULES = (
    Path(__file__).resolve().parents[1] / "fixtures/monitoring/files-api-down.rules.yml"
)
FIRST_SCRAPE_S = 15.0  # a young Prometheus scrapes ~5.5 s after its start (see monitoring.py)
ALERT_S = 20.0


def monitoring_of(stack: Stack) -> Monitoring:
    if stack.monitoring is None:
        pytest.skip(f"the stack has no monitoring: {stack.monitoring_missing}")
    return stack.monitoring


@pytest.fixture
def monitored(fresh_stack: Stack) -> Iterator[tuple[Stack, Monitoring, Path]]:
    """The session stack with FilesApiDown loaded; the rules go again afterwards."""
    monitoring = monitoring_of(fresh_stack)
    monitoring.set_rules([API_DOWN_RULES])
    try:
        yield fresh_stack, monitoring, API_DOWN_RULES
    finally:
        monitoring.set_rules([])


def _api_down(status: str, instance: str) -> Callable[[Notification], bool]:
    """FilesApiDown of `instance` (an instance an earlier test removed may still have its
    alert fire or resolve: Prometheus evaluated it before it dropped that target)."""

    def matches(n: Notification) -> bool:
        return (
            n.alertname == "FilesApiDown"
            and n.status == status
            and n.labels.get("runbook_section") == SECTION
            and n.labels.get("instance") == instance
        )

    return matches


def test_killing_the_api_fires_the_alert_and_starting_it_resolves_it(
    monitored: tuple[Stack, Monitoring, Path], record_property: Callable[[str, object], None]
) -> None:
    stack, monitoring, _ = monitored
    clock = monitoring.clock
    monitoring.wait_fresh(clock.wall(), timeout_s=FIRST_SCRAPE_S)
    api = stack.endpoints.api_instance_url.removeprefix("http://")
    (up,) = monitoring.query(f'up{{job="files-api", instance="{api}"}}')
    assert up.value == 1.0
    assert not [a for a in monitoring.firing() if a.alertname == "FilesApiDown"]

    killed = clock.monotonic()
    stack.component("api").kill()
    firing = monitoring.inbox.wait_for(
        _api_down("firing", api), after_mono=killed, timeout_s=ALERT_S
    )
    assert firing is not None, (
        f"no FilesApiDown notification {ALERT_S:.0f}s after the kill; Prometheus has "
        f"{monitoring.firing()}, the inbox {monitoring.inbox.notifications()}"
    )
    record_property("time_to_alert_s", round(firing.received_mono - killed, 3))
    assert firing.labels["instance"] == api
    assert firing.annotations["summary"] == f"API instance {api} is down"
    assert firing.ends_at.startswith("0001-01-01")  # still firing
    (alert,) = [a for a in monitoring.firing() if a.alertname == "FilesApiDown"]
    assert alert.state == "firing"

    started = clock.monotonic()
    stack.component("api").start()
    resolved = monitoring.inbox.wait_for(
        _api_down("resolved", api), after_mono=started, timeout_s=ALERT_S
    )
    assert resolved is not None, f"no resolution; the inbox has {monitoring.inbox.since(started)}"
    record_property("time_to_resolve_s", round(resolved.received_mono - started, 3))
    assert resolved.fingerprint == firing.fingerprint


def test_an_alert_that_resolves_and_fires_again_at_once_is_delivered_again(
    fresh_stack: Stack,
) -> None:
    """Alertmanager notifies a group again only when its firing set changed or its repeat
    interval passed: an alert that resolves and fires again within one group interval
    (a blip just before the fault) looks unchanged. Its new firing must still reach the
    inbox, or the fault's alert is missed (a game day waited 90 s for one). Posted to
    Alertmanager's API as Prometheus posts them; the real Prometheus path is the test
    above."""
    monitoring = monitoring_of(fresh_stack)
    clock = monitoring.clock
    labels = {"alertname": "BlipThenFault", "runbook_section": SECTION}

    def post(starts: float, ends: float) -> None:
        stamp = [datetime.fromtimestamp(t, UTC).isoformat() for t in (starts, ends)]
        alert = {"labels": labels, "startsAt": stamp[0], "endsAt": stamp[1]}
        httpx.post(f"{monitoring.alertmanager_url}/api/v2/alerts", json=[alert]).raise_for_status()

    def ours(n: Notification) -> bool:
        return n.alertname == "BlipThenFault" and n.status == "firing"

    blip = clock.wall() - 5  # firing since a while before the fault
    post(blip, blip + 60)
    assert monitoring.inbox.wait_for(ours, after_mono=0.0, timeout_s=ALERT_S) is not None
    post(blip, clock.wall())  # resolved ...
    fault = clock.wall()
    post(fault, fault + 60)  # ... and firing again before the group's next flush
    try:
        again = monitoring.inbox.wait_for(
            lambda n: ours(n) and n.began_after(fault), after_mono=0.0, timeout_s=ALERT_S
        )
        assert again is not None, (
            f"the fault's alert never came: {monitoring.inbox.notifications()}"
        )
        assert not next(n for n in monitoring.inbox.notifications() if ours(n)).began_after(fault)
    finally:
        post(fault, clock.wall())  # resolved: the next test's Alertmanager is quiet


def test_a_rule_file_prometheus_refuses_names_the_file(
    monitored: tuple[Stack, Monitoring, Path], tmp_path: Path
) -> None:
    _, monitoring, good = monitored
    broken = tmp_path / "typo.rules.yml"
    broken.write_text(API_DOWN_RULES.read_text().replace("== 0", "=="))
    with pytest.raises(UsageError, match=r"typo\.rules\.yml") as info:
        monitoring.set_rules([good, broken])
    assert "parse error" in str(info.value)  # promtool's own words
    # nothing changed: the good rules are still the ones loaded
    assert monitoring.rule_files == (good,)
    assert [g.name for g in monitoring.rule_groups()] == ["files-api"]


def test_a_bad_expression_is_a_usage_error_in_prometheus_words(fresh_stack: Stack) -> None:
    monitoring = monitoring_of(fresh_stack)
    with pytest.raises(UsageError, match="parse error"):
        monitoring.query('up{job="files-api"')


def test_added_api_instances_are_scraped_and_dropped_at_reset(fresh_stack: Stack) -> None:
    """...and a fresh view has nothing left of them: Prometheus rereads its targets every
    5 s and marks a gone target's series stale later still; until then its `up == 0`
    would fire an API-down alert for the next test or drill."""
    monitoring = monitoring_of(fresh_stack)
    assert isinstance(fresh_stack, LocalStack)
    extra = fresh_stack.add_api_instance("api-monitored")
    address = f"127.0.0.1:{extra.port}"
    assert address in monitoring.expected_targets
    monitoring.wait_fresh(monitoring.clock.wall(), timeout_s=FIRST_SCRAPE_S)
    (up,) = monitoring.query(f'up{{job="files-api", instance="{address}"}}')
    assert up.value == 1.0
    fresh_stack.reset_data()
    assert address not in monitoring.expected_targets
    assert monitoring.inbox.notifications() == []
    monitoring.wait_fresh(monitoring.clock.wall(), timeout_s=FIRST_SCRAPE_S)
    assert monitoring.lingering() == []
    instances = {s.labels["instance"] for s in monitoring.query('up{job="files-api"}')}
    assert instances == {fresh_stack.endpoints.api_instance_url.removeprefix("http://")}


def _listening(pid: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) the process listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            listens = fields[3] == "0A" or table.startswith("udp")
            if listens and fields[9] in inodes:
                found.append(fields[1])
    return found


def test_the_monitoring_servers_listen_on_loopback_only(fresh_stack: Stack) -> None:
    monitoring = monitoring_of(fresh_stack)
    loopback = "0100007F:"  # 127.0.0.1 in /proc/net/tcp's byte order
    for component in monitoring.components:
        assert component.pid is not None, component.name
        addresses = _listening(component.pid)
        assert addresses, f"{component.name} listens nowhere"
        assert all(a.startswith(loopback) for a in addresses), (component.name, addresses)


def test_the_monitoring_processes_are_recorded_and_stopped_with_the_stack() -> None:
    if isinstance(find_monitoring(), str):
        pytest.skip(str(find_monitoring()))
    stack = LocalStack(monitoring=True, kit=KIT)
    stack.start()
    try:
        assert stack.monitoring is not None
        assert stack.state is not None
        recorded = {key.split(":")[0] for key in stack.state.pids}
        pids = [c.pid for c in stack.monitoring.components]
        names = {c.name for c in stack.monitoring.components}
        assert names == {"prometheus", "alertmanager", "postgres_exporter", "redis_exporter"}
        assert names <= recorded  # a sweep after a crash finds them
        assert set(stack.versions()) >= names
    finally:
        stack.stop()
    assert stack.monitoring is None
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_without_the_binaries_the_stack_starts_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reason = "the monitoring binaries are missing (prometheus): `apt-get install prometheus`"
    monkeypatch.setattr(local_module, "find_monitoring", lambda: reason)
    with LocalStack(kit=KIT) as stack:
        assert stack.monitoring is None
        assert stack.monitoring_missing == reason
        assert not {"prometheus", "alertmanager"} & set(stack.components)
        stack.reset_data()  # works without it


def test_the_environment_switches_monitoring_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_CHECKS_MONITORING", "off")
    stack = LocalStack(kit=KIT)
    assert stack.monitoring_missing == "switched off (RUNBOOK_CHECKS_MONITORING=off)"
    assert LocalStack(monitoring=True, kit=KIT).monitoring_missing == ""
