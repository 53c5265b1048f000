"""The upload spool: acknowledged bytes that object storage could not take yet.

When storage fails during an upload, the bytes are written durably (fsync of the file and
of the folder) to SPOOL_DIR/<file id>.bin before the row is committed with status
'queued' and the client gets 202. A worker retries every QUEUE_RETRY_INTERVAL_S: put the
object, mark the row 'stored', then remove the spool file, in that order, so a crash at
any point leaves the bytes somewhere the service can still read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import IO
from uuid import UUID

from files_api import records
from files_api.cache import ListingCache
from files_api.db import Database
from files_api.errors import ServiceError, errno_name, one_line
from files_api.logs import log_event
from files_api.storage import ObjectStore, StorageFailure

SUFFIX = ".bin"
# A spool file without a row is an upload that was never acknowledged (the database
# insert failed after the bytes were spooled); it is removed once older than this.
ORPHAN_AGE_S = 120.0
BATCH = 50


class UploadSpool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def ensure(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, file_id: UUID) -> Path:
        return self.folder / f"{file_id}{SUFFIX}"

    def write(self, file_id: UUID, body: IO[bytes]) -> Path:
        """Copy `body` to the spool durably (blocking: run it in a thread)."""
        self.ensure()
        final = self.path_for(file_id)
        partial = final.with_suffix(".part")
        body.seek(0)
        with partial.open("wb") as out:
            shutil.copyfileobj(body, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(final)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    def has(self, file_id: UUID) -> bool:
        return self.path_for(file_id).exists()

    def read(self, file_id: UUID) -> bytes:
        return self.path_for(file_id).read_bytes()

    def remove(self, file_id: UUID) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(file_id).unlink()

    def queued(self) -> list[tuple[UUID, float]]:
        """(file id, age in seconds) of every spooled upload, oldest first."""
        found: list[tuple[UUID, float]] = []
        now = time.time()
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not entry.name.endswith(SUFFIX):
                continue
            try:
                file_id = UUID(entry.name[: -len(SUFFIX)])
                age = now - entry.stat().st_mtime
            except (ValueError, FileNotFoundError):
                continue
            found.append((file_id, age))
        found.sort(key=lambda item: -item[1])
        return found

    def depth(self) -> int:
        return len(self.queued())


class RetryWorker:
    """Moves spooled uploads to object storage once it answers again."""

    def __init__(
        self,
        spool: UploadSpool,
        db: Database,
        store: ObjectStore,
        cache: ListingCache,
        interval_s: float,
    ) -> None:
        self.spool = spool
        self.db = db
        self.store = store
        self.cache = cache
        self.interval_s = interval_s
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="upload-retry")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):  # on timeout, wait_for cancels it
                await asyncio.wait_for(self._task, timeout=5.0)

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
            if self._stop.is_set():
                return
            try:
                await self.tick()
            except Exception as exc:  # the loop must survive anything
                log_event(
                    logging.ERROR,
                    f"upload retry worker failed: {one_line(exc)}",
                    errno=errno_name(exc),
                )

    async def tick(self) -> int:
        """One pass over the spool; return how many uploads reached storage."""
        await self.cache.retry_pending()
        queued = await asyncio.to_thread(self.spool.queued)
        if not queued or not self.db.schema_ready:
            return 0
        batch = queued[:BATCH]
        ages = dict(batch)
        try:
            async with self.db.connection() as conn:
                rows = await records.files_by_ids(conn, [file_id for file_id, _ in batch])
        except ServiceError as exc:
            self._note_failure(f"database: {exc.detail}", exc.errno)
            return 0
        by_id = {row.id: row for row in rows}
        stored = 0
        for file_id, age in batch:
            row = by_id.get(file_id)
            if row is None:
                if age > ORPHAN_AGE_S:
                    await asyncio.to_thread(self.spool.remove, file_id)
                    log_event(
                        logging.WARNING,
                        "upload spool: removed an unacknowledged upload (no row)",
                        file_id=str(file_id),
                    )
                continue
            if row.status == "stored":
                await asyncio.to_thread(self.spool.remove, file_id)
                continue
            if not await self._store_one(row, ages[file_id]):
                break  # storage still failing: try again next interval
            stored += 1
        return stored

    async def _store_one(self, row: records.FileRow, age: float) -> bool:
        path = self.spool.path_for(row.id)
        try:
            await self.store.put_file(row.object_key, path, row.content_type, row.size_bytes)
        except FileNotFoundError:
            return True  # removed meanwhile (purged, or stored by another pass)
        except StorageFailure as exc:
            self._note_failure(f"storage: {one_line(exc)}", errno_name(exc))
            return False
        # Withdrawn while it was put (purged, or the stack's data reset: row, object and
        # spool file removed), its bytes must not outlive it: a purge removes the object,
        # then the spool file, then the row (under its lock, which mark_stored waits
        # for); a reset removes the spool file, then the object and the row. Whichever of
        # the two checks below sees the withdrawal, the object is removed again after
        # the put landed.
        if not await asyncio.to_thread(self.spool.has, row.id):
            await self._remove_withdrawn(row)
            return True
        try:
            async with self.db.connection() as conn:
                marked = await records.mark_stored(conn, row.id)
                withdrawn = not marked and not await records.files_by_ids(conn, [row.id])
        except ServiceError as exc:
            self._note_failure(f"database: {exc.detail}", exc.errno)
            return False
        await asyncio.to_thread(self.spool.remove, row.id)
        if withdrawn:
            await self._remove_withdrawn(row)
            return True
        await self.cache.invalidate(str(row.user_id))
        self._last_error = None
        log_event(
            logging.INFO,
            "queued upload stored after retry",
            file_id=str(row.id),
            user_id=str(row.user_id),
            size_bytes=row.size_bytes,
            queued_s=round(age, 1),
        )
        return True

    async def _remove_withdrawn(self, row: records.FileRow) -> None:
        try:
            await self.store.delete(row.object_key)
        except StorageFailure as exc:
            self._note_failure(f"storage: {one_line(exc)}", errno_name(exc))
            log_event(
                logging.ERROR,
                "an upload withdrawn while it was stored left its object behind",
                file_id=str(row.id),
                object_key=row.object_key,
            )
            return
        log_event(
            logging.INFO,
            "an upload withdrawn while it was stored: its object removed",
            file_id=str(row.id),
            user_id=str(row.user_id),
        )

    def _note_failure(self, error: str, errno: str | None) -> None:
        if error != self._last_error:  # one line per distinct failure, not one per second
            log_event(logging.WARNING, f"upload retry deferred: {error}", errno=errno)
        self._last_error = error
