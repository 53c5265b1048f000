"""Cache faults: a cold cache, and Redis gone.

`ColdCache` empties the stack's Redis (FLUSHALL), as a restart or failover of the cache
would: every listing is a miss until it is read once, or until the runbook's "warm up
cache" (POST /admin/cache/warm) fills it. Nothing can be put back, so its revert only
records that the cache refills by itself.

`RedisDown` takes Redis away from the API: mode "kill" kills the server (it comes back
empty: the local Redis keeps nothing on disk), mode "network" cuts the API's network
path to it. They are the process and network faults, reused as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import redis

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.faults.data import unsupported_without
from runbook_checks.faults.network import NetworkDown
from runbook_checks.faults.process import ProcessKill
from runbook_checks.stack.base import Capability, Stack

__all__ = ["ColdCache", "RedisDown"]

RedisMode = Literal["kill", "network"]
_REDIS_NEEDS: Mapping[str, frozenset[Capability]] = {
    "kill": frozenset({Capability.KILL}),
    "network": frozenset({Capability.PROXY}),
}


@dataclass(frozen=True)
class ColdCache(Fault):
    """Every key in the stack's Redis dropped (FLUSHALL): each listing is a cache miss
    until read once or warmed."""

    kind: ClassVar[str] = "cold-cache"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.DATA})

    def describe(self) -> str:
        return "flush the cache (FLUSHALL on Redis)"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        try:
            with redis.Redis.from_url(
                stack.endpoints.redis_url, socket_timeout=5, socket_connect_timeout=5
            ) as client:
                keys = int(client.dbsize())
                client.flushall()
        except (redis.RedisError, OSError) as exc:
            raise FaultError(
                f"cannot inject {self.describe()}: {type(exc).__name__}: {exc}",
                hint="Redis must be up to be flushed",
            ) from exc
        handle.did(
            f"flushed {keys} key(s) from Redis",
            lambda: handle.notes.append(
                "nothing to restore: the cache refills as listings are read "
                "(or with POST /admin/cache/warm)"
            ),
            "record that the cache stays cold",
        )


@dataclass(frozen=True)
class RedisDown(Fault):
    """Redis out of the API's reach: its process killed ("kill"; it restarts empty) or
    the API's network path to it down ("network")."""

    kind: ClassVar[str] = "redis-down"
    requires: ClassVar[frozenset[Capability]] = _REDIS_NEEDS["kill"]
    requires_by_mode: ClassVar[Mapping[str, frozenset[Capability]]] = _REDIS_NEEDS

    mode: RedisMode = "kill"

    def __post_init__(self) -> None:
        if self.mode not in _REDIS_NEEDS:
            raise UsageError(
                f"{self.kind}: unknown mode {self.mode!r}; expected one of "
                f"{', '.join(_REDIS_NEEDS)}"
            )

    def unsupported_reason(self, stack: Stack) -> str | None:
        return unsupported_without(self, stack)

    def servers(self) -> frozenset[str]:
        return frozenset({"redis"})

    def describe(self) -> str:
        if self.mode == "kill":
            return "Redis down: its process killed (SIGKILL; it restarts empty)"
        return "Redis down: the API's network path to it cut"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        inner_fault = ProcessKill("redis") if self.mode == "kill" else NetworkDown("redis")
        inner = inner_fault.inject(stack, clock=handle.clock)
        handle.did(
            f"{inner_fault.describe()}: {'; '.join(inner.notes)}",
            inner.revert,
            f"revert {inner_fault.describe()}",
        )
