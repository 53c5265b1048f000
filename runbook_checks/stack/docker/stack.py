"""`DockerStack`: the local stack's shape, its servers in containers.

The same five components (postgres, object_store, redis, api, aws), the same in-process
fault proxies between the API and each dependency (the API container is given the
proxies' addresses), the same load balancer following the control plane's target groups,
the same reset. Only the servers differ: each is a container (testcontainers and the
docker SDK), and the component operations go through the engine (kill, stop/start,
pause/unpause, restart).

Networking (`--docker-network`, `network.py`): host networking (127.0.0.1 and a free port
each, in the host's namespace), or a bridge network of the stack's own with each server's
port published on 127.0.0.1 (the same number), so every host-side address is the same in
both; bridged, the API's dependency proxies listen on the network's gateway (the host's
address on that bridge, never 0.0.0.0) and the API is given that address for them.

Monitoring (`stack.monitoring`): Prometheus, Alertmanager and the exporters as containers
of `runbook-checks/monitoring:dev` with the local stack's config (docker/monitoring.py),
host networking only; without the image (`make images`), or bridged, the stack runs
without them and `monitoring_missing` says why.

It subclasses `LocalStack` on purpose: everything that is not "how a server runs"
(proxies, balancer, reset, API instances, database routing) is shared code, so the two
backends cannot drift apart, and code written against the local stack's extras
(`add_api_instance`, `target_groups`, `route_database`) runs unchanged here.

Nothing is left behind: every container (and the bridge network) is labelled with the
stack and its owner; `stop()` removes them; a reaper process removes them if the owner dies
without stopping (`reaper.py`); `runbook-checks cleanup` and every docker stack's start
remove the containers and networks of owners that are gone (`labels.py`). Host-side
things (the PostgreSQL disk's tmpfs, the stack folder) use the local stack's state file as
before.

Capabilities: everything the local stack can do, except
- DISK without root (the disk is a tmpfs mounted on the host),
- REPLICA where the host has no PostgreSQL tools of the containers' major version: the
  streaming replica and restored snapshots are PostgreSQL servers beside the containers
  (`pg_basebackup` against the container, then the host's server), as the local
  backend's are.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.config import DOCKER_NETWORKS, ImageNames
from runbook_checks.errors import StackError, UsageError
from runbook_checks.service import ServiceKit
from runbook_checks.stack.base import Capability
from runbook_checks.stack.disk import can_mount
from runbook_checks.stack.docker import labels as container_labels
from runbook_checks.stack.docker.components import (
    DockerApi,
    DockerMinio,
    DockerMoto,
    DockerPostgres,
    DockerRedis,
    Placement,
)
from runbook_checks.stack.docker.container import ContainerProcess
from runbook_checks.stack.docker.engine import DockerClient, connect, engine_env
from runbook_checks.stack.docker.images import (
    ResolvedImage,
    find_monitoring_image,
    resolve_images,
)
from runbook_checks.stack.docker.monitoring import BRIDGED, DockerMonitoring
from runbook_checks.stack.docker.network import (
    BRIDGE,
    StackNetwork,
    check_gateway_is_local,
    create_network,
    engine_mode,
    remove_network,
)
from runbook_checks.stack.local import (
    PG_DISK_MB,
    LocalStack,
)
from runbook_checks.stack.monitoring import Monitoring
from runbook_checks.stack.postgres import LocalPostgres
from runbook_checks.stack.servers import LocalApi, LocalRedis, MotoServer


class DockerStack(LocalStack):
    """Start, reset and stop the stack in containers; a context manager."""

    backend = "docker"
    # a container started on the first AWS request would cost that request seconds of
    # the engine's time: the control plane comes up with the stack (on its thread)
    lazy_control_plane = False

    def __init__(
        self,
        *,
        kit: ServiceKit,
        images: ImageNames | None = None,
        network: str = "auto",
        api_settings: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        monitoring: bool | None = None,
    ) -> None:
        super().__init__(kit=kit, api_settings=api_settings, clock=clock, monitoring=monitoring)
        if network not in DOCKER_NETWORKS:
            raise UsageError(
                f"--docker-network {network!r} is not one of {', '.join(DOCKER_NETWORKS)}"
            )
        named = images or ImageNames()
        # the API twin's image: the one named (--image-api), else the one its kit names
        self.images = named if named.api else replace(named, api=kit.twin.image)
        if not self.images.api:
            raise UsageError(
                f"the service kit {kit.name!r} names no container image for its API twin",
                hint="name one with --image-api (or the kit's twin.image)",
            )
        self.network_request = network  # auto, host or bridge
        self.network_mode: str | None = None  # host or bridge, once started
        self.network: StackNetwork | None = None  # the stack's bridge network, bridged
        self.resolved: dict[str, ResolvedImage] = {}
        self.client: DockerClient | None = None  # once started
        self.placement: Placement | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        # the monitoring image once started, or why the stack runs without monitoring
        self.monitoring_image: ResolvedImage | str = ""
        # until start() knows better: DISK needs root; REPLICA needs the host's tools
        self.capabilities = self._capabilities(replica=False)

    @staticmethod
    def _capabilities(*, replica: bool) -> frozenset[Capability]:
        absent = set()
        if not can_mount():
            absent.add(Capability.DISK)
        if not replica:
            absent.add(Capability.REPLICA)
        return frozenset(Capability) - absent

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._endpoints is not None:
            return
        client = connect()
        self.client = client
        # before anything exists: which images run (and which are missing, never pulled),
        # and how the containers are networked
        self.resolved = resolve_images(client, self.images)
        self.monitoring_image = find_monitoring_image(client)
        self.network_mode = engine_mode(client, self.network_request)
        container_labels.sweep_containers(client)  # leftovers of owners that are gone
        super().start()

    def _start_components(self) -> None:
        assert self.folder is not None
        assert self.state is not None
        assert self.client is not None
        folder = self.folder
        stack_id = folder.name
        labels = container_labels.owner_labels(stack_id, folder)
        self._reaper = _spawn_reaper(stack_id, folder)
        if self.network_mode == BRIDGE:
            self.network = create_network(self.client, stack_id, labels)
            check_gateway_is_local(self.network)
        self.placement = Placement(self.client, stack_id, labels, self.network)
        super()._start_components()  # the same wiring, with the factories below
        pg = self.components["postgres"]
        assert isinstance(pg, DockerPostgres)
        self.capabilities = self._capabilities(replica=_replica_possible(pg))

    def _make_servers(
        self, folder: Path
    ) -> tuple[DockerPostgres, DockerRedis, MotoServer, DockerMoto]:
        assert self.state is not None
        assert self.placement is not None
        place, images, clock = self.placement, self.resolved, self.clock
        pg = DockerPostgres(
            folder / "postgres",
            placement=place,
            image=images["postgres"],
            password=secrets.token_urlsafe(16),
            app_password=secrets.token_urlsafe(16),
            disk_mb=PG_DISK_MB,
            on_mount=self.state.add_mount,
            clock=clock,
        )
        cache = DockerRedis(folder / "redis", placement=place, image=images["redis"], clock=clock)
        store: MotoServer
        if images["object_store"].flavour == "minio":
            store = DockerMinio(
                folder / "object_store", placement=place, image=images["object_store"], clock=clock
            )
        else:
            store = DockerMoto(
                "object_store",
                folder / "object_store",
                placement=place,
                image=images["object_store"],
                clock=clock,
            )
        aws = DockerMoto("aws", folder / "aws", placement=place, image=images["aws"], clock=clock)
        return pg, cache, store, aws

    def _make_monitoring(
        self, folder: Path, pg: LocalPostgres, cache: LocalRedis, api: LocalApi
    ) -> Monitoring | str:
        """Prometheus, Alertmanager and the exporters as containers of the monitoring
        image (host networking), or why not: the image is not built, the stack is bridged."""
        if isinstance(self.monitoring_image, str):
            return self.monitoring_image
        if self.network is not None:
            return BRIDGED
        assert self.placement is not None
        return DockerMonitoring(
            folder / "monitoring",
            placement=self.placement,
            image=self.monitoring_image,
            postgres_url=pg.superuser_url,
            redis_url=cache.url,
            api_urls=[api.url],
            api_job=self.kit.vocabulary.api_job,
            clock=self.clock,
        )

    def _api_proxy_host(self) -> str:
        """Bridged: the network's gateway, the host's address the API container reaches
        (the proxies never listen on 0.0.0.0); host networking: the loopback."""
        return "127.0.0.1" if self.network is None else self.network.gateway

    def _make_api(self, folder: Path, env: Mapping[str, str]) -> DockerApi:
        assert self.placement is not None
        return DockerApi(
            folder / "api",
            env,
            twin=self.kit.twin,
            placement=self.placement,
            image=self.resolved["api"],
            clock=self.clock,
        )

    def stop(self) -> None:
        """Remove every container of the stack (also ones a test replaced) and its bridge
        network, then what the local stack releases (proxies, balancer, the disk's mount,
        the folder). Idempotent."""
        errors: list[str] = []
        self._no_more_control_plane()  # no container made after the removal below
        client, placement = self.client, self.placement
        # the API instances first: their dependencies' proxies then see no more clients
        ordered = sorted(self.components.values(), key=lambda c: not isinstance(c, DockerApi))
        for component in ordered:
            process = component.process
            if isinstance(process, ContainerProcess):
                try:
                    process.remove()
                except Exception as exc:  # keep going: the label sweep below gets it
                    errors.append(f"{component.name}: {exc}")
        if client is not None and placement is not None:
            try:  # the network goes too, once its containers are gone
                container_labels.remove_containers(client, placement.stack_id)
            except Exception as exc:
                errors.append(f"removing containers by label: {exc}")
        network = self.network
        if client is not None and network is not None:
            try:
                remove_network(client, network.network_id)
            except Exception as exc:
                errors.append(f"removing the network {network.name}: {exc}")
        try:
            super().stop()
        finally:
            self.placement = None
            self.network = None
            reaper, self._reaper = self._reaper, None
            if reaper is not None:
                reaper.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    reaper.wait(timeout=5)
        if errors:
            raise StackError("stopping the docker stack: " + "; ".join(errors))

    # -- API instances ----------------------------------------------------------------
    def add_api_instance(self, name: str, **env: str) -> DockerApi:
        """Another API container (same settings unless overridden); not registered in any
        target group (the runbook's commands or the caller do that)."""
        instance = self._new_api_instance(name, **env)
        instance.start()
        return instance

    def _new_api_instance(self, name: str, **env: str) -> DockerApi:
        assert self.folder is not None
        assert self.placement is not None
        if name in self.components:
            raise StackError(f"a component named {name!r} exists already")
        self._control_plane_dirty = True  # the balancer's view may change
        instance = DockerApi(
            self.folder / name,
            {**self.api.settings, **env},
            twin=self.kit.twin,
            name=name,
            placement=self.placement,
            image=self.resolved["api"],
            clock=self.clock,
        )
        self._track(instance)
        return instance

    def _instances_added(self) -> None:
        """Nothing: the containers' scrape targets stay as they are."""

    def reset_data(self) -> None:
        super().reset_data()
        self._remove_untracked()

    def restart_api(self, **env: str) -> None:
        super().restart_api(**env)
        self._remove_untracked()

    def _remove_untracked(self) -> None:
        """Containers of this stack that no component owns any more (API instances a test
        added and the reset dropped): removed, so a long session does not pile them up."""
        if self.client is None or self.placement is None:
            return
        from docker.errors import APIError, NotFound

        owned = {
            c.process.container_id
            for c in self.components.values()
            if isinstance(c.process, ContainerProcess)
        }
        selector = f"{container_labels.STACK_LABEL}={self.placement.stack_id}"
        for container in self.client.containers.list(
            all=True, filters={"label": selector}, ignore_removed=True
        ):
            if container.id not in owned:
                with contextlib.suppress(NotFound, APIError):
                    container.remove(force=True)

    # -- evidence ---------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        pg = self.components.get("postgres")
        for name, image in self.resolved.items():
            server = ""
            component = self.components.get(name)
            if name == "postgres" and isinstance(pg, DockerPostgres):
                server = f"PostgreSQL {pg.server_version()}, "
            elif name == "redis":
                with contextlib.suppress(Exception):
                    server = f"Redis {self.components['redis'].version()}, "  # type: ignore[attr-defined]
            elif name == "api":
                server = f"{self.kit.twin.describe(self.api.settings)}, "
            elif isinstance(component, DockerMoto):  # the launcher or plain moto_server
                server = f"{component.describe()}, "
            elif image.flavour in ("moto", "minio"):
                server = f"{image.flavour}, "
            out[name] = f"{server}image {image.describe()} {image.image_id[7:19]}"
        if self.monitoring is not None:
            out.update(self.monitoring.versions())
        return out

    def containers(self) -> dict[str, str]:
        """Component -> its container's name (for people and tests)."""
        return {
            name: c.process.spec.name
            for name, c in self.components.items()
            if isinstance(c.process, ContainerProcess)
        }


def _spawn_reaper(stack_id: str, folder: Path) -> subprocess.Popen[bytes]:
    from runbook_checks.stack.docker.reaper import spawn

    return spawn(stack_id, folder, folder / "reaper.log", engine_env())


def _replica_possible(pg: DockerPostgres) -> bool:
    """Can a streaming replica (and a restored snapshot) run beside the container? The
    host needs PostgreSQL tools of the server's major version (and, as root, a `postgres`
    user to run the server as, as the local backend does)."""
    host = pg.install
    if not Path(host.tool("pg_basebackup")).exists():
        return False
    server = pg.server_version()
    major = re.match(r"\d+", server)
    host_major = re.match(r"\d+", host.version)
    return bool(
        major
        and host_major
        and major.group(0) == host_major.group(0)
        and (os.geteuid() != 0 or _has_postgres_user())
    )


def _has_postgres_user() -> bool:
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True
