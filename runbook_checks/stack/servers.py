"""Redis, the S3 server (moto), the AWS control plane (moto behind AWS's preconditions)
and the service's API twin as local processes on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import redis

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import StackError
from runbook_checks.redact import DUMMY_KEY
from runbook_checks.service import Twin
from runbook_checks.stack.component import LocalComponent
from runbook_checks.stack.ports import free_port
from runbook_checks.stack.process import ManagedProcess
from runbook_checks.tls import tls_context

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": DUMMY_KEY,
    "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without proxies (all traffic stays on loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(AWS_TEST_ENV)
    if extra:
        env.update(extra)
    return env


class LocalRedis(LocalComponent):
    def __init__(self, work_dir: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__("redis", data_dir=work_dir, clock=clock)
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError(
                "redis-server is not installed",
                hint="run `make setup` as root (apt-get install redis-server)",
            )
        self.port = free_port()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "redis",
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(work_dir),
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "notice",
            ],
            log_path=work_dir / "redis.log",
            clock=clock,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, port: int | None = None) -> redis.Redis[bytes]:
        return redis.Redis(
            host="127.0.0.1", port=port or self.port, socket_timeout=1, socket_connect_timeout=1
        )

    def probe(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def version(self) -> str:
        with self.client() as client:
            return str(client.info("server").get("redis_version", "unknown"))


# what both moto servers import before they answer, and on their first requests (S3;
# EC2, RDS and ELBv2 behind the control plane's gate): ~0.5 s of CPU a start of the
# object store, ~1.7 s of the control plane, done once by a fork server (forkserver.py)
MOTO_PRELOAD = (
    "moto.server",
    "moto.backends",
    "moto.s3.models",
    "moto.s3.responses",
    "moto.ec2.models",
    "moto.ec2.responses",
    "moto.rds.models",
    "moto.rds.responses",
    "moto.elbv2.models",
    "moto.elbv2.responses",
    "runbook_checks.stack.aws_control_plane",
    "runbook_checks.stack.aws_rules",
    "runbook_checks.stack.object_store_server",
)


class MotoServer(LocalComponent):
    """moto's server: the S3 stand-in (`object_store`) or the AWS control plane (`aws`)."""

    # what requests to it are signed with (moto takes anything; a real S3 server differs)
    access_key: str = DUMMY_KEY
    secret_key: str = DUMMY_KEY
    # what `python -m` runs: `-H HOST -p PORT` (moto's own server, its lookups made cheaper)
    module = "runbook_checks.stack.object_store_server"

    def __init__(self, name: str, work_dir: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(name, data_dir=work_dir, clock=clock)
        self.port = free_port()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            name,
            [sys.executable, "-m", self.module, "-H", "127.0.0.1", "-p", str(self.port)],
            log_path=work_dir / f"{name}.log",
            env=_clean_env(),
            clock=clock,
            preload=MOTO_PRELOAD,
            preload_reads_env=True,  # moto.settings: INITIAL_NO_AUTH_ACTION_COUNT ...
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def probe(self) -> bool:
        # any HTTP answer means the server is up (data.json grows with the state: too slow)
        response = httpx.get(f"{self.url}/", timeout=0.5, verify=tls_context())
        return response.status_code < 500

    def reset_state(self) -> None:
        """Drop every resource (moto's own reset endpoint)."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=5, verify=tls_context()).raise_for_status()


class AwsControlPlane(MotoServer):
    """The AWS control plane: moto's server behind AWS's documented preconditions
    (`python -m runbook_checks.stack.aws_control_plane`, see aws_rules.py), so the
    runbook's aws commands are refused here where AWS refuses them."""

    module = "runbook_checks.stack.aws_control_plane"

    def __init__(self, work_dir: Path, *, name: str = "aws", clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(name, work_dir, clock=clock)


class LocalApi(LocalComponent):
    """The service's API twin (`python -m MODULE serve`: the kit's `Twin.serve`)."""

    ready_timeout_s = 30.0

    def __init__(
        self,
        work_dir: Path,
        env: Mapping[str, str],
        *,
        twin: Twin,
        name: str = "api",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name, data_dir=work_dir, clock=clock)
        self.twin = twin
        self.port = free_port()
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.spool_dir = work_dir / "spool"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.settings: dict[str, str] = dict(env)
        # shows in `ps aux`: the runbook's `ps aux | grep node` finds this instance only
        self.instance = f"{name}@{work_dir.parent.name}"
        self.process = self._make_process()

    def _make_process(self) -> ManagedProcess:
        env = _clean_env(
            {
                **self.settings,
                "API_HOST": "127.0.0.1",
                "API_PORT": str(self.port),
                "LOG_DIR": str(self.log_dir),
                "SPOOL_DIR": str(self.spool_dir),
            }
        )
        return ManagedProcess(
            self.name,
            [sys.executable, *self.twin.serve, "--instance", self.instance],
            log_path=self.work_dir / "api.stdout.log",
            env=env,
            clock=self.clock,
            preload=self.twin.preload,
        )

    def reconfigure(self, **changes: str) -> None:
        """Changed settings for the next start (the process must be stopped)."""
        self.configure({**self.settings, **changes})

    def configure(self, settings: Mapping[str, str]) -> None:
        """Exactly these settings for the next start (the process must be stopped)."""
        on_spawn = self.process.on_spawn
        self.settings = dict(settings)
        self.process = self._make_process()
        self.process.on_spawn = on_spawn

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def probe(self) -> bool:
        """Up means: it answers /health at all (200 or 503); health itself is for checks."""
        response = httpx.get(f"{self.url}/health", timeout=2.0, verify=tls_context())
        return response.status_code in (200, 503)

    def healthy(self) -> bool:
        try:
            return (
                httpx.get(f"{self.url}/health", timeout=2.0, verify=tls_context()).status_code
                == 200
            )
        except httpx.HTTPError:
            return False
