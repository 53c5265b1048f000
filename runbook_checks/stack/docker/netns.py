"""An engine with ordinary bridged networking, inside a network namespace of its own, for
the tests of the docker backend's bridged mode (`--docker-network bridge`).

The project's machines run their engine with `--bridge=none` and may send traffic only to
127.0.0.0/8 or into network namespaces the project creates. So the bridged mode is tested
with a second engine (`scripts/dockerd.sh start --netns NAME`: bridging on, iptables off,
published ports through the userland proxy) whose bridges, veths and private addresses all
live inside namespace NAME, and the drills run in that namespace too (`nsenter --net`).

It shares the data root (and so the images) of the project's engine, which cannot run at
the same time: `prepare_bridged()` makes the images ready with the project's engine
(`testing.prepare`), stops that engine (only when no other live process has drills in it)
and starts the one in the namespace; `NetnsEngine.stop()` stops it, removes the namespace,
and starts the project's engine again if it was running before. Measured on a 2-core
machine: stopping the project's engine ~3 s, starting the namespaced one ~0.3 s; copying
the images into a second data root instead (docker save | docker load) ~35 s and 1.4 GB.

An engine left by a killed test session (its owner process gone) is stopped by the next
`prepare_bridged()`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_checks.stack.docker.engine import (
    DOCKERD_SCRIPT,
    DockerClient,
    project_root,
    project_socket,
)
from runbook_checks.stack.docker.labels import start_time
from runbook_checks.stack.docker.testing import (
    EngineError,
    _run,
    cannot_run_here,
    others_using_the_engine,
    prepare,
)

PREFIX = "rbc-bridge-"
OWNER_FILE = "owner"  # in the engine's runtime folder: "PID START" of the process that made it


def netns_root() -> Path:
    return project_root() / "netns"


@dataclass
class NetnsEngine:
    """A running engine in namespace `netns`; `env` is what a process needs to use it."""

    netns: str
    env: dict[str, str]
    restart_host_engine: bool  # the project's engine ran before: started again at stop()
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds
    run_netns_existed: bool = True  # iproute2's /run/netns was there before (else removed)
    stopped: bool = False

    @property
    def runtime_dir(self) -> Path:
        return netns_root() / self.netns

    @property
    def docker_host(self) -> str:
        return self.env["DOCKER_HOST"]

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace (its network only: same files and mounts)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`argv` inside the namespace, with this engine's environment (and `env`)."""
        return subprocess.run(
            self.command(argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=cwd,
            env={**os.environ, **self.env, **(env or {})},
            check=False,
        )

    def client(self) -> DockerClient:
        docker: Any = importlib.import_module("docker")
        return docker.DockerClient(base_url=self.docker_host, timeout=30)

    def stop(self) -> str:
        """Stop the engine, remove the namespace and the runtime folder; start the
        project's engine again if it ran before. Idempotent; says what was done."""
        if self.stopped:
            return "already stopped"
        begin = time.monotonic()
        _script("stop", "--netns", self.netns)
        self.timings["netns engine stop"] = time.monotonic() - begin
        self.stopped = True
        done = f"engine in netns {self.netns} stopped and the namespace removed"
        if self.restart_host_engine:
            self.timings["host engine restart"] = _run(
                [str(DOCKERD_SCRIPT), "start"], 120, "starting the project's engine again"
            )
            done += "; the project's engine started again (it ran before)"
        return done


def _script(*args: str, timeout_s: float = 120) -> str:
    done = subprocess.run(
        [str(DOCKERD_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise EngineError(
            f"scripts/dockerd.sh {' '.join(args)} failed (exit {done.returncode}):\n"
            f"{(done.stdout + done.stderr)[-3000:]}"
        )
    return done.stdout


def _forget_own_docker_host() -> None:
    """`engine.connect()` leaves DOCKER_HOST naming the project's engine in this process
    (testcontainers reads it there); that is not another engine: `prepare()` finds the
    project's engine's state for itself (the caller restores the environment)."""
    if os.environ.get("DOCKER_HOST") == f"unix://{project_socket()}":
        del os.environ["DOCKER_HOST"]


def cannot_run_bridged_here() -> str | None:
    """Why the bridged-mode tests cannot run here, or None."""
    _forget_own_docker_host()
    if os.environ.get("DOCKER_HOST"):
        return (
            "the bridged-mode tests start their own engine in a network namespace, and "
            f"DOCKER_HOST={os.environ['DOCKER_HOST']} names another engine (unset it; or run "
            "tests/integration/bridged_checks.py with --backend docker --docker-network "
            "bridge against that engine if it is an ordinary bridged one)"
        )
    reason = cannot_run_here()
    if reason is not None:
        return reason.replace("the docker backend's tests", "the bridged-mode tests")
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux")):
        if shutil.which(tool) is None:
            return f"no {tool} here (Debian's {package}): needed for a network namespace"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, timeout=10, check=False)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.decode(errors='replace').strip()}"
    return None


def sweep_leftovers() -> list[str]:
    """Stop the namespaced engines of test sessions that are gone (SIGKILL, a crash)."""
    stopped: list[str] = []
    root = netns_root()
    for folder in sorted(root.glob(f"{PREFIX}*")) if root.is_dir() else ():
        try:
            pid_text, _, started = (folder / OWNER_FILE).read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            pid, started = 0, ""
        if pid and start_time(pid) == (started or None):
            continue  # its owner is alive
        _script("stop", "--netns", folder.name)
        stopped.append(folder.name)
    return stopped


def prepare_bridged() -> NetnsEngine | str:
    """An engine with bridged networking in a new namespace (the images ready), or the
    reason it cannot be had here (to skip with). May change this process's DOCKER_HOST
    (as `engine.connect()` does): a test fixture restores its environment afterwards."""
    reason = cannot_run_bridged_here()
    if reason is not None:
        return reason
    timings: dict[str, float] = {}
    swept = sweep_leftovers()
    if swept:
        print(f"stopped engines of dead test sessions: {' '.join(swept)}", file=sys.stderr)
    ready = prepare()  # the project's engine running (started if it was not), images built
    if isinstance(ready, str):
        return ready
    timings.update(ready.timings)
    host_ran_before = not ready.started_here
    others = others_using_the_engine()
    if others:
        if ready.started_here:
            ready.stop()
        return (
            "the project's engine (whose data root the namespaced engine needs) has drills "
            f"of other live processes in it ({', '.join(others)}); run again once they end"
        )
    timings["host engine stop"] = _run(
        [str(DOCKERD_SCRIPT), "stop"], 120, "stopping the project's engine"
    )
    netns = f"{PREFIX}{secrets.token_hex(3)}"
    run_netns_existed = Path("/run/netns").exists()
    begin = time.monotonic()
    try:
        out = _script("start", "--netns", netns)
        (netns_root() / netns / OWNER_FILE).write_text(
            f"{os.getpid()} {start_time(os.getpid()) or ''}\n"
        )
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to see
            NetnsEngine(netns, {}, restart_host_engine=host_ran_before).stop()
        raise
    timings["netns engine start"] = time.monotonic() - begin
    host = out.strip().splitlines()[-1].removeprefix("DOCKER_HOST=")
    env = {"DOCKER_HOST": host, "TESTCONTAINERS_RYUK_DISABLED": "true", "TC_HOST": "127.0.0.1"}
    return NetnsEngine(
        netns,
        env,
        restart_host_engine=host_ran_before,
        timings=timings,
        run_netns_existed=run_netns_existed,
    )
