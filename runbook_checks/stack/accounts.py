"""Direct access to a stack's data for the suite's own housekeeping: the superuser
connection, the object store's client, and the removal of drill users with everything
they own (rows first: an object left behind is invisible to users, a row without its
object is a broken file).

Faults use them (`faults.data`, `faults.client`, `faults.traffic`), and so does the
external backend, which removes a dead drill's users from an environment: so they live
in the stack layer, below both. Tables are the service kit's (`stack.kit.data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import psycopg
from botocore.config import Config as BotoConfig
from psycopg import sql

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from runbook_checks.stack.base import Stack

S3_DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes


def admin_connect(stack: Stack) -> psycopg.Connection[tuple[object, ...]]:
    """The superuser's connection (the application role's where there is none)."""
    url = stack.endpoints.admin_database_url or stack.endpoints.database_url
    return psycopg.connect(
        url, autocommit=True, connect_timeout=5, application_name="runbook-checks"
    )


def s3_client(stack: Stack) -> S3Client:
    """A boto3 client of the stack's object store, direct (not through the fault proxy)."""
    config = BotoConfig(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=15)
    client: S3Client = stack.endpoints.boto3_client("s3", config)
    return client


def remove_users(stack: Stack, user_ids: Sequence[object]) -> str:
    """Delete drill users with everything they own: rows (files and share links cascade),
    their records of refused writes, then their objects in the bucket. Rows go first: an
    object left behind is invisible to users; a row without its object is a broken file."""
    ids = [str(u) for u in user_ids]
    if not ids:
        return "no users to remove"
    data = stack.kit.data
    with admin_connect(stack) as conn, conn.transaction():
        keys = [
            str(r[0])
            for r in conn.execute(
                sql.SQL("SELECT object_key FROM {} WHERE user_id = ANY(%s::uuid[])").format(
                    sql.Identifier(data.objects)
                ),
                (ids,),
            )
        ]
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE user_id = ANY(%s::uuid[])").format(
                sql.Identifier(data.failures)
            ),
            (ids,),
        )
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE id = ANY(%s::uuid[])").format(sql.Identifier(data.users)),
            (ids,),
        )
    if keys:
        client = s3_client(stack)
        for start in range(0, len(keys), S3_DELETE_BATCH):
            batch = keys[start : start + S3_DELETE_BATCH]
            client.delete_objects(
                Bucket=stack.endpoints.s3_bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
    return f"removed {len(ids)} user(s), their {len(keys)} file(s) and objects"
