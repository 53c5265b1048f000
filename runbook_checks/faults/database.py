"""Database faults, made with real sessions against the stack's PostgreSQL.

Every session a fault opens carries `application_name = runbook-checks-fault:<kind>`, so
its revert terminates exactly its own sessions (and a drill that died can be cleaned up
by that name), whatever the runbook's mitigation did to them meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass
from typing import ClassVar

import psycopg
from psycopg import sql

from runbook_checks.clock import wait_until
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.stack.accounts import admin_connect
from runbook_checks.stack.base import Capability, Stack

FAULT_APP_PREFIX = "runbook-checks-fault"
ROUNDS = 10  # fill-and-cut rounds of MaxConnections
REFUSALS = 5  # refusals in a row that tell MaxConnections the slots are full


def _session(stack: Stack, kind: str) -> psycopg.Connection[tuple[object, ...]]:
    """A session as the application's role, named after the fault."""
    return psycopg.connect(
        stack.endpoints.database_url,
        autocommit=True,
        connect_timeout=5,
        application_name=f"{FAULT_APP_PREFIX}:{kind}",
    )


def _slots_taken(exc: psycopg.OperationalError) -> bool:
    return "too many clients" in str(exc) or "remaining connection slots" in str(exc)


def _admin_connect_when_full(stack: Stack) -> psycopg.Connection[tuple[object, ...]]:
    """The superuser's connection while max_connections is reached: the reserved slots
    are its own, but clients being refused hold a slot each for a moment (the API's
    pool reconnects in bursts), so a refusal is tried again for up to five seconds."""

    def attempt() -> psycopg.Connection[tuple[object, ...]] | None:
        try:
            return admin_connect(stack)
        except psycopg.OperationalError as exc:
            if _slots_taken(exc):
                return None
            raise

    return wait_until(attempt, what="a superuser connection", timeout_s=5, interval_s=0.02)


def terminate_sessions(stack: Stack, kind: str) -> int:
    with _admin_connect_when_full(stack) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (f"{FAULT_APP_PREFIX}:{kind}",),
        ).fetchall()
    return len(rows)


class _Sessions:
    """Threads each running one blocking statement in a session of its own."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.connections: list[psycopg.Connection[tuple[object, ...]]] = []
        self.errors: list[BaseException] = []

    def run(self, conn: psycopg.Connection[tuple[object, ...]], statements: list[str]) -> None:
        self.connections.append(conn)

        def work() -> None:
            try:
                for statement in statements:
                    conn.execute(statement.encode())
            except psycopg.Error as exc:  # terminated by a mitigation or by revert: expected
                self.errors.append(exc)

        thread = threading.Thread(target=work, daemon=True, name="fault-session")
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        for thread in self.threads:
            thread.join(timeout=10)
        for conn in self.connections:
            with contextlib.suppress(Exception):
                conn.close()


def _end_sessions(stack: Stack, kind: str, sessions: _Sessions) -> None:
    terminate_sessions(stack, kind)
    sessions.close()


def _wait_for_count(
    stack: Stack, query: str, params: tuple[object, ...], at_least: int, what: str
) -> None:
    """Until the superuser's `query` (a count) gives at least `at_least`."""
    from runbook_checks.clock import wait_until

    def reached() -> bool:
        with admin_connect(stack) as conn:
            row = conn.execute(query, params).fetchone()
        return row is not None and int(str(row[0])) >= at_least

    wait_until(reached, what=what, timeout_s=10)


def _wait_for_sessions(stack: Stack, kind: str, count: int, state: str) -> None:
    _wait_for_count(
        stack,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = %s",
        (f"{FAULT_APP_PREFIX}:{kind}", state),
        count,
        f"{count} {kind} session(s) in state {state!r}",
    )


def _wait_for_lock(stack: Stack, kind: str, table: str) -> None:
    """Until the fault's session holds its lock on `table` (a quoted name)."""
    _wait_for_count(
        stack,
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.application_name = %s AND l.granted AND l.locktype = 'relation' "
        "AND l.relation = to_regclass(%s)",
        (f"{FAULT_APP_PREFIX}:{kind}", table),
        1,
        f"the {kind} session to hold its lock on {table}",
    )


