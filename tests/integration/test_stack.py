"""The local stack itself: life cycle of each component, reset, and nothing left behind."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError

from files_profile import KIT
from runbook_checks.clock import wait_until
from runbook_checks.faults.data import s3_client
from runbook_checks.stack import postgres as postgres_module
from runbook_checks.stack.balancer import register
from runbook_checks.stack.base import COMPONENTS, DUMMY_KEY, Stack, stack_redactor
from runbook_checks.stack.forkserver import wait_warm
from runbook_checks.stack.local import LocalStack
from runbook_checks.stack.servers import MotoServer

pytestmark = pytest.mark.integration


def test_every_component_is_ready_and_reachable(stack: Stack) -> None:
    for name in COMPONENTS:
        assert stack.component(name).is_ready(), name
    health = httpx.get(f"{stack.endpoints.api_url}/health", timeout=5)
    assert health.status_code == 200, health.text
    with psycopg.connect(stack.endpoints.database_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("files_app",)


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_the_api_and_the_moto_servers_are_forked_warm_and_show_their_command(
    fresh_stack: Stack,
) -> None:
    """From a server's second start in a process on (the first two are cold; the second
    starts the fork server), a restart of the API or of the object store is a child of a
    fork server (not of this process) that shows its own command line in `ps`."""
    try:
        for _ in range(2):
            fresh_stack.restart_api()  # type: ignore[attr-defined]
            fresh_stack.component("object_store").restart()
            wait_warm()
        store = "runbook_checks.stack.object_store_server"
        for name, module in (("api", "files_api"), ("object_store", store)):
            pid = fresh_stack.component(name).pid
            assert pid is not None
            assert _parent_of(pid) != os.getpid(), name
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            assert f"-m {module} " in cmdline, cmdline
    finally:
        fresh_stack.reset_data()  # the restarted store has no bucket yet
    assert httpx.get(f"{fresh_stack.endpoints.api_url}/health", timeout=5).status_code == 200


def test_the_api_reaches_postgres_through_the_fault_proxy(stack: Stack) -> None:
    proxy_port = stack.proxies.get("postgres").listen_port  # type: ignore[attr-defined]
    assert f":{proxy_port}/" in stack.endpoints.app_database_url
    assert f":{stack.endpoints.database_port}/" in stack.endpoints.database_url


def test_kill_then_start_brings_postgres_back(fresh_stack: Stack) -> None:
    postgres = fresh_stack.component("postgres")
    old_pid = postgres.pid
    postgres.kill()
    assert not postgres.is_ready()
    assert postgres.pid is None
    postgres.start()
    assert postgres.is_ready()
    assert postgres.pid != old_pid
    fresh_stack.wait_healthy()  # type: ignore[attr-defined]


def test_pause_and_resume_redis(fresh_stack: Stack) -> None:
    redis = fresh_stack.component("redis")
    redis.pause()
    assert not redis.is_ready()
    redis.resume()
    assert redis.is_ready()


def test_reset_empties_tables_bucket_and_cache(fresh_stack: Stack) -> None:
    ep = fresh_stack.endpoints
    admin = {"Authorization": f"Bearer {ep.admin_token}"}
    user = httpx.post(
        f"{ep.api_url}/admin/users",
        headers=admin,
        timeout=5,
        json={"email": "reset@example.com", "subscription_tier": "free"},
    ).json()
    token = {"Authorization": f"Bearer {user['token']}"}
    up = httpx.post(
        f"{ep.api_url}/api/storage/files/upload",
        headers=token,
        timeout=10,
        files={"file": ("a.txt", b"hello", "text/plain")},
    )
    assert up.status_code == 201, up.text
    fresh_stack.reset_data()
    with psycopg.connect(ep.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM storage_files").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
    s3 = fresh_stack.s3()  # type: ignore[attr-defined]
    assert s3.list_objects_v2(Bucket=ep.s3_bucket).get("KeyCount", 0) == 0


def test_reset_brings_back_what_a_test_left_frozen_or_dead(fresh_stack: Stack) -> None:
    # the components are asked at once; the ones that do not answer come back
    fresh_stack.components["redis"].pause()
    fresh_stack.components["object_store"].kill()
    fresh_stack.reset_data()
    assert all(fresh_stack.component(name).is_ready() for name in COMPONENTS)
    health = httpx.get(f"{fresh_stack.endpoints.api_url}/health", timeout=5)
    assert health.status_code == 200, health.text


def test_a_control_plane_that_died_comes_back_seeded_and_the_api_behind_the_balancer(
    fresh_stack: Stack,
) -> None:
    """A restarted moto holds nothing: the reset seeds it again (target groups, the API
    registered), or the balancer reads no target and closes the front door."""
    stack = fresh_stack
    assert isinstance(stack, LocalStack)
    assert stack.balancer is not None
    assert stack.target_groups  # the control plane is up and seeded
    stack.components["aws"].kill()
    stack.reset_data()
    assert stack.components["aws"].is_ready()
    stack.balancer.refresh()  # what the control plane holds now (not the last known)
    assert stack.balancer.targets == (("127.0.0.1", stack.api.port),)
    health = httpx.get(f"{stack.endpoints.api_url}/health", timeout=5)
    assert health.status_code == 200, health.text


def test_a_component_slower_than_its_probe_is_waited_for_not_restarted(
    fresh_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a starved machine a living server can miss its probe's short timeout: the reset
    gives it time before it restarts it (a restart loses what it holds)."""
    stack = fresh_stack
    assert isinstance(stack, LocalStack)
    assert stack.target_groups
    aws = stack.components["aws"]
    pid = aws.pid
    missed = iter([False, False, False])  # the first probes miss (too slow), then it answers
    real = aws.is_ready
    monkeypatch.setattr(aws, "is_ready", lambda: next(missed, None) is None and real())
    stack.reset_data()
    assert aws.pid == pid
    assert stack.balancer is not None
    stack.balancer.refresh()
    assert stack.balancer.targets == (("127.0.0.1", stack.api.port),)


