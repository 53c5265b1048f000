"""Faults only a container can carry: a memory limit (the kernel's OOM killer) and a CPU
limit (a starved server), set on the running container through the engine (docker
update) and lifted on revert.

They need a component that runs in a container (the docker backend); elsewhere they are
unsupported, saying so, like any fault whose capability is missing.

- `MemoryLimit(target, headroom_mb)`: the container may use what it uses now plus
  `headroom_mb` (a limit below current use cannot be set: the kernel refuses). The next
  time the server grows past that, the kernel kills it (OOM); the container exits with
  OOMKilled set when the killed process is its main one. Revert lifts the limit and brings
  the component back if it died.
- `CpuLimit(target, cpus)`: a CFS quota of `cpus` cores (0.05: a twentieth of one core).
  Revert removes the quota.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import ClassVar

from runbook_checks.errors import UsageError
from runbook_checks.faults.base import Fault, FaultError, FaultHandle
from runbook_checks.stack.base import Capability, Component, Stack
from runbook_checks.stack.docker.container import ContainerProcess

MB = 1 << 20


def _container(stack: Stack, target: str) -> tuple[Component, ContainerProcess]:
    component = stack.component(target)
    process = getattr(component, "process", None)
    if not isinstance(process, ContainerProcess) or process.container_id is None:
        raise FaultError(
            f"{target} does not run in a container on the {stack.backend} backend",
            hint="memory and CPU limits are container faults: run with --backend docker",
        )
    return component, process


def _host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class _ContainerFault(Fault):
    target: str
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.LIMITS})

    def unsupported_reason(self, stack: Stack) -> str | None:
        missing = super().unsupported_reason(stack)
        if missing:
            return missing
        try:
            _container(stack, self.target)
        except FaultError as exc:
            return f"{self.kind}: {exc.message} (run with --backend docker)"
        except Exception as exc:  # no such component
            return f"{self.kind}: {exc}"
        return None


@dataclass(frozen=True)
class MemoryLimit(_ContainerFault):
    """The container may use what it uses now plus `headroom_mb`; past that the kernel's
    OOM killer ends the server. Revert lifts the limit and brings the component back."""

    target: str
    headroom_mb: int = 4
    kind: ClassVar[str] = "memory-limit"

    def __post_init__(self) -> None:
        if self.headroom_mb < 1:
            raise UsageError(f"{self.kind}: headroom_mb must be >= 1, not {self.headroom_mb}")

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        component, process = _container(stack, self.target)

        def lift() -> None:
            # "no limit" cannot be set back once a limit was set: the host's memory is
            # the same thing in effect
            unlimited = _host_memory_bytes()
            with contextlib.suppress(Exception):
                process.update_limits(mem_limit_mb=unlimited // MB)
            if not component.is_ready():
                with contextlib.suppress(Exception):
                    component.resume()
                if not component.is_running():
                    component.start()
                component.wait_ready(30)

        handle.did("watching the container", lift, f"lift {self.target}'s memory limit")
        used = process.memory_usage_bytes()
        limit_mb = used // MB + self.headroom_mb
        process.update_limits(mem_limit_mb=limit_mb)
        handle.did(
            f"{self.target} limited to {limit_mb} MB of memory "
            f"({used // MB} MB in use, {self.headroom_mb} MB headroom)"
        )


@dataclass(frozen=True)
class CpuLimit(_ContainerFault):
    """A CFS quota of `cpus` cores (0.05: a twentieth of one): a starved server. Revert
    removes the quota."""

    target: str
    cpus: float = 0.05
    kind: ClassVar[str] = "cpu-limit"

    def __post_init__(self) -> None:
        if not 0.01 <= self.cpus <= 64:
            raise UsageError(f"{self.kind}: cpus must be within 0.01..64, not {self.cpus}")

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        _, process = _container(stack, self.target)
        process.update_limits(cpus=self.cpus)
        handle.did(
            f"{self.target} limited to {self.cpus:g} CPU",
            process.clear_cpu_limit,
            f"lift {self.target}'s CPU limit",
        )
