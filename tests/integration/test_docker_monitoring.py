"""The docker stack's monitoring: Prometheus, Alertmanager and the exporters as containers
of `runbook-checks/monitoring:dev` (built by `make images`), the same config as the local
stack's; the alert fires when the API container is killed and resolves when it is back;
the rules are checked by promtool inside Prometheus' container; nothing is left behind;
without the image the stack runs without monitoring and says how to build it.

Where no Docker engine can run these are skipped saying why (as test_docker_backend.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from files_profile import KIT
from runbook_checks.errors import UsageError
from runbook_checks.stack.base import COMPONENTS
from runbook_checks.stack.monitoring import Notification

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

MONITORING = ("prometheus", "alertmanager", "postgres_exporter", "redis_exporter")
RULES = Path(__file__).resolve().parents[1] / "fixtures/monitoring/files-api-down.rules.yml"


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    from runbook_checks.stack.docker.testing import prepare

    for package in ("docker", "testcontainers"):
        pytest.importorskip(package, reason="the project's docker extra is not installed")
    ready = prepare()
    if isinstance(ready, str):
        pytest.skip(ready)
    try:
        yield
    finally:
        print(f"docker monitoring: {ready.stop()}")


def _containers(stack_id: str) -> dict[str, object]:
    from runbook_checks.stack.docker.engine import connect
    from runbook_checks.stack.docker.labels import COMPONENT_LABEL, STACK_LABEL

    client = connect(timeout_s=30)
    try:
        found = client.containers.list(
            all=True, filters={"label": f"{STACK_LABEL}={stack_id}"}, ignore_removed=True
        )
        return {c.labels[COMPONENT_LABEL]: c.attrs for c in found}
    finally:
        client.close()


def test_the_alert_fires_when_the_api_container_is_killed(
    engine: None, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    from runbook_checks.stack.docker.stack import DockerStack

    broken = tmp_path / "broken.rules.yml"
    broken.write_text(RULES.read_text().replace("== 0", "=="))
    stack = DockerStack(network="host", monitoring=True, kit=KIT)
    stack.start()
    try:
        assert stack.folder is not None
        stack_id = stack.folder.name
        monitoring = stack.monitoring
        assert monitoring is not None, stack.monitoring_missing
        containers = _containers(stack_id)
        assert set(containers) == {*COMPONENTS, *MONITORING}
        for name in MONITORING:
            attrs = containers[name]
            assert attrs["Config"]["Image"] == "runbook-checks/monitoring:dev"  # type: ignore[index]
            assert attrs["HostConfig"]["NetworkMode"] == "host"  # type: ignore[index]
            assert "image runbook-checks/monitoring:dev" in stack.versions()[name]
        with pytest.raises(UsageError, match=r"broken\.rules\.yml") as refused:
            monitoring.set_rules([broken])  # promtool, inside Prometheus' container
        assert "parse error" in str(refused.value)
        monitoring.set_rules([RULES])
        clock = monitoring.clock
        monitoring.wait_fresh(clock.wall(), timeout_s=15)

        def api_down(status: str) -> Callable[[Notification], bool]:
            return lambda n: n.alertname == "FilesApiDown" and n.status == status

        killed = clock.monotonic()
        stack.component("api").kill()
        firing = monitoring.inbox.wait_for(api_down("firing"), after_mono=killed, timeout_s=20)
        assert firing is not None, monitoring.firing()
        record_property("time_to_alert_s", round(firing.received_mono - killed, 3))
        assert firing.labels["instance"] == f"127.0.0.1:{stack.api.port}"
        started = clock.monotonic()
        stack.component("api").start()
        resolved = monitoring.inbox.wait_for(api_down("resolved"), after_mono=started, timeout_s=20)
        assert resolved is not None, monitoring.inbox.notifications()
    finally:
        stack.stop()
    assert _containers(stack_id) == {}  # the monitoring containers go with the rest


def test_without_the_monitoring_image_the_stack_says_how_to_build_it(
    engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runbook_checks.stack.docker import stack as docker_stack
    from runbook_checks.stack.docker.images import find_monitoring_image

    def not_built(client: object) -> str:
        assert not isinstance(find_monitoring_image(client), str)
        return "the monitoring image runbook-checks/monitoring:dev is not built: `make images`"

    monkeypatch.setattr(docker_stack, "find_monitoring_image", not_built)
    with docker_stack.DockerStack(network="host", monitoring=True, kit=KIT) as stack:
        assert stack.monitoring is None
        assert "make images" in stack.monitoring_missing
        assert stack.folder is not None
        assert set(_containers(stack.folder.name)) == set(COMPONENTS)
