"""Storage, data, client, cache, deploy and traffic faults against the real stack.

Each test injects one fault, proves its effect with a check of its own (an HTTP answer,
a row, an object, a process), reverts it, and proves the effect gone and the stack as it
was (settings, rows, health). Tests start from `fresh_stack` (data reset).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError

from files_profile import FilesClient, User
from runbook_checks.clock import wait_until
from runbook_checks.faults.cache import ColdCache, RedisDown
from runbook_checks.faults.client import OversizedUpload, SlowClientUpload, UnusualUploads
from runbook_checks.faults.data import (
    FilePurged,
    FileSoftDeleted,
    ShareDownloadLimitReached,
    ShareExpired,
    s3_client,
)
from runbook_checks.faults.deploy import BadRelease, api_settings, rollback
from runbook_checks.faults.storage import StorageOutage, StorageQuotaExceeded
from runbook_checks.faults.traffic import LoadIncrease
from runbook_checks.stack.base import Stack

pytestmark = pytest.mark.integration

SHARE_INVALID = "Share link expired or invalid"
OVERSIZED_MESSAGE = (
    "File size (15MB) exceeds limit for Free plan (10MB). Upgrade to Pro for 50MB files."
)


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def client(fresh_stack: Stack) -> Iterator[FilesClient]:
    with FilesClient(
        fresh_stack.endpoints.api_url, fresh_stack.endpoints.admin_token, timeout_s=30
    ) as files:
        yield files


@pytest.fixture
def owner(client: FilesClient) -> User:
    return client.create_user("owner@drill.test")


def upload(
    client: FilesClient,
    user: User,
    name: str = "report.txt",
    content: bytes = b"quarterly numbers\n",
) -> str:
    result = client.upload(user, name, content, "text/plain")
    assert result.status_code == 201, result.body
    assert result.file_id is not None
    return result.file_id


def sql(stack: Stack, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(stack.endpoints.database_url, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(query.encode(), params or None)  # no params: '%' is literal
        return cur.fetchall() if cur.description else []


def detail(response: httpx.Response) -> object:
    return response.json().get("detail")


def health(stack: Stack, url: str | None = None) -> int:
    """GET /health's status; 0 when nothing answers."""
    try:
        return httpx.get(f"{url or stack.endpoints.api_url}/health", timeout=3).status_code
    except httpx.HTTPError:
        return 0


def failed_checks(stack: Stack) -> list[str]:
    response = httpx.get(f"{stack.endpoints.api_url}/health", timeout=5)
    return list(response.json().get("failed", []))


def healthy_again(stack: Stack) -> None:
    wait_until(lambda: health(stack) == 200, what="/health to answer 200 again", timeout_s=30)


# ---------------------------------------------------------------------------- share links


@pytest.mark.parametrize(("preset", "runbook_fix_works"), [("recently", True), ("long_ago", False)])
def test_an_expired_share_is_invalid_and_the_runbooks_7_day_fix_depends_on_when(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
    preset: str,
    runbook_fix_works: bool,
) -> None:
    token = client.share(owner, upload(client, owner), permission="view", expires_in_s=3600)
    (expires_before,) = sql(
        fresh_stack, "SELECT expires_at FROM file_shares WHERE token = %s", token
    )[0]
    fault = ShareExpired.recently(token) if preset == "recently" else ShareExpired.long_ago(token)
    with fault.inject(fresh_stack):
        answer = client.open_share(token)
        assert (answer.status_code, detail(answer)) == (404, SHARE_INVALID)
        # the runbook's fix, as written: "SET expires_at = expires_at + INTERVAL '7 days'"
        sql(
            fresh_stack,
            "UPDATE file_shares SET expires_at = expires_at + INTERVAL '7 days' WHERE token = %s",
            token,
        )
        assert (client.open_share(token).status_code == 200) is runbook_fix_works
    assert sql(fresh_stack, "SELECT expires_at FROM file_shares WHERE token = %s", token) == [
        (expires_before,)
    ]
    assert client.open_share(token).status_code == 200


def test_a_used_up_share_is_invalid_until_reverted_to_its_exact_counts(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
) -> None:
    token = client.share(owner, upload(client, owner))  # no limit
    assert client.open_share(token).status_code == 200  # one download counted
    query = "SELECT max_downloads, download_count FROM file_shares WHERE token = %s"
    assert sql(fresh_stack, query, token) == [(None, 1)]
    handle = ShareDownloadLimitReached(token).inject(fresh_stack)
    assert sql(fresh_stack, query, token) == [(1, 1)]
    answer = client.open_share(token)
    assert (answer.status_code, detail(answer)) == (404, SHARE_INVALID)
    handle.revert()
    handle.revert()
    assert sql(fresh_stack, query, token) == [(None, 1)]
    assert client.open_share(token).content == b"quarterly numbers\n"


