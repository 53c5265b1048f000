"""Operator endpoints (Authorization: Bearer ADMIN_TOKEN): users, storage stats, cleanup
of soft-deleted files, cache warm-up, and the "uploads disabled" switch."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from files_api import records
from files_api.auth import AdminOnly, new_token, services_of, token_hash
from files_api.errors import ServiceError, errno_name, one_line
from files_api.models import (
    CleanupOut,
    ErrorOut,
    FileList,
    FileOut,
    StatsOut,
    StatusOut,
    UploadsSetting,
    UserCreate,
    UserCreated,
    WarmOut,
)
from files_api.services import Services
from files_api.storage import StorageFailure

router = APIRouter(tags=["admin"], dependencies=[AdminOnly])
public_router = APIRouter(tags=["status"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Admin token required"},
    503: {"model": ErrorOut, "description": "A dependency is down (detail names the errno)"},
}
CLEANUP_BATCH = 100


@router.post(
    "/admin/users",
    status_code=201,
    response_model=UserCreated,
    summary="Create a user and its bearer token",
    responses={**_ERRORS, 409: {"model": ErrorOut, "description": "Email already registered"}},
)
async def create_user(request: Request, body: UserCreate) -> UserCreated:
    services = services_of(request)
    token = new_token()
    async with services.db.connection() as conn:
        try:
            row = await records.create_user(
                conn, body.email, body.subscription_tier, token_hash(token)
            )
        except records.EmailTaken:
            raise ServiceError(409, f"A user with email {body.email!r} already exists") from None
    return UserCreated(
        id=row.id, email=row.email, subscription_tier=body.subscription_tier, token=token
    )


@router.get(
    "/admin/storage/stats",
    response_model=StatsOut,
    summary="Bytes held (soft-deleted files included until purged), files, queue",
    responses=_ERRORS,
)
async def storage_stats(request: Request) -> StatsOut:
    services = services_of(request)
    async with services.db.connection() as conn:
        stats = await records.storage_stats(conn)
    return StatsOut(
        used_bytes=stats.used_bytes,
        quota_bytes=services.settings.storage_quota_bytes,
        files=stats.files,
        deleted_files=stats.deleted_files,
        deleted_bytes=stats.deleted_bytes,
        queued_uploads=stats.queued_uploads,
    )


@router.post(
    "/admin/cleanup/deleted",
    response_model=CleanupOut,
    summary="Purge soft-deleted files: objects removed from storage, rows (and shares) deleted",
    responses=_ERRORS,
)
async def cleanup_deleted(request: Request) -> CleanupOut:
    services = services_of(request)
    purged = freed = 0
    while True:
        async with services.db.connection() as conn:
            batch = await records.deleted_files(conn, CLEANUP_BATCH)
        progress = False
        for row in batch:
            try:
                size = await _purge_one(services, row)
            except StorageFailure as exc:
                raise ServiceError(
                    503,
                    f"Cleanup stopped: object storage unavailable ({errno_name(exc)}: "
                    f"{one_line(exc)}); purged {purged} files ({freed} bytes) before the "
                    "failure. Run it again once storage answers.",
                    errno_name(exc),
                ) from exc
            if size is not None:
                purged += 1
                freed += size
                progress = True
        if len(batch) < CLEANUP_BATCH or not progress:
            return CleanupOut(purged_files=purged, freed_bytes=freed)


async def _purge_one(services: Services, row: records.FileRow) -> int | None:
    """Delete the object, then the row, under the row's lock (a concurrent restore waits,
    then finds nothing): either both go or neither does."""
    async with services.db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT 1 FROM storage_files WHERE id = %s AND is_deleted FOR UPDATE", (row.id,)
        )
        if await cur.fetchone() is None:
            return None  # restored or purged meanwhile
        await services.store.delete(row.object_key)
        await asyncio.to_thread(services.spool.remove, row.id)
        return await records.purge_file(conn, row.id)


@router.post(
    "/admin/cache/warm",
    response_model=WarmOut,
    summary="Fill the listing cache of every user who has files",
    responses=_ERRORS,
)
async def warm_cache(request: Request) -> WarmOut:
    services = services_of(request)
    async with services.db.connection() as conn:
        users = await records.users_with_files(conn)
    warmed = 0
    for user_id in users:
        key = str(user_id)
        generation = await services.cache.current_generation(key)
        error: str | None = "cannot read the cache generation"
        if generation is not None:
            async with services.db.connection() as conn:
                rows = await records.list_files(conn, user_id)
            payload = FileList(files=[FileOut.of(r) for r in rows]).model_dump_json().encode()
            error = await services.cache.store_listing(key, generation, payload)
        if error is not None:
            raise ServiceError(
                503,
                f"Cache unavailable: {error}; warmed {warmed} of {len(users)} users. "
                "Check Redis (redis-cli PING) and retry.",
                error.split(":", 1)[0],
            )
        warmed += 1
    return WarmOut(warmed_users=warmed)


@router.get(
    "/admin/uploads",
    response_model=UploadsSetting,
    summary="Whether uploads are disabled, and the banner shown",
    responses=_ERRORS,
)
async def get_uploads(request: Request) -> UploadsSetting:
    async with services_of(request).db.connection() as conn:
        flag = await records.uploads_flag(conn)
    return UploadsSetting(disabled=flag.disabled, banner=flag.banner)


@router.put(
    "/admin/uploads",
    response_model=UploadsSetting,
    summary="Disable or re-enable uploads on every replica, with a banner for the UI",
    responses=_ERRORS,
)
async def put_uploads(request: Request, body: UploadsSetting) -> UploadsSetting:
    async with services_of(request).db.connection() as conn:
        flag = await records.set_uploads_flag(
            conn, records.UploadsFlag(disabled=body.disabled, banner=body.banner)
        )
    return UploadsSetting(disabled=flag.disabled, banner=flag.banner)


@public_router.get(
    "/api/status",
    response_model=StatusOut,
    summary="Public service status for the UI banner",
    responses={503: _ERRORS[503]},
)
async def public_status(request: Request) -> StatusOut:
    async with services_of(request).db.connection() as conn:
        flag = await records.uploads_flag(conn)
    return StatusOut(uploads_disabled=flag.disabled, banner=flag.banner)
