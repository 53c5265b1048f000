"""The per-user file listing cache in Redis.

Keys: `files:ver:<user>` (a generation counter) and `files:list:<user>` (the listing
JSON of one generation, `<generation>\n<json>`, with a TTL). A lookup reads both in one
round trip (MGET) and serves the listing only when it was stored under the current
generation. Invalidation bumps the generation, so a listing read from the database while
an upload was committing can never be served as current (a listing stored late under an
older generation is a miss, never stale data). Redis being down or slow degrades the
listing to the database; it never fails it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from files_api.config import Settings
from files_api.errors import errno_name, nobody, one_line
from files_api.metrics import Metrics

CacheFailure = (RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class CacheRead:
    """A lookup's outcome: the cached payload, the generation to store under, or the error."""

    payload: bytes | None
    generation: int | None  # None when Redis failed: do not store
    error: str | None = None


class ListingCache:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.ttl_s = settings.cache_ttl_s
        self.metrics = metrics
        self.client: aioredis.Redis[bytes] = aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._pending: set[str] = set()
        self.on_failure: Callable[[], None] = nobody  # told of every failed operation

    def _failed(self) -> None:
        self.metrics.cache_errors.inc()
        self.on_failure()

    async def close(self) -> None:
        await self.client.aclose()  # type: ignore[attr-defined]  # stubs predate aclose

    async def ping(self) -> None:
        await self.client.ping()

    @staticmethod
    def _ver_key(user_id: str) -> str:
        return f"files:ver:{user_id}"

    @staticmethod
    def _list_key(user_id: str) -> str:
        return f"files:list:{user_id}"

    async def get_listing(self, user_id: str) -> CacheRead:
        if user_id in self._pending and await self.invalidate(user_id) is not None:
            return CacheRead(None, None, "an earlier invalidation is still pending")
        try:
            raw_generation, stored = await self.client.mget(
                self._ver_key(user_id), self._list_key(user_id)
            )
            generation = int(raw_generation or 0)
            payload = _listing_of(stored, generation)
        except CacheFailure as exc:
            self._failed()
            return CacheRead(None, None, f"{errno_name(exc)}: {one_line(exc)}")
        if payload is None:
            self.metrics.cache_misses.inc()
        else:
            self.metrics.cache_hits.inc()
        return CacheRead(payload, generation)

    async def store_listing(self, user_id: str, generation: int, payload: bytes) -> str | None:
        """Store a listing read after `generation` was current; return an error text or None.

        If the generation moved on meanwhile, what is written is never served (a miss).
        """
        try:
            await self.client.set(
                self._list_key(user_id), b"%d\n%s" % (generation, payload), ex=self.ttl_s
            )
        except CacheFailure as exc:
            self._failed()
            return f"{errno_name(exc)}: {one_line(exc)}"
        return None

    async def current_generation(self, user_id: str) -> int | None:
        try:
            return int(await self.client.get(self._ver_key(user_id)) or 0)
        except CacheFailure:
            self._failed()
            return None

    async def invalidate(self, user_id: str) -> str | None:
        """Make the user's cached listing stale; return an error text or None.

        A failed invalidation is remembered and retried before this process serves that
        user's listing from the cache again (and by `retry_pending`).
        """
        try:
            await self.client.incr(self._ver_key(user_id))
        except CacheFailure as exc:
            self._failed()
            self._pending.add(user_id)
            return f"{errno_name(exc)}: {one_line(exc)}"
        self._pending.discard(user_id)
        return None

    async def retry_pending(self) -> None:
        for user_id in list(self._pending):
            if await self.invalidate(user_id) is not None:
                return


def _listing_of(stored: bytes | None, generation: int) -> bytes | None:
    """The listing JSON of a `<generation>\n<json>` value, if stored under `generation`."""
    if stored is None:
        return None
    stored_generation, newline, payload = stored.partition(b"\n")
    if not newline or stored_generation != b"%d" % generation:
        return None
    return payload
