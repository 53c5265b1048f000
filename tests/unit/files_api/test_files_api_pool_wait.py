"""Waiting for a pooled connection ends as soon as a connection attempt fails (the
database went away meanwhile), instead of after the whole pool timeout; a caller that
goes away is still cancelled as usual; a connection handed over is the caller's."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import PoolTimeout

from files_api.config import Settings
from files_api.db import Database
from files_api.metrics import Metrics


class _Pool:
    """Stands in for psycopg_pool's: hands over `conn` once `ready` is set."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.conn = object()
        self.waiting = asyncio.Event()

    async def getconn(self, timeout: float) -> object:
        self.waiting.set()
        await self.ready.wait()
        return self.conn


def _database(tmp_path: Path) -> Database:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:x@127.0.0.1:1/files",
            "LOG_DIR": str(tmp_path),
            "ADMIN_TOKEN": "admin-token-123",
        }
    )
    return Database(settings, Metrics("test"))


def _refused() -> ConnectionRefusedError:
    return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


async def _waiting(db: Database) -> asyncio.Task[Any]:
    """A caller waiting for a connection the pool does not have."""
    pool: Any = _Pool()
    waiter = asyncio.ensure_future(db._getconn(pool, wait=30.0))
    await pool.waiting.wait()
    return waiter


def test_a_failed_connection_attempt_ends_the_wait(tmp_path: Path) -> None:
    db = _database(tmp_path)

    async def scenario() -> None:
        waiter = await _waiting(db)
        db.tracker.failed(_refused())  # the pool's reconnection attempt was refused
        with pytest.raises(PoolTimeout):
            await asyncio.wait_for(waiter, timeout=5)  # a bound, not the figure tested

    asyncio.run(scenario())
    assert db.tracker.down


def test_a_caller_that_goes_away_is_cancelled_as_before(tmp_path: Path) -> None:
    db = _database(tmp_path)

    async def scenario() -> None:
        waiter = await _waiting(db)
        waiter.cancel()  # the client disconnected
        db.tracker.failed(_refused())  # and the database went away too
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(scenario())


def test_the_connection_handed_over_is_the_callers_and_nothing_waits_on(
    tmp_path: Path,
) -> None:
    db = _database(tmp_path)

    async def scenario() -> object:
        pool: Any = _Pool()
        pool.ready.set()
        conn = await db._getconn(pool, wait=30.0)
        db.tracker.failed(_refused())  # later failures no longer concern this caller
        await asyncio.sleep(0)
        return conn is pool.conn

    assert asyncio.run(scenario()) is True
    assert db.tracker._watchers == set()
