"""The service's own names for what a runbook's symptoms talk about, in one place.

Metric names, Prometheus jobs, route labels, log files, and how the service shows the
error messages a runbook quotes. `FILES` describes the Files twin (`files_api/`): its
/metrics (files_api/metrics.py: the Counter "http_requests" is exported as
http_requests_total, and so on), the route labels its middleware records (the route's
path template, "unmatched" for none), its log files (files_api/logs.py) and its error
details. A later issue moves these into a per-runbook profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SHARE_ROUTES = ("/share/{token}", "/share/{token}/download")


@dataclass(frozen=True)
class Message:
    """How the service shows an error message a runbook quotes ("File not found").

    Either lines of its logs (`log_pattern`, a regex in the service's own words) or its
    answers (`routes` answering with a `status` matching the regex), whichever is the
    message's real trace; `note` says how the service's words differ from the runbook's.
    """

    log_pattern: str = ""
    routes: tuple[str, ...] = ()
    status: str = ""  # a status regex, as the metrics' label holds it: "404", "4.."
    note: str = ""


def _files_messages() -> Mapping[str, Message]:
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


def _files_routes() -> Mapping[str, str]:
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


def _files_features() -> Mapping[str, str]:
    return MappingProxyType(
        {
            "/api/storage/files/upload": "uploads",
            "/api/storage/files": "listing",
            "/api/storage/files/{file_id}/download": "downloads",
            SHARE_ROUTES[0]: "share_links",
            SHARE_ROUTES[1]: "share_links",
        }
    )


@dataclass(frozen=True)
class Vocabulary:
    """Names of one service's signals. Defaults: the Files twin."""

    service: str = "Files"  # the prefix of derived alert names ("FilesApiServerDown...")
    api_job: str = "files-api"  # Prometheus job of the API instances (scraped directly)
    # labels route, method, status (exported by the twin's Counter "http_requests")
    requests_total: str = "http_requests_total"
    duration_bucket: str = "http_request_duration_seconds_bucket"  # label route
    # the API's pool: connections open or being opened (a reconnection attempt in flight
    # counts, so with the database down it hovers at 1, not 0)
    pool_connections: str = "db_pool_connections"
    db_errors: str = "db_errors_total"  # label errno ("ECONNREFUSED", "ETIMEDOUT" ...)
    storage_errors: str = "storage_errors_total"  # label operation (put_object ...)
    uploads: str = "uploads_total"  # label outcome (stored, queued, rejected_413 ...)
    db_job: str = "postgres"  # prometheus-postgres-exporter's job
    db_up: str = "pg_up"  # 0 while the exporter cannot reach the database
    db_connections: str = "pg_stat_activity_count"  # the database's own connection count
    metrics_route: str = "/metrics"  # the scrape's own requests: not traffic, not errors
    health_path: str = "/health"
    # paths that answer an anonymous GET: an HTTP probe can call them as they are
    anonymous_get: tuple[str, ...] = ("/health", "/api/status")
    # a path as a runbook writes it -> the twin's route label (its path template); a
    # concrete path ("/share/abc123xyz") is matched against the templates by `route_of`
    routes: Mapping[str, str] = field(default_factory=_files_routes)
    log_files: tuple[str, ...] = ("error.log", "production.log")
    # route label -> the user-facing feature it serves (routes not listed are not
    # user-facing: health, metrics, admin); the words a severity table uses for them
    features: Mapping[str, str] = field(default_factory=lambda: _files_features())
    # a provider a runbook names ("Supabase status page") -> its status page's host
    status_pages: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"supabase": "status.supabase.com"})
    )
    server_errors: str = "5.."  # the statuses that are a route's failures (a label regex)
    # routes whose failures include 4xx answers: the twin records every refused upload
    # (400, 401, 408, 413, 507 as well as 503) in upload_failures (files_api/routes_files.py)
    failures: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"/api/storage/files/upload": "[45].."})
    )
    # error messages a runbook quotes (lower case) -> how the service shows them
    messages: Mapping[str, Message] = field(default_factory=_files_messages)

    def route_of(self, path: str) -> str | None:
        """The route label of a path as a runbook writes it, or None when unknown.

        "/api/storage/files/upload" -> itself; "/share/abc123xyz" -> "/share/{token}";
        a query string or a trailing slash is ignored."""
        clean = path.split("?", 1)[0].rstrip("/") or "/"
        if clean in self.routes:
            return self.routes[clean]
        for written, label in self.routes.items():
            if "{" in written and _template(written).fullmatch(clean):
                return label
        return None

    def failure_status(self, route: str) -> str:
        """The statuses counted as the route's failures ("5.." unless said otherwise)."""
        return self.failures.get(route, self.server_errors)

    def message(self, quoted: str) -> Message | None:
        return self.messages.get(" ".join(quoted.lower().split()))


def _template(written: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}/]*\}", written)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))


FILES = Vocabulary()