def test_stop_leaves_no_process_and_no_folder() -> None:
    stack = LocalStack(kit=KIT)
    stack.start()
    stack.component("aws")  # the control plane comes up when first needed
    folder = stack.folder
    pids = [c.pid for c in stack.components.values()]
    assert folder is not None
    assert folder.exists()
    stack.stop()
    assert not folder.exists()
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_failed_start_names_the_component_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = LocalStack(api_settings={"DB_POOL_SIZE": "not-a-number"}, kit=KIT)
    with pytest.raises(Exception, match="api") as info:
        stack.start()
    assert "DB_POOL_SIZE" in str(info.value)
    assert stack.folder is None


def _watch_control_plane(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happens, in order: the stack's first green /health, the control plane's spawn."""
    events: list[str] = []
    track, healthy = stack._track, stack.wait_healthy

    def tracking(component: Any) -> None:
        track(component)
        if component.name == "aws":
            told = component.process.on_spawn

            def on_spawn(pid: int) -> None:
                events.append("aws spawned")
                told(pid)

            component.process.on_spawn = on_spawn

    def waiting(timeout_s: float = 20.0) -> None:
        healthy(timeout_s)
        events.append("healthy")

    monkeypatch.setattr(stack, "_track", tracking)
    monkeypatch.setattr(stack, "wait_healthy", waiting)
    return events


def test_the_control_plane_comes_up_at_the_first_aws_request_and_outlives_its_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Most tests and drills never call AWS: the stack starts without the control plane,
    and a reset does not start it. The first request through the `aws` endpoint (the
    runbook's commands) brings it up, seeded, and is answered; the server stays up after
    the thread that asked has ended (a server dies with the thread that spawned it:
    PR_SET_PDEATHSIG)."""
    stack = LocalStack(kit=KIT, monitoring=False)
    events = _watch_control_plane(stack, monkeypatch)
    try:
        stack.start()
        stack.reset_data()
        assert events == ["healthy", "healthy"]  # the start's and the reset's /health
        assert not stack.control_plane_wanted
        assert stack.components["aws"].pid is None
        answers: list[object] = []

        def ask() -> None:
            elb = boto3.client(
                "elbv2",
                endpoint_url=stack.endpoints.aws_endpoint,
                region_name=stack.endpoints.aws_region,
                aws_access_key_id=DUMMY_KEY,
                aws_secret_access_key=DUMMY_KEY,
            )
            answers.append(elb.describe_target_groups()["TargetGroups"])

        caller = threading.Thread(target=ask)
        caller.start()
        caller.join(60)
        assert events[2:] == ["aws spawned"]
        assert answers, "the first aws request got no answer"
        names = sorted(str(g["TargetGroupName"]) for g in answers[0])  # type: ignore[attr-defined]
        assert names == ["files-primary", "files-standby"]  # seeded before it was answered
        time.sleep(0.2)  # (the SIGKILL a thread's end sends is not instant)
        assert stack.component("aws").is_ready()
    finally:
        stack.stop()


def test_a_failed_start_never_spawns_the_control_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = LocalStack(api_settings={"DB_POOL_SIZE": "not-a-number"}, kit=KIT, monitoring=False)
    events = _watch_control_plane(stack, monkeypatch)
    with pytest.raises(Exception, match="api"):
        stack.start()
    assert stack._control_plane is None  # never started
    assert events == []


def test_the_balancer_follows_the_target_groups(fresh_stack: Stack) -> None:
    stack = fresh_stack
    assert isinstance(stack, LocalStack)
    assert stack.balancer is not None
    standby = stack.add_api_instance("api-standby")
    assert stack.balancer.targets == (("127.0.0.1", stack.api.port),)
    stack.register_api(standby, "files-standby")
    stack.register_api(stack.api, "files-primary", deregister=True)
    assert stack.balancer.targets == (("127.0.0.1", standby.port),)
    stack.api.kill()
    assert httpx.get(f"{stack.endpoints.api_url}/health", timeout=5).status_code == 200
    stack.reset_data()  # back to one instance, registered in files-primary
    assert "api-standby" not in stack.components
    assert stack.api.is_ready()
    assert stack.balancer.targets == (("127.0.0.1", stack.api.port),)


def test_instances_added_at_once_are_up_registered_and_scraped(fresh_stack: Stack) -> None:
    """A scale-out's instances come up together and are all behind the balancer (and in
    Prometheus' targets) when the call returns."""
    stack = fresh_stack
    assert isinstance(stack, LocalStack)
    assert stack.balancer is not None
    added = stack.add_registered_apis(["api-2", "api-3"])
    assert [i.name for i in added] == ["api-2", "api-3"]
    assert all(i.is_ready() for i in added)
    ports = {port for _, port in stack.balancer.targets}
    assert ports == {stack.api.port, *(i.port for i in added)}
    assert set(stack.balancer.healthy_targets) == set(stack.balancer.targets)
    if stack.monitoring is not None:  # Prometheus scrapes each instance
        scraped = set(stack.monitoring.expected_targets)
        assert {stack.monitoring.api_target(i.url) for i in added} <= scraped
    stack.reset_data()  # back to one instance
    assert "api-2" not in stack.components
    assert stack.balancer.targets == (("127.0.0.1", stack.api.port),)


def test_the_balancer_reads_the_control_plane_when_someone_else_changed_it(
    fresh_stack: Stack,
) -> None:
    """Between changes the balancer only health-checks its targets; a change made through
    the `aws` endpoint (the runbook's commands) is followed at the next poll."""
    stack = fresh_stack
    assert isinstance(stack, LocalStack)
    balancer = stack.balancer
    assert balancer is not None
    balancer.reread_s = 3600.0  # only a change may trigger a read here
    standby = stack.add_api_instance("api-standby")
    arn = stack.target_groups["files-standby"]
    balancer.refresh()
    reads = balancer.control_plane_reads
    time.sleep(4 * balancer.poll_interval_s)  # polls with nothing changed
    assert balancer.control_plane_reads == reads
    register(stack.endpoints.aws_endpoint, arn, standby.port)  # through the proxy
    wait_until(
        lambda: ("127.0.0.1", standby.port) in balancer.targets,
        what="the balancer to route to the instance registered through the aws endpoint",
        timeout_s=10.0,
        interval_s=0.05,
    )
    assert balancer.control_plane_reads > reads


# -- an object store that checks credentials (as MinIO and Supabase Storage do) --------


UNCHECKED_REQUESTS = 30


class _CheckedObjectStore(MotoServer):
    """moto's server with its IAM authentication on: requests signed with anything but
    the access key created here are refused (InvalidAccessKeyId, SignatureDoesNotMatch).
    It is started while the stack is assembled, so its keys exist before the API's
    environment is written."""

    def __init__(self, work_dir: Path) -> None:
        super().__init__("object_store", work_dir)
        assert self.process.env is not None
        # moto checks nothing for its first N requests (readiness probes and the IAM set-up
        # below among them), then everything
        self.process.env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(UNCHECKED_REQUESTS)
        self.start()
        iam = boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )
        iam.create_user(UserName="files-api")
        iam.put_user_policy(
            UserName="files-api",
            PolicyName="s3",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="files-api")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        for _ in range(UNCHECKED_REQUESTS):  # spend what is left of the unchecked allowance
            try:
                iam.list_users()
            except ClientError:
                return  # checking from now on
        raise AssertionError("moto still accepts the dummy credentials")

    def probe(self) -> bool:  # an unsigned GET / is an error now: ask moto's own page
        return httpx.get(f"{self.url}/moto-api/", timeout=0.5).status_code == 200


