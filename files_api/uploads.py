"""Receiving an upload: stream the multipart body, under a deadline, into a temp file.

The body is parsed as it arrives (python-multipart's streaming parser), so the service
controls the two things a web framework's form parsing would hide: the time allowed to
receive the body (UPLOAD_TIMEOUT_S, the runbook's `fastify.server.timeout`) and the
bytes kept (nothing beyond the plan's limit is stored; the size is still counted, so the
413 states the real size).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from files_api.errors import ServiceError
from files_api.rules import normalize_content_type, sanitize_filename

FILE_FIELD = "file"
MEMORY_LIMIT = 1024 * 1024  # bytes kept in memory before the temp file rolls to disk
_USAGE = "send multipart/form-data with the file in a field named 'file' (curl -F file=@path)"


@dataclass
class ReceivedFile:
    """An uploaded file held in a temp file until it is stored (close() it when done)."""

    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    body: IO[bytes]
    complete: bool  # False when the size went over the kept limit (bytes were dropped)

    def close(self) -> None:
        self.body.close()


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    is_file: bool = False


class _Sink:
    """Collects the 'file' part; everything else is ignored."""

    def __init__(self, keep_limit: int, tmp_dir: Path) -> None:
        self.keep_limit = keep_limit
        self.tmp_dir = tmp_dir
        self.part = _Part()
        self.body: tempfile.SpooledTemporaryFile[bytes] | None = None
        self.filename = ""
        self.content_type = ""
        self.size = 0
        self.digest = hashlib.sha256()
        self.files_seen = 0
        self.file_ended = False  # the file part's closing boundary arrived
        self.error: str | None = None

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        name = bytes(self.part.header_field).decode("latin-1").strip().lower()
        self.part.headers[name] = bytes(self.part.header_value).decode("latin-1").strip()
        self.part.header_field = bytearray()
        self.part.header_value = bytearray()

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self.part.headers.get("content-disposition"))
        if disposition != b"form-data" or options.get(b"name") != FILE_FIELD.encode():
            return
        self.files_seen += 1
        if self.files_seen > 1:
            self.error = "more than one 'file' field in the request; upload one file per request"
            return
        self.part.is_file = True
        raw_name = options.get(b"filename", b"").decode("utf-8", errors="replace")
        self.filename = sanitize_filename(raw_name)
        self.content_type = normalize_content_type(self.part.headers.get("content-type"))
        self.body = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by ReceivedFile)
            max_size=MEMORY_LIMIT, mode="w+b", dir=str(self.tmp_dir)
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.part.is_file or self.body is None or self.error:
            return
        chunk = data[start:end]
        self.size += len(chunk)
        if self.size <= self.keep_limit:
            self.body.write(chunk)
            self.digest.update(chunk)

    def on_part_end(self) -> None:
        if self.part.is_file:
            self.file_ended = True
        self.part.is_file = False


async def receive_upload(
    stream: AsyncIterator[bytes],
    content_type_header: str | None,
    *,
    keep_limit: int,
    deadline_s: float,
    tmp_dir: Path,
) -> ReceivedFile:
    """Parse the request body; raise ServiceError 400 (malformed) or 408 (too slow)."""
    media_type, params = parse_options_header(content_type_header or "")
    boundary = params.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise ServiceError(
            400,
            f"Expected a multipart/form-data body, got Content-Type "
            f"{content_type_header or 'none'!r}; {_USAGE}",
        )
    tmp_dir.mkdir(parents=True, exist_ok=True)
    sink = _Sink(keep_limit, tmp_dir)
    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": sink.on_part_begin,
            "on_header_field": sink.on_header_field,
            "on_header_value": sink.on_header_value,
            "on_header_end": sink.on_header_end,
            "on_headers_finished": sink.on_headers_finished,
            "on_part_data": sink.on_part_data,
            "on_part_end": sink.on_part_end,
        },
    )
    received = 0
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline_s):
            async for chunk in stream:
                received += len(chunk)
                parser.write(chunk)
            parser.finalize()
    except TimeoutError:
        _discard(sink)
        raise ServiceError(
            408,
            f"Upload timed out: the request body was not received within {deadline_s:g}s "
            f"(UPLOAD_TIMEOUT_S); {received} bytes arrived in "
            f"{time.monotonic() - started:.1f}s. Retry on a faster link, or raise "
            "UPLOAD_TIMEOUT_S for large files.",
            "ETIMEDOUT",
        ) from None
    except MultipartParseError as exc:
        _discard(sink)
        raise ServiceError(400, f"Malformed multipart body: {exc}; {_USAGE}") from None
    except BaseException:  # client gone, cancelled ...: drop the partial file, re-raise
        _discard(sink)
        raise
    if sink.body is not None and not sink.file_ended and sink.error is None:
        # python-multipart's finalize() does not complain: a body cut after the file's
        # first bytes would otherwise be stored, truncated, and acknowledged
        sink.error = "the body ended inside the file part (no closing boundary): incomplete"
    if sink.error is not None or sink.body is None:
        _discard(sink)
        raise ServiceError(400, f"Bad upload: {sink.error or 'no file field'}; {_USAGE}")
    sink.body.seek(0)
    return ReceivedFile(
        filename=sink.filename,
        content_type=sink.content_type,
        size_bytes=sink.size,
        sha256=sink.digest.hexdigest(),
        body=sink.body,
        complete=sink.size <= keep_limit,
    )


def _discard(sink: _Sink) -> None:
    if sink.body is not None:
        sink.body.close()
