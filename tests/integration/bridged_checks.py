"""The docker backend's bridged mode, checked from inside: run with `--backend docker
--docker-network bridge` by a process that can reach the stack's network (on the project's
machines: inside the network namespace of tests/integration/test_docker_bridged.py, which
runs this module and the scenario subset in one nested pytest; elsewhere: against any
ordinary bridged engine). Not collected by a plain `pytest` (not named test_*.py).

The session's `stack` fixture (the plugin's, the one the scenarios use) is the stack under
test. With RUNBOOK_CHECKS_BRIDGED_REPORT set, the stack's id, folder and network are
written there as JSON, so the outer test can check that teardown removed them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from runbook_checks.clock import wait_until
from runbook_checks.config import ChecksConfig
from runbook_checks.stack.base import COMPONENTS, Capability, Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _bridged_docker_only(checks_config: ChecksConfig) -> None:
    if checks_config.backend != "docker" or checks_config.docker_network != "bridge":
        pytest.skip(
            "checks of the bridged docker stack: run with --backend docker "
            "--docker-network bridge (tests/integration/test_docker_bridged.py does)"
        )


def test_every_component_is_a_container_on_the_stacks_network_published_on_loopback(
    stack: Stack,
) -> None:
    from runbook_checks.stack.docker.labels import COMPONENT_LABEL, STACK_LABEL
    from runbook_checks.stack.docker.stack import DockerStack
    from runbook_checks.stack.local import PROXIED

    assert isinstance(stack, DockerStack)
    assert stack.network_mode == "bridge"
    network = stack.network
    assert network is not None
    assert stack.folder is not None
    assert stack.client is not None
    stack_id = stack.folder.name
    report = os.environ.get("RUNBOOK_CHECKS_BRIDGED_REPORT")
    if report:
        Path(report).write_text(
            json.dumps({"stack": stack_id, "folder": str(stack.folder), "network": network.name})
        )
    # the engine's view of the network: the stack's, labelled, its gateway in its subnet
    engine_network = stack.client.networks.get(network.network_id)
    assert engine_network.name == f"rc-{stack_id}"
    assert engine_network.attrs["Driver"] == "bridge"
    assert engine_network.attrs["Labels"][STACK_LABEL] == stack_id
    subnet = ipaddress.ip_network(network.subnet)
    assert ipaddress.ip_address(network.gateway) in subnet
    # the engine's view of each container: on that network only, its port on 127.0.0.1
    containers = {
        c.labels[COMPONENT_LABEL]: c
        for c in stack.client.containers.list(
            all=True, filters={"label": f"{STACK_LABEL}={stack_id}"}
        )
    }
    assert set(containers) == set(COMPONENTS)
    for name in COMPONENTS:
        container, component = containers[name], stack.component(name)
        port = component.port  # type: ignore[attr-defined]
        assert container.status == "running", name
        assert container.attrs["HostConfig"]["NetworkMode"] == network.name, name
        assert set(container.attrs["NetworkSettings"]["Networks"]) == {network.name}, name
        assert container.attrs["NetworkSettings"]["Ports"] == {
            f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        }, name
        assert component.is_ready(), name
    endpoints = stack.endpoints
    assert httpx.get(f"{endpoints.api_url}/health", timeout=5).status_code == 200
    # the API's dependency proxies listen on the gateway (never 0.0.0.0), and the API's
    # settings name it; the control plane's proxy stays on the loopback
    for name in PROXIED:
        assert stack.proxies.get(name).listen_host == network.gateway, name
    assert stack.proxies.get("aws").listen_host == "127.0.0.1"
    env = dict(e.split("=", 1) for e in containers["api"].attrs["Config"]["Env"])
    assert env["API_HOST"] == "0.0.0.0"
    postgres_proxy = stack.proxies.get("postgres").listen_port
    assert f"@{network.gateway}:{postgres_proxy}/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith(f"redis://{network.gateway}:")
    assert env["S3_ENDPOINT_URL"].startswith(f"http://{network.gateway}:")
    # the host's clients: 127.0.0.1 and the published port, admitted by the stack's pg_hba
    with psycopg.connect(endpoints.database_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("files_app",)
        row = conn.execute("SELECT host(inet_client_addr())").fetchone()
    assert row is not None
    assert ipaddress.ip_address(str(row[0])) in subnet  # from the gateway, not 127.0.0.1
    if Capability.DISK in stack.capabilities:  # PGDATA on the host's tmpfs, as with host
        disk = stack.disk("postgres")
        assert os.path.ismount(disk)
        assert (disk / "pgdata" / "PG_VERSION").read_text().strip() == "15"


def test_a_network_fault_on_the_proxy_reaches_the_api_container(fresh_stack: Stack) -> None:
    from runbook_checks.faults.network import NetworkDown

    health = f"{fresh_stack.endpoints.api_url}/health"

    def answer(status: int) -> httpx.Response | None:
        response = httpx.get(health, timeout=10)
        return response if response.status_code == status else None

    with NetworkDown("postgres").inject(fresh_stack):  # type: ignore[arg-type]
        down = wait_until(
            lambda: answer(503),
            what="/health to turn 503 with the database path down",
            timeout_s=20,
            interval_s=0.2,
        )
        body = down.json()
        assert body["failed"] == ["database"], body
        assert "ECONNREFUSED" in body["checks"]["database"]["error"], body
    wait_until(
        lambda: answer(200),
        what="/health to turn green once the path is back",
        timeout_s=20,
        interval_s=0.2,
    )


OWNER = (
    "import signal, time\n"
    # Ctrl-C as at a terminal, even when the suite inherited SIGINT ignored (started in
    # the background by a shell): Python then installs no KeyboardInterrupt for it
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from files_profile import KIT\n"
    "from runbook_checks.stack.docker.stack import DockerStack\n"
    "with DockerStack(network='bridge', kit=KIT) as stack:\n"
    "    print(stack.folder, stack.network.name, flush=True)\n"
    "    time.sleep(300)\n"
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_an_interrupted_or_killed_drill_leaves_no_container_or_network(
    stack: Stack, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C unwinds through the stack's teardown; after SIGKILL the reaper removes the
    containers, the network and the folder."""
    from runbook_checks.stack.docker.labels import STACK_LABEL
    from runbook_checks.stack.docker.stack import DockerStack

    assert isinstance(stack, DockerStack)
    assert stack.client is not None
    client = stack.client
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().split()
        assert len(line) == 2, f"the owner did not start its stack: {line!r}"
        folder, network = Path(line[0]), line[1]
        selector = {"label": f"{STACK_LABEL}={folder.name}"}
        assert len(client.containers.list(all=True, filters=selector)) == len(COMPONENTS)
        assert [n.name for n in client.networks.list(filters=selector)] == [network]
    finally:
        owner.send_signal(sig)
        owner.wait(timeout=60)
    # ignore_removed: a container the reaper removes between the engine's list and
    # docker-py's inspect of it is gone, not an error (the list raised NotFound)
    wait_until(
        lambda: (
            not client.containers.list(all=True, filters=selector, ignore_removed=True)
            and not client.networks.list(filters=selector)
            and not folder.exists()
        ),
        what="the drill's containers, network and folder to be gone",
        timeout_s=30,
        interval_s=0.2,
    )
