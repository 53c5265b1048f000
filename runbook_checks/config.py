"""One frozen configuration object, folded from CLI flags and ini keys (pytest-postgresql's
pattern): every option is declared once, with one help text, in `OPTIONS`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from runbook_checks.errors import UsageError

BACKENDS = ("local", "docker", "external")
# the docker backend's networking: host (each container binds 127.0.0.1 on a free port in
# the host's namespace), bridge (a network of the stack's own, ports published on
# 127.0.0.1), auto (host where the engine has no network named "bridge", else bridge)
DOCKER_NETWORKS = ("auto", "host", "bridge")


@dataclass(frozen=True)
class Option:
    name: str  # ini key, and the CLI flag as --NAME with dashes
    help: str
    fallback: str  # the built-in default
    env: str = ""  # an environment variable that replaces the built-in default

    @property
    def default(self) -> str:
        """The default in effect: the environment variable's value when it is set."""
        return (os.environ.get(self.env) or self.fallback) if self.env else self.fallback


def _image(component: str, default: str, what: str) -> Option:
    return Option(
        f"image_{component}",
        f"container image of {what} (docker backend; never pulled where pulls are "
        f"disabled: `make images` builds stand-ins)",
        default,
        env=f"RUNBOOK_CHECKS_IMAGE_{component.upper()}",
    )


OPTIONS: tuple[Option, ...] = (
    Option(
        "runbook",
        "the runbook under test (Markdown; default: the one runbook under runbooks/ with a "
        "profile beside it)",
        "",
    ),
    Option(
        "profile",
        "the runbook's profile (TOML: what its hosts, placeholders, services and paths mean, "
        "and its scenarios folder); empty: <runbook>.runbook-checks.toml or "
        "runbook-checks.toml beside the runbook",
        "",
    ),
    Option("backend", f"where the stack runs: {', '.join(BACKENDS)}", "local"),
    Option("evidence_dir", "folder that receives the evidence of each drill", "evidence"),
    Option(
        "pool_size",
        "the database pool size of the service's API in the stack",
        "20",
        env="RUNBOOK_CHECKS_POOL_SIZE",
    ),
    Option(
        "max_recovery_wait_s",
        "how long a drill waits for recovery after the mitigation before calling it not "
        "recovered (capped by the severity's response time and the scenario's own cap)",
        "60",
    ),
    Option(
        "strict_baseline",
        "fail the drill session when a baseline entry of a drill finding matched nothing "
        "although every scenario of its section ran (a fixed defect still acknowledged): "
        "yes or no",
        "no",
    ),
    Option(
        "alert_rules",
        "a Prometheus rule file (YAML) the stack's Prometheus evaluates during drills; "
        "empty: rules derived from the runbook's symptoms (`runbook-checks alerts` prints "
        "them)",
        "",
    ),
    Option(
        "alert_window_s",
        "the rate window of the derived alert rules and symptom probes, and the least time "
        "a drill watches its fault before mitigating (Prometheus scrapes every second)",
        "5",
    ),
    Option(
        "alert_wait_s",
        "how long after the fault takes effect a drill waits for an alert pointing at its section "
        "before calling it missing (capped by the severity's response time)",
        "10",
    ),
    _image("postgres", "postgres:15", "PostgreSQL"),
    _image("object_store", "minio/minio", "the S3 object store"),
    _image("redis", "redis:7", "Redis"),
    _image("aws", "motoserver/moto", "the AWS control plane (moto)"),
    _image("api", "", "the API twin (default: the one its service kit names, twin.image)"),
    Option(
        "docker_network",
        "docker backend networking: host (127.0.0.1 and a free port each, in the host's "
        "namespace), bridge (a network of the stack's own, ports published on 127.0.0.1), "
        "auto (host where the engine has no 'bridge' network, as with dockerd --bridge=none; "
        "else bridge)",
        "auto",
        env="RUNBOOK_CHECKS_DOCKER_NETWORK",
    ),
)
IMAGE_COMPONENTS = ("postgres", "object_store", "redis", "aws", "api")
_IMAGE_DEFAULTS = {o.name: o.fallback for o in OPTIONS if o.name.startswith("image_")}


RUNBOOKS_FOLDER = "runbooks"


def default_runbook(root: Path) -> Path:
    """The runbook when none is named: the one Markdown file under `root/runbooks/` with a
    profile file beside it (`profile.candidates`). With none or several, `runbook.md`
    (which a command then reports missing, saying to name the runbook with --runbook)."""
    from runbook_checks.profile import candidates

    folder = root / RUNBOOKS_FOLDER
    found = [
        md
        for md in (sorted(folder.glob("*.md")) if folder.is_dir() else [])
        if any(p.is_file() and p.name != "pyproject.toml" for p in candidates(md))
    ]
    return found[0] if len(found) == 1 else root / "runbook.md"


