"""Network faults on real fault proxies in front of a tiny request/response server.

The stack is the minimal one network faults need: named proxies in a `ProxySet`, plus
the backend name and capabilities every catalogue fault checks.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pytest

from runbook_checks.clock import SYSTEM_CLOCK, FakeClock
from runbook_checks.errors import UsageError
from runbook_checks.faults.base import ACTIVE, FaultError
from runbook_checks.faults.network import (
    NetworkBandwidth,
    NetworkBlackhole,
    NetworkDown,
    NetworkFault,
    NetworkLatency,
    NetworkReset,
)
from runbook_checks.stack.base import Capability, Stack
from runbook_checks.stack.proxy import FaultProxy, Latency, ProxySet, Timeout
from tests.fake_stack import NoStackExtras

HOST = "127.0.0.1"


class RequestResponseServer:
    """PING -> PONG; GET n -> n bytes. One thread per connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.port: int = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            try:
                for line in conn.makefile("rb"):
                    command, _, arg = line.strip().partition(b" ")
                    if command == b"PING":
                        conn.sendall(b"PONG\n")
                    elif command == b"GET":
                        conn.sendall(b"x" * int(arg))
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        for conn in self.conns:
            conn.close()


@dataclass
class ProxiedStack(NoStackExtras):
    proxies: ProxySet
    backend: str = "test"
    capabilities: frozenset[Capability] = frozenset({Capability.PROXY})


def as_stack(fake: ProxiedStack) -> Stack:
    """The fake has what network faults use; the `Stack` protocol asks for more."""
    return cast(Stack, fake)


@pytest.fixture
def stack() -> Iterator[ProxiedStack]:
    server = RequestResponseServer()
    proxies = ProxySet()
    for name in ("postgres", "object_store", "redis"):
        proxies.add(FaultProxy(name, (HOST, server.port)))
    proxies.start_all()
    yield ProxiedStack(proxies)
    proxies.stop_all()
    server.close()


def connect(stack: ProxiedStack, target: str, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection(
        (HOST, stack.proxies.get(target).listen_port), timeout=timeout_s
    )


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := sock.recv(size - len(data))):
        data += chunk
    return data


def ping(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\n")
    return recv_exactly(sock, 5)


def ping_new(stack: ProxiedStack, target: str) -> bytes:
    with connect(stack, target) as sock:
        return ping(sock)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("fault", "name", "described"),
    [
        (NetworkLatency("postgres", 200), "network-latency:postgres", "add 200 ms latency"),
        (
            NetworkLatency("redis", 100, jitter_ms=20, stream="upstream"),
            "network-latency:redis",
            "100 ms ± 20 ms latency to redis traffic client->server",
        ),
        (NetworkBandwidth("object_store", 64), "network-bandwidth:object_store", "64 KB/s"),
        (NetworkBlackhole("postgres"), "network-blackhole:postgres", "held open"),
        (NetworkBlackhole("redis", timeout_ms=500), "network-blackhole:redis", "after 500 ms"),
        (NetworkReset("postgres"), "network-reset:postgres", "(TCP RST) at once"),
        (NetworkReset("redis", after_ms=250), "network-reset:redis", "250 ms after"),
        (NetworkDown("object_store"), "network-down:object_store", "object_store network path"),
    ],
)
def test_names_descriptions_and_requirements(
    fault: NetworkFault, name: str, described: str
) -> None:
    assert fault.name == name
    assert described in fault.describe()
    assert fault.requires == frozenset({Capability.PROXY})


def test_an_unknown_dependency_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        UsageError, match=r"unknown dependency 'api'; expected one of postgres, object_store, redis"
    ):
        NetworkDown("api")


@pytest.mark.parametrize(
    "build",
    [
        lambda: NetworkLatency("postgres", -1),
        lambda: NetworkLatency("postgres", 10, stream="sideways"),  # type: ignore[arg-type]
        lambda: NetworkBandwidth("redis", 0),
        lambda: NetworkBlackhole("redis", timeout_ms=-5),
        lambda: NetworkReset("redis", after_ms=-1),
    ],
)
def test_bad_settings_are_refused_when_the_fault_is_built(build: object) -> None:
    assert callable(build)
    with pytest.raises(UsageError):
        build()


# --------------------------------------------------------------------------- inject / revert


def test_latency_slows_the_target_only_and_reverts_only_its_own_toxic(
    stack: ProxiedStack,
) -> None:
    proxy = stack.proxies.get("postgres")
    proxy.add_toxic(Latency(1, name="operator"))  # someone else's toxic
    fault = NetworkLatency("postgres", 200)
    with fault.inject(as_stack(stack)) as handle:
        assert handle in ACTIVE.handles
        own = [t.name for t in proxy.toxics() if t.name != "operator"]
        assert len(own) == 1
        assert own[0].startswith("network-latency:postgres#")
        assert handle.notes == [f"added toxic {own[0]!r} to proxy 'postgres'"]
        start = SYSTEM_CLOCK.monotonic()
        assert ping_new(stack, "postgres") == b"PONG\n"
        assert SYSTEM_CLOCK.monotonic() - start >= 0.2
        assert stack.proxies.get("redis").toxics() == ()
    assert not handle.active
    assert handle not in ACTIVE.handles
    assert [t.name for t in proxy.toxics()] == ["operator"]
    handle.revert()  # idempotent
    assert [t.name for t in proxy.toxics()] == ["operator"]


