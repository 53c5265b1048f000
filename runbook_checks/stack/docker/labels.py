"""Labels on every container (and bridge network) a docker stack starts, and finding
leftovers by them.

Each container carries the stack's id, its component, and its owner (the PID of the
process that started the stack, that process's start time, and the host's name); a
bridged stack's network carries the same owner labels. A container or network whose owner
is gone is a leftover: `sweep_containers()` removes those (run at every docker stack's
start and by `runbook-checks cleanup`); a live owner's are never touched, and those
started from another host are only judged there.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runbook_checks.stack.docker.engine import DockerClient

STACK_LABEL = "runbook-checks.stack"
COMPONENT_LABEL = "runbook-checks.component"
OWNER_PID_LABEL = "runbook-checks.owner-pid"
OWNER_START_LABEL = "runbook-checks.owner-start"
HOST_LABEL = "runbook-checks.host"
FOLDER_LABEL = "runbook-checks.folder"


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a process from a later one with the same PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_labels(stack_id: str, folder: Path) -> dict[str, str]:
    pid = os.getpid()
    return {
        STACK_LABEL: stack_id,
        OWNER_PID_LABEL: str(pid),
        OWNER_START_LABEL: start_time(pid) or "",
        HOST_LABEL: socket.gethostname(),
        FOLDER_LABEL: str(folder),
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """Is the process that started this container still there? (True when it cannot be
    told from here: another host's containers are left to that host.)"""
    if labels.get(HOST_LABEL, socket.gethostname()) != socket.gethostname():
        return True
    try:
        pid = int(labels.get(OWNER_PID_LABEL, ""))
    except ValueError:
        return False
    current = start_time(pid)
    expected = labels.get(OWNER_START_LABEL) or None
    return current is not None and (expected is None or current == expected)


@dataclass(frozen=True)
class Removed:
    names: tuple[str, ...]  # containers
    networks: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.names and not self.networks


def remove_containers(
    client: DockerClient, stack_id: str | None = None, *, only_orphans: bool = False
) -> Removed:
    """Remove (killing) the containers of stack `stack_id` (or of every stack), or only
    those whose owner is gone; then the bridge networks chosen the same way (a network
    some container still uses stays)."""
    from docker.errors import APIError, NotFound

    selector = f"{STACK_LABEL}={stack_id}" if stack_id else STACK_LABEL
    removed: list[str] = []
    for container in client.containers.list(
        all=True, filters={"label": selector}, ignore_removed=True
    ):
        labels = dict(container.labels or {})
        if only_orphans and owner_alive(labels):
            continue
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)
            removed.append(str(container.name))
    networks: list[str] = []
    for network in client.networks.list(filters={"label": selector}):
        labels = dict(network.attrs.get("Labels") or {})
        if only_orphans and owner_alive(labels):
            continue
        with contextlib.suppress(NotFound, APIError):
            network.remove()
            networks.append(str(network.name))
    return Removed(tuple(removed), tuple(networks))


def sweep_containers(client: DockerClient) -> Removed:
    """Remove every runbook-checks container (and network) whose owner process is gone."""
    return remove_containers(client, only_orphans=True)
