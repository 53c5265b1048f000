"""Data faults: an expired share link, a used-up download limit, a soft-deleted file, a
purged file. Each one is made directly in the database (and, for a purge, the bucket),
as the service's own code paths or an operator would leave it, so the runbook's SQL
diagnostics and fixes meet real rows.

Revert writes back the exact previous values of the columns it changed (read in the
same transaction that changed them), whatever the runbook's fix did meanwhile; a row
that is gone by then is reported in the handle's notes, not recreated. A purge saves the
row, its share links (the foreign key cascades them away) and the object's bytes before
removing anything, and revert puts all three back.

The module also holds the direct-access helpers the other data-touching faults share:
the listing-cache bump and the capability check for faults whose needs depend on their
settings; the bucket client and drill users' clean-up (`s3_client`, `remove_users`) are
the stack's (`stack/accounts.py`: the external backend removes a dead drill's users with
them too) and are named here for the faults.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import redis
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.service import DataModel
from runbook_checks.stack.accounts import admin_connect, remove_users, s3_client
from runbook_checks.stack.base import Capability, Stack

if TYPE_CHECKING:
    import psycopg

    _Conn = psycopg.Connection[tuple[object, ...]]

__all__ = [
    "FilePurged",
    "FileSoftDeleted",
    "RowSnapshot",
    "ShareDownloadLimitReached",
    "ShareExpired",
    "bump_listing_cache",
    "needs_of",
    "remove_users",
    "s3_client",
    "unsupported_without",
]

DAY_S = 24 * 3600


# ------------------------------------------------------------------------- shared helpers


def needs_of(fault: Fault) -> frozenset[Capability]:
    """What this fault, with its settings, needs from a backend: `requires`, or
    `requires_by_mode[fault.mode]` where the needs depend on a mode, plus
    `requires_if_set[name]` for each optional setting that is set (not None)."""
    by_mode: Mapping[str, frozenset[Capability]] | None = getattr(fault, "requires_by_mode", None)
    mode = getattr(fault, "mode", None)
    needs = set(by_mode[mode] if by_mode is not None and isinstance(mode, str) else fault.requires)
    if_set: Mapping[str, frozenset[Capability]] = getattr(fault, "requires_if_set", {})
    for name, extra in if_set.items():
        if getattr(fault, name, None) is not None:
            needs |= extra
    return frozenset(needs)


def unsupported_without(fault: Fault, stack: Stack) -> str | None:
    """`Fault.unsupported_reason` for faults whose needs depend on their settings."""
    missing = sorted(c.value for c in needs_of(fault) - stack.capabilities)
    if missing:
        return (
            f"{fault.describe()} needs {', '.join(missing)}, which the {stack.backend} "
            "backend cannot do"
        )
    return None


def bump_listing_cache(stack: Stack, user_id: object) -> str:
    """Make the user's cached file listing stale, as the API does after a change.

    The API's listing cache key (the kit's `data.listing_cache_key`) is a generation
    counter and listings are stored under the current generation, so INCR invalidates.
    Best effort: Redis may be the thing that is down in a combined drill. Returns a note.
    """
    key = stack.kit.data.listing_cache_key.format(user=user_id)
    try:
        with redis.Redis.from_url(
            stack.endpoints.redis_url, socket_timeout=2, socket_connect_timeout=2
        ) as client:
            client.incr(key)
    except (redis.RedisError, OSError) as exc:
        return f"could not invalidate the listing cache ({key}): {type(exc).__name__}: {exc}"
    return f"invalidated the listing cache of user {user_id}"


@dataclass(frozen=True)
class RowSnapshot:
    """One row as it was: every column, in table order (for an exact re-insert)."""

    table: str
    columns: tuple[str, ...]
    values: tuple[object, ...]

    def get(self, column: str) -> object:
        return self.values[self.columns.index(column)]


def _snapshots(conn: _Conn, table: str, column: str, value: object) -> list[RowSnapshot]:
    cur = conn.execute(
        sql.SQL("SELECT * FROM {} WHERE {} = %s FOR UPDATE").format(
            sql.Identifier(table), sql.Identifier(column)
        ),
        (value,),
    )
    names = tuple(d.name for d in cur.description or ())
    return [RowSnapshot(table, names, tuple(row)) for row in cur.fetchall()]


def _insert(conn: _Conn, rows: Iterable[RowSnapshot]) -> int:
    inserted = 0
    for row in rows:
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
            sql.Identifier(row.table),
            sql.SQL(", ").join(map(sql.Identifier, row.columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(row.columns)),
        )
        inserted += conn.execute(query, row.values).rowcount
    return inserted


def _show(values: Mapping[str, object]) -> str:
    def one(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat(timespec="seconds")
        return repr(value) if isinstance(value, str) else str(value)

    return ", ".join(f"{k}={one(v)}" for k, v in values.items())


@dataclass(frozen=True)
class _RowKey:
    table: str
    column: str
    value: str
    label: str  # "share abc123…" / "file 0b5c…", for messages

    def where(self) -> sql.Composed:
        return sql.SQL("WHERE {} = %s").format(sql.Identifier(self.column))


def _change_row(
    stack: Stack,
    handle: FaultHandle,
    key: _RowKey,
    changes: Mapping[str, sql.Composable],
    *,
    what: str,
    hint: str,
) -> dict[str, object]:
    """Set `changes` (column -> SQL expression over the old row) on one row, in one
    transaction that first reads the old values; register their exact restore."""
    columns = list(changes)
    listed = sql.SQL(", ").join(map(sql.Identifier, columns))
    with admin_connect(stack) as conn, conn.transaction():
        before = conn.execute(
            sql.SQL("SELECT {} FROM {} {} FOR UPDATE").format(
                listed, sql.Identifier(key.table), key.where()
            ),
            (key.value,),
        ).fetchone()
        if before is None:
            raise FaultError(
                f"cannot inject {handle.fault.describe()}: no {key.label} in "
                f"{key.table} ({key.column} = {key.value!r})",
                hint=hint,
            )
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), expr) for c, expr in changes.items()
        )
        after = conn.execute(
            sql.SQL("UPDATE {} SET {} {} RETURNING {}").format(
                sql.Identifier(key.table), assignments, key.where(), listed
            ),
            (key.value,),
        ).fetchone()
    assert after is not None  # the row is locked by the SELECT ... FOR UPDATE above
    previous = dict(zip(columns, before, strict=True))
    now = dict(zip(columns, after, strict=True))
    handle.did(
        f"{what}: {key.label}: {_show(previous)} -> {_show(now)}",
        functools.partial(_restore_row, stack, handle, key, previous),
        f"restore {key.label}: {_show(previous)}",
    )
    return now


def _restore_row(
    stack: Stack, handle: FaultHandle, key: _RowKey, previous: Mapping[str, object]
) -> None:
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in previous)
    with admin_connect(stack) as conn:
        cur = conn.execute(
            sql.SQL("UPDATE {} SET {} {}").format(
                sql.Identifier(key.table), assignments, key.where()
            ),
            (*previous.values(), key.value),
        )
    if cur.rowcount == 0:
        handle.notes.append(f"{key.label} was gone at revert; nothing to restore")


def _share_key(token: str, data: DataModel | None = None) -> _RowKey:
    """The share link's row (`data`: the stack's kit's; None: only check the token)."""
    if not token:
        raise UsageError(
            "a share fault needs the share link's token",
            hint="create the share in the scenario's arrange step and pass its token",
        )
    return _RowKey(data.shares if data else "", "token", token, f"share {token[:10]}…")


