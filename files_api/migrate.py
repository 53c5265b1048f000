"""Schema migrations: files_api/migrations/NNN_name.sql, applied in order, once each.

Applied versions are recorded in `schema_migrations`. The whole run holds a session
advisory lock, so several replicas starting at once apply each file exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# pg_advisory_lock key: any constant shared by every replica ("files_api" in ASCII).
ADVISORY_LOCK_KEY = 0x66696C65735F6170


@dataclass(frozen=True)
class Migration:
    version: str  # "001"
    name: str  # "001_init.sql"
    sql: str


def load_migrations() -> list[Migration]:
    folder = resources.files("files_api") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(match.group(1), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migration files share a version number: {versions}")
    return found


async def apply_migrations(database_url: str, *, connect_timeout_s: int = 5) -> list[str]:
    """Apply the pending migrations; return the names of those applied by this call."""
    applied_now: list[str] = []
    wanted = {m.version for m in load_migrations()}
    async with await psycopg.AsyncConnection.connect(
        database_url,
        autocommit=True,
        connect_timeout=max(2, connect_timeout_s),
        application_name="files_api-migrate",
    ) as conn:
        if wanted <= await _applied_versions(conn):
            return []  # up to date: no lock, no DDL (works on a read-only standby too)
        await conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cursor.fetchall()}
            for migration in load_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql.encode("utf-8"))
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied_now.append(migration.name)
        finally:
            if not conn.closed:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied_now


async def _applied_versions(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> set[str]:
    cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return set()
    cursor = await conn.execute("SELECT version FROM schema_migrations")
    return {str(version) for (version,) in await cursor.fetchall()}
