"""The evidence store: where bundles are kept beyond one machine (a folder, or S3).

`open_store(url)` reads `--store`: a folder path, or `s3://bucket/prefix` (boto3 finds the
endpoint and credentials the way it always does: AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3,
AWS_ACCESS_KEY_ID, profiles, instance roles). A bundle is stored under its id (the
folder's name): `<store>/<id>/<file>`.

- `upload(folder)` is idempotent per bundle id: a bundle already stored with the same
  manifest is not sent again; one stored with another manifest is refused (never
  overwritten). In S3 the manifest is written last, so an interrupted upload leaves a
  bundle without a manifest, which the next upload of it completes and which `fetch`
  reports as refused until then.
- `fetch(period, cache)` gives a local folder holding the period's bundles (the folder
  store is that folder; S3 bundles are downloaded afresh into the cache, every object of
  the bundle, so the review checks exactly what the store holds against its manifest).

The period is read from the bundle id (`<UTC timestamp>-<short id>`), so a quarter's
review does not download other quarters' evidence.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runbook_checks.errors import RunbookChecksError, UsageError
from runbook_checks.evidence.bundle import bundle_time
from runbook_checks.evidence.manifest import MANIFEST

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from runbook_checks.evidence.review import Period


class StoreError(RunbookChecksError):
    """The evidence store could not be read or written."""


@dataclass(frozen=True)
class Uploaded:
    bundle: str
    location: str  # where it is now: a folder or s3://bucket/prefix/<id>/
    sent: bool  # False: the store held this bundle already (same manifest)


def _in_period(bundle_id: str, period: Period) -> bool:
    moment = bundle_time(bundle_id)
    return moment is None or period.contains(moment)


def _manifest_of(folder: Path) -> bytes:
    path = folder / MANIFEST
    if not folder.is_dir() or not path.is_file():
        raise UsageError(
            f"{folder}: not an evidence bundle (no {MANIFEST})",
            hint="upload the folder a drill, game day or gate run wrote (evidence/<id>/)",
        )
    return path.read_bytes()


class EvidenceStore(Protocol):
    def describe(self) -> str: ...

    def upload(self, folder: Path) -> Uploaded: ...

    def fetch(self, period: Period, cache: Path) -> Path: ...


@dataclass(frozen=True)
class FolderStore:
    root: Path

    def describe(self) -> str:
        return str(self.root)

    def upload(self, folder: Path) -> Uploaded:
        manifest = _manifest_of(folder)
        target = self.root / folder.name
        if folder.resolve() == target.resolve():
            return Uploaded(folder.name, str(target), sent=False)
        if target.exists():
            stored = target / MANIFEST
            if stored.is_file() and stored.read_bytes() == manifest:
                return Uploaded(folder.name, str(target), sent=False)
            if stored.is_file():
                raise _conflict(folder.name, str(target))
            shutil.rmtree(target)  # an upload cut short: no manifest yet; complete it
        partial = self.root / f".{folder.name}.partial"
        try:
            shutil.rmtree(partial, ignore_errors=True)
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder, partial)
            partial.rename(target)
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise StoreError(
                f"cannot store {folder.name} in {self.root}: {exc}",
                hint="--store must name a folder you can write to",
            ) from exc
        return Uploaded(folder.name, str(target), sent=True)

    def fetch(self, period: Period, cache: Path) -> Path:
        if not self.root.is_dir():
            raise UsageError(
                f"--store {self.root}: no such folder",
                hint="name the folder the drills wrote their evidence to (or an s3:// URL)",
            )
        return self.root


def _conflict(bundle: str, where: str) -> StoreError:
    return StoreError(
        f"bundle {bundle} is already in the store ({where}) with other content; not overwritten",
        hint="a bundle is written once; check which of the two is the original with "
        "`runbook-checks verify-evidence`",
    )


@dataclass(frozen=True)
class S3Store:
    bucket: str
    prefix: str  # "" or "team/files" (no slashes at either end)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def describe(self) -> str:
        return self.url

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def client(self) -> S3Client:
        from runbook_checks.stack import aws_clients

        client: S3Client = aws_clients.client("s3")
        return client

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """A botocore error inside becomes a StoreError naming the store and the action."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StoreError(
                f"{self.url}: {what}: {error.get('Code', '?')}: {error.get('Message', exc)}",
                hint="check the bucket's name and that these credentials may read and write it",
            ) from None
        except BotoCoreError as exc:
            raise StoreError(
                f"{self.url}: {what}: {exc}",
                hint="boto3 reads the endpoint and credentials from the environment "
                "(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE)",
            ) from None

    def _stored_manifest(self, client: S3Client, bundle: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            answer = client.get_object(Bucket=self.bucket, Key=self._key(bundle, MANIFEST))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return answer["Body"].read()

    def upload(self, folder: Path) -> Uploaded:
        manifest = _manifest_of(folder)
        client = self.client()
        location = f"s3://{self.bucket}/{self._key(folder.name)}/"
        with self._errors(f"reading {self._key(folder.name, MANIFEST)}"):
            stored = self._stored_manifest(client, folder.name)
        if stored is not None:
            if stored == manifest:
                return Uploaded(folder.name, location, sent=False)
            raise _conflict(folder.name, location)
        files = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder) != Path(MANIFEST)
        )
        for path in [*files, folder / MANIFEST]:  # the manifest last: it says "complete"
            key = self._key(folder.name, path.relative_to(folder).as_posix())
            with self._errors(f"uploading {key}"):
                client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        return Uploaded(folder.name, location, sent=True)

    def _keys(self, client: S3Client, prefix: str, *, folders: bool) -> list[str]:
        """Object keys under `prefix`, or (`folders`) the next level's "folder" names."""
        out: list[str] = []
        paginator = client.get_paginator("list_objects_v2")
        pages = (
            paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            if folders
            else paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        )
        for page in pages:
            if folders:
                out += [c.get("Prefix", "") for c in page.get("CommonPrefixes", [])]
            else:
                out += [item["Key"] for item in page.get("Contents", [])]
        return out

    def bundles(self) -> list[str]:
        """The ids of the bundles under the prefix."""
        client = self.client()
        with self._errors("listing the bundles"):
            folders = self._keys(client, self._key("") + "/" if self.prefix else "", folders=True)
        names = (f.rstrip("/").rpartition("/")[2] for f in folders)
        return sorted(n for n in names if n and not n.startswith("."))

    def fetch(self, period: Period, cache: Path) -> Path:
        client = self.client()
        stored = set(self.bundles())
        folder = cache / _cache_name(self.url)
        folder.mkdir(parents=True, exist_ok=True)
        for bundle in sorted(stored):
            if _in_period(bundle, period):
                self._download(client, bundle, folder)
        for cached in folder.iterdir():  # gone from the store since: not evidence any more
            if cached.name not in stored and _in_period(cached.name, period):
                shutil.rmtree(cached, ignore_errors=True)
        return folder

    def _download(self, client: S3Client, bundle: str, into: Path) -> None:
        """Every object of the bundle, afresh (what the store holds now is what is checked)."""
        partial = into / f".{bundle}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        base = self._key(bundle) + "/"
        with self._errors(f"reading {base}"):
            for key in self._keys(client, base, folders=False):
                name = key[len(base) :]
                if not name or ".." in Path(name).parts or name.startswith("/"):
                    continue
                target = partial / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        final = into / bundle
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)


def _cache_name(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def default_cache() -> Path:
    """Where bundles fetched from a remote store are kept: ~/.cache/runbook-checks/store."""
    return Path.home() / ".cache" / "runbook-checks" / "store"


def open_store(url: str) -> EvidenceStore:
    """`--store URL`: `s3://bucket[/prefix]`, or a folder."""
    text = url.strip()
    if text.startswith("s3://"):
        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        if not bucket:
            raise UsageError(
                f"--store {url!r}: no bucket", hint="write s3://BUCKET or s3://BUCKET/PREFIX"
            )
        return S3Store(bucket, prefix.strip("/"))
    if "://" in text:
        raise UsageError(
            f"--store {url!r}: only folders and s3:// URLs are evidence stores",
            hint="write a folder path or s3://BUCKET/PREFIX",
        )
    if not text:
        raise UsageError("--store: empty", hint="write a folder path or s3://BUCKET/PREFIX")
    return FolderStore(Path(text))