class _CheckedCredentialsStack(LocalStack):
    def _make_servers(self, folder: Path) -> tuple[Any, Any, MotoServer, MotoServer]:
        pg, cache, _unchecked, aws = super()._make_servers(folder)  # (never started)
        return pg, cache, _CheckedObjectStore(folder / "object_store_checked"), aws


def test_every_s3_client_signs_with_the_stacks_own_credentials() -> None:
    """The credentials of the object store travel in `Endpoints` to the API, the stack's
    reset, the faults' S3 client and the operator's environment; the dummy ones moto
    usually accepts are refused here, so any path still using them fails."""
    with _CheckedCredentialsStack(kit=KIT) as stack:
        ep = stack.endpoints
        assert ep.s3_secret_key not in (DUMMY_KEY, "")
        dummy = boto3.client(
            "s3",
            endpoint_url=ep.s3_endpoint,
            region_name=ep.aws_region,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )
        with pytest.raises(ClientError, match="InvalidAccessKeyId"):
            dummy.list_objects_v2(Bucket=ep.s3_bucket)
        admin = {"Authorization": f"Bearer {ep.admin_token}"}
        user = httpx.post(
            f"{ep.api_url}/admin/users",
            headers=admin,
            timeout=5,
            json={"email": "signed@example.com", "subscription_tier": "free"},
        ).json()
        auth = {"Authorization": f"Bearer {user['token']}"}
        uploaded = httpx.post(
            f"{ep.api_url}/api/storage/files/upload",
            headers=auth,
            files={"file": ("signed.txt", b"signed with the stack's key", "text/plain")},
            timeout=10,
        )
        assert uploaded.status_code == 201, uploaded.text  # stored, not queued
        keys = [o["Key"] for o in s3_client(stack).list_objects_v2(Bucket=ep.s3_bucket)["Contents"]]
        assert len(keys) == 1
        download = httpx.get(
            f"{ep.api_url}/api/storage/files/{uploaded.json()['id']}/download",
            headers=auth,
            timeout=10,
        )
        assert download.content == b"signed with the stack's key"
        stack.reset_data()
        assert s3_client(stack).list_objects_v2(Bucket=ep.s3_bucket).get("KeyCount") == 0
        env = ep.as_env()
        assert env["S3_SECRET_ACCESS_KEY"] == ep.s3_secret_key
        assert ep.s3_secret_key in stack_redactor(ep).secrets  # never in evidence


def test_stacks_starting_at_once_on_a_fresh_cache_build_one_template_and_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make drill` on a new machine: every worker's stack wants the template at once. A
    # second build used to replace the first one's template while other stacks copied it.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    builds: list[Path] = []
    build = postgres_module._build_template

    def counted(*args: Any) -> None:
        builds.append(args[-1])
        build(*args)

    monkeypatch.setattr(postgres_module, "_build_template", counted)
    install = postgres_module.find_postgres()
    start = threading.Barrier(3)
    made: list[tuple[Path, int]] = []

    def starting_stack() -> None:
        start.wait()
        template = postgres_module.ensure_template(install, None)
        made.append((template, template.stat().st_ino))

    threads = [threading.Thread(target=starting_stack) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(made) == 3
    assert len(builds) == 1
    template = made[0][0]
    assert (template / "PG_VERSION").exists()
    assert set(made) == {(template, template.stat().st_ino)}
