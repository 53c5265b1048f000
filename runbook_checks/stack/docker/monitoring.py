"""The docker stack's monitoring: the local stack's servers, flags and configuration
(stack/monitoring.py), each server a container of `runbook-checks/monitoring:dev`
(Debian's packages, built by `make images`; never pulled).

The stack's monitoring folder is mounted at the same path in every container, so the
config files, the rule files `set_rules` copies and the file_sd list of API instances
name the same paths inside as outside, and `promtool` checks the rules inside
Prometheus' container. The containers run as the caller's uid (what they write in the
folder is the caller's to remove), with host networking: each binds 127.0.0.1 on a free
port, scrapes the API containers and the exporters' servers on 127.0.0.1 and posts to
the drill's inbox on 127.0.0.1, as on the local stack. A bridged docker stack runs
without monitoring (its containers would need the stack network's names for the API
instances and the drill's inbox on the network's gateway: not built).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from runbook_checks.clock import SYSTEM_CLOCK, Clock
from runbook_checks.errors import StackError
from runbook_checks.stack.docker.components import Placement, _caller
from runbook_checks.stack.docker.container import ContainerProcess, Mount
from runbook_checks.stack.docker.images import ResolvedImage
from runbook_checks.stack.monitoring import (
    HttpServerComponent,
    Monitoring,
    MonitoringBinaries,
    parse_version,
)

# where Debian's packages put them in the image
IN_IMAGE = MonitoringBinaries(
    prometheus="/usr/bin/prometheus",
    alertmanager="/usr/bin/prometheus-alertmanager",
    promtool="/usr/bin/promtool",
    amtool="/usr/bin/amtool",
    postgres_exporter="/usr/bin/prometheus-postgres-exporter",
    redis_exporter="/usr/bin/prometheus-redis-exporter",
)
BRIDGED = (
    "a bridged docker stack runs without monitoring (its containers run with host "
    "networking only); use --docker-network host"
)


class DockerMonitoringServer(HttpServerComponent):
    """A monitoring server in a container of the monitoring image."""

    def __init__(
        self,
        name: str,
        work_dir: Path,
        *,
        placement: Placement,
        image: ResolvedImage,
        shared: Path,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name, work_dir, clock=clock)
        self.placement = placement
        self.image = image
        self.shared = shared  # the monitoring folder, mounted at its own path

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        binary, *flags = argv
        self.process = self.placement.process(
            self.name,
            self.image,
            self.work_dir / f"{self.name}.log",
            self.clock,
            ports=(self.port,),
            entrypoint=(binary,),
            command=tuple(flags),
            environment=self.placement.env(dict(env or {})),
            mounts=(Mount(self.shared, str(self.shared)),),
            user=_caller(),
        )

    @property
    def container(self) -> ContainerProcess:
        process = self.process
        assert isinstance(process, ContainerProcess)
        return process


class DockerMonitoring(Monitoring):
    """`Monitoring` whose servers are containers (host networking)."""

    def __init__(
        self,
        folder: Path,
        *,
        placement: Placement,
        image: ResolvedImage,
        postgres_url: str | None,
        redis_url: str | None,
        api_urls: Sequence[str],
        api_job: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if placement.network is not None:
            raise StackError(BRIDGED)
        self.placement = placement
        self.image = image
        super().__init__(
            folder,
            IN_IMAGE,
            postgres_url=postgres_url,
            redis_url=redis_url,
            api_urls=api_urls,
            api_job=api_job,
            clock=clock,
        )

    def _server(self, name: str) -> HttpServerComponent:
        return DockerMonitoringServer(
            name,
            self.folder / name,
            placement=self.placement,
            image=self.image,
            shared=self.folder,
            clock=self.clock,
        )

    def _container(self, name: str) -> ContainerProcess:
        server = self.component(name)
        assert isinstance(server, DockerMonitoringServer)
        return server.container

    def promtool(self, *args: str) -> tuple[int, str]:
        """promtool of the image, in Prometheus' container (the files are where it is)."""
        return self._container("prometheus").exec([IN_IMAGE.promtool, *args])

    def version_of(self, server: HttpServerComponent) -> str:
        container = self._container(server.name)
        binary = (container.spec.entrypoint or ("",))[0]
        try:
            _, output = container.exec([binary, "--version"])
        except StackError:  # not running now
            return f"unknown (not running), image {self.image.describe()}"
        return f"{parse_version(output)}, image {self.image.describe()} {self.image.image_id[7:19]}"
