"""SEV-3: Share Links Not Working — the runbook's causes 1 (share expired), 2 (download
limit reached) and 3 (file deleted), each with its one-statement SQL fix.

Every drill shares a real file, binds the runbook's `abc123xyz` to the share's token and
`FILE_ID` to the file's id, breaks the link the way the cause says, and counts the link
as recovered when it serves the same bytes again. Two variants show where the runbook's
fix stops working: a share that expired long ago (+7 days is still the past) and a file
already purged by the cleanup (no row left to un-delete).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from runbook_checks.drill.detect import any_of, rows_where
from runbook_checks.drill.fixture import DrillFixture
from runbook_checks.drill.runner import DrillContext
from runbook_checks.drill.spec import Detector, Scenario, reads
from runbook_checks.faults.base import Fault
from runbook_checks.faults.data import (
    FilePurged,
    FileSoftDeleted,
    ShareDownloadLimitReached,
    ShareExpired,
)
from runbook_checks.stack.accounts import admin_connect
from runbook_checks.steps.base import StepResult

SECTION = "SEV-3: Share Links Not Working"
SHARE_INVALID = "Share link expired or invalid"
WEEK_S = 7 * 24 * 3600
MAX_DOWNLOADS = 25
# The runbook's fixes are single UPDATEs and /share reads the database directly (no
# cache in between): the link must work again within seconds, not the 4 hours a SEV-3
# response allows.
SHARE_FIX_BUDGET_S = 5.0


def _shared_file(ctx: DrillContext) -> None:
    """A user shares a file for a week, up to 25 downloads; the runbook's placeholders
    name that share and that file."""
    owner = ctx.client.create_user(f"sharer-{secrets.token_hex(4)}@drill.test", "pro")
    content = secrets.token_bytes(4096)
    upload = ctx.client.upload(owner, "board-deck.pdf", content, "application/pdf")
    if upload.status_code != 201 or upload.file_id is None:
        raise RuntimeError(f"arranging the shared file: upload answered {upload.status_code}")
    token = ctx.client.share(
        owner, upload.file_id, expires_in_s=WEEK_S, max_downloads=MAX_DOWNLOADS
    )
    ctx.values["abc123xyz"] = token
    ctx.values["FILE_ID"] = upload.file_id
    ctx.scratch["sha256"] = hashlib.sha256(content).hexdigest()


def _token(ctx: DrillContext) -> str:
    return ctx.values["abc123xyz"]


def _facts(ctx: DrillContext) -> str:
    """What the database holds for the share and its file, for a failure's reason."""
    with admin_connect(ctx.stack) as conn:
        share = conn.execute(
            "SELECT expires_at, max_downloads, download_count FROM file_shares WHERE token = %s",
            (_token(ctx),),
        ).fetchone()
        file = conn.execute(
            "SELECT is_deleted FROM storage_files WHERE id = %s", (ctx.values["FILE_ID"],)
        ).fetchone()
    if share is None:
        shown = "no share row for the token"
    else:
        expires, limit, count = share
        shown = f"share expires_at={expires}, downloads {count} of {limit}"
    gone = "no storage_files row for FILE_ID" if file is None else f"is_deleted={file[0]}"
    return f"{shown}; {gone}"


def link_refused(ctx: DrillContext) -> str | None:
    response = ctx.client.open_share(_token(ctx))
    if response.status_code == 404 and SHARE_INVALID in response.text:
        return None
    return f"the share link still answers {response.status_code}"


def link_serves_the_file(ctx: DrillContext) -> str | None:
    """Recovered: the share link answers 200 with the shared file's bytes."""
    response = ctx.client.open_share(_token(ctx))
    if response.status_code != 200:
        return f"the share link answers {response.status_code} {response.text[:80]} ({_facts(ctx)})"
    if hashlib.sha256(response.content).hexdigest() != ctx.scratch["sha256"]:
        return "the share link serves other bytes than the shared file"
    return None


def noting(detector: Detector) -> Detector:
    """`detector`, and every diagnostic that shows the fault goes on the timeline (the
    drill's time to detect counts only the first)."""

    def judge(result: StepResult, ctx: DrillContext) -> str | None:
        shown = detector(result, ctx)
        if shown:
            ctx.event("shown", f"line {result.step.line}: {shown}")
        return shown

    return Detector(detector.reads, judge, detector.name, parts=detector.leaves())


