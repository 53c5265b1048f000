"""An engine and the images for tests of the docker backend, where one can run.

`prepare()` answers either a ready `ReadyEngine` (the environment its subprocesses need,
and whether it started the engine, so it can stop it again) or the reason it cannot run
here (to skip with). Where it can run it must: a failure to start the engine or to build
the images is an error, not a skip.

- `$DOCKER_HOST` set to another engine and answering: that engine, as it is.
- Linux and root: the project's own engine (`scripts/dockerd.sh start`, which installs
  Debian's docker.io when it is missing), then `scripts/images.sh` (cached: a few seconds
  when nothing changed).
- anywhere else: not here (the reason says what would be needed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

from runbook_checks.stack.docker.checkout import FROM_A_CHECKOUT, script
from runbook_checks.stack.docker.engine import (
    DOCKERD_SCRIPT,
    EngineUnavailable,
    connect,
    engine_env,
    project_socket,
)
from runbook_checks.stack.docker.images import IMAGES_SCRIPT

ENGINE_TIMEOUT_S = 300  # includes installing docker.io on a fresh machine
IMAGES_TIMEOUT_S = 1200  # a cold build: debootstrap and five images


class EngineError(RuntimeError):
    """The engine or the images could not be made ready where they should be."""


@dataclass
class ReadyEngine:
    env: dict[str, str]
    started_here: bool
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds

    def stop(self) -> str:
        """Stop the engine if this session started it (by its pidfile's PID) and no other
        live drill has containers in it (another test session on the same machine may have
        found it running and be using it). Returns what was done."""
        if not self.started_here:
            return "engine left running (it was running before)"
        others = others_using_the_engine()
        if others:
            return f"engine left running: drills of live processes use it ({', '.join(others)})"
        subprocess.run([str(DOCKERD_SCRIPT), "stop"], capture_output=True, timeout=60, check=False)
        return "engine stopped"


def others_using_the_engine() -> list[str]:
    """The stacks of other live processes that have containers in the engine."""
    from runbook_checks.stack.docker.labels import OWNER_PID_LABEL, STACK_LABEL, owner_alive

    try:
        client = connect(timeout_s=10)
    except EngineUnavailable:
        return []
    try:
        containers = client.containers.list(
            all=True, filters={"label": STACK_LABEL}, ignore_removed=True
        )
    finally:
        client.close()
    return sorted(
        {
            str(c.labels.get(STACK_LABEL))
            for c in containers
            if c.labels.get(OWNER_PID_LABEL) != str(os.getpid()) and owner_alive(dict(c.labels))
        }
    )


def _run(argv: list[str], timeout_s: float, what: str) -> float:
    begin = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"{what}: no result within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        raise EngineError(
            f"{what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return time.monotonic() - begin


def foreign_engine() -> str | None:
    """$DOCKER_HOST when it names an engine other than the project's own. `connect()`
    records the project's socket there for testcontainers, so a session that started and
    stopped the project's engine must start it again, not take it for someone else's."""
    host = os.environ.get("DOCKER_HOST")
    return None if not host or host == f"unix://{project_socket()}" else host


def cannot_run_here() -> str | None:
    """Why no engine can be had here, or None."""
    foreign = foreign_engine()
    needed = ("images.sh",) if foreign else ("dockerd.sh", "images.sh")
    missing = [f"scripts/{name}" for name in needed if script(name) is None]
    if missing:
        return f"{' and '.join(missing)} not here: run the tests {FROM_A_CHECKOUT}"
    if foreign:
        try:
            connect(timeout_s=10).close()
        except EngineUnavailable as exc:
            return f"DOCKER_HOST={foreign} does not answer: {exc.message}"
        return None
    if not sys.platform.startswith("linux"):
        return (
            "the docker backend's tests start their own engine, which needs Linux "
            "(or set DOCKER_HOST to a running engine)"
        )
    if os.geteuid() != 0:
        return (
            "the docker backend's tests start their own engine, which needs root "
            "(or set DOCKER_HOST to a running engine)"
        )
    if shutil.which("dockerd") is None and shutil.which("apt-get") is None:
        return "no dockerd here and no apt-get to install Debian's docker.io"
    return None


def prepare(*, build_images: bool = True) -> ReadyEngine | str:
    """A ready engine (and images), or the reason it cannot be had here."""
    reason = cannot_run_here()
    if reason is not None:
        return reason
    timings: dict[str, float] = {}
    started = False
    if not foreign_engine():
        running = (
            subprocess.run(
                [str(DOCKERD_SCRIPT), "status"], capture_output=True, timeout=30, check=False
            ).returncode
            == 0
        )
        if not running:
            timings["engine start"] = _run(
                [str(DOCKERD_SCRIPT), "start"],
                ENGINE_TIMEOUT_S,
                "starting the engine (scripts/dockerd.sh start)",
            )
            started = True
        if not project_socket().exists():
            raise EngineError(f"scripts/dockerd.sh started, but {project_socket()} is missing")
    if build_images:
        timings["images"] = _run(
            [str(IMAGES_SCRIPT)], IMAGES_TIMEOUT_S, "building the images (scripts/images.sh)"
        )
    return ReadyEngine(env=engine_env(), started_here=started, timings=timings)
