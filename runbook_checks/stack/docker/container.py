"""`ContainerProcess`: the `ManagedProcess` interface over one container.

The local components (`LocalComponent` and its subclasses) drive a process through
spawn / stop / kill / pause / resume / is_running / log_tail; a container offers the same
through the engine, so the docker components reuse the local ones' probes, readiness
waits, URLs and resets, and only swap the process for this.

- spawn: the first time, a container is created and started with testcontainers (host
  networking, or the stack's bridge network with its ports published on 127.0.0.1; the
  stack's labels; never a pull); afterwards the same container is
  started again (`docker start`), so its data (PostgreSQL's folder) survives a kill.
- stop: `docker stop` (the image's stop signal, then SIGKILL after a grace period).
- kill: `docker kill` (SIGKILL to the container's init: everything in it dies).
- pause / resume: `docker pause` / `unpause` (the cgroup freezer: a hang).
- remove: the container goes; its output is appended to `log_path` first.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.errors import ComponentFailed
from runbook_checks.stack.process import ManagedProcess, tail

if TYPE_CHECKING:
    from runbook_checks.stack.docker.engine import DockerClient

Container: TypeAlias = Any  # docker.models.containers.Container (the SDK is untyped)


@dataclass(frozen=True)
class Mount:
    host: Path
    container: str
    mode: str = "rw"


@dataclass(frozen=True)
class ContainerSpec:
    """How to run one component's container."""

    name: str  # the container's name in the engine (unique)
    image: str
    command: Sequence[str]
    entrypoint: Sequence[str] | None = None  # None: the image's own
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[Mount] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None  # None: the image's own
    stop_timeout_s: int = 10
    mem_limit_mb: int | None = None
    cpus: float | None = None
    network: str | None = None  # a bridge network's name; None: host networking
    published: Sequence[int] = ()  # bridge: ports published on 127.0.0.1, same number

    def run_kwargs(self) -> dict[str, Any]:
        """docker SDK `containers.create` arguments beyond image/command/env/name."""
        # the stop signal stays the image's own (postgres: SIGINT, a fast shutdown)
        kwargs: dict[str, Any]
        if self.network is None:
            # host networking: each server binds 127.0.0.1:PORT in the host's namespace
            kwargs = {"network_mode": "host", "labels": dict(self.labels)}
        else:
            # bridged: the server listens on PORT in its own namespace, reached from the
            # host on 127.0.0.1:PORT (never on the host's other addresses)
            kwargs = {
                "network": self.network,
                "labels": dict(self.labels),
                "ports": {f"{port}/tcp": ("127.0.0.1", port) for port in self.published},
            }
        if self.entrypoint is not None:
            kwargs["entrypoint"] = list(self.entrypoint)
        if self.user is not None:
            kwargs["user"] = self.user
        if self.mem_limit_mb is not None:
            kwargs["mem_limit"] = f"{self.mem_limit_mb}m"
            kwargs["memswap_limit"] = f"{self.mem_limit_mb}m"
        if self.cpus is not None:
            kwargs["nano_cpus"] = int(self.cpus * 1e9)
        return kwargs


