"""Network faults: slow, throttle, black-hole, reset or cut one dependency's network path.

Each fault names a dependency ("postgres", "object_store", "redis") and acts on the
stack's fault proxy in front of it (`runbook_checks.stack.proxy`), so the server itself
is untouched and an operator connecting directly still reaches it, as in a real
network partition between the API and its dependency.

The model is the fault catalogue's: a fault is a frozen dataclass of settings;
`inject(stack)` returns a `NetworkFaultHandle`, a context manager whose `revert()` is
idempotent and undoes exactly what this injection did: it removes only the toxics it
added (each has a unique name) and re-enables the proxy only if it was the one that
disabled it. Reverting after the proxy was stopped, or after someone cleared the
proxy's toxics, is a no-op rather than an error.

This module codes against a minimal protocol, `stack.proxies: ProxySet`, and defines its
own small handle rather than depending on a shared fault base; the handle has the same
shape as the catalogue's (`fault`, `notes`, `active`, `revert()`, context manager that
never hides the real failure), so moving onto a shared base is mechanical.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Protocol

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import RunbookChecksError, UsageError
from runbook_checks.stack.base import Capability
from runbook_checks.stack.proxy import (
    Bandwidth,
    FaultProxy,
    Latency,
    ProxySet,
    ResetPeer,
    Stream,
    Timeout,
    Toxic,
)

__all__ = [
    "DEPENDENCIES",
    "NetworkBandwidth",
    "NetworkBlackhole",
    "NetworkDown",
    "NetworkFault",
    "NetworkFaultError",
    "NetworkFaultHandle",
    "NetworkLatency",
    "NetworkReset",
    "ProxiedStack",
]

DEPENDENCIES = ("postgres", "object_store", "redis")

_DIRECTION = {"upstream": "client->server", "downstream": "server->client"}
_toxic_serial = itertools.count(1)


class ProxiedStack(Protocol):
    """What a network fault needs from a stack: its proxies, keyed by dependency."""

    @property
    def proxies(self) -> ProxySet: ...


class NetworkFaultError(RunbookChecksError):
    """A network fault could not be injected or fully reverted."""


# --------------------------------------------------------------------------- handle


class NetworkFaultHandle:
    """The live state of one injected network fault: what it changed, and its undo."""

    def __init__(self, fault: NetworkFault, proxy: FaultProxy, *, clock: Clock) -> None:
        self.fault = fault
        self.proxy = proxy
        self.clock = clock
        self.injected_at = clock.monotonic()
        self.reverted_at: float | None = None
        self.toxic_names: list[str] = []  # the toxics this injection added
        self.disabled_proxy = False  # whether this injection took the proxy down
        self.notes: list[str] = []  # what was done, in words, for the journal
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "active" if self.active else "reverted"
        return f"<NetworkFaultHandle {self.fault.name} {state}: {'; '.join(self.notes)}>"

    @property
    def active(self) -> bool:
        return self.reverted_at is None

    def add_toxic(self, toxic: Toxic) -> None:
        self.toxic_names.append(self.proxy.add_toxic(toxic))
        self.notes.append(f"added toxic {toxic.name!r} to proxy {self.proxy.name!r}")

    def disable_proxy(self) -> None:
        if not self.proxy.enabled:
            self.notes.append(f"proxy {self.proxy.name!r} was already down; left as it was")
            return
        self.proxy.disable()
        self.disabled_proxy = True
        self.notes.append(f"disabled proxy {self.proxy.name!r}")

    def revert(self) -> None:
        """Undo what this injection did; at most once; every step is tried."""
        with self._lock:
            if self.reverted_at is not None:
                return
            self.reverted_at = self.clock.monotonic()
        steps: list[tuple[str, Callable[[], None]]] = [
            (f"remove toxic {name!r}", functools.partial(self._remove_toxic, name))
            for name in reversed(self.toxic_names)
        ]
        if self.disabled_proxy:
            steps.append((f"enable proxy {self.proxy.name!r}", self.proxy.enable))
        errors: list[str] = []
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep reverting the rest; report all at the end
                errors.append(f"{what}: {type(exc).__name__}: {exc}")
        if errors:
            raise NetworkFaultError(
                f"reverting {self.fault.describe()} left problems: " + "; ".join(errors),
                hint="call stack.proxies.clear_all() to remove every toxic and enable "
                "every proxy, or restart the stack",
            )

    def _remove_toxic(self, name: str) -> None:
        if any(t.name == name for t in self.proxy.toxics()):
            self.proxy.remove_toxic(name)

    def __enter__(self) -> NetworkFaultHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.revert()
            return
        try:
            self.revert()
        except NetworkFaultError as revert_error:  # never hide the real failure
            exc.add_note(str(revert_error))


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class NetworkFault:
    """Base of the network faults: a dependency name, and how to act on its proxy."""

    kind: ClassVar[str] = "network"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.PROXY})

    target: str

    def __post_init__(self) -> None:
        if self.target not in DEPENDENCIES:
            raise UsageError(
                f"{self.kind}: unknown dependency {self.target!r}; expected one of "
                f"{', '.join(DEPENDENCIES)}",
                hint="network faults act on the proxy in front of a dependency; "
                "faults on the API itself are process faults",
            )
        try:
            self._toxics("check")  # the settings are checked when the fault is built
        except ValueError as exc:
            raise UsageError(f"{self.kind} on {self.target}: {exc}") from None

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}"

    def describe(self) -> str:
        raise NotImplementedError

    def inject(self, stack: ProxiedStack, *, clock: Clock = SYSTEM_CLOCK) -> NetworkFaultHandle:
        try:
            proxy = stack.proxies.get(self.target)
        except KeyError as exc:
            raise NetworkFaultError(
                f"cannot inject {self.name}: {exc.args[0]}",
                hint="run this scenario on a backend that puts the fault proxy in front of "
                "its dependencies (local or docker)",
            ) from None
        if not proxy.running:
            raise NetworkFaultError(
                f"cannot inject {self.name}: the {self.target} proxy is not running, so the "
                "fault would have no effect",
                hint="start the stack (or proxy.start()) before injecting network faults",
            )
        handle = NetworkFaultHandle(self, proxy, clock=clock)
        try:
            self._apply(handle)
        except BaseException as exc:  # half-way: undo what was done, keep the cause
            try:
                handle.revert()
            except NetworkFaultError as revert_error:
                exc.add_note(str(revert_error))
            raise
        return handle

    def _apply(self, handle: NetworkFaultHandle) -> None:
        for toxic in self._toxics(f"{self.name}#{next(_toxic_serial)}"):
            handle.add_toxic(toxic)

    def _toxics(self, name: str) -> list[Toxic]:
        """The toxics this fault adds, named from `name` (unique per injection)."""
        return []


@dataclass(frozen=True)
class NetworkLatency(NetworkFault):
    """Every chunk on the stream arrives `latency_ms` (± `jitter_ms`) late."""

    kind: ClassVar[str] = "network-latency"

    latency_ms: float
    jitter_ms: float = 0.0
    stream: Stream = "downstream"

    def describe(self) -> str:
        jitter = f" ± {self.jitter_ms:g} ms" if self.jitter_ms else ""
        return (
            f"add {self.latency_ms:g} ms{jitter} latency to {self.target} traffic "
            f"{_DIRECTION.get(self.stream, self.stream)} ({self.stream})"
        )

    def _toxics(self, name: str) -> list[Toxic]:
        return [Latency(self.latency_ms, self.jitter_ms, stream=self.stream, name=name)]


@dataclass(frozen=True)
class NetworkBandwidth(NetworkFault):
    """The stream is limited to `rate_kbps` kilobytes (1000 bytes) per second."""

    kind: ClassVar[str] = "network-bandwidth"

    rate_kbps: float
    stream: Stream = "downstream"

    def describe(self) -> str:
        return (
            f"limit {self.target} traffic {_DIRECTION.get(self.stream, self.stream)} "
            f"({self.stream}) to {self.rate_kbps:g} KB/s"
        )

    def _toxics(self, name: str) -> list[Toxic]:
        return [Bandwidth(self.rate_kbps, stream=self.stream, name=name)]


@dataclass(frozen=True)
class NetworkBlackhole(NetworkFault):
    """Nothing gets through either way; connections stay open (a silent partition),
    or are closed after `timeout_ms` when it is > 0."""

    kind: ClassVar[str] = "network-blackhole"

    timeout_ms: float = 0.0

    def describe(self) -> str:
        ending = (
            f"connections closed after {self.timeout_ms:g} ms"
            if self.timeout_ms
            else "connections held open, answering nothing"
        )
        return f"black-hole {self.target} traffic both ways ({ending})"

    def _toxics(self, name: str) -> list[Toxic]:
        return [
            Timeout(self.timeout_ms, stream=stream, name=f"{name}/{stream}")
            for stream in ("upstream", "downstream")
        ]


@dataclass(frozen=True)
class NetworkReset(NetworkFault):
    """Every connection, open or new, is reset (TCP RST) `after_ms` after the fault
    meets it (0 = at once)."""

    kind: ClassVar[str] = "network-reset"

    after_ms: float = 0.0

    def describe(self) -> str:
        when = f"{self.after_ms:g} ms after it meets the fault" if self.after_ms else "at once"
        return f"reset every {self.target} connection (TCP RST) {when}"

    def _toxics(self, name: str) -> list[Toxic]:
        return [ResetPeer(self.after_ms, name=name)]


@dataclass(frozen=True)
class NetworkDown(NetworkFault):
    """The path is down: new connections are refused, open ones are cut."""

    kind: ClassVar[str] = "network-down"

    def describe(self) -> str:
        return f"take the {self.target} network path down (new connections refused, open ones cut)"

    def _apply(self, handle: NetworkFaultHandle) -> None:
        handle.disable_proxy()
