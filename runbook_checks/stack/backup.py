"""Base backups of the stack's PostgreSQL ("snapshots"), and restoring one into a new cluster.

`take_snapshot(stack)` runs `pg_basebackup` against the primary as an operator would (over
127.0.0.1, the superuser with its password) into the stack folder: a plain-format backup
that carries the WAL it needs (`-X stream`), so it is a self-contained data folder.
`restore_snapshot` starts a NEW cluster from a copy of it, on a port of its own and
registered in the stack ("restored-db"), the way RDS restores a snapshot into a new
instance: the primary is left as it is, and the backup can be restored again.

Everything written after the backup finished (its end LSN) is, by construction, not in a
cluster restored from it: that is the data loss the runbook's Option C warns of.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg.conninfo import make_conninfo

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import ComponentFailed, StackError
from runbook_checks.stack.postgres import SUPERUSER, LocalPostgres

if TYPE_CHECKING:
    from runbook_checks.stack.base import Stack
    from runbook_checks.stack.local import LocalStack

BACKUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BaseBackup:
    name: str
    path: Path  # the backup's data folder (plain format, WAL included)
    end_lsn: str  # the primary's WAL position the backup reaches; later writes are not in it
    taken_at: float  # wall clock, seconds since the epoch


def local_stack(stack: Stack, what: str) -> LocalStack:
    """`stack` as the local backend, or a StackError saying `what` needs it."""
    from runbook_checks.stack.local import LocalStack

    if not isinstance(stack, LocalStack):
        raise StackError(
            f"{what} needs the local backend's PostgreSQL; the {stack.backend} backend "
            "cannot do it",
            hint="mark the test @pytest.mark.needs('replica') so other backends skip it",
        )
    if stack.folder is None:
        raise StackError(f"{what}: the stack is not running", hint="start the stack first")
    return stack


def cluster_folder(stack: LocalStack, name: str) -> Path:
    """An empty folder in the stack for a new cluster called `name` (what a cluster of
    that name left there after it was removed is deleted first)."""
    assert stack.folder is not None
    if name in stack.components:
        raise StackError(
            f"the stack already has a component named {name!r}",
            hint="remove_component() it first, or pick another name",
        )
    folder = stack.folder / name
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def pg_basebackup(
    primary: LocalPostgres,
    target: Path,
    *,
    standby: bool = False,
    application_name: str = "runbook-checks",
    timeout_s: float = BACKUP_TIMEOUT_S,
) -> None:
    """Clone `primary` into the folder `target` (which must not exist yet).

    With `standby`, pg_basebackup writes the standby configuration (`-R`: standby.signal
    and a primary_conninfo naming `application_name`, which is how the primary's
    pg_stat_replication and synchronous_standby_names know the replica)."""
    conninfo = make_conninfo(
        host="127.0.0.1",
        port=primary.port,
        user=SUPERUSER,
        dbname="postgres",
        application_name=application_name,
    )
    argv = [
        primary.install.tool("pg_basebackup"),
        "--pgdata",
        str(target),
        "--dbname",
        conninfo,
        "--wal-method=stream",
        "--checkpoint=fast",
        "--no-sync",
        "--no-password",
    ]
    if standby:
        argv.append("--write-recovery-conf")
    # the password goes through the environment, never the command line (`ps` shows that)
    env = {**os.environ, "PGPASSWORD": primary.password, "PGCONNECT_TIMEOUT": "5"}
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ComponentFailed(
            primary.name,
            f"pg_basebackup did not finish within {timeout_s:.0f}s",
            log_tail=primary.log_tail(),
            hint="is the primary up and accepting replication?",
        ) from exc
    if done.returncode != 0:
        raise ComponentFailed(
            primary.name,
            f"pg_basebackup into {target} failed (exit {done.returncode}): "
            f"{done.stderr.strip()[-500:]}",
            log_tail=primary.log_tail(),
            hint="pg_hba.conf must allow `host replication` from 127.0.0.1 and "
            "max_wal_senders must leave a free sender",
        )


def backup_end_lsn(path: Path) -> str:
    """The WAL position a plain-format base backup reaches (from its backup_manifest)."""
    try:
        manifest = json.loads((path / "backup_manifest").read_text())
        return str(manifest["WAL-Ranges"][-1]["End-LSN"])
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise StackError(
            f"{path} has no readable backup_manifest: {exc}",
            hint="was it taken with pg_basebackup (version 13 or later)?",
        ) from exc


def take_snapshot(
    stack: Stack, name: str = "snapshot", *, clock: Clock = SYSTEM_CLOCK
) -> BaseBackup:
    """A base backup of the stack's primary, kept in the stack folder (removed with it); it
    replaces an earlier backup of the same name, as a scheduled snapshot would."""
    local = local_stack(stack, "a base backup")
    assert local.folder is not None
    path = local.folder / "backups" / name
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    pg_basebackup(local.postgres, path, application_name=f"backup-{name}")
    return BaseBackup(name=name, path=path, end_lsn=backup_end_lsn(path), taken_at=clock.wall())


def restore_snapshot(
    stack: Stack, backup: BaseBackup, name: str = "restored-db", *, timeout_s: float = 30.0
) -> LocalPostgres:
    """Start a new cluster from a copy of `backup` on a port of its own, registered in the
    stack as `name` (stop() and the state file cover it). It has the primary's roles and
    passwords, as they were when the backup was taken."""
    local = local_stack(stack, "restoring a base backup")
    primary = local.postgres
    restored = LocalPostgres(
        cluster_folder(local, name),
        clock=local.clock,
        install=primary.install,
        password=primary.password,
        app_password=primary.app_password,
        name=name,
        template=backup.path,
    )
    local.add_component(restored)
    restored.spawn()  # copies the backup, then replays the WAL it carries
    restored.wait_ready(timeout_s)
    return restored
