"""The docker backend: its own life cycle, and a subset of the scenarios run on it.

Where a Docker engine can run (Linux and root: the project's own engine is started, and
the images built or found cached; or `$DOCKER_HOST`), these run for real; elsewhere they
are skipped saying why. The scenarios themselves are unchanged: a nested pytest runs them
with `--backend docker`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from files_profile import KIT
from runbook_checks.cli import without_unused_plugins
from runbook_checks.clock import wait_until
from runbook_checks.config import ImageNames
from runbook_checks.stack.base import COMPONENTS, Capability

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]

# the CI subset: one drill per kind of outage (the rest: `make drill BACKEND=docker`)
SCENARIO_SUBSET = {
    "API down": "scenarios/test_sev1_api_server_down.py::"
    "test_option_a_restart_recovers_a_killed_api",
    "database down": "scenarios/test_sev1_database_failure.py::"
    "test_option_b_fails_over_to_the_read_replica",
    "disk full": "scenarios/test_sev1_database_failure.py::"
    "test_disk_full_is_detected_but_has_no_mitigation",
    "storage outage": "scenarios/test_sev1_storage_system_failure.py::"
    "test_supabase_outage_queues_uploads_and_drains_them",
    "pool exhaustion": "scenarios/test_sev2_performance_degradation.py::"
    "test_fix_3_scale_out_under_load",
}


@pytest.fixture(scope="module")
def engine() -> Iterator[dict[str, str]]:
    """The engine's environment (started and stopped here when it was not running)."""
    from runbook_checks.stack.docker.testing import prepare

    for package in ("docker", "testcontainers"):
        pytest.importorskip(
            package,
            reason="the project's docker extra is not installed "
            "(pip install -e '.[docker]'; make setup does)",
        )
    ready = prepare()
    if isinstance(ready, str):
        pytest.skip(ready)
    for step, seconds in ready.timings.items():
        print(f"docker backend: {step} took {seconds:.1f} s")
    try:
        yield ready.env
    finally:
        print(f"docker backend: {ready.stop()}")


@pytest.fixture(scope="module")
def docker_stack(engine: dict[str, str]) -> Iterator[object]:
    from runbook_checks.stack.docker.stack import DockerStack

    stack = DockerStack(kit=KIT)
    begin = time.monotonic()
    stack.start()
    print(f"docker stack ready in {time.monotonic() - begin:.1f} s")
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def fresh(docker_stack: object) -> object:
    docker_stack.reset_data()  # type: ignore[attr-defined]
    return docker_stack


@functools.cache
def _client() -> object:
    from runbook_checks.stack.docker.engine import connect

    return connect(timeout_s=30)


def _containers_of(stack_id: str) -> list[object]:
    from runbook_checks.stack.docker.labels import STACK_LABEL

    client = _client()
    return list(
        client.containers.list(  # type: ignore[attr-defined]
            all=True, filters={"label": f"{STACK_LABEL}={stack_id}"}, ignore_removed=True
        )
    )


# -- images ---------------------------------------------------------------------------


def test_defaults_resolve_to_local_images_or_their_stand_ins(engine: dict[str, str]) -> None:
    from runbook_checks.stack.docker.images import resolve_images

    resolved = resolve_images(_client(), ImageNames(api=KIT.twin.image))
    assert set(resolved) == {"postgres", "object_store", "redis", "aws", "api"}
    for image in resolved.values():
        assert image.image_id.startswith("sha256:")
        if image.stand_in:
            assert image.name.startswith("runbook-checks/"), image
    assert resolved["object_store"].flavour == "moto"  # MinIO cannot be installed here


