"""Which Docker engine the docker backend talks to, and the client for it.

In order: `$DOCKER_HOST`; the project's own engine (`scripts/dockerd.sh`, its socket under
`$RUNBOOK_CHECKS_DOCKER_ROOT`, default /var/lib/runbook-checks-docker) when it runs; else
the docker SDK's default (/var/run/docker.sock). testcontainers is told the same, with
its Ryuk reaper off (Ryuk is an image to pull; the backend reaps its own containers:
`runbook_checks.stack.docker.reaper`).
"""

from __future__ import annotations

import importlib
import os
import stat
from pathlib import Path
from typing import Any, TypeAlias

from runbook_checks.errors import StackError
from runbook_checks.stack.docker.checkout import SCRIPTS, how_to_run

# The docker SDK ships no type information (and the repository's docker/ folder of
# Dockerfiles would shadow it for mypy): its objects are typed loosely here.
DockerClient: TypeAlias = Any

DEFAULT_ROOT = Path("/var/lib/runbook-checks-docker")
DOCKERD_SCRIPT = SCRIPTS / "dockerd.sh"  # a checkout's only (stack/docker/checkout.py)


class EngineUnavailable(StackError):
    """No Docker engine answers."""


def project_root() -> Path:
    return Path(os.environ.get("RUNBOOK_CHECKS_DOCKER_ROOT") or DEFAULT_ROOT)


def project_socket() -> Path:
    return project_root() / "docker.sock"


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def docker_host() -> str | None:
    """The engine's address, or None for the docker SDK's default."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    own = project_socket()
    return f"unix://{own}" if _is_socket(own) else None


def engine_env() -> dict[str, str]:
    """What a child process (pytest, the docker CLI, testcontainers) needs to reach the
    same engine the way this backend does."""
    env = {"TESTCONTAINERS_RYUK_DISABLED": "true", "TC_HOST": "127.0.0.1"}
    host = docker_host()
    if host:
        env["DOCKER_HOST"] = host
    return env


def connect(timeout_s: float = 60.0) -> DockerClient:
    """A client of the engine that answers `ping`, or EngineUnavailable saying what to do.

    Also points this process's testcontainers at it (DOCKER_HOST, no Ryuk)."""
    try:
        docker: Any = importlib.import_module("docker")
        from docker.errors import DockerException
    except ImportError as exc:
        raise EngineUnavailable(
            "the docker backend needs the docker SDK and testcontainers",
            hint="install the project's docker extra: pip install -e '.[docker]' (make setup does)",
        ) from exc
    host = docker_host()
    try:
        client = (
            docker.DockerClient(base_url=host, timeout=int(timeout_s))
            if host
            else docker.from_env(timeout=int(timeout_s))
        )
        client.ping()
    except DockerException as exc:
        where = host or "the default socket (/var/run/docker.sock)"
        raise EngineUnavailable(
            f"no Docker engine answers at {where}: {exc}",
            hint="start the project's engine as root, "
            f"{how_to_run('dockerd.sh', 'scripts/dockerd.sh start')}; or set DOCKER_HOST "
            "to a running engine",
        ) from exc
    if host:
        os.environ.setdefault("DOCKER_HOST", host)  # testcontainers reads it from here
    _configure_testcontainers()
    return client


def _configure_testcontainers() -> None:
    try:
        from testcontainers.core.config import testcontainers_config
    except ImportError as exc:
        raise EngineUnavailable(
            "the docker backend needs testcontainers",
            hint="install the project's docker extra: pip install -e '.[docker]' (make setup does)",
        ) from exc
    testcontainers_config.ryuk_disabled = True
