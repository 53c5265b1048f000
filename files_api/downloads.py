"""Handing stored bytes back: from object storage, or from the spool while still queued,
with headers that stop a browser from rendering or running what a user uploaded."""

from __future__ import annotations

import asyncio
import logging

from fastapi import Response

from files_api.errors import ServiceError
from files_api.logs import log_event
from files_api.records import FileRow
from files_api.rules import content_disposition, safe_content_type
from files_api.services import Services
from files_api.storage import ObjectMissing, StorageFailure, storage_error


async def read_bytes(services: Services, row: FileRow) -> bytes:
    """The file's bytes; ServiceError 503 when storage fails, 404 when they are gone."""
    if row.status == "queued" and services.spool.has(row.id):
        try:
            return await asyncio.to_thread(services.spool.read, row.id)
        except FileNotFoundError:
            pass  # stored by the retry worker meanwhile: read it from storage
    try:
        return await services.store.get_bytes(row.object_key)
    except ObjectMissing:
        if services.spool.has(row.id):
            return await asyncio.to_thread(services.spool.read, row.id)
        log_event(
            logging.ERROR,
            "download failed: object missing from storage",
            file_id=str(row.id),
            object_key=row.object_key,
            status=row.status,
        )
        detail = "File not found: the file's bytes are missing from storage"
        if row.status == "queued":
            detail += " (upload still queued on another replica; retry later)"
        raise ServiceError(404, detail, "ENOENT") from None
    except StorageFailure as exc:
        raise storage_error(exc, "download the file") from exc


def download_response(row: FileRow, data: bytes) -> Response:
    return Response(
        content=data,
        media_type=safe_content_type(row.content_type),
        headers={
            "Content-Disposition": content_disposition(row.name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
            "X-Checksum-SHA256": row.checksum_sha256,
        },
    )
