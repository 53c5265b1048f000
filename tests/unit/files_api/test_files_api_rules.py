"""The Files service's pure decisions: size limits and their wording, quota, share
validity, and the safe way to hand user bytes to a browser."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from files_api.rules import (
    MIB,
    OCTET_STREAM,
    Plan,
    PlanLimits,
    ShareFacts,
    ShareState,
    bearer_token,
    check_quota,
    check_upload_size,
    content_disposition,
    format_mb,
    normalize_content_type,
    safe_content_type,
    sanitize_filename,
    share_state,
)

LIMITS = PlanLimits(free_mb=10, pro_mb=50)
sizes = st.integers(min_value=0, max_value=200 * MIB)
plans = st.sampled_from(list(Plan))
limits = st.builds(PlanLimits, free_mb=st.integers(1, 100), pro_mb=st.integers(1, 1000))
_STATED = re.compile(
    r"^File size \((\d+(?:\.\d)?)MB\) exceeds limit for (Free|Pro) plan \((\d+)MB\)\."
)


# ------------------------------------------------------------------ size limits


def test_the_runbook_free_plan_message_word_for_word() -> None:
    decision = check_upload_size(15 * MIB, Plan.FREE, LIMITS)
    assert not decision.accepted
    assert decision.message == (
        "File size (15MB) exceeds limit for Free plan (10MB). Upgrade to Pro for 50MB files."
    )


def test_the_pro_plan_message_has_no_upgrade_offer() -> None:
    decision = check_upload_size(60 * MIB, Plan.PRO, LIMITS)
    assert decision.message == "File size (60MB) exceeds limit for Pro plan (50MB)."


def test_exactly_the_limit_is_accepted_one_byte_more_is_not() -> None:
    assert check_upload_size(10 * MIB, Plan.FREE, LIMITS).accepted
    over = check_upload_size(10 * MIB + 1, Plan.FREE, LIMITS)
    assert not over.accepted
    assert over.message is not None
    assert over.message.startswith("File size (10.1MB)")


@given(size=sizes, plan=plans, plan_limits=limits)
def test_accepted_iff_within_the_plan_limit(size: int, plan: Plan, plan_limits: PlanLimits) -> None:
    decision = check_upload_size(size, plan, plan_limits)
    assert decision.accepted == (size <= plan_limits.limit_mb(plan) * MIB)
    assert (decision.message is None) == decision.accepted


@given(excess=st.integers(min_value=1, max_value=500 * MIB), plan=plans, plan_limits=limits)
def test_a_rejection_states_both_sizes_never_understating_the_file(
    excess: int, plan: Plan, plan_limits: PlanLimits
) -> None:
    size = plan_limits.limit_mb(plan) * MIB + excess
    decision = check_upload_size(size, plan, plan_limits)
    assert not decision.accepted
    assert decision.message is not None
    match = _STATED.match(decision.message)
    assert match, decision.message
    stated_size, plan_label, stated_limit = float(match[1]), match[2], int(match[3])
    assert plan_label == plan.label
    assert stated_limit == plan_limits.limit_mb(plan)
    assert stated_size * MIB >= size  # never below the real size
    assert stated_size > stated_limit  # never reads as "10MB exceeds 10MB"
    upgrade = f"Upgrade to Pro for {plan_limits.pro_mb}MB files."
    assert (upgrade in decision.message) == (
        plan is Plan.FREE and plan_limits.pro_mb > plan_limits.free_mb
    )


@given(size=st.integers(min_value=0, max_value=10**12))
def test_format_mb_rounds_up_to_a_tenth(size: int) -> None:
    text = format_mb(size)
    assert text.endswith("MB")
    assert not text.endswith(".0MB")
    value = float(text[:-2])
    assert value * MIB >= size
    assert (value - 0.1) * MIB < size or size == 0


def test_format_mb_refuses_negative_sizes() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        format_mb(-1)


# ------------------------------------------------------------------ quota


@given(used=st.integers(0, 10**12), upload=st.integers(0, 10**10), quota=st.integers(1, 10**12))
def test_quota_accepts_iff_the_upload_fits(used: int, upload: int, quota: int) -> None:
    decision = check_quota(used, upload, quota)
    assert decision.accepted == (used + upload <= quota)
    if not decision.accepted:
        assert decision.message is not None
        assert decision.message.startswith(f"Storage quota exceeded: used {used} of {quota} bytes")
        assert str(upload) in decision.message
        assert "/admin/cleanup/deleted" in decision.message


# ------------------------------------------------------------------ shares

NOW = datetime(2024, 1, 15, 10, 15, tzinfo=UTC)
offsets = st.none() | st.integers(-(10**6), 10**6).map(lambda s: NOW + timedelta(seconds=s))


@given(
    expires_at=offsets,
    max_downloads=st.none() | st.integers(0, 20),
    download_count=st.integers(0, 25),
    file_deleted=st.booleans(),
)
def test_share_state_matches_the_sql_predicate(
    expires_at: datetime | None, max_downloads: int | None, download_count: int, file_deleted: bool
) -> None:
    facts = ShareFacts(expires_at, max_downloads, download_count, file_deleted)
    state = share_state(facts, NOW)
    # The WHERE clause of the atomic download UPDATE, restated.
    sql_allows = (
        not file_deleted
        and (max_downloads is None or download_count < max_downloads)
        and (expires_at is None or expires_at > NOW)
    )
    assert (state is ShareState.VALID) == sql_allows


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (ShareFacts(None, None, 0, False), ShareState.VALID),
        (ShareFacts(NOW, None, 0, False), ShareState.EXPIRED),  # expiry instant is expired
        (ShareFacts(NOW + timedelta(seconds=1), 3, 3, False), ShareState.LIMIT_REACHED),
        (ShareFacts(NOW - timedelta(days=1), 3, 3, True), ShareState.FILE_DELETED),
    ],
)
def test_share_state_examples(facts: ShareFacts, expected: ShareState) -> None:
    assert share_state(facts, NOW) is expected


# ------------------------------------------------------------------ downloads


@pytest.mark.parametrize(
    "active",
    [
        "text/html",
        "TEXT/HTML; charset=utf-8",
        "image/svg+xml",
        "application/xhtml+xml",
        "text/xml",
        "application/xml",
        "application/javascript",
        "text/javascript",
        "application/vnd.custom+xml",
        "application/x-ecmascript",
    ],
)
def test_active_types_are_served_as_bytes(active: str) -> None:
    assert safe_content_type(active) == OCTET_STREAM


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("text/plain", "text/plain"),
        ("application/pdf", "application/pdf"),
        ("image/png", "image/png"),
        ("application/zip", "application/zip"),
        ("", OCTET_STREAM),
        ("garbage", OCTET_STREAM),
        ("text/plain\r\nX-Evil: 1", OCTET_STREAM),
    ],
)
def test_passive_types_are_kept(stored: str, served: str) -> None:
    assert safe_content_type(stored) == served


@given(st.text(max_size=80))
def test_content_types_are_normalized_to_a_safe_token_pair(raw: str) -> None:
    stored = normalize_content_type(raw)
    assert re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9a-z]+/[!#$%&'*+\-.^_`|~0-9a-z]+", stored)
    served = safe_content_type(stored)
    assert "html" not in served
    assert "svg" not in served
    assert "script" not in served


@given(st.text(max_size=300))
def test_sanitized_names_have_no_path_and_no_control_characters(raw: str) -> None:
    name = sanitize_filename(raw)
    assert name
    assert len(name) <= 255
    assert "/" not in name
    assert "\\" not in name
    assert not re.search(r"[\x00-\x1f\x7f]", name)
    assert name not in {".", ".."}


def test_sanitize_keeps_the_base_name() -> None:
    assert sanitize_filename("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("") == "unnamed"


@given(st.text(max_size=120))
def test_content_disposition_is_an_ascii_attachment_that_round_trips(raw: str) -> None:
    header = content_disposition(raw)
    header.encode("ascii")  # headers must be plain ASCII
    assert header.startswith('attachment; filename="')
    assert "\r" not in header
    assert "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert "\\" not in fallback
    name = sanitize_filename(raw)
    if "filename*=" in header:
        encoded = header.split("filename*=UTF-8''", 1)[1]
        assert unquote(encoded, encoding="utf-8") == name
    else:
        assert fallback == name


def test_content_disposition_examples() -> None:
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition('a"b.txt') == (
        "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt"
    )
    assert content_disposition("résumé.pdf") == (
        "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    )


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc ", "abc"),
        ("Bearer", None),
        ("Basic abc", None),
        ("Bearer a b", None),
        (None, None),
        ("", None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
