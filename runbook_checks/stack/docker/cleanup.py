"""`runbook-checks cleanup`'s docker part: containers whose drill is gone.

Quiet where there is nothing to look at (no docker SDK, no engine): cleanup must work on
machines without Docker.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runbook_checks.stack.docker.engine import EngineUnavailable, connect, docker_host


def sweep_engine() -> tuple[str, ...]:
    """Remove the containers (and bridge networks) of every docker stack whose owner
    process is gone; the containers' names (none when no engine answers)."""
    if importlib.util.find_spec("docker") is None:
        return ()
    if docker_host() is None and not Path("/var/run/docker.sock").exists():
        return ()
    from runbook_checks.stack.docker.labels import sweep_containers

    try:
        client = connect(timeout_s=10)
    except EngineUnavailable:
        return ()
    try:
        return sweep_containers(client).names
    finally:
        client.close()
