"""A real streaming replica of the stack's PostgreSQL, and its promotion.

`start_replica(stack)` clones the primary with `pg_basebackup -R` (the superuser, over
127.0.0.1 with its password) into a folder of its own, starts it on its own port as a
hot standby (`pg_is_in_recovery()` is true, it answers read-only queries) and waits until
it has replayed the primary's WAL up to where the primary was when it was asked. It is a
component of the stack ("replica"), so the state file, `stop()` and `reset_data()`
cover it. `promote()` is `SELECT pg_promote()`: the runbook's "Failover to Read Replica"
done for real.

Replication is asynchronous, like an RDS read replica's: a commit the primary has
acknowledged may not have reached the replica when the primary dies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.stack.backup import cluster_folder, local_stack, pg_basebackup
from runbook_checks.stack.postgres import LocalPostgres

if TYPE_CHECKING:
    from runbook_checks.stack.base import Stack

REPLICA = "replica"


class LocalReplica(LocalPostgres):
    """A hot standby of `primary`, streaming its WAL (a LocalPostgres in every other way)."""

    def __init__(
        self,
        primary: LocalPostgres,
        work_dir: Path,
        *,
        name: str = REPLICA,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(
            work_dir,
            clock=clock,
            install=primary.install,
            name=name,
            password=primary.password,
            app_password=primary.app_password,
        )
        self.primary = primary

    def populate(self, data_dir: Path) -> None:
        pg_basebackup(self.primary, data_dir, standby=True, application_name=self.name)

    def after_ready(self) -> None:
        """Nothing: the roles and their passwords are the primary's, replayed from its WAL
        (and a standby is read-only)."""

    # -- state ----------------------------------------------------------------------------
    def in_recovery(self) -> bool:
        with self.admin_connect() as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    def replay_lsn(self) -> str | None:
        with self.admin_connect() as conn:
            row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def wait_caught_up(self, timeout_s: float = 15.0) -> str:
        """Until the replica has replayed everything the primary has logged so far; returns
        that WAL position.

        The primary only sends WAL it has flushed, and with synchronous_commit=off (the
        stack's default) commits are acknowledged before their WAL is flushed; the rest of
        the WAL may sit unflushed in a partial page for seconds. So one durable commit
        first (of a transactional WAL message, which replay ignores; a transaction that
        writes no WAL would commit without a flush): its flush covers all before it."""
        with self.primary.admin_connect() as conn:
            conn.execute("SET synchronous_commit TO on")
            conn.execute("SELECT pg_logical_emit_message(true, 'runbook-checks', 'caught up?')")
            row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        assert row is not None
        target = str(row[0])

        def replayed() -> bool:
            with self.admin_connect() as conn:
                done = conn.execute(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", (target,)
                ).fetchone()
            return bool(done and done[0])

        self._wait(
            replayed,
            f"to replay the primary's WAL up to {target}",
            timeout_s,
            lambda: (
                f"did not replay up to {target} within {timeout_s:.0f}s "
                f"(replayed: {self._quiet_replay_lsn()})"
            ),
            hint=f"read the primary's log too: {self.primary.log_path}",
        )
        return target

    def _wait(
        self,
        done: Callable[[], bool],
        what: str,
        timeout_s: float,
        failure: Callable[[], str],
        *,
        hint: str | None = None,
    ) -> None:
        """Poll `done` (a server restarting in between is no error) until true; on timeout,
        the replica's failure with `failure()`'s words and its log."""
        try:
            wait_until(
                done,
                what=f"{self.name} {what}",
                timeout_s=timeout_s,
                interval_s=0.02,
                transient=(psycopg.OperationalError,),
                clock=self.clock,
            )
        except WaitTimeout as exc:
            raise self.process.failure(failure(), hint=hint) from exc

    def streaming(self) -> bool:
        """Is a WAL receiver connected to the primary?"""
        with self.admin_connect() as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_wal_receiver").fetchone()
        return bool(row and row[0])

    def fall_behind(self, timeout_s: float = 10.0) -> None:
        """Stop streaming from the primary, as when a replica lags (its link to the
        primary cut, or replay held up): `primary_conninfo` is emptied and the
        configuration reloaded, which ends the WAL receiver. The replica stays a hot
        standby with what it replayed so far; what the primary commits from now on is on
        the primary only, and a promotion (`promote()`) goes ahead without it."""
        with self.admin_connect() as conn:
            conn.execute("ALTER SYSTEM SET primary_conninfo = ''")
            conn.execute("SELECT pg_reload_conf()")
        self._wait(
            lambda: not self.streaming(),
            "to end its WAL receiver",
            timeout_s,
            lambda: f"still streaming {timeout_s:.0f}s after primary_conninfo was emptied",
        )

    def _quiet_replay_lsn(self) -> str:
        try:
            return self.replay_lsn() or "nothing"
        except psycopg.Error as exc:
            return f"unknown ({type(exc).__name__})"

    def promote(self, timeout_s: float = 15.0) -> None:
        """`SELECT pg_promote()`, then until the server has left recovery (idempotent)."""
        if not self.in_recovery():
            return
        with self.admin_connect() as conn:
            conn.execute(
                "SELECT pg_promote(wait => true, wait_seconds => %s)", (max(1, int(timeout_s)),)
            )
        self._wait(
            lambda: not self.in_recovery(),
            "to leave recovery",
            timeout_s,
            lambda: f"still in recovery {timeout_s:.0f}s after pg_promote()",
        )


def start_replica(stack: Stack, name: str = REPLICA, *, timeout_s: float = 30.0) -> LocalReplica:
    """A streaming hot standby of the stack's primary, caught up, registered as `name`."""
    local = local_stack(stack, "a streaming replica")
    replica = LocalReplica(
        local.postgres, cluster_folder(local, name), name=name, clock=local.clock
    )
    local.add_component(replica)  # before it spawns: the state file records its PID
    replica.spawn()
    replica.wait_ready(timeout_s)
    if not replica.in_recovery():
        raise replica.process.failure(
            "started, but not as a standby (pg_is_in_recovery() is false)",
            hint="was standby.signal written (-R)?",
        )
    replica.wait_caught_up(timeout_s)
    return replica
