"""SEV-1: Storage System Failure — the runbook's two causes: a Supabase outage (the object
store out of the API's reach) and the storage quota exceeded.

Supabase's status page is the one true outside edge here: drill/provider.py answers
https://status.supabase.com/api/v2/status.json in-process (`DrillContext.edges`), and
what it reports is measured, not scripted: the object store probed on the API's own
network path, as the provider's monitoring would see it.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import cast

import httpx
import pytest

from files_profile import User
from runbook_checks.clock import wait_until
from runbook_checks.drill.detect import any_of
from runbook_checks.drill.fixture import DrillFixture
from runbook_checks.drill.provider import ProviderStatusPage
from runbook_checks.drill.result import Actor
from runbook_checks.drill.runner import DrillContext, health_and_canary
from runbook_checks.drill.spec import Action, Detector, Scenario, reads
from runbook_checks.faults.data import s3_client
from runbook_checks.faults.storage import StorageOutage, StorageQuotaExceeded, stored_bytes
from runbook_checks.findings import Level
from runbook_checks.gate.curl_check import MISSING_AUTH
from runbook_checks.runbook.model import Step, StepKind
from runbook_checks.stack.accounts import admin_connect
from runbook_checks.steps.base import StepResult

SECTION = "SEV-1: Storage System Failure"
STATUS_HOST = "status.supabase.com"
BANNER = "Uploads are paused while our storage provider recovers; downloads still work."
UPLOAD_PATH = "/api/storage/files/upload"


def _status_page_and_token(ctx: DrillContext) -> None:
    ctx.edges[STATUS_HOST] = ProviderStatusPage(ctx.stack, STATUS_HOST, "Supabase").transport()
    ctx.values["TOKEN"] = ctx.user.token  # the runbook's test upload, as a real user


# -- detectors: what the runbook's investigation shows ---------------------------------


@reads(rf"^curl\b.*{STATUS_HOST.replace('.', '[.]')}")
def status_page_outage(result: StepResult, ctx: DrillContext) -> str | None:
    if not isinstance(result.data, dict):
        return None
    status = result.data.get("status")
    if isinstance(status, dict) and status.get("indicator") in ("major", "critical"):
        return f"the status page reports {status.get('indicator')}: {status.get('description')}"
    return None


def upload_answered(statuses: set[int], what: str) -> Detector:
    @reads(rf"^curl\b.*{UPLOAD_PATH}", name=f"upload_answered({sorted(statuses)})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        if result.http_status not in statuses:
            return None
        return f"the test upload answered {result.http_status} ({what}): {result.output[:160]}"

    return detect


@reads(r"^curl\b.*/admin/")
def admin_route_without_token(result: StepResult, ctx: DrillContext) -> str | None:
    """Never a detection: a diagnostic that cannot run as written is a runbook defect
    (the gate's kind for it, so one baseline entry covers the static and the live view)."""
    if result.http_status == 401:
        ctx.finding(
            Level.ERROR,
            MISSING_AUTH,
            "the diagnostic answers 401: it calls an admin route without the admin token, so "
            "it shows nothing about storage",
            step=result.step,
            evidence=result.output,
            suggestion='add -H "Authorization: Bearer $ADMIN_TOKEN" to the curl line',
            cause="http-401",
        )
    return None


def _stats(ctx: DrillContext) -> dict[str, int]:
    response = ctx.client.http.get("/admin/storage/stats", headers=ctx.client.admin)
    response.raise_for_status()
    return {str(k): int(v) for k, v in response.json().items()}


# -- Supabase outage ------------------------------------------------------------------


def uploads_are_queued(ctx: DrillContext) -> str | None:
    """Independent of the runbook: /health names storage as failed."""
    try:
        failed = ctx.client.health(timeout_s=3.0).json().get("failed", [])
    except (httpx.HTTPError, ValueError) as exc:
        return f"/health gave no answer: {type(exc).__name__}"
    return None if "storage" in failed else f"/health reports failed: {failed or 'nothing'}"


def _banner_on(ctx: DrillContext) -> str:
    ctx.client.set_uploads_disabled(True, BANNER).raise_for_status()
    shown = ctx.client.http.get("/api/status").json()
    refused = ctx.client.upload(ctx.user, "after-banner.txt", b"refused while disabled\n")
    if not shown.get("uploads_disabled") or refused.status_code != 503:
        raise RuntimeError(
            f"uploads still open after PUT /admin/uploads: /api/status {shown}, an upload "
            f"answered {refused.status_code}"
        )
    return f"PUT /admin/uploads disabled=true: the UI banner reads {shown.get('banner')!r}"


def _queue_holds_uploads(ctx: DrillContext) -> str:
    """The service queues by itself (202, bytes in a durable spool): note which uploads
    wait, so recovery can prove each of them reached storage."""
    with admin_connect(ctx.stack) as conn:
        rows = conn.execute(
            "SELECT id::text, object_key, checksum_sha256 FROM storage_files "
            "WHERE status = 'queued' ORDER BY created_at"
        ).fetchall()
    if not rows:
        raise RuntimeError("no upload was queued during the outage: nothing to retry")
    ctx.scratch["queued"] = [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
    return (
        f"nothing to switch on: the service answered 202 and spooled {len(rows)} upload(s) "
        "during the outage; recovery must find each of them in storage"
    )


def _status_step(ctx: DrillContext) -> Step:
    return next(s for s in ctx.section.investigation if STATUS_HOST in s.text)


def _provider_recovers(ctx: DrillContext) -> str:
    """Supabase ends its outage (the fault is reverted: the provider's fix, not the
    runbook's); the runbook's own status page curl is watched until it is all clear."""
    assert ctx.handle is not None
    ctx.handle.revert()
    ctx.event("provider-recovered", "the object store is reachable again")
    step = _status_step(ctx)

    def all_clear() -> str | None:
        data = ctx.run_step(step, "on-behalf").data
        status = data.get("status") if isinstance(data, dict) else None
        return "none" if isinstance(status, dict) and status.get("indicator") == "none" else None

    wait_until(
        all_clear,
        what="the status page to report all clear",
        timeout_s=30.0,
        interval_s=1.0,
        clock=ctx.clock,
    )
    return "the provider resolved its outage; the runbook's status page curl reports none"


def _banner_off(ctx: DrillContext) -> str:
    ctx.client.set_uploads_disabled(False).raise_for_status()
    return "PUT /admin/uploads disabled=false: uploads open, banner gone"


def outage_over(ctx: DrillContext) -> str | None:
    """Uploads work, nothing left queued, the banner is off, and every upload queued
    during the outage is in storage byte for byte."""
    reason = health_and_canary(ctx)
    if reason is not None:
        return reason
    stats = _stats(ctx)
    if stats["queued_uploads"]:
        return f"{stats['queued_uploads']} upload(s) still queued"
    flag = ctx.client.http.get("/admin/uploads", headers=ctx.client.admin).json()
    if flag.get("disabled"):
        return f"uploads still disabled (banner {flag.get('banner')!r})"
    store = s3_client(ctx.stack)
    queued = cast(list[tuple[str, str, str]], ctx.scratch.get("queued", []))
    for file_id, key, checksum in queued:
        try:
            body = store.get_object(Bucket=ctx.stack.endpoints.s3_bucket, Key=key)["Body"].read()
        except Exception as exc:
            return f"queued upload {file_id} is not in storage: {type(exc).__name__}"
        if hashlib.sha256(body).hexdigest() != checksum:
            return f"queued upload {file_id} reached storage with other bytes"
    return None


SUPABASE_OUTAGE = Scenario(
    section=SECTION,
    option="supabase-outage",
    title="the object store is out of the API's reach; uploads are queued, a banner shown, "
    "and the queue drains once the provider recovers",
    arrange=_status_page_and_token,
    fault=StorageOutage(mode="down"),
    confirm=uploads_are_queued,
    detect=any_of(
        status_page_outage,
        upload_answered({202}, "queued: storage unreachable"),
        admin_route_without_token,
    ),
    actions=(
        Action(
            r"Uploads disabled.* banner",
            _banner_on,
            why="the UI banner is the API's uploads switch (PUT /admin/uploads); the text "
            "names no command for it",
        ),
        Action(
            r"Queue uploads for retry|/admin/storage/stats",
            _queue_holds_uploads,
            why="the service queues on its own; the drill only checks the queue",
            by=Actor.CHECK,
            also_after_success=True,
        ),
        Action(
            r"Monitor Supabase status page|^watch\b.*status[.]supabase[.]com",
            _provider_recovers,
            why="the outage is the provider's to end: it ends by itself; the drill waits",
            by=Actor.PROVIDER,
            also_after_success=True,
        ),
        Action(
            r"Re-enable when resolved",
            _banner_off,
            why="the banner is the uploads switch; the text names no command for it",
        ),
    ),
    recovered=outage_over,
)


@pytest.mark.runbook(SECTION, option="supabase-outage")
def test_supabase_outage_queues_uploads_and_drains_them(drill: DrillFixture) -> None:
    drill.verify(SUPABASE_OUTAGE)


# -- storage quota exceeded -----------------------------------------------------------


OLD_EXPORTS = 8  # a heavy user's uploads, every other one deleted since
EXPORT_KB = 32


def _heavy_user_deleted_half(ctx: DrillContext) -> None:
    """A user who uploaded exports and deleted half of them: soft-deleted, so their
    bytes still count against the quota until cleanup purges them."""
    _status_page_and_token(ctx)
    user = ctx.client.create_user(f"heavy-{secrets.token_hex(4)}@drill.test", "pro")
    kept = []
    for n in range(OLD_EXPORTS):
        upload = ctx.client.upload(user, f"export-{n}.zip", secrets.token_bytes(EXPORT_KB * 1024))
        if upload.status_code != 201 or upload.file_id is None:
            raise RuntimeError(f"arranging exports: upload answered {upload.status_code}")
        if n % 2:
            kept.append(upload.file_id)
        elif ctx.client.delete(user, upload.file_id).status_code != 200:
            raise RuntimeError(f"arranging exports: DELETE of {upload.file_id} failed")
    ctx.scratch["heavy"] = (user, kept)


def _quota_at_what_is_held(ctx: DrillContext) -> StorageQuotaExceeded:
    # the quota set to the bytes held, soft-deleted ones included: the next byte is over
    return StorageQuotaExceeded(quota_bytes=stored_bytes(ctx.stack))


def uploads_refused_for_quota(ctx: DrillContext) -> str | None:
    upload = ctx.client.upload(ctx.user, "probe.txt", b"does this fit?\n" * 64)
    if upload.status_code != 507:
        return f"a 1 KB upload answered {upload.status_code}, not 507"
    return None


def room_again_and_live_files_kept(ctx: DrillContext) -> str | None:
    """Uploads are accepted again, and cleanup took only deleted files: the heavy user's
    kept exports still download."""
    reason = health_and_canary(ctx)
    if reason is not None:
        return reason
    user, kept = cast(tuple[User, list[str]], ctx.scratch["heavy"])
    for file_id in kept:
        status = ctx.client.download(user, file_id).status_code
        if status != 200:
            return f"a live file ({file_id}) answers {status} after the cleanup"
    return None


def _cleanup_with_admin_token(ctx: DrillContext) -> str:
    """The runbook's cleanup, with the admin token it lacks (run only when the command
    as written failed)."""
    command = (
        "curl -X POST https://api.rolerabbit.com/admin/cleanup/deleted "
        '-H "Authorization: Bearer $ADMIN_TOKEN"'
    )
    result = ctx.run_command(command, StepKind.HTTP)
    if result.http_status != 200:
        why = result.error or result.output
        raise RuntimeError(f"the cleanup with the admin token failed too: {why[:200]}")
    return f"ran the cleanup with the admin token: {result.output[:160]}"


QUOTA_EXCEEDED = Scenario(
    section=SECTION,
    option="storage-quota-exceeded",
    title="the storage quota is full, part of it soft-deleted files; cleanup frees room",
    arrange=_heavy_user_deleted_half,
    fault=_quota_at_what_is_held,
    confirm=uploads_refused_for_quota,
    detect=any_of(
        upload_answered({507}, "storage quota exceeded"),
        admin_route_without_token,
    ),
    actions=(
        Action(
            r"^curl -X POST \S+/admin/cleanup/deleted",
            _cleanup_with_admin_token,
            why="the runbook's request carries no admin token",
        ),
    ),
    recovered=room_again_and_live_files_kept,
)


@pytest.mark.runbook(SECTION, option="storage-quota-exceeded")
def test_storage_quota_exceeded_cleanup_frees_room(drill: DrillFixture) -> None:
    drill.verify(QUOTA_EXCEEDED)
