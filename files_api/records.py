"""The SQL of the service: typed rows in, typed rows out, one function per question.

Every function takes a pooled connection (autocommit); those that need several
statements open their own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from files_api.db import Conn
from files_api.rules import QuotaDecision, check_quota

UPLOADS_DISABLED_FLAG = "uploads_disabled"
# Transaction advisory lock serialising quota checks with the insert they guard.
QUOTA_LOCK_KEY = 0x66696C65735F7175


@dataclass(frozen=True)
class UserRow:
    id: UUID
    email: str
    subscription_tier: str
    created_at: datetime


@dataclass(frozen=True)
class FileRow:
    id: UUID
    user_id: UUID
    name: str
    content_type: str
    size_bytes: int
    checksum_sha256: str
    object_key: str
    status: str
    is_deleted: bool
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ShareRow:
    id: UUID
    file_id: UUID
    token: str
    permission: str
    expires_at: datetime | None
    max_downloads: int | None
    download_count: int
    created_by: UUID | None
    created_at: datetime


@dataclass(frozen=True)
class StatsRow:
    used_bytes: int
    files: int
    deleted_files: int
    deleted_bytes: int
    queued_uploads: int


@dataclass(frozen=True)
class UploadsFlag:
    disabled: bool
    banner: str


_FILE_COLUMNS = (
    "id, user_id, name, content_type, size_bytes, checksum_sha256, object_key, status, "
    "is_deleted, deleted_at, created_at, updated_at"
)
_SHARE_COLUMNS = (
    "id, file_id, token, permission, expires_at, max_downloads, download_count, created_by, "
    "created_at"
)


class EmailTaken(Exception):
    pass


# ------------------------------------------------------------------ users


async def create_user(conn: Conn, email: str, tier: str, token_hash: str) -> UserRow:
    async with conn.cursor(row_factory=class_row(UserRow)) as cur:
        try:
            await cur.execute(
                "INSERT INTO users (email, subscription_tier, api_token_hash) VALUES (%s, %s, %s) "
                "RETURNING id, email, subscription_tier, created_at",
                (email, tier, token_hash),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise EmailTaken(email) from exc
        row = await cur.fetchone()
    assert row is not None
    return row


async def user_by_token_hash(conn: Conn, token_hash: str) -> UserRow | None:
    async with conn.cursor(row_factory=class_row(UserRow)) as cur:
        await cur.execute(
            "SELECT id, email, subscription_tier, created_at FROM users WHERE api_token_hash = %s",
            (token_hash,),
        )
        return await cur.fetchone()


# ------------------------------------------------------------------ flags


async def uploads_flag(conn: Conn) -> UploadsFlag:
    cur = await conn.execute(
        "SELECT enabled, value FROM feature_flags WHERE name = %s", (UPLOADS_DISABLED_FLAG,)
    )
    row = await cur.fetchone()
    if row is None:
        return UploadsFlag(disabled=False, banner="")
    return UploadsFlag(disabled=bool(row[0]), banner=str(row[1]))


async def set_uploads_flag(conn: Conn, flag: UploadsFlag) -> UploadsFlag:
    await conn.execute(
        "INSERT INTO feature_flags (name, enabled, value, updated_at) VALUES (%s, %s, %s, now()) "
        "ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, value = EXCLUDED.value, "
        "updated_at = now()",
        (UPLOADS_DISABLED_FLAG, flag.disabled, flag.banner),
    )
    return flag


# ------------------------------------------------------------------ files


async def used_bytes(conn: Conn) -> int:
    """Bytes held in storage: every row not yet purged (soft-deleted ones included)."""
    cur = await conn.execute("SELECT coalesce(sum(size_bytes), 0)::bigint FROM storage_files")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class NewFile:
    id: UUID
    user_id: UUID
    name: str
    content_type: str
    size_bytes: int
    checksum_sha256: str
    object_key: str
    status: str


async def insert_file_within_quota(
    conn: Conn, new: NewFile, quota_bytes: int
) -> FileRow | QuotaDecision:
    """Insert the row if the quota allows it, atomically with respect to other uploads."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (QUOTA_LOCK_KEY,))
        decision = check_quota(await used_bytes(conn), new.size_bytes, quota_bytes)
        if not decision.accepted:
            return decision
        async with conn.cursor(row_factory=class_row(FileRow)) as cur:
            await cur.execute(
                f"INSERT INTO storage_files (id, user_id, name, content_type, size_bytes, "
                f"checksum_sha256, object_key, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                f"RETURNING {_FILE_COLUMNS}",
                (
                    new.id,
                    new.user_id,
                    new.name,
                    new.content_type,
                    new.size_bytes,
                    new.checksum_sha256,
                    new.object_key,
                    new.status,
                ),
            )
            row = await cur.fetchone()
    assert row is not None
    return row