# ---------------------------------------------------------------------------- files


def test_a_soft_deleted_file_leaves_listings_and_shares_until_reverted(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
) -> None:
    file_id = upload(client, owner)
    token = client.share(owner, file_id, permission="view")
    assert client.list_files(owner).headers["X-Cache"] == "MISS"
    assert client.list_files(owner).headers["X-Cache"] == "HIT"  # cached before the fault
    query = "SELECT is_deleted, deleted_at, updated_at FROM storage_files WHERE id = %s"
    (before,) = sql(fresh_stack, query, file_id)
    with FileSoftDeleted(file_id).inject(fresh_stack):
        assert sql(fresh_stack, query, file_id)[0][:1] == (True,)
        listing = client.list_files(owner)
        assert listing.json()["files"] == []  # the cached listing was invalidated
        assert (
            client.http.get(f"/api/storage/files/{file_id}", headers=owner.auth).status_code == 404
        )
        assert detail(client.open_share(token)) == SHARE_INVALID
    assert sql(fresh_stack, query, file_id) == [before]
    assert [f["id"] for f in client.list_files(owner).json()["files"]] == [file_id]
    assert client.open_share(token).status_code == 200


def test_a_purged_file_loses_object_row_and_shares_and_revert_restores_them_exactly(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
) -> None:
    file_id = upload(client, owner, content=b"irreplaceable\n")
    token = client.share(owner, file_id, max_downloads=5)
    bucket, s3 = fresh_stack.endpoints.s3_bucket, s3_client(fresh_stack)
    (key,) = sql(fresh_stack, "SELECT object_key FROM storage_files WHERE id = %s", file_id)[0]
    file_row = sql(fresh_stack, "SELECT * FROM storage_files WHERE id = %s", file_id)
    share_rows = sql(fresh_stack, "SELECT * FROM file_shares WHERE file_id = %s", file_id)
    with FilePurged(file_id).inject(fresh_stack):
        assert sql(fresh_stack, "SELECT * FROM storage_files WHERE id = %s", file_id) == []
        assert sql(fresh_stack, "SELECT * FROM file_shares WHERE file_id = %s", file_id) == []
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key=str(key))
        assert client.download(owner, file_id).status_code == 404
        assert detail(client.open_share(token)) == SHARE_INVALID
    assert sql(fresh_stack, "SELECT * FROM storage_files WHERE id = %s", file_id) == file_row
    assert sql(fresh_stack, "SELECT * FROM file_shares WHERE file_id = %s", file_id) == share_rows
    assert client.download(owner, file_id).content == b"irreplaceable\n"
    assert client.open_share(token).content == b"irreplaceable\n"


# ---------------------------------------------------------------------------- storage


@pytest.mark.parametrize("mode", ["down", "blackhole"])
def test_a_storage_outage_fails_the_storage_check_and_queues_uploads(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
    mode: str,
) -> None:
    kept = upload(client, owner, "kept.txt", b"kept\n")
    with StorageOutage(mode).inject(fresh_stack):  # type: ignore[arg-type]
        wait_until(
            lambda: "storage" in failed_checks(fresh_stack),
            what="/health to report storage failed",
            timeout_s=20,
        )
        during = client.upload(owner, "during.txt", b"during\n")
        assert during.status_code == 202  # queued
        assert during.file_id is not None
        assert s3_client(fresh_stack).head_bucket(Bucket=fresh_stack.endpoints.s3_bucket)
    healthy_again(fresh_stack)
    assert client.upload(owner, "after.txt", b"after\n").status_code == 201
    assert client.download(owner, kept).content == b"kept\n"  # nothing was lost
    wait_until(  # nor the queued one: its worker stores it once storage is back
        lambda: (
            sql(fresh_stack, "SELECT status FROM storage_files WHERE id = %s", during.file_id)
            == [("stored",)]
        ),
        what="the upload queued during the outage stored",
        timeout_s=20,
    )
    assert client.download(owner, during.file_id).content == b"during\n"


