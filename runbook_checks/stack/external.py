"""The external backend: an existing environment (staging), given by URLs in a config file.

Nothing of it is ours: no process to kill, no disk to fill, no settings to change, no
tables to truncate. So this backend
- refuses an environment whose name or hosts look like production, unless its config
  carries an explicit override (`production_override = "<its name>"`, or the environment
  variable RUNBOOK_CHECKS_ALLOW_PRODUCTION set to its name);
- offers only what is safe there (`safety.policy`): data faults on share links and files
  of dedicated test accounts, client faults (uploads by drill users), load with a hard
  stop (a stop condition must be configured), and network faults through the fault proxy
  where the environment routes through one (`[proxy.NAME]`, run by this process);
  destructive kinds only where the config opts in to them by kind;
- writes every action to an audit log (`<evidence>/audit/<name>.jsonl`) BEFORE it
  happens, and what was refused;
- polls its stop conditions while faults are live; one crossing its limit reverts every
  fault at once and aborts the drill (`safety.guard`);
- records faults in a state folder of its own, so that a drill killed with SIGKILL has
  its fault sessions ended there by the next start or `runbook-checks cleanup`.

The config file (TOML; `${VAR}` in a value is taken from the environment):

    name = "staging-eu"
    api_url = "https://files.staging.internal"
    database_url = "postgresql://ops:${DB_PASSWORD}@db.staging.internal:5432/files"
    admin_token = "${FILES_ADMIN_TOKEN}"
    # optional: admin_database_url, s3_endpoint, s3_bucket, redis_url, aws_endpoint,
    # aws_region, test_account_domain (default "drill.test"), and the keys S3 and AWS
    # requests are signed with: s3_access_key, s3_secret_key, aws_access_key,
    # aws_secret_key (default: moto's dummy "testing"; secrets as "${VAR}")

    [safety]
    destructive_faults = ["long-running-query"]   # opt-in, by fault kind
    production_override = ""                      # the name, to allow a prod-like one

    [proxy.postgres]            # the environment's API reaches its database through here
    listen = "127.0.0.1:15432"
    upstream = "db.staging.internal:5432"

    [[stop_conditions]]
    metric = "health_error_rate"    # or "p95_latency_ms"
    limit = 0.5
    window = 10
    interval_s = 0.5
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, cast

import httpx
import psycopg
from psycopg import sql

from runbook_checks.clock import SYSTEM_CLOCK, Clock, WaitTimeout, wait_until
from runbook_checks.errors import FaultError, StackError, UsageError
from runbook_checks.redact import Redactor
from runbook_checks.safety.audit import AuditLog
from runbook_checks.safety.guard import Guard, StopCondition, Trip, abort_thread, run_revert
from runbook_checks.safety.policy import Risk, production_signs, risk_of
from runbook_checks.service import ServiceKit, load_kit
from runbook_checks.stack.base import (
    COMPONENTS,
    DUMMY_KEY,
    Capability,
    Component,
    Endpoints,
    StepOutcome,
    stack_redactor,
)
from runbook_checks.stack.leftovers import StateFile, sweep, work_root
from runbook_checks.stack.live import ACTIVE, FaultView, LiveFault
from runbook_checks.stack.proxy import FaultProxy, ProxySet
from runbook_checks.tls import tls_context

if TYPE_CHECKING:
    from runbook_checks.stack.base import Stack
    from runbook_checks.stack.monitoring import Monitoring

ENV_VAR = "RUNBOOK_CHECKS_ENVIRONMENT"
DEFAULT_FILE = "runbook-checks.environment.toml"
OVERRIDE_VAR = "RUNBOOK_CHECKS_ALLOW_PRODUCTION"
FAULT_APP_PREFIX = "runbook-checks-fault"  # faults.database names its sessions so
AUDIT_POINTER = "audit.path"  # in the state folder: where this drill's audit log is
STARTED_AT = "started_at"  # in the state folder: the database's now() when the drill began
KIT_POINTER = "kit.module"  # in the state folder: the module of the drill's service kit
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def environment_file(profile_environment: Path | None = None) -> Path:
    """The config file of `--backend external`: $RUNBOOK_CHECKS_ENVIRONMENT, else the one
    the runbook's profile names (`[profile] environment`), else
    ./runbook-checks.environment.toml."""
    return Path(os.environ.get(ENV_VAR) or profile_environment or DEFAULT_FILE)


# ------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class ProxyRoute:
    name: str  # the dependency ("postgres", "object_store", "redis")
    listen: tuple[str, int]
    upstream: tuple[str, int]


@dataclass(frozen=True)
class EnvironmentConfig:
    path: Path
    name: str
    api_url: str
    database_url: str
    admin_token: str
    admin_database_url: str = ""
    s3_endpoint: str = ""
    s3_bucket: str = "files"
    redis_url: str = ""
    aws_endpoint: str = ""
    aws_region: str = "us-east-1"
    # how S3 and AWS requests are signed (write "${VAR}" to take a secret from the
    # environment); the defaults are the dummy ones moto accepts
    s3_access_key: str = DUMMY_KEY
    s3_secret_key: str = DUMMY_KEY
    aws_access_key: str = DUMMY_KEY
    aws_secret_key: str = DUMMY_KEY
    test_account_domain: str = "drill.test"
    destructive_faults: frozenset[str] = frozenset()
    production_override: str = ""
    proxies: tuple[ProxyRoute, ...] = ()
    stop_conditions: tuple[StopCondition, ...] = ()

    @classmethod
    def load(cls, path: Path) -> EnvironmentConfig:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                f"{path}: no such environment file",
                hint=f"write one (see runbook_checks/stack/external.py) and point {ENV_VAR} "
                "at it, or use --backend local",
            ) from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: not a readable TOML environment file: {exc}") from None
        return cls.parse(data, path)

    @classmethod
    def parse(cls, data: Mapping[str, object], path: Path) -> EnvironmentConfig:
        def text(key: str, default: str | None = None, table: Mapping[str, object] = data) -> str:
            value = table.get(key, default)
            if value is None:
                raise UsageError(f"{path}: `{key}` is required")
            if not isinstance(value, str):
                raise UsageError(f"{path}: `{key}` must be a string, got {value!r}")
            return _VAR.sub(lambda m: _env(path, key, m.group(1)), value)

        safety = data.get("safety", {})
        if not isinstance(safety, dict):
            raise UsageError(f"{path}: [safety] must be a table")
        destructive = safety.get("destructive_faults", [])
        if not isinstance(destructive, list) or not all(isinstance(k, str) for k in destructive):
            raise UsageError(f"{path}: safety.destructive_faults must be a list of fault kinds")
        return cls(
            path=path.resolve(),
            name=text("name"),
            api_url=text("api_url").rstrip("/"),
            database_url=text("database_url"),
            admin_token=text("admin_token"),
            admin_database_url=text("admin_database_url", ""),
            s3_endpoint=text("s3_endpoint", ""),
            s3_bucket=text("s3_bucket", "files"),
            redis_url=text("redis_url", ""),
            aws_endpoint=text("aws_endpoint", ""),
            aws_region=text("aws_region", "us-east-1"),
            s3_access_key=text("s3_access_key", DUMMY_KEY),
            s3_secret_key=text("s3_secret_key", DUMMY_KEY),
            aws_access_key=text("aws_access_key", DUMMY_KEY),
            aws_secret_key=text("aws_secret_key", DUMMY_KEY),
            test_account_domain=text("test_account_domain", "drill.test").lstrip("@"),
            destructive_faults=frozenset(destructive),
            production_override=text("production_override", "", safety),
            proxies=_proxies(data.get("proxy", {}), path),
            stop_conditions=_stop_conditions(data.get("stop_conditions", []), path),
        )

    def addresses(self) -> dict[str, str]:
        """Every address of the environment, by what it is (for the production check)."""
        found = {
            "API": self.api_url,
            "database": self.database_url,
            "admin database": self.admin_database_url,
            "object store": self.s3_endpoint,
            "Redis": self.redis_url,
            "AWS": self.aws_endpoint,
        }
        for route in self.proxies:
            found[f"{route.name} proxy upstream"] = f"{route.upstream[0]}:{route.upstream[1]}"
        return {k: v for k, v in found.items() if v}

    def redactor(self) -> Redactor:
        return Redactor.for_values(
            {"ADMIN_TOKEN": self.admin_token},
            self.admin_token,
            self.database_url,
            self.admin_database_url,
            self.redis_url,
            *(key for key in (self.s3_secret_key, self.aws_secret_key) if key != DUMMY_KEY),
        )


def _env(path: Path, key: str, name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise UsageError(f"{path}: `{key}` uses ${{{name}}}, which is not set in the environment")
    return value


def _address(value: object, what: str, path: Path) -> tuple[str, int]:
    if isinstance(value, str) and ":" in value:
        host, _, port = value.rpartition(":")
        if port.isdigit():
            return host.strip("[]"), int(port)
    raise UsageError(f"{path}: {what} must be 'host:port', got {value!r}")


def _proxies(table: object, path: Path) -> tuple[ProxyRoute, ...]:
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [proxy] must be a table of [proxy.NAME] tables")
    routes = []
    for name, spec in table.items():
        if name not in ("postgres", "object_store", "redis") or not isinstance(spec, dict):
            raise UsageError(
                f"{path}: [proxy.{name}]: expected one of postgres, object_store, redis, "
                "with listen = 'host:port' and upstream = 'host:port'"
            )
        routes.append(
            ProxyRoute(
                name,
                _address(spec.get("listen"), f"proxy.{name}.listen", path),
                _address(spec.get("upstream"), f"proxy.{name}.upstream", path),
            )
        )
    return tuple(routes)


def _stop_conditions(items: object, path: Path) -> tuple[StopCondition, ...]:
    if not isinstance(items, list):
        raise UsageError(f"{path}: stop_conditions must be an array of tables")
    conditions = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise UsageError(f"{path}: stop_conditions[{index}] must be a table")
        try:
            conditions.append(StopCondition(**item))
        except TypeError as exc:
            raise UsageError(f"{path}: stop_conditions[{index}]: {exc}") from None
        except UsageError as exc:
            raise UsageError(
                f"{path}: stop_conditions[{index}]: {exc.message}", hint=exc.hint
            ) from None
    return tuple(conditions)


# ------------------------------------------------------------------------------ components


class RemoteComponent:
    """A server of the environment: probed, never started, stopped or signalled."""

    def __init__(self, name: str, stack: ExternalStack) -> None:
        self.name = name
        self._stack = stack

    def _refuse(self, action: str) -> StackError:
        self._stack.audit.refused(action, self.name, "not ours to control")
        return StackError(
            f"{action} {self.name}: the external backend does not control the environment's "
            "processes",
            hint="run process faults on the local or docker backend",
        )

    def start(self) -> None:
        raise self._refuse("start")

    def stop(self) -> None:
        raise self._refuse("stop")

    def kill(self) -> None:
        raise self._refuse("kill")

    def pause(self) -> None:
        raise self._refuse("pause")

    def resume(self) -> None:
        raise self._refuse("resume")

    def restart(self) -> None:
        raise self._refuse("restart")

    def is_running(self) -> bool:
        return self.is_ready()

    def is_ready(self) -> bool:
        try:
            if self.name == "api":
                return httpx.get(
                    f"{self._stack.config.api_url}/health", timeout=2, verify=tls_context()
                ).is_success
            if self.name == "postgres":
                with psycopg.connect(self._stack.config.database_url, connect_timeout=2) as c:
                    c.execute("SELECT 1")
                return True
        except (httpx.HTTPError, psycopg.Error):
            return False
        return True  # not probed: an object store or cache we only reach through the API

    def wait_ready(self, timeout_s: float = 15.0) -> None:
        wait_until(self.is_ready, what=f"{self.name} to answer", timeout_s=timeout_s)

    def log_tail(self, lines: int = 40) -> str:
        return ""

    @property
    def pid(self) -> int | None:
        return None


# ------------------------------------------------------------------------------ the stack


@dataclass
class _Live:
    guard: Guard | None = None
    drill_thread: int | None = None
    trip: Trip | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ExternalStack:
    """An existing environment behind the Stack protocol, with the guards above."""

    backend = "external"
    monitoring: Monitoring | None = None
    monitoring_missing = "the external backend has no Prometheus of the project's"

    def __init__(
        self,
        config: EnvironmentConfig,
        *,
        kit: ServiceKit,
        evidence_dir: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.kit = kit
        self.clock = clock
        self.capabilities = frozenset({Capability.DATA}) | (
            frozenset({Capability.PROXY}) if config.proxies else frozenset()
        )
        self.proxies = ProxySet()
        self.folder: Path | None = None
        self.state: StateFile | None = None
        self._endpoints: Endpoints | None = None
        self._started_at: object = None  # the database's now() at start: our users since
        self._live = _Live()
        evidence = Path(evidence_dir) if evidence_dir is not None else Path("evidence")
        self.audit = AuditLog(
            evidence.resolve() / "audit" / f"{_safe_name(config.name)}.jsonl",
            config.name,
            config.redactor(),
        )

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        kit: ServiceKit,
        evidence_dir: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> ExternalStack:
        return cls(EnvironmentConfig.load(path), kit=kit, evidence_dir=evidence_dir, clock=clock)

    def __enter__(self) -> ExternalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- life cycle ----------------------------------------------------------------------
    def check_not_production(self) -> None:
        """Refuse (UsageError) an environment that looks like production, unless its
        config or RUNBOOK_CHECKS_ALLOW_PRODUCTION names it as allowed."""
        signs = production_signs(self.config.name, self.config.addresses())
        if not signs:
            return
        allowed = {self.config.production_override, os.environ.get(OVERRIDE_VAR, "")}
        if self.config.name in allowed:
            self.audit.write(
                "note",
                "production override",
                self.config.name,
                "looks like production (" + "; ".join(signs) + "); allowed by "
                "its explicit override",
            )
            return
        self.audit.refused("start", self.config.name, "looks like production: " + "; ".join(signs))
        raise UsageError(
            f"environment {self.config.name!r} ({self.config.path}) looks like production: "
            + "; ".join(signs)
            + ". Drills inject real faults, so it is refused",
            hint="point the drill at a staging environment; if this one really is meant to "
            f"be drilled, set production_override = {self.config.name!r} in its [safety] "
            f"table (or {OVERRIDE_VAR}={self.config.name})",
        )

    def start(self) -> None:
        if self._endpoints is not None:
            return
        self.audit.before("start", self.config.name, f"config {self.config.path}")
        self.check_not_production()
        sweep()  # faults that dead drills left here (and elsewhere) go first
        self.folder = Path(
            tempfile.mkdtemp(prefix=f"external-{_safe_name(self.config.name)}-", dir=work_root())
        )
        self.state = StateFile(self.folder, environment=str(self.config.path))
        self.state.write()
        (self.folder / AUDIT_POINTER).write_text(str(self.audit.path))
        # a cleanup after this process died reaches the tables through the same kit
        (self.folder / KIT_POINTER).write_text(type(self.kit).__module__)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        assert self.folder is not None
        for route in self.config.proxies:
            self.audit.before(
                "start proxy",
                route.name,
                f"{route.listen[0]}:{route.listen[1]} -> {route.upstream[0]}:{route.upstream[1]}",
            )
            proxy = FaultProxy(
                route.name, route.upstream, listen_host=route.listen[0], listen_port=route.listen[1]
            )
            self.proxies.add(proxy)
            proxy.start()
        try:
            with psycopg.connect(self.config.database_url, connect_timeout=5) as conn:
                row = conn.execute("SELECT now()").fetchone()
        except psycopg.Error as exc:
            raise StackError(
                f"environment {self.config.name!r}: cannot reach its database: "
                f"{self.audit.redactor.text(str(exc)).strip()}",
                hint=f"check database_url in {self.config.path}",
            ) from None
        self._started_at = row[0] if row else None
        if self._started_at is not None:  # for a cleanup after this drill was killed
            (self.folder / STARTED_AT).write_text(str(self._started_at))
        log_dir = self.folder / "logs"  # the environment's logs are not ours to read
        log_dir.mkdir()
        cfg = self.config
        self._endpoints = Endpoints(
            api_url=cfg.api_url,
            database_url=cfg.database_url,
            app_database_url=cfg.database_url,
            admin_database_url=cfg.admin_database_url,
            s3_endpoint=cfg.s3_endpoint,
            s3_bucket=cfg.s3_bucket,
            redis_url=cfg.redis_url,
            aws_endpoint=cfg.aws_endpoint,
            aws_region=cfg.aws_region,
            s3_access_key=cfg.s3_access_key,
            s3_secret_key=cfg.s3_secret_key,
            aws_access_key=cfg.aws_access_key,
            aws_secret_key=cfg.aws_secret_key,
            admin_token=cfg.admin_token,
            log_dir=log_dir,
            api_instance_url=cfg.api_url,
        )
        self.audit = AuditLog(
            self.audit.path, cfg.name, self.audit.redactor.merged(stack_redactor(self._endpoints))
        )
        self.audit.after("start", cfg.name, "reachable")

    def stop(self) -> None:
        """Revert this stack's live faults (the environment outlives us), stop the guard
        and the proxies, remove the state folder. Idempotent."""
        errors: list[str] = []
        live = ACTIVE.on(self)
        if live:
            self.audit.before("stop", self.config.name, f"reverting {len(live)} live fault(s)")
        for handle in live:
            try:
                handle.revert()
            except Exception as exc:
                errors.append(str(exc))
        self._stop_guard()
        self.proxies.stop_all()
        if self._endpoints is not None:  # what the drills created goes with them
            try:
                self._remove_drill_users("stop")
            except Exception as exc:
                errors.append(f"removing the drills' users: {exc}")
        if self.folder is not None and not errors:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._endpoints is not None:
            self.audit.after(
                "stop", self.config.name, "; ".join(errors) if errors else "nothing left injected"
            )
        self.folder = None
        self._endpoints = None
        if errors:
            raise StackError(
                "stopping the external stack: " + "; ".join(errors),
                hint="run `runbook-checks cleanup`",
            )

    # -- the Stack protocol ----------------------------------------------------------------
    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise StackError("the external stack is not started", hint="call start() first")
        return self._endpoints

    def component(self, name: str) -> Component:
        if name not in COMPONENTS:
            raise StackError(f"no component {name!r}; this stack has {', '.join(COMPONENTS)}")
        return RemoteComponent(name, self)

    def reset_data(self) -> None:
        """Remove what drills created here: users of the test-account domain created since
        this stack started (their files, shares and objects go with them); clear the
        proxies' toxics. Nothing else is touched."""
        self.proxies.clear_all()
        self._remove_drill_users("reset data")

    def _remove_drill_users(self, why: str) -> None:
        from runbook_checks.stack.accounts import remove_users

        domain = self.config.test_account_domain
        self.audit.before(
            why, self.config.name, f"remove @{domain} users created since the drill started"
        )
        with psycopg.connect(self.config.database_url, connect_timeout=5) as conn:
            rows = conn.execute(
                sql.SQL("SELECT id FROM {} WHERE email LIKE %s AND created_at >= %s").format(
                    sql.Identifier(self.kit.data.users)
                ),
                (f"%@{domain}", self._started_at),
            ).fetchall()
        done = remove_users(cast("Stack", self), [r[0] for r in rows])
        self.audit.after(why, self.config.name, done)

    def restart_api(self, **env: str) -> None:
        self.audit.refused("restart api", self.config.name, f"settings {sorted(env)}")
        raise StackError(
            "the external backend cannot restart the environment's API",
            hint="faults that need RECONFIGURE run on the local backend",
        )

    def prepare(self, name: str) -> None:
        """Nothing: the environment's components are up (or not) on their own."""

    def versions(self) -> dict[str, str]:
        found = {"environment": self.config.name}
        with contextlib.suppress(httpx.HTTPError, ValueError):
            body = httpx.get(
                f"{self.config.api_url}/health", timeout=3, verify=tls_context()
            ).json()
            found["api"] = f"{self.kit.twin.label} {body.get('release', '?')}"
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.config.database_url, connect_timeout=3) as conn,
        ):
            row = conn.execute("SHOW server_version").fetchone()
            found["postgres"] = str(row[0]) if row else "?"
        return found

    def disk(self, name: str) -> Path:
        raise StackError(
            f"{name}'s disk is not ours on the external backend",
            hint="disk faults run on the local backend",
        )

    def wait_healthy(self, timeout_s: float = 20.0) -> None:
        def healthy() -> bool:
            url = f"{self.config.api_url}/health"
            return httpx.get(url, timeout=3, verify=tls_context()).status_code == 200

        try:
            wait_until(
                healthy,
                what=f"GET {self.config.api_url}/health to answer 200",
                timeout_s=timeout_s,
                transient=(httpx.HTTPError,),
                clock=self.clock,
            )
        except WaitTimeout as exc:
            raise StackError(f"environment {self.config.name!r} is not healthy: {exc}") from exc

    def api_fleet(self) -> None:
        """None: the environment's API instances are not ours to scale."""
        return None

    def servers_ended_unasked(self, besides: Collection[str] = ()) -> list[str]:
        """None known: the environment's servers are not ours to watch."""
        return []

    @property
    def api_env(self) -> dict[str, str] | None:
        """None: the environment's API is not started by us."""
        return None

    def on_step(self, line: int, text: str) -> None:
        """Audit a runbook command before it runs against the environment (for the step
        executors to call; the audit redacts it)."""
        self.audit.before("run step", f"runbook line {line}", text)

    def on_step_done(self, line: int, result: StepOutcome) -> None:
        """Audit what a runbook command reached and how it ended: `refused` with the
        reason when an executor refused its host, else `after` with the status, the
        command as run and how its hosts were mapped (the audit redacts it)."""
        if result.error.startswith("refused:"):
            self.audit.refused("run step", f"runbook line {line}", result.error)
            return
        mapped = "; ".join(n for n in result.notes if " -> " in n)
        detail = f"{result.status}: {result.executed}" + (f" ({mapped})" if mapped else "")
        self.audit.after("run step", f"runbook line {line}", detail)

    # -- faults: policy, audit, stop conditions (called by faults.base) -----------------
    def on_fault_event(self, event: str, fault: FaultView, handle: LiveFault | None) -> None:
        if event == "injecting":
            self._before_inject(fault)
        elif event == "reverting":
            self.audit.before("revert", fault.kind, fault.describe())
        elif event == "reverted":
            self.audit.after("revert", fault.kind, fault.describe())
            if not ACTIVE.on(self):
                self._stop_guard()

    def refusal(self, fault: FaultView) -> str | None:
        """Why `fault` may not run here (None: it may)."""
        if self._live.trip is not None:
            return f"this drill was stopped: {self._live.trip.describe()}"
        parts = getattr(fault, "parts", None)
        if isinstance(parts, tuple):
            for part in parts:
                reason = self.refusal(part)
                if reason:
                    return reason
            return None
        risk = risk_of(fault.kind)
        if risk is Risk.DESTRUCTIVE and fault.kind not in self.config.destructive_faults:
            return (
                f"{fault.kind} is destructive on a shared environment; "
                f"{self.config.name!r} has not opted in to it"
            )
        if risk is Risk.BOUNDED_LOAD and not self.config.stop_conditions:
            return (
                f"{fault.kind} needs a hard stop here: configure a stop condition "
                "([[stop_conditions]]) for this environment"
            )
        if risk is Risk.TEST_ACCOUNTS:
            return self._not_a_test_account(fault)
        return None

    def _before_inject(self, fault: FaultView) -> None:
        reason = self.refusal(fault)
        if reason is not None:
            self.audit.refused("inject", fault.kind, f"{fault.describe()}: {reason}")
            raise FaultError(
                f"refused on environment {self.config.name!r}: {reason}",
                hint=f"opt in per environment in {self.config.path} ([safety] "
                "destructive_faults), or run it on the local backend",
            )
        self.audit.before("inject", fault.kind, fault.describe())
        self._start_guard()

    def _not_a_test_account(self, fault: FaultView) -> str | None:
        token = getattr(fault, "token", None)
        file_id = getattr(fault, "file_id", None)
        if token is None and file_id is None:
            return f"{fault.kind}: no share token or file id to check the owner of"
        data = self.kit.data
        query = (
            sql.SQL(
                "SELECT u.email FROM {shares} s JOIN {objects} f ON f.id = s.file_id "
                "JOIN {users} u ON u.id = f.user_id WHERE s.token = %s"
            )
            if token is not None
            else sql.SQL(
                "SELECT u.email FROM {objects} f JOIN {users} u ON u.id = f.user_id "
                "WHERE f.id::text = %s"
            )
        ).format(
            shares=sql.Identifier(data.shares),
            objects=sql.Identifier(data.objects),
            users=sql.Identifier(data.users),
        )
        with psycopg.connect(self.config.database_url, connect_timeout=5) as conn:
            row = conn.execute(query, (str(token if token is not None else file_id),)).fetchone()
        owner = str(row[0]) if row else ""
        if not owner.lower().endswith("@" + self.config.test_account_domain.lower()):
            whose = f"belongs to {owner}" if owner else "was not found"
            return (
                f"{fault.kind} acts only on dedicated test accounts "
                f"(@{self.config.test_account_domain}); its target {whose}"
            )
        return None

    # -- stop conditions -------------------------------------------------------------------
    def _start_guard(self) -> None:
        if not self.config.stop_conditions:
            return
        with self._live.lock:
            self._live.drill_thread = threading.get_ident()
            if self._live.guard is None or not self._live.guard.running:
                self._live.guard = Guard(
                    self.config.api_url,
                    self.config.stop_conditions,
                    self._tripped,
                    clock=self.clock,
                )
                self._live.guard.start()

    def _stop_guard(self) -> None:
        with self._live.lock:
            guard, self._live.guard = self._live.guard, None
        if guard is not None:
            guard.stop()

    @property
    def trip(self) -> Trip | None:
        """The stop condition that stopped this drill, if one did."""
        return self._live.trip

    def _tripped(self, trip: Trip) -> None:
        """On the guard's thread: revert everything at once, then abort the drill."""
        self._live.trip = trip
        self.audit.write(
            "refused",
            "stop condition",
            self.config.name,
            trip.describe() + "; reverting every live fault and aborting",
        )

        def revert_mine() -> None:
            for handle in ACTIVE.on(self):
                with contextlib.suppress(Exception):
                    handle.revert()

        run_revert(revert_mine)
        self.audit.after("stop condition", self.config.name, "faults reverted")
        if self._live.drill_thread is not None:
            abort_thread(self._live.drill_thread, trip.describe())


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "environment"


