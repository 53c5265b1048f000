"""Who is calling: a user (bearer token, stored as its sha256) or the admin (ADMIN_TOKEN)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from files_api import records
from files_api.errors import ServiceError
from files_api.rules import bearer_token
from files_api.services import Services

user_bearer = HTTPBearer(auto_error=False, scheme_name="UserToken", description="user token")
admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="ADMIN_TOKEN")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(user_bearer)]
AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _raw_token(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization"))


class Unauthorized(ServiceError):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail)


def _token_of(request: Request) -> str:
    token = _raw_token(request)
    if token is None:
        raise Unauthorized(
            "Bearer token required: send 'Authorization: Bearer <token>' "
            "(an admin creates users and their tokens with POST /admin/users)"
        )
    return token


def _authenticated(request: Request, user: records.UserRow | None) -> records.UserRow:
    if user is None:
        raise Unauthorized("Invalid bearer token: no user has this token; ask an admin for one")
    request.state.user_id = str(user.id)
    return user


async def authenticate_user(request: Request) -> records.UserRow:
    """The user owning the request's bearer token (401 otherwise); sets state.user_id."""
    token = _token_of(request)
    async with services_of(request).db.connection() as conn:
        user = await records.user_by_token_hash(conn, token_hash(token))
    return _authenticated(request, user)


@dataclass(frozen=True)
class OwnedFile:
    """The caller and the file the path names, if the caller owns it (not deleted).
    `looked_up` is False where the path's id was not a UUID: FastAPI answers 422."""

    user: records.UserRow
    file: records.FileRow | None
    looked_up: bool


async def current_user_and_file(request: Request, _: Credentials) -> OwnedFile:
    """`current_user`, and the path's file in the same database round trip."""
    token = _token_of(request)
    try:
        file_id = UUID(str(request.path_params.get("file_id", "")))
    except ValueError:
        return OwnedFile(await authenticate_user(request), None, looked_up=False)
    async with services_of(request).db.connection() as conn:
        found = await records.user_and_file(conn, token_hash(token), file_id)
    user = _authenticated(request, found[0] if found else None)
    return OwnedFile(user, found[1] if found else None, looked_up=True)


async def current_user(request: Request, _: Credentials) -> records.UserRow:
    return await authenticate_user(request)


async def require_admin(request: Request, _: AdminCredentials) -> None:
    token = _raw_token(request)
    expected = services_of(request).settings.admin_token
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized(
            "admin token required: send 'Authorization: Bearer $ADMIN_TOKEN' "
            "(the value the API was started with)"
        )
    request.state.user_id = "admin"


CurrentUser = Annotated[records.UserRow, Depends(current_user)]
CurrentUserAndFile = Annotated[OwnedFile, Depends(current_user_and_file)]
AdminOnly = Depends(require_admin)
