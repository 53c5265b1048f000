"""Object storage (S3 API: MinIO, moto, AWS) behind short timeouts and a thread pool.

boto3 is blocking, so every call runs in a dedicated executor with connect and read
timeouts of S3_TIMEOUT_S and no retries: the caller decides what a failure means (the
upload path spools the bytes, health reports the errno). The bucket is created on the
first call that reaches the server, so the API can start while storage is down.

Downloads from a plain-HTTP endpoint (the stack's moto or MinIO) are read on the event
loop once the bucket is known, and /health's HeadBucket is sent from there too
(s3_direct.py): a 200 is served from there, anything else is asked of boto3 again, so
errors are boto3's as before. The boto3 client (~0.1 s to make: the service model is read
and parsed) is made on the executor when first needed, or right after the API starts
(`warm_up`), never on the start's path to its first /health.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from files_api.config import Settings
from files_api.errors import ServiceError, nobody, storage_unavailable
from files_api.metrics import Metrics
from files_api.s3_direct import DirectS3

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

T = TypeVar("T")

StorageFailure = (BotoCoreError, ClientError, OSError)


class ObjectMissing(Exception):
    """The object is not in the bucket."""


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ObjectStore:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.bucket = settings.s3_bucket
        self.metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="s3")
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()
        self.on_failure: Callable[[], None] = nobody  # told of every failed operation
        self._settings = settings
        self._made: S3Client | None = None
        self._client_lock = threading.Lock()

        endpoint = settings.s3_endpoint_url
        self._direct = (
            DirectS3(
                endpoint,
                settings.s3_region,
                settings.aws_access_key_id,
                settings.aws_secret_access_key,
                settings.s3_timeout_s,
            )
            if endpoint is not None and endpoint.startswith("http://")
            else None
        )

    @property
    def _client(self) -> S3Client:
        """The boto3 client, made on first use (only ever on the executor's threads)."""
        if self._made is None:
            with self._client_lock:
                if self._made is None:
                    self._made = _make_client(self._settings)
        return self._made

    def warm_up(self) -> None:
        """Make the boto3 client on the executor now, off the caller's path."""
        self._executor.submit(lambda: self._client)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, operation: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except ObjectMissing:
            raise
        except StorageFailure as exc:
            self._failed(operation)
            if isinstance(exc, ClientError) and _code(exc) in {"NoSuchBucket"}:
                self._bucket_ready = False
            raise

    def _failed(self, operation: str) -> None:
        self.metrics.storage_errors.labels(operation=operation).inc()
        self.on_failure()

    # ------------------------------------------------------------ blocking helpers

    def _ensure_bucket_sync(self) -> None:
        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
                try:
                    self._client.create_bucket(Bucket=self.bucket)
                except ClientError as create_exc:
                    if _code(create_exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
            self._bucket_ready = True

    def _with_bucket(self, call: Callable[[], T]) -> T:
        if not self._bucket_ready:  # the lock only while the bucket is not known to exist
            self._ensure_bucket_sync()
        try:
            return call()
        except ClientError as exc:
            if _code(exc) != "NoSuchBucket":
                raise
            self._bucket_ready = False  # deleted behind our back (e.g. a reset): recreate once
            self._ensure_bucket_sync()
            return call()

    # ------------------------------------------------------------ async API

    async def check(self) -> None:
        """head_bucket (creating it if missing); raises the storage failure."""
        if self._direct is not None:
            try:
                found = await self._direct.head_bucket(self.bucket)
            except StorageFailure:  # a timeout, raised as botocore raises it
                self._failed("head_bucket")
                raise
            if found:
                self._bucket_ready = True
                return

        def call() -> None:
            self._bucket_ready = False
            self._ensure_bucket_sync()

        await self._run("head_bucket", call)

    async def put_file(self, key: str, path: Path, content_type: str, size: int) -> None:
        def put() -> None:
            with path.open("rb") as body:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentLength=size,
                    ContentType=content_type,
                )

        await self._run("put_object", lambda: self._with_bucket(put))

    async def put_stream(self, key: str, body: IO[bytes], content_type: str, size: int) -> None:
        def put() -> None:
            body.seek(0)
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentLength=size, ContentType=content_type
            )

        await self._run("put_object", lambda: self._with_bucket(put))

    async def get_bytes(self, key: str) -> bytes:
        def get() -> bytes:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in {"NoSuchKey", "404"} or _status(exc) == 404:
                    raise ObjectMissing(key) from exc
                raise
            return response["Body"].read()

        if self._direct is not None and self._bucket_ready:
            try:
                data = await self._direct.get(self.bucket, key)
            except StorageFailure:  # a timeout, raised as botocore raises it
                self._failed("get_object")
                raise
            if data is not None:
                return data
        return await self._run("get_object", lambda: self._with_bucket(get))

    async def delete(self, key: str) -> None:
        await self._run(
            "delete_object",
            lambda: self._with_bucket(
                lambda: self._client.delete_object(Bucket=self.bucket, Key=key)
            ),
        )


def _make_client(settings: Settings) -> S3Client:
    # boto3 (with s3transfer, ~50 ms of the API's imports) and S3's model (~0.1 s to read)
    # only once a client is needed, unless the fork server read them for every start
    from files_api.s3_session import s3_client

    return s3_client(
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        config=Config(
            connect_timeout=settings.s3_timeout_s,
            read_timeout=settings.s3_timeout_s,
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def storage_error(exc: BaseException, action: str) -> ServiceError:
    return storage_unavailable(exc, action)
