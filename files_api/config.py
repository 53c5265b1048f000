"""Settings of the Files service, read once from the environment into a frozen dataclass.

Every variable has one parser; a bad value raises `SettingsError` naming the variable,
what was expected, what was observed, and what to do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

MIB = 1024 * 1024
GIB = 1024 * MIB
# /health may answer from a probe started at most this long ago (HEALTH_MAX_AGE_S; by
# default it probes every time): an outage shows within it
HEALTH_MAX_AGE_S = 0.5
HEALTH_MAX_AGE_DEFAULT_S = 0.0

T = TypeVar("T")


class SettingsError(ValueError):
    """A variable of the environment is missing or has a value the service cannot use."""

    def __init__(self, variable: str, expected: str, observed: str, hint: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: expected {expected}, got {observed}; {hint}")


@dataclass(frozen=True)
class Settings:
    database_url: str
    db_pool_size: int
    db_pool_timeout_s: float
    db_statement_timeout_ms: int
    s3_endpoint_url: str | None
    s3_bucket: str
    s3_region: str
    aws_access_key_id: str
    aws_secret_access_key: str
    s3_timeout_s: float
    redis_url: str
    redis_timeout_s: float
    cache_ttl_s: int
    free_limit_mb: int
    pro_limit_mb: int
    storage_quota_bytes: int
    upload_timeout_s: float
    log_dir: Path
    spool_dir: Path
    queue_retry_interval_s: float
    admin_token: str
    api_host: str
    api_port: int
    release: str
    health_check_timeout_s: float
    migrate_on_start: bool
    # /health reuses a dependency's answer while its probe started at most this long ago
    health_max_age_s: float = HEALTH_MAX_AGE_DEFAULT_S

    @property
    def free_limit_bytes(self) -> int:
        return self.free_limit_mb * MIB

    @property
    def pro_limit_bytes(self) -> int:
        return self.pro_limit_mb * MIB

    @property
    def redacted_database_url(self) -> str:
        return redact_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        log_dir = reader.get("LOG_DIR", _path, None)
        spool_default = log_dir.parent / "spool" if log_dir is not None else None
        settings = cls(
            database_url=reader.get("DATABASE_URL", _postgres_url, None),
            db_pool_size=reader.get("DB_POOL_SIZE", _positive_int, 20),
            db_pool_timeout_s=reader.get("DB_POOL_TIMEOUT_S", _positive_float, 5.0),
            db_statement_timeout_ms=reader.get("DB_STATEMENT_TIMEOUT_MS", _positive_int, 30000),
            s3_endpoint_url=reader.optional("S3_ENDPOINT_URL", _http_url),
            s3_bucket=reader.get("S3_BUCKET", _non_empty, "files"),
            s3_region=reader.get("S3_REGION", _non_empty, "us-east-1"),
            aws_access_key_id=reader.get("AWS_ACCESS_KEY_ID", _non_empty, "testing"),
            aws_secret_access_key=reader.get("AWS_SECRET_ACCESS_KEY", _non_empty, "testing"),
            s3_timeout_s=reader.get("S3_TIMEOUT_S", _positive_float, 2.0),
            redis_url=reader.get("REDIS_URL", _redis_url, "redis://127.0.0.1:6379/0"),
            redis_timeout_s=reader.get("REDIS_TIMEOUT_S", _positive_float, 0.5),
            cache_ttl_s=reader.get("CACHE_TTL_S", _positive_int, 300),
            free_limit_mb=reader.get("FREE_LIMIT_MB", _positive_int, 10),
            pro_limit_mb=reader.get("PRO_LIMIT_MB", _positive_int, 50),
            storage_quota_bytes=reader.get("STORAGE_QUOTA_BYTES", _positive_int, GIB),
            upload_timeout_s=reader.get("UPLOAD_TIMEOUT_S", _positive_float, 30.0),
            log_dir=reader.get("LOG_DIR", _path, None),
            spool_dir=reader.get("SPOOL_DIR", _path, spool_default),
            queue_retry_interval_s=reader.get("QUEUE_RETRY_INTERVAL_S", _positive_float, 1.0),
            admin_token=reader.get("ADMIN_TOKEN", _token, None),
            api_host=reader.get("API_HOST", _non_empty, "127.0.0.1"),
            api_port=reader.get("API_PORT", _port, 5000),
            release=reader.get("FILES_API_RELEASE", _non_empty, "dev"),
            health_check_timeout_s=reader.get("HEALTH_CHECK_TIMEOUT_S", _positive_float, 1.0),
            migrate_on_start=reader.get("MIGRATE_ON_START", _boolean, True),
            health_max_age_s=reader.get(
                "HEALTH_MAX_AGE_S", _health_max_age, HEALTH_MAX_AGE_DEFAULT_S
            ),
        )
        return settings


@dataclass(frozen=True)
class MigrateSettings:
    """What `python -m files_api migrate` needs: only the database."""

    database_url: str
    connect_timeout_s: float

    @property
    def redacted_database_url(self) -> str:
        return redact_url(self.database_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MigrateSettings:
        reader = _Reader(os.environ if environ is None else environ)
        return cls(
            database_url=reader.get("DATABASE_URL", _postgres_url, None),
            connect_timeout_s=reader.get("DB_POOL_TIMEOUT_S", _positive_float, 5.0),
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str, str], T], default: T | None) -> T:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            if default is None:
                raise SettingsError(name, "a value", "nothing", f"export {name}=... and restart")
            return default
        return parse(name, raw.strip())

    def optional(self, name: str, parse: Callable[[str, str], T]) -> T | None:
        raw = self._env.get(name)
        if raw is None or raw.strip() == "":
            return None
        return parse(name, raw.strip())


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SettingsError(name, "a positive integer", repr(raw), f"set {name} to e.g. 20")
    return value


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(name, "a positive number of seconds", repr(raw), f"set {name}=1.5")
    return value


def _health_max_age(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= HEALTH_MAX_AGE_S:
        raise SettingsError(
            name,
            f"seconds between 0 and {HEALTH_MAX_AGE_S:g} (a cached check must never hide "
            "an outage for longer)",
            repr(raw),
            f"set {name}=0 (or leave it unset) to probe on every request",
        )
    return value


def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 < value < 65536:
        raise SettingsError(name, "a TCP port in 1..65535", repr(raw), f"set {name}=5000")
    return value


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(name, "1/0 (or true/false)", repr(raw), f"set {name}=1 or {name}=0")


def _non_empty(name: str, raw: str) -> str:
    return raw


def _token(name: str, raw: str) -> str:
    if len(raw) < 8:
        raise SettingsError(
            name, "a secret of at least 8 characters", f"{len(raw)} characters", "use a long token"
        )
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser().absolute()


def _postgres_url(name: str, raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in {"postgresql", "postgres"} and "=" not in raw:
        raise SettingsError(
            name,
            "a postgresql://USER:PASSWORD@HOST:PORT/DB URL (or a libpq key=value string)",
            f"a value with scheme {scheme!r}",
            "fix the URL",
        )
    return raw


def _http_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SettingsError(
            name, "an http(s)://HOST:PORT URL", repr(redact_url(raw)), "e.g. http://127.0.0.1:9000"
        )
    return raw


def _redis_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise SettingsError(
            name,
            "a redis://HOST:PORT/DB URL",
            repr(redact_url(raw)),
            "e.g. redis://127.0.0.1:6379/0",
        )
    return raw


def redact_url(url: str) -> str:
    """The URL with its password replaced by '***' (safe to log)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        if "password=" in url:  # libpq key=value form
            return " ".join(
                "password=***" if item.startswith("password=") else item for item in url.split()
            )
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
