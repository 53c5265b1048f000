"""PostgreSQL for the local backend: a cluster of its own, cloned from a cached template.

`initdb` plus bootstrap SQL plus the service twin's migrations run once per PostgreSQL
version and migration set; every stack then copies that template (a plain directory
copy, ~0.1 s) instead of paying for initdb (~0.6 s) and migrations again. The server
runs as the `postgres` user when we are root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from runbook_checks.clock import SYSTEM_CLOCK, Clock, wait_until
from runbook_checks.errors import ComponentFailed, StackError
from runbook_checks.service import Twin
from runbook_checks.stack.component import LocalComponent
from runbook_checks.stack.disk import can_mount, mount_tmpfs, umount
from runbook_checks.stack.locks import exclusive
from runbook_checks.stack.ports import free_port
from runbook_checks.stack.process import ManagedProcess

TEMPLATE_FORMAT = "3"  # bump when bootstrap SQL below changes
APP_USER = "files_app"
APP_DB = "files"
SUPERUSER = "postgres"

PG_HBA = """\
local   all          all                   trust
host    all          all   127.0.0.1/32    scram-sha-256
host    replication  all   127.0.0.1/32    scram-sha-256
"""


@dataclass(frozen=True)
class PgInstall:
    bin_dir: Path
    version: str  # "15.18"

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)


def find_postgres() -> PgInstall:
    """Locate PostgreSQL server binaries: $RUNBOOK_CHECKS_PG_BIN, pg_config, the Debian tree."""
    candidates: list[Path] = []
    if env := os.environ.get("RUNBOOK_CHECKS_PG_BIN"):
        candidates.append(Path(env))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
            candidates.append(Path(out))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    candidates.extend(debian)
    for bin_dir in candidates:
        if (bin_dir / "initdb").exists() and (bin_dir / "postgres").exists():
            out = subprocess.run(
                [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
            ).stdout
            match = re.search(r"(\d+(?:\.\d+)*)", out)
            return PgInstall(bin_dir, match.group(1) if match else "unknown")
    raise StackError(
        "no PostgreSQL server binaries found (looked in $RUNBOOK_CHECKS_PG_BIN, pg_config "
        "--bindir, /usr/lib/postgresql/*/bin)",
        hint="run `make setup` as root (it installs Debian's postgresql), or set "
        "RUNBOOK_CHECKS_PG_BIN to a folder holding initdb and postgres",
    )


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)) or (0,)


def _server_user() -> str | None:
    """Whom the server runs as: `postgres` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StackError(
            "running as root, but there is no `postgres` user to run the server as "
            "(PostgreSQL refuses to run as root)",
            hint="install Debian's postgresql package (make setup), or run as a normal user",
        ) from exc
    return "postgres"


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _migrations_digest(twin: Twin | None) -> str:
    digest = hashlib.sha256(TEMPLATE_FORMAT.encode())
    if twin is not None:
        digest.update(" ".join(twin.migrate).encode())
    if twin is not None and twin.migrations is not None and twin.migrations.is_dir():
        for sql in sorted(twin.migrations.glob("*.sql")):
            digest.update(sql.name.encode())
            digest.update(sql.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "runbook-checks"


def server_args(port: int, socket_dir: Path) -> list[str]:
    settings = {
        "port": str(port),
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(socket_dir),
        # Durability against an OS crash is not what drills test; a killed server still
        # recovers from WAL. These make start, reset and load cheap on a 2-core machine.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "64MB",
        "max_connections": "100",
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
        "wal_level": "replica",
        "max_wal_senders": "5",
        "hot_standby": "on",
        "log_line_prefix": "%m [%p] %q%u@%d ",
        "log_connections": "off",
        "jit": "off",
    }
    args: list[str] = []
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    return args


class LocalPostgres(LocalComponent):
    """A PostgreSQL cluster in `data_dir`, on 127.0.0.1:`port`."""

    def __init__(
        self,
        work_dir: Path,
        *,
        clock: Clock = SYSTEM_CLOCK,
        install: PgInstall | None = None,
        password: str,
        app_password: str,
        name: str = "postgres",
        template: Path | None = None,
        twin: Twin | None = None,
        disk_mb: int | None = None,
        on_mount: Callable[[Path], None] | None = None,
    ) -> None:
        # With root, the cluster lives on a tmpfs of its own (`disk_mb`): disk-full faults
        # then hit a real ENOSPC on exactly this server's disk, as `df` shows it.
        self.disk_dir = work_dir / "disk"
        self.disk_mb = disk_mb if disk_mb is not None and can_mount() else None
        self.on_mount = on_mount
        super().__init__(name, data_dir=self.disk_dir / "data", clock=clock)
        self.install = install or find_postgres()
        self.user = _server_user()
        self.root = work_dir
        self.port = free_port()
        self.socket_dir = work_dir / "run"
        self.password = password
        self.app_password = app_password
        self.template = template
        self.twin = twin  # whose migrations the template cluster carries
        self.process = ManagedProcess(
            name,
            [
                self.install.tool("postgres"),
                "-D",
                str(self.data_dir),
                *server_args(self.port, self.socket_dir),
            ],
            log_path=work_dir / "postgres.log",
            user=self.user,
            stop_signal=signal.SIGINT,  # "fast" shutdown
            clock=clock,
            keeps_data=True,
            # the stack going: "immediate" shutdown (no checkpoint of data about to go;
            # shared memory released, unlike a SIGKILL)
            teardown_signal=signal.SIGQUIT,
        )
        self._initialised = False

    # -- setup --------------------------------------------------------------------------
    def prepare(self) -> None:
        if self._initialised:
            return
        assert self.data_dir is not None
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.disk_mb is not None:
            mount_tmpfs(self.disk_dir, self.disk_mb)
            if self.on_mount is not None:
                self.on_mount(self.disk_dir)
        else:
            self.disk_dir.mkdir(exist_ok=True)
        self.populate(self.data_dir)
        os.chmod(self.data_dir, 0o700)
        _chown_tree(self.root, self.user)
        self._initialised = True

    def populate(self, data_dir: Path) -> None:
        """Create the (absent) data folder: a copy of the template cluster, or of the
        folder given as `template` (a base backup restores that way). A replica overrides
        this to clone its primary with pg_basebackup."""
        template = self.template or ensure_template(self.install, self.twin, self.clock)
        shutil.copytree(template, data_dir, symlinks=True)
        for stale in ("postmaster.pid", "postmaster.opts"):
            (data_dir / stale).unlink(missing_ok=True)

    def after_ready(self) -> None:
        with self.admin_connect() as conn:
            for role, password in ((SUPERUSER, self.password), (APP_USER, self.app_password)):
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )

    def release_disk(self) -> None:
        """Unmount the tmpfs (after the server stopped)."""
        if self.disk_mb is not None:
            umount(self.disk_dir)

    # -- connections --------------------------------------------------------------------
    def probe(self) -> bool:
        with self.admin_connect(connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True

    def admin_connect(
        self, dbname: str = APP_DB, *, connect_timeout: int = 3
    ) -> psycopg.Connection[tuple[object, ...]]:
        """Superuser connection over the unix socket (trust), for the stack's own work."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            connect_timeout=connect_timeout,
            autocommit=True,
        )

    def url(self, *, user: str = APP_USER, port: int | None = None, host: str = "127.0.0.1") -> str:
        password = self.app_password if user == APP_USER else self.password
        return f"postgresql://{user}:{password}@{host}:{port or self.port}/{APP_DB}"

    @property
    def superuser_url(self) -> str:
        return self.url(user=SUPERUSER)


def ensure_template(install: PgInstall, twin: Twin | None, clock: Clock = SYSTEM_CLOCK) -> Path:
    """The cached template cluster for this PostgreSQL version, migrated by `twin` (built
    once per version and migration set; None: roles and database only)."""
    key = f"pg{install.version}-{_migrations_digest(twin)}"
    target = cache_root() / "pg-template" / key
    if (target / "PG_VERSION").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder per template on the machine: drills and test workers starting at once on
    # a fresh cache all get here. Another process may be copying a finished template, so a
    # finished one is never replaced; the others wait, then find it built.
    with exclusive(target.parent / f".{key}.lock"):
        if not (target / "PG_VERSION").exists():
            _build_template(install, twin, clock, target)
    return target


def _build_template(install: PgInstall, twin: Twin | None, clock: Clock, target: Path) -> None:
    user = _server_user()
    staging = Path(tempfile.mkdtemp(prefix="runbook-checks-pgtemplate-"))
    try:
        os.chmod(staging, 0o755)
        data = staging / "data"
        _chown_tree(staging, user)
        init = subprocess.run(
            [
                install.tool("initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-A",
                "trust",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=user,
            timeout=120,
        )
        if init.returncode != 0:
            raise ComponentFailed("postgres", "initdb failed", log_tail=init.stdout + init.stderr)
        (data / "pg_hba.conf").write_text(PG_HBA)
        _chown_tree(staging, user)
        builder = _TemplateBuilder(install, staging, user, clock, twin)
        builder.bootstrap()
        shutil.rmtree(target, ignore_errors=True)  # no PG_VERSION: no finished template
        os.rename(data, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _TemplateBuilder:
    def __init__(
        self, install: PgInstall, staging: Path, user: str | None, clock: Clock, twin: Twin | None
    ):
        self.install = install
        self.twin = twin
        self.staging = staging
        self.user = user
        self.clock = clock
        self.port = free_port()
        self.socket_dir = staging / "run"
        self.socket_dir.mkdir()
        _chown_tree(self.socket_dir, user)

    def bootstrap(self) -> None:
        proc = ManagedProcess(
            "postgres-template",
            [
                self.install.tool("postgres"),
                "-D",
                str(self.staging / "data"),
                *server_args(self.port, self.socket_dir),
            ],
            log_path=self.staging / "template.log",
            user=self.user,
            stop_signal=signal.SIGINT,
            clock=self.clock,
        )
        proc.spawn()
        try:
            wait_until(
                self._connectable,
                what="template postgres to start",
                timeout_s=30,
                transient=(psycopg.OperationalError,),
                clock=self.clock,
            )
            with self._connect("postgres") as conn:
                conn.execute(f"CREATE ROLE {APP_USER} LOGIN".encode())
                conn.execute(f"GRANT pg_signal_backend, pg_read_all_stats TO {APP_USER}".encode())
                conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_USER}".encode())
            with self._connect(APP_DB) as conn:
                conn.execute(b"CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                conn.execute(f"GRANT ALL ON SCHEMA public TO {APP_USER}".encode())
            self._migrate()
        except BaseException:
            log = proc.log_tail()
            proc.kill()
            if log:
                print(f"template postgres log:\n{log}", file=sys.stderr)
            raise
        proc.stop()

    def _connect(self, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def _connectable(self) -> bool:
        with self._connect("postgres"):
            return True

    def _migrate(self) -> None:
        if self.twin is None:
            return
        twin = self.twin
        env = dict(os.environ)
        env["DATABASE_URL"] = (
            f"postgresql://{APP_USER}@/{APP_DB}?host={self.socket_dir}&port={self.port}"
        )
        done = subprocess.run(
            [sys.executable, *twin.migrate],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise ComponentFailed(
                "postgres",
                f"the {twin.label} migrations failed on the template cluster",
                log_tail=done.stdout + done.stderr,
                hint=f"fix the migration named above ({twin.migrations or twin.label})",
            )
