"""The docker backend on ordinary bridged Docker (`--docker-network bridge`), for real.

The project's machines run their engine without a bridge and allow traffic only to the
loopback or into network namespaces the project creates; so this module starts an engine
with bridged networking inside a namespace of its own (`runbook_checks.stack.docker.netns`,
`scripts/dockerd.sh start --netns`), runs the checks of tests/integration/bridged_checks.py
and the API-down and database-down scenarios, unchanged, in one nested pytest inside that
namespace, and then checks that teardown leaves nothing behind. Skipped, saying why, where
that cannot be done (not Linux or not root, no `ip netns`, DOCKER_HOST set to another
engine, the project's engine busy with another process's drills).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_checks.cli import without_unused_plugins
from runbook_checks.stack.docker.netns import NetnsEngine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = "tests/integration/bridged_checks.py"
CHECKS_COUNT = 4  # the stack's shape, a proxy fault, Ctrl-C and SIGKILL of a drill
SCENARIOS = {
    "API down": "scenarios/test_sev1_api_server_down.py::"
    "test_option_a_restart_recovers_a_killed_api",
    "database down": "scenarios/test_sev1_database_failure.py::"
    "test_option_b_fails_over_to_the_read_replica",
}


@pytest.fixture(scope="module")
def bridged() -> Iterator[NetnsEngine]:
    """An engine with bridged networking in a namespace of its own (stopped, and the
    project's engine restored, at the end)."""
    from runbook_checks.stack.docker.netns import prepare_bridged

    for package in ("docker", "testcontainers"):
        pytest.importorskip(
            package,
            reason="the project's docker extra is not installed "
            "(pip install -e '.[docker]'; make setup does)",
        )
    # this process's environment as found (connect() leaves DOCKER_HOST set in it): the
    # docker backend's tests, before or after this module, see the engine as it is
    with pytest.MonkeyPatch.context() as env:
        for name in ("DOCKER_HOST", "TESTCONTAINERS_RYUK_DISABLED", "TC_HOST"):
            env.setenv(name, os.environ.get(name, ""))
            if not os.environ[name]:
                env.delenv(name)
        ready = prepare_bridged()
        if isinstance(ready, str):
            pytest.skip(ready)
        try:
            yield ready
        finally:
            print(f"bridged: {ready.stop()}")
            timings = ", ".join(f"{k} {v:.1f} s" for k, v in ready.timings.items())
            print(f"bridged timings: {timings}")


def _labelled(engine: NetnsEngine) -> tuple[list[str], list[str]]:
    """Names of the containers and networks carrying runbook-checks' stack label."""
    from runbook_checks.stack.docker.labels import STACK_LABEL

    client = engine.client()
    try:
        containers = client.containers.list(all=True, filters={"label": STACK_LABEL})
        networks = client.networks.list(filters={"label": STACK_LABEL})
        return [str(c.name) for c in containers], [str(n.name) for n in networks]
    finally:
        client.close()


def test_the_namespaced_engine_has_a_bridge_and_auto_picks_it(bridged: NetnsEngine) -> None:
    from runbook_checks.stack.docker.network import engine_mode

    client = bridged.client()
    try:
        assert engine_mode(client, "auto") == "bridge"
    finally:
        client.close()
    assert _labelled(bridged) == ([], [])


def test_no_second_engine_starts_on_the_shared_data_root(bridged: NetnsEngine) -> None:
    """Two engines on one data root would corrupt it: another namespaced engine is refused,
    and the project's engine does not start while this one runs (it would wait)."""
    second = f"{bridged.netns}-2"
    refused = _dockerd("start", "--netns", second)
    assert refused.returncode == 2
    assert "two engines cannot share a data root" in refused.stderr
    assert f"netns {bridged.netns}" in refused.stderr
    assert not (bridged.runtime_dir.parent / second).exists()
    assert not Path(f"/run/netns/{second}").exists()
    host = _dockerd("start", env={"RUNBOOK_CHECKS_DOCKERD_WAIT_S": "1"})
    assert host.returncode == 2
    assert f"the engine in netns {bridged.netns}" in host.stderr
    assert _dockerd("status").returncode == 1


def _dockerd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "dockerd.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_the_bridged_stack_and_its_scenarios_pass_inside_the_namespace(
    bridged: NetnsEngine, tmp_path: Path
) -> None:
    """(a) the stack starts bridged, every container on its own network with its port
    published on 127.0.0.1; (b) a fault on the proxy reaches the API container; a drill
    interrupted (Ctrl-C) or killed (the reaper) leaves no container or network; (c) the
    API-down and database-down drills pass unchanged; (d) then the session's stack, its
    containers, network and folder are gone."""
    report = tmp_path / "stack.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        CHECKS,
        *SCENARIOS.values(),
        "--backend",
        "docker",
        "--docker-network",
        "bridge",
        "--evidence-dir",
        str(tmp_path / "evidence"),
        "-p",
        "no:cacheprovider",
        *without_unused_plugins(),  # as `runbook-checks drill` runs them
        "-q",
        "-rA",
    ]
    begin = time.monotonic()
    done = bridged.run(
        argv, timeout_s=420, cwd=ROOT, env={"RUNBOOK_CHECKS_BRIDGED_REPORT": str(report)}
    )
    took = time.monotonic() - begin
    output = done.stdout[-5000:] + done.stderr[-2000:]
    print(f"bridged nested pytest: {took:.0f} s\n{done.stdout[-3000:]}")
    passed = {
        line.split(" ", 1)[1].strip()
        for line in done.stdout.splitlines()
        if line.startswith("PASSED ")
    }
    # a scenario passes, or its verdict is a runbook defect acknowledged in the baseline
    # (option B's failover is `assisted`: the runbook's DATABASE_URL is cut short)
    acknowledged = {
        line.split(" ", 1)[1].split(" - ", 1)[0].strip()
        for line in done.stdout.splitlines()
        if line.startswith("XFAIL ")
    }
    assert sum(node.startswith(CHECKS) for node in passed) == CHECKS_COUNT, output
    for what, node in SCENARIOS.items():
        assert node in passed | acknowledged, f"{what}: {node} did not pass\n{output}"
    assert done.returncode == 0, output
    # (d) the stack's teardown, seen by the engine and on disk
    stack = json.loads(report.read_text())
    assert stack["network"] == f"rc-{stack['stack']}"
    assert _labelled(bridged) == ([], [])
    assert not Path(stack["folder"]).exists()


def test_teardown_leaves_no_engine_namespace_or_folder(bridged: NetnsEngine) -> None:
    """(d) stopping the engine: no namespace, no engine process, no runtime folder, and the
    project's engine as it was found."""
    runtime = bridged.runtime_dir
    assert runtime.is_dir()
    print(bridged.stop())
    namespaces = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    assert bridged.netns not in namespaces
    assert not runtime.exists()
    assert not Path(f"/run/netns/{bridged.netns}").exists()
    left = [
        cmdline
        for cmdline in _cmdlines()
        if str(runtime) in cmdline or f"/run/netns/{bridged.netns}" in cmdline
    ]
    assert left == [], left
    with open("/proc/mounts") as mounts:
        assert not [line for line in mounts if str(runtime) in line]
    assert Path("/run/netns").exists() == bridged.run_netns_existed  # iproute2's, if ours
    assert (_dockerd("status").returncode == 0) == bridged.restart_host_engine


def _cmdlines() -> list[str]:
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            found.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return found