async def list_files(conn: Conn, user_id: UUID) -> list[FileRow]:
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            f"SELECT {_FILE_COLUMNS} FROM storage_files "
            "WHERE user_id = %s AND NOT is_deleted ORDER BY created_at DESC, id",
            (user_id,),
        )
        return await cur.fetchall()


async def user_and_file(
    conn: Conn, token_hash: str, file_id: UUID
) -> tuple[UserRow, FileRow | None] | None:
    """The token's user and, if that user owns it and it is not deleted, the file: what
    `user_by_token_hash` then `get_file` answer, in one round trip. None: no such user."""
    cur = await conn.execute(
        "SELECT u.id, u.email, u.subscription_tier, u.created_at, "
        + ", ".join(f"f.{column}" for column in _FILE_COLUMNS.split(", "))
        + " FROM users AS u LEFT JOIN storage_files AS f "
        "ON f.id = %s AND f.user_id = u.id AND NOT f.is_deleted WHERE u.api_token_hash = %s",
        (file_id, token_hash),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    user = UserRow(*row[:4])
    return user, (FileRow(*row[4:]) if row[4] is not None else None)


async def get_file(conn: Conn, user_id: UUID, file_id: UUID) -> FileRow | None:
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            f"SELECT {_FILE_COLUMNS} FROM storage_files "
            "WHERE id = %s AND user_id = %s AND NOT is_deleted",
            (file_id, user_id),
        )
        return await cur.fetchone()


async def soft_delete(conn: Conn, user_id: UUID, file_id: UUID) -> FileRow | None:
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            "UPDATE storage_files SET is_deleted = true, deleted_at = now(), updated_at = now() "
            f"WHERE id = %s AND user_id = %s AND NOT is_deleted RETURNING {_FILE_COLUMNS}",
            (file_id, user_id),
        )
        return await cur.fetchone()


async def restore(conn: Conn, user_id: UUID, file_id: UUID) -> FileRow | None:
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            "UPDATE storage_files SET is_deleted = false, deleted_at = NULL, updated_at = now() "
            f"WHERE id = %s AND user_id = %s AND is_deleted RETURNING {_FILE_COLUMNS}",
            (file_id, user_id),
        )
        return await cur.fetchone()


async def files_by_ids(conn: Conn, ids: list[UUID]) -> list[FileRow]:
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(f"SELECT {_FILE_COLUMNS} FROM storage_files WHERE id = ANY(%s)", (ids,))
        return await cur.fetchall()


async def mark_stored(conn: Conn, file_id: UUID) -> bool:
    cur = await conn.execute(
        "UPDATE storage_files SET status = 'stored', updated_at = now() "
        "WHERE id = %s AND status = 'queued'",
        (file_id,),
    )
    return cur.rowcount == 1


async def deleted_files(conn: Conn, limit: int) -> list[FileRow]:
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            f"SELECT {_FILE_COLUMNS} FROM storage_files WHERE is_deleted "
            "ORDER BY deleted_at NULLS FIRST, id LIMIT %s",
            (limit,),
        )
        return await cur.fetchall()


