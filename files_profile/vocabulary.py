"""The Files twin's monitoring names (`files_api/`): its /metrics (files_api/metrics.py:
the Counter "http_requests" is exported as http_requests_total, and so on), the route
labels its middleware records (the route's path template, "unmatched" for none) and its
error details, as `runbook_checks.vocabulary.Vocabulary` describes a service."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runbook_checks.vocabulary import Message, PoolMetrics, Vocabulary

SHARE_ROUTES = ("/share/{token}", "/share/{token}/download")
UPLOAD_ROUTE = "/api/storage/files/upload"


def _messages() -> Mapping[str, Message]:
    return MappingProxyType(
        {
            "failed to upload file": Message(
                log_pattern=r"object storage failed|Upload failed: object storage unavailable",
                note="the twin never answers 'Failed to upload file': with the object store "
                "down it queues the upload (202, bytes spooled) and logs 'upload: object "
                "storage failed (ERRNO: ...); spooling the bytes for retry' (production.log); "
                "only when the spool fails too it answers 503 'Upload failed: object storage "
                "unavailable ...'",
            ),
            "file not found": Message(
                log_pattern=r"File not found|Object storage unavailable while trying to download",
                note="the twin answers 404 'File not found: the file's bytes are missing from "
                "storage' when the object is gone, but 503 'Object storage unavailable while "
                "trying to download the file' when the store is down; both are logged",
            ),
            "share link expired or invalid": Message(
                log_pattern="Share link expired or invalid",
                note="the twin answers 404 with this detail (expired, download limit "
                "reached, file deleted, unknown token); the request's line in "
                "production.log carries it",
            ),
            "access denied": Message(
                routes=SHARE_ROUTES,
                status="4..",
                note="measured as the share routes' 4xx answers: the twin says 'Access "
                "denied' (403) only for a view-only share's download, and 'Share link "
                "expired or invalid' (404) for a link that stopped working",
            ),
            "econnrefused": Message(log_pattern="ECONNREFUSED"),
            "connection timeout": Message(
                log_pattern="ETIMEDOUT|Connection timeout",
                note="the twin writes a timed-out connection as ETIMEDOUT",
            ),
        }
    )


def _routes() -> Mapping[str, str]:
    templates = (
        "/health",
        "/metrics",
        "/api/status",
        "/api/storage/files",
        "/api/storage/files/upload",
        "/api/storage/files/{file_id}",
        "/api/storage/files/{file_id}/download",
        "/api/storage/files/{file_id}/restore",
        "/api/storage/files/{file_id}/shares",
        *SHARE_ROUTES,
        "/admin/users",
        "/admin/storage/stats",
        "/admin/cleanup/deleted",
        "/admin/cache/warm",
        "/admin/uploads",
    )
    return MappingProxyType({t: t for t in templates})


def _features() -> Mapping[str, str]:
    return MappingProxyType(
        {
            UPLOAD_ROUTE: "uploads",
            "/api/storage/files": "listing",
            "/api/storage/files/{file_id}/download": "downloads",
            SHARE_ROUTES[0]: "share_links",
            SHARE_ROUTES[1]: "share_links",
        }
    )


VOCABULARY = Vocabulary(
    service="Files",
    api_job="files-api",
    requests_total="http_requests_total",
    duration_bucket="http_request_duration_seconds_bucket",
    pool_connections="db_pool_connections",
    routes=_routes(),
    features=_features(),
    main_route="/api/storage/files",
    anonymous_get=("/health", "/api/status"),
    status_pages=MappingProxyType({"supabase": "status.supabase.com"}),
    # the twin records every refused upload (400, 401, 408, 413, 507 as well as 503) in
    # upload_failures (files_api/routes_files.py): 4xx answers are failures there too
    failures=MappingProxyType({UPLOAD_ROUTE: "[45].."}),
    messages=_messages(),
    customer_name="Files API",
    customer_features=(
        ("upload", "File uploads"),
        ("download", "File downloads"),
        ("share", "Share links"),
        ("preview", "File previews"),
        ("storage", "File storage"),
    ),
    pool=PoolMetrics(  # files_api/metrics.py
        size="db_pool_size",
        in_use="db_pool_in_use",
        waiting="db_pool_waiting",
        connections="db_pool_connections",
        timeouts_total="db_pool_timeouts_total",
    ),
)
