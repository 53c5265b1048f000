"""The local stack itself: life cycle of each component, reset, and nothing left behind."""

from __future__ import annotations

import os

import httpx
import psycopg
import pytest

from runbook_checks.stack.base import COMPONENTS, Stack
from runbook_checks.stack.local import LocalStack

pytestmark = pytest.mark.integration


def test_every_component_is_ready_and_reachable(stack: Stack) -> None:
    for name in COMPONENTS:
        assert stack.component(name).is_ready(), name
    health = httpx.get(f"{stack.endpoints.api_url}/health", timeout=5)
    assert health.status_code == 200, health.text
    with psycopg.connect(stack.endpoints.database_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("files_app",)


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


def test_stop_leaves_no_process_and_no_folder() -> None:
    stack = LocalStack()
    stack.start()
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
    stack = LocalStack(api_settings={"DB_POOL_SIZE": "not-a-number"})
    with pytest.raises(Exception, match="api") as info:
        stack.start()
    assert "DB_POOL_SIZE" in str(info.value)
    assert stack.folder is None


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
