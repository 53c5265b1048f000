"""The fault proxy, with real sockets on 127.0.0.1: small servers here, and a real Redis.

Timings are only ever asserted as generous lower bounds that prove a delay was applied;
everything else is behaviour (bytes, errors, refusals). Waits poll with deadlines.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runbook_checks.clock import SYSTEM_CLOCK, wait_until
from runbook_checks.errors import StackError
from runbook_checks.stack import proxy as proxy_module
from runbook_checks.stack.ports import free_port, port_open
from runbook_checks.stack.proxy import (
    Bandwidth,
    FaultProxy,
    Latency,
    LimitData,
    ProxySet,
    ResetPeer,
    SlowClose,
    Timeout,
)

HOST = "127.0.0.1"

# --------------------------------------------------------------------------- test servers

Handler = Callable[[socket.socket], None]


class TcpServer:
    """A threaded TCP server on 127.0.0.1 running `handler` once per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server((HOST, 0))
        self.port: int = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.accepted = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.conns.append(conn)
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for conn in self.conns:
                conn.close()


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


def request_response(conn: socket.socket) -> None:
    """Line protocol: PING -> PONG; GET n -> n bytes; BYE -> the server closes."""
    lines = conn.makefile("rb")
    for line in lines:
        command, _, arg = line.strip().partition(b" ")
        if command == b"PING":
            conn.sendall(b"PONG\n")
        elif command == b"GET":
            conn.sendall(pattern(int(arg)))
        elif command == b"BYE":
            conn.sendall(b"BYE\n")
            return


def pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def connect(port: int, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout_s)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        data = sock.recv(min(size - got, 1 << 20))
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def recv_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while data := sock.recv(1 << 20):
        chunks.append(data)
    return b"".join(chunks)


def ping(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\n")
    return recv_exactly(sock, 5)


def elapsed_since(start: float) -> float:
    return SYSTEM_CLOCK.monotonic() - start


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer(echo)
    yield server
    server.close()


@pytest.fixture
def rr_server() -> Iterator[TcpServer]:
    server = TcpServer(request_response)
    yield server
    server.close()


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., FaultProxy]]:
    proxies: list[FaultProxy] = []

    def make(upstream_port: int, name: str = "dep", **kwargs: object) -> FaultProxy:
        proxy = FaultProxy(name, (HOST, upstream_port), **kwargs)  # type: ignore[arg-type]
        proxies.append(proxy)
        proxy.start()
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def rr_proxy(rr_server: TcpServer, make_proxy: Callable[..., FaultProxy]) -> FaultProxy:
    return make_proxy(rr_server.port)


def wait_for_active(proxy: FaultProxy, count: int) -> None:
    wait_until(
        lambda: proxy.stats().connections_active == count,
        what=f"{count} active connections on {proxy!r}",
        timeout_s=5,
        interval_s=0.01,
    )


# --------------------------------------------------------------------------- life cycle


def test_forwards_both_ways_and_counts(
    echo_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(echo_server.port)
    assert proxy.listen_port not in (0, echo_server.port)
    with connect(proxy.listen_port) as sock:
        sock.sendall(b"hello proxy")
        assert recv_exactly(sock, 11) == b"hello proxy"
        wait_for_active(proxy, 1)
    wait_for_active(proxy, 0)
    stats = proxy.stats()
    assert stats.connections_accepted == 1
    assert (stats.bytes_upstream, stats.bytes_downstream) == (11, 11)


def test_stop_closes_listener_and_connections_and_is_idempotent(echo_server: TcpServer) -> None:
    proxy = FaultProxy("dep", (HOST, echo_server.port))
    with proxy:
        threads = {t.name for t in threading.enumerate()}
        assert "fault-proxy-dep" in threads
        sock = connect(proxy.listen_port)
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
    assert not proxy.running
    assert "fault-proxy-dep" not in {t.name for t in threading.enumerate()}
    assert sock.recv(10) == b""  # cut by stop()
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen_port)
    proxy.stop()  # idempotent