class ContainerProcess(ManagedProcess):
    """One container with its log, in `ManagedProcess`'s place (every method is the
    engine's). Safe for a crash loop and a probe on two threads: each call asks the
    engine afresh."""

    def __init__(
        self,
        spec: ContainerSpec,
        *,
        component: str,
        client: DockerClient,
        log_path: Path,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(component, [spec.image, *spec.command], log_path=log_path, clock=clock)
        self.spec = spec
        self.client = client
        # `on_spawn` is never called: a container's PID belongs to the engine's host, and
        # leftover containers are found by label, not by PID
        self._container: Container | None = None
        self._lock = threading.Lock()

    # -- state -------------------------------------------------------------------------
    def _state(self) -> dict[str, Any] | None:
        """The container's State from the engine (None when there is no container)."""
        from docker.errors import NotFound

        container = self._container
        if container is None:
            return None
        try:
            container.reload()
        except NotFound:
            self._container = None
            return None
        state = container.attrs.get("State") or {}
        return dict(state)

    @property
    def container_id(self) -> str | None:
        container = self._container
        return None if container is None else str(container.id)

    @property
    def pid(self) -> int | None:
        state = self._state()
        if state is None or state.get("Status") not in ("running", "paused"):
            return None
        pid = int(state.get("Pid") or 0)
        return pid or None

    @property
    def returncode(self) -> int | None:
        state = self._state()
        if state is None or state.get("Status") not in ("exited", "dead"):
            return None
        return int(state.get("ExitCode", -1))

    def _who(self) -> str:
        return f"container {self.spec.name}"

    def _end_note(self) -> str:
        return " (the kernel's OOM killer: over its memory limit)" if self.oom_killed else ""

    @property
    def oom_killed(self) -> bool:
        state = self._state()
        return bool(state and state.get("OOMKilled"))

    def status(self) -> str:
        state = self._state()
        return "absent" if state is None else str(state.get("Status", "unknown"))

    def is_running(self) -> bool:
        return self.status() == "running"

    def is_alive(self) -> bool:
        """Exists and runs (or is paused)."""
        return self.status() in ("running", "paused", "restarting")

    # -- life cycle --------------------------------------------------------------------
    def spawn(self) -> None:
        with self._lock:
            status = self.status()
            if status in ("running", "paused", "restarting"):
                return
            self._end_asked = False
            if self._container is not None:  # created / exited / dead: start it again
                self._container.start()
                return
            self._container = self._create()

    def _create(self) -> Container:
        from testcontainers.core.container import DockerContainer

        spec = self.spec
        self._remove_named(spec.name)  # a container of that name left by an earlier run
        kwargs = spec.run_kwargs()
        # testcontainers has parameters of its own named `ports` (a port only, no host IP)
        # and `network` (its Network object): these go to the SDK as they are
        published = kwargs.pop("ports", None)
        tc = DockerContainer(
            spec.image,
            command=list(spec.command),  # type: ignore[arg-type]
            env=dict(spec.environment),
            name=spec.name,
        ).with_kwargs(**kwargs)
        if published:
            cast(Any, tc).ports = dict(published)
        for mount in spec.mounts:
            tc.with_volume_mapping(str(mount.host), mount.container, mount.mode)
        try:
            tc.start()
        except Exception as exc:
            created = getattr(tc, "_container", None)
            log = ""
            if created is not None:
                with contextlib.suppress(Exception):
                    log = created.logs(tail=40).decode("utf-8", "replace")
            raise ComponentFailed(
                spec.name,
                f"could not start a container of {spec.image}: {exc}",
                log_tail=log,
                hint="is the image present (make images) and the engine running "
                "(scripts/dockerd.sh start)?",
            ) from exc
        finally:
            with contextlib.suppress(Exception):
                tc.get_docker_client().client.close()
        # from here on, one shared client for every call
        return self.client.containers.get(tc.get_container_id())

    def _remove_named(self, name: str) -> None:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            self.client.containers.get(name).remove(force=True)

    def stop(self, timeout_s: float | None = None) -> None:
        """Graceful stop (the image's stop signal), SIGKILL after the grace period."""
        from docker.errors import APIError, NotFound

        self._end_asked = True
        container = self._container
        if container is None or not self.is_alive():
            return
        grace = int(timeout_s if timeout_s is not None else self.spec.stop_timeout_s)
        with contextlib.suppress(NotFound, APIError):
            container.stop(timeout=grace)
        self._wait_exited()

    def kill(self) -> None:
        from docker.errors import APIError, NotFound

        self._end_asked = True
        container = self._container
        if container is None or not self.is_alive():
            return
        with contextlib.suppress(NotFound, APIError):
            container.kill()
        self._wait_exited()

    def _wait_exited(self) -> None:
        try:
            wait_until(
                lambda: not self.is_alive(),
                what=f"{self.name} to exit",
                timeout_s=15,
                interval_s=0.02,
                clock=self.clock,
            )
        except WaitTimeout as exc:
            raise self.failure("did not exit within 15 s") from exc

    def signal_group(self, sig: signal.Signals) -> None:
        """`docker kill --signal`: to the container's init (and so, for most servers, to
        everything in it)."""
        from docker.errors import APIError, NotFound

        if self._container is not None and self.is_alive():
            with contextlib.suppress(NotFound, APIError):
                self._container.kill(signal=int(sig))

    def pause(self) -> None:
        if self._container is not None and self.status() == "running":
            self._container.pause()

    def resume(self) -> None:
        if self._container is not None and self.status() == "paused":
            self._container.unpause()

    def exec(self, argv: Sequence[str]) -> tuple[int, str]:
        """`docker exec`: ARGV in the running container (exit status, output)."""
        container = self._container
        if container is None or self.status() != "running":
            raise self.failure(f"is not running: cannot run {argv[0]} in it")
        result = container.exec_run(list(argv))
        return int(result.exit_code), bytes(result.output or b"").decode("utf-8", "replace")

    def update_limits(self, *, mem_limit_mb: int | None = None, cpus: float | None = None) -> None:
        """Change the running container's memory and CPU limits (docker update)."""
        container = self._container
        if container is None:
            return
        kwargs: dict[str, Any] = {}
        if mem_limit_mb is not None:
            kwargs["mem_limit"] = f"{mem_limit_mb}m"
            kwargs["memswap_limit"] = f"{mem_limit_mb}m"
        if cpus is not None:
            kwargs["cpu_period"] = 100_000
            kwargs["cpu_quota"] = int(cpus * 100_000)
        if kwargs:
            container.update(**kwargs)

    def clear_cpu_limit(self) -> None:
        """No CFS quota any more (the container may use every core)."""
        if self._container is not None:
            self._container.update(cpu_quota=-1)

    def memory_usage_bytes(self) -> int:
        """What the container's processes use now (the cgroup's count)."""
        if self._container is None:
            return 0
        stats = self._container.stats(stream=False)
        return int(stats.get("memory_stats", {}).get("usage", 0))

    def remove(self) -> None:
        """Remove the container (killing it if it runs); its output goes to `log_path`
        first. Idempotent."""
        from docker.errors import APIError, NotFound

        container, self._container = self._container, None
        if container is None:
            return
        self._save_log(container)
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)

    def _save_log(self, container: Container) -> None:
        with contextlib.suppress(Exception):
            output = container.logs()
            if output:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("ab") as fh:
                    fh.write(output)

    # -- output ------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        container = self._container
        if container is not None:
            with contextlib.suppress(Exception):
                text = container.logs(tail=lines).decode("utf-8", "replace")
                return "\n".join(text.splitlines()[-lines:])
        return tail(self.log_path, lines)

    def failure(self, message: str, hint: str | None = None) -> ComponentFailed:
        state = self._state() or {}
        if state.get("Status") in ("exited", "dead"):
            message += f" (container exited with status {state.get('ExitCode')}"
            message += ", OOM-killed)" if state.get("OOMKilled") else ")"
        return ComponentFailed(
            self.name,
            message,
            log_tail=self.log_tail(),
            hint=hint or f"docker logs {self.spec.name}",
        )
