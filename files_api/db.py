"""PostgreSQL access: one bounded async pool, and the classification of its failures.

The pool (psycopg_pool, `DB_POOL_SIZE` connections) is the bottleneck on purpose: a
request that cannot get a connection within `DB_POOL_TIMEOUT_S` answers 503 "pool
exhausted", as the runbook's post-mortem describes. When the database itself is
unreachable the answer names the errno instead (ECONNREFUSED, ETIMEDOUT ...).

Recovery without a restart: idle connections are checked (without a round trip, so a
frozen server cannot hang the check) before being lent; the first dead one found drains
the pool so every idle connection is replaced at once; failed reconnection attempts give
up quickly so that the next request starts a fresh attempt instead of waiting for a long
back-off.
"""

from __future__ import annotations

import asyncio
import logging
import select
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from files_api.config import Settings
from files_api.errors import (
    ServiceError,
    database_unavailable,
    database_unavailable_error,
    errno_name,
    nobody,
    one_line,
    pool_exhausted,
)
from files_api.logs import log_event
from files_api.metrics import Metrics, PoolGauges

Conn = AsyncConnection[TupleRow]

# While the database is known to be down, a request waits at most this long for a
# connection (each wait also starts a reconnection attempt), then fails with the errno.
DOWN_WAIT_S = 0.25
# Reconnection attempts of one pool slot give up after this long (psycopg_pool would
# otherwise back off exponentially for 5 minutes, delaying recovery by up to a minute).
RECONNECT_GIVE_UP_S = 3.0
DRAIN_MIN_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ConnectFailure:
    errno: str
    message: str
    at: float  # monotonic


class ConnectionTracker:
    """Remembers the outcome of the latest connection attempts to the database."""

    def __init__(self) -> None:
        self.last_failure: ConnectFailure | None = None
        self.last_success_at: float = 0.0
        self._watchers: set[asyncio.Future[None]] = set()

    def failed(self, exc: BaseException) -> None:
        was_down = self.down
        self.last_failure = ConnectFailure(errno_name(exc), one_line(exc), time.monotonic())
        if not was_down:
            log_event(
                logging.ERROR,
                f"database connection failed: {self.last_failure.errno}: "
                f"{self.last_failure.message}",
                errno=self.last_failure.errno,
            )
        watchers, self._watchers = self._watchers, set()
        for watcher in watchers:
            if not watcher.done():
                watcher.set_result(None)

    def succeeded(self) -> None:
        was_down = self.down
        self.last_success_at = time.monotonic()
        if was_down:
            log_event(logging.INFO, "database connection restored")

    def next_failure(self) -> asyncio.Future[None]:
        """A future resolved by the next failed connection attempt."""
        watcher: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers.add(watcher)
        return watcher

    def forget(self, watcher: asyncio.Future[None]) -> None:
        self._watchers.discard(watcher)
        watcher.cancel()

    @property
    def down(self) -> bool:
        """The latest connection attempt failed."""
        return self.last_failure is not None and self.last_failure.at > self.last_success_at

    def unavailable_error(self) -> ServiceError:
        failure = self.last_failure
        assert failure is not None
        return database_unavailable_error(failure.errno, failure.message)


def _tracked_connection_class(tracker: ConnectionTracker) -> type[Conn]:
    class TrackedConnection(AsyncConnection[TupleRow]):
        _tracker: ClassVar[ConnectionTracker] = tracker

        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                conn = await super().connect(conninfo, **kwargs)
            except Exception as exc:
                cls._tracker.failed(exc)
                raise
            cls._tracker.succeeded()
            return conn

    return TrackedConnection


def _socket_looks_alive(conn: Conn) -> bool:
    """An idle connection whose socket is readable has been closed or told to go away."""
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return False
    return not readable


