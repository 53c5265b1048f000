"""The docker backend: the stack's servers as containers (testcontainers, docker SDK).

`DockerStack` (stack.py) is the entry point; engine.py finds the engine, images.py the
images (never pulled), container.py runs one container behind the local components'
process interface, components.py the five servers, labels.py and reaper.py make sure no
container outlives its drill. Importing this package imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runbook_checks.stack.docker.stack import DockerStack

__all__ = ["DockerStack"]


def __getattr__(name: str) -> object:
    if name == "DockerStack":
        from runbook_checks.stack.docker.stack import DockerStack

        return DockerStack
    raise AttributeError(name)