def test_a_missing_image_is_named_with_how_to_build_it_and_never_pulled(
    engine: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from docker.models.images import ImageCollection

    from runbook_checks.stack.docker.images import MissingImages
    from runbook_checks.stack.docker.stack import DockerStack

    pulls: list[str] = []
    monkeypatch.setattr(ImageCollection, "pull", lambda self, *a, **k: pulls.append(str(a)))
    stack = DockerStack(images=ImageNames(redis="example.invalid/not-built:1"), kit=KIT)
    with pytest.raises(MissingImages) as caught:
        stack.start()
    message = str(caught.value)
    assert "redis: example.invalid/not-built:1" in message
    assert "make images" in message
    assert pulls == []
    assert stack.folder is None  # nothing was started


# -- the stack --------------------------------------------------------------------------


def _expected(stack: object) -> set[str]:
    """The containers a stack runs: its components, and its monitoring's where it has
    Prometheus (runbook-checks/monitoring:dev built, host networking)."""
    monitoring = getattr(stack, "monitoring", None)
    return set(COMPONENTS) | ({c.name for c in monitoring.components} if monitoring else set())


def test_every_component_is_a_labelled_host_network_container(docker_stack: object) -> None:
    from runbook_checks.stack.docker.labels import COMPONENT_LABEL

    stack = docker_stack
    assert stack.backend == "docker"  # type: ignore[attr-defined]
    containers = {
        c.labels[COMPONENT_LABEL]: c  # type: ignore[attr-defined]
        for c in _containers_of(stack.folder.name)
    }  # type: ignore[attr-defined]
    assert set(containers) == _expected(stack)
    for name in containers:
        container = containers[name]
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"  # type: ignore[attr-defined]
        assert container.status == "running", name  # type: ignore[attr-defined]
        assert stack.component(name).is_ready(), name  # type: ignore[attr-defined]
    endpoints = stack.endpoints  # type: ignore[attr-defined]
    assert httpx.get(f"{endpoints.api_url}/health", timeout=5).status_code == 200
    # the API reaches its database through the in-process fault proxy, as on the local stack
    proxy_port = stack.proxies.get("postgres").listen_port  # type: ignore[attr-defined]
    assert f":{proxy_port}/" in endpoints.app_database_url
    with psycopg.connect(endpoints.database_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("files_app",)
        encoding = conn.execute("SHOW server_encoding").fetchone()
    assert encoding == ("UTF8",)
    versions = stack.versions()  # type: ignore[attr-defined]
    assert versions["postgres"].startswith("PostgreSQL 15")


def test_kill_then_start_postgres_keeps_its_data(fresh: object) -> None:
    stack = fresh
    endpoints = stack.endpoints  # type: ignore[attr-defined]
    with psycopg.connect(endpoints.admin_database_url, autocommit=True) as conn:
        # durable when acknowledged (the stack runs with synchronous_commit=off for speed)
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE IF NOT EXISTS docker_probe (n int)")
        conn.execute("INSERT INTO docker_probe VALUES (42)")
    postgres = stack.component("postgres")  # type: ignore[attr-defined]
    old_pid = postgres.pid
    postgres.kill()
    assert postgres.pid is None
    assert not postgres.is_ready()
    assert postgres.process.returncode == 137  # SIGKILL  # type: ignore[attr-defined]
    postgres.start()
    assert postgres.is_ready()
    assert postgres.pid not in (None, old_pid)
    with psycopg.connect(endpoints.admin_database_url, autocommit=True) as conn:
        assert conn.execute("SELECT n FROM docker_probe").fetchall() == [(42,)]
        conn.execute("DROP TABLE docker_probe")
    stack.wait_healthy()  # type: ignore[attr-defined]


def test_pause_freezes_redis_and_resume_thaws_it(fresh: object) -> None:
    redis = fresh.component("redis")  # type: ignore[attr-defined]
    redis.pause()
    try:
        assert redis.process.status() == "paused"  # type: ignore[attr-defined]
        assert not redis.is_ready()
    finally:
        redis.resume()
    assert redis.is_ready()


def test_stop_and_restart_go_through_the_engine(fresh: object) -> None:
    store = fresh.component("object_store")  # type: ignore[attr-defined]
    container = store.process.container_id  # type: ignore[attr-defined]
    store.stop()
    assert store.process.status() == "exited"  # type: ignore[attr-defined]
    store.restart()
    assert store.is_ready()
    assert store.process.container_id == container  # the same container, started again  # type: ignore[attr-defined]


def test_restart_api_with_settings_replaces_its_container_and_reset_restores_it(
    fresh: object,
) -> None:
    stack = fresh
    api = stack.component("api")  # type: ignore[attr-defined]
    before = api.process.container_id  # type: ignore[attr-defined]
    settings = dict(stack.api.settings)  # type: ignore[attr-defined]
    stack.restart_api(DB_POOL_SIZE="3")  # type: ignore[attr-defined]
    after = api.process.container_id  # type: ignore[attr-defined]
    assert after != before
    env = _client().containers.get(after).attrs["Config"]["Env"]  # type: ignore[attr-defined]
    assert "DB_POOL_SIZE=3" in env
    stack.reset_data()  # type: ignore[attr-defined]
    assert stack.api.settings == settings  # type: ignore[attr-defined]
    ids = {c.id for c in _containers_of(stack.folder.name)}  # type: ignore[attr-defined]
    assert before not in ids
    assert after not in ids  # replaced containers are removed, not piled up
    assert len(ids) == len(_expected(stack))


def test_api_logs_land_on_the_host_where_the_runbook_reads_them(fresh: object) -> None:
    stack = fresh
    httpx.get(f"{stack.endpoints.api_url}/api/storage/files", timeout=5)  # type: ignore[attr-defined]
    log_dir = Path(stack.endpoints.log_dir)  # type: ignore[attr-defined]
    wait_until(
        lambda: any(p.stat().st_size for p in log_dir.glob("*.log")),
        what="the API container to write its log on the host",
        timeout_s=10,
    )


def test_the_database_disk_is_a_host_tmpfs_the_container_writes_to(fresh: object) -> None:
    stack = fresh
    if Capability.DISK not in stack.capabilities:  # type: ignore[attr-defined]
        pytest.skip("DISK needs root (a tmpfs mounted on the host)")
    disk = stack.disk("postgres")  # type: ignore[attr-defined]
    assert os.path.ismount(disk)
    assert (disk / "pgdata" / "PG_VERSION").read_text().strip() == "15"


def test_a_memory_limit_gets_a_growing_server_oom_killed_and_revert_brings_it_back(
    fresh: object,
) -> None:
    import redis

    from runbook_checks.faults.container import MemoryLimit

    stack = fresh
    server = stack.component("redis")  # type: ignore[attr-defined]
    with MemoryLimit("redis", headroom_mb=4).inject(stack) as handle:  # type: ignore[arg-type]
        client = redis.Redis.from_url(stack.endpoints.redis_url, socket_timeout=5)  # type: ignore[attr-defined]
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            _grow(client)
        wait_until(
            lambda: not server.process.is_alive(), what="redis to be OOM-killed", timeout_s=10
        )
        assert server.process.oom_killed
        assert "MB of memory" in " ".join(handle.notes)
        # the fault's doing, which a drill's wait lets pass; to anyone else, a broken stack
        assert stack.servers_ended_unasked(besides=handle.fault.servers()) == []  # type: ignore[attr-defined]
        [said] = stack.servers_ended_unasked()  # type: ignore[attr-defined]
        assert said.startswith("redis (container ")
        assert "exited with status 137 (SIGKILL) (the kernel's OOM killer" in said
    assert server.is_ready()
    limit = _client().containers.get(server.process.container_id).attrs["HostConfig"]["Memory"]  # type: ignore[attr-defined]
    assert limit >= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") - (1 << 20)


def _grow(client: object) -> None:
    for n in range(16):  # 8 MB values: far past the headroom
        client.set(f"big-{n}", b"x" * (8 << 20))  # type: ignore[attr-defined]


def test_a_cpu_limit_is_a_quota_on_the_container_and_revert_lifts_it(fresh: object) -> None:
    from runbook_checks.faults.container import CpuLimit

    stack = fresh
    api = stack.component("api")  # type: ignore[attr-defined]

    def quota() -> int:
        container = _client().containers.get(api.process.container_id)  # type: ignore[attr-defined]
        return int(container.attrs["HostConfig"]["CpuQuota"])

    with CpuLimit("api", cpus=0.05).inject(stack):  # type: ignore[arg-type]
        assert quota() == 5000  # of a 100 ms period
        assert httpx.get(f"{stack.endpoints.api_url}/health", timeout=30).status_code == 200  # type: ignore[attr-defined]
    assert quota() <= 0


def test_container_faults_say_why_elsewhere() -> None:
    from runbook_checks.faults.container import CpuLimit, MemoryLimit

    class LocalLike:
        backend = "local"
        capabilities = frozenset(Capability)

        def component(self, name: str) -> object:
            return type("Proc", (), {"process": object()})()

    for fault in (MemoryLimit("api"), CpuLimit("api")):
        reason = fault.unsupported_reason(LocalLike())  # type: ignore[arg-type]
        assert reason is not None
        assert "--backend docker" in reason


# -- the AWS control plane: the local stack's launcher, in the moto image ------------------


def test_the_control_plane_refuses_what_aws_refuses(
    fresh: object, runbook: object, tmp_path: Path
) -> None:
    """The runbook's own resize line, run by the aws executor (the real CLI) against the
    container, is refused on a running instance with AWS's error, as on the local stack."""
    from runbook_checks.steps.base import ExecContext, StepStatus
    from runbook_checks.steps.binding import Bindings
    from runbook_checks.steps.run import run_step

    stack = fresh
    aws = stack.component("aws")  # type: ignore[attr-defined]
    container = _client().containers.get(aws.process.container_id)  # type: ignore[attr-defined]
    launcher = ["python", "-m", "runbook_checks.stack.aws_control_plane"]
    assert container.attrs["Config"]["Entrypoint"] == launcher
    assert "behind AWS's preconditions" in stack.versions()["aws"]  # type: ignore[attr-defined]
    ec2 = stack.endpoints.boto3_client("ec2")  # type: ignore[attr-defined]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium")
    instance = made["Instances"][0]["InstanceId"]
    resize = next(  # aws ec2 modify-instance-attribute --instance-id i-xxx --instance-type ...
        step
        for section in runbook.sections  # type: ignore[attr-defined]
        for step in (*section.steps, *section.other_steps)
        if step.text.startswith("aws ec2 modify-instance-attribute")
    )
    context = ExecContext(
        stack,  # type: ignore[arg-type]
        Bindings(values={"i-xxx": instance}, work_dir=tmp_path),
        timeout_s=30.0,
    )
    result = run_step(resize, context)
    assert result.status is StepStatus.FAILED, result.summary()
    assert "An error occurred (IncorrectInstanceState)" in result.error, result.summary()
    assert f"The instance '{instance}' is not in the 'stopped' state." in result.error
    found = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert (found["State"]["Name"], found["InstanceType"]) == ("running", "t3.medium")


def test_api_instances_on_one_address_are_targets_apart_by_port(fresh: object) -> None:
    """Scaled out: a second API container registered in the primary target group on
    127.0.0.1 with its own port is a second target (AWS keys targets by Id and Port; plain
    moto kept one per address, so the balancer never had more than one instance)."""
    stack = fresh
    api = stack.api  # type: ignore[attr-defined]
    extra = stack.add_api_instance("api-2")  # type: ignore[attr-defined]
    stack.register_api(extra)  # type: ignore[attr-defined]
    assert api.port != extra.port
    elb = stack.endpoints.boto3_client("elbv2")  # type: ignore[attr-defined]
    primary = stack.target_groups["files-primary"]  # type: ignore[attr-defined]
    health = elb.describe_target_health(TargetGroupArn=primary)["TargetHealthDescriptions"]
    targets = sorted((d["Target"]["Id"], d["Target"]["Port"]) for d in health)
    both = sorted([("127.0.0.1", api.port), ("127.0.0.1", extra.port)])
    assert targets == both
    balancer = stack.balancer  # type: ignore[attr-defined]
    assert sorted(balancer.targets) == both
    wait_until(
        lambda: sorted(balancer.healthy_targets) == both or None,
        what="the balancer to find both API containers healthy",
        timeout_s=15,
    )


def test_stop_removes_every_container_and_the_folder(engine: dict[str, str]) -> None:
    from runbook_checks.stack.docker.stack import DockerStack

    stack = DockerStack(kit=KIT)
    stack.start()
    stack_id, folder = stack.folder.name, stack.folder  # type: ignore[union-attr]
    stack.add_api_instance("api-extra")
    assert len(_containers_of(stack_id)) == len(_expected(stack)) + 1
    stack.stop()
    assert _containers_of(stack_id) == []
    assert not folder.exists()


OWNER = (
    "import faulthandler, signal, time\n"
    "faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a slow stop waits\n"
    # Ctrl-C as at a terminal: a process started in the background by a shell (as a
    # benchmark or CI wrapper may start the suite) inherits SIGINT ignored, and Python
    # then installs no KeyboardInterrupt for it
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from files_profile import KIT\n"
    "from runbook_checks.stack.docker.stack import DockerStack\n"
    "with DockerStack(kit=KIT) as stack:\n"
    "    monitoring = stack.monitoring\n"
    "    extra = len(monitoring.components) if monitoring is not None else 0\n"
    "    print(stack.folder, extra, flush=True)\n"
    "    time.sleep(300)\n"
)


def _wait_or_dump(owner: subprocess.Popen[str], timeout_s: float) -> None:
    """Wait for the owner to exit; one that does not has every thread's stack written to
    its stderr (the test's captured stderr) before it is killed, to show what it waited on
    (an owner that inherited SIGINT ignored never exited on Ctrl-C: twice, in a suite
    started in the background by a shell; its stacks showed the main thread still asleep;
    an owner exits in 1-2.5 s)."""
    try:
        owner.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        owner.send_signal(signal.SIGUSR1)
        time.sleep(2)
        owner.kill()
        owner.wait()
        pytest.fail(
            f"the owner had not exited {timeout_s:.0f} s after the signal: its threads' "
            "stacks are in the captured stderr"
        )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_an_interrupted_or_killed_drill_leaves_no_container(
    engine: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C unwinds through the stack's teardown; SIGKILL leaves no teardown at all, and
    the reaper removes the containers and the folder."""
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **engine},
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().strip()
        assert line.startswith("/"), f"the owner did not start its stack: {line!r}"
        path, _, extra = line.partition(" ")
        folder = Path(path)
        assert folder.is_dir()
        assert len(_containers_of(folder.name)) == len(COMPONENTS) + int(extra)
    finally:
        owner.send_signal(sig)
        _wait_or_dump(owner, timeout_s=30)
    wait_until(
        lambda: not _containers_of(folder.name) and not folder.exists(),
        what="the drill's containers and folder to be gone",
        timeout_s=30,
        interval_s=0.2,
    )


def test_cleanup_removes_containers_whose_drill_is_gone(engine: dict[str, str]) -> None:
    """Even without a reaper (killed too): `runbook-checks cleanup` finds them by label."""
    from runbook_checks.stack.docker import labels

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan_labels = {
        **labels.owner_labels("stack-orphan-test", Path("/nonexistent")),
        labels.OWNER_PID_LABEL: str(dead.pid),
        labels.OWNER_START_LABEL: "0",
    }
    client = _client()
    container = client.containers.create(  # type: ignore[attr-defined]
        "runbook-checks/redis:7",
        ["redis-server", "--port", "0"],
        labels=orphan_labels,
        network_mode="host",
        name="rc-stack-orphan-test-redis",
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "runbook_checks.cli", "cleanup"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={**os.environ, **engine},
        )
        assert done.returncode in (0, 1), done.stderr
        assert "rc-stack-orphan-test-redis" in done.stdout
        assert _containers_of("stack-orphan-test") == []
    finally:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            container.remove(force=True)


# -- scenarios, unchanged, on the docker backend ---------------------------------------


def test_scenario_subset_passes_on_the_docker_backend(
    engine: dict[str, str], tmp_path: Path
) -> None:
    """API down, database down, disk full, storage outage, pool exhaustion: the drills
    verify on containers what they verify on local processes (pass, or xfail on a runbook
    defect acknowledged in the baseline)."""
    junit = tmp_path / "junit.xml"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        *SCENARIO_SUBSET.values(),
        "--backend",
        "docker",
        "--evidence-dir",
        str(tmp_path / "evidence"),
        "-p",
        "no:cacheprovider",
        *without_unused_plugins(),  # as `runbook-checks drill` runs them
        "-q",
        "-rfEsx",
        f"--junitxml={junit}",
    ]
    begin = time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=1200, cwd=ROOT, env={**os.environ, **engine}
    )
    took = time.monotonic() - begin
    print(f"docker scenario subset: {took:.0f} s\n{done.stdout[-3000:]}")
    assert junit.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    outcomes = _outcomes(junit)
    for what, node in SCENARIO_SUBSET.items():
        name = node.rsplit("::", 1)[1]
        assert name in outcomes, f"{what}: {node} did not run\n{done.stdout[-3000:]}"
        assert outcomes[name] in ("passed", "xfailed"), f"{what}: {node} {outcomes[name]}"
    assert done.returncode == 0, done.stdout[-3000:]


def _outcomes(junit: Path) -> dict[str, str]:
    """Each test's outcome; a failed one's with its own report (its message, then the head
    of its traceback): the end of pytest's output shows the other drills' summaries, not
    why this one failed."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        kinds = {child.tag: child for child in case}
        report = kinds.get("failure", kinds.get("error"))
        if report is not None:
            outcomes[name] = f"failed\n{report.get('message', '')}\n{(report.text or '')[:6000]}"
        elif "skipped" in kinds:
            skipped = kinds["skipped"]
            xfail = skipped.get("type") == "pytest.xfail"
            outcomes[name] = "xfailed" if xfail else f"skipped ({skipped.get('message')})"
        else:
            outcomes[name] = "passed"
    return outcomes
