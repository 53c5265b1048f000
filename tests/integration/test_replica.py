"""A real streaming replica and base backups of the stack's PostgreSQL: streaming,
promotion, backup/restore round trip, and nothing left behind."""

from __future__ import annotations

import json
import os
from typing import cast

import httpx
import psycopg
import pytest

from files_profile import KIT
from runbook_checks.stack.backup import restore_snapshot, take_snapshot
from runbook_checks.stack.base import Stack
from runbook_checks.stack.local import LocalStack
from runbook_checks.stack.replica import REPLICA, start_replica

pytestmark = [pytest.mark.integration, pytest.mark.needs("replica")]


def _local(stack: Stack) -> LocalStack:
    assert isinstance(stack, LocalStack)
    return stack


def _group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _upload(stack: Stack, user_token: str, name: str) -> str:
    response = httpx.post(
        f"{stack.endpoints.api_url}/api/storage/files/upload",
        headers={"Authorization": f"Bearer {user_token}"},
        files={"file": (name, name.encode() * 4, "text/plain")},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _user(stack: Stack, email: str) -> str:
    response = httpx.post(
        f"{stack.endpoints.api_url}/admin/users",
        headers={"Authorization": f"Bearer {stack.endpoints.admin_token}"},
        json={"email": email, "subscription_tier": "pro"},
        timeout=5,
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["token"])


def _download_status(stack: Stack, token: str, file_id: str) -> int:
    return httpx.get(
        f"{stack.endpoints.api_url}/api/storage/files/{file_id}/download",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code


def test_the_replica_is_a_hot_standby_that_streams_a_write(fresh_stack: Stack) -> None:
    stack, local = fresh_stack, _local(fresh_stack)
    replica = start_replica(stack)
    assert stack.component(REPLICA) is replica
    assert replica.port != local.postgres.port
    assert replica.in_recovery()
    with local.postgres.admin_connect() as conn:
        row = conn.execute(
            "SELECT state FROM pg_stat_replication WHERE application_name = %s", (REPLICA,)
        ).fetchone()
        assert row == ("streaming",)
        conn.execute(
            "INSERT INTO users (id, email, subscription_tier, api_token_hash) "
            "VALUES (gen_random_uuid(), 'streamed@drill.test', 'free', 'x')"
        )
    replica.wait_caught_up()
    with psycopg.connect(replica.url(), connect_timeout=3) as conn:  # as the application
        assert conn.execute(
            "SELECT count(*) FROM users WHERE email = 'streamed@drill.test'"
        ).fetchone() == (1,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM users")


def test_promoted_replica_takes_writes_and_reset_routes_back(fresh_stack: Stack) -> None:
    stack, local = fresh_stack, _local(fresh_stack)
    token = _user(stack, "promote@drill.test")
    before = _upload(stack, token, "before.txt")
    replica = start_replica(stack)
    local.postgres.kill()
    replica.promote()
    assert not replica.in_recovery()
    assert local.route_database(REPLICA) == replica.port
    local.restart_api()
    local.wait_healthy()
    assert _download_status(stack, token, before) == 200  # replicated before the failover
    after = _upload(stack, token, "after.txt")  # the promoted replica takes writes
    assert _download_status(stack, token, after) == 200
    replica_pid = replica.pid
    assert replica_pid is not None

    local.postgres.start()
    local.reset_data()
    assert REPLICA not in local.components
    assert local.database_route == local.postgres.port
    assert _group_gone(replica_pid)
    local.wait_healthy()


def test_a_replica_that_fell_behind_is_promoted_without_the_later_writes(
    fresh_stack: Stack,
) -> None:
    """What the primary commits after `fall_behind()` never reaches the replica: promoted,
    it has the earlier write and not the later one (the lag the failover drill makes)."""
    stack, local = fresh_stack, _local(fresh_stack)
    token = _user(stack, "lag@drill.test")
    before = _upload(stack, token, "before-lag.txt")
    replica = start_replica(stack)
    replica.fall_behind()
    assert not replica.streaming()
    assert replica.in_recovery()  # still a hot standby
    later = _upload(stack, token, "during-lag.txt")
    local.postgres.kill()
    replica.promote()
    local.route_database(REPLICA)
    local.restart_api()
    local.wait_healthy()
    assert _download_status(stack, token, before) == 200
    assert _download_status(stack, token, later) == 404
    local.postgres.start()
    local.reset_data()


def test_backup_restores_into_a_new_cluster_without_later_writes(fresh_stack: Stack) -> None:
    stack, local = fresh_stack, _local(fresh_stack)
    token = _user(stack, "restore@drill.test")
    kept = _upload(stack, token, "kept.txt")
    backup = take_snapshot(stack, "round-trip")
    manifest = json.loads((backup.path / "backup_manifest").read_text())
    assert manifest["WAL-Ranges"][-1]["End-LSN"] == backup.end_lsn
    later = _upload(stack, token, "later.txt")

    restored = restore_snapshot(stack, backup)
    assert restored.port != local.postgres.port
    with restored.admin_connect() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    local.route_database(restored.name)
    local.restart_api()
    local.wait_healthy()
    assert _download_status(stack, token, kept) == 200
    assert _download_status(stack, token, later) == 404  # written after the backup: lost
    restored_pid = restored.pid
    assert restored_pid is not None

    local.reset_data()
    assert restored.name not in local.components
    assert _group_gone(restored_pid)
    again = restore_snapshot(stack, backup, name="restored-again")  # the backup is intact
    local.remove_component(again.name)


def test_stopping_the_stack_stops_replica_and_restored_cluster() -> None:
    local = LocalStack(kit=KIT)
    # LocalStack.endpoints is a read-only property, which mypy does not match with the
    # Stack protocol's plain attribute (plugin.py has the same note)
    stack = cast(Stack, local)
    local.start()
    try:
        replica = start_replica(stack)
        restored = restore_snapshot(stack, take_snapshot(stack))
        assert local.state is not None
        recorded = json.loads(local.state.path.read_text())["pids"]
        pids = [replica.pid, restored.pid]
        for name, pid in zip((replica.name, restored.name), pids, strict=True):
            assert f"{name}:{pid}" in recorded  # a sweep after a crash finds them too
        folder = local.folder
    finally:
        local.stop()
    assert folder is not None
    assert not folder.exists()
    for pid in pids:
        assert pid is not None
        assert _group_gone(pid)
