"""The monitoring's configuration and inbox, without servers: the config files parse as
YAML and name 127.0.0.1 only (and promtool/amtool accept them where installed), the
command lines bind loopback and keep Alertmanager's gossip off, the binaries' absence
is said with the apt-get line, Prometheus' answers are read right, and the inbox takes a
real Alertmanager webhook body (version 4)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from files_profile import KIT
from runbook_checks.clock import FakeClock
from runbook_checks.errors import StackError, UsageError
from runbook_checks.stack import monitoring as mon
from runbook_checks.stack.monitoring import (
    START_SLACK_S,
    AlertInbox,
    FreshnessWatch,
    Monitoring,
    MonitoringBinaries,
    Notification,
    find_monitoring,
    parse_samples,
    parse_timestamp,
)

FAKE = MonitoringBinaries(
    prometheus="/opt/fake/prometheus",
    alertmanager="/opt/fake/alertmanager",
    promtool="/opt/fake/promtool",
    amtool=None,
    postgres_exporter="/opt/fake/postgres_exporter",
    redis_exporter="/opt/fake/redis_exporter",
)
SUPERUSER_URL = "postgresql://postgres:s3cret@127.0.0.1:5999/files"

# an Alertmanager 0.25 webhook body, as it POSTs it (one group, one firing alert)
WEBHOOK = {
    "receiver": "drill-inbox",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "FilesApiDown",
                "instance": "127.0.0.1:35503",
                "job": "files-api",
                "runbook_section": "sev-1-api-server-down",
            },
            "annotations": {"summary": "the API is down"},
            "startsAt": "2026-12-05T19:41:02.591Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:33721/graph?g0.expr=up%7Bjob%3D%22files-api%22%7D",
            "fingerprint": "cec46109b86b920e",
        }
    ],
    "groupLabels": {"alertname": "FilesApiDown", "runbook_section": "sev-1-api-server-down"},
    "commonLabels": {"alertname": "FilesApiDown", "job": "files-api"},
    "commonAnnotations": {"summary": "the API is down"},
    "externalURL": "http://127.0.0.1:54213",
    "version": "4",
    "groupKey": '{}:{alertname="FilesApiDown", runbook_section="sev-1-api-server-down"}',
    "truncatedAlerts": 0,
}


@pytest.fixture
def monitoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Monitoring]:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")  # never for loopback
    built = Monitoring(
        tmp_path,
        FAKE,
        postgres_url=SUPERUSER_URL,
        redis_url="redis://127.0.0.1:6999/0",
        api_urls=["http://127.0.0.1:8001", "http://127.0.0.1:8002/"],
        api_job="orders-api",  # the service kit's vocabulary names it
        clock=FakeClock(),
    )
    yield built
    built.close()


def _yaml(path: Path) -> dict[str, object]:
    text = path.read_text()
    assert "0.0.0.0" not in text
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


# -- config files ---------------------------------------------------------------------------


def test_prometheus_yml_scrapes_every_second_on_loopback(monitoring: Monitoring) -> None:
    config = _yaml(monitoring.folder / "prometheus.yml")
    assert config["global"] == {
        "scrape_interval": "1s",
        "evaluation_interval": "1s",
        "scrape_timeout": "800ms",
    }
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}  # type: ignore[attr-defined]
    assert set(jobs) == {"orders-api", "postgres", "redis"}
    assert jobs["orders-api"]["file_sd_configs"][0]["files"] == [str(monitoring.api_targets_path)]
    exporters = {c.name: c for c in monitoring.components}
    assert jobs["postgres"]["static_configs"] == [
        {"targets": [f"127.0.0.1:{exporters['postgres_exporter'].port}"]}
    ]
    assert jobs["redis"]["static_configs"] == [
        {"targets": [f"127.0.0.1:{exporters['redis_exporter'].port}"]}
    ]
    alerting = config["alerting"]["alertmanagers"][0]  # type: ignore[index]
    assert alerting["static_configs"] == [
        {"targets": [f"127.0.0.1:{exporters['alertmanager'].port}"]}
    ]
    assert config["rule_files"] == [str(monitoring.rules_dir / "*.yml")]


def test_the_api_targets_are_every_instance_directly(monitoring: Monitoring) -> None:
    assert yaml.safe_load(monitoring.api_targets_path.read_text()) == [
        {"targets": ["127.0.0.1:8001", "127.0.0.1:8002"], "labels": {}}
    ]
    monitoring.set_api_targets(["http://127.0.0.1:8001"])
    assert yaml.safe_load(monitoring.api_targets_path.read_text())[0]["targets"] == [
        "127.0.0.1:8001"
    ]
    monitoring.set_api_targets([])
    assert yaml.safe_load(monitoring.api_targets_path.read_text()) == []
    assert monitoring.expected_targets == tuple(
        c.address for c in monitoring.components if c.name.endswith("_exporter")
    )
    with pytest.raises(UsageError, match="host and a port"):
        monitoring.set_api_targets(["http://127.0.0.1/"])


def test_alertmanager_yml_routes_everything_to_the_inbox(monitoring: Monitoring) -> None:
    config = _yaml(monitoring.folder / "alertmanager.yml")
    assert config["route"] == {
        "receiver": "drill-inbox",
        "group_by": ["alertname", "runbook_section"],
        "group_wait": "0s",
        "group_interval": "1s",
        "repeat_interval": "2s",  # a resolve-and-fire-again blip is delivered
    }
    (receiver,) = config["receivers"]  # type: ignore[misc]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == monitoring.inbox.url
    assert hook["url"].startswith("http://127.0.0.1:")
    assert hook["send_resolved"] is True


def test_command_lines_bind_loopback_and_keep_gossip_off(monitoring: Monitoring) -> None:
    argv = {c.name: c.process.argv for c in monitoring.components}
    assert set(argv) == {"prometheus", "alertmanager", "postgres_exporter", "redis_exporter"}
    for name, args in argv.items():
        assert not any("0.0.0.0" in a for a in args), name
        listen = [a for a in args if "listen-address=" in a and "cluster" not in a]
        assert len(listen) == 1
        assert listen[0].split("=", 1)[1].startswith("127.0.0.1:"), name
    assert "--cluster.listen-address=" in argv["alertmanager"]  # empty: no 0.0.0.0:9094
    prometheus = argv["prometheus"]
    assert "--web.enable-lifecycle" in prometheus
    assert "--rules.alert.resend-delay=1s" in prometheus
    assert f"--storage.tsdb.path={monitoring.folder / 'prometheus' / 'data'}" in prometheus


def test_the_postgres_exporter_connects_directly_with_its_password_out_of_argv(
    monitoring: Monitoring,
) -> None:
    exporter = monitoring.component("postgres_exporter").process
    assert not any("s3cret" in a for a in exporter.argv)
    assert exporter.env is not None
    dsn = exporter.env["DATA_SOURCE_NAME"]
    assert dsn.startswith(SUPERUSER_URL + "?")
    assert "sslmode=disable" in dsn
    assert "pg_stat_statements.track=none" in dsn
    assert not any(k.lower() in ("http_proxy", "https_proxy") for k in exporter.env)


def test_without_exporters_their_jobs_are_left_out(tmp_path: Path) -> None:
    bare = MonitoringBinaries("/x/prometheus", "/x/alertmanager", "/x/promtool")
    built = Monitoring(
        tmp_path, bare, postgres_url=SUPERUSER_URL, redis_url=None, api_urls=[], api_job="files-api"
    )
    try:
        config = _yaml(tmp_path / "prometheus.yml")
        assert [j["job_name"] for j in config["scrape_configs"]] == ["files-api"]  # type: ignore[attr-defined]
        assert {c.name for c in built.components} == {"prometheus", "alertmanager"}
    finally:
        built.close()


@pytest.mark.parametrize(
    ("tool", "check", "config"),
    [
        ("promtool", ("check", "config"), "prometheus.yml"),
        ("amtool", ("check-config",), "alertmanager.yml"),
    ],
)
def test_the_tools_accept_the_configs(
    monitoring: Monitoring, tool: str, check: tuple[str, ...], config: str
) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    path = monitoring.folder / config
    done = subprocess.run([tool, *check, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_a_rule_file_promtool_refuses_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: up ==\n")
    found = find_monitoring()
    assert isinstance(found, MonitoringBinaries), found
    built = Monitoring(
        tmp_path / "m", found, postgres_url=None, redis_url=None, api_urls=[], api_job="api"
    )
    try:
        with pytest.raises(UsageError, match=r"broken\.yml") as info:
            built.set_rules([broken])  # refused before Prometheus is asked (none runs here)
        assert "parse error" in str(info.value)
        assert "promtool check rules" in str(info.value)
        assert list(built.rules_dir.glob("*.yml")) == []
    finally:
        built.close()


# -- the binaries -------------------------------------------------------------------------


def test_missing_binaries_are_named_with_the_apt_get_line(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"prometheus": "/usr/bin/prometheus", "amtool": "/usr/bin/amtool"}
    monkeypatch.setattr("shutil.which", present.get)
    reason = find_monitoring()
    assert isinstance(reason, str)
    assert "alertmanager" in reason
    assert "promtool" in reason
    assert "prometheus," not in reason  # present: not named missing
    assert "apt-get install --no-install-recommends prometheus prometheus-alertmanager" in reason


def test_exporters_are_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {
        "prometheus": "/p/prometheus",
        "alertmanager": "/p/alertmanager",  # upstream's name
        "promtool": "/p/promtool",
        "redis_exporter": "/p/redis_exporter",
    }
    monkeypatch.setattr("shutil.which", present.get)
    assert find_monitoring() == MonitoringBinaries(
        "/p/prometheus", "/p/alertmanager", "/p/promtool", None, None, "/p/redis_exporter"
    )


def test_the_environment_switches_monitoring_off() -> None:
    assert mon.monitoring_switched_off({}) == ""
    assert mon.monitoring_switched_off({"RUNBOOK_CHECKS_MONITORING": "on"}) == ""
    assert "RUNBOOK_CHECKS_MONITORING=off" in mon.monitoring_switched_off(
        {"RUNBOOK_CHECKS_MONITORING": "off"}
    )


# -- reading Prometheus' answers -------------------------------------------------------------


def test_timestamps_with_nanoseconds_and_go_zero_time() -> None:
    assert parse_timestamp("0001-01-01T00:00:00Z") == 0.0
    assert parse_timestamp("2026-12-05T19:37:52.727878439Z") == pytest.approx(
        1796499472.727878439, abs=1e-6
    )
    assert parse_timestamp("2026-12-05T19:37:52Z") == 1796499472.0
    assert parse_timestamp("2026-12-05T20:37:52.5+01:00") == 1796499472.5
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp("yesterday")


def test_query_results() -> None:
    vector = {
        "resultType": "vector",
        "result": [{"metric": {"job": "files-api"}, "value": [1796499472.1, "0"]}],
    }
    assert parse_samples(vector) == [mon.Sample({"job": "files-api"}, 0.0)]
    assert parse_samples({"resultType": "scalar", "result": [1.0, "NaN"]})[0].value != 0
    with pytest.raises(UsageError, match="range vector"):
        parse_samples({"resultType": "matrix", "result": []})


def _target(pool: str, instance: str, scraped: str) -> dict[str, object]:
    return {
        "scrapePool": pool,
        "labels": {"instance": instance, "job": pool},
        "lastScrape": scraped,
        "lastScrapeDuration": 0.002,
        "health": "down",
    }


def test_freshness_needs_every_target_scraped_and_a_later_evaluation() -> None:
    moment = parse_timestamp("2026-12-05T19:00:00Z")
    targets = {
        "activeTargets": [
            _target("files-api", "127.0.0.1:8001", "2026-12-05T19:00:00.500Z"),
            _target("postgres", "127.0.0.1:9187", "2026-12-05T18:59:59.900Z"),
        ]
    }
    rules = {"groups": [{"name": "files", "lastEvaluation": "2026-12-05T19:00:00.300Z"}]}
    expected = ("127.0.0.1:8001", "127.0.0.1:9187", "127.0.0.1:8002")
    seen = FreshnessWatch(expected, moment).observe(targets, rules)
    assert seen.missing == ("127.0.0.1:8002",)  # not discovered yet
    assert seen.stale == ("postgres/127.0.0.1:9187",)
    assert seen.unevaluated == ("files",)  # evaluated before the fresh scrape
    assert not seen.fresh
    targets["activeTargets"][1]["lastScrape"] = "2026-12-05T19:00:00.600Z"
    rules["groups"][0]["lastEvaluation"] = "2026-12-05T19:00:01.000Z"
    assert FreshnessWatch(expected[:2], moment).observe(targets, rules).fresh
    never = {"activeTargets": [_target("redis", "127.0.0.1:9121", "0001-01-01T00:00:00Z")]}
    assert FreshnessWatch((), moment).observe(never, {"groups": []}).stale
    assert not FreshnessWatch(("a:1",), moment).observe({"activeTargets": []}, {}).fresh


def test_freshness_compares_evaluations_with_the_first_fresh_scrapes() -> None:
    """Evaluations just before the scrapes' phase (x.00 against x.05): the latest scrape
    is always newer than the latest evaluation, yet the second evaluation after the
    moment has seen the first scrape after it."""
    watch = FreshnessWatch(["127.0.0.1:8001"], parse_timestamp("2026-12-05T19:00:00Z"))
    for second in range(3):
        scraped = {
            "activeTargets": [
                _target("files-api", "127.0.0.1:8001", f"2026-12-05T19:00:0{second}.050Z")
            ]
        }
        evaluated = {
            "groups": [{"name": "files", "lastEvaluation": f"2026-12-05T19:00:0{second}.000Z"}]
        }
        seen = watch.observe(scraped, evaluated)
        assert seen.fresh == (second > 0), second


# -- the inbox ------------------------------------------------------------------------------


@pytest.fixture
def inbox() -> Iterator[AlertInbox]:
    box = AlertInbox(clock=FakeClock(now=100.0))
    box.start()
    yield box
    box.stop()


def test_the_inbox_keeps_each_alert_of_a_webhook_post(inbox: AlertInbox) -> None:
    assert inbox.url.startswith("http://127.0.0.1:")
    response = httpx.post(inbox.url, json=WEBHOOK, timeout=5)
    assert response.status_code == 200
    (got,) = inbox.notifications()
    assert got == Notification(
        received_wall=FakeClock().epoch + 100.0,
        received_mono=100.0,
        status="firing",
        alertname="FilesApiDown",
        labels=WEBHOOK["alerts"][0]["labels"],  # type: ignore[index]
        annotations={"summary": "the API is down"},
        starts_at="2026-12-05T19:41:02.591Z",
        ends_at="0001-01-01T00:00:00Z",
        fingerprint="cec46109b86b920e",
    )
    assert inbox.since(100.0) == [got]
    assert inbox.since(100.5) == []
    inbox.clear()
    assert inbox.notifications() == []


def test_an_alert_began_after_a_moment_by_its_own_start_not_its_arrival() -> None:
    """Alertmanager repeats a firing alert: a notification arriving after the fault may be
    of an alert firing since before it."""
    started = parse_timestamp("2026-12-05T19:41:02.591Z")
    note = Notification(
        received_wall=started + 30,
        received_mono=0.0,
        status="firing",
        alertname="A",
        labels={},
        annotations={},
        starts_at="2026-12-05T19:41:02.591Z",
        ends_at="0001-01-01T00:00:00Z",
        fingerprint="f",
    )
    assert note.started_wall == pytest.approx(started)
    assert note.began_after(started - 10)
    assert note.began_after(started + START_SLACK_S - 0.01)  # the two clocks' slack
    assert not note.began_after(started + 1)  # a repeat of one firing before the moment
    assert replace(note, starts_at="").began_after(started + 1)  # no start: a new alert


def test_the_inbox_refuses_what_is_not_a_version_4_webhook(inbox: AlertInbox) -> None:
    assert httpx.post(inbox.url, json={**WEBHOOK, "version": "3"}, timeout=5).status_code == 400
    assert httpx.post(inbox.url, content=b"not json", timeout=5).status_code == 400
    assert inbox.notifications() == []
    assert len(inbox.errors) == 2
    assert "version '3'" in inbox.errors[0]


def test_wait_for_finds_a_matching_notification_after_the_moment(inbox: AlertInbox) -> None:
    clock = inbox.clock
    assert isinstance(clock, FakeClock)
    httpx.post(inbox.url, json=WEBHOOK, timeout=5)  # at 100.0
    resolved = {
        **WEBHOOK,
        "status": "resolved",
        "alerts": [{**WEBHOOK["alerts"][0], "status": "resolved"}],  # type: ignore[index]
    }
    clock.advance(5.0)
    httpx.post(inbox.url, json=resolved, timeout=5)  # at 105.0
    firing = inbox.wait_for(lambda n: n.status == "firing", after_mono=99.0, timeout_s=1.0)
    assert firing is not None
    assert firing.received_mono == 100.0
    later = inbox.wait_for(lambda n: n.alertname == "FilesApiDown", after_mono=101.0, timeout_s=1)
    assert later is not None
    assert later.status == "resolved"


def test_wait_for_gives_up_at_its_timeout_on_the_clock(inbox: AlertInbox) -> None:
    clock = inbox.clock
    assert isinstance(clock, FakeClock)
    httpx.post(inbox.url, json=WEBHOOK, timeout=5)  # firing, at 100.0
    started = clock.monotonic()
    assert inbox.wait_for(lambda n: n.status == "resolved", after_mono=0, timeout_s=3) is None
    assert clock.monotonic() - started == pytest.approx(3.0)  # slept on the clock, not real


def test_wait_for_sees_a_post_that_arrives_while_it_waits() -> None:
    box = AlertInbox()  # the real clock: the POST comes from another thread meanwhile
    box.start()
    try:
        posted = threading.Timer(0.2, lambda: httpx.post(box.url, json=WEBHOOK, timeout=5))
        posted.start()
        got = box.wait_for(lambda n: True, after_mono=0.0, timeout_s=10)
        posted.join()
        assert got is not None
        assert got.fingerprint == "cec46109b86b920e"
    finally:
        box.stop()


# -- the docker backend's choice, without an engine -----------------------------------------


def test_the_docker_stack_runs_monitoring_only_with_host_networking(tmp_path: Path) -> None:
    pytest.importorskip("docker", reason="the docker extra is not installed")
    from runbook_checks.stack.docker.components import Placement
    from runbook_checks.stack.docker.images import ResolvedImage
    from runbook_checks.stack.docker.monitoring import BRIDGED, DockerMonitoring
    from runbook_checks.stack.docker.network import StackNetwork
    from runbook_checks.stack.docker.stack import DockerStack

    image = ResolvedImage("monitoring", "m", "m", "sha256:" + "0" * 64, "monitoring")
    network = StackNetwork("rc-stack-t1", "f" * 64, "172.18.0.0/16", "172.18.0.1")
    stack = DockerStack(network="bridge", monitoring=True, kit=KIT)
    stack.monitoring_image = "the monitoring image m is not built: `make images`"
    made = stack._make_monitoring(tmp_path, None, None, None)  # type: ignore[arg-type]
    assert made == stack.monitoring_image  # no image: its reason, nothing started
    stack.monitoring_image = image
    stack.network = network
    assert stack._make_monitoring(tmp_path, None, None, None) == BRIDGED  # type: ignore[arg-type]
    bridged = Placement(None, "stack-t1", {}, network)  # type: ignore[arg-type]
    with pytest.raises(StackError, match="host networking"):
        DockerMonitoring(
            tmp_path,
            placement=bridged,
            image=image,
            postgres_url=None,
            redis_url=None,
            api_urls=[],
            api_job="files-api",
        )
    host = Placement(None, "stack-t1", {}, None)  # type: ignore[arg-type]
    built = DockerMonitoring(
        tmp_path / "host",
        placement=host,
        image=image,
        postgres_url=SUPERUSER_URL,
        redis_url="redis://127.0.0.1:6999/0",
        api_urls=["http://127.0.0.1:8001"],
        api_job="files-api",
    )
    try:  # the local stack's flags, with the image's binaries as entrypoints
        specs = {c.name: c.process.spec for c in built.components}  # type: ignore[attr-defined]
        assert specs["alertmanager"].entrypoint == ("/usr/bin/prometheus-alertmanager",)
        assert "--cluster.listen-address=" in specs["alertmanager"].command
        assert specs["prometheus"].network is None  # host networking
        assert all(str(tmp_path / "host") == m.container for s in specs.values() for m in s.mounts)
        dsn = specs["postgres_exporter"].environment["DATA_SOURCE_NAME"]
        assert "pg_stat_statements.track=none" in dsn
    finally:
        built.close()
