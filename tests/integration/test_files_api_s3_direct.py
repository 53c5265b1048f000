"""Downloads and /health's HeadBucket on the event loop (files_api/s3_direct.py): against
the stack's real object store, the bytes boto3 stored come back without boto3, a bucket
that is there answers without the boto3 client ever being made, and what is not a plain
200 (a missing key, a missing bucket) is left to boto3, whose answer the API gives as
before; against a black hole (a listening socket that never answers), the download fails
on the loop exactly as boto3 fails it: same class, same message, same errno, one
timeout."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
from pathlib import Path

import botocore.auth
import pytest
from botocore.exceptions import ReadTimeoutError

from files_api.config import Settings
from files_api.errors import errno_name
from files_api.metrics import Metrics
from files_api.s3_direct import DirectS3
from files_api.storage import ObjectMissing, ObjectStore
from runbook_checks.stack.base import Stack


def _store(tmp_path: Path, endpoint: str | None, **env: str) -> ObjectStore:
    settings = {
        "DATABASE_URL": "postgresql://app:x@127.0.0.1:1/files",
        "LOG_DIR": str(tmp_path),
        "ADMIN_TOKEN": "admin-token-123",
        **env,
    }
    if endpoint is not None:
        settings["S3_ENDPOINT_URL"] = endpoint
    return ObjectStore(Settings.from_env(settings), Metrics("test"))


def _record_boto3_gets(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys boto3 is asked for from now on (it still answers them)."""
    boto3_get = store._client.get_object
    asked: list[str] = []

    def recorded(**kwargs: str) -> object:
        asked.append(kwargs["Key"])
        return boto3_get(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store._client, "get_object", recorded)
    return asked


def _direct(stack: Stack) -> DirectS3:
    ep = stack.endpoints
    return DirectS3(ep.s3_endpoint, ep.aws_region, ep.s3_access_key, ep.s3_secret_key, 2.0)


def test_the_bytes_boto3_stored_come_back_and_the_rest_is_left_to_boto3(
    fresh_stack: Stack,
) -> None:
    s3 = fresh_stack.endpoints.boto3_client("s3")
    s3.create_bucket(Bucket="direct-get")
    data = os.urandom(600_000)  # several reads
    s3.put_object(Bucket="direct-get", Key="users/a/b", Body=data)
    direct = _direct(fresh_stack)
    assert asyncio.run(direct.get("direct-get", "users/a/b")) == data
    assert asyncio.run(direct.get("direct-get", "users/a/missing")) is None
    assert asyncio.run(direct.get("no-such-bucket", "users/a/b")) is None
    assert asyncio.run(direct.head_bucket("direct-get")) is True
    assert asyncio.run(direct.head_bucket("no-such-bucket")) is None


def test_the_health_probe_needs_no_boto3_client_while_the_bucket_is_there(
    fresh_stack: Stack, tmp_path: Path
) -> None:
    """The client (~0.1 s to make) stays off the API's way to its first green /health;
    a missing bucket is still made by boto3, as before."""
    ep = fresh_stack.endpoints
    keys = {"AWS_ACCESS_KEY_ID": ep.s3_access_key, "AWS_SECRET_ACCESS_KEY": ep.s3_secret_key}
    ep.boto3_client("s3").create_bucket(Bucket="probed")
    there = _store(tmp_path, ep.s3_endpoint, S3_BUCKET="probed", **keys)
    missing = _store(tmp_path, ep.s3_endpoint, S3_BUCKET="made-by-the-probe", **keys)
    try:
        asyncio.run(there.check())
        assert there._made is None
        asyncio.run(missing.check())
        assert missing._made is not None  # asked boto3, which made the bucket
    finally:
        there.close()
        missing.close()
    ep.boto3_client("s3").head_bucket(Bucket="made-by-the-probe")