def test_killing_the_object_store_loses_its_objects_and_revert_recreates_the_bucket(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
) -> None:
    lost = upload(client, owner, "lost.txt", b"lost\n")
    with StorageOutage("kill").inject(fresh_stack) as handle:
        assert not fresh_stack.component("object_store").is_running()
        wait_until(
            lambda: "storage" in failed_checks(fresh_stack),
            what="/health to report storage failed",
            timeout_s=20,
        )
    assert any("1 object(s) before the kill; they are lost" in n for n in handle.notes)
    healthy_again(fresh_stack)
    s3_client(fresh_stack).head_bucket(Bucket=fresh_stack.endpoints.s3_bucket)
    assert client.upload(owner, "after.txt", b"after\n").status_code == 201
    assert client.download(owner, lost).status_code != 200  # moto kept it in memory only


def test_a_full_quota_answers_507_until_cleanup_and_revert_restores_the_setting(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
) -> None:
    upload(client, owner)
    quota_before = api_settings(fresh_stack).get("STORAGE_QUOTA_BYTES")
    stats_before = client.http.get("/admin/storage/stats", headers=client.admin).json()
    with StorageQuotaExceeded(fill_kb=128, file_kb=32).inject(fresh_stack):
        refused = client.upload(owner, "more.txt", b"x" * 1000)
        assert refused.status_code == 507
        assert "Storage quota exceeded" in refused.body
        stats = client.http.get("/admin/storage/stats", headers=client.admin).json()
        assert stats["used_bytes"] == stats["quota_bytes"]
        assert stats["deleted_bytes"] == 2 * 32 * 1024
        # the runbook's mitigation: clean up deleted files
        cleanup = client.http.post("/admin/cleanup/deleted", headers=client.admin).json()
        assert cleanup == {"purged_files": 2, "freed_bytes": 2 * 32 * 1024}
        assert client.upload(owner, "more.txt", b"x" * 1000).status_code == 201
    assert api_settings(fresh_stack).get("STORAGE_QUOTA_BYTES") == quota_before
    stats_after = client.http.get("/admin/storage/stats", headers=client.admin).json()
    assert stats_after["quota_bytes"] == stats_before["quota_bytes"]
    assert sql(fresh_stack, "SELECT count(*) FROM users WHERE email LIKE 'storage-quota%'") == [
        (0,)
    ]
    assert client.upload(owner, "after.txt", b"x" * 1000).status_code == 201


# ---------------------------------------------------------------------------- clients


def test_an_oversized_upload_gets_the_runbooks_413_and_is_recorded(fresh_stack: Stack) -> None:
    with OversizedUpload(tier="free", size_mb=15).inject(fresh_stack) as handle:
        (observed,) = handle.responses
        assert (observed.status_code, observed.detail) == (413, OVERSIZED_MESSAGE)
        failures = sql(
            fresh_stack,
            "SELECT f.status_code, u.subscription_tier FROM "
            "upload_failures f JOIN users u ON u.id = f.user_id",
        )
        assert failures == [(413, "free")]
    assert sql(fresh_stack, "SELECT count(*) FROM upload_failures") == [(0,)]
    assert sql(fresh_stack, "SELECT count(*) FROM users") == [(0,)]


def test_unusual_uploads_are_all_answered_and_revert_removes_what_was_stored(
    fresh_stack: Stack,
) -> None:
    with UnusualUploads().inject(fresh_stack) as handle:
        answers = {r.case: r for r in handle.responses}
        assert len(answers) == len(UnusualUploads().selected)
        assert all(r.status_code is not None and r.status_code < 500 for r in answers.values())
        traversal = answers["path traversal"]
        assert traversal.acknowledged
        assert traversal.stored_name is not None
        assert "/" not in traversal.stored_name
        stored = {str(r[0]) for r in sql(fresh_stack, "SELECT id FROM storage_files")}
        assert stored == {r.file_id for r in answers.values() if r.acknowledged}
        keys = {str(r[0]) for r in sql(fresh_stack, "SELECT object_key FROM storage_files")}
    assert sql(fresh_stack, "SELECT count(*) FROM storage_files") == [(0,)]
    listing = s3_client(fresh_stack).list_objects_v2(Bucket=fresh_stack.endpoints.s3_bucket)
    assert not keys & {o["Key"] for o in listing.get("Contents", [])}


