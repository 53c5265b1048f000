"""Share links: created by a file's owner, opened by anyone holding the token."""

from __future__ import annotations

import contextlib
import secrets
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from files_api import records
from files_api.auth import CurrentUser, services_of
from files_api.downloads import download_response, read_bytes
from files_api.errors import ServiceError
from files_api.models import ErrorOut, ShareCreate, SharedFileOut, ShareOut
from files_api.rules import (
    ACCESS_DENIED_DETAIL,
    SHARE_INVALID_DETAIL,
    ShareFacts,
    ShareState,
    share_state,
)
from files_api.services import Services

router = APIRouter(tags=["shares"])

SHARE_TOKEN_BYTES = 24  # 192 random bits


def _invalid(reason: str) -> ServiceError:
    return ServiceError(404, SHARE_INVALID_DETAIL, note=reason)


def _state(lookup: records.ShareLookup) -> ShareState:
    return share_state(
        ShareFacts(
            expires_at=lookup.share.expires_at,
            max_downloads=lookup.share.max_downloads,
            download_count=lookup.share.download_count,
            file_deleted=lookup.file.is_deleted,
        ),
        lookup.now,
    )


@router.post(
    "/api/storage/files/{file_id}/shares",
    status_code=201,
    response_model=ShareOut,
    summary="Create a share link for one of the caller's files",
    responses={
        401: {"model": ErrorOut, "description": "Missing or invalid bearer token"},
        404: {"model": ErrorOut, "description": "No such file for this user"},
        503: {"model": ErrorOut, "description": "Database unavailable"},
    },
)
async def create_share(
    request: Request, file_id: UUID, body: ShareCreate, user: CurrentUser
) -> ShareOut:
    services = services_of(request)
    async with services.db.connection() as conn:
        if await records.get_file(conn, user.id, file_id) is None:
            raise ServiceError(404, "File not found")
        row = await records.create_share(
            conn,
            file_id=file_id,
            token=secrets.token_urlsafe(SHARE_TOKEN_BYTES),
            permission=body.permission,
            expires_in_s=body.expires_in_s,
            max_downloads=body.max_downloads,
            created_by=user.id,
        )
    return ShareOut.of(row)


_SHARE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {"application/json": {}, "application/octet-stream": {}},
        "description": "'view' share: the file's metadata (JSON); 'download' share: the bytes",
    },
    404: {"model": ErrorOut, "description": "Share link expired or invalid"},
    503: {"model": ErrorOut, "description": "Database or storage unavailable"},
}


@router.get(
    "/share/{token}",
    summary="Open a share link",
    response_class=Response,
    responses={**_SHARE_RESPONSES},
)
async def open_share(request: Request, token: str) -> Response:
    services = services_of(request)
    async with services.db.connection() as conn:
        lookup = await records.share_by_token(conn, token)
    if lookup is None:
        raise _invalid("unknown token")
    if lookup.share.permission == "download":
        return await _download(services, token)
    state = _state(lookup)
    if state is not ShareState.VALID:
        raise _invalid(state.value)
    body = SharedFileOut(
        name=lookup.file.name,
        size_bytes=lookup.file.size_bytes,
        content_type=lookup.file.content_type,
        permission="view",
        expires_at=lookup.share.expires_at,
    )
    return JSONResponse(body.model_dump(mode="json"))


@router.get(
    "/share/{token}/download",
    summary="Download through a share link (403 on a 'view' share)",
    response_class=Response,
    responses={
        **_SHARE_RESPONSES,
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        403: {"model": ErrorOut, "description": "The share only allows viewing"},
    },
)
async def download_share(request: Request, token: str) -> Response:
    return await _download(services_of(request), token)


async def _download(services: Services, token: str) -> Response:
    lookup: records.ShareLookup | None = None
    async with services.db.connection() as conn:
        consumed = await records.consume_download(conn, token)
        if consumed is None:
            lookup = await records.share_by_token(conn, token)
    if consumed is None:
        if lookup is None:
            raise _invalid("unknown token")
        state = _state(lookup)
        if lookup.share.permission != "download" and state is ShareState.VALID:
            raise ServiceError(403, ACCESS_DENIED_DETAIL, note="view-only share")
        raise _invalid(state.value)
    share, file = consumed
    try:
        data = await read_bytes(services, file)
    except ServiceError:
        # The download did not happen: give the count back (best effort).
        with contextlib.suppress(ServiceError):
            async with services.db.connection() as conn:
                await records.refund_download(conn, share.id)
        raise
    return download_response(file, data)
