"""A stand-in staging environment: the local stack, in a network namespace of our own,
reached on the namespace's address rather than on loopback.

The machines this project runs on may send traffic only to 127.0.0.0/8 and into network
namespaces the project creates, so a "staging" that is not loopback is made here:

- `Namespace.create()`: a namespace named `rbc-staging-<pid>-<hex>` (the creator's PID in
  the name, so a sweep knows whose it is), a veth pair with a small private /29 of our
  own (the host's end .1, the namespace's .2, and a second namespace address .3 that no
  profile allows: for the refusal tests), loopback up inside. `remove()` kills what runs
  inside and deletes the namespace (the veth pair goes with it); `sweep_namespaces()`
  does that for namespaces whose creator is gone (a SIGKILLed test session).
- `runbook-checks up --host ADDR`, run inside it (`ip netns exec NS ...`): the stack
  starts as always (its servers, proxies and balancer on the namespace's own loopback)
  and each operator-facing server (the API's front door and instance, PostgreSQL, the
  object store, Redis, the AWS control plane) is published on ADDR under the same port,
  as Docker publishes a container's port: `publish()`. The printed URLs name ADDR.
  `check_bind_host` refuses an ADDR that is neither loopback nor an address of a
  namespace of ours, before anything starts.

Needs root (namespaces, veth pairs); `cannot_make_namespaces()` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from runbook_checks.errors import StackError, UsageError
from runbook_checks.stack.base import Endpoints
from runbook_checks.stack.proxy import FaultProxy, ProxySet

PREFIX = "rbc-staging-"
NETNS_DIR = Path("/run/netns")
SUBNET_POOL = ipaddress.IPv4Network("10.213.0.0/16")  # /29s are carved from it, unused ones
_NAME = re.compile(rf"^{re.escape(PREFIX)}(?P<pid>\d+)-[0-9a-f]+$")


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        raise StackError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def cannot_make_namespaces() -> str | None:
    """Why this process cannot make a namespace here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces and veth pairs need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    return None


@dataclass(frozen=True)
class Namespace:
    """A network namespace of ours, joined to the host by one veth pair."""

    name: str
    host_address: str  # the host's end of the veth pair
    address: str  # the namespace's end: where its servers are published
    spare_address: str  # a second address of the namespace (nobody allows it)
    prefix_len: int = 29

    @property
    def _veth(self) -> tuple[str, str]:
        tag = self.name.rsplit("-", 1)[-1][:8]
        return f"rbh{tag}", f"rbn{tag}"

    @classmethod
    def create(cls) -> Namespace:
        reason = cannot_make_namespaces()
        if reason:
            raise StackError(f"cannot make a network namespace: {reason}")
        subnet = _free_subnet()
        hosts = list(subnet.hosts())
        made = cls(
            name=f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}",
            host_address=str(hosts[0]),
            address=str(hosts[1]),
            spare_address=str(hosts[2]),
            prefix_len=subnet.prefixlen,
        )
        try:
            made._build()
        except BaseException:
            made.remove()
            raise
        return made

    def _build(self) -> None:
        outer, inner = self._veth
        _ip("netns", "add", self.name)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", self.name)
        _ip("addr", "add", f"{self.host_address}/{self.prefix_len}", "dev", outer)
        _ip("link", "set", outer, "up")
        for address in (self.address, self.spare_address):
            _ip("-n", self.name, "addr", "add", f"{address}/{self.prefix_len}", "dev", inner)
        _ip("-n", self.name, "link", "set", inner, "up")
        _ip("-n", self.name, "link", "set", "lo", "up")

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace (its network only: same files and users)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def remove(self) -> None:
        """Kill what still runs inside, delete the namespace and its veth pair."""
        remove_namespace(self.name)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /29 of SUBNET_POOL that no interface or route of this machine uses."""
    used = _ip("-4", "route") + _ip("-4", "addr")
    taken = [
        ipaddress.IPv4Network(m.group(0), strict=False)
        for m in re.finditer(r"\d+\.\d+\.\d+\.\d+(?:/\d+)?", used)
    ]
    candidates: list[ipaddress.IPv4Network] = list(SUBNET_POOL.subnets(new_prefix=29))
    for _ in range(64):
        subnet = candidates[secrets.randbelow(len(candidates))]
        if not any(subnet.overlaps(t) for t in taken):
            return subnet
    raise StackError(f"no free /29 left in {SUBNET_POOL}")


def remove_namespace(name: str) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"{name} is not a namespace of ours")
    with contextlib.suppress(StackError):
        for pid in _ip("netns", "pids", name).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(StackError):
        _ip("netns", "del", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_namespaces() -> list[str]:
    """Remove the namespaces of ours whose creator process is gone; their names."""
    if not NETNS_DIR.is_dir():
        return []
    removed = []
    for entry in sorted(NETNS_DIR.iterdir()):
        match = _NAME.match(entry.name)
        if match and not _alive(int(match.group("pid"))):
            remove_namespace(entry.name)
            removed.append(entry.name)
    return removed


def own_namespace() -> str | None:
    """The name of the namespace of ours this process runs in (None: another one)."""
    try:
        mine = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None
    if not NETNS_DIR.is_dir():
        return None
    for entry in NETNS_DIR.iterdir():
        if entry.name.startswith(PREFIX):
            with contextlib.suppress(OSError):
                if entry.stat().st_ino == mine:
                    return entry.name
    return None


def check_bind_host(host: str) -> None:
    """Refuse `host` unless it is loopback or an address of this namespace of ours."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(
            f"--host {host}: not an IP address", hint="give the namespace's address"
        ) from None
    if address.is_loopback:
        return
    name = own_namespace()
    if name is None:
        raise UsageError(
            f"--host {host}: the stack binds a non-loopback address only inside a network "
            f"namespace runbook-checks made ({PREFIX}*)",
            hint="run it with `ip netns exec NS runbook-checks up --host ADDR`, or leave "
            "--host at 127.0.0.1",
        )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            raise UsageError(
                f"--host {host}: not an address of namespace {name}",
                hint=f"`ip -n {name} addr` lists its addresses",
            ) from None


# The operator-facing endpoints published on the namespace's address.
PUBLISHED = (
    "api_url",
    "api_instance_url",
    "database_url",
    "admin_database_url",
    "s3_endpoint",
    "redis_url",
    "aws_endpoint",
)


def publish(endpoints: Endpoints, host: str) -> tuple[ProxySet, Endpoints]:
    """One forwarder per operator-facing server, listening on `host` under the server's
    port; the endpoints as a person outside the namespace reaches them."""
    proxies = ProxySet()
    changed: dict[str, str] = {}
    try:
        for key in PUBLISHED:
            url = str(getattr(endpoints, key))
            if not url:
                continue
            parts = urlsplit(url)
            port = parts.port
            if port is None:
                continue
            name = f"published-{port}"
            if name not in proxies:
                proxy = FaultProxy(name, ("127.0.0.1", port), listen_host=host, listen_port=port)
                proxies.add(proxy)
                proxy.start()
            changed[key] = _with_host(parts, host)
    except BaseException:
        proxies.stop_all()
        raise
    return proxies, replace(endpoints, **changed)  # type: ignore[arg-type]


def _with_host(parts: SplitResult, host: str) -> str:
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@{host}:{parts.port}" if auth else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
