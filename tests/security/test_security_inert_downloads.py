"""Uploaded content is never served in a way a browser would render or run.

Every way back to the bytes (the owner's download, a share link, a share's /download)
answers with `Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`,
`Content-Security-Policy: sandbox`, and `application/octet-stream` for every active type
(HTML, SVG, XML, script ...), however the client spelled it; a file name cannot inject a
header. And a share link with a real (not simulated) expiry stops serving once it passes.
"""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from files_profile import FilesClient
from runbook_checks.stack.base import Stack

pytestmark = pytest.mark.integration

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'

ACTIVE = [
    ("page.html", "text/html", HTML),
    ("page.html", "TEXT/HTML; charset=utf-8", HTML),
    ("page.htm", " text/html ", HTML),
    ("logo.svg", "image/svg+xml", SVG),
    ("logo.svg", "image/svg+xml; charset=utf-8", SVG),
    ("page.xhtml", "application/xhtml+xml", HTML),
    ("feed.xml", "text/xml", HTML),
    ("feed.xml", "application/xml", HTML),
    ("x.js", "application/javascript", b"alert(1)"),
    ("x.mjs", "text/javascript", b"alert(1)"),
    ("x.css", "text/css", b"body{background:url(javascript:alert(1))}"),
    ("x.xsl", "application/xslt+xml", HTML),
    ("x.rdf", "application/rdf+xml", HTML),
    ("page.html", "application/octet-stream", HTML),  # active by name, inert by type
    ("page.html", "", HTML),
    ("page.html", "not a type", HTML),
    ("image.png", "image/png", HTML),  # a lie: nosniff keeps the browser from guessing
]


def _ways_back(
    stack: Stack, name: str, content_type: str, content: bytes
) -> list[tuple[str, httpx.Response]]:
    api = stack.endpoints.api_url
    with FilesClient(api, stack.endpoints.admin_token) as client:
        user = client.create_user(f"inert-{secrets.token_hex(3)}@drill.test", "pro")
        response = client.http.post(
            "/api/storage/files/upload",
            headers=user.auth,
            files={"file": (name, content, content_type)}
            if content_type
            else {"file": (name, content)},
        )
        assert response.status_code == 201, response.text
        file_id = response.json()["id"]
        token = client.share(user, file_id)
        return [
            ("owner download", client.download(user, file_id)),
            ("share link", client.open_share(token)),
            ("share download", client.http.get(f"/share/{token}/download")),
        ]


@pytest.mark.parametrize(("name", "content_type", "content"), ACTIVE)
def test_active_content_is_served_inert(
    fresh_stack: Stack, name: str, content_type: str, content: bytes
) -> None:
    for way, response in _ways_back(fresh_stack, name, content_type, content):
        assert response.status_code == 200, (way, response.text)
        assert response.content == content, way
        headers = response.headers
        assert headers["content-type"].split(";")[0] == "application/octet-stream" or (
            content_type == "image/png" and headers["content-type"] == "image/png"
        ), (way, headers["content-type"])
        assert headers["content-disposition"].startswith("attachment;"), way
        assert headers["x-content-type-options"] == "nosniff", way
        assert headers["content-security-policy"] == "sandbox", way


@pytest.mark.parametrize(
    "name",
    [
        'evil"; filename="x.html',
        "a\r\nSet-Cookie: pwned=1\r\n.html",
        "a\nContent-Type: text/html\n.html",
        "../../../../etc/passwd",
        "..\\..\\windows\\system32.html",
        "\u202etxt.html",  # right-to-left override
        "r\u00e9sum\u00e9 \U0001f600.html",
        "x" * 400 + ".html",
    ],
)
def test_a_file_name_cannot_inject_a_header_or_a_path(fresh_stack: Stack, name: str) -> None:
    for way, response in _ways_back(fresh_stack, name, "text/html", HTML):
        assert response.status_code == 200, (way, response.text)
        assert "set-cookie" not in response.headers, way
        assert response.headers["content-type"] == "application/octet-stream", way
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="'), disposition
        assert "\r" not in disposition
        assert "\n" not in disposition
        fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert "/" not in fallback, fallback
        assert "\\" not in fallback, fallback
        assert disposition.count('filename="') == 1, disposition


def test_a_share_stops_serving_when_its_real_expiry_passes(fresh_stack: Stack) -> None:
    api = fresh_stack.endpoints.api_url
    with FilesClient(api, fresh_stack.endpoints.admin_token) as client:
        user = client.create_user(f"expiry-{secrets.token_hex(3)}@drill.test", "pro")
        upload = client.upload(user, "a.txt", b"soon gone", "text/plain")
        assert upload.file_id is not None
        token = client.share(user, upload.file_id, expires_in_s=1)
        assert client.open_share(token).status_code == 200
        deadline = time.monotonic() + 10
        while client.open_share(token).status_code == 200:
            assert time.monotonic() < deadline, "the share still serves 10 s after a 1 s expiry"
            time.sleep(0.1)
        for _ in range(3):  # and it stays expired
            response = client.http.get(f"/share/{token}/download")
            assert response.status_code == 404
            assert response.json() == {"detail": "Share link expired or invalid"}
