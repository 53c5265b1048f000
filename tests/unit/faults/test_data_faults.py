"""Data faults without a database: settings, descriptions, capability checks. What they do
to real rows is in tests/integration/test_faults_more.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, cast

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import ACTIVE, Fault, FaultError
from runbook_checks.faults.data import (
    DAY_S,
    FilePurged,
    FileSoftDeleted,
    RowSnapshot,
    ShareDownloadLimitReached,
    ShareExpired,
    needs_of,
    remove_users,
    unsupported_without,
)
from runbook_checks.stack.base import Capability, Stack

TOKEN = "Zq1x7Hc2lVZ8y5b0mT3kQw9eR4uI6oP1"


@dataclass
class NoDataStack:
    backend: str = "external"
    capabilities: frozenset[Capability] = frozenset({Capability.RESTART})


def test_share_expired_presets_are_a_minute_and_ninety_days() -> None:
    assert ShareExpired.recently(TOKEN).ago_s == 60
    assert ShareExpired.long_ago(TOKEN).ago_s == 90 * DAY_S
    assert ShareExpired.recently(TOKEN) == ShareExpired(TOKEN)


@pytest.mark.parametrize(
    ("fault", "described"),
    [
        (ShareExpired.recently(TOKEN), "expire share Zq1x7Hc2lV… 60 s ago"),
        (ShareExpired.long_ago(TOKEN), "expire share Zq1x7Hc2lV… 90 days ago"),
        (ShareDownloadLimitReached(TOKEN), "use up share Zq1x7Hc2lV…'s downloads (its limit)"),
        (ShareDownloadLimitReached(TOKEN, 5), "(a limit of 5)"),
        (FileSoftDeleted("f-1"), "soft-delete file f-1"),
        (FilePurged("f-1"), "purge file f-1 (object and row)"),
    ],
)
def test_descriptions_name_the_row_and_never_the_whole_token(fault: Fault, described: str) -> None:
    assert described in fault.describe()
    assert TOKEN not in fault.describe()
    assert fault.requires == frozenset({Capability.DATA})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ShareExpired(""), "needs the share link's token"),
        (lambda: ShareExpired(TOKEN, 0), "ago_s must be > 0"),
        (lambda: ShareExpired(TOKEN, -60), "ago_s must be > 0"),
        (lambda: ShareDownloadLimitReached(""), "needs the share link's token"),
        (lambda: ShareDownloadLimitReached(TOKEN, 0), "max_downloads must be >= 1"),
        (lambda: FileSoftDeleted(""), "needs the file's id"),
        (lambda: FilePurged(""), "needs the file's id"),
    ],
)
def test_bad_settings_are_refused_when_the_fault_is_built(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(UsageError, match=message):
        build()


def test_a_backend_without_direct_data_access_is_refused_before_anything_happens() -> None:
    stack = cast(Stack, NoDataStack())
    before = set(ACTIVE.handles)
    with pytest.raises(FaultError, match="needs data, which the external backend cannot do"):
        ShareExpired(TOKEN).inject(stack)
    assert set(ACTIVE.handles) == before


def test_remove_users_with_no_users_touches_nothing() -> None:
    assert remove_users(cast(Stack, NoDataStack()), []) == "no users to remove"


def test_row_snapshot_reads_columns_by_name() -> None:
    row = RowSnapshot("storage_files", ("id", "status"), ("f-1", "stored"))
    assert row.get("status") == "stored"
    with pytest.raises(ValueError, match="not in tuple"):
        row.get("size_bytes")


@dataclass(frozen=True)
class Modal(Fault):
    kind: ClassVar[str] = "modal"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.PROXY})
    requires_by_mode: ClassVar[dict[str, frozenset[Capability]]] = {
        "net": frozenset({Capability.PROXY}),
        "kill": frozenset({Capability.KILL, Capability.DATA}),
    }
    requires_if_set: ClassVar[dict[str, frozenset[Capability]]] = {
        "pool": frozenset({Capability.RECONFIGURE}),
    }
    mode: str = "net"
    pool: int | None = None


def test_needs_follow_the_mode_and_the_optional_settings() -> None:
    assert needs_of(Modal()) == {Capability.PROXY}
    assert needs_of(Modal("kill")) == {Capability.KILL, Capability.DATA}
    assert needs_of(Modal("net", pool=2)) == {Capability.PROXY, Capability.RECONFIGURE}
    assert needs_of(ShareExpired(TOKEN)) == {Capability.DATA}


def test_unsupported_reason_lists_only_what_is_missing() -> None:
    stack = cast(Stack, NoDataStack(capabilities=frozenset({Capability.KILL})))
    assert unsupported_without(Modal("kill"), stack) == (
        "modal(mode='kill', pool=None) needs data, which the external backend cannot do"
    )
    assert unsupported_without(Modal("net"), stack) is not None
    full = cast(Stack, NoDataStack(capabilities=frozenset(Capability)))
    assert unsupported_without(Modal("kill", pool=1), full) is None
