"""SEV-2: File Upload Failures — the runbook's causes 1 (file size limit), 2 (invalid file
type) and 3 (network timeout on large files).

The three fixes are code changes, not commands. Each drill makes users hit the cause for
real, lets the runbook's own investigation find it (the log lines grep prints), and then
checks the fix the runbook names against the service: the 413 wording it quotes, every
file type accepted (and served safely), a timeout raised to the runbook's 5 minutes.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import cast

import httpx
import pytest

from files_profile import User
from runbook_checks.clock import Clock
from runbook_checks.drill.detect import any_of, log_lines_since_injection
from runbook_checks.drill.fixture import DrillFixture
from runbook_checks.drill.result import Actor
from runbook_checks.drill.runner import DrillContext, health_and_canary
from runbook_checks.drill.spec import Action, Check, Detector, Scenario, reads
from runbook_checks.faults.client import (
    UNUSUAL_CASES,
    ObservedResponse,
    ObservingHandle,
    OversizedUpload,
    SlowClientUpload,
    UnusualUploads,
)
from runbook_checks.findings import Level
from runbook_checks.gate.diagnostics import FAILS
from runbook_checks.gate.sql_check import UNDEFINED_COLUMN, UNDEFINED_TABLE
from runbook_checks.runbook.model import Step, StepKind
from runbook_checks.stack.accounts import admin_connect
from runbook_checks.steps.base import StepResult

SECTION = "SEV-2: File Upload Failures"
MIB = 1024 * 1024
SQL_KINDS = {"42703": UNDEFINED_COLUMN, "42P01": UNDEFINED_TABLE}  # the gate's kinds


# -- shared: the user who reported it, and what the investigation shows ----------------


def _reporting_user(ctx: DrillContext) -> None:
    """The runbook's "Test upload as user": a Free-plan user who reported failures."""
    user = ctx.client.create_user(f"reporter-{secrets.token_hex(4)}@drill.test", "free")
    ctx.scratch["reporter"] = user
    ctx.values["USER_TOKEN"] = user.token


def _reporter(ctx: DrillContext) -> User:
    return cast(User, ctx.scratch["reporter"])


def _observed(ctx: DrillContext) -> list[ObservedResponse]:
    handle = ctx.handle
    return handle.responses if isinstance(handle, ObservingHandle) else []


def log_shows_failed_uploads(status: int) -> Detector:
    """An upload answered `status` (the service's failure event or the request's line),
    in a log line `grep "upload" production.log | tail -100` printed, written after the
    fault went in."""

    @reads(r"^grep\b", name=f"log_shows_failed_uploads({status})")
    def detect(result: StepResult, ctx: DrillContext) -> str | None:
        for record in log_lines_since_injection(result, ctx):
            about = f"{record.get('path', '')} {record.get('msg', '')}"
            if record.get("status") == status and "upload" in about:
                return f"production.log: {record.get('msg')}"
        return None

    return detect


@reads(r"(?i)^\s*select\b|^psql\b")
def sql_fails_as_written(result: StepResult, ctx: DrillContext) -> str | None:
    """Never a detection: a diagnostic query the schema rejects is a runbook defect (the
    gate's kind for it, so one baseline entry covers the static and the live view)."""
    state = result.sqlstate or ""
    if result.step.kind is not StepKind.SQL or result.ok or not state.startswith("42"):
        return None
    ctx.finding(
        Level.ERROR,
        SQL_KINDS.get(state, FAILS),
        f"the diagnostic query fails as written during the incident: {result.error[:200]}",
        step=result.step,
        evidence=result.error,
        suggestion=result.suggestion or "fix the query against the service's schema",
        cause=f"sqlstate-{state}",
    )
    return None


def with_the_fix(check: Check) -> Check:
    """Recovery: the service's own steady state (health, a canary upload) and, once the
    fault is in, what the runbook's fix promises (`check`). Before the fault only the
    former: the promise is what the drill verifies after the fix."""

    def recovered(ctx: DrillContext) -> str | None:
        reason = health_and_canary(ctx)
        if reason is not None or ctx.handle is None:
            return reason
        return check(ctx)

    return recovered


def _option_step(ctx: DrillContext) -> Step:
    assert ctx.option is not None
    return ctx.option.steps[0]


# -- 1. File size limit exceeded ------------------------------------------------------

OVERSIZED_MB = 15  # the runbook's own example: 15 MB on the Free plan (10 MB)


def _quoted_message(ctx: DrillContext) -> str:
    """The 413 text the runbook's fix quotes (`Code: "..."`)."""
    match = re.search(r'Code:\s*"([^"]+)"', _option_step(ctx).text)
    if match is None:
        raise RuntimeError('the runbook\'s fix 1 quotes no message (Code: "...")')
    return match.group(1)


