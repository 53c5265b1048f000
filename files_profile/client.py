"""A small typed client of the Files API: the user traffic of drills, faults and the gate
(`runbook_checks.service.ServiceClient`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from runbook_checks.service import Upload
from runbook_checks.service import User as ServiceUser
from runbook_checks.tls import tls_context

UPLOAD_PATH = "/api/storage/files/upload"


@dataclass(frozen=True)
class User:
    id: str
    email: str
    tier: str
    token: str

    @property
    def auth(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class FilesClient:
    def __init__(
        self, base_url: str, admin_token: str, *, timeout_s: float = 10.0, keepalive: bool = True
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        # keepalive=False: a new connection per request, like many distinct clients (a
        # connection-level load balancer then spreads every request, not every client)
        limits = httpx.Limits() if keepalive else httpx.Limits(max_keepalive_connections=0)
        self.http = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, limits=limits, verify=tls_context()
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def health(self, timeout_s: float = 3.0) -> httpx.Response:
        return self.http.get("/health", timeout=timeout_s)

    def create_user(self, email: str, tier: str = "free") -> User:
        response = self.http.post(
            "/admin/users", headers=self.admin, json={"email": email, "subscription_tier": tier}
        )
        response.raise_for_status()
        data = response.json()
        return User(
            str(data["id"]), str(data["email"]), str(data["subscription_tier"]), str(data["token"])
        )

    def upload(
        self,
        user: ServiceUser,
        name: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        timeout_s: float | None = None,
    ) -> Upload:
        checksum = hashlib.sha256(content).hexdigest()
        response = self.http.post(
            UPLOAD_PATH,
            headers=dict(user.auth),
            files={"file": (name, content, content_type)},
            timeout=timeout_s if timeout_s is not None else self.http.timeout,
        )
        file_id: str | None = None
        if response.status_code in (201, 202):
            file_id = str(response.json().get("id"))
        return Upload(
            response.status_code, file_id, name, checksum, len(content), response.text[:500]
        )

    def post_upload(
        self,
        user: ServiceUser,
        *,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        return self.http.post(
            UPLOAD_PATH,
            headers={**user.auth, **(headers or {})},
            files=dict(files) if files is not None else None,
            content=content,
            timeout=timeout_s if timeout_s is not None else self.http.timeout,
        )

    def download(self, user: ServiceUser, file_id: str) -> httpx.Response:
        return self.http.get(f"/api/storage/files/{file_id}/download", headers=dict(user.auth))

    def list_files(self, user: ServiceUser) -> httpx.Response:
        return self.http.get("/api/storage/files", headers=dict(user.auth))

    def delete(self, user: ServiceUser, file_id: str) -> httpx.Response:
        return self.http.delete(f"/api/storage/files/{file_id}", headers=dict(user.auth))

    def share(
        self,
        user: ServiceUser,
        file_id: str,
        *,
        permission: str = "download",
        expires_in_s: int | None = None,
        max_downloads: int | None = None,
    ) -> str:
        response = self.http.post(
            f"/api/storage/files/{file_id}/shares",
            headers=dict(user.auth),
            json={
                "permission": permission,
                "expires_in_s": expires_in_s,
                "max_downloads": max_downloads,
            },
        )
        response.raise_for_status()
        return str(response.json()["token"])

    def open_share(self, token: str) -> httpx.Response:
        return self.http.get(f"/share/{token}")

    def set_uploads_disabled(self, disabled: bool, banner: str = "") -> httpx.Response:
        return self.http.put(
            "/admin/uploads", headers=self.admin, json={"disabled": disabled, "banner": banner}
        )