# how long the long-running query runs before it asks for its lock (LongRunningQuery)
_LOCK_LEAD_S = 0.25


@dataclass(frozen=True)
class LongRunningQuery(Fault):
    """A long query that holds a table lock (a report or migration gone wrong): writes to
    the table queue behind it, each holding one of the API's pool connections."""

    table: str = ""  # "": the service's objects table (its kit's data.objects)
    duration_s: int = 600
    lock_mode: str = "EXCLUSIVE"  # blocks writes, allows reads
    kind: ClassVar[str] = "long-running-query"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        sessions = _Sessions()
        table = self.table or stack.kit.data.objects
        conn = _session(stack, self.kind)
        conn.autocommit = False
        quoted = sql.Identifier(table).as_string(conn)  # (before the session is busy)
        lock = f"LOCK TABLE {quoted} IN {self.lock_mode} MODE"  # (the mode: as sql.SQL took it)
        # one query string (simple protocol: one query_start), begun _LOCK_LEAD_S before it
        # asks for the lock, as a report runs a while before it locks: every write it blocks
        # started later, and the runbook's "longest running" query lists it first. As two
        # statements, a write that queued while the LOCK waited, or in the round trip
        # before pg_sleep, looked older than the culprit (a drill killed such a write by
        # PID and the lock stayed); with no lead, so did a write whose statement began an
        # instant before the LOCK and asked for its own lock after (a CI run, on a starved
        # CPU: the moment between a statement's start and its lock).
        sessions.run(
            conn,
            [f"SELECT pg_sleep({_LOCK_LEAD_S}); {lock}; SELECT pg_sleep({int(self.duration_s)})"],
        )
        handle.did(
            f"session holding {self.lock_mode} lock on {table} running pg_sleep({self.duration_s})",
            functools.partial(_end_sessions, stack, self.kind, sessions),
            "terminate the long-running session",
        )
        _wait_for_lock(stack, self.kind, quoted)


@dataclass(frozen=True)
class IdleInTransaction(Fault):
    """Leaked transactions: sessions that took a lock and went idle without committing."""

    count: int = 3
    table: str = ""  # "": the service's objects table (its kit's data.objects)
    lock_mode: str = "EXCLUSIVE"
    kind: ClassVar[str] = "idle-in-transaction"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        conns: list[psycopg.Connection[tuple[object, ...]]] = []

        def undo() -> None:
            terminate_sessions(stack, self.kind)
            for conn in conns:
                with contextlib.suppress(Exception):
                    conn.close()

        handle.did(
            f"{self.count} session(s) idle in transaction",
            undo,
            "terminate the leaked transactions",
        )
        for index in range(self.count):
            conn = _session(stack, self.kind)
            conn.autocommit = False
            conns.append(conn)
            if index == 0:  # one of them holds the lock everyone else queues behind
                conn.execute(
                    sql.SQL("LOCK TABLE {} IN {} MODE").format(
                        sql.Identifier(self.table or stack.kit.data.objects),
                        sql.SQL(self.lock_mode),
                    )
                )
            else:
                conn.execute("SELECT 1")
        _wait_for_sessions(stack, self.kind, self.count, "idle in transaction")


def _cut_other_sessions(stack: Stack) -> int:
    """End every client session of the database but the faults' and the superuser's,
    starting ones included, and wait until their processes are gone (a cut session
    holds its slot until then). How many were cut."""
    with _admin_connect_when_full(stack) as conn:
        cut = [
            row[0]
            for row in conn.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE coalesce(datname = current_database(), true) "
                "AND coalesce(application_name, '') NOT LIKE %s "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND coalesce(usename <> 'postgres', true)",
                (f"{FAULT_APP_PREFIX}%",),
            ).fetchall()
        ]
        if cut:
            wait_until(
                lambda: (
                    not conn.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (cut,)
                    ).fetchall()
                ),
                what=f"{len(cut)} cut session(s) to end",
                timeout_s=10,
                interval_s=0.02,
            )
    return len(cut)


