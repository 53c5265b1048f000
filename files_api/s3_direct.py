"""GetObject and HeadBucket on the event loop, for a plain-HTTP S3 server (the stack's
moto or MinIO): a request signed as boto3 signs it (SigV4, path style) and sent on a
connection of its own, with no thread hop and none of boto3's per-call work (about 1 ms
of CPU a call, in a thread that competes with the event loop for the interpreter).
Downloads read objects this way, and /health probes the bucket (so neither needs the
boto3 client, which costs ~0.1 s to make: the API can serve before it exists).

Only a 200 (for GetObject, with a Content-Length) is answered here. Anything else (an
error status, a refused or reset connection, a chunked body) returns None, and the caller
asks boto3, whose answer, error or not, is then exactly what it always was. A timeout is
raised here, as botocore raises it (same class, same message), so a black-holed store
costs S3_TIMEOUT_S once, not twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

T = TypeVar("T")

CHUNK = 256 * 1024
HEAD_LIMIT = 64 * 1024


class DirectS3:
    def __init__(
        self, endpoint_url: str, region: str, access_key: str, secret_key: str, timeout_s: float
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"DirectS3 serves plain-HTTP endpoints only, not {endpoint_url}")
        self.base = endpoint_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.netloc = parts.netloc
        self.timeout_s = timeout_s
        self._signer = S3SigV4Auth(Credentials(access_key, secret_key), "s3", region)

    def url(self, bucket: str, key: str) -> str:
        """The URL boto3 sends a path-style GetObject to (and names in its errors)."""
        return f"{self.base}/{bucket}/{quote(key, safe='/~')}"

    def bucket_url(self, bucket: str) -> str:
        """The URL boto3 sends a path-style HeadBucket to."""
        return f"{self.base}/{bucket}"

    def _request(self, url: str, method: str = "GET") -> bytes:
        request = AWSRequest(method=method, url=url, headers={"Host": self.netloc}, data=b"")
        self._signer.add_auth(request)
        path = url[len(self.base) :]
        lines = [f"{method} {path} HTTP/1.1", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or None where boto3 must answer instead."""
        return await self._exchange("GET", self.url(bucket, key), self._response)

    async def head_bucket(self, bucket: str) -> bool | None:
        """True when the bucket answers 200, or None where boto3 must answer instead."""
        return await self._exchange("HEAD", self.bucket_url(bucket), self._status_ok)

    async def _exchange(
        self,
        method: str,
        url: str,
        read: Callable[[asyncio.StreamReader], Awaitable[T | None]],
    ) -> T | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError as exc:
            raise ConnectTimeoutError(endpoint_url=url, error=exc) from exc
        except OSError:
            return None
        try:
            writer.write(self._request(url, method))
            return await read(reader)
        except TimeoutError as exc:
            raise ReadTimeoutError(endpoint_url=url, error=exc) from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return None
        finally:
            writer.close()

    async def _head_lines(self, reader: asyncio.StreamReader) -> list[str] | None:
        """The response's status line and headers when its status is 200, else None."""
        async with asyncio.timeout(self.timeout_s):
            head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEAD_LIMIT:
            return None
        lines = head.decode("latin-1").split("\r\n")
        return lines if lines[0].split(" ", 2)[1:2] == ["200"] else None

    async def _status_ok(self, reader: asyncio.StreamReader) -> bool | None:
        return True if await self._head_lines(reader) is not None else None

    async def _response(self, reader: asyncio.StreamReader) -> bytes | None:
        lines = await self._head_lines(reader)
        if lines is None:
            return None
        header_lines = lines[1:]
        length: int | None = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            return None
        body = bytearray()
        while len(body) < length:  # each read within the timeout, as botocore's reads
            async with asyncio.timeout(self.timeout_s):
                chunk = await reader.read(min(CHUNK, length - len(body)))
            if not chunk:
                return None
            body += chunk
        return bytes(body)
