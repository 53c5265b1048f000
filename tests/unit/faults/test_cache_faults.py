"""Cache faults: Redis killed or cut off (a fake stack with real in-process proxies and a
fake Redis component), the cold cache's checks. FLUSHALL on a real Redis is in
tests/integration/test_faults_more.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import ACTIVE, FaultError
from runbook_checks.faults.cache import ColdCache, RedisDown
from runbook_checks.stack.base import Capability, Stack
from runbook_checks.stack.proxy import FaultProxy, ProxySet
from tests.fake_stack import NoStackExtras

CLOSED = ("127.0.0.1", 1)  # the proxies' upstream: never reached in these tests


@dataclass
class FakeRedis:
    running: bool = True
    events: list[str] = field(default_factory=list)

    def kill(self) -> None:
        self.running = False
        self.events.append("kill")

    def start(self) -> None:
        self.running = True
        self.events.append("start")

    def resume(self) -> None:
        self.events.append("resume")

    def is_running(self) -> bool:
        return self.running

    def is_ready(self) -> bool:
        return self.running

    def wait_ready(self, timeout_s: float = 15.0) -> None:
        assert self.running


@dataclass
class FakeStack(NoStackExtras):
    proxies: ProxySet
    capabilities: frozenset[Capability] = frozenset(Capability)
    backend: str = "fake"
    components: dict[str, FakeRedis] = field(default_factory=dict)

    def component(self, name: str) -> FakeRedis:
        assert name == "redis"
        return self.components.setdefault(name, FakeRedis())


def as_stack(fake: FakeStack) -> Stack:
    return cast(Stack, fake)


def enabled(stack: FakeStack) -> dict[str, bool]:
    return {name: proxy.enabled for name, proxy in stack.proxies.items()}


@pytest.fixture
def stack() -> Iterator[FakeStack]:
    proxies = ProxySet()
    for name in ("postgres", "object_store", "redis"):
        proxies.add(FaultProxy(name, CLOSED))
    proxies.start_all()
    yield FakeStack(proxies)
    proxies.stop_all()


# --------------------------------------------------------------------------- cache


def test_redis_down_by_kill_kills_and_revert_starts_it_again(stack: FakeStack) -> None:
    redis = stack.component("redis")
    with RedisDown("kill").inject(as_stack(stack)) as handle:
        assert not redis.is_running()
        assert "killed redis with SIGKILL" in handle.notes[0]
    assert redis.is_running()
    assert redis.events == ["kill", "resume", "start"]
    handle.revert()
    assert redis.events == ["kill", "resume", "start"]


def test_redis_down_by_network_cuts_the_redis_path(stack: FakeStack) -> None:
    with RedisDown("network").inject(as_stack(stack)):
        assert enabled(stack) == {"postgres": True, "object_store": True, "redis": False}
    assert enabled(stack)["redis"]
    assert "redis" not in stack.components  # the process was never touched


def test_redis_modes_need_kill_or_proxy() -> None:
    kill_only = as_stack(FakeStack(ProxySet(), frozenset({Capability.KILL})))
    assert RedisDown("kill").unsupported_reason(kill_only) is None
    assert RedisDown("network").unsupported_reason(kill_only) is not None
    with pytest.raises(UsageError, match="unknown mode"):
        RedisDown("pause")  # type: ignore[arg-type]


def test_cold_cache_on_an_unreachable_redis_fails_clearly() -> None:
    @dataclass
    class Endpoints:
        redis_url: str = "redis://127.0.0.1:1/0"

    @dataclass
    class Unreachable(NoStackExtras):
        endpoints: Endpoints = field(default_factory=Endpoints)
        backend: str = "fake"
        capabilities: frozenset[Capability] = frozenset(Capability)

    before = set(ACTIVE.handles)
    with pytest.raises(FaultError, match="Redis must be up to be flushed"):
        ColdCache().inject(cast(Stack, Unreachable()))
    assert set(ACTIVE.handles) == before