def test_restart_keeps_the_port_and_the_settings(
    rr_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(rr_server.port)
    port = proxy.listen_port
    proxy.add_toxic(Latency(1, name="kept"))
    proxy.stop()
    proxy.start()
    assert proxy.listen_port == port
    assert [t.name for t in proxy.toxics()] == ["kept"]
    with connect(port) as sock:
        assert ping(sock) == b"PONG\n"


def test_many_concurrent_connections_carry_data_intact(
    echo_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(echo_server.port)
    clients = 40

    def roundtrip(seed: int) -> bool:
        payload = random.Random(seed).randbytes(256 * 1024)
        with connect(proxy.listen_port) as sock:
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            received = recv_exactly(sock, len(payload))
            sender.join()
        return hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(roundtrip, range(clients)))
    assert all(results)
    wait_for_active(proxy, 0)
    stats = proxy.stats()
    assert stats.connections_accepted == clients
    assert stats.bytes_upstream == stats.bytes_downstream == clients * 256 * 1024


def echo_while_toggling_toxics(proxy: FaultProxy) -> None:
    """Echo 6 MB through `proxy`, switching a 1 ms latency on and off (on alternating
    streams) every 64 KiB; assert every byte came back, in order."""
    payload = random.Random(3).randbytes(6 * 1024 * 1024)
    with connect(proxy.listen_port, timeout_s=30) as sock:

        def send() -> None:
            view = memoryview(payload)
            while view:
                sock.sendall(view[:4096])
                view = view[4096:]

        sender = threading.Thread(target=send)
        sender.start()
        toggles = 0
        received = bytearray()
        while len(received) < len(payload):
            received += sock.recv(65536)
            if len(received) // 65536 > toggles:  # every 64 KiB echoed: switch paths
                toggles += 1
                stream = "upstream" if toggles % 2 else "downstream"
                if proxy.toxics():
                    proxy.clear_toxics()
                else:
                    proxy.add_toxic(Latency(1, stream=stream, name="flip"))
        sender.join()
    assert toggles > 50
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_bytes_keep_their_order_while_toxics_come_and_go(
    echo_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    # With no toxic, a socket passes its bytes on by itself; with one, they queue. A
    # stream switching between the two, in both directions, must never reorder bytes.
    echo_while_toggling_toxics(make_proxy(echo_server.port))


def test_bytes_keep_their_order_when_the_queue_is_full_as_the_toxic_goes(
    echo_server: TcpServer,
    make_proxy: Callable[..., FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A chunk the read loop holds while it waits for room in a full queue is in neither
    # the socket's reader nor the queue. When the toxic goes, the write loop can empty
    # the queue before that chunk is put; a chunk arriving then must not pass it. A queue
    # of one small chunk makes that moment frequent (it was what reordered bytes, rarely,
    # at the real sizes).
    monkeypatch.setattr(proxy_module, "_QUEUE_CHUNKS", 1)
    monkeypatch.setattr(proxy_module, "_CHUNK_BYTES", 2048)
    for _ in range(3):
        echo_while_toggling_toxics(make_proxy(echo_server.port))


def test_a_held_proxy_keeps_new_connections_waiting_until_released(
    echo_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    # a server still coming up: its clients wait, accepted, instead of being refused
    proxy = make_proxy(echo_server.port)
    proxy.hold()
    with connect(proxy.listen_port) as sock:
        sock.sendall(b"early")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(5)
        assert echo_server.accepted == 0  # the upstream is not even dialled
        proxy.release()
        sock.settimeout(5)
        assert recv_exactly(sock, 5) == b"early"
    assert echo_server.accepted == 1


def test_half_close_is_passed_on(
    echo_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(echo_server.port)
    with connect(proxy.listen_port) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"last words"


def test_unreachable_upstream_closes_the_client_and_is_counted(
    make_proxy: Callable[..., FaultProxy],
) -> None:
    proxy = make_proxy(free_port())
    with connect(proxy.listen_port) as sock:
        assert sock.recv(10) == b""
    assert proxy.stats().upstream_connect_failures == 1


def test_listening_on_a_taken_port_says_so() -> None:
    with socket.create_server((HOST, 0)) as taken:
        port = taken.getsockname()[1]
        proxy = FaultProxy("dep", (HOST, 1), listen_port=port)
        with pytest.raises(StackError, match="could not listen"):
            proxy.start()
        assert not proxy.running


# --------------------------------------------------------------------------- toxics


def test_latency_delays_a_round_trip(rr_proxy: FaultProxy) -> None:
    with connect(rr_proxy.listen_port) as sock:
        assert ping(sock) == b"PONG\n"  # opened before the toxic: it applies anyway
        rr_proxy.add_toxic(Latency(200))
        start = SYSTEM_CLOCK.monotonic()
        assert ping(sock) == b"PONG\n"
        assert elapsed_since(start) >= 0.2
        rr_proxy.remove_toxic("latency_downstream")
        assert ping(sock) == b"PONG\n"


def test_upstream_latency_with_jitter_delays_requests(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(Latency(150, jitter_ms=50, stream="upstream"))
    with connect(rr_proxy.listen_port) as sock:
        start = SYSTEM_CLOCK.monotonic()
        assert ping(sock) == b"PONG\n"
        assert elapsed_since(start) >= 0.1


def test_latency_on_a_large_response_keeps_it_intact(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(Latency(50, jitter_ms=50))  # jitter must not reorder chunks
    with connect(rr_proxy.listen_port) as sock:
        sock.sendall(b"GET 2000000\n")
        assert recv_exactly(sock, 2_000_000) == pattern(2_000_000)


def test_black_hole_holds_data_until_removed(rr_proxy: FaultProxy) -> None:
    with connect(rr_proxy.listen_port, timeout_s=0.3) as sock:
        assert ping(sock) == b"PONG\n"
        rr_proxy.add_toxic(Timeout())
        sock.sendall(b"PING\n")
        with pytest.raises(TimeoutError):
            sock.recv(5)
        rr_proxy.remove_toxic("timeout_downstream")
        sock.settimeout(5)
        assert recv_exactly(sock, 5) == b"PONG\n"  # held, not lost


def test_black_hole_with_timeout_closes_the_connection(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(Timeout(timeout_ms=100, stream="upstream"))
    start = SYSTEM_CLOCK.monotonic()  # the timeout counts from the connection
    with connect(rr_proxy.listen_port) as sock:
        sock.sendall(b"PING\n")
        assert sock.recv(5) == b""
        assert elapsed_since(start) >= 0.1
    assert rr_proxy.stats().bytes_upstream == 0


def test_reset_peer_resets_new_connections(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(ResetPeer())
    with pytest.raises(ConnectionResetError), connect(rr_proxy.listen_port) as sock:
        ping(sock)


def test_reset_peer_after_a_delay_resets_an_open_connection(rr_proxy: FaultProxy) -> None:
    with connect(rr_proxy.listen_port) as sock:
        assert ping(sock) == b"PONG\n"
        # the delay runs from the toxic's arrival, inside add_toxic: counted from before
        # it (counted from after it, a busy machine's reset came 96 ms later)
        start = SYSTEM_CLOCK.monotonic()
        rr_proxy.add_toxic(ResetPeer(timeout_ms=100))
        with pytest.raises(ConnectionResetError):
            sock.recv(5)
        assert elapsed_since(start) >= 0.1


def test_limit_data_forwards_exactly_that_many_bytes_then_closes(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(LimitData(1000))
    with connect(rr_proxy.listen_port) as sock:
        sock.sendall(b"GET 10000\n")
        assert recv_all(sock) == pattern(1000)
    assert rr_proxy.stats().bytes_downstream == 1000


def test_bandwidth_slows_a_payload_down(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(Bandwidth(100))  # 100 KB/s: 50 KB take ~0.5 s
    with connect(rr_proxy.listen_port) as sock:
        start = SYSTEM_CLOCK.monotonic()
        sock.sendall(b"GET 50000\n")
        assert recv_exactly(sock, 50_000) == pattern(50_000)
        assert elapsed_since(start) >= 0.4


def test_slow_close_delays_the_close(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(SlowClose(200))
    with connect(rr_proxy.listen_port) as sock:
        start = SYSTEM_CLOCK.monotonic()
        sock.sendall(b"BYE\n")
        assert recv_all(sock) == b"BYE\n"
        assert elapsed_since(start) >= 0.2


def test_toxicity_zero_leaves_connections_unaffected(rr_proxy: FaultProxy) -> None:
    rr_proxy.add_toxic(Timeout(toxicity=0.0))
    rr_proxy.add_toxic(ResetPeer(toxicity=0.0))
    with connect(rr_proxy.listen_port) as sock:
        assert ping(sock) == b"PONG\n"


def test_toxicity_is_drawn_per_connection(
    rr_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(rr_server.port, rng=random.Random(7))
    proxy.add_toxic(ResetPeer(toxicity=0.5))
    outcomes: list[str] = []
    for _ in range(30):
        try:
            with connect(proxy.listen_port) as sock:
                outcomes.append("ok" if ping(sock) == b"PONG\n" else "other")
        except ConnectionResetError:  # the RST may even beat connect() to the finish
            outcomes.append("reset")
    assert set(outcomes) == {"ok", "reset"}


def test_toxic_names_defaults_duplicates_and_removal(rr_proxy: FaultProxy) -> None:
    assert rr_proxy.add_toxic(Latency(10)) == "latency_downstream"
    assert rr_proxy.add_toxic(Latency(10, stream="upstream")) == "latency_upstream"
    assert rr_proxy.add_toxic(Bandwidth(1000, name="slow")) == "slow"
    with pytest.raises(ValueError, match="already has a toxic named 'slow'"):
        rr_proxy.add_toxic(Timeout(name="slow"))
    assert [t.name for t in rr_proxy.toxics()] == [
        "latency_downstream",
        "latency_upstream",
        "slow",
    ]
    rr_proxy.remove_toxic("latency_upstream")
    with pytest.raises(KeyError, match="no toxic named 'latency_upstream'"):
        rr_proxy.remove_toxic("latency_upstream")
    rr_proxy.clear_toxics()
    assert rr_proxy.toxics() == ()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Latency(10, stream="sideways"), "stream must be"),  # type: ignore[arg-type]
        (lambda: Latency(10, toxicity=1.5), "toxicity"),
        (lambda: Latency(-1), "latency_ms must be >= 0"),
        (lambda: Bandwidth(0), "rate_kbps must be > 0"),
        (lambda: Timeout(-5), "timeout_ms must be >= 0"),
        (lambda: LimitData(-1), "bytes must be >= 0"),
        (lambda: SlowClose(-1), "delay_ms must be >= 0"),
    ],
)
def test_bad_toxic_settings_are_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------- down / up


def test_disable_refuses_and_cuts_then_enable_listens_on_the_same_port(
    rr_proxy: FaultProxy,
) -> None:
    port = rr_proxy.listen_port
    with connect(port) as open_sock:
        assert ping(open_sock) == b"PONG\n"
        rr_proxy.disable()
        assert not rr_proxy.enabled
        assert open_sock.recv(5) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    rr_proxy.disable()  # idempotent
    rr_proxy.enable()
    assert (rr_proxy.enabled, rr_proxy.listen_port) == (True, port)
    with connect(port) as sock:
        assert ping(sock) == b"PONG\n"


def test_a_disabled_proxy_keeps_its_port_until_it_stops(rr_proxy: FaultProxy) -> None:
    # no client ever connected: nothing else (a closing connection) keeps the port busy
    port = rr_proxy.listen_port
    rr_proxy.disable()
    _assert_held(rr_proxy)
    rr_proxy.enable()
    assert rr_proxy.listen_port == port
    with connect(port) as sock:
        assert ping(sock) == b"PONG\n"
    rr_proxy.disable()
    rr_proxy.stop()
    with socket.socket() as successor:  # free again: stop() let go of it
        successor.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        successor.bind(rr_proxy.listen_address)


def _assert_held(proxy: FaultProxy) -> None:
    """The proxy's port cannot be bound, so `ports.free_port` (which binds a port to see
    that it is free) never gives it to a stack starting beside this one: once, in CI, a
    disabled proxy's port went to another test's stack, and neither could listen on it."""
    with socket.socket() as intruder, pytest.raises(OSError, match="in use") as taken:
        intruder.bind(proxy.listen_address)
    assert taken.value.errno == errno.EADDRINUSE


def test_a_proxy_disabled_while_stopped_starts_down(
    rr_server: TcpServer, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(rr_server.port)
    proxy.stop()
    proxy.disable()
    proxy.start()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen_port)
    _assert_held(proxy)
    proxy.enable()
    with connect(proxy.listen_port) as sock:
        assert ping(sock) == b"PONG\n"


# --------------------------------------------------------------------------- ProxySet


def test_proxy_set_get_clear_all_and_stop_all(rr_server: TcpServer) -> None:
    proxies = ProxySet()
    for name in ("postgres", "redis"):
        proxies.add(FaultProxy(name, (HOST, rr_server.port)))
    proxies.start_all()
    try:
        assert "redis" in proxies
        assert list(proxies) == ["postgres", "redis"]
        with pytest.raises(
            KeyError, match=r"no fault proxy for 'kafka' \(proxies: postgres, redis\)"
        ):
            proxies.get("kafka")
        proxies.get("postgres").add_toxic(Timeout())
        proxies.get("redis").disable()
        proxies.clear_all()
        for name in proxies:
            proxy = proxies.get(name)
            assert proxy.enabled
            assert proxy.toxics() == ()
            with connect(proxy.listen_port) as sock:
                assert ping(sock) == b"PONG\n"
    finally:
        proxies.stop_all()
    assert not any(proxies.get(name).running for name in proxies)


# --------------------------------------------------------------------------- real Redis


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(host=HOST, port=port, socket_timeout=1)
        wait_until(
            probe.ping,
            what=f"redis-server on port {port} to answer PING",
            timeout_s=10,
            transient=(redis.ConnectionError,),
        )
        probe.close()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_real_redis_through_the_proxy_down_and_up(
    redis_port: int, make_proxy: Callable[..., FaultProxy]
) -> None:
    proxy = make_proxy(redis_port, name="redis")
    # one immediate retry: the pooled connection is cut, the reconnect must be refused
    client = redis.Redis(
        host=HOST, port=proxy.listen_port, socket_timeout=5, retry=Retry(NoBackoff(), 1)
    )
    try:
        value = random.Random(1).randbytes(2 * 1024 * 1024)
        assert client.set("blob", value)
        assert client.get("blob") == value
        pipe = client.pipeline()
        for i in range(500):
            pipe.incr("counter", i)
        assert pipe.execute()[-1] == sum(range(500))

        proxy.add_toxic(Latency(200))
        start = SYSTEM_CLOCK.monotonic()
        assert client.ping()
        assert elapsed_since(start) >= 0.2
        proxy.clear_toxics()

        port = proxy.listen_port
        proxy.disable()
        with pytest.raises(redis.ConnectionError, match=r"(?i)connection refused"):
            client.get("blob")
        proxy.enable()
        assert proxy.listen_port == port
        assert client.get("blob") == value  # the same client, the same port
    finally:
        client.close()


def _assert_reset(address: tuple[str, int]) -> None:
    """The connection is reset: at once (connect() itself may report it, when the reset
    comes before the socket is checked) or at the first read."""
    try:
        with socket.create_connection(address, timeout=2) as client:
            client.settimeout(2)
            client.recv(1)
    except ConnectionResetError:
        return
    raise AssertionError(f"{address} was not reset")


def test_a_refusing_upstream_is_mirrored_as_connection_refused() -> None:
    """A killed server behind the proxy looks killed to the client: ECONNREFUSED, not a
    reset, and the proxy listens again (same port) once the server is back."""
    port = free_port()
    proxy = FaultProxy("mirror", ("127.0.0.1", port))
    proxy.mirror_refusal = True
    with proxy:
        _assert_reset(proxy.listen_address)  # the proxy found the upstream refusing
        wait_until(lambda: not port_open(proxy.listen_port), what="listener closed", timeout_s=5)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(proxy.listen_address, timeout=2)
        # meanwhile the port stays the proxy's: nothing else can bind it
        with socket.socket() as intruder, pytest.raises(OSError, match="in use") as taken:
            intruder.bind(proxy.listen_address)
        assert taken.value.errno == errno.EADDRINUSE
        server = socket.create_server(("127.0.0.1", port))
        try:
            wait_until(lambda: port_open(proxy.listen_port), what="listening again", timeout_s=5)
        finally:
            server.close()


def test_stopping_a_refusing_proxy_releases_its_port() -> None:
    proxy = FaultProxy("mirror", ("127.0.0.1", free_port()))
    proxy.mirror_refusal = True
    with proxy:
        _assert_reset(proxy.listen_address)  # the proxy found the upstream refusing
        wait_until(lambda: not port_open(proxy.listen_port), what="listener closed", timeout_s=5)
    with socket.socket() as successor:
        successor.bind(proxy.listen_address)  # free again: stop() let go of the held port


def clients_connected_while_disabling(proxy: FaultProxy, threads: int = 4) -> list[socket.socket]:
    """Enable `proxy`, have `threads` threads connect to it as fast as they can, disable
    it mid-stream; the sockets whose connect succeeded."""
    proxy.enable()
    opened: list[socket.socket] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                opened.append(connect(proxy.listen_port, timeout_s=2))
            except OSError:
                return  # refused: the proxy is down

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    wait_until(lambda: len(opened) > 20, what="clients connecting", timeout_s=5)
    proxy.disable()
    stop.set()
    for worker in workers:
        worker.join()
    return opened


def test_no_client_accepted_before_disable_outlives_it_or_is_left_hanging(
    rr_proxy: FaultProxy,
) -> None:
    """Clients connecting while disable() runs: each one is cut (EOF or reset), none still
    answered (a pooled database connection that survived kept a drill's /health green
    under a stop condition) and none left open and unread (asyncio 3.11 leaks the socket
    of a client accepted just before its server closed)."""
    outcomes: Counter[str] = Counter()
    for _ in range(10):
        for sock in clients_connected_while_disabling(rr_proxy):
            with sock:
                try:
                    outcomes["answered" if ping(sock) == b"PONG\n" else "cut"] += 1
                except TimeoutError:
                    outcomes["left hanging"] += 1
                except OSError:
                    outcomes["cut"] += 1
    assert outcomes["cut"] > 0
    assert (outcomes["answered"], outcomes["left hanging"]) == (0, 0), outcomes