def test_the_store_serves_downloads_on_the_loop_once_the_bucket_is_known(
    fresh_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = fresh_stack.endpoints
    store = _store(
        tmp_path,
        ep.s3_endpoint,
        S3_BUCKET="direct-store",
        AWS_ACCESS_KEY_ID=ep.s3_access_key,
        AWS_SECRET_ACCESS_KEY=ep.s3_secret_key,
    )
    asked_boto3 = _record_boto3_gets(store, monkeypatch)

    async def scenario() -> tuple[bytes, bytes]:
        await store.check()  # makes the bucket: it is known from now on
        with (tmp_path / "upload").open("w+b") as body:
            body.write(b"stored bytes")
            await store.put_stream("users/u/f", body, "text/plain", 12)
        first = await store.get_bytes("users/u/f")
        second = await store.get_bytes("users/u/f")
        with pytest.raises(ObjectMissing):
            await store.get_bytes("users/u/gone")
        return first, second

    try:
        assert asyncio.run(scenario()) == (b"stored bytes", b"stored bytes")
    finally:
        store.close()
    assert asked_boto3 == ["users/u/gone"]  # only what the loop could not answer


def _failure(store: ObjectStore, key: str) -> BaseException:
    async def get() -> bytes:
        return await store.get_bytes(key)

    with pytest.raises(ReadTimeoutError) as caught:
        asyncio.run(get())
    return caught.value


def test_a_black_hole_times_out_on_the_loop_as_boto3_says_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=16) as hole:
        endpoint = f"http://127.0.0.1:{hole.getsockname()[1]}"
        store = _store(tmp_path, endpoint, S3_TIMEOUT_S="0.3")
        told: list[str] = []
        store.on_failure = lambda: told.append("storage")
        asked_boto3 = _record_boto3_gets(store, monkeypatch)
        try:
            store._bucket_ready = True  # the bucket is known: downloads go on the loop
            on_the_loop = _failure(store, "users/u/f")
            assert asked_boto3 == []  # failed on the loop, and only once
            store._direct = None  # what boto3 alone answers
            from_boto3 = _failure(store, "users/u/f")
            assert asked_boto3 == ["users/u/f"]
        finally:
            store.close()
    assert str(on_the_loop) == str(from_boto3)
    assert str(on_the_loop) == f'Read timeout on endpoint URL: "{endpoint}/files/users/u/f"'
    assert errno_name(on_the_loop) == errno_name(from_boto3) == "ETIMEDOUT"
    assert told == ["storage", "storage"]  # /health hears of both
    errors = store.metrics.storage_errors.labels(operation="get_object")._value.get()
    assert errors == 2


def test_a_black_hole_fails_the_health_probe_on_the_loop(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=16) as hole:
        endpoint = f"http://127.0.0.1:{hole.getsockname()[1]}"
        store = _store(tmp_path, endpoint, S3_TIMEOUT_S="0.3")
        told: list[str] = []
        store.on_failure = lambda: told.append("storage")
        try:
            with pytest.raises(ReadTimeoutError) as caught:
                asyncio.run(store.check())
            assert store._made is None  # one timeout, on the loop
        finally:
            store.close()
    assert str(caught.value) == f'Read timeout on endpoint URL: "{endpoint}/files"'
    assert told == ["storage"]
    assert store.metrics.storage_errors.labels(operation="head_bucket")._value.get() == 1


def test_https_and_aws_endpoints_stay_with_boto3(tmp_path: Path) -> None:
    for endpoint in ("https://s3.example.test", None):  # None: AWS itself
        store = _store(tmp_path, endpoint)
        try:
            assert store._direct is None
        finally:
            store.close()


class _Captured(Exception):
    """Stops boto3 once its signed request is seen."""


def test_the_request_is_signed_as_boto3_signs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that checks signatures (MinIO) takes the loop's request as boto3's."""
    moment = datetime.datetime(2026, 12, 6, 2, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_, **__: moment)
    store = _store(
        tmp_path,
        "http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="a-secret-key",
        S3_REGION="eu-west-1",
    )
    sent: dict[str, str] = {}

    def capture(request: object, **_: object) -> None:
        sent["url"] = str(getattr(request, "url", ""))
        for name, value in getattr(request, "headers", {}).items():
            sent[name.lower()] = value.decode() if isinstance(value, bytes) else str(value)
        raise _Captured

    store._client.meta.events.register("before-send.s3.GetObject", capture)
    store._client.meta.events.register("before-send.s3.HeadBucket", capture)
    try:
        assert store._direct is not None
        for call, url, method in (
            (
                lambda: store._client.get_object(Bucket="files", Key="users/u/f v"),
                store._direct.url("files", "users/u/f v"),
                "GET",
            ),
            (
                lambda: store._client.head_bucket(Bucket="files"),
                store._direct.bucket_url("files"),
                "HEAD",
            ),
        ):
            sent.clear()
            with pytest.raises(_Captured):
                call()
            lines = store._direct._request(url, method).decode("latin-1").split("\r\n")
            assert lines[0].startswith(f"{method} ")
            assert url == sent["url"]
            ours = {n.lower(): v for n, _, v in (line.partition(": ") for line in lines[1:])}
            for header in ("authorization", "x-amz-date", "x-amz-content-sha256"):
                assert ours[header] == sent[header], (method, header)
            assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date" in ours["authorization"]
    finally:
        store.close()
