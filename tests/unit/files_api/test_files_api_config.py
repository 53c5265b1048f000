"""Settings of the Files service: defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from files_api.config import GIB, MigrateSettings, Settings, SettingsError, redact_url

REQUIRED = {
    "DATABASE_URL": "postgresql://app:s3cret@127.0.0.1:5432/files",
    "LOG_DIR": "/var/log/api",
    "ADMIN_TOKEN": "admin-token-123",
}


def test_defaults_match_the_runbook() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.db_pool_size == 20  # "still at default 20"
    assert settings.db_pool_timeout_s == 5.0
    assert settings.db_statement_timeout_ms == 30000
    assert settings.api_port == 5000  # curl http://localhost:5000/health
    assert settings.api_host == "127.0.0.1"
    assert settings.free_limit_bytes == 10 * 1024 * 1024
    assert settings.pro_limit_bytes == 50 * 1024 * 1024
    assert settings.storage_quota_bytes == GIB
    assert settings.s3_bucket == "files"
    assert settings.s3_region == "us-east-1"
    assert settings.s3_endpoint_url is None
    assert settings.upload_timeout_s == 30.0
    assert settings.cache_ttl_s == 300
    assert settings.release == "dev"
    assert settings.migrate_on_start is True
    assert settings.log_dir == Path("/var/log/api")
    assert settings.spool_dir == Path("/var/log/spool")  # LOG_DIR/../spool


def test_values_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            **REQUIRED,
            "DB_POOL_SIZE": "2",
            "DB_POOL_TIMEOUT_S": "0.5",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "SPOOL_DIR": "/tmp/spool",
            "MIGRATE_ON_START": "0",
            "FILES_API_RELEASE": "v2",
        }
    )
    assert settings.db_pool_size == 2
    assert settings.db_pool_timeout_s == 0.5
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.spool_dir == Path("/tmp/spool")
    assert settings.migrate_on_start is False
    assert settings.release == "v2"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_required_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(SettingsError, match=rf"^{missing}: expected a value, got nothing") as info:
        Settings.from_env(env)
    assert info.value.variable == missing


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DB_POOL_SIZE", "abc", "a positive integer"),
        ("DB_POOL_SIZE", "0", "a positive integer"),
        ("DB_POOL_TIMEOUT_S", "-1", "a positive number of seconds"),
        ("DB_POOL_TIMEOUT_S", "nan", "a positive number of seconds"),
        ("API_PORT", "70000", "a TCP port"),
        ("MIGRATE_ON_START", "maybe", "1/0"),
        ("DATABASE_URL", "mysql://x@y/z", "a postgresql://"),
        ("S3_ENDPOINT_URL", "127.0.0.1:9000", "an http(s)://"),
        ("REDIS_URL", "http://x", "a redis://"),
        ("ADMIN_TOKEN", "short", "a secret of at least 8 characters"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_was_expected(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**REQUIRED, variable: value})
    message = str(info.value)
    assert message.startswith(f"{variable}: expected {expected}")
    assert info.value.variable == variable


def test_errors_never_echo_a_password() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**REQUIRED, "S3_ENDPOINT_URL": "ftp://user:hunter2@host"})
    assert "hunter2" not in str(info.value)


def test_migrate_needs_only_the_database() -> None:
    settings = MigrateSettings.from_env({"DATABASE_URL": REQUIRED["DATABASE_URL"]})
    assert settings.database_url == REQUIRED["DATABASE_URL"]
    assert "s3cret" not in settings.redacted_database_url


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://app:s3cret@db:5432/files", "postgresql://app:***@db:5432/files"),
        ("postgresql://app@db/files", "postgresql://app@db/files"),
        ("host=db user=app password=s3cret", "host=db user=app password=***"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


@given(st.text(alphabet=st.characters(blacklist_characters="@/:?#[] \n"), min_size=1))
def test_redact_url_hides_any_password(password: str) -> None:
    shown = redact_url(f"postgresql://app:{password}@db:5432/files")
    # the password's place holds the mask, whatever the password was (even "*")
    assert shown == "postgresql://app:***@db:5432/files"


def test_the_health_window_cannot_hide_an_outage_longer_than_half_a_second() -> None:
    assert Settings.from_env(REQUIRED).health_max_age_s == 0.0  # every /health probes
    assert Settings.from_env({**REQUIRED, "HEALTH_MAX_AGE_S": "0.5"}).health_max_age_s == 0.5
    assert Settings.from_env({**REQUIRED, "HEALTH_MAX_AGE_S": "0"}).health_max_age_s == 0.0
    for bad in ("0.6", "-1", "soon", "nan"):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({**REQUIRED, "HEALTH_MAX_AGE_S": bad})
        assert caught.value.variable == "HEALTH_MAX_AGE_S"
        assert "between 0 and 0.5" in str(caught.value)


DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # FastAPI's own


def test_the_probes_and_scrapes_are_matched_before_every_other_route(tmp_path: Path) -> None:
    """A request is matched against the routes in order: /health and /metrics, the most
    frequent, come first (no other path overlaps them)."""
    from fastapi.routing import APIRoute

    from files_api.app import create_app

    app = create_app(Settings.from_env({**REQUIRED, "LOG_DIR": str(tmp_path / "logs")}))
    routes = [r for r in app.router.routes if getattr(r, "path", "") not in DOCS]
    assert [getattr(r, "path", None) for r in routes[:2]] == ["/health", "/metrics"]
    assert all(isinstance(r, APIRoute) for r in routes[:2])
    assert len(routes) > 2  # the routers' routes, after them