@dataclass(frozen=True)
class MaxConnections(Fault):
    """The server's max_connections reached by idle sessions; the API's own sessions are
    cut, so it must reconnect and cannot ("too many clients")."""

    kind: ClassVar[str] = "max-connections"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    def _fill(self, stack: Stack, conns: list[psycopg.Connection[tuple[object, ...]]]) -> None:
        """Open sessions until the server refuses them for good: a refusal may be for a
        moment only (the API's reconnecting clients hold slots while being refused), so
        the slots are full when REFUSALS refusals in a row, 20 ms apart, say so."""
        refused = 0
        for _ in range(1000):
            try:
                conns.append(_session(stack, self.kind))
                refused = 0
            except psycopg.OperationalError as exc:
                if not _slots_taken(exc):
                    raise
                refused += 1
                if refused >= REFUSALS:
                    return
                time.sleep(0.02)
        raise FaultError("opened 1000 sessions without reaching max_connections")

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        conns: list[psycopg.Connection[tuple[object, ...]]] = []

        def undo() -> None:
            terminate_sessions(stack, self.kind)
            for conn in conns:
                with contextlib.suppress(Exception):
                    conn.close()

        handle.did(
            "filled every connection slot with idle sessions", undo, "close the idle sessions"
        )
        # Cutting the API's sessions frees their slots, and the API reconnects at once:
        # fill, cut, fill again, until a fill leaves no other client session standing.
        # A session still starting (its user and database not known yet) holds a slot
        # too, and a cut one holds its slot until its process has exited: both would let
        # the API back in after the last round.
        for _ in range(ROUNDS):
            self._fill(stack, conns)
            if not _cut_other_sessions(stack):
                break
        else:
            raise FaultError(
                f"after {ROUNDS} rounds of filling the slots, the API still held sessions"
            )
        handle.did(f"{len(conns)} idle sessions hold every slot; the API's sessions were cut")


@dataclass(frozen=True)
class MissingIndex(Fault):
    """A realistic data volume and the index the listing query needs, dropped."""

    rows: int = 300_000
    users: int = 2_000
    # "": the service's own (its kit's data.owner_index on data.objects(owner_column))
    index: str = ""
    table: str = ""
    column: str = ""
    kind: ClassVar[str] = "missing-index"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        data = stack.kit.data
        index = self.index or data.owner_index
        table = self.table or data.objects
        column = self.column or data.owner_column
        with admin_connect(stack) as conn:
            for statement in data.volume:
                conn.execute(statement.encode(), {"users": self.users, "rows": self.rows})

            def remove_volume() -> None:
                with admin_connect(stack) as c:
                    for statement in data.volume_cleanup:
                        c.execute(statement.encode())

            handle.did(
                f"{self.rows} rows for {self.users} users in {table}",
                remove_volume,
                "remove the generated rows",
            )
            row = conn.execute("SELECT pg_get_indexdef(to_regclass(%s))", (index,)).fetchone()
            original = str(row[0]) if row and row[0] else None
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))

            def restore_index() -> None:
                """Exactly the index that was there: whatever a mitigation created under
                its name meanwhile (on another column, say) is replaced."""
                with admin_connect(stack) as c:
                    found = c.execute(
                        "SELECT pg_get_indexdef(to_regclass(%s))", (index,)
                    ).fetchone()
                    now = str(found[0]) if found and found[0] else None
                    if original is not None and now == original:
                        return
                    c.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
                    if original is not None:
                        c.execute(original.encode())
                    else:
                        c.execute(
                            sql.SQL("CREATE INDEX {} ON {} ({})").format(
                                sql.Identifier(index),
                                sql.Identifier(table),
                                sql.Identifier(column),
                            )
                        )

            handle.did(f"dropped index {index}", restore_index, f"recreate {index}")
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
            # The volume is history by the time anyone looks: statistics start clean, so
            # the bulk insert above does not top pg_stat_statements.
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_stat_statements_reset()")
