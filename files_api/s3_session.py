"""The process's one boto3 session, with S3's service model already read into it.

Making a boto3 client costs ~0.1 s of CPU, nearly all of it botocore reading and parsing
S3's model and endpoint rules; a second client of the same session costs ~5 ms. The fork
server that starts the API (files_profile's `preload`) imports this module once, so each
forked API makes its client from a session that has read them (a drill starts the API
~30 times). A cold start imports it when it first makes its client
(`storage._make_client`, on the executor after the start), as it imported boto3 before.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_SESSION = boto3.session.Session()
_LOCK = threading.Lock()  # a boto3 session is not safe to make clients from at once


def s3_client(**kwargs: Any) -> S3Client:
    """An S3 client of the shared session (`kwargs` as `Session.client` takes them)."""
    with _LOCK:
        client: S3Client = _SESSION.client("s3", **kwargs)
    return client


# Read the models now: a client that is never used (no request, no credentials looked up)
s3_client(
    region_name="us-east-1",
    endpoint_url="http://127.0.0.1:9",
    aws_access_key_id="unused",
    aws_secret_access_key="unused",
)
