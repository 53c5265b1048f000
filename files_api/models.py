"""Request and response bodies of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from files_api.records import FileRow, ShareRow


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorOut(_Model):
    detail: str


class UserCreate(_Model):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    subscription_tier: Literal["free", "pro"] = "free"


class UserCreated(_Model):
    id: UUID
    email: str
    subscription_tier: Literal["free", "pro"]
    token: str = Field(description="Bearer token of the user; shown once, stored hashed")


class FileOut(_Model):
    id: UUID
    name: str
    size_bytes: int
    checksum_sha256: str
    content_type: str
    status: Literal["stored", "queued"]
    created_at: datetime

    @classmethod
    def of(cls, row: FileRow) -> FileOut:
        return cls(
            id=row.id,
            name=row.name,
            size_bytes=row.size_bytes,
            checksum_sha256=row.checksum_sha256,
            content_type=row.content_type,
            status="queued" if row.status == "queued" else "stored",
            created_at=row.created_at,
        )


class FileList(_Model):
    files: list[FileOut]


class ShareCreate(_Model):
    permission: Literal["view", "download"] = "download"
    expires_in_s: int | None = Field(default=None, ge=1, le=10 * 365 * 24 * 3600)
    max_downloads: int | None = Field(default=None, ge=1)


class ShareOut(_Model):
    token: str
    url: str
    permission: Literal["view", "download"]
    expires_at: datetime | None
    max_downloads: int | None

    @classmethod
    def of(cls, row: ShareRow) -> ShareOut:
        return cls(
            token=row.token,
            url=f"/share/{row.token}",
            permission="view" if row.permission == "view" else "download",
            expires_at=row.expires_at,
            max_downloads=row.max_downloads,
        )


class SharedFileOut(_Model):
    name: str
    size_bytes: int
    content_type: str
    permission: Literal["view", "download"]
    expires_at: datetime | None


class StatsOut(_Model):
    used_bytes: int
    quota_bytes: int
    files: int
    deleted_files: int
    deleted_bytes: int
    queued_uploads: int


class CleanupOut(_Model):
    purged_files: int
    freed_bytes: int


class WarmOut(_Model):
    warmed_users: int


class UploadsSetting(_Model):
    disabled: bool
    banner: str = Field(default="", max_length=500)


class StatusOut(_Model):
    uploads_disabled: bool
    banner: str


class CheckOut(_Model):
    ok: bool
    latency_ms: float
    error: str | None = None


class HealthOut(_Model):
    status: Literal["ok", "fail"]
    release: str
    failed: list[str] = Field(default_factory=list)
    checks: dict[str, CheckOut]
