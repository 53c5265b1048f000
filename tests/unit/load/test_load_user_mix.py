"""The user mix: upload sizes within plan limits with a realistic tail, a multipart body
the API's own parser accepts, think time parsing."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from files_api.uploads import receive_upload

MIB = 1024 * 1024


@pytest.mark.parametrize("plan", ["free", "pro"])
def test_sizes_are_mostly_small_with_a_tail_of_megabytes_within_the_limit(
    user_mix: ModuleType, plan: str
) -> None:
    rng = random.Random(6)
    sizes = [user_mix.upload_size(rng, plan) for _ in range(5000)]
    limit = user_mix.PLAN_LIMIT_MB[plan] * MIB
    assert all(1 <= s <= limit for s in sizes)
    assert statistics.median(sizes) < 200 * 1024  # mostly small
    above_1mb = sum(s > MIB for s in sizes) / len(sizes)
    expected = user_mix.SIZE_MODELS[plan].share_above(MIB)
    assert 0.5 * expected < above_1mb < 1.5 * expected  # the tail is there, as modelled
    assert max(sizes) > 3 * MIB


def test_a_lower_limit_is_respected(user_mix: ModuleType) -> None:
    rng = random.Random(1)
    assert max(user_mix.upload_size(rng, "pro", limit_mb=1) for _ in range(2000)) <= MIB


def test_the_api_parses_the_multipart_body(user_mix: ModuleType, tmp_path: Path) -> None:
    data = user_mix.payload(3 * MIB + 17)
    assert len(data) == 3 * MIB + 17
    body, content_type = user_mix.multipart("file", "report.pdf", "application/pdf", data)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    received = asyncio.run(
        receive_upload(chunks(), content_type, keep_limit=10 * MIB, deadline_s=30, tmp_dir=tmp_path)
    )
    try:
        assert (received.filename, received.content_type) == ("report.pdf", "application/pdf")
        assert received.size_bytes == len(data)
        assert received.body.read() == data
    finally:
        received.close()


def test_think_time(user_mix: ModuleType) -> None:
    assert user_mix.wait_range(None) == (0.5, 2.5)
    assert user_mix.wait_range("0,1") == (0.0, 1.0)
    for bad in ("1", "2,1", "a,b"):
        with pytest.raises(ValueError, match="LOAD_WAIT_S"):
            user_mix.wait_range(bad)


def test_reads_dominate_the_task_mix(user_mix: ModuleType) -> None:
    weights = user_mix.TASK_WEIGHTS
    reads = weights["list"] + weights["download"] + weights["open_share"]
    assert reads > 3 * (weights["upload"] + weights["share"])