def _file_key(file_id: str, data: DataModel | None = None) -> _RowKey:
    """The file's row (`data`: the stack's kit's; None: only check the id)."""
    if not file_id:
        raise UsageError(
            "a file fault needs the file's id",
            hint="upload a file in the scenario's arrange step and pass its id",
        )
    return _RowKey(data.objects if data else "", "id", file_id, f"file {file_id}")


_NO_SHARE = "pass the token of a share created in this stack (the client's share())"
_NO_FILE = "pass the id of a file uploaded to this stack"


def _file_owner(stack: Stack, file_id: str) -> object | None:
    with admin_connect(stack) as conn:
        row = conn.execute(
            sql.SQL("SELECT user_id FROM {} WHERE id = %s").format(
                sql.Identifier(stack.kit.data.objects)
            ),
            (file_id,),
        ).fetchone()
    return None if row is None else row[0]


# ------------------------------------------------------------------------- share links


@dataclass(frozen=True)
class ShareExpired(Fault):
    """The share link's expires_at set to `ago_s` seconds before now, so the link answers
    404 "Share link expired or invalid"."""

    kind: ClassVar[str] = "share-expired"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    RECENTLY_S: ClassVar[float] = 60.0
    LONG_AGO_S: ClassVar[float] = 90.0 * DAY_S

    token: str
    ago_s: float = RECENTLY_S

    def __post_init__(self) -> None:
        _share_key(self.token)
        if not self.ago_s > 0:
            raise UsageError(
                f"{self.kind}: ago_s must be > 0 (seconds in the past), got {self.ago_s!r}"
            )

    @classmethod
    def recently(cls, token: str) -> ShareExpired:
        """Expired a minute ago: the runbook's "+7 days" fix brings it back."""
        return cls(token, cls.RECENTLY_S)

    @classmethod
    def long_ago(cls, token: str) -> ShareExpired:
        """Expired 90 days ago: "expires_at + 7 days" is still in the past."""
        return cls(token, cls.LONG_AGO_S)

    def describe(self) -> str:
        days = self.ago_s / DAY_S
        ago = f"{days:g} days" if days >= 1 else f"{self.ago_s:g} s"
        return f"expire share {self.token[:10]}… {ago} ago"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        _change_row(
            stack,
            handle,
            _share_key(self.token, stack.kit.data),
            {
                "expires_at": sql.SQL("now() - make_interval(secs => {})").format(
                    sql.Literal(float(self.ago_s))
                ),
            },
            what="expired",
            hint=_NO_SHARE,
        )


