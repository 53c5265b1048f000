"""`LocalComponent`: the Component protocol over a `ManagedProcess` and a readiness probe."""

from __future__ import annotations

from pathlib import Path

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.stack.process import ManagedProcess


class LocalComponent:
    """A server process on 127.0.0.1. Subclasses set `process` and implement `probe`."""

    name: str
    process: ManagedProcess
    ready_timeout_s: float = 20.0

    def __init__(self, name: str, *, data_dir: Path | None = None, clock: Clock = SYSTEM_CLOCK):
        self.name = name
        self.data_dir = data_dir
        self.clock = clock

    # Subclasses: is the server answering its protocol right now? (short, never raises)
    def probe(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Work to do before the first spawn (init a data folder ...)."""

    def after_ready(self) -> None:
        """Work to do once ready after a (re)start (create a bucket ...)."""

    # -- Component protocol -------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.process.pid

    def spawn(self) -> None:
        self.prepare()
        self.process.spawn()

    def start(self) -> None:
        self.spawn()
        self.wait_ready(self.ready_timeout_s)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def pause(self) -> None:
        self.process.pause()

    def resume(self) -> None:
        self.process.resume()

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        return self.process.is_running()

    def is_ready(self) -> bool:
        if not self.process.is_running():
            return False
        try:
            return self.probe()
        except Exception:  # a probe never raises to its caller
            return False

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        def ready() -> bool:
            if not self.process.is_alive():
                raise self.process.failure("exited before it became ready")
            return self.is_ready()

        try:
            wait_until(
                ready,
                what=f"{self.name} to accept connections",
                timeout_s=timeout_s,
                interval_s=0.03,
                clock=self.clock,
            )
        except WaitTimeout as exc:
            raise self.process.failure(
                f"not ready after {timeout_s:.0f}s",
                hint=f"read the {self.name} log: {self.process.log_path}",
            ) from exc
        self.after_ready()

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)

    @property
    def log_path(self) -> Path:
        return self.process.log_path