def test_a_slow_upload_gets_408_and_revert_restores_the_upload_timeout(
    fresh_stack: Stack,
) -> None:
    timeout_before = api_settings(fresh_stack).get("UPLOAD_TIMEOUT_S")
    fault = SlowClientUpload(size_mb=1, rate_kbps=50, upload_timeout_s=1)
    with fault.inject(fresh_stack) as handle:
        assert api_settings(fresh_stack)["UPLOAD_TIMEOUT_S"] == "1"
        (observed,) = handle.wait_for_responses(1, timeout_s=60)
        assert observed.status_code == 408, observed
        assert observed.detail is not None
        assert "UPLOAD_TIMEOUT_S" in observed.detail
        assert observed.sent_bytes is not None
        assert observed.sent_bytes < fault.size_bytes
        assert sql(fresh_stack, "SELECT status_code FROM upload_failures") == [(408,)]
    assert api_settings(fresh_stack).get("UPLOAD_TIMEOUT_S") == timeout_before
    healthy_again(fresh_stack)


# ---------------------------------------------------------------------------- cache


def test_a_cold_cache_turns_hits_into_misses(
    fresh_stack: Stack, client: FilesClient, owner: User
) -> None:
    upload(client, owner)
    client.list_files(owner)
    assert client.list_files(owner).headers["X-Cache"] == "HIT"
    with ColdCache().inject(fresh_stack) as handle:
        assert handle.notes[0].startswith("flushed ")
        assert client.list_files(owner).headers["X-Cache"] == "MISS"
    assert client.list_files(owner).headers["X-Cache"] == "HIT"  # refilled by the read


@pytest.mark.parametrize("mode", ["kill", "network"])
def test_redis_down_fails_the_cache_check_and_listings_degrade(
    fresh_stack: Stack,
    client: FilesClient,
    owner: User,
    mode: str,
) -> None:
    file_id = upload(client, owner)
    with RedisDown(mode).inject(fresh_stack):  # type: ignore[arg-type]
        wait_until(
            lambda: "cache" in failed_checks(fresh_stack),
            what="/health to report the cache failed",
            timeout_s=20,
        )
        listing = client.list_files(owner)
        assert listing.status_code == 200
        assert [f["id"] for f in listing.json()["files"]] == [file_id]
        assert "X-Cache-Error" in listing.headers
    assert fresh_stack.component("redis").is_ready()
    healthy_again(fresh_stack)


# ---------------------------------------------------------------------------- deploys


def test_a_crashing_release_takes_the_api_down_until_rolled_back(fresh_stack: Stack) -> None:
    before = api_settings(fresh_stack)
    with BadRelease(breakage="crash").inject(fresh_stack) as handle:
        api = fresh_stack.component("api")
        assert not api.is_running()
        assert "bad configuration: S3_ENDPOINT_URL" in api.log_tail(20)
        assert health(fresh_stack) != 200
        assert any("the API exited at start" in n for n in handle.notes)
        done = rollback(fresh_stack)
        assert "rolled back release 2024.01.15-bad" in done
        healthy_again(fresh_stack)
    assert api_settings(fresh_stack) == before


@pytest.mark.parametrize("breakage", ["db-url", "db-password"])
def test_a_release_with_a_broken_database_url_fails_every_request(
    fresh_stack: Stack,
    client: FilesClient,
    breakage: str,
) -> None:
    before = api_settings(fresh_stack)
    with BadRelease(breakage=breakage).inject(fresh_stack):
        assert health(fresh_stack) == 503
        assert "database" in failed_checks(fresh_stack)
        answer = client.http.post(
            "/admin/users", headers=client.admin, json={"email": "x@drill.test"}
        )
        assert answer.status_code == 503
        body = httpx.get(f"{fresh_stack.endpoints.api_url}/health", timeout=5).json()
        assert body["release"] == "2024.01.15-bad"
    assert api_settings(fresh_stack) == before
    healthy_again(fresh_stack)


# ---------------------------------------------------------------------------- traffic


def test_a_load_increase_counts_answers_and_revert_removes_its_users(
    fresh_stack: Stack,
) -> None:
    pool_before = api_settings(fresh_stack).get("DB_POOL_SIZE")
    fault = LoadIncrease(users=6, duration_s=2, pattern="mixed", db_pool_size=2)
    with fault.inject(fresh_stack) as handle:
        assert api_settings(fresh_stack)["DB_POOL_SIZE"] == "2"
        stats = handle.wait_finished(timeout_s=30)
        assert stats.requests > 6
        assert sum(stats.by_status.values()) == stats.requests
        assert stats.by_operation.get("upload", 0) > 0
        assert stats.p50_ms is not None
        assert stats.p95_ms is not None
        assert stats.p50_ms <= stats.p95_ms
        (users,) = sql(fresh_stack, "SELECT count(*) FROM users WHERE email LIKE 'load-%'")[0]
        assert users == 6
    assert sql(fresh_stack, "SELECT count(*) FROM users") == [(0,)]
    assert sql(fresh_stack, "SELECT count(*) FROM storage_files") == [(0,)]
    assert api_settings(fresh_stack).get("DB_POOL_SIZE") == pool_before
    healthy_again(fresh_stack)