def test_each_injection_gets_its_own_toxic(stack: ProxiedStack) -> None:
    proxy = stack.proxies.get("redis")
    fault = NetworkLatency("redis", 5)
    first = fault.inject(as_stack(stack))
    second = fault.inject(as_stack(stack))
    first_name, second_name = (t.name for t in proxy.toxics())
    assert first_name != second_name
    first.revert()
    assert [t.name for t in proxy.toxics()] == [second_name]
    second.revert()
    assert proxy.toxics() == ()


def test_bandwidth_slows_a_payload(stack: ProxiedStack) -> None:
    with (
        NetworkBandwidth("object_store", 100).inject(as_stack(stack)),
        connect(stack, "object_store") as sock,
    ):
        start = SYSTEM_CLOCK.monotonic()
        sock.sendall(b"GET 30000\n")
        assert len(recv_exactly(sock, 30_000)) == 30_000
        assert SYSTEM_CLOCK.monotonic() - start >= 0.2


def test_blackhole_answers_nothing_then_reverts_both_streams(stack: ProxiedStack) -> None:
    proxy = stack.proxies.get("redis")
    with connect(stack, "redis", timeout_s=0.3) as sock:
        handle = NetworkBlackhole("redis").inject(as_stack(stack))
        assert sorted(t.stream for t in proxy.toxics()) == ["downstream", "upstream"]
        assert all(isinstance(t, Timeout) for t in proxy.toxics())
        with pytest.raises(TimeoutError):
            ping(sock)
        handle.revert()
        assert proxy.toxics() == ()
        sock.settimeout(5)
        assert recv_exactly(sock, 5) == b"PONG\n"  # the held request went through


def test_reset_resets_connections_until_reverted(stack: ProxiedStack) -> None:
    with NetworkReset("postgres").inject(as_stack(stack)), pytest.raises(ConnectionResetError):
        ping_new(stack, "postgres")
    assert ping_new(stack, "postgres") == b"PONG\n"


def test_down_refuses_then_revert_listens_again_on_the_same_port(stack: ProxiedStack) -> None:
    proxy = stack.proxies.get("object_store")
    port = proxy.listen_port
    with NetworkDown("object_store").inject(as_stack(stack)) as handle:
        assert handle.notes == ["disabled proxy 'object_store'"]
        assert not proxy.enabled
        with pytest.raises(ConnectionRefusedError):
            connect(stack, "object_store")
        assert ping_new(stack, "postgres") == b"PONG\n"  # other paths untouched
    assert (proxy.enabled, proxy.listen_port) == (True, port)
    assert ping_new(stack, "object_store") == b"PONG\n"


def test_down_does_not_bring_up_what_it_did_not_take_down(stack: ProxiedStack) -> None:
    proxy = stack.proxies.get("redis")
    proxy.disable()  # down before the fault (an operator, another fault)
    handle = NetworkDown("redis").inject(as_stack(stack))
    assert handle.notes == ["proxy 'redis' was already down; left as it was"]
    handle.revert()
    assert not proxy.enabled


def test_revert_is_safe_after_the_proxy_stopped_or_was_cleared(stack: ProxiedStack) -> None:
    latency = NetworkLatency("postgres", 50).inject(as_stack(stack))
    down = NetworkDown("redis").inject(as_stack(stack))
    cleared = NetworkBlackhole("object_store").inject(as_stack(stack))
    stack.proxies.get("object_store").clear_toxics()
    cleared.revert()
    stack.proxies.stop_all()
    latency.revert()
    down.revert()
    assert stack.proxies.get("postgres").toxics() == ()
    assert stack.proxies.get("redis").enabled


def test_a_failure_inside_the_block_is_not_hidden_and_the_fault_is_reverted(
    stack: ProxiedStack,
) -> None:
    proxy = stack.proxies.get("postgres")
    with (
        pytest.raises(AssertionError, match="the drill failed"),
        NetworkDown("postgres").inject(as_stack(stack)),
    ):
        raise AssertionError("the drill failed")
    assert proxy.enabled


def test_inject_needs_a_running_proxy_for_the_target(stack: ProxiedStack) -> None:
    stack.proxies.get("redis").stop()
    with pytest.raises(FaultError, match="redis proxy is not running"):
        NetworkLatency("redis", 10).inject(as_stack(stack))
    partial = ProxiedStack(ProxySet({"postgres": stack.proxies.get("postgres")}))
    with pytest.raises(FaultError, match="no fault proxy for 'redis'"):
        NetworkDown("redis").inject(as_stack(partial))
    assert not ACTIVE.handles


def test_a_backend_without_the_proxy_capability_is_refused(stack: ProxiedStack) -> None:
    external = ProxiedStack(stack.proxies, backend="external", capabilities=frozenset())
    with pytest.raises(FaultError, match="needs proxy, which the external backend cannot do"):
        NetworkDown("postgres").inject(as_stack(external))
    assert stack.proxies.get("postgres").enabled


def test_the_handle_records_times_and_notes_for_the_journal(stack: ProxiedStack) -> None:
    clock = FakeClock(now=10.0)
    handle = NetworkLatency("postgres", 5).inject(as_stack(stack), clock=clock)
    clock.advance(2.5)
    handle.revert()
    assert (handle.injected_at, handle.reverted_at) == (10.0, 12.5)
    assert len(handle.notes) == 1