def oversized_refused(ctx: DrillContext) -> str | None:
    answers = _observed(ctx)
    if not answers or answers[0].status_code != 413:
        return f"the {OVERSIZED_MB} MB upload answered {answers[0].status_code if answers else '?'}"
    return None


def _message_as_quoted(ctx: DrillContext) -> str:
    said = _observed(ctx)[0].detail
    quoted = _quoted_message(ctx)
    if said != quoted:
        raise RuntimeError(f"the service's 413 reads {said!r}, the runbook's fix quotes {quoted!r}")
    return f"nothing to change: the service's 413 already reads exactly as quoted: {said!r}"


def limit_stated_as_quoted(ctx: DrillContext) -> str | None:
    """A Free user's 15 MB upload is refused in the runbook's words."""
    upload = ctx.client.upload(_reporter(ctx), "scan.pdf", b"%" * (OVERSIZED_MB * MIB))
    try:
        detail = json.loads(upload.body).get("detail") if upload.status_code == 413 else None
    except ValueError:
        detail = None
    if detail != _quoted_message(ctx):
        return f"a {OVERSIZED_MB} MB Free upload answered {upload.status_code}: {upload.body[:160]}"
    return None


FILE_TOO_LARGE = Scenario(
    section=SECTION,
    option="1",
    title="a Free-plan user uploads 15 MB (limit 10 MB); the 413 must say so in the "
    "runbook's words",
    arrange=_reporting_user,
    fault=OversizedUpload(size_mb=OVERSIZED_MB, tier="free"),
    confirm=oversized_refused,
    detect=any_of(log_shows_failed_uploads(413), sql_fails_as_written),
    actions=(
        Action(
            r"Update error message",
            _message_as_quoted,
            why="a code change: the drill checks the service already says it",
            by=Actor.CHECK,
        ),
    ),
    recovered=with_the_fix(limit_stated_as_quoted),
)


@pytest.mark.runbook(SECTION, option="1")
def test_cause_1_file_size_limit_is_stated_clearly(drill: DrillFixture) -> None:
    drill.verify(FILE_TOO_LARGE)


# -- 2. Invalid file type -------------------------------------------------------------


def unusual_uploads_answered(ctx: DrillContext) -> str | None:
    answers = _observed(ctx)
    if len(answers) < len(UNUSUAL_CASES):
        return f"{len(answers)} of {len(UNUSUAL_CASES)} unusual uploads answered"
    return None


@reads(r"^grep\b")
def log_shows_the_unusual_uploads(result: StepResult, ctx: DrillContext) -> str | None:
    """The reported uploads are in the log with their outcome (stored or refused), so the
    engineer can tell whether file type is the cause."""
    names = {a.stored_name or a.name for a in _observed(ctx)}
    for record in log_lines_since_injection(result, ctx):
        message = str(record.get("msg"))
        if "upload" in message and any(name and name in message for name in names):
            return f"production.log shows the unusual uploads: {message[:160]}"
    return None


def _all_types_accepted(ctx: DrillContext) -> str:
    refused = [f"{a.case}: {a.status_code}" for a in _observed(ctx) if a.status_code != 201]
    if refused:
        raise RuntimeError(f"the service refuses some file types: {', '.join(refused)}")
    return (
        "nothing to change: the service has no type allow-list; all "
        f"{len(UNUSUAL_CASES)} unusual uploads were accepted"
    )


def every_type_accepted_and_served_safely(ctx: DrillContext) -> str | None:
    """Accepting every type is safe only if nothing is served inline: each odd file is
    stored under a name without a path, and comes back as an attachment, nosniff."""
    user = _reporter(ctx)
    for case in UNUSUAL_CASES:
        upload = ctx.client.upload(user, case.name, case.content, case.content_type)
        if upload.status_code != 201 or upload.file_id is None:
            return f"{case.case}: upload answered {upload.status_code}: {upload.body[:120]}"
        stored = str(json.loads(upload.body).get("name"))
        if "/" in stored or "\\" in stored:
            return f"{case.case}: stored under a name with a path: {stored!r}"
        back = ctx.client.download(user, upload.file_id)
        disposition = back.headers.get("content-disposition", "")
        if back.status_code != 200 or back.content != case.content:
            return f"{case.case}: download answered {back.status_code}"
        if not disposition.startswith("attachment"):
            return f"{case.case}: served with Content-Disposition {disposition!r}"
        if back.headers.get("x-content-type-options") != "nosniff":
            return f"{case.case}: served without X-Content-Type-Options: nosniff"
    return None


