"""The stack's interface: what scenarios, executors and faults see, whatever the backend.

A `Stack` owns named `Component`s (postgres, object_store, redis, api, aws) and a set of
`Endpoints`. Backends (local processes, docker containers, an external environment)
implement it; nothing outside `runbook_checks.stack` knows which one runs.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from runbook_checks.redact import DUMMY_KEY as DUMMY_KEY  # the stack's modules take it here
from runbook_checks.redact import Redactor

if TYPE_CHECKING:
    from botocore.config import Config as BotoConfig

    from runbook_checks.service import ServiceKit
    from runbook_checks.stack.leftovers import StateFile
    from runbook_checks.stack.live import FaultView, LiveFault
    from runbook_checks.stack.monitoring import Monitoring
    from runbook_checks.stack.proxy import ProxySet

# DUMMY_KEY ("testing", from runbook_checks.redact: never a secret) is what moto accepts
# for anything. A real S3 server (MinIO: secret of 8+ characters) or a real AWS account
# gets its own, carried in `Endpoints`.


class Capability(enum.StrEnum):
    """What a backend can do to its components; faults declare what they need."""

    KILL = "kill"  # SIGKILL / docker kill
    STOP = "stop"  # graceful stop and start again
    PAUSE = "pause"  # SIGSTOP / docker pause
    RESTART = "restart"
    DISK = "disk"  # size-limited data folders (tmpfs) for disk-full
    PROXY = "proxy"  # the API reaches its dependencies through the fault proxy
    DATA = "data"  # direct SQL/S3/Redis access for data faults
    REPLICA = "replica"  # can start a streaming replica of postgres
    RECONFIGURE = "reconfigure"  # can restart the API with other settings (pool, release)
    LIMITS = "limits"  # memory/CPU limits on a running server (docker update)

    @property
    def ability(self) -> str:
        """What a backend without it cannot do, in words ("the local backend cannot ...")."""
        return _ABILITY[self]


_ABILITY = {
    Capability.KILL: "kill a component",
    Capability.STOP: "stop and start a component",
    Capability.PAUSE: "freeze a component",
    Capability.RESTART: "restart a component",
    Capability.DISK: "give the database a size-limited disk (a tmpfs mount needs root)",
    Capability.PROXY: "put a fault proxy between the API and its dependencies",
    Capability.DATA: "reach the database, bucket and cache directly",
    Capability.REPLICA: "start a streaming replica of the database",
    Capability.RECONFIGURE: "restart the API with other settings",
    Capability.LIMITS: "limit a running server's memory or CPU (a container's cgroup)",
}


COMPONENTS = ("postgres", "object_store", "redis", "api", "aws")


@runtime_checkable
class Component(Protocol):
    """One server of the stack, with its life cycle."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None:
        """Graceful stop; idempotent."""
        ...

    def kill(self) -> None:
        """SIGKILL (or the backend's equivalent); idempotent."""
        ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def restart(self) -> None: ...

    def is_running(self) -> bool:
        """The process/container exists and is not stopped (it may still be unready)."""
        ...

    def is_ready(self) -> bool:
        """Answers its protocol right now (a short probe, never raises)."""
        ...

    def wait_ready(self, timeout_s: float = 15.0) -> None: ...

    def log_tail(self, lines: int = 40) -> str: ...

    @property
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class Endpoints:
    """How to reach the stack, as an operator would (direct, not through the proxy)."""

    api_url: str  # the front door (the load balancer where there is one)
    database_url: str  # postgresql://USER:PASSWORD@127.0.0.1:PORT/DB (superuser for ops)
    app_database_url: str  # the URL the API uses (through the fault proxy where there is one)
    s3_endpoint: str
    s3_bucket: str
    redis_url: str
    aws_endpoint: str
    aws_region: str
    admin_token: str
    log_dir: Path  # the API's log folder (error.log, production.log)
    data_dirs: dict[str, Path] = field(default_factory=dict)  # component -> data folder
    admin_database_url: str = ""  # superuser, for the stack's own faults and resets
    api_instance_url: str = ""  # one API instance directly (the host's localhost:5000)
    api_process: str = ""  # a pattern that matches this stack's API process in `ps` only
    s3_access_key: str = DUMMY_KEY  # signs requests to s3_endpoint
    s3_secret_key: str = DUMMY_KEY
    aws_access_key: str = DUMMY_KEY  # signs requests to aws_endpoint (the control plane)
    aws_secret_key: str = DUMMY_KEY

    @property
    def database_host(self) -> str:
        return urlsplit(self.database_url).hostname or "127.0.0.1"

    @property
    def database_port(self) -> int:
        return urlsplit(self.database_url).port or 5432

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    @property
    def redis_port(self) -> int:
        return urlsplit(self.redis_url).port or 6379

    def as_env(self) -> dict[str, str]:
        """The environment variables a person (or the runbook's commands) would export."""
        return {
            "DATABASE_URL": self.database_url,
            "DB_HOST": self.database_host,
            "DB_PORT": str(self.database_port),
            "API_URL": self.api_url,
            "S3_ENDPOINT_URL": self.s3_endpoint,
            "S3_BUCKET": self.s3_bucket,
            "REDIS_URL": self.redis_url,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_DEFAULT_REGION": self.aws_region,
            "AWS_ACCESS_KEY_ID": self.aws_access_key,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_key,
            "S3_ACCESS_KEY_ID": self.s3_access_key,
            "S3_SECRET_ACCESS_KEY": self.s3_secret_key,
            "ADMIN_TOKEN": self.admin_token,
        }

    def boto3_client(self, service: str, config: BotoConfig | None = None) -> Any:
        """A boto3 client of `service`, signed with this stack's credentials: "s3" talks
        to the object store (direct, not through a fault proxy), anything else to the
        AWS control plane."""
        from runbook_checks.stack import aws_clients

        s3 = service == "s3"
        return aws_clients.client(
            service,
            endpoint_url=self.s3_endpoint if s3 else self.aws_endpoint,
            region_name=self.aws_region,
            aws_access_key_id=self.s3_access_key if s3 else self.aws_access_key,
            aws_secret_access_key=self.s3_secret_key if s3 else self.aws_secret_key,
            config=config,
        )


