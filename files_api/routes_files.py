"""A user's files: upload, list (cached), metadata, download, soft delete, restore."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from uuid import UUID, uuid4

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from files_api import records
from files_api.auth import (
    Credentials,
    CurrentUser,
    CurrentUserAndFile,
    OwnedFile,
    authenticate_user,
    services_of,
)
from files_api.downloads import download_response, read_bytes
from files_api.errors import ServiceError, errno_name, one_line
from files_api.logs import LogValue, log_event
from files_api.models import ErrorOut, FileList, FileOut
from files_api.records import FileRow, NewFile, UploadFailure
from files_api.rules import MIB, Plan, PlanLimits, QuotaDecision, check_quota, check_upload_size
from files_api.services import Services
from files_api.storage import StorageFailure
from files_api.uploads import ReceivedFile, receive_upload

router = APIRouter(tags=["files"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid bearer token"},
    404: {"model": ErrorOut, "description": "No such file for this user"},
    503: {"model": ErrorOut, "description": "A dependency is down (detail names the errno)"},
}

UPLOAD_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The file; any content type is accepted",
                        }
                    },
                }
            }
        },
    }
}


@dataclass
class _UploadFacts:
    """What is known about an upload so far, for the failure record."""

    user_id: UUID | None = None
    file_name: str | None = None
    size_bytes: int | None = None
    content_type: str | None = None


@router.post(
    "/api/storage/files/upload",
    status_code=201,
    response_model=FileOut,
    summary="Upload a file (multipart field 'file')",
    openapi_extra=UPLOAD_BODY,
    responses={
        202: {"model": FileOut, "description": "Storage is down: queued for retry (durable)"},
        400: {"model": ErrorOut, "description": "Not a multipart body with a 'file' field"},
        401: _ERRORS[401],
        408: {"model": ErrorOut, "description": "Body not received within UPLOAD_TIMEOUT_S"},
        413: {"model": ErrorOut, "description": "File larger than the plan's limit"},
        503: {"model": ErrorOut, "description": "Uploads disabled, or database unavailable"},
        507: {"model": ErrorOut, "description": "Storage quota exceeded"},
    },
)
async def upload_file(request: Request, _: Credentials) -> JSONResponse:
    services = services_of(request)
    facts = _UploadFacts()
    try:
        return await _upload(services, request, facts)
    except ServiceError as exc:
        await _record_failure(services, request, facts, exc.status_code, exc.detail, exc.errno)
        raise
    except ClientDisconnect:
        detail = "client disconnected before the upload body was complete"
        await _record_failure(services, request, facts, 400, detail, "ECONNRESET")
        raise ServiceError(400, detail, "ECONNRESET") from None
    except Exception as exc:
        await _record_failure(services, request, facts, 500, one_line(exc), errno_name(exc))
        raise


async def _upload(services: Services, request: Request, facts: _UploadFacts) -> JSONResponse:
    settings = services.settings
    user = await authenticate_user(request)
    facts.user_id = user.id
    async with services.db.connection() as conn:
        flag = await records.uploads_flag(conn)
    if flag.disabled:
        raise ServiceError(
            503, f"Uploads are temporarily disabled: {flag.banner or 'maintenance in progress'}"
        )
    plan = Plan(user.subscription_tier)
    limits = PlanLimits(settings.free_limit_mb, settings.pro_limit_mb)
    received = await receive_upload(
        request.stream(),
        request.headers.get("content-type"),
        keep_limit=limits.limit_mb(plan) * MIB,
        deadline_s=settings.upload_timeout_s,
        tmp_dir=settings.spool_dir / "tmp",
    )
    try:
        facts.file_name = received.filename
        facts.size_bytes = received.size_bytes
        facts.content_type = received.content_type
        size = check_upload_size(received.size_bytes, plan, limits)
        if not size.accepted:
            raise ServiceError(413, size.message or "File too large")
        async with services.db.connection() as conn:
            used = await records.used_bytes(conn)
        quota = check_quota(used, received.size_bytes, settings.storage_quota_bytes)
        if not quota.accepted:
            raise ServiceError(507, quota.message or "Storage quota exceeded")
        row = await _store(services, user.id, received)
    finally:
        received.close()
    await services.cache.invalidate(str(user.id))
    services.metrics.uploads.labels(outcome=row.status).inc()
    log_event(
        logging.INFO,
        f"upload {row.status}: {row.name} ({row.size_bytes} bytes)",
        user_id=str(user.id),
        file_id=str(row.id),
        size_bytes=row.size_bytes,
        content_type=row.content_type,
        request_id=_request_id(request),
    )
    status_code = 202 if row.status == "queued" else 201
    return JSONResponse(FileOut.of(row).model_dump(mode="json"), status_code=status_code)


async def _store(services: Services, user_id: UUID, received: ReceivedFile) -> FileRow:
    """Bytes to storage (or to the spool), then the row; undo the bytes if the row fails."""
    file_id = uuid4()
    key = f"users/{user_id}/{file_id}"
    status = "stored"
    try:
        await services.store.put_stream(
            key, received.body, received.content_type, received.size_bytes
        )
    except StorageFailure as exc:
        status = "queued"
        log_event(
            logging.WARNING,
            f"upload: object storage failed ({errno_name(exc)}: {one_line(exc)}); "
            "spooling the bytes for retry",
            user_id=str(user_id),
            file_id=str(file_id),
            errno=errno_name(exc),
        )
        try:
            await asyncio.to_thread(services.spool.write, file_id, received.body)
        except OSError as spool_exc:
            raise ServiceError(
                503,
                f"Upload failed: object storage unavailable ({errno_name(exc)}) and the local "
                f"upload queue could not take the file ({errno_name(spool_exc)}: "
                f"{one_line(spool_exc)}). Retry later.",
                errno_name(spool_exc),
            ) from spool_exc
    new = NewFile(
        id=file_id,
        user_id=user_id,
        name=received.filename,
        content_type=received.content_type,
        size_bytes=received.size_bytes,
        checksum_sha256=received.sha256,
        object_key=key,
        status=status,
    )
    try:
        async with services.db.connection() as conn:
            result = await records.insert_file_within_quota(
                conn, new, services.settings.storage_quota_bytes
            )
    except BaseException:
        await _undo_bytes(services, new)
        raise
    if isinstance(result, QuotaDecision):
        await _undo_bytes(services, new)
        raise ServiceError(507, result.message or "Storage quota exceeded")
    return result


async def _undo_bytes(services: Services, new: NewFile) -> None:
    """Best effort: the upload was not acknowledged, so its bytes must not linger."""
    if new.status == "queued":
        await asyncio.to_thread(services.spool.remove, new.id)
        return
    with contextlib.suppress(Exception):
        await services.store.delete(new.object_key)


async def _record_failure(
    services: Services,
    request: Request,
    facts: _UploadFacts,
    status_code: int,
    reason: str,
    errno: str | None,
) -> None:
    services.metrics.uploads.labels(outcome=f"rejected_{status_code}").inc()
    fields: dict[str, LogValue] = {
        "user_id": str(facts.user_id) if facts.user_id else None,
        "file_name": facts.file_name,
        "size_bytes": facts.size_bytes,
        "content_type": facts.content_type,
        "status": status_code,
        "errno": errno,
        "request_id": _request_id(request),
    }
    failure = UploadFailure(
        facts.user_id, facts.file_name, facts.size_bytes, facts.content_type, reason, status_code
    )
    recorded = "recorded in upload_failures"
    try:
        async with services.db.connection(
            wait_s=min(1.0, services.settings.db_pool_timeout_s)
        ) as c:
            await records.record_failure(c, failure)
    except Exception as exc:  # best effort: the database may be what failed
        recorded = f"NOT recorded in upload_failures ({errno_name(exc)})"
    level = logging.ERROR if status_code >= 500 else logging.WARNING
    log_event(level, f"upload failed with {status_code}: {reason} [{recorded}]", **fields)


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


# ------------------------------------------------------------------ listing and reads


@router.get(
    "/api/storage/files",
    response_model=FileList,
    summary="The caller's files (cached; X-Cache: HIT or MISS)",
    responses={401: _ERRORS[401], 503: _ERRORS[503]},
)
async def list_files(request: Request, user: CurrentUser) -> Response:
    services = services_of(request)
    user_key = str(user.id)
    cached = await services.cache.get_listing(user_key)
    if cached.payload is not None:
        return Response(cached.payload, media_type="application/json", headers={"X-Cache": "HIT"})
    async with services.db.connection() as conn:
        rows = await records.list_files(conn, user.id)
    payload = FileList(files=[FileOut.of(row) for row in rows]).model_dump_json().encode()
    headers = {"X-Cache": "MISS"}
    error = cached.error
    if cached.generation is not None:
        error = await services.cache.store_listing(user_key, cached.generation, payload)
    if error is not None:
        headers["X-Cache-Error"] = error.split(":", 1)[0]
        request.state.error_detail = f"listing served from the database, cache failed: {error}"
    return Response(payload, media_type="application/json", headers=headers)


async def _own_file(services: Services, owned: OwnedFile, file_id: UUID) -> FileRow:
    row = owned.file
    if not owned.looked_up:
        async with services.db.connection() as conn:
            row = await records.get_file(conn, owned.user.id, file_id)
    if row is None:
        raise ServiceError(404, "File not found")
    return row


@router.get(
    "/api/storage/files/{file_id}",
    response_model=FileOut,
    summary="Metadata of one of the caller's files",
    responses={401: _ERRORS[401], 404: _ERRORS[404], 503: _ERRORS[503]},
)
async def file_metadata(request: Request, file_id: UUID, owned: CurrentUserAndFile) -> FileOut:
    return FileOut.of(await _own_file(services_of(request), owned, file_id))


@router.get(
    "/api/storage/files/{file_id}/download",
    summary="The bytes of one of the caller's files (as an attachment)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        401: _ERRORS[401],
        404: _ERRORS[404],
        503: _ERRORS[503],
    },
)
async def download_file(request: Request, file_id: UUID, owned: CurrentUserAndFile) -> Response:
    services = services_of(request)
    row = await _own_file(services, owned, file_id)
    return download_response(row, await read_bytes(services, row))


@router.delete(
    "/api/storage/files/{file_id}",
    response_model=FileOut,
    summary="Soft-delete a file (bytes kept until POST /admin/cleanup/deleted)",
    responses={401: _ERRORS[401], 404: _ERRORS[404], 503: _ERRORS[503]},
)
async def delete_file(request: Request, file_id: UUID, user: CurrentUser) -> FileOut:
    services = services_of(request)
    async with services.db.connection() as conn:
        row = await records.soft_delete(conn, user.id, file_id)
    if row is None:
        raise ServiceError(404, "File not found")
    await services.cache.invalidate(str(user.id))
    return FileOut.of(row)


@router.post(
    "/api/storage/files/{file_id}/restore",
    response_model=FileOut,
    summary="Undo a soft delete (until the file is purged)",
    responses={401: _ERRORS[401], 404: _ERRORS[404], 503: _ERRORS[503]},
)
async def restore_file(request: Request, file_id: UUID, user: CurrentUser) -> FileOut:
    services = services_of(request)
    async with services.db.connection() as conn:
        row = await records.restore(conn, user.id, file_id)
    if row is None:
        raise ServiceError(404, "File not found among your deleted files")
    await services.cache.invalidate(str(user.id))
    return FileOut.of(row)