@dataclass(frozen=True)
class ImageNames:
    """The container image of each component (docker backend)."""

    postgres: str = _IMAGE_DEFAULTS["image_postgres"]
    object_store: str = _IMAGE_DEFAULTS["image_object_store"]
    redis: str = _IMAGE_DEFAULTS["image_redis"]
    aws: str = _IMAGE_DEFAULTS["image_aws"]
    api: str = _IMAGE_DEFAULTS["image_api"]

    def of(self, component: str) -> str:
        return str(getattr(self, component))


@dataclass(frozen=True)
class ChecksConfig:
    runbook: Path
    backend: str
    evidence_dir: Path
    pool_size: int
    images: ImageNames = field(default_factory=ImageNames)
    docker_network: str = "auto"  # one of DOCKER_NETWORKS
    strict_baseline: bool = False
    max_recovery_wait_s: float = 60.0
    alert_rules: Path | None = None  # None: derived from the runbook
    profile: Path | None = None  # None: found beside the runbook
    alert_window_s: float = 5.0
    alert_wait_s: float = 10.0

    @classmethod
    def from_values(cls, values: dict[str, str], *, root: Path) -> ChecksConfig:
        backend = values["backend"]
        if backend not in BACKENDS:
            raise UsageError(f"--backend {backend!r} is not one of {', '.join(BACKENDS)}")
        try:
            pool = int(values["pool_size"])
            if pool < 1:
                raise ValueError
        except ValueError:
            raise UsageError(
                f"--pool-size {values['pool_size']!r}: expected a whole number >= 1"
            ) from None
        runbook = Path(values["runbook"]) if values["runbook"].strip() else default_runbook(root)
        evidence = Path(values["evidence_dir"])
        defaults = {o.name: o.default for o in OPTIONS}
        images = ImageNames(
            **{
                c: (values.get(f"image_{c}") or defaults[f"image_{c}"]).strip()
                for c in IMAGE_COMPONENTS
            }
        )
        network = (values.get("docker_network") or defaults["docker_network"]).strip().lower()
        if network not in DOCKER_NETWORKS:
            raise UsageError(
                f"--docker-network {network!r} is not one of {', '.join(DOCKER_NETWORKS)}"
            )
        max_wait = _seconds(values, defaults, "max_recovery_wait_s")
        profile = (values.get("profile") or defaults["profile"]).strip()
        profile_path = Path(profile) if profile else None
        if profile_path is not None and not profile_path.is_absolute():
            profile_path = root / profile_path
        rules = (values.get("alert_rules") or defaults["alert_rules"]).strip()
        rules_path = Path(rules) if rules else None
        if rules_path is not None and not rules_path.is_absolute():
            rules_path = root / rules_path
        strict = (values.get("strict_baseline") or defaults["strict_baseline"]).strip().lower()
        if strict not in ("yes", "no", "true", "false", "1", "0"):
            raise UsageError(f"--strict-baseline {strict!r}: expected yes or no")
        return cls(
            runbook=runbook if runbook.is_absolute() else root / runbook,
            backend=backend,
            evidence_dir=evidence if evidence.is_absolute() else root / evidence,
            pool_size=pool,
            images=images,
            docker_network=network,
            strict_baseline=strict in ("yes", "true", "1"),
            max_recovery_wait_s=max_wait,
            alert_rules=rules_path,
            profile=profile_path,
            alert_window_s=_seconds(values, defaults, "alert_window_s", least=2.0),
            alert_wait_s=_seconds(values, defaults, "alert_wait_s"),
        )


def _seconds(
    values: dict[str, str], defaults: dict[str, str], name: str, *, least: float = 0.0
) -> float:
    """A duration option in seconds: more than `least` (and than 0), at most a day."""
    raw = values.get(name) or defaults[name]
    try:
        value = float(raw)
        if not (0 < value <= 24 * 3600 and value >= least):
            raise ValueError
    except ValueError:
        floor = f"at least {least:g}" if least else "more than 0"
        raise UsageError(f"--{name.replace('_', '-')} {raw!r}: expected seconds, {floor}") from None
    return value


class _PytestConfig(Protocol):
    @property
    def rootpath(self) -> Path: ...

    def getoption(self, name: str) -> object: ...

    def getini(self, name: str) -> object: ...


def from_pytest(config: _PytestConfig) -> ChecksConfig:
    values: dict[str, str] = {}
    for option in OPTIONS:
        flag = config.getoption(f"runbook_checks_{option.name}")
        ini = config.getini(f"runbook_checks_{option.name}")
        values[option.name] = str(flag if flag is not None else (ini or option.default))
    return ChecksConfig.from_values(values, root=config.rootpath)