def test_max_connections_holds_against_a_reconnecting_api(fresh_stack: Stack) -> None:
    """Every slot taken, the API's own sessions cut: it cannot get back in until revert."""
    from runbook_checks.faults.database import MaxConnections

    url = f"{fresh_stack.endpoints.api_url}/health"
    with MaxConnections().inject(fresh_stack):
        for _ in range(3):  # not a blip: it stays out
            answer = httpx.get(url, timeout=5)
            assert answer.status_code == 503, answer.text
            assert "database" in answer.json()["failed"]
    wait_until(
        lambda: httpx.get(url, timeout=5).status_code == 200,
        what="/health back after revert",
        timeout_s=30,
        transient=(httpx.HTTPError,),
    )


# ------------------------------------------------------------------------ missing index


def test_missing_index_reverts_to_exactly_the_index_it_dropped(fresh_stack: Stack) -> None:
    """A mitigation that creates an index under the same name on the wrong column (as a
    mutated runbook does) is undone too: the next drill finds the original index."""
    from runbook_checks.faults.database import MissingIndex

    definition = "SELECT pg_get_indexdef(to_regclass('idx_storage_files_user_id'))"
    before = sql(fresh_stack, definition)
    assert before[0][0] is not None
    handle = MissingIndex(rows=100, users=5).inject(fresh_stack)
    try:
        assert sql(fresh_stack, definition) == [(None,)]
        sql(fresh_stack, "CREATE INDEX idx_storage_files_user_id ON storage_files (name)")
    finally:
        handle.revert()
    assert sql(fresh_stack, definition) == before


def test_a_long_running_query_is_older_than_every_write_it_blocks(fresh_stack: Stack) -> None:
    """The runbook's query 3 (`ORDER BY duration DESC`) must list the culprit first: the
    session holding the lock is active from a while before it asks for the lock, so each
    write queued behind it started later, even one whose statement began before the lock
    was asked for and asked for its own lock after (on a starved CPU, the moment between
    a statement's start and its lock; here a statement that sleeps 0.1 s first)."""
    import threading

    from runbook_checks.faults.database import LongRunningQuery

    admin = fresh_stack.endpoints.admin_database_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE TABLE lrq_probe (x int)")
        conn.execute("GRANT ALL ON lrq_probe TO PUBLIC")  # the fault's session: the app's role
    stop = threading.Event()
    statements = {
        "quick": "INSERT INTO lrq_probe VALUES (1)",
        # in flight most of the time: older than the LOCK, which waits for it to end
        "long": "INSERT INTO lrq_probe SELECT 1 FROM pg_sleep(0.3)",
        # begins 0.1 s before it asks for its lock (one string: one query_start)
        "late": "SELECT pg_sleep(0.1); INSERT INTO lrq_probe VALUES (1)",
    }

    def write(statement: str) -> None:  # writes all the time, until the test ends
        with psycopg.connect(admin, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute(statement.encode())  # bytes, no parameters: one simple query
                except psycopg.Error:
                    return

    shapes = ["long", "late", "late", *["quick"] * 5]
    writers = [
        threading.Thread(target=write, args=(statements[shape],), daemon=True) for shape in shapes
    ]
    for writer in writers:
        writer.start()
    handle = LongRunningQuery(table="lrq_probe", duration_s=60).inject(fresh_stack)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            # the 8 writers themselves: the LOCK also waits on Lock while a write that
            # began before it is still in flight (older than it, and blocked by nothing)
            wait_until(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%INSERT INTO lrq_probe%'"
                    ).fetchone()
                    == (8,)
                ),
                what="the 8 writers to queue behind the lock",
                timeout_s=10,
            )
            rows = conn.execute(
                "SELECT query FROM pg_stat_activity WHERE state = 'active' "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "ORDER BY now() - query_start DESC"
            ).fetchall()
    finally:
        handle.revert()
        stop.set()
        for writer in writers:
            writer.join(timeout=10)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS lrq_probe")
    assert "LOCK TABLE" in str(rows[0][0]), rows  # the culprit, then its queue
