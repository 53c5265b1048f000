"""The Files service's kit: everything the engine (`runbook_checks`) needs to know about
the Files service and its twin (`files_api`), named by the Files runbook's profile
(`[profile] kit = "files_profile"`). The engine reaches it only through
`runbook_checks.service.ServiceKit`."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from files_profile.client import UPLOAD_PATH, FilesClient, User
from files_profile.vocabulary import VOCABULARY
from runbook_checks.service import DataModel, Twin, Upload
from runbook_checks.vocabulary import Vocabulary

__all__ = [
    "DATA",
    "KIT",
    "TWIN",
    "UPLOAD_PATH",
    "VOCABULARY",
    "FilesClient",
    "FilesKit",
    "Upload",
    "User",
]


def _migrations() -> Path | None:
    """files_api's migrations folder, found without importing the twin (a checkout's or
    an installed wheel's)."""
    spec = importlib.util.find_spec("files_api")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "migrations"


TWIN = Twin(
    label="files_api",
    serve=("-m", "files_api", "serve"),
    migrate=("-m", "files_api", "migrate"),
    migrations=_migrations(),
    release_setting="FILES_API_RELEASE",  # files_api/config.py; blank reads as not set
    pool_size_setting="DB_POOL_SIZE",
    quota_setting="STORAGE_QUOTA_BYTES",
    upload_timeout_setting="UPLOAD_TIMEOUT_S",
    default_upload_timeout_s=30.0,  # files_api/config.py's default
    image="runbook-checks/files-api:dev",  # built by `make images` (docker/files-api/)
    default_release="dev",
    # what `serve` imports before it answers (~1.2 s of CPU a start when done anew)
    preload=(
        "files_api.__main__",
        "files_api.app",
        "uvicorn",
        "uvicorn.loops.uvloop",
        "uvicorn.protocols.http.httptools_impl",
        "uvicorn.protocols.websockets.auto",
        "uvicorn.lifespan.on",
        "files_api.s3_session",  # boto3, and S3's model read into the one session
    ),
)

# files_api/migrations/: users own storage_files; file_shares and upload_failures
DATA = DataModel(
    users="users",
    objects="storage_files",
    shares="file_shares",
    failures="upload_failures",
    owner_index="idx_storage_files_user_id",
    owner_column="user_id",
    listing_cache_key="files:ver:{user}",  # files_api/cache.py: a generation counter
    volume=(
        "INSERT INTO users (id, email, subscription_tier, api_token_hash) "
        "SELECT gen_random_uuid(), 'volume-' || g || '@drill.test', 'free', "
        "md5(g::text) FROM generate_series(1, %(users)s) g",
        "INSERT INTO storage_files (id, user_id, name, content_type, size_bytes, "
        "checksum_sha256, object_key, status) "
        "SELECT gen_random_uuid(), u.ids[1 + g %% cardinality(u.ids)], "
        "'volume-' || g || '.bin', 'application/octet-stream', 1024, md5(g::text), "
        "'volume/' || g, 'stored' FROM generate_series(1, %(rows)s) g, "
        "(SELECT array_agg(id) AS ids FROM users WHERE email LIKE 'volume-%%') u",
    ),
    volume_cleanup=(
        "DELETE FROM storage_files WHERE name LIKE 'volume-%'",
        "DELETE FROM users WHERE email LIKE 'volume-%@drill.test'",
    ),
)


@dataclass(frozen=True)
class FilesKit:
    """The Files service, as `runbook_checks.service.ServiceKit` describes a service."""

    name: str = "files"
    twin: Twin = field(default=TWIN)
    data: DataModel = field(default=DATA)
    vocabulary: Vocabulary = field(default=VOCABULARY)

    def client(
        self, base_url: str, admin_token: str, *, timeout_s: float = 10.0, keepalive: bool = True
    ) -> FilesClient:
        return FilesClient(base_url, admin_token, timeout_s=timeout_s, keepalive=keepalive)

    def openapi(self) -> Mapping[str, Any]:
        return _openapi()


@functools.cache
def _openapi() -> Mapping[str, Any]:
    """files_api.app.create_app(...).openapi(), in-process (no server, no database)."""
    import tempfile

    from files_api.app import create_app
    from files_api.config import Settings

    with tempfile.TemporaryDirectory(prefix="runbook-checks-openapi-") as folder:
        settings = Settings.from_env(
            {
                "DATABASE_URL": "postgresql://offline@127.0.0.1:1/offline",
                "ADMIN_TOKEN": "offline-" + "x" * 32,
                "LOG_DIR": folder,
            }
        )
        return create_app(settings).openapi()


KIT = FilesKit()