@reads(r"^curl\b.*/share/")
def link_refused_shown(result: StepResult, ctx: DrillContext) -> str | None:
    """The runbook's `curl .../share/abc123xyz` gets the users' error."""
    if result.http_status == 404 and SHARE_INVALID in result.output:
        return f"the share link answers 404: {result.output.strip()[:120]}"
    return None


def _past(value: object) -> bool:
    return isinstance(value, datetime) and value < datetime.now(UTC)


SHARE_ROW_EXPIRED = rows_where(
    lambda row: _past(row.get("expires_at")), "the share's expires_at is past", "file_shares"
)
SHARE_ROW_USED_UP = rows_where(
    lambda row: (
        row.get("max_downloads") is not None
        and int(str(row.get("download_count"))) >= int(str(row.get("max_downloads")))
    ),
    "the share's download_count has reached max_downloads",
    "file_shares",
)
FILE_ROW_DELETED = rows_where(
    lambda row: row.get("is_deleted") is True, "the shared file is soft-deleted", "storage_files"
)


def _share_scenario(
    option: str, title: str, fault: Callable[[DrillContext], Fault], cause_shown: Detector
) -> Scenario:
    return Scenario(
        section=SECTION,
        option=option,
        title=title,
        arrange=_shared_file,
        fault=fault,
        confirm=link_refused,
        detect=noting(any_of(link_refused_shown, cause_shown)),
        recovered=link_serves_the_file,
        budget_s=SHARE_FIX_BUDGET_S,
    )


# -- 1. Share expired -----------------------------------------------------------------

RECENTLY_EXPIRED = _share_scenario(
    "1",
    "the share expired a minute ago; +7 days brings it back",
    lambda ctx: ShareExpired.recently(_token(ctx)),
    SHARE_ROW_EXPIRED,
)
LONG_EXPIRED = _share_scenario(
    "1",
    "the share expired 90 days ago; +7 days on its expiry is still in the past",
    lambda ctx: ShareExpired.long_ago(_token(ctx)),
    SHARE_ROW_EXPIRED,
)


@pytest.mark.runbook(SECTION, option="1")
def test_cause_1_a_recently_expired_share_is_extended(drill: DrillFixture) -> None:
    drill.verify(RECENTLY_EXPIRED)


@pytest.mark.runbook(SECTION, option="1")
def test_cause_1_a_share_expired_long_ago_stays_expired(drill: DrillFixture) -> None:
    drill.verify(LONG_EXPIRED)


# -- 2. Download limit reached --------------------------------------------------------

LIMIT_REACHED = _share_scenario(
    "2",
    f"the share's {MAX_DOWNLOADS} downloads are used up; +10 opens it again",
    lambda ctx: ShareDownloadLimitReached(_token(ctx)),
    SHARE_ROW_USED_UP,
)


@pytest.mark.runbook(SECTION, option="2")
def test_cause_2_a_used_up_share_gets_more_downloads(drill: DrillFixture) -> None:
    drill.verify(LIMIT_REACHED)


# -- 3. File deleted ------------------------------------------------------------------

SOFT_DELETED = _share_scenario(
    "3",
    "the shared file was deleted (soft); the UPDATE restores it",
    lambda ctx: FileSoftDeleted(ctx.values["FILE_ID"]),
    FILE_ROW_DELETED,
)
PURGED = _share_scenario(
    "3",
    "the shared file was deleted and then purged by the cleanup; no row is left to restore",
    lambda ctx: FilePurged(ctx.values["FILE_ID"]),
    link_refused_shown,
)


@pytest.mark.runbook(SECTION, option="3")
def test_cause_3_a_soft_deleted_file_is_restored(drill: DrillFixture) -> None:
    drill.verify(SOFT_DELETED)


@pytest.mark.runbook(SECTION, option="3")
def test_cause_3_a_purged_file_cannot_be_restored_by_the_update(drill: DrillFixture) -> None:
    drill.verify(PURGED)