def revert_leftover_faults(folder: Path, environment: Path, kinds: list[str]) -> list[str]:
    """For `stack.leftovers`: undo what a dead drill left on an external environment: end
    its faults' database sessions, and remove the test-account users it created (with the
    files, shares and rows its data faults changed). Returns the problems ([] when done)."""
    try:
        config = EnvironmentConfig.load(environment)
    except UsageError as exc:
        return [f"faults {', '.join(kinds)} on the environment of {environment}: {exc.message}"]
    pointer = folder / AUDIT_POINTER
    audit_path = (
        Path(pointer.read_text().strip())
        if pointer.exists()
        else Path("evidence") / "audit" / (_safe_name(config.name) + ".jsonl")
    )
    audit = AuditLog(audit_path, config.name, config.redactor())
    names = [f"{FAULT_APP_PREFIX}:{kind}" for kind in kinds]
    audit.before(
        "cleanup",
        config.name,
        f"a dead drill left {', '.join(kinds)}: terminating sessions {names}",
    )
    url = config.admin_database_url or config.database_url
    try:
        with psycopg.connect(
            url, autocommit=True, connect_timeout=5, application_name="runbook-checks-cleanup"
        ) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = ANY(%s) AND pid <> pg_backend_pid()",
                (names,),
            ).fetchall()
        audit.after("cleanup", config.name, f"terminated {len(rows)} session(s)")
        started = folder / STARTED_AT
        if started.exists():
            audit.before(
                "cleanup",
                config.name,
                f"remove @{config.test_account_domain} users the dead drill created",
            )
            kit = load_kit(
                (folder / KIT_POINTER).read_text().strip(), where=str(folder / KIT_POINTER)
            )
            audit.after(
                "cleanup", config.name, _remove_users_since(config, kit, started.read_text())
            )
    except Exception as exc:  # psycopg, boto3: keep the folder, say why
        problem = (
            f"cannot clean up after the dead drill on {config.name!r}: "
            f"{config.redactor().text(str(exc)).strip()}"
        )
        audit.write("after", "cleanup", config.name, problem)
        return [problem]
    return []


