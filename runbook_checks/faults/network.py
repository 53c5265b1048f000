"""Network faults: slow, throttle, black-hole, reset or cut one dependency's network path.

Each fault names a dependency ("postgres", "object_store", "redis") and acts on the
stack's fault proxy in front of it (`runbook_checks.stack.proxy`), so the server itself
is untouched and an operator connecting directly still reaches it, as in a real
network partition between the API and its dependency.

They are ordinary catalogue faults (`faults.base.Fault`): frozen settings; `inject(stack)`
returns a `FaultHandle` whose `revert()` is idempotent and undoes exactly what this
injection did. Here that means: remove only the toxics it added (each gets a unique
name), and re-enable the proxy only if this injection is the one that disabled it.
Reverting after the proxy was stopped, or after someone cleared its toxics, is a no-op
rather than an error.

What a network fault needs from the stack, beyond the catalogue's `capabilities`, is
`stack.proxies`, a `ProxySet` keyed by dependency name (a member of the `Stack` protocol,
empty where the backend has no fault proxy); it is checked when the fault is injected.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import ClassVar

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.stack.base import Capability, Stack
from runbook_checks.stack.proxy import (
    Bandwidth,
    FaultProxy,
    Latency,
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
    "NetworkLatency",
    "NetworkReset",
]

DEPENDENCIES = ("postgres", "object_store", "redis")

_DIRECTION = {"upstream": "client->server", "downstream": "server->client"}
_injection_serial = itertools.count(1)


def _remove_own_toxic(proxy: FaultProxy, name: str) -> None:
    """Remove `name` if it is still there (a `clear_all()` may have beaten us to it)."""
    if any(t.name == name for t in proxy.toxics()):
        proxy.remove_toxic(name)


def _enable_if_disabled(proxy: FaultProxy) -> None:
    if not proxy.enabled:
        proxy.enable()


@dataclass(frozen=True)
class NetworkFault(Fault):
    """Base of the network faults: a dependency name, and what to do to its proxy."""

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
        return f"{self.name}"

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        proxy = self._proxy(stack)
        self._apply(proxy, handle)

    def _proxy(self, stack: Stack) -> FaultProxy:
        proxies = stack.proxies
        if not len(proxies):
            raise FaultError(
                f"cannot inject {self.name}: this stack has no fault proxies",
                hint="run this scenario on a backend that puts the fault proxy in front of "
                "its dependencies (local)",
            )
        try:
            proxy = proxies.get(self.target)
        except KeyError as exc:
            raise FaultError(
                f"cannot inject {self.name}: {exc.args[0]}",
                hint=f"the stack must start a fault proxy for each of {', '.join(DEPENDENCIES)}",
            ) from None
        if not proxy.running:
            raise FaultError(
                f"cannot inject {self.name}: the {self.target} proxy is not running, so the "
                "fault would have no effect",
                hint="start the stack (or the proxy) before injecting network faults",
            )
        return proxy

    def _apply(self, proxy: FaultProxy, handle: FaultHandle) -> None:
        for toxic in self._toxics(f"{self.name}#{next(_injection_serial)}"):
            name = proxy.add_toxic(toxic)
            handle.did(
                f"added toxic {name!r} to proxy {proxy.name!r}",
                functools.partial(_remove_own_toxic, proxy, name),
                f"remove toxic {name!r} from proxy {proxy.name!r}",
            )

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

    def _apply(self, proxy: FaultProxy, handle: FaultHandle) -> None:
        if not proxy.enabled:
            handle.did(f"proxy {proxy.name!r} was already down; left as it was")
            return
        proxy.disable()
        handle.did(
            f"disabled proxy {proxy.name!r}",
            functools.partial(_enable_if_disabled, proxy),
            f"enable proxy {proxy.name!r}",
        )
