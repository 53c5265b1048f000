"""The stack's servers as containers: each is the local component of the same name (its
probe, URLs, client and settings) with a `ContainerProcess` in place of the process.

Every container takes a free port chosen here and passed on its command line. With host
networking it binds 127.0.0.1:PORT in the host's namespace; on the stack's bridge network
(`network.py`) it listens on 0.0.0.0:PORT in its own namespace and publishes that port on
127.0.0.1:PORT of the host. Either way the fault proxies, the load balancer and the
runbook's own commands reach it on 127.0.0.1:PORT, exactly as they reach the local servers.

- PostgreSQL: the postgres image's contract (POSTGRES_PASSWORD, POSTGRES_INITDB_ARGS,
  PGDATA; UTF8 and C.UTF-8). With root, PGDATA lives on a tmpfs of the host mounted into
  the container, so a disk-full fault hits a real ENOSPC and `df` on the host shows it.
  The roles, the database and pg_stat_statements are created over TCP once it answers
  (the API migrates at its start, as on the local stack).
  Bridged, it listens on 0.0.0.0 and is given a pg_hba.conf (`hba_file`) that admits the
  stack network's clients with scram-sha-256: connections to a published port arrive from
  the network's gateway, not from 127.0.0.1.
- Redis: `redis-server` with the local stack's flags (`--bind 0.0.0.0` bridged).
- moto, the object store: the local stack's launcher, `python -m
  runbook_checks.stack.object_store_server -H 127.0.0.1 -p PORT` (`-H 0.0.0.0` bridged:
  moto's server, its module folders listed once), where the image carries it (its label,
  `images.OBJECT_STORE_LABEL`); else `moto_server` with the same arguments.
- moto, the AWS control plane: the local stack's launcher, `python -m
  runbook_checks.stack.aws_control_plane -H 127.0.0.1 -p PORT` (moto's app behind AWS's
  preconditions, `aws_rules.py`, its target groups keeping targets apart by Id and Port),
  when the image carries it: the moto image `make images` builds (docker/moto) has its
  modules (standard library and moto only) and says so with a label
  (`images.CONTROL_PLANE_LABEL`). A foreign moto image (motoserver/moto) has only moto:
  there the control plane is plain `moto_server`, with moto's leniency (a running
  instance's type changed, a non-replica "promoted", one target per IP address, so API
  instances on 127.0.0.1 collapse into one); the stack's versions say which one runs.
- MinIO (object store, when the configured image is MinIO): `minio server` on
  127.0.0.1:PORT (0.0.0.0:PORT bridged) with root credentials generated per stack (MinIO
  wants a secret of 8+ characters, moto's dummy `testing` is refused); they reach the API
  and every S3 client through `Endpoints`.
- The service's API twin: `python -m MODULE serve` (the kit's `Twin.serve`), its log and
  spool folders mounted at the same paths as on the host (the runbook's `tail` reads
  them), run as the caller's uid; bridged, API_HOST is 0.0.0.0 and its dependencies'
  addresses (the fault proxies) name the network's gateway (the stack puts them in its
  settings).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import StackError
from runbook_checks.service import Twin
from runbook_checks.stack.component import LocalComponent
from runbook_checks.stack.disk import can_mount, mount_tmpfs
from runbook_checks.stack.docker.container import ContainerProcess, ContainerSpec, Mount
from runbook_checks.stack.docker.engine import DockerClient
from runbook_checks.stack.docker.images import ResolvedImage
from runbook_checks.stack.docker.labels import COMPONENT_LABEL
from runbook_checks.stack.docker.network import StackNetwork
from runbook_checks.stack.ports import free_port
from runbook_checks.stack.postgres import (
    APP_DB,
    APP_USER,
    SUPERUSER,
    LocalPostgres,
    PgInstall,
    find_postgres,
    server_args,
)
from runbook_checks.stack.servers import AWS_TEST_ENV, LocalApi, LocalRedis, MotoServer
from runbook_checks.tls import tls_context

PGDATA_MOUNT = "/var/lib/postgresql/data"  # where the host's disk is mounted
PGDATA = f"{PGDATA_MOUNT}/pgdata"  # a folder below it: initdb wants an empty one
INITDB_ARGS = "-E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256"
HBA_FILE = "/etc/runbook-checks/pg_hba.conf"  # bridged: the stack's own, mounted read-only
MOTO_SERVER = ("moto_server",)  # moto's own server: `-H HOST -p PORT`
LAUNCHER = ("python", "-m", "runbook_checks.stack.aws_control_plane")  # the same arguments
OBJECT_STORE_LAUNCHER = ("python", "-m", "runbook_checks.stack.object_store_server")  # same


@dataclass(frozen=True)
class Placement:
    """What every container of one stack shares: the engine, its labels, its name, and its
    network (None: host networking)."""

    client: DockerClient
    stack_id: str
    labels: Mapping[str, str]
    network: StackNetwork | None = None

    @property
    def bind_host(self) -> str:
        """The address a server in a container listens on."""
        return "127.0.0.1" if self.network is None else "0.0.0.0"

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        """A container's environment: only what it is given (never the host's), traffic to
        loopback (and, bridged, to the host's address on the network) kept off any proxy."""
        if self.network is None:
            return _container_env(extra)
        local = f"127.0.0.1,localhost,{self.network.gateway}"
        return {"NO_PROXY": local, "no_proxy": local, **extra}

    def container_name(self, component: str, generation: int = 1) -> str:
        suffix = f"-{generation}" if generation > 1 else ""
        return f"rc-{self.stack_id}-{component}{suffix}"

    def labels_for(self, component: str) -> dict[str, str]:
        return {**self.labels, COMPONENT_LABEL: component}

    def process(
        self,
        component: str,
        image: ResolvedImage,
        log_path: Path,
        clock: Clock,
        *,
        generation: int = 1,
        ports: tuple[int, ...] = (),
        **spec: Any,
    ) -> ContainerProcess:
        """The component's container; `ports` are what it listens on (published on
        127.0.0.1 when bridged)."""
        container = ContainerSpec(
            name=self.container_name(component, generation),
            image=image.name,
            labels=self.labels_for(component),
            network=None if self.network is None else self.network.name,
            published=() if self.network is None else ports,
            **spec,
        )
        return ContainerProcess(
            container,
            component=component,
            client=self.client,
            log_path=log_path,
            clock=clock,
        )


def _container_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A container's environment: only what it is given (never the host's), loopback
    traffic kept off any proxy."""
    return {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", **extra}


class DockerPostgres(LocalPostgres):
    """PostgreSQL in a container, on 127.0.0.1:`port`."""

    def __init__(
        self,
        work_dir: Path,
        *,
        placement: Placement,
        image: ResolvedImage,
        password: str,
        app_password: str,
        disk_mb: int | None = None,
        on_mount: Callable[[Path], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        name: str = "postgres",
    ) -> None:
        # LocalPostgres.__init__ finds host binaries and builds a process: not wanted here
        LocalComponent.__init__(self, name, clock=clock)
        self.root = work_dir
        self.disk_dir = work_dir / "disk"
        self.disk_mb = disk_mb if disk_mb is not None and can_mount() else None
        self.on_mount = on_mount
        self.data_dir = self.disk_dir / "pgdata" if self.disk_mb is not None else None
        self.image = image
        self.install = _host_install()
        self.user = None
        self.port = free_port()
        self.socket_dir = work_dir / "run"  # unused: the stack connects over TCP
        self.password = password
        self.app_password = app_password
        self.template = None
        self._initialised = False
        mounts = [Mount(self.disk_dir, PGDATA_MOUNT)] if self.disk_mb is not None else []
        args = server_args(self.port, Path("/var/run/postgresql"))
        network = placement.network
        self.hba_path: Path | None = None
        self._hba = ""
        if network is not None:  # bridged: clients of published ports come from the gateway
            args[args.index("listen_addresses=127.0.0.1")] = "listen_addresses=0.0.0.0"
            args += ["-c", f"hba_file={HBA_FILE}"]
            self.hba_path = work_dir / "pg_hba.conf"
            mounts.append(Mount(self.hba_path, HBA_FILE, "ro"))
            self._hba = bridged_hba(network.subnet)
        self.process = placement.process(
            name,
            image,
            work_dir / "postgres.log",
            clock,
            ports=(self.port,),
            command=("postgres", *args),
            environment=placement.env(
                {
                    "POSTGRES_USER": SUPERUSER,
                    "POSTGRES_PASSWORD": password,
                    "POSTGRES_INITDB_ARGS": INITDB_ARGS,
                    "PGDATA": PGDATA,
                }
            ),
            mounts=tuple(mounts),
        )

    def prepare(self) -> None:
        if self._initialised:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if self.hba_path is not None:  # read by the container's postgres user
            self.hba_path.write_text(self._hba)
            self.hba_path.chmod(0o644)
        if self.disk_mb is not None:
            mount_tmpfs(self.disk_dir, self.disk_mb)
            if self.on_mount is not None:
                self.on_mount(self.disk_dir)
        self._initialised = True

    def populate(self, data_dir: Path) -> None:
        raise StackError("a container's data folder is made by the image's initdb")

    def probe(self) -> bool:
        with self.admin_connect("postgres", connect_timeout=1):
            return True

    def after_ready(self) -> None:
        """The roles, the database and pg_stat_statements (once; a restart finds them)."""
        with self.admin_connect("postgres") as conn:
            role = sql.Identifier(APP_USER)
            if (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,)).fetchone()
                is None
            ):
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(self.app_password))
            )
            conn.execute(sql.SQL("GRANT pg_signal_backend, pg_read_all_stats TO {}").format(role))
            if (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DB,)).fetchone()
                is None
            ):
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(APP_DB), role)
                )
        with self.admin_connect(APP_DB) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(role))

    def admin_connect(
        self, dbname: str = APP_DB, connect_timeout: int = 3
    ) -> psycopg.Connection[tuple[object, ...]]:
        """Superuser connection over TCP with its password (no socket is shared)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname=dbname,
            connect_timeout=connect_timeout,
            autocommit=True,
        )

    def server_version(self) -> str:
        with contextlib.suppress(psycopg.Error), self.admin_connect("postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
            if row:
                return str(row[0])
        return "unknown"


def bridged_hba(subnet: str) -> str:
    """pg_hba.conf of a bridged stack's PostgreSQL: what the image's initdb would allow
    (local trust, loopback with a password), and the stack network's clients (the host's
    clients of the published port arrive from its gateway) with a password, replication
    (pg_basebackup for the replica and snapshots) included."""
    return (
        "# runbook-checks: bridged docker stack (connections to the published port arrive\n"
        "# from the stack network's gateway)\n"
        "local   all          all                    trust\n"
        "local   replication  all                    trust\n"
        "host    all          all   127.0.0.1/32     scram-sha-256\n"
        "host    replication  all   127.0.0.1/32     scram-sha-256\n"
        f"host    all          all   {subnet:<16} scram-sha-256\n"
        f"host    replication  all   {subnet:<16} scram-sha-256\n"
    )


def _host_install() -> PgInstall:
    """The host's PostgreSQL tools where there are any (pg_basebackup for snapshots and a
    replica running beside the containers), else a placeholder that names the gap."""
    try:
        return find_postgres()
    except StackError:
        return PgInstall(Path("/nonexistent/postgresql/bin"), "none on the host")


class DockerRedis(LocalRedis):
    def __init__(
        self,
        work_dir: Path,
        *,
        placement: Placement,
        image: ResolvedImage,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        LocalComponent.__init__(self, "redis", data_dir=work_dir, clock=clock)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.image = image
        self.port = free_port()
        self.process = placement.process(
            "redis",
            image,
            work_dir / "redis.log",
            clock,
            ports=(self.port,),
            command=(
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                placement.bind_host,
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "notice",
            ),
            environment=placement.env({}),
        )


class DockerMoto(MotoServer):
    """moto's server in a container: the object store or the AWS control plane, each
    with its launcher where the image carries it, else plain `moto_server` (see above)."""

    def __init__(
        self,
        name: str,
        work_dir: Path,
        *,
        placement: Placement,
        image: ResolvedImage,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        LocalComponent.__init__(self, name, data_dir=work_dir, clock=clock)
        if image.flavour != "moto":
            raise StackError(
                f"{name}: {image.name} is a {image.flavour} image, not moto's server",
                hint="the AWS control plane needs moto (motoserver/moto, or the stand-in "
                "`make images` builds: runbook-checks/moto:dev)",
            )
        work_dir.mkdir(parents=True, exist_ok=True)
        self.image = image
        self.port = free_port()
        # the control plane refuses what AWS refuses where the image lets it
        self.launcher = name == "aws" and image.has_launcher
        entrypoint: tuple[str, ...]
        if self.launcher:
            entrypoint = LAUNCHER
        elif name != "aws" and image.has_object_store_launcher:
            entrypoint = OBJECT_STORE_LAUNCHER
        else:
            entrypoint = MOTO_SERVER
        self.process = placement.process(
            name,
            image,
            work_dir / f"{name}.log",
            clock,
            ports=(self.port,),
            entrypoint=entrypoint,
            command=("-H", placement.bind_host, "-p", str(self.port)),
            environment=placement.env(AWS_TEST_ENV),
        )

    def describe(self) -> str:
        """What serves: for the stack's versions."""
        if self.launcher:
            return "moto behind AWS's preconditions (stack/aws_rules.py)"
        if self.name == "aws":
            return "plain moto_server, without AWS's preconditions (the image has no launcher)"
        return "moto"


class DockerMinio(MotoServer):
    """MinIO as the object store (S3 only: the control plane stays moto).

    The image's contract: `minio server DIR`, root credentials from MINIO_ROOT_USER and
    MINIO_ROOT_PASSWORD, liveness at /minio/health/live. Data lives in the container's
    own filesystem (removed with it), like the moto stand-in's memory."""

    DATA = "/data"

    def __init__(
        self,
        work_dir: Path,
        *,
        placement: Placement,
        image: ResolvedImage,
        clock: Clock = SYSTEM_CLOCK,
        name: str = "object_store",
    ) -> None:
        LocalComponent.__init__(self, name, data_dir=work_dir, clock=clock)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.image = image
        self.port = free_port()
        self.console_port = free_port()
        self.access_key = f"drill{secrets.token_hex(4)}"
        self.secret_key = secrets.token_urlsafe(24)
        self.process = placement.process(
            name,
            image,
            work_dir / f"{name}.log",
            clock,
            ports=(self.port,),
            entrypoint=("minio",),
            command=minio_command(
                self.port, self.console_port, self.DATA, host=placement.bind_host
            ),
            environment=placement.env(
                {
                    "MINIO_ROOT_USER": self.access_key,
                    "MINIO_ROOT_PASSWORD": self.secret_key,
                    "MINIO_BROWSER": "off",
                    "MINIO_UPDATE": "off",
                }
            ),
        )

    def probe(self) -> bool:
        response = httpx.get(f"{self.url}/minio/health/live", timeout=0.5, verify=tls_context())
        return response.status_code == 200

    def reset_state(self) -> None:
        raise StackError(
            f"{self.name} is MinIO: it has no reset endpoint",
            hint="empty the bucket through S3 instead (the stack's reset does)",
        )


def minio_command(
    port: int, console_port: int, data: str, *, host: str = "127.0.0.1"
) -> tuple[str, ...]:
    return (
        "server",
        data,
        "--address",
        f"{host}:{port}",
        "--console-address",
        f"{host}:{console_port}",
    )


class DockerApi(LocalApi):
    """The service's API twin in a container; `configure()` replaces the container (new settings
    are a new container, as a redeploy is)."""

    def __init__(
        self,
        work_dir: Path,
        env: Mapping[str, str],
        *,
        placement: Placement,
        image: ResolvedImage,
        twin: Twin,
        name: str = "api",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.placement = placement
        self.image = image
        self.generation = 0
        super().__init__(work_dir, env, twin=twin, name=name, clock=clock)

    def _make_process(self) -> ContainerProcess:
        previous = getattr(self, "process", None)
        if isinstance(previous, ContainerProcess):
            previous.remove()
        self.generation += 1
        settings = {
            **AWS_TEST_ENV,
            **self.settings,
            "API_HOST": self.placement.bind_host,
            "API_PORT": str(self.port),
            "LOG_DIR": str(self.log_dir),
            "SPOOL_DIR": str(self.spool_dir),
        }
        return self.placement.process(
            self.name,
            self.image,
            self.work_dir / "api.stdout.log",
            self.clock,
            generation=self.generation,
            ports=(self.port,),
            command=(*self.twin.serve, "--instance", self.instance),
            entrypoint=("python",),
            environment=self.placement.env(settings),
            mounts=(
                Mount(self.log_dir, str(self.log_dir)),
                Mount(self.spool_dir, str(self.spool_dir)),
            ),
            user=_caller(),
        )


def _caller() -> str:
    """Run as the caller's uid:gid, so what the container writes on the host's folders
    is the caller's to remove."""
    return f"{os.getuid()}:{os.getgid()}"
