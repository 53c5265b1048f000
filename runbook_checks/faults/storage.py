"""Storage faults: the object store out of the API's reach, and the storage quota full.

`StorageOutage` is a runbook's object-storage provider outage: with mode "down" or "blackhole" the
API's network path to the object store is cut or silenced (the network faults on the
`object_store` proxy, reused as they are: the store keeps every object and an operator
still reaches it directly); with mode "kill" the object store's process is killed.
moto, the local object store, keeps objects in memory, so **mode "kill" loses every
stored object**: it is for outage detection drills only, never for a drill that checks
that acknowledged uploads survive. Its revert starts moto again and recreates the empty
bucket.

`StorageQuotaExceeded` is the runbook's "Storage Quota Exceeded": the API restarted with
its storage quota (the kit's `twin.quota_setting`) just above what is stored, then filled
to the byte with real uploads by a drill user, some of them soft-deleted (they still
count until an admin cleans deleted files up, so the runbook's "clean up deleted files"
has bytes to free). Revert removes the user with its files and restores the previous quota.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.faults.client import create_drill_user, drill_client
from runbook_checks.faults.data import s3_client, unsupported_without
from runbook_checks.faults.deploy import change_api_settings
from runbook_checks.faults.network import NetworkBlackhole, NetworkDown
from runbook_checks.faults.process import ProcessKill
from runbook_checks.stack.accounts import admin_connect
from runbook_checks.stack.base import Capability, Stack

__all__ = ["StorageOutage", "StorageQuotaExceeded", "stored_bytes"]

OutageMode = Literal["down", "blackhole", "kill"]
_OUTAGE_NEEDS: Mapping[str, frozenset[Capability]] = {
    "down": frozenset({Capability.PROXY}),
    "blackhole": frozenset({Capability.PROXY}),
    "kill": frozenset({Capability.KILL, Capability.DATA}),
}
KIB = 1024
_BUCKET_EXISTS = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


def stored_bytes(stack: Stack) -> int:
    """What the API counts against the quota: every row not yet purged (soft-deleted
    ones included), as the twin computes its used bytes."""
    with admin_connect(stack) as conn:
        row = conn.execute(
            sql.SQL("SELECT coalesce(sum(size_bytes), 0)::bigint FROM {}").format(
                sql.Identifier(stack.kit.data.objects)
            )
        ).fetchone()
    return int(str(row[0])) if row else 0


def _count_objects(stack: Stack) -> int | None:
    try:
        pages = (
            s3_client(stack)
            .get_paginator("list_objects_v2")
            .paginate(Bucket=stack.endpoints.s3_bucket)
        )
        return sum(int(page.get("KeyCount", 0)) for page in pages)
    except (BotoCoreError, ClientError):
        return None


def _ensure_bucket(stack: Stack) -> str:
    bucket = stack.endpoints.s3_bucket
    client = s3_client(stack)
    try:
        client.head_bucket(Bucket=bucket)
        return f"bucket {bucket} is there"
    except ClientError:
        pass
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:  # the API recreated it first (it does on its next call)
        if exc.response.get("Error", {}).get("Code") not in _BUCKET_EXISTS:
            raise
        return f"bucket {bucket} is there (recreated by the API)"
    return f"recreated the empty bucket {bucket}"


@dataclass(frozen=True)
class StorageOutage(Fault):
    """The object store out of the API's reach: its network path "down" (refused) or
    "blackhole"d (silent), or its process killed ("kill": moto loses every object)."""

    kind: ClassVar[str] = "storage-outage"
    requires: ClassVar[frozenset[Capability]] = _OUTAGE_NEEDS["down"]
    requires_by_mode: ClassVar[Mapping[str, frozenset[Capability]]] = _OUTAGE_NEEDS

    mode: OutageMode = "down"

    def __post_init__(self) -> None:
        if self.mode not in _OUTAGE_NEEDS:
            raise UsageError(
                f"{self.kind}: unknown mode {self.mode!r}; expected one of "
                f"{', '.join(_OUTAGE_NEEDS)}"
            )

    def unsupported_reason(self, stack: Stack) -> str | None:
        return unsupported_without(self, stack)

    def servers(self) -> frozenset[str]:
        return frozenset({"object_store"})

    def describe(self) -> str:
        what = {
            "down": "its network path down (connections refused)",
            "blackhole": "its network path black-holed (nothing answers)",
            "kill": "its process killed (moto loses every stored object)",
        }[self.mode]
        return f"object store outage: {what}"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        if self.mode == "kill":
            objects = _count_objects(stack)
            # registered first: on revert it runs after the object store is back
            handle.did(
                f"the object store held {objects if objects is not None else '?'} "
                "object(s) before the kill; they are lost",
                lambda: handle.notes.append(_ensure_bucket(stack)),
                "recreate the bucket",
            )
            inner = ProcessKill("object_store").inject(stack, clock=handle.clock)
        elif self.mode == "blackhole":
            inner = NetworkBlackhole("object_store").inject(stack, clock=handle.clock)
        else:
            inner = NetworkDown("object_store").inject(stack, clock=handle.clock)
        handle.did(
            f"{inner.fault.describe()}: {'; '.join(inner.notes)}",
            inner.revert,
            f"revert {inner.fault.describe()}",
        )


@dataclass(frozen=True)
class StorageQuotaExceeded(Fault):
    """The API's storage quota reached: the quota setting set just above what is
    stored, then filled by a drill user's uploads, part of them soft-deleted."""

    kind: ClassVar[str] = "storage-quota-exceeded"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.RECONFIGURE, Capability.DATA})

    quota_bytes: int | None = None  # None: what is stored now + fill_kb
    fill_kb: int = 256  # bytes uploaded to reach the quota (when quota_bytes is None)
    file_kb: int = 32  # size of each filler upload
    deleted_fraction: float = 0.5  # share of the filler files soft-deleted
    timeout_s: float = 30.0  # per upload

    def __post_init__(self) -> None:
        if self.quota_bytes is not None and self.quota_bytes < 1:
            raise UsageError(
                f"{self.kind}: quota_bytes must be >= 1 or None, got {self.quota_bytes!r}"
            )
        if self.fill_kb < 1 or self.file_kb < 1:
            raise UsageError(f"{self.kind}: fill_kb and file_kb must be >= 1")
        if self.fill_kb // self.file_kb > 1000:
            raise UsageError(
                f"{self.kind}: {self.fill_kb} KB in {self.file_kb} KB files is "
                "more than 1000 uploads",
                hint="raise file_kb",
            )
        if not 0 <= self.deleted_fraction <= 1:
            raise UsageError(
                f"{self.kind}: deleted_fraction must be in [0, 1], got {self.deleted_fraction!r}"
            )

    def describe(self) -> str:
        quota = (
            f"{self.quota_bytes} bytes"
            if self.quota_bytes is not None
            else f"what is stored + {self.fill_kb} KB"
        )
        return (
            f"storage quota of {quota}, filled with {self.file_kb} KB uploads "
            f"({self.deleted_fraction:.0%} of them soft-deleted)"
        )

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        before = stored_bytes(stack)
        quota = self.quota_bytes if self.quota_bytes is not None else before + self.fill_kb * KIB
        change_api_settings(
            stack,
            handle,
            {stack.kit.twin.quota_setting: str(quota)},
            why=f"{before} bytes stored",
        )
        remaining = quota - stored_bytes(stack)
        if remaining <= 0:
            handle.did(
                f"quota {quota} bytes already reached ({quota - remaining} stored); nothing to fill"
            )
            return
        files: list[tuple[str, int]] = []  # id, size
        with drill_client(stack, timeout_s=self.timeout_s) as client:
            user = create_drill_user(stack, handle, client, tier="pro", label=self.kind)
            while remaining > 0:
                size = min(self.file_kb * KIB, remaining)
                name = f"quota-fill-{len(files) + 1:04d}.bin"
                upload = client.upload(
                    user, name, name.encode().ljust(size, b"."), timeout_s=self.timeout_s
                )
                if upload.status_code == 507:  # someone else's upload took the last bytes
                    break
                if upload.status_code != 201 or upload.file_id is None:
                    raise FaultError(
                        f"cannot inject {self.describe()}: filler upload {name} answered "
                        f"{upload.status_code}: {upload.body[:200]}",
                        hint="the API must accept uploads before its quota is filled",
                    )
                files.append((upload.file_id, size))
                remaining -= size
            to_delete = files[: round(len(files) * self.deleted_fraction)]
            for file_id, _ in to_delete:
                response = client.delete(user, file_id)
                if response.status_code != 200:
                    raise FaultError(
                        f"cannot inject {self.describe()}: DELETE of filler file "
                        f"{file_id} answered {response.status_code}"
                    )
        used = stored_bytes(stack)
        freeable = sum(size for _, size in to_delete)
        handle.did(
            f"filled the quota with {len(files)} upload(s) as {user.email}, "
            f"{len(to_delete)} of them soft-deleted ({freeable} bytes cleanup can "
            f"free); {used} of {quota} bytes used"
        )
        if used < quota:
            raise FaultError(
                f"{self.describe()}: only {used} of {quota} bytes are used after "
                "filling (files were removed meanwhile?)"
            )
