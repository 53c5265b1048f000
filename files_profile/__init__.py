"""The Files service's kit: everything the engine (`runbook_checks`) needs to know about
the Files service and its twin (`files_api`), named by the Files runbook's profile
(`[profile] kit = "files_profile"`). The engine reaches it only through
`runbook_checks.service.ServiceKit`."""

from __future__ import annotations

from dataclasses import dataclass

from files_profile.client import UPLOAD_PATH, FilesClient, User
from runbook_checks.service import Upload

__all__ = ["KIT", "UPLOAD_PATH", "FilesClient", "FilesKit", "Upload", "User"]


@dataclass(frozen=True)
class FilesKit:
    """The Files service, as `runbook_checks.service.ServiceKit` describes a service."""

    name: str = "files"

    def client(
        self, base_url: str, admin_token: str, *, timeout_s: float = 10.0, keepalive: bool = True
    ) -> FilesClient:
        return FilesClient(base_url, admin_token, timeout_s=timeout_s, keepalive=keepalive)


KIT = FilesKit()