@dataclass(frozen=True)
class ShareDownloadLimitReached(Fault):
    """The share link's download_count raised to its max_downloads (a limit of
    `max_downloads`, else the share's own, else max(download_count, 1) is set when it has
    none), so the next download answers 404 "Share link expired or invalid"."""

    kind: ClassVar[str] = "share-download-limit"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    token: str
    max_downloads: int | None = None

    def __post_init__(self) -> None:
        _share_key(self.token)
        if self.max_downloads is not None and self.max_downloads < 1:
            raise UsageError(
                f"{self.kind}: max_downloads must be >= 1 or None (keep the "
                f"share's own limit), got {self.max_downloads!r}"
            )

    def describe(self) -> str:
        limit = f"a limit of {self.max_downloads}" if self.max_downloads else "its limit"
        return f"use up share {self.token[:10]}…'s downloads ({limit})"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        # Both right-hand sides see the old row, so they agree on the limit.
        limit = sql.SQL("coalesce({}::integer, max_downloads, greatest(download_count, 1))").format(
            sql.Literal(self.max_downloads)
        )
        _change_row(
            stack,
            handle,
            _share_key(self.token, stack.kit.data),
            {"max_downloads": limit, "download_count": limit},
            what="download limit reached",
            hint=_NO_SHARE,
        )


# ------------------------------------------------------------------------- files


@dataclass(frozen=True)
class FileSoftDeleted(Fault):
    """The file marked deleted (is_deleted, deleted_at = now), as the API's delete
    does: gone from listings, its share links answer 404."""

    kind: ClassVar[str] = "file-soft-deleted"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    file_id: str

    def __post_init__(self) -> None:
        _file_key(self.file_id)

    def describe(self) -> str:
        return f"soft-delete file {self.file_id}"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        key = _file_key(self.file_id, stack.kit.data)
        owner = _file_owner(stack, self.file_id)
        if owner is None:
            raise FaultError(f"cannot inject {self.describe()}: no such file", hint=_NO_FILE)
        # registered before the row change, so on revert it runs after the restore
        handle.did(
            f"owner of file {self.file_id}: user {owner}",
            lambda: handle.notes.append(bump_listing_cache(stack, owner)),
            "invalidate the owner's listing cache",
        )
        now = sql.SQL("now()")
        _change_row(
            stack,
            handle,
            key,
            {
                "is_deleted": sql.SQL("true"),
                "deleted_at": now,
                "updated_at": now,
            },
            what="soft-deleted",
            hint=_NO_FILE,
        )
        handle.did(bump_listing_cache(stack, owner))


@dataclass(frozen=True)
class FilePurged(Fault):
    """The file purged as POST /admin/cleanup/deleted does: its object removed from the
    bucket and its row deleted (share links cascade). Revert re-uploads the saved bytes
    and re-inserts the row and its share links exactly."""

    kind: ClassVar[str] = "file-purged"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    file_id: str

    def __post_init__(self) -> None:
        _file_key(self.file_id)

    def describe(self) -> str:
        return f"purge file {self.file_id} (object and row)"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        bucket = stack.endpoints.s3_bucket
        client = s3_client(stack)
        with admin_connect(stack) as conn, conn.transaction():
            files = _snapshots(conn, stack.kit.data.objects, "id", self.file_id)
            if not files:
                raise FaultError(f"cannot inject {self.describe()}: no such file", hint=_NO_FILE)
            row = files[0]
            if row.get("status") != "stored":
                raise FaultError(
                    f"cannot inject {self.describe()}: its status is {row.get('status')!r}, "
                    "so its bytes are in the API's upload spool, not in the bucket",
                    hint="purge a file whose upload answered 201 (status 'stored')",
                )
            shares = _snapshots(conn, stack.kit.data.shares, "file_id", self.file_id)
            key = str(row.get("object_key"))
            try:
                saved = client.get_object(Bucket=bucket, Key=key)
                body = saved["Body"].read()
            except (ClientError, BotoCoreError) as exc:
                raise FaultError(
                    f"cannot inject {self.describe()}: reading object {key!r} failed "
                    f"({type(exc).__name__}: {exc}), so revert could not restore it",
                    hint="the object store must be up when a purge is injected",
                ) from exc
            content_type = saved.get("ContentType", "application/octet-stream")
            metadata = dict(saved.get("Metadata", {}))

            def restore() -> None:
                client.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata
                )
                with admin_connect(stack) as c, c.transaction():
                    restored = _insert(c, [row, *shares])
                handle.notes.append(f"restored object {key} and {restored} row(s)")
                handle.notes.append(bump_listing_cache(stack, row.get("user_id")))

            handle.did(
                f"saved file {self.file_id}: {len(body)} bytes, the row and "
                f"{len(shares)} share link(s)",
                restore,
                f"re-upload {key} and re-insert the file's row and share links",
            )
            client.delete_object(Bucket=bucket, Key=key)
            handle.did(f"deleted object {key} from bucket {bucket}")
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE id = %s").format(
                    sql.Identifier(stack.kit.data.objects)
                ),
                (self.file_id,),
            )
        handle.did(f"deleted the row of file {self.file_id} ({len(shares)} share link(s) cascaded)")
        handle.did(bump_listing_cache(stack, row.get("user_id")))
