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

A test session may ready the engine and the images in the background (`Background`,
started by the suite's scheduler, tests/suite_schedule.py): a cold build is minutes that
would otherwise hold a test worker while other modules could run. While it does, the
file `$RUNBOOK_CHECKS_ENGINE_BACKGROUND` names reads "preparing PID", and `prepare()`
waits for it first: a second engine start beside it would kill its half-started engine,
a second build would race its images.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runbook_checks.stack.docker.checkout import FROM_A_CHECKOUT, script
from runbook_checks.stack.docker.engine import (
    DOCKERD_SCRIPT,
    EngineUnavailable,
    connect,
    engine_env,
    project_socket,
)
from runbook_checks.stack.docker.images import IMAGES_SCRIPT
from runbook_checks.stack.process import pid_alive

ENGINE_TIMEOUT_S = 300  # includes installing docker.io on a fresh machine
IMAGES_TIMEOUT_S = 1200  # a cold build: debootstrap and five images
BACKGROUND_ENV = "RUNBOOK_CHECKS_ENGINE_BACKGROUND"  # the state file of a `Background`
PREPARING = "preparing"  # its first word while it runs; then "ready" or "failed: ..."


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


Spawned = Callable[["subprocess.Popen[str]"], None]


def _run(argv: list[str], timeout_s: float, what: str, spawned: Spawned | None = None) -> float:
    """Run `argv` in a session of its own (so the whole of it can be stopped: the image
    builds run in the background of images.sh); `spawned` is told of the process."""
    begin = time.monotonic()
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        if spawned is not None:
            spawned(process)
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            stop_group(process)
            raise EngineError(f"{what}: no result within {timeout_s:.0f} s") from exc
    if process.returncode != 0:
        raise EngineError(f"{what} failed (exit {process.returncode}):\n{output[-3000:]}")
    return time.monotonic() - begin


def stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the process's session (the script and what it started), SIGKILL after
    10 s; reaped."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


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


def prepare(*, build_images: bool = True, spawned: Spawned | None = None) -> ReadyEngine | str:
    """A ready engine (and images), or the reason it cannot be had here. Waits first for
    a `Background` preparation of this test session (`$RUNBOOK_CHECKS_ENGINE_BACKGROUND`)."""
    reason = cannot_run_here()
    if reason is not None:
        return reason
    timings: dict[str, float] = {}
    waited = await_background()
    if waited:
        timings["waiting for the session's background preparation"] = waited
    started = False
    if not foreign_engine():
        if not engine_runs():
            timings["engine start"] = _run(
                [str(DOCKERD_SCRIPT), "start"],
                ENGINE_TIMEOUT_S,
                "starting the engine (scripts/dockerd.sh start)",
                spawned,
            )
            started = True
        if not project_socket().exists():
            raise EngineError(f"scripts/dockerd.sh started, but {project_socket()} is missing")
    if build_images:
        timings["images"] = _run(
            [str(IMAGES_SCRIPT)],
            IMAGES_TIMEOUT_S,
            "building the images (scripts/images.sh)",
            spawned,
        )
    return ReadyEngine(env=engine_env(), started_here=started, timings=timings)


def engine_runs() -> bool:
    """Whether the project's own engine runs (`scripts/dockerd.sh status`)."""
    return (
        subprocess.run(
            [str(DOCKERD_SCRIPT), "status"], capture_output=True, timeout=30, check=False
        ).returncode
        == 0
    )


def await_background(timeout_s: float = ENGINE_TIMEOUT_S + IMAGES_TIMEOUT_S) -> float:
    """Wait while `$RUNBOOK_CHECKS_ENGINE_BACKGROUND` names a preparation that is still
    running (its owner alive); the seconds waited. Whatever it ended with, the caller
    goes on as it would have: an engine found running, images found up to date, or its
    own start and build that say what failed."""
    path = os.environ.get(BACKGROUND_ENV)
    if not path:
        return 0.0
    begin = time.monotonic()
    while True:
        try:
            words = Path(path).read_text(encoding="utf-8").split()
        except OSError:  # gone: the session that wrote it ended
            return time.monotonic() - begin
        running = (
            len(words) >= 2
            and words[0] == PREPARING
            and words[1].isdigit()
            and int(words[1]) != os.getpid()  # the preparation's own prepare()
            and pid_alive(int(words[1]))
        )
        if not running:
            return time.monotonic() - begin
        if time.monotonic() - begin >= timeout_s:
            raise EngineError(
                f"the test session's background preparation of the engine and images ({path})"
                f" did not end within {timeout_s:.0f} s"
            )
        time.sleep(0.5)


class Background:
    """The engine started and the images built on a thread of this process while the
    rest of a test session runs (the state file at `state` says how far it is, for the
    workers' `prepare()`). `finish()` at the session's end stops what is still running and
    the engine, when this started it."""

    def __init__(
        self,
        state: Path,
        *,
        run: Callable[..., ReadyEngine | str] = prepare,
        engine_running: Callable[[], bool] = engine_runs,
    ) -> None:
        self.state = state
        self._run = run
        self._engine_running = engine_running
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._engine_ran_before = True
        self.outcome = ""  # for people: what it did, or why it failed
        self.began = 0.0
        self.took: float | None = None

    def start(self) -> None:
        self._engine_ran_before = bool(foreign_engine()) or self._engine_running()
        self._write(f"{PREPARING} {os.getpid()}")
        self.began = time.monotonic()
        # a daemon: never holds the session's exit (finish() stops what it runs first)
        self._thread = threading.Thread(target=self._prepare, name="engine-background", daemon=True)
        self._thread.start()

    @property
    def preparing(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _spawned(self, process: subprocess.Popen[str]) -> None:
        with self._lock:
            self._process = process

    def _prepare(self) -> None:
        try:
            ready = self._run(spawned=self._spawned)
        except Exception as exc:  # the workers' own prepare() says it again, in a test
            self.outcome = f"failed: {type(exc).__name__}: {str(exc).strip()[:500]}"
        else:
            self.outcome = ready if isinstance(ready, str) else "ready"
        self.took = time.monotonic() - self.began
        self._write(self.outcome)

    def _write(self, text: str) -> None:
        partial = self.state.with_name(f"{self.state.name}.{os.getpid()}")
        partial.write_text(text + "\n", encoding="utf-8")
        partial.replace(self.state)

    def finish(self) -> str:
        """Stop a preparation still running (its script's whole session), then the
        engine if it did not run before `start()` and nobody else's drills use it."""
        if self._thread is None:
            return "not started"
        if self._thread.is_alive():
            with self._lock:
                process = self._process
            if process is not None:
                stop_group(process)
            self._thread.join(timeout=60)
            self.outcome = "stopped before it ended"
        with contextlib.suppress(OSError):
            self.state.unlink()
        said = self.outcome
        if not self._engine_ran_before and self._engine_running():
            said += "; " + ReadyEngine(env={}, started_here=True).stop()
        return said
