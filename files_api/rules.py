"""The service's decisions as pure functions: no I/O, no clock, no settings object.

Upload size limits and their message, storage quota, share-link validity, and the safe
way to hand stored bytes back to a browser (content type, Content-Disposition).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

MIB = 1024 * 1024

# ---------------------------------------------------------------------------- plans


class Plan(enum.StrEnum):
    FREE = "free"
    PRO = "pro"

    @property
    def label(self) -> str:
        return "Free" if self is Plan.FREE else "Pro"


@dataclass(frozen=True)
class PlanLimits:
    free_mb: int
    pro_mb: int

    def limit_mb(self, plan: Plan) -> int:
        return self.free_mb if plan is Plan.FREE else self.pro_mb


@dataclass(frozen=True)
class SizeDecision:
    accepted: bool
    message: str | None  # the 413 text when rejected


def format_mb(size_bytes: int) -> str:
    """Size in MB (1 MB = 1024*1024 bytes), rounded UP to 0.1 MB, without a trailing '.0'.

    Rounding up means the stated size is never below the actual size, and a file one
    byte over a whole-MB limit is stated as above that limit ("10.1MB" for 10 MB + 1 B).
    """
    if size_bytes < 0:
        raise ValueError(f"a size in bytes must be >= 0, got {size_bytes}")
    tenths = -((-size_bytes * 10) // MIB)  # ceil(size / 0.1 MB) in exact integer arithmetic
    whole, tenth = divmod(tenths, 10)
    return f"{whole}MB" if tenth == 0 else f"{whole}.{tenth}MB"


def check_upload_size(size_bytes: int, plan: Plan, limits: PlanLimits) -> SizeDecision:
    """Accept iff size <= the plan's limit; the rejection states both sizes (runbook wording)."""
    limit_mb = limits.limit_mb(plan)
    if size_bytes <= limit_mb * MIB:
        return SizeDecision(accepted=True, message=None)
    message = (
        f"File size ({format_mb(size_bytes)}) exceeds limit for {plan.label} plan ({limit_mb}MB)."
    )
    if plan is Plan.FREE and limits.pro_mb > limit_mb:
        message += f" Upgrade to Pro for {limits.pro_mb}MB files."
    return SizeDecision(accepted=False, message=message)


# ---------------------------------------------------------------------------- quota


@dataclass(frozen=True)
class QuotaDecision:
    accepted: bool
    message: str | None


def check_quota(used_bytes: int, upload_bytes: int, quota_bytes: int) -> QuotaDecision:
    """Accept iff the bytes already held plus this upload fit in the quota."""
    if used_bytes + upload_bytes <= quota_bytes:
        return QuotaDecision(accepted=True, message=None)
    return QuotaDecision(
        accepted=False,
        message=(
            f"Storage quota exceeded: used {used_bytes} of {quota_bytes} bytes, this upload "
            f"needs {upload_bytes} more. Soft-deleted files still count until an admin runs "
            "POST /admin/cleanup/deleted; or raise STORAGE_QUOTA_BYTES."
        ),
    )


# ---------------------------------------------------------------------------- shares


class ShareState(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    LIMIT_REACHED = "limit_reached"
    FILE_DELETED = "file_deleted"


SHARE_INVALID_DETAIL = "Share link expired or invalid"
ACCESS_DENIED_DETAIL = "Access denied"


@dataclass(frozen=True)
class ShareFacts:
    """What decides whether a share link still works (times from the same clock)."""

    expires_at: datetime | None
    max_downloads: int | None
    download_count: int
    file_deleted: bool


def share_state(facts: ShareFacts, now: datetime) -> ShareState:
    """The state of a share at `now`; the same predicate the download UPDATE uses in SQL."""
    if facts.file_deleted:
        return ShareState.FILE_DELETED
    if facts.expires_at is not None and facts.expires_at <= now:
        return ShareState.EXPIRED
    if facts.max_downloads is not None and facts.download_count >= facts.max_downloads:
        return ShareState.LIMIT_REACHED
    return ShareState.VALID


# ---------------------------------------------------------------------------- downloads

OCTET_STREAM = "application/octet-stream"

# Types a browser may execute or render with script when opened from our origin.
_ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "application/xslt+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/json+javascript",
        "text/css",
        "application/x-shockwave-flash",
        "text/vnd.wap.wml",
        "application/vnd.wap.xhtml+xml",
        "multipart/x-mixed-replace",
        "application/wasm",
        "text/cache-manifest",
        "application/rss+xml",
        "application/atom+xml",
        "application/mathml+xml",
    }
)
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"^({_TOKEN})/({_TOKEN})$")


def normalize_content_type(raw: str | None) -> str:
    """The stored content type: 'type/subtype' lowercased, parameters dropped; octet-stream
    when missing or malformed. Every well-formed type is accepted (runbook: allow all)."""
    if not raw:
        return OCTET_STREAM
    essence = raw.split(";", 1)[0].strip().lower()
    return essence if _MEDIA_TYPE.match(essence) else OCTET_STREAM


def safe_content_type(stored: str) -> str:
    """The Content-Type to serve: active types (HTML, SVG, XML, script ...) become bytes."""
    essence = normalize_content_type(stored)
    subtype = essence.split("/", 1)[1]
    if essence in _ACTIVE_TYPES or subtype.endswith(("+xml", "xml")) or "script" in subtype:
        return OCTET_STREAM
    return essence


_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def sanitize_filename(raw: str | None, *, max_length: int = 255) -> str:
    """A display name from the client's filename: no directories, no control characters."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME_CHARS.sub("", name).strip()
    if name in {"", ".", ".."}:
        return "unnamed"
    return name[:max_length]


_ASCII_SAFE = re.compile(r"[^A-Za-z0-9!#$&+\-.^_`|~ ()\[\]{}@,=]")


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and, when needed, RFC 5987 `filename*`."""
    name = sanitize_filename(filename)
    fallback = _ASCII_SAFE.sub("_", name).strip() or "download"
    header = f'attachment; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


# ---------------------------------------------------------------------------- auth


_BEARER = re.compile(r"^Bearer[ \t]+(\S+)[ \t]*$", re.IGNORECASE)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    if not authorization:
        return None
    match = _BEARER.match(authorization)
    return match.group(1) if match else None
