"""The Files service twin against the real stack (PostgreSQL, an S3 server, Redis).

Every test starts from `fresh_stack` (empty tables, bucket and cache). Tests that need
other API settings restart the API with them and put the defaults back afterwards; tests
that break a dependency bring it back before they end. Waits poll with deadlines.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import boto3
import httpx
import psycopg
import pytest
import redis
from botocore.config import Config as BotoConfig

from runbook_checks.clock import wait_until
from runbook_checks.stack.base import Capability, Stack

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SHARE_INVALID = {"detail": "Share link expired or invalid"}
# The API's defaults, put back after a test that restarts it with other settings (unless
# the stack was started with other values: those are put back instead).
API_DEFAULTS = {
    "STORAGE_QUOTA_BYTES": str(1024 * MIB),
    "UPLOAD_TIMEOUT_S": "30",
    "DB_POOL_SIZE": "20",
    "DB_POOL_TIMEOUT_S": "5",
}


# ---------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class User:
    id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """A thin httpx client for the twin, as the runbook's curl lines use it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.endpoints.api_url
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.admin = {"Authorization": f"Bearer {stack.endpoints.admin_token}"}

    def close(self) -> None:
        self.http.close()

    def user(self, email: str, tier: str = "free") -> User:
        response = self.http.post(
            "/admin/users", headers=self.admin, json={"email": email, "subscription_tier": tier}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["subscription_tier"] == tier
        return User(body["id"], body["email"], body["token"])

    def upload(
        self, user: User, name: str, data: bytes, content_type: str = "text/plain"
    ) -> httpx.Response:
        return self.http.post(
            "/api/storage/files/upload",
            headers=user.auth,
            files={"file": (name, data, content_type)},
        )

    def uploaded(self, user: User, name: str, data: bytes, content_type: str = "text/plain") -> str:
        response = self.upload(user, name, data, content_type)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def share(self, user: User, file_id: str, **body: object) -> dict[str, object]:
        response = self.http.post(
            f"/api/storage/files/{file_id}/shares", headers=user.auth, json=body
        )
        assert response.status_code == 201, response.text
        share: dict[str, object] = response.json()
        return share

    def metrics(self) -> str:
        response = self.http.get("/metrics")
        assert response.status_code == 200
        return response.text


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match[3])
    return 0.0


