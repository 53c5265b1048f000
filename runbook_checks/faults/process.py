"""Process faults on any component: kill -9, graceful stop, freeze/thaw, crash loop.

Each revert brings the component back and waits until it answers again, so a reverted
fault always leaves a usable stack.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import ClassVar

from runbook_checks.faults.base import Fault, FaultHandle
from runbook_checks.stack.base import Capability, Component, Stack


def _bring_back(component: Component) -> None:
    if component.is_running() and component.is_ready():
        return
    if not component.is_running():
        with contextlib.suppress(Exception):
            component.resume()  # a paused one first
    if not component.is_running():
        component.start()
    component.wait_ready(30)


@dataclass(frozen=True)
class ProcessKill(Fault):
    """SIGKILL to the component's whole process group (a crash, no shutdown)."""

    target: str
    kind: ClassVar[str] = "process-kill"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.KILL})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        component = stack.component(self.target)
        component.kill()
        handle.did(
            f"killed {self.target} with SIGKILL",
            lambda: _bring_back(component),
            f"start {self.target} again",
        )


@dataclass(frozen=True)
class ProcessStop(Fault):
    """A graceful stop (SIGTERM / fast shutdown), like a host going down cleanly."""

    target: str
    kind: ClassVar[str] = "process-stop"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.STOP})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        component = stack.component(self.target)
        component.stop()
        handle.did(
            f"stopped {self.target}", lambda: _bring_back(component), f"start {self.target} again"
        )


@dataclass(frozen=True)
class ProcessFreeze(Fault):
    """SIGSTOP: the process exists, holds its sockets, and answers nothing (a hang)."""

    target: str
    kind: ClassVar[str] = "process-freeze"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.PAUSE})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        component = stack.component(self.target)
        component.pause()
        handle.did(f"froze {self.target} (SIGSTOP)", component.resume, f"thaw {self.target}")


@dataclass(frozen=True)
class CrashLoop(Fault):
    """The component dies again each time it comes back, until reverted (bounded)."""

    target: str
    max_crashes: int = 50
    kind: ClassVar[str] = "crash-loop"
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.KILL})

    def _inject(self, stack: Stack, handle: FaultHandle) -> None:
        component = stack.component(self.target)
        stop = threading.Event()
        crashes = [0]

        def loop() -> None:
            while not stop.is_set() and crashes[0] < self.max_crashes:
                if component.is_running():
                    component.kill()
                    crashes[0] += 1
                stop.wait(0.05)

        component.kill()
        crashes[0] += 1
        thread = threading.Thread(target=loop, name=f"crash-loop-{self.target}", daemon=True)
        thread.start()

        def end() -> None:
            stop.set()
            thread.join(timeout=5)
            _bring_back(component)

        handle.did(
            f"crash loop on {self.target} (killed whenever it runs)",
            end,
            f"end the crash loop and start {self.target}",
        )
