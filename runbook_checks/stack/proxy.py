"""The fault proxy: one TCP proxy per dependency, with Toxiproxy's toxics, in-process.

The service's API twin reaches PostgreSQL, the object store and Redis through one
`FaultProxy` each on 127.0.0.1, so drills can cut, slow down or black-hole a network
path without touching the servers. The model is Toxiproxy's:

- a *proxy* listens on a port and forwards every accepted connection to its upstream;
- *toxics* are settings (frozen dataclasses below) attached to a proxy. Each acts on one
  *stream* of a connection: ``"upstream"`` is client -> server, ``"downstream"`` is
  server -> client. ``toxicity`` (0..1) is the probability that a given connection is
  affected; it is drawn once per (connection, toxic), when the connection opens or when
  the toxic is added, whichever comes later;
- a proxy can be *disabled* ("down"): the listening socket is closed, so clients get
  ECONNREFUSED, and every open connection is cut. `enable()` listens again on the same
  port.

Toxics apply to connections that are already open as well as to new ones (Toxiproxy
does the same): a pooled connection that the API opened before the fault must feel it.

Semantics worth knowing (where this differs from, or refines, Toxiproxy):

- `Latency` delays each chunk until ``arrival + latency ± jitter``; chunks are stamped
  when read, so a stream stays pipelined (throughput is not cut to one chunk per delay).
- `Timeout` (black hole) *holds* data instead of discarding it: the proxy stops reading,
  TCP flow control stalls the sender, exactly like a path that drops every packet. When
  the toxic is removed before the connection is closed, the held bytes are delivered in
  order, as TCP retransmission would; Toxiproxy discards them and leaves a corrupt
  stream behind. With ``timeout_ms > 0`` the connection is closed after that time.
- `ResetPeer` and a closing `Timeout` act on the whole connection (both sockets), the
  timer starting when the toxic meets the connection. The reset is a real RST
  (``SO_LINGER`` 0), so the client sees ``ConnectionResetError``.
- `Bandwidth.rate_kbps` is in kilobytes (1000 bytes) per second, Toxiproxy's "KB/s".
- `LimitData` counts the bytes of its stream from the moment it meets the connection,
  forwards exactly that many, then closes the connection.
- `SlowClose` delays the propagation of a close (EOF) on its stream.
- Within one stream the toxics are applied in a fixed order: black hole, latency,
  data limit, bandwidth (several latencies add up; the lowest bandwidth wins).

Cost: a chunk that meets no toxic is passed on by the receiving socket's protocol
(`_PassProtocol`: one write to the other socket, no task switch, no queue), as long as
nothing of its stream is queued, held or unread before it and the other socket keeps up;
otherwise it takes the toxics' path (a reader task, a queue, a writer task). Measured
with pgbench -S (20 clients, 2 cores, benchmarks/bench_proxy.py): through the proxy
~20-40% of direct with every chunk on the toxics' path, ~70% with the pass-through.

Threading: each proxy runs its own asyncio event loop in its own daemon thread. Chosen
over one shared loop because it keeps the life cycle local (a proxy can be started,
stopped or restarted without coordinating with the others or reference-counting a
shared loop) and isolates failures (a bug that wedges one loop does not take the other
dependencies' traffic down with it, which would turn a one-dependency drill into a
whole-stack outage). The cost is one idle thread per dependency, three in a stack.
The public methods are thread-safe; each one that changes live state runs on the loop
and returns once the change is in effect on every open connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import socket
import struct
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeVar

from runbook_checks.errors import StackError

__all__ = [
    "Bandwidth",
    "FaultProxy",
    "Latency",
    "LimitData",
    "ProxySet",
    "ProxyStats",
    "ResetPeer",
    "SlowClose",
    "Stream",
    "Timeout",
    "Toxic",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

Stream = Literal["upstream", "downstream"]
STREAMS: tuple[Stream, ...] = ("upstream", "downstream")

_CHUNK_BYTES = 256 * 1024  # largest read per chunk
_READER_LIMIT_BYTES = 256 * 1024  # asyncio StreamReader pauses the socket above 2x this
_QUEUE_CHUNKS = 8  # chunks in flight per stream (held while black-holed or delayed)
_PASS_BUFFER_BYTES = 256 * 1024  # above this unsent to a socket, chunks queue (backpressure)
_CONNECT_TIMEOUT_S = 10.0
_HOLD_POLL_S = 0.01  # how often a held connection looks whether it may go on
_CALL_TIMEOUT_S = 15.0
# Loop passes from "stop accepting" to "every client accepted so far has its transport and
# a started handler": asyncio's accept task, connection_made, the handler's first step;
# and one spare. (A handler that starts later still cuts its client: the generation.)
_ACCEPT_SETTLE_PASSES = 4
_REFUSAL_PROBE_S = 0.1  # how often a refusing upstream is probed
_BANDWIDTH_SLICE_S = 0.1  # bandwidth-limited data is sent in slices of this duration


# --------------------------------------------------------------------------- toxics


@dataclass(frozen=True, kw_only=True)
class _ToxicBase:
    """Fields every toxic has. `name` defaults to ``<kind>_<stream>`` (Toxiproxy's)."""

    kind: ClassVar[str] = "toxic"

    name: str = ""
    stream: Stream = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise ValueError(
                f"{self.kind}: stream must be 'upstream' (client->server) or 'downstream' "
                f"(server->client), got {self.stream!r}"
            )
        if not 0.0 <= self.toxicity <= 1.0:
            raise ValueError(
                f"{self.kind}: toxicity is the probability that a connection is affected, "
                f"0..1; got {self.toxicity!r}"
            )
        if not self.name:
            object.__setattr__(self, "name", f"{self.kind}_{self.stream}")
        self._validate()

    def _validate(self) -> None:
        """Subclasses check their own settings here."""

    def _require_non_negative(self, **values: float) -> None:
        for field_name, value in values.items():
            if value < 0:
                raise ValueError(f"{self.kind}: {field_name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class Latency(_ToxicBase):
    """Delay every chunk by ``latency_ms`` ± a uniform ``jitter_ms``."""

    kind: ClassVar[str] = "latency"

    latency_ms: float
    jitter_ms: float = 0.0

    def _validate(self) -> None:
        self._require_non_negative(latency_ms=self.latency_ms, jitter_ms=self.jitter_ms)


@dataclass(frozen=True)
class Bandwidth(_ToxicBase):
    """Limit the stream to ``rate_kbps`` kilobytes (1000 bytes) per second."""

    kind: ClassVar[str] = "bandwidth"

    rate_kbps: float

    def _validate(self) -> None:
        if self.rate_kbps <= 0:
            raise ValueError(
                f"bandwidth: rate_kbps must be > 0 (KB/s), got {self.rate_kbps!r}; "
                "to stop traffic altogether use Timeout (black hole)"
            )


@dataclass(frozen=True)
class Timeout(_ToxicBase):
    """Black hole: stop forwarding the stream; close the connection after ``timeout_ms``
    (0 = hold forever, until the toxic is removed)."""

    kind: ClassVar[str] = "timeout"

    timeout_ms: float = 0.0

    def _validate(self) -> None:
        self._require_non_negative(timeout_ms=self.timeout_ms)


@dataclass(frozen=True)
class ResetPeer(_ToxicBase):
    """Reset the connection (TCP RST, ``SO_LINGER`` 0) after ``timeout_ms``."""

    kind: ClassVar[str] = "reset_peer"

    timeout_ms: float = 0.0

    def _validate(self) -> None:
        self._require_non_negative(timeout_ms=self.timeout_ms)


@dataclass(frozen=True)
class SlowClose(_ToxicBase):
    """Delay passing on a close (EOF) of the stream by ``delay_ms``."""

    kind: ClassVar[str] = "slow_close"

    delay_ms: float

    def _validate(self) -> None:
        self._require_non_negative(delay_ms=self.delay_ms)


@dataclass(frozen=True)
class LimitData(_ToxicBase):
    """Forward ``bytes`` bytes of the stream, then close the connection."""

    kind: ClassVar[str] = "limit_data"

    bytes: int

    def _validate(self) -> None:
        self._require_non_negative(bytes=self.bytes)


Toxic = Latency | Bandwidth | Timeout | ResetPeer | SlowClose | LimitData


@dataclass(frozen=True)
class _Entry:
    """A toxic as attached to a proxy; `serial` tells two toxics of the same name apart."""

    serial: int
    toxic: Toxic


# --------------------------------------------------------------------------- stats


@dataclass(frozen=True)
class ProxyStats:
    """A snapshot of a proxy's counters (since it was created)."""

    connections_accepted: int
    connections_active: int
    upstream_connect_failures: int
    bytes_upstream: int  # client -> server, as forwarded
    bytes_downstream: int  # server -> client, as forwarded


@dataclass
class _Counters:
    accepted: int = 0
    active: int = 0
    upstream_failures: int = 0
    bytes: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(STREAMS, 0))


# --------------------------------------------------------------------------- connections

_Close = Literal["close", "abort", "reset"]


class _Connection:
    """One proxied connection: a client socket, an upstream socket, two streams.

    Lives on the proxy's loop only.
    """

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_writer = client[1]
        self.upstream_writer = upstream[1]
        self.links: dict[Stream, _Link] = {
            "upstream": _Link(self, "upstream", client[0], upstream[1]),
            "downstream": _Link(self, "downstream", upstream[0], client[1]),
        }
        # each socket passes its bytes on by itself while its stream may (_PassProtocol):
        # the client's travel upstream, the server's downstream
        sources: tuple[tuple[asyncio.StreamWriter, Stream], ...] = (
            (client[1], "upstream"),
            (upstream[1], "downstream"),
        )
        for writer, stream in sources:
            protocol = writer.transport.get_protocol()
            if isinstance(protocol, _PassProtocol):
                self.links[stream].protocol = protocol
                protocol.link = self.links[stream]
        self.decided: dict[int, bool] = {}  # toxic serial -> affects this connection
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.finished = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    # toxics ------------------------------------------------------------------

    def affected_by(self, entry: _Entry) -> bool:
        """Whether `entry` acts on this connection; drawn once, on first sight."""
        hit = self.decided.get(entry.serial)
        if hit is None:
            toxicity = entry.toxic.toxicity
            hit = toxicity >= 1.0 or (toxicity > 0.0 and self.proxy._rng.random() < toxicity)
            self.decided[entry.serial] = hit
            if hit:
                self._arm(entry)
        return hit

    def _arm(self, entry: _Entry) -> None:
        toxic = entry.toxic
        loop = asyncio.get_running_loop()
        if isinstance(toxic, ResetPeer):
            self.timers[entry.serial] = loop.call_later(
                toxic.timeout_ms / 1000, self.finish, "reset"
            )
        elif isinstance(toxic, Timeout) and toxic.timeout_ms > 0:
            self.timers[entry.serial] = loop.call_later(
                toxic.timeout_ms / 1000, self.finish, "abort"
            )

    def active(self, stream: Stream) -> list[Toxic]:
        return [
            e.toxic for e in self.proxy._entries if e.toxic.stream == stream and self.affected_by(e)
        ]

    def toxic_added(self, entry: _Entry) -> None:
        self.affected_by(entry)
        self.wake()

    def toxic_removed(self, serial: int) -> None:
        self.decided.pop(serial, None)
        timer = self.timers.pop(serial, None)
        if timer is not None:
            timer.cancel()
        self.wake()

    def wake(self) -> None:
        for link in self.links.values():
            link.changed.set()

    # life cycle ----------------------------------------------------------------

    async def run(self) -> None:
        for entry in self.proxy._entries:
            self.affected_by(entry)
        for link in self.links.values():
            self.tasks.append(asyncio.create_task(link.read_loop()))
            self.tasks.append(asyncio.create_task(link.write_loop()))
        try:
            await self.finished.wait()
        finally:
            self.finish("abort")  # no-op when already finished
            current = asyncio.current_task()
            pending = [t for t in self.tasks if t is not current and not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def stream_done(self) -> None:
        if all(link.eof_sent for link in self.links.values()):
            self.finish("close")

    def finish(self, how: _Close) -> None:
        """Close both sockets: gracefully, abruptly (FIN, buffers dropped) or with RST."""
        if self.finished.is_set():
            return
        self.finished.set()
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        for writer in (self.client_writer, self.upstream_writer):
            if how == "close":
                writer.close()
                continue
            if how == "reset":
                _set_linger_zero(writer)
            writer.transport.abort()


def _set_linger_zero(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _PassProtocol(asyncio.StreamReaderProtocol):
    """A socket's protocol that passes what it receives straight to the other socket
    while its stream has nothing to do (`_Link.passes`): no toxic, nothing queued, held
    or unread before it, and the other socket keeping up. Otherwise the bytes go to the
    stream reader, and through the link's queue and toxics, as every byte did before.
    The pass-through costs one `write` per chunk, with no task switch."""

    def __init__(self, reader: asyncio.StreamReader, *args: Any, **kwargs: Any) -> None:
        super().__init__(reader, *args, **kwargs)
        self.link: _Link | None = None  # the stream this socket's bytes travel on
        self.fed = 0  # bytes given to the stream reader ...
        self.taken = 0  # ... and put in the queue by the link's read loop

    def data_received(self, data: bytes) -> None:
        link = self.link
        if link is not None and self.fed == self.taken and link.passes():
            link.pass_on(data)
            return
        self.fed += len(data)
        super().data_received(data)


class _Link:
    """One stream of a connection: a reader task fills a queue, a writer task drains it
    through the toxics. The split keeps latency pipelined and a black hole cheap. While
    the stream has no toxic and nothing in flight, the source socket's protocol passes
    bytes on by itself (`_PassProtocol`) and the two tasks only wait for the end."""

    def __init__(
        self,
        conn: _Connection,
        stream: Stream,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.source = source
        self.sink = sink
        self.queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_QUEUE_CHUNKS)
        self.changed = asyncio.Event()
        self.limit_counts: dict[int, int] = {}  # LimitData serial -> bytes passed
        self.eof_sent = False
        self.busy = False  # the write loop holds a chunk it took from the queue
        self.protocol: _PassProtocol | None = None  # the source socket's, when it passes

    def passes(self) -> bool:
        """Whether a chunk arriving now may skip the queue without overtaking anything."""
        sink = self.sink.transport
        return (
            not self.conn.proxy._entries
            and not self.busy
            and self.queue.empty()
            and not self.conn.finished.is_set()
            and not sink.is_closing()
            and sink.get_write_buffer_size() < _PASS_BUFFER_BYTES
        )

    def pass_on(self, data: bytes) -> None:
        self.sink.transport.write(data)
        self.conn.proxy._counters.bytes[self.stream] += len(data)

    async def read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await self.source.read(_CHUNK_BYTES):
                await self.queue.put((loop.time(), data))
                # counted once queued, not when read: while `put` waits for room the
                # chunk is in neither the reader nor the queue, and the write loop can
                # empty the queue meanwhile; a chunk passed on then would overtake it
                if self.protocol is not None:
                    self.protocol.taken += len(data)
        except ConnectionResetError:
            self.conn.finish("reset")  # pass the RST on to the other side
            return
        except OSError:
            self.conn.finish("abort")
            return
        await self.queue.put(None)

    async def write_loop(self) -> None:
        try:
            while True:
                self.busy = False
                item = await self.queue.get()
                self.busy = True
                if item is None:
                    await self._slow_close()
                    if self.sink.can_write_eof() and not self.sink.is_closing():
                        self.sink.write_eof()
                    self.eof_sent = True
                    self.conn.stream_done()
                    return
                arrival, data = item
                await self._gate(arrival)
                data, limit_reached = self._limit(data)
                await self._send(data)
                if limit_reached:
                    self.conn.finish("close")
                    return
        except OSError:  # the sink went away (reset, broken pipe)
            self.conn.finish("abort")

    async def _wait_changed(self, timeout_s: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):  # (not wait_for: see _await_upstream)
                await self.changed.wait()

    async def _gate(self, arrival: float) -> None:
        """Hold the chunk while black-holed, then until its latency has passed."""
        loop = asyncio.get_running_loop()
        jitter_sample = self.conn.proxy._rng.uniform(-1.0, 1.0)
        while True:
            self.changed.clear()  # before reading the toxics: no lost wake-up
            toxics = self.conn.active(self.stream)
            if any(isinstance(t, Timeout) for t in toxics):
                await self._wait_changed(None)
                continue
            delay_ms = sum(
                t.latency_ms + jitter_sample * t.jitter_ms for t in toxics if isinstance(t, Latency)
            )
            remaining_s = arrival + max(delay_ms, 0.0) / 1000 - loop.time()
            if remaining_s <= 0:
                return
            await self._wait_changed(remaining_s)

    def _limit(self, data: bytes) -> tuple[bytes, bool]:
        reached = False
        for entry in self.conn.proxy._entries:
            toxic = entry.toxic
            if not (
                isinstance(toxic, LimitData)
                and toxic.stream == self.stream
                and self.conn.affected_by(entry)
            ):
                continue
            passed = self.limit_counts.get(entry.serial, 0)
            allowed = max(toxic.bytes - passed, 0)
            if len(data) >= allowed:
                data = data[:allowed]
                reached = True
            self.limit_counts[entry.serial] = passed + len(data)
        return data, reached

    def _rate_bytes_per_s(self) -> float | None:
        rates = [t.rate_kbps for t in self.conn.active(self.stream) if isinstance(t, Bandwidth)]
        return min(rates) * 1000 if rates else None

    async def _send(self, data: bytes) -> None:
        counters = self.conn.proxy._counters
        view = memoryview(data)
        while view:
            rate = self._rate_bytes_per_s()
            if rate is None:
                piece, view = view, view[len(view) :]
            else:
                size = max(int(rate * _BANDWIDTH_SLICE_S), 1)
                piece, view = view[:size], view[size:]
                await asyncio.sleep(len(piece) / rate)
            self.sink.write(piece)
            await self.sink.drain()
            counters.bytes[self.stream] += len(piece)

    async def _slow_close(self) -> None:
        delays = [t.delay_ms for t in self.conn.active(self.stream) if isinstance(t, SlowClose)]
        if delays:
            await asyncio.sleep(max(delays) / 1000)


# --------------------------------------------------------------------------- the proxy


class FaultProxy:
    """A TCP proxy for one dependency, with toxics and an on/off switch.

    `start()` binds (``listen_port=0`` picks a free port; `listen_port` then tells it);
    the port stays the same for the proxy's lifetime, through `disable()`/`enable()`
    and `stop()`/`start()`. Toxics and the enabled flag are settings: they can be
    changed while the proxy is stopped and take effect when it runs.
    """

    def __init__(
        self,
        name: str,
        upstream: tuple[str, int],
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.upstream = upstream
        self.listen_host = listen_host
        self._port = listen_port
        self._rng = rng or random.Random()
        self._lock = threading.RLock()  # guards settings and the life cycle
        self._entries: tuple[_Entry, ...] = ()  # replaced, never mutated: lock-free reads
        self._serial = 0
        self._enabled = True
        self._refusing = False  # the upstream refused: the listener is closed meanwhile
        # ... and this bound, non-listening socket keeps the port ours (a SYN to it is
        # answered with a reset: ECONNREFUSED) until the listener comes back on it.
        self._placeholder: socket.socket | None = None
        # Mirror an upstream that refuses connections (a killed server) as ECONNREFUSED
        # to the client, instead of accept-then-close (which a client sees as a reset).
        # (the stack turns this on for its dependency proxies)
        self.mirror_refusal = False
        # While held, an accepted connection waits before its upstream is dialled (a
        # server still coming up: its clients wait instead of being refused).
        self._holding = threading.Event()
        # called (on the proxy's loop: it must not block) when a connection arrives while
        # held: what holds the proxy can then get its upstream going
        self.on_held: Callable[[], None] | None = None
        self._counters = _Counters()
        # loop-side state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[_Connection] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        # Bumped by every cut (_stop_listening): a client accepted before it whose handler
        # had not started yet (asyncio accepts a burst in one loop pass, then starts their
        # tasks later) is closed when it starts, never connected upstream.
        self._generation = 0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        if self.running and not self._enabled:
            state = "disabled"
        return (
            f"FaultProxy({self.name!r}, {self.listen_host}:{self._port} -> "
            f"{self.upstream[0]}:{self.upstream[1]}, {state}, {len(self._entries)} toxics)"
        )

    # properties -----------------------------------------------------------------

    @property
    def listen_port(self) -> int:
        """The port clients connect to (0 until the first `start()` when it was 0)."""
        return self._port

    @property
    def listen_address(self) -> tuple[str, int]:
        return (self.listen_host, self._port)

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def enabled(self) -> bool:
        return self._enabled

    def stats(self) -> ProxyStats:
        c = self._counters
        return ProxyStats(
            connections_accepted=c.accepted,
            connections_active=c.active,
            upstream_connect_failures=c.upstream_failures,
            bytes_upstream=c.bytes["upstream"],
            bytes_downstream=c.bytes["downstream"],
        )

    # life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and listen (unless disabled). Idempotent."""
        with self._lock:
            if self._loop is not None:
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=self._run_loop, args=(loop,), name=f"fault-proxy-{self.name}", daemon=True
            )
            self._loop, self._thread = loop, thread
            thread.start()
            try:
                self._call(self._listen(bind_only=not self._enabled))
            except BaseException:
                self._shutdown_thread()
                raise

    def stop(self) -> None:
        """Close the listener and every connection; the thread ends. Idempotent."""
        with self._lock:
            if self._loop is None:
                return
            try:
                self._call(self._close_all())
            finally:
                self._shutdown_thread()

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def disable(self) -> None:
        """Take the proxy "down": refuse new connections (ECONNREFUSED), cut open ones.
        The port stays the proxy's while it is down (bound, not listening), so that
        `enable()` gets it back: released, another process's stack could take it."""
        with self._lock:
            self._enabled = False
            if self._loop is not None:
                self._call(self._go_down())

    def enable(self) -> None:
        """Listen again, on the same port."""
        with self._lock:
            self._enabled = True
            if self._loop is not None:
                self._call(self._listen())

    # toxics -----------------------------------------------------------------------

    def hold(self) -> None:
        """New connections wait (accepted, upstream not yet dialled) until `release()`."""
        self._holding.set()

    def release(self) -> None:
        self._holding.clear()

    def add_toxic(self, toxic: Toxic) -> str:
        """Attach `toxic` (to open connections too); return its name."""
        with self._lock:
            if any(e.toxic.name == toxic.name for e in self._entries):
                raise ValueError(
                    f"proxy {self.name!r} already has a toxic named {toxic.name!r}; "
                    "give the new one another name, or remove the old one first"
                )
            self._serial += 1
            entry = _Entry(self._serial, toxic)
            self._entries = (*self._entries, entry)
            if self._loop is not None:
                self._call(self._each_connection(lambda c: c.toxic_added(entry)))
        return toxic.name

    def remove_toxic(self, name: str) -> None:
        """Detach the toxic called `name`; KeyError when there is none."""
        with self._lock:
            gone = [e for e in self._entries if e.toxic.name == name]
            if not gone:
                known = ", ".join(e.toxic.name for e in self._entries) or "none"
                raise KeyError(f"proxy {self.name!r} has no toxic named {name!r} (has: {known})")
            self._detach(gone)

    def clear_toxics(self) -> None:
        with self._lock:
            self._detach(list(self._entries))

    def toxics(self) -> tuple[Toxic, ...]:
        return tuple(e.toxic for e in self._entries)

    def _detach(self, gone: list[_Entry]) -> None:
        if not gone:
            return
        serials = {e.serial for e in gone}
        self._entries = tuple(e for e in self._entries if e.serial not in serials)
        if self._loop is not None:

            def removed(conn: _Connection) -> None:
                for serial in serials:
                    conn.toxic_removed(serial)

            self._call(self._each_connection(removed))

    # loop plumbing ------------------------------------------------------------------

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def _shutdown_thread(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CALL_TIMEOUT_S)
        if thread.is_alive():
            log.warning(
                "fault proxy %s: loop thread did not end within %ss", self.name, _CALL_TIMEOUT_S
            )

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the proxy's loop and wait for its result."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise StackError(f"fault proxy {self.name!r} is not running", hint="call start() first")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FaultProxy methods must not be called from the proxy's own loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(_CALL_TIMEOUT_S)

    async def _each_connection(self, action: Callable[[_Connection], None]) -> None:
        for conn in list(self._conns):
            action(conn)

    async def _listen(self, *, bind_only: bool = False) -> None:
        if self._server is not None:
            return
        if bind_only:  # started down: the port is taken now, and held until enable()
            if self._placeholder is None:
                try:
                    self._placeholder = self._bound()
                except OSError as exc:
                    raise self._unusable(exc) from exc
            return
        held, self._placeholder = self._placeholder, None
        try:
            loop = asyncio.get_running_loop()

            # this listener's generation: its clients die with it
            handle = functools.partial(self._handle, generation=self._generation)

            def accepted() -> _PassProtocol:
                reader = asyncio.StreamReader(limit=_READER_LIMIT_BYTES, loop=loop)
                return _PassProtocol(reader, handle, loop=loop)

            if held is not None:  # listen on the very socket that kept the port
                server = await loop.create_server(accepted, sock=held, backlog=256)
            else:
                server = await loop.create_server(
                    accepted, self.listen_host, self._port, reuse_address=True, backlog=256
                )
        except OSError as exc:
            if held is not None:
                held.close()
            raise self._unusable(exc) from exc
        self._port = server.sockets[0].getsockname()[1]
        self._server = server

    def _unusable(self, exc: OSError) -> StackError:
        return StackError(
            f"fault proxy {self.name!r} could not listen on {self.listen_host}:{self._port}: {exc}",
            hint="another process holds the port; stop it or give the proxy another port",
        )

    def _bound(self) -> socket.socket:
        """A socket bound to the listen port (one the OS picks while it is 0) and not
        listening: the port is the proxy's, and connections to it are refused."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.listen_host, self._port))
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        return sock

    async def _mirror_refusal(self) -> None:
        """The upstream refuses connections: so do we (the client that found out gets its
        connection closed once we stopped listening; the next ones get ECONNREFUSED, as
        without a proxy), until a probe finds the upstream listening again."""
        if self._refusing:
            return
        self._refusing = True
        server, self._server = self._server, None
        try:
            if server is not None:
                await self._stop_listening(server)
                self._placeholder = self._hold_port()  # take the port back at once
        except BaseException:  # cut by disable()/stop() meanwhile
            self._refusing = False
            raise
        probe = asyncio.ensure_future(self._await_upstream())
        self._handlers.add(probe)
        probe.add_done_callback(self._handlers.discard)

    def _hold_port(self) -> socket.socket | None:
        """`_bound()`: the port stays ours (no other bind or outgoing connection can take
        it) while connections to it are refused. None when the port could not be held
        (then it is bound again later)."""
        try:
            return self._bound()
        except OSError as exc:
            log.warning("fault proxy %s: could not hold port %s: %s", self.name, self._port, exc)
            return None

    async def _await_upstream(self) -> None:
        try:
            while True:
                try:
                    # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the
                    # cancel of stop() when the connect fails at the same moment, and this
                    # loop would then never end)
                    async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                        _, probe = await asyncio.open_connection(*self.upstream)
                except (OSError, TimeoutError):
                    await asyncio.sleep(_REFUSAL_PROBE_S)
                    continue
                probe.close()
                break
        finally:
            self._refusing = False
        if self._enabled and self._server is None:
            try:
                await self._listen()
            except StackError as exc:  # nobody awaits this task: say it where it is seen
                log.error("fault proxy %s: upstream is back, but %s", self.name, exc)

    async def _stop_listening(self, server: asyncio.Server) -> None:
        """Close `server` so that no client it accepted outlives it: stop accepting, let the
        clients accepted in the last loop pass get their transports (one made after
        Server.close() fails inside asyncio 3.11 and leaks its socket open and unread, a
        client left hanging where a stopped server resets it), then close. Handlers not
        started yet see the generation move on and cut their client; clients still queued
        in the kernel are reset when the listening socket closes."""
        loop = asyncio.get_running_loop()
        try:
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
            for _ in range(_ACCEPT_SETTLE_PASSES):
                await asyncio.sleep(0)
        finally:
            self._generation += 1
            server.close()

    async def _go_down(self) -> None:
        await self._close_all()
        if self._port:
            self._placeholder = self._hold_port()

    async def _close_all(self) -> None:
        server, self._server = self._server, None
        if server is not None:  # (else no client was accepted since the last cut)
            await self._stop_listening(server)
            await server.wait_closed()
        held, self._placeholder = self._placeholder, None
        if held is not None:
            held.close()
        for conn in list(self._conns):
            conn.finish("abort")
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, generation: int
    ) -> None:
        if generation != self._generation:  # accepted just before a cut: cut it too
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._counters.accepted += 1
        self._counters.active += 1
        conn: _Connection | None = None
        try:
            if self._holding.is_set() and self.on_held is not None:
                self.on_held()
            while self._holding.is_set():
                await asyncio.sleep(_HOLD_POLL_S)
            try:
                async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                    up_reader, up_writer = await _connect(self.upstream)
            except (OSError, TimeoutError) as exc:
                self._counters.upstream_failures += 1
                if isinstance(exc, ConnectionRefusedError) and self.mirror_refusal:
                    await self._mirror_refusal()
                    # a reset, as the refusing server would give (and no TIME_WAIT
                    # left on the port the proxy holds)
                    with contextlib.suppress(OSError):
                        writer.get_extra_info("socket").setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                log.warning(
                    "fault proxy %s: upstream %s:%s unreachable (%s); closing the client",
                    self.name,
                    *self.upstream,
                    exc,
                )
                return
            conn = _Connection(self, (reader, writer), (up_reader, up_writer))
            self._conns.add(conn)
            await conn.run()
        except asyncio.CancelledError:
            # Cut by disable()/stop(). End normally: asyncio's stream server would log
            # a cancelled client task as an error.
            pass
        finally:
            if conn is None:
                writer.transport.abort()
            else:
                conn.finish("abort")
                self._conns.discard(conn)
            self._counters.active -= 1
            self._handlers.discard(task)


async def _connect(address: tuple[str, int]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio.open_connection, with a protocol that can pass bytes on by itself."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_READER_LIMIT_BYTES, loop=loop)
    protocol = _PassProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, *address)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


# --------------------------------------------------------------------------- registry


class ProxySet:
    """The stack's proxies, keyed by dependency name ("postgres", "object_store", ...)."""

    def __init__(self, proxies: dict[str, FaultProxy] | None = None) -> None:
        self._proxies: dict[str, FaultProxy] = dict(proxies or {})

    def add(self, proxy: FaultProxy, *, name: str | None = None) -> FaultProxy:
        key = name or proxy.name
        if key in self._proxies:
            raise ValueError(f"a proxy named {key!r} is already registered")
        self._proxies[key] = proxy
        return proxy

    def get(self, name: str) -> FaultProxy:
        try:
            return self._proxies[name]
        except KeyError:
            known = ", ".join(sorted(self._proxies)) or "none"
            raise KeyError(
                f"no fault proxy for {name!r} (proxies: {known}); "
                "is the stack running with the fault proxy in front of that dependency?"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._proxies

    def __iter__(self) -> Iterator[str]:
        return iter(self._proxies)

    def __len__(self) -> int:
        return len(self._proxies)

    def items(self) -> list[tuple[str, FaultProxy]]:
        return list(self._proxies.items())

    def start_all(self) -> None:
        started: list[FaultProxy] = []
        try:
            for proxy in self._proxies.values():
                proxy.start()
                started.append(proxy)
        except BaseException:
            for proxy in started:
                with contextlib.suppress(Exception):
                    proxy.stop()
            raise

    def clear_all(self) -> None:
        """Remove every toxic and enable every proxy (each is tried, even if one fails)."""

        def clear(proxy: FaultProxy) -> None:
            proxy.clear_toxics()
            proxy.enable()

        self._each(clear)

    def stop_all(self) -> None:
        """Stop every proxy (each is tried, even if one fails)."""
        self._each(FaultProxy.stop)

    def _each(self, action: Callable[[FaultProxy], object]) -> None:
        errors: list[Exception] = []
        for proxy in self._proxies.values():
            try:
                action(proxy)
            except Exception as exc:
                exc.add_note(f"while handling fault proxy {proxy.name!r}")
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("several fault proxies failed", errors)