def sql(stack: Stack, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(stack.endpoints.database_url, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(query.encode(), params)
        return cur.fetchall() if cur.description else []


def s3_keys(stack: Stack) -> set[str]:
    client = boto3.client(
        "s3",
        endpoint_url=stack.endpoints.s3_endpoint,
        region_name=stack.endpoints.aws_region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )
    listing = client.list_objects_v2(Bucket=stack.endpoints.s3_bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def log_lines(stack: Stack, name: str) -> list[dict[str, object]]:
    path = stack.endpoints.log_dir / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def wait_healthy(stack: Stack, timeout_s: float = 30.0) -> None:
    def healthy() -> bool:
        return httpx.get(f"{stack.endpoints.api_url}/health", timeout=3).status_code == 200

    wait_until(
        healthy,
        what="GET /health to answer 200",
        timeout_s=timeout_s,
        transient=(httpx.HTTPError,),
        interval_s=0.1,
    )


@pytest.fixture
def api(fresh_stack: Stack) -> Iterator[Api]:
    client = Api(fresh_stack)
    yield client
    client.close()


@pytest.fixture
def reconfigured(fresh_stack: Stack) -> Iterator[Stack]:
    """Lets a test restart the API with other settings; the defaults come back after it."""
    if Capability.RECONFIGURE not in fresh_stack.capabilities:
        pytest.skip(f"the {fresh_stack.backend} backend cannot restart the API with settings")
    current: dict[str, str] = getattr(getattr(fresh_stack, "api", None), "settings", {})
    before = {name: current.get(name, default) for name, default in API_DEFAULTS.items()}
    yield fresh_stack
    fresh_stack.restart_api(**before)
    wait_healthy(fresh_stack)


def restart_with(stack: Stack, **settings: str) -> Api:
    stack.restart_api(**settings)
    wait_healthy(stack)
    return Api(stack)


# ---------------------------------------------------------------------------- health, metrics


def test_health_reports_every_dependency(api: Api) -> None:
    response = api.http.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["release"], str)
    assert set(body["checks"]) == {"database", "storage", "cache"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert check["latency_ms"] >= 0


def test_metrics_expose_the_runbook_signals(api: Api) -> None:
    alice = api.user("metrics@example.com")
    api.uploaded(alice, "a.txt", b"abc")
    text = api.metrics()
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "db_pool_size",
        "db_pool_in_use",
        "db_pool_waiting",
        "db_pool_timeouts_total",
        "cache_hits_total",
        "cache_misses_total",
        "cache_errors_total",
        "storage_errors_total",
        "upload_queue_depth",
        "files_api_build_info",
    ):
        assert re.search(rf"^{name}[{{ ]", text, re.MULTILINE), f"{name} missing from /metrics"
    assert (
        metric(
            text,
            "http_requests_total",
            route="/api/storage/files/upload",
            method="POST",
            status="201",
        )
        >= 1
    )
    assert metric(text, "db_pool_size") >= 1


def test_openapi_declares_the_runbook_routes(api: Api) -> None:
    document = api.http.get("/openapi.json").json()
    paths = document["paths"]
    upload = paths["/api/storage/files/upload"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert {"201", "202", "413", "507"} <= set(upload["responses"])
    for path, method in [
        ("/health", "get"),
        ("/api/storage/files", "get"),
        ("/admin/storage/stats", "get"),
        ("/admin/cleanup/deleted", "post"),
        ("/admin/cache/warm", "post"),
        ("/share/{token}", "get"),
    ]:
        assert method in paths[path], f"{method.upper()} {path} not declared"


# ---------------------------------------------------------------------------- files


def test_upload_list_miss_then_hit_and_invalidation(api: Api) -> None:
    alice = api.user("alice@example.com")
    data = b"hello runbook\n"
    response = api.upload(alice, "test.txt", data)
    assert response.status_code == 201, response.text
    uploaded = response.json()
    assert uploaded["name"] == "test.txt"
    assert uploaded["size_bytes"] == len(data)
    assert uploaded["checksum_sha256"] == hashlib.sha256(data).hexdigest()
    assert uploaded["status"] == "stored"
    assert uploaded["content_type"] == "text/plain"
    before = api.metrics()

    first = api.http.get("/api/storage/files", headers=alice.auth)
    second = api.http.get("/api/storage/files", headers=alice.auth)
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == "HIT"
    assert first.json() == second.json()
    assert [f["id"] for f in first.json()["files"]] == [uploaded["id"]]
    after = api.metrics()
    assert metric(after, "cache_hits_total") == metric(before, "cache_hits_total") + 1
    assert metric(after, "cache_misses_total") == metric(before, "cache_misses_total") + 1

    api.uploaded(alice, "second.txt", b"2")  # invalidates the listing
    third = api.http.get("/api/storage/files", headers=alice.auth)
    assert third.headers["X-Cache"] == "MISS"
    assert len(third.json()["files"]) == 2


def test_a_listing_stored_under_another_generation_is_never_served(
    api: Api, fresh_stack: Stack
) -> None:
    """One key per user holds the listing with the generation it was read under; a
    listing written late by a request that read an older generation is a miss."""
    alice = api.user("generations@example.com")
    file_id = api.uploaded(alice, "real.txt", b"real")
    assert api.http.get("/api/storage/files", headers=alice.auth).headers["X-Cache"] == "MISS"
    assert api.http.get("/api/storage/files", headers=alice.auth).headers["X-Cache"] == "HIT"
    with redis.Redis.from_url(fresh_stack.endpoints.redis_url, socket_timeout=2) as client:
        stored = client.get(f"files:list:{alice.id}")
        assert stored is not None
        generation = int(client.get(f"files:ver:{alice.id}") or 0)
        assert stored.startswith(b"%d\n" % generation)
        # a late write from a request that read the listing before the last bump
        client.incr(f"files:ver:{alice.id}")
        client.set(f"files:list:{alice.id}", b'%d\n{"files": []}' % generation)
    listing = api.http.get("/api/storage/files", headers=alice.auth)
    assert listing.headers["X-Cache"] == "MISS"
    assert [f["id"] for f in listing.json()["files"]] == [file_id]
    again = api.http.get("/api/storage/files", headers=alice.auth)
    assert again.headers["X-Cache"] == "HIT"
    assert again.json() == listing.json()


def test_the_bytes_are_in_the_bucket_and_the_row_in_the_runbook_schema(
    api: Api, fresh_stack: Stack
) -> None:
    alice = api.user("bucket@example.com")
    file_id = api.uploaded(alice, "report.pdf", b"%PDF-1.4", "application/pdf")
    rows = sql(
        fresh_stack,
        "SELECT f.user_id::text, f.object_key, f.status, f.is_deleted, u.subscription_tier "
        "FROM storage_files f JOIN users u ON u.id = f.user_id WHERE f.id = %s",
        (file_id,),
    )
    assert len(rows) == 1
    user_id, key, status, is_deleted, tier = rows[0]
    assert (user_id, status, is_deleted, tier) == (alice.id, "stored", False, "free")
    assert key in s3_keys(fresh_stack)


def test_downloads_are_attachments_that_a_browser_will_not_run(api: Api) -> None:
    alice = api.user("download@example.com")
    payload = b"<html><script>alert(1)</script></html>"
    name = "rapport d'été; final.html"
    file_id = api.uploaded(alice, name, payload, "text/html")

    response = api.http.get(f"/api/storage/files/{file_id}/download", headers=alice.auth)
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == name

    metadata = api.http.get(f"/api/storage/files/{file_id}", headers=alice.auth).json()
    assert metadata["content_type"] == "text/html"  # stored as sent: every type is accepted


def test_a_user_never_sees_another_users_file(api: Api) -> None:
    alice = api.user("alice-iso@example.com")
    mallory = api.user("mallory@example.com")
    file_id = api.uploaded(alice, "private.txt", b"secret")
    for method, path in [
        ("GET", f"/api/storage/files/{file_id}"),
        ("GET", f"/api/storage/files/{file_id}/download"),
        ("DELETE", f"/api/storage/files/{file_id}"),
    ]:
        response = api.http.request(method, path, headers=mallory.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {"detail": "File not found"}
    shared = api.http.post(
        f"/api/storage/files/{file_id}/shares", headers=mallory.auth, json={"permission": "view"}
    )
    assert shared.status_code == 404
    assert api.http.get("/api/storage/files", headers=mallory.auth).json() == {"files": []}
    assert api.http.get(f"/api/storage/files/{file_id}", headers=alice.auth).status_code == 200


def test_a_files_routes_check_the_token_then_the_id_then_the_owner(
    api: Api, fresh_stack: Stack
) -> None:
    """Metadata and download look the caller and the file up in one query; what they
    answer, and in which order they refuse, is what two lookups answered."""
    alice = api.user("one-query@example.com")
    file_id = api.uploaded(alice, "mine.txt", b"mine")
    deleted_id = api.uploaded(alice, "gone.txt", b"gone")
    assert api.http.delete(f"/api/storage/files/{deleted_id}", headers=alice.auth).is_success
    wrong = {"Authorization": "Bearer not-a-token-of-anyone"}
    unknown = "00000000-0000-4000-8000-000000000000"
    for suffix in ("", "/download"):

        def status(path: str, headers: dict[str, str], suffix: str = suffix) -> int:
            return api.http.get(f"/api/storage/files/{path}{suffix}", headers=headers).status_code

        assert status(file_id, {}) == 401
        assert status(file_id, wrong) == 401
        assert status("not-a-uuid", wrong) == 401  # the token first, as before
        assert status("not-a-uuid", dict(alice.auth)) == 422
        assert status(unknown, dict(alice.auth)) == 404
        assert status(deleted_id, dict(alice.auth)) == 404
        assert status(file_id.upper(), dict(alice.auth)) == 200
        assert status(file_id, dict(alice.auth)) == 200
    assert api.http.get(f"/api/storage/files/{file_id}/download", headers=alice.auth).content == (
        b"mine"
    )
    downloads = [
        line
        for line in log_lines(fresh_stack, "production.log")
        if line.get("path") == f"/api/storage/files/{file_id}/download" and line["status"] == 200
    ]
    assert downloads
    assert all(line["user_id"] == alice.id for line in downloads)


def test_requests_without_a_valid_token_are_refused(api: Api) -> None:
    missing = api.http.get("/api/storage/files")
    assert missing.status_code == 401
    assert "Bearer token required" in missing.json()["detail"]
    wrong = api.http.get("/api/storage/files", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # The runbook's own line: `curl https://api.rolerabbit.com/admin/storage/stats` (no token)
    stats = api.http.get("/admin/storage/stats")
    assert stats.status_code == 401
    assert stats.json()["detail"].startswith("admin token required")
    user = api.user("not-admin@example.com")
    assert api.http.get("/admin/storage/stats", headers=user.auth).status_code == 401


def test_delete_is_soft_until_cleanup_purges_bytes_rows_and_shares(
    api: Api, fresh_stack: Stack
) -> None:
    alice = api.user("cleanup@example.com")
    keep = api.uploaded(alice, "keep.txt", b"k" * 10)
    gone = api.uploaded(alice, "gone.txt", b"g" * 100)
    share = api.share(alice, gone, permission="download")
    deleted = api.http.delete(f"/api/storage/files/{gone}", headers=alice.auth)
    assert deleted.status_code == 200
    listing = api.http.get("/api/storage/files", headers=alice.auth).json()
    assert [f["id"] for f in listing["files"]] == [keep]
    assert sql(
        fresh_stack,
        "SELECT is_deleted, deleted_at IS NOT NULL FROM storage_files WHERE id = %s",
        (gone,),
    ) == [(True, True)]
    stats = api.http.get("/admin/storage/stats", headers=api.admin).json()
    assert stats == {
        "used_bytes": 110,  # soft-deleted bytes still occupy storage
        "quota_bytes": stats["quota_bytes"],
        "files": 1,
        "deleted_files": 1,
        "deleted_bytes": 100,
        "queued_uploads": 0,
    }
    assert api.http.delete(f"/api/storage/files/{gone}", headers=alice.auth).status_code == 404

    cleanup = api.http.post("/admin/cleanup/deleted", headers=api.admin)
    assert cleanup.status_code == 200, cleanup.text
    assert cleanup.json() == {"purged_files": 1, "freed_bytes": 100}
    assert sql(fresh_stack, "SELECT count(*) FROM storage_files WHERE id = %s", (gone,)) == [(0,)]
    assert sql(fresh_stack, "SELECT count(*) FROM file_shares") == [(0,)]
    assert len(s3_keys(fresh_stack)) == 1
    assert api.http.get(str(share["url"])).json() == SHARE_INVALID
    after = api.http.get("/admin/storage/stats", headers=api.admin).json()
    assert (after["used_bytes"], after["deleted_files"]) == (10, 0)


def test_restore_brings_a_soft_deleted_file_back(api: Api) -> None:
    alice = api.user("restore@example.com")
    file_id = api.uploaded(alice, "oops.txt", b"oops")
    api.http.get("/api/storage/files", headers=alice.auth)  # cached
    assert api.http.delete(f"/api/storage/files/{file_id}", headers=alice.auth).status_code == 200
    assert api.http.get("/api/storage/files", headers=alice.auth).json() == {"files": []}
    restored = api.http.post(f"/api/storage/files/{file_id}/restore", headers=alice.auth)
    assert restored.status_code == 200
    listing = api.http.get("/api/storage/files", headers=alice.auth)
    assert listing.headers["X-Cache"] == "MISS"
    assert [f["id"] for f in listing.json()["files"]] == [file_id]


def test_cache_warm_fills_every_listing(api: Api) -> None:
    alice = api.user("warm-a@example.com")
    bob = api.user("warm-b@example.com", "pro")
    api.uploaded(alice, "a.txt", b"a")
    api.uploaded(bob, "b.txt", b"b")
    api.user("no-files@example.com")
    warm = api.http.post("/admin/cache/warm", headers=api.admin)
    assert warm.status_code == 200, warm.text
    assert warm.json() == {"warmed_users": 2}
    for user in (alice, bob):
        assert api.http.get("/api/storage/files", headers=user.auth).headers["X-Cache"] == "HIT"


# ---------------------------------------------------------------------------- upload failures


def test_the_size_limit_message_is_the_runbooks_and_failures_are_recorded(
    api: Api, fresh_stack: Stack
) -> None:
    free = api.user("free@example.com", "free")
    pro = api.user("pro@example.com", "pro")
    too_big = api.upload(free, "big.bin", b"\0" * (15 * MIB), "application/octet-stream")
    assert too_big.status_code == 413
    assert too_big.json() == {
        "detail": "File size (15MB) exceeds limit for Free plan (10MB). "
        "Upgrade to Pro for 50MB files."
    }
    just_over = api.upload(free, "edge.bin", b"\0" * (10 * MIB + 1))
    assert just_over.json()["detail"].startswith("File size (10.1MB) exceeds limit for Free plan")
    assert api.upload(pro, "big.bin", b"\0" * (15 * MIB)).status_code == 201

    # The runbook's investigation, with its column name fixed (users has `id`, not `user_id`).
    rows = sql(
        fresh_stack,
        "SELECT id::text, subscription_tier FROM users "
        "WHERE id IN (SELECT DISTINCT user_id FROM upload_failures)",
    )
    assert rows == [(free.id, "free")]
    failures = sql(
        fresh_stack, "SELECT status_code, size_bytes, file_name FROM upload_failures ORDER BY id"
    )
    assert failures == [(413, 15 * MIB, "big.bin"), (413, 10 * MIB + 1, "edge.bin")]
    # grep "upload" /var/log/api/production.log
    upload_lines = [
        line for line in log_lines(fresh_stack, "production.log") if "upload" in json.dumps(line)
    ]
    assert any("exceeds limit for Free plan" in str(line["msg"]) for line in upload_lines)


def test_every_content_type_is_accepted(api: Api) -> None:
    alice = api.user("types@example.com")
    for name, ctype in [
        ("a.exe", "application/x-msdownload"),
        ("b.svg", "image/svg+xml"),
        ("c", "application/x-made-up"),
        ("d.bin", ""),
    ]:
        response = api.upload(alice, name, b"data", ctype)
        assert response.status_code == 201, (ctype, response.text)


def test_uploads_disabled_banner_is_shared_through_the_database(api: Api) -> None:
    alice = api.user("banner@example.com")
    banner = "Storage provider outage: uploads are paused"
    put = api.http.put(
        "/admin/uploads", headers=api.admin, json={"disabled": True, "banner": banner}
    )
    assert put.status_code == 200, put.text
    assert api.http.get("/api/status").json() == {"uploads_disabled": True, "banner": banner}
    refused = api.upload(alice, "a.txt", b"a")
    assert refused.status_code == 503
    assert refused.json() == {"detail": f"Uploads are temporarily disabled: {banner}"}
    api.http.put("/admin/uploads", headers=api.admin, json={"disabled": False, "banner": ""})
    assert api.http.get("/admin/uploads", headers=api.admin).json() == {
        "disabled": False,
        "banner": "",
    }
    assert api.upload(alice, "a.txt", b"a").status_code == 201


def test_malformed_uploads_say_how_to_send_a_file(api: Api) -> None:
    alice = api.user("malformed@example.com")
    response = api.http.post("/api/storage/files/upload", headers=alice.auth, content=b"raw bytes")
    assert response.status_code == 400
    assert "curl -F file=@path" in response.json()["detail"]
    wrong_field = api.http.post(
        "/api/storage/files/upload", headers=alice.auth, files={"upload": ("a.txt", b"a")}
    )
    assert wrong_field.status_code == 400


# ---------------------------------------------------------------------------- shares


def test_a_view_share_shows_metadata_and_refuses_the_bytes(api: Api, fresh_stack: Stack) -> None:
    alice = api.user("view@example.com")
    file_id = api.uploaded(alice, "cv.pdf", b"%PDF", "application/pdf")
    share = api.share(alice, file_id, permission="view")
    token = str(share["token"])
    assert share["url"] == f"/share/{token}"
    assert len(token) >= 32  # >= 192 random bits, url-safe
    view = api.http.get(f"/share/{token}")
    assert view.status_code == 200
    body = view.json()
    assert (body["name"], body["size_bytes"], body["content_type"]) == (
        "cv.pdf",
        4,
        "application/pdf",
    )
    denied = api.http.get(f"/share/{token}/download")
    assert denied.status_code == 403
    assert denied.json() == {"detail": "Access denied"}
    assert sql(
        fresh_stack, "SELECT download_count FROM file_shares WHERE token = %s", (token,)
    ) == [(0,)]


def test_unknown_share_tokens_use_the_runbook_wording(api: Api) -> None:
    response = api.http.get("/share/abc123xyz")
    assert response.status_code == 404
    assert response.json() == SHARE_INVALID


def test_download_limit_holds_under_concurrency_and_the_runbook_fix_works(
    api: Api, fresh_stack: Stack
) -> None:
    alice = api.user("limit@example.com")
    file_id = api.uploaded(alice, "hot.txt", b"popular")
    token = str(api.share(alice, file_id, permission="download", max_downloads=3)["token"])
    statuses: list[int] = []
    lock = threading.Lock()

    def fetch() -> None:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            response = client.get(f"/share/{token}")
        with lock:
            statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.content == b"popular"
            assert response.headers["Content-Disposition"].startswith("attachment")
        else:
            assert response.json() == SHARE_INVALID

    threads = [threading.Thread(target=fetch) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 3 + [404] * 9
    assert sql(
        fresh_stack, "SELECT download_count FROM file_shares WHERE token = %s", (token,)
    ) == [(3,)]

    # Runbook, "Download Limit Reached": increase limit.
    sql(
        fresh_stack,
        "UPDATE file_shares SET max_downloads = max_downloads + 10 WHERE token = %s",
        (token,),
    )
    assert api.http.get(f"/share/{token}/download").status_code == 200


def test_an_expired_share_is_invalid_until_the_runbook_extends_it(
    api: Api, fresh_stack: Stack
) -> None:
    alice = api.user("expiry@example.com")
    file_id = api.uploaded(alice, "soon.txt", b"soon")
    share = api.share(alice, file_id, permission="download", expires_in_s=3600)
    token = str(share["token"])
    assert share["expires_at"] is not None
    sql(
        fresh_stack,
        "UPDATE file_shares SET expires_at = now() - interval '1 day' WHERE token = %s",
        (token,),
    )
    assert api.http.get(f"/share/{token}").json() == SHARE_INVALID
    # Runbook, "Share Expired": extend expiration by 7 days.
    sql(
        fresh_stack,
        "UPDATE file_shares SET expires_at = expires_at + INTERVAL '7 days' WHERE token = %s",
        (token,),
    )
    assert api.http.get(f"/share/{token}").content == b"soon"


def test_a_share_of_a_deleted_file_is_invalid_until_the_runbook_restores_it(
    api: Api, fresh_stack: Stack
) -> None:
    alice = api.user("deleted-share@example.com")
    file_id = api.uploaded(alice, "doc.txt", b"doc")
    token = str(api.share(alice, file_id, permission="view")["token"])
    api.http.delete(f"/api/storage/files/{file_id}", headers=alice.auth)
    assert api.http.get(f"/share/{token}").json() == SHARE_INVALID
    # Runbook, "File Deleted": restore file.
    sql(
        fresh_stack,
        "UPDATE storage_files SET is_deleted = false, deleted_at = NULL WHERE id = %s",
        (file_id,),
    )
    assert api.http.get(f"/share/{token}").json()["name"] == "doc.txt"


# ---------------------------------------------------------------------------- logs


def test_logs_are_json_lines_without_secrets(api: Api, fresh_stack: Stack) -> None:
    alice = api.user("logs@example.com")
    file_id = api.uploaded(alice, "log.txt", b"x")
    token = str(api.share(alice, file_id, permission="view")["token"])
    api.http.get(f"/share/{token}")
    api.http.get("/api/storage/files", headers={"Authorization": "Bearer wrong-token-value"})
    lines = log_lines(fresh_stack, "production.log")
    requests = [line for line in lines if "route" in line]
    assert requests
    for line in requests:
        for key in (
            "ts",
            "level",
            "method",
            "path",
            "route",
            "status",
            "duration_ms",
            "request_id",
            "user_id",
            "msg",
        ):
            assert key in line, (key, line)
    assert any(line["user_id"] == alice.id for line in requests)
    text = (fresh_stack.endpoints.log_dir / "production.log").read_text(encoding="utf-8")
    for secret in (alice.token, fresh_stack.endpoints.admin_token, token, "wrong-token-value"):
        assert secret not in text


# ---------------------------------------------------------------------------- settings


def test_quota_507_counts_soft_deleted_files_until_cleanup(reconfigured: Stack) -> None:
    api = restart_with(reconfigured, STORAGE_QUOTA_BYTES="1000")
    try:
        alice = api.user("quota@example.com")
        first = api.uploaded(alice, "a.bin", b"a" * 600)
        full = api.upload(alice, "b.bin", b"b" * 600)
        assert full.status_code == 507
        assert full.json()["detail"].startswith("Storage quota exceeded: used 600 of 1000 bytes")
        api.http.delete(f"/api/storage/files/{first}", headers=alice.auth)
        assert api.upload(alice, "b.bin", b"b" * 600).status_code == 507  # not purged yet
        assert api.http.post("/admin/cleanup/deleted", headers=api.admin).json() == {
            "purged_files": 1,
            "freed_bytes": 600,
        }
        assert api.upload(alice, "b.bin", b"b" * 600).status_code == 201
        codes = sql(reconfigured, "SELECT status_code FROM upload_failures ORDER BY id")
        assert codes == [(507,), (507,)]
    finally:
        api.close()


def test_a_body_slower_than_the_upload_timeout_gets_408(reconfigured: Stack) -> None:
    api = restart_with(reconfigured, UPLOAD_TIMEOUT_S="1")
    try:
        alice = api.user("slow@example.com")
        parts = urlsplit(api.url)
        boundary = "slowboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="slow.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        request = (
            (
                f"POST /api/storage/files/upload HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Authorization: Bearer {alice.token}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + 1_000_000}\r\n\r\n"
            ).encode()
            + head
            + b"x" * 1000
        )
        with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
            sock.sendall(request)  # ... and then the client stalls
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        assert b" 408 " in status_line, answer[:300]
        detail = json.loads(rest.split(b"\r\n\r\n", 1)[1])["detail"]
        assert "UPLOAD_TIMEOUT_S" in detail
        assert sql(reconfigured, "SELECT status_code, user_id::text FROM upload_failures") == [
            (408, alice.id)
        ]
    finally:
        api.close()


@pytest.mark.needs(Capability.RECONFIGURE)
def test_an_exhausted_pool_answers_503_naming_the_pool(reconfigured: Stack) -> None:
    api = restart_with(reconfigured, DB_POOL_SIZE="2", DB_POOL_TIMEOUT_S="1")
    locker = psycopg.connect(reconfigured.endpoints.database_url, connect_timeout=5)
    threads: list[threading.Thread] = []
    try:
        alice = api.user("pool@example.com")
        file_id = api.uploaded(alice, "p.txt", b"p")
        locker.execute(b"LOCK TABLE storage_files IN ACCESS EXCLUSIVE MODE")
        blocked: list[int] = []

        def list_files() -> None:  # holds a pooled connection while the table is locked
            with httpx.Client(base_url=api.url, timeout=60) as client:
                blocked.append(client.get("/api/storage/files", headers=alice.auth).status_code)

        threads = [threading.Thread(target=list_files) for _ in range(2)]
        for thread in threads:
            thread.start()

        def both_blocked() -> bool:  # the runbook's own view: pg_stat_activity
            waiting = sql(
                reconfigured,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%%FROM storage_files%%'",
            )
            return waiting == [(2,)]

        wait_until(both_blocked, what="both pooled connections to wait on the lock", timeout_s=10)
        before = metric(api.metrics(), "db_pool_timeouts_total")
        response = api.http.get(f"/api/storage/files/{file_id}", headers=alice.auth)
        assert response.status_code == 503
        assert response.json() == {
            "detail": "Database connection pool exhausted: 2 of 2 connections in use, waited 1.0s"
        }
        # At least this request (a /health probe of the stack may time out meanwhile too).
        assert metric(api.metrics(), "db_pool_timeouts_total") >= before + 1
        errors = [line for line in log_lines(reconfigured, "error.log") if line.get("status")]
        assert any("pool exhausted" in str(line["msg"]) for line in errors)
    finally:
        locker.rollback()
        locker.close()
        for thread in threads:
            thread.join()
        api.close()
    assert blocked == [200, 200]  # they finished once the lock was released


# ---------------------------------------------------------------------------- dependencies


@pytest.mark.needs(Capability.KILL)
def test_database_down_answers_503_with_the_errno_and_recovers(
    api: Api, fresh_stack: Stack
) -> None:
    alice = api.user("dbdown@example.com")
    keys_before = s3_keys(fresh_stack)
    postgres = fresh_stack.component("postgres")
    postgres.kill()
    try:
        # A request caught mid-query may first see the server's own goodbye
        # (AdminShutdown), and the first connection through the stack's fault proxy is
        # accepted and then closed (ECONNRESET); from then on the proxy mirrors its
        # upstream's refusal, so every request names what a killed server gives: ECONNREFUSED.
        def refused() -> bool:
            listing = api.http.get("/api/storage/files", headers=alice.auth)
            assert listing.status_code == 503, listing.text
            detail = listing.json()["detail"]
            assert detail.startswith("Database unavailable: "), detail
            return detail.startswith("Database unavailable: ECONNREFUSED (")

        wait_until(refused, what="ECONNREFUSED named in the 503", timeout_s=10)
        errno = "ECONNREFUSED"
        upload = api.upload(alice, "lost.txt", b"never acknowledged")
        assert upload.status_code == 503  # not acknowledged, so nothing may be kept

        # /health names the latest failed connection attempt. One the proxy accepted
        # just before it began refusing (a reset) can be counted after a refusal: the
        # pool's next attempts are refused, so ECONNREFUSED is named again within moments.
        def health_names_the_refusal() -> bool:
            health = api.http.get("/health")
            assert health.status_code == 503
            assert health.json()["failed"] == ["database"]
            error = health.json()["checks"]["database"]["error"]
            assert error.startswith(("ECONNREFUSED", "ECONNRESET")), error
            return errno in error

        wait_until(health_names_the_refusal, what="ECONNREFUSED named by /health", timeout_s=10)
        # tail -100 /var/log/api/error.log
        assert any(line.get("errno") == errno for line in log_lines(fresh_stack, "error.log"))
    finally:
        postgres.start()
    wait_healthy(fresh_stack)
    assert api.http.get("/api/storage/files", headers=alice.auth).status_code == 200
    assert s3_keys(fresh_stack) == keys_before


@pytest.mark.needs(Capability.PAUSE)
def test_storage_outage_queues_uploads_durably_and_stores_them_later(
    api: Api, fresh_stack: Stack
) -> None:
    alice = api.user("queue@example.com")
    data = b"acknowledged while storage was down"
    store = fresh_stack.component("object_store")
    store.pause()
    try:
        response = api.upload(alice, "queued.txt", data)
        assert response.status_code == 202, response.text
        queued = response.json()
        assert queued["status"] == "queued"
        # Readable while queued (served from the spool).
        download = api.http.get(f"/api/storage/files/{queued['id']}/download", headers=alice.auth)
        assert download.content == data
        stats = api.http.get("/admin/storage/stats", headers=api.admin).json()
        assert stats["queued_uploads"] == 1
        assert metric(api.metrics(), "upload_queue_depth") == 1
        health = api.http.get("/health")
        assert health.status_code == 503
        assert health.json()["failed"] == ["storage"]
    finally:
        store.resume()

    def stored() -> bool:
        meta = api.http.get(f"/api/storage/files/{queued['id']}", headers=alice.auth).json()
        return bool(meta["status"] == "stored")

    wait_until(stored, what="the queued upload to reach storage", timeout_s=30, interval_s=0.2)
    assert any(key.endswith(str(queued["id"])) for key in s3_keys(fresh_stack))
    download = api.http.get(f"/api/storage/files/{queued['id']}/download", headers=alice.auth)
    assert download.content == data
    assert metric(api.metrics(), "upload_queue_depth") == 0


@pytest.mark.needs(Capability.STOP)
def test_cache_outage_degrades_listings_to_the_database(api: Api, fresh_stack: Stack) -> None:
    alice = api.user("nocache@example.com")
    api.uploaded(alice, "a.txt", b"a")
    redis = fresh_stack.component("redis")
    redis.stop()
    try:
        before = metric(api.metrics(), "cache_errors_total")
        listing = api.http.get("/api/storage/files", headers=alice.auth)
        assert listing.status_code == 200
        assert listing.headers["X-Cache"] == "MISS"
        assert len(listing.json()["files"]) == 1
        assert metric(api.metrics(), "cache_errors_total") > before
        health = api.http.get("/health")
        assert health.status_code == 503
        assert health.json()["failed"] == ["cache"]
    finally:
        redis.start()
    wait_healthy(fresh_stack)


@pytest.mark.needs(Capability.STOP, Capability.RESTART)
def test_the_api_starts_and_answers_health_while_its_dependencies_are_down(
    fresh_stack: Stack,
) -> None:
    names = ("postgres", "object_store", "redis")
    for name in names:
        fresh_stack.component(name).stop()
    try:
        fresh_stack.restart_api()
        health = httpx.get(f"{fresh_stack.endpoints.api_url}/health", timeout=5)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "fail"
        assert body["failed"] == ["database", "storage", "cache"]
        for name in body["failed"]:
            assert re.match(r"^E[A-Z]+: ", body["checks"][name]["error"]), body["checks"][name]
    finally:
        for name in names:
            fresh_stack.component(name).start()
    wait_healthy(fresh_stack)  # the bucket is created and the cache reached on first success