class Database:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tracker = ConnectionTracker()
        self.in_use = 0
        self.schema_ready = not settings.migrate_on_start
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._last_drain = 0.0
        self._background: set[asyncio.Task[None]] = set()
        # told when a request finds the database unreachable, frozen or gone
        self.on_failure: Callable[[], None] = nobody
        metrics.bind_pool(
            PoolGauges(
                size=lambda: float(settings.db_pool_size),
                in_use=lambda: float(self.in_use),
                waiting=lambda: float(self._stat("requests_waiting")),
                connections=lambda: float(self._stat("pool_size")),
            )
        )

    # -------------------------------------------------------------- life cycle

    def connect_kwargs(self) -> dict[str, str | int | bool]:
        return {
            "autocommit": True,
            "connect_timeout": max(2, round(self.settings.db_pool_timeout_s)),
            "application_name": "files_api",
        }

    async def open(self) -> None:
        """Start the pool without waiting for the database (it may be down at start)."""
        self._pool = AsyncConnectionPool(
            self.settings.database_url,
            connection_class=_tracked_connection_class(self.tracker),
            kwargs=self.connect_kwargs(),
            min_size=self.settings.db_pool_size,
            max_size=self.settings.db_pool_size,
            timeout=self.settings.db_pool_timeout_s,
            configure=self._configure,
            check=self._check,
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            name="files_api",
            open=False,
        )
        await self._pool.open(wait=False)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close(timeout=2.0)
        for task in list(self._background):
            task.cancel()

    async def _configure(self, conn: Conn) -> None:
        # synchronous_commit: a commit the API acknowledges must survive a killed server,
        # whatever the server's default (test clusters often turn it off for speed).
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, false), "
            "set_config('synchronous_commit', 'on', false)",
            (f"{self.settings.db_statement_timeout_ms}ms",),
        )

    async def _check(self, conn: Conn) -> None:
        if _socket_looks_alive(conn):
            return
        await conn.close()  # marks it broken: the pool replaces it
        self._drain_soon()
        raise psycopg.OperationalError("idle connection found closed by the server")

    def _drain_soon(self) -> None:
        now = time.monotonic()
        if self._pool is None or now - self._last_drain < DRAIN_MIN_INTERVAL_S:
            return
        self._last_drain = now
        task = asyncio.get_running_loop().create_task(self._pool.drain())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _stat(self, name: str) -> int:
        return 0 if self._pool is None else self._pool.get_stats().get(name, 0)

    # -------------------------------------------------------------- use

    @asynccontextmanager
    async def connection(self, *, wait_s: float | None = None) -> AsyncIterator[Conn]:
        """A pooled connection (autocommit; use `conn.transaction()` for several statements).

        Failures become `ServiceError`s: 503 pool exhausted, 503 database unavailable
        (with the errno), 503 statement timeout.
        """
        if self._pool is None:
            raise ServiceError(503, "Database pool not started yet; retry in a moment", "ESTARTING")
        pool = self._pool
        wait = self.settings.db_pool_timeout_s if wait_s is None else wait_s
        try:
            conn = await self._getconn(pool, wait)
        except PoolTimeout:
            if self.tracker.down:
                error = self.tracker.unavailable_error()
                self._outage(error.errno or "unknown")
                raise error from None
            self.metrics.db_pool_timeouts.inc()
            raise pool_exhausted(self.in_use, self.settings.db_pool_size, wait) from None
        self.in_use += 1
        deadline = asyncio.timeout(self.settings.db_statement_timeout_ms / 1000 + 5.0)
        try:
            async with deadline:
                yield conn
        except TimeoutError as exc:
            if not deadline.expired():
                raise  # not ours: some other wait in the caller's block
            self._outage("ETIMEDOUT")
            raise ServiceError(
                503,
                "Database unavailable: ETIMEDOUT: no answer from PostgreSQL within "
                f"{self.settings.db_statement_timeout_ms / 1000 + 5.0:.1f}s. "
                "Check that the server is not frozen or overloaded (pg_stat_activity).",
                "ETIMEDOUT",
                cause="no answer from PostgreSQL within "
                f"{self.settings.db_statement_timeout_ms / 1000 + 5.0:.1f}s",
            ) from exc
        except psycopg.errors.QueryCanceled as exc:
            self.metrics.db_errors.labels(errno="statement_timeout").inc()
            raise ServiceError(
                503,
                f"Database statement cancelled: {one_line(exc)} (statement_timeout is "
                f"{self.settings.db_statement_timeout_ms} ms). Look for locks and "
                "long-running queries in pg_stat_activity.",
                "QueryCanceled",
            ) from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            self.metrics.db_errors.labels(errno="EROFS").inc()
            raise ServiceError(
                503,
                f"Database is read-only: {one_line(exc)}. DATABASE_URL points at a standby: "
                "promote it, or point the API at the primary.",
                "EROFS",
                cause=one_line(exc),
            ) from exc
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            raise ServiceError(
                503,
                f"Database schema not ready: {one_line(exc)}. "
                "Run `python -m files_api migrate` (or start with MIGRATE_ON_START=1).",
                "ESCHEMA",
            ) from exc
        except psycopg.OperationalError as exc:
            if conn.broken or conn.closed:
                self._drain_soon()
            error = database_unavailable(exc)
            self._outage(error.errno or "unknown")
            raise error from exc
        finally:
            self.in_use -= 1
            await pool.putconn(conn)

    def _outage(self, errno: str) -> None:
        self.metrics.db_errors.labels(errno=errno).inc()
        self.on_failure()

    async def _getconn(self, pool: AsyncConnectionPool[Conn], wait: float) -> Conn:
        """Wait for a connection; give up early (PoolTimeout) when the database turns out
        to be unreachable meanwhile, instead of waiting the whole pool timeout for it."""
        if self.tracker.down:
            # Known down: a short wait, during which the pool retries the connection.
            return await pool.getconn(timeout=min(wait, DOWN_WAIT_S))
        getting = asyncio.ensure_future(pool.getconn(timeout=wait))
        failure = self.tracker.next_failure()
        waiters: set[asyncio.Future[Any]] = {getting, failure}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()  # the database became unreachable meanwhile
                await asyncio.wait({getting})
        except BaseException:
            getting.cancel()
            getting.add_done_callback(self._return_orphan)
            raise
        finally:
            self.tracker.forget(failure)
        if getting.cancelled():
            raise PoolTimeout("the database became unreachable while waiting")
        return getting.result()  # a connection handed over just before the cancel, or raises

    def _return_orphan(self, getting: asyncio.Future[Conn]) -> None:
        """A connection obtained for a caller that went away goes back to the pool."""
        if getting.cancelled() or getting.exception() is not None or self._pool is None:
            return
        task = asyncio.get_running_loop().create_task(self._pool.putconn(getting.result()))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def ping(self, wait_s: float) -> None:
        """SELECT 1 through the pool; raises ServiceError."""
        async with self.connection(wait_s=wait_s) as conn:
            await conn.execute("SELECT 1")
        if not self.schema_ready:
            raise ServiceError(
                503,
                "Database reachable but migrations not applied yet (they are retried "
                "in the background)",
                "ESCHEMA",
            )
