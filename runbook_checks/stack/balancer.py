"""The load balancer in front of the API instances: its targets follow ELBv2 target groups
in the stack's AWS control plane (moto), so the runbook's `aws ... register-targets` /
`deregister-targets` commands really move traffic.

It is a TCP balancer built on the fault proxy: each new connection goes to the next
registered target that passes an HTTP health check (GET /health answering 200), round
robin. Like an AWS load balancer it fails open (all registered targets when none is
healthy), keeps its last known targets when the control plane does not answer, and
closes connections when no target is registered at all.

Every poll (0.5 s) health-checks the targets; the control plane is read again only when
someone may have changed it (the stack's own changes call `refresh()`; anyone else's
pass the `aws` proxy, whose byte counts the stack hands in as `changes`), else every
`REREAD_S`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from runbook_checks.stack import aws_clients
from runbook_checks.stack.base import DUMMY_KEY
from runbook_checks.stack.proxy import FaultProxy
from runbook_checks.tls import tls_context

NO_TARGET = ("127.0.0.1", 1)  # a closed port: the client's connection is closed at once
LOOPBACK_CIDR = "127.0.0.0/16"  # the VPC (and its one subnet) the API instances live in
# With `changes`, the control plane is read again at least this often anyway (a change
# no proxy saw); each read costs moto three requests (on two cores, polling them every
# 0.5 s took ~4% of a core per stack, the balancer's side included)
REREAD_S = 5.0


@dataclass(frozen=True)
class TargetGroups:
    """The names of the groups the listener forwards to, and the VPC they live in."""

    names: tuple[str, ...] = ("files-primary", "files-standby")


class TargetGroupBalancer(FaultProxy):
    def __init__(
        self,
        name: str,
        aws_endpoint: str,
        groups: TargetGroups,
        *,
        poll_interval_s: float = 0.5,
        region: str = "us-east-1",
        changes: Callable[[], object] | None = None,
        reread_s: float = REREAD_S,
    ) -> None:
        """`changes`: a value that changes whenever someone else may have changed the
        control plane (the stack gives its `aws` proxy's byte counts): each poll then
        health-checks the known targets and reads the control plane only when that value
        moved, or `reread_s` after the last read. None: a read every poll."""
        super().__init__(name, NO_TARGET)
        self.mirror_refusal = False  # one dead target must not close the front door
        self._refresh_lock = threading.Lock()  # the poller's and a caller's, one at a time
        self.groups = groups
        self.poll_interval_s = poll_interval_s
        self.changes = changes
        self.reread_s = reread_s
        self._read_token: object = None
        self._read_at: float | None = None
        self.control_plane_reads = 0
        self._aws = (aws_endpoint, region)  # its ELBv2 client: `_elb`, made when first read
        self._registered: tuple[tuple[str, int], ...] = ()
        self._healthy: tuple[tuple[str, int], ...] = ()
        self._cycle: itertools.cycle[tuple[str, int]] | None = None
        self._choice_lock = threading.Lock()
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None

    @functools.cached_property
    def _elb(self) -> Any:
        """The control plane's ELBv2 client, made at the first read of the control plane
        (~0.25 s of CPU, most of it botocore reading the service's model): a stack starts
        its balancer with known targets and reads the control plane only once it is up."""
        return _client("elbv2", *self._aws)

    # FaultProxy reads `self.upstream` for every new connection
    @property
    def upstream(self) -> tuple[str, int]:
        with self._choice_lock:
            pool = self._healthy or self._registered
            if not pool:
                return NO_TARGET
            if self._cycle is None:
                self._cycle = itertools.cycle(pool)
            return next(self._cycle)

    @upstream.setter
    def upstream(self, value: tuple[str, int]) -> None:  # set once by FaultProxy.__init__
        pass

    @property
    def targets(self) -> tuple[tuple[str, int], ...]:
        return self._registered

    @property
    def healthy_targets(self) -> tuple[tuple[str, int], ...]:
        return self._healthy

    def start(self, *, known: tuple[tuple[str, int], ...] | None = None) -> None:
        """Listen. With `known`, route to those targets until `follow()` (the control
        plane may still be coming up); else read them from the control plane and follow
        it from now on."""
        if known is None:
            self.refresh()
        else:
            with self._choice_lock:
                self._registered = known
                self._cycle = None
        super().start()
        if known is None:
            self.follow()

    def follow(self) -> None:
        """Read the targets from the control plane now, and every poll interval after."""
        self.refresh()
        if self._poller is None:
            self._stop_polling.clear()
            self._poller = threading.Thread(
                target=self._poll, name=f"{self.name}-targets", daemon=True
            )
            self._poller.start()

    def stop(self) -> None:
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None
        super().stop()

    def _poll(self) -> None:
        while not self._stop_polling.wait(self.poll_interval_s):
            with contextlib.suppress(Exception):  # keep the last known targets
                if self._may_have_changed():
                    self.refresh()
                else:
                    self.recheck()

    def _may_have_changed(self) -> bool:
        if self.changes is None or self._read_at is None:
            return True
        if time.monotonic() - self._read_at >= self.reread_s:
            return True
        return self.changes() != self._read_token

    def refresh(self) -> None:
        """Read the registered targets from the control plane and health-check them."""
        with self._refresh_lock:  # a slow read must not overwrite a newer one
            # taken before the read: a change whose answer passes the proxy after this
            # moves the value, so the next poll reads again
            token = self.changes() if self.changes is not None else None
            self._apply(self._read_registered())
            self._read_token, self._read_at = token, time.monotonic()
            self.control_plane_reads += 1

    def recheck(self) -> None:
        """Health-check the targets last read (the control plane unchanged since)."""
        with self._refresh_lock:
            self._apply(self._registered)

    def _read_registered(self) -> tuple[tuple[str, int], ...]:
        """The targets registered in the groups now. Groups the control plane does not
        have hold none; a control plane that does not answer (down, or too slow on a
        starved machine) leaves the last known targets, as a load balancer keeps routing
        when its API is unavailable."""
        registered: list[tuple[str, int]] = []
        try:
            found = self._elb.describe_target_groups(Names=list(self.groups.names))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TargetGroupNotFound":
                return self._registered
            found = {"TargetGroups": []}
        except Exception:  # no answer: connection refused, a timeout
            return self._registered
        for group in found.get("TargetGroups", []):
            health = self._elb.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
            for desc in health.get("TargetHealthDescriptions", []):
                target = desc["Target"]
                address = (str(target["Id"]), int(target.get("Port") or group.get("Port", 80)))
                if address not in registered:
                    registered.append(address)
        return tuple(registered)

    def _apply(self, registered: tuple[tuple[str, int], ...]) -> None:
        healthy = tuple(a for a, ok in zip(registered, _check(registered), strict=True) if ok)
        with self._choice_lock:
            if registered != self._registered or healthy != self._healthy:
                self._cycle = None
            self._registered = registered
            self._healthy = healthy


def _check(targets: tuple[tuple[str, int], ...]) -> list[bool]:
    """Each target's health, checked at once (as a load balancer checks each target on
    its own): a round costs the slowest check, not the sum. Under load, an instance whose
    pool is exhausted answers /health only after its pool's wait, and a scale-out to five
    instances read 1-3 s of checks one after another at every registration."""
    if len(targets) <= 1:
        return [_healthy(t) for t in targets]
    with ThreadPoolExecutor(len(targets), thread_name_prefix="health-check") as pool:
        return list(pool.map(_healthy, targets))


def _healthy(address: tuple[str, int]) -> bool:
    try:
        url = f"http://{address[0]}:{address[1]}/health"
        return httpx.get(url, timeout=1.0, verify=tls_context()).status_code == 200
    except httpx.HTTPError:
        return False


@functools.lru_cache(maxsize=32)
def _client(service: str, endpoint: str, region: str) -> Any:
    """One boto3 client per service and endpoint: creating one loads the service model,
    which costs far more than the calls made with it."""
    return aws_clients.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_KEY,  # the embedded control plane is moto
        aws_secret_access_key=DUMMY_KEY,
        config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
    )


def seed_target_groups(
    aws_endpoint: str, groups: TargetGroups, *, region: str = "us-east-1"
) -> dict[str, str]:
    """Create the VPC, its subnet and the target groups in the control plane; name -> ARN.

    The API instances are IP targets on 127.0.0.1: AWS accepts an IP target from a subnet
    of the group's VPC (or a private range, with an Availability Zone), so the VPC has a
    subnet holding 127.0.0.1, as a real one holds its instances' addresses."""
    ec2 = _client("ec2", aws_endpoint, region)
    elb = _client("elbv2", aws_endpoint, region)
    vpc = ec2.create_vpc(CidrBlock=LOOPBACK_CIDR)["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock=LOOPBACK_CIDR)
    arns = {}
    for name in groups.names:
        group = elb.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=80,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/health",
        )
        arns[name] = str(group["TargetGroups"][0]["TargetGroupArn"])
    return arns


def register(
    aws_endpoint: str, arn: str, port: int, *, deregister: bool = False, region: str = "us-east-1"
) -> None:
    elb = _client("elbv2", aws_endpoint, region)
    targets = [{"Id": "127.0.0.1", "Port": port}]
    if deregister:
        elb.deregister_targets(TargetGroupArn=arn, Targets=targets)
    else:
        elb.register_targets(TargetGroupArn=arn, Targets=targets)
