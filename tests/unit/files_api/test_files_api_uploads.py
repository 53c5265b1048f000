"""Receiving an upload body: the streaming multipart reader and its deadline (no server)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from files_api.errors import ServiceError
from files_api.uploads import ReceivedFile, receive_upload

BOUNDARY = "----runbookchecks"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _part(name: str, body: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode("utf-8") + b"\r\n" + body + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def _chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _receive(data: bytes, tmp_path: Path, keep_limit: int = 1 << 20) -> ReceivedFile:
    return asyncio.run(
        receive_upload(
            _chunks(data), CONTENT_TYPE, keep_limit=keep_limit, deadline_s=30, tmp_dir=tmp_path
        )
    )


def test_the_file_field_is_read_with_its_name_type_size_and_checksum(tmp_path: Path) -> None:
    payload = b"hello\r\n--not-a-boundary\r\nworld" * 100
    data = _body(
        _part("note", b"ignored"), _part("file", payload, "r\xe9sum\xe9.pdf", "Application/PDF")
    )
    received = _receive(data, tmp_path)
    try:
        assert received.filename == "résumé.pdf"
        assert received.content_type == "application/pdf"
        assert received.size_bytes == len(payload)
        assert received.sha256 == hashlib.sha256(payload).hexdigest()
        assert received.complete
        assert received.body.read() == payload
    finally:
        received.close()


def test_bytes_beyond_the_limit_are_counted_but_not_kept(tmp_path: Path) -> None:
    payload = b"x" * 5000
    received = _receive(_body(_part("file", payload, "big.bin")), tmp_path, keep_limit=1000)
    try:
        assert received.size_bytes == 5000
        assert not received.complete
        assert len(received.body.read()) <= 1000  # nothing past the limit is kept
    finally:
        received.close()


def test_a_missing_content_type_is_stored_as_bytes(tmp_path: Path) -> None:
    received = _receive(_body(_part("file", b"abc", "a")), tmp_path)
    received.close()
    assert received.content_type == "application/octet-stream"


@pytest.mark.parametrize(
    ("data", "content_type", "needle"),
    [
        (b"plain", "text/plain", "Expected a multipart/form-data body"),
        (b"x", "multipart/form-data", "Expected a multipart/form-data body"),  # no boundary
        (_body(_part("other", b"abc", "a.txt")), CONTENT_TYPE, "no file field"),
        (
            _body(_part("file", b"a", "a.txt"), _part("file", b"b", "b.txt")),
            CONTENT_TYPE,
            "more than one 'file' field",
        ),
    ],
)
def test_bad_bodies_answer_400_saying_how_to_send_a_file(
    tmp_path: Path, data: bytes, content_type: str, needle: str
) -> None:
    with pytest.raises(ServiceError) as info:
        asyncio.run(
            receive_upload(
                _chunks(data), content_type, keep_limit=100, deadline_s=30, tmp_dir=tmp_path
            )
        )
    assert info.value.status_code == 400
    assert needle in info.value.detail
    assert "curl -F file=@path" in info.value.detail


def test_a_body_slower_than_the_deadline_answers_408(tmp_path: Path) -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield _part("file", b"first bytes", "slow.bin")
        await asyncio.Event().wait()  # the client stops sending
        yield b""  # pragma: no cover

    with pytest.raises(ServiceError) as info:
        asyncio.run(
            receive_upload(
                stalled(), CONTENT_TYPE, keep_limit=100, deadline_s=0.01, tmp_dir=tmp_path
            )
        )
    assert info.value.status_code == 408
    assert "UPLOAD_TIMEOUT_S" in info.value.detail
    assert info.value.detail.startswith("Upload timed out")
