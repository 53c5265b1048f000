"""Storage faults on a fake stack: real in-process fault proxies (as in test_network.py)
and a fake component that records kill/start. The object store itself is exercised in
tests/integration/test_faults_more.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import pytest

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import ACTIVE, FaultError
from runbook_checks.faults.storage import StorageOutage, StorageQuotaExceeded
from runbook_checks.stack.base import Capability, Stack
from runbook_checks.stack.proxy import FaultProxy, ProxySet, Timeout
from tests.fake_stack import NoStackExtras

CLOSED = ("127.0.0.1", 1)  # the proxies' upstream: never reached in these tests


@dataclass
class FakeComponent:
    name: str
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
    components: dict[str, FakeComponent] = field(default_factory=dict)

    def component(self, name: str) -> FakeComponent:
        return self.components.setdefault(name, FakeComponent(name))


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


# --------------------------------------------------------------------------- storage outage


def test_outage_modes_and_what_each_needs() -> None:
    assert StorageOutage().mode == "down"
    assert StorageOutage("kill").describe().endswith("(moto loses every stored object)")
    with pytest.raises(UsageError, match="unknown mode 'flood'; expected one of down, blackhole"):
        StorageOutage("flood")  # type: ignore[arg-type]
    proxy_only = as_stack(FakeStack(ProxySet(), frozenset({Capability.PROXY})))
    assert StorageOutage("down").unsupported_reason(proxy_only) is None
    assert StorageOutage("blackhole").unsupported_reason(proxy_only) is None
    reason = StorageOutage("kill").unsupported_reason(proxy_only)
    assert reason is not None
    assert "needs data, kill" in reason


def test_down_disables_the_object_store_path_only_and_reverts_once(stack: FakeStack) -> None:
    port = stack.proxies.get("object_store").listen_port
    handle = StorageOutage("down").inject(as_stack(stack))
    assert enabled(stack) == {"postgres": True, "object_store": False, "redis": True}
    handle.revert()
    assert enabled(stack)["object_store"]
    assert stack.proxies.get("object_store").listen_port == port
    handle.revert()
    assert enabled(stack)["object_store"]
    assert handle not in ACTIVE.handles


def test_blackhole_adds_both_streams_and_removes_only_its_own(stack: FakeStack) -> None:
    proxy = stack.proxies.get("object_store")
    proxy.add_toxic(Timeout(0, name="operator"))
    with StorageOutage("blackhole").inject(as_stack(stack)) as handle:
        own = sorted(t.stream for t in proxy.toxics() if t.name != "operator")
        assert own == ["downstream", "upstream"]
        assert "network-blackhole:object_store" in handle.notes[0]
    assert [t.name for t in proxy.toxics()] == ["operator"]


def test_an_outage_on_a_stack_without_proxies_is_refused_and_leaves_nothing() -> None:
    @dataclass
    class NoProxies(NoStackExtras):
        backend: str = "fake"
        capabilities: frozenset[Capability] = frozenset(Capability)

    before = set(ACTIVE.handles)
    with pytest.raises(FaultError, match="this stack has no fault proxies"):
        StorageOutage("down").inject(cast(Stack, NoProxies()))
    assert set(ACTIVE.handles) == before


# --------------------------------------------------------------------------- quota


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StorageQuotaExceeded(quota_bytes=0), "quota_bytes must be >= 1"),
        (lambda: StorageQuotaExceeded(fill_kb=0), "fill_kb and file_kb must be >= 1"),
        (lambda: StorageQuotaExceeded(fill_kb=10_000, file_kb=1), "more than 1000 uploads"),
        (lambda: StorageQuotaExceeded(deleted_fraction=1.5), r"deleted_fraction must be in"),
    ],
)
def test_quota_settings_are_checked(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(UsageError, match=message):
        build()


def test_quota_describes_its_size_and_needs_reconfigure_and_data() -> None:
    assert StorageQuotaExceeded().describe() == (
        "storage quota of what is stored + 256 KB, filled with 32 KB uploads "
        "(50% of them soft-deleted)"
    )
    assert "quota of 1000 bytes" in StorageQuotaExceeded(quota_bytes=1000).describe()
    assert StorageQuotaExceeded.requires == {Capability.RECONFIGURE, Capability.DATA}
