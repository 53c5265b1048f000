"""The local backend (the embedded default): real servers as processes on 127.0.0.1.

PostgreSQL (a cluster of its own), Redis, moto's S3 server as the object store, a second
moto server as the AWS control plane (behind AWS's documented preconditions:
aws_rules.py), and the service's API twin (its kit's `Twin`). The API reaches
PostgreSQL, the object store and Redis through one fault proxy each, so network faults
act on the API's path only; operators (and the runbook's commands) connect directly.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import httpx
from botocore.config import Config as BotoConfig

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.errors import ComponentFailed, StackError
from runbook_checks.service import ServiceKit
from runbook_checks.stack.balancer import (
    TargetGroupBalancer,
    TargetGroups,
    register,
    seed_target_groups,
)
from runbook_checks.stack.base import COMPONENTS, Capability, Component, Endpoints, StepOutcome
from runbook_checks.stack.component import LocalComponent
from runbook_checks.stack.disk import can_mount
from runbook_checks.stack.leftovers import StateFile, release, sweep, work_root
from runbook_checks.stack.live import ACTIVE, FaultView, LiveFault
from runbook_checks.stack.monitoring import Monitoring, find_monitoring, monitoring_switched_off
from runbook_checks.stack.postgres import LocalPostgres
from runbook_checks.stack.process import stop_together
from runbook_checks.stack.proxy import FaultProxy, ProxySet
from runbook_checks.stack.servers import (
    AWS_TEST_ENV,
    AwsControlPlane,
    LocalApi,
    LocalRedis,
    MotoServer,
)
from runbook_checks.tls import tls_context

log = logging.getLogger(__name__)

BUCKET = "files"
REGION = "us-east-1"
PROXIED = ("postgres", "object_store", "redis")
TARGET_GROUPS = TargetGroups(("files-primary", "files-standby"))
PG_DISK_MB = 1024  # the database server's own disk (a tmpfs when root)
TARGET_HOST = "127.0.0.1"  # the address the API instances are registered under (IP targets)
CONTROL_PLANE_SEED_S = 30.0  # seeding the control plane, beyond its server's start
# a living component that misses its probe at a reset gets this long before it is restarted
RESET_READY_GRACE_S = 5.0
MIN_READY_WAIT_S = 1.0  # an instance reached after a shared deadline still gets a probe


class LocalStack:
    """Start, reset and stop the whole stack; a context manager."""

    backend = "local"
    # The AWS control plane comes up when first needed (see `_keep_control_plane`); a
    # backend whose control plane is slow to come up on demand starts it with the stack.
    lazy_control_plane = True

    def __init__(
        self,
        *,
        kit: ServiceKit,
        api_settings: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        monitoring: bool | None = None,
    ) -> None:
        """`monitoring`: run Prometheus, Alertmanager and the exporters (None: unless
        $RUNBOOK_CHECKS_MONITORING is off; missing binaries leave it None either way)."""
        self.kit = kit
        self.clock = clock
        self.capabilities = (
            frozenset(Capability)
            - {Capability.LIMITS}
            - (frozenset() if can_mount() else frozenset({Capability.DISK}))
        )
        self.api_settings = dict(api_settings or {})
        self.folder: Path | None = None
        self.state: StateFile | None = None
        self.proxies = ProxySet()
        self.components: dict[str, LocalComponent] = {}
        self._endpoints: Endpoints | None = None
        self._tables: tuple[str, ...] | None = None
        self._s3_client: object | None = None
        self.balancer: TargetGroupBalancer | None = None
        self._control_plane_dirty = False
        self._aws_bytes_seen = 0
        self._target_groups: dict[str, str] = {}  # name -> ARN in the control plane
        # the control plane comes up and is seeded on a thread of its own, once wanted
        self._control_plane: threading.Thread | None = None
        self._control_plane_wanted = threading.Event()
        self._control_plane_done = threading.Event()
        self._control_plane_spawned = threading.Event()  # (or it never will be)
        self._control_plane_stopping = threading.Event()
        self._control_plane_lock = threading.Lock()
        self._control_plane_failure: BaseException | None = None
        self.admin_token = secrets.token_urlsafe(24)
        # the stack's Prometheus and Alertmanager, or None and why (monitoring_missing)
        self.monitoring: Monitoring | None = None
        self.monitoring_missing = ""
        if monitoring is False:
            self.monitoring_missing = "switched off (monitoring=False)"
        elif monitoring is None:
            self.monitoring_missing = monitoring_switched_off()

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._endpoints is not None:
            return
        sweep()  # leftovers of interrupted drills go first
        try:
            # the folder is known before it exists: an interrupt at any point from here
            # on finds it in self.folder, and stop() removes it
            self.state = StateFile(self._make_folder(work_root()))
            self.state.write()
            self._start_components()
        except BaseException as exc:
            if isinstance(exc, ComponentFailed | StackError):
                exc.add_note(f"stack folder (removed): {self.folder}")
            self.stop()
            raise

    def _make_folder(self, root: Path) -> Path:
        """self.folder: a fresh stack-<random> folder under `root`, named in self.folder
        before it is made, so that no interrupt can leave it made but unknown."""
        while True:
            self.folder = root / f"stack-{secrets.token_hex(6)}"
            try:
                self.folder.mkdir(mode=0o755)
            except FileExistsError:  # someone else's: never ours to remove
                self.folder = None
                continue
            self.folder.chmod(0o755)  # whatever the umask (the postgres user traverses it)
            return self.folder

    def _make_servers(
        self, folder: Path
    ) -> tuple[LocalPostgres, LocalRedis, MotoServer, MotoServer]:
        """The four servers behind the API (a backend overrides this: containers ...)."""
        assert self.state is not None
        clock = self.clock
        pg = LocalPostgres(
            folder / "postgres",
            clock=clock,
            twin=self.kit.twin,
            password=secrets.token_urlsafe(16),
            app_password=secrets.token_urlsafe(16),
            disk_mb=PG_DISK_MB,
            on_mount=self.state.add_mount,
        )
        cache = LocalRedis(folder / "redis", clock=clock)
        store = MotoServer("object_store", folder / "object_store", clock=clock)
        aws = AwsControlPlane(folder / "aws", clock=clock)
        return pg, cache, store, aws

    def _make_api(self, folder: Path, env: Mapping[str, str]) -> LocalApi:
        """The service's API twin (a backend overrides this)."""
        return LocalApi(folder / "api", env, twin=self.kit.twin, clock=self.clock)

    def _api_proxy_host(self) -> str:
        """The address the API's dependency proxies listen on, and the API is given for its
        database, object store and cache (a backend whose API runs in another network
        namespace overrides it: the docker backend's bridge gateway)."""
        return "127.0.0.1"

    def _start_components(self) -> None:
        assert self.folder is not None
        assert self.state is not None
        folder = self.folder
        pg, cache, store, aws = self._make_servers(folder)
        for component in (pg, cache, store, aws):
            self._track(component)
        # the API's dependencies, and the control plane (whose proxy also tells reset_data
        # whether anyone used it)
        upstreams = {
            "postgres": pg.port,
            "object_store": store.port,
            "redis": cache.port,
            "aws": aws.port,
        }
        # the API's dependency proxies listen where the API reaches them; the control
        # plane's serves the runbook's commands and the balancer, on the host's loopback
        via = self._api_proxy_host()
        for name, port in upstreams.items():
            listen = via if name in PROXIED else "127.0.0.1"
            proxy = FaultProxy(name, ("127.0.0.1", port), listen_host=listen)
            proxy.mirror_refusal = True  # a killed server looks killed (ECONNREFUSED)
            self.proxies.add(proxy)
            proxy.start()
        api_env = {
            "DATABASE_URL": pg.url(host=via, port=self.proxies.get("postgres").listen_port),
            "S3_ENDPOINT_URL": f"http://{via}:{self.proxies.get('object_store').listen_port}",
            "S3_BUCKET": BUCKET,
            "S3_REGION": REGION,
            "REDIS_URL": f"redis://{via}:{self.proxies.get('redis').listen_port}/0",
            "ADMIN_TOKEN": self.admin_token,
            "MIGRATE_ON_START": "1",
            **AWS_TEST_ENV,
            "AWS_ACCESS_KEY_ID": store.access_key,  # the API signs only S3 requests
            "AWS_SECRET_ACCESS_KEY": store.secret_key,
            **self.api_settings,
        }
        api = self._make_api(folder, api_env)
        self._api_start_settings = dict(api.settings)
        self._track(api)
        self._add_monitoring(folder, pg, cache, api)
        # Spawn everything at once (the API tolerates its dependencies coming up late),
        # then wait for each: the start costs the slowest component, not the sum. The
        # AWS control plane (moto with EC2, RDS and ELBv2: the slowest to come up, ~2 s
        # of CPU with its seed) is not on the data path, and most tests and drills never
        # call it: it comes up when first needed (`_keep_control_plane`). Until then the
        # balancer routes to the API it will register, and its proxy holds AWS requests
        # (the first one wants the control plane).
        for started in self.components.values():
            if started is not aws:
                started.spawn()
        aws_proxy = self.proxies.get("aws")  # every client but the stack's own calls

        def aws_traffic() -> tuple[int, int]:
            stats = aws_proxy.stats()
            return stats.bytes_upstream, stats.bytes_downstream

        self.balancer = TargetGroupBalancer("balancer", aws.url, TARGET_GROUPS, changes=aws_traffic)
        self.balancer.start(known=((TARGET_HOST, api.port),))
        self._control_plane_failure = None
        aws_proxy.hold()
        aws_proxy.on_held = self._control_plane_wanted.set
        for started in self.components.values():
            if started is not aws:
                started.wait_ready(started.ready_timeout_s)
        self._endpoints = Endpoints(
            api_url=f"http://127.0.0.1:{self.balancer.listen_port}",
            api_instance_url=api.url,
            database_url=pg.url(),
            app_database_url=api_env["DATABASE_URL"],
            admin_database_url=pg.superuser_url,
            s3_endpoint=store.url,
            s3_bucket=BUCKET,
            s3_access_key=store.access_key,
            s3_secret_key=store.secret_key,
            redis_url=cache.url,
            aws_endpoint=f"http://127.0.0.1:{self.proxies.get('aws').listen_port}",
            aws_region=REGION,
            admin_token=self.admin_token,
            log_dir=api.log_dir,
            api_process=api.instance,
            data_dirs={
                "postgres": pg.data_dir or folder / "postgres",
                "redis": folder / "redis",
                "object_store": folder / "object_store",
                "api": api.work_dir,
            },
        )
        self._ensure_bucket()
        self.wait_healthy()
        self._control_plane = threading.Thread(
            target=self._keep_control_plane, args=(aws,), name="control-plane", daemon=True
        )
        self._control_plane.start()
        if not self.lazy_control_plane:  # spawned (a container made) when start returns
            self._control_plane_wanted.set()
            self._control_plane_spawned.wait()
            if self._control_plane_failure is not None:
                raise self._control_plane_failure

    def _add_monitoring(
        self, folder: Path, pg: LocalPostgres, cache: LocalRedis, api: LocalApi
    ) -> None:
        """Prometheus, Alertmanager and the exporters join the components to spawn (where
        they can run, and unless switched off); else monitoring_missing says why."""
        if self.monitoring_missing:
            return
        made = self._make_monitoring(folder, pg, cache, api)
        if isinstance(made, str):
            self.monitoring_missing = made
            return
        self.monitoring = made
        for component in made.components:
            self._track(component)

    def _make_monitoring(
        self, folder: Path, pg: LocalPostgres, cache: LocalRedis, api: LocalApi
    ) -> Monitoring | str:
        """The monitoring of this stack, or why it has none (a backend overrides this:
        containers ...). The exporters connect directly, as an operator's monitoring does
        (not through the fault proxies)."""
        binaries = find_monitoring()
        if isinstance(binaries, str):
            return binaries
        return Monitoring(
            folder / "monitoring",
            binaries,
            postgres_url=pg.superuser_url,
            redis_url=cache.url,
            api_urls=[api.url],
            api_job=self.kit.vocabulary.api_job,
            clock=self.clock,
        )

    def _monitor_api_instances(self) -> None:
        """Prometheus scrapes every API instance there is (directly, not the balancer)."""
        if self.monitoring is not None:
            self.monitoring.set_api_targets([i.url for i in self.api_instances()])

    def _track(self, component: LocalComponent) -> None:
        assert self.state is not None
        state = self.state
        component.process.on_spawn = lambda pid, n=component.name: state.add_pid(n, pid)
        self.components[component.name] = component

    def stop(self) -> None:
        """Stop every server at once; remove the folder. Idempotent, never raises."""
        ACTIVE.abandon_stack(self)  # its faults go with it; undoing them would restart things
        errors: list[str] = []
        self._no_more_control_plane()
        # one signal to all at once, a short grace for the servers that keep nothing on
        # disk (stop_together): the stack's stop costs its slowest server's
        try:
            stop_together([c.process for c in self.components.values()], self.clock)
        except Exception as exc:  # keep going: leaving processes behind is worse
            errors.append(f"stopping the servers: {exc}")
        if self._control_plane is not None:  # its server is gone: it ends at once
            self._control_plane.join(timeout=CONTROL_PLANE_SEED_S)
            self._control_plane = None
        for event in (
            self._control_plane_wanted,
            self._control_plane_done,
            self._control_plane_spawned,
            self._control_plane_stopping,
        ):
            event.clear()
        self.proxies.stop_all()
        if self.balancer is not None:
            self.balancer.stop()
        if self.monitoring is not None:
            self.monitoring.close()
            self.monitoring = None
        pg = self.components.get("postgres")
        if isinstance(pg, LocalPostgres):
            try:
                pg.release_disk()
            except Exception as exc:
                errors.append(f"unmount: {exc}")
        if self.folder is not None:
            release(self.folder)
        self.folder = None
        self._endpoints = None
        if errors:
            raise StackError("stopping the stack: " + "; ".join(errors))

    # -- the Stack protocol ---------------------------------------------------------------
    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise StackError("the stack is not running", hint="call start() first")
        return self._endpoints

    def component(self, name: str) -> Component:
        if name == "aws":  # whoever asks for the control plane gets it up and seeded
            self._await_control_plane()
        try:
            return self.components[name]
        except KeyError:
            raise StackError(
                f"no component {name!r}; this stack has {', '.join(COMPONENTS)}"
            ) from None

    @property
    def postgres(self) -> LocalPostgres:
        component = self.components["postgres"]
        assert isinstance(component, LocalPostgres)
        return component

    @property
    def api(self) -> LocalApi:
        component = self.components["api"]
        assert isinstance(component, LocalApi)
        return component

    @property
    def api_env(self) -> dict[str, str] | None:
        component = self.components.get("api")
        return component.settings if isinstance(component, LocalApi) else None

    def on_fault_event(self, event: str, fault: FaultView, handle: LiveFault | None) -> None:
        """Nothing to do: a local stack records faults in its state file only."""

    def on_step(self, line: int, text: str) -> None:
        """Nothing to do: a local stack audits no step."""

    def on_step_done(self, line: int, outcome: StepOutcome) -> None:
        """Nothing to do: a local stack audits no step."""

    def wait_healthy(self, timeout_s: float = 20.0) -> None:
        from runbook_checks.clock import WaitTimeout, wait_until

        def healthy() -> httpx.Response | None:
            response = httpx.get(
                f"{self.endpoints.api_url}/health", timeout=3, verify=tls_context()
            )
            return response if response.status_code == 200 else None

        try:
            wait_until(
                healthy,
                what="GET /health to answer 200",
                timeout_s=timeout_s,
                transient=(httpx.HTTPError,),
                clock=self.clock,
                interval_s=0.05,
            )
        except WaitTimeout as exc:
            raise self.api.process.failure(f"/health did not turn green: {exc.last!r}") from exc

    def disk(self, name: str) -> Path:
        """The root of the size-limited filesystem that holds `name`'s data."""
        if name != "postgres" or self.postgres.disk_mb is None:
            raise StackError(
                f"{name} has no size-limited disk on this stack",
                hint="disk faults need root (tmpfs mounts)",
            )
        return self.postgres.disk_dir

    def restart_api(self, **env: str) -> None:
        api = self.api
        api.stop()
        if env:
            api.reconfigure(**env)
        api.start()

    # -- API instances behind the balancer ---------------------------------------------
    def _no_more_control_plane(self) -> None:
        """From now on no control plane is spawned; one being spawned is spawned (and
        tracked) when this returns. First thing in a stop."""
        with self._control_plane_lock:
            self._control_plane_stopping.set()
            self._control_plane_wanted.set()

    def _keep_control_plane(self, aws: LocalComponent) -> None:
        """The control plane's thread: once it is wanted, spawn it, bring it up and seed
        it; then stay until the stack stops. The server is spawned on this thread because
        a server dies with the thread that spawned it (PR_SET_PDEATHSIG, process.py):
        this one lives as long as the stack, whichever thread first wanted it."""
        self._control_plane_wanted.wait()
        self._bring_up_control_plane(aws)
        self._control_plane_stopping.wait()

    def _bring_up_control_plane(self, aws: LocalComponent) -> None:
        try:
            try:
                with self._control_plane_lock:
                    if self._control_plane_stopping.is_set():
                        raise StackError("the stack is stopping")
                    aws.spawn()
            finally:
                self._control_plane_spawned.set()
            aws.wait_ready(aws.ready_timeout_s)
            self._seed_control_plane()
            self._aws_bytes_seen = self.proxies.get("aws").stats().bytes_upstream
            if self.balancer is not None:
                self.balancer.follow()
        except BaseException as exc:  # said by the first one who needs the control plane
            self._control_plane_failure = exc
        finally:
            self.proxies.get("aws").release()  # held requests go on (refused, if it failed)
            self._control_plane_done.set()

    def prepare(self, name: str) -> None:
        """The AWS control plane comes up in the background now, not at its first use
        (the others are always up)."""
        if name == "aws":
            self._control_plane_wanted.set()

    @property
    def control_plane_wanted(self) -> bool:
        """Whether the control plane was asked for (by a request, a caller, the backend)."""
        return self._control_plane_wanted.is_set()

    def _await_control_plane(self) -> None:
        """Have the control plane come up (if it is not yet wanted), wait for its start
        and seed; raise what stopped them."""
        if self._control_plane is None:
            return
        self._control_plane_wanted.set()
        aws = self.components["aws"]
        if not self._control_plane_done.wait(aws.ready_timeout_s + CONTROL_PLANE_SEED_S):
            raise StackError(
                "the AWS control plane is still coming up",
                hint=f"read its log: {aws.log_path}",
            )
        if self._control_plane_failure is not None:
            failure = self._control_plane_failure
            if isinstance(failure, ComponentFailed | StackError):
                raise failure
            raise StackError(f"seeding the AWS control plane failed: {failure}") from failure

    @property
    def target_groups(self) -> dict[str, str]:
        """Target group name -> ARN in the control plane (once it is seeded)."""
        self._await_control_plane()
        return self._target_groups

    def _seed_control_plane(self) -> None:
        aws = self.components["aws"]
        assert isinstance(aws, MotoServer)
        self._target_groups = seed_target_groups(aws.url, TARGET_GROUPS)
        register(aws.url, self._target_groups[TARGET_GROUPS.names[0]], self.api.port)

    def _reset_control_plane(self, *, force: bool = False) -> None:
        """Back to the seed (target groups, the API registered) -- only when someone used
        it: every client reaches it through the `aws` proxy, whose byte count says so. One
        that never came up holds nothing."""
        if not self.control_plane_wanted:
            return
        self._await_control_plane()
        used = self.proxies.get("aws").stats().bytes_upstream
        if not force and not self._control_plane_dirty and used == self._aws_bytes_seen:
            return
        aws = self.components["aws"]
        assert isinstance(aws, MotoServer)
        aws.reset_state()
        self._seed_control_plane()
        if self.balancer is not None:
            self.balancer.refresh()
        self._control_plane_dirty = False
        self._aws_bytes_seen = self.proxies.get("aws").stats().bytes_upstream

    def add_api_instance(self, name: str, **env: str) -> LocalApi:
        """Start another API instance (same settings unless overridden); not registered in
        any target group (the runbook's commands or the caller do that)."""
        instance = self._new_api_instance(name, **env)
        instance.start()
        self._monitor_api_instances()
        return instance

    def _new_api_instance(self, name: str, **env: str) -> LocalApi:
        """Another API instance, tracked, not started (a backend overrides this)."""
        assert self.folder is not None
        if name in self.components:
            raise StackError(f"a component named {name!r} exists already")
        self._control_plane_dirty = True  # the balancer's view may change
        instance = LocalApi(
            self.folder / name,
            {**self.api.settings, **env},
            twin=self.kit.twin,
            name=name,
            clock=self.clock,
        )
        self._track(instance)
        return instance

    def add_registered_apis(self, names: Sequence[str]) -> list[LocalApi]:
        """Start instances at once (as a scale-out's pods come up together: each is
        spawned here, on the caller's thread, then all are waited for), register them all
        behind the load balancer, and let it read the control plane once.

        They share the cores while they start, so they share one time budget: as long as
        starting them one after another would have been given (one instance's readiness
        timeout each), not one instance's."""
        instances = [self._new_api_instance(name) for name in names]
        budget = sum(instance.ready_timeout_s for instance in instances)
        deadline = self.clock.monotonic() + budget
        for instance in instances:
            instance.spawn()
        for instance in instances:
            instance.wait_ready(max(deadline - self.clock.monotonic(), MIN_READY_WAIT_S))
        self._instances_added()
        for instance in instances:
            self.register_api(instance, refresh=False)
        if instances and self.balancer is not None:
            self.balancer.refresh()
        return instances

    def _instances_added(self) -> None:
        """Prometheus scrapes the instances added (a backend overrides this)."""
        self._monitor_api_instances()

    def api_fleet(self) -> LocalStack:
        return self

    def servers_ended_unasked(self, besides: Collection[str] = ()) -> list[str]:
        names = [n for n in COMPONENTS if n != "api" and n not in besides]
        return [said for said in map(self._ended_unasked, names) if said is not None]

    def _ended_unasked(self, name: str) -> str | None:
        """How server `name` ended, with its log's last lines, if it ended unasked."""
        component = self.components.get(name)
        if not isinstance(component, LocalComponent) or component.process.ended_unasked() is None:
            return None
        last = component.log_tail(5).strip().replace("\n", " | ")
        return f"{name} {component.process.how_it_ended()} and nobody stopped it" + (
            f" (its log: {last[-300:]})" if last else ""
        )

    def api_instances(self) -> list[LocalApi]:
        return [c for c in self.components.values() if isinstance(c, LocalApi)]

    def register_api(
        self,
        instance: LocalApi,
        group: str = "files-primary",
        *,
        deregister: bool = False,
        refresh: bool = True,
    ) -> None:
        """(De)register `instance` in `group`; with `refresh`, the balancer reads the
        control plane now (else at its next poll, or the caller's refresh)."""
        aws = self.components["aws"]
        assert isinstance(aws, MotoServer)
        self._control_plane_dirty = True
        register(aws.url, self.target_groups[group], instance.port, deregister=deregister)
        if refresh and self.balancer is not None:
            self.balancer.refresh()

    # -- components a scenario adds (a replica, a restored cluster) -----------------------
    def add_component(self, component: LocalComponent) -> None:
        """Track a component started besides the core ones: its PIDs go into the state
        file, and `stop()` (and a sweep after a crash) stops it with the rest."""
        if component.name in self.components:
            raise StackError(
                f"the stack already has a component named {component.name!r}",
                hint="remove_component() it first, or pick another name",
            )
        self._track(component)

    def remove_component(self, name: str) -> None:
        """Stop a component added with `add_component` and forget it (idempotent)."""
        if name in COMPONENTS:
            raise StackError(f"{name} is a core component of the stack; it cannot be removed")
        component = self.components.pop(name, None)
        if component is not None:
            component.stop()
        self._monitor_api_instances()

    def route_database(self, name: str = "postgres") -> int:
        """Point the API's database address (the postgres fault proxy, which dials its
        upstream for every new connection) at the cluster `name`, so the API's DATABASE_URL
        now reaches it; connections already open stay where they are (restart the API to
        drop them). Returns the port now dialled."""
        component = self.components.get(name)
        if not isinstance(component, LocalPostgres):
            raise StackError(
                f"no PostgreSQL cluster named {name!r} in this stack",
                hint="add_component() the cluster before routing to it",
            )
        self.proxies.get("postgres").upstream = ("127.0.0.1", component.port)
        return component.port

    @property
    def database_route(self) -> int:
        """The port the API's database address leads to now."""
        return self.proxies.get("postgres").upstream[1]

    def reset_data(self) -> None:
        """Empty tables, bucket and cache; clear toxics; one API instance behind the
        balancer, with its start settings; the control plane back to its seed."""
        if self.control_plane_wanted:  # (not mistaken for a dead one while it comes up)
            self._await_control_plane()
        self.proxies.clear_all()
        # anything a test left stopped, frozen or dead comes back (asked all at once: a
        # reset between tests costs the slowest answer, not the sum of them); a control
        # plane nobody wanted yet is not started here
        with ThreadPoolExecutor(len(COMPONENTS), thread_name_prefix="reset") as pool:
            ready = dict(zip(COMPONENTS, pool.map(self._ready_or_resumed, COMPONENTS), strict=True))
        for name in [n for n in COMPONENTS if not ready[n]]:
            said = self._ended_unasked(name)
            if said is not None:  # not a test's kill: worth a line in the log
                log.warning("reset: %s; starting it again", said)
            self.components[name].stop()
            self.components[name].start()
            if name == "object_store":  # a new one holds nothing: not even the bucket
                self._ensure_bucket()
            if name == "aws":  # nor a new control plane: seeded again below
                self._control_plane_dirty = True
        for extra in [c for c in self.api_instances() if c.name != "api"]:
            extra.stop()
            del self.components[extra.name]
        if self.monitoring is not None:  # the inbox emptied, the targets: the one instance
            self.monitoring.reset()
            self._monitor_api_instances()
        # a failover or a restore a test left behind: the API's database is the primary
        # again (the API's pool finds its connections to the removed cluster closed and
        # reconnects through the proxy, now to the primary; no restart needed)
        rerouted = self.database_route != self.postgres.port
        if rerouted:
            self.route_database("postgres")
        for name, component in list(self.components.items()):
            if name not in COMPONENTS and isinstance(component, LocalPostgres):
                self.remove_component(name)
        if self.api.settings != self._api_start_settings:
            self.api.stop()
            self.api.configure(self._api_start_settings)
            self.api.start()
        self._reset_control_plane()
        # The upload spool first: bytes queued by the last test that its worker would
        # store later, into the bucket emptied below (an object no row knows of, in
        # the next test's bucket).
        spool = self.api.spool_dir
        for entry in spool.iterdir() if spool.exists() else ():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        # The data, one round trip per component, all at once; and a green /health
        # through the front door (a test that failed mid-fault may have left the API
        # reconnecting to a server that is back: the next test starts from a green
        # /health, not from the last one's debris).
        with ThreadPoolExecutor(4, thread_name_prefix="reset") as pool:
            wiped = [
                pool.submit(self._truncate_tables),
                pool.submit(self._empty_bucket),
                pool.submit(self._flush_cache),
                pool.submit(self.wait_healthy),
            ]
            for done in wiped:
                done.result()

    def _ready_or_resumed(self, name: str) -> bool:
        component = self.components[name]
        if name == "aws" and not self.control_plane_wanted:
            return True
        if component.is_ready():
            return True
        component.resume()  # frozen (SIGSTOP) by a test that did not get to thaw it
        if not component.is_running():
            return False
        # alive but not answering its probe in time: on a starved machine that is a slow
        # server, not a dead one, and a restart would lose what it holds (the control
        # plane's seed, the bucket); it is restarted only if it stays silent
        began = self.clock.monotonic()
        try:
            wait_until(
                component.is_ready,
                what=f"{name} to answer its probe",
                timeout_s=RESET_READY_GRACE_S,
                interval_s=0.1,
                clock=self.clock,
            )
        except WaitTimeout:
            log.warning(
                "reset: %s is running but silent for %gs; restarting it", name, RESET_READY_GRACE_S
            )
            return False
        log.info(
            "reset: %s answered %.1fs after missing its probe", name, self.clock.monotonic() - began
        )
        return True

    def _truncate_tables(self) -> None:
        with self.postgres.admin_connect() as conn:
            if self._tables is None:
                rows = conn.execute(
                    "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'schema_migrations'"
                ).fetchall()
                self._tables = tuple(str(r[0]) for r in rows)
            if self._tables:
                conn.execute(
                    f"TRUNCATE {', '.join(self._tables)} RESTART IDENTITY CASCADE".encode()
                )
            with contextlib.suppress(Exception):
                conn.execute("SELECT pg_stat_statements_reset()")

    def _flush_cache(self) -> None:
        with self.components["redis"].client() as client:  # type: ignore[attr-defined]
            client.flushall()

    def versions(self) -> dict[str, str]:
        from importlib.metadata import version

        monitoring = self.monitoring.versions() if self.monitoring is not None else {}
        return {
            "postgres": self.postgres.install.version,
            "redis": self.components["redis"].version(),  # type: ignore[attr-defined]
            "object_store": f"moto {version('moto')}",
            "aws": f"moto {version('moto')} behind AWS's preconditions (stack/aws_rules.py)",
            "api": self.kit.twin.describe(self.api.settings),
            **monitoring,
        }

    # -- object store ---------------------------------------------------------------------
    def s3(self) -> object:
        """A boto3 S3 client talking to the object store directly."""
        if self._s3_client is None:
            self._s3_client = self.endpoints.boto3_client(
                "s3", BotoConfig(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10)
            )
        return self._s3_client

    def _ensure_bucket(self) -> None:
        client = self.s3()
        with contextlib.suppress(Exception):
            client.create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]

    def _empty_bucket(self) -> None:
        client = self.s3()
        for keys in _object_pages(client):
            client.delete_objects(  # type: ignore[attr-defined]
                Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )


def _object_pages(client: object) -> Iterator[list[str]]:
    paginator = client.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
    for page in paginator.paginate(Bucket=BUCKET):
        keys = [obj["Key"] for obj in page.get("Contents", [])]
        if keys:
            yield keys
