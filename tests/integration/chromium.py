"""A page rendered in headless Chromium with no network: what the HTML tests share."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

# what a self-contained page never holds: each would make the browser fetch something
REQUESTS = ("<script", "src=", "<link", "@import", "url(")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def screenshot(page: Path, scratch: Path, *, size: tuple[int, int] = (1280, 2000)) -> bytes:
    """`page` rendered by headless Chromium (skipped where it is not installed): the PNG."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip(
            "chromium is not installed (scripts/setup.sh installs Debian's chromium "
            "as root; apt-get install chromium)"
        )
    html = page.read_text()
    for request in REQUESTS:
        assert request not in html  # nothing to fetch: the page makes no request
    shot = scratch / f"{page.stem}.png"
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={scratch / 'profile'}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "HOME": str(scratch)},
    )
    assert shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert png_size(data) == size
    return data
