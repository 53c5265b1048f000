"""What a Files user does, how often, and how big their files are; no locust in here.

Kept free of locust (and of gevent's monkey-patching) so the suite's unit tests can
check the distribution and the multipart encoding in their own process.

File sizes follow a log-normal distribution, the usual model for the sizes of files
people store (Downey, "The structural cause of file size distributions", 2001): mostly
tens of kilobytes, with a tail of megabytes. Draws above the plan's limit are redrawn,
so every upload is one the API should accept (a rejected upload is a different test).
"""

from __future__ import annotations

import math
import os
import random
import secrets
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB

PLAN_LIMIT_MB = {"free": 10, "pro": 50}  # the API's FREE_LIMIT_MB / PRO_LIMIT_MB defaults
PLAN_WEIGHTS = {"free": 4, "pro": 1}  # one user in five pays

# What a user does, relative weights: reading dominates writing, as in most file stores.
TASK_WEIGHTS = {
    "list": 40,  # GET /api/storage/files (the file browser)
    "download": 20,  # GET /api/storage/files/{id}/download
    "open_share": 15,  # GET /share/{token} (someone the user shared a link with)
    "upload": 10,  # POST /api/storage/files/upload (and, past MAX_FILES, delete the oldest)
    "share": 5,  # POST /api/storage/files/{id}/shares
    "health": 3,  # GET /health (status widgets, monitors)
}
MAX_FILES = 12  # a user past this many files deletes the oldest (keeps the store bounded)


@dataclass(frozen=True)
class SizeModel:
    """Log-normal file sizes: `median_bytes` and the spread `sigma` of ln(size)."""

    median_bytes: float
    sigma: float

    def draw(self, rng: random.Random, limit_bytes: int) -> int:
        """One size in 1..limit_bytes (redrawn above the limit; clamped after 20 tries)."""
        mu = math.log(self.median_bytes)
        for _ in range(20):
            size = int(rng.lognormvariate(mu, self.sigma))
            if 1 <= size <= limit_bytes:
                return size
        return max(1, min(limit_bytes, int(self.median_bytes)))

    def share_above(self, size_bytes: float) -> float:
        """The fraction of draws (before truncation) larger than `size_bytes`."""
        z = (math.log(size_bytes) - math.log(self.median_bytes)) / self.sigma
        return 0.5 * math.erfc(z / math.sqrt(2))


# Free users store documents and photos; pro users more media (bigger tail).
SIZE_MODELS = {
    "free": SizeModel(median_bytes=48 * KIB, sigma=1.7),  # ~4% above 1 MB, ~0.3% above 5 MB
    "pro": SizeModel(median_bytes=96 * KIB, sigma=1.9),  # ~11% above 1 MB, ~0.7% above 10 MB
}

CONTENT_TYPES = (
    ("pdf", "application/pdf"),
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("txt", "text/plain"),
    ("zip", "application/zip"),
)


def upload_size(rng: random.Random, plan: str, limit_mb: int | None = None) -> int:
    limit = (limit_mb if limit_mb is not None else PLAN_LIMIT_MB[plan]) * MIB
    return SIZE_MODELS[plan].draw(rng, limit)


def file_name(rng: random.Random) -> tuple[str, str]:
    """(file name, content type) of a made-up user file."""
    ext, content_type = rng.choice(CONTENT_TYPES)
    return f"file-{secrets.token_hex(4)}.{ext}", content_type


_BLOCK = os.urandom(MIB)  # incompressible; repeated for bigger files


def payload(size_bytes: int) -> bytes:
    whole, rest = divmod(size_bytes, MIB)
    return _BLOCK * whole + _BLOCK[:rest]


def multipart(field: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field; returns (body, Content-Type)."""
    boundary = f"----runbook-checks-{secrets.token_hex(12)}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


def wait_range(raw: str | None, default: tuple[float, float] = (0.5, 2.5)) -> tuple[float, float]:
    """LOAD_WAIT_S="min,max": a user's think time between two actions, in seconds."""
    if not raw:
        return default
    try:
        low, high = (float(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(
            f"LOAD_WAIT_S={raw!r}: expected 'min,max' in seconds, e.g. 0.5,2.5"
        ) from None
    if not 0 <= low <= high:
        raise ValueError(f"LOAD_WAIT_S={raw!r}: expected 0 <= min <= max")
    return low, high
