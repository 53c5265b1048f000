"""How a docker stack's containers are networked: host networking, or a bridge of its own.

- host: every container shares the host's network namespace and binds 127.0.0.1 on a free
  port (engines started with `--bridge=none`, like the ones on the project's machines).
- bridge: one user-defined bridge network per stack (labelled like its containers, removed
  with them). Each server listens on 0.0.0.0:PORT in its own namespace and publishes it on
  127.0.0.1:PORT of the host, so every host-side address (Endpoints, the balancer's
  targets, the runbook's psql/redis-cli/curl, the replica streaming from the container's
  PostgreSQL) is the same as with host networking. The API container reaches the fault
  proxies at the network's gateway: the host's own address on that bridge, which the
  proxies listen on (never 0.0.0.0).
- auto: host where the engine has no network named "bridge" (it was started without
  one), else bridge.

`host.docker.internal` (`extra_hosts={"host.docker.internal": "host-gateway"}`) is not
used: on Linux it names the default bridge's gateway (docker0), an address on another
bridge than the stack's, which the proxies would have to listen on too (and which does not
exist where the engine runs with --bridge=none); the stack network's own gateway is the
host's address on the very link the API container uses, read from the engine after the
network is created.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook_checks.config import DOCKER_NETWORKS
from runbook_checks.errors import StackError, UsageError

if TYPE_CHECKING:
    from runbook_checks.stack.docker.engine import DockerClient

HOST = "host"
BRIDGE = "bridge"
AUTO = "auto"
DEFAULT_BRIDGE = "bridge"  # the engine's default network, absent with dockerd --bridge=none


def resolve_mode(requested: str, network_names: Iterable[str]) -> str:
    """`host` or `bridge` for an engine that has these networks (`docker network ls`)."""
    mode = requested.strip().lower()
    if mode not in DOCKER_NETWORKS:
        raise UsageError(
            f"--docker-network {requested!r} is not one of {', '.join(DOCKER_NETWORKS)}"
        )
    has_bridge = DEFAULT_BRIDGE in set(network_names)
    if mode == AUTO:
        return BRIDGE if has_bridge else HOST
    if mode == BRIDGE and not has_bridge:
        raise StackError(
            "--docker-network bridge: this engine has no default bridge network (it runs "
            "with --bridge=none): it is set up for host networking",
            hint="use --docker-network host (or auto); on an engine of the project's "
            "machines, bridged mode runs only inside a network namespace of its own "
            "(scripts/dockerd.sh start --netns NAME)",
        )
    return mode


def engine_mode(client: DockerClient, requested: str) -> str:
    """`resolve_mode` against the engine's own list of networks."""
    names = [str(n.name) for n in client.networks.list()]
    return resolve_mode(requested, names)


@dataclass(frozen=True)
class StackNetwork:
    """A stack's own bridge network, as the engine made it."""

    name: str
    network_id: str
    subnet: str  # e.g. 172.18.0.0/16
    gateway: str  # the host's address on the bridge, e.g. 172.18.0.1


def network_name(stack_id: str) -> str:
    return f"rc-{stack_id}"


def gateway_of(attrs: Mapping[str, object]) -> tuple[str, str]:
    """(subnet, gateway) from a network's inspect data (the first IPv4 pool); the gateway
    is the subnet's first address where the engine does not say (podman may not)."""
    ipam = attrs.get("IPAM")
    configs = ipam.get("Config") if isinstance(ipam, Mapping) else None
    for config in configs or ():
        if not isinstance(config, Mapping) or not config.get("Subnet"):
            continue
        subnet = ipaddress.ip_network(str(config["Subnet"]), strict=False)
        if subnet.version != 4:
            continue
        gateway = str(config.get("Gateway") or "").split("/")[0]
        if not gateway:
            gateway = str(next(subnet.hosts()))
        return str(subnet), gateway
    raise StackError(f"the engine gave the network no IPv4 subnet: {attrs.get('IPAM')!r}")


def create_network(client: DockerClient, stack_id: str, labels: Mapping[str, str]) -> StackNetwork:
    """The stack's bridge network (a leftover of the same name is removed first)."""
    from docker.errors import APIError, NotFound

    name = network_name(stack_id)
    for old in client.networks.list(names=[name]):
        with contextlib.suppress(NotFound, APIError):
            old.remove()
    try:
        network = client.networks.create(name, driver="bridge", labels=dict(labels))
        network.reload()
    except APIError as exc:
        raise StackError(
            f"could not create the stack's bridge network {name}: {exc}",
            hint="is the engine's address pool exhausted? `docker network prune` removes "
            "unused networks",
        ) from exc
    subnet, gateway = gateway_of(network.attrs)
    return StackNetwork(name, str(network.id), subnet, gateway)


def check_gateway_is_local(network: StackNetwork) -> None:
    """The proxies listen on the gateway: it must be an address of this machine. It is not
    where the engine runs in a VM (Docker Desktop) or on another host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((network.gateway, 0))
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise
            raise StackError(
                f"the stack network's gateway {network.gateway} is not an address of this "
                "machine: the engine runs elsewhere (a VM, as with Docker Desktop, or "
                "another host), so its containers cannot reach the drill's fault proxies",
                hint="run the drills on the machine (or in the VM) where the engine runs",
            ) from None


def remove_network(client: DockerClient, name: str) -> bool:
    """Remove network `name` (its containers must be gone); False when it was not there."""
    from docker.errors import NotFound

    try:
        client.networks.get(name).remove()
    except NotFound:
        return False
    return True
