"""The upload worker against a purge that overtakes its put (files_api/queue.py): the
worker of a real object store (the stack's moto) and a real spool puts a queued upload
while the owner's file is purged (object, spool file, row); the purged file's bytes must
not be left in storage once the put lands, whichever of the purge's steps came first."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from files_api import records
from files_api.config import Settings
from files_api.metrics import Metrics
from files_api.queue import RetryWorker, UploadSpool
from files_api.storage import ObjectStore
from runbook_checks.stack.base import Stack

pytestmark = pytest.mark.integration

BUCKET = "queue-race"


@dataclass
class Table:
    """The rows the worker reads and marks (the database's part, in memory)."""

    rows: dict[uuid.UUID, records.FileRow] = field(default_factory=dict)
    schema_ready: bool = True

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Table]:
        yield self


class NoCache:
    async def retry_pending(self) -> None:
        return None

    async def invalidate(self, user_id: str) -> None:
        return None


def _row(file_id: uuid.UUID, size: int) -> records.FileRow:
    now = datetime.now(UTC)
    user = uuid.uuid4()
    return records.FileRow(
        id=file_id, user_id=user, name="f.bin", content_type="application/octet-stream",
        size_bytes=size, checksum_sha256="", object_key=f"users/{user}/{file_id}",
        status="queued", is_deleted=True, deleted_at=now, created_at=now, updated_at=now,
    )  # fmt: skip


def _keys(stack: Stack) -> set[str]:
    listed = stack.endpoints.boto3_client("s3").list_objects_v2(Bucket=BUCKET)
    return {str(o["Key"]) for o in listed.get("Contents", [])}


@pytest.mark.parametrize("whole_purge_first", [True, False], ids=["purge-then-put", "put-in-purge"])
def test_a_purge_overtaking_the_workers_put_leaves_no_object(
    fresh_stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    whole_purge_first: bool,
) -> None:
    """purge-then-put: the purge runs to its end before the put lands. put-in-purge: the
    purge deletes the object, the put lands, then the purge removes the spool file and
    the row while the worker's mark_stored waits on the row's lock."""
    ep = fresh_stack.endpoints
    ep.boto3_client("s3").create_bucket(Bucket=BUCKET)
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:x@127.0.0.1:1/files",
            "LOG_DIR": str(tmp_path / "logs"),
            "ADMIN_TOKEN": "admin-token-123",
            "S3_ENDPOINT_URL": ep.s3_endpoint,
            "S3_BUCKET": BUCKET,
            "AWS_ACCESS_KEY_ID": ep.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": ep.s3_secret_key,
        }
    )
    store = ObjectStore(settings, Metrics("test"))
    spool = UploadSpool(tmp_path / "spool")
    table = Table()
    file_id = uuid.uuid4()
    row = _row(file_id, 1000)
    table.rows[file_id] = row
    spool.write(file_id, io.BytesIO(b"b" * 1000))

    async def files_by_ids(conn: Table, ids: list[uuid.UUID]) -> list[records.FileRow]:
        return [conn.rows[i] for i in ids if i in conn.rows]

    async def mark_stored(conn: Table, fid: uuid.UUID) -> bool:
        if not whole_purge_first:  # waited on the purge's lock: the purge ends first
            spool.remove(file_id)
            table.rows.pop(file_id, None)
        found = conn.rows.get(fid)
        if found is None or found.status != "queued":
            return False
        conn.rows[fid] = records.FileRow(**{**found.__dict__, "status": "stored"})
        return True

    monkeypatch.setattr(records, "files_by_ids", files_by_ids)
    monkeypatch.setattr(records, "mark_stored", mark_stored)

    async def purge() -> None:  # as routes_admin._purge_one: object, spool file, row
        await store.delete(row.object_key)
        spool.remove(file_id)
        table.rows.pop(file_id, None)

    async def overtaken(key: str, path: Path, content_type: str, size: int) -> None:
        body = path.read_bytes()  # the worker has the bytes in hand when the purge starts
        if whole_purge_first:
            await purge()
        else:
            await store.delete(row.object_key)  # the purge's first step only
        await store.put_stream(key, io.BytesIO(body), content_type, size)  # the put lands

    monkeypatch.setattr(store, "put_file", overtaken)
    worker = RetryWorker(spool, table, store, NoCache(), 1.0)  # type: ignore[arg-type]

    try:
        asyncio.run(worker.tick())
    finally:
        store.close()
    assert _keys(fresh_stack) == set()  # the purged file's bytes are not left behind
    assert file_id not in table.rows
    assert not spool.has(file_id)
