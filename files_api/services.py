"""The process's long-lived parts (pool, storage client, cache, spool, worker) and their
start and stop, in the order the lifespan needs them.

Start never waits for a dependency: the pool opens without connecting, migrations are
retried in the background until the database answers, the bucket is created on the first
storage call that succeeds. So the API serves /health while its dependencies are down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator

from files_api.cache import ListingCache
from files_api.config import Settings
from files_api.db import Database
from files_api.errors import errno_name, one_line
from files_api.health import HealthChecker
from files_api.logs import log_event
from files_api.metrics import Metrics
from files_api.migrate import apply_migrations
from files_api.queue import RetryWorker, UploadSpool
from files_api.storage import ObjectStore

# Migrations are retried until the database answers: soon at first (a stack starts the
# API beside its database, which answers a few hundred ms later), then every second.
MIGRATION_RETRY_FIRST_S = 0.05
MIGRATION_RETRY_S = 1.0


def migration_retry_delays() -> Iterator[float]:
    """The waits between attempts to apply the migrations: doubling up to one second."""
    delay = MIGRATION_RETRY_FIRST_S
    while True:
        yield delay
        delay = min(delay * 2, MIGRATION_RETRY_S)


_sleep = asyncio.sleep  # the waits between attempts (a test counts them instead)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.release)
        self.db = Database(settings, self.metrics)
        self.store = ObjectStore(settings, self.metrics)
        self.cache = ListingCache(settings, self.metrics)
        self.spool = UploadSpool(settings.spool_dir)
        self.metrics.bind_queue(lambda: float(self.spool.depth()))
        self.worker = RetryWorker(
            self.spool, self.db, self.store, self.cache, settings.queue_retry_interval_s
        )
        self.health = HealthChecker(
            {
                "database": self._probe_database,
                "storage": self.store.check,
                "cache": self.cache.ping,
            },
            settings.health_check_timeout_s,
            max_age_s=settings.health_max_age_s,
        )
        # a failure a request meets is red on the next /health, not after the window
        self.db.on_failure = functools.partial(self.health.forget, "database")
        self.store.on_failure = functools.partial(self.health.forget, "storage")
        self.cache.on_failure = functools.partial(self.health.forget, "cache")
        self._migrator: asyncio.Task[None] | None = None

    async def _probe_database(self) -> None:
        # Leave the pool room to answer (exhausted / unreachable) before /health gives up.
        await self.db.ping(self.settings.health_check_timeout_s * 0.8)

    async def start(self) -> None:
        self.spool.ensure()
        await self.db.open()
        if self.settings.migrate_on_start:
            self._migrator = asyncio.get_running_loop().create_task(
                self._migrate_until_done(), name="migrate"
            )
        self.worker.start()
        self.store.warm_up()  # the boto3 client, on the executor: not on the way to /health
        log_event(
            logging.INFO,
            "files_api started",
            release=self.settings.release,
            database=self.settings.redacted_database_url,
            storage=self.settings.s3_endpoint_url or "aws",
            bucket=self.settings.s3_bucket,
            pool_size=self.settings.db_pool_size,
            event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
        )

    async def _migrate_until_done(self) -> None:
        attempts = 0
        delays = migration_retry_delays()
        while True:
            attempts += 1
            try:
                applied = await apply_migrations(
                    self.settings.database_url,
                    connect_timeout_s=round(self.settings.db_pool_timeout_s),
                )
            except Exception as exc:
                if attempts == 1 or attempts % 30 == 0:
                    log_event(
                        logging.WARNING,
                        f"migrations not applied yet (attempt {attempts}): {one_line(exc)}; "
                        "retrying until the database answers",
                        errno=errno_name(exc),
                    )
                await _sleep(next(delays))
                continue
            self.db.schema_ready = True
            log_event(logging.INFO, "migrations applied", applied=", ".join(applied) or "none")
            return

    async def stop(self) -> None:
        if self._migrator is not None:
            self._migrator.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._migrator
        await self.worker.stop()
        await self.db.close()
        with contextlib.suppress(Exception):
            await self.cache.close()
        self.store.close()
        log_event(logging.INFO, "files_api stopped", release=self.settings.release)