async def purge_file(conn: Conn, file_id: UUID) -> int | None:
    """Remove a soft-deleted row (its shares cascade); return the bytes freed, or None if the
    row is gone or was restored meanwhile."""
    cur = await conn.execute(
        "DELETE FROM storage_files WHERE id = %s AND is_deleted RETURNING size_bytes", (file_id,)
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def users_with_files(conn: Conn) -> list[UUID]:
    cur = await conn.execute(
        "SELECT DISTINCT user_id FROM storage_files WHERE NOT is_deleted ORDER BY user_id"
    )
    return [row[0] for row in await cur.fetchall()]


async def storage_stats(conn: Conn) -> StatsRow:
    async with conn.cursor(row_factory=class_row(StatsRow)) as cur:
        await cur.execute(
            "SELECT coalesce(sum(size_bytes), 0)::bigint AS used_bytes, "
            "count(*) FILTER (WHERE NOT is_deleted)::int AS files, "
            "count(*) FILTER (WHERE is_deleted)::int AS deleted_files, "
            "coalesce(sum(size_bytes) FILTER (WHERE is_deleted), 0)::bigint AS deleted_bytes, "
            "count(*) FILTER (WHERE status = 'queued')::int AS queued_uploads "
            "FROM storage_files"
        )
        row = await cur.fetchone()
    assert row is not None
    return row


# ------------------------------------------------------------------ shares


async def create_share(
    conn: Conn,
    *,
    file_id: UUID,
    token: str,
    permission: str,
    expires_in_s: int | None,
    max_downloads: int | None,
    created_by: UUID,
) -> ShareRow:
    async with conn.cursor(row_factory=class_row(ShareRow)) as cur:
        await cur.execute(
            "INSERT INTO file_shares (file_id, token, permission, expires_at, max_downloads, "
            "created_by) VALUES (%s, %s, %s, "
            "CASE WHEN %s::int IS NULL THEN NULL ELSE now() + make_interval(secs => %s::int) END, "
            f"%s, %s) RETURNING {_SHARE_COLUMNS}",
            (file_id, token, permission, expires_in_s, expires_in_s, max_downloads, created_by),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


@dataclass(frozen=True)
class ShareLookup:
    share: ShareRow
    file: FileRow
    now: datetime  # the database's clock, the one the SQL predicates use


_SHARE_AND_FILE = (
    ", ".join("s." + c for c in _SHARE_COLUMNS.split(", "))
    + ", "
    + ", ".join("f." + c for c in _FILE_COLUMNS.split(", "))
)
_N_SHARE = len(_SHARE_COLUMNS.split(", "))
_N_FILE = len(_FILE_COLUMNS.split(", "))


async def share_by_token(conn: Conn, token: str) -> ShareLookup | None:
    cur = await conn.execute(
        f"SELECT {_SHARE_AND_FILE}, now() FROM file_shares AS s "
        "JOIN storage_files AS f ON f.id = s.file_id WHERE s.token = %s",
        (token,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return ShareLookup(
        ShareRow(*row[:_N_SHARE]), FileRow(*row[_N_SHARE : _N_SHARE + _N_FILE]), row[-1]
    )


async def consume_download(conn: Conn, token: str) -> tuple[ShareRow, FileRow] | None:
    """Count one download if the share allows it, in one atomic UPDATE; None otherwise."""
    cur = await conn.execute(
        "UPDATE file_shares AS s SET download_count = s.download_count + 1 "
        "FROM storage_files AS f "
        "WHERE s.token = %s AND s.permission = 'download' AND f.id = s.file_id "
        "AND NOT f.is_deleted "
        "AND (s.max_downloads IS NULL OR s.download_count < s.max_downloads) "
        "AND (s.expires_at IS NULL OR s.expires_at > now()) "
        f"RETURNING {_SHARE_AND_FILE}",
        (token,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return ShareRow(*row[:_N_SHARE]), FileRow(*row[_N_SHARE:])


async def refund_download(conn: Conn, share_id: UUID) -> None:
    await conn.execute(
        "UPDATE file_shares SET download_count = download_count - 1 "
        "WHERE id = %s AND download_count > 0",
        (share_id,),
    )


# ------------------------------------------------------------------ failures


@dataclass(frozen=True)
class UploadFailure:
    user_id: UUID | None
    file_name: str | None
    size_bytes: int | None
    content_type: str | None
    reason: str
    status_code: int


async def record_failure(conn: Conn, failure: UploadFailure) -> None:
    await conn.execute(
        "INSERT INTO upload_failures (user_id, file_name, size_bytes, content_type, reason, "
        "status_code) VALUES (%s, %s, %s, %s, %s, %s)",
        (
            failure.user_id,
            failure.file_name,
            failure.size_bytes,
            failure.content_type,
            failure.reason,
            failure.status_code,
        ),
    )