UNUSUAL_TYPES = Scenario(
    section=SECTION,
    option="2",
    title="users upload odd files (HTML, SVG with script, an .exe, no extension, unicode, "
    "right-to-left and ../ names); every type must be accepted and served safely",
    arrange=_reporting_user,
    fault=UnusualUploads(),
    confirm=unusual_uploads_answered,
    detect=any_of(log_shows_the_unusual_uploads, sql_fails_as_written),
    actions=(
        Action(
            r"Allow all file types",
            _all_types_accepted,
            why="a code change: the drill checks the service has no type validation",
            by=Actor.CHECK,
        ),
    ),
    recovered=with_the_fix(every_type_accepted_and_served_safely),
)


@pytest.mark.runbook(SECTION, option="2")
def test_cause_2_every_file_type_is_accepted_and_served_safely(drill: DrillFixture) -> None:
    drill.verify(UNUSUAL_TYPES)


# -- 3. Network timeout (large files) -------------------------------------------------

SHORT_TIMEOUT_S = 1.0  # the API's UPLOAD_TIMEOUT_S for the drill (scaled down from 30 s)
SLOW_MB = 0.5
SLOW_KBPS = 250.0  # the upload takes ~2.1 s: twice the timeout


def upload_timed_out(ctx: DrillContext) -> str | None:
    """The API gave up on the slow upload: its 408 is recorded in upload_failures."""
    with admin_connect(ctx.stack) as conn:
        row = conn.execute(
            "SELECT count(*) FROM upload_failures WHERE status_code = 408 "
            "AND created_at >= to_timestamp(%s)",
            (ctx.result.started_wall,),
        ).fetchone()
    return None if row and int(str(row[0])) else "no upload has timed out yet"


def _runbook_timeout_s(ctx: DrillContext) -> float:
    match = re.search(r"timeout\s*=\s*(\d+)", _option_step(ctx).text)
    if match is None:
        raise RuntimeError("the runbook's fix 3 names no timeout value")
    return int(match.group(1)) / 1000  # fastify's server.timeout is in milliseconds


def _raise_upload_timeout(ctx: DrillContext) -> str:
    timeout_s = _runbook_timeout_s(ctx)
    ctx.stack.restart_api(UPLOAD_TIMEOUT_S=f"{timeout_s:g}")
    return f"restarted the API with UPLOAD_TIMEOUT_S={timeout_s:g} (the runbook's value)"


def _paced(content: Iterator[bytes], rate_bytes_per_s: float, clock: Clock) -> Iterator[bytes]:
    """`content` sent no faster than the rate, as over a slow link."""
    started, sent = clock.monotonic(), 0
    for chunk in content:
        yield chunk
        sent += len(chunk)
        due = started + sent / rate_bytes_per_s
        if (delay := due - clock.monotonic()) > 0:
            clock.sleep(delay)


def slow_large_upload_succeeds(ctx: DrillContext) -> str | None:
    """The same upload as the fault's (size and rate) now gets through."""
    size, boundary = round(SLOW_MB * MIB), f"drill-{secrets.token_hex(8)}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="large-on-slow-link.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    chunk = b"\x33" * 25_000
    parts = [head, *(chunk[: min(len(chunk), size - at)] for at in range(0, size, len(chunk)))]
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    user = _reporter(ctx)
    try:
        response = ctx.client.http.post(
            "/api/storage/files/upload",
            headers={**user.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=_paced(iter(parts), SLOW_KBPS * 1000, ctx.clock),
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        return f"the slow upload got no answer: {type(exc).__name__}: {exc}"
    if response.status_code != 201:
        return (
            f"the slow {SLOW_MB:g} MB upload answered {response.status_code}: {response.text[:160]}"
        )
    return None


NETWORK_TIMEOUT = Scenario(
    section=SECTION,
    option="3",
    title="a large upload over a slow link outlasts the API's upload timeout (408); the "
    "runbook raises the timeout",
    arrange=_reporting_user,
    fault=SlowClientUpload(size_mb=SLOW_MB, rate_kbps=SLOW_KBPS, upload_timeout_s=SHORT_TIMEOUT_S),
    confirm=upload_timed_out,
    detect=any_of(log_shows_failed_uploads(408), sql_fails_as_written),
    actions=(
        Action(
            r"Increase timeout for uploads",
            _raise_upload_timeout,
            why="a code change (fastify.server.timeout): the stack restarts the API with "
            "the runbook's value as its UPLOAD_TIMEOUT_S",
            by=Actor.RUNBOOK,
        ),
    ),
    recovered=with_the_fix(slow_large_upload_succeeds),
)


@pytest.mark.runbook(SECTION, option="3")
def test_cause_3_a_longer_timeout_lets_slow_large_uploads_through(drill: DrillFixture) -> None:
    drill.verify(NETWORK_TIMEOUT)