class ApiInstance(Component, Protocol):
    """One instance of the API that the backend runs itself."""

    def reconfigure(self, **changes: str) -> None:
        """Its settings changed, taken at its next start."""
        ...


class ApiFleet(Protocol):
    """The API's instances where the backend runs them itself (local, docker): what the
    runbook's platform lines (kubectl rollout restart / scale, heroku config:set) act on."""

    @property
    def api(self) -> ApiInstance:
        """The first instance (the one the stack starts)."""
        ...

    def api_instances(self) -> Sequence[ApiInstance]: ...

    def add_registered_apis(self, names: Sequence[str]) -> Sequence[ApiInstance]:
        """Start more instances and register them behind the load balancer."""
        ...

    def route_database(self, name: str = "postgres") -> int:
        """Point the API's database address at the cluster `name`; the port now dialled."""
        ...


class StepOutcome(Protocol):
    """How a runbook step ended, as a stack's audit reads it (`steps.base.StepResult`)."""

    @property
    def status(self) -> str: ...

    @property
    def executed(self) -> str: ...

    @property
    def error(self) -> str: ...

    @property
    def notes(self) -> Sequence[str]: ...


class Stack(Protocol):
    """A running environment of the service under test."""

    backend: str  # "local", "docker", "external"
    kit: ServiceKit  # what the service is: its client, its twin's launch ...
    capabilities: frozenset[Capability]
    # the stack's Prometheus + Alertmanager and the drill's alert inbox (stack/monitoring.py);
    # None where there are none, and monitoring_missing says why (time-to-alert unmeasured)
    monitoring: Monitoring | None
    monitoring_missing: str
    # the stack's folder record (stack/leftovers.py): a fault is written there before it
    # acts, so a killed drill's faults are swept; None before start
    state: StateFile | None
    # the fault proxies between the API and its dependencies (empty: no fault proxy)
    proxies: ProxySet

    @property
    def endpoints(self) -> Endpoints: ...

    def component(self, name: str) -> Component: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reset_data(self) -> None:
        """Empty the database tables, the bucket and the cache; API settings back to default."""
        ...

    def restart_api(self, **env: str) -> None:
        """Restart the API, optionally with changed settings (its pool size, DATABASE_URL ...)."""
        ...

    def prepare(self, name: str) -> None:
        """Have component `name` come up in the background ahead of its first use (the
        local stack's AWS control plane comes up when first needed); nothing where the
        component is always up."""
        ...

    def versions(self) -> dict[str, str]:
        """Component -> version string, for evidence."""
        ...

    def disk(self, name: str) -> Path:
        """The root of the size-limited filesystem holding `name`'s data (DISK capability)."""
        ...

    def wait_healthy(self, timeout_s: float = 20.0) -> None:
        """Until GET /health answers 200."""
        ...

    @property
    def api_env(self) -> dict[str, str] | None:
        """The settings the API runs with (its environment as the stack starts it), live:
        None where the stack does not start the API (an external environment)."""
        ...

    def on_fault_event(self, event: str, fault: FaultView, handle: LiveFault | None) -> None:
        """Told "injecting" before a fault acts (it may refuse by raising FaultError: the
        external backend's policy and audit log), "reverting" before its undo steps and
        "reverted" after them. A stack with nothing to do here does nothing."""
        ...

    def on_step(self, line: int, text: str) -> None:
        """Told before a runbook step runs on the stack (the external backend audits it)."""
        ...

    def on_step_done(self, line: int, outcome: StepOutcome) -> None:
        """Told how a runbook step ended and what it reached (the external backend audits
        it: `refused` with the reason, or `after` with the status and the command run)."""
        ...

    def api_fleet(self) -> ApiFleet | None:
        """The API's instances, where the backend runs them itself; None where it does not
        (an external environment: its API is restarted, never scaled, by the drill)."""
        ...

    def servers_ended_unasked(self, besides: Collection[str] = ()) -> list[str]:
        """The stack's servers besides the API (the database, object store, cache, control
        plane) and those named in `besides` (a live fault's: its doing) that have ended
        although nobody stopped or killed them (not the stack, a fault, nor a step): each
        as one line saying how it ended. A drill under which one did measured the
        harness's broken environment, not the runbook. Empty where the servers are not the
        drill's to watch (an external environment)."""
        ...


def stack_redactor(endpoints: Endpoints) -> Redactor:
    """Secrets of a stack from its `Endpoints` (admin token, every URL's password)."""
    return Redactor.for_values(
        endpoints.as_env(),
        endpoints.admin_token,
        endpoints.admin_database_url,
        endpoints.app_database_url,
        endpoints.database_url,
        endpoints.redis_url,
    )
