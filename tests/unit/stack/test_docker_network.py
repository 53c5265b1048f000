"""The docker backend's networking, without an engine: the option, how `auto` resolves,
what the engine is asked for in each mode, and the servers' command lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from files_profile import KIT
from runbook_checks.config import OPTIONS, ChecksConfig
from runbook_checks.errors import StackError, UsageError
from runbook_checks.stack.docker.components import (
    HBA_FILE,
    DockerApi,
    DockerMinio,
    DockerMoto,
    DockerPostgres,
    DockerRedis,
    Placement,
    bridged_hba,
)
from runbook_checks.stack.docker.container import ContainerSpec, Mount
from runbook_checks.stack.docker.engine import DockerClient
from runbook_checks.stack.docker.images import ResolvedImage
from runbook_checks.stack.docker.network import (
    StackNetwork,
    check_gateway_is_local,
    engine_mode,
    gateway_of,
    resolve_mode,
)

DEFAULTS = {o.name: o.fallback for o in OPTIONS}
NET = StackNetwork("rc-stack-t1", "f" * 64, "172.18.0.0/16", "172.18.0.1")


def _image(component: str, name: str, flavour: str) -> ResolvedImage:
    return ResolvedImage(component, name, name, "sha256:" + "0" * 64, flavour)


POSTGRES = _image("postgres", "runbook-checks/postgres:15", "postgres")
REDIS = _image("redis", "runbook-checks/redis:7", "redis")
MOTO = _image("aws", "runbook-checks/moto:dev", "moto")
MINIO = _image("object_store", "minio/minio", "minio")
API = _image("api", "runbook-checks/files-api:dev", "api")


def _placement(network: StackNetwork | None) -> Placement:
    # building a component's container spec does not talk to the engine
    return Placement(cast(DockerClient, None), "stack-t1", {"x": "y"}, network)


# -- the option -------------------------------------------------------------------------


def test_the_option_defaults_to_auto_and_takes_the_three_modes(tmp_path: Path) -> None:
    assert ChecksConfig.from_values(DEFAULTS, root=tmp_path).docker_network == "auto"
    for value, expected in (("host", "host"), ("bridge", "bridge"), (" Bridge ", "bridge")):
        config = ChecksConfig.from_values({**DEFAULTS, "docker_network": value}, root=tmp_path)
        assert config.docker_network == expected


def test_a_bad_mode_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--docker-network 'overlay' is not one of auto"):
        ChecksConfig.from_values({**DEFAULTS, "docker_network": "overlay"}, root=tmp_path)


def test_the_environment_variable_replaces_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (option,) = [o for o in OPTIONS if o.name == "docker_network"]
    assert option.env == "RUNBOOK_CHECKS_DOCKER_NETWORK"
    monkeypatch.setenv("RUNBOOK_CHECKS_DOCKER_NETWORK", "host")
    values = {o.name: o.default for o in OPTIONS}
    assert ChecksConfig.from_values(values, root=tmp_path).docker_network == "host"


def test_the_mode_reaches_the_docker_stack(tmp_path: Path) -> None:
    from runbook_checks.stack import create_stack
    from runbook_checks.stack.docker.stack import DockerStack

    profile = (
        Path(__file__).resolve().parents[3] / "runbooks/files-incident-response.runbook-checks.toml"
    )
    config = ChecksConfig.from_values(
        {**DEFAULTS, "backend": "docker", "docker_network": "bridge", "profile": str(profile)},
        root=tmp_path,
    )
    stack = create_stack(config)  # nothing starts until start()
    assert isinstance(stack, DockerStack)
    assert stack.network_request == "bridge"
    with pytest.raises(UsageError, match="--docker-network"):
        DockerStack(network="macvlan", kit=KIT)


# -- auto ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "networks", "mode"),
    [
        ("auto", ["bridge", "host", "none"], "bridge"),  # ordinary Docker
        ("auto", ["host", "none"], "host"),  # dockerd --bridge=none (these machines)
        ("auto", ["podman"], "host"),
        ("host", ["bridge", "host", "none"], "host"),
        ("host", ["host", "none"], "host"),
        ("bridge", ["bridge", "host", "none", "rc-stack-x"], "bridge"),
    ],
)
def test_auto_is_bridge_only_where_the_engine_has_a_bridge(
    requested: str, networks: list[str], mode: str
) -> None:
    assert resolve_mode(requested, networks) == mode


def test_bridge_is_refused_by_an_engine_set_up_for_host_networking() -> None:
    with pytest.raises(StackError, match="no default bridge network") as caught:
        resolve_mode("bridge", ["host", "none"])
    assert "--docker-network host" in (caught.value.hint or "")
    with pytest.raises(UsageError):
        resolve_mode("overlay", ["bridge"])


@dataclass
class _Network:
    name: str


@dataclass
class _Networks:
    names: list[str]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def list(self, **kwargs: Any) -> list[_Network]:
        self.calls.append(kwargs)
        return [_Network(n) for n in self.names]


@dataclass
class _Client:
    networks: _Networks


def test_auto_asks_the_engine_for_its_networks() -> None:
    assert engine_mode(_Client(_Networks(["bridge", "host", "none"])), "auto") == "bridge"
    assert engine_mode(_Client(_Networks(["host", "none"])), "auto") == "host"


def test_the_gateway_comes_from_the_networks_ipam_config() -> None:
    attrs = {"IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}}
    assert gateway_of(attrs) == ("172.18.0.0/16", "172.18.0.1")
    # an IPv6 pool first, and an engine that does not name the gateway: the first host
    attrs = {"IPAM": {"Config": [{"Subnet": "fd00:1::/64"}, {"Subnet": "10.89.0.0/24"}]}}
    assert gateway_of(attrs) == ("10.89.0.0/24", "10.89.0.1")
    with pytest.raises(StackError, match="no IPv4 subnet"):
        gateway_of({"IPAM": {"Config": None}})


def test_a_gateway_that_is_not_on_this_machine_is_refused_before_any_proxy() -> None:
    # TEST-NET-3: no machine has it; binding it sends nothing
    elsewhere = StackNetwork("rc-x", "0" * 64, "203.0.113.0/24", "203.0.113.1")
    with pytest.raises(StackError, match="not an address of this machine"):
        check_gateway_is_local(elsewhere)
    check_gateway_is_local(StackNetwork("lo", "0" * 64, "127.0.0.0/8", "127.0.0.1"))


# -- what the engine is asked for ------------------------------------------------------


def test_host_networking_asks_for_the_hosts_namespace_and_publishes_nothing() -> None:
    spec = ContainerSpec("rc-t1-redis", "redis:7", ["redis-server"], labels={"a": "b"})
    assert spec.run_kwargs() == {"network_mode": "host", "labels": {"a": "b"}}
    published = ContainerSpec("n", "i", [], published=(1234,))  # no network: still host
    assert "ports" not in published.run_kwargs()


def test_bridged_asks_for_the_stacks_network_and_loopback_only_publishing() -> None:
    spec = ContainerSpec(
        "rc-t1-api", "api", [], labels={"a": "b"}, network=NET.name, published=(4100, 4101)
    )
    kwargs = spec.run_kwargs()
    assert kwargs == {
        "network": "rc-stack-t1",
        "labels": {"a": "b"},
        "ports": {"4100/tcp": ("127.0.0.1", 4100), "4101/tcp": ("127.0.0.1", 4101)},
    }
    assert "network_mode" not in kwargs


# -- the servers' command lines --------------------------------------------------------


def _args(command: Any) -> list[str]:
    return [str(a) for a in command]


def test_host_mode_servers_bind_loopback_as_before(tmp_path: Path) -> None:
    place = _placement(None)
    pg = DockerPostgres(
        tmp_path / "pg", placement=place, image=POSTGRES, password="p" * 12, app_password="a" * 12
    )
    spec = pg.process.spec  # type: ignore[attr-defined]
    assert "listen_addresses=127.0.0.1" in _args(spec.command)
    assert not any(a.startswith("hba_file=") for a in _args(spec.command))
    assert spec.network is None
    assert spec.published == ()
    assert spec.environment["NO_PROXY"] == "127.0.0.1,localhost"
    redis = DockerRedis(tmp_path / "redis", placement=place, image=REDIS)
    assert _args(redis.process.spec.command)[3:5] == ["--bind", "127.0.0.1"]  # type: ignore[attr-defined]
    moto = DockerMoto("aws", tmp_path / "aws", placement=place, image=MOTO)
    assert _args(moto.process.spec.command)[:2] == ["-H", "127.0.0.1"]  # type: ignore[attr-defined]
    api = DockerApi(tmp_path / "api", {"X": "1"}, placement=place, image=API, twin=KIT.twin)
    assert api.process.spec.environment["API_HOST"] == "127.0.0.1"  # type: ignore[attr-defined]


def test_bridged_servers_listen_on_every_address_of_their_namespace_and_publish_their_port(
    tmp_path: Path,
) -> None:
    place = _placement(NET)
    pg = DockerPostgres(
        tmp_path / "pg", placement=place, image=POSTGRES, password="p" * 12, app_password="a" * 12
    )
    spec = pg.process.spec  # type: ignore[attr-defined]
    args = _args(spec.command)
    assert "listen_addresses=0.0.0.0" in args
    assert "listen_addresses=127.0.0.1" not in args
    assert f"hba_file={HBA_FILE}" in args
    assert Mount(tmp_path / "pg" / "pg_hba.conf", HBA_FILE, "ro") in spec.mounts
    assert (spec.network, tuple(spec.published)) == (NET.name, (pg.port,))
    assert spec.environment["NO_PROXY"] == "127.0.0.1,localhost,172.18.0.1"
    redis = DockerRedis(tmp_path / "redis", placement=place, image=REDIS)
    assert _args(redis.process.spec.command)[3:5] == ["--bind", "0.0.0.0"]  # type: ignore[attr-defined]
    assert tuple(redis.process.spec.published) == (redis.port,)  # type: ignore[attr-defined]
    moto = DockerMoto("aws", tmp_path / "aws", placement=place, image=MOTO)
    assert _args(moto.process.spec.command) == ["-H", "0.0.0.0", "-p", str(moto.port)]  # type: ignore[attr-defined]
    minio = DockerMinio(tmp_path / "store", placement=place, image=MINIO)
    command = _args(minio.process.spec.command)  # type: ignore[attr-defined]
    assert command[command.index("--address") + 1] == f"0.0.0.0:{minio.port}"
    assert tuple(minio.process.spec.published) == (minio.port,)  # type: ignore[attr-defined]
    api = DockerApi(tmp_path / "api", {"X": "1"}, placement=place, image=API, twin=KIT.twin)
    api_spec = api.process.spec  # type: ignore[attr-defined]
    assert api_spec.environment["API_HOST"] == "0.0.0.0"
    assert api_spec.environment["X"] == "1"
    assert (api_spec.network, tuple(api_spec.published)) == (NET.name, (api.port,))


def test_the_bridged_pg_hba_admits_the_networks_clients_with_a_password() -> None:
    lines = [line.split() for line in bridged_hba("172.18.0.0/16").splitlines()]
    rules = [line for line in lines if line and not line[0].startswith("#")]
    assert ["host", "all", "all", "172.18.0.0/16", "scram-sha-256"] in rules
    assert ["host", "replication", "all", "172.18.0.0/16", "scram-sha-256"] in rules
    assert ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"] in rules
    assert not [r for r in rules if r[0] == "host" and r[-1] in ("trust", "password", "md5")]


def test_the_local_stack_gives_the_api_its_proxies_on_the_loopback() -> None:
    from runbook_checks.stack.docker.stack import DockerStack
    from runbook_checks.stack.local import LocalStack

    assert LocalStack(kit=KIT)._api_proxy_host() == "127.0.0.1"
    docker = DockerStack(network="bridge", kit=KIT)
    assert docker._api_proxy_host() == "127.0.0.1"  # no network yet
    docker.network = NET
    assert docker._api_proxy_host() == "172.18.0.1"


# -- leftovers -------------------------------------------------------------------------


@dataclass
class _LabelledNetwork:
    name: str
    attrs: dict[str, Any]
    removed: bool = False

    def remove(self) -> None:
        self.removed = True


@dataclass
class _Listing:
    items: list[Any]
    filters: list[Any] = field(default_factory=list)

    def list(self, **kwargs: Any) -> list[Any]:
        self.filters.append(kwargs.get("filters"))
        return list(self.items)


def test_the_sweep_removes_the_networks_of_dead_drills_and_spares_live_ones(
    tmp_path: Path,
) -> None:
    pytest.importorskip("docker", reason="the docker extra is not installed")
    import subprocess
    import sys

    from runbook_checks.stack.docker import labels

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = _LabelledNetwork(
        "rc-stack-dead",
        {
            "Labels": {
                **labels.owner_labels("stack-dead", tmp_path),
                labels.OWNER_PID_LABEL: str(dead.pid),
                labels.OWNER_START_LABEL: "0",
            }
        },
    )
    live = _LabelledNetwork(
        "rc-stack-live", {"Labels": labels.owner_labels("stack-live", tmp_path)}
    )
    networks = _Listing([orphan, live])
    client = type("Client", (), {"containers": _Listing([]), "networks": networks})()
    removed = labels.sweep_containers(client)
    assert removed.networks == ("rc-stack-dead",)
    assert (orphan.removed, live.removed) == (True, False)
    assert networks.filters == [{"label": labels.STACK_LABEL}]
    # a stack's own stop (and its reaper) removes its network whoever owns it
    networks.items = [live]
    assert labels.remove_containers(client, "stack-live").networks == ("rc-stack-live",)
    assert networks.filters[-1] == {"label": f"{labels.STACK_LABEL}=stack-live"}
