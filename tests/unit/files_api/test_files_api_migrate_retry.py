"""The API applies its migrations soon after its database first answers: the retries
start at 50 ms and double up to a second (a stack starts the API beside its database)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from files_api import services as services_module
from files_api.config import Settings
from files_api.services import MIGRATION_RETRY_S, Services, migration_retry_delays


def test_the_retries_start_soon_and_settle_at_a_second() -> None:
    delays = list(itertools.islice(migration_retry_delays(), 8))
    assert delays[0] <= 0.05
    assert delays == sorted(delays)
    assert delays[-1] == MIGRATION_RETRY_S
    assert sum(delays[:4]) < MIGRATION_RETRY_S  # four refusals cost less than one wait did


def test_the_migrator_waits_the_retry_delays_until_the_database_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:s3cret@127.0.0.1:9/files",
            "LOG_DIR": str(tmp_path / "logs"),
            "SPOOL_DIR": str(tmp_path / "spool"),
            "ADMIN_TOKEN": "admin-token-123",
        }
    )
    services = Services(settings)
    refusals = 6

    async def apply(url: str, **_: object) -> list[str]:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        return ["001_init.sql"]

    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(services_module, "apply_migrations", apply)
    monkeypatch.setattr(services_module, "_sleep", sleep)
    asyncio.run(services._migrate_until_done())
    assert services.db.schema_ready
    assert waited == list(itertools.islice(migration_retry_delays(), 6))