@dataclass(frozen=True)
class _Reach:
    """Just enough of a Stack for `stack.accounts.remove_users`."""

    endpoints: Endpoints
    kit: ServiceKit


def _remove_users_since(config: EnvironmentConfig, kit: ServiceKit, since: str) -> str:
    from runbook_checks.stack.accounts import remove_users

    with psycopg.connect(config.database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT id FROM {} WHERE email LIKE %s AND created_at >= %s::timestamptz"
            ).format(sql.Identifier(kit.data.users)),
            (f"%@{config.test_account_domain}", since.strip()),
        ).fetchall()
    reach = _Reach(
        Endpoints(
            api_url=config.api_url,
            database_url=config.database_url,
            app_database_url=config.database_url,
            s3_endpoint=config.s3_endpoint,
            s3_bucket=config.s3_bucket,
            redis_url=config.redis_url,
            aws_endpoint=config.aws_endpoint,
            aws_region=config.aws_region,
            s3_access_key=config.s3_access_key,
            s3_secret_key=config.s3_secret_key,
            aws_access_key=config.aws_access_key,
            aws_secret_key=config.aws_secret_key,
            admin_token=config.admin_token,
            log_dir=Path("."),
            admin_database_url=config.admin_database_url,
        ),
        kit,
    )
    return remove_users(cast("Stack", reach), [r[0] for r in rows])
